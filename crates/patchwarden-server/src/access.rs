//! Who may call a route: the declaration every route makes ([`Access`]), and the middleware
//! that enforces it for operators — authenticate (a session cookie or an API token), check the
//! CSRF token of a session's state-changing request, hold back a user whose one-time password
//! is still unchanged, check the roles, and hand the handler a [`Caller`].
//!
//! **Default-deny**: a route exists only through `routes::declare`, which requires an
//! `Access` for it; a handler that needs an operator takes a `Caller`, which only this
//! middleware provides, so a handler mistakenly declared open fails closed (500) instead of
//! serving anonymous callers. Agents are not operators: their routes authenticate each
//! request's Ed25519 signature in the handler (`auth`), because the signature covers the body.
//!
//! Refusals say which check failed (no credential, CSRF, roles), never anything about the
//! secret presented: an unknown, expired or revoked token or session reads the same.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use patchwarden_api::v1::operator::{
    API_TOKEN_PREFIX, CSRF_FORM_FIELD, CSRF_HEADER, SESSION_COOKIE,
};
use patchwarden_core::audit::Actor;
use patchwarden_store::{Role, SecretHash, User};
use uuid::Uuid;

use crate::clock;
use crate::error::ApiError;
use crate::secrets::{csrf_token, ct_eq};
use crate::state::AppState;

/// The prefix of a session cookie's secret.
pub(crate) const SESSION_PREFIX: &str = "pws_";

/// Every role: any operator.
pub(crate) const EVERYONE: &[Role] = &Role::ALL;
/// Users and roles.
pub(crate) const ADMIN: &[Role] = &[Role::Admin];
/// Reading the user list and the audit chain.
pub(crate) const ADMIN_AUDITOR: &[Role] = &[Role::Admin, Role::Auditor];
/// Making and revoking enrollment tokens.
pub(crate) const ENROLLERS: &[Role] = &[Role::Admin, Role::Officer];
/// Listing enrollment tokens.
pub(crate) const ENROLLMENT_READERS: &[Role] = &[Role::Admin, Role::Officer, Role::Auditor];
/// Changing what the advisory data is (P2): asking for a sync, recording the monthly manual
/// check, importing a file, entering an advisory by hand. The officer runs the process day to
/// day, the security team monitors advisories (seed 000 6.5); approvers, authorisers and
/// auditors judge or read changes and must not shape the data they judge; a provider acts
/// only on its own hosts, and the advisories are everyone's. (Reading the feeds is
/// `EVERYONE`: a source's name, location and freshness say nothing about any host, and a
/// provider's reports depend on knowing the data is current.)
pub(crate) const FEED_OPERATORS: &[Role] = &[Role::Admin, Role::Officer, Role::Security];
/// Reading the triage queue: every role but the provider. An item says that a vulnerability
/// affects some host of the fleet; to a provider, scoped to its own groups (P20), that is
/// knowledge of other groups' hosts, which it is not given anywhere else.
pub(crate) const TRIAGE_READERS: &[Role] = &[
    Role::Admin,
    Role::Officer,
    Role::Approver,
    Role::Authoriser,
    Role::Security,
    Role::Auditor,
];
/// Classifying a new advisory within its four hours (P4, seed 004): the security team and
/// the officer, who review new patches; the admin as for every other operation. The
/// classification becomes the policy's override on findings, so approvers and authorisers,
/// who later judge changes by that criticality, do not set it.
pub(crate) const TRIAGE_DECIDERS: &[Role] = &[Role::Admin, Role::Officer, Role::Security];
/// Requesting a change (seed 000 Appendix A's "requested by"): the officer, the security team
/// (who see the advisories first), a provider for its own hosts, the admin. The core's rules
/// then keep the requester from approving or authorising it.
pub(crate) const CHANGE_REQUESTERS: &[Role] =
    &[Role::Admin, Role::Officer, Role::Security, Role::Provider];
