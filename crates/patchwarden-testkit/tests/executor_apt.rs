//! The agent's executor with the real apt and dpkg on a sandbox root, fed by a real APT
//! repository over loopback HTTP (`patchwarden_testkit::apt`): an upgrade, a rollback from the
//! agent's cache after the repository dropped the old version, a failing postinst, refusals
//! that touch nothing, and a job resumed after a restart that installs once.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use patchwarden_agent::executor::journal::Phase;
use patchwarden_agent::executor::{Execution, Executor, ExecutorOptions};
use patchwarden_api::v1::jobs::{JobKind, JobOutcome, JobResult, PackageChange, PackagePin};
use patchwarden_api::v1::manifest::{
    Approval, ApprovalRole, MANIFEST_VERSION, Manifest, ManifestAction, ManifestKind,
    ManifestWindow,
};
use patchwarden_testkit::apt::{AptRepo, PACKAGE, SandboxRoot, tools_ready};

const HOST: &str = "host-1";

fn now() -> Timestamp {
    "2026-11-10T21:00:00Z".parse().unwrap()
}

fn pin(version: &str) -> PackagePin {
    PackagePin {
        name: PACKAGE.into(),
        version: version.into(),
        arch: None,
    }
}

fn manifest(action: ManifestAction, version: &str) -> Manifest {
    let now = now();
    Manifest {
        version: MANIFEST_VERSION,
        change: "PCR-2026-0042".into(),
        kind: ManifestKind::Normal,
        host: HOST.into(),
        action,
        packages: vec![pin(version)],
        window: Some(ManifestWindow {
            start: now - SignedDuration::from_hours(1),
            end: now + SignedDuration::from_hours(1),
        }),
        expires_at: now + SignedDuration::from_hours(2),
        issued_at: now - SignedDuration::from_hours(4),
        requester: "olive".into(),
        approvals: vec![
            Approval {
                role: ApprovalRole::Approver,
                by: "amos".into(),
                at: now - SignedDuration::from_hours(3),
            },
            Approval {
                role: ApprovalRole::Authoriser,
                by: "dora".into(),
                at: now - SignedDuration::from_hours(3),
            },
        ],
        restart: vec!["demo.service".into()],
        reboot_allowed: false,
        health_checks: Vec::new(),
    }
}

fn install(version: &str) -> JobKind {
    JobKind::Install {
        packages: vec![pin(version)],
        manifest: manifest(ManifestAction::Install, version),
    }
}

fn rollback(version: &str, of_job: &str) -> JobKind {
    JobKind::Rollback {
        packages: vec![pin(version)],
        of_job: of_job.into(),
        manifest: manifest(ManifestAction::Rollback, version),
    }
}

struct Fixture {
    tmp: tempfile::TempDir,
    repo: AptRepo,
    root: SandboxRoot,
    state: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let repo = AptRepo::build(&tmp.path().join("repo"));
        fs::create_dir_all(tmp.path().join("host")).unwrap();
        let root = SandboxRoot::new(&tmp.path().join("host"), &repo);
        let state = tmp.path().join("state");
        Fixture {
            tmp,
            repo,
            root,
            state,
        }
    }

    fn executor(&self) -> Executor {
        Executor::new(
            &self.state,
            &self.root.path,
            HOST,
            ExecutorOptions::default(),
        )
        .unwrap()
    }

    fn run(&self, id: &str, work: &JobKind) -> JobResult {
        match self.executor().execute(id, work, now()).unwrap() {
            Execution::Done(r) => r,
            Execution::Waiting(w) => panic!("job {id} still waiting: {w}"),
        }
    }

    fn cache(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.state.join("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn change(from: &str, to: &str) -> PackageChange {
    PackageChange {
        name: PACKAGE.into(),
        arch: Some("all".into()),
        from: Some(from.into()),
        to: Some(to.into()),
    }
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                pending.push(p.clone());
                out.insert(p, Vec::new());
            } else if meta.is_file() {
                out.insert(p.clone(), fs::read(&p).unwrap());
            } else {
                out.insert(p, Vec::new());
            }
        }
    }
    out
}

