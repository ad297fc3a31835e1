//! The public status page (`GET /status`) and its report form (`POST /status/report`).
//!
//! The page is a standalone document (not the operators' layout, no script): it works in any
//! browser, with a screen reader and without JavaScript. What it shows is [`publish`]'s.
//!
//! A report is refused, with the reason on the page and nothing stored, when it comes from
//! another site (`Origin` / `Sec-Fetch-Site`, as the login form checks), when the address
//! or everyone together has filed too many lately (429 with `Retry-After`), when the body is
//! over [`REPORT_BODY_LIMIT`] (413), or when a field is missing, too long, holds control
//! characters or names no service (400). An accepted report becomes an incident in the store
//! with its audit entry (actor `system (public)`), and the browser is sent back to the page,
//! which thanks the reporter with the incident's number.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::incident::NewIncident;
use serde::Deserialize;
use uuid::Uuid;

use super::publish::{self, Published};
use crate::access::source_address;
use crate::clock;
use crate::error::ApiError;
use crate::login_limit::Key;
use crate::state::AppState;
use crate::web::{self, render_status};

/// The largest report body: the three fields at their limits, percent-encoded, fit.
pub(crate) const REPORT_BODY_LIMIT: u64 = 16 * 1024;
/// The longest description, in characters.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The longest contact, in characters.
pub(crate) const MAX_CONTACT_CHARS: usize = 200;
/// The longest service name accepted before it is looked up.
const MAX_SERVICE: usize = patchwarden_store::limits::MAX_NAME;
/// The audit chain's actor for what the public does.
pub(crate) const PUBLIC_ACTOR: &str = "public";

/// A time as the page shows it.
pub(crate) fn when(t: Timestamp) -> String {
    t.strftime("%a %-d %b %Y, %H:%M UTC").to_string()
}

/// A time for `<time datetime>`.
pub(crate) fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A span as the page shows it.
pub(crate) struct Shown {
    pub label: String,
    pub start: String,
    pub start_iso: String,
    pub end: String,
    pub end_iso: String,
}

impl Shown {
    fn of(label: &str, start: Timestamp, end: Timestamp) -> Shown {
        Shown {
            label: label.to_owned(),
            start: when(start),
            start_iso: iso(start),
            end: when(end),
            end_iso: iso(end),
        }
    }
}

pub(crate) struct ServiceRow {
    pub name: String,
    pub impact: Option<String>,
    pub open_until: Option<Shown>,
    pub next: Vec<Shown>,
    pub announced: Vec<Shown>,
}

pub(crate) struct PatchedRow {
    pub number: String,
    pub what: String,
    pub applications: String,
    pub ended: String,
    pub ended_iso: String,
}

/// What the reporter typed, shown again (escaped) with a refusal so nothing is lost.
#[derive(Default)]
pub(crate) struct Typed {
    pub service: String,
    pub description: String,
    pub contact: String,
}

#[derive(Template)]
#[template(path = "status/page.html")]
pub(crate) struct StatusPage {
    pub updated: String,
    pub services: Vec<ServiceRow>,
    pub freezes: Vec<Shown>,
    pub patched: Vec<PatchedRow>,
    pub patched_days: u32,
    pub thanks: Option<String>,
    pub error: Option<String>,
    pub typed: Typed,
    pub max_description: usize,
    pub max_contact: usize,
}

