//! Logging in and out, the session itself, and changing one's own password.
//!
//! A login answers `invalid-credentials` for an unknown user, a disabled one and a wrong
//! password alike, each after one argon2 verification, so neither the answer nor its timing
//! tells which user names exist. Failures count against the user (in the store: a lock every
//! server sees) and against the source address and unknown names (in memory, `login_limit`).
//! A successful login makes a session whose secret goes to the browser once, in a
//! `__Host-` cookie that is `Secure`, `HttpOnly` and `SameSite=Strict`; the store keeps only
//! its hash. Passwords, cookies and CSRF tokens appear in no log line and no audit entry.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::operator::{
    Credential as WireCredential, LoginRequest, PasswordChange, SESSION_COOKIE, SessionView,
};
use patchwarden_api::v1::problem::Problem;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::operator::MAX_USERNAME;
use patchwarden_store::{LockoutPolicy, NewSession, SecretHash, User, UserChange};
use serde_json::json;

use crate::access::{Caller, Credential, SESSION_PREFIX, source_address};
use crate::body::{self, SMALL_BODY};
use crate::clock;
use crate::error::ApiError;
use crate::login_limit::Key;
use crate::operators::{user_view, wire_roles};
use crate::secrets::{self, SecretError};
use crate::state::AppState;

/// The session cookie that sets `secret` for `ttl` seconds.
pub(crate) fn set_cookie(secret: &str, ttl: u32) -> HeaderValue {
    let value = format!(
        "{SESSION_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={ttl}"
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

/// The cookie that removes the session cookie from the browser.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-pw_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

fn secret_failed(e: SecretError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Runs an argon2 verification on the blocking pool, one of a few at a time: each takes tens
/// of milliseconds and 19 MiB, so a flood of logins queues instead of exhausting the machine.
async fn verify(state: &AppState, password: String, phc: String) -> Result<bool, ApiError> {
    let _permit = state
        .login_permits
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("the login permits are closed: {e}")))?;
    tokio::task::spawn_blocking(move || secrets::verify_password(&password, &phc))
        .await
        .map_err(|e| ApiError::Internal(format!("the password check failed: {e}")))?
        .map_err(secret_failed)
}

/// Hashes a new password on the blocking pool.
pub(crate) async fn hash(state: &AppState, password: String) -> Result<String, ApiError> {
    let _permit = state
        .login_permits
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("the login permits are closed: {e}")))?;
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing the password failed: {e}")))?
        .map_err(secret_failed)
}

fn view(caller: &Caller) -> SessionView {
    let (credential, csrf_token, expires_at) = match &caller.credential {
        Credential::Session {
            csrf_token,
            expires_at,
            ..
        } => (
            WireCredential::Session,
            Some(csrf_token.clone()),
            *expires_at,
        ),
        Credential::ApiToken { expires_at, .. } => (WireCredential::ApiToken, None, *expires_at),
    };
    SessionView {
        user: user_view(&caller.user),
        credential,
        roles: wire_roles(&caller.roles),
        csrf_token,
        expires_at,
    }
}

/// Log in with a user name and password; sets the session cookie.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "session",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = SessionView),
        (status = 401, description = "Wrong user name or password", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let now = clock::now();
    let address = source_address(request.extensions()).map(|a| a.ip());
    let raw = body::read(request.into_body(), SMALL_BODY).await?;
    // The parser's message could quote the body, and the body holds a password: the answer
    // names the expected shape instead.
    let login: LoginRequest = serde_json::from_slice(&raw).map_err(|_| {
        ApiError::MalformedBody("a login is {\"username\": …, \"password\": …}".into())
    })?;
    let (caller, secret) = password_login(&state, login, address, now).await?;
    let mut response = Json(view(&caller)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&secret, state.operators.session_ttl_secs),
    );
    Ok(response)
}

