//! Enrollment, check-in and inventory upload.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::agent::{
    CheckInRequest, CheckInResponse, EnrollRequest, EnrollResponse, FindingCounts, HostStanding,
    InventoryAccepted, InventoryUpload, InventoryWanted, Schedule,
};
use patchwarden_api::v1::problem::Problem;
use patchwarden_api::v1::signing::MAX_SKEW_SECS;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::DeltaError;
use patchwarden_store::{CheckIn, CheckedIn, Host, HostState, NewHost, SecretHash, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::body::{self, SMALL_BODY};
use crate::error::ApiError;
use crate::findings::{self, Touched};
use crate::host_state;
use crate::metrics::label;
use crate::state::{AppState, NonceCheck};
use crate::{auth, clock};

fn schedule(state: &AppState) -> Schedule {
    Schedule {
        interval_secs: state.agents.checkin_interval_secs,
        jitter_secs: state.agents.checkin_jitter_secs,
    }
}

fn agent(id: Uuid) -> Actor {
    Actor::Agent(id.to_string())
}

/// `POST /api/v1/agent/enroll`.
#[utoipa::path(
    post,
    path = "/api/v1/agent/enroll",
    tag = "agent",
    description = "Enroll a host with an enrollment token; signed with the key being enrolled \
                   (docs/agent-protocol.md).",
    request_body(content = Object, description = "patchwarden_api::v1::agent::EnrollRequest"),
    responses(
        (status = 200, description = "Enrolled: patchwarden_api::v1::agent::EnrollResponse",
            body = Object),
        (status = 403, description = "The enrollment token is refused", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn enroll(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollResponse>, ApiError> {
    let result = enroll_inner(&state, &method, &uri, &headers, body).await;
    let outcome = match &result {
        Ok(_) => "enrolled",
        Err(e) => e.problem().code.as_str(),
    };
    state
        .metrics
        .enrollments
        .get_or_create(&label("outcome", outcome))
        .inc();
    result.map(Json)
}

async fn enroll_inner(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<EnrollResponse, ApiError> {
    let now = clock::now();
    let raw = body::read(body, SMALL_BODY).await?;
    body::identity_only(headers)?;
    let sig = auth::read_headers(headers, now)?;
    if sig.host.is_some() {
        return Err(ApiError::Unauthenticated(
            "an enrollment request names no host",
        ));
    }
    let request: EnrollRequest = body::json(&raw)?;
    // The request is signed with the key being enrolled: the agent holds its private half.
    auth::verify(&sig, &request.public_key, method, uri, &raw)?;
    let expires = sig.timestamp.saturating_add(2 * MAX_SKEW_SECS);
    match state.remember_enroll_nonce(&sig.nonce, expires, now.as_second()) {
        NonceCheck::New => {}
        NonceCheck::Replayed => return Err(ApiError::Replayed),
        NonceCheck::Full => return Err(ApiError::Overloaded { retry_after: 60 }),
    }

    // A machine id that an active host already has: a clone, or a re-imaged host. Never
    // merged: refused, or with `replace` the old host is retired explicitly.
    let mut existing: Vec<Host> = Vec::new();
    if let Some(machine_id) = request
        .facts
        .machine_id
        .as_deref()
        .filter(|m| !m.is_empty())
    {
        existing = state
            .store
            .find_hosts_by_machine_id(machine_id)
            .await?
            .into_iter()
            .filter(|h| h.state != HostState::Retired)
            .collect();
        if let (Some(first), false) = (existing.first(), request.replace) {
            return Err(ApiError::MachineIdConflict {
                existing: first.id.to_string(),
            });
        }
    }

    let id = Uuid::new_v4();
    let audit = AuditEntry::new(now, agent(id), "host.enroll", format!("host:{id}")).after(json!({
        "hostname": request.facts.hostname,
        "machine_id": request.facts.machine_id,
        "ecosystem": request.facts.os.ecosystem,
        "agent_version": request.agent_version,
        "replaces": existing.iter().map(|h| h.id.to_string()).collect::<Vec<_>>(),
    }));
    let host = state
        .store
        .enroll_host(
            SecretHash::of(request.token.0.as_bytes()),
            NewHost {
                id,
                public_key: request.public_key.to_ascii_lowercase(),
                facts: request.facts,
            },
            now,
            audit,
        )
        .await?;
    let mut replaced = None;
    for old in &existing {
        host_state::retire(
            state.store.as_ref(),
            old.id,
            &format!("replaced-by:{id}"),
            agent(id),
            now,
        )
        .await?;
        replaced = Some(old.id.to_string());
    }
    tracing::info!(host = %host.id, group = %host.group, replaced = ?replaced, "host enrolled");
    Ok(EnrollResponse {
        host_id: host.id.to_string(),
        group: host.group,
        schedule: schedule(state),
        replaced,
        server_time: now,
    })
}

/// Quarantines `host` for `reason` and returns the error that says so.
async fn quarantine(state: &AppState, host: &Host, reason: String, now: Timestamp) -> ApiError {
    if let Err(e) = host_state::quarantine(state.store.as_ref(), host.id, &reason, now).await {
        return e.into();
    }
    tracing::warn!(host = %host.id, %reason, "host quarantined");
    ApiError::HostIdentityConflict(reason)
}

/// `POST /api/v1/agent/check-in`.
#[utoipa::path(
    post,
    path = "/api/v1/agent/check-in",
    tag = "agent",
    request_body(content = Object, description = "patchwarden_api::v1::agent::CheckInRequest"),
    responses((status = 200, description = "patchwarden_api::v1::agent::CheckInResponse",
        body = Object))
)]
pub(crate) async fn check_in(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CheckInResponse>, ApiError> {
    let result = check_in_inner(&state, &method, &uri, &headers, body).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.problem().code.as_str(),
    };
    state
        .metrics
        .check_ins
        .get_or_create(&label("outcome", outcome))
        .inc();
    result.map(Json)
}

async fn check_in_inner(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<CheckInResponse, ApiError> {
    let now = clock::now();
    let raw = body::read(body, SMALL_BODY).await?;
    body::identity_only(headers)?;
    let signed = auth::signed(state, method, uri, headers, &raw, now).await?;
    let host = &signed.host;
    let request: CheckInRequest = body::json(&raw)?;

    if let (Some(known), Some(sent)) = (&host.machine_id, &request.facts.machine_id)
        && known != sent
    {
        let reason = format!(
            "the host's credential was used from a machine with another machine id \
             ({sent}, enrolled as {known})"
        );
        return Err(quarantine(state, host, reason, now).await);
    }
    let lease_until = now
        .checked_add(SignedDuration::from_secs(i64::from(
            state.agents.job_lease_secs,
        )))
        .unwrap_or(now);
    let facts_audit = AuditEntry::new(
        now,
        agent(host.id),
        "host.facts",
        format!("host:{}", host.id),
    )
    .after(serde_json::to_value(&request.facts).unwrap_or_default());
    let lease_audit = AuditEntry::new(
        now,
        agent(host.id),
        "job.lease",
        format!("host:{}", host.id),
    );
    // The nonce, the counter, the facts and the lease in one transaction. The counter is kept
    // in the store: one seen by another server sharing the database, or by this one before a
    // restart, is refused as well. Jobs leased to this host earlier and not finished go out
    // again: the answer that first carried them may never have arrived (a crash, a lost
    // connection), and a lease that nobody knows about would only expire.
    let checked_in = state
        .store
        .check_in(CheckIn {
            host: host.id,
            nonce: signed.nonce.clone(),
            nonce_expires_at: signed.nonce_expires_at,
            seq: request.seq,
            facts: request.facts,
            lease_until,
            max_jobs: state.agents.max_jobs_per_checkin,
            now,
            facts_audit,
            lease_audit,
        })
        .await;
    let CheckedIn { host, jobs: all } = match checked_in {
        Ok(c) => c,
        Err(StoreError::CounterNotIncreased { seq, last, .. }) => {
            let reason = format!(
                "check-in counter {seq} after {last}: two machines are using this host's \
                 credential (a copied agent state directory)"
            );
            return Err(quarantine(state, &signed.host, reason, now).await);
        }
        Err(e) => return Err(e.into()),
    };
    let inventory = match host.inventory_digest {
        None => InventoryWanted::Full,
        Some(d) if d == request.packages => InventoryWanted::Nothing,
        Some(d) => InventoryWanted::Delta { base: d },
    };
    let jobs = all
        .iter()
        .map(super::jobs::to_wire)
        .collect::<Result<Vec<_>, _>>()?;
    let standing = standing(state, &host, now).await?;
    Ok(CheckInResponse {
        inventory,
        jobs,
        schedule: schedule(state),
        standing,
        server_time: now,
    })
}

/// The host's standing, from `host` as the check-in left it (its row carries its open and
/// fixable counts); marks a new host's baseline as met the first time it is current: its
/// inventory matched and no finding with a released fix open (P19).
async fn standing(state: &AppState, host: &Host, now: Timestamp) -> Result<HostStanding, ApiError> {
    let open = host.open_findings;
    let mut new_host = host.baseline_met_at.is_none();
    if new_host && host.inventory_digest.is_some() && host.open_fixable == 0 {
        host_state::baseline_met(state.store.as_ref(), host.id, now).await?;
        new_host = false;
    }
    Ok(HostStanding {
        new_host,
        open_findings: open,
    })
}

/// `POST /api/v1/agent/inventory`.
#[utoipa::path(
    post,
    path = "/api/v1/agent/inventory",
    tag = "agent",
    request_body(content = Object,
        description = "patchwarden_api::v1::agent::InventoryUpload, gzip allowed"),
    responses((status = 200, description = "patchwarden_api::v1::agent::InventoryAccepted",
        body = Object))
)]
pub(crate) async fn inventory(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<InventoryAccepted>, ApiError> {
    let result = inventory_inner(&state, &method, &uri, &headers, body).await;
    let (kind, outcome) = match &result {
        Ok((kind, _)) => (*kind, "ok"),
        Err(e) => ("unknown", e.problem().code.as_str()),
    };
    state
        .metrics
        .uploads
        .get_or_create(&vec![
            ("kind", kind.to_owned()),
            ("outcome", outcome.to_owned()),
        ])
        .inc();
    result.map(|(_, accepted)| Json(accepted))
}

async fn inventory_inner(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, InventoryAccepted), ApiError> {
    let now = clock::now();
    // The signature covers the bytes as sent, so it is checked before decompressing: an
    // unauthenticated caller cannot make the server inflate anything.
    let raw = body::read(body, state.limits.max_body_bytes).await?;
    // The nonce is recorded before anything is acted on: with the upload, in its transaction,
    // when it changes the inventory (one transaction an upload, not two), and on its own
    // before any other answer that acts or tells the host's state. A request refused for its
    // body acts on nothing and records nothing.
    let auth::Signed {
        host,
        nonce,
        nonce_expires_at,
    } = auth::signed(state, method, uri, headers, &raw, now).await?;
    let record_nonce = || {
        state
            .store
            .record_nonce(host.id, &nonce, nonce_expires_at, now)
    };
    let decoded = body::decode(headers, &raw, state.limits.max_inventory_bytes)?;
    let upload: InventoryUpload = body::json(&decoded)?;
    drop(decoded);
    let old = state.store.get_inventory(host.id).await?;
    let (kind, new) = match upload {
        InventoryUpload::Full { mut inventory } => {
            inventory.canonicalize();
            ("full", inventory)
        }
        InventoryUpload::Delta { delta } => {
            let Some(old) = &old else {
                return Err(ApiError::InventoryBaseMismatch(
                    "the server holds no inventory for this host: send a full one".into(),
                ));
            };
            let new =
                patchwarden_core::inventory::apply(&old.inventory, &delta).map_err(
                    |e| match e {
                        DeltaError::BaseMismatch { .. }
                        | DeltaError::MissingPackage { .. }
                        | DeltaError::ResultMismatch { .. } => {
                            ApiError::InventoryBaseMismatch(e.to_string())
                        }
                    },
                )?;
            ("delta", new)
        }
    };
    if let (Some(known), Some(sent)) = (&host.machine_id, &new.host.machine_id)
        && known != sent
    {
        let reason = format!(
            "an inventory from a machine with another machine id ({sent}, enrolled as {known})"
        );
        record_nonce().await?;
        return Err(quarantine(state, &host, reason, now).await);
    }
    // The inventory held already (a re-inventory of an unchanged host, or a retry whose first
    // attempt completed): nothing changes, and nothing is appended to the audit chain.
    if let Some(held) = &old
        && held.inventory == new
    {
        record_nonce().await?;
        // The host's row, read to authenticate, carries its open count: nothing more is read
        // for an unchanged host.
        let open = host.open_findings;
        return Ok((
            kind,
            InventoryAccepted {
                packages: held.digest,
                findings: FindingCounts {
                    open,
                    opened: 0,
                    closed: 0,
                },
            },
        ));
    }
    let touched = Touched::between(old.as_ref().map(|s| &s.inventory), &new);
    // Once: the audit entry records it and the store keeps it.
    let digest = patchwarden_core::inventory::PackagesDigest::of(&new.packages);
    // The findings and the inventory in one transaction: should the server die before it
    // commits, the agent's retry finds the old digest and sends the change again; a new
    // inventory never stands with stale findings.
    let audit = AuditEntry::new(
        now,
        agent(host.id),
        "inventory.replace",
        format!("host:{}", host.id),
    )
    .before(old.as_ref().map_or(serde_json::Value::Null, |o| {
        findings::inventory_summary(&o.inventory, &o.digest)
    }))
    .after(findings::inventory_summary(&new, &digest));
    let (sync, digest) = findings::apply_inventory(
        state,
        &host,
        &new,
        digest,
        &touched,
        agent(host.id),
        (&nonce, nonce_expires_at),
        now,
        audit,
    )
    .await?;
    Ok((
        kind,
        InventoryAccepted {
            packages: digest,
            findings: FindingCounts {
                open: u64::from(sync.kept) + u64::from(sync.opened),
                opened: u64::from(sync.opened),
                closed: u64::from(sync.closed),
            },
        },
    ))
}
