//! The fleet's pages: the hosts (filtered by group, OS, ring, reboot required and last seen,
//! a page at a time), a host (facts, packages, open findings, patch history, jobs), the
//! findings across hosts (by vulnerability, class, standing, group) and an advisory.
//!
//! Each reads through the functions the JSON API's handlers use (`routes::fleet`), with the
//! caller's scope: a provider's pages hold only its groups' hosts, and another group's host
//! is "not found" here as there. Every filter is in the query string, so a link shows the
//! same view; paging is by id (`after`), the API's own, which stays fast on a large fleet.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::fleet::{FindingStateFilter, MAX_PAGE};
use patchwarden_core::policy::Lookup;
use patchwarden_store::{Host, HostState, JobFilter, StoredFinding};
use uuid::Uuid;

use super::view::{self, Params, ago, class_words, standing_words, when, when_or};
use super::{Chrome, PageResult, render};
use crate::access::Caller;
use crate::clock;
use crate::error::ApiError;
use crate::matcher::Matcher;
use crate::routes::fleet::{
    FindingListing, HostListing, ListedFindings, host_record, list_findings_in, list_hosts_in,
};
use crate::routes::users::path_id;
use crate::state::AppState;

/// A host as a row of the hosts page.
pub(crate) struct HostRow {
    pub id: String,
    pub hostname: String,
    pub group: String,
    pub ring: String,
    pub os: String,
    pub reboot: bool,
    pub last_seen: String,
    pub last_seen_ago: String,
    pub open: u64,
    pub standing: &'static str,
}

fn os_of(h: &Host) -> String {
    h.facts
        .os
        .pretty_name
        .clone()
        .or_else(|| h.ecosystem.clone())
        .unwrap_or_else(|| h.facts.os.id.clone())
}

fn host_row(h: &Host, open: u64, now: Timestamp) -> HostRow {
    HostRow {
        id: h.id.to_string(),
        hostname: h.facts.hostname.clone(),
        group: h.group.clone(),
        ring: h.ring.clone().unwrap_or_default(),
        os: os_of(h),
        reboot: h.facts.reboot_required,
        last_seen: when_or(h.last_seen, "never"),
        last_seen_ago: ago(h.last_seen, now),
        open,
        standing: h.state.as_str(),
    }
}

#[derive(Template)]
#[template(path = "hosts.html")]
struct HostsPage {
    chrome: Chrome,
    p: Params,
    reboot: Vec<view::Choice>,
    rows: Vec<HostRow>,
    next: Option<String>,
    first: Option<String>,
}

/// The filters of the hosts page.
const HOST_FILTERS: &[&str] = &[
    "group",
    "os",
    "ring",
    "reboot",
    "unseen_days",
    "after",
    "limit",
];

/// What the hosts page's query string asks for.
pub(crate) fn host_listing(p: &Params, now: Timestamp) -> Result<HostListing, ApiError> {
    p.only(HOST_FILTERS)?;
    let reboot_required = match p.get("reboot").as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(other) => {
            return Err(ApiError::InvalidParameter(format!(
                "reboot {other:?}: yes or no"
            )));
        }
    };
    let last_seen_before = match p.parsed::<u32>("unseen_days", "a whole number of days")? {
        None => None,
        Some(d) if d > 3660 => {
            return Err(ApiError::InvalidParameter(
                "unseen_days: at most 3660 (ten years)".into(),
            ));
        }
        Some(d) => Some(
            now.checked_sub(SignedDuration::from_hours(i64::from(d) * 24))
                .map_err(|e| ApiError::InvalidParameter(format!("unseen_days: {e}")))?,
        ),
    };
    Ok(HostListing {
        group: p.get("group"),
        ring: p.get("ring"),
        ecosystem: p.get("os"),
        reboot_required,
        last_seen_before,
        after: p.parsed::<Uuid>("after", "a host id from the previous page")?,
        limit: p.limit()?,
    })
}