fn page(state: &AppState, p: &Published) -> StatusPage {
    StatusPage {
        updated: when(p.computed_at),
        services: p
            .services
            .iter()
            .map(|s| ServiceRow {
                name: s.name.clone(),
                impact: s.impact.clone(),
                open_until: s
                    .open_until
                    .map(|end| Shown::of("open now", p.computed_at, end)),
                next: s
                    .next
                    .iter()
                    .map(|o| Shown::of("", o.start, o.end))
                    .collect(),
                announced: s
                    .announced
                    .iter()
                    .map(|a| Shown::of(&format!("{}: {}", a.number, a.what), a.start, a.end))
                    .collect(),
            })
            .collect(),
        freezes: p
            .freezes
            .iter()
            .map(|f| Shown::of(&f.name, f.start, f.end))
            .collect(),
        patched: p
            .patched
            .iter()
            .map(|c| PatchedRow {
                number: c.number.clone(),
                what: c.what.clone(),
                applications: if c.applications.is_empty() {
                    "internal systems".to_owned()
                } else {
                    c.applications.join(", ")
                },
                ended: when(c.ended),
                ended_iso: iso(c.ended),
            })
            .collect(),
        patched_days: state.status.settings.patched_days,
        thanks: None,
        error: None,
        typed: Typed::default(),
        max_description: MAX_DESCRIPTION_CHARS,
        max_contact: MAX_CONTACT_CHARS,
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatusQuery {
    reported: Option<String>,
}

/// Whether `s` is an incident number (`INC-2026-0001`): only such a value is shown back.
fn is_incident_number(s: &str) -> bool {
    let mut parts = s.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("INC"), Some(y), Some(n), None)
            if y.len() == 4
                && y.bytes().all(|b| b.is_ascii_digit())
                && (4..=9).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit())
    )
}

pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    q: Result<Query<StatusQuery>, QueryRejection>,
) -> Response {
    // Other query parameters (a campaign tag, a typo) do not break a public page.
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let published = match publish::published(&state, clock::now()).await {
        Ok(p) => p,
        Err(e) => return web::PageError(e).into_response(),
    };
    let mut p = page(&state, &published);
    p.thanks = q.reported.filter(|n| is_incident_number(n));
    render_status(StatusCode::OK, &p)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportForm {
    service: String,
    description: String,
    #[serde(default)]
    contact: String,
}

/// The page again with `error` and what was typed, at `status`.
async fn refused(state: &AppState, status: StatusCode, error: String, typed: Typed) -> Response {
    let published = match publish::published(state, clock::now()).await {
        Ok(p) => p,
        Err(e) => return web::PageError(e).into_response(),
    };
    let mut p = page(state, &published);
    p.error = Some(error);
    p.typed = typed;
    render_status(status, &p)
}

/// Whether `s` holds a control character other than line breaks and tabs (when `lines`).
fn has_controls(s: &str, lines: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(lines && matches!(c, '\n' | '\r' | '\t')))
}

/// Checks a report's fields; the error says what to fix.
fn check(f: &ReportForm, services: &[String]) -> Result<(), String> {
    let service = f.service.trim();
    if service.is_empty() || service.len() > MAX_SERVICE || !services.iter().any(|s| s == service) {
        return Err("Choose the service that has the problem from the list.".into());
    }
    let description = f.description.trim();
    if description.is_empty() {
        return Err("Say what is wrong.".into());
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "The description is too long: at most {MAX_DESCRIPTION_CHARS} characters."
        ));
    }
    if has_controls(description, true) {
        return Err("The description holds control characters; write plain text.".into());
    }
    let contact = f.contact.trim();
    if contact.chars().count() > MAX_CONTACT_CHARS {
        return Err(format!(
            "The contact is too long: at most {MAX_CONTACT_CHARS} characters."
        ));
    }
    if has_controls(contact, false) {
        return Err("The contact holds control characters; write it on one line.".into());
    }
    Ok(())
}

