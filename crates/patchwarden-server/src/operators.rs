//! Operators outside a request: the first admin (`patchwarden admin bootstrap`), and the
//! conversions between the store's operator records and the API's wire types, written out
//! here rather than left to a shared `Serialize`, so either side can change its form.

use std::collections::BTreeSet;

use jiff::Timestamp;
use patchwarden_api::v1::operator::{self as wire, UserView};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::{ApiToken, EnrollmentToken, NewUser, Role, Store, StoreError, User};
use serde_json::json;
use uuid::Uuid;

use crate::secrets;

/// The store's role as the wire spells it.
pub(crate) fn wire_role(r: Role) -> wire::Role {
    match r {
        Role::Admin => wire::Role::Admin,
        Role::Officer => wire::Role::Officer,
        Role::Approver => wire::Role::Approver,
        Role::Authoriser => wire::Role::Authoriser,
        Role::Security => wire::Role::Security,
        Role::Auditor => wire::Role::Auditor,
        Role::Provider => wire::Role::Provider,
    }
}

/// The wire's role as the store keeps it.
pub(crate) fn store_role(r: wire::Role) -> Role {
    match r {
        wire::Role::Admin => Role::Admin,
        wire::Role::Officer => Role::Officer,
        wire::Role::Approver => Role::Approver,
        wire::Role::Authoriser => Role::Authoriser,
        wire::Role::Security => Role::Security,
        wire::Role::Auditor => Role::Auditor,
        wire::Role::Provider => Role::Provider,
    }
}

pub(crate) fn wire_roles(roles: &BTreeSet<Role>) -> BTreeSet<wire::Role> {
    roles.iter().copied().map(wire_role).collect()
}

pub(crate) fn store_roles(roles: &BTreeSet<wire::Role>) -> BTreeSet<Role> {
    roles.iter().copied().map(store_role).collect()
}

pub(crate) fn user_view(u: &User) -> UserView {
    UserView {
        id: u.id,
        username: u.username.clone(),
        roles: wire_roles(&u.roles),
        groups: u.groups.clone(),
        enabled: u.is_enabled(),
        must_change_password: u.must_change_password,
        locked_until: u.locked_until,
        created_at: u.created_at,
        created_by: u.created_by.clone(),
    }
}

pub(crate) fn api_token_view(t: &ApiToken) -> wire::ApiTokenView {
    wire::ApiTokenView {
        id: t.id,
        user: t.user,
        name: t.name.clone(),
        roles: wire_roles(&t.roles),
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
    }
}

pub(crate) fn enrollment_token_view(t: &EnrollmentToken) -> wire::EnrollmentTokenView {
    wire::EnrollmentTokenView {
        id: t.id,
        group: t.group.clone(),
        created_at: t.created_at,
        created_by: t.created_by.clone(),
        expires_at: t.expires_at,
        max_uses: t.max_uses,
        uses: t.uses,
        revoked_at: t.revoked_at,
        note: t.note.clone(),
    }
}

/// Why the first admin could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(
        "{0} operator(s) exist already: bootstrap makes the first admin only (an admin adds \
         users with POST /api/v1/users)"
    )]
    UsersExist(usize),
    #[error("{0}")]
    Secret(#[from] secrets::SecretError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Makes the first admin, `username`, with a one-time password that must be changed at first
/// login; returns the user and the password, which is shown once and stored only as a hash.
/// Refused once any user exists, so it cannot be used to add a second way in. (Two bootstraps
/// racing on an empty database both pass the check; both admins are then real, audited
/// users, which an admin can disable.)
pub async fn bootstrap_admin(
    store: &dyn Store,
    username: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<(User, String), BootstrapError> {
    let existing = store.list_users().await?;
    if !existing.is_empty() {
        return Err(BootstrapError::UsersExist(existing.len()));
    }
    let password = secrets::one_time_password()?;
    let hashed = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || secrets::hash_password(&hashed))
        .await
        .map_err(|e| StoreError::Backend {
            op: "hash password",
            reason: e.to_string(),
        })??;
    let id = Uuid::new_v4();
    let audit = AuditEntry::new(now, actor, "user.create", format!("user:{username}"))
        .after(json!({ "username": username, "roles": ["admin"], "bootstrap": true }));
    let user = store
        .create_user(
            NewUser {
                id,
                username: username.to_owned(),
                password_hash,
                roles: [Role::Admin].into(),
                groups: BTreeSet::new(),
                must_change_password: true,
                created_by: "bootstrap".into(),
            },
            now,
            audit,
        )
        .await?;
    Ok((user, password))
}

/// Whether no operator exists yet (the first-start message says how to make one).
pub async fn no_operator_yet(store: &dyn Store) -> Result<bool, StoreError> {
    Ok(store.list_users().await?.is_empty())
}
