//! Advisory feed sources as the store keeps them: what each source is (name, kind, where it is
//! fetched from, how often, how often it is expected to change), where its fetching stands
//! (the validators of the last response, the last attempt, success and update, the last
//! error), the history of its runs with the records they rejected, and the enrichment
//! documents (KEV, EPSS) that are not advisories but must outlive a restart.
//!
//! The rules both backends and the server agree on are pure functions here: when a source is
//! due ([`FeedSource::is_due`]), when it is stale ([`FeedSource::freshness`]), and the checks
//! on a source's definition ([`FeedSourceSpec::check`]).

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::advisory::{Advisory, EpssScore, KevEntry};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::limits::{check_len, check_opt};

/// The longest feed location (a URL or a path).
pub const MAX_LOCATION: usize = 2048;
/// The longest validator (ETag, Last-Modified) or content hash kept.
pub const MAX_VALIDATOR: usize = 512;
/// The longest cursor (a source's own bookkeeping, such as the CSAF documents' last update).
pub const MAX_CURSOR: usize = 1024 * 1024;
/// How many rejected records a run keeps by name; the count is kept in full.
pub const MAX_RUN_REJECTS: usize = 200;
/// The longest error text a run or a source keeps.
pub const MAX_ERROR: usize = 4096;
/// The largest enrichment document (the full EPSS file is about 20 MB as JSON).
pub const MAX_ENRICHMENT_JSON: usize = 256 * 1024 * 1024;
/// How many runs are kept per source; older ones are deleted as new ones are recorded.
pub const RUNS_KEPT: i64 = 100;

/// What a source publishes, and so which parser reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// OSV records: an `all.zip`, a directory or a single record.
    Osv,
    /// CSAF 2.0: a provider's `provider-metadata.json` (and the feeds it names), or a
    /// directory of documents.
    Csaf,
    /// An Alpine secdb file.
    Alpine,
    /// The Debian security tracker's JSON.
    Debian,
    /// CISA's Known Exploited Vulnerabilities catalogue.
    Kev,
    /// FIRST's EPSS scores (CSV, or gzip-compressed CSV).
    Epss,
    /// A vendor without a feed: nothing is fetched; an operator checks by hand (P2's monthly
    /// check) and enters advisories by hand.
    Manual,
}

