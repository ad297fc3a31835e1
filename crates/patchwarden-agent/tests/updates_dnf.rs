//! Available updates from dnf, proven on real packages: the tests build `.rpm` files with
//! `rpmbuild`, a local repository with `createrepo_c` and an `updateinfo.xml`, and a
//! sandbox root with older versions installed by `rpm --root`; then they check the report
//! against the `Upgrading:` table of the real `dnf upgrade --assumeno` on the same root —
//! a different dnf command and output from the `repoquery` the implementation reads.

#[path = "support/debrepo.rs"]
mod debrepo;
#[path = "support/rpmrepo.rs"]
mod rpmrepo;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use expect_test::expect;
use patchwarden_agent::inventory::updates::dnf::{parse_repoquery, parse_updateinfo_list};
use patchwarden_agent::inventory::updates::{Dnf, UpdateReport, UpdatesError};
use patchwarden_core::inventory::UpdateKind;
use rpmrepo::{Advisory, Rpm};

fn render(report: &UpdateReport) -> String {
    let mut out = String::new();
    let line = |u: &patchwarden_core::inventory::AvailableUpdate| {
        format!(
            "{} {} -> {} {} {:?} {} [{}]",
            u.name,
            u.installed,
            u.candidate,
            u.origin.as_deref().unwrap_or("-"),
            u.kind,
            u.severity.as_deref().unwrap_or("-"),
            u.advisories.join(" ")
        )
    };
    for u in &report.updates {
        out.push_str(&format!("update   {}\n", line(u)));
    }
    for w in &report.withheld {
        out.push_str(&format!("withheld {} {:?}\n", line(&w.update), w.reason));
    }
    out
}

fn dnf_oracle(root: &Path) -> Vec<(String, String, String, String)> {
    let out = Command::new("dnf")
        .arg(format!("--installroot={}", root.display()))
        .arg(format!(
            "--config={}",
            root.join("etc/dnf/dnf.conf").display()
        ))
        .arg(format!(
            "--setopt=reposdir={}",
            root.join("etc/yum.repos.d").display()
        ))
        .args(["--releasever=9", "-C", "--assumeno", "upgrade"])
        .env("LC_ALL", "C")
        .output()
        .expect("run dnf upgrade --assumeno");
    // `--assumeno` ends with "Operation aborted." and exit status 1: the table is the answer.
    rpmrepo::parse_transaction(&String::from_utf8_lossy(&out.stdout))
}

/// Names, sizes and modification times of the machine's own dnf cache, state and logs.
fn host_dnf_state() -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["/var/cache/dnf", "/var/lib/dnf"]
        .iter()
        .map(PathBuf::from)
        .collect();
    for log in ["dnf.log", "dnf.librepo.log", "dnf.rpm.log", "hawkey.log"] {
        let path = Path::new("/var/log").join(log);
        if let Ok(meta) = path.metadata() {
            out.push((path, meta.len(), meta.modified().ok()));
        }
    }
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    out
}

