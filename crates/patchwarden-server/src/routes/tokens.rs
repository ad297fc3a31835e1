//! API tokens for scripts and enrollment tokens for hosts: create (the secret shown once),
//! list (never a secret), revoke.
//!
//! An API token is made only from a browser session — a login with the password — never from
//! another token, so a stolen token cannot keep itself alive by minting successors. It holds
//! the roles of its user or fewer, and loses any role its user loses later. Enrollment tokens
//! go through `admin`, the same functions `patchwarden admin token create` uses.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::SignedDuration;
use patchwarden_api::v1::operator::{
    API_TOKEN_PREFIX, ApiTokenView, CreatedApiToken, CreatedEnrollmentToken, EnrollmentTokenView,
    NewApiTokenRequest, NewEnrollmentTokenRequest,
};
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::operator::check_token_roles;
use patchwarden_store::{NewApiToken, Role, SecretHash};
use serde_json::json;
use uuid::Uuid;

use crate::access::{Caller, Credential};
use crate::admin::{self, TokenRequest};
use crate::body::{self, SMALL_BODY};
use crate::error::ApiError;
use crate::operators::{api_token_view, enrollment_token_view, store_roles};
use crate::routes::users::path_id;
use crate::state::AppState;
use crate::{clock, secrets};

/// The caller's API tokens (an admin's: everyone's).
#[utoipa::path(
    get,
    path = "/api/v1/api-tokens",
    tag = "api-tokens",
    responses((status = 200, description = "The tokens, without secrets", body = Vec<ApiTokenView>))
)]
pub(crate) async fn list_api(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<ApiTokenView>>, ApiError> {
    Ok(Json(api_tokens(&state, &caller).await?))
}

/// Create an API token (from a browser session only); its secret is in the answer, once.
#[utoipa::path(
    post,
    path = "/api/v1/api-tokens",
    tag = "api-tokens",
    request_body = NewApiTokenRequest,
    responses(
        (status = 201, description = "Created; send the secret as Authorization: Bearer",
            body = CreatedApiToken),
        (status = 400, description = "More roles than the user holds, or a bad lifetime"),
    )
)]
pub(crate) async fn create_api(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<CreatedApiToken>), ApiError> {
    if !matches!(caller.credential, Credential::Session { .. }) {
        return Err(ApiError::Forbidden(
            "API tokens are made from a login session, not from another token".into(),
        ));
    }
    let request: NewApiTokenRequest = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok((
        StatusCode::CREATED,
        Json(create_api_token(&state, &caller, request).await?),
    ))
}

/// Creates an API token for the caller (from a session only): the API's and the account
/// page's.
pub(crate) async fn create_api_token(
    state: &AppState,
    caller: &Caller,
    request: NewApiTokenRequest,
) -> Result<CreatedApiToken, ApiError> {
    if !matches!(caller.credential, Credential::Session { .. }) {
        return Err(ApiError::Forbidden(
            "API tokens are made from a login session, not from another token".into(),
        ));
    }
    let roles: BTreeSet<Role> = match &request.roles {
        Some(r) => store_roles(r),
        None => caller.user.roles.clone(),
    };
    check_token_roles(&caller.user, &roles)?;
    let ops = &state.operators;
    let days = request
        .expires_in_days
        .unwrap_or(ops.api_token_default_days);
    if days == 0 || days > ops.api_token_max_days {
        return Err(ApiError::MalformedBody(format!(
            "expires_in_days must be between 1 and {}",
            ops.api_token_max_days
        )));
    }
    let now = clock::now();
    let expires_at = now
        .checked_add(SignedDuration::from_hours(i64::from(days) * 24))
        .map_err(|e| ApiError::MalformedBody(format!("expires_in_days: {e}")))?;
    let secret =
        secrets::new_secret(API_TOKEN_PREFIX).map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = Uuid::new_v4();
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "api_token.create",
        format!("api-token:{id}"),
    )
    .after(json!({
        "name": request.name,
        "user": caller.user.username,
        "roles": roles,
        "expires_at": expires_at,
    }));
    let token = state
        .store
        .create_api_token(
            NewApiToken {
                id,
                secret_hash: SecretHash::of(secret.as_bytes()),
                user: caller.user.id,
                name: request.name,
                roles,
                expires_at,
            },
            now,
            audit,
        )
        .await?;
    Ok(CreatedApiToken {
        token: api_token_view(&token),
        secret,
    })
}