/// `GET /hosts`.
pub(crate) async fn hosts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let now = clock::now();
    let p = Params::parse(raw.as_deref())?;
    let listing = host_listing(&p, now)?;
    let listed = list_hosts_in(&state, &caller.scope(), &listing).await?;
    let rows = listed
        .hosts
        .iter()
        .map(|(h, n)| host_row(h, *n, now))
        .collect();
    let next = listed
        .next_after
        .map(|a| format!("/hosts{}", p.with("after", Some(&a.to_string()))));
    let first = listing
        .after
        .map(|_| format!("/hosts{}", p.with("after", None)));
    Ok(render(&HostsPage {
        chrome: Chrome::new(&caller, "hosts"),
        reboot: view::choices(
            "any",
            &[("yes", "required"), ("no", "not required")],
            p.value("reboot"),
        ),
        p,
        rows,
        next,
        first,
    }))
}

/// A finding as a row of a page: what it is, how urgent and why, by when, and the ratings.
pub(crate) struct FindingRow {
    pub id: i64,
    pub host_id: String,
    pub host: String,
    pub vulnerability: String,
    pub advisories: Vec<String>,
    pub package: String,
    pub installed: String,
    pub fixed: String,
    pub class: &'static str,
    pub class_css: &'static str,
    pub standing: &'static str,
    pub standing_css: &'static str,
    pub due: String,
    /// Why the class: the policy and rule that set it.
    pub why_class: String,
    /// Why the package is exposed, from the matcher.
    pub explanation: String,
    pub kev: String,
    pub epss: String,
    pub cvss: String,
    pub first_seen: String,
    pub closed: String,
    pub fixed_version: String,
    pub exception: String,
}

/// A finding's row, with KEV, EPSS and CVSS from the matcher's enrichment and index (what the
/// policy judged it with).
pub(crate) fn finding_row(
    listed: &ListedFindings,
    f: &StoredFinding,
    host: &str,
    matcher: &Matcher,
) -> FindingRow {
    let v = listed.view(f);
    let (class, class_css) = class_words(f.classification.class);
    let (standing, standing_css) = if f.closed_at.is_some() {
        ("closed", "ok")
    } else {
        standing_words(v.standing)
    };
    let why_class = match (&f.classification.policy, &f.classification.rule) {
        (Some(p), Some(r)) => format!("policy {p}, rule {r}"),
        (Some(p), None) => format!("policy {p}"),
        (None, Some(r)) => format!("rule {r}"),
        (None, None) => "no policy classified it".into(),
    };
    let kev = match matcher.enrichment.kev(&f.finding) {
        Lookup::Listed(e) => format!("listed (added {})", e.date_added),
        Lookup::NotListed => "not listed".into(),
        Lookup::NotLoaded => "catalogue not loaded".into(),
    };
    let epss = match matcher.enrichment.epss(&f.finding) {
        Lookup::Listed(s) => format!(
            "{:.1}% (percentile {:.0})",
            s.epss * 100.0,
            s.percentile * 100.0
        ),
        Lookup::NotListed => "not scored".into(),
        Lookup::NotLoaded => "not loaded".into(),
    };
    let cvss = matcher
        .index
        .ratings(&f.finding)
        .cvss
        .iter()
        .filter_map(|s| s.base_score)
        .max_by_key(|s| s.tenths())
        .map_or_else(|| "none published".into(), |s| s.to_string());
    FindingRow {
        id: f.id,
        host_id: f.host.to_string(),
        host: host.to_owned(),
        vulnerability: f.finding.vulnerability.clone(),
        advisories: f.finding.advisories.clone(),
        package: f.finding.package.clone(),
        installed: f.finding.installed.clone(),
        fixed: f
            .finding
            .fixed
            .clone()
            .unwrap_or_else(|| "no fix yet".into()),
        class,
        class_css,
        standing,
        standing_css,
        due: when_or(f.classification.due_at, "no due date"),
        why_class,
        explanation: f.finding.explanation.clone(),
        kev,
        epss,
        cvss,
        first_seen: when(f.first_seen),
        closed: when_or(f.closed_at, ""),
        fixed_version: f
            .fixed_version
            .clone()
            .unwrap_or_else(|| "package removed".into()),
        exception: v.exception.map(|e| e.number).unwrap_or_default(),
    }
}

