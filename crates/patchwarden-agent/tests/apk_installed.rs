//! The apk database parser on every real file in `shared/data/inventories/apk/` (a real
//! 15-package Alpine 3.18 image and the edge cases), and on hostile input.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use patchwarden_agent::inventory::apk::{self, InstalledDb, ProblemKind, parse_installed};
use patchwarden_agent::root::HostRoot;
use patchwarden_core::inventory::{Manager, Package, PackageStatus};

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

fn parse(name: &str) -> InstalledDb {
    let path = shared_data().join("inventories/apk").join(name);
    parse_installed(BufReader::new(std::fs::File::open(path).unwrap())).unwrap()
}

fn pkg(name: &str, version: &str, arch: &str, origin: &str) -> Package {
    Package {
        manager: Manager::Apk,
        name: name.into(),
        version: version.into(),
        arch: Some(arch.into()),
        source_name: Some(origin.into()),
        source_version: Some(version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

#[test]
fn a_real_alpine_image() {
    let db = parse("scalibr-installed");
    assert_eq!(db.problems, []);
    let got: Vec<(&str, &str, Option<&str>)> = db
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.version.as_str(),
                p.source_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("alpine-baselayout", "3.4.3-r1", Some("alpine-baselayout")),
            (
                "alpine-baselayout-data",
                "3.4.3-r1",
                Some("alpine-baselayout")
            ),
            ("alpine-keys", "2.4-r1", Some("alpine-keys")),
            ("apk-tools", "2.14.0-r0", Some("apk-tools")),
            ("busybox", "1.36.0-r9", Some("busybox")),
            ("busybox-binsh", "1.36.0-r9", Some("busybox")),
            (
                "ca-certificates-bundle",
                "20230506-r0",
                Some("ca-certificates")
            ),
            ("libc-utils", "0.7.2-r5", Some("libc-dev")),
            ("libcrypto3", "3.1.0-r4", Some("openssl")),
            ("libssl3", "3.1.0-r4", Some("openssl")),
            ("musl", "1.2.4-r0", Some("musl")),
            ("musl-utils", "1.2.4-r0", Some("musl")),
            ("scanelf", "1.3.7-r1", Some("pax-utils")),
            ("ssl_client", "1.36.0-r9", Some("busybox")),
            ("zlib", "1.2.13-r1", Some("zlib")),
        ]
    );
    assert!(
        db.packages
            .iter()
            .all(|p| p.arch.as_deref() == Some("x86_64"))
    );
}

#[test]
fn single_and_other_architecture() {
    assert_eq!(
        parse("scalibr-single").packages,
        [pkg(
            "alpine-baselayout-data",
            "3.4.3-r1",
            "x86_64",
            "alpine-baselayout"
        )]
    );
    assert_eq!(
        parse("scalibr-different-arch").packages,
        [pkg(
            "alpine-baselayout-data",
            "3.4.3-r1",
            "noarch",
            "alpine-baselayout"
        )]
    );
    assert_eq!(
        parse("osv-scanner-locks-many.installed").packages,
        [pkg("apk-tools", "2.12.10-r1", "x86_64", "apk-tools")]
    );
}

#[test]
fn a_package_without_origin_is_its_own_source() {
    let db = parse("scalibr-no-origin");
    assert_eq!(db.packages, [pkg("pkgname", "1.2.3", "x86_64", "pkgname")]);
}

#[test]
fn empty_and_invalid_files() {
    assert_eq!(parse("scalibr-empty"), InstalledDb::default());
    let db = parse("scalibr-invalid");
    assert!(db.packages.is_empty());
    let kinds: Vec<&ProblemKind> = db.problems.iter().map(|p| &p.kind).collect();
    assert_eq!(
        kinds,
        [&ProblemKind::NotAField(1), &ProblemKind::NotAField(3)]
    );
}

#[test]
fn hostile_input() {
    // A 1 MiB file line (real databases have long `F:`/`R:` lists only line by line), a stanza
    // without a version, an overlong name, a non-UTF-8 origin and an invalid version.
    let mut input = b"P:ok\nV:1.0-r0\nR:".to_vec();
    input.extend(std::iter::repeat_n(b'x', 1 << 20));
    input.extend_from_slice(b"\n\nP:noversion\n\nP:");
    input.extend(std::iter::repeat_n(b'n', 10_000));
    input.extend_from_slice(b"\nV:1\n\nP:latin1\nV:1\no:caf\xe9\n\nP:weird\nV:not a version\n");
    let db = parse_installed(&input[..]).unwrap();
    let names: Vec<&str> = db.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ok", "weird"]);
    let kinds: Vec<String> = db.problems.iter().map(|p| p.kind.to_string()).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert_eq!(db.problems[0].kind, ProblemKind::NoVersion);
    assert_eq!(db.problems[1].kind, ProblemKind::FieldTooLong('P'));
    assert_eq!(db.problems[2].kind, ProblemKind::NotUtf8('o'));
    assert!(kinds[3].starts_with("kept, but its version \"not a version\""));
}

#[test]
fn read_under_a_root_and_refuse_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("lib/apk/db");
    std::fs::create_dir_all(&db_dir).unwrap();
    let root = HostRoot::new(dir.path()).unwrap();
    assert!(apk::read_installed(&root).unwrap().is_none());
    std::fs::copy(
        shared_data().join("inventories/apk/scalibr-installed"),
        db_dir.join("installed"),
    )
    .unwrap();
    assert_eq!(
        apk::read_installed(&root).unwrap().unwrap().packages.len(),
        15
    );
    std::fs::remove_file(db_dir.join("installed")).unwrap();
    std::fs::create_dir(db_dir.join("installed")).unwrap();
    let err = apk::read_installed(&root).unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");
}
