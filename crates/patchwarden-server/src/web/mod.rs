//! The web UI: pages rendered on the server from askama templates (`templates/`, compiled
//! into the binary), made lively with htmx (`assets/`, embedded too): no front-end build and
//! nothing fetched at run time (docs/web-ui.md).
//!
//! Pages are routes like the API's: each is declared with who may see it (`Routes::page`),
//! and the same middleware authenticates the caller, with refusals a person can act on
//! ([`refusal`]). A page's handler takes the [`Caller`] and gives its template a [`Chrome`]
//! (who is logged in, the CSRF token every form carries, the section). Buttons for actions a
//! caller may not take are left out of the page; the action's route refuses them anyway.
//!
//! Pages read and act through the same server functions as the JSON API, never the store
//! behind their back, so a rule the API enforces holds here too.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod assets;
pub(crate) mod calendar;
pub(crate) mod changes;
pub(crate) mod dashboard;
pub(crate) mod exceptions;
pub(crate) mod fleet;
pub(crate) mod review;
pub(crate) mod view;

use std::collections::BTreeSet;

use askama::Template;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use patchwarden_store::Role;
use serde::de::DeserializeOwned;

use crate::access::{Access, Caller, Credential};
use crate::error::ApiError;
use crate::routes::Routes;
use crate::state::AppState;

/// Declares the web UI's own pages: login, logout, the account page and the assets.
pub(crate) fn declare(routes: Routes) -> Routes {
    use crate::access::EVERYONE;
    routes
        .page(
            Access::Open("operators log in with their password"),
            Method::GET,
            "/login",
            get(account::login_form),
        )
        .page(
            Access::Open("operators log in with their password"),
            Method::POST,
            "/login",
            post(account::login),
        )
        .page(
            Access::Open("the login page needs its style sheet and script"),
            Method::GET,
            "/assets/{file}",
            get(assets::asset),
        )
        .page(
            Access::OwnAccount,
            Method::POST,
            "/logout",
            post(account::logout),
        )
        .page(
            Access::OwnAccount,
            Method::GET,
            "/account",
            get(account::show),
        )
        .page(
            Access::OwnAccount,
            Method::POST,
            "/account/password",
            post(account::change_password),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/",
            get(|| async { Redirect::to("/dashboard") }),
        )
        .with(changes::declare)
        .with(calendar::declare)
        .with(exceptions::declare)
        .with(declare_fleet)
}

/// The fleet's pages (issue 10): dashboard, hosts, findings, advisories, triage, audit,
/// admin and the account's API tokens. Each admits whom the API route it reads or acts
/// through admits.
fn declare_fleet(routes: Routes) -> Routes {
    use crate::access::{
        ADMIN, ADMIN_AUDITOR, ENROLLERS, ENROLLMENT_READERS, EVERYONE, FEED_OPERATORS,
        TRIAGE_DECIDERS, TRIAGE_READERS,
    };
    routes
        .page(
            Access::Roles(ADMIN),
            Method::GET,
            "/admin",
            get(admin::index),
        )
        .page(
            Access::Roles(ADMIN_AUDITOR),
            Method::GET,
            "/admin/users",
            get(admin::users),
        )
        .page(
            Access::Roles(ADMIN),
            Method::POST,
            "/admin/users",
            post(admin::create_user),
        )
        .page(
            Access::Roles(ADMIN),
            Method::POST,
            "/admin/users/{id}/roles",
            post(admin::set_roles),
        )
        .page(
            Access::Roles(ADMIN),
            Method::POST,
            "/admin/users/{id}/disable",
            post(admin::disable_user),
        )
        .page(
            Access::Roles(ADMIN),
            Method::POST,
            "/admin/users/{id}/enable",
            post(admin::enable_user),
        )
        .page(
            Access::Roles(ENROLLMENT_READERS),
            Method::GET,
            "/admin/enrollment-tokens",
            get(admin::enrollment_tokens),
        )
        .page(
            Access::Roles(ENROLLERS),
            Method::POST,
            "/admin/enrollment-tokens",
            post(admin::create_enrollment_token),
        )
        .page(
            Access::Roles(ENROLLERS),
            Method::POST,
            "/admin/enrollment-tokens/{id}/revoke",
            post(admin::revoke_enrollment_token),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/admin/feeds",
            get(admin::feeds),
        )
        .page(
            Access::Roles(FEED_OPERATORS),
            Method::POST,
            "/admin/feeds/{name}/sync",
            post(admin::sync_feed),
        )
        .page(
            Access::Roles(FEED_OPERATORS),
            Method::POST,
            "/admin/feeds/{name}/check",
            post(admin::check_feed),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/account/tokens",
            get(admin::api_tokens),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::POST,
            "/account/tokens",
            post(admin::create_api_token),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::POST,
            "/account/tokens/{id}/revoke",
            post(admin::revoke_api_token),
        )
        .page(
            Access::Roles(TRIAGE_READERS),
            Method::GET,
            "/triage",
            get(review::triage),
        )
        .page(
            Access::Roles(TRIAGE_DECIDERS),
            Method::POST,
            "/triage/{id}/classify",
            post(review::classify),
        )
        .page(
            Access::Roles(ADMIN_AUDITOR),
            Method::GET,
            "/audit",
            get(review::audit_log),
        )
        .page(
            Access::Roles(ADMIN_AUDITOR),
            Method::GET,
            "/audit/verification",
            get(review::verification),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/dashboard",
            get(dashboard::dashboard),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/hosts",
            get(fleet::hosts),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/hosts/{id}",
            get(fleet::host),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/findings",
            get(fleet::findings),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/advisories/{id}",
            get(fleet::advisory),
        )
}

