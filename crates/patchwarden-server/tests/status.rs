//! The public status page, the problem report that becomes an incident, the operators'
//! incidents, and the iCalendar feed — over HTTP against a real server with real agents'
//! protocol: a change really rolls out to a host of the `shop` service before the page is
//! read, and the feed is parsed by an independent parser (Python's `icalendar`).
//!
//! Without `python3` and its `icalendar` module the feed's parse check says it skipped,
//! unless `PATCHWARDEN_REQUIRE_TOOLS` is set, when it fails.

mod agent_support;
mod operator_support;

use std::time::Duration;

use agent_support::{Host, NEW, OLD};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use operator_support::{Answer, PASSWORD, Req, Server, Session};
use patchwarden_api::v1::changes::ChangeView;
use patchwarden_api::v1::jobs::JobOutcome;
use patchwarden_client::{Client, Trust};
use patchwarden_core::change::ChangeState;
use patchwarden_store::Role;
use serde_json::{Value, json};

/// Operator text that must never reach the public.
const TITLE: &str = "OpenSSL security update for shop-web-1";
const JUSTIFICATION: &str = "CVE-2024-5535 on the web tier";
const FREEZE_REASON: &str = "finance closes the books on 10.0.0.7";

struct World {
    server: Server,
    client: Client,
    officer: Session,
    approver: Session,
    authoriser: Session,
    auditor: Session,
}

impl World {
    async fn new() -> World {
        let server = Server::start(|c| {
            // Every request computes the page anew: the test reads it after each step.
            c.status.cache_secs = 0;
            c.status.reports_per_address = 3;
        })
        .await;
        server.user("olive", &[Role::Officer], &[]).await;
        server.user("amos", &[Role::Approver], &[]).await;
        server.user("dora", &[Role::Authoriser], &[]).await;
        server.user("avery", &[Role::Auditor], &[]).await;
        let client = Client::new(&server.url, &Trust::PlainHttp).unwrap();
        World {
            officer: server.login("olive", PASSWORD).await,
            approver: server.login("amos", PASSWORD).await,
            authoriser: server.login("dora", PASSWORD).await,
            auditor: server.login("avery", PASSWORD).await,
            server,
            client,
        }
    }

    /// Enrolls a host into `group` with `labels`; it checks in once with its inventory.
    async fn host(&self, name: &str, group: &str, labels: &[(&str, &str)]) -> Host {
        Host::enroll(&self.server, &self.client, name, group, None, labels).await
    }

    async fn send(&self, who: &Session, r: Req) -> Answer {
        self.server.send(who.apply(r)).await
    }

    async fn put_calendar(&self, name: &str, spec: Value) {
        let a = self
            .send(
                &self.officer,
                Req::new("PUT", &format!("/api/v1/calendar/{name}")).json(&spec),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
    }

    async fn act(&self, who: &Session, number: &str, action: &str) -> ChangeView {
        agent_support::act(&self.server, who, number, action).await
    }

    async fn scheduled_change(&self, group: &str) -> String {
        let a = self
            .send(
                &self.officer,
                Req::post("/api/v1/changes").json(&json!({
                    "kind": "normal",
                    "title": TITLE,
                    "justification": JUSTIFICATION,
                    "risk": "medium",
                    "priority": "high",
                    "testing": {"required": "not_required", "reason": "vendor-tested library update"},
                    "rollback_plan": "reinstall the previous openssl",
                    "targets": {"groups": [group]},
                    "patches": [{"package": "openssl", "version": NEW, "ecosystem": "Debian:12"}],
                })),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text());
        let n = a.json::<ChangeView>().number;
        self.act(&self.officer, &n, "submit").await;
        self.act(&self.approver, &n, "approve").await;
        self.act(&self.authoriser, &n, "authorise").await;
        self.act(&self.officer, &n, "schedule").await;
        n
    }

    async fn change(&self, number: &str) -> ChangeView {
        agent_support::show(&self.server, &self.officer, number).await
    }

    async fn until(&self, number: &str, want: ChangeState) -> ChangeView {
        agent_support::until(&self.server, &self.officer, number, want).await
    }

    async fn incidents(&self) -> Vec<Value> {
        let a = self
            .send(&self.officer, Req::get("/api/v1/incidents"))
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
        a.json::<Value>()["items"].as_array().unwrap().clone()
    }
}

/// A report as a browser on this server's page sends it.
fn report(body: &str) -> Req {
    report_from("http://pw.test", "same-origin", body)
}

/// A report as a browser sends it from a page at `origin`.
fn report_from(origin: &str, site: &str, body: &str) -> Req {
    let mut r = Req::post("/status/report")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin)
        .header("sec-fetch-site", site);
    r.body = body.as_bytes().to_vec();
    r
}

