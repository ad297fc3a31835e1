//! The OS facts of every file in `shared/data/inventories/os-release/` (101 os-release,
//! lsb-release and redhat-release files of many distributions and releases), as one snapshot:
//! one line per file with what we read from it. Refresh with `UPDATE_EXPECT=1 cargo test -p
//! patchwarden-agent --test facts_os_release` and review the diff.

use std::path::{Path, PathBuf};

use patchwarden_agent::facts::os_release;
use patchwarden_core::inventory::OsInfo;

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

/// The os-release part of a claircore `.txtar` test file (between `-- os-release --` and the
/// next `-- … --` marker).
fn txtar_os_release(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-- ") && line.ends_with(" --") {
            inside = line == "-- os-release --";
            continue;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// What the file gives, by the kind of file its name says it is.
fn read(name: &str, text: &str) -> Option<OsInfo> {
    if name.ends_with(".txtar") {
        Some(os_release::from_os_release(&txtar_os_release(text)))
    } else if name.ends_with("lsb-release") {
        os_release::from_lsb_release(text)
    } else if name.ends_with("redhat-release") {
        os_release::from_redhat_release(text)
    } else {
        Some(os_release::from_os_release(text))
    }
}

fn line(name: &str, os: Option<OsInfo>) -> String {
    let Some(os) = os else {
        return format!("{name}: no OS\n");
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    format!(
        "{name}: id={} version_id={} codename={} ecosystem={} id_like=[{}] pretty={:?}\n",
        os.id,
        opt(&os.version_id),
        opt(&os.codename),
        opt(&os.ecosystem),
        os.id_like.join(","),
        os.pretty_name.as_deref().unwrap_or("-"),
    )
}

#[test]
fn every_release_file_snapshot() {
    let dir = shared_data().join("inventories/os-release");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 101, "the data set changed: {}", dir.display());
    let mut out = String::new();
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        out.push_str(&line(name, read(name, &text)));
    }
    expect_test::expect_file!["snapshots/os_release.txt"].assert_eq(&out);
}

/// The ecosystems that matter most, spelled out so that a snapshot refresh cannot quietly
/// change them.
#[test]
fn ecosystems_of_the_supported_distributions() {
    let dir = shared_data().join("inventories/os-release");
    let cases = [
        (
            "claircore_debian_testdata_dist_12_etc_os-release",
            "Debian:12",
        ),
        (
            "claircore_debian_testdata_distroless_dist_11_etc_os-release",
            "Debian:11",
        ),
        (
            "claircore_ubuntu_testdata_dist_22.04_etc_os-release",
            "Ubuntu:22.04:LTS",
        ),
        (
            "claircore_ubuntu_testdata_dist_23.10_etc_os-release",
            "Ubuntu:23.10",
        ),
        (
            "claircore_ubuntu_testdata_dist_10.04_etc_lsb-release",
            "Ubuntu:10.04:LTS",
        ),
        (
            "claircore_ubuntu_testdata_dist_21.10_etc_lsb-release",
            "Ubuntu:21.10",
        ),
        (
            "claircore_alpine_testdata_3.18_etc_os-release",
            "Alpine:v3.18",
        ),
        ("osv-scanner_alpine-3.18-os-release", "Alpine:v3.18"),
        (
            "claircore_rhel_testdata_releasefiles_9_etc_os-release",
            "Red Hat:enterprise_linux:9",
        ),
        (
            "claircore_rhel_testdata_releasefiles_7_etc_redhat-release",
            "Red Hat:enterprise_linux:7",
        ),
        (
            "claircore_osrelease_testdata_OpenSUSe.txtar",
            "openSUSE:Leap 15.1",
        ),
    ];
    for (name, want) in cases {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let os = read(name, &text).unwrap();
        assert_eq!(os.ecosystem.as_deref(), Some(want), "{name}");
    }
    // Alpine edge is not a release OSV files advisories under; Fedora has no OSV ecosystem.
    for name in [
        "claircore_alpine_testdata_edge_etc_os-release",
        "claircore_osrelease_testdata_Silverblue.txtar",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read(name, &text).unwrap().ecosystem, None, "{name}");
    }
}

#[test]
fn codenames_come_from_version_when_the_field_is_missing() {
    let os = os_release::from_os_release(
        "NAME=\"Ubuntu\"\nVERSION=\"14.04.6 LTS, Trusty Tahr\"\nID=ubuntu\nVERSION_ID=\"14.04\"\n",
    );
    assert_eq!(os.codename.as_deref(), Some("trusty"));
    let os = os_release::from_os_release("ID=debian\nVERSION_ID=\"7\"\nVERSION=\"7 (wheezy)\"\n");
    assert_eq!(os.codename.as_deref(), Some("wheezy"));
    // An empty VERSION_CODENAME is no codename (Fedora writes `VERSION_CODENAME=""`).
    let os = os_release::from_os_release("ID=fedora\nVERSION_CODENAME=\"\"\nVERSION_ID=30\n");
    assert_eq!(os.codename, None);
}

#[test]
fn garbage_gives_an_unknown_os_not_a_panic() {
    let os = os_release::from_os_release("\u{0}\u{1}binary\n==\n=x\nID\n");
    assert_eq!(os.id, "linux");
    assert_eq!(os.ecosystem, None);
    assert_eq!(os_release::from_lsb_release("nothing here"), None);
    assert_eq!(os_release::from_redhat_release(""), None);
    assert_eq!(os_release::from_redhat_release("just some words"), None);
    assert_eq!(os_release::from_alpine_release("\n"), None);
}
