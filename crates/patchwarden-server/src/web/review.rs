//! The triage queue (new advisories that affect the fleet, each with its 4-hour review clock,
//! seed 004) with the classify form for those who decide, and the audit log with the chain's
//! verification. Both read and act through the API handlers' functions (`routes::feeds`,
//! `routes::audit`).

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use patchwarden_api::v1::feeds::{ReviewState, TriageClassification, TriageQuery};
use patchwarden_api::v1::fleet::Criticality;
use serde::Deserialize;

use super::view::{self, Params, class_words, span, when, when_or};
use super::{Chrome, FORM_LIMIT, PageResult, form, render, render_status, see_other};
use crate::access::{Caller, TRIAGE_DECIDERS};
use crate::clock;
use crate::error::ApiError;
use crate::routes::fleet::class;
use crate::routes::{audit, feeds};
use crate::state::AppState;

/// The status and words of a refusal shown on the page it came from.
pub(crate) fn problem_text(e: &ApiError) -> (StatusCode, String) {
    let p = e.problem();
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    let text = match p.detail {
        Some(d) => format!("{}: {d}", p.title),
        None => p.title,
    };
    (status, text)
}

struct TriageRow {
    id: i64,
    vulnerability: String,
    advisories: Vec<String>,
    summary: String,
    arrived: String,
    due: String,
    /// "2 h 10 min left", "overdue by 35 min", "decided on time".
    clock: String,
    clock_css: &'static str,
    pending: bool,
    class: &'static str,
    reason: String,
    decided: String,
}

#[derive(Template)]
#[template(path = "triage.html")]
struct TriagePage {
    chrome: Chrome,
    shows: Vec<view::Choice>,
    rows: Vec<TriageRow>,
    next: Option<String>,
    first: Option<String>,
    can_decide: bool,
    error: Option<String>,
}

async fn triage_page(
    state: &AppState,
    caller: &Caller,
    p: Params,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    p.only(&["show", "after", "limit"])?;
    let (pending, overdue) = match p.get("show").as_deref() {
        None | Some("pending") => (Some(true), None),
        Some("overdue") => (Some(true), Some(true)),
        Some("decided") => (Some(false), None),
        Some("all") => (None, None),
        Some(other) => {
            return Err(ApiError::InvalidParameter(format!(
                "show {other:?}: pending, overdue, decided or all"
            ))
            .into());
        }
    };
    let q = TriageQuery {
        pending,
        overdue,
        after: p.parsed::<i64>("after", "an item id from the previous page")?,
        limit: Some(p.limit()?),
    };
    let page = feeds::triage_page(state, &q).await?;
    let now = clock::now();
    let rows = page
        .items
        .into_iter()
        .map(|i| {
            let left = i.due_at.as_second() - now.as_second();
            let (clock, clock_css) = match i.review {
                ReviewState::Pending => (format!("{} left", span(left)), "due-soon"),
                ReviewState::Overdue => (format!("overdue by {}", span(left)), "breached"),
                ReviewState::DecidedOnTime => ("decided on time".into(), "on-time"),
                ReviewState::DecidedLate => ("decided late".into(), "warn"),
            };
            TriageRow {
                id: i.id,
                pending: matches!(i.review, ReviewState::Pending | ReviewState::Overdue),
                class: i
                    .classification
                    .map_or("", |c| class_words(Some(class(c))).0),
                reason: i.reason.unwrap_or_default(),
                decided: match (i.decided_by, i.decided_at) {
                    (Some(by), Some(at)) => format!("{by}, {}", when(at)),
                    _ => String::new(),
                },
                vulnerability: i.vulnerability,
                advisories: i.advisories,
                summary: i.summary.unwrap_or_default(),
                arrived: when(i.arrived_at),
                due: when(i.due_at),
                clock,
                clock_css,
            }
        })
        .collect();
    let next = page
        .next_after
        .map(|a| format!("/triage{}", p.with("after", Some(&a.to_string()))));
    let first = q.after.map(|_| format!("/triage{}", p.with("after", None)));
    let chrome = Chrome::new(caller, "triage");
    let (status, error) = match error {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    Ok(render_status(
        status,
        &TriagePage {
            can_decide: chrome.can(TRIAGE_DECIDERS),
            chrome,
            shows: view::choices(
                "pending",
                &[
                    ("overdue", "overdue"),
                    ("decided", "decided"),
                    ("all", "all"),
                ],
                p.value("show"),
            ),
            rows,
            next,
            first,
            error,
        },
    ))
}

/// `GET /triage`.
pub(crate) async fn triage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let p = Params::parse(raw.as_deref())?;
    triage_page(&state, &caller, p, None).await
}

#[derive(Deserialize)]
struct ClassifyForm {
    classification: String,
    #[serde(default)]
    reason: String,
}

