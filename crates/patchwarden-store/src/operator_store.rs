//! The part of the [`Store`](crate::Store) that keeps operators: users, sessions and API
//! tokens (see [`operator`](crate::operator) for the records and the rules). A trait of its
//! own, which `Store` requires, so that the operator methods sit together and apart from the
//! fleet's.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use uuid::Uuid;

use crate::{
    ApiToken, LockoutPolicy, NewApiToken, NewSession, NewUser, Result, SecretHash, Session, User,
    UserChange,
};

/// Users, sessions and API tokens. Every changing method follows the store's rule: `now` and
/// the audit entry go in, and the entry is appended in the same transaction as the change.
#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Creates a user. Fails with [`crate::StoreError::AlreadyExists`] when the id or the user name
    /// is taken.
    async fn create_user(&self, user: NewUser, now: Timestamp, audit: AuditEntry) -> Result<User>;

    async fn get_user(&self, id: Uuid) -> Result<Option<User>>;

    async fn find_user(&self, username: &str) -> Result<Option<User>>;

    /// Every user, by user name.
    async fn list_users(&self) -> Result<Vec<User>>;

    /// Changes a user (see [`crate::operator::decide_user_change`]): a change that changes nothing
    /// appends nothing; one that would leave no enabled admin fails with
    /// [`crate::StoreError::LastAdmin`]; a new password or a disabled user ends the user's sessions in
    /// the same transaction. The entry's `before` and `after` are filled in when the caller
    /// left them empty.
    async fn update_user(
        &self,
        id: Uuid,
        change: UserChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User>;

    /// Counts a failed login of the user (see [`crate::operator::after_failed_login`]); the audit
    /// entry is appended only when this failure locks the user.
    async fn record_failed_login(
        &self,
        id: Uuid,
        policy: LockoutPolicy,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User>;

    /// Creates a session after a successful login, and clears the user's failed logins.
    async fn create_session(
        &self,
        session: NewSession,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Session>;

    /// The session whose secret hashes to `id_hash`, expired or not.
    async fn get_session(&self, id_hash: SecretHash) -> Result<Option<Session>>;

    /// Ends a session (a logout); returns whether it existed. Appends only when it did.
    async fn delete_session(
        &self,
        id_hash: SecretHash,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool>;

    /// Deletes the sessions expired at `now`; returns how many. Bookkeeping, not audited: an
    /// expired session is refused whether or not it was deleted.
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    /// Creates an API token; refuses roles its user does not hold, or a disabled user.
    async fn create_api_token(
        &self,
        token: NewApiToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken>;

    /// The token whose secret hashes to `secret_hash`, usable or not.
    async fn find_api_token(&self, secret_hash: SecretHash) -> Result<Option<ApiToken>>;

    /// Every API token (of `user`, when given), oldest first.
    async fn list_api_tokens(&self, user: Option<Uuid>) -> Result<Vec<ApiToken>>;

    /// Revokes an API token (again: changes nothing, appends nothing).
    async fn revoke_api_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken>;
}
