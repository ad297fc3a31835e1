//! The operator API over the advisory feeds and the triage queue: where each source stands,
//! asking for a sync, recording the manual check of a vendor without a feed, importing a file
//! by hand, entering an advisory by hand, and classifying the queue's items.
//!
//! The handlers only translate: every change goes through the server's feed machinery
//! (`crate::feeds`), which imports atomically, audits with the operator as the actor and
//! matches the concerned hosts again — the same code the scheduler and `patchwarden feeds`
//! run, so the API cannot import differently from them.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use http_body_util::BodyExt;
use jiff::Timestamp;
use patchwarden_api::v1::feeds::{
    AdvisoryQuery, FeedFreshness, FeedKind, FeedRunView, FeedSourceDetail, FeedSourceView,
    ImportOutcome, ImportQuery, ManualCheck, ReviewState, TriageClassification, TriageItemView,
    TriagePage, TriageQuery,
};
use patchwarden_api::v1::fleet::{DEFAULT_PAGE, MAX_PAGE};
use patchwarden_core::triage::ReviewStatus;
use patchwarden_store::feed::{FeedRun, FeedSource, Freshness, RunOutcome, SourceKind};
use patchwarden_store::triage::{TriageFilter, TriageItem};
use tokio::io::AsyncWriteExt;

use crate::access::Caller;
use crate::body::{self, SMALL_BODY};
use crate::clock;
use crate::error::ApiError;
use crate::feeds::{self, FeedsError, MAX_MANUAL_ADVISORY, Synced, fetch::WorkFile, parse};
use crate::routes::fleet::{class, criticality};
use crate::state::AppState;

/// How many recent runs a source's detail shows.
const RUNS_SHOWN: u32 = 20;

/// How many rejected records an answer names (the run keeps its own bounded list).
const REJECTS_SHOWN: usize = 20;

/// The longest source name taken from a path or a query (the store checks names too; this
/// keeps an absurd one from reaching it or the log).
const MAX_NAME: usize = 128;

pub(crate) fn feed_kind(k: SourceKind) -> FeedKind {
    match k {
        SourceKind::Osv => FeedKind::Osv,
        SourceKind::Csaf => FeedKind::Csaf,
        SourceKind::Alpine => FeedKind::Alpine,
        SourceKind::Debian => FeedKind::Debian,
        SourceKind::Kev => FeedKind::Kev,
        SourceKind::Epss => FeedKind::Epss,
        SourceKind::Manual => FeedKind::Manual,
    }
}

fn source_kind(k: FeedKind) -> SourceKind {
    match k {
        FeedKind::Osv => SourceKind::Osv,
        FeedKind::Csaf => SourceKind::Csaf,
        FeedKind::Alpine => SourceKind::Alpine,
        FeedKind::Debian => SourceKind::Debian,
        FeedKind::Kev => SourceKind::Kev,
        FeedKind::Epss => SourceKind::Epss,
        FeedKind::Manual => SourceKind::Manual,
    }
}

/// A source as listed, its freshness judged at `now`.
pub(crate) fn source_view(s: &FeedSource, now: Timestamp) -> FeedSourceView {
    let (freshness, stale_at) = match s.freshness(now) {
        Freshness::Unwatched => (FeedFreshness::Unwatched, None),
        Freshness::Fresh { stale_at } => (FeedFreshness::Fresh, Some(stale_at)),
        Freshness::Stale { since, .. } => (FeedFreshness::Stale, Some(since)),
    };
    FeedSourceView {
        name: s.spec.name.clone(),
        kind: feed_kind(s.spec.kind),
        origin: s.spec.origin.as_str().to_owned(),
        location: s.spec.location.clone(),
        interval_secs: s.spec.interval_secs,
        expected_period_secs: s.spec.expected_period_secs,
        freshness,
        stale_at,
        last_attempt_at: s.last_attempt_at,
        last_success_at: s.last_success_at,
        last_updated_at: s.last_updated_at,
        last_error: s.last_error.clone(),
        failures: s.failures,
        sync_requested_at: s.sync_requested_at,
        records: s.records,
    }
}