fn criticality(v: &str) -> Result<Criticality, ApiError> {
    Ok(match v {
        "emergency" => Criticality::Emergency,
        "high" => Criticality::High,
        "medium" => Criticality::Medium,
        "low" => Criticality::Low,
        "not_applicable" => Criticality::NotApplicable,
        _ => {
            return Err(ApiError::MalformedBody(format!(
                "classification {v:?}: emergency, high, medium, low or not_applicable"
            )));
        }
    })
}

/// `POST /triage/{id}/classify`: back to the queue, or the queue with the refusal said.
pub(crate) async fn classify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Body,
) -> PageResult {
    let Path(id) = id.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let f: ClassifyForm = form(body, FORM_LIMIT).await?;
    let outcome = match criticality(&f.classification) {
        Ok(c) => {
            feeds::classify_item(
                &state,
                &caller,
                id,
                TriageClassification {
                    classification: c,
                    reason: f.reason,
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(see_other("/triage")),
        Err(ApiError::NotFound) => Err(ApiError::NotFound.into()),
        Err(e) => triage_page(&state, &caller, Params::default(), Some(problem_text(&e))).await,
    }
}

struct AuditRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    object: String,
    change: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditLogPage {
    chrome: Chrome,
    p: Params,
    rows: Vec<AuditRow>,
    next: Option<String>,
    latest: String,
    scanned_to: i64,
    head: i64,
}

/// Events read at a time while filtering, and the most one page request reads.
const AUDIT_BATCH: u32 = 1000;
const AUDIT_SCAN: usize = 50_000;

/// A short JSON text of an entry's before and after (never a secret: the audit entries hold
/// none).
fn short(v: &Option<serde_json::Value>) -> String {
    let s = v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    if s.chars().count() > 160 {
        let cut: String = s.chars().take(160).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// `GET /audit`: the chain a page at a time, oldest first from `after` (the latest page
/// without one), filtered by actor, action and object.
pub(crate) async fn audit_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let p = Params::parse(raw.as_deref())?;
    p.only(&["actor", "action", "object", "after", "limit"])?;
    let limit = p.limit()?;
    let actor = p.get("actor").map(|s| s.to_lowercase());
    let action = p.get("action");
    let object = p.get("object").map(|s| s.to_lowercase());
    let filtered = actor.is_some() || action.is_some() || object.is_some();
    let head = state.store.audit_head().await?.map_or(0, |h| h.seq);
    let mut after = match p.parsed::<i64>("after", "a sequence number")? {
        Some(a) if a < 0 => {
            return Err(ApiError::InvalidParameter("after: 0 or more".into()).into());
        }
        Some(a) => a,
        // Unfiltered: the latest events; filtered: from the start.
        None if !filtered => (head - i64::from(limit)).max(0),
        None => 0,
    };
    let mut rows = Vec::new();
    let mut scanned = 0usize;
    let mut more = false;
    loop {
        let page = audit::events_after(&state, after, AUDIT_BATCH).await?;
        scanned += page.items.len();
        for e in page.items {
            after = e.seq;
            let entry = &e.entry;
            let admits = actor
                .as_ref()
                .is_none_or(|a| entry.actor.to_string().to_lowercase().contains(a))
                && action
                    .as_ref()
                    .is_none_or(|a| entry.action.starts_with(a.as_str()))
                && object
                    .as_ref()
                    .is_none_or(|o| entry.object.to_lowercase().contains(o));
            if admits {
                rows.push(AuditRow {
                    seq: e.seq,
                    at: when(entry.at),
                    actor: entry.actor.to_string(),
                    action: entry.action.clone(),
                    object: entry.object.clone(),
                    change: match (&entry.before, &entry.after) {
                        (None, None) => String::new(),
                        (b, a) => format!("{} → {}", short(b), short(a)),
                    },
                });
                if rows.len() == limit as usize {
                    break;
                }
            }
        }
        if rows.len() == limit as usize || scanned >= AUDIT_SCAN {
            more = after < head;
            break;
        }
        if page.next_after.is_none() {
            break;
        }
    }
    let next = more.then(|| format!("/audit{}", p.with("after", Some(&after.to_string()))));
    Ok(render(&AuditLogPage {
        chrome: Chrome::new(&caller, "audit"),
        latest: format!("/audit{}", p.with("after", None)),
        p,
        rows,
        next,
        scanned_to: after,
        head,
    }))
}

#[derive(Template)]
#[template(path = "audit_verification.html")]
struct VerificationPart {
    intact: bool,
    events: i64,
    head: String,
    broken: String,
    checked_at: String,
}

/// `GET /audit/verification`: the whole chain walked (the API's `verify`), as the part of
/// the audit page htmx loads after the page, or a page of its own without script.
pub(crate) async fn verification(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> PageResult {
    let v = audit::verify_chain(&state).await?;
    Ok(render(&VerificationPart {
        intact: v.intact,
        events: v.events,
        head: v.head,
        broken: v.broken.unwrap_or_default(),
        checked_at: when_or(Some(clock::now()), ""),
    }))
}
