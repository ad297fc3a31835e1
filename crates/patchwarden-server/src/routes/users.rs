//! Users and their roles: list, create (with a one-time password), change roles, disable and
//! enable. Nobody changes their own roles or disables themselves — not even an admin, who
//! asks another admin — and the store refuses to leave no enabled admin.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use patchwarden_api::v1::operator::{CreatedUser, NewUserRequest, RolesChange, UserView};
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::operator::{check_roles, check_username};
use patchwarden_store::{NewUser, UserChange};
use serde_json::json;
use uuid::Uuid;

use crate::access::Caller;
use crate::body::{self, SMALL_BODY};
use crate::clock;
use crate::error::ApiError;
use crate::operators::{store_roles, user_view};
use crate::routes::session::hash;
use crate::secrets;
use crate::state::AppState;

/// A path's id, or the problem that says it is not one.
pub(crate) fn path_id(path: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::InvalidParameter(e.body_text()))
}

/// Every user, by name.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    responses((status = 200, description = "The users", body = Vec<UserView>))
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.iter().map(user_view).collect()))
}

/// Create a user with a one-time password, shown once in the answer; the user changes it at
/// first login.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = NewUserRequest,
    responses(
        (status = 201, description = "Created", body = CreatedUser),
        (status = 409, description = "The user name is taken"),
    )
)]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let request: NewUserRequest = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok((
        StatusCode::CREATED,
        Json(create_user(&state, &caller, request).await?),
    ))
}

/// Creates a user with a one-time password: what `POST /api/v1/users` and the admin page do.
pub(crate) async fn create_user(
    state: &AppState,
    caller: &Caller,
    request: NewUserRequest,
) -> Result<CreatedUser, ApiError> {
    let roles = store_roles(&request.roles);
    // Checked before the slow hash, so a bad request costs nothing.
    check_username(&request.username)?;
    check_roles(&roles, &request.groups)?;
    let password = secrets::one_time_password().map_err(|e| ApiError::Internal(e.to_string()))?;
    let password_hash = hash(state, password.clone()).await?;
    let now = clock::now();
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        "user.create",
        format!("user:{}", request.username),
    )
    .after(json!({
        "username": request.username,
        "roles": roles,
        "groups": request.groups,
    }));
    let user = state
        .store
        .create_user(
            NewUser {
                id: Uuid::new_v4(),
                username: request.username,
                password_hash,
                roles,
                groups: request.groups,
                must_change_password: true,
                created_by: caller.user.username.clone(),
            },
            now,
            audit,
        )
        .await?;
    Ok(CreatedUser {
        user: user_view(&user),
        one_time_password: password,
    })
}

/// Refuses a change of the caller's own account: a requester never changes their own roles.
fn not_self(caller: &Caller, id: Uuid, what: &str) -> Result<(), ApiError> {
    if caller.user.id == id {
        return Err(ApiError::Forbidden(format!(
            "nobody {what} themselves: ask another admin"
        )));
    }
    Ok(())
}

async fn change(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    change: UserChange,
    action: &str,
) -> Result<UserView, ApiError> {
    let target = state.store.get_user(id).await?.ok_or(ApiError::NotFound)?;
    let now = clock::now();
    let audit = AuditEntry::new(
        now,
        caller.actor(),
        action,
        format!("user:{}", target.username),
    );
    let user = state.store.update_user(id, change, now, audit).await?;
    Ok(user_view(&user))
}

/// Replaces a user's roles (never the caller's own): the API's and the admin page's.
pub(crate) async fn set_user_roles(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    request: RolesChange,
) -> Result<UserView, ApiError> {
    not_self(caller, id, "changes the roles of")?;
    let roles = store_roles(&request.roles);
    change(
        state,
        caller,
        id,
        UserChange::Roles {
            roles,
            groups: request.groups,
        },
        "user.roles",
    )
    .await
}

/// Disables a user (never the caller): the API's and the admin page's.
pub(crate) async fn disable_user(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<UserView, ApiError> {
    not_self(caller, id, "disables")?;
    change(state, caller, id, UserChange::Disable, "user.disable").await
}

/// Enables a user again: the API's and the admin page's.
pub(crate) async fn enable_user(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<UserView, ApiError> {
    change(state, caller, id, UserChange::Enable, "user.enable").await
}

/// Replace a user's roles (and a provider's groups).
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/roles",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user")),
    request_body = RolesChange,
    responses(
        (status = 200, description = "Changed", body = UserView),
        (status = 404, description = "No such user"),
        (status = 409, description = "It would leave no enabled admin"),
    )
)]
pub(crate) async fn set_roles(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
    body: Body,
) -> Result<Json<UserView>, ApiError> {
    let id = path_id(id)?;
    // Refused before the body is read, as before.
    not_self(&caller, id, "changes the roles of")?;
    let request: RolesChange = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok(Json(set_user_roles(&state, &caller, id, request).await?))
}

/// Disable a user: every login, session and API token of theirs is refused from now on.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/disable",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "Disabled", body = UserView),
        (status = 404, description = "No such user"),
        (status = 409, description = "It is the last enabled admin"),
    )
)]
pub(crate) async fn disable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<UserView>, ApiError> {
    let id = path_id(id)?;
    Ok(Json(disable_user(&state, &caller, id).await?))
}

/// Enable a disabled user again (their old sessions stay ended).
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/enable",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "Enabled", body = UserView),
        (status = 404, description = "No such user"),
    )
)]
pub(crate) async fn enable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<UserView>, ApiError> {
    let id = path_id(id)?;
    Ok(Json(enable_user(&state, &caller, id).await?))
}
