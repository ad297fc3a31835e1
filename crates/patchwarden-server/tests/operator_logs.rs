//! No secret is ever logged: every line the server logs at every level, and every event of its
//! audit chain, while operators log in (right and wrong), change a one-time password, make and
//! use API tokens and enrollment tokens, and fail CSRF checks, is searched for every secret the
//! test used. Its own test binary, because it installs the process's one log subscriber.

mod operator_support;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use operator_support::{Req, Server};
use patchwarden_api::v1::operator::{
    CreatedApiToken, CreatedEnrollmentToken, CreatedUser, SESSION_COOKIE,
};
use patchwarden_core::audit::Actor;
use serde_json::json;

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_the_server_handled_appears_in_its_logs_or_its_audit_chain() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .init();

    let server = Server::start(|c| c.operators.max_failed_logins = 2).await;
    let mut secrets: Vec<String> = Vec::new();
    let (_, otp) = patchwarden_server::operators::bootstrap_admin(
        server.store().as_ref(),
        "root",
        Actor::Operator("local:test".into()),
        patchwarden_server::clock::now(),
    )
    .await
    .unwrap();
    secrets.push(otp.clone());

    let first = server.login("root", &otp).await;
    secrets.extend([first.cookie.clone(), first.csrf.clone()]);
    let new_password = "the admin's own new password";
    secrets.push(new_password.into());
    let changed = server
        .send(
            first.apply(
                Req::new("PUT", "/api/v1/me/password")
                    .json(&json!({"current_password": otp, "new_password": new_password})),
            ),
        )
        .await;
    assert_eq!(changed.status, 204);
    let s = server.login("root", new_password).await;
    secrets.extend([s.cookie.clone(), s.csrf.clone()]);

    let made: CreatedUser = server
        .send(s.apply(
            Req::post("/api/v1/users").json(&json!({"username": "ivy", "roles": ["security"]})),
        ))
        .await
        .json();
    secrets.push(made.one_time_password.clone());
    // Wrong passwords, for a real user (until locked) and for nobody; a login body that is
    // not JSON enough, with a password in it.
    for (name, wrong) in [
        ("ivy", "wrong-password-one"),
        ("ivy", "wrong-password-two"),
        ("ivy", "wrong-password-three"),
        ("nobody", "wrong-password-four"),
    ] {
        secrets.push(wrong.into());
        let a = server
            .send(Req::post("/api/v1/session").json(&json!({"username": name, "password": wrong})))
            .await;
        assert!(matches!(a.status, 401 | 429), "{}", a.status);
    }
    let mangled = "password-in-a-bad-body";
    secrets.push(mangled.into());
    let bad = server
        .send(Req::post("/api/v1/session").json(&json!({"username": 7, "password": mangled})))
        .await;
    assert_eq!(bad.status, 400);
    assert!(!bad.text().contains(mangled));
    let bad = server
        .send(Req::post("/api/v1/session").json(&json!({"username": "x", "password": [mangled]})))
        .await;
    assert_eq!(bad.status, 400);
    assert!(!bad.text().contains(mangled));

    let token: CreatedApiToken = server
        .send(s.apply(Req::post("/api/v1/api-tokens").json(&json!({"name": "script"}))))
        .await
        .json();
    secrets.push(token.secret.clone());
    assert_eq!(
        server
            .send(Req::get("/api/v1/audit").bearer(&token.secret))
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .send(Req::get("/api/v1/audit").bearer("pwt_not-a-real-token-but-secret"))
            .await
            .status,
        401
    );
    secrets.push("pwt_not-a-real-token-but-secret".into());
    let enrollment: CreatedEnrollmentToken = server
        .send(s.apply(Req::post("/api/v1/enrollment-tokens").json(&json!({"group": "web"}))))
        .await
        .json();
    secrets.push(enrollment.secret.clone());
    // A forged CSRF token, and a session cookie nobody issued.
    let forged = "forged-csrf-token-value";
    secrets.push(forged.into());
    let csrf = server
        .send(
            Req::post("/api/v1/enrollment-tokens")
                .json(&json!({"group": "web"}))
                .header("cookie", &format!("{SESSION_COOKIE}={}", s.cookie))
                .header("x-csrf-token", forged),
        )
        .await;
    assert_eq!(csrf.status, 403);
    let stolen = "pws_0000000000000000000000000000000000000000000000000000000000000000";
    secrets.push(stolen.into());
    let a = server
        .send(Req::get("/api/v1/hosts").header("cookie", &format!("{SESSION_COOKIE}={stolen}")))
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        server
            .send(s.apply(Req::new("DELETE", "/api/v1/session")))
            .await
            .status,
        204
    );

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned();
    // The capture works: the logins, the lock and the refusals are there.
    assert!(log.contains("operator logged in"), "{log}");
    assert!(log.contains("user locked after too many failed logins"));
    assert!(log.contains("csrf-rejected"));
    assert!(
        log.contains("route=/api/v1/session"),
        "request spans are captured too"
    );
    let chain =
        serde_json::to_string(&server.store().audit_events(0, 10_000).await.unwrap()).unwrap();
    assert!(chain.contains("session.create") && chain.contains("api_token.create"));
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret: {secret}"
        );
        assert!(
            !chain.contains(secret.as_str()),
            "the audit chain holds a secret: {secret}"
        );
    }
}
