//! `ApiError`: the one place that decides what a client is told about a failure and what only
//! the log gets.
//!
//! A refusal that is part of the protocol (a bad signature, an expired token, a delta against
//! the wrong base) goes to the client as a problem document with its code and a detail that
//! helps the caller and reveals nothing it does not already know. An internal failure (the
//! database, a bug) goes to the client as "internal" with no detail, and to the log with its
//! cause. A job or host that belongs to someone else is "not found", exactly like one that
//! does not exist, so a credential cannot probe for other hosts' objects. No secret (token,
//! key, signature) is ever part of a detail or a log line.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patchwarden_api::v1::problem::{CONTENT_TYPE, Problem, ProblemCode};
use patchwarden_store::{EnrollRejection, StoreError};

/// Every way an API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed body: {0}")]
    MalformedBody(String),
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("unsupported media type or encoding: {0}")]
    Unsupported(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// The signature did not verify; `reason` is for the log only.
    #[error("signature invalid: {reason}")]
    SignatureInvalid { reason: String },
    #[error("timestamp {skew} s away from the server's clock")]
    ClockSkew { skew: i64 },
    #[error("replayed request")]
    Replayed,
    #[error("enrollment refused: {0}")]
    EnrollmentRefused(EnrollRejection),
    #[error("machine id already enrolled as host {existing}")]
    MachineIdConflict { existing: String },
    #[error("host identity conflict: {0}")]
    HostIdentityConflict(String),
    #[error("host retired")]
    HostRetired,
    #[error("inventory base mismatch: {0}")]
    InventoryBaseMismatch(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("job conflict: {0}")]
    JobConflict(String),
    #[error("overloaded")]
    Overloaded { retry_after: u64 },
    #[error("not ready: {0}")]
    NotReady(String),
    /// An operator whose roles do not admit the route, or a change a rule forbids.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("CSRF token missing or wrong")]
    CsrfRejected,
    #[error("the one-time password must be changed first")]
    PasswordChangeRequired,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("login locked for {retry_after} s")]
    LoginLocked { retry_after: u64 },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The exception rules refuse a change of an exception's state (409).
    #[error("exception refused: {0}")]
    ExceptionRefused(String),
    /// The exception rules refuse a request as it stands (422).
    #[error("exception request refused: {0}")]
    ExceptionInvalid(String),
    /// Anything else: the cause is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Enrollment(r) => ApiError::EnrollmentRefused(r),
            StoreError::Replay { .. } => ApiError::Replayed,
            // A second enrolment with one key: the enrolment request sent again (to another
            // server sharing the database, or after a restart, where the nonce is not known).
            StoreError::AlreadyExists {
                kind: patchwarden_store::host::PUBLIC_KEY_KIND,
                ..
            } => ApiError::Replayed,
            StoreError::NotFound { .. } | StoreError::NotJobOwner { .. } => ApiError::NotFound,
            // The check-in handler turns a refused counter into a quarantine before it gets
            // here; should one slip through, it is still the conflict it means.
            StoreError::CounterNotIncreased { host, seq, last } => {
                ApiError::HostIdentityConflict(format!(
                    "check-in counter {seq} of host {host} after {last}: two machines are using \
                     this host's credential"
                ))
            }
            // Only a retired host refuses a change of standing.
            StoreError::HostStateRefused { .. } => ApiError::HostRetired,
            StoreError::JobAlreadyFinished { job, state } => {
                ApiError::JobConflict(format!("job {job} already finished as {state}"))
            }
            // Length and shape checks on values that came from the request: the message names
            // the field and the limit, which is what the caller needs.
            e @ (StoreError::TooLong { .. } | StoreError::Invalid { .. }) => {
                ApiError::MalformedBody(e.to_string())
            }
            StoreError::ExceptionRefused { reason } => ApiError::ExceptionRefused(reason),
            e @ (StoreError::LastAdmin { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::Stale { .. }) => ApiError::Conflict(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    /// What the client sees.
    pub fn problem(&self) -> Problem {
        use ProblemCode as C;
        let (code, status, title, detail): (C, StatusCode, &str, Option<String>) = match self {
            ApiError::MalformedBody(d) => (
                C::MalformedBody,
                StatusCode::BAD_REQUEST,
                "Malformed request body",
                Some(d.clone()),
            ),
            ApiError::PayloadTooLarge { limit } => (
                C::PayloadTooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
                Some(format!("the limit is {limit} bytes")),
            ),
            ApiError::Unsupported(d) => (
                C::UnsupportedMediaType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                Some(d.clone()),
            ),
            ApiError::Unauthenticated(d) => (
                C::Unauthenticated,
                StatusCode::UNAUTHORIZED,
                "Not authenticated",
                Some((*d).to_owned()),
            ),
            // Which check failed (unknown host, bad key, wrong body) stays in the log: telling
            // a forger which part was wrong helps only the forger.
            ApiError::SignatureInvalid { .. } => (
                C::SignatureInvalid,
                StatusCode::UNAUTHORIZED,
                "Request signature invalid",
                None,
            ),
            ApiError::ClockSkew { skew } => (
                C::ClockSkew,
                StatusCode::UNAUTHORIZED,
                "Request timestamp outside the accepted window",
                Some(format!(
                    "the request's time is {skew} s from the server's; check the host's clock"
                )),
            ),
            ApiError::Replayed => (
                C::Replayed,
                StatusCode::UNAUTHORIZED,
                "Request replayed",
                Some("this nonce was already used".into()),
            ),
            ApiError::EnrollmentRefused(r) => (
                C::EnrollmentTokenRefused,
                StatusCode::FORBIDDEN,
                "Enrollment token refused",
                Some(
                    match r {
                        EnrollRejection::Unknown => "the token is not known",
                        EnrollRejection::Expired { .. } => "the token has expired",
                        EnrollRejection::Revoked { .. } => "the token was revoked",
                        EnrollRejection::UsedUp { .. } => "the token has been used up",
                    }
                    .into(),
                ),
            ),
            ApiError::MachineIdConflict { existing } => (
                C::MachineIdConflict,
                StatusCode::CONFLICT,
                "Machine id already enrolled",
                Some(format!(
                    "host {existing} has this machine id: a clone must get its own machine id; \
                     a re-imaged host re-enrolls with --replace, which retires {existing}"
                )),
            ),
            ApiError::HostIdentityConflict(d) => (
                C::HostIdentityConflict,
                StatusCode::CONFLICT,
                "Host identity used from two machines",
                Some(d.clone()),
            ),
            ApiError::HostRetired => (
                C::HostRetired,
                StatusCode::GONE,
                "Host retired",
                Some("this host's enrollment was retired; enroll again".into()),
            ),
            ApiError::InventoryBaseMismatch(d) => (
                C::InventoryBaseMismatch,
                StatusCode::CONFLICT,
                "Delta does not apply to the inventory held",
                Some(d.clone()),
            ),
            ApiError::NotFound => (C::NotFound, StatusCode::NOT_FOUND, "Not found", None),
            ApiError::MethodNotAllowed => (
                C::MethodNotAllowed,
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                None,
            ),
            ApiError::JobConflict(d) => (
                C::JobConflict,
                StatusCode::CONFLICT,
                "Job report conflicts with the recorded result",
                Some(d.clone()),
            ),
            ApiError::Overloaded { .. } => (
                C::Overloaded,
                StatusCode::SERVICE_UNAVAILABLE,
                "Server busy",
                Some("retry after the time in Retry-After".into()),
            ),
            ApiError::NotReady(_) => (
                C::NotReady,
                StatusCode::SERVICE_UNAVAILABLE,
                "Server not ready",
                None,
            ),
            ApiError::Forbidden(d) => (
                C::Forbidden,
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some(d.clone()),
            ),
            ApiError::CsrfRejected => (
                C::CsrfRejected,
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong",
                Some(
                    "a request that changes something with a session cookie carries the \
                     session's CSRF token in X-CSRF-Token (or the csrf_token form field)"
                        .into(),
                ),
            ),
            ApiError::PasswordChangeRequired => (
                C::PasswordChangeRequired,
                StatusCode::FORBIDDEN,
                "Password change required",
                Some("change the one-time password first: PUT /api/v1/me/password".into()),
            ),
            ApiError::InvalidCredentials => (
                C::InvalidCredentials,
                StatusCode::UNAUTHORIZED,
                "Invalid credentials",
                Some("the user name or the password is wrong".into()),
            ),
            ApiError::LoginLocked { .. } => (
                C::LoginLocked,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed logins",
                Some("logins are refused for a while; retry after the time in Retry-After".into()),
            ),
            ApiError::Conflict(d) => (
                C::Conflict,
                StatusCode::CONFLICT,
                "Conflict",
                Some(d.clone()),
            ),
            ApiError::InvalidParameter(d) => (
                C::InvalidParameter,
                StatusCode::BAD_REQUEST,
                "Invalid parameter",
                Some(d.clone()),
            ),
            ApiError::ExceptionRefused(d) => (
                C::ExceptionRefused,
                StatusCode::CONFLICT,
                "Exception refused",
                Some(d.clone()),
            ),
            ApiError::ExceptionInvalid(d) => (
                C::ExceptionRefused,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Exception refused",
                Some(d.clone()),
            ),
            ApiError::Internal(_) => (
                C::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                None,
            ),
        };
        let mut p = Problem::new(code, status.as_u16(), title);
        p.detail = detail;
        p.retry_after = match self {
            ApiError::Overloaded { retry_after } => Some(*retry_after),
            ApiError::NotReady(_) => Some(5),
            ApiError::LoginLocked { retry_after } => Some(*retry_after),
            _ => None,
        };
        p
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        // The log gets the cause, at a level that matches whose fault it is.
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(code = problem.code.as_str(), %cause, "request failed")
            }
            ApiError::NotReady(cause) => {
                tracing::warn!(code = problem.code.as_str(), %cause, "request refused")
            }
            ApiError::SignatureInvalid { reason } => {
                tracing::warn!(code = problem.code.as_str(), %reason, "request refused")
            }
            other => {
                tracing::info!(code = problem.code.as_str(), error = %other, "request refused")
            }
        }
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(secs) = problem.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
