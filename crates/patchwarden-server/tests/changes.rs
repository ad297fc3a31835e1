//! Change requests through the API, against a real server and real agents' protocol: the four
//! eyes of the form, scheduling into the calendar, and the rollout engine running the rings —
//! jobs with manifests the agent can check, the test ring before the broad ring, a failed test
//! ring halting the rollout and rolling back, and the emergency path through a freeze.
//!
//! The agents here are the real client speaking the real signed protocol; what they report
//! stands for what the privileged executor did (its own tests run real apt; `rollout_real_apt`
//! runs the two together).

mod agent_support;
mod operator_support;

use std::time::Duration;

use agent_support::{Host, NEW, OLD};
use jiff::SignedDuration;
use operator_support::{Answer, PASSWORD, Req, Server, Session};
use patchwarden_api::v1::changes::{ChangeView, RingState};
use patchwarden_api::v1::jobs::{JobKind, JobOutcome};
use patchwarden_api::v1::manifest::ManifestAction;
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::{Client, Trust};
use patchwarden_core::change::ChangeState;
use patchwarden_store::Role;
use serde_json::json;

struct World {
    server: Server,
    client: Client,
    officer: Session,
    approver: Session,
    authoriser: Session,
}

async fn world() -> World {
    world_with(|_| {}).await
}

