//! Host facts read from sandbox roots and from this machine: each fact from its file, the
//! fallbacks between os-release and its predecessors, what cannot be known said in a note, and
//! hostile files (garbage, directories, links out of the root) giving notes, never panics.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use patchwarden_agent::facts::{self, FactsReport};
use patchwarden_agent::root::HostRoot;

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

fn release_file(name: &str) -> Vec<u8> {
    std::fs::read(shared_data().join("inventories/os-release").join(name)).unwrap()
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn collect(root: &Path) -> FactsReport {
    facts::collect(&HostRoot::new(root).unwrap())
}

#[test]
fn os_release_wins_over_lsb_release() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "etc/lsb-release",
        release_file("claircore_ubuntu_testdata_dist_22.04_etc_lsb-release"),
    );
    write(
        r,
        "usr/lib/os-release",
        release_file("claircore_ubuntu_testdata_dist_22.04_etc_os-release"),
    );
    let f = collect(r);
    assert_eq!(f.os_source.as_deref(), Some("usr/lib/os-release"));
    assert_eq!(f.facts.os.ecosystem.as_deref(), Some("Ubuntu:22.04:LTS"));
    assert_eq!(f.facts.os.id_like, ["debian"]);
    // Without os-release, lsb-release answers.
    std::fs::remove_file(r.join("usr/lib/os-release")).unwrap();
    let f = collect(r);
    assert_eq!(f.os_source.as_deref(), Some("etc/lsb-release"));
    assert_eq!(f.facts.os.codename.as_deref(), Some("jammy"));
    assert_eq!(f.facts.os.ecosystem.as_deref(), Some("Ubuntu:22.04:LTS"));
}

#[test]
fn an_old_rhel_with_only_redhat_release() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "etc/redhat-release",
        release_file("claircore_rhel_testdata_releasefiles_7_etc_redhat-release"),
    );
    let f = collect(r);
    assert_eq!(f.os_source.as_deref(), Some("etc/redhat-release"));
    assert_eq!(f.facts.os.id, "rhel");
    assert_eq!(f.facts.os.version_id.as_deref(), Some("7.4"));
    assert_eq!(
        f.facts.os.ecosystem.as_deref(),
        Some("Red Hat:enterprise_linux:7")
    );
}

#[test]
fn an_empty_root_says_what_it_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let f = collect(dir.path());
    assert_eq!(f.facts.os, Default::default());
    assert_eq!(f.facts.hostname, "");
    assert!(!f.facts.reboot_required);
    let notes = f.notes.join("\n");
    for want in [
        "operating system unknown: none of etc/os-release, usr/lib/os-release, etc/lsb-release, \
         etc/redhat-release, etc/alpine-release exists",
        "hostname unknown",
        "running kernel unknown",
        "boot time unknown",
    ] {
        assert!(notes.contains(want), "{want:?} not in\n{notes}");
    }
}

#[test]
fn hostile_fact_files_give_notes() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    // An os-release that is a directory, a machine id that is not one, a proc/stat without
    // btime, a hostname of comments only, and a reboot flag reached through a link that points
    // out of the root (it must resolve inside it).
    std::fs::create_dir_all(r.join("etc/os-release")).unwrap();
    write(r, "etc/machine-id", "uninitialized\n");
    write(
        r,
        "proc/stat",
        "\u{0}\u{1}\u{2} binary garbage\nbtime yesterday\n",
    );
    write(r, "etc/hostname", "# nothing here\n\n");
    write(r, "elsewhere/reboot-required", "");
    symlink("/elsewhere", r.join("run")).unwrap();
    let f = collect(r);
    let notes = f.notes.join("\n");
    assert!(
        notes.contains("operating system unknown: ") && notes.contains("is not a regular file"),
        "{notes}"
    );
    assert!(
        notes.contains("machine id unknown: etc/machine-id holds \"uninitialized\""),
        "{notes}"
    );
    assert!(
        notes.contains("boot time unknown: proc/stat has no valid btime line"),
        "{notes}"
    );
    assert!(notes.contains("hostname unknown"), "{notes}");
    assert_eq!(f.facts.machine_id, None);
    assert_eq!(f.facts.boot_time, None);
    assert!(f.facts.reboot_required);
    assert_eq!(f.facts.reboot_reasons, ["/run/reboot-required exists"]);
}

#[test]
fn a_reboot_flag_in_both_run_and_a_separate_var_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "run/reboot-required", "");
    write(
        r,
        "run/reboot-required.pkgs",
        "linux-image-6.1.0-28-amd64\n",
    );
    write(r, "var/run/reboot-required", "");
    write(
        r,
        "var/run/reboot-required.pkgs",
        "linux-image-6.1.0-28-amd64\ndbus\n",
    );
    let f = collect(r);
    assert_eq!(
        f.facts.reboot_reasons,
        [
            "linux-image-6.1.0-28-amd64 asks for a reboot (/run/reboot-required.pkgs)",
            "linux-image-6.1.0-28-amd64 asks for a reboot (/var/run/reboot-required.pkgs)",
            "dbus asks for a reboot (/var/run/reboot-required.pkgs)",
        ]
    );
}

#[test]
fn this_machine() {
    let root = HostRoot::new(Path::new("/")).unwrap();
    assert!(root.is_live());
    let f = facts::collect(&root);
    let read = |p: &str| std::fs::read_to_string(p).unwrap().trim().to_string();
    assert_eq!(f.facts.hostname, read("/proc/sys/kernel/hostname"));
    assert_eq!(
        f.facts.kernel.as_deref(),
        Some(read("/proc/sys/kernel/osrelease").as_str())
    );
    assert_eq!(f.facts.arch.as_deref(), Some(std::env::consts::ARCH));
    let btime: i64 = read("/proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(f.facts.boot_time.map(|t| t.as_second()), Some(btime));
    if Path::new("/etc/os-release").exists() {
        let os = patchwarden_agent::facts::os_release::from_os_release(&read("/etc/os-release"));
        assert_eq!(f.facts.os, os);
    }
}
