use std::collections::BTreeMap;

use patchwarden_api::v1::manifest::{
    Approval, ApprovalRole, MANIFEST_VERSION, ManifestKind, ManifestWindow,
};

use super::*;

/// The tests' clock: manifests are made valid around it.
fn now() -> Timestamp {
    "2026-11-10T21:00:00Z".parse().unwrap()
}

const STATUS: &str = "Package: demo-lib\nStatus: install ok installed\nVersion: 1.1\n\
Architecture: all\nMaintainer: t <t@example.invalid>\nDescription: demo\n";

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                pending.push(p.clone());
                out.insert(p, Vec::new());
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn pin(name: &str, version: &str) -> PackagePin {
    PackagePin {
        name: name.into(),
        version: version.into(),
        arch: None,
    }
}

fn manifest(action: ManifestAction, packages: Vec<PackagePin>) -> Manifest {
    let now = now();
    Manifest {
        version: MANIFEST_VERSION,
        change: "PCR-2026-0001".into(),
        kind: ManifestKind::Normal,
        host: "h1".into(),
        action,
        packages,
        window: Some(ManifestWindow {
            start: now - SignedDuration::from_hours(1),
            end: now + SignedDuration::from_hours(1),
        }),
        expires_at: now + SignedDuration::from_hours(2),
        issued_at: now - SignedDuration::from_hours(3),
        requester: "olive".into(),
        approvals: vec![
            Approval {
                role: ApprovalRole::Approver,
                by: "amos".into(),
                at: now - SignedDuration::from_hours(2),
            },
            Approval {
                role: ApprovalRole::Authoriser,
                by: "dora".into(),
                at: now - SignedDuration::from_hours(2),
            },
        ],
        restart: Vec::new(),
        reboot_allowed: false,
        health_checks: Vec::new(),
    }
}

fn install(packages: Vec<PackagePin>) -> JobKind {
    JobKind::Install {
        manifest: manifest(ManifestAction::Install, packages.clone()),
        packages,
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::create_dir_all(root.join("etc/apt")).unwrap();
    fs::write(root.join("var/lib/dpkg/status"), STATUS).unwrap();
    let state = tmp.path().join("state");
    Fixture {
        _tmp: tmp,
        root,
        state,
    }
}

fn executor(f: &Fixture, options: ExecutorOptions) -> Executor {
    Executor::new(&f.state, &f.root, "h1", options).unwrap()
}

fn refused(f: &Fixture, work: &JobKind, why: &str) {
    let before = snapshot(&f.root);
    let exec = executor(f, ExecutorOptions::default());
    let Execution::Done(r) = exec.execute("j1", work, now()).unwrap() else {
        panic!("no result");
    };
    assert_eq!(r.outcome, JobOutcome::Refused, "{why}: {}", r.detail);
    assert!(r.detail.contains(why), "{why}: {}", r.detail);
    assert!(r.detail.contains("nothing was changed"), "{}", r.detail);
    assert_eq!(snapshot(&f.root), before, "{why}: the root changed");
    // The refusal is journaled: the same job gets the same answer without a second look.
    let again = exec.execute("j1", work, now()).unwrap();
    assert_eq!(again, Execution::Done(r));
    fs::remove_dir_all(&f.state).unwrap();
}

#[test]
fn manifest_refusals_and_downgrades_leave_the_root_untouched() {
    let f = fixture();
    let pins = vec![pin("demo-lib", "1.2")];

    let mut other = manifest(ManifestAction::Install, pins.clone());
    other.host = "h2".into();
    let work = JobKind::Install {
        packages: pins.clone(),
        manifest: other,
    };
    refused(&f, &work, "not this host");

    let mut expired = manifest(ManifestAction::Install, pins.clone());
    expired.expires_at = now() - SignedDuration::from_secs(1);
    let work = JobKind::Install {
        packages: pins.clone(),
        manifest: expired,
    };
    refused(&f, &work, "expired");

    let mut unsigned = manifest(ManifestAction::Install, pins.clone());
    unsigned.approvals.truncate(1);
    let work = JobKind::Install {
        packages: pins.clone(),
        manifest: unsigned,
    };
    refused(&f, &work, "lacks an approval");

    let work = JobKind::Install {
        packages: vec![pin("demo-lib", "1.3")],
        manifest: manifest(ManifestAction::Install, pins.clone()),
    };
    refused(&f, &work, "differ");

    refused(&f, &install(vec![pin("demo-lib", "1.0")]), "rollback job");
    refused(
        &f,
        &install(vec![pin("demo-lib", "1.x:y")]),
        "cannot be ordered",
    );
    refused(&f, &install(vec![pin("other", "1.0")]), "not installed");
    refused(&f, &install(vec![pin("demo-lib", "-oAPT::x=1")]), "plain");

    // A rollback job with an install manifest is refused too.
    let work = JobKind::Rollback {
        packages: pins.clone(),
        of_job: "j0".into(),
        manifest: manifest(ManifestAction::Install, pins),
    };
    refused(&f, &work, "manifest says Install");
}

#[test]
fn a_reboot_needs_the_agents_own_permission_and_is_confirmed_by_a_new_boot_id() {
    let f = fixture();
    refused(&f, &JobKind::Reboot, "--allow-reboot");

    // The journal of a reboot in flight: done when the boot id changed, waiting otherwise.
    let boot = f.state.parent().unwrap().join("boot_id");
    fs::write(&boot, "aaaa\n").unwrap();
    let exec = executor(
        &f,
        ExecutorOptions {
            allow_reboot: true,
            boot_id_file: boot.clone(),
            ..ExecutorOptions::default()
        },
    );
    let mut j = exec.new_journal("r1", "reboot", &[], now());
    j.phase = Phase::Rebooting;
    j.boot_id = Some("aaaa".into());
    exec.journals.save(&mut j, now()).unwrap();
    let now = now();
    assert!(matches!(
        exec.execute("r1", &JobKind::Reboot, now).unwrap(),
        Execution::Waiting(_)
    ));
    fs::write(&boot, "bbbb\n").unwrap();
    let Execution::Done(r) = exec.execute("r1", &JobKind::Reboot, now).unwrap() else {
        panic!("not done");
    };
    assert_eq!(r.outcome, JobOutcome::Succeeded);
    assert!(r.detail.contains("aaaa → bbbb"), "{}", r.detail);
    exec.mark_reported("r1", now).unwrap();
    assert_eq!(
        exec.journals.load("r1").unwrap().unwrap().phase,
        Phase::Reported
    );
}

#[test]
fn cached_files_are_found_by_apt_and_rpm_names() {
    let tmp = tempfile::tempdir().unwrap();
    for f in [
        "demo-lib_1.0_all.deb",
        "demo-lib_1.0.1_all.deb",
        "libc6_2%3a2.36-9_amd64.deb",
        "openssl-3.0.7-27.el9.x86_64.rpm",
    ] {
        fs::write(tmp.path().join(f), "").unwrap();
    }
    let found = |p: PackagePin| {
        cached_file(tmp.path(), &p).map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
    };
    assert_eq!(
        found(pin("demo-lib", "1.0")).as_deref(),
        Some("demo-lib_1.0_all.deb")
    );
    assert_eq!(
        found(pin("libc6", "2:2.36-9")).as_deref(),
        Some("libc6_2%3a2.36-9_amd64.deb")
    );
    assert_eq!(
        found(pin("openssl", "1:3.0.7-27.el9")).as_deref(),
        Some("openssl-3.0.7-27.el9.x86_64.rpm")
    );
    assert_eq!(found(pin("demo-lib", "1.1")), None);
}
