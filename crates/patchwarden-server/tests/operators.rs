//! Operators over HTTP against a real server: the first admin and the one-time password,
//! login lockout and its end, the address limit, session expiry, CSRF, API tokens until revoked
//! or expired, the rules on roles, and the OpenAPI document.

mod operator_support;

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::SignedDuration;
use operator_support::{PASSWORD, Req, Server};
use patchwarden_api::v1::operator::{CreatedApiToken, CreatedUser, SESSION_COOKIE, SessionView};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::{NewApiToken, Role, SecretHash};
use serde_json::{Value, json};
use uuid::Uuid;

fn login(name: &str, password: &str) -> Req {
    Req::post("/api/v1/session").json(&json!({"username": name, "password": password}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_must_change_the_one_time_password_before_anything_else() {
    let server = Server::start(|_| {}).await;
    let now = patchwarden_server::clock::now();
    let (admin, otp) = patchwarden_server::operators::bootstrap_admin(
        server.store().as_ref(),
        "root",
        Actor::Operator("local:test".into()),
        now,
    )
    .await
    .unwrap();
    assert!(admin.must_change_password);
    assert!(!admin.password_hash.contains(&otp));
    // A second bootstrap is refused: it makes the first admin only.
    let again = patchwarden_server::operators::bootstrap_admin(
        server.store().as_ref(),
        "other",
        Actor::Operator("local:test".into()),
        now,
    )
    .await;
    assert!(again.is_err());

    let s = server.login("root", &otp).await;
    assert!(s.view.user.must_change_password);
    let blocked = server.send(s.apply(Req::get("/api/v1/users"))).await;
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.code(), Some(ProblemCode::PasswordChangeRequired));
    // The session itself is shown, and the password can be changed.
    assert_eq!(
        server
            .send(s.apply(Req::get("/api/v1/session")))
            .await
            .status,
        200
    );
    let short = server
        .send(
            s.apply(
                Req::new("PUT", "/api/v1/me/password")
                    .json(&json!({"current_password": otp, "new_password": "short"})),
            ),
        )
        .await;
    assert_eq!(short.status, 400);
    let changed =
        server
            .send(s.apply(Req::new("PUT", "/api/v1/me/password").json(
                &json!({"current_password": otp, "new_password": "a new and long password"}),
            )))
            .await;
    assert_eq!(changed.status, 204, "{}", changed.text());
    // Every session ended with the change; the one-time password no longer works.
    assert_eq!(
        server
            .send(s.apply(Req::get("/api/v1/session")))
            .await
            .status,
        401
    );
    assert_eq!(server.send(login("root", &otp)).await.status, 401);
    let s = server.login("root", "a new and long password").await;
    assert!(!s.view.user.must_change_password);
    assert_eq!(
        server.send(s.apply(Req::get("/api/v1/users"))).await.status,
        200
    );

    // A user the admin makes gets a one-time password of their own, in the answer only.
    let made = server
        .send(s.apply(
            Req::post("/api/v1/users").json(&json!({"username": "olga", "roles": ["officer"]})),
        ))
        .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let made: CreatedUser = made.json();
    assert!(made.user.must_change_password);
    let olga = server.login("olga", &made.one_time_password).await;
    let blocked = server.send(olga.apply(Req::get("/api/v1/hosts"))).await;
    assert_eq!(blocked.code(), Some(ProblemCode::PasswordChangeRequired));
    let listed = server.send(s.apply(Req::get("/api/v1/users"))).await.text();
    assert!(!listed.contains(&made.one_time_password));
    assert!(!listed.contains("argon2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_the_user_until_the_window_ends() {
    let server = Server::start(|c| {
        c.operators.max_failed_logins = 3;
        c.operators.lockout_secs = 2;
    })
    .await;
    server.user("bob", &[Role::Auditor], &[]).await;
    for _ in 0..3 {
        let a = server.send(login("bob", "wrong password")).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.code(), Some(ProblemCode::InvalidCredentials));
    }
    // Locked: even the right password is refused, with the time to wait.
    let locked = server.send(login("bob", PASSWORD)).await;
    assert_eq!(locked.status, 429, "{}", locked.text());
    assert_eq!(locked.code(), Some(ProblemCode::LoginLocked));
    let wait: u64 = locked
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After");
    assert!((1..=2).contains(&wait), "{wait}");
    // The lock is in the audit chain, by name, without the password.
    let chain = server.store().audit_events(0, 1000).await.unwrap();
    let lock = chain
        .iter()
        .find(|e| e.entry.action == "user.lock")
        .expect("the lock is audited");
    assert_eq!(lock.entry.object, "user:bob");
    assert!(
        !serde_json::to_string(&chain)
            .unwrap()
            .contains("wrong password")
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let s = server.login("bob", PASSWORD).await;
    assert_eq!(s.view.user.username, "bob");
    // A successful login starts the count again: two more failures do not lock.
    for _ in 0..2 {
        server.send(login("bob", "wrong password")).await;
    }
    server.login("bob", PASSWORD).await;

    // An unknown name answers exactly like a wrong password.
    let unknown = server.send(login("nobody", "whatever")).await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.code(), Some(ProblemCode::InvalidCredentials));

    // Malformed logins: an overlong name or password is nobody's, a body past the limit is
    // refused unread, and a body that is not a login says what a login is.
    let long = "n".repeat(100_000);
    let a = server.send(login(&long, "x")).await;
    assert_eq!(a.code(), Some(ProblemCode::InvalidCredentials));
    let a = server.send(login("bob", &long)).await;
    assert_eq!(a.code(), Some(ProblemCode::InvalidCredentials));
    let a = server.send(login(&"n".repeat(300_000), "x")).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.code(), Some(ProblemCode::PayloadTooLarge));
    let mut garbage = Req::post("/api/v1/session");
    garbage.body = b"\xff{not json".to_vec();
    let a = server.send(garbage).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), Some(ProblemCode::MalformedBody));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_with_too_many_failures_is_refused_until_its_window_ends() {
    let server = Server::start(|c| {
        c.operators.address_max_failures = 4;
        c.operators.address_window_secs = 2;
    })
    .await;
    server.user("carol", &[Role::Security], &[]).await;
    // Four names, one failure each: the address, not any user, reaches its limit.
    for name in ["a", "b", "c", "d"] {
        assert_eq!(server.send(login(name, "x")).await.status, 401);
    }
    let refused = server.send(login("carol", PASSWORD)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.code(), Some(ProblemCode::LoginLocked));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    server.login("carol", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_is_host_only_secure_and_expires() {
    let server = Server::start(|c| c.operators.session_ttl_secs = 1).await;
    server.user("dave", &[Role::Approver], &[]).await;
    let answer = server.send(login("dave", PASSWORD)).await;
    let cookie = answer.header("set-cookie").expect("a cookie").to_owned();
    assert!(cookie.starts_with(&format!("{SESSION_COOKIE}=pws_")));
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=1",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Domain"));
    let s = server.login("dave", PASSWORD).await;
    assert_eq!(
        server.send(s.apply(Req::get("/api/v1/hosts"))).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = server.send(s.apply(Req::get("/api/v1/hosts"))).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.code(), Some(ProblemCode::Unauthenticated));
    // Logging out ends a session at once.
    let server = Server::start(|_| {}).await;
    server.user("dave", &[Role::Approver], &[]).await;
    let s = server.login("dave", PASSWORD).await;
    let out = server
        .send(s.apply(Req::new("DELETE", "/api/v1/session")))
        .await;
    assert_eq!(out.status, 204);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert_eq!(
        server.send(s.apply(Req::get("/api/v1/hosts"))).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_with_a_session_needs_its_csrf_token() {
    let server = Server::start(|_| {}).await;
    server.user("erin", &[Role::Officer], &[]).await;
    let s = server.login("erin", PASSWORD).await;
    let cookie = format!("{SESSION_COOKIE}={}", s.cookie);
    let create = || {
        Req::post("/api/v1/enrollment-tokens")
            .json(&json!({"group": "web"}))
            .header("cookie", &cookie)
    };
    let none = server.send(create()).await;
    assert_eq!(none.status, 403);
    assert_eq!(none.code(), Some(ProblemCode::CsrfRejected));
    let other = server.login("erin", PASSWORD).await;
    let wrong = server
        .send(create().header("x-csrf-token", &other.csrf))
        .await;
    assert_eq!(wrong.code(), Some(ProblemCode::CsrfRejected));
    let right = server.send(create().header("x-csrf-token", &s.csrf)).await;
    assert_eq!(right.status, 201, "{}", right.text());
    // Reading needs no token.
    let read = server
        .send(Req::get("/api/v1/enrollment-tokens").header("cookie", &cookie))
        .await;
    assert_eq!(read.status, 200);
    // A browser form carries it as a field; the same form without it is refused.
    let form = |body: &str| {
        let mut r = Req::post("/api/v1/session")
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded");
        r.method = "DELETE".into();
        r.body = body.as_bytes().to_vec();
        r
    };
    let refused = server.send(form("a=1")).await;
    assert_eq!(refused.code(), Some(ProblemCode::CsrfRejected));
    let accepted = server
        .send(form(&format!("a=1&csrf_token={}", s.csrf)))
        .await;
    assert_eq!(accepted.status, 204, "{}", accepted.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_work_until_revoked_or_expired_with_at_most_their_users_roles() {
    let server = Server::start(|_| {}).await;
    server.user("root", &[Role::Admin], &[]).await;
    let frank = server
        .user("frank", &[Role::Officer, Role::Auditor], &[])
        .await;
    let s = server.login("frank", PASSWORD).await;
    let make = |body: Value| s.apply(Req::post("/api/v1/api-tokens").json(&body));

    let too_many = server
        .send(make(json!({"name": "x", "roles": ["admin"]})))
        .await;
    assert_eq!(too_many.status, 400, "{}", too_many.text());
    let forever = server
        .send(make(json!({"name": "x", "expires_in_days": 100000})))
        .await;
    assert_eq!(forever.status, 400);

    let created = server
        .send(make(json!({"name": "audit script", "roles": ["auditor"]})))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let token: CreatedApiToken = created.json();
    assert!(token.secret.starts_with("pwt_"));
    // No CSRF token is needed with a bearer token, and only its roles count.
    let bearer = |r: Req| r.bearer(&token.secret);
    let me: SessionView = server
        .send(bearer(Req::get("/api/v1/session")))
        .await
        .json();
    assert_eq!(me.roles.len(), 1);
    assert_eq!(me.csrf_token, None);
    assert_eq!(
        server.send(bearer(Req::get("/api/v1/audit"))).await.status,
        200
    );
    let officer_only = server
        .send(bearer(
            Req::post("/api/v1/enrollment-tokens").json(&json!({"group": "web"})),
        ))
        .await;
    assert_eq!(officer_only.status, 403);
    assert_eq!(officer_only.code(), Some(ProblemCode::Forbidden));
    // A token cannot make tokens.
    let minted = server
        .send(bearer(
            Req::post("/api/v1/api-tokens").json(&json!({"name": "child"})),
        ))
        .await;
    assert_eq!(minted.status, 403);
    // The list never shows a secret.
    let listed = server
        .send(s.apply(Req::get("/api/v1/api-tokens")))
        .await
        .text();
    assert!(listed.contains("audit script"));
    assert!(!listed.contains(&token.secret));

    // Losing a role takes it from the token too.
    let root = server.login("root", PASSWORD).await;
    let demote = server
        .send(
            root.apply(
                Req::new("PUT", &format!("/api/v1/users/{}/roles", frank.id))
                    .json(&json!({"roles": ["officer"]})),
            ),
        )
        .await;
    assert_eq!(demote.status, 200, "{}", demote.text());
    assert_eq!(
        server.send(bearer(Req::get("/api/v1/audit"))).await.status,
        403
    );

    // Revoked: refused from then on. Another user's token is "not found" to a non-admin.
    let s = server.login("frank", PASSWORD).await;
    let revoke = |id: Uuid| Req::new("DELETE", &format!("/api/v1/api-tokens/{id}"));
    let root_token: CreatedApiToken = server
        .send(root.apply(Req::post("/api/v1/api-tokens").json(&json!({"name": "root's"}))))
        .await
        .json();
    assert_eq!(
        server
            .send(s.apply(revoke(root_token.token.id)))
            .await
            .status,
        404
    );
    let revoked = server.send(s.apply(revoke(token.token.id))).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let after = server.send(bearer(Req::get("/api/v1/session"))).await;
    assert_eq!(after.status, 401);
    assert_eq!(after.code(), Some(ProblemCode::Unauthenticated));

    // Expired: refused from its expiry on (made in the store to expire in a second).
    let now = patchwarden_server::clock::now();
    server
        .store()
        .create_api_token(
            NewApiToken {
                id: Uuid::new_v4(),
                secret_hash: SecretHash::of(b"pwt_short-lived"),
                user: frank.id,
                name: "short".into(),
                roles: [Role::Officer].into(),
                expires_at: now + SignedDuration::from_secs(1),
            },
            now,
            AuditEntry::new(now, Actor::System("test".into()), "api_token.create", "t"),
        )
        .await
        .unwrap();
    let short = || Req::get("/api/v1/hosts").bearer("pwt_short-lived");
    assert_eq!(server.send(short()).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(server.send(short()).await.status, 401);

    // A disabled user's tokens stop working.
    let s = server.login("frank", PASSWORD).await;
    let f: CreatedApiToken = server
        .send(s.apply(Req::post("/api/v1/api-tokens").json(&json!({"name": "f"}))))
        .await
        .json();
    let hosts = || Req::get("/api/v1/hosts").bearer(&f.secret);
    assert_eq!(server.send(hosts()).await.status, 200);
    let disabled = server
        .send(root.apply(Req::post(&format!("/api/v1/users/{}/disable", frank.id))))
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    assert_eq!(server.send(hosts()).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_changes_their_own_roles_and_the_last_admin_stays() {
    let server = Server::start(|_| {}).await;
    let root = server.user("root", &[Role::Admin], &[]).await;
    let gina = server.user("gina", &[Role::Approver], &[]).await;
    let g = server.login("gina", PASSWORD).await;
    let r = server.login("root", PASSWORD).await;
    let roles = |id: Uuid, roles: Value| {
        Req::new("PUT", &format!("/api/v1/users/{id}/roles")).json(&json!({"roles": roles}))
    };
    // A non-admin cannot grant themselves (or anyone) a role.
    let own = server.send(g.apply(roles(gina.id, json!(["admin"])))).await;
    assert_eq!(own.status, 403);
    assert_eq!(own.code(), Some(ProblemCode::Forbidden));
    // An admin changes nobody's roles of their own, nor disables themselves.
    let self_demote = server
        .send(r.apply(roles(root.id, json!(["auditor"]))))
        .await;
    assert_eq!(self_demote.status, 403, "{}", self_demote.text());
    let self_disable = server
        .send(r.apply(Req::post(&format!("/api/v1/users/{}/disable", root.id))))
        .await;
    assert_eq!(self_disable.status, 403);
    // The last enabled admin stays, even when another admin asks: made admin, gina demotes
    // root, then cannot be demoted by anyone, because she is the last.
    let promoted = server.send(r.apply(roles(gina.id, json!(["admin"])))).await;
    assert_eq!(promoted.status, 200, "{}", promoted.text());
    let g = server.login("gina", PASSWORD).await;
    let demoted = server
        .send(g.apply(roles(root.id, json!(["auditor"]))))
        .await;
    assert_eq!(demoted.status, 200);
    let disable_root = server
        .send(g.apply(Req::post(&format!("/api/v1/users/{}/disable", root.id))))
        .await;
    assert_eq!(disable_root.status, 200);
    // gina is now the last enabled admin: the store refuses to lose her, whoever asks.
    let e = server
        .store()
        .update_user(
            gina.id,
            patchwarden_store::UserChange::Disable,
            patchwarden_server::clock::now(),
            AuditEntry::new(
                patchwarden_server::clock::now(),
                Actor::Operator("root".into()),
                "user.disable",
                "user:gina",
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, patchwarden_store::StoreError::LastAdmin { .. }),
        "{e}"
    );
    // Every change is audited with the operator who made it.
    let chain = server.store().audit_events(0, 1000).await.unwrap();
    let by = |action: &str| -> Vec<String> {
        chain
            .iter()
            .filter(|e| e.entry.action == action)
            .map(|e| e.entry.actor.to_string())
            .collect()
    };
    assert_eq!(by("user.roles"), ["operator root", "operator gina"]);
    assert_eq!(by("user.disable"), ["operator gina"]);
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.push(s);
                    }
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_well_formed_3_1_and_has_every_declared_route() {
    let server = Server::start(|_| {}).await;
    server.user("hank", &[Role::Provider], &["web"]).await;
    let s = server.login("hank", PASSWORD).await;
    let anonymous = server.send(Req::get("/api/v1/openapi.json")).await;
    assert_eq!(anonymous.status, 401);
    let a = server.send(s.apply(Req::get("/api/v1/openapi.json"))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let doc: Value = a.json();

    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");

    // The document's operations are exactly the declared routes, each with responses and
    // with the declaration as its security.
    let declared = server.running().state.routes.get().unwrap().clone();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if ![
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                continue;
            }
            documented.insert((method.to_ascii_uppercase(), path.clone()));
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, r) in responses {
                assert!(
                    r["description"].is_string(),
                    "{method} {path} {status} has no description"
                );
            }
            let security = op["security"].as_array().expect("security");
            for requirement in security {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(scheme), "{scheme} is not defined");
                }
            }
            let d = declared
                .iter()
                .find(|d| d.method.as_str() == method.to_ascii_uppercase() && d.path == *path)
                .unwrap_or_else(|| panic!("{method} {path} is documented but not declared"));
            let listed: BTreeSet<String> = security
                .iter()
                .flat_map(|r| r.as_object().unwrap().values())
                .flat_map(|roles| roles.as_array().unwrap().iter())
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            let want: BTreeSet<String> = d
                .access
                .role_names()
                .iter()
                .map(|r| (*r).to_owned())
                .collect();
            assert_eq!(listed, want, "{method} {path}");
            if matches!(d.access, patchwarden_server::Access::Open(_)) {
                assert_eq!(security, &vec![json!({})], "{method} {path}");
            }
        }
    }
    // Pages for people (`Routes::page`) are declared but belong to no JSON API document.
    let routes: BTreeSet<(String, String)> = declared
        .iter()
        .filter(|d| d.documented)
        .map(|d| (d.method.as_str().to_owned(), d.path.clone()))
        .collect();
    assert!(
        declared.iter().any(|d| !d.documented && d.path == "/login"),
        "the pages are declared too"
    );
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "declared but not documented: {missing:?}"
    );
    assert_eq!(routes, documented);

    // Every reference resolves inside the document.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}
