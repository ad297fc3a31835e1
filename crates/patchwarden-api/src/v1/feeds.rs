//! The operator API's advisory feeds and triage queue: where each configured source stands
//! (its last fetch, whether it is stale), asking for a sync, recording the manual check of a
//! vendor without a feed, importing a file by hand, entering an advisory by hand, and the
//! queue of new advisories that affect the fleet with their 4-hour review clock (seed 004).
//!
//! Routes:
//! - `GET  /api/v1/feeds` → `Vec<FeedSourceView>`
//! - `GET  /api/v1/feeds/{name}` → `FeedSourceDetail` (with its recent runs)
//! - `POST /api/v1/feeds/{name}/sync` → 202 `FeedSourceView` (the request recorded)
//! - `POST /api/v1/feeds/{name}/check` with `ManualCheck` → `FeedSourceView` (manual sources)
//! - `POST /api/v1/feeds/import?kind=K&source=S` with the file as the body (an OSV zip, a CSAF
//!   document, an Alpine secdb, Debian tracker JSON, KEV JSON or EPSS CSV) → `ImportOutcome`
//! - `POST /api/v1/advisories?source=S` with one OSV record as the body → `ImportOutcome`
//! - `GET  /api/v1/triage?pending=true&overdue=true&after=N&limit=N` → `TriagePage`
//! - `POST /api/v1/triage/{id}/classify` with `TriageClassification` → `TriageItemView`

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::v1::fleet::Criticality;

/// The kind of a feed source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    Osv,
    Csaf,
    Alpine,
    Debian,
    Kev,
    Epss,
    /// A vendor without a feed: checked by a person, advisories entered by hand.
    Manual,
}

impl FeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Osv => "osv",
            FeedKind::Csaf => "csaf",
            FeedKind::Alpine => "alpine",
            FeedKind::Debian => "debian",
            FeedKind::Kev => "kev",
            FeedKind::Epss => "epss",
            FeedKind::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<FeedKind> {
        [
            FeedKind::Osv,
            FeedKind::Csaf,
            FeedKind::Alpine,
            FeedKind::Debian,
            FeedKind::Kev,
            FeedKind::Epss,
            FeedKind::Manual,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Whether a source's data is as recent as its publisher promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedFreshness {
    /// No expected period: never called stale.
    Unwatched,
    Fresh,
    /// Not updated within its expected period (or, for a manual source, not checked).
    Stale,
}

/// A feed source as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedSourceView {
    pub name: String,
    pub kind: FeedKind,
    /// `config` (from the server's configuration), `import` (made by an import) or `manual`.
    pub origin: String,
    /// The URL or path it is read from; empty for a manual source.
    pub location: String,
    /// How often it is fetched, in seconds; absent when only fetched on request.
    pub interval_secs: Option<u64>,
    /// How often its publisher updates it, in seconds: stale after this long without one.
    pub expected_period_secs: Option<u64>,
    pub freshness: FeedFreshness,
    /// When it becomes stale (fresh) or became stale (stale).
    pub stale_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// The last time it brought new data (a manual source: the last check).
    pub last_updated_at: Option<Timestamp>,
    /// Why the last attempt failed; absent after a success.
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// A sync was asked for then and has not run yet.
    pub sync_requested_at: Option<Timestamp>,
    /// Records in force from its last import.
    pub records: u64,
}

/// One fetch or import of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedRunView {
    pub id: i64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// `imported`, `not_modified`, `unchanged`, `failed`, `checked` …
    pub outcome: String,
    /// What happened, in a sentence (the error of a failed run).
    pub message: Option<String>,
    /// Records imported by this run.
    pub records: u64,
    /// Records refused, each with its reason (the first few).
    pub rejects: Vec<String>,
}

/// `GET /api/v1/feeds/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedSourceDetail {
    pub source: FeedSourceView,
    /// The most recent runs, newest first.
    pub runs: Vec<FeedRunView>,
}

/// `POST /api/v1/feeds/{name}/check`: a person looked at a vendor without a feed (P2's
/// monthly manual check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualCheck {
    /// What was checked and found ("no new advisories on the vendor's page").
    pub note: String,
}

/// `POST /api/v1/feeds/import` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The file's kind; recognised from the content when left out.
    pub kind: Option<FeedKind>,
    /// The source it belongs to; default `import-KIND`.
    pub source: Option<String>,
}

/// `POST /api/v1/advisories` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdvisoryQuery {
    /// The manual source (the vendor) it is entered into; default `manual`, made when
    /// missing. A source that is not manual is refused.
    pub source: Option<String>,
}

/// What an import (a file, or an advisory entered by hand) changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportOutcome {
    pub source: String,
    pub kind: FeedKind,
    /// `imported` or `unchanged` (the same content as the data in force).
    pub outcome: String,
    /// Records read.
    pub records: u64,
    /// Advisories new or changed.
    pub changed: u64,
    /// Hosts matched again because of it.
    pub hosts_rematched: u64,
    /// Records refused, each with its reason (the first few).
    pub rejects: Vec<String>,
}

/// `GET /api/v1/triage` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TriageQuery {
    /// `true`: only items not classified yet; `false`: only classified ones.
    pub pending: Option<bool>,
    /// Only items past their review time without a classification.
    pub overdue: Option<bool>,
    /// Only items whose id is greater (the previous page's `next_after`).
    pub after: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// Where an item's review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Pending,
    Overdue,
    /// Classified by its review time.
    DecidedOnTime,
    /// Classified after its review time.
    DecidedLate,
}

/// An item of the triage queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriageItemView {
    pub id: i64,
    /// The vulnerability's canonical id (as findings carry it).
    pub vulnerability: String,
    /// The advisories that made it affect the fleet.
    pub advisories: Vec<String>,
    pub summary: Option<String>,
    pub arrived_at: Timestamp,
    /// Its review is due then (4 hours after arrival, seed 004).
    pub due_at: Timestamp,
    pub review: ReviewState,
    pub classification: Option<Criticality>,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
}

/// A page of the triage queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriagePage {
    pub items: Vec<TriageItemView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// `POST /api/v1/triage/{id}/classify`: the classification (or `not_applicable`), with why.
/// It becomes the policy's manual override on the vulnerability's findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriageClassification {
    pub classification: Criticality,
    /// Never empty.
    pub reason: String,
}