/// Revoke an API token: one's own, or as an admin anyone's.
#[utoipa::path(
    delete,
    path = "/api/v1/api-tokens/{id}",
    tag = "api-tokens",
    params(("id" = Uuid, Path, description = "The token")),
    responses(
        (status = 200, description = "Revoked", body = ApiTokenView),
        (status = 404, description = "No such token of the caller's"),
    )
)]
pub(crate) async fn revoke_api(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<ApiTokenView>, ApiError> {
    let id = path_id(id)?;
    Ok(Json(revoke_api_token(&state, &caller, id).await?))
}

/// The caller's API tokens (an admin's: everyone's).
pub(crate) async fn api_tokens(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<ApiTokenView>, ApiError> {
    let whose = (!caller.has(Role::Admin)).then_some(caller.user.id);
    let tokens = state.store.list_api_tokens(whose).await?;
    Ok(tokens.iter().map(api_token_view).collect())
}

/// Revokes an API token of the caller's (an admin: anyone's): the API's and the account
/// page's.
pub(crate) async fn revoke_api_token(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<ApiTokenView, ApiError> {
    let whose = (!caller.has(Role::Admin)).then_some(caller.user.id);
    // Another user's token reads as missing: a caller cannot probe for other tokens' ids.
    if !state
        .store
        .list_api_tokens(whose)
        .await?
        .iter()
        .any(|t| t.id == id)
    {
        return Err(ApiError::NotFound);
    }
    let now = clock::now();
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "api_token.revoke",
        format!("api-token:{id}"),
    );
    let token = state.store.revoke_api_token(id, now, audit).await?;
    Ok(api_token_view(&token))
}

/// Every enrollment token, revoked and expired ones included (never a secret).
#[utoipa::path(
    get,
    path = "/api/v1/enrollment-tokens",
    tag = "enrollment-tokens",
    responses((status = 200, description = "The tokens", body = Vec<EnrollmentTokenView>))
)]
pub(crate) async fn list_enrollment(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<Vec<EnrollmentTokenView>>, ApiError> {
    let tokens = state.store.list_enrollment_tokens().await?;
    Ok(Json(tokens.iter().map(enrollment_token_view).collect()))
}

/// Create an enrollment token for a host group; its secret is in the answer, once.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment-tokens",
    tag = "enrollment-tokens",
    request_body = NewEnrollmentTokenRequest,
    responses((status = 201, description = "Created", body = CreatedEnrollmentToken))
)]
pub(crate) async fn create_enrollment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<CreatedEnrollmentToken>), ApiError> {
    let request: NewEnrollmentTokenRequest = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok((
        StatusCode::CREATED,
        Json(create_enrollment_token(&state, &caller, request).await?),
    ))
}

/// Creates an enrollment token: the API's and the admin page's.
pub(crate) async fn create_enrollment_token(
    state: &AppState,
    caller: &Caller,
    request: NewEnrollmentTokenRequest,
) -> Result<CreatedEnrollmentToken, ApiError> {
    let hours = request
        .expires_in_hours
        .unwrap_or(state.enrollment_token_ttl_hours);
    if hours == 0 || hours > 24 * 366 {
        return Err(ApiError::MalformedBody(
            "expires_in_hours must be between 1 and 8784 (a year)".into(),
        ));
    }
    let (token, secret) = admin::create_enrollment_token(
        state.store.as_ref(),
        TokenRequest {
            group: request.group,
            valid_for: SignedDuration::from_hours(i64::from(hours)),
            max_uses: request.max_uses.unwrap_or(1),
            note: request.note,
        },
        caller.actor(),
        clock::now(),
    )
    .await?;
    Ok(CreatedEnrollmentToken {
        token: enrollment_token_view(&token),
        secret,
    })
}

/// Revoke an enrollment token: no host enrolls with it from now on.
#[utoipa::path(
    delete,
    path = "/api/v1/enrollment-tokens/{id}",
    tag = "enrollment-tokens",
    params(("id" = Uuid, Path, description = "The token")),
    responses(
        (status = 200, description = "Revoked", body = EnrollmentTokenView),
        (status = 404, description = "No such token"),
    )
)]
pub(crate) async fn revoke_enrollment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<EnrollmentTokenView>, ApiError> {
    let id = path_id(id)?;
    let token =
        admin::revoke_enrollment_token(state.store.as_ref(), id, caller.actor(), clock::now())
            .await?;
    Ok(Json(enrollment_token_view(&token)))
}
