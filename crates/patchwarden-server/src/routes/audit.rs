//! The audit chain for operators: its events a page at a time, and a verification of the whole
//! chain from its first event, which names the first broken link.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use patchwarden_api::v1::fleet::{
    AuditEventView, AuditPage, AuditQuery, AuditVerification, DEFAULT_PAGE, MAX_PAGE,
};
use patchwarden_core::audit::{GENESIS, chain_hash};

use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Events read at a time while verifying.
const VERIFY_BATCH: u32 = 1000;

/// Audit events after a sequence number, in order.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "A page of the chain", body = AuditPage))
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let limit = match q.limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => n,
        n => {
            return Err(ApiError::InvalidParameter(format!(
                "limit {n}: between 1 and {MAX_PAGE}"
            )));
        }
    };
    Ok(Json(
        events_after(&state, q.after.unwrap_or(0), limit).await?,
    ))
}

/// Up to `limit` events after `after`, in order: the API's page and the audit page's reads.
pub(crate) async fn events_after(
    state: &AppState,
    after: i64,
    limit: u32,
) -> Result<AuditPage, ApiError> {
    let mut events = state.store.audit_events(after, limit + 1).await?;
    let next_after = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage {
        items: events
            .into_iter()
            .map(|e| AuditEventView {
                seq: e.seq,
                entry: e.entry,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect(),
        next_after,
    })
}

/// Walks the whole chain and says whether every link holds.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = "The verification", body = AuditVerification))
)]
pub(crate) async fn verify(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    Ok(Json(verify_chain(&state).await?))
}

/// Walks the whole chain: the API's verification and the audit page's.
pub(crate) async fn verify_chain(state: &AppState) -> Result<AuditVerification, ApiError> {
    // The same checks as `patchwarden_core::audit::verify`, a batch at a time so a long chain
    // never sits in memory whole.
    let mut expected = 1i64;
    let mut prev = GENESIS.to_owned();
    let mut broken = None;
    'walk: loop {
        let batch = state.store.audit_events(expected - 1, VERIFY_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            let problem = if e.seq != expected {
                Some(format!(
                    "event {}: expected sequence number {expected} (an event is missing or out \
                     of order)",
                    e.seq
                ))
            } else if e.prev_hash != prev {
                Some(format!(
                    "event {}: its previous hash does not match event {}'s hash",
                    e.seq,
                    e.seq - 1
                ))
            } else if chain_hash(e.seq, &e.prev_hash, &e.entry) != e.hash {
                Some(format!(
                    "event {}: its hash does not match its contents (the event was altered)",
                    e.seq
                ))
            } else {
                None
            };
            if let Some(p) = problem {
                broken = Some(p);
                break 'walk;
            }
            prev = e.hash.clone();
            expected += 1;
        }
    }
    Ok(AuditVerification {
        intact: broken.is_none(),
        events: expected - 1,
        head: prev,
        broken,
    })
}
