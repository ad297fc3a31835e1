//! The parsers behind the apt report, on real recorded output (`apt-cache policy` of a
//! Debian 12 host, `dpkg-query` over the shared data's real dpkg status) and on broken
//! variants of it: every malformed line is a typed error that names the line.

#[path = "support/debrepo.rs"]
mod debrepo;

use std::path::{Path, PathBuf};
use std::process::Command;

use patchwarden_agent::inventory::updates::UpdatesError;
use patchwarden_agent::inventory::updates::apt::policy::{
    self, DPKG_QUERY_FORMAT, ReleaseInfo, parse_package_files, parse_package_policies,
};
use patchwarden_agent::inventory::updates::apt::{classify, origin_name};
use patchwarden_core::inventory::UpdateKind;

/// `shared/data`: `$PATCHWARDEN_SHARED_DATA`, or `../shared/data` beside the checkout.
fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("debian").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

fn recorded(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/updates_data/apt")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn debian12_package_files_and_their_kinds() {
    let files = parse_package_files(&recorded("debian12-policy.txt")).expect("parse");
    let lines: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "{} {} => {} {:?}",
                f.priority,
                f.description,
                origin_name(&f.release).unwrap_or_else(|| "-".into()),
                classify([&f.release])
            )
        })
        .collect();
    expect_test::expect![[r#"
        100 /var/lib/dpkg/status => - Unknown
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages => Debian:bookworm-security Security
        500 http://deb.debian.org/debian bookworm-updates/main amd64 Packages => Debian:bookworm-updates Bugfix
        500 http://deb.debian.org/debian bookworm/main amd64 Packages => Debian:bookworm Bugfix"#]]
    .assert_eq(&lines.join("\n"));
    let security = files.get(1).expect("security file");
    assert_eq!(security.release.label.as_deref(), Some("Debian-Security"));
    assert_eq!(
        security.release.archive.as_deref(),
        Some("oldstable-security")
    );
    assert_eq!(security.release.site.as_deref(), Some("deb.debian.org"));
}

#[test]
fn ubuntu_pockets_keep_their_suite() {
    let r = |a: &str| ReleaseInfo {
        origin: Some("Ubuntu".into()),
        label: Some("Ubuntu".into()),
        archive: Some(a.into()),
        codename: Some("jammy".into()),
        version: Some("22.04".into()),
        ..ReleaseInfo::default()
    };
    let cases: Vec<(Option<String>, UpdateKind)> = [
        "jammy-security",
        "jammy-updates",
        "jammy",
        "jammy-backports",
    ]
    .iter()
    .map(|a| (origin_name(&r(a)), classify([&r(a)])))
    .collect();
    assert_eq!(
        cases,
        vec![
            (Some("Ubuntu:jammy-security".into()), UpdateKind::Security),
            (Some("Ubuntu:jammy-updates".into()), UpdateKind::Bugfix),
            // Ubuntu's release pocket is frozen at release, and its `22.04` is a release
            // number, not a point release: nothing says what a newer version there is for.
            (Some("Ubuntu:jammy".into()), UpdateKind::Unknown),
            (Some("Ubuntu:jammy-backports".into()), UpdateKind::Unknown),
        ]
    );
}

#[test]
fn debian12_package_policies() {
    let pkgs = parse_package_policies(&recorded("debian12-policy-packages.txt")).expect("parse");
    let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["libc6", "openssl", "dnf", "bash"]);
    let openssl = pkgs.get(1).expect("openssl");
    assert_eq!(openssl.installed.as_deref(), Some("3.0.19-1~deb12u2"));
    assert_eq!(openssl.candidate.as_deref(), Some("3.0.22-1~deb12u2"));
    let table: Vec<(&str, i32, bool, usize)> = openssl
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.priority, v.installed, v.files.len()))
        .collect();
    assert_eq!(
        table,
        [
            ("3.0.22-1~deb12u2", 500, false, 1),
            ("3.0.20-1~deb12u2", 500, false, 1),
            ("3.0.19-1~deb12u2", 100, true, 1),
            ("3.0.17-1~deb12u2", 500, false, 1),
        ]
    );
    let libc = pkgs.first().expect("libc6");
    assert_eq!(libc.versions.first().map(|v| v.files.len()), Some(2));
}