#[test]
fn an_upgrade_records_and_caches_the_previous_version_and_a_rollback_uses_the_cache() {
    if !tools_ready("an_upgrade_records_and_caches_the_previous_version") {
        return;
    }
    let f = Fixture::new();
    f.repo.publish(&["1.0", "1.1"]);

    let r = f.run("job-install", &install("1.1"));
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);
    assert_eq!(f.root.installed_version(PACKAGE).as_deref(), Some("1.1"));
    assert_eq!(r.changes, vec![change("1.0", "1.1")]);
    assert!(f.repo.requests() > 0, "apt did not use the HTTP repository");
    // The restart cannot apply to a sandbox: reported as skipped, not passed.
    assert_eq!(r.checks.len(), 1);
    assert!(!r.checks[0].passed && r.checks[0].detail.starts_with("skipped"));
    assert_eq!(f.cache(), ["demo-lib_1.0_all.deb"]);
    let journal = f
        .executor()
        .journals()
        .load("job-install")
        .unwrap()
        .unwrap();
    assert_eq!(journal.phase, Phase::Verified);
    assert_eq!(journal.runs, 1);

    // The repository moves on and drops 1.0, as real archives do.
    f.repo.publish(&["1.1"]);
    let r = f.run("job-rollback", &rollback("1.0", "job-install"));
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);
    assert!(r.detail.contains("from the agent's cache"), "{}", r.detail);
    assert_eq!(f.root.installed_version(PACKAGE).as_deref(), Some("1.0"));
    assert_eq!(r.changes, vec![change("1.1", "1.0")]);
    let (_, status) = f.root.package_status(PACKAGE).unwrap();
    assert_eq!(status, "install ok installed");
}

#[test]
fn a_failing_postinst_fails_the_job_with_dpkgs_words_and_a_rollback_restores_the_last_good_version()
{
    if !tools_ready("a_failing_postinst_fails_the_job") {
        return;
    }
    let f = Fixture::new();
    f.repo.publish(&["1.0", "1.1"]);
    let r = f.run("job-1", &install("1.1"));
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);

    f.repo.publish(&["1.1", "1.2"]);
    let r = f.run("job-2", &install("1.2"));
    assert_eq!(r.outcome, JobOutcome::Failed, "{}", r.detail);
    assert!(
        r.detail
            .contains("post-installation script subprocess returned error exit status 1"),
        "{}",
        r.detail
    );
    assert!(
        r.detail.contains("not installed and configured"),
        "{}",
        r.detail
    );
    assert_eq!(r.changes, vec![change("1.1", "1.2")]);
    let (version, status) = f.root.package_status(PACKAGE).unwrap();
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("1.2", "install ok half-configured")
    );
    assert!(f.cache().contains(&"demo-lib_1.1_all.deb".to_owned()));

    // 1.1 leaves the repository too; the agent's cache still has it.
    f.repo.publish(&["1.2"]);
    let r = f.run("job-3", &rollback("1.1", "job-2"));
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);
    let (version, status) = f.root.package_status(PACKAGE).unwrap();
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("1.1", "install ok installed")
    );
}

#[test]
fn refused_jobs_touch_nothing_on_the_root() {
    if !tools_ready("refused_jobs_touch_nothing_on_the_root") {
        return;
    }
    let f = Fixture::new();
    f.repo.publish(&["1.0", "1.1"]);
    let before = snapshot(&f.root.path);
    let served = f.repo.requests();

    let mut other_host = manifest(ManifestAction::Install, "1.1");
    other_host.host = "host-2".into();
    let mut expired = manifest(ManifestAction::Install, "1.1");
    expired.expires_at = now() - SignedDuration::from_secs(1);
    for (id, m, why) in [
        ("j-other", other_host, "not this host"),
        ("j-expired", expired, "expired"),
    ] {
        let work = JobKind::Install {
            packages: vec![pin("1.1")],
            manifest: m,
        };
        let r = f.run(id, &work);
        assert_eq!(r.outcome, JobOutcome::Refused, "{}", r.detail);
        assert!(r.detail.contains(why), "{}", r.detail);
    }
    let r = f.run("j-down", &install("0.9"));
    assert_eq!(r.outcome, JobOutcome::Refused, "{}", r.detail);
    assert!(r.detail.contains("rollback job"), "{}", r.detail);

    assert_eq!(
        snapshot(&f.root.path),
        before,
        "a refused job changed the root"
    );
    assert_eq!(
        f.repo.requests(),
        served,
        "a refused job fetched from the repository"
    );
    assert_eq!(f.root.installed_version(PACKAGE).as_deref(), Some("1.0"));
    let _ = &f.tmp;
}

