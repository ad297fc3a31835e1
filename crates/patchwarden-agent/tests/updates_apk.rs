//! The apk parsers. apk-tools is not in Debian, so no real apk runs here: the `apk version`
//! and `apk list -u` text below is written to the format strings of apk-tools' source
//! (`ver_print_package_status` and `print_package`, the same in 2.14 and 3.0), filled with
//! the real package names and versions of an Alpine 3.18 `installed` database from the
//! shared data. What a real apk prints beyond those format strings is untested.

use std::path::{Path, PathBuf};

use patchwarden_agent::inventory::updates::apk::{
    decide, parse_list_upgradable, parse_version_list, parse_world, rules_for, split_name_version,
};
use patchwarden_agent::inventory::updates::{Apk, UpdatesError, WithheldReason};
use patchwarden_version::apk::Rules;

/// `shared/data`: `$PATCHWARDEN_SHARED_DATA`, or `../shared/data` beside the checkout.
fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("inventories").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// (name, version) of every package in the real Alpine `installed` database.
fn alpine_installed() -> Vec<(String, String)> {
    let path = shared_data().join("inventories/apk/scalibr-installed");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("P:") {
            name = Some(n.to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("V:"), name.take()) {
            out.push((n, v.to_owned()));
        }
    }
    assert_eq!(out.len(), 15, "the fixture changed");
    out
}

/// `apk version` as apk-tools prints it: `PKG_VER_FMT "%*s %s " BLOB_FMT " " BLOB_FMT`,
/// padded to 39 columns, after the `Installed:` / `Available:` header.
fn version_output(rows: &[(String, String, &str, &str, &str)]) -> String {
    let mut out = format!("{:<39}   {}\n", "Installed:", "Available:");
    for (name, installed, op, available, tag) in rows {
        let pkg = format!("{name}-{installed}");
        out.push_str(&format!("{pkg:<39} {op} {available} {tag}\n"));
    }
    out
}

#[test]
fn version_lines_split_every_real_alpine_package_name() {
    let rows: Vec<(String, String, &str, &str, &str)> = alpine_installed()
        .into_iter()
        .map(|(n, v)| (n, v, "<", "9.9.9-r9", ""))
        .collect();
    let parsed = parse_version_list(&version_output(&rows)).expect("parse");
    let got: Vec<(String, String)> = parsed
        .iter()
        .map(|l| (l.name.clone(), l.installed.clone()))
        .collect();
    assert_eq!(got, alpine_installed());
    assert!(
        parsed
            .iter()
            .all(|l| l.tag.is_none() && l.available == "9.9.9-r9")
    );
}

#[test]
fn apk_report_from_version_lines_and_world() {
    let rows = vec![
        (
            "busybox".to_owned(),
            "1.36.0-r9".to_owned(),
            "<",
            "1.36.1-r2",
            "",
        ),
        (
            "libcrypto3".to_owned(),
            "3.1.0-r4".to_owned(),
            "<",
            "3.1.4-r5",
            "",
        ),
        (
            "musl".to_owned(),
            "1.2.4-r0".to_owned(),
            "<",
            "1.2.4-r2",
            "",
        ),
        (
            "ca-certificates-bundle".to_owned(),
            "20230506-r0".to_owned(),
            "<",
            "20240226-r0",
            "@edge",
        ),
        (
            "zlib".to_owned(),
            "1.2.13-r1".to_owned(),
            "=",
            "1.2.13-r1",
            "",
        ),
    ];
    let lines = parse_version_list(&version_output(&rows)).expect("parse");
    // musl is pinned to its installed version, libcrypto3 is allowed anything below 3.2.
    let world = parse_world(
        "alpine-base\nbusybox\nmusl=1.2.4-r0\nlibcrypto3<3.2\n!nano\nca-certificates-bundle@edge\n",
    );
    assert_eq!(world.len(), 2);
    let report = decide(&lines, &world, Rules::V2);
    let updates: Vec<String> = report
        .updates
        .iter()
        .map(|u| {
            format!(
                "{} {} -> {} {:?}",
                u.name, u.installed, u.candidate, u.origin
            )
        })
        .collect();
    assert_eq!(
        updates,
        [
            "busybox 1.36.0-r9 -> 1.36.1-r2 None",
            "libcrypto3 3.1.0-r4 -> 3.1.4-r5 None",
            "ca-certificates-bundle 20230506-r0 -> 20240226-r0 Some(\"@edge\")",
        ]
    );
    let withheld: Vec<(&str, &WithheldReason)> = report
        .withheld
        .iter()
        .map(|w| (w.update.name.as_str(), &w.reason))
        .collect();
    assert_eq!(withheld, [("musl", &WithheldReason::Held)]);
}

