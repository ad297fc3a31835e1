//! The web UI in a real browser: headless Chromium over WebDriver (`browser_support`) against a
//! real server over HTTPS. The change process with four eyes, as people do it: the requester
//! logs in with the form, drafts a change from an open finding and submits it, and sees no
//! Approve button on their own change although their roles include approving; an approver
//! logs in and approves it with the button; an authoriser authorises it; the page shows each
//! new state. The calendar and an exception through their forms. The officer's dashboard,
//! and the public status page without a login, where a problem reported after maintenance
//! becomes an incident the officer finds. Screenshots of each step are saved under
//! `target/test-artifacts/browser/`.
//!
//! Skips (saying so) without Chromium and chromedriver, unless `PATCHWARDEN_REQUIRE_TOOLS` is
//! set, when it fails naming the packages.

mod browser_support;

use browser_support::Browser;
use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload};
use patchwarden_core::inventory::{Inventory, Manager, Package, PackageStatus};
use patchwarden_store::Role;
use patchwarden_testkit::{TestServer, debian_facts};
use serde_json::json;

const PASSWORD: &str = "a browser test's password, long enough";

fn pkg(name: &str, version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some("amd64".into()),
        source_name: Some(name.into()),
        source_version: Some(version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

/// A host of the test server: its agent (the real client, signing its requests) and facts.
struct Agent {
    client: patchwarden_client::AgentClient,
    facts: patchwarden_core::inventory::HostFacts,
    digest: patchwarden_core::inventory::PackagesDigest,
    seq: u64,
}

impl Agent {
    /// Checks in; the jobs leased to the host.
    async fn jobs(&mut self) -> Vec<patchwarden_api::v1::jobs::Job> {
        self.seq += 1;
        self.client
            .check_in(&CheckInRequest {
                seq: self.seq,
                facts: self.facts.clone(),
                packages: self.digest,
                agent_version: "t".into(),
            })
            .await
            .unwrap()
            .jobs
            .into_iter()
            .filter(|j| !j.state.is_final())
            .collect()
    }
}

/// A server with one host (in the test ring) whose bash has a critical advisory with a fix:
/// one open finding.
async fn server_with_a_finding() -> (TestServer, tempfile::TempDir, Agent) {
    let feeds = tempfile::tempdir().unwrap();
    let record = json!({
        "schema_version": "1.6.0", "id": "ADV-1", "upstream": ["CVE-2099-35"],
        "published": "2025-06-01T00:00:00Z", "modified": "2025-06-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "bash"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.2.15-3"}]}]}]
    });
    std::fs::write(feeds.path().join("ADV-1.json"), record.to_string()).unwrap();
    let feed = feeds.path().to_str().unwrap().to_owned();
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/demo/demo-policy.toml");
    let server = TestServer::start_with(|c| {
        c.advisories.files = vec![format!("osv:{feed}")];
        c.policy.policies = vec![policy.display().to_string()];
    })
    .await;
    let facts = debian_facts("web-1", "5ca0a0a0a0a0a0a0a0a0a0a0a0a0a0a1");
    let (agent, _) = server.enroll(facts.clone()).await;
    let mut inv = Inventory {
        host: facts.clone(),
        packages: vec![pkg("bash", "5.2.15-2")],
        ..Inventory::default()
    };
    inv.canonicalize();
    agent
        .check_in(&CheckInRequest {
            seq: 1,
            facts,
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap();
    let digest = inv.packages_digest();
    agent
        .upload_inventory(&InventoryUpload::Full { inventory: inv })
        .await
        .unwrap();
    let id = uuid::Uuid::parse_str(agent.host_id()).unwrap();
    let now = patchwarden_testkit::now();
    server
        .store()
        .set_host_placement(
            id,
            patchwarden_store::HostPlacement {
                group: "default".into(),
                ring: Some("test".into()),
                labels: Default::default(),
            },
            now,
            patchwarden_core::audit::AuditEntry::new(
                now,
                patchwarden_core::audit::Actor::Operator("test".into()),
                "host.place",
                format!("host:{id}"),
            ),
        )
        .await
        .unwrap();
    let agent = Agent {
        client: agent,
        facts: debian_facts("web-1", "5ca0a0a0a0a0a0a0a0a0a0a0a0a0a0a1"),
        digest,
        seq: 1,
    };
    (server, feeds, agent)
}

/// Reloads the change's page until `ready` holds for its source (the rollout engine works in
/// the server's own time); fails after a bounded number of tries.
async fn reload_until(b: &Browser, path: &str, what: &str, ready: impl Fn(&str) -> bool) {
    for _ in 0..150 {
        b.goto(path).await;
        if ready(&b.client.source().await.unwrap()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{path} never showed {what}: {}",
        b.client.source().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_in_the_browser_request_approve_authorise() {
    let (server, _feeds, mut agent) = server_with_a_finding().await;
    // The requester may approve changes too: only the four-eyes rule keeps the button away.
    server
        .user(
            "rita",
            &[Role::Officer, Role::Approver],
            &[],
            PASSWORD,
            false,
        )
        .await;
    server
        .user("adam", &[Role::Approver], &[], PASSWORD, false)
        .await;
    server
        .user("aura", &[Role::Authoriser], &[], PASSWORD, false)
        .await;
    server
        .user("ivan", &[Role::Officer], &[], PASSWORD, false)
        .await;

    eprintln!("the server is up at {}", server.url);
    let Some(b) = Browser::start(&server.url, "four_eyes_in_the_browser").await else {
        return;
    };

    eprintln!("the browser is up");
    // The requester drafts a change from the open finding.
    b.log_in("rita", PASSWORD).await;
    b.goto("/changes/new").await;
    b.screenshot("00-new-change-form-top").await;
    let finding = b.find("input[name=finding][value='CVE-2099-35']").await;
    finding.click().await.unwrap();
    b.click("input[name=host]").await;
    b.fill("#title", "bash on the web servers").await;
    b.fill(
        "#justification",
        "CVE-2099-35: remote code execution in bash",
    )
    .await;
    b.fill(
        "#rollback_plan",
        "reinstall bash 5.2.15-2 from the agent's cache",
    )
    .await;
    b.screenshot("01-new-change-form").await;
    b.click_and_wait("form[action='/changes'] button[type=submit]")
        .await;
    let path = b.path().await;
    assert!(path.starts_with("/changes/PCR-"), "{path}");
    let number = path.trim_start_matches("/changes/").to_owned();
    assert_eq!(b.text("#change-state").await, "draft");
    // The patch derived from the finding is on the form.
    let page = b.client.source().await.unwrap();
    assert!(page.contains("5.2.15-3"), "the derived patch is shown");

    b.click_and_wait("#do-submit").await;
    assert_eq!(b.text("#change-state").await, "submitted");
    assert!(
        !b.has("#do-approve").await,
        "the requester sees no Approve button on their own change"
    );
    assert!(!b.has("#do-authorise").await);
    b.screenshot("02-submitted-requester-sees-no-approve").await;
    // Posting the approval anyway (a form made by hand, with the session's token): the
    // core's refusal, on the page, in its words.
    b.client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/changes/' + arguments[0] + '/approve'; \
             const t = document.querySelector('input[name=csrf_token]').cloneNode(); \
             f.appendChild(t); document.body.appendChild(f); f.id = 'forged';",
            vec![json!(number)],
        )
        .await
        .unwrap();
    b.click_and_wait_for_submit("#forged").await;
    assert_eq!(
        b.text("#refusal").await,
        "cannot approve a change in state submitted: the requester cannot approve their own change"
    );
    b.screenshot("02b-requester-approval-refused").await;
    b.log_out().await;

    // A second person approves it with the button.
    b.log_in("adam", PASSWORD).await;
    b.goto(&format!("/changes/{number}")).await;
    assert!(
        !b.has("#do-authorise").await,
        "an approver has no authorise button"
    );
    b.screenshot("03-approver-sees-approve").await;
    b.click_and_wait("#do-approve").await;
    assert_eq!(b.text("#change-state").await, "approved");
    assert!(!b.has("#do-approve").await);
    b.screenshot("04-approved").await;
    b.log_out().await;

    // A third authorises it.
    b.log_in("aura", PASSWORD).await;
    b.goto(&format!("/changes/{number}")).await;
    b.click_and_wait("#do-authorise").await;
    assert_eq!(b.text("#change-state").await, "authorised");
    let page = b.client.source().await.unwrap();
    assert!(page.contains("adam,"), "the approver's signature is shown");
    assert!(
        page.contains("aura,"),
        "the authoriser's signature is shown"
    );
    b.screenshot("05-authorised").await;

    // The list shows it in its new state.
    b.goto("/changes?state=authorised").await;
    assert!(b.has(&format!("a[href='/changes/{number}']")).await);
    b.screenshot("06-list").await;
    let stored = server.store().get_change(&number).await.unwrap().unwrap();
    assert_eq!(stored.state, "authorised");
    b.log_out().await;

    // An implementer opens a window that is always open and schedules the change: the test
    // ring starts, and the page shows the host's job.
    b.log_in("ivan", PASSWORD).await;
    b.goto("/calendar").await;
    b.fill("#w-name", "always").await;
    b.fill("#w-rrule", "FREQ=DAILY").await;
    b.client
        .execute(
            "document.getElementById('w-start').value = '2026-01-01T00:00';",
            vec![],
        )
        .await
        .unwrap();
    b.fill("#w-duration", "1440").await;
    b.click_and_wait("form[aria-label='A maintenance window'] button")
        .await;
    let page = format!("/changes/{number}");
    b.goto(&page).await;
    b.click_and_wait("#do-schedule").await;
    reload_until(&b, &page, "the test ring running", |p| {
        p.contains("id=\"change-state\">testing<") && p.contains("Ring test (test)")
    })
    .await;
    let jobs = agent.jobs().await;
    assert_eq!(jobs.len(), 1, "the install job");
    b.goto(&page).await;
    b.screenshot("05b-rollout-test-ring").await;

    // The implementer rolls it back with the button: the change fails with the reason, and
    // the host is given its rollback job.
    b.fill("#rollback-reason", "bash 5.2.15-3 breaks the login banner")
        .await;
    b.click_and_wait("#do-rollback").await;
    assert_eq!(b.text("#change-state").await, "failed");
    let mut jobs = Vec::new();
    for _ in 0..150 {
        jobs = agent.jobs().await;
        if jobs.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(jobs.len(), 2, "the install job and its rollback: {jobs:?}");
    for job in &jobs {
        let result = patchwarden_api::v1::jobs::JobResult::new(
            patchwarden_api::v1::jobs::JobOutcome::Succeeded,
            "done",
        );
        agent.client.job_result(&job.id, &result).await.unwrap();
    }
    reload_until(&b, &page, "rolled back", |p| {
        p.contains("id=\"change-state\">rolled_back<")
    })
    .await;
    let source = b.client.source().await.unwrap();
    assert!(
        source
            .contains("Rollout halted: rolled back by ivan: bash 5.2.15-3 breaks the login banner"),
        "{source}"
    );
    b.screenshot("05c-rolled-back").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_and_an_exception_through_their_forms_in_the_browser() {
    let (server, _feeds, _agent) = server_with_a_finding().await;
    server
        .user("olga", &[Role::Officer], &[], PASSWORD, false)
        .await;
    server
        .user("adam", &[Role::Approver], &[], PASSWORD, false)
        .await;
    let Some(b) = Browser::start(&server.url, "calendar_and_exception_in_the_browser").await else {
        return;
    };
    // A date-time field takes its value from a script (typing into one depends on the
    // browser's locale).
    let set = async |id: &str, value: &str| {
        b.client
            .execute(
                "document.getElementById(arguments[0]).value = arguments[1];",
                vec![json!(id), json!(value)],
            )
            .await
            .unwrap();
    };

    b.log_in("olga", PASSWORD).await;
    b.goto("/calendar").await;
    b.fill("#w-name", "patch-tuesday").await;
    b.fill("#w-rrule", "FREQ=MONTHLY;BYDAY=2TU").await;
    set("w-start", "2026-01-13T20:00").await;
    b.fill("#w-duration", "240").await;
    b.click_and_wait("form[aria-label='A maintenance window'] button")
        .await;
    assert!(
        !b.has("#refusal").await,
        "{}",
        b.client.source().await.unwrap()
    );
    b.fill("#f-name", "year-end").await;
    set("f-start", "2026-12-20T00:00").await;
    set("f-end", "2027-01-03T00:00").await;
    b.fill("#f-reason", "year-end close").await;
    b.click_and_wait("form[aria-label='A change freeze'] button")
        .await;
    b.goto("/calendar?month=2026-12").await;
    let page = b.client.source().await.unwrap();
    assert!(page.contains("patch-tuesday 20:00–00:00"), "{page}");
    assert!(page.contains("year-end (freeze)"));
    b.screenshot("07-calendar-month").await;

    // An exception for the finding, requested by the officer …
    b.goto("/exceptions/new").await;
    b.click("input[name=finding]").await;
    b.fill(
        "#explanation",
        "the vendor's fix breaks the login shell of our appliance",
    )
    .await;
    b.find("#control_kind_1 option[value=network_segmentation]")
        .await
        .click()
        .await
        .unwrap();
    b.fill(
        "input[name=control_text_1]",
        "own VLAN, no inbound from the office LAN",
    )
    .await;
    let in_20_days = (patchwarden_testkit::now() + jiff::SignedDuration::from_hours(24 * 20))
        .strftime("%Y-%m-%d")
        .to_string();
    set("expires_on", &in_20_days).await;
    b.screenshot("08-exception-form").await;
    b.click_and_wait("form[action='/exceptions'] button[type=submit]")
        .await;
    let path = b.path().await;
    assert!(path.starts_with("/exceptions/EXC-"), "{path}");
    assert!(!b.has("#do-approve").await, "not for the requester");
    b.log_out().await;

    // … approved by someone else with the button.
    b.log_in("adam", PASSWORD).await;
    b.goto(&path).await;
    b.click_and_wait("#do-approve").await;
    assert_eq!(b.text("#exception-state").await, "in force");
    b.screenshot("09-exception-approved").await;
    b.goto("/exceptions").await;
    b.screenshot("10-exceptions-list").await;
    b.close().await;
}

/// The rest of issue 10's people in the browser: an officer's dashboard after logging in; the
/// public status page opened without any login, showing the service's window; a member of
/// the public reporting a problem after maintenance, which becomes an incident the officer
/// then finds on the incidents page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_a_problem_reported_on_the_public_status_page() {
    let (server, _feeds, agent) = server_with_a_finding().await;
    // The host serves the web shop, which the status page names; its group has a window
    // every evening.
    let id = uuid::Uuid::parse_str(agent.client.host_id()).unwrap();
    let now = patchwarden_testkit::now();
    server
        .store()
        .set_host_placement(
            id,
            patchwarden_store::HostPlacement {
                group: "default".into(),
                ring: Some("test".into()),
                labels: [
                    ("application".to_owned(), "Web shop".to_owned()),
                    ("impact".to_owned(), "checkout may pause".to_owned()),
                ]
                .into(),
            },
            now,
            patchwarden_core::audit::AuditEntry::new(
                now,
                patchwarden_core::audit::Actor::Operator("test".into()),
                "host.place",
                format!("host:{id}"),
            ),
        )
        .await
        .unwrap();
    let officer = server.operator("olga", &[Role::Officer], &[]).await;
    officer
        .put_calendar_entry(
            "evenings",
            &serde_json::from_value(json!({
                "kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T21:00",
                "time_zone": "UTC", "duration_minutes": 120, "groups": ["default"],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    server
        .user("ivan", &[Role::Officer], &[], PASSWORD, false)
        .await;

    let Some(b) = Browser::start(&server.url, "dashboard_and_status_page").await else {
        return;
    };
    // The officer's dashboard: the open finding counted by class, the window coming.
    b.log_in("ivan", PASSWORD).await;
    assert_eq!(b.path().await, "/dashboard");
    let page = b.client.source().await.unwrap();
    assert!(page.contains("Dashboard"), "{page}");
    assert!(
        page.to_lowercase().contains("critical") || page.contains("Emergency"),
        "{page}"
    );
    assert!(
        page.contains("evenings"),
        "the upcoming window is not on the dashboard: {page}"
    );
    b.screenshot("20-dashboard").await;
    b.log_out().await;

    // The status page needs no login.
    b.goto("/status").await;
    assert_eq!(b.path().await, "/status");
    let page = b.client.source().await.unwrap();
    assert!(
        page.contains("Web shop") && page.contains("checkout may pause"),
        "{page}"
    );
    assert!(
        !page.contains("web-1"),
        "the status page names a host: {page}"
    );
    b.screenshot("21-status-page").await;
    // Reporting a problem: the form answers with the incident's number.
    b.find("#service option[value='Web shop']")
        .await
        .click()
        .await
        .unwrap();
    b.fill(
        "#description",
        "The checkout hangs since last night's maintenance",
    )
    .await;
    b.fill("#contact", "ann@example.org").await;
    b.click_and_wait("form[action='/status/report'] button[type=submit]")
        .await;
    let page = b.client.source().await.unwrap();
    let at = page.find("INC-").expect("the answer names the incident");
    let number: String = page[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    b.screenshot("22-problem-reported").await;

    // The officer finds it among the incidents.
    b.log_in("ivan", PASSWORD).await;
    b.goto("/incidents").await;
    let page = b.client.source().await.unwrap();
    assert!(
        page.contains(&number),
        "{number} is not on the incidents page: {page}"
    );
    assert!(page.contains("The checkout hangs"), "{page}");
    b.screenshot("23-incidents").await;
    b.close().await;
}

/// Every kind of page passes an accessibility checker that is not ours: axe-core's WCAG 2.1 A
/// and AA rules and its best practices (labels, contrast, landmarks, headings, names), in the
/// real browser, for an operator who may see everything and for the public pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_accessibility_checks() {
    let (server, _feeds, agent) = server_with_a_finding().await;
    let host = agent.client.host_id().to_owned();
    let officer = server.operator("olga", &[Role::Officer], &[]).await;
    let change = officer
        .create_change(
            &serde_json::from_value(json!({
                "kind": "normal", "title": "bash on the web servers",
                "justification": "CVE-2099-35", "risk": "medium",
                "testing": {"required": "required"}, "rollback_plan": "reinstall 5.2.15-2",
                "targets": {"hosts": [host]},
                "patches": [{"package": "bash", "version": "5.2.15-3"}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    officer
        .put_calendar_entry(
            "evenings",
            &serde_json::from_value(json!({
                "kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T21:00",
                "time_zone": "UTC", "duration_minutes": 120,
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    server
        .user(
            "root",
            &[Role::Admin, Role::Officer, Role::Approver],
            &[],
            PASSWORD,
            false,
        )
        .await;
    let Some(b) = Browser::start(&server.url, "accessibility").await else {
        return;
    };
    let mut failures = Vec::new();
    let mut check = async |b: &Browser, path: &str| {
        b.goto(path).await;
        b.find("body").await;
        for v in b.accessibility_violations().await {
            failures.push(format!("{path}: {v}"));
        }
    };
    for path in ["/login", "/status"] {
        check(&b, path).await;
    }
    b.log_in("root", PASSWORD).await;
    let number = &change.number;
    for path in [
        "/dashboard".to_owned(),
        "/hosts".to_owned(),
        format!("/hosts/{host}"),
        "/findings".to_owned(),
        "/advisories/ADV-1".to_owned(),
        "/triage".to_owned(),
        "/changes".to_owned(),
        "/changes/new".to_owned(),
        format!("/changes/{number}"),
        format!("/changes/{number}/form"),
        "/calendar".to_owned(),
        "/exceptions".to_owned(),
        "/exceptions/new".to_owned(),
        "/reports".to_owned(),
        "/reports/monthly/2026-10".to_owned(),
        "/incidents".to_owned(),
        "/audit".to_owned(),
        "/admin".to_owned(),
        "/admin/users".to_owned(),
        "/admin/enrollment-tokens".to_owned(),
        "/admin/feeds".to_owned(),
        "/account".to_owned(),
        "/account/tokens".to_owned(),
    ] {
        check(&b, &path).await;
    }
    b.close().await;
    assert!(
        failures.is_empty(),
        "accessibility violations:\n{}",
        failures.join("\n")
    );
}
