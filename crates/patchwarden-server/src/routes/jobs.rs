//! An agent's jobs: reading one, reporting progress, reporting the result. A job of another
//! host is "not found", exactly like a job that does not exist.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use patchwarden_api::v1::jobs::{
    Job, JobAck, JobKind, JobOutcome, JobProgress, JobResult, JobState, RecordedResult,
};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::{self as store, JobReport};
use uuid::Uuid;

use crate::body::{self, SMALL_BODY};
use crate::error::ApiError;
use crate::metrics::label;
use crate::state::AppState;
use crate::{auth, clock};

/// The longest progress message and result detail kept.
const MAX_MESSAGE: usize = 4096;
const MAX_DETAIL: usize = 64 * 1024;

/// A stored job as the API shows it.
pub(crate) fn to_wire(job: &store::Job) -> Result<Job, ApiError> {
    let kind: JobKind = serde_json::from_value(job.kind.clone()).map_err(|e| {
        ApiError::Internal(format!(
            "stored job {} has a kind outside the API: {e}",
            job.id
        ))
    })?;
    Ok(Job {
        id: job.id.to_string(),
        work: kind,
        state: wire_state(job.state),
        lease_expires_at: job.lease_until,
        attempt: job.attempts,
    })
}

pub(crate) fn wire_state(s: store::JobState) -> JobState {
    match s {
        store::JobState::Queued => JobState::Queued,
        store::JobState::Leased => JobState::Leased,
        store::JobState::Running => JobState::Running,
        store::JobState::Succeeded => JobState::Succeeded,
        store::JobState::Failed => JobState::Failed,
    }
}

/// Authenticates the request and finds the caller's job `id`.
async fn own_job(
    state: &AppState,
    id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    raw: &[u8],
    now: jiff::Timestamp,
) -> Result<(patchwarden_store::Host, store::Job), ApiError> {
    let host = auth::agent(state, method, uri, headers, raw, now).await?;
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound)?;
    match state.store.get_job(id).await? {
        Some(job) if job.host == host.id => Ok((host, job)),
        // Another host's job: refused exactly as a missing one, and logged.
        Some(job) => {
            tracing::warn!(job = %job.id, caller = %host.id, "a host asked for another host's job");
            Err(ApiError::NotFound)
        }
        None => Err(ApiError::NotFound),
    }
}

/// `GET /api/v1/agent/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/agent/jobs/{id}",
    tag = "agent",
    params(("id" = Uuid, Path, description = "The job")),
    responses((status = 200, description = "patchwarden_api::v1::jobs::JobView", body = Object))
)]
pub(crate) async fn get_job(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Job>, ApiError> {
    let now = clock::now();
    let raw = body::read(body, SMALL_BODY).await?;
    let (_, job) = own_job(&state, &id, &method, &uri, &headers, &raw, now).await?;
    to_wire(&job).map(Json)
}

/// `POST /api/v1/agent/jobs/{id}/progress`.
#[utoipa::path(
    post,
    path = "/api/v1/agent/jobs/{id}/progress",
    tag = "agent",
    params(("id" = Uuid, Path, description = "The job")),
    request_body(content = Object, description = "patchwarden_api::v1::jobs::JobProgress"),
    responses((status = 200, description = "Recorded", body = Object))
)]
pub(crate) async fn progress(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<JobAck>, ApiError> {
    let now = clock::now();
    let raw = body::read(body, SMALL_BODY).await?;
    body::identity_only(&headers)?;
    let (host, job) = own_job(&state, &id, &method, &uri, &headers, &raw, now).await?;
    let report: JobProgress = body::json(&raw)?;
    if report.message.len() > MAX_MESSAGE || report.percent.is_some_and(|p| p > 100) {
        return Err(ApiError::MalformedBody(format!(
            "a progress message is at most {MAX_MESSAGE} bytes and a percentage at most 100"
        )));
    }
    let detail = serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
    let recorded = !job.state.is_finished() && job.progress.as_ref() != Some(&detail);
    let audit = AuditEntry::new(
        now,
        Actor::Agent(host.id.to_string()),
        "job.progress",
        format!("job:{}", job.id),
    )
    .after(detail.clone());
    let job = state
        .store
        .report_job(host.id, job.id, JobReport::Progress { detail }, now, audit)
        .await?;
    Ok(Json(JobAck {
        id: job.id.to_string(),
        state: wire_state(job.state),
        recorded,
    }))
}

/// `POST /api/v1/agent/jobs/{id}/result`.
#[utoipa::path(
    post,
    path = "/api/v1/agent/jobs/{id}/result",
    tag = "agent",
    params(("id" = Uuid, Path, description = "The job")),
    request_body(content = Object, description = "patchwarden_api::v1::jobs::JobResult"),
    responses((status = 200, description = "Recorded", body = Object))
)]
pub(crate) async fn result(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<JobAck>, ApiError> {
    let now = clock::now();
    let raw = body::read(body, SMALL_BODY).await?;
    body::identity_only(&headers)?;
    let (host, job) = own_job(&state, &id, &method, &uri, &headers, &raw, now).await?;
    let report: JobResult = body::json(&raw)?;
    if report.detail.len() > MAX_DETAIL {
        return Err(ApiError::MalformedBody(format!(
            "a result detail is at most {MAX_DETAIL} bytes"
        )));
    }
    let outcome = report.outcome;
    let recorded_result = RecordedResult {
        outcome,
        detail: report.detail,
        changes: report.changes,
        checks: report.checks,
        reboot_required: report.reboot_required,
    };
    let detail =
        serde_json::to_value(&recorded_result).map_err(|e| ApiError::Internal(e.to_string()))?;
    let recorded = !(job.state.is_finished() && job.result.as_ref() == Some(&detail));
    let audit = AuditEntry::new(
        now,
        Actor::Agent(host.id.to_string()),
        "job.finish",
        format!("job:{}", job.id),
    )
    .after(detail.clone());
    let job = state
        .store
        .report_job(
            host.id,
            job.id,
            JobReport::Finished {
                success: outcome == JobOutcome::Succeeded,
                detail,
            },
            now,
            audit,
        )
        .await?;
    let outcome_label = match outcome {
        JobOutcome::Succeeded => "succeeded",
        JobOutcome::Failed => "failed",
        JobOutcome::Refused => "refused",
    };
    state
        .metrics
        .job_reports
        .get_or_create(&label("outcome", outcome_label))
        .inc();
    if recorded {
        // A change's rollout may move on (or halt) with this result.
        state.rollout_wake.notify_one();
    }
    Ok(Json(JobAck {
        id: job.id.to_string(),
        state: wire_state(job.state),
        recorded,
    }))
}