/// Approving a change: approvers only — not the admin, whose other powers would make four
/// eyes two.
pub(crate) const CHANGE_APPROVERS: &[Role] = &[Role::Approver];
/// Authorising a change: authorisers only.
pub(crate) const CHANGE_AUTHORISERS: &[Role] = &[Role::Authoriser];
/// Rejecting a change: whoever may approve or authorise it.
pub(crate) const CHANGE_JUDGES: &[Role] = &[Role::Approver, Role::Authoriser];
/// Implementing a change (schedule, record testing, close) and keeping the calendar: the
/// officer who runs the process, a provider for its own hosts, the admin.
pub(crate) const CHANGE_IMPLEMENTERS: &[Role] = &[Role::Admin, Role::Officer, Role::Provider];
/// Cancelling a change: its requester or an implementer (the core checks which).
pub(crate) const CHANGE_CANCELLERS: &[Role] =
    &[Role::Admin, Role::Officer, Role::Security, Role::Provider];
/// Keeping the calendar of windows and freezes: the officer and the admin (a provider's
/// windows would bind other groups' hosts too).
pub(crate) const CALENDAR_KEEPERS: &[Role] = &[Role::Admin, Role::Officer];
/// Requesting an exception (P16): those who run patching — the officer, the security team, a
/// provider for its own hosts — and the admin.
pub(crate) const EXCEPTION_REQUESTERS: &[Role] =
    &[Role::Admin, Role::Officer, Role::Security, Role::Provider];
/// Approving or rejecting one: the approvers and the security team (never the requester:
/// the core refuses it), and the admin. Not a provider, not an auditor.
pub(crate) const EXCEPTION_DECIDERS: &[Role] = &[Role::Admin, Role::Approver, Role::Security];
/// Acknowledging one as the data owner: any operator who decides or runs changes (the data
/// owner is a person, not a role; never the requester: the core refuses it).
pub(crate) const EXCEPTION_OWNERS: &[Role] = &[
    Role::Admin,
    Role::Officer,
    Role::Approver,
    Role::Authoriser,
    Role::Security,
];
/// Revoking one before its expiry: those who decide, and the officer who runs the process.
pub(crate) const EXCEPTION_REVOKERS: &[Role] =
    &[Role::Admin, Role::Officer, Role::Approver, Role::Security];

/// Reading incidents (problems reported on the public status page after maintenance): every
/// role but the provider. An incident names a service and the change that touched it, which
/// for a provider, scoped to its own groups (P20), is knowledge of other groups' services.
pub(crate) const INCIDENT_READERS: &[Role] = &[
    Role::Admin,
    Role::Officer,
    Role::Approver,
    Role::Authoriser,
    Role::Security,
    Role::Auditor,
];
/// Resolving an incident: the officer who runs the changes that cause them, and the admin.
/// Approvers, authorisers and auditors judge or read the process; the security team does
/// not run maintenance.
pub(crate) const INCIDENT_RESOLVERS: &[Role] = &[Role::Admin, Role::Officer];

/// Who may call a route. Declared once per route, where the route is added
/// (`routes::declare`); the OpenAPI document shows it as the operation's security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential: enrollment (which carries its own token), health, the CA certificate,
    /// agent downloads, the login itself. The reason is written next to the route.
    Open(&'static str),
    /// A signed agent request, verified by the handler.
    Agent,
    /// An operator holding at least one of these roles, whose one-time password has been
    /// changed.
    Roles(&'static [Role]),
    /// Any operator, even one whose one-time password must still be changed: only the
    /// routes that change it, show the session, or end it.
    OwnAccount,
}

impl Access {
    /// Whether an operator with `roles` is admitted (before the password-change rule).
    pub fn admits(self, roles: &BTreeSet<Role>) -> bool {
        match self {
            Access::Roles(allowed) => allowed.iter().any(|r| roles.contains(r)),
            Access::OwnAccount => !roles.is_empty(),
            Access::Open(_) | Access::Agent => false,
        }
    }

    /// The roles admitted, as the OpenAPI document lists them.
    pub fn role_names(self) -> Vec<&'static str> {
        match self {
            Access::Roles(allowed) => allowed.iter().map(|r| r.as_str()).collect(),
            Access::OwnAccount => Role::ALL.iter().map(|r| r.as_str()).collect(),
            Access::Open(_) | Access::Agent => Vec::new(),
        }
    }
}