/// Whether `page` holds `text` HTML-escaped (askama writes `<` as `&#60;`; `&lt;` is as good).
fn escaped(page: &str, text: &str) -> bool {
    let numeric = text.replace('<', "&#60;").replace('>', "&#62;");
    let named = text.replace('<', "&lt;").replace('>', "&gt;");
    page.contains(&numeric) || page.contains(&named)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The first Date + `days` of today (UTC).
fn day(days: i64) -> Date {
    patchwarden_server::clock::now()
        .to_zoned(TimeZone::UTC)
        .date()
        .checked_add(SignedDuration::from_hours(24 * days))
        .unwrap()
}

/// `20:00` in Europe/Berlin on `d`, as a UTC instant.
fn berlin_evening(d: Date) -> Timestamp {
    d.at(20, 0, 0, 0)
        .to_zoned(TimeZone::get("Europe/Berlin").unwrap())
        .unwrap()
        .timestamp()
}

fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The events of an iCalendar text as Python's `icalendar` reads them; `None` (after saying
/// so) when the parser is not installed and the tools are not required.
fn parse_ics(text: &str) -> Option<Value> {
    const SCRIPT: &str = r#"
import json, sys
try:
    import icalendar
except ImportError:
    print("NO_ICALENDAR")
    sys.exit(0)
cal = icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read())
out = {"prodid": str(cal.get("prodid")), "version": str(cal.get("version")), "events": []}
for ev in cal.walk("VEVENT"):
    out["events"].append({
        "uid": str(ev.get("uid")),
        "summary": str(ev.get("summary")),
        "description": str(ev.get("description")),
        "start": ev.decoded("dtstart").strftime("%Y-%m-%dT%H:%M:%S%z"),
        "end": ev.decoded("dtend").strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stamp": ev.decoded("dtstamp").strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
print(json.dumps(out))
"#;
    let required = std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feed.ics");
    std::fs::write(&file, text).unwrap();
    let out = match std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&file)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(!required, "python3 is required to parse the feed: {e}");
            eprintln!("SKIPPED the iCalendar parse check: python3 is not installed ({e})");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim() == "NO_ICALENDAR" {
        assert!(
            !required,
            "Python's icalendar module is required to parse the feed (pip install icalendar)"
        );
        eprintln!("SKIPPED the iCalendar parse check: Python's icalendar is not installed");
        return None;
    }
    assert!(
        out.status.success(),
        "icalendar refused the feed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_str(&stdout).unwrap())
}

fn utc_of(s: &str) -> String {
    // Python writes `+0000` for UTC.
    s.strip_suffix("+0000")
        .map(|t| format!("{t}Z"))
        .unwrap_or_else(|| panic!("{s} is not UTC"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_publishes_windows_and_patches_in_plain_words_and_a_report_makes_an_incident()
 {
    let w = World::new().await;
    let mut shop = w
        .host(
            "shop-web-1",
            "web",
            &[
                ("application", "shop"),
                ("impact", "Checkout may pause for a few minutes"),
            ],
        )
        .await;
    let _payroll = w
        .host("pay-db-1", "db", &[("application", "payroll")])
        .await;

    // The calendar: web hosts are always in a window; db hosts on three weekly evenings
    // in Berlin, the first two days from now; a freeze three weeks ahead.
    w.put_calendar(
        "web-always",
        json!({"kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T00:00",
               "time_zone": "UTC", "duration_minutes": 1440, "groups": ["web"]}),
    )
    .await;
    let first_db = day(2);
    w.put_calendar(
        "db-weekly",
        json!({"kind": "window", "rrule": "FREQ=WEEKLY;COUNT=3",
               "start": format!("{first_db}T20:00"), "time_zone": "Europe/Berlin",
               "duration_minutes": 120, "groups": ["db"]}),
    )
    .await;
    let freeze_start = berlin_evening(day(21));
    let freeze_end = berlin_evening(day(23));
    w.put_calendar(
        "year-end",
        json!({"kind": "freeze", "start": freeze_start, "end": freeze_end,
               "reason": FREEZE_REASON}),
    )
    .await;

    // A change rolls out to the shop's host and completes; another is announced for payroll.
    let done = w.scheduled_change("web").await;
    w.until(&done, ChangeState::Deploying).await;
    let mut jobs = Vec::new();
    for _ in 0..50 {
        jobs = shop.check_in().await;
        if !jobs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(jobs.len(), 1, "the shop's host got no install job");
    shop.run(&jobs[0], JobOutcome::Succeeded).await;
    w.until(&done, ChangeState::Verified).await;
    w.act(&w.officer, &done, "close").await;
    let announced = w.scheduled_change("db").await;
    let c = w.change(&announced).await;
    assert_eq!(c.window_start, Some(berlin_evening(first_db)), "{c:#?}");

    // The page, without a login.
    let a = w.server.send(Req::get("/status")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    let page = a.text();
    // Kept as an artefact to look at.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.html"),
        &page,
    );
    assert!(!page.contains("<script"), "the status page needs no script");
    for shown in [
        "shop",
        "payroll",
        "Checkout may pause for a few minutes",
        "Maintenance window open",
        // What was patched, in plain words, with the service.
        &done,
        "Planned security update of 1 software package",
        // The announced change and the db window it waits for.
        &announced,
        &format!("datetime=\"{}\"", iso(berlin_evening(first_db))),
        "year-end",
    ] {
        assert!(
            page.contains(shown),
            "the status page lacks {shown:?}:\n{page}"
        );
    }
    for secret in [
        "shop-web-1",
        "pay-db-1",
        "openssl",
        "OpenSSL",
        OLD,
        NEW,
        "CVE-",
        FREEZE_REASON,
        "10.0.0.7",
        "olive",
    ] {
        assert!(
            !page.contains(secret),
            "the status page shows {secret:?}:\n{page}"
        );
    }

    // A problem with the shop: an incident linked to the change that touched it.
    let body = format!(
        "service=shop&description={}&contact={}",
        enc("<script>alert(1)</script> checkout fails since the update"),
        enc("pat@example.org"),
    );
    let a = w.server.send(report(&body)).await;
    assert_eq!(a.status, 303, "{}", a.text());
    let back = a.header("location").unwrap().to_owned();
    assert!(back.starts_with("/status?reported=INC-"), "{back}");
    let number = back.trim_start_matches("/status?reported=").to_owned();
    let a = w.server.send(Req::get(&back)).await;
    assert!(
        a.text()
            .contains(&format!("received as <strong>{number}</strong>"))
    );

    let items = w.incidents().await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["number"], number.as_str());
    assert_eq!(items[0]["service"], "shop");
    assert_eq!(items[0]["change"], done.as_str());
    assert_eq!(items[0]["state"], "open");
    assert_eq!(items[0]["contact"], "pat@example.org");
    assert!(
        items[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("<script>alert(1)</script>")
    );
    let a = w
        .send(&w.officer, Req::get(&format!("/api/v1/incidents/{number}")))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json::<Value>()["change"], done.as_str());

    // The operators' pages show the text escaped and link the change.
    let a = w
        .send(&w.officer, Req::get(&format!("/incidents/{number}")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let html = a.text();
    assert!(escaped(&html, "<script>alert(1)</script>"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains(&format!("href=\"/changes/{done}\"")),
        "{html}"
    );
    let a = w.send(&w.officer, Req::get("/incidents?state=open")).await;
    assert_eq!(a.status, 200);
    assert!(a.text().contains(&number));
    assert!(!a.text().contains("<script>alert"));
    // A provider sees no incidents; without a login the page is the login form.
    w.server.user("pia", &[Role::Provider], &["web"]).await;
    let provider = w.server.login("pia", PASSWORD).await;
    assert_eq!(
        w.send(&provider, Req::get("/api/v1/incidents"))
            .await
            .status,
        403
    );
    assert_eq!(w.server.send(Req::get("/incidents")).await.status, 401);

    // Payroll: no change touched it, so its incident names none.
    let a = w
        .server
        .send(report("service=payroll&description=payslips+look+odd"))
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    let items = w.incidents().await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["service"], "payroll");
    assert_eq!(items[0]["change"], Value::Null);

    // Refusals: each says why, and none stores anything.
    let refusals: Vec<(Req, u16, &str)> = vec![
        (
            report_from(
                "https://evil.example",
                "cross-site",
                "service=shop&description=x",
            ),
            403,
            "another web site",
        ),
        (
            {
                let mut r = Req::post("/status/report")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("sec-fetch-site", "cross-site");
                r.body = b"service=shop&description=x".to_vec();
                r
            },
            403,
            "another web site",
        ),
        (
            report(&format!("service=shop&description={}", "x".repeat(20_000))),
            413,
            "too large",
        ),
        (report("service=shop"), 400, "not as the form sends it"),
        (report("garbage=%FF%FE"), 400, "not as the form sends it"),
        (
            report("service=shop&description=+++"),
            400,
            "Say what is wrong.",
        ),
        (
            report("service=warehouse&description=down"),
            400,
            "Choose the service",
        ),
        (
            report(&format!("service=shop&description={}", "y".repeat(2001))),
            400,
            "at most 2000 characters",
        ),
        (
            report("service=shop&description=a%00b"),
            400,
            "control characters",
        ),
    ];
    for (r, status, why) in refusals {
        let what = format!(
            "{} {}",
            r.path,
            String::from_utf8_lossy(&r.body[..r.body.len().min(60)])
        );
        let a = w.server.send(r).await;
        assert_eq!(a.status, status, "{what}: {}", a.text());
        assert!(
            a.text().contains(why),
            "{what}: no {why:?} in\n{}",
            a.text()
        );
        assert!(a.text().contains("role=\"alert\""), "{what}");
    }
    // What was typed comes back escaped, not as markup.
    let a = w
        .server
        .send(report(&format!(
            "service=warehouse&description={}",
            enc("<b>bold</b>")
        )))
        .await;
    assert!(escaped(&a.text(), "<b>bold</b>"), "{}", a.text());
    assert_eq!(w.incidents().await.len(), 2);

    // Too frequent: the third stored report from this address is the last one for now.
    let a = w
        .server
        .send(report("service=shop&description=still+broken"))
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    let a = w
        .server
        .send(report("service=shop&description=and+again"))
        .await;
    assert_eq!(a.status, 429, "{}", a.text());
    assert!(
        a.text().contains("Too many problem reports"),
        "{}",
        a.text()
    );
    assert!(a.header("retry-after").is_some());
    assert_eq!(w.incidents().await.len(), 3);

    // Resolving: an officer, once; an approver may not.
    let a = w
        .send(
            &w.approver,
            Req::post(&format!("/api/v1/incidents/{number}/resolve"))
                .json(&json!({"resolution": "x"})),
        )
        .await;
    assert_eq!(a.status, 403);
    let a = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/incidents/{number}/resolve"))
                .json(&json!({"resolution": "the session cache was cleared"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json::<Value>()["state"], "resolved");
    assert_eq!(a.json::<Value>()["resolved_by"], "olive");
    let a = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/incidents/{number}/resolve"))
                .json(&json!({"resolution": "again"})),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text());
    // The page's form resolves the payroll one.
    let payroll = w.incidents().await[1]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut r = Req::post(&format!("/incidents/{payroll}/resolve"))
        .header("content-type", "application/x-www-form-urlencoded");
    r.body = format!(
        "csrf_token={}&resolution=payslips+were+fine",
        w.officer.csrf
    )
    .into_bytes();
    let a = w.send(&w.officer, r).await;
    assert_eq!(a.status, 303, "{}", a.text());
    let a = w
        .send(
            &w.officer,
            Req::get(&format!("/api/v1/incidents/{payroll}")),
        )
        .await;
    assert_eq!(a.json::<Value>()["state"], "resolved");

    // The audit chain has the reports (by the public) and the resolutions, and verifies.
    let a = w
        .send(&w.auditor, Req::get("/api/v1/audit?limit=1000"))
        .await;
    assert_eq!(a.status, 200);
    let audit = a.text();
    assert_eq!(audit.matches("incident.report").count(), 3, "{audit}");
    assert_eq!(audit.matches("incident.resolve").count(), 2, "{audit}");
    assert!(audit.contains(&format!("incident:{number}")));
    assert!(audit.contains("public"));
    assert!(
        !audit.contains("pat@example.org"),
        "the audit chain keeps the contact"
    );
    let a = w.send(&w.auditor, Req::get("/api/v1/audit/verify")).await;
    assert!(a.text().contains("\"intact\":true"), "{}", a.text());

    // The calendar feed: open, RFC 5545 text, every window opening and the freeze.
    let a = w.server.send(Req::get("/calendar.ics")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    let ics = a.text();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
    assert!(ics.ends_with("END:VCALENDAR\r\n"));
    for line in ics.split("\r\n") {
        assert!(
            line.len() <= 75,
            "an unfolded line of {} octets: {line}",
            line.len()
        );
        assert!(!line.contains('\n'));
    }
    assert!(!ics.contains(FREEZE_REASON) && !ics.contains("shop-web-1"));
    let again = w.server.send(Req::get("/calendar.ics")).await.text();
    assert_eq!(again, ics, "the feed is not stable between two reads");

    let group = |g: &str| {
        let server = &w.server;
        let g = g.to_owned();
        async move {
            let a = server
                .send(Req::get(&format!("/calendar.ics?group={g}")))
                .await;
            assert_eq!(a.status, 200, "{}", a.text());
            a.text()
        }
    };
    let db = group("db").await;
    let web = group("web").await;
    let nobody = group("nosuch").await;
    let a = w.server.send(Req::get("/calendar.ics?group=%3Cx%3E")).await;
    assert_eq!(a.status, 400);
    let a = w.server.send(Req::get("/calendar.ics?colour=red")).await;
    assert_eq!(a.status, 400);

    let Some(all) = parse_ics(&ics) else { return };
    assert_eq!(all["version"], "2.0");
    assert!(all["prodid"].as_str().unwrap().contains("Patchwarden"));
    let events = all["events"].as_array().unwrap();

    // The db feed: exactly the three Berlin evenings (in UTC, across any clock change) and
    // the freeze.
    let db = parse_ics(&db).unwrap();
    let db_events = db["events"].as_array().unwrap();
    assert_eq!(db_events.len(), 4, "{db:#}");
    let mut windows: Vec<&Value> = db_events
        .iter()
        .filter(|e| {
            e["summary"]
                .as_str()
                .unwrap()
                .starts_with("Maintenance window")
        })
        .collect();
    windows.sort_by_key(|e| e["start"].as_str().unwrap().to_owned());
    assert_eq!(windows.len(), 3);
    for (i, e) in windows.iter().enumerate() {
        let start = berlin_evening(
            first_db
                .checked_add(SignedDuration::from_hours(24 * 7 * i as i64))
                .unwrap(),
        );
        assert_eq!(utc_of(e["start"].as_str().unwrap()), iso(start));
        assert_eq!(
            utc_of(e["end"].as_str().unwrap()),
            iso(start + SignedDuration::from_hours(2))
        );
        assert_eq!(e["summary"], "Maintenance window: db-weekly (db)");
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .contains("Kind: maintenance window")
        );
        assert!(e["description"].as_str().unwrap().contains("Groups: db"));
    }
    let freeze = db_events
        .iter()
        .find(|e| e["summary"] == "Change freeze: year-end")
        .expect("the freeze");
    assert_eq!(utc_of(freeze["start"].as_str().unwrap()), iso(freeze_start));
    assert_eq!(utc_of(freeze["end"].as_str().unwrap()), iso(freeze_end));
    assert!(
        freeze["description"]
            .as_str()
            .unwrap()
            .contains("Kind: change freeze")
    );

    // The web feed holds only web's windows and the freeze; the whole feed is both.
    let web = parse_ics(&web).unwrap();
    let web_events = web["events"].as_array().unwrap();
    assert!(web_events.len() > 90, "{} web events", web_events.len());
    for e in web_events {
        let s = e["summary"].as_str().unwrap();
        assert!(
            s == "Maintenance window: web-always (web)" || s == "Change freeze: year-end",
            "{s}"
        );
    }
    assert_eq!(events.len(), web_events.len() + db_events.len() - 1);
    // UIDs are unique and the same in the group feeds as in the whole one.
    let uids: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["uid"].as_str().unwrap()).collect();
    assert_eq!(uids.len(), events.len());
    for e in db_events.iter().chain(web_events) {
        assert!(uids.contains(e["uid"].as_str().unwrap()));
    }
    // A group no window names: the freeze only.
    let nobody = parse_ics(&nobody).unwrap();
    assert_eq!(nobody["events"].as_array().unwrap().len(), 1);
}