fn run_view(r: &FeedRun) -> FeedRunView {
    FeedRunView {
        id: r.id,
        started_at: r.run.started_at,
        finished_at: r.finished_at,
        outcome: r.run.outcome.as_str().to_owned(),
        message: r.run.error.clone(),
        records: r.run.records,
        rejects: r.run.rejects.iter().take(REJECTS_SHOWN).cloned().collect(),
    }
}

fn outcome(source: &str, kind: SourceKind, synced: &Synced) -> ImportOutcome {
    let run = &synced.run.run;
    ImportOutcome {
        source: source.to_owned(),
        kind: feed_kind(kind),
        outcome: match run.outcome {
            RunOutcome::Imported => "imported",
            _ => "unchanged",
        }
        .to_owned(),
        records: run.records,
        changed: u64::from(run.inserted) + u64::from(run.updated),
        hosts_rematched: synced.hosts as u64,
        rejects: run.rejects.iter().take(REJECTS_SHOWN).cloned().collect(),
    }
}

/// The feed machinery's refusals as problem documents. `invalid` says what a refusal of the
/// request's content is: a malformed body for an upload, a conflict with the source's kind
/// for a sync or a check.
fn feeds_error(e: FeedsError, invalid: fn(String) -> ApiError) -> ApiError {
    match e {
        FeedsError::UnknownSource(_) => ApiError::NotFound,
        FeedsError::Invalid(why) => invalid(why),
        FeedsError::Store(e) => e.into(),
        FeedsError::Refresh(why) => ApiError::Internal(why),
    }
}

fn source_name(name: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    checked_name(name)
}

fn checked_name(name: String) -> Result<String, ApiError> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidParameter(format!(
            "a source name is 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(name)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::InvalidParameter(e.body_text()))
}

/// Every feed source with its freshness now.
#[utoipa::path(
    get,
    path = "/api/v1/feeds",
    tag = "feeds",
    responses((status = 200, description = "The sources, by name", body = Vec<FeedSourceView>))
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<Vec<FeedSourceView>>, ApiError> {
    Ok(Json(sources(&state).await?))
}

/// Every feed source with its freshness now: the API's list and the pages'.
pub(crate) async fn sources(state: &AppState) -> Result<Vec<FeedSourceView>, ApiError> {
    let now = clock::now();
    let sources = state.store.feed_sources().await?;
    Ok(sources.iter().map(|s| source_view(s, now)).collect())
}

/// One source with its recent runs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/feeds/{name}",
    tag = "feeds",
    params(("name" = String, Path, description = "The source")),
    responses(
        (status = 200, description = "The source and its runs", body = FeedSourceDetail),
        (status = 404, description = "No such source"),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<FeedSourceDetail>, ApiError> {
    let name = source_name(name)?;
    let source = state
        .store
        .get_feed_source(&name)
        .await?
        .ok_or(ApiError::NotFound)?;
    let runs = state.store.feed_runs(&name, RUNS_SHOWN).await?;
    Ok(Json(FeedSourceDetail {
        source: source_view(&source, clock::now()),
        runs: runs.iter().map(run_view).collect(),
    }))
}

/// Asks for the source to be fetched at once; the scheduler of the server holding the feed
/// lease runs it (this server's is woken).
#[utoipa::path(
    post,
    path = "/api/v1/feeds/{name}/sync",
    tag = "feeds",
    params(("name" = String, Path, description = "The source")),
    responses(
        (status = 202, description = "The request is recorded", body = FeedSourceView),
        (status = 404, description = "No such source"),
        (status = 409, description = "A manual source, or one without a location: not fetched"),
    )
)]
pub(crate) async fn sync(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<FeedSourceView>), ApiError> {
    let name = source_name(name)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(request_sync(&state, &caller, name).await?),
    ))
}