/// What every operator page's layout needs: who is logged in, the section to highlight, and
/// the CSRF token that each form carries (`csrf_token`) and htmx sends (`X-CSRF-Token`).
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub user: String,
    pub roles: BTreeSet<Role>,
    /// Empty for an API token, which needs no CSRF token.
    pub csrf: String,
    pub section: &'static str,
    /// Whether the user must change a one-time password before anything else.
    pub must_change_password: bool,
}

impl Chrome {
    pub(crate) fn new(caller: &Caller, section: &'static str) -> Chrome {
        Chrome {
            user: caller.user.username.clone(),
            roles: caller.roles.clone(),
            csrf: match &caller.credential {
                Credential::Session { csrf_token, .. } => csrf_token.clone(),
                Credential::ApiToken { .. } => String::new(),
            },
            section,
            must_change_password: caller.user.must_change_password,
        }
    }

    /// Whether the caller holds one of `allowed`: what a page asks before it shows a button
    /// or a link to a route declared for those roles.
    pub(crate) fn can(&self, allowed: &[Role]) -> bool {
        allowed.iter().any(|r| self.roles.contains(r))
    }

    /// The roles, for the header.
    pub(crate) fn role_names(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `aria-current` marker of a navigation link.
    pub(crate) fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.can(crate::access::ADMIN)
    }

    pub(crate) fn reads_audit(&self) -> bool {
        self.can(crate::access::ADMIN_AUDITOR)
    }

    /// Whether the triage queue is for this caller (not for a provider).
    pub(crate) fn reads_triage(&self) -> bool {
        self.can(crate::access::TRIAGE_READERS)
    }

    pub(crate) fn reads_incidents(&self) -> bool {
        self.can(crate::access::INCIDENT_READERS)
    }
}

/// Renders a template as an HTML page with `status`. A template that fails to render is an
/// internal error (logged), never half a page.
pub(crate) fn render_status(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // Pages hold what only this operator may see: never cached on the way.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Renders a template as a 200 page.
pub(crate) fn render(page: &impl Template) -> Response {
    render_status(StatusCode::OK, page)
}

/// The page that explains a failure.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    detail: Option<String>,
}

/// A failed page request: the [`ApiError`] it carries decides the status, the log line and
/// what the person is told, exactly as for the API; the answer is a page.
#[derive(Debug)]
pub(crate) struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError(e)
    }
}

impl From<patchwarden_store::StoreError> for PageError {
    fn from(e: patchwarden_store::StoreError) -> PageError {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.0)
    }
}

/// What a page handler returns.
pub(crate) type PageResult = Result<Response, PageError>;