#[test]
fn a_job_repeated_or_resumed_after_a_restart_installs_once() {
    if !tools_ready("a_job_repeated_or_resumed_after_a_restart_installs_once") {
        return;
    }
    let f = Fixture::new();
    f.repo.publish(&["1.0", "1.1"]);
    let unpacks = f.root.unpacks(PACKAGE);
    let first = f.run("job-a", &install("1.1"));
    assert_eq!(first.outcome, JobOutcome::Succeeded, "{}", first.detail);
    assert_eq!(f.root.unpacks(PACKAGE), unpacks + 1);

    // The same job again: the journal's result, nothing run.
    assert_eq!(f.run("job-a", &install("1.1")), first);

    // The agent died after starting the package manager, or after it finished, before the
    // result was recorded: the next run finds the target installed, verifies and reports.
    let journals = f.executor().journals().clone();
    for phase in [Phase::Installing, Phase::Installed] {
        let mut j = journals.load("job-a").unwrap().unwrap();
        j.phase = phase;
        j.result = None;
        journals.save(&mut j, now()).unwrap();
        let r = f.run("job-a", &install("1.1"));
        assert_eq!(r.outcome, JobOutcome::Succeeded, "{phase:?}: {}", r.detail);
        assert_eq!(r.changes, vec![change("1.0", "1.1")], "{phase:?}");
        assert!(r.detail.contains("already installed"), "{}", r.detail);
        assert_eq!(
            f.root.unpacks(PACKAGE),
            unpacks + 1,
            "{phase:?}: installed twice"
        );
        assert_eq!(journals.load("job-a").unwrap().unwrap().runs, 1);
    }

    // A reported job is never run again.
    f.executor().mark_reported("job-a", now()).unwrap();
    assert_eq!(
        journals.load("job-a").unwrap().unwrap().phase,
        Phase::Reported
    );
    let r = f.run("job-a", &install("1.1"));
    assert_eq!(r.outcome, JobOutcome::Succeeded);
    assert_eq!(f.root.unpacks(PACKAGE), unpacks + 1);
}

/// The whole agent: `once` leases an install job from a real server, the executor installs
/// it with apt, the result is reported and the new inventory uploaded; the next check-in does
/// not run it again.
#[tokio::test]
async fn agent_once_executes_a_leased_install_job_and_uploads_the_new_versions() {
    use patchwarden_agent::agent::{Agent, EnrollOptions, StateDir, enroll};
    use patchwarden_core::audit::Actor;
    use patchwarden_server::admin;
    use patchwarden_testkit::TestServer;

    if !tools_ready("agent_once_executes_a_leased_install_job") {
        return;
    }
    let server = TestServer::start().await;
    let f = Fixture::new();
    f.repo.publish(&["1.0", "1.1"]);
    let state = StateDir::open(&f.state).unwrap();
    let (_, secret) = server.token("web", 1, SignedDuration::from_hours(1)).await;
    let (identity, _) = enroll(
        &state,
        EnrollOptions {
            server: server.url.clone(),
            token: secret,
            ca_fingerprint: Some(server.fingerprint),
            replace: false,
            root: f.root.path.clone(),
        },
    )
    .await
    .unwrap();
    let host = uuid::Uuid::parse_str(&identity.host_id).unwrap();

    let clock = patchwarden_testkit::now;
    let mut m = manifest(ManifestAction::Install, "1.1");
    m.host = identity.host_id.clone();
    let t = clock();
    m.window = Some(ManifestWindow {
        start: t - SignedDuration::from_hours(1),
        end: t + SignedDuration::from_hours(1),
    });
    m.expires_at = t + SignedDuration::from_hours(2);
    let kind = JobKind::Install {
        packages: vec![pin("1.1")],
        manifest: m,
    };
    let job = admin::queue_job(
        server.store().as_ref(),
        host,
        &kind,
        Actor::Operator("alice".into()),
        clock(),
    )
    .await
    .unwrap();

    let mut agent = Agent::load(state, f.root.path.clone())
        .unwrap()
        .with_executor(ExecutorOptions::default(), clock);
    let report = agent.once().await.unwrap();
    assert_eq!(
        report.jobs,
        vec![(job.id.to_string(), JobOutcome::Succeeded)]
    );
    assert_eq!(report.uploaded, Some("full"));
    assert_eq!(f.root.installed_version(PACKAGE).as_deref(), Some("1.1"));
    let held = server.store().get_inventory(host).await.unwrap().unwrap();
    let demo = held
        .inventory
        .packages
        .iter()
        .find(|p| p.name == PACKAGE)
        .unwrap();
    assert_eq!(
        demo.version, "1.1",
        "the server has the new version at once"
    );
    let stored = server.store().get_job(job.id).await.unwrap().unwrap();
    assert_eq!(stored.state, patchwarden_store::JobState::Succeeded);
    // The server records the outcome, the detail and the package changes.
    let result: patchwarden_api::v1::jobs::RecordedResult =
        serde_json::from_value(stored.result.unwrap()).unwrap();
    assert_eq!(result.outcome, JobOutcome::Succeeded);
    assert!(
        result.detail.contains("verified with apt"),
        "{}",
        result.detail
    );
    assert_eq!(result.changes[0].from.as_deref(), Some("1.0"));
    assert_eq!(result.changes[0].to.as_deref(), Some("1.1"));

    let unpacks = f.root.unpacks(PACKAGE);
    let again = agent.once().await.unwrap();
    assert!(again.jobs.is_empty(), "{again:?}");
    assert_eq!(f.root.unpacks(PACKAGE), unpacks);
}

