//! The authorisation matrix: every route of the API × every kind of caller — anonymous, an
//! agent's signed request, and an operator of each role (a provider inside and outside its
//! host groups) — each cell allowed or refused as declared, over HTTP against a real server.
//!
//! [`EXPECTED`] is this test's own copy of who may call what. The server's declarations must
//! equal it route for route, so a route added, removed or re-declared fails here until the
//! table is updated — a reviewer sees the change of access in the diff of this file. A route
//! added to the router without a declaration cannot get here: `no_route_is_added_outside_the
//! _declarations` finds it in the source, and the server refuses it for everyone.

mod feeds_support;
mod operator_support;

use std::collections::BTreeSet;

use feeds_support::shared_data;
use jiff::SignedDuration;
use operator_support::{Answer, PASSWORD, Req, Server, Session};
use patchwarden_api::v1::agent::{EnrollRequest, EnrollmentSecret};
use patchwarden_api::v1::fleet::HostPage;
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_api::v1::signing;
use patchwarden_client::{AgentClient, AgentKey, Client, Signing, Trust};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::{HostFacts, OsInfo};
use patchwarden_server::Access;
use patchwarden_server::admin::{self, TokenRequest};
use patchwarden_store::feed::{FeedSourceSpec, SourceKind, SourceOrigin};
use patchwarden_store::triage::NewTriageItem;
use patchwarden_store::{NewApiToken, Role, SecretHash};
use uuid::Uuid;

/// Who may call a route, as this test expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Open,
    Agent,
    /// Operators of these roles.
    Roles(&'static [&'static str]),
    /// Any operator, also before a one-time password is changed.
    OwnAccount,
}

const ALL: &[&str] = &[
    "admin",
    "officer",
    "approver",
    "authoriser",
    "security",
    "auditor",
    "provider",
];

/// Reading incidents: every role but the provider (scoped to its groups).
const INCIDENT_READERS: &[&str] = &[
    "admin",
    "officer",
    "approver",
    "authoriser",
    "security",
    "auditor",
];