/// The error as a page, with the problem document's status, title and detail, and its code
/// in `X-Problem-Code`. The log line is the API's (`ApiError::into_response` writes it).
fn error_page(e: ApiError) -> Response {
    let problem = e.problem();
    let code = problem.code.as_str();
    // The API's answer logs the failure at the right level; only its headers are kept.
    let api = e.into_response();
    let status = api.status();
    let mut response = render_status(
        status,
        &ErrorPage {
            status: status.as_u16(),
            title: problem.title.clone(),
            detail: problem.detail.clone(),
        },
    );
    if let Some(v) = api.headers().get(header::RETRY_AFTER) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(code) {
        response.headers_mut().insert(PROBLEM_CODE_HEADER, v);
    }
    response
}

/// The header in which a page's refusal names its problem code, for programs (and tests)
/// that read pages.
pub(crate) const PROBLEM_CODE_HEADER: &str = "x-problem-code";

/// How an operator page answers a refusal by the access checks (`access::authorize_page`).
pub(crate) fn refusal(state: &AppState, e: ApiError, method: &Method, back_to: &str) -> Response {
    match e {
        // No valid session: the login form, which returns to this page (a GET) or to the
        // start (a form posted without a session cannot be replayed after the login).
        ApiError::Unauthenticated(_) => {
            let next = if *method == Method::GET { back_to } else { "/" };
            let mut response = account::login_page(state, StatusCode::UNAUTHORIZED, next, None);
            if let Ok(v) = HeaderValue::from_str(e.problem().code.as_str()) {
                response.headers_mut().insert(PROBLEM_CODE_HEADER, v);
            }
            response
        }
        ApiError::PasswordChangeRequired if *method == Method::GET => {
            let mut response = Redirect::to("/account").into_response();
            if let Ok(v) = HeaderValue::from_str(e.problem().code.as_str()) {
                response.headers_mut().insert(PROBLEM_CODE_HEADER, v);
            }
            response
        }
        other => error_page(other),
    }
}

/// The largest form a page accepts, unless a page says otherwise.
pub(crate) const FORM_LIMIT: u64 = 64 * 1024;

/// Reads a form (`application/x-www-form-urlencoded`) of at most `limit` bytes into `T`.
/// The parser's message names the field, never a value (a value can be a password).
pub(crate) async fn form<T: DeserializeOwned>(
    body: axum::body::Body,
    limit: u64,
) -> Result<T, ApiError> {
    let raw = crate::body::read(body, limit).await?;
    serde_urlencoded::from_bytes(&raw).map_err(|e| {
        let text = e.to_string();
        // serde_urlencoded names missing fields and wrong types; it does not quote values.
        ApiError::MalformedBody(format!("the form is not as expected: {text}"))
    })
}

/// Reads a form whose fields may repeat (checkboxes: `host=…&host=…`) as its pairs, in order,
/// of at most `limit` bytes.
pub(crate) async fn form_pairs(
    body: axum::body::Body,
    limit: u64,
) -> Result<Vec<(String, String)>, ApiError> {
    let raw = crate::body::read(body, limit).await?;
    serde_urlencoded::from_bytes(&raw)
        .map_err(|e| ApiError::MalformedBody(format!("the form is not as expected: {e}")))
}

/// How a page shows a refusal of what the person asked for next to the form they used: the
/// status and the rule's own words, for the refusals a person can act on (a malformed field,
/// a rule of the change or exception process, a stale page). Any other error is a page of its
/// own.
pub(crate) fn inline_refusal(e: ApiError) -> Result<(StatusCode, String), PageError> {
    match &e {
        ApiError::MalformedBody(_)
        | ApiError::InvalidParameter(_)
        | ApiError::Conflict(_)
        | ApiError::ExceptionRefused(_)
        | ApiError::ExceptionInvalid(_) => {
            let p = e.problem();
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
            Ok((status, p.detail.unwrap_or(p.title)))
        }
        _ => Err(PageError(e)),
    }
}

/// A time as pages show it: minutes, in UTC.
pub(crate) fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A path to return to after a form: only a path on this server (starting with one `/`), so
/// a link cannot send a person elsewhere after they log in.
pub(crate) fn local_path(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control());
    if ok { next } else { "/" }
}

/// A 303 to `to`: the answer to a form, so that reloading the next page does not post again.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(
            local_path("/changes/PCR-2026-0001"),
            "/changes/PCR-2026-0001"
        );
        assert_eq!(
            local_path("/hosts?group=web&page=2"),
            "/hosts?group=web&page=2"
        );
        for outside in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/a\nb",
        ] {
            assert_eq!(local_path(outside), "/", "{outside:?}");
        }
    }
}
