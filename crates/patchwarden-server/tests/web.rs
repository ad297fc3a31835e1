//! The web UI's own pages over HTTP against a real server: logging in with the form, what a
//! page answers without a session, the CSRF token on a page's forms, a login posted from
//! another site, logging out, changing a one-time password, and the embedded assets.

mod operator_support;

use operator_support::{PASSWORD, Req, Server};
use patchwarden_api::v1::operator::SESSION_COOKIE;
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_store::Role;

fn form(path: &str, body: &str) -> Req {
    let mut r = Req::post(path).header("content-type", "application/x-www-form-urlencoded");
    r.body = body.as_bytes().to_vec();
    r
}

fn with_cookie(r: Req, cookie: &str) -> Req {
    r.header("cookie", &format!("{SESSION_COOKIE}={cookie}"))
}

/// The value of the hidden `csrf_token` field of a page's first form that has one.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf_token\" value=\"")
        .expect("the page has a form with a CSRF token");
    let rest = &page[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn a_person_logs_in_with_the_form_and_out_again() {
    let server = Server::start(|_| {}).await;
    server.user("olivia", &[Role::Officer], &[]).await;

    // Without a session a page is the login form (401), which comes back to the page.
    let a = server.send(Req::get("/account?tab=1")).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.code(), Some(ProblemCode::Unauthenticated));
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    let page = a.text();
    assert!(
        page.contains("<form method=\"post\" action=\"/login\""),
        "{page}"
    );
    assert!(
        page.contains("name=\"next\" value=\"/account?tab=1\""),
        "{page}"
    );

    // A wrong password: the form again, with a message, no cookie.
    let a = server
        .send(form(
            "/login",
            "username=olivia&password=wrong&next=%2Faccount",
        ))
        .await;
    assert_eq!(a.status, 401);
    assert!(a.text().contains("Wrong user name or password."));
    assert_eq!(a.set_cookie(), None);

    // The right one: a session cookie and back to the page asked for.
    let body = format!("username=olivia&password={PASSWORD}&next=%2Faccount%3Ftab%3D1");
    let a = server.send(form("/login", &body)).await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.header("location"), Some("/account?tab=1"));
    let cookie = a.set_cookie().expect("a session cookie");
    let set = a.header("set-cookie").unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }

    // The account page names the user and roles, and carries the session's CSRF token.
    let a = server
        .send(with_cookie(Req::get("/account"), &cookie))
        .await;
    assert_eq!(a.status, 200);
    let page = a.text();
    assert!(
        page.contains("olivia") && page.contains("officer"),
        "{page}"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let csrf = csrf_of(&page);

    // A form without the CSRF token is refused, as a page; with it, the logout works.
    let a = server
        .send(with_cookie(form("/logout", "csrf_token=wrong"), &cookie))
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), Some(ProblemCode::CsrfRejected));
    let a = server
        .send(with_cookie(
            form("/logout", &format!("csrf_token={csrf}")),
            &cookie,
        ))
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/login"));
    let a = server
        .send(with_cookie(Req::get("/account"), &cookie))
        .await;
    assert_eq!(a.status, 401, "the session ended");
}

#[tokio::test]
async fn a_login_from_another_site_or_to_another_site_is_refused() {
    let server = Server::start(|_| {}).await;
    server.user("olivia", &[Role::Officer], &[]).await;
    let body = format!("username=olivia&password={PASSWORD}&next=%2F");
    let a = server
        .send(form("/login", &body).header("origin", "https://evil.example"))
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.set_cookie(), None);
    // The page to return to is a path on this server, never another site.
    let body = format!("username=olivia&password={PASSWORD}&next=https%3A%2F%2Fevil.example%2F");
    let a = server
        .send(form("/login", &body).header("origin", "http://pw.test"))
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/"));
    // A malformed form is a clear error and logs nobody in.
    let a = server.send(form("/login", "username=olivia")).await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("password"), "{}", a.text());
    let a = server.send(form("/login", &"a".repeat(70 * 1024))).await;
    assert_eq!(a.status, 413);
}

#[tokio::test]
async fn a_one_time_password_is_changed_on_the_account_page_first() {
    let server = Server::start(|_| {}).await;
    let store = server.store();
    let user = server.user("newbie", &[Role::Approver], &[]).await;
    let now = patchwarden_server::clock::now();
    store
        .update_user(
            user.id,
            patchwarden_store::UserChange::Password {
                password_hash: operator_support::password_hash().to_owned(),
                must_change: true,
            },
            now,
            patchwarden_core::audit::AuditEntry::new(
                now,
                patchwarden_core::audit::Actor::System("test".into()),
                "user.password",
                "user:newbie",
            ),
        )
        .await
        .unwrap();
    let body = format!("username=newbie&password={PASSWORD}&next=%2Fchanges");
    let a = server.send(form("/login", &body)).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/account"), "the password first");
    let cookie = a.set_cookie().unwrap();
    // Any other page leads back to the account page.
    let a = server.send(with_cookie(Req::get("/"), &cookie)).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/account"));
    let page = server
        .send(with_cookie(Req::get("/account"), &cookie))
        .await
        .text();
    assert!(page.contains("one-time password"), "{page}");
    let csrf = csrf_of(&page);
    // The repetition differs: said, nothing changed.
    let a = server
        .send(with_cookie(
            form(
                "/account/password",
                &format!(
                    "csrf_token={csrf}&current_password={PASSWORD}\
                     &new_password=correct+horse+battery&repeat_password=correct+horse+batter"
                ),
            ),
            &cookie,
        ))
        .await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("differ"));
    let a = server
        .send(with_cookie(
            form(
                "/account/password",
                &format!(
                    "csrf_token={csrf}&current_password={PASSWORD}\
                     &new_password=correct+horse+battery&repeat_password=correct+horse+battery"
                ),
            ),
            &cookie,
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("Password changed"));
    // Every session ended; the new password logs in and goes where asked.
    let a = server
        .send(with_cookie(Req::get("/account"), &cookie))
        .await;
    assert_eq!(a.status, 401);
    let a = server
        .send(form(
            "/login",
            "username=newbie&password=correct+horse+battery&next=%2Fchanges",
        ))
        .await;
    assert_eq!(a.header("location"), Some("/changes"));
}

#[tokio::test]
async fn the_assets_are_embedded_and_revalidated() {
    let server = Server::start(|_| {}).await;
    let a = server.send(Req::get("/assets/htmx.min.js")).await;
    assert_eq!(a.status, 200);
    assert!(
        a.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(a.text().contains("htmx"));
    let etag = a.header("etag").unwrap().to_owned();
    let a = server
        .send(Req::get("/assets/htmx.min.js").header("if-none-match", &etag))
        .await;
    assert_eq!(a.status, 304);
    let a = server.send(Req::get("/assets/app.css")).await;
    assert!(a.header("content-type").unwrap().starts_with("text/css"));
    let a = server.send(Req::get("/assets/..%2Fsrc%2Flib.rs")).await;
    assert_eq!(a.status, 404);
}
