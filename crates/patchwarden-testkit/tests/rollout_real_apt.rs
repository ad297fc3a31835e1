//! End to end with real packages: real `.deb`s built by `dpkg-deb`, a real APT repository over
//! loopback HTTP, two sandbox roots that real apt and dpkg install into, real agents enrolled
//! against a real server, and the whole change process driven through the operator API.
//!
//! - `rollout_real_apt`: finding → change → approval by a second person → authorisation by a
//!   third → window → the test ring installs `demo-lib` 1.1 and verifies → the broad ring →
//!   every finding closed, the audit chain verifies. Then 1.2, whose postinst fails: the test
//!   ring fails, the rollout halts, the rollback restores 1.1, and nothing reaches the broad
//!   ring.
//! - `emergency_change_in_freeze`: a KEV-listed vulnerability (so an Emergency finding, due in
//!   8 hours) during a change freeze goes through the emergency path and is patched on every
//!   host inside its deadline, while a normal change for the same hosts waits for the first
//!   window after the freeze; recording the testing afterwards lets it close.

use std::path::PathBuf;

use jiff::SignedDuration;
use patchwarden_agent::agent::{Agent, EnrollOptions, StateDir, enroll};
use patchwarden_agent::executor::ExecutorOptions;
use patchwarden_api::v1::changes::{
    CalendarSpec, ChangeView, FreezeSpec, NewChangeRequest, RingState, RolloutPlan,
    ScheduleRequest, Targets, WindowSpec,
};
use patchwarden_api::v1::feeds::{AdvisoryQuery, FeedKind, ImportQuery};
use patchwarden_api::v1::fleet::{Criticality, FindingQuery, FindingStateFilter};
use patchwarden_client::{ChangeAction, OperatorClient};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::change::{ChangeKind, ChangeState, Testing};
use patchwarden_store::{HostPlacement, Role};
use patchwarden_testkit::apt::{AptRepo, PACKAGE, SandboxRoot, tools_ready};
use patchwarden_testkit::{TestServer, now, shared_data};
use serde_json::json;
use uuid::Uuid;

/// One host: a sandbox root that real apt and dpkg work on, and its agent.
struct Host {
    id: Uuid,
    root: SandboxRoot,
    agent: Agent,
}

impl Host {
    async fn once(&mut self) {
        self.agent
            .once()
            .await
            .unwrap_or_else(|e| panic!("agent of {}: {e}", self.id));
    }

    fn version(&self) -> Option<String> {
        self.root.installed_version(PACKAGE)
    }
}

struct World {
    _tmp: tempfile::TempDir,
    server: TestServer,
    repo: AptRepo,
    officer: OperatorClient,
    approver: OperatorClient,
    authoriser: OperatorClient,
    test: Host,
    broad: Host,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let repo = AptRepo::build(&tmp.path().join("repo"));
    repo.publish(&["1.0", "1.1"]);
    let officer = server.operator("olive", &[Role::Officer], &[]).await;
    let approver = server.operator("amos", &[Role::Approver], &[]).await;
    let authoriser = server.operator("dora", &[Role::Authoriser], &[]).await;
    let test = host(&server, &repo, tmp.path().join("test"), "test").await;
    let broad = host(&server, &repo, tmp.path().join("broad"), "broad-1").await;
    World {
        _tmp: tmp,
        server,
        repo,
        officer,
        approver,
        authoriser,
        test,
        broad,
    }
}

/// A sandbox root with `demo-lib` 1.0, its agent enrolled in group `web` and placed in `ring`.
async fn host(server: &TestServer, repo: &AptRepo, dir: PathBuf, ring: &str) -> Host {
    std::fs::create_dir_all(&dir).unwrap();
    let root = SandboxRoot::new(&dir, repo);
    let state = StateDir::open(&dir.join("state")).unwrap();
    let (_, secret) = server.token("web", 1, SignedDuration::from_hours(1)).await;
    let (identity, _) = enroll(
        &state,
        EnrollOptions {
            server: server.url.clone(),
            token: secret,
            ca_fingerprint: Some(server.fingerprint),
            replace: false,
            root: root.path.clone(),
        },
    )
    .await
    .unwrap();
    let id = Uuid::parse_str(&identity.host_id).unwrap();
    // Which ring a host is in is the operator's placement (here straight into the store).
    let at = now();
    server
        .store()
        .set_host_placement(
            id,
            HostPlacement {
                group: "web".into(),
                ring: Some(ring.into()),
                labels: Default::default(),
            },
            at,
            AuditEntry::new(
                at,
                Actor::Operator("test".into()),
                "host.place",
                format!("host:{id}"),
            ),
        )
        .await
        .unwrap();
    let agent = Agent::load(state, root.path.clone())
        .unwrap()
        .with_executor(ExecutorOptions::default(), now);
    let mut host = Host { id, root, agent };
    host.once().await;
    host
}