/// Checks a user name and password (the rules in the module documentation) and makes a
/// session: the caller it authenticates and the session's secret, which only the cookie
/// carries. The JSON login and the web UI's login form share it.
pub(crate) async fn password_login(
    state: &AppState,
    login: LoginRequest,
    address: Option<std::net::IpAddr>,
    now: Timestamp,
) -> Result<(Caller, String), ApiError> {
    let unix = now.as_second();
    if let Some(ip) = address
        && let Err(retry_after) = state.login_limiter.check(&Key::Address(ip), unix)
    {
        return Err(ApiError::LoginLocked { retry_after });
    }
    let fail = |state: &AppState, name: Option<String>| {
        if let Some(ip) = address {
            state.login_limiter.fail(Key::Address(ip), unix);
        }
        if let Some(name) = name {
            state.login_limiter.fail(Key::UnknownName(name), unix);
        }
    };
    // Names and passwords longer than any that can be stored are nobody's: they are not
    // looked up, hashed or remembered (a megabyte name must not become a limiter key).
    let plausible =
        login.username.len() <= MAX_USERNAME && login.password.len() <= secrets::MAX_PASSWORD_LEN;
    let user = if plausible {
        state
            .store
            .find_user(&login.username)
            .await?
            .filter(User::is_enabled)
    } else {
        None
    };
    let Some(user) = user else {
        let name = plausible.then(|| login.username.to_ascii_lowercase());
        if let Some(n) = &name
            && let Err(retry_after) = state
                .login_limiter
                .check(&Key::UnknownName(n.clone()), unix)
        {
            return Err(ApiError::LoginLocked { retry_after });
        }
        if plausible {
            verify(state, login.password, secrets::decoy_hash().to_owned()).await?;
        }
        fail(state, name);
        return Err(ApiError::InvalidCredentials);
    };
    if let Some(until) = user.locked_at(now) {
        fail(state, None);
        let secs = until.as_second().saturating_sub(unix).max(1);
        return Err(ApiError::LoginLocked {
            retry_after: u64::try_from(secs).unwrap_or(1),
        });
    }
    if !verify(state, login.password, user.password_hash.clone()).await? {
        fail(state, None);
        let policy = LockoutPolicy {
            max_failures: state.operators.max_failed_logins,
            lock_for: SignedDuration::from_secs(i64::from(state.operators.lockout_secs)),
        };
        let audit = AuditEntry::new(
            now,
            Actor::System("login".into()),
            "user.lock",
            format!("user:{}", user.username),
        )
        .after(json!({
            "reason": "too many failed logins",
            "lock_secs": state.operators.lockout_secs,
        }));
        let after = state
            .store
            .record_failed_login(user.id, policy, now, audit)
            .await?;
        if after.locked_at(now).is_some() {
            tracing::warn!(user = %user.username, "user locked after too many failed logins");
        }
        return Err(ApiError::InvalidCredentials);
    }
    let secret = secrets::new_secret(SESSION_PREFIX).map_err(secret_failed)?;
    let ttl = state.operators.session_ttl_secs;
    let expires_at = now
        .checked_add(SignedDuration::from_secs(i64::from(ttl)))
        .unwrap_or(now);
    let id_hash = SecretHash::of(secret.as_bytes());
    let audit = AuditEntry::new(
        now,
        Actor::Operator(user.username.clone()),
        "session.create",
        format!("user:{}", user.username),
    )
    .after(json!({
        "expires_at": expires_at,
        "address": address.map(|a| a.to_string()),
    }));
    state
        .store
        .create_session(
            NewSession {
                id_hash,
                user: user.id,
                expires_at,
            },
            now,
            audit,
        )
        .await?;
    tracing::info!(user = %user.username, "operator logged in");
    Ok((
        Caller {
            roles: user.roles.clone(),
            user,
            credential: Credential::Session {
                id_hash,
                csrf_token: secrets::csrf_token(&secret),
                expires_at,
            },
        },
        secret,
    ))
}

/// The caller's session (or API token): who, with which roles, until when, and for a
/// browser session its CSRF token.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "session",
    responses((status = 200, description = "The caller", body = SessionView))
)]
pub(crate) async fn show(caller: Caller) -> Json<SessionView> {
    Json(view(&caller))
}

/// Log out: ends the session and clears its cookie.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "session",
    responses((status = 204, description = "Logged out"))
)]
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    end_session(&state, &caller).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    Ok(response)
}

/// Ends the caller's session (an API token is revoked instead, not logged out).
pub(crate) async fn end_session(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let Credential::Session { id_hash, .. } = &caller.credential else {
        return Err(ApiError::Forbidden(
            "an API token is revoked, not logged out: DELETE /api/v1/api-tokens/{id}".into(),
        ));
    };
    let now = clock::now();
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "session.delete",
        format!("user:{}", caller.user.username),
    );
    state.store.delete_session(*id_hash, now, audit).await?;
    Ok(())
}

/// Change the caller's own password (required after a one-time password). Every session of
/// the user ends: log in again with the new password.
#[utoipa::path(
    put,
    path = "/api/v1/me/password",
    tag = "session",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every session of the user has ended"),
        (status = 400, description = "The new password is too short or too long", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "The current password is wrong", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn change_password(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    let raw = body::read(body, SMALL_BODY).await?;
    let change: PasswordChange = serde_json::from_slice(&raw).map_err(|_| {
        ApiError::MalformedBody(
            "a password change is {\"current_password\": …, \"new_password\": …}".into(),
        )
    })?;
    change_own_password(&state, &caller, change).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    Ok(response)
}

/// Changes the caller's own password after checking the current one; every session of the
/// user ends (the store removes them). The API and the web UI's form share it.
pub(crate) async fn change_own_password(
    state: &AppState,
    caller: &Caller,
    change: PasswordChange,
) -> Result<(), ApiError> {
    secrets::check_new_password(&change.new_password).map_err(ApiError::MalformedBody)?;
    if change.new_password == change.current_password {
        return Err(ApiError::MalformedBody(
            "the new password is the current one".into(),
        ));
    }
    if !verify(
        state,
        change.current_password,
        caller.user.password_hash.clone(),
    )
    .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    let password_hash = hash(state, change.new_password).await?;
    let now: Timestamp = clock::now();
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "user.password",
        format!("user:{}", caller.user.username),
    );
    state
        .store
        .update_user(
            caller.user.id,
            UserChange::Password {
                password_hash,
                must_change: false,
            },
            now,
            audit,
        )
        .await?;
    Ok(())
}