#[test]
fn dnf_updates_match_dnf_upgrade_transaction() {
    if !debrepo::tools_present("dnf_updates_match_dnf_upgrade_transaction", rpmrepo::TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    let repo = tmp.path().join("repo");
    let root = tmp.path().join("root");

    let new = [
        Rpm::new("secpkg", "1.0", "2"),
        Rpm::new("bugpkg", "2.0", "2"),
        Rpm::new("enhpkg", "3.1", "1"),
        Rpm::new("cumulative", "1.0", "3"),
        Rpm::new("epochpkg", "1.1", "1").epoch(2),
        Rpm::new("tilde", "1.0", "1"),
        Rpm::new("plain", "4.0", "2"),
        Rpm::new("excluded", "5.0", "2"),
        Rpm::new("same", "1.0", "1"),
    ];
    let advisories = [
        Advisory {
            id: "TEST-SA-2024:0001".into(),
            kind: "security".into(),
            severity: Some("Important".into()),
            packages: vec![Rpm::new("secpkg", "1.0", "2")],
        },
        Advisory {
            id: "TEST-BA-2024:0002".into(),
            kind: "bugfix".into(),
            severity: None,
            packages: vec![Rpm::new("bugpkg", "2.0", "2")],
        },
        Advisory {
            id: "TEST-EA-2024:0003".into(),
            kind: "enhancement".into(),
            severity: None,
            packages: vec![Rpm::new("enhpkg", "3.1", "1")],
        },
        // An intermediate security fix (1.0-2) and a later bug fix (1.0-3): installing the
        // candidate installs both.
        Advisory {
            id: "TEST-SA-2024:0004".into(),
            kind: "security".into(),
            severity: None,
            packages: vec![Rpm::new("cumulative", "1.0", "2")],
        },
        Advisory {
            id: "TEST-BA-2024:0005".into(),
            kind: "bugfix".into(),
            severity: None,
            packages: vec![Rpm::new("cumulative", "1.0", "3")],
        },
        Advisory {
            id: "TEST-SA-2024:0006".into(),
            kind: "security".into(),
            severity: Some("Critical".into()),
            packages: vec![Rpm::new("epochpkg", "1.1", "1").epoch(2)],
        },
        // An advisory for a version older than what is installed does not apply.
        Advisory {
            id: "TEST-SA-2023:0099".into(),
            kind: "security".into(),
            severity: Some("Low".into()),
            packages: vec![Rpm::new("plain", "3.0", "1")],
        },
    ];
    rpmrepo::build_repo(&work, &repo, &new, &advisories);

    let old_dir = work.join("old");
    let old: Vec<PathBuf> = [
        Rpm::new("secpkg", "1.0", "1"),
        Rpm::new("bugpkg", "2.0", "1"),
        Rpm::new("enhpkg", "3.0", "1"),
        Rpm::new("cumulative", "1.0", "1"),
        Rpm::new("epochpkg", "1.0", "1").epoch(2),
        Rpm::new("tilde", "1.0~rc1", "1"),
        Rpm::new("plain", "4.0", "1"),
        Rpm::new("excluded", "5.0", "1"),
        Rpm::new("same", "1.0", "1"),
    ]
    .iter()
    .map(|p| p.build(&work, &old_dir))
    .collect();
    rpmrepo::install(&root, &old);
    std::fs::create_dir_all(root.join("etc/yum.repos.d")).expect("repos dir");
    std::fs::create_dir_all(root.join("etc/dnf")).expect("dnf dir");
    std::fs::write(
        root.join("etc/yum.repos.d/test.repo"),
        format!(
            "[testrepo]\nname=Test repository\nbaseurl=file://{}\ngpgcheck=0\n",
            repo.display()
        ),
    )
    .expect("repo file");
    std::fs::write(
        root.join("etc/dnf/dnf.conf"),
        "[main]\nexcludepkgs=excluded\n",
    )
    .expect("dnf.conf");

    let before = host_dnf_state();
    let mut dnf = Dnf::new(&root);
    dnf.releasever = Some("9".into());
    dnf.refresh().expect("makecache");
    let report = dnf.report().expect("dnf updates");
    assert_eq!(
        before,
        host_dnf_state(),
        "the machine's own dnf cache, state or logs changed while we looked at a sandbox root"
    );
    expect![[r#"
        update   bugpkg 2.0-1 -> 2.0-2 testrepo Bugfix - [TEST-BA-2024:0002]
        update   cumulative 1.0-1 -> 1.0-3 testrepo Security - [TEST-BA-2024:0005 TEST-SA-2024:0004]
        update   enhpkg 3.0-1 -> 3.1-1 testrepo Enhancement - [TEST-EA-2024:0003]
        update   epochpkg 2:1.0-1 -> 2:1.1-1 testrepo Security Critical [TEST-SA-2024:0006]
        update   plain 4.0-1 -> 4.0-2 testrepo Unknown - []
        update   secpkg 1.0-1 -> 1.0-2 testrepo Security Important [TEST-SA-2024:0001]
        update   tilde 1.0~rc1-1 -> 1.0-1 testrepo Unknown - []
        withheld excluded 5.0-1 -> 5.0-2 testrepo Unknown - [] Excluded
    "#]]
    .assert_eq(&render(&report));

    let oracle: BTreeSet<(String, String, String)> = dnf_oracle(&root)
        .into_iter()
        .map(|(name, _, version, repo)| (name, version, repo))
        .collect();
    let ours: BTreeSet<(String, String, String)> = report
        .updates
        .iter()
        .map(|u| {
            (
                u.name.clone(),
                u.candidate.clone(),
                u.origin.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ours, oracle, "report differs from `dnf upgrade --assumeno`");
    assert!(
        report
            .updates
            .iter()
            .any(|u| u.kind == UpdateKind::Security)
    );
}

#[test]
fn dnf_root_without_rpm_database_is_a_typed_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    match Dnf::new(tmp.path()).report() {
        Err(UpdatesError::NoState { manager, .. }) => assert_eq!(manager, "dnf"),
        other => panic!("expected NoState, got {other:?}"),
    }
}

#[test]
fn dnf_missing_binary_is_a_typed_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("var/lib/rpm")).expect("rpmdb dir");
    let mut dnf = Dnf::new(tmp.path());
    dnf.search_path = Some(tmp.path().join("empty-bin").into_os_string());
    match dnf.report() {
        Err(UpdatesError::ToolMissing { tool, .. }) => assert_eq!(tool, "dnf"),
        other => panic!("expected ToolMissing, got {other:?}"),
    }
}

/// The real output of dnf 4.14 on the scenario above, and broken variants of it.
#[test]
fn dnf_output_parsers() {
    let list = "TEST-BA-2024:0002 bugfix         bugpkg-2.0-2.noarch\n\
                TEST-EA-2024:0003 enhancement    enhpkg-3.1-1.noarch\n\
                TEST-SA-2024:0006 Critical/Sec.  ep-2:1.1-1.noarch\n\
                TEST-SA-2024:0004 Unknown/Sec.   nosev-1.0-2.noarch\n\
                RHSA-2024:1234 Important/Sec. kernel-rt-debug-modules-5.14.0-427.13.1.el9_4.x86_64\n";
    let parsed = parse_updateinfo_list(list).expect("parse");
    let summary: Vec<String> = parsed
        .iter()
        .map(|a| {
            format!(
                "{} {:?} {:?} {} {} {}",
                a.id, a.kind, a.severity, a.package.name, a.package.epoch, a.package.arch
            )
        })
        .collect();
    expect![[r#"
        TEST-BA-2024:0002 Bugfix None bugpkg 0 noarch
        TEST-EA-2024:0003 Enhancement None enhpkg 0 noarch
        TEST-SA-2024:0006 Security Some("Critical") ep 2 noarch
        TEST-SA-2024:0004 Security None nosev 0 noarch
        RHSA-2024:1234 Security Some("Important") kernel-rt-debug-modules 0 x86_64"#]]
    .assert_eq(&summary.join("\n"));
    for bad in [
        "ONLY-TWO bugfix\n",
        "X-1 weird pkg-1-1.noarch\n",
        "X-1 bugfix pkgwithoutversion\n",
        "X-1 bugfix pkg-x:1-1.noarch\n",
        "X-1 /Sec. pkg-1-1.noarch\n",
    ] {
        assert!(
            matches!(
                parse_updateinfo_list(bad),
                Err(UpdatesError::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse_repoquery("bash\tx86_64\t0\t5.1.8\t9.el9\t@System\n")
            .expect("parse")
            .first()
            .map(|n| n.evr()),
        Some("5.1.8-9.el9".into())
    );
    for bad in [
        "bash\tx86_64\t0\t5.1.8\n",
        "bash\tx86_64\tE\t5.1.8\t9\trepo\n",
        "\tx86_64\t0\t5\t9\trepo\n",
    ] {
        assert!(
            matches!(parse_repoquery(bad), Err(UpdatesError::Malformed { .. })),
            "{bad:?}"
        );
    }
}
