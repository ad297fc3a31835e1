//! The dpkg status parser on every real file in `shared/data/inventories/dpkg/` and on a real
//! Debian 12 host's `/var/lib/dpkg/status` (720 packages), each edge case with its documented
//! result, and checked against `dpkg-query` itself where dpkg accepts the file.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

use patchwarden_agent::inventory::dpkg::{
    self, MissingStatus, ProblemKind, StatusFile, parse_status,
};
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

fn dpkg_file(name: &str) -> PathBuf {
    shared_data().join("inventories/dpkg").join(name)
}

fn parse_file(path: &Path) -> StatusFile {
    let file = std::fs::File::open(path).unwrap();
    parse_status(BufReader::new(file), MissingStatus::Reject).unwrap()
}

fn parse(name: &str) -> StatusFile {
    parse_file(&dpkg_file(name))
}

fn find<'a>(s: &'a StatusFile, name: &str) -> &'a Package {
    s.packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} not found"))
}

fn names(s: &StatusFile) -> Vec<&str> {
    s.packages.iter().map(|p| p.name.as_str()).collect()
}

/// Every file of the folder, summarised in one snapshot: a new file or a changed result shows
/// up in review.
#[test]
fn every_dpkg_file_snapshot() {
    let dir = shared_data().join("inventories/dpkg");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut out = String::new();
    for name in &files {
        let s = parse(name);
        let mut states: std::collections::BTreeMap<String, usize> = Default::default();
        for p in &s.packages {
            let state = serde_json::to_value(p.status).unwrap();
            *states
                .entry(state.as_str().unwrap().to_string())
                .or_default() += 1;
        }
        out.push_str(&format!(
            "{name}: {} packages {states:?}\n",
            s.packages.len()
        ));
        for p in &s.problems {
            out.push_str(&format!("    {p}\n"));
        }
    }
    expect_test::expect_file!["snapshots/dpkg_files.txt"].assert_eq(&out);
}

#[test]
fn a_real_debian_12_host() {
    let s = parse_file(&shared_data().join("debian/debian12-host.status"));
    assert_eq!(s.packages.len(), 720);
    assert_eq!(s.problem_count(), 0, "{:?}", s.problems);
    assert!(
        s.packages
            .iter()
            .all(|p| p.status == PackageStatus::Installed)
    );
    assert!(s.packages.iter().all(|p| p.manager == Manager::Dpkg));
    // `Source: bash (5.2.15-2)`: a binNMU, whose binary version differs from its source's.
    let bash = find(&s, "bash");
    assert_eq!(bash.source_name.as_deref(), Some("bash"));
    assert_ne!(Some(bash.version.as_str()), bash.source_version.as_deref());
    // No Source field: the package is its own source.
    let adduser = find(&s, "adduser");
    assert_eq!(adduser.source_name.as_deref(), Some("adduser"));
    assert_eq!(adduser.source_version.as_deref(), Some("3.134"));
    assert_eq!(adduser.arch.as_deref(), Some("all"));
}

#[test]
fn empty_file_has_no_packages_and_no_problems() {
    let s = parse("scalibr-empty");
    assert_eq!(s, StatusFile::default());
}

#[test]
fn invalid_file_gives_no_packages_and_names_each_bad_stanza() {
    // `asdf`, a blank line, `yolo`: two stanzas, each a line that is not a field.
    let s = parse("scalibr-invalid");
    assert!(s.packages.is_empty());
    let kinds: Vec<_> = s
        .problems
        .iter()
        .map(|p| (p.line, p.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, ProblemKind::NotAField(1)),
            (3, ProblemKind::NotAField(3))
        ]
    );
}

#[test]
fn stanza_without_package_is_skipped_and_the_others_kept() {
    let s = parse("scalibr-nopackage");
    assert_eq!(names(&s), ["foo", "bar"]);
    assert_eq!(s.problems.len(), 1);
    assert_eq!(s.problems[0].kind, ProblemKind::NoPackage);
    assert_eq!(s.problems[0].line, 5);
}

#[test]
fn stanza_without_version_is_skipped_and_the_others_kept() {
    let s = parse("scalibr-noversion");
    assert_eq!(names(&s), ["foo", "bar"]);
    assert_eq!(s.problems.len(), 1);
    assert_eq!(s.problems[0].kind, ProblemKind::NoVersion);
    assert_eq!(s.problems[0].package.as_deref(), Some("acl"));
}

#[test]
fn every_state_is_reported_and_a_missing_status_is_a_problem() {
    use PackageStatus::*;
    let s = parse("scalibr-statusfield");
    let got: Vec<(&str, PackageStatus)> = s
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.status))
        .collect();
    assert_eq!(
        got,
        [
            ("wantinstall_installed", Installed),
            // `deinstall reinstreq installed`: marked for removal, but its files are there.
            ("wantdeinstall_installed", Installed),
            ("wantdeinstall_configfiles", ConfigFiles),
            ("wantinstall_unpacked", Unpacked),
            ("wantpurge_installed", Installed),
            ("wantinstall_halfinstalled", HalfInstalled),
        ]
    );
    assert!(!find(&s, "wantdeinstall_configfiles").status.files_present());
    assert_eq!(s.problems.len(), 1);
    assert_eq!(s.problems[0].kind, ProblemKind::NoStatus);
    assert_eq!(s.problems[0].package.as_deref(), Some("wantnostatus"));
}

#[test]
fn trailing_blank_lines_end_nothing_more() {
    let s = parse("scalibr-trailingnewlines");
    assert_eq!(names(&s), ["acl"]);
    assert_eq!(s.problem_count(), 0);
    assert_eq!(parse("scalibr-single"), s);
}