/// Every route, in the order the cells run (logout last: it ends the callers' sessions).
const EXPECTED: &[(&str, &str, Expect)] = &[
    ("POST", "/api/v1/agent/enroll", Expect::Open),
    ("GET", "/healthz", Expect::Open),
    ("GET", "/readyz", Expect::Open),
    ("GET", "/api/v1/ca.pem", Expect::Open),
    ("GET", "/downloads/{file}", Expect::Open),
    ("POST", "/api/v1/session", Expect::Open),
    ("POST", "/api/v1/agent/check-in", Expect::Agent),
    ("POST", "/api/v1/agent/inventory", Expect::Agent),
    ("GET", "/api/v1/agent/jobs/{id}", Expect::Agent),
    ("POST", "/api/v1/agent/jobs/{id}/progress", Expect::Agent),
    ("POST", "/api/v1/agent/jobs/{id}/result", Expect::Agent),
    ("GET", "/api/v1/session", Expect::OwnAccount),
    ("PUT", "/api/v1/me/password", Expect::OwnAccount),
    ("GET", "/api/v1/openapi.json", Expect::Roles(ALL)),
    ("GET", "/api/v1/users", Expect::Roles(&["admin", "auditor"])),
    ("POST", "/api/v1/users", Expect::Roles(&["admin"])),
    ("PUT", "/api/v1/users/{id}/roles", Expect::Roles(&["admin"])),
    (
        "POST",
        "/api/v1/users/{id}/disable",
        Expect::Roles(&["admin"]),
    ),
    (
        "POST",
        "/api/v1/users/{id}/enable",
        Expect::Roles(&["admin"]),
    ),
    ("GET", "/api/v1/api-tokens", Expect::Roles(ALL)),
    ("POST", "/api/v1/api-tokens", Expect::Roles(ALL)),
    ("DELETE", "/api/v1/api-tokens/{id}", Expect::Roles(ALL)),
    (
        "GET",
        "/api/v1/enrollment-tokens",
        Expect::Roles(&["admin", "officer", "auditor"]),
    ),
    (
        "POST",
        "/api/v1/enrollment-tokens",
        Expect::Roles(&["admin", "officer"]),
    ),
    (
        "DELETE",
        "/api/v1/enrollment-tokens/{id}",
        Expect::Roles(&["admin", "officer"]),
    ),
    ("GET", "/api/v1/hosts", Expect::Roles(ALL)),
    ("GET", "/api/v1/hosts/{id}", Expect::Roles(ALL)),
    ("GET", "/api/v1/findings", Expect::Roles(ALL)),
    ("GET", "/api/v1/advisories/{id}", Expect::Roles(ALL)),
    ("GET", "/api/v1/feeds", Expect::Roles(ALL)),
    ("GET", "/api/v1/feeds/{name}", Expect::Roles(ALL)),
    (
        "POST",
        "/api/v1/feeds/{name}/sync",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    (
        "POST",
        "/api/v1/feeds/{name}/check",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    (
        "POST",
        "/api/v1/feeds/import",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    (
        "POST",
        "/api/v1/advisories",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    (
        "GET",
        "/api/v1/triage",
        Expect::Roles(&[
            "admin",
            "officer",
            "approver",
            "authoriser",
            "security",
            "auditor",
        ]),
    ),
    (
        "POST",
        "/api/v1/triage/{id}/classify",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    ("GET", "/api/v1/changes", Expect::Roles(ALL)),
    (
        "POST",
        "/api/v1/changes",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    ("GET", "/api/v1/changes/{number}", Expect::Roles(ALL)),
    (
        "PUT",
        "/api/v1/changes/{number}",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/submit",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/approve",
        Expect::Roles(&["approver"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/authorise",
        Expect::Roles(&["authoriser"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/reject",
        Expect::Roles(&["approver", "authoriser"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/schedule",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/record-testing",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/close",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/cancel",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/promote",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/api/v1/changes/{number}/rollback",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    ("GET", "/api/v1/calendar", Expect::Roles(ALL)),
    (
        "PUT",
        "/api/v1/calendar/{name}",
        Expect::Roles(&["admin", "officer"]),
    ),
    (
        "DELETE",
        "/api/v1/calendar/{name}",
        Expect::Roles(&["admin", "officer"]),
    ),
    ("GET", "/api/v1/exceptions", Expect::Roles(ALL)),
    ("GET", "/api/v1/exceptions/{id}", Expect::Roles(ALL)),
    (
        "POST",
        "/api/v1/exceptions",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "POST",
        "/api/v1/exceptions/{id}/acknowledge",
        Expect::Roles(&["admin", "officer", "approver", "authoriser", "security"]),
    ),
    (
        "POST",
        "/api/v1/exceptions/{id}/approve",
        Expect::Roles(&["admin", "approver", "security"]),
    ),
    (
        "POST",
        "/api/v1/exceptions/{id}/reject",
        Expect::Roles(&["admin", "approver", "security"]),
    ),
    (
        "POST",
        "/api/v1/exceptions/{id}/revoke",
        Expect::Roles(&["admin", "officer", "approver", "security"]),
    ),
    ("GET", "/api/v1/audit", Expect::Roles(&["admin", "auditor"])),
    (
        "GET",
        "/api/v1/audit/verify",
        Expect::Roles(&["admin", "auditor"]),
    ),
    // The web UI's own pages.
    ("GET", "/login", Expect::Open),
    ("POST", "/login", Expect::Open),
    ("GET", "/assets/{file}", Expect::Open),
    ("GET", "/account", Expect::OwnAccount),
    ("POST", "/account/password", Expect::OwnAccount),
    ("GET", "/", Expect::Roles(ALL)),
    // Reports: every operator role reads them (a provider its own groups' part).
    ("GET", "/reports", Expect::Roles(ALL)),
    ("GET", "/reports/monthly/{month}", Expect::Roles(ALL)),
    ("GET", "/changes/{number}/form", Expect::Roles(ALL)),
    ("GET", "/changes/{number}/form.pdf", Expect::Roles(ALL)),
    // The fleet's pages (issue 10): each admits whom its API route admits.
    ("GET", "/dashboard", Expect::Roles(ALL)),
    ("GET", "/hosts", Expect::Roles(ALL)),
    ("GET", "/hosts/{id}", Expect::Roles(ALL)),
    ("GET", "/findings", Expect::Roles(ALL)),
    ("GET", "/advisories/{id}", Expect::Roles(ALL)),
    (
        "GET",
        "/triage",
        Expect::Roles(&[
            "admin",
            "officer",
            "approver",
            "authoriser",
            "security",
            "auditor",
        ]),
    ),
    (
        "POST",
        "/triage/{id}/classify",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    ("GET", "/audit", Expect::Roles(&["admin", "auditor"])),
    (
        "GET",
        "/audit/verification",
        Expect::Roles(&["admin", "auditor"]),
    ),
    ("GET", "/admin", Expect::Roles(&["admin"])),
    ("GET", "/admin/users", Expect::Roles(&["admin", "auditor"])),
    ("POST", "/admin/users", Expect::Roles(&["admin"])),
    ("POST", "/admin/users/{id}/roles", Expect::Roles(&["admin"])),
    (
        "POST",
        "/admin/users/{id}/disable",
        Expect::Roles(&["admin"]),
    ),
    (
        "POST",
        "/admin/users/{id}/enable",
        Expect::Roles(&["admin"]),
    ),
    (
        "GET",
        "/admin/enrollment-tokens",
        Expect::Roles(&["admin", "officer", "auditor"]),
    ),
    (
        "POST",
        "/admin/enrollment-tokens",
        Expect::Roles(&["admin", "officer"]),
    ),
    (
        "POST",
        "/admin/enrollment-tokens/{id}/revoke",
        Expect::Roles(&["admin", "officer"]),
    ),
    ("GET", "/admin/feeds", Expect::Roles(ALL)),
    (
        "POST",
        "/admin/feeds/{name}/sync",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    (
        "POST",
        "/admin/feeds/{name}/check",
        Expect::Roles(&["admin", "officer", "security"]),
    ),
    ("GET", "/account/tokens", Expect::Roles(ALL)),
    ("POST", "/account/tokens", Expect::Roles(ALL)),
    ("POST", "/account/tokens/{id}/revoke", Expect::Roles(ALL)),
    // The change, calendar and exception pages.
    ("GET", "/changes", Expect::Roles(ALL)),
    (
        "POST",
        "/changes",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "GET",
        "/changes/new",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    ("GET", "/changes/{number}", Expect::Roles(ALL)),
    (
        "POST",
        "/changes/{number}/submit",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "POST",
        "/changes/{number}/approve",
        Expect::Roles(&["approver"]),
    ),
    (
        "POST",
        "/changes/{number}/authorise",
        Expect::Roles(&["authoriser"]),
    ),
    (
        "POST",
        "/changes/{number}/reject",
        Expect::Roles(&["approver", "authoriser"]),
    ),
    (
        "POST",
        "/changes/{number}/schedule",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/changes/{number}/record-testing",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/changes/{number}/promote",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/changes/{number}/close",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    (
        "POST",
        "/changes/{number}/cancel",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "POST",
        "/changes/{number}/rollback",
        Expect::Roles(&["admin", "officer", "provider"]),
    ),
    ("GET", "/calendar", Expect::Roles(ALL)),
    ("POST", "/calendar", Expect::Roles(&["admin", "officer"])),
    (
        "POST",
        "/calendar/{name}/delete",
        Expect::Roles(&["admin", "officer"]),
    ),
    ("GET", "/exceptions", Expect::Roles(ALL)),
    (
        "POST",
        "/exceptions",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    (
        "GET",
        "/exceptions/new",
        Expect::Roles(&["admin", "officer", "security", "provider"]),
    ),
    ("GET", "/exceptions/{id}", Expect::Roles(ALL)),
    (
        "POST",
        "/exceptions/{id}/acknowledge",
        Expect::Roles(&["admin", "officer", "approver", "authoriser", "security"]),
    ),
    (
        "POST",
        "/exceptions/{id}/approve",
        Expect::Roles(&["admin", "approver", "security"]),
    ),
    (
        "POST",
        "/exceptions/{id}/reject",
        Expect::Roles(&["admin", "approver", "security"]),
    ),
    (
        "POST",
        "/exceptions/{id}/revoke",
        Expect::Roles(&["admin", "officer", "approver", "security"]),
    ),
    // The public status page, its report form, the calendar feed, and incidents.
    ("GET", "/status", Expect::Open),
    ("POST", "/status/report", Expect::Open),
    ("GET", "/calendar.ics", Expect::Open),
    ("GET", "/incidents", Expect::Roles(INCIDENT_READERS)),
    ("GET", "/incidents/{id}", Expect::Roles(INCIDENT_READERS)),
    (
        "POST",
        "/incidents/{id}/resolve",
        Expect::Roles(&["admin", "officer"]),
    ),
    ("GET", "/api/v1/incidents", Expect::Roles(INCIDENT_READERS)),
    (
        "GET",
        "/api/v1/incidents/{id}",
        Expect::Roles(INCIDENT_READERS),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/resolve",
        Expect::Roles(&["admin", "officer"]),
    ),
    // Each operator logs out of a session of its own (made for the cell).
    ("POST", "/logout", Expect::OwnAccount),
    ("DELETE", "/api/v1/session", Expect::OwnAccount),
];

fn expect_of(access: Access) -> Expect {
    match access {
        Access::Open(_) => Expect::Open,
        Access::Agent => Expect::Agent,
        Access::OwnAccount => Expect::OwnAccount,
        Access::Roles(_) => Expect::Roles(&[]),
    }
}

/// A caller of the matrix.
#[derive(Debug, Clone)]
enum Caller {
    Anonymous,
    Agent,
    Operator(Role, Box<Session>),
}

impl Caller {
    fn name(&self) -> String {
        match self {
            Caller::Anonymous => "anonymous".into(),
            Caller::Agent => "agent".into(),
            Caller::Operator(r, _) => r.as_str().into(),
        }
    }
}

/// Whether the answer is a refusal by the access checks (as opposed to an answer of the
/// route itself: a result, "not found", a malformed body, wrong login credentials).
fn refused(a: &Answer) -> bool {
    matches!(a.status, 401 | 403)
        && matches!(
            a.code(),
            Some(
                ProblemCode::Unauthenticated
                    | ProblemCode::SignatureInvalid
                    | ProblemCode::ClockSkew
                    | ProblemCode::Replayed
                    | ProblemCode::Forbidden
                    | ProblemCode::CsrfRejected
                    | ProblemCode::PasswordChangeRequired
            )
        )
}

fn facts(name: &str) -> HostFacts {
    HostFacts {
        hostname: name.into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: Some("12".into()),
            ecosystem: Some("Debian:12".into()),
            ..OsInfo::default()
        },
        machine_id: Some(format!("{:032x}", Uuid::new_v4().as_u128())),
        ..HostFacts::default()
    }
}

async fn enroll(server: &Server, client: &Client, group: &str) -> AgentClient {
    let (_, secret) = admin::create_enrollment_token(
        server.store().as_ref(),
        TokenRequest {
            group: group.into(),
            valid_for: SignedDuration::from_hours(1),
            max_uses: 1,
            note: None,
        },
        Actor::Operator("test".into()),
        patchwarden_server::clock::now(),
    )
    .await
    .unwrap();
    let key = AgentKey::generate().unwrap();
    let response = client
        .enroll(
            &key,
            &EnrollRequest {
                token: EnrollmentSecret(secret),
                public_key: key.public_hex(),
                facts: facts(&format!("{group}-1")),
                replace: false,
                agent_version: "matrix".into(),
            },
        )
        .await
        .unwrap();
    client.agent(&response.host_id, key)
}

/// A correctly signed enrollment request with the secret `token`: the open route's own
/// request, sent by every caller with the caller's credential added.
fn enrollment(token: &str) -> Req {
    let key = AgentKey::generate().unwrap();
    let body = serde_json::to_vec(&EnrollRequest {
        token: EnrollmentSecret(token.into()),
        public_key: key.public_hex(),
        facts: facts("new"),
        replace: false,
        agent_version: "matrix".into(),
    })
    .unwrap();
    let s = Signing::now(None);
    let message = signing::message(
        "POST",
        "/api/v1/agent/enroll",
        None,
        s.timestamp,
        &s.nonce,
        &body,
    );
    let mut r = Req::post("/api/v1/agent/enroll")
        .header("content-type", "application/json")
        .header(signing::HEADER_TIMESTAMP, &s.timestamp.to_string())
        .header(signing::HEADER_NONCE, &s.nonce)
        .header(signing::HEADER_SIGNATURE, &key.sign_hex(&message));
    r.body = body;
    r
}

/// What the matrix targets.
struct Targets {
    user: Uuid,
    api_token: Uuid,
    enrollment_token: Uuid,
    enrollment_secret: String,
    inside_host: String,
    outside_host: String,
    /// A queued vulnerability to classify.
    triage_item: i64,
}

/// A real OSV record from the shared data.
fn osv_record(name: &str) -> Vec<u8> {
    std::fs::read(shared_data().join("osv/misc").join(name)).unwrap()
}

/// The route's own request: its path with the parameters filled in, and a body.
fn request(method: &str, path: &str, t: &Targets, n: usize) -> Req {
    let concrete = path
        .replace("/users/{id}", &format!("/users/{}", t.user))
        .replace("/api-tokens/{id}", &format!("/api-tokens/{}", t.api_token))
        .replace(
            "/account/tokens/{id}",
            &format!("/account/tokens/{}", t.api_token),
        )
        .replace(
            "/enrollment-tokens/{id}",
            &format!("/enrollment-tokens/{}", t.enrollment_token),
        )
        .replace("/hosts/{id}", &format!("/hosts/{}", t.inside_host))
        .replace("/advisories/{id}", "/advisories/CVE-2024-0001")
        // A fetched source to sync; the manual one to check.
        .replace("/feeds/{name}/check", "/feeds/acme-firmware/check")
        .replace("/feeds/{name}", "/feeds/matrix-kev")
        .replace(
            "/triage/{id}/classify",
            &format!("/triage/{}/classify", t.triage_item),
        )
        // No such exception: an allowed caller is answered "not found", not refused.
        .replace("/exceptions/{id}", "/exceptions/EXC-1999-0001")
        // No such incident: an admitted caller is answered 404, a refused one 401 or 403.
        .replace("/incidents/{id}", "/incidents/INC-1999-0001")
        .replace("/jobs/{id}", &format!("/jobs/{}", Uuid::new_v4()))
        // No such change or entry: an admitted caller is answered 404, a refused one 403.
        .replace("/changes/{number}", "/changes/PCR-2026-0999")
        .replace("/calendar/{name}", &format!("/calendar/matrix-{n}"))
        .replace("/assets/{file}", "/assets/app.css")
        .replace("{month}", "2026-10.csv")
        .replace("{file}", "patchwarden.deb");
    let r = Req::new(method, &concrete);
    let body = match (method, path) {
        ("POST", "/api/v1/agent/enroll") => return enrollment(&t.enrollment_secret),
        ("POST", "/api/v1/session") => serde_json::json!({
            "username": format!("nobody-{n}"), "password": "wrong",
        }),
        ("PUT", "/api/v1/me/password") => serde_json::json!({
            "current_password": "not the password",
            "new_password": "a long enough new password",
        }),
        ("POST", "/api/v1/users") => {
            serde_json::json!({"username": format!("made-{n}"), "roles": ["auditor"]})
        }
        ("PUT", "/api/v1/users/{id}/roles") => serde_json::json!({"roles": ["auditor"]}),
        ("POST", "/api/v1/api-tokens") => serde_json::json!({"name": format!("matrix {n}")}),
        ("POST", "/api/v1/enrollment-tokens") => serde_json::json!({"group": "web"}),
        ("POST", "/api/v1/feeds/{name}/check") => {
            serde_json::json!({"note": format!("checked the vendor's page ({n}): nothing new")})
        }
        ("POST", "/api/v1/exceptions") => serde_json::json!({
            "justification": "no_vendor_patch",
            "explanation": format!("the vendor has no fix yet ({n})"),
            "controls": [{"kind": "network_segmentation", "description": "own VLAN"}],
            "expires_at": "2099-01-01T00:00:00Z",
            "hosts": [t.inside_host],
        }),
        ("POST", "/api/v1/exceptions/{id}/reject" | "/api/v1/exceptions/{id}/revoke") => {
            serde_json::json!({"reason": "matrix"})
        }
        ("POST", "/api/v1/triage/{id}/classify") => serde_json::json!({
            "classification": "low", "reason": format!("reviewed in the matrix ({n})"),
        }),
        ("POST", "/api/v1/feeds/import") => {
            let mut r = Req::post(&format!("{concrete}?kind=osv&source=matrix-osv"))
                .header("content-type", "application/octet-stream");
            r.body = osv_record("trustify-osv/GHSA-fmj7-7gfw-64pg.json");
            return r;
        }
        ("POST", "/api/v1/advisories") => {
            let mut r = r.header("content-type", "application/json");
            r.body = osv_record("osv-schema-linter-testdata/GO-2020-0001.json");
            return r;
        }
        ("POST", "/login") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = format!("username=nobody-{n}&password=wrong&next=%2F").into_bytes();
            return r;
        }
        // The pages' forms: each well-formed, so an admitted caller gets the page's own answer
        // (a 303, a 404 for the change or exception that is not there, a refusal of the core
        // in a 409 or 422), never an access refusal.
        ("POST", "/changes") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = format!(
                "title=matrix+{n}&kind=normal&justification=j&risk=low&testing=required\
                 &rollback_plan=r&host={}&patches=openssl+3.0.15-1",
                t.inside_host
            )
            .into_bytes();
            return r;
        }
        ("POST", "/calendar") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = format!(
                "kind=freeze&name=matrix-page-{n}&start=2099-01-01T00%3A00\
                 &end=2099-01-02T00%3A00&reason=matrix"
            )
            .into_bytes();
            return r;
        }
        ("POST", "/exceptions") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = format!(
                "justification=no_vendor_patch&explanation=matrix+{n}\
                 &control_kind_1=network_segmentation&control_text_1=own+VLAN\
                 &expires_on=2099-01-01&host={}",
                t.inside_host
            )
            .into_bytes();
            return r;
        }
        ("POST", p) if p.starts_with("/changes/") || p.starts_with("/exceptions/") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = match p.rsplit('/').next() {
                Some("reject" | "cancel" | "rollback" | "revoke") => b"reason=matrix".to_vec(),
                Some("promote") => b"ring=test".to_vec(),
                _ => Vec::new(),
            };
            return r;
        }
        ("POST", "/api/v1/changes/{number}/rollback") => serde_json::json!({"reason": "matrix"}),
        ("POST", "/calendar/{name}/delete") => {
            return r.header("content-type", "application/x-www-form-urlencoded");
        }
        ("POST", "/status/report") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = format!("service=matrix-shop&description=slow+since+the+update+{n}&contact=")
                .into_bytes();
            return r;
        }
        ("POST", "/incidents/{id}/resolve") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = b"resolution=matrix".to_vec();
            return r;
        }
        ("POST", "/api/v1/incidents/{id}/resolve") => serde_json::json!({"resolution": "matrix"}),
        ("POST", "/account/password") => {
            let mut r = r.header("content-type", "application/x-www-form-urlencoded");
            r.body = b"current_password=not+the+password&new_password=a+long+enough+one\
                       &repeat_password=a+long+enough+one"
                .to_vec();
            return r;
        }
        ("POST", "/triage/{id}/classify") => {
            return page_form(
                r,
                &format!("classification=low&reason=reviewed+in+the+matrix+%28{n}%29"),
            );
        }
        ("POST", "/admin/users") => {
            return page_form(r, &format!("username=page-made-{n}&role=auditor"));
        }
        ("POST", "/admin/users/{id}/roles") => return page_form(r, "role=auditor"),
        ("POST", "/admin/enrollment-tokens") => return page_form(r, "group=web"),
        ("POST", "/admin/feeds/{name}/check") => {
            return page_form(r, &format!("note=checked+the+vendor+%28{n}%29"));
        }
        ("POST", "/account/tokens") => {
            return page_form(r, &format!("name=matrix+page+{n}"));
        }
        (_, p) if p.starts_with("/api/v1/agent/") => serde_json::json!({}),
        _ => return r,
    };
    r.json(&body)
}

/// `r` with a form body, as a page's form posts it.
fn page_form(r: Req, body: &str) -> Req {
    let mut r = r.header("content-type", "application/x-www-form-urlencoded");
    r.body = body.as_bytes().to_vec();
    r
}

async fn call(
    server: &Server,
    agent: &AgentClient,
    caller: &Caller,
    expect: Expect,
    r: Req,
) -> Answer {
    match caller {
        // An open route is called as it is (an agent needs no signature for it); every other
        // route gets the agent's signature over exactly this request.
        Caller::Agent if expect != Expect::Open => {
            let signing = Signing::now(Some(agent.host_id()));
            let raw = agent
                .send_raw(&r.method, &r.path, r.body.clone(), None, &signing)
                .await
                .unwrap();
            Answer {
                status: raw.status,
                headers: raw
                    .problem_code
                    .map(|c| vec![("x-problem-code".to_owned(), c)])
                    .unwrap_or_default(),
                body: raw.body,
            }
        }
        Caller::Operator(_, session) => server.send(session.apply(r)).await,
        Caller::Anonymous | Caller::Agent => server.send(r).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_admits_exactly_the_callers_it_declares() {
    let server = Server::start(|c| {
        // Hundreds of wrong logins come from this one address on purpose.
        c.operators.address_max_failures = 100_000;
        // Every caller files a problem report from this one address.
        c.status.reports_per_address = 100_000;
    })
    .await;

    // The declarations equal this test's table, route for route.
    let declared = server
        .running()
        .state
        .routes
        .get()
        .expect("the router records its declarations")
        .clone();
    let mut seen = BTreeSet::new();
    for d in &declared {
        let key = (d.method.as_str().to_owned(), d.path.clone());
        assert!(seen.insert(key.clone()), "{key:?} is declared twice");
        let Some((_, _, want)) = EXPECTED
            .iter()
            .find(|(m, p, _)| *m == d.method.as_str() && *p == d.path)
        else {
            panic!(
                "{} {} is a route this test does not know: add it to EXPECTED with who may \
                 call it ({:?})",
                d.method, d.path, d.access
            );
        };
        match (want, d.access) {
            (Expect::Roles(roles), Access::Roles(actual)) => {
                let actual: BTreeSet<&str> = actual.iter().map(|r| r.as_str()).collect();
                let roles: BTreeSet<&str> = roles.iter().copied().collect();
                assert_eq!(actual, roles, "{} {}", d.method, d.path);
            }
            (want, access) => assert_eq!(*want, expect_of(access), "{} {}", d.method, d.path),
        }
    }
    for (m, p, _) in EXPECTED {
        assert!(
            seen.contains(&((*m).to_owned(), (*p).to_owned())),
            "{m} {p} is expected but not declared"
        );
    }

    // The fleet: a host in the provider's group and one outside it; an agent credential.
    let client = Client::new(&server.url, &Trust::PlainHttp).unwrap();
    let agent = enroll(&server, &client, "web").await;
    let outside = enroll(&server, &client, "db").await;
    // The inside host serves an application: the status page's service a report names.
    let now = patchwarden_server::clock::now();
    let inside_id = Uuid::parse_str(agent.host_id()).unwrap();
    server
        .store()
        .set_host_placement(
            inside_id,
            patchwarden_store::HostPlacement {
                group: "web".into(),
                ring: None,
                labels: [("application".to_owned(), "matrix-shop".to_owned())].into(),
            },
            now,
            AuditEntry::new(now, Actor::System("test".into()), "host.place", "h"),
        )
        .await
        .unwrap();

    // One operator per role (the provider scoped to `web`), a target user, and tokens to
    // revoke.
    let mut callers = vec![Caller::Anonymous, Caller::Agent];
    let mut admin_id = Uuid::nil();
    for role in Role::ALL {
        let groups: &[&str] = if role == Role::Provider {
            &["web"]
        } else {
            &[]
        };
        let user = server.user(role.as_str(), &[role], groups).await;
        if role == Role::Admin {
            admin_id = user.id;
        }
        let session = server.login(role.as_str(), PASSWORD).await;
        callers.push(Caller::Operator(role, Box::new(session)));
    }
    let target = server.user("target", &[Role::Auditor], &[]).await;
    let now = patchwarden_server::clock::now();
    let api_token = server
        .store()
        .create_api_token(
            NewApiToken {
                id: Uuid::new_v4(),
                secret_hash: SecretHash::of(b"pwt_matrix"),
                user: admin_id,
                name: "to revoke".into(),
                roles: [Role::Admin].into(),
                expires_at: now + SignedDuration::from_hours(1),
            },
            now,
            patchwarden_core::audit::AuditEntry::new(
                now,
                Actor::System("test".into()),
                "api_token.create",
                "t",
            ),
        )
        .await
        .unwrap();
    let (enrollment_token, _) = server_token(&server, "web", 1).await;
    // Feed sources: one fetched (its sync request only recorded: the port refuses), one
    // manual; and a queued vulnerability.
    for (name, kind, location) in [
        ("matrix-kev", SourceKind::Kev, "http://127.0.0.1:9/kev.json"),
        ("acme-firmware", SourceKind::Manual, ""),
    ] {
        server
            .store()
            .put_feed_source(
                &FeedSourceSpec {
                    name: name.into(),
                    kind,
                    location: location.into(),
                    interval_secs: None,
                    expected_period_secs: Some(31 * 86_400),
                    origin: SourceOrigin::Config,
                },
                now,
                AuditEntry::new(now, Actor::System("test".into()), "feed.define", name),
            )
            .await
            .unwrap();
    }
    let queued = server
        .store()
        .enqueue_triage(
            &[NewTriageItem {
                vulnerability: "CVE-2026-99100".into(),
                advisories: vec!["ACME-2026-1".into()],
                summary: None,
                arrived_at: now,
                due_at: now + SignedDuration::from_hours(4),
            }],
            now,
            AuditEntry::new(now, Actor::System("test".into()), "triage.enqueue", "t"),
        )
        .await
        .unwrap();
    let (_, enrollment_secret) = server_token(&server, "web", 1000).await;
    let targets = Targets {
        user: target.id,
        api_token: api_token.id,
        enrollment_token: enrollment_token.id,
        enrollment_secret,
        inside_host: agent.host_id().to_owned(),
        outside_host: outside.host_id().to_owned(),
        triage_item: queued[0].id,
    };

    let mut n = 0;
    let mut failures = Vec::new();
    let mut cells = 0;
    for (method, path, expect) in EXPECTED {
        for caller in &callers {
            n += 1;
            // Logging out ends the session: each operator does it with a session of its own,
            // so the routes after it still have theirs.
            let fresh;
            let caller = match caller {
                Caller::Operator(role, _) if *path == "/logout" => {
                    fresh = Caller::Operator(
                        *role,
                        Box::new(server.login(role.as_str(), PASSWORD).await),
                    );
                    &fresh
                }
                other => other,
            };
            let answer = call(
                &server,
                &agent,
                caller,
                *expect,
                request(method, path, &targets, n),
            )
            .await;
            let is_refused = refused(&answer);
            let allowed = match (expect, caller) {
                (Expect::Open, _) => true,
                (Expect::Agent, Caller::Agent) => true,
                (Expect::Roles(roles), Caller::Operator(r, _)) => roles.contains(&r.as_str()),
                (Expect::OwnAccount, Caller::Operator(..)) => true,
                _ => false,
            };
            cells += 1;
            if allowed == is_refused {
                failures.push(format!(
                    "{method} {path} by {}: expected {}, got {} {}",
                    caller.name(),
                    if allowed { "allowed" } else { "refused" },
                    answer.status,
                    answer.text()
                ));
            }
            // The feed and triage routes get requests that succeed: an allowed cell there is
            // the route's work done, not a refusal of its content.
            let feeds_route = path.starts_with("/api/v1/feeds")
                || path.starts_with("/api/v1/triage")
                || *path == "/api/v1/advisories";
            if allowed && feeds_route && !(200..300).contains(&answer.status) {
                failures.push(format!(
                    "{method} {path} by {}: allowed but answered {} {}",
                    caller.name(),
                    answer.status,
                    answer.text()
                ));
            }
            // An allowed call is answered by the route itself: never a server error.
            if allowed {
                assert!(
                    answer.status < 500,
                    "{method} {path} by {}: {} {}",
                    caller.name(),
                    answer.status,
                    answer.text()
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells disagree with the declarations:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cells, EXPECTED.len() * 9);

    // The provider inside and outside its groups: its own host is there, the other is "not
    // found" exactly like a host that does not exist, and lists hold only its own.
    let provider = server.login("provider", PASSWORD).await;
    let officer = server.login("officer", PASSWORD).await;
    let show = |s: &Session, id: &str| s.apply(Req::get(&format!("/api/v1/hosts/{id}")));
    assert_eq!(
        server
            .send(show(&provider, &targets.inside_host))
            .await
            .status,
        200
    );
    let hidden = server.send(show(&provider, &targets.outside_host)).await;
    assert_eq!(hidden.status, 404, "{}", hidden.text());
    assert_eq!(hidden.code(), Some(ProblemCode::NotFound));
    let missing = server
        .send(show(&provider, &Uuid::new_v4().to_string()))
        .await;
    assert_eq!(missing.body, hidden.body);
    assert_eq!(
        server
            .send(show(&officer, &targets.outside_host))
            .await
            .status,
        200
    );
    // The enrollment cells above enrolled a host in `web` each.
    let groups_seen =
        |page: HostPage| -> BTreeSet<String> { page.items.into_iter().map(|h| h.group).collect() };
    let mine: HostPage = server
        .send(provider.apply(Req::get("/api/v1/hosts")))
        .await
        .json();
    assert_eq!(groups_seen(mine), BTreeSet::from(["web".to_owned()]));
    let theirs: HostPage = server
        .send(provider.apply(Req::get("/api/v1/hosts?group=db")))
        .await
        .json();
    assert!(theirs.items.is_empty());
    let all: HostPage = server
        .send(officer.apply(Req::get("/api/v1/hosts")))
        .await
        .json();
    assert_eq!(
        groups_seen(all),
        BTreeSet::from(["db".to_owned(), "web".to_owned()])
    );
    let findings = server
        .send(provider.apply(Req::get(&format!(
            "/api/v1/findings?host={}",
            targets.outside_host
        ))))
        .await;
    assert_eq!(findings.status, 200);
    assert_eq!(
        findings.json::<serde_json::Value>()["items"],
        serde_json::json!([])
    );
}

async fn server_token(
    server: &Server,
    group: &str,
    uses: u32,
) -> (patchwarden_store::EnrollmentToken, String) {
    admin::create_enrollment_token(
        server.store().as_ref(),
        TokenRequest {
            group: group.into(),
            valid_for: SignedDuration::from_hours(1),
            max_uses: uses,
            note: None,
        },
        Actor::Operator("test".into()),
        patchwarden_server::clock::now(),
    )
    .await
    .unwrap()
}

/// The router's routes are added in one place, `routes::declare`, each with its access
/// declaration; nothing else in the server adds a route to the API router. (The metrics
/// listener's own router, `routes::metrics`, serves `/metrics` and the probes on a separate,
/// plain-HTTP listener, and is the one exception.)
#[test]
fn no_route_is_added_outside_the_declarations() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut text = std::fs::read_to_string(&path).unwrap();
            if rel == "routes/declare.rs" {
                continue;
            }
            if rel == "routes/mod.rs" {
                // The metrics listener's router: cut its function out before looking.
                let start = text
                    .find("pub(crate) fn metrics(")
                    .expect("routes::metrics");
                let end = start + text[start..].find("\n}\n").expect("its end");
                text.replace_range(start..end, "");
            }
            for needle in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                ".merge(",
            ] {
                if text.contains(needle) {
                    offenders.push(format!("{rel}: {needle}"));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "routes added outside routes::declare (declare them with who may call them): {offenders:?}"
    );
}