/// Asks for a sync of the source `name`: the API's and the feeds page's.
pub(crate) async fn request_sync(
    state: &AppState,
    caller: &Caller,
    name: String,
) -> Result<FeedSourceView, ApiError> {
    let name = checked_name(name)?;
    let source = state
        .store
        .get_feed_source(&name)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Refused here rather than recorded: the scheduler never fetches such a source, so the
    // request would stay pending for ever.
    if source.spec.kind == SourceKind::Manual || source.spec.location.is_empty() {
        return Err(ApiError::Conflict(format!(
            "{name} is not fetched: {}",
            if source.spec.kind == SourceKind::Manual {
                "it is a manual source (record a check, or enter an advisory)"
            } else {
                "it has no location (import its files)"
            }
        )));
    }
    let now = clock::now();
    let s = feeds::request_sync(state, &name, caller.actor(), now)
        .await
        .map_err(|e| feeds_error(e, ApiError::Conflict))?;
    Ok(source_view(&s, now))
}

/// Records that a person checked a manual source's vendor (P2's monthly check): the source
/// counts as updated now.
#[utoipa::path(
    post,
    path = "/api/v1/feeds/{name}/check",
    tag = "feeds",
    params(("name" = String, Path, description = "The manual source")),
    request_body = ManualCheck,
    responses(
        (status = 200, description = "Checked", body = FeedSourceView),
        (status = 404, description = "No such source"),
        (status = 409, description = "Not a manual source"),
    )
)]
pub(crate) async fn check(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<FeedSourceView>, ApiError> {
    let name = source_name(name)?;
    let request: ManualCheck = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok(Json(
        record_check(&state, &caller, name, &request.note).await?,
    ))
}

/// Records the manual check of the source `name`: the API's and the feeds page's.
pub(crate) async fn record_check(
    state: &AppState,
    caller: &Caller,
    name: String,
    note: &str,
) -> Result<FeedSourceView, ApiError> {
    let name = checked_name(name)?;
    if note.trim().is_empty() {
        return Err(ApiError::MalformedBody(
            "note: say what was checked and found".into(),
        ));
    }
    let now = clock::now();
    let s = feeds::record_check(state, &name, note.trim(), caller.actor(), now)
        .await
        .map_err(|e| feeds_error(e, ApiError::Conflict))?;
    Ok(source_view(&s, now))
}

/// Writes an upload to a work file as it arrives, refusing it past `limit` bytes (the file
/// is removed with the returned guard, or at once on a refusal).
async fn receive(body: Body, dir: &std::path::Path, limit: u64) -> Result<WorkFile, ApiError> {
    let internal = |e: std::io::Error| ApiError::Internal(format!("the upload's work file: {e}"));
    tokio::fs::create_dir_all(dir).await.map_err(internal)?;
    let work = WorkFile {
        path: dir.join(format!("{}.upload", uuid::Uuid::new_v4())),
    };
    let mut file = tokio::fs::File::create(&work.path)
        .await
        .map_err(internal)?;
    let mut body = body;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::MalformedBody(format!("the body could not be read: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len() as u64);
        if total > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        file.write_all(&data).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    if total == 0 {
        return Err(ApiError::MalformedBody(
            "the body is empty: send the file".into(),
        ));
    }
    Ok(work)
}

/// Imports a file sent as the body (an air-gapped site's OSV zip, a CSAF document, an Alpine
/// secdb, Debian tracker JSON, KEV JSON or EPSS CSV) through the same atomic import as a
/// fetch. Content that cannot be imported is refused and the data in force is kept.
#[utoipa::path(
    post,
    path = "/api/v1/feeds/import",
    tag = "feeds",
    params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file"),
    responses(
        (status = 200, description = "Imported (or unchanged)", body = ImportOutcome),
        (status = 400, description = "Not a feed file, or nothing in it could be imported"),
        (status = 413, description = "Larger than feeds.max_import_bytes"),
    )
)]
pub(crate) async fn import(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<ImportQuery>, QueryRejection>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<ImportOutcome>, ApiError> {
    let q = query(q)?;
    let source = q.source.map(checked_name).transpose()?;
    // The work file is parsed where it lies: a compressed transfer would need decompressing to
    // a second file within its own limit; the feed files are compressed already where it pays.
    body::identity_only(&headers)?;
    let upload = receive(
        body,
        &state.feeds.work_dir,
        state.feeds.config.max_import_bytes,
    )
    .await?;
    // Named as the parsers expect (`….zip`, `….json.xz`, `….csv.gz`), from the first bytes.
    let kind = q.kind.map(source_kind);
    let mut head = Vec::with_capacity(8);
    {
        use tokio::io::AsyncReadExt;
        let f = tokio::fs::File::open(&upload.path)
            .await
            .map_err(|e| ApiError::Internal(format!("the upload's work file: {e}")))?;
        f.take(8)
            .read_to_end(&mut head)
            .await
            .map_err(|e| ApiError::Internal(format!("the upload's work file: {e}")))?;
    }
    let name = parse::download_name("", &head, kind.unwrap_or(SourceKind::Osv));
    let named = WorkFile {
        path: state
            .feeds
            .work_dir
            .join(format!("{}-{name}", uuid::Uuid::new_v4())),
    };
    tokio::fs::rename(&upload.path, &named.path)
        .await
        .map_err(|e| ApiError::Internal(format!("the upload's work file: {e}")))?;
    drop(upload);
    let synced = feeds::import_path_as(
        &state,
        &named.path,
        Some(&format!("upload/{name}")),
        kind,
        source.as_deref(),
        caller.actor(),
        clock::now(),
    )
    .await
    // The work file's path means nothing to the caller: the reasons name "the upload".
    .map_err(|e| match e {
        FeedsError::Invalid(why) => {
            ApiError::MalformedBody(why.replace(&named.path.display().to_string(), "the upload"))
        }
        other => feeds_error(other, ApiError::MalformedBody),
    })?;
    drop(named);
    let source = synced.run.source.clone();
    let kind = state
        .store
        .get_feed_source(&source)
        .await?
        .map_or(kind.unwrap_or(SourceKind::Osv), |s| s.spec.kind);
    Ok(Json(outcome(&source, kind, &synced)))
}

/// Enters one advisory written by hand in the OSV model (a vendor without a feed) into a
/// manual source (`source`, default `manual`), validated as a fetched OSV record is; the hosts it names are
/// matched again and a new one that affects the fleet enters the triage queue.
#[utoipa::path(
    post,
    path = "/api/v1/advisories",
    tag = "feeds",
    params(AdvisoryQuery),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "One OSV record"),
    responses(
        (status = 200, description = "Entered", body = ImportOutcome),
        (status = 400, description = "Not a valid OSV advisory"),
        (status = 413, description = "Larger than 1 MiB"),
    )
)]
pub(crate) async fn enter(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<AdvisoryQuery>, QueryRejection>,
    body: Body,
) -> Result<Json<ImportOutcome>, ApiError> {
    let source = query(q)?.source.map(checked_name).transpose()?;
    let document = body::read(body, MAX_MANUAL_ADVISORY as u64).await?;
    let synced = feeds::enter_advisory(
        &state,
        source.as_deref(),
        &document,
        caller.actor(),
        clock::now(),
    )
    .await
    .map_err(|e| feeds_error(e, ApiError::MalformedBody))?;
    Ok(Json(outcome(
        &synced.run.source.clone(),
        SourceKind::Manual,
        &synced,
    )))
}

