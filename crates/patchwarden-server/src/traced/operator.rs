//! The operator half of the traced store: the same forwarding, one span per call.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::{
    ApiToken, LockoutPolicy, NewApiToken, NewSession, NewUser, OperatorStore, Result, SecretHash,
    Session, User, UserChange,
};
use tracing::Instrument;
use uuid::Uuid;

use super::TracedStore;

#[async_trait]
impl OperatorStore for TracedStore {
    async fn create_user(&self, user: NewUser, now: Timestamp, audit: AuditEntry) -> Result<User> {
        self.inner
            .create_user(user, now, audit)
            .instrument(tracing::debug_span!("store", op = "create_user"))
            .await
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>> {
        self.inner
            .get_user(id)
            .instrument(tracing::debug_span!("store", op = "get_user"))
            .await
    }

    async fn find_user(&self, username: &str) -> Result<Option<User>> {
        self.inner
            .find_user(username)
            .instrument(tracing::debug_span!("store", op = "find_user"))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.inner
            .list_users()
            .instrument(tracing::debug_span!("store", op = "list_users"))
            .await
    }

    async fn update_user(
        &self,
        id: Uuid,
        change: UserChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User> {
        self.inner
            .update_user(id, change, now, audit)
            .instrument(tracing::debug_span!("store", op = "update_user"))
            .await
    }

    async fn record_failed_login(
        &self,
        id: Uuid,
        policy: LockoutPolicy,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<User> {
        self.inner
            .record_failed_login(id, policy, now, audit)
            .instrument(tracing::debug_span!("store", op = "record_failed_login"))
            .await
    }

    async fn create_session(
        &self,
        session: NewSession,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Session> {
        self.inner
            .create_session(session, now, audit)
            .instrument(tracing::debug_span!("store", op = "create_session"))
            .await
    }

    async fn get_session(&self, id_hash: SecretHash) -> Result<Option<Session>> {
        self.inner
            .get_session(id_hash)
            .instrument(tracing::debug_span!("store", op = "get_session"))
            .await
    }

    async fn delete_session(
        &self,
        id_hash: SecretHash,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool> {
        self.inner
            .delete_session(id_hash, now, audit)
            .instrument(tracing::debug_span!("store", op = "delete_session"))
            .await
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.inner
            .purge_expired_sessions(now)
            .instrument(tracing::debug_span!("store", op = "purge_expired_sessions"))
            .await
    }

    async fn create_api_token(
        &self,
        token: NewApiToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken> {
        self.inner
            .create_api_token(token, now, audit)
            .instrument(tracing::debug_span!("store", op = "create_api_token"))
            .await
    }

    async fn find_api_token(&self, secret_hash: SecretHash) -> Result<Option<ApiToken>> {
        self.inner
            .find_api_token(secret_hash)
            .instrument(tracing::debug_span!("store", op = "find_api_token"))
            .await
    }

    async fn list_api_tokens(&self, user: Option<Uuid>) -> Result<Vec<ApiToken>> {
        self.inner
            .list_api_tokens(user)
            .instrument(tracing::debug_span!("store", op = "list_api_tokens"))
            .await
    }

    async fn revoke_api_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<ApiToken> {
        self.inner
            .revoke_api_token(id, now, audit)
            .instrument(tracing::debug_span!("store", op = "revoke_api_token"))
            .await
    }
}
