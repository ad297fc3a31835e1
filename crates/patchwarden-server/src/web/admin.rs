//! Administration pages: users (create with a one-time password shown once, set roles,
//! disable and enable), enrollment tokens (create with the secret and the install commands
//! shown once, revoke), the feeds (freshness, sync now, record a manual check), and every
//! operator's own API tokens on the account area.
//!
//! Each page admits whom its API route admits and acts through the same function as that
//! route (`routes::users`, `routes::tokens`, `routes::feeds`): the same checks (nobody changes
//! their own roles, a token holds at most its user's roles, the last admin stays), the same
//! audit entries. A secret is in the one answer that made it, never in a link or a redirect.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use patchwarden_api::v1::feeds::{FeedFreshness, FeedKind};
use patchwarden_api::v1::operator::{
    NewApiTokenRequest, NewEnrollmentTokenRequest, NewUserRequest, RolesChange,
};
use patchwarden_store::Role;
use uuid::Uuid;

use super::review::problem_text;
use super::view::{when, when_or};
use super::{Chrome, FORM_LIMIT, PageResult, form, render, render_status, see_other};
use crate::access::{ADMIN, Caller, ENROLLERS, FEED_OPERATORS};
use crate::admin::{InstallSources, install_commands};
use crate::clock;
use crate::error::ApiError;
use crate::operators::{enrollment_token_view, user_view, wire_role};
use crate::routes::users::path_id;
use crate::routes::{feeds, tokens, users};
use crate::state::AppState;

/// A form's fields as pairs, so that a field may repeat (one `role` per ticked box).
type Pairs = Vec<(String, String)>;

fn field<'a>(pairs: &'a Pairs, name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.trim())
}

/// The roles ticked in a form (`role=admin&role=auditor`).
fn roles_of(pairs: &Pairs) -> Result<BTreeSet<Role>, ApiError> {
    pairs
        .iter()
        .filter(|(k, _)| k == "role")
        .map(|(_, v)| {
            Role::parse(v).ok_or_else(|| ApiError::MalformedBody(format!("role {v:?}: unknown")))
        })
        .collect()
}

