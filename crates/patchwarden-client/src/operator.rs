//! The operator API's typed client: what the `patchwarden` CLI (and scripts through it) use.
//!
//! An operator client authenticates with an API token (`Authorization: Bearer pwt_…`), as the
//! server's `access.rs` reads it; the one exception is [`Client::login`], which makes a
//! browser-style session (cookie plus CSRF token) only long enough to create such a token.
//! Every error the server answers arrives as its problem document ([`ClientError::Problem`]).

use patchwarden_api::v1::feeds::{
    AdvisoryQuery, FeedSourceDetail, FeedSourceView, ImportOutcome, ImportQuery, ManualCheck,
    TriageClassification, TriageItemView, TriagePage, TriageQuery,
};
use patchwarden_api::v1::fleet::{
    AdvisoryView, AuditPage, AuditQuery, AuditVerification, FindingPage, FindingQuery, HostDetail,
    HostPage, HostQuery,
};
use patchwarden_api::v1::operator::{
    ApiTokenView, CSRF_HEADER, CreatedApiToken, CreatedEnrollmentToken, CreatedUser,
    EnrollmentTokenView, LoginRequest, NewApiTokenRequest, NewEnrollmentTokenRequest,
    NewUserRequest, PasswordChange, RolesChange, SESSION_COOKIE, SessionView, UserView,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

mod exceptions;

use crate::agent::RawResponse;
use crate::{Client, ClientError};

/// How a request proves who sends it.
#[derive(Clone)]
enum Credential {
    /// An API token's secret.
    Bearer(String),
    /// A session made by a login: its cookie and the CSRF token changes need.
    Session { cookie: String, csrf: String },
}

/// A client acting for one operator.
#[derive(Clone)]
pub struct OperatorClient {
    client: Client,
    credential: Credential,
}

impl std::fmt::Debug for OperatorClient {
    // The credential is a secret: never in a debug form, so never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorClient")
            .field("server", &self.client.base())
            .finish_non_exhaustive()
    }
}

/// A body to send: JSON, raw bytes (a feed file) or none.
pub(crate) enum Body<'a> {
    None,
    Json(Vec<u8>),
    Bytes(&'a [u8]),
}