impl World {
    /// The vendor advisory for `demo-lib`, entered by hand (a vendor without a feed): versions
    /// below `fixed` are affected. Published an hour ago: the fix is that old, and the SLA
    /// clock counts from it.
    async fn advisory(&self, id: &str, alias: &str, fixed: &str) {
        let published = (now() - SignedDuration::from_hours(1)).to_string();
        let osv = json!({
            "schema_version": "1.6.0",
            "id": id,
            "aliases": [alias],
            "modified": published,
            "published": published,
            "summary": format!("demo-lib before {fixed} mishandles its input"),
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": PACKAGE},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
            }]
        });
        self.officer
            .enter_advisory(
                &AdvisoryQuery {
                    source: Some("demo-vendor".into()),
                },
                &osv,
            )
            .await
            .unwrap();
    }

    async fn always_open(&self) {
        self.officer
            .put_calendar_entry(
                "web-nightly",
                &CalendarSpec::Window(WindowSpec {
                    rrule: "FREQ=DAILY".into(),
                    start: "2026-01-01T00:00".into(),
                    time_zone: "UTC".into(),
                    duration_minutes: 24 * 60,
                    groups: vec!["web".into()],
                }),
            )
            .await
            .unwrap();
    }

    async fn open_findings(&self, host: Uuid) -> Vec<patchwarden_api::v1::fleet::FindingView> {
        self.officer
            .findings(&FindingQuery {
                host: Some(host),
                state: Some(FindingStateFilter::Open),
                ..FindingQuery::default()
            })
            .await
            .unwrap()
            .items
    }

    /// A change of `kind` for group `web` from the open findings of `vulnerability`, through
    /// submit, approval and authorisation by three different people.
    async fn authorised(&self, kind: ChangeKind, vulnerability: &str) -> String {
        let c = self
            .officer
            .create_change(&NewChangeRequest {
                kind,
                title: format!("{PACKAGE}: {vulnerability}"),
                justification: format!("{vulnerability} affects every web host"),
                risk: patchwarden_api::v1::changes::Risk::Medium,
                priority: "per the SLA".into(),
                testing: Testing::Required,
                rollback_plan: "the agents reinstall the previous version from their cache".into(),
                targets: Targets {
                    hosts: Vec::new(),
                    groups: vec!["web".into()],
                },
                patches: Vec::new(),
                from_findings: vec![vulnerability.into()],
                baseline: Default::default(),
                restart_order: Vec::new(),
                health_checks: Vec::new(),
                reboot_allowed: false,
                hotfix: None,
                rollout: RolloutPlan::default(),
            })
            .await
            .unwrap();
        let n = c.number;
        self.officer
            .change_action(&n, ChangeAction::Submit)
            .await
            .unwrap();
        // The requester cannot approve: the officer has no approver role at all, and the
        // approver and authoriser are two other people.
        self.approver
            .change_action(&n, ChangeAction::Approve)
            .await
            .unwrap();
        self.authoriser
            .change_action(&n, ChangeAction::Authorise)
            .await
            .unwrap();
        n
    }

    async fn change(&self, n: &str) -> ChangeView {
        self.officer.change(n).await.unwrap()
    }

    /// Runs the agents that `run` names and waits for the server's rollout engine, until
    /// `done` holds.
    async fn drive(
        &mut self,
        n: &str,
        what: &str,
        which: &[&str],
        done: impl Fn(&ChangeView) -> bool,
    ) -> ChangeView {
        for _ in 0..60 {
            let c = self.change(n).await;
            if done(&c) {
                return c;
            }
            for name in which {
                match *name {
                    "test" => self.test.once().await,
                    _ => self.broad.once().await,
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("{n} never reached {what}: {:#?}", self.change(n).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_real_apt() {
    if !tools_ready("rollout_real_apt") {
        return;
    }
    let mut w = world().await;
    w.always_open().await;
    w.advisory("DEMO-2026-0001", "CVE-2026-90001", "1.1").await;
    // The agents report 1.0; the server finds the vulnerability on both.
    w.test.once().await;
    w.broad.once().await;
    for h in [w.test.id, w.broad.id] {
        let open = w.open_findings(h).await;
        assert_eq!(open.len(), 1, "{open:#?}");
        assert_eq!(open[0].finding.fixed.as_deref(), Some("1.1"));
    }

    let n = w.authorised(ChangeKind::Normal, "CVE-2026-90001").await;
    let c = w.change(&n).await;
    assert_eq!(c.patches.len(), 1);
    assert_eq!(
        (c.patches[0].package.as_str(), c.patches[0].version.as_str()),
        (PACKAGE, "1.1")
    );
    w.officer
        .schedule_change(&n, &ScheduleRequest::default())
        .await
        .unwrap();

    // The test ring installs 1.1 with real apt and verifies; the broad host is untouched.
    let c = w
        .drive(&n, "tested", &["test"], |c| {
            matches!(c.state, ChangeState::Tested | ChangeState::Deploying)
        })
        .await;
    assert_eq!(c.rings[0].state, RingState::Verified);
    assert_eq!(w.test.version().as_deref(), Some("1.1"));
    assert_eq!(w.broad.version().as_deref(), Some("1.0"));
    let changes = &c.rings[0].hosts[0].changes;
    assert_eq!(changes[0].from.as_deref(), Some("1.0"));
    assert_eq!(changes[0].to.as_deref(), Some("1.1"));

    // Then the broad ring.
    let c = w
        .drive(&n, "verified", &["broad"], |c| {
            c.state == ChangeState::Verified
        })
        .await;
    assert!(c.rings.iter().all(|r| r.state == RingState::Verified));
    assert_eq!(w.broad.version().as_deref(), Some("1.1"));
    // Every finding closed, with the version that fixed it.
    w.test.once().await;
    w.broad.once().await;
    for h in [w.test.id, w.broad.id] {
        assert!(w.open_findings(h).await.is_empty());
        let closed = w
            .officer
            .findings(&FindingQuery {
                host: Some(h),
                state: Some(FindingStateFilter::Closed),
                ..FindingQuery::default()
            })
            .await
            .unwrap()
            .items;
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].fixed_version.as_deref(), Some("1.1"));
    }
    w.officer
        .change_action(&n, ChangeAction::Close)
        .await
        .unwrap();

    // 1.2: its postinst fails. The test ring fails, the rollout halts, the rollback restores
    // 1.1 from the agent's cache (the repository no longer offers 1.1), and the broad ring is
    // never touched.
    w.repo.publish(&["1.2"]);
    w.advisory("DEMO-2026-0002", "CVE-2026-90002", "1.2").await;
    w.test.once().await;
    w.broad.once().await;
    let n2 = w.authorised(ChangeKind::Normal, "CVE-2026-90002").await;
    w.officer
        .schedule_change(&n2, &ScheduleRequest::default())
        .await
        .unwrap();
    let c = w
        .drive(&n2, "failed", &["test"], |c| c.state == ChangeState::Failed)
        .await;
    assert_eq!(c.rings[0].state, RingState::Failed);
    assert_eq!(c.rings[1].state, RingState::Skipped);
    assert!(c.halted.is_some());
    let detail = c.rings[0].hosts[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("postinst") || detail.contains("post-installation"),
        "{detail}"
    );
    let c = w
        .drive(&n2, "rolled back", &["test"], |c| {
            c.state == ChangeState::RolledBack
        })
        .await;
    assert_eq!(
        c.rings[0].hosts[0].rollback_state,
        Some(patchwarden_api::v1::jobs::JobState::Succeeded)
    );
    assert_eq!(w.test.version().as_deref(), Some("1.1"));
    assert_eq!(
        w.test.root.package_status(PACKAGE).map(|s| s.1),
        Some("install ok installed".to_owned())
    );
    // Nothing reached the broad ring.
    w.broad.once().await;
    assert_eq!(w.broad.version().as_deref(), Some("1.1"));
    assert!(c.rings[1].hosts.iter().all(|h| h.job.is_none()));

    // The audit chain verifies over all of it.
    let auditor = w.server.operator("avery", &[Role::Auditor], &[]).await;
    let v = auditor.audit_verify().await.unwrap();
    assert!(v.intact, "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_change_in_freeze() {
    if !tools_ready("emergency_change_in_freeze") {
        return;
    }
    let mut w = world().await;
    let start = now();
    w.always_open().await;
    let freeze_end = start + SignedDuration::from_hours(72);
    w.officer
        .put_calendar_entry(
            "year-end",
            &CalendarSpec::Freeze(FreezeSpec {
                start: start - SignedDuration::from_hours(1),
                end: freeze_end,
                reason: "year-end close".into(),
            }),
        )
        .await
        .unwrap();
    // CISA's real KEV catalogue lists CVE-2021-44228; the vendor advisory for demo-lib names
    // it, so the seed policy classifies the finding Emergency, due 8 hours after the fix.
    let kev =
        std::fs::read(shared_data().join("kev/known_exploited_vulnerabilities.json")).unwrap();
    w.officer
        .import_feed(
            &ImportQuery {
                kind: Some(FeedKind::Kev),
                source: Some("cisa-kev".into()),
            },
            &kev,
        )
        .await
        .unwrap();
    w.advisory("DEMO-2026-0003", "CVE-2021-44228", "1.1").await;
    w.test.once().await;
    w.broad.once().await;
    let mut due = Vec::new();
    for h in [w.test.id, w.broad.id] {
        let open = w.open_findings(h).await;
        assert_eq!(open.len(), 1, "{open:#?}");
        assert_eq!(
            open[0].criticality,
            Some(Criticality::Emergency),
            "{open:#?}"
        );
        due.push(open[0].due_at.expect("an Emergency finding has a due date"));
    }

    // A normal change for the same hosts goes to the first window after the freeze.
    let normal = w.authorised(ChangeKind::Normal, "CVE-2021-44228").await;
    let c = w
        .officer
        .schedule_change(&normal, &ScheduleRequest::default())
        .await
        .unwrap();
    assert!(c.window_start.unwrap() >= freeze_end, "{c:#?}");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("fall due before the window")),
        "{:?}",
        c.warnings
    );

    // The emergency goes now, in the freeze, ring by ring.
    let emergency = w.authorised(ChangeKind::Emergency, "CVE-2021-44228").await;
    w.officer
        .schedule_change(&emergency, &ScheduleRequest::default())
        .await
        .unwrap();
    let c = w
        .drive(&emergency, "verified", &["test", "broad"], |c| {
            c.state == ChangeState::Verified
        })
        .await;
    assert!(c.rings.iter().all(|r| r.state == RingState::Verified));
    assert_eq!(w.test.version().as_deref(), Some("1.1"));
    assert_eq!(w.broad.version().as_deref(), Some("1.1"));
    w.test.once().await;
    w.broad.once().await;
    for (h, due) in [w.test.id, w.broad.id].into_iter().zip(due) {
        assert!(w.open_findings(h).await.is_empty());
        let closed = w
            .officer
            .findings(&FindingQuery {
                host: Some(h),
                state: Some(FindingStateFilter::Closed),
                ..FindingQuery::default()
            })
            .await
            .unwrap()
            .items;
        let closed_at = closed[0].closed_at.expect("closed");
        assert!(closed_at <= due, "patched at {closed_at}, due {due}");
    }
    // It stays open until its testing is recorded afterwards.
    let refused = w
        .officer
        .change_action(&emergency, ChangeAction::Close)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("testing"), "{refused}");
    w.officer
        .change_action(&emergency, ChangeAction::RecordTesting)
        .await
        .unwrap();
    let c = w
        .officer
        .change_action(&emergency, ChangeAction::Close)
        .await
        .unwrap();
    assert_eq!(c.state, ChangeState::Closed);
    // The normal change still waits for its window after the freeze.
    assert_eq!(w.change(&normal).await.state, ChangeState::Scheduled);
}