#[test]
fn list_upgradable_lines() {
    let text = "busybox-1.36.1-r2 x86_64 {busybox} (GPL-2.0-only) [upgradable from: busybox-1.36.0-r9]\n\
                libcrypto3-3.1.4-r5 x86_64 {openssl} (Apache-2.0) [upgradable from: libcrypto3-3.1.0-r4]\n\
                ca-certificates-bundle-20240226-r0 x86_64 {ca-certificates} (MPL-2.0 AND MIT) [upgradable from: ca-certificates-bundle-20230506-r0]\n";
    let got: Vec<String> = parse_list_upgradable(text)
        .expect("parse")
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} {}",
                l.name, l.installed, l.available, l.arch, l.origin
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "busybox 1.36.0-r9 1.36.1-r2 x86_64 busybox",
            "libcrypto3 3.1.0-r4 3.1.4-r5 x86_64 openssl",
            "ca-certificates-bundle 20230506-r0 20240226-r0 x86_64 ca-certificates",
        ]
    );
}

#[test]
fn malformed_apk_output_is_refused_with_the_line() {
    for (input, want) in [
        (
            "busybox-1.36.0-r9\n",
            "line 1: expected `name-version op available [tag]`",
        ),
        (
            "busybox-1.36.0-r9 << 1.36.1-r2 @edge extra\n",
            "line 1: expected",
        ),
        (
            "busybox-1.36.0-r9 ! 1.36.1-r2\n",
            "line 1: unknown version operator",
        ),
        (
            "Installed: Available:\nbusybox < 1.36.1-r2\n",
            "line 2: cannot split name and version",
        ),
        (
            "a-b-c-1.0-r0-x < 2\n",
            "line 1: cannot split name and version",
        ),
    ] {
        let err = parse_version_list(input).expect_err(input);
        assert!(matches!(err, UpdatesError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains(want), "{input:?}: {err}");
    }
    for (input, want) in [
        (
            "busybox-1.36.1-r2 x86_64 {busybox} (GPL-2.0-only) [installed]\n",
            "no `[upgradable from: …]`",
        ),
        (
            "busybox-1.36.1-r2 x86_64 busybox (GPL) [upgradable from: busybox-1.36.0-r9]\n",
            "no `{origin}`",
        ),
        (
            "busybox-1.36.1-r2 [upgradable from: busybox-1.36.0-r9]\n",
            "expected `name-version arch",
        ),
        (
            "busybox-1.36.1-r2 x86_64 {b} (GPL) [upgradable from: musl-1.2.4-r0]\n",
            "from another package",
        ),
    ] {
        let err = parse_list_upgradable(input).expect_err(input);
        assert!(err.to_string().contains(want), "{input:?}: {err}");
    }
}

#[test]
fn name_version_split_follows_apk_pkg_parse_name() {
    assert_eq!(
        split_name_version("py3-setuptools-68.0.0-r0"),
        Some(("py3-setuptools", "68.0.0-r0"))
    );
    assert_eq!(
        split_name_version("lua5.4-lpeg-1.1.0-r0"),
        Some(("lua5.4-lpeg", "1.1.0-r0"))
    );
    assert_eq!(
        split_name_version("font-misc-1-1.0-r0"),
        Some(("font-misc-1", "1.0-r0"))
    );
    assert_eq!(split_name_version("nodash"), None);
    assert_eq!(split_name_version("-1.0-r0"), None);
    assert_eq!(
        rules_for("apk-tools 2.14.4, compiled for x86_64.\n"),
        Rules::V2
    );
    assert_eq!(
        rules_for("apk-tools 3.0.3, compiled for x86_64.\n"),
        Rules::V3
    );
}

#[test]
fn apk_root_without_database_is_a_typed_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    match Apk::new(tmp.path()).report() {
        Err(UpdatesError::NoState { manager, .. }) => assert_eq!(manager, "apk"),
        other => panic!("expected NoState, got {other:?}"),
    }
}