fn review(item: &TriageItem, now: Timestamp) -> ReviewState {
    match item.status(now) {
        ReviewStatus::Pending { .. } => ReviewState::Pending,
        ReviewStatus::Overdue { .. } => ReviewState::Overdue,
        ReviewStatus::Decided { on_time: true, .. } => ReviewState::DecidedOnTime,
        ReviewStatus::Decided { on_time: false, .. } => ReviewState::DecidedLate,
    }
}

fn triage_view(item: &TriageItem, now: Timestamp) -> TriageItemView {
    let d = item.decision.as_ref();
    TriageItemView {
        id: item.id,
        vulnerability: item.vulnerability.clone(),
        advisories: item.advisories.clone(),
        summary: item.summary.clone(),
        arrived_at: item.arrived_at,
        due_at: item.due_at,
        review: review(item, now),
        classification: d.map(|d| criticality(d.class)),
        reason: d.map(|d| d.reason.clone()),
        decided_by: d.map(|d| d.decided_by.clone()),
        decided_at: d.map(|d| d.decided_at),
    }
}

/// The triage queue: new advisories that affect the fleet, with their review clock.
#[utoipa::path(
    get,
    path = "/api/v1/triage",
    tag = "triage",
    params(TriageQuery),
    responses((status = 200, description = "A page of the queue, by id", body = TriagePage))
)]
pub(crate) async fn list_triage(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    q: Result<Query<TriageQuery>, QueryRejection>,
) -> Result<Json<TriagePage>, ApiError> {
    let q = query(q)?;
    Ok(Json(triage_page(&state, &q).await?))
}