#[test]
fn a_job_cut_short_after_dpkg_unpacked_is_finished_by_configuring_not_reinstalling() {
    if !tools_ready("a_job_cut_short_after_dpkg_unpacked") {
        return;
    }
    let f = Fixture::new();
    f.repo.publish(&["1.0", "1.1"]);
    // The first run recorded the previous version and started apt, which died after dpkg
    // unpacked 1.1 and before it configured it.
    let journals = f.executor().journals().clone();
    let mut j = patchwarden_agent::executor::journal::Journal {
        job: "job-cut".into(),
        kind: "install".into(),
        phase: Phase::Installing,
        targets: vec![pin("1.1")],
        changes: vec![change("1.0", "1.1")],
        cached: Vec::new(),
        runs: 1,
        boot_id: None,
        result: None,
        updated_at: now(),
    };
    journals.save(&mut j, now()).unwrap();
    // apt's lists, as the first run's `apt-get update` left them.
    let conf = f.tmp.path().join("apt.conf");
    fs::write(
        &conf,
        patchwarden_agent::executor::manager::apt_config_text(&f.root.path).unwrap(),
    )
    .unwrap();
    patchwarden_testkit::apt::run(
        std::process::Command::new("apt-get")
            .env("APT_CONFIG", &conf)
            .args(["-q", "update"]),
    );
    patchwarden_testkit::apt::run(
        std::process::Command::new("dpkg")
            .arg(format!("--root={}", f.root.path.display()))
            .arg(format!(
                "--log={}",
                f.root.path.join("var/log/dpkg.log").display()
            ))
            .arg("--unpack")
            .arg(f.repo.deb("1.1")),
    );
    let (version, status) = f.root.package_status(PACKAGE).unwrap();
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("1.1", "install ok unpacked")
    );
    let unpacks = f.root.unpacks(PACKAGE);

    let r = f.run("job-cut", &install("1.1"));
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);
    assert!(r.detail.contains("--configure -a"), "{}", r.detail);
    let (version, status) = f.root.package_status(PACKAGE).unwrap();
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("1.1", "install ok installed")
    );
    assert_eq!(
        f.root.unpacks(PACKAGE),
        unpacks,
        "unpacked a second time:\n{}\n{}",
        r.detail,
        fs::read_to_string(f.root.path.join("var/log/dpkg.log")).unwrap()
    );
    assert_eq!(r.changes, vec![change("1.0", "1.1")]);
}

#[test]
fn a_reboot_the_job_may_not_do_is_reported_as_required() {
    if !tools_ready("a_reboot_the_job_may_not_do_is_reported_as_required") {
        return;
    }
    let f = Fixture::new();
    f.repo.publish(&["1.0", "1.1"]);
    // What a kernel or libc package's postinst leaves on Debian.
    fs::write(
        f.root.path.join("run/reboot-required"),
        "*** System restart required ***\n",
    )
    .unwrap();
    fs::write(f.root.path.join("run/reboot-required.pkgs"), "demo-lib\n").unwrap();
    let mut work = install("1.1");
    if let JobKind::Install { manifest, .. } = &mut work {
        // The manifest allows it, but this agent was not started with --allow-reboot.
        manifest.reboot_allowed = true;
    }
    let r = f.run("job-reboot", &work);
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);
    assert!(r.reboot_required);
    assert!(r.detail.contains("may not reboot"), "{}", r.detail);
}