#[test]
fn transitional_packages_are_installed_packages_with_their_source() {
    // Transitional and dummy packages are reported like any other: they are installed, and
    // advisories for their source package concern them.
    let s = parse("scalibr-transitional");
    let p = find(&s, "iceweasel");
    assert_eq!(p.version, "78.13.0esr-1~deb10u1");
    assert_eq!(p.source_name.as_deref(), Some("firefox-esr"));
    assert_eq!(p.source_version.as_deref(), Some("78.13.0esr-1~deb10u1"));
    let s = parse("scalibr-transitional_dummy");
    let p = find(&s, "git-core");
    assert_eq!(
        (p.version.as_str(), p.source_name.as_deref()),
        ("1:2.14.2-1", Some("git"))
    );
    let s = parse("scalibr-transitional_empty");
    let p = find(&s, "runit-systemd");
    assert_eq!(p.source_name.as_deref(), Some("runit"));
}

#[test]
fn source_with_version_in_parentheses() {
    let s = parse("claircore-postgresql.status");
    let p = find(&s, "postgresql-client");
    assert_eq!(p.version, "11+200+deb10u5");
    assert_eq!(p.source_name.as_deref(), Some("postgresql-common"));
    assert_eq!(p.source_version.as_deref(), Some("200+deb10u5"));
}

#[test]
fn other_architectures_are_kept_as_written_and_feature_stanzas_skipped() {
    // vcpkg writes dpkg-style status files for Windows ports; its `Feature:` stanzas have no
    // version and are skipped.
    let s = parse("claircore-vcpkg.status");
    let zlib = find(&s, "zlib");
    assert_eq!(zlib.arch.as_deref(), Some("x64-windows"));
    assert!(s.problems.iter().all(|p| p.kind == ProblemKind::NoVersion));
    assert_eq!(s.packages.len() + s.problems.len(), 24);
}

/// dpkg itself refuses this file ("end of file during value of field 'Description' (missing
/// final newline)"); we read the package, since the agent reports what is there rather than
/// failing the whole inventory over a missing byte.
#[test]
fn last_stanza_without_final_newline() {
    let s = parse("osv-scanner-locks-many.status");
    assert_eq!(names(&s), ["adduser"]);
}

#[test]
fn status_d_files_of_a_distroless_image() {
    // A distroless image keeps one stanza per file, without Status, beside `.md5sums` files.
    let host = std::fs::read_to_string(shared_data().join("debian/debian12-host.status")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let status_d = dir.path().join("var/lib/dpkg/status.d");
    std::fs::create_dir_all(&status_d).unwrap();
    let wanted = ["base-files", "libc6", "libssl3", "tzdata"];
    for stanza in host.split("\n\n") {
        let name = stanza
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .unwrap_or_default();
        if wanted.contains(&name) {
            let without_status: String = stanza
                .lines()
                .filter(|l| !l.starts_with("Status:"))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(status_d.join(name), without_status).unwrap();
            std::fs::write(status_d.join(format!("{name}.md5sums")), "d41d8cd9  /x\n").unwrap();
        }
    }
    let root = HostRoot::new(dir.path()).unwrap();
    assert!(dpkg::read_status(&root).unwrap().is_none());
    let s = dpkg::read_status_d(&root).unwrap().unwrap();
    let got: Vec<&str> = names(&s);
    assert_eq!(got, wanted);
    assert!(
        s.packages
            .iter()
            .all(|p| p.status == PackageStatus::Installed)
    );
    assert_eq!(find(&s, "libssl3").source_name.as_deref(), Some("openssl"));
    assert_eq!(s.problem_count(), 0);
}

/// What `dpkg-query` says about a status file: `name version arch source source-version
/// state` for every package it lists.
fn dpkg_query(status: &Path) -> Option<BTreeSet<String>> {
    let admin = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(admin.path().join("updates")).unwrap();
    std::fs::create_dir_all(admin.path().join("info")).unwrap();
    std::fs::copy(status, admin.path().join("status")).unwrap();
    let out = match Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.path().display()))
        .args([
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${Status}\n",
        ])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_none(),
                "dpkg-query is needed (Debian package dpkg): {e}"
            );
            eprintln!("skipped: dpkg-query is not installed (Debian package dpkg): {e}");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "dpkg-query failed on {}",
        status.display()
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                // `${Status}` is `want flag state`: keep the state, as we do.
                let (rest, status) = l.rsplit_once('\t').unwrap();
                let state = status.rsplit(' ').next().unwrap();
                format!("{rest}\t{state}")
            })
            .collect(),
    )
}

fn ours(s: &StatusFile) -> BTreeSet<String> {
    s.packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                p.name,
                p.version,
                p.arch.as_deref().unwrap_or(""),
                p.source_name.as_deref().unwrap_or(""),
                p.source_version.as_deref().unwrap_or(""),
                serde_json::to_value(p.status).unwrap().as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn agrees_with_dpkg_query_on_the_files_dpkg_accepts() {
    let files = [
        shared_data().join("debian/debian12-host.status"),
        dpkg_file("claircore-texlive.status"),
        dpkg_file("claircore-postgresql.status"),
        dpkg_file("claircore-debian-only.status"),
        dpkg_file("scalibr-valid"),
        dpkg_file("scalibr-transitional_dummy"),
        dpkg_file("scalibr-statusfield"),
    ];
    let mut compared = 0;
    for path in files {
        let Some(theirs) = dpkg_query(&path) else {
            return;
        };
        let s = parse_file(&path);
        assert_eq!(ours(&s), theirs, "{}", path.display());
        compared += s.packages.len();
    }
    assert_eq!(compared, 720 + 357 + 3 + 1 + 7 + 1 + 6);
}
