//! The change, calendar and exception pages over HTTP against a real server: forms with their
//! CSRF token (and refused without it), buttons present exactly for the callers whose roles
//! and the core's rules admit the action, the core's refusals shown on the page in its words
//! with the API's status, malformed forms and queries answered 400 with nothing changed.

mod operator_support;

use jiff::SignedDuration;
use operator_support::{Answer, PASSWORD, Req, Server, Session};
use patchwarden_api::v1::agent::{EnrollRequest, EnrollmentSecret};
use patchwarden_api::v1::operator::SESSION_COOKIE;
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::{AgentKey, Client, Trust};
use patchwarden_core::audit::Actor;
use patchwarden_core::inventory::{HostFacts, OsInfo};
use patchwarden_server::admin::{self, TokenRequest};
use patchwarden_store::Role;
use uuid::Uuid;

/// A logged-in person as a browser: the cookie, and the CSRF token in the form's field
/// (never the header, which only htmx sends).
struct Person {
    session: Session,
}

impl Person {
    fn cookie(&self, r: Req) -> Req {
        r.header(
            "cookie",
            &format!("{SESSION_COOKIE}={}", self.session.cookie),
        )
    }

    async fn get(&self, server: &Server, path: &str) -> Answer {
        server.send(self.cookie(Req::get(path))).await
    }

    /// Posts `fields` (already URL-encoded) with the session's CSRF token.
    async fn post(&self, server: &Server, path: &str, fields: &str) -> Answer {
        let body = if fields.is_empty() {
            format!("csrf_token={}", self.session.csrf)
        } else {
            format!("csrf_token={}&{fields}", self.session.csrf)
        };
        server.send(self.cookie(form(path, &body))).await
    }
}

fn form(path: &str, body: &str) -> Req {
    let mut r = Req::post(path).header("content-type", "application/x-www-form-urlencoded");
    r.body = body.as_bytes().to_vec();
    r
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_owned()
}

async fn person(server: &Server, name: &str, roles: &[Role]) -> Person {
    server.user(name, roles, &[]).await;
    Person {
        session: server.login(name, PASSWORD).await,
    }
}

/// Enrolls a host in group `web` through the real agent protocol; returns its id.
async fn host(server: &Server, name: &str) -> Uuid {
    let (_, secret) = admin::create_enrollment_token(
        server.store().as_ref(),
        TokenRequest {
            group: "web".into(),
            valid_for: SignedDuration::from_hours(1),
            max_uses: 1,
            note: None,
        },
        Actor::Operator("test".into()),
        patchwarden_server::clock::now(),
    )
    .await
    .unwrap();
    let client = Client::new(&server.url, &Trust::PlainHttp).unwrap();
    let key = AgentKey::generate().unwrap();
    let facts = HostFacts {
        hostname: name.into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: None,
            id_like: Vec::new(),
            ecosystem: Some("Debian:12".into()),
        },
        machine_id: Some(format!("{:032x}", Uuid::new_v4().as_u128())),
        ..HostFacts::default()
    };
    let response = client
        .enroll(
            &key,
            &EnrollRequest {
                token: EnrollmentSecret(secret),
                public_key: key.public_hex(),
                facts,
                replace: false,
                agent_version: "test".into(),
            },
        )
        .await
        .unwrap();
    Uuid::parse_str(&response.host_id).unwrap()
}

/// The change form's fields for a patch of openssl on `host`, URL-encoded.
fn change_fields(title: &str, host: Uuid) -> String {
    format!(
        "title={}&kind=normal&justification={}&risk=medium&priority=&testing=required\
         &testing_reason=&rollback_plan={}&groups=&host={host}&patches={}&min_criticality=\
         &min_age_days=&restart_order=nginx.service&test_ring=test&soak_minutes=0\
         &max_failures=0&gates=",
        enc(title),
        enc("CVE-2024-5535 on the web tier"),
        enc("reinstall the previous openssl"),
        enc("openssl 3.0.15-1~deb12u1 Debian:12"),
    )
}

fn location(a: &Answer) -> String {
    a.header("location")
        .unwrap_or_else(|| panic!("no Location: {} {}", a.status, a.text()))
        .to_owned()
}

