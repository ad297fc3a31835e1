//! `patchwarden changes …` and `patchwarden calendar …` end to end: the real binary against a
//! real server (`patchwarden-testkit`: TLS with a pinned CA, SQLite) with one enrolled Debian 12
//! host. Operators are made in the server's store with a known password and log in through the
//! CLI, each with a config directory of their own; everything else goes through the CLI: an
//! officer creates and submits a change, their own approval is refused by the change's rules
//! (exit 1, the reason on stderr), an approver approves, an authoriser authorises, a window on
//! the calendar and the schedule into it, the form shown as a table and as the API's JSON, a
//! freeze added and deleted, another change cancelled with its reason.

mod cli_support;

use cli_support::{Cli, PASSWORD, user};
use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload, InventoryWanted};
use patchwarden_api::v1::changes::{CalendarEntryView, CalendarSpec, ChangeView, Risk};
use patchwarden_api::v1::jobs::{JobOutcome, JobResult, PackageChange};
use patchwarden_core::change::{ChangeKind, ChangeState, Testing};
use patchwarden_core::inventory::{Inventory, Manager, Package, PackageStatus};
use patchwarden_store::Role;
use patchwarden_testkit::TestServer;
use uuid::Uuid;

const OLD: &str = "3.0.11-1~deb12u2";
const NEW: &str = "3.0.15-1~deb12u1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_the_calendar_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    // The officer may also approve: so the refusal of their own approval is the change's rule
    // (the four eyes), not the route's role check.
    user(&server, "olive", &[Role::Officer, Role::Approver], false).await;
    user(&server, "amos", &[Role::Approver], false).await;
    user(&server, "dora", &[Role::Authoriser], false).await;
    let (agent, _) = server
        .enroll(patchwarden_testkit::debian_facts(
            "web-01",
            "0123456789abcdef0123456789abcdef",
        ))
        .await;
    let host = agent.host_id().to_owned();

    let as_user = |name: &str| {
        let cli = Cli {
            config_home: dir.path().join(name),
            server: server.url.clone(),
            fingerprint: server.fingerprint.to_string(),
        };
        let out = cli.login(name, &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "login {name}: {out:?}");
        cli
    };
    let olive = as_user("olive");
    let amos = as_user("amos");
    let dora = as_user("dora");

    // Create from flags: the number alone on stdout.
    let out = olive.ok(&[
        "changes",
        "create",
        "--kind",
        "normal",
        "--title",
        "OpenSSL security update",
        "--justification",
        "CVE-2024-5535 on the web tier",
        "--risk",
        "medium",
        "--priority",
        "high",
        "--rollback-plan",
        "reinstall the previous openssl",
        "--testing-required",
        "--host",
        &host,
        "--patch",
        "openssl=3.0.15-1~deb12u1@Debian:12",
        "--restart",
        "nginx.service",
        "--soak-minutes",
        "15",
    ]);
    let number = out.trim().to_owned();
    assert!(
        number.starts_with("PCR-") && number.ends_with("-0001") && !number.contains('\n'),
        "{out}"
    );

    // The form as the API's JSON parses as a ChangeView, and holds what the flags said.
    let v: ChangeView = olive.typed(&["changes", "show", &number]);
    assert_eq!(v.number, number);
    assert_eq!(v.kind, ChangeKind::Normal);
    assert_eq!(v.state, ChangeState::Draft);
    assert_eq!(v.risk, Risk::Medium);
    assert_eq!(v.testing, Testing::Required);
    assert_eq!(v.requester, "olive");
    assert_eq!(v.targets.hosts, [Uuid::parse_str(&host).unwrap()]);
    assert_eq!(v.patches.len(), 1);
    assert_eq!(v.patches[0].package, "openssl");
    assert_eq!(v.patches[0].ecosystem.as_deref(), Some("Debian:12"));
    assert_eq!(v.restart_order, ["nginx.service"]);
    assert_eq!(v.rollout_plan.soak_minutes, 15);

    let submitted: ChangeView = olive.typed(&["changes", "submit", &number]);
    assert_eq!(submitted.state, ChangeState::Submitted);
    assert_eq!(submitted.submitted.as_ref().unwrap().by, "olive");

    // The requester approving their own change: refused by the change's rules (409), exit 1,
    // the server's reason on stderr, nothing on stdout.
    let out = olive.run(&["changes", "approve", &number]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the requester cannot approve their own change") && stderr.contains("409"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    // An authoriser may not approve at all: forbidden, exit 3.
    let out = dora.run(&["changes", "approve", &number]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // An unknown change: exit 4.
    let out = amos.run(&["changes", "approve", "PCR-1999-9999"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    // Four eyes: an approver approves, an authoriser authorises (the table says the state).
    let out = amos.ok(&["changes", "approve", &number]);
    assert!(out.contains("approved"), "{out}");
    let authorised: ChangeView = dora.typed(&["changes", "authorise", &number]);
    assert_eq!(authorised.state, ChangeState::Authorised);
    assert_eq!(authorised.approved.as_ref().unwrap().by, "amos");
    assert_eq!(authorised.authorised.as_ref().unwrap().by, "dora");

    // A nightly window for the host's group, and a freeze that is added and removed again.
    let entry: CalendarEntryView = olive.typed(&[
        "calendar",
        "window",
        "nightly",
        "--rrule",
        "FREQ=DAILY",
        "--start",
        "2026-01-01T22:00",
        "--time-zone",
        "UTC",
        "--duration-minutes",
        "60",
        "--group",
        "default",
    ]);
    assert_eq!(entry.name, "nightly");
    assert!(matches!(entry.spec, CalendarSpec::Window(ref w) if w.duration_minutes == 60));
    olive.ok(&[
        "calendar",
        "freeze",
        "year-end",
        "--start",
        "2031-12-20T00:00:00Z",
        "--end",
        "2032-01-02T00:00:00Z",
        "--reason",
        "year-end close",
    ]);
    let table = olive.ok(&["calendar", "list"]);
    assert!(
        table.starts_with("NAME")
            && table.contains("nightly")
            && table.contains("FREQ=DAILY")
            && table.contains("year-end close"),
        "{table}"
    );
    let out = olive.ok(&["calendar", "delete", "year-end"]);
    assert!(out.contains("deleted year-end"), "{out}");
    let entries: Vec<CalendarEntryView> = olive.typed(&["calendar", "list"]);
    assert_eq!(
        entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["nightly"]
    );
    let out = olive.run(&["calendar", "delete", "year-end"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    // Scheduled from a fixed day: the first nightly window after it.
    let out = olive.ok(&[
        "changes",
        "schedule",
        &number,
        "--not-before",
        "2030-01-01T00:00:00Z",
    ]);
    assert!(
        out.contains("scheduled") && out.contains("2030-01-01 22:00 – 2030-01-01 23:00"),
        "{out}"
    );
    let v: ChangeView = olive.typed(&["changes", "show", &number]);
    assert_eq!(v.state, ChangeState::Scheduled);
    assert_eq!(
        v.window_start,
        Some("2030-01-01T22:00:00Z".parse().unwrap())
    );
    assert_eq!(v.window_end, Some("2030-01-01T23:00:00Z".parse().unwrap()));

    // The form for people: every part of it, and the signatures with who.
    let form = olive.ok(&["changes", "show", &number]);
    for want in [
        "OpenSSL security update",
        "CVE-2024-5535 on the web tier",
        "reinstall the previous openssl",
        "openssl=3.0.15-1~deb12u1@Debian:12",
        "nginx.service",
        "scheduled",
        "medium",
        "required",
        "2030-01-01 22:00",
        "SIGNATURE",
    ] {
        assert!(form.contains(want), "{want} not in:\n{form}");
    }
    for (step, by) in [
        ("submitted", "olive"),
        ("approved", "amos"),
        ("authorised", "dora"),
    ] {
        assert!(
            form.lines().any(|l| l.starts_with(step) && l.contains(by)),
            "{step} by {by} not in:\n{form}"
        );
    }

    // A second change from a file, cancelled with its reason; the list filters by state.
    let file = dir.path().join("change.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "kind": "standard",
            "title": "bash",
            "justification": "routine",
            "risk": "low",
            "testing": {"required": "not_required", "reason": "pre-approved standard change"},
            "rollback_plan": "reinstall",
            "targets": {"groups": ["default"]},
            "patches": [{"package": "bash", "version": "5.2.15-2+b8"}]
        })
        .to_string(),
    )
    .unwrap();
    let second: ChangeView = olive.typed(&["changes", "create", "--file", file.to_str().unwrap()]);
    assert_eq!(second.kind, ChangeKind::Standard);
    assert!(second.number.ends_with("-0002"), "{}", second.number);
    // The requester edits the draft from a file.
    let edited_file = dir.path().join("edited.json");
    let mut edited_form: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    edited_form["title"] = "bash, and a newer build".into();
    edited_form["patches"][0]["version"] = "5.2.15-2+b9".into();
    std::fs::write(&edited_file, edited_form.to_string()).unwrap();
    let edited: ChangeView = olive.typed(&[
        "changes",
        "edit",
        &second.number,
        "--file",
        edited_file.to_str().unwrap(),
    ]);
    assert_eq!(edited.title, "bash, and a newer build");
    assert_eq!(edited.patches[0].version, "5.2.15-2+b9");
    let cancelled: ChangeView = olive.typed(&[
        "changes",
        "cancel",
        &second.number,
        "--reason",
        "superseded",
    ]);
    assert_eq!(cancelled.state, ChangeState::Cancelled);
    assert_eq!(cancelled.outcome_reason.as_deref(), Some("superseded"));

    let all: Vec<ChangeView> = olive.typed(&["changes", "list"]);
    assert_eq!(
        all.iter().map(|c| c.number.as_str()).collect::<Vec<_>>(),
        [second.number.as_str(), number.as_str()],
        "newest first"
    );
    let scheduled: Vec<ChangeView> = olive.typed(&["changes", "list", "--state", "scheduled"]);
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].number, number);
    let table = olive.ok(&["changes", "list", "--requester", "olive"]);
    assert!(
        table.starts_with("NUMBER")
            && table.contains(&number)
            && table.contains(&second.number)
            && table.contains("cancelled"),
        "{table}"
    );
    let none: Vec<ChangeView> = olive.typed(&["changes", "list", "--requester", "amos"]);
    assert!(none.is_empty());

    // An emergency runs at once: the rollout shows its ring, the host and the job's state and
    // outcome; its testing is recorded after it deployed, then it closes.
    let facts = patchwarden_testkit::debian_facts("web-01", "0123456789abcdef0123456789abcdef");
    let mut inventory = Inventory {
        host: facts.clone(),
        packages: vec![Package {
            manager: Manager::Dpkg,
            name: "openssl".into(),
            version: OLD.into(),
            arch: Some("amd64".into()),
            source_name: Some("openssl".into()),
            source_version: Some(OLD.into()),
            epoch: None,
            module: None,
            status: PackageStatus::Installed,
        }],
        ..Inventory::default()
    };
    inventory.canonicalize();
    let mut seq = 0;
    let mut check_in = || {
        seq += 1;
        let agent = &agent;
        let inventory = inventory.clone();
        async move {
            let answer = agent
                .check_in(&CheckInRequest {
                    seq,
                    facts: inventory.host.clone(),
                    packages: inventory.packages_digest(),
                    agent_version: "test".into(),
                })
                .await
                .unwrap();
            if answer.inventory != InventoryWanted::Nothing {
                agent
                    .upload_inventory(&InventoryUpload::Full { inventory })
                    .await
                    .unwrap();
            }
            answer
                .jobs
                .into_iter()
                .filter(|j| !j.state.is_final())
                .collect::<Vec<_>>()
        }
    };
    assert!(check_in().await.is_empty());
    olive.ok(&[
        "calendar",
        "window",
        "always",
        "--rrule",
        "FREQ=DAILY",
        "--start",
        "2026-01-01T00:00",
        "--time-zone",
        "UTC",
        "--duration-minutes",
        "1440",
    ]);
    let out = olive.ok(&[
        "changes",
        "create",
        "--kind",
        "emergency",
        "--title",
        "OpenSSL, exploited",
        "--justification",
        "exploited in the wild",
        "--risk",
        "high",
        "--rollback-plan",
        "reinstall the previous openssl",
        "--host",
        &host,
        "--patch",
        &format!("openssl={NEW}@Debian:12"),
    ]);
    let urgent = out.trim().to_owned();
    olive.ok(&["changes", "submit", &urgent]);
    amos.ok(&["changes", "approve", &urgent]);
    dora.ok(&["changes", "authorise", &urgent]);
    olive.ok(&["changes", "schedule", &urgent]);
    let until = |what: &str, done: &dyn Fn(&ChangeView) -> bool| {
        for _ in 0..150 {
            let v: ChangeView = olive.typed(&["changes", "show", &urgent]);
            if done(&v) {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{urgent} never reached {what}");
    };
    until("a running ring", &|v| {
        v.rings
            .iter()
            .any(|r| r.hosts.iter().any(|h| h.job.is_some()))
    });
    let jobs = check_in().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let mut result = JobResult::new(JobOutcome::Succeeded, "installed");
    result.changes = vec![PackageChange {
        name: "openssl".into(),
        arch: None,
        from: Some(OLD.into()),
        to: Some(NEW.into()),
    }];
    agent.job_result(&jobs[0].id, &result).await.unwrap();
    let v = until("verified", &|v| v.state == ChangeState::Verified);
    let ring = &v.rings[0];
    assert_eq!(ring.hosts[0].outcome, Some(JobOutcome::Succeeded));
    let form = olive.ok(&["changes", "show", &urgent]);
    let job = ring.hosts[0].job.unwrap().to_string();
    assert!(
        form.contains("RING")
            && form.lines().any(|l| l.starts_with(&ring.name)
                && l.contains("web-01")
                && l.contains(&job)
                && l.contains("succeeded")),
        "{form}"
    );
    // Closing before its testing is recorded: refused with why.
    let out = olive.run(&["changes", "close", &urgent]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("testing"),
        "{out:?}"
    );
    let tested: ChangeView = olive.typed(&["changes", "record-testing", &urgent]);
    assert_eq!(tested.tested.as_ref().unwrap().by, "olive");
    let closed: ChangeView = olive.typed(&["changes", "close", &urgent]);
    assert_eq!(closed.state, ChangeState::Closed);
}
