//! The monthly compliance report and the patch control form, from a real scenario through a
//! real server: changes created, approved, authorised, rolled out by the real rollout engine
//! to agents speaking the real protocol, closed (or failed and rolled back); an exception
//! approved; findings on time, late and past due. The report's rows and KPIs are checked
//! against what happened, in all three formats: the HTML page, the CSV read back by Python's
//! `csv` module, and the PDF rendered by poppler (`pdftoppm`, `pdftotext`). The PDFs and the
//! rendered first pages are kept under `target/test-artifacts/` to look at.

mod agent_support;
mod operator_support;

use std::path::PathBuf;
use std::process::Command;

use agent_support::{Host, NEW, OLD, inventory};
use jiff::{SignedDuration, Timestamp};
use operator_support::{Answer, PASSWORD, Req, Server, Session};
use patchwarden_api::v1::changes::ChangeView;
use patchwarden_api::v1::jobs::JobOutcome;
use patchwarden_client::{Client, Trust};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::change::ChangeState;
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::Manager;
use patchwarden_core::policy::Class;
use patchwarden_core::report::{APPENDIX_B_COLUMNS, Month};
use patchwarden_store::{Classification, CurrentFinding, Role};
use serde_json::json;
use uuid::Uuid;

const HYPERLINK: &str = "=HYPERLINK(\"http://evil.example\")";

struct World {
    server: Server,
    client: Client,
    officer: Session,
    approver: Session,
    authoriser: Session,
}

impl World {
    async fn new() -> World {
        let server = Server::start(|_| {}).await;
        server.user("olive", &[Role::Officer], &[]).await;
        server.user("amos", &[Role::Approver], &[]).await;
        server.user("dora", &[Role::Authoriser], &[]).await;
        let client = Client::new(&server.url, &Trust::PlainHttp).unwrap();
        World {
            officer: server.login("olive", PASSWORD).await,
            approver: server.login("amos", PASSWORD).await,
            authoriser: server.login("dora", PASSWORD).await,
            server,
            client,
        }
    }

    async fn host(&self, name: &str, group: &str, ring: &str) -> Host {
        Host::enroll(&self.server, &self.client, name, group, Some(ring), &[]).await
    }

    async fn send(&self, who: &Session, r: Req) -> Answer {
        self.server.send(who.apply(r)).await
    }

    async fn act(&self, who: &Session, number: &str, action: &str) -> ChangeView {
        agent_support::act(&self.server, who, number, action).await
    }

    async fn until(&self, number: &str, state: ChangeState) -> ChangeView {
        agent_support::until(&self.server, &self.officer, number, state).await
    }

