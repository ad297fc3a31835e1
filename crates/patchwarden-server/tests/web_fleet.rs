//! The fleet's web pages over HTTP against a real server and a real SQLite store, with a fleet
//! whose numbers the test knows (`fleet_support`): the dashboard's compliance and trend, the
//! hosts list's filters in the URL and its pages, a host's page, the findings' filters, a
//! provider who sees only its groups, the admin forms (users, enrollment tokens, API tokens,
//! feeds) with their audit entries, the triage form, and roles that get 403 pages and no
//! buttons.

mod fleet_support;
mod operator_support;

use fleet_support::{OPENSSL_NOW, build};
use operator_support::{Answer, PASSWORD, Req, Server, Session};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::Role;
use patchwarden_store::feed::{FeedSourceSpec, SourceKind, SourceOrigin};
use patchwarden_store::triage::NewTriageItem;

async fn page(server: &Server, who: &Session, path: &str) -> Answer {
    server.send(who.apply(Req::get(path))).await
}

/// Posts a page's form as a browser does: the session cookie, the form's CSRF field.
async fn post_form(server: &Server, who: &Session, path: &str, body: &str) -> Answer {
    let mut r = Req::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "cookie",
            &format!(
                "{}={}",
                patchwarden_api::v1::operator::SESSION_COOKIE,
                who.cookie
            ),
        );
    r.body = format!("csrf_token={}&{body}", who.csrf).into_bytes();
    server.send(r).await
}

/// The text of an HTML fragment, tags dropped and spaces squeezed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The cells (`<th>` and `<td>`) of the first table row after `marker`, as text.
fn row_after(page: &str, marker: &str) -> Vec<String> {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} is not on the page:\n{page}"));
    let rest = &page[at..];
    let row = &rest[..rest.find("</tr>").expect("the row ends")];
    let mut cells = Vec::new();
    for part in row.split("<t").skip(1) {
        if let Some(body) = part.strip_prefix('d').or_else(|| part.strip_prefix('h')) {
            let inner = &body[body.find('>').map_or(0, |i| i + 1)..];
            cells.push(text_of(inner));
        }
    }
    cells
}

/// The rows of the first table body on the page.
fn body_rows(page: &str) -> Vec<String> {
    let start = page.find("<tbody>").expect("a table");
    let end = start + page[start..].find("</tbody>").unwrap();
    page[start..end].split("<tr").skip(1).map(text_of).collect()
}