/// How an operator authenticated.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    Session {
        id_hash: SecretHash,
        csrf_token: String,
        expires_at: Timestamp,
    },
    ApiToken {
        id: Uuid,
        expires_at: Timestamp,
    },
}

impl std::fmt::Debug for Credential {
    /// Never the CSRF token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Session { expires_at, .. } => f
                .debug_struct("Session")
                .field("expires_at", expires_at)
                .finish_non_exhaustive(),
            Credential::ApiToken { id, expires_at } => f
                .debug_struct("ApiToken")
                .field("id", id)
                .field("expires_at", expires_at)
                .finish(),
        }
    }
}

/// Which hosts a caller may see and act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    All,
    /// A provider: these host groups only.
    Groups(BTreeSet<String>),
}

impl Scope {
    pub(crate) fn admits_group(&self, group: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Groups(groups) => groups.contains(group),
        }
    }
}

/// The operator making a request, as the middleware authenticated them.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub user: User,
    /// The roles this request acts with: the user's, or the fewer of an API token.
    pub roles: BTreeSet<Role>,
    pub credential: Credential,
}

impl Caller {
    /// The audit chain's actor.
    pub(crate) fn actor(&self) -> Actor {
        Actor::Operator(self.user.username.clone())
    }

    pub(crate) fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// A provider sees its groups; everyone else every host.
    pub(crate) fn scope(&self) -> Scope {
        if self.roles.iter().all(|r| *r == Role::Provider) {
            Scope::Groups(self.user.groups.clone())
        } else {
            Scope::All
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        // Only `authorize` inserts a caller: a handler that takes one on a route not declared
        // for operators refuses every request rather than serving it unauthenticated.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Internal(format!(
                "{} takes an operator but is not declared for operators",
                parts.uri.path()
            ))
        })
    }
}

/// The value of the session cookie, if the request carries one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Authenticates an operator by API token (`Authorization: Bearer pwt_…`) or session cookie.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    now: Timestamp,
) -> Result<Caller, ApiError> {
    const REFUSED: ApiError =
        ApiError::Unauthenticated("the session or API token is unknown, expired or revoked");
    if let Some(token) = bearer(headers) {
        if !token.starts_with(API_TOKEN_PREFIX) {
            return Err(REFUSED);
        }
        let found = state
            .store
            .find_api_token(SecretHash::of(token.as_bytes()))
            .await?
            .filter(|t| t.usable_at(now))
            .ok_or(REFUSED)?;
        let user = enabled_user(state, found.user).await?;
        // The token's roles, less any its user has lost since it was made.
        let roles = found
            .roles
            .intersection(&user.roles)
            .copied()
            .collect::<BTreeSet<Role>>();
        return Ok(Caller {
            user,
            roles,
            credential: Credential::ApiToken {
                id: found.id,
                expires_at: found.expires_at,
            },
        });
    }
    if let Some(secret) = session_cookie(headers) {
        if !secret.starts_with(SESSION_PREFIX) {
            return Err(REFUSED);
        }
        let id_hash = SecretHash::of(secret.as_bytes());
        let session = state
            .store
            .get_session(id_hash)
            .await?
            .filter(|s| now < s.expires_at)
            .ok_or(REFUSED)?;
        let user = enabled_user(state, session.user).await?;
        return Ok(Caller {
            roles: user.roles.clone(),
            user,
            credential: Credential::Session {
                id_hash,
                csrf_token: csrf_token(secret),
                expires_at: session.expires_at,
            },
        });
    }
    Err(ApiError::Unauthenticated(
        "this route needs an operator: a session cookie (POST /api/v1/session) or an API \
         token (Authorization: Bearer)",
    ))
}

async fn enabled_user(state: &AppState, id: Uuid) -> Result<User, ApiError> {
    state
        .store
        .get_user(id)
        .await?
        .filter(User::is_enabled)
        .ok_or(ApiError::Unauthenticated(
            "the session or API token is unknown, expired or revoked",
        ))
}

