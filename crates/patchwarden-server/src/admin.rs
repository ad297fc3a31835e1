//! What an administrator on the server's machine does directly against the store: create and
//! revoke enrollment tokens, queue a job for a host. The operator API with roles and sessions
//! comes with issue 8; until then these are reached through `patchwarden enrollment-token …`
//! (local, with the database URL) and by the testkit, and each change is in the audit chain
//! like every other.

use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::jobs::JobKind;
use patchwarden_api::v1::signing::hex;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::{
    EnrollmentToken, Job, NewEnrollmentToken, NewJob, SecretHash, Store, StoreError,
};
use serde_json::json;
use uuid::Uuid;

/// The prefix of every enrollment token's secret, so that one found in a log or a paste is
/// recognisable (and a secret scanner can look for it).
pub const TOKEN_PREFIX: &str = "pwe_";

/// What a new token needs.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub group: String,
    pub valid_for: SignedDuration,
    pub max_uses: u32,
    pub note: Option<String>,
}

/// Creates an enrollment token; returns it and its secret, which is shown once and stored
/// only as a hash.
pub async fn create_enrollment_token(
    store: &dyn Store,
    request: TokenRequest,
    actor: Actor,
    now: Timestamp,
) -> Result<(EnrollmentToken, String), StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Invalid {
        field: "token secret",
        reason: format!("no random numbers: {e}"),
    })?;
    let secret = format!("{TOKEN_PREFIX}{}", hex(&bytes));
    let id = Uuid::new_v4();
    let expires_at = now
        .checked_add(request.valid_for)
        .map_err(|_| StoreError::Invalid {
            field: "token validity",
            reason: "too long".into(),
        })?;
    let created_by = actor.to_string();
    let audit = AuditEntry::new(
        now,
        actor,
        "enrollment_token.create",
        format!("enrollment-token:{id}"),
    )
    .after(json!({
        "group": request.group,
        "expires_at": expires_at,
        "max_uses": request.max_uses,
        "note": request.note,
    }));
    let token = store
        .create_enrollment_token(
            NewEnrollmentToken {
                id,
                secret_hash: SecretHash::of(secret.as_bytes()),
                group: request.group,
                expires_at,
                max_uses: request.max_uses,
                note: request.note,
                created_by,
            },
            now,
            audit,
        )
        .await?;
    Ok((token, secret))
}

/// Revokes an enrollment token.
pub async fn revoke_enrollment_token(
    store: &dyn Store,
    id: Uuid,
    actor: Actor,
    now: Timestamp,
) -> Result<EnrollmentToken, StoreError> {
    let audit = AuditEntry::new(
        now,
        actor,
        "enrollment_token.revoke",
        format!("enrollment-token:{id}"),
    );
    store.revoke_enrollment_token(id, now, audit).await
}

/// Queues a job for a host. The kind is one of the API's closed set, so nothing else can be
/// queued.
pub async fn queue_job(
    store: &dyn Store,
    host: Uuid,
    kind: &JobKind,
    actor: Actor,
    now: Timestamp,
) -> Result<Job, StoreError> {
    let id = Uuid::new_v4();
    let value = serde_json::to_value(kind).map_err(|e| StoreError::Invalid {
        field: "job kind",
        reason: e.to_string(),
    })?;
    let audit = AuditEntry::new(now, actor.clone(), "job.create", format!("job:{id}"))
        .after(json!({ "host": host, "kind": value }));
    store
        .create_job(
            NewJob {
                id,
                host,
                kind: value,
                created_by: actor.to_string(),
            },
            now,
            audit,
        )
        .await
}