/// The text of the page's refusal banner.
fn refusal(a: &Answer) -> String {
    let page = a.text();
    let at = page
        .find("id=\"refusal\">")
        .unwrap_or_else(|| panic!("no refusal on the page: {page}"));
    let rest = &page[at + "id=\"refusal\">".len()..];
    rest[..rest.find('<').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_goes_through_its_pages_with_buttons_only_for_who_may_press_them() {
    let server = Server::start(|_| {}).await;
    let web = host(&server, "web-1").await;
    // The requester may approve changes too: only the core's four-eyes rule hides the button.
    let rita = person(&server, "rita", &[Role::Officer, Role::Approver]).await;
    let adam = person(&server, "adam", &[Role::Approver]).await;
    let aura = person(&server, "aura", &[Role::Authoriser]).await;
    let olga = person(&server, "olga", &[Role::Officer]).await;
    let avery = person(&server, "avery", &[Role::Auditor]).await;

    // The form, offered to requesters only.
    let a = rita.get(&server, "/changes/new").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("web-1"), "the host is offered");
    let a = avery.get(&server, "/changes/new").await;
    assert_eq!(a.status, 403);
    let a = avery.get(&server, "/changes").await;
    assert_eq!(a.status, 200);
    assert!(
        !a.text().contains("href=\"/changes/new\""),
        "no link for an auditor"
    );

    // Without the CSRF token the form is refused; with a field the form does not have, or a
    // single field twice, it is malformed; nothing is made.
    let fields = change_fields("OpenSSL update", web);
    let a = server.send(rita.cookie(form("/changes", &fields))).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), Some(ProblemCode::CsrfRejected));
    let a = rita
        .post(&server, "/changes", &format!("{fields}&colour=red"))
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), Some(ProblemCode::MalformedBody));
    assert!(a.text().contains("the form has no field"), "{}", a.text());
    let a = rita
        .post(&server, "/changes", &format!("{fields}&title=again"))
        .await;
    assert_eq!(a.status, 400);
    // A field the server's rules refuse: the form again, with what was typed and why.
    let a = rita
        .post(
            &server,
            "/changes",
            &fields.replace("&patches=", "&patches=bad+line+with+four+words"),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("patch line 1"), "{}", a.text());
    assert!(
        a.text().contains("value=\"OpenSSL update\""),
        "the typed title is kept"
    );
    let a = rita
        .post(&server, "/changes", &change_fields("", web))
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("id=\"form-error\""), "{}", a.text());
    assert!(
        server
            .store()
            .list_changes(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing was made"
    );

    // The draft.
    let a = rita.post(&server, "/changes", &fields).await;
    assert_eq!(a.status, 303, "{}", a.text());
    let page = location(&a);
    assert!(page.starts_with("/changes/PCR-"), "{page}");
    let number = page.trim_start_matches("/changes/").to_owned();
    let a = rita.get(&server, &page).await;
    assert_eq!(a.status, 200);
    let t = a.text();
    assert!(t.contains("id=\"do-submit\""), "the requester submits");
    assert!(t.contains("id=\"do-cancel\""));
    assert!(t.contains("web-1 (web)"), "the host by name");
    assert!(t.contains("3.0.15-1~deb12u1"));
    for who in [&adam, &olga, &avery] {
        let t = who.get(&server, &page).await.text();
        assert!(
            !t.contains("id=\"do-submit\""),
            "only the requester submits"
        );
    }
    let a = rita.post(&server, &format!("{page}/submit"), "").await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(location(&a), page);

    // Submitted: the requester sees no Approve although approving is among their roles; the
    // other approver does; the auditor sees no action at all.
    let t = rita.get(&server, &page).await.text();
    assert!(!t.contains("id=\"do-approve\""), "{t}");
    assert!(
        !t.contains("id=\"do-reject\""),
        "the requester does not reject their own"
    );
    let t = adam.get(&server, &page).await.text();
    assert!(t.contains("id=\"do-approve\"") && t.contains("id=\"do-reject\""));
    assert!(!t.contains("id=\"do-authorise\""));
    let t = avery.get(&server, &page).await.text();
    assert!(!t.contains("Actions</h2>"), "{t}");
    let t = aura.get(&server, &page).await.text();
    assert!(!t.contains("id=\"do-authorise\""), "not before approval");

    // The requester posting the approval anyway: the core refuses, on the page, in its words.
    let a = rita.post(&server, &format!("{page}/approve"), "").await;
    assert_eq!(a.status, 409);
    assert_eq!(
        refusal(&a),
        "cannot approve a change in state submitted: the requester cannot approve their own change"
    );
    // An action's form with a field it does not know is malformed.
    let a = adam
        .post(&server, &format!("{page}/approve"), "colour=red")
        .await;
    assert_eq!(a.status, 400);

    let a = adam.post(&server, &format!("{page}/approve"), "").await;
    assert_eq!(a.status, 303, "{}", a.text());
    let t = aura.get(&server, &page).await.text();
    assert!(t.contains("id=\"do-authorise\""));
    let a = aura.post(&server, &format!("{page}/authorise"), "").await;
    assert_eq!(a.status, 303, "{}", a.text());
    let t = olga.get(&server, &page).await.text();
    assert!(t.contains("id=\"change-state\">authorised<"), "{t}");
    assert!(
        t.contains("adam, ") && t.contains("aura, "),
        "the signatures"
    );
    assert!(t.contains("id=\"do-schedule\""), "an implementer schedules");
    assert!(
        !t.contains("id=\"do-rollback\""),
        "nothing to roll back yet"
    );

    // Rolling back before anything was installed: the core's words.
    let a = olga
        .post(&server, &format!("{page}/rollback"), "reason=slow")
        .await;
    assert_eq!(a.status, 409);
    assert_eq!(
        refusal(&a),
        "cannot roll back a change in state authorised: nothing has been installed yet: cancel it instead"
    );
    // A schedule time that is not a time; then no window opens (there is none).
    let a = olga
        .post(
            &server,
            &format!("{page}/schedule"),
            "not_before=tomorrow&template=",
        )
        .await;
    assert_eq!(a.status, 400);
    let a = olga
        .post(
            &server,
            &format!("{page}/schedule"),
            "not_before=2026-12-01T20%3A00&template=",
        )
        .await;
    assert_eq!(a.status, 409);
    assert!(
        refusal(&a).contains("no maintenance window"),
        "{}",
        a.text()
    );

    // The list, with its filters in the URL.
    let t = avery
        .get(&server, "/changes?state=authorised&class=normal&group=web")
        .await
        .text();
    assert!(t.contains(&format!("href=\"/changes/{number}\"")), "{t}");
    for q in [
        "state=draft",
        "class=emergency",
        "group=db",
        "requester=adam",
    ] {
        let t = avery.get(&server, &format!("/changes?{q}")).await.text();
        assert!(!t.contains(&format!("href=\"/changes/{number}\"")), "{q}");
    }
    for bad in ["state=nonsense", "class=huge", "page=0", "colour=red"] {
        let a = avery.get(&server, &format!("/changes?{bad}")).await;
        assert_eq!(a.status, 400, "{bad}");
    }
    let a = avery.get(&server, "/changes/PCR-1999-0001").await;
    assert_eq!(a.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_needs_a_reason_and_a_cancellation_is_the_requesters() {
    let server = Server::start(|_| {}).await;
    let web = host(&server, "web-1").await;
    let rita = person(&server, "rita", &[Role::Officer]).await;
    let adam = person(&server, "adam", &[Role::Approver]).await;
    let a = rita
        .post(&server, "/changes", &change_fields("first", web))
        .await;
    let page = location(&a);
    rita.post(&server, &format!("{page}/submit"), "").await;

    let a = adam
        .post(&server, &format!("{page}/reject"), "reason=+")
        .await;
    assert_eq!(a.status, 409);
    assert_eq!(
        refusal(&a),
        "cannot reject a change in state submitted: a rejection needs a reason"
    );
    let a = adam
        .post(&server, &format!("{page}/reject"), "reason=no+test+plan")
        .await;
    assert_eq!(a.status, 303);
    let t = rita.get(&server, &page).await.text();
    assert!(t.contains("id=\"change-state\">rejected<"));
    assert!(t.contains("no test plan"));
    assert!(
        !t.contains("Actions</h2>"),
        "a rejected change has no actions"
    );

    // A second change, cancelled by its requester with why.
    let a = rita
        .post(&server, "/changes", &change_fields("second", web))
        .await;
    let page = location(&a);
    let a = rita
        .post(&server, &format!("{page}/cancel"), "reason=duplicate")
        .await;
    assert_eq!(a.status, 303);
    let t = adam.get(&server, &page).await.text();
    assert!(t.contains("id=\"change-state\">cancelled<"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_page_shows_the_month_and_only_its_keepers_change_it() {
    let server = Server::start(|_| {}).await;
    let olga = person(&server, "olga", &[Role::Officer]).await;
    let avery = person(&server, "avery", &[Role::Auditor]).await;

    let t = olga.get(&server, "/calendar").await.text();
    assert!(t.contains("href=\"/calendar.ics\""), "the feed is linked");
    assert!(t.contains("action=\"/calendar\""), "a keeper has the forms");
    let t = avery.get(&server, "/calendar").await.text();
    assert!(!t.contains("action=\"/calendar\""), "an auditor has none");

    let window = "kind=window&name=patch-tuesday&rrule=FREQ%3DMONTHLY%3BBYDAY%3D2TU\
                  &start=2026-01-13T20%3A00&time_zone=UTC&duration_minutes=240&groups=";
    // Without the token, or as an auditor: refused; nothing is kept.
    let a = server.send(olga.cookie(form("/calendar", window))).await;
    assert_eq!(a.code(), Some(ProblemCode::CsrfRejected));
    let a = avery.post(&server, "/calendar", window).await;
    assert_eq!(a.status, 403);
    // Malformed: an unknown kind, an unknown field, a name with a space, a rule that is not
    // one, a duration that is not a number.
    for (bad, status) in [
        (window.replace("kind=window", "kind=holiday"), 400),
        (format!("{window}&colour=red"), 400),
        (
            window.replace("name=patch-tuesday", "name=patch+tuesday"),
            400,
        ),
        (window.replace("FREQ%3DMONTHLY", "FREQ%3DSOMETIMES"), 400),
        (
            window.replace("duration_minutes=240", "duration_minutes=long"),
            400,
        ),
    ] {
        let a = olga.post(&server, "/calendar", &bad).await;
        assert_eq!(a.status, status, "{bad}: {}", a.text());
    }
    let a = olga
        .post(
            &server,
            "/calendar",
            &window.replace("FREQ%3DMONTHLY", "FREQ%3DSOMETIMES"),
        )
        .await;
    assert!(!refusal(&a).is_empty(), "the rule's refusal is on the page");
    assert!(server.store().calendar_entries().await.unwrap().is_empty());

    let a = olga.post(&server, "/calendar", window).await;
    assert_eq!(a.status, 303, "{}", a.text());
    let a = olga
        .post(
            &server,
            "/calendar",
            "kind=freeze&name=year-end&start=2026-12-20T00%3A00&end=2027-01-03T00%3A00\
             &reason=year+end+close",
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());

    // December 2026: the window's second Tuesday (the 8th) and the freeze from the 20th.
    let t = avery.get(&server, "/calendar?month=2026-12").await.text();
    assert!(t.contains("December 2026"), "{t}");
    assert!(t.contains("patch-tuesday 20:00–00:00"), "{t}");
    assert_eq!(
        t.matches("year-end (freeze)").count(),
        12,
        "20 to 31 December"
    );
    assert!(t.contains("year end close"));
    // The API sees the same entries.
    let a = server
        .send(olga.session.apply(Req::get("/api/v1/calendar")))
        .await;
    assert_eq!(a.status, 200);
    assert!(a.text().contains("patch-tuesday") && a.text().contains("year-end"));

    for bad in ["month=2026-13", "month=soon", "colour=red"] {
        let a = avery.get(&server, &format!("/calendar?{bad}")).await;
        assert_eq!(a.status, 400, "{bad}");
    }
    let a = avery.post(&server, "/calendar/year-end/delete", "").await;
    assert_eq!(a.status, 403);
    let a = olga.post(&server, "/calendar/year-end/delete", "").await;
    assert_eq!(a.status, 303);
    let a = olga.post(&server, "/calendar/year-end/delete", "").await;
    assert_eq!(a.status, 404);
    let names: Vec<String> = server
        .store()
        .calendar_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["patch-tuesday"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_is_requested_acknowledged_approved_and_revoked_on_its_pages() {
    let server = Server::start(|_| {}).await;
    let scada = host(&server, "scada-1").await;
    // Security may request and decide: only the core's rule keeps sam from approving his own.
    let sam = person(&server, "sam", &[Role::Security]).await;
    let bob = person(&server, "bob", &[Role::Approver]).await;
    let avery = person(&server, "avery", &[Role::Auditor]).await;

    let a = sam.get(&server, "/exceptions/new").await;
    assert_eq!(a.status, 200);
    assert_eq!(avery.get(&server, "/exceptions/new").await.status, 403);

    let expires = (patchwarden_server::clock::now() + SignedDuration::from_hours(24 * 20))
        .strftime("%Y-%m-%d")
        .to_string();
    let fields = format!(
        "justification=no_vendor_patch&explanation={}&control_kind_1=network_segmentation\
         &control_text_1={}&control_kind_2=&control_text_2=&control_kind_3=&control_text_3=\
         &protected_data=on&expires_on={expires}&host={scada}",
        enc("the PLC vendor has no fix yet"),
        enc("own VLAN, no inbound from the office LAN"),
    );
    // The core's rules on the request: a control is required; the page says so.
    let no_control = fields
        .replace("control_kind_1=network_segmentation", "control_kind_1=")
        .replace(
            &format!(
                "control_text_1={}",
                enc("own VLAN, no inbound from the office LAN")
            ),
            "control_text_1=",
        );
    let a = sam.post(&server, "/exceptions", &no_control).await;
    assert_eq!(a.status, 422, "{}", a.text());
    assert!(a.text().contains("no compensating control"), "{}", a.text());
    for bad in [
        format!("{fields}&colour=red"),
        fields.replace(&format!("expires_on={expires}"), "expires_on=soon"),
        fields.replace("justification=no_vendor_patch", "justification=lazy"),
    ] {
        let a = sam.post(&server, "/exceptions", &bad).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.text());
    }
    let a = server.send(sam.cookie(form("/exceptions", &fields))).await;
    assert_eq!(a.code(), Some(ProblemCode::CsrfRejected));

    let a = sam.post(&server, "/exceptions", &fields).await;
    assert_eq!(a.status, 303, "{}", a.text());
    let page = location(&a);
    assert!(page.starts_with("/exceptions/EXC-"), "{page}");

    // Requested, with protected data: the requester sees no decision; the approver may
    // acknowledge as data owner but not yet approve; the auditor sees no action.
    let t = sam.get(&server, &page).await.text();
    assert!(t.contains("scada-1"), "the host by name");
    for id in ["do-approve", "do-acknowledge", "do-reject"] {
        assert!(
            !t.contains(&format!("id=\"{id}\"")),
            "{id} for the requester"
        );
    }
    let t = bob.get(&server, &page).await.text();
    assert!(t.contains("id=\"do-acknowledge\"") && t.contains("id=\"do-reject\""));
    assert!(
        !t.contains("id=\"do-approve\""),
        "not before the data owner"
    );
    let t = avery.get(&server, &page).await.text();
    assert!(!t.contains("Actions</h2>"));

    let a = sam.post(&server, &format!("{page}/approve"), "").await;
    assert_eq!(a.status, 409);
    assert_eq!(
        refusal(&a),
        "the requester cannot approve their own exception"
    );
    let a = bob.post(&server, &format!("{page}/approve"), "").await;
    assert_eq!(a.status, 409);
    assert!(refusal(&a).contains("its data owner acknowledges the exception first"));
    let a = bob
        .post(&server, &format!("{page}/acknowledge"), "colour=red")
        .await;
    assert_eq!(a.status, 400);

    let a = bob.post(&server, &format!("{page}/acknowledge"), "").await;
    assert_eq!(a.status, 303, "{}", a.text());
    let t = bob.get(&server, &page).await.text();
    assert!(t.contains("id=\"do-approve\""));
    let a = bob.post(&server, &format!("{page}/approve"), "").await;
    assert_eq!(a.status, 303, "{}", a.text());
    let t = avery.get(&server, &page).await.text();
    assert!(t.contains("id=\"exception-state\">in force<"), "{t}");
    assert!(t.contains("approved by bob"));

    let a = bob
        .post(&server, &format!("{page}/revoke"), "reason=+")
        .await;
    assert_eq!(a.status, 409);
    assert!(!refusal(&a).is_empty());
    let a = bob
        .post(
            &server,
            &format!("{page}/revoke"),
            "reason=the+vendor+shipped+a+fix",
        )
        .await;
    assert_eq!(a.status, 303);

    let number = page.trim_start_matches("/exceptions/");
    let t = avery.get(&server, "/exceptions?state=revoked").await.text();
    assert!(t.contains(&format!("href=\"/exceptions/{number}\"")), "{t}");
    let t = avery
        .get(&server, "/exceptions?state=requested")
        .await
        .text();
    assert!(!t.contains(&format!("href=\"/exceptions/{number}\"")));
    let t = avery
        .get(&server, &format!("/exceptions?host={scada}"))
        .await
        .text();
    assert!(t.contains(&format!("href=\"/exceptions/{number}\"")));
    for bad in ["state=bogus", "host=not-a-host", "page=0", "colour=red"] {
        let a = avery.get(&server, &format!("/exceptions?{bad}")).await;
        assert_eq!(a.status, 400, "{bad}");
    }
    assert_eq!(
        avery.get(&server, "/exceptions/EXC-1999-0001").await.status,
        404
    );
}