/// Each broken input and the error it must give.
#[test]
fn malformed_policy_output_is_refused_with_the_line() {
    let files_cases = [
        ("", "no `Package files:` header"),
        (
            "Package files:\n     release a=now\n",
            "line 2: a detail line before any package file",
        ),
        (
            "Package files:\n one /var/lib/dpkg/status\n",
            "line 2: expected `<priority> <package file>`",
        ),
        (
            "Package files:\n 100 x\n     release a\n",
            "line 3: release field \"a\" has no `=`",
        ),
        (
            "Package files:\n 100 x\n     flavour sweet\n",
            "line 3: expected `release …` or `origin …`",
        ),
        (
            "Package files:\nGarbage\n",
            "line 2: unexpected line in the package file list",
        ),
    ];
    for (input, want) in files_cases {
        let err = parse_package_files(input).expect_err(input);
        assert!(matches!(err, UpdatesError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains(want), "{input:?}: {err}");
    }
    let package_cases = [
        (
            "  Installed: 1\n",
            "line 1: an indented line before any package heading",
        ),
        ("foo bar:\n", "line 1: expected a package heading `name:`"),
        (
            "foo:\n        500 file:/x y/main amd64 Packages\n",
            "line 2: a package file before any version",
        ),
        (
            "foo:\n     1.0 high\n",
            "line 2: expected `<version> <priority>`",
        ),
        (
            "foo:\n *** 1.0\n",
            "line 2: expected `*** <version> <priority>`",
        ),
        (
            "foo:\n     1.0 500 (phased 101%)\n",
            "line 2: expected `<version> <priority>`",
        ),
        (
            "foo:\n     1.0 500 (phased ten%)\n",
            "line 2: expected `<version> <priority>`",
        ),
        ("foo:\n  Installed 1.0\n", "line 2: expected `Key: value`"),
        ("foo:\n   odd\n", "line 2: expected `Key: value`"),
        ("foo:\n odd\n", "line 2: unexpected indentation"),
    ];
    for (input, want) in package_cases {
        let err = parse_package_policies(input).expect_err(input);
        assert!(matches!(err, UpdatesError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains(want), "{input:?}: {err}");
    }
    // Cut in the middle, as a killed child leaves it: the parse is refused, not half-used.
    let real = recorded("debian12-policy-packages.txt");
    let cut = real
        .get(..real.find("        500 http").expect("a file line") + 11)
        .expect("cut");
    assert!(parse_package_policies(cut).is_err());
}

#[test]
fn dpkg_query_over_a_real_debian12_status() {
    if !debrepo::tools_present(
        "dpkg_query_over_a_real_debian12_status",
        &[("dpkg-query", "dpkg")],
    ) {
        return;
    }
    let admin = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        shared_data().join("debian/debian12-host.status"),
        admin.path().join("status"),
    )
    .expect("copy");
    let text = debrepo::run(
        Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.path().display()))
            .arg("-W")
            .arg(format!("--showformat={DPKG_QUERY_FORMAT}")),
    );
    let pkgs = policy::parse_dpkg_query(&text).expect("parse");
    assert_eq!(pkgs.len(), 720);
    assert!(pkgs.iter().all(|p| !p.held));
    let libc = pkgs.iter().find(|p| p.name == "libc6").expect("libc6");
    assert_eq!(libc.arch, "amd64");

    for (input, want) in [
        (
            "foo\tall\t1.0\n",
            "line 1: expected four tab-separated fields",
        ),
        (
            "foo\tall\t1.0\tx\n",
            "line 1: the status abbreviation is too short",
        ),
        (
            "foo\tall\t1.0\tzz \n",
            "line 1: unknown status abbreviation",
        ),
        (
            "ok\tall\t1\tii \n\tall\t1.0\tii \n",
            "line 2: a package without a name or version",
        ),
    ] {
        let err = policy::parse_dpkg_query(input).expect_err(input);
        assert!(err.to_string().contains(want), "{input:?}: {err}");
    }
    let held = policy::parse_dpkg_query("a\tall\t1\thi \nb\tall\t2\trc \n").expect("parse");
    assert_eq!(held.len(), 1, "config-files packages are not installed");
    assert!(held.first().is_some_and(|p| p.held));
}

#[test]
fn apt_cache_show_sources() {
    let text = "Package: libhalf1\nVersion: 2.0-1ubuntu0.1\nSource: half (2.0-1ubuntu0.1)\nDescription: x\n more\n\n\
                Package: plain\nVersion: 1.0\n\nPackage: renamed\nVersion: 3\nSource: other\n";
    let got: Vec<(String, String)> = policy::parse_show_sources(text)
        .expect("parse")
        .into_iter()
        .map(|s| (s.package, format!("{} {}", s.source, s.source_version)))
        .collect();
    assert_eq!(
        got,
        [
            ("libhalf1".into(), "half 2.0-1ubuntu0.1".into()),
            ("plain".into(), "plain 1.0".into()),
            ("renamed".into(), "other 3".into()),
        ]
    );
    for bad in [
        "Package: a\n\n",
        "Package: a\nVersion: 1\nSource: s 1.0\n",
        "no colon here\n",
    ] {
        assert!(
            matches!(
                policy::parse_show_sources(bad),
                Err(UpdatesError::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
}