/// The largest form body read to find its CSRF field.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Checks the CSRF token of a session's state-changing request: the `X-CSRF-Token` header, or
/// for a form the `csrf_token` field. Returns the request, rebuilt when its body was read.
async fn check_csrf(expected: &str, request: Request) -> Result<Request, ApiError> {
    const REFUSED: ApiError = ApiError::CsrfRejected;
    if let Some(sent) = request.headers().get(CSRF_HEADER) {
        return if ct_eq(sent.as_bytes(), expected.as_bytes()) {
            Ok(request)
        } else {
            Err(REFUSED)
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(REFUSED);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_FORM_BYTES as u64,
        })?;
    let found = form_urlencoded_field(&bytes, CSRF_FORM_FIELD);
    if !found.is_some_and(|sent| ct_eq(sent.as_bytes(), expected.as_bytes())) {
        return Err(REFUSED);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The value of `field` in a form body. CSRF tokens are hex, so only a value without
/// percent-escapes can match; an escaped one is returned as sent and fails the comparison.
fn form_urlencoded_field<'a>(body: &'a [u8], field: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == field)
        .map(|(_, value)| value)
}

/// The middleware of every operator route: see the module documentation.
pub(crate) async fn authorize(
    State((state, access)): State<(Arc<AppState>, Access)>,
    request: Request,
    next: Next,
) -> Response {
    match admit(&state, access, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn admit(state: &AppState, access: Access, request: Request) -> Result<Request, ApiError> {
    let now = clock::now();
    let caller = authenticate(state, request.headers(), now).await?;
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let mut request = match &caller.credential {
        Credential::Session { csrf_token, .. } if !safe => check_csrf(csrf_token, request).await?,
        _ => request,
    };
    if caller.user.must_change_password && access != Access::OwnAccount {
        return Err(ApiError::PasswordChangeRequired);
    }
    if !access.admits(&caller.roles) {
        return Err(ApiError::Forbidden(format!(
            "this route admits the roles {}; the request acts with {}",
            access.role_names().join(", "),
            if caller.roles.is_empty() {
                "none".to_owned()
            } else {
                caller
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    tracing::Span::current().record("operator", tracing::field::display(&caller.user.username));
    request.extensions_mut().insert(caller);
    Ok(request)
}

/// The middleware of every operator page (`Routes::page`): the same checks as [`authorize`],
/// with refusals a person can act on. Without a valid session the answer is the login form
/// (401), which comes back to this page; a one-time password still to change leads to the
/// form that changes it; any other refusal is explained on a page with its status. Each
/// refusal names its problem code in `X-Problem-Code`, as a problem document would.
pub(crate) async fn authorize_page(
    State((state, access)): State<(Arc<AppState>, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let back_to = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    match admit(&state, access, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => crate::web::refusal(&state, e, &method, &back_to),
    }
}

/// The address a request came from, when the listener recorded it.
pub(crate) fn source_address(request_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others_and_only_by_its_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            format!("a=1; {SESSION_COOKIE}=pws_x; b=2").parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some("pws_x"));
        let mut other = HeaderMap::new();
        other.append(header::COOKIE, "pw_session=pws_x".parse().unwrap());
        assert_eq!(session_cookie(&other), None);
    }

    #[test]
    fn a_form_field_is_found_by_name() {
        assert_eq!(
            form_urlencoded_field(b"a=1&csrf_token=abc&b=2", "csrf_token"),
            Some("abc")
        );
        assert_eq!(form_urlencoded_field(b"a=1", "csrf_token"), None);
        assert_eq!(form_urlencoded_field(&[0xff, 0xfe], "csrf_token"), None);
    }

    #[test]
    fn roles_admit_as_declared() {
        let auditor: BTreeSet<Role> = [Role::Auditor].into();
        assert!(Access::Roles(ADMIN_AUDITOR).admits(&auditor));
        assert!(!Access::Roles(ADMIN).admits(&auditor));
        assert!(Access::OwnAccount.admits(&auditor));
        assert!(!Access::OwnAccount.admits(&BTreeSet::new()));
        assert!(!Access::Open("x").admits(&auditor));
    }
}