/// The names of the hosts of `findings`, read in one query.
async fn host_names(
    state: &AppState,
    findings: &[StoredFinding],
) -> Result<HashMap<Uuid, String>, ApiError> {
    let mut ids: Vec<Uuid> = findings.iter().map(|f| f.host).collect();
    ids.sort();
    ids.dedup();
    Ok(state
        .store
        .get_hosts(&ids)
        .await?
        .into_iter()
        .map(|h| (h.id, h.facts.hostname))
        .collect())
}

struct PackageRow {
    name: String,
    version: String,
    arch: String,
    source: String,
}

struct JobRow {
    id: String,
    kind: String,
    state: String,
    created: String,
    created_by: String,
    finished: String,
}

#[derive(Template)]
#[template(path = "host.html")]
struct HostPage {
    chrome: Chrome,
    host: HostRow,
    facts: Vec<(&'static str, String)>,
    reboot_reasons: Vec<String>,
    standing_reason: String,
    pkg: String,
    packages: Vec<PackageRow>,
    packages_total: usize,
    packages_shown_limit: usize,
    inventory_updated: String,
    findings: Vec<FindingRow>,
    history: Vec<FindingRow>,
    jobs: Vec<JobRow>,
}

/// How many packages, closed findings and jobs the host page shows.
const PACKAGES_SHOWN: usize = 500;
const HISTORY_SHOWN: u32 = 100;
const JOBS_SHOWN: u32 = 25;

/// `GET /hosts/{id}`.
pub(crate) async fn host(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id = path_id(id)?;
    let p = Params::parse(raw.as_deref())?;
    p.only(&["pkg"])?;
    let pkg = p.get("pkg").unwrap_or_default();
    let now = clock::now();
    let scope = caller.scope();
    let r = host_record(&state, &scope, id).await?;
    let h = &r.host;
    let matcher = state.matcher();
    let open = ListedFindings {
        items: r.open,
        next_after: None,
        in_force: r.in_force,
    };
    let name = h.facts.hostname.clone();
    let mut findings: Vec<FindingRow> = open
        .items
        .iter()
        .map(|f| finding_row(&open, f, &name, &matcher))
        .collect();
    // The most urgent first: breached, then by due date.
    findings.sort_by(|a, b| {
        (a.standing != "breached", &a.due).cmp(&(b.standing != "breached", &b.due))
    });
    let closed = list_findings_in(
        &state,
        &scope,
        &FindingListing {
            host: Some(id),
            state: FindingStateFilter::Closed,
            limit: HISTORY_SHOWN,
            ..FindingListing::default()
        },
    )
    .await?;
    let mut history: Vec<FindingRow> = closed
        .items
        .iter()
        .map(|f| finding_row(&closed, f, &name, &matcher))
        .collect();
    history.sort_by(|a, b| b.closed.cmp(&a.closed));
    let jobs = state
        .store
        .list_jobs(&JobFilter {
            host: Some(id),
            limit: Some(JOBS_SHOWN),
            ..JobFilter::default()
        })
        .await?
        .into_iter()
        .map(|j| JobRow {
            id: j.id.to_string(),
            kind: j
                .kind
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or("job")
                .to_owned(),
            state: format!("{:?}", j.state).to_lowercase(),
            created: when(j.created_at),
            created_by: j.created_by,
            finished: when_or(j.finished_at, "not yet"),
        })
        .collect();
    let needle = pkg.to_lowercase();
    let all_packages = r
        .inventory
        .as_ref()
        .map(|i| i.inventory.packages.as_slice())
        .unwrap_or_default();
    let matching: Vec<_> = all_packages
        .iter()
        .filter(|p| {
            needle.is_empty()
                || p.name.to_lowercase().contains(&needle)
                || p.source_name
                    .as_deref()
                    .is_some_and(|s| s.to_lowercase().contains(&needle))
        })
        .collect();
    let packages_total = matching.len();
    let packages = matching
        .into_iter()
        .take(PACKAGES_SHOWN)
        .map(|p| PackageRow {
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone().unwrap_or_default(),
            source: p.source_name.clone().unwrap_or_default(),
        })
        .collect();
    let facts = vec![
        ("Host name", h.facts.hostname.clone()),
        ("Id", h.id.to_string()),
        ("Operating system", os_of(h)),
        (
            "Ecosystem",
            h.ecosystem.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Architecture",
            h.facts.arch.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Kernel",
            h.facts.kernel.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("Booted", when_or(h.facts.boot_time, "unknown")),
        ("Group", h.group.clone()),
        ("Ring", h.ring.clone().unwrap_or_else(|| "none".into())),
        (
            "Labels",
            if h.labels.is_empty() {
                "none".into()
            } else {
                h.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("Enrolled", when(h.enrolled_at)),
        (
            "Last seen",
            format!(
                "{} ({})",
                when_or(h.last_seen, "never"),
                ago(h.last_seen, now)
            ),
        ),
        ("Standing", h.state.as_str().to_owned()),
        (
            "Reboot required",
            if h.facts.reboot_required { "yes" } else { "no" }.to_owned(),
        ),
    ];
    Ok(render(&HostPage {
        chrome: Chrome::new(&caller, "hosts"),
        host: host_row(h, open.items.len() as u64, now),
        facts,
        reboot_reasons: h.facts.reboot_reasons.clone(),
        standing_reason: if h.state == HostState::Active {
            String::new()
        } else {
            h.state_reason.clone().unwrap_or_default()
        },
        pkg,
        packages,
        packages_total,
        packages_shown_limit: PACKAGES_SHOWN,
        inventory_updated: when_or(
            r.inventory.as_ref().map(|i| i.updated_at),
            "no inventory yet",
        ),
        findings,
        history,
        jobs,
    }))
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsPage {
    chrome: Chrome,
    p: Params,
    classes: Vec<view::Choice>,
    standings: Vec<view::Choice>,
    states: Vec<view::Choice>,
    rows: Vec<FindingRow>,
    next: Option<String>,
    first: Option<String>,
}

const FINDING_FILTERS: &[&str] = &[
    "vulnerability",
    "advisory",
    "class",
    "standing",
    "group",
    "host",
    "state",
    "after",
    "limit",
];

/// What the findings page's query string asks for.
pub(crate) fn finding_listing(p: &Params) -> Result<FindingListing, ApiError> {
    p.only(FINDING_FILTERS)?;
    let state = match p.get("state").as_deref() {
        None | Some("open") => FindingStateFilter::Open,
        Some("closed") => FindingStateFilter::Closed,
        Some("excepted") => FindingStateFilter::Excepted,
        Some(other) => {
            return Err(ApiError::InvalidParameter(format!(
                "state {other:?}: open, closed or excepted"
            )));
        }
    };
    Ok(FindingListing {
        host: p.parsed::<Uuid>("host", "a host id")?,
        class: p
            .get("class")
            .as_deref()
            .map(view::parse_class)
            .transpose()?,
        due_before: None,
        state,
        vulnerability: p.get("vulnerability"),
        advisory: p.get("advisory"),
        group: p.get("group"),
        standing: p
            .get("standing")
            .as_deref()
            .map(view::parse_standing)
            .transpose()?,
        after: p.parsed::<i64>("after", "a finding id from the previous page")?,
        limit: p.limit()?.min(MAX_PAGE),
    })
}

/// `GET /findings`.
pub(crate) async fn findings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let p = Params::parse(raw.as_deref())?;
    let listing = finding_listing(&p)?;
    let listed = list_findings_in(&state, &caller.scope(), &listing).await?;
    let names = host_names(&state, &listed.items).await?;
    let matcher = state.matcher();
    let rows = listed
        .items
        .iter()
        .map(|f| {
            let host = names.get(&f.host).map_or("", String::as_str);
            finding_row(&listed, f, host, &matcher)
        })
        .collect();
    let next = listed
        .next_after
        .map(|a| format!("/findings{}", p.with("after", Some(&a.to_string()))));
    let first = listing
        .after
        .map(|_| format!("/findings{}", p.with("after", None)));
    Ok(render(&FindingsPage {
        chrome: Chrome::new(&caller, "findings"),
        classes: view::choices(
            "any",
            &[
                ("emergency", "Emergency"),
                ("high", "High"),
                ("medium", "Medium"),
                ("low", "Low"),
                ("not_applicable", "Not applicable"),
            ],
            p.value("class"),
        ),
        standings: view::choices(
            "any",
            &[
                ("breached", "breached"),
                ("due_soon", "due soon"),
                ("on_time", "on time"),
                ("excepted", "excepted"),
            ],
            p.value("standing"),
        ),
        states: view::choices(
            "open",
            &[
                ("closed", "closed (patch history)"),
                ("excepted", "under an exception"),
            ],
            p.value("state"),
        ),
        p,
        rows,
        next,
        first,
    }))
}

#[derive(Template)]
#[template(path = "advisory.html")]
struct AdvisoryPage {
    chrome: Chrome,
    id: String,
    summary: String,
    details: String,
    published: String,
    modified: String,
    aliases: Vec<String>,
    /// Each vulnerability the advisory names, with a link to its findings.
    vulnerabilities: Vec<String>,
    affected: Vec<(String, String, String)>,
    severities: Vec<String>,
    references: Vec<String>,
    open_findings: usize,
    more: bool,
}

/// `GET /advisories/{id}`.
pub(crate) async fn advisory(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> PageResult {
    let Path(id) = id.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let a = crate::routes::fleet::advisory(&state, &id).await?;
    let mut vulnerabilities: Vec<String> = std::iter::once(a.id.clone())
        .chain(a.aliases.iter().cloned())
        .chain(a.upstream.iter().cloned())
        .collect();
    vulnerabilities.sort();
    vulnerabilities.dedup();
    // The open findings of the caller's scope the advisory is behind (a page's worth).
    let listed = list_findings_in(
        &state,
        &caller.scope(),
        &FindingListing {
            advisory: Some(a.id.clone()),
            limit: MAX_PAGE,
            ..FindingListing::default()
        },
    )
    .await?;
    let open_findings = listed.items.len();
    let more = listed.next_after.is_some();
    let affected = a
        .affected
        .iter()
        .filter_map(|x| {
            let p = x.package.as_ref()?;
            let ranges = x
                .ranges
                .iter()
                .flat_map(|r| r.events.iter())
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            Some((p.ecosystem.clone(), p.name.clone(), ranges))
        })
        .take(200)
        .collect();
    Ok(render(&AdvisoryPage {
        chrome: Chrome::new(&caller, "findings"),
        summary: a.summary.clone().unwrap_or_default(),
        details: a.details.clone().unwrap_or_default(),
        published: when_or(a.published, "unknown"),
        modified: when_or(a.modified, "unknown"),
        aliases: a.aliases.clone(),
        severities: a
            .severity
            .iter()
            .map(|s| match s.base_score {
                Some(b) => format!("{} ({b})", s.vector),
                None => s.vector.clone(),
            })
            .collect(),
        // Only web links: an advisory's text must not become a script link on the page.
        references: a
            .references
            .iter()
            .filter(|r| r.url.starts_with("https://") || r.url.starts_with("http://"))
            .map(|r| r.url.clone())
            .take(50)
            .collect(),
        id: a.id,
        vulnerabilities,
        affected,
        open_findings,
        more,
    }))
}