pub(crate) async fn report(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let now = clock::now();
    if !web::account::same_origin(request.headers()) {
        return refused(
            &state,
            StatusCode::FORBIDDEN,
            "This report was sent from another web site and was not accepted. Use the form on \
             this page."
                .into(),
            Typed::default(),
        )
        .await;
    }
    // Behind a proxy every report comes from the proxy's address: the limit is then the
    // proxy's (docs/status-page.md).
    let ip =
        source_address(request.extensions()).map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let address = Key::Address(ip);
    let everyone = Key::UnknownName(String::new());
    let second = now.as_second();
    let limited = match state.status.per_address.check(&address, second) {
        Err(retry) => Some((
            retry,
            "Too many problem reports came from your network address.",
        )),
        Ok(()) => state
            .status
            .total
            .check(&everyone, second)
            .err()
            .map(|retry| {
                (
                    retry,
                    "Too many problem reports are arriving at the moment.",
                )
            }),
    };
    if let Some((retry, why)) = limited {
        let mut response = refused(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{why} Try again in {} minute(s), or call the service desk.",
                retry.div_ceil(60)
            ),
            Typed::default(),
        )
        .await;
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let f: ReportForm = match web::form(request.into_body(), REPORT_BODY_LIMIT).await {
        Ok(f) => f,
        Err(ApiError::PayloadTooLarge { limit }) => {
            return refused(
                &state,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The report is too large (at most {} KiB). Shorten the description.",
                    limit / 1024
                ),
                Typed::default(),
            )
            .await;
        }
        Err(_) => {
            return refused(
                &state,
                StatusCode::BAD_REQUEST,
                "The report is not as the form sends it: give a service and a description \
                 (and a contact if you like)."
                    .into(),
                Typed::default(),
            )
            .await;
        }
    };
    let services: Vec<String> = match publish::services(&state).await {
        Ok(s) => s.into_keys().collect(),
        Err(e) => return web::PageError(e).into_response(),
    };
    let typed = Typed {
        service: f.service.clone(),
        description: f.description.clone(),
        contact: f.contact.clone(),
    };
    if let Err(why) = check(&f, &services) {
        return refused(&state, StatusCode::BAD_REQUEST, why, typed).await;
    }
    let service = f.service.trim().to_owned();
    let lookback =
        SignedDuration::from_hours(24 * i64::from(state.status.settings.report_lookback_days));
    let change = match publish::change_for(&state, &service, now, lookback).await {
        Ok(c) => c,
        Err(e) => return web::PageError(e).into_response(),
    };
    let contact = f.contact.trim();
    let created = state
        .store
        .create_incident(
            NewIncident {
                id: Uuid::new_v4(),
                service,
                description: f.description.trim().to_owned(),
                contact: (!contact.is_empty()).then(|| contact.to_owned()),
                change,
            },
            now,
            AuditEntry::new(
                now,
                Actor::System(PUBLIC_ACTOR.into()),
                "incident.report",
                "",
            ),
        )
        .await;
    match created {
        Ok(incident) => {
            state.status.per_address.fail(address, second);
            state.status.total.fail(everyone, second);
            tracing::info!(
                incident = %incident.number,
                change = incident.change.as_deref().unwrap_or("none"),
                "a problem was reported on the status page"
            );
            web::see_other(&format!("/status?reported={}", incident.number))
        }
        Err(e) => web::PageError(e.into()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_incident_numbers_are_shown_back() {
        assert!(is_incident_number("INC-2026-0001"));
        assert!(is_incident_number("INC-2026-123456"));
        assert!(!is_incident_number("INC-2026-01"));
        assert!(!is_incident_number("INC-2026-0001-x"));
        assert!(!is_incident_number("<script>"));
        assert!(!is_incident_number("PCR-2026-0001"));
    }

    #[test]
    fn a_report_must_name_a_service_and_say_what_is_wrong_in_plain_text() {
        let services = vec!["shop".to_owned()];
        let form = |s: &str, d: &str, c: &str| ReportForm {
            service: s.into(),
            description: d.into(),
            contact: c.into(),
        };
        assert!(check(&form("shop", "slow\nsince 8 pm", ""), &services).is_ok());
        assert!(check(&form("payroll", "x", ""), &services).is_err());
        assert!(check(&form("shop", "  ", ""), &services).is_err());
        assert!(check(&form("shop", &"x".repeat(2001), ""), &services).is_err());
        assert!(check(&form("shop", "a\u{0}b", ""), &services).is_err());
        assert!(check(&form("shop", "x", "a\nb"), &services).is_err());
        assert!(check(&form("shop", "x", &"c".repeat(201)), &services).is_err());
    }
}
