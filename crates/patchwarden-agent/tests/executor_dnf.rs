//! The executor with the real dnf on an rpm sandbox root (`--installroot`, the root's own
//! configuration and repositories): an upgrade that keeps the previous rpm in the agent's
//! cache, and a rollback from that cache after the repository dropped the old version.

#[path = "support/debrepo.rs"]
mod debrepo;
#[path = "support/rpmrepo.rs"]
mod rpmrepo;

use std::fs;
use std::path::Path;
use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use patchwarden_agent::executor::{Execution, Executor, ExecutorOptions};
use patchwarden_api::v1::jobs::{JobKind, JobOutcome, JobResult, PackageChange, PackagePin};
use patchwarden_api::v1::manifest::{
    Approval, ApprovalRole, MANIFEST_VERSION, Manifest, ManifestAction, ManifestKind,
};
use rpmrepo::Rpm;

const HOST: &str = "rpm-host";

fn now() -> Timestamp {
    "2026-11-10T21:00:00Z".parse().unwrap()
}

fn pin(version: &str) -> PackagePin {
    PackagePin {
        name: "demo".into(),
        version: version.into(),
        arch: None,
    }
}

fn manifest(action: ManifestAction, version: &str) -> Manifest {
    let now = now();
    Manifest {
        version: MANIFEST_VERSION,
        change: "PCR-2026-0007".into(),
        kind: ManifestKind::Emergency,
        host: HOST.into(),
        action,
        packages: vec![pin(version)],
        window: None,
        expires_at: now + SignedDuration::from_hours(1),
        issued_at: now - SignedDuration::from_hours(1),
        requester: "olive".into(),
        approvals: vec![
            Approval {
                role: ApprovalRole::Approver,
                by: "amos".into(),
                at: now,
            },
            Approval {
                role: ApprovalRole::Authoriser,
                by: "dora".into(),
                at: now,
            },
        ],
        restart: Vec::new(),
        reboot_allowed: false,
        health_checks: Vec::new(),
    }
}

fn installed(root: &Path) -> String {
    let out = Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args(["-q", "--qf", "%{VERSION}-%{RELEASE}", "demo"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(exec: &Executor, id: &str, work: &JobKind) -> JobResult {
    match exec.execute(id, work, now()).unwrap() {
        Execution::Done(r) => r,
        Execution::Waiting(w) => panic!("waiting: {w}"),
    }
}

fn publish(work: &Path, repo: &Path, rpms: &[&Path]) {
    let _ = fs::remove_dir_all(repo);
    fs::create_dir_all(repo).unwrap();
    for rpm in rpms {
        fs::copy(rpm, repo.join(rpm.file_name().unwrap())).unwrap();
    }
    debrepo::run(Command::new("createrepo_c").arg("-q").arg(repo));
    let _ = work;
}

#[test]
fn dnf_upgrades_keeps_the_previous_rpm_and_rolls_back_from_the_cache() {
    if !debrepo::tools_present("dnf_upgrades_keeps_the_previous_rpm", rpmrepo::TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let built = tmp.path().join("built");
    let v10 = Rpm::new("demo", "1.0", "1").build(&work, &built);
    let v11 = Rpm::new("demo", "1.1", "1").build(&work, &built);
    let repo = tmp.path().join("repo");
    publish(&work, &repo, &[&v10, &v11]);

    let root = tmp.path().join("root");
    rpmrepo::install(&root, std::slice::from_ref(&v10));
    // Debian's rpm (and so the dnf here) keeps the database in `~/.rpmdb`; the distributions
    // dnf runs on, where the inventory looks, in `/var/lib/rpm`: one database, both names.
    fs::create_dir_all(root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink("/root/.rpmdb", root.join("var/lib/rpm")).unwrap();
    fs::create_dir_all(root.join("etc/yum.repos.d")).unwrap();
    fs::write(
        root.join("etc/yum.repos.d/test.repo"),
        format!(
            "[testrepo]\nname=Test repository\nbaseurl=file://{}\ngpgcheck=0\n",
            repo.display()
        ),
    )
    .unwrap();
    fs::write(
        root.join("etc/os-release"),
        "ID=almalinux\nVERSION_ID=9\nPRETTY_NAME=\"AlmaLinux 9\"\n",
    )
    .unwrap();
    assert_eq!(installed(&root), "1.0-1");

    let state = tmp.path().join("state");
    let exec = Executor::new(&state, &root, HOST, ExecutorOptions::default()).unwrap();
    let work_install = JobKind::Install {
        packages: vec![pin("1.1-1")],
        manifest: manifest(ManifestAction::Install, "1.1-1"),
    };
    let r = run(&exec, "dnf-1", &work_install);
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);
    assert!(r.detail.contains("verified with dnf"), "{}", r.detail);
    assert_eq!(installed(&root), "1.1-1");
    assert_eq!(
        r.changes,
        vec![PackageChange {
            name: "demo".into(),
            arch: Some("noarch".into()),
            from: Some("1.0-1".into()),
            to: Some("1.1-1".into()),
        }]
    );
    assert!(
        state.join("cache/demo-1.0-1.noarch.rpm").is_file(),
        "{}",
        r.detail
    );

    // The repository drops 1.0; the rollback installs it from the cache.
    publish(&work, &repo, &[&v11]);
    let work_rollback = JobKind::Rollback {
        packages: vec![pin("1.0-1")],
        of_job: "dnf-1".into(),
        manifest: manifest(ManifestAction::Rollback, "1.0-1"),
    };
    let r = run(&exec, "dnf-2", &work_rollback);
    assert_eq!(r.outcome, JobOutcome::Succeeded, "{}", r.detail);
    assert!(r.detail.contains("from the agent's cache"), "{}", r.detail);
    assert_eq!(installed(&root), "1.0-1");
}