/// Host groups written as a list (`web, db`).
fn groups_of(pairs: &Pairs) -> BTreeSet<String> {
    field(pairs, "groups")
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

fn wire(roles: &BTreeSet<Role>) -> BTreeSet<patchwarden_api::v1::operator::Role> {
    roles.iter().map(|r| wire_role(*r)).collect()
}

/// A role checkbox: the role, and whether it is ticked.
struct RoleBox {
    name: &'static str,
    ticked: bool,
}

fn boxes(held: &BTreeSet<Role>, offered: &[Role]) -> Vec<RoleBox> {
    offered
        .iter()
        .map(|r| RoleBox {
            name: r.as_str(),
            ticked: held.contains(r),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminIndex {
    chrome: Chrome,
    users: usize,
    active_tokens: usize,
    stale_feeds: usize,
}

/// `GET /admin`.
pub(crate) async fn index(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    let now = clock::now();
    let users = state.store.list_users().await?.len();
    let active_tokens = state
        .store
        .list_enrollment_tokens()
        .await?
        .iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at > now && t.uses < t.max_uses)
        .count();
    let stale_feeds = feeds::sources(&state)
        .await?
        .iter()
        .filter(|f| f.freshness == FeedFreshness::Stale)
        .count();
    Ok(render(&AdminIndex {
        chrome: Chrome::new(&caller, "admin"),
        users,
        active_tokens,
        stale_feeds,
    }))
}

struct UserRow {
    id: String,
    username: String,
    roles: String,
    boxes: Vec<RoleBox>,
    groups: String,
    enabled: bool,
    one_time: bool,
    locked: String,
    created: String,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    rows: Vec<UserRow>,
    new_boxes: Vec<RoleBox>,
    can_admin: bool,
    message: Option<String>,
    error: Option<String>,
    /// A user just made and their one-time password: shown in this answer only.
    created: Option<(String, String)>,
}

async fn users_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
    created: Option<(String, String)>,
) -> PageResult {
    let now = clock::now();
    let rows = state
        .store
        .list_users()
        .await?
        .iter()
        .map(|u| {
            let v = user_view(u);
            UserRow {
                id: v.id.to_string(),
                roles: u
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                boxes: boxes(&u.roles, &Role::ALL),
                groups: v.groups.iter().cloned().collect::<Vec<_>>().join(", "),
                enabled: v.enabled,
                one_time: v.must_change_password,
                locked: v
                    .locked_until
                    .filter(|t| *t > now)
                    .map(|t| format!("locked until {}", when(t)))
                    .unwrap_or_default(),
                created: format!("{} by {}", when(v.created_at), v.created_by),
                is_self: v.id == caller.user.id,
                username: v.username,
            }
        })
        .collect();
    let chrome = Chrome::new(caller, "admin");
    Ok(render_status(
        status,
        &UsersPage {
            can_admin: chrome.can(ADMIN),
            chrome,
            rows,
            new_boxes: boxes(&BTreeSet::new(), &Role::ALL),
            message,
            error,
            created,
        },
    ))
}

/// `GET /admin/users`.
pub(crate) async fn users(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    users_page(&state, &caller, StatusCode::OK, None, None, None).await
}

/// `POST /admin/users`: the new user's one-time password is shown in this answer, once.
pub(crate) async fn create_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> PageResult {
    let f: Pairs = form(body, FORM_LIMIT).await?;
    let request = roles_of(&f).map(|roles| NewUserRequest {
        username: field(&f, "username").to_owned(),
        roles: wire(&roles),
        groups: groups_of(&f),
    });
    let made = match request {
        Ok(r) => users::create_user(&state, &caller, r).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(c) => {
            users_page(
                &state,
                &caller,
                StatusCode::CREATED,
                None,
                None,
                Some((c.user.username, c.one_time_password)),
            )
            .await
        }
        Err(e) => {
            let (status, text) = problem_text(&e);
            users_page(&state, &caller, status, None, Some(text), None).await
        }
    }
}

/// The answer to a user action: back to the list, or the list with the refusal said.
async fn after_user_action(
    state: &AppState,
    caller: &Caller,
    done: Result<patchwarden_api::v1::operator::UserView, ApiError>,
) -> PageResult {
    match done {
        Ok(_) => Ok(see_other("/admin/users")),
        Err(ApiError::NotFound) => Err(ApiError::NotFound.into()),
        Err(e) => {
            let (status, text) = problem_text(&e);
            users_page(state, caller, status, None, Some(text), None).await
        }
    }
}

/// `POST /admin/users/{id}/roles`.
pub(crate) async fn set_roles(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
    body: Body,
) -> PageResult {
    let id = path_id(id)?;
    let f: Pairs = form(body, FORM_LIMIT).await?;
    let done = match roles_of(&f) {
        Ok(roles) => {
            users::set_user_roles(
                &state,
                &caller,
                id,
                RolesChange {
                    roles: wire(&roles),
                    groups: groups_of(&f),
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    after_user_action(&state, &caller, done).await
}

/// `POST /admin/users/{id}/disable`.
pub(crate) async fn disable_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> PageResult {
    let id = path_id(id)?;
    let done = users::disable_user(&state, &caller, id).await;
    after_user_action(&state, &caller, done).await
}

/// `POST /admin/users/{id}/enable`.
pub(crate) async fn enable_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> PageResult {
    let id = path_id(id)?;
    let done = users::enable_user(&state, &caller, id).await;
    after_user_action(&state, &caller, done).await
}

struct EnrollmentRow {
    id: String,
    group: String,
    created: String,
    expires: String,
    uses: String,
    note: String,
    status: &'static str,
    revocable: bool,
}

/// A new token's secret and how hosts use it, shown once.
struct NewSecret {
    secret: String,
    group: String,
    /// (package, command to paste) per agent package the server serves.
    commands: Vec<(String, String)>,
    /// Why no install command can be shown, when none can.
    no_commands: String,
}

#[derive(Template)]
#[template(path = "admin_enrollment.html")]
struct EnrollmentPage {
    chrome: Chrome,
    rows: Vec<EnrollmentRow>,
    can_enroll: bool,
    error: Option<String>,
    created: Option<NewSecret>,
    default_hours: u32,
}

async fn enrollment_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    error: Option<String>,
    created: Option<NewSecret>,
) -> PageResult {
    let now = clock::now();
    let mut tokens = state.store.list_enrollment_tokens().await?;
    tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    let rows = tokens
        .iter()
        .map(|t| {
            let v = enrollment_token_view(t);
            let status = if v.revoked_at.is_some() {
                "revoked"
            } else if v.expires_at <= now {
                "expired"
            } else if v.uses >= v.max_uses {
                "used up"
            } else {
                "active"
            };
            EnrollmentRow {
                id: v.id.to_string(),
                group: v.group,
                created: format!("{} by {}", when(v.created_at), v.created_by),
                expires: when(v.expires_at),
                uses: format!("{} of {}", v.uses, v.max_uses),
                note: v.note.unwrap_or_default(),
                revocable: v.revoked_at.is_none(),
                status,
            }
        })
        .collect();
    let chrome = Chrome::new(caller, "admin");
    Ok(render_status(
        status,
        &EnrollmentPage {
            can_enroll: chrome.can(ENROLLERS),
            chrome,
            rows,
            error,
            created,
            default_hours: state.enrollment_token_ttl_hours,
        },
    ))
}

/// `GET /admin/enrollment-tokens`.
pub(crate) async fn enrollment_tokens(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> PageResult {
    enrollment_page(&state, &caller, StatusCode::OK, None, None).await
}

/// What the install commands need, from the running server: its public URL, the CA agents
/// pin (the last certificate of its chain, as `patchwarden admin token create` pins), and
/// the agent packages it serves.
async fn install_sources(state: &AppState) -> Result<InstallSources, String> {
    if state.public_url.is_empty() {
        return Err(
            "public_url is not set: the install commands need the URL hosts reach the \
                    server at"
                .into(),
        );
    }
    let pem = state.ca_pem.clone().ok_or_else(|| {
        "the server speaks plain HTTP: agents pin the certificate of the proxy in front, which \
         the server does not know"
            .to_owned()
    })?;
    let der = rustls_pemfile::certs(&mut pem.as_bytes())
        .filter_map(Result::ok)
        .last()
        .ok_or_else(|| "the server's CA certificate does not parse".to_owned())?;
    let downloads = state
        .downloads
        .clone()
        .ok_or_else(|| "downloads.dir is not set: the server serves no agent package".to_owned())?;
    // Reading the directory (and hashing a new package) blocks.
    let packages = tokio::task::spawn_blocking(move || downloads.packages())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if packages.is_empty() {
        return Err("the downloads directory holds no agent package".into());
    }
    Ok(InstallSources {
        public_url: state.public_url.clone(),
        ca_fingerprint: crate::tls::fingerprint(&der),
        packages,
    })
}

/// `POST /admin/enrollment-tokens`: the secret and the install commands, once.
pub(crate) async fn create_enrollment_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> PageResult {
    let f: Pairs = form(body, FORM_LIMIT).await?;
    let number = |name: &str| -> Result<Option<u32>, ApiError> {
        match field(&f, name) {
            "" => Ok(None),
            v => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| ApiError::MalformedBody(format!("{name}: a whole number"))),
        }
    };
    let request = (|| {
        Ok::<_, ApiError>(NewEnrollmentTokenRequest {
            group: field(&f, "group").to_owned(),
            expires_in_hours: number("expires_in_hours")?,
            max_uses: number("max_uses")?,
            note: Some(field(&f, "note").to_owned()).filter(|n| !n.is_empty()),
        })
    })();
    let made = match request {
        Ok(r) => tokens::create_enrollment_token(&state, &caller, r).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(c) => {
            let (commands, no_commands) = match install_sources(&state)
                .await
                .and_then(|s| install_commands(&s, &c.secret).map_err(|e| e.to_string()))
            {
                Ok(cmds) => (
                    cmds.into_iter()
                        .map(|c| (c.package.name, c.paste))
                        .collect(),
                    String::new(),
                ),
                Err(why) => (Vec::new(), why),
            };
            let created = NewSecret {
                secret: c.secret,
                group: c.token.group,
                commands,
                no_commands,
            };
            enrollment_page(&state, &caller, StatusCode::CREATED, None, Some(created)).await
        }
        Err(e) => {
            let (status, text) = problem_text(&e);
            enrollment_page(&state, &caller, status, Some(text), None).await
        }
    }
}

/// `POST /admin/enrollment-tokens/{id}/revoke`.
pub(crate) async fn revoke_enrollment_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> PageResult {
    let id = path_id(id)?;
    crate::admin::revoke_enrollment_token(state.store.as_ref(), id, caller.actor(), clock::now())
        .await?;
    Ok(see_other("/admin/enrollment-tokens"))
}

struct FeedRow {
    name: String,
    kind: String,
    manual: bool,
    fetched: bool,
    freshness: &'static str,
    css: &'static str,
    last_success: String,
    last_attempt: String,
    stale_at: String,
    error: String,
    records: u64,
    requested: String,
}

#[derive(Template)]
#[template(path = "admin_feeds.html")]
struct FeedsPage {
    chrome: Chrome,
    rows: Vec<FeedRow>,
    can_operate: bool,
    error: Option<String>,
}

async fn feeds_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    error: Option<String>,
) -> PageResult {
    let rows = feeds::sources(state)
        .await?
        .into_iter()
        .map(|f| {
            let (freshness, css) = match f.freshness {
                FeedFreshness::Fresh => ("fresh", "ok"),
                FeedFreshness::Stale => ("stale", "bad"),
                FeedFreshness::Unwatched => ("not watched", "muted"),
            };
            FeedRow {
                kind: format!("{:?}", f.kind).to_lowercase(),
                manual: f.kind == FeedKind::Manual,
                fetched: f.kind != FeedKind::Manual && !f.location.is_empty(),
                freshness,
                css,
                last_success: when_or(f.last_success_at, "never"),
                last_attempt: when_or(f.last_attempt_at, "never"),
                stale_at: when_or(f.stale_at, ""),
                error: f.last_error.unwrap_or_default(),
                records: f.records,
                requested: f
                    .sync_requested_at
                    .map(|t| format!("sync asked {}", when(t)))
                    .unwrap_or_default(),
                name: f.name,
            }
        })
        .collect();
    let chrome = Chrome::new(caller, "admin");
    Ok(render_status(
        status,
        &FeedsPage {
            can_operate: chrome.can(FEED_OPERATORS),
            chrome,
            rows,
            error,
        },
    ))
}

/// `GET /admin/feeds`.
pub(crate) async fn feeds(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    feeds_page(&state, &caller, StatusCode::OK, None).await
}

async fn after_feed_action(
    state: &AppState,
    caller: &Caller,
    done: Result<patchwarden_api::v1::feeds::FeedSourceView, ApiError>,
) -> PageResult {
    match done {
        Ok(_) => Ok(see_other("/admin/feeds")),
        Err(ApiError::NotFound) => Err(ApiError::NotFound.into()),
        Err(e) => {
            let (status, text) = problem_text(&e);
            feeds_page(state, caller, status, Some(text)).await
        }
    }
}

/// `POST /admin/feeds/{name}/sync`.
pub(crate) async fn sync_feed(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> PageResult {
    let Path(name) = name.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let done = feeds::request_sync(&state, &caller, name).await;
    after_feed_action(&state, &caller, done).await
}

/// `POST /admin/feeds/{name}/check`.
pub(crate) async fn check_feed(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    body: Body,
) -> PageResult {
    let Path(name) = name.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let f: Pairs = form(body, FORM_LIMIT).await?;
    let done = feeds::record_check(&state, &caller, name, field(&f, "note")).await;
    after_feed_action(&state, &caller, done).await
}

struct TokenRow {
    id: String,
    name: String,
    roles: String,
    created: String,
    expires: String,
    status: &'static str,
    revocable: bool,
}

#[derive(Template)]
#[template(path = "account_tokens.html")]
struct TokensPage {
    chrome: Chrome,
    rows: Vec<TokenRow>,
    boxes: Vec<RoleBox>,
    default_days: u32,
    max_days: u32,
    from_session: bool,
    error: Option<String>,
    /// A token just made: its name and secret, shown in this answer only.
    created: Option<(String, String)>,
}

async fn tokens_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    error: Option<String>,
    created: Option<(String, String)>,
) -> PageResult {
    let now = clock::now();
    // The account page lists the operator's own tokens (an admin sees everyone's through the
    // API's list; here, as on every account page, only their own).
    let rows = tokens::api_tokens(state, caller)
        .await?
        .into_iter()
        .filter(|t| t.user == caller.user.id)
        .map(|t| TokenRow {
            id: t.id.to_string(),
            roles: t
                .roles
                .iter()
                .map(|r| format!("{r:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(", "),
            created: when(t.created_at),
            expires: when(t.expires_at),
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "active"
            },
            revocable: t.revoked_at.is_none() && t.expires_at > now,
            name: t.name,
        })
        .collect();
    let held: Vec<Role> = caller.user.roles.iter().copied().collect();
    Ok(render_status(
        status,
        &TokensPage {
            chrome: Chrome::new(caller, "account"),
            rows,
            boxes: boxes(&caller.user.roles, &held),
            default_days: state.operators.api_token_default_days,
            max_days: state.operators.api_token_max_days,
            from_session: matches!(caller.credential, crate::access::Credential::Session { .. }),
            error,
            created,
        },
    ))
}

/// `GET /account/tokens`.
pub(crate) async fn api_tokens(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    tokens_page(&state, &caller, StatusCode::OK, None, None).await
}

/// `POST /account/tokens`: the secret is shown in this answer, once.
pub(crate) async fn create_api_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> PageResult {
    let f: Pairs = form(body, FORM_LIMIT).await?;
    let request = roles_of(&f).and_then(|roles| {
        let days =
            match field(&f, "expires_in_days") {
                "" => None,
                v => Some(v.parse::<u32>().map_err(|_| {
                    ApiError::MalformedBody("expires_in_days: a whole number".into())
                })?),
            };
        Ok(NewApiTokenRequest {
            name: field(&f, "name").to_owned(),
            // No box ticked: all of the user's roles, as the API does without `roles`.
            roles: (!roles.is_empty()).then(|| wire(&roles)),
            expires_in_days: days,
        })
    });
    let made = match request {
        Ok(r) => tokens::create_api_token(&state, &caller, r).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(c) => {
            tokens_page(
                &state,
                &caller,
                StatusCode::CREATED,
                None,
                Some((c.token.name, c.secret)),
            )
            .await
        }
        Err(e) => {
            let (status, text) = problem_text(&e);
            tokens_page(&state, &caller, status, Some(text), None).await
        }
    }
}

/// `POST /account/tokens/{id}/revoke`.
pub(crate) async fn revoke_api_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> PageResult {
    let id = path_id(id)?;
    tokens::revoke_api_token(&state, &caller, id).await?;
    Ok(see_other("/account/tokens"))
}