    async fn scheduled(&self, kind: &str, title: &str, group: &str) -> String {
        let a = self
            .send(
                &self.officer,
                Req::post("/api/v1/changes").json(&json!({
                    "kind": kind,
                    "title": title,
                    "justification": "CVE-2024-5535 on the fleet",
                    "risk": "medium",
                    "priority": "high",
                    "testing": {"required": "required"},
                    "rollback_plan": "reinstall the previous openssl from the agent's cache",
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

    /// Gives `host` findings on `package`, seen since `seen`, of `class`, due at `due`, as the
    /// matcher and the policy would have (no advisory feed is loaded here, so the sync that
    /// follows an install closes them, with the version installed).
    async fn findings(
        &self,
        host: &Host,
        package: &str,
        cve: &str,
        class: Class,
        seen: Timestamp,
        due: Timestamp,
    ) {
        let finding = Finding {
            vulnerability: cve.into(),
            aliases: vec![],
            advisories: vec![format!("DSA-{cve}")],
            manager: Manager::Dpkg,
            package: package.into(),
            arch: Some("amd64".into()),
            source_package: Some(package.into()),
            installed: OLD.into(),
            fixed: Some(NEW.into()),
            ecosystem: "Debian:12".into(),
            available_at: Some(seen),
            published_at: Some(seen),
            explanation: "test".into(),
        };
        let sync = self
            .server
            .store()
            .sync_findings(
                host.id(),
                &[CurrentFinding {
                    body: None,
                    finding: finding.into(),
                    classification: Classification {
                        class: Some(class),
                        due_at: Some(due),
                        policy: Some("seed-000".into()),
                        rule: Some(format!("{}-rule", class.as_str())),
                    },
                }],
                &inventory(&host.facts, &host.openssl).packages,
                seen,
                AuditEntry::new(
                    seen,
                    Actor::System("test".into()),
                    "findings.sync",
                    format!("host:{}", host.id()),
                ),
            )
            .await
            .unwrap();
        assert_eq!(sync.opened, 1);
    }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `pdftotext -layout` of a PDF, its first page rendered to PNG beside it.
fn poppler(pdf: &[u8], name: &str) -> String {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let dir = artifacts();
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    let png = dir.join(format!("{name}-page1"));
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&path)
        .arg(&png)
        .output()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(
        out.status.success(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join(format!("{name}-page1.png")).exists());
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "poppler complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The CSV read back by Python's `csv` module, as rows of cells.
fn parse_csv(csv: &[u8]) -> Vec<Vec<String>> {
    let path = artifacts().join(format!("report-{}.csv", Uuid::new_v4()));
    std::fs::write(&path, csv).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys\n\
             with open(sys.argv[1], newline='', encoding='utf-8') as f:\n\
             \x20   print(json.dumps(list(csv.reader(f, strict=True))))",
        ])
        .arg(&path)
        .output()
        .expect("python3 is installed");
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "python csv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_counts_what_happened_in_every_format() {
    let w = World::new().await;
    w.server.user("pat", &[Role::Provider], &["db"]).await;
    w.server.user("audrey", &[Role::Auditor], &[]).await;
    let provider = w.server.login("pat", PASSWORD).await;
    let auditor = w.server.login("audrey", PASSWORD).await;
    let a = w
        .send(
            &w.officer,
            Req::new("PUT", "/api/v1/calendar/always").json(&json!({
                "kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T00:00",
                "time_zone": "UTC", "duration_minutes": 1440})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let mut test = w.host("web-test-1", "web", "test").await;
    let mut web1 = w.host("web-1", "web", "wave-1").await;
    let mut web2 = w.host("web-2", "web", "wave-1").await;
    let mut db1 = w.host("db-1", "db", "test").await;

    let now = patchwarden_server::clock::now();
    let month = Month::of(now);
    let days = |d: i64| SignedDuration::from_hours(24 * d);
    // web-1's openssl: High, due in ten days (fixed on time). web-2's: Emergency, due
    // yesterday (fixed late). web-test-1's bash: High, due two days ago, never fixed (past
    // due). Seen within this month when the month is old enough, else at its start.
    let seen = |d: i64| (now - days(d)).max(month.start());
    w.findings(
        &web1,
        "openssl",
        "CVE-2024-5535",
        Class::High,
        seen(5),
        now + days(10),
    )
    .await;
    w.findings(
        &web2,
        "openssl",
        "CVE-2024-5535",
        Class::Emergency,
        seen(3),
        seen(3) + SignedDuration::from_secs(60),
    )
    .await;
    w.findings(
        &test,
        "bash",
        "CVE-2099-0001",
        Class::High,
        seen(4),
        seen(4) + SignedDuration::from_secs(60),
    )
    .await;

    // An exception for web-1, requested by the officer and approved by the approver.
    let a = w
        .send(
            &w.officer,
            Req::post("/api/v1/exceptions").json(&json!({
                "justification": "patch_causes_instability",
                "explanation": "the vendor's build crashes the payment module",
                "controls": [{"kind": "network_segmentation", "description": "web tier VLAN 40"}],
                "expires_at": now + days(60),
                "hosts": [web1.id()],
            })),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let exception: serde_json::Value = a.json();
    let exc = exception["number"].as_str().unwrap().to_owned();
    let a = w
        .send(
            &w.approver,
            Req::post(&format!("/api/v1/exceptions/{exc}/approve")).json(&json!({})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());

    // Change 1: the test ring fails, the rollout halts and rolls back.
    let failed = w
        .scheduled("normal", "OpenSSL update, first try", "web")
        .await;
    w.until(&failed, ChangeState::Testing).await;
    test.install(JobOutcome::Failed).await;
    w.until(&failed, ChangeState::Failed).await;
    test.openssl = NEW.into();
    test.install(JobOutcome::Succeeded).await;
    w.until(&failed, ChangeState::RolledBack).await;
    assert_eq!(test.openssl, OLD);

    // Change 2: resubmitted, test ring then the broad ring, closed.
    let closed = w.scheduled("normal", "OpenSSL update", "web").await;
    w.until(&closed, ChangeState::Testing).await;
    test.install(JobOutcome::Succeeded).await;
    w.until(&closed, ChangeState::Deploying).await;
    web1.install(JobOutcome::Succeeded).await;
    web2.install(JobOutcome::Succeeded).await;
    w.until(&closed, ChangeState::Verified).await;
    w.act(&w.officer, &closed, "close").await;

    // Change 3: an emergency on the provider's group, whose title would be a formula.
    let emergency = w.scheduled("emergency", HYPERLINK, "db").await;
    w.until(&emergency, ChangeState::Deploying).await;
    db1.install(JobOutcome::Succeeded).await;
    w.until(&emergency, ChangeState::Verified).await;
    w.act(&w.officer, &emergency, "record-testing").await;
    w.act(&w.officer, &emergency, "close").await;

    // The HTML page.
    let a = w
        .send(&auditor, Req::get(&format!("/reports/monthly/{month}")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let html = a.text();
    std::fs::write(artifacts().join("report-monthly.html"), &html).unwrap();
    for header in APPENDIX_B_COLUMNS {
        assert!(html.contains(header), "no {header} in the page");
    }
    for n in [&failed, &closed, &emergency] {
        assert!(html.contains(n.as_str()), "no {n} in the page");
    }
    for text in [
        "Prepared by:",
        "Reviewed by:",
        "Date:",
        "@media print",
        &exc,
        "amos",
    ] {
        assert!(html.contains(text), "no {text} in the page");
    }
    // The formula is escaped in HTML, not executed.
    assert!(
        html.contains("=HYPERLINK(&quot;http://evil.example&quot;)")
            || html.contains("=HYPERLINK(&#34;"),
        "{html}"
    );

    // The CSV, read back by a real CSV parser.
    let a = w
        .send(&auditor, Req::get(&format!("/reports/monthly/{month}.csv")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("text/csv; charset=utf-8"));
    let rows = parse_csv(&a.body);
    assert_eq!(rows[0], APPENDIX_B_COLUMNS);
    let numbers: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        numbers,
        [failed.as_str(), closed.as_str(), emergency.as_str()]
    );
    let row = |n: &str| rows.iter().find(|r| r[0] == n).unwrap().clone();

    // The failed change: its tests failed and nothing went broad, so the process held; the
    // failure and the rollback are noted.
    let r = row(&failed);
    assert_eq!(
        r[3],
        "Yes: tests failed in the test ring; nothing was released broadly"
    );
    assert!(r[4].contains("install failed on web-test-1"), "{}", r[4]);
    assert!(r[4].contains("rolled back on web-test-1"), "{}", r[4]);
    assert!(r[4].contains("rollout halted"), "{}", r[4]);
    // The closed change: four eyes, tested first, in the window; the exception on web-1.
    let r = row(&closed);
    assert_eq!(r[3], "Yes");
    assert!(
        r[1].starts_with("OpenSSL update (Normal change"),
        "{}",
        r[1]
    );
    assert!(r[2].contains("approval by amos"), "{}", r[2]);
    assert!(r[2].contains("authorisation by dora"), "{}", r[2]);
    assert!(r[2].contains("testing evidence in ring test"), "{}", r[2]);
    assert!(
        r[2].contains("3 hosts in 2 rings, 3 succeeded, 0 failed"),
        "{}",
        r[2]
    );
    assert!(r[2].contains("closure by olive"), "{}", r[2]);
    assert_eq!(
        r[4],
        format!(
            "exception {exc} in force for openssl on web-1 (until {})",
            (now + days(60)).strftime("%Y-%m-%d")
        )
    );
    // The emergency: the formula neutralised.
    let r = row(&emergency);
    assert!(
        r[1].starts_with(&format!("'{HYPERLINK} (Emergency change")),
        "{}",
        r[1]
    );
    assert!(r[3].starts_with("Yes: "), "{}", r[3]);
    assert!(r[3].contains("emergency change"), "{}", r[3]);

    // The KPIs: 4 installs succeeded (test host, web-1, web-2, db-1), 1 failed and resubmitted
    // by the second change; one finding on time, one late, one past due.
    for text in [
        "Installs: succeeded / failed</th><td>4 / 1 (success rate 80.0%)",
        "Failed installs resubmitted</th><td>1 of 1",
        "SLA breaches</th><td>2",
        "Findings closed</th><td>2",
        "Change management process followed</th><td>3 of 3",
        // High: web-1 on time, web-test-1's bash past due. Emergency: web-2 late.
        "<td>High</td><td>1</td><td>0</td><td>1</td><td>0</td><td>1</td><td>50.0%</td>",
        "<td>Emergency</td><td>0</td><td>1</td><td>0</td><td>0</td><td>1</td><td>0.0%</td>",
        "<td>seed-000 / emergency-rule</td><td>0</td><td>1</td>",
        "<td>web-test-1</td><td>web</td><td>CVE-2099-0001</td><td>bash</td><td>High</td>",
        "<td>openssl</td><td>3.0.15-1~deb12u1</td>",
        "network segmentation: web tier VLAN 40",
    ] {
        assert!(html.contains(text), "no {text} in the page:\n{html}");
    }
    // Mean time to patch: web-1 seen 5 days back, web-2 3 days back, both fixed now.
    let expected =
        (now.duration_since(seen(5)) + now.duration_since(seen(3))).as_secs_f64() / 2.0 / 86_400.0;
    assert!(
        html.contains(&format!("(detection to install)</th><td>{expected:.1} d")),
        "mean time to patch {expected:.1} d not in the page"
    );
    // Every host reported its inventory at least at enrollment, web-1 again after its install.
    assert!(
        html.contains("<td>web-1</td><td>web</td><td>2</td>"),
        "{html}"
    );

    // The PDF, through poppler.
    let a = w
        .send(&auditor, Req::get(&format!("/reports/monthly/{month}.pdf")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/pdf"));
    let text = poppler(&a.body, "report-monthly");
    for header in APPENDIX_B_COLUMNS {
        assert!(text.contains(header), "no {header} in the PDF:\n{text}");
    }
    for n in [&failed, &closed, &emergency] {
        assert!(text.contains(n.as_str()), "no {n} in the PDF");
    }
    for t in [
        "Prepared by:",
        "Reviewed by:",
        "Date:",
        "SLA attainment by class",
        "Past due as of",
    ] {
        assert!(text.contains(t), "no {t} in the PDF:\n{text}");
    }

    // The patch control form of the closed change, as a page and a PDF.
    let a = w
        .send(&auditor, Req::get(&format!("/changes/{closed}/form")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let page = a.text();
    for t in [
        "System Affected",
        "Patch Request No",
        "Approved by",
        "Authorised by",
        "amos",
        "dora",
        "Rollback plan",
        "Signature",
    ] {
        assert!(page.contains(t), "no {t} in the form page");
    }
    let a = w
        .send(&auditor, Req::get(&format!("/changes/{closed}/form.pdf")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let text = poppler(&a.body, "patch-control-form");
    for t in [
        "Patch control form",
        closed.as_str(),
        "System Affected",
        "group web",
        "Risk Rating",
        "Business justification",
        "Criticality",
        "Testing Required",
        "Approved by",
        "amos",
        "Authorised by",
        "dora",
        "Patch Implemented by",
        "reinstall the previous openssl",
        "Signature",
    ] {
        assert!(text.contains(t), "no {t} in the form PDF:\n{text}");
    }

    // The provider sees its own group only: the emergency, db-1, nothing of web.
    let a = w
        .send(
            &provider,
            Req::get(&format!("/reports/monthly/{month}.csv")),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let rows = parse_csv(&a.body);
    let numbers: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(numbers, [emergency.as_str()]);
    let a = w
        .send(&provider, Req::get(&format!("/reports/monthly/{month}")))
        .await;
    let html = a.text();
    assert!(html.contains("<td>db-1</td>"));
    for other in ["web-1", "web-test-1", &exc, &closed] {
        assert!(!html.contains(other), "{other} is in the provider's report");
    }
    let a = w
        .send(&provider, Req::get(&format!("/changes/{closed}/form.pdf")))
        .await;
    assert_eq!(a.status, 404, "{}", a.text());
    let a = w
        .send(&provider, Req::get(&format!("/changes/{emergency}/form")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());

    // Another month holds none of it.
    let a = w
        .send(
            &auditor,
            Req::get(&format!("/reports/monthly/{}.csv", month.previous())),
        )
        .await;
    assert_eq!(parse_csv(&a.body).len(), 1);
    // Nor does the next: no row, and no inventory scanned in it (the audit chain is searched
    // from the month's start, which lies after every event).
    let a = w
        .send(
            &auditor,
            Req::get(&format!("/reports/monthly/{}", month.next())),
        )
        .await;
    assert_eq!(a.status, 200);
    let html = a.text();
    assert!(html.contains("No change was implemented in this month."));
    assert!(
        html.contains("<td>web-1</td><td>web</td><td>0</td>"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_months_and_formats_are_refused_with_a_page() {
    let w = World::new().await;
    for bad in [
        "2026-13",
        "2026-1",
        "october",
        "2026-10.xlsx",
        "2026-10.pdf.csv",
        "2026-10.",
        "%F0%9F%98%80",
        &"9".repeat(200),
    ] {
        let a = w
            .send(&w.officer, Req::get(&format!("/reports/monthly/{bad}")))
            .await;
        assert_eq!(a.status, 400, "{bad}: {}", a.text());
        assert_eq!(
            a.header("x-problem-code"),
            Some("invalid-parameter"),
            "{bad}"
        );
        assert!(a.text().contains("<!doctype html>"), "{bad}: not a page");
    }
    let a = w
        .send(&w.officer, Req::get("/changes/PCR-2026-0999/form"))
        .await;
    assert_eq!(a.status, 404);
    // Without a session: the login page.
    let a = w
        .server
        .send(Req::get("/reports/monthly/2026-10.pdf"))
        .await;
    assert_eq!(a.status, 401);
    // The list of months links every format.
    let a = w.send(&w.officer, Req::get("/reports")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let month = Month::of(patchwarden_server::clock::now());
    for suffix in ["", ".pdf", ".csv"] {
        assert!(
            a.text()
                .contains(&format!("/reports/monthly/{month}{suffix}\""))
        );
    }
    assert!(a.text().contains(&format!(
        "/reports/monthly/{}.csv",
        month.previous().previous()
    )));
    // An empty month still makes a PDF with the columns and the signature lines.
    let a = w
        .send(
            &w.officer,
            Req::get(&format!("/reports/monthly/{month}.pdf")),
        )
        .await;
    assert_eq!(a.status, 200);
    let text = poppler(&a.body, "report-empty");
    assert!(
        text.contains("No change was implemented in this month."),
        "{text}"
    );
    assert!(text.contains("Prepared by:"), "{text}");
}