fn host_names(page: &str) -> Vec<String> {
    let mut names: Vec<String> = body_rows(page)
        .iter()
        .filter_map(|r| r.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn hosts(ids: &[usize]) -> Vec<String> {
    ids.iter().map(|i| format!("host-{i:05}")).collect()
}

/// The `href` of the link with `rel="next"`, unescaped.
fn next_link(page: &str) -> Option<String> {
    let at = page.find("rel=\"next\"")?;
    let before = &page[..at];
    let href = &before[before.rfind("href=\"")? + 6..];
    // As a browser reads the attribute: askama writes `&` as `&#38;`.
    Some(
        href[..href.find('"')?]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_show_the_fleets_numbers_and_filter_by_the_url() {
    let server = Server::start(|_| {}).await;
    let fleet = build(server.store().as_ref(), 12, true).await;
    server.user("olive", &[Role::Officer], &[]).await;
    let olive = server.login("olive", PASSWORD).await;

    // The dashboard: 6 Emergency breached (even hosts), 12 High due soon, 4 Low on time
    // (hosts 0, 3, 6, 9).
    let a = page(&server, &olive, "/dashboard").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let d = a.text();
    // Kept as an artefact to look at (the chart, the tables).
    let artefact =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_fleet_dashboard.html");
    std::fs::write(&artefact, &d).unwrap();
    assert_eq!(
        row_after(&d, "<tr data-class=\"emergency\">"),
        ["Emergency", "0", "0", "6", "0", "6"]
    );
    assert_eq!(
        row_after(&d, "<tr data-class=\"high\">"),
        ["High", "0", "12", "0", "0", "12"]
    );
    assert_eq!(
        row_after(&d, "<tr data-class=\"medium\">"),
        ["Medium", "0", "0", "0", "0", "0"]
    );
    assert_eq!(
        row_after(&d, "<tr data-class=\"low\">"),
        ["Low", "4", "0", "0", "0", "4"]
    );
    assert_eq!(
        row_after(&d, "<tfoot>"),
        ["All classes", "4", "12", "6", "0", "22"]
    );
    // The trend: a chart with its text alternative, and its table. This month (judged now)
    // holds today's numbers; four months back nothing was open yet (the oldest finding is
    // 70 days old).
    assert!(d.contains("<svg role=\"img\" aria-labelledby=\"trend-title trend-desc\""));
    let trend_start = d.find("id=\"trend-table\"").unwrap();
    let trend = body_rows(&d[trend_start..]);
    assert_eq!(trend.len(), 12);
    let last: Vec<&str> = trend[11].split_whitespace().collect();
    // Month, year, on time, due soon, breached, breached Emergency/High, open.
    assert_eq!(&last[2..], ["4", "12", "6", "6", "22"], "{}", trend[11]);
    let four_back: Vec<&str> = trend[7].split_whitespace().collect();
    assert_eq!(four_back.last(), Some(&"0"), "{}", trend[7]);
    for section in [
        "Advisory feeds",
        "Rollouts in flight",
        "Windows and freezes",
    ] {
        assert!(d.contains(section), "{section}");
    }

    // The hosts: every filter is in the URL.
    let all = page(&server, &olive, "/hosts").await.text();
    assert_eq!(host_names(&all).len(), 12);
    let cases: [(&str, Vec<usize>); 6] = [
        ("/hosts?group=web", vec![0, 3, 6, 9]),
        ("/hosts?group=db&ring=canary", vec![4]),
        ("/hosts?reboot=yes", vec![0, 3, 6, 9]),
        ("/hosts?os=AlmaLinux%3A9&reboot=no", vec![1, 5, 7, 11]),
        // Not seen for 5 days or more.
        ("/hosts?unseen_days=5", vec![5, 6, 7, 8, 9]),
        ("/hosts?group=edge&unseen_days=&os=", vec![2, 5, 8, 11]),
    ];
    for (path, want) in cases {
        let a = page(&server, &olive, path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(host_names(&a.text()), hosts(&want), "{path}");
    }
    // A row: the host's open findings, reboot, group.
    // (The cells after the host's name: group, ring, OS, reboot, last seen, open findings.)
    let row = row_after(&all, ">host-00000</a>");
    assert_eq!(row[0], "web");
    assert_eq!(row[1], "canary");
    assert_eq!(row[3], "required");
    assert_eq!(row[5], "3", "{row:?}");
    // Pages of 5, following the next link with the filters kept.
    let mut seen = Vec::new();
    let mut path = Some("/hosts?limit=5&ring=broad".to_owned());
    let mut pages = 0;
    while let Some(p) = path {
        let a = page(&server, &olive, &p).await;
        assert_eq!(a.status, 200, "{p}");
        let t = a.text();
        let names = host_names(&t);
        assert!(names.len() <= 5);
        seen.extend(names);
        path = next_link(&t);
        if let Some(n) = &path {
            assert!(n.contains("ring=broad") && n.contains("limit=5"), "{n}");
        }
        pages += 1;
    }
    seen.sort();
    assert_eq!(seen, hosts(&[1, 2, 3, 5, 6, 7, 9, 10, 11]));
    assert_eq!(pages, 2);
    // Nonsense in the URL is said, as a page.
    for bad in [
        "/hosts?reboot=maybe",
        "/hosts?colour=red",
        "/hosts?limit=0",
        "/hosts?after=not-an-id",
        "/findings?class=urgent",
    ] {
        let a = page(&server, &olive, bad).await;
        assert_eq!(a.status, 400, "{bad}");
        assert!(a.header("content-type").unwrap().starts_with("text/html"));
    }

    // A host's page: facts, open findings, the patch history, packages with a filter.
    let h0 = fleet.ids[0];
    let a = page(&server, &olive, &format!("/hosts/{h0}")).await;
    assert_eq!(a.status, 200);
    let t = a.text();
    for fact in [
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-28-amd64",
        "kernel 6.1.0-28 installed",
    ] {
        assert!(t.contains(fact), "{fact}");
    }
    assert!(t.contains("Open findings (3)"));
    let history = row_after(&t, "<th scope=\"row\">CVE-2025-0009</th>");
    assert_eq!(history[1], "openssl");
    assert_eq!(history[3], OPENSSL_NOW);
    let a = page(&server, &olive, &format!("/hosts/{h0}?pkg=SSL")).await;
    let t = a.text();
    let pk = &t[t.find("id=\"packages\"").unwrap()..];
    let rows = body_rows(&pk[pk.find("<table>").unwrap()..]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("libssl3") && rows[1].starts_with("openssl"));

    // The findings: by standing, vulnerability, class and group, closed ones as history.
    for (path, n) in [
        ("/findings", 22),
        ("/findings?standing=breached", 6),
        ("/findings?vulnerability=CVE-2026-0003", 4),
        // By the advisory that names it.
        ("/findings?advisory=DSA-0001-1", 6),
        ("/findings?class=high&group=db", 4),
        ("/findings?state=closed", 12),
        ("/findings?standing=due_soon&limit=5", 5),
    ] {
        let a = page(&server, &olive, path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(body_rows(&a.text()).len(), n, "{path}");
    }
    let t = page(&server, &olive, "/findings?standing=breached")
        .await
        .text();
    // Each finding says why its class (policy and rule), its due date and its ratings.
    assert!(t.contains("policy fleet-test, rule emergency-rule"), "{t}");
    assert!(t.contains("KEV") && t.contains("EPSS") && t.contains("CVSS"));
    // Why exposed, escaped as HTML text.
    assert!(
        t.contains("bash 5.2.15-2+b7 &#60; 5.2.15-2+b9")
            || t.contains("bash 5.2.15-2+b7 &lt; 5.2.15-2+b9"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_sees_only_the_hosts_of_its_groups() {
    let server = Server::start(|_| {}).await;
    let fleet = build(server.store().as_ref(), 9, false).await;
    server.user("pat", &[Role::Provider], &["web"]).await;
    let pat = server.login("pat", PASSWORD).await;
    // Web hosts are 0, 3 and 6.
    let t = page(&server, &pat, "/hosts").await.text();
    assert_eq!(host_names(&t), hosts(&[0, 3, 6]));
    let t = page(&server, &pat, "/hosts?group=db").await.text();
    assert!(host_names(&t).is_empty());
    // Another group's host is not found, as in the API.
    let a = page(&server, &pat, &format!("/hosts/{}", fleet.ids[1])).await;
    assert_eq!(a.status, 404);
    let a = page(&server, &pat, &format!("/hosts/{}", fleet.ids[3])).await;
    assert_eq!(a.status, 200);
    // The dashboard counts its hosts only: Emergency on 0 and 6, High on all three, Low on all.
    let d = page(&server, &pat, "/dashboard").await.text();
    assert_eq!(
        row_after(&d, "<tfoot>"),
        ["All classes", "3", "3", "2", "0", "8"]
    );
    let t = page(&server, &pat, "/findings").await.text();
    assert_eq!(body_rows(&t).len(), 8);
    assert!(!t.contains("host-00001"));
    // The triage queue is not for providers: not in the menu, and a 403 page.
    assert!(!d.contains("href=\"/triage\""));
    let a = page(&server, &pat, "/triage").await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), Some(ProblemCode::Forbidden));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_forms_make_and_change_users_and_tokens_with_audit_entries() {
    let server = Server::start(|_| {}).await;
    let store = server.store();
    let admin = server.user("ada", &[Role::Admin], &[]).await;
    let ada = server.login("ada", PASSWORD).await;

    // A new user: the one-time password is shown once, and logs in.
    let a = page(&server, &ada, "/admin/users").await;
    assert!(a.text().contains("action=\"/admin/users\""));
    let a = post_form(
        &server,
        &ada,
        "/admin/users",
        "username=newbie&role=approver&role=auditor",
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let t = a.text();
    let at = t.find("id=\"one-time-password\">").unwrap() + "id=\"one-time-password\">".len();
    let password = &t[at..at + t[at..].find('<').unwrap()];
    let newbie = store.find_user("newbie").await.unwrap().unwrap();
    assert!(newbie.must_change_password);
    assert_eq!(newbie.roles, [Role::Approver, Role::Auditor].into());
    let login = |pw: &str| {
        let mut r = Req::post("/login").header("content-type", "application/x-www-form-urlencoded");
        r.body = format!("username=newbie&password={}&next=%2F", urlencode(pw)).into_bytes();
        r
    };
    let a = server.send(login(password)).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/account"));
    // The users page lists it; a second look shows no password.
    let t = page(&server, &ada, "/admin/users").await.text();
    assert!(t.contains("id=\"user-newbie\"") && !t.contains(password));

    // A malformed form changes nothing and says why; an over-long one is refused.
    let a = post_form(&server, &ada, "/admin/users", "username=wiz&role=wizard").await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("role \"wizard\": unknown") || a.text().contains("wizard"));
    assert!(store.find_user("wiz").await.unwrap().is_none());
    let a = post_form(&server, &ada, "/admin/users", &"a".repeat(70 * 1024)).await;
    assert_eq!(a.status, 413);

    // Roles, disable, enable: each a 303 back to the list.
    let id = newbie.id;
    let a = post_form(
        &server,
        &ada,
        &format!("/admin/users/{id}/roles"),
        "role=auditor",
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(
        store.get_user(id).await.unwrap().unwrap().roles,
        [Role::Auditor].into()
    );
    let a = post_form(&server, &ada, &format!("/admin/users/{id}/disable"), "").await;
    assert_eq!(a.status, 303);
    assert!(
        store
            .get_user(id)
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_some()
    );
    let a = server.send(login(password)).await;
    assert_eq!(a.status, 401, "a disabled user does not log in");
    let a = post_form(&server, &ada, &format!("/admin/users/{id}/enable"), "").await;
    assert_eq!(a.status, 303);
    assert!(
        store
            .get_user(id)
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_none()
    );
    // Nobody disables themselves: said on the page.
    let a = post_form(
        &server,
        &ada,
        &format!("/admin/users/{}/disable", admin.id),
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(a.text().contains("ask another admin"), "{}", a.text());

    // An enrollment token: the secret once, then revoked.
    let a = post_form(
        &server,
        &ada,
        "/admin/enrollment-tokens",
        "group=web&max_uses=3&note=rack+4",
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let t = a.text();
    assert!(t.contains("id=\"enrollment-secret\">pwe_"));
    // The test server has no public URL: no install command, and the page says why.
    assert!(
        t.contains("No install command can be shown: public_url is not set"),
        "{t}"
    );
    let token = store
        .list_enrollment_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.note.as_deref() == Some("rack 4"))
        .unwrap();
    assert_eq!((token.group.as_str(), token.max_uses), ("web", 3));
    let a = post_form(
        &server,
        &ada,
        &format!("/admin/enrollment-tokens/{}/revoke", token.id),
        "",
    )
    .await;
    assert_eq!(a.status, 303);
    let t = page(&server, &ada, "/admin/enrollment-tokens").await.text();
    assert!(row_after(&t, &format!("id=\"token-{}\"", token.id)).contains(&"revoked".to_owned()));
    let a = post_form(
        &server,
        &ada,
        "/admin/enrollment-tokens",
        "group=web&max_uses=lots",
    )
    .await;
    assert_eq!(a.status, 400);

    // An API token of one's own: shown once, works, revoked.
    // A token holds at most its user's roles.
    let a = post_form(
        &server,
        &ada,
        "/account/tokens",
        "name=nightly+report&role=auditor",
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("role=\"alert\""));
    let a = post_form(
        &server,
        &ada,
        "/account/tokens",
        "name=nightly+report&role=admin",
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let t = a.text();
    let at = t.find("id=\"api-token-secret\">").unwrap() + "id=\"api-token-secret\">".len();
    let secret = t[at..at + t[at..].find('<').unwrap()].to_owned();
    let a = server.send(Req::get("/api/v1/audit").bearer(&secret)).await;
    assert_eq!(a.status, 200);
    let tok = store.list_api_tokens(Some(admin.id)).await.unwrap();
    let tok = tok.iter().find(|t| t.name == "nightly report").unwrap();
    let a = post_form(
        &server,
        &ada,
        &format!("/account/tokens/{}/revoke", tok.id),
        "",
    )
    .await;
    assert_eq!(a.status, 303);
    let a = server.send(Req::get("/api/v1/audit").bearer(&secret)).await;
    assert_eq!(a.status, 401);

    // A manual feed's check, recorded from the feeds page.
    let now = patchwarden_server::clock::now();
    store
        .put_feed_source(
            &FeedSourceSpec {
                name: "acme-firmware".into(),
                kind: SourceKind::Manual,
                location: String::new(),
                interval_secs: None,
                expected_period_secs: Some(31 * 86_400),
                origin: SourceOrigin::Config,
            },
            now,
            AuditEntry::new(now, Actor::System("test".into()), "feed.define", "acme"),
        )
        .await
        .unwrap();
    let t = page(&server, &ada, "/admin/feeds").await.text();
    // Defined now, never checked: fresh until its period runs out.
    let before = row_after(&t, "id=\"feed-acme-firmware\"");
    assert_eq!(before[2], "fresh", "{before:?}");
    let a = post_form(
        &server,
        &ada,
        "/admin/feeds/acme-firmware/check",
        "note=vendor+page+read%3A+nothing+new",
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.text());
    let t = page(&server, &ada, "/admin/feeds").await.text();
    let after = row_after(&t, "id=\"feed-acme-firmware\"");
    assert_eq!(after[2], "fresh", "{after:?}");
    assert_ne!(before, after, "the check is recorded on the source");
    // A check without a note is refused, on the page.
    let a = post_form(&server, &ada, "/admin/feeds/acme-firmware/check", "note=").await;
    assert_eq!(a.status, 400, "{}", a.text());

    // Every change is in the audit log, by ada, and the chain holds.
    let t = page(&server, &ada, "/audit?actor=ada&limit=1000")
        .await
        .text();
    for action in [
        "user.create",
        "user.roles",
        "user.disable",
        "user.enable",
        "enrollment_token.create",
        "enrollment_token.revoke",
        "api_token.create",
        "api_token.revoke",
        "feed.check",
    ] {
        assert!(
            t.contains(&format!("<td>{action}</td>")),
            "{action} missing"
        );
    }
    let t = page(&server, &ada, "/audit?action=user.disable")
        .await
        .text();
    assert_eq!(body_rows(&t).len(), 1);
    assert!(t.contains("user:newbie"));
    let a = page(&server, &ada, "/audit/verification").await;
    assert_eq!(a.status, 200);
    assert!(a.text().contains("intact"), "{}", a.text());
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_without_the_right_get_403_pages_and_no_buttons() {
    let server = Server::start(|_| {}).await;
    let store = server.store();
    server.user("aud", &[Role::Auditor], &[]).await;
    server.user("amos", &[Role::Approver], &[]).await;
    server.user("olive", &[Role::Officer], &[]).await;
    let aud = server.login("aud", PASSWORD).await;
    let amos = server.login("amos", PASSWORD).await;
    let olive = server.login("olive", PASSWORD).await;

    // The auditor reads the users and the audit log, with no button to change anything.
    let t = page(&server, &aud, "/admin/users").await.text();
    assert!(t.contains("id=\"user-amos\""));
    assert!(
        !t.contains("<form method=\"post\" action=\"/admin/users"),
        "{t}"
    );
    assert!(!t.contains("Disable"));
    let a = post_form(&server, &aud, "/admin/users", "username=x&role=admin").await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), Some(ProblemCode::Forbidden));
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    assert!(store.find_user("x").await.unwrap().is_none());
    let t = page(&server, &aud, "/admin/enrollment-tokens").await.text();
    assert!(!t.contains("Create token"));
    assert_eq!(page(&server, &aud, "/audit").await.status, 200);

    // The approver: no audit log, no admin, a 403 page each; no admin or audit link.
    for path in ["/audit", "/admin", "/admin/users"] {
        let a = page(&server, &amos, path).await;
        assert_eq!(a.status, 403, "{path}");
        assert_eq!(a.code(), Some(ProblemCode::Forbidden), "{path}");
    }
    let d = page(&server, &amos, "/dashboard").await.text();
    assert!(!d.contains("href=\"/admin\"") && !d.contains("href=\"/audit\""));

    // The triage queue: the approver reads it without the form; the officer classifies.
    let now = patchwarden_server::clock::now();
    let item = store
        .enqueue_triage(
            &[NewTriageItem {
                vulnerability: "CVE-2026-99100".into(),
                advisories: vec!["ACME-2026-1".into()],
                summary: Some("acme firmware".into()),
                arrived_at: now - fleet_support::days(0) - jiff::SignedDuration::from_mins(30),
                due_at: now + jiff::SignedDuration::from_mins(210),
            }],
            now,
            AuditEntry::new(now, Actor::System("test".into()), "triage.enqueue", "t"),
        )
        .await
        .unwrap()[0]
        .id;
    let t = page(&server, &amos, "/triage").await.text();
    assert!(t.contains("CVE-2026-99100"));
    assert!(
        t.contains("3 h 29 min left") || t.contains("3 h 30 min left"),
        "{t}"
    );
    assert!(!t.contains("/classify"));
    let a = post_form(
        &server,
        &amos,
        &format!("/triage/{item}/classify"),
        "classification=low&reason=x",
    )
    .await;
    assert_eq!(a.status, 403);
    let t = page(&server, &olive, "/triage").await.text();
    assert!(t.contains(&format!("action=\"/triage/{item}/classify\"")));
    // No reason: said on the queue's page, nothing decided.
    let path = format!("/triage/{item}/classify");
    let a = post_form(&server, &olive, &path, "classification=high&reason=").await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("role=\"alert\""));
    assert!(
        store
            .get_triage(item)
            .await
            .unwrap()
            .unwrap()
            .decision
            .is_none()
    );
    let a = post_form(
        &server,
        &olive,
        &path,
        "classification=high&reason=exploited+in+the+wild",
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.text());
    let decided = store.get_triage(item).await.unwrap().unwrap();
    assert_eq!(decided.decision.unwrap().decided_by, "operator olive");
    let t = page(&server, &olive, "/triage?show=decided").await.text();
    assert!(t.contains("decided on time") && t.contains("exploited in the wild"));
}
