//! Logging in and out in a browser, and the account page where a person sees who they are
//! and changes their password. The checks are the JSON API's (`routes::session`): the same
//! limits on failed logins, the same session cookie, the same audit entries.

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patchwarden_api::v1::operator::{LoginRequest, PasswordChange};
use serde::Deserialize;

use super::{Chrome, FORM_LIMIT, PageError, PageResult, form, local_path, render, render_status};
use crate::access::{Caller, source_address};
use crate::clock;
use crate::error::ApiError;
use crate::routes::session;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    message: Option<String>,
    /// Shown under the form: which server this is.
    server: &'a str,
}

/// The login page with `status`, returning to `next` after a login.
pub(crate) fn login_page(
    state: &AppState,
    status: StatusCode,
    next: &str,
    message: Option<String>,
) -> Response {
    render_status(
        status,
        &LoginPage {
            next: local_path(next),
            message,
            server: &state.public_url,
        },
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

pub(crate) async fn login_form(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NextQuery>,
) -> Response {
    login_page(
        &state,
        StatusCode::OK,
        q.next.as_deref().unwrap_or("/"),
        None,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Whether a form was posted from a page of this server. The login form has no session yet,
/// so no CSRF token: the browser's `Origin` (or `Sec-Fetch-Site`) header tells instead, and a
/// login posted from another site — which would log the victim into the attacker's account —
/// is refused. Programs that send neither header are not browsers and are let through.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (get(header::ORIGIN), get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

pub(crate) async fn login(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let now = clock::now();
    let address = source_address(request.extensions()).map(|a| a.ip());
    if !same_origin(request.headers()) {
        return PageError(ApiError::Forbidden(
            "the login form was posted from another site".into(),
        ))
        .into_response();
    }
    let f: LoginForm = match form(request.into_body(), FORM_LIMIT).await {
        Ok(f) => f,
        Err(e) => return PageError(e).into_response(),
    };
    let next = local_path(&f.next).to_owned();
    let login = LoginRequest {
        username: f.username,
        password: f.password,
    };
    match session::password_login(&state, login, address, now).await {
        Ok((caller, secret)) => {
            let to = if caller.user.must_change_password {
                "/account"
            } else {
                &next
            };
            let mut response = super::see_other(to);
            response.headers_mut().insert(
                header::SET_COOKIE,
                session::set_cookie(&secret, state.operators.session_ttl_secs),
            );
            response
        }
        Err(ApiError::InvalidCredentials) => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("Wrong user name or password.".into()),
        ),
        Err(ApiError::LoginLocked { retry_after }) => {
            let mut response = login_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                Some(format!(
                    "Too many failed logins. Try again in {} minute(s).",
                    retry_after.div_ceil(60)
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Err(e) => PageError(e).into_response(),
    }
}

pub(crate) async fn logout(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    session::end_session(&state, &caller).await?;
    let mut response = super::see_other("/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    Ok(response)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    groups: Vec<String>,
    message: Option<String>,
    error: Option<String>,
}

pub(crate) async fn show(caller: Caller) -> Response {
    render(&AccountPage {
        chrome: Chrome::new(&caller, "account"),
        groups: caller.user.groups.iter().cloned().collect(),
        message: None,
        error: None,
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    repeat_password: String,
}

/// Changes the password; every session ends, so the answer is the login page.
pub(crate) async fn change_password(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> PageResult {
    let f: PasswordForm = form(body, FORM_LIMIT).await?;
    let again = |status: StatusCode, error: &str| {
        render_status(
            status,
            &AccountPage {
                chrome: Chrome::new(&caller, "account"),
                groups: caller.user.groups.iter().cloned().collect(),
                message: None,
                error: Some(error.to_owned()),
            },
        )
    };
    if f.new_password != f.repeat_password {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "The new password and its repetition differ.",
        ));
    }
    let change = PasswordChange {
        current_password: f.current_password,
        new_password: f.new_password,
    };
    match session::change_own_password(&state, &caller, change).await {
        Ok(()) => {
            let mut response = login_page(
                &state,
                StatusCode::OK,
                "/",
                Some("Password changed. Log in with the new password.".into()),
            );
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session::clear_cookie());
            Ok(response)
        }
        Err(ApiError::InvalidCredentials) => Ok(again(
            StatusCode::UNAUTHORIZED,
            "The current password is wrong.",
        )),
        Err(ApiError::MalformedBody(why)) => Ok(again(StatusCode::BAD_REQUEST, &why)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_login_posted_from_another_site_is_refused() {
        assert!(same_origin(&headers(&[("host", "pw.example:8443")])));
        assert!(same_origin(&headers(&[
            ("host", "pw.example:8443"),
            ("origin", "https://pw.example:8443"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "pw.example:8443"),
            ("origin", "https://evil.example"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "pw.example:8443"),
            ("sec-fetch-site", "cross-site"),
        ])));
        assert!(!same_origin(&headers(&[("origin", "null")])));
    }
}