/// A page of the triage queue: the API's and the triage page's.
pub(crate) async fn triage_page(state: &AppState, q: &TriageQuery) -> Result<TriagePage, ApiError> {
    let limit = match q.limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => n,
        n => {
            return Err(ApiError::InvalidParameter(format!(
                "limit {n}: between 1 and {MAX_PAGE}"
            )));
        }
    };
    let now = clock::now();
    let overdue = q.overdue == Some(true);
    if overdue && q.pending == Some(false) {
        return Err(ApiError::InvalidParameter(
            "overdue items are pending ones: overdue=true with pending=false lists nothing".into(),
        ));
    }
    let items = state
        .store
        .list_triage(&TriageFilter {
            pending: if overdue { Some(true) } else { q.pending },
            // Pending and due before now: overdue, as the review status counts it.
            due_before: overdue.then_some(now),
            vulnerability: None,
            after_id: q.after,
            // One more than the page, to know whether another page follows.
            limit: Some(limit + 1),
        })
        .await?;
    let next_after = (items.len() > limit as usize)
        .then(|| items.get(limit as usize - 1).map(|i| i.id))
        .flatten();
    Ok(TriagePage {
        items: items
            .iter()
            .take(limit as usize)
            .map(|i| triage_view(i, now))
            .collect(),
        next_after,
    })
}

/// Classifies a queued vulnerability (or calls it not applicable), with why. The decision
/// becomes the policy's manual override on every finding of the vulnerability, which are
/// matched again at once.
#[utoipa::path(
    post,
    path = "/api/v1/triage/{id}/classify",
    tag = "triage",
    params(("id" = i64, Path, description = "The queue item")),
    request_body = TriageClassification,
    responses(
        (status = 200, description = "Classified", body = TriageItemView),
        (status = 400, description = "No reason given"),
        (status = 404, description = "No such item"),
    )
)]
pub(crate) async fn classify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Body,
) -> Result<Json<TriageItemView>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let request: TriageClassification = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok(Json(classify_item(&state, &caller, id, request).await?))
}

/// Classifies the queue's item `id`: the API's and the triage page's.
pub(crate) async fn classify_item(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: TriageClassification,
) -> Result<TriageItemView, ApiError> {
    if state.store.get_triage(id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let now = clock::now();
    let (item, _hosts) = feeds::triage::classify(
        state,
        id,
        class(request.classification),
        &request.reason,
        caller.actor(),
        now,
    )
    .await
    .map_err(|e| feeds_error(e, ApiError::MalformedBody))?;
    Ok(triage_view(&item, now))
}