impl SourceKind {
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Osv,
        SourceKind::Csaf,
        SourceKind::Alpine,
        SourceKind::Debian,
        SourceKind::Kev,
        SourceKind::Epss,
        SourceKind::Manual,
    ];

    /// The word used in configuration files, the database and `KIND:PATH` specs.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Osv => "osv",
            SourceKind::Csaf => "csaf",
            SourceKind::Alpine => "alpine",
            SourceKind::Debian => "debian",
            SourceKind::Kev => "kev",
            SourceKind::Epss => "epss",
            SourceKind::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether its records are enrichment (joined by CVE) rather than advisories.
    pub fn is_enrichment(self) -> bool {
        matches!(self, SourceKind::Kev | SourceKind::Epss)
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who defined a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceOrigin {
    /// The server's configuration file (brought in line with it at every start).
    Config,
    /// An operator, through the API.
    Operator,
    /// `patchwarden feeds import` made it for files imported by hand.
    Import,
}

impl SourceOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceOrigin::Config => "config",
            SourceOrigin::Operator => "operator",
            SourceOrigin::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<SourceOrigin> {
        [
            SourceOrigin::Config,
            SourceOrigin::Operator,
            SourceOrigin::Import,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// What a source is: the part a person defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSourceSpec {
    /// Unique; lower-case letters, digits, `-`, `_` and `.`.
    pub name: String,
    pub kind: SourceKind,
    /// An `http://` or `https://` URL, or an absolute path; empty for a manual source.
    pub location: String,
    /// How often it is fetched; `None`: only when asked (a sync, an import).
    pub interval_secs: Option<u64>,
    /// How often it is expected to change; a source that has not updated for longer is
    /// stale. `None`: never stale.
    pub expected_period_secs: Option<u64>,
    pub origin: SourceOrigin,
}

impl FeedSourceSpec {
    /// Refuses a definition the server could not act on.
    pub fn check(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(StoreError::Invalid {
                field: "feed source",
                reason,
            })
        };
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        {
            return invalid(format!(
                "name {:?} must be 1 to 64 lower-case letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        check_len("feed source location", &self.location, MAX_LOCATION)?;
        let remote = self.location.starts_with("https://") || self.location.starts_with("http://");
        match self.kind {
            SourceKind::Manual if !self.location.is_empty() => {
                return invalid(format!(
                    "{}: a manual source is not fetched; leave its location empty",
                    self.name
                ));
            }
            SourceKind::Manual => {}
            _ if self.location.is_empty() && self.origin != SourceOrigin::Import => {
                return invalid(format!(
                    "{}: a {} source needs a URL or a path",
                    self.name, self.kind
                ));
            }
            _ if !self.location.is_empty() && !remote && !self.location.starts_with('/') => {
                return invalid(format!(
                    "{}: location {:?} is neither an http(s) URL nor an absolute path",
                    self.name, self.location
                ));
            }
            _ => {}
        }
        if self.kind == SourceKind::Manual && self.interval_secs.is_some() {
            return invalid(format!(
                "{}: a manual source is not fetched, so it has no interval",
                self.name
            ));
        }
        if self.interval_secs == Some(0) || self.expected_period_secs == Some(0) {
            return invalid(format!(
                "{}: an interval or expected period of zero seconds",
                self.name
            ));
        }
        // Stored as signed 64-bit seconds.
        let fits = |v: Option<u64>| v.is_none_or(|v| i64::try_from(v).is_ok());
        if !fits(self.interval_secs) || !fits(self.expected_period_secs) {
            return invalid(format!("{}: a period too long to store", self.name));
        }
        Ok(())
    }
}

/// What is kept from the last response for the next conditional request, and for the
/// comparison of content that a server sent again in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchValidators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// SHA-256 of the content last imported (of the fetched bytes, or of a directory's
    /// listing): equal content is not imported again, whatever the headers said.
    pub content_sha256: Option<String>,
    /// The source's own bookkeeping (a CSAF provider's documents and their update times).
    pub cursor: Option<String>,
}

impl FetchValidators {
    pub fn check(&self) -> Result<()> {
        check_opt("feed etag", self.etag.as_deref(), MAX_VALIDATOR)?;
        check_opt(
            "feed last-modified",
            self.last_modified.as_deref(),
            MAX_VALIDATOR,
        )?;
        check_opt(
            "feed content hash",
            self.content_sha256.as_deref(),
            MAX_VALIDATOR,
        )?;
        check_opt("feed cursor", self.cursor.as_deref(), MAX_CURSOR)
    }
}

/// A source with where its fetching stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSource {
    pub spec: FeedSourceSpec,
    pub validators: FetchValidators,
    pub created_at: Timestamp,
    /// The last time it was fetched, successfully or not.
    pub last_attempt_at: Option<Timestamp>,
    /// The last time a fetch reached it and read it (new data, or nothing new).
    pub last_success_at: Option<Timestamp>,
    /// The last time it brought new data (or, for a manual source, an operator checked it).
    pub last_updated_at: Option<Timestamp>,
    /// Why the last attempt failed; `None` after a success.
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// An operator asked for a sync at this time, and none has run since.
    pub sync_requested_at: Option<Timestamp>,
    /// Records in force from its last import (advisories, or KEV/EPSS entries).
    pub records: u64,
}

/// Whether a source's data is as recent as its publisher promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Freshness {
    /// No expected period: it is never called stale.
    Unwatched,
    /// Updated within its period; stale from `stale_at` unless it updates.
    Fresh { stale_at: Timestamp },
    /// Not updated since `since` minus its period.
    Stale {
        since: Timestamp,
        last_updated_at: Option<Timestamp>,
    },
}

impl Freshness {
    pub fn is_stale(&self) -> bool {
        matches!(self, Freshness::Stale { .. })
    }
}

fn plus_secs(t: Timestamp, secs: u64) -> Timestamp {
    i64::try_from(secs)
        .ok()
        .and_then(|s| t.checked_add(SignedDuration::from_secs(s)).ok())
        .unwrap_or(Timestamp::MAX)
}

impl FeedSource {
    /// Whether the source is stale at `now`: it has not updated within its expected period,
    /// counted from its last update or, before its first, from when it was defined. A fetch
    /// that finds nothing new does not make a source fresh: the data in force is as old as
    /// its last update, whether the publisher stopped publishing or our fetches fail.
    pub fn freshness(&self, now: Timestamp) -> Freshness {
        let Some(period) = self.spec.expected_period_secs else {
            return Freshness::Unwatched;
        };
        let from = self.last_updated_at.unwrap_or(self.created_at);
        let stale_at = plus_secs(from, period);
        if now > stale_at {
            Freshness::Stale {
                since: stale_at,
                last_updated_at: self.last_updated_at,
            }
        } else {
            Freshness::Fresh { stale_at }
        }
    }

    /// Whether the scheduler should fetch it at `now`: an operator asked since the last
    /// attempt, or its interval has passed since the last attempt (or it was never fetched).
    /// Manual sources are never fetched. After failures the interval is not shortened: a
    /// source that fails is retried at its usual pace, not hammered.
    pub fn is_due(&self, now: Timestamp) -> bool {
        if self.spec.kind == SourceKind::Manual || self.spec.location.is_empty() {
            return false;
        }
        if let Some(asked) = self.sync_requested_at
            && self.last_attempt_at.is_none_or(|a| a < asked)
        {
            return true;
        }
        let Some(interval) = self.spec.interval_secs else {
            return false;
        };
        match self.last_attempt_at {
            None => true,
            Some(last) => now >= plus_secs(last, interval),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// New data was imported and is in force.
    Imported,
    /// The server answered 304 Not Modified.
    NotModified,
    /// The content was fetched again but is the same as the last import's.
    Unchanged,
    /// The fetch or the import failed; the previous data stays in force.
    Failed,
    /// An operator recorded that they checked a manual source.
    Checked,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Imported => "imported",
            RunOutcome::NotModified => "not_modified",
            RunOutcome::Unchanged => "unchanged",
            RunOutcome::Failed => "failed",
            RunOutcome::Checked => "checked",
        }
    }

    pub fn parse(s: &str) -> Option<RunOutcome> {
        [
            RunOutcome::Imported,
            RunOutcome::NotModified,
            RunOutcome::Unchanged,
            RunOutcome::Failed,
            RunOutcome::Checked,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// Whether the run reached the source and read it.
    pub fn reached(self) -> bool {
        !matches!(self, RunOutcome::Failed)
    }
}

/// One run of a source: what was fetched, what was imported, what was rejected and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFeedRun {
    pub started_at: Timestamp,
    pub outcome: RunOutcome,
    /// The HTTP status of the (last) response, for URL sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Bytes read.
    #[serde(default)]
    pub bytes: u64,
    /// Records read (advisories, or KEV/EPSS entries).
    #[serde(default)]
    pub records: u64,
    #[serde(default)]
    pub inserted: u32,
    #[serde(default)]
    pub updated: u32,
    #[serde(default)]
    pub unchanged: u32,
    /// How many records were rejected.
    #[serde(default)]
    pub rejected: u64,
    /// The first [`MAX_RUN_REJECTS`] of them, as `location (id): reason`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejects: Vec<String>,
    /// Why the run failed (or, for a manual check, the operator's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NewFeedRun {
    /// A run that started at `started_at` and ended as `outcome`, with nothing else known yet.
    pub fn new(started_at: Timestamp, outcome: RunOutcome) -> NewFeedRun {
        NewFeedRun {
            started_at,
            outcome,
            http_status: None,
            bytes: 0,
            records: 0,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            rejected: 0,
            rejects: Vec::new(),
            error: None,
        }
    }

    /// Keeps `lines` as the rejects (the first [`MAX_RUN_REJECTS`]) and their count.
    pub fn with_rejects(mut self, lines: Vec<String>) -> NewFeedRun {
        self.rejected = lines.len() as u64;
        self.rejects = lines.into_iter().take(MAX_RUN_REJECTS).collect();
        self
    }

    /// Shortens the texts to what a run keeps (a run is bookkeeping: it must not fail for
    /// being long).
    pub fn bounded(mut self) -> NewFeedRun {
        self.rejects.truncate(MAX_RUN_REJECTS);
        for line in &mut self.rejects {
            truncate(line, MAX_ERROR);
        }
        if let Some(e) = &mut self.error {
            truncate(e, MAX_ERROR);
        }
        self
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary, marking the cut.
pub fn truncate(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(3);
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRun {
    pub id: i64,
    pub source: String,
    pub finished_at: Timestamp,
    pub run: NewFeedRun,
}

/// Enrichment a source brought: kept whole per source and joined by CVE in the matcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnrichmentDoc {
    Kev { entries: Vec<KevEntry> },
    Epss { scores: Vec<(String, EpssScore)> },
}

impl EnrichmentDoc {
    /// How many entries it holds.
    pub fn len(&self) -> usize {
        match self {
            EnrichmentDoc::Kev { entries } => entries.len(),
            EnrichmentDoc::Epss { scores } => scores.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One import, applied in one transaction: the advisories upserted, the source's enrichment
/// replaced, the validators kept for the next conditional request, the run recorded — all of
/// it, or (on any error) none of it.
#[derive(Debug, Clone)]
pub struct FeedImport {
    pub source: String,
    pub advisories: Vec<Advisory>,
    /// Replaces the source's enrichment document when given.
    pub enrichment: Option<EnrichmentDoc>,
    pub validators: FetchValidators,
    pub run: NewFeedRun,
}

/// What an import changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedImported {
    pub upsert: crate::AdvisoryUpsert,
    pub run: FeedRun,
    /// The advisory generation after the import.
    pub generation: i64,
}

/// The columns of `feed_sources` in the order [`SourceRow`] reads them, for both backends.
pub const SOURCE_COLUMNS: &str = "name, kind, location, interval_secs, expected_period_secs, \
     origin, created_at, etag, last_modified, content_sha256, cursor, last_attempt_at, \
     last_success_at, last_updated_at, last_error, failures, sync_requested_at, records";

/// A `feed_sources` row as the database holds it; both backends decode it with
/// [`SourceRow::decode`], so they read the same values the same way.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub name: String,
    pub kind: String,
    pub location: String,
    pub interval_secs: Option<i64>,
    pub expected_period_secs: Option<i64>,
    pub origin: String,
    pub created_at: i64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_sha256: Option<String>,
    pub cursor: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_updated_at: Option<i64>,
    pub last_error: Option<String>,
    pub failures: i64,
    pub sync_requested_at: Option<i64>,
    pub records: i64,
}

impl SourceRow {
    pub fn decode(self) -> Result<FeedSource> {
        use crate::codec::{opt_ts_from_db, ts_from_db};
        const T: &str = "feed_sources";
        let key = self.name.clone();
        let corrupt = |what: &str| StoreError::corrupt(T, &key, what);
        let secs = |v: Option<i64>, what: &str| {
            v.map(|v| u64::try_from(v).map_err(|_| corrupt(what)))
                .transpose()
        };
        Ok(FeedSource {
            spec: FeedSourceSpec {
                kind: SourceKind::parse(&self.kind).ok_or_else(|| corrupt("kind"))?,
                location: self.location,
                interval_secs: secs(self.interval_secs, "interval_secs")?,
                expected_period_secs: secs(self.expected_period_secs, "expected_period_secs")?,
                origin: SourceOrigin::parse(&self.origin).ok_or_else(|| corrupt("origin"))?,
                name: self.name,
            },
            validators: FetchValidators {
                etag: self.etag,
                last_modified: self.last_modified,
                content_sha256: self.content_sha256,
                cursor: self.cursor,
            },
            created_at: ts_from_db(T, &key, self.created_at)?,
            last_attempt_at: opt_ts_from_db(T, &key, self.last_attempt_at)?,
            last_success_at: opt_ts_from_db(T, &key, self.last_success_at)?,
            last_updated_at: opt_ts_from_db(T, &key, self.last_updated_at)?,
            last_error: self.last_error,
            failures: u32::try_from(self.failures).map_err(|_| corrupt("failures"))?,
            sync_requested_at: opt_ts_from_db(T, &key, self.sync_requested_at)?,
            records: u64::try_from(self.records).map_err(|_| corrupt("records"))?,
        })
    }
}

/// A spec's periods as the database stores them (checked to fit by [`FeedSourceSpec::check`]).
pub fn secs_to_db(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

/// The columns of `feed_runs` that [`decode_run`] reads.
pub const RUN_COLUMNS: &str = "id, source, finished_at, outcome, body";

/// A `feed_runs` row.
pub fn decode_run(
    id: i64,
    source: String,
    finished_at: i64,
    outcome: &str,
    body: &str,
) -> Result<FeedRun> {
    const T: &str = "feed_runs";
    let run: NewFeedRun = crate::codec::from_json(T, &id, body)?;
    if RunOutcome::parse(outcome) != Some(run.outcome) {
        return Err(StoreError::corrupt(
            T,
            id,
            "outcome differs from its details",
        ));
    }
    Ok(FeedRun {
        id,
        source,
        finished_at: crate::codec::ts_from_db(T, &id, finished_at)?,
        run,
    })
}

/// The audit entry's `after` for an import whose caller left it empty: what it changed.
pub fn import_summary(import: &FeedImport, upsert: &crate::AdvisoryUpsert) -> serde_json::Value {
    serde_json::json!({
        "source": import.source,
        "inserted": upsert.inserted,
        "updated": upsert.updated,
        "unchanged": upsert.unchanged,
        "enrichment": import.enrichment.as_ref().map(EnrichmentDoc::len),
        "rejected": import.run.rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn source(kind: SourceKind, interval: Option<u64>, period: Option<u64>) -> FeedSource {
        FeedSource {
            spec: FeedSourceSpec {
                name: "kev".into(),
                kind,
                location: if kind == SourceKind::Manual {
                    String::new()
                } else {
                    "https://example.invalid/kev.json".into()
                },
                interval_secs: interval,
                expected_period_secs: period,
                origin: SourceOrigin::Config,
            },
            validators: FetchValidators::default(),
            created_at: t("2026-01-01T00:00:00Z"),
            last_attempt_at: None,
            last_success_at: None,
            last_updated_at: None,
            last_error: None,
            failures: 0,
            sync_requested_at: None,
            records: 0,
        }
    }

    #[test]
    fn a_source_is_stale_after_its_period_without_an_update() {
        let week = 7 * 24 * 3600;
        let mut s = source(SourceKind::Kev, Some(3600), Some(week));
        // Never updated: counted from its creation.
        assert_eq!(
            s.freshness(t("2026-01-08T00:00:00Z")),
            Freshness::Fresh {
                stale_at: t("2026-01-08T00:00:00Z")
            }
        );
        assert_eq!(
            s.freshness(t("2026-01-08T00:00:01Z")),
            Freshness::Stale {
                since: t("2026-01-08T00:00:00Z"),
                last_updated_at: None
            }
        );
        s.last_updated_at = Some(t("2026-01-05T00:00:00Z"));
        // A successful fetch that found nothing new does not refresh it.
        s.last_success_at = Some(t("2026-01-20T00:00:00Z"));
        assert!(s.freshness(t("2026-01-20T00:00:00Z")).is_stale());
        assert!(!s.freshness(t("2026-01-12T00:00:00Z")).is_stale());
        s.spec.expected_period_secs = None;
        assert_eq!(s.freshness(t("2030-01-01T00:00:00Z")), Freshness::Unwatched);
    }

    #[test]
    fn due_after_the_interval_or_when_asked_and_never_for_manual_sources() {
        let mut s = source(SourceKind::Kev, Some(3600), None);
        assert!(s.is_due(t("2026-01-01T00:00:00Z")));
        s.last_attempt_at = Some(t("2026-01-01T00:00:00Z"));
        assert!(!s.is_due(t("2026-01-01T00:59:59Z")));
        assert!(s.is_due(t("2026-01-01T01:00:00Z")));
        s.sync_requested_at = Some(t("2026-01-01T00:10:00Z"));
        assert!(s.is_due(t("2026-01-01T00:10:00Z")));
        s.last_attempt_at = Some(t("2026-01-01T00:10:01Z"));
        assert!(!s.is_due(t("2026-01-01T00:20:00Z")));
        s.spec.interval_secs = None;
        assert!(!s.is_due(t("2027-01-01T00:00:00Z")));
        let m = source(SourceKind::Manual, None, Some(30 * 24 * 3600));
        assert!(!m.is_due(t("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn definitions_the_server_cannot_act_on_are_refused() {
        let ok = source(SourceKind::Kev, Some(3600), None).spec;
        assert!(ok.check().is_ok());
        let bad = |f: fn(&mut FeedSourceSpec)| {
            let mut s = ok.clone();
            f(&mut s);
            s.check().unwrap_err().to_string()
        };
        assert!(bad(|s| s.name = "KEV feed".into()).contains("lower-case"));
        assert!(bad(|s| s.location = "ftp://x/y".into()).contains("neither"));
        assert!(bad(|s| s.location = String::new()).contains("needs a URL"));
        assert!(bad(|s| s.interval_secs = Some(0)).contains("zero"));
        assert!(bad(|s| s.interval_secs = Some(u64::MAX)).contains("too long"));
        assert!(
            bad(|s| {
                s.kind = SourceKind::Manual;
                s.interval_secs = None;
            })
            .contains("leave its location empty")
        );
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let mut s = "é".repeat(10);
        truncate(&mut s, 8);
        assert!(s.len() <= 8 && s.ends_with('…'), "{s}");
        let run = NewFeedRun::new(t("2026-01-01T00:00:00Z"), RunOutcome::Failed)
            .with_rejects((0..500).map(|i| format!("r{i}")).collect());
        assert_eq!(run.rejected, 500);
        assert_eq!(run.rejects.len(), MAX_RUN_REJECTS);
    }
}