pub(crate) fn to_json<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(value).map_err(|e| ClientError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// A path segment with everything but unreserved characters percent-encoded, so an advisory
/// or feed name cannot step into another route (`../`, `?`, `#`).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // `.` and `..` alone are path navigation, not names.
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

impl Client {
    /// An operator client that sends `token` (an API token's `pwt_…` secret) with every request.
    pub fn operator(&self, token: &str) -> OperatorClient {
        OperatorClient {
            client: self.clone(),
            credential: Credential::Bearer(token.to_owned()),
        }
    }

    /// Logs in with a user name and password: an operator client on the new session (for
    /// creating an API token; end the session with [`OperatorClient::logout`]).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(OperatorClient, SessionView), ClientError> {
        let body = to_json(
            &LoginRequest {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            "login",
        )?;
        let response = self
            .http
            .post(self.url("/api/v1/session"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(ClientError::transport)?;
        // The cookie is read before the body: `RawResponse` keeps no Set-Cookie.
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let first = v.split(';').next()?.trim();
                let (name, value) = first.split_once('=')?;
                (name == SESSION_COOKIE).then(|| value.to_owned())
            });
        let raw = RawResponse::read(response).await?;
        let view: SessionView = raw.json("session")?;
        let (Some(cookie), Some(csrf)) = (cookie, view.csrf_token.clone()) else {
            return Err(ClientError::Decode {
                what: "login answer",
                reason: "no session cookie or CSRF token".into(),
            });
        };
        Ok((
            OperatorClient {
                client: self.clone(),
                credential: Credential::Session { cookie, csrf },
            },
            view,
        ))
    }
}

impl OperatorClient {
    /// The server's base URL.
    pub fn base(&self) -> &str {
        self.client.base()
    }

    /// The client underneath (for a login to the same server, trusted the same way).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn send<Q: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: Option<&Q>,
        body: Body<'_>,
    ) -> Result<RawResponse, ClientError> {
        let mut request = self
            .client
            .http
            .request(method.clone(), self.client.url(path));
        if let Some(q) = query {
            request = request.query(q);
        }
        request = match &self.credential {
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::Session { cookie, csrf } => {
                let r = request.header("cookie", format!("{SESSION_COOKIE}={cookie}"));
                if method == Method::GET {
                    r
                } else {
                    r.header(CSRF_HEADER, csrf)
                }
            }
        };
        request = match body {
            Body::None => request,
            Body::Json(bytes) => request
                .header("content-type", "application/json")
                .body(bytes),
            Body::Bytes(bytes) => request
                .header("content-type", "application/octet-stream")
                .body(bytes.to_vec()),
        };
        let response = request.send().await.map_err(ClientError::transport)?;
        RawResponse::read(response).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<T, ClientError> {
        self.send::<()>(Method::GET, path, None, Body::None)
            .await?
            .json(what)
    }

    pub(crate) async fn get_query<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
        what: &'static str,
    ) -> Result<T, ClientError> {
        self.send(Method::GET, path, Some(query), Body::None)
            .await?
            .json(what)
    }

    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let body = match body {
            Some(b) => Body::Json(to_json(b, what)?),
            None => Body::None,
        };
        self.send::<()>(method, path, None, body).await?.json(what)
    }

    /// `GET /api/v1/session`: who the caller is and with which roles.
    pub async fn session(&self) -> Result<SessionView, ClientError> {
        self.get("/api/v1/session", "session").await
    }

    /// `DELETE /api/v1/session`: ends a login's session.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.send::<()>(Method::DELETE, "/api/v1/session", None, Body::None)
            .await?
            .ok()
            .map(drop)
    }

    /// `PUT /api/v1/me/password`.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<(), ClientError> {
        let body = to_json(
            &PasswordChange {
                current_password: current.to_owned(),
                new_password: new.to_owned(),
            },
            "password change",
        )?;
        self.send::<()>(Method::PUT, "/api/v1/me/password", None, Body::Json(body))
            .await?
            .ok()
            .map(drop)
    }

    pub async fn users(&self) -> Result<Vec<UserView>, ClientError> {
        self.get("/api/v1/users", "users").await
    }

    pub async fn create_user(&self, request: &NewUserRequest) -> Result<CreatedUser, ClientError> {
        self.call(Method::POST, "/api/v1/users", Some(request), "new user")
            .await
    }

    pub async fn set_roles(
        &self,
        user: Uuid,
        change: &RolesChange,
    ) -> Result<UserView, ClientError> {
        let path = format!("/api/v1/users/{user}/roles");
        self.call(Method::PUT, &path, Some(change), "user").await
    }

    pub async fn disable_user(&self, user: Uuid) -> Result<UserView, ClientError> {
        let path = format!("/api/v1/users/{user}/disable");
        self.call::<(), _>(Method::POST, &path, None, "user").await
    }

    pub async fn enable_user(&self, user: Uuid) -> Result<UserView, ClientError> {
        let path = format!("/api/v1/users/{user}/enable");
        self.call::<(), _>(Method::POST, &path, None, "user").await
    }

    /// The caller's own API tokens.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenView>, ClientError> {
        self.get("/api/v1/api-tokens", "API tokens").await
    }

    pub async fn create_api_token(
        &self,
        request: &NewApiTokenRequest,
    ) -> Result<CreatedApiToken, ClientError> {
        self.call(
            Method::POST,
            "/api/v1/api-tokens",
            Some(request),
            "new API token",
        )
        .await
    }

    pub async fn revoke_api_token(&self, id: Uuid) -> Result<ApiTokenView, ClientError> {
        let path = format!("/api/v1/api-tokens/{id}");
        self.call::<(), _>(Method::DELETE, &path, None, "API token")
            .await
    }

    pub async fn enrollment_tokens(&self) -> Result<Vec<EnrollmentTokenView>, ClientError> {
        self.get("/api/v1/enrollment-tokens", "enrollment tokens")
            .await
    }

    pub async fn create_enrollment_token(
        &self,
        request: &NewEnrollmentTokenRequest,
    ) -> Result<CreatedEnrollmentToken, ClientError> {
        self.call(
            Method::POST,
            "/api/v1/enrollment-tokens",
            Some(request),
            "new enrollment token",
        )
        .await
    }

    pub async fn revoke_enrollment_token(
        &self,
        id: Uuid,
    ) -> Result<EnrollmentTokenView, ClientError> {
        let path = format!("/api/v1/enrollment-tokens/{id}");
        self.call::<(), _>(Method::DELETE, &path, None, "enrollment token")
            .await
    }

    pub async fn hosts(&self, query: &HostQuery) -> Result<HostPage, ClientError> {
        self.get_query("/api/v1/hosts", query, "hosts").await
    }

    pub async fn host(&self, id: Uuid) -> Result<HostDetail, ClientError> {
        self.get(&format!("/api/v1/hosts/{id}"), "host").await
    }

    pub async fn findings(&self, query: &FindingQuery) -> Result<FindingPage, ClientError> {
        self.get_query("/api/v1/findings", query, "findings").await
    }

    pub async fn advisory(&self, id: &str) -> Result<AdvisoryView, ClientError> {
        self.get(&format!("/api/v1/advisories/{}", segment(id)), "advisory")
            .await
    }

    pub async fn audit(&self, query: &AuditQuery) -> Result<AuditPage, ClientError> {
        self.get_query("/api/v1/audit", query, "audit events").await
    }

    pub async fn audit_verify(&self) -> Result<AuditVerification, ClientError> {
        self.get("/api/v1/audit/verify", "audit verification").await
    }

    pub async fn feeds(&self) -> Result<Vec<FeedSourceView>, ClientError> {
        self.get("/api/v1/feeds", "feed sources").await
    }

    pub async fn feed(&self, name: &str) -> Result<FeedSourceDetail, ClientError> {
        self.get(&format!("/api/v1/feeds/{}", segment(name)), "feed source")
            .await
    }

    /// Asks for a sync of a source (202: recorded, run by the server's scheduler).
    pub async fn sync_feed(&self, name: &str) -> Result<FeedSourceView, ClientError> {
        let path = format!("/api/v1/feeds/{}/sync", segment(name));
        self.call::<(), _>(Method::POST, &path, None, "feed source")
            .await
    }

    /// Records a person's check of a vendor without a feed.
    pub async fn check_feed(
        &self,
        name: &str,
        check: &ManualCheck,
    ) -> Result<FeedSourceView, ClientError> {
        let path = format!("/api/v1/feeds/{}/check", segment(name));
        self.call(Method::POST, &path, Some(check), "feed source")
            .await
    }

    /// Imports a feed file (its bytes as the body).
    pub async fn import_feed(
        &self,
        query: &ImportQuery,
        file: &[u8],
    ) -> Result<ImportOutcome, ClientError> {
        self.send(
            Method::POST,
            "/api/v1/feeds/import",
            Some(query),
            Body::Bytes(file),
        )
        .await?
        .json("import outcome")
    }

    /// Enters one advisory by hand (an OSV record) into a manual source.
    pub async fn enter_advisory(
        &self,
        query: &AdvisoryQuery,
        osv: &serde_json::Value,
    ) -> Result<ImportOutcome, ClientError> {
        let body = Body::Json(to_json(osv, "advisory")?);
        self.send(Method::POST, "/api/v1/advisories", Some(query), body)
            .await?
            .json("import outcome")
    }

    pub async fn triage(&self, query: &TriageQuery) -> Result<TriagePage, ClientError> {
        self.get_query("/api/v1/triage", query, "triage queue")
            .await
    }

    pub async fn classify(
        &self,
        id: i64,
        classification: &TriageClassification,
    ) -> Result<TriageItemView, ClientError> {
        let path = format!("/api/v1/triage/{id}/classify");
        self.call(Method::POST, &path, Some(classification), "triage item")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_leave_their_route() {
        assert_eq!(segment("CVE-2024-1234"), "CVE-2024-1234");
        assert_eq!(segment("../users"), "..%2Fusers");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a?b#c"), "a%3Fb%23c");
    }

    #[test]
    fn the_token_stays_out_of_debug_forms() {
        let client = Client::new("http://127.0.0.1:1", &crate::Trust::PlainHttp).unwrap();
        let op = client.operator("pwt_very-secret");
        assert!(!format!("{op:?}").contains("very-secret"));
    }
}