async fn world_with(tweak: impl FnOnce(&mut patchwarden_server::Config)) -> World {
    let server = Server::start(tweak).await;
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

impl World {
    async fn host(&self, name: &str, ring: &str) -> Host {
        self.host_with(name, ring, &[]).await
    }

    async fn host_with(&self, name: &str, ring: &str, labels: &[(&str, &str)]) -> Host {
        Host::enroll(&self.server, &self.client, name, "web", Some(ring), labels).await
    }

    async fn send(&self, who: &Session, r: Req) -> Answer {
        self.server.send(who.apply(r)).await
    }

    /// Posts an event; returns the change or panics with the answer.
    async fn act(
        &self,
        who: &Session,
        number: &str,
        action: &str,
        body: serde_json::Value,
    ) -> ChangeView {
        let a = self
            .send(
                who,
                Req::post(&format!("/api/v1/changes/{number}/{action}")).json(&body),
            )
            .await;
        assert_eq!(a.status, 200, "{action} {number}: {}", a.text());
        a.json()
    }

    async fn show(&self, number: &str) -> ChangeView {
        agent_support::show(&self.server, &self.officer, number).await
    }

    async fn until(
        &self,
        number: &str,
        what: &str,
        done: impl Fn(&ChangeView) -> bool,
    ) -> ChangeView {
        for _ in 0..100 {
            let c = self.show(number).await;
            if done(&c) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{number} never reached {what}: {:#?}",
            self.show(number).await
        );
    }

    async fn window(&self, name: &str, spec: serde_json::Value) {
        let a = self
            .send(
                &self.officer,
                Req::new("PUT", &format!("/api/v1/calendar/{name}")).json(&spec),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
    }

    /// A window open all day every day.
    async fn always_open(&self) {
        self.window(
            "always",
            json!({"kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T00:00",
                   "time_zone": "UTC", "duration_minutes": 1440}),
        )
        .await;
    }

    async fn create(&self, kind: &str, testing: serde_json::Value) -> ChangeView {
        self.create_with(kind, testing, json!({})).await
    }

    async fn create_with(
        &self,
        kind: &str,
        testing: serde_json::Value,
        rollout: serde_json::Value,
    ) -> ChangeView {
        let a = self
            .send(
                &self.officer,
                Req::post("/api/v1/changes").json(&json!({
                    "kind": kind,
                    "title": "OpenSSL security update",
                    "justification": "CVE-2024-5535 on the web tier",
                    "risk": "medium",
                    "priority": "high",
                    "testing": testing,
                    "rollback_plan": "reinstall the previous openssl from the agent's cache",
                    "targets": {"groups": ["web"]},
                    "patches": [{"package": "openssl", "version": NEW, "ecosystem": "Debian:12"}],
                    "restart_order": ["nginx.service"],
                    "rollout": rollout,
                })),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text());
        a.json()
    }

    /// Creates, submits, approves and authorises a change.
    async fn authorised(&self, kind: &str, testing: serde_json::Value) -> String {
        let c = self.create(kind, testing).await;
        let n = c.number.clone();
        self.act(&self.officer, &n, "submit", json!({})).await;
        self.act(&self.approver, &n, "approve", json!({})).await;
        self.act(&self.authoriser, &n, "authorise", json!({})).await;
        n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_needs_four_eyes_and_rolls_out_test_ring_first() {
    let w = world().await;
    w.server
        .user(
            "sam",
            &[Role::Officer, Role::Approver, Role::Authoriser],
            &[],
        )
        .await;
    let sam = w.server.login("sam", PASSWORD).await;
    w.always_open().await;
    let mut test = w.host("web-test-1", "test").await;
    let mut broad = [
        w.host("web-1", "wave-1").await,
        w.host("web-2", "wave-1").await,
    ];

    // The requester holds every role, and still cannot approve their own change.
    let a = w
        .send(
            &sam,
            Req::post("/api/v1/changes").json(&json!({
                "kind": "normal", "title": "t", "justification": "j", "risk": "low",
                "testing": {"required": "required"}, "rollback_plan": "r",
                "targets": {"hosts": [test.id()]},
                "patches": [{"package": "openssl", "version": NEW}],
            })),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let own: ChangeView = a.json();
    assert!(
        own.number.starts_with("PCR-") && own.number.ends_with("-0001"),
        "{}",
        own.number
    );
    w.act(&sam, &own.number, "submit", json!({})).await;
    let refused = w
        .send(
            &sam,
            Req::post(&format!("/api/v1/changes/{}/approve", own.number)).json(&json!({})),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("the requester cannot approve their own change"),
        "{}",
        refused.text()
    );
    // The officer may not approve at all: the route refuses the role.
    let refused = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{}/approve", own.number)).json(&json!({})),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), Some(ProblemCode::Forbidden));

    let c = w.create("normal", json!({"required": "required"})).await;
    let n = c.number.clone();
    assert_eq!(c.state, ChangeState::Draft);
    assert_eq!(c.patches.len(), 1);
    // Scheduling before authorisation is refused in words.
    let early = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{n}/schedule")).json(&json!({})),
        )
        .await;
    assert_eq!(early.status, 409, "{}", early.text());
    w.act(&w.officer, &n, "submit", json!({})).await;
    w.act(&w.approver, &n, "approve", json!({})).await;
    let c = w.act(&w.authoriser, &n, "authorise", json!({})).await;
    assert_eq!(c.approved.as_ref().unwrap().by, "amos");
    assert_eq!(c.authorised.as_ref().unwrap().by, "dora");
    let c = w.act(&w.officer, &n, "schedule", json!({})).await;
    assert!(c.window_start.is_some() && c.window_end.is_some(), "{c:#?}");

    // The engine starts the test ring only: the test host gets a job, the broad ones none.
    let c = w
        .until(&n, "testing", |c| c.state == ChangeState::Testing)
        .await;
    assert_eq!(c.rings.len(), 2);
    assert!(c.rings[0].test && c.rings[0].state == RingState::Running);
    assert_eq!(c.rings[1].state, RingState::Waiting);
    for b in &mut broad {
        assert!(
            b.check_in().await.is_empty(),
            "a broad host got a job during testing"
        );
    }
    let jobs = test.check_in().await;
    assert_eq!(jobs.len(), 1);
    let JobKind::Install { packages, manifest } = &jobs[0].work else {
        panic!("{:?}", jobs[0].work)
    };
    assert_eq!(packages[0].version, NEW);
    assert_eq!(manifest.change, n);
    assert_eq!(manifest.restart, ["nginx.service"]);
    // The manifest is for this host only: another host refuses it.
    assert!(
        manifest
            .check(
                broad[0].agent.host_id(),
                ManifestAction::Install,
                packages,
                patchwarden_server::clock::now()
            )
            .is_err()
    );
    test.run(&jobs[0], JobOutcome::Succeeded).await;

    // Tests passed → the broad ring deploys.
    let c = w
        .until(&n, "deploying", |c| c.state == ChangeState::Deploying)
        .await;
    assert!(c.tested.is_some());
    assert_eq!(c.rings[0].state, RingState::Verified);
    assert_eq!(c.rings[1].state, RingState::Running);
    for b in &mut broad {
        let jobs = b.check_in().await;
        assert_eq!(jobs.len(), 1);
        b.run(&jobs[0], JobOutcome::Succeeded).await;
    }
    let c = w
        .until(&n, "verified", |c| c.state == ChangeState::Verified)
        .await;
    assert!(c.rings.iter().all(|r| r.state == RingState::Verified));
    assert_eq!(c.rings[1].hosts[0].changes[0].from.as_deref(), Some(OLD));
    let c = w.act(&w.officer, &n, "close", json!({})).await;
    assert_eq!(c.state, ChangeState::Closed);

    // Every step is in the audit chain, and the chain verifies.
    let a = w.server.send(Req::get("/api/v1/audit/verify")).await;
    assert_eq!(a.status, 401);
    w.server.user("avery", &[Role::Auditor], &[]).await;
    let auditor = w.server.login("avery", PASSWORD).await;
    let a = w.send(&auditor, Req::get("/api/v1/audit/verify")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("\"intact\":true"), "{}", a.text());
    let a = w.send(&auditor, Req::get("/api/v1/audit?limit=1000")).await;
    let text = a.text();
    for action in [
        "change.create",
        "change.submit",
        "change.approve",
        "change.authorise",
        "change.schedule",
        "change.start_testing",
        "change.tests_passed",
        "change.deploy",
        "change.verified",
        "change.close",
    ] {
        assert!(text.contains(action), "no {action} in the audit log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_ring_halts_the_rollout_and_rolls_back() {
    let w = world().await;
    w.always_open().await;
    let mut test = w.host("web-test-1", "test").await;
    let mut broad = w.host("web-1", "wave-1").await;
    let n = w
        .authorised("normal", json!({"required": "required"}))
        .await;
    w.act(&w.officer, &n, "schedule", json!({})).await;
    w.until(&n, "testing", |c| c.state == ChangeState::Testing)
        .await;
    let jobs = test.check_in().await;
    test.run(&jobs[0], JobOutcome::Failed).await;

    let c = w
        .until(&n, "failed", |c| c.state == ChangeState::Failed)
        .await;
    assert_eq!(c.rings[0].state, RingState::Failed);
    assert_eq!(c.rings[1].state, RingState::Skipped);
    assert!(
        c.halted.as_deref().unwrap().contains("web-test-1"),
        "{c:#?}"
    );
    assert!(c.outcome_reason.is_some());
    // Nothing reaches the broad ring; the test host gets its rollback to the old version.
    assert!(broad.check_in().await.is_empty());
    let jobs = test.check_in().await;
    assert_eq!(jobs.len(), 1);
    let JobKind::Rollback { packages, .. } = &jobs[0].work else {
        panic!("{:?}", jobs[0].work)
    };
    assert_eq!(packages[0].version, OLD);
    test.openssl = NEW.into();
    test.run(&jobs[0], JobOutcome::Succeeded).await;
    let c = w
        .until(&n, "rolled back", |c| c.state == ChangeState::RolledBack)
        .await;
    assert_eq!(
        c.rings[0].hosts[0].rollback_state,
        Some(patchwarden_api::v1::jobs::JobState::Succeeded)
    );
    assert!(broad.check_in().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implementer_rolls_back_a_deploying_change_and_every_host_given_it_is_rolled_back() {
    let w = world().await;
    w.always_open().await;
    let mut test = w.host("web-test-1", "test").await;
    let mut broad = w.host("web-1", "wave-1").await;
    let mut later = w.host("web-9", "wave-2").await;
    // wave-1 waits for a promotion, so wave-2 has not started when the change is rolled back.
    let c = w
        .create_with(
            "normal",
            json!({"required": "required"}),
            json!({"gates": ["wave-1"]}),
        )
        .await;
    let n = c.number;
    w.act(&w.officer, &n, "submit", json!({})).await;
    w.act(&w.approver, &n, "approve", json!({})).await;
    w.act(&w.authoriser, &n, "authorise", json!({})).await;
    let rollback = format!("/api/v1/changes/{n}/rollback");
    let post = async |who: &Session, body: serde_json::Value| {
        w.send(who, Req::post(&rollback).json(&body)).await
    };
    // Nothing installed yet: the core says to cancel instead.
    let a = post(&w.officer, json!({"reason": "second thoughts"})).await;
    assert_eq!(a.status, 409, "{}", a.text());
    assert!(
        a.text()
            .contains("nothing has been installed yet: cancel it instead"),
        "{}",
        a.text()
    );
    w.act(&w.officer, &n, "schedule", json!({})).await;
    w.until(&n, "testing", |c| c.state == ChangeState::Testing)
        .await;
    let jobs = test.check_in().await;
    test.run(&jobs[0], JobOutcome::Succeeded).await;
    w.until(&n, "deploying", |c| c.state == ChangeState::Deploying)
        .await;
    let jobs = broad.check_in().await;
    assert_eq!(jobs.len(), 1, "the first broad ring runs");
    broad.run(&jobs[0], JobOutcome::Succeeded).await;

    // The change's page shows the rollout per ring and host, and the Roll back button to an
    // implementer only.
    let page = w
        .send(&w.officer, Req::get(&format!("/changes/{n}")))
        .await
        .text();
    assert!(page.contains("Ring wave-1"), "{page}");
    assert!(page.contains("<td>web-1</td>") && page.contains("<td>web-test-1</td>"));
    assert!(page.contains("id=\"do-rollback\""), "{page}");
    let page = w
        .send(&w.approver, Req::get(&format!("/changes/{n}")))
        .await
        .text();
    assert!(!page.contains("id=\"do-rollback\""));

    // Only an implementer rolls back (an approver's role is refused by the route), and only
    // with a reason (the core's words).
    let a = post(&w.approver, json!({"reason": "slow"})).await;
    assert_eq!(a.status, 403, "{}", a.text());
    let a = post(&w.officer, json!({"reason": "  "})).await;
    assert_eq!(a.status, 409, "{}", a.text());
    assert!(
        a.text().contains("a rollback needs a reason"),
        "{}",
        a.text()
    );
    let a = post(&w.officer, json!({"reasons": "x"})).await;
    assert_eq!(a.status, 400, "{}", a.text());

    let c = w
        .act(
            &w.officer,
            &n,
            "rollback",
            json!({"reason": "checkout slower since the update"}),
        )
        .await;
    assert_eq!(c.state, ChangeState::Failed);
    assert_eq!(
        c.outcome_reason.as_deref(),
        Some("checkout slower since the update")
    );
    assert_eq!(
        c.halted.as_deref(),
        Some("rolled back by olive: checkout slower since the update")
    );
    // The ring that had not started never will.
    let wave2 = c.rings.iter().find(|r| r.name == "wave-2").unwrap();
    assert_eq!(wave2.state, RingState::Skipped);

    // Both hosts that were given the change get their rollback job; the host of the skipped
    // ring gets nothing.
    for host in [&mut test, &mut broad] {
        let mut jobs = Vec::new();
        for _ in 0..100 {
            jobs = host.check_in().await;
            if !jobs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(jobs.len(), 1, "{} got no rollback job", host.facts.hostname);
        let JobKind::Rollback { packages, .. } = &jobs[0].work else {
            panic!("{:?}", jobs[0].work)
        };
        assert_eq!(packages[0].version, OLD);
        host.run(&jobs[0], JobOutcome::Succeeded).await;
    }
    assert!(later.check_in().await.is_empty());
    let c = w
        .until(&n, "rolled back", |c| c.state == ChangeState::RolledBack)
        .await;
    let a = post(&w.officer, json!({"reason": "again"})).await;
    assert_eq!(a.status, 409, "a finished change is not rolled back twice");
    let rolled: Vec<&str> = c
        .rings
        .iter()
        .flat_map(|r| &r.hosts)
        .filter(|h| h.rollback_job.is_some())
        .map(|h| h.hostname.as_str())
        .collect();
    assert_eq!(rolled, ["web-test-1", "web-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_deploys_through_a_freeze_while_a_normal_change_waits_for_the_window_after_it()
{
    let w = world().await;
    let now = patchwarden_server::clock::now();
    w.always_open().await;
    let freeze_end = now + SignedDuration::from_hours(72);
    w.window(
        "year-end",
        json!({"kind": "freeze", "start": now - SignedDuration::from_hours(1), "end": freeze_end,
               "reason": "year-end close"}),
    )
    .await;
    let mut test = w.host("web-test-1", "test").await;
    let mut broad = w.host("web-1", "wave-1").await;

    // A normal change is scheduled into the first window after the freeze, and waits.
    let normal = w
        .authorised("normal", json!({"required": "required"}))
        .await;
    let c = w.act(&w.officer, &normal, "schedule", json!({})).await;
    assert!(c.window_start.unwrap() >= freeze_end, "{c:#?}");

    // The emergency deploys now, in the freeze, ring after ring, each job within 8 hours.
    let emergency = w
        .authorised("emergency", json!({"required": "required"}))
        .await;
    let c = w.act(&w.officer, &emergency, "schedule", json!({})).await;
    assert!(c.window_end.unwrap() <= now + SignedDuration::from_hours(9));
    w.until(&emergency, "deploying", |c| {
        c.state == ChangeState::Deploying
    })
    .await;
    let jobs = test.check_in().await;
    assert_eq!(jobs.len(), 1, "the normal change must not have given a job");
    let JobKind::Install { manifest, .. } = &jobs[0].work else {
        panic!()
    };
    assert!(manifest.window.is_none());
    assert!(
        manifest.expires_at <= patchwarden_server::clock::now() + SignedDuration::from_hours(8)
    );
    test.run(&jobs[0], JobOutcome::Succeeded).await;
    w.until(&emergency, "wave-1 running", |c| {
        c.rings[1].state == RingState::Running
    })
    .await;
    let jobs = broad.check_in().await;
    assert_eq!(jobs.len(), 1);
    broad.run(&jobs[0], JobOutcome::Succeeded).await;
    w.until(&emergency, "verified", |c| c.state == ChangeState::Verified)
        .await;
    // It stays open until its testing is recorded.
    let a = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{emergency}/close")).json(&json!({})),
        )
        .await;
    assert_eq!(a.status, 409);
    assert!(a.text().contains("testing"), "{}", a.text());
    w.act(&w.officer, &emergency, "record-testing", json!({}))
        .await;
    let c = w.act(&w.officer, &emergency, "close", json!({})).await;
    assert_eq!(c.state, ChangeState::Closed);
    // The normal change has not moved.
    assert_eq!(w.show(&normal).await.state, ChangeState::Scheduled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_change_requests_and_calendar_entries_are_refused_in_words() {
    let w = world().await;
    let cases = [
        (json!({"kind": "sometimes"}), 400),
        (
            json!({"kind": "normal", "title": "", "justification": "j", "risk": "low",
                   "testing": {"required": "required"}, "rollback_plan": "r",
                   "targets": {"groups": ["web"]},
                   "patches": [{"package": "openssl", "version": NEW}]}),
            400,
        ),
        (
            json!({"kind": "normal", "title": "t", "justification": "j", "risk": "low",
                   "testing": {"required": "required"}, "rollback_plan": "r",
                   "targets": {"groups": ["web"]},
                   "patches": [{"package": "-oops", "version": NEW}]}),
            400,
        ),
        (
            json!({"kind": "normal", "title": "t", "justification": "j", "risk": "low",
                   "testing": {"required": "required"}, "rollback_plan": "r",
                   "targets": {}, "patches": [{"package": "openssl", "version": NEW}]}),
            400,
        ),
        (
            // No patches given, and no host has findings to derive them from.
            json!({"kind": "normal", "title": "t", "justification": "j", "risk": "low",
                   "testing": {"required": "required"}, "rollback_plan": "r",
                   "targets": {"groups": ["web"]}}),
            400,
        ),
    ];
    for (body, status) in cases {
        let a = w
            .send(&w.officer, Req::post("/api/v1/changes").json(&body))
            .await;
        assert_eq!(a.status, status, "{body}: {}", a.text());
        assert_eq!(a.header("content-type"), Some("application/problem+json"));
    }
    let mut huge = Req::post("/api/v1/changes").header("content-type", "application/json");
    huge.body = vec![b' '; 2 * 1024 * 1024];
    let a = w.send(&w.officer, huge).await;
    assert_eq!(a.status, 413);
    // A submit without a justification is refused by the rules, in words.
    let a = w
        .send(
            &w.officer,
            Req::post("/api/v1/changes").json(&json!({
                "kind": "normal", "title": "t", "justification": "", "risk": "low",
                "testing": {"required": "required"}, "rollback_plan": "r",
                "targets": {"groups": ["web"]},
                "patches": [{"package": "openssl", "version": NEW}]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let c: ChangeView = a.json();
    let a = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{}/submit", c.number)).json(&json!({})),
        )
        .await;
    assert_eq!(a.status, 409);
    assert!(
        a.text().contains("no business justification"),
        "{}",
        a.text()
    );
    // Calendar entries with a bad rule, zone or span.
    for (name, spec) in [
        (
            "bad-rule",
            json!({"kind": "window", "rrule": "FREQ=SOMETIMES", "start": "2026-01-01T00:00", "time_zone": "UTC", "duration_minutes": 60}),
        ),
        (
            "bad-zone",
            json!({"kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T00:00", "time_zone": "Mars/Olympus", "duration_minutes": 60}),
        ),
        (
            "bad-span",
            json!({"kind": "freeze", "start": "2026-12-31T00:00:00Z", "end": "2026-12-01T00:00:00Z"}),
        ),
    ] {
        let a = w
            .send(
                &w.officer,
                Req::new("PUT", &format!("/api/v1/calendar/{name}")).json(&spec),
            )
            .await;
        assert_eq!(a.status, 400, "{name}: {}", a.text());
    }
    let a = w.send(&w.officer, Req::get("/api/v1/calendar")).await;
    assert_eq!(a.text(), "[]");
    // Scheduling with no window at all says so.
    let mut h = w.host("web-1", "wave-1").await;
    assert!(h.check_in().await.is_empty());
    let n = w
        .authorised("normal", json!({"required": "required"}))
        .await;
    let a = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{n}/schedule")).json(&json!({})),
        )
        .await;
    assert_eq!(a.status, 409);
    assert!(a.text().contains("no maintenance window"), "{}", a.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_ring_waits_for_promotion_and_a_failure_domain_patches_one_host_at_a_time() {
    let w = world().await;
    w.always_open().await;
    let mut test = w.host("web-test-1", "test").await;
    let shop = [
        ("hypervisor", "hv-1"),
        ("application", "shop"),
        ("impact", "checkout pauses for up to 5 minutes"),
    ];
    let mut same_hv = [
        w.host_with("web-1", "wave-1", &shop).await,
        w.host_with("web-2", "wave-1", &shop).await,
    ];
    let c = w
        .create_with(
            "normal",
            json!({"required": "required"}),
            json!({"gates": ["test"], "domain_label": "hypervisor", "max_per_domain": 1}),
        )
        .await;
    let n = c.number;
    w.act(&w.officer, &n, "submit", json!({})).await;
    w.act(&w.approver, &n, "approve", json!({})).await;
    w.act(&w.authoriser, &n, "authorise", json!({})).await;
    // Promoting a ring without a gate is refused.
    let a = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{n}/promote")).json(&json!({"ring": "wave-1"})),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text());
    // Scheduled a week ahead: announced from a week before its window, naming the
    // application its hosts serve and the impact on it.
    let in_a_week = patchwarden_server::clock::now() + SignedDuration::from_hours(24 * 8);
    let c = w
        .act(&w.officer, &n, "schedule", json!({"not_before": in_a_week}))
        .await;
    let start = c.window_start.unwrap();
    assert!(start >= in_a_week);
    assert_eq!(
        c.announce_at,
        Some(start - SignedDuration::from_hours(24 * 7))
    );
    assert_eq!(c.affected_applications.len(), 1);
    assert_eq!(c.affected_applications[0].application, "shop");
    assert_eq!(
        c.affected_applications[0].impact.as_deref(),
        Some("checkout pauses for up to 5 minutes")
    );
    assert_eq!(c.affected_applications[0].hosts, ["web-1", "web-2"]);
    // Cancelled, and the same change made anew for now.
    let a = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{n}/cancel")).json(&json!({"reason": "sooner"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let c = w
        .create_with(
            "normal",
            json!({"required": "required"}),
            json!({"gates": ["test"], "domain_label": "hypervisor", "max_per_domain": 1}),
        )
        .await;
    let n = c.number;
    w.act(&w.officer, &n, "submit", json!({})).await;
    w.act(&w.approver, &n, "approve", json!({})).await;
    w.act(&w.authoriser, &n, "authorise", json!({})).await;
    w.act(&w.officer, &n, "schedule", json!({})).await;
    w.until(&n, "testing", |c| c.state == ChangeState::Testing)
        .await;
    let jobs = test.check_in().await;
    test.run(&jobs[0], JobOutcome::Succeeded).await;
    // The test host verified, but the gate holds the ring until someone promotes it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = w.show(&n).await;
    assert_eq!(c.state, ChangeState::Testing);
    assert_eq!(c.rings[0].state, RingState::Running);
    for h in &mut same_hv {
        assert!(h.check_in().await.is_empty());
    }
    let c = w
        .act(&w.officer, &n, "promote", json!({"ring": "test"}))
        .await;
    assert_eq!(c.promoted[0].0, "test");
    assert_eq!(c.promoted[0].1.by, "olive");
    w.until(&n, "deploying", |c| c.state == ChangeState::Deploying)
        .await;
    // Both broad hosts share a hypervisor: one at a time.
    let first = same_hv[0].check_in().await;
    let second = same_hv[1].check_in().await;
    assert_eq!(
        first.len() + second.len(),
        1,
        "two hosts of one failure domain were patched at once"
    );
    let (done, other) = if first.len() == 1 { (0, 1) } else { (1, 0) };
    let job = if first.len() == 1 {
        &first[0]
    } else {
        &second[0]
    };
    same_hv[done].run(job, JobOutcome::Succeeded).await;
    w.until(&n, "the second host started", |c| {
        c.rings[1].hosts.iter().all(|h| h.job.is_some())
    })
    .await;
    let jobs = same_hv[other].check_in().await;
    assert_eq!(jobs.len(), 1);
    same_hv[other].run(&jobs[0], JobOutcome::Succeeded).await;
    w.until(&n, "verified", |c| c.state == ChangeState::Verified)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_rule_raises_signs_and_schedules_one_change_for_the_findings_it_covers() {
    let w = world_with(|c| {
        c.changes.standard_every_secs = 1;
        c.changes.standard = vec![patchwarden_server::changes::standard::StandardRule {
            name: "web-openssl".into(),
            groups: vec!["web".into()],
            packages: vec!["openssl*".into()],
            max_criticality: "high".into(),
            testing: false,
        }];
    })
    .await;
    w.always_open().await;
    let mut hosts = [
        w.host("web-1", "wave-1").await,
        w.host("web-2", "wave-1").await,
    ];
    // A vendor advisory for openssl below NEW, entered by hand; the hosts run OLD.
    w.server.user("sec", &[Role::Security], &[]).await;
    let sec = w.server.login("sec", PASSWORD).await;
    let a = w
        .send(
            &sec,
            Req::post("/api/v1/advisories").json(&json!({
                "schema_version": "1.6.0",
                "id": "DSA-9999-1",
                "aliases": ["CVE-2026-99991"],
                "modified": "2026-11-20T00:00:00Z",
                "published": "2026-11-20T00:00:00Z",
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}],
                "affected": [{
                    "package": {"ecosystem": "Debian:12", "name": "openssl"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": NEW}]}]
                }]
            })),
        )
        .await;
    assert!(a.status < 300, "{}", a.text());
    for h in &mut hosts {
        h.check_in().await;
    }
    // The rule raises one change, signed by itself, scheduled into the window, and it deploys.
    let mut number = None;
    for _ in 0..100 {
        let a = w
            .send(
                &w.officer,
                Req::get("/api/v1/changes?requester=rule:web-openssl"),
            )
            .await;
        let list: Vec<ChangeView> = a.json();
        if let Some(c) = list.first() {
            number = Some(c.number.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = number.expect("the rule raised no change");
    let c = w
        .until(&n, "deploying", |c| c.state == ChangeState::Deploying)
        .await;
    assert_eq!(c.kind, patchwarden_core::change::ChangeKind::Standard);
    assert_eq!(c.requester, "rule:web-openssl");
    assert_eq!(c.approved.as_ref().unwrap().by, "rule:web-openssl");
    assert_eq!(c.authorised.as_ref().unwrap().by, "rule:web-openssl");
    assert_eq!(c.patches[0].version, NEW);
    for h in &mut hosts {
        let jobs = h.check_in().await;
        assert_eq!(jobs.len(), 1);
        // The agent accepts a manifest its rule signed.
        h.run(&jobs[0], JobOutcome::Succeeded).await;
    }
    w.until(&n, "verified", |c| c.state == ChangeState::Verified)
        .await;
    // Further passes raise nothing more: the change covers those findings.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let a = w.send(&w.officer, Req::get("/api/v1/changes")).await;
    let all: Vec<ChangeView> = a.json();
    assert_eq!(all.len(), 1, "{all:#?}");
}

#[test]
fn standard_rules_that_cannot_work_are_refused_at_start() {
    use patchwarden_server::changes::standard::StandardRule;
    let rule = |name: &str, groups: &[&str], packages: &[&str], max: &str| StandardRule {
        name: name.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        packages: packages.iter().map(|p| (*p).to_owned()).collect(),
        max_criticality: max.into(),
        testing: true,
    };
    for (rules, why) in [
        (vec![rule("bad name", &["web"], &[], "low")], "name"),
        (vec![rule("r", &[], &[], "low")], "group"),
        (vec![rule("r", &["web"], &[], "severe")], "severe"),
        (vec![rule("r", &["web"], &["*"], "low")], "package"),
        (
            vec![
                rule("r", &["web"], &[], "low"),
                rule("r", &["db"], &[], "low"),
            ],
            "twice",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let mut text = String::from("[changes]\n");
        for r in &rules {
            text.push_str(&format!(
                "[[changes.standard]]\nname = {:?}\ngroups = {:?}\npackages = {:?}\nmax_criticality = {:?}\n",
                r.name, r.groups, r.packages, r.max_criticality
            ));
        }
        std::fs::write(&path, text).unwrap();
        let e = patchwarden_server::Config::load(Some(&path), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_derives_patches_by_criticality_age_and_the_hosts_own_security_updates() {
    let w = world().await;
    let mut host = w.host("web-1", "wave-1").await;
    w.server.user("sec", &[Role::Security], &[]).await;
    let sec = w.server.login("sec", PASSWORD).await;
    let recent = (patchwarden_server::clock::now() - SignedDuration::from_hours(24)).to_string();
    for (id, package, fixed, cvss, published) in [
        (
            "ADV-HIGH",
            "openssl",
            NEW,
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "2026-01-10T00:00:00Z".to_owned(),
        ),
        (
            "ADV-LOW",
            "bash",
            "5.2.15-2+b8",
            "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
            recent,
        ),
    ] {
        let a = w
            .send(
                &sec,
                Req::post("/api/v1/advisories").json(&json!({
                    "schema_version": "1.6.0", "id": id,
                    "modified": published, "published": published,
                    "severity": [{"type": "CVSS_V3", "score": cvss}],
                    "affected": [{
                        "package": {"ecosystem": "Debian:12", "name": package},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
                    }]
                })),
            )
            .await;
        assert!(a.status < 300, "{}", a.text());
    }
    host.check_in().await;
    let create = |baseline: serde_json::Value| {
        Req::post("/api/v1/changes").json(&json!({
            "kind": "normal", "title": "baseline", "justification": "j", "risk": "low",
            "testing": {"required": "required"}, "rollback_plan": "r",
            "targets": {"groups": ["web"]}, "baseline": baseline,
        }))
    };
    let patches = |a: Answer| -> Vec<(String, String)> {
        assert_eq!(a.status, 201, "{}", a.text());
        let c: ChangeView = a.json();
        c.patches
            .into_iter()
            .map(|p| (p.package, p.version))
            .collect()
    };
    // Every fixable finding.
    let all = patches(w.send(&w.officer, create(json!({}))).await);
    assert_eq!(
        all,
        [
            ("bash".to_owned(), "5.2.15-2+b8".to_owned()),
            ("openssl".to_owned(), NEW.to_owned())
        ]
    );
    // Only the high ones.
    let high = patches(
        w.send(&w.officer, create(json!({"min_criticality": "high"})))
            .await,
    );
    assert_eq!(high, [("openssl".to_owned(), NEW.to_owned())]);
    // Only fixes out for a week: the bash fix is a day old.
    let aged = patches(w.send(&w.officer, create(json!({"min_age_days": 7}))).await);
    assert_eq!(aged, [("openssl".to_owned(), NEW.to_owned())]);
    // The high findings and all security updates the host's repository offers (bash +b9).
    let with_updates = patches(
        w.send(
            &w.officer,
            create(json!({"min_criticality": "high", "update_kinds": ["security"]})),
        )
        .await,
    );
    assert_eq!(
        with_updates,
        [
            ("bash".to_owned(), "5.2.15-2+b9".to_owned()),
            ("openssl".to_owned(), NEW.to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_scheduled_with_a_template_follows_its_anchor() {
    let w = world().await;
    w.always_open().await;
    let _host = w.host("web-1", "wave-1").await;
    // Sync on the second Tuesday at 20:00 UTC; test ring the next day; broad rings a week later.
    w.window(
        "monthly",
        json!({"kind": "template", "rrule": "FREQ=MONTHLY;BYDAY=2TU", "start": "2026-01-13T20:00",
               "time_zone": "UTC", "test_after_hours": 24, "broad_after_test_days": 7}),
    )
    .await;
    let a = w.send(&w.officer, Req::get("/api/v1/calendar")).await;
    let entries: Vec<patchwarden_api::v1::changes::CalendarEntryView> = a.json();
    let monthly = entries.iter().find(|e| e.name == "monthly").unwrap();
    assert_eq!(monthly.next.len(), 3);
    let (anchor, test_from) = monthly.next[0];
    assert_eq!(test_from, anchor + SignedDuration::from_hours(24));
    let n = w
        .authorised("normal", json!({"required": "required"}))
        .await;
    let unknown = w
        .send(
            &w.officer,
            Req::post(&format!("/api/v1/changes/{n}/schedule")).json(&json!({"template": "nope"})),
        )
        .await;
    assert_eq!(unknown.status, 409, "{}", unknown.text());
    let c = w
        .act(&w.officer, &n, "schedule", json!({"template": "monthly"}))
        .await;
    // The test ring's window opens the day after the anchor; the broad rings wait a week.
    assert_eq!(c.window_start, Some(test_from));
    let (name, at, soak_minutes) = c.template.clone().unwrap();
    assert_eq!(
        (name.as_str(), at, soak_minutes),
        ("monthly", anchor, 7 * 24 * 60)
    );
    // A bad template is refused in words.
    let a = w
        .send(
            &w.officer,
            Req::new("PUT", "/api/v1/calendar/bad").json(&json!({
                "kind": "template", "rrule": "FREQ=MONTHLY;BYDAY=2TU", "start": "2026-01-13T20:00",
                "time_zone": "UTC", "test_after_hours": 24, "broad_after_test_days": 400})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_without_a_ring_roll_out_in_waves_one_after_another() {
    let w = world().await;
    w.always_open().await;
    let mut hosts = Vec::new();
    for i in 1..=5 {
        hosts.push(w.host(&format!("web-{i}"), "").await);
    }
    let c = w
        .create_with(
            "normal",
            json!({"required": "not_required", "reason": "vendor-tested library update"}),
            json!({"waves": {"size": 2}}),
        )
        .await;
    let n = c.number;
    w.act(&w.officer, &n, "submit", json!({})).await;
    w.act(&w.approver, &n, "approve", json!({})).await;
    w.act(&w.authoriser, &n, "authorise", json!({})).await;
    w.act(&w.officer, &n, "schedule", json!({})).await;
    let c = w
        .until(&n, "deploying", |c| c.state == ChangeState::Deploying)
        .await;
    let names: Vec<(&str, usize)> = c
        .rings
        .iter()
        .map(|r| (r.name.as_str(), r.hosts.len()))
        .collect();
    assert_eq!(names, [("broad-1", 2), ("broad-2", 2), ("broad-3", 1)]);
    // Wave by wave: while a wave runs, no later wave's host has a job.
    for wave in 0..3 {
        let c = w
            .until(&n, "the wave running", |c| {
                c.rings[wave].state == RingState::Running
                    && c.rings[wave].hosts.iter().all(|h| h.job.is_some())
            })
            .await;
        for later in &c.rings[wave + 1..] {
            assert!(
                later.hosts.iter().all(|h| h.job.is_none()),
                "wave {wave}: {c:#?}"
            );
        }
        let names: Vec<String> = c.rings[wave]
            .hosts
            .iter()
            .map(|h| h.hostname.clone())
            .collect();
        for host in hosts
            .iter_mut()
            .filter(|h| names.contains(&h.facts.hostname))
        {
            for job in host.check_in().await {
                host.run(&job, JobOutcome::Succeeded).await;
            }
        }
    }
    w.until(&n, "verified", |c| c.state == ChangeState::Verified)
        .await;
    // Waves that cannot work are refused.
    let a = w
        .send(
            &w.officer,
            Req::post("/api/v1/changes").json(&json!({
                "kind": "normal", "title": "t", "justification": "j", "risk": "low",
                "testing": {"required": "required"}, "rollback_plan": "r",
                "targets": {"groups": ["web"]},
                "patches": [{"package": "openssl", "version": NEW}],
                "rollout": {"waves": {"percent": [70, 70]}}})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_is_edited_by_its_requester_only_and_only_while_a_draft() {
    let w = world().await;
    w.server.user("oscar", &[Role::Officer], &[]).await;
    let oscar = w.server.login("oscar", PASSWORD).await;
    let c = w.create("normal", json!({"required": "required"})).await;
    let n = c.number;
    let form = |version: &str, kind: &str| {
        json!({
            "kind": kind, "title": "OpenSSL, edited", "justification": "CVE-2024-5535",
            "risk": "high", "testing": {"required": "required"}, "rollback_plan": "r",
            "targets": {"groups": ["web"]},
            "patches": [{"package": "openssl", "version": version}],
        })
    };
    let put = |v: serde_json::Value| Req::new("PUT", &format!("/api/v1/changes/{n}")).json(&v);
    let a = w
        .send(&w.officer, put(form("3.0.16-1~deb12u1", "normal")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let edited: ChangeView = a.json();
    assert_eq!(edited.title, "OpenSSL, edited");
    assert_eq!(edited.patches[0].version, "3.0.16-1~deb12u1");
    assert_eq!(edited.number, n);
    // Another officer, or another kind, is refused.
    let a = w.send(&oscar, put(form(NEW, "normal"))).await;
    assert_eq!(a.status, 409, "{}", a.text());
    assert!(a.text().contains("only the requester"), "{}", a.text());
    let a = w.send(&w.officer, put(form(NEW, "emergency"))).await;
    assert_eq!(a.status, 409, "{}", a.text());
    // Once submitted, the form is what the approvers judge: no more edits.
    w.act(&w.officer, &n, "submit", json!({})).await;
    let a = w.send(&w.officer, put(form(NEW, "normal"))).await;
    assert_eq!(a.status, 409, "{}", a.text());
    assert!(a.text().contains("only a draft"), "{}", a.text());
    assert_eq!(w.show(&n).await.patches[0].version, "3.0.16-1~deb12u1");
}
