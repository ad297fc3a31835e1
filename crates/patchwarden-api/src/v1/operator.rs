//! The operator API's accounts: logging in (a browser session with its CSRF token), the
//! caller's own password, users and their roles, API tokens for scripts, and enrollment tokens.
//!
//! A secret (a password, a session cookie, an API token, an enrollment token) crosses the wire
//! once — in the request that sets it or the answer that makes it — and never comes back in
//! a listing. The server keeps only hashes of them.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The session cookie's name. The `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, has `Path=/` and no `Domain`: a sibling domain cannot plant or read it.
pub const SESSION_COOKIE: &str = "__Host-pw_session";
/// The header that carries the session's CSRF token on every state-changing request.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field that carries it in a form submitted by a browser.
pub const CSRF_FORM_FIELD: &str = "csrf_token";
/// The prefix of every API token's secret, so that one found in a log or a paste is
/// recognisable (a secret scanner can look for it).
pub const API_TOKEN_PREFIX: &str = "pwt_";

/// What an operator may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Officer,
    Approver,
    Authoriser,
    Security,
    Auditor,
    Provider,
}

/// `POST /api/v1/session`: log in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A user as listed: never a password or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub roles: BTreeSet<Role>,
    /// The host groups a provider is scoped to.
    pub groups: BTreeSet<String>,
    pub enabled: bool,
    /// The password was made for the user and must be changed before anything else.
    pub must_change_password: bool,
    /// Logins are refused until then (too many failures).
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    Session,
    ApiToken,
}

/// The answer to a login, and to `GET /api/v1/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub user: UserView,
    pub credential: Credential,
    /// The roles this request acts with (an API token's may be fewer than its user's).
    pub roles: BTreeSet<Role>,
    /// For a browser session: the token to send in `X-CSRF-Token` (or the `csrf_token` form
    /// field) with every request that changes something.
    pub csrf_token: Option<String>,
    pub expires_at: Timestamp,
}

/// `PUT /api/v1/me/password`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}

/// `POST /api/v1/users`: the server makes a one-time password, which the new user changes at
/// first login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub roles: BTreeSet<Role>,
    /// For a provider: the host groups it is scoped to.
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// A new user, with the one-time password shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    pub one_time_password: String,
}

impl std::fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `PUT /api/v1/users/{id}/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesChange {
    pub roles: BTreeSet<Role>,
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// `POST /api/v1/api-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiTokenRequest {
    /// What the token is for.
    pub name: String,
    /// At most the caller's roles; all of them when left out.
    #[serde(default)]
    pub roles: Option<BTreeSet<Role>>,
    /// Days until it expires (1 to the server's maximum); the server's default when left out.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiTokenView {
    pub id: Uuid,
    pub user: Uuid,
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A new API token with its secret (`pwt_…`), shown this once: send it as
/// `Authorization: Bearer <secret>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiToken {
    pub token: ApiTokenView,
    pub secret: String,
}

impl std::fmt::Debug for CreatedApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiToken")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/enrollment-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrollmentTokenRequest {
    /// The host group every host enrolled with it joins.
    pub group: String,
    /// Hours until it expires; the server's `enrollment.token_ttl_hours` when left out.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
    /// How many hosts may enroll with it (default 1).
    #[serde(default)]
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub note: Option<String>,
}

/// An enrollment token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentTokenView {
    pub id: Uuid,
    pub group: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Timestamp,
    pub max_uses: u32,
    pub uses: u32,
    pub revoked_at: Option<Timestamp>,
    pub note: Option<String>,
}

/// A new enrollment token with its secret (`pwe_…`), shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedEnrollmentToken {
    pub token: EnrollmentTokenView,
    pub secret: String,
}

impl std::fmt::Debug for CreatedEnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEnrollmentToken")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_forms() {
        let login = LoginRequest {
            username: "alice".into(),
            password: "hunter2-secret".into(),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
        let change = PasswordChange {
            current_password: "old-secret".into(),
            new_password: "new-secret".into(),
        };
        assert!(!format!("{change:?}").contains("secret"));
    }

    #[test]
    fn unknown_fields_in_a_login_are_refused() {
        let e = serde_json::from_str::<LoginRequest>(
            r#"{"username":"a","password":"b","remember":true}"#,
        );
        assert!(e.is_err());
    }
}
