//! Errors on the wire: RFC 9457 problem documents (`application/problem+json`).
//!
//! Every error response of the API is one of these, with a [`ProblemCode`] that a client can
//! branch on (an agent re-sends a full inventory on `inventory-base-mismatch`, waits on
//! `overloaded`, stops on `host-retired`) and a `detail` for people. What goes into `detail` is
//! decided by the server's single `ApiError` mapping, which keeps internal causes in the log.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of a problem document.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// Why a request failed, as a stable token. Unknown codes from a newer server read as
/// [`ProblemCode::Other`], so that an old agent still gets the status and the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemCode {
    /// The body is not what the route reads (bad JSON, bad gzip, a wrong field).
    MalformedBody,
    /// The body (or its decompressed form) is larger than the route allows.
    PayloadTooLarge,
    /// The body's media type or content encoding is not one the route reads.
    UnsupportedMediaType,
    /// The request carries no agent signature, or names no host.
    Unauthenticated,
    /// The signature does not verify against the host's key, or the host is unknown.
    SignatureInvalid,
    /// The request's timestamp is outside the accepted window.
    ClockSkew,
    /// The request's nonce was already used: a replay.
    Replayed,
    /// The enrollment token is unknown, expired, revoked or used up.
    EnrollmentTokenRefused,
    /// Another enrolled host already has this machine id (a clone, or a re-imaged host):
    /// re-enroll with `--replace` to retire the old record explicitly.
    MachineIdConflict,
    /// Two machines use one host identity (a copied agent state directory): the host is
    /// quarantined until an operator resolves it.
    HostIdentityConflict,
    /// The host was retired (replaced by a re-enrollment, or by an operator).
    HostRetired,
    /// The delta does not apply to the inventory the server holds: send a full inventory.
    InventoryBaseMismatch,
    /// No such object, or not one this caller may see (the two are not told apart).
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The job already has a different result.
    JobConflict,
    /// The server is loaded: retry after the `Retry-After` seconds.
    Overloaded,
    /// The server is not ready (starting, or its database is unreachable).
    NotReady,
    /// Something failed inside the server; the log has the cause.
    Internal,
    /// An operator's credential is valid but its roles do not admit this route (or a rule
    /// forbids the change: nobody changes their own roles).
    Forbidden,
    /// A state-changing request with a session cookie came without its CSRF token, or with
    /// another session's.
    CsrfRejected,
    /// The user name or the password is wrong (which of the two is not told).
    InvalidCredentials,
    /// Too many failed logins for this user or from this address: wait `Retry-After` seconds.
    LoginLocked,
    /// The user's one-time password must be changed (`PUT /api/v1/me/password`) first.
    PasswordChangeRequired,
    /// The change conflicts with what is stored (a name taken, the last admin).
    Conflict,
    /// A path or query parameter is not what the route reads.
    InvalidParameter,
    /// The exception rules refuse the request or the change (no compensating control, too
    /// long a term, the requester approving it, not in the state the change needs …); the
    /// detail says which, in the rules' words.
    ExceptionRefused,
    /// A code this version of the API does not know.
    #[serde(other)]
    Other,
}

impl ProblemCode {
    /// The code as the JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::MalformedBody => "malformed-body",
            ProblemCode::PayloadTooLarge => "payload-too-large",
            ProblemCode::UnsupportedMediaType => "unsupported-media-type",
            ProblemCode::Unauthenticated => "unauthenticated",
            ProblemCode::SignatureInvalid => "signature-invalid",
            ProblemCode::ClockSkew => "clock-skew",
            ProblemCode::Replayed => "replayed",
            ProblemCode::EnrollmentTokenRefused => "enrollment-token-refused",
            ProblemCode::MachineIdConflict => "machine-id-conflict",
            ProblemCode::HostIdentityConflict => "host-identity-conflict",
            ProblemCode::HostRetired => "host-retired",
            ProblemCode::InventoryBaseMismatch => "inventory-base-mismatch",
            ProblemCode::NotFound => "not-found",
            ProblemCode::MethodNotAllowed => "method-not-allowed",
            ProblemCode::JobConflict => "job-conflict",
            ProblemCode::Overloaded => "overloaded",
            ProblemCode::NotReady => "not-ready",
            ProblemCode::Internal => "internal",
            ProblemCode::Forbidden => "forbidden",
            ProblemCode::CsrfRejected => "csrf-rejected",
            ProblemCode::InvalidCredentials => "invalid-credentials",
            ProblemCode::LoginLocked => "login-locked",
            ProblemCode::PasswordChangeRequired => "password-change-required",
            ProblemCode::Conflict => "conflict",
            ProblemCode::InvalidParameter => "invalid-parameter",
            ProblemCode::ExceptionRefused => "exception-refused",
            ProblemCode::Other => "other",
        }
    }
}

/// An RFC 9457 problem document with Patchwarden's `code` extension member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `urn:patchwarden:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary, the same for every occurrence of the code.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request, for people. Never a secret, never an internal cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: ProblemCode,
    /// Seconds to wait before retrying, for `overloaded` and `not-ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(code: ProblemCode, status: u16, title: &str) -> Problem {
        Problem {
            kind: format!("urn:patchwarden:problem:{}", code.as_str()),
            title: title.to_owned(),
            status,
            detail: None,
            code,
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.title,
            self.status,
            self.code.as_str()
        )?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_spell_as_their_json() {
        for code in [
            ProblemCode::MalformedBody,
            ProblemCode::PayloadTooLarge,
            ProblemCode::UnsupportedMediaType,
            ProblemCode::Unauthenticated,
            ProblemCode::SignatureInvalid,
            ProblemCode::ClockSkew,
            ProblemCode::Replayed,
            ProblemCode::EnrollmentTokenRefused,
            ProblemCode::MachineIdConflict,
            ProblemCode::HostIdentityConflict,
            ProblemCode::HostRetired,
            ProblemCode::InventoryBaseMismatch,
            ProblemCode::NotFound,
            ProblemCode::MethodNotAllowed,
            ProblemCode::JobConflict,
            ProblemCode::Overloaded,
            ProblemCode::NotReady,
            ProblemCode::Internal,
            ProblemCode::Forbidden,
            ProblemCode::CsrfRejected,
            ProblemCode::InvalidCredentials,
            ProblemCode::LoginLocked,
            ProblemCode::PasswordChangeRequired,
            ProblemCode::Conflict,
            ProblemCode::InvalidParameter,
            ProblemCode::ExceptionRefused,
            ProblemCode::Other,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn an_unknown_code_from_a_newer_server_still_reads() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:patchwarden:problem:x","title":"X","status":418,"code":"teapot"}"#,
        )
        .unwrap();
        assert_eq!(p.code, ProblemCode::Other);
        assert_eq!(p.status, 418);
    }
}
