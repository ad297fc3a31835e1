//! Whole inventories: sandbox roots built from real files (a Debian 12 host's dpkg status and
//! os-release, an Alpine image's apk database), this machine itself (`/`, checked against
//! `dpkg-query`), an SBOM, and roots where collectors fail, which must not stop the others.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use patchwarden_agent::inventory::collect::{CollectError, collect_root, collect_sbom};
use patchwarden_core::inventory::{Manager, PackageStatus, delta};

#[path = "rpm_support/mod.rs"]
mod rpm_support;

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

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn copy(root: &Path, rel: &str, from: &Path) {
    write(root, rel, std::fs::read(from).unwrap());
}

/// A Debian 12 host as a directory: its real dpkg status and os-release, a hostname, a machine
/// id, a pending reboot flagged the Debian way through the usual `var/run -> /run` link, and
/// the kernel's files under `proc/`.
fn debian_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let data = shared_data();
    copy(
        r,
        "etc/os-release",
        &data.join("inventories/os-release/claircore_debian_testdata_dist_12_etc_os-release"),
    );
    copy(
        r,
        "var/lib/dpkg/status",
        &data.join("debian/debian12-host.status"),
    );
    write(r, "etc/hostname", "# set by the installer\nweb-07\n");
    write(r, "etc/machine-id", "4c4c4544005a4e108052b7c04f4e3732\n");
    write(
        r,
        "run/reboot-required",
        "*** System restart required ***\n",
    );
    write(
        r,
        "run/reboot-required.pkgs",
        "linux-image-6.1.0-28-amd64\nlibc6\nlibc6\n",
    );
    symlink("/run", r.join("var/run")).unwrap();
    write(
        r,
        "proc/stat",
        "cpu  1 2 3 4\nbtime 1795708984\nprocesses 1234\n",
    );
    write(r, "proc/sys/kernel/osrelease", "6.1.0-27-amd64\n");
    dir
}

#[test]
fn a_debian_host_in_a_directory() {
    let root = debian_root();
    let c = collect_root(root.path()).unwrap();
    assert_eq!(c.warnings, [], "{:#?}", c.warnings);
    let h = &c.inventory.host;
    assert_eq!(h.hostname, "web-07");
    assert_eq!(h.os.id, "debian");
    assert_eq!(h.os.version_id.as_deref(), Some("12"));
    assert_eq!(h.os.codename.as_deref(), Some("bookworm"));
    assert_eq!(h.os.ecosystem.as_deref(), Some("Debian:12"));
    // Not the live host: the architecture comes from the packages (amd64 → x86_64).
    assert_eq!(h.arch.as_deref(), Some("x86_64"));
    assert_eq!(h.kernel.as_deref(), Some("6.1.0-27-amd64"));
    assert_eq!(h.boot_time.map(|t| t.as_second()), Some(1_795_708_984));
    assert_eq!(
        h.machine_id.as_deref(),
        Some("4c4c4544005a4e108052b7c04f4e3732")
    );
    assert!(h.reboot_required);
    assert_eq!(
        h.reboot_reasons,
        [
            "linux-image-6.1.0-28-amd64 asks for a reboot (/run/reboot-required.pkgs)",
            "libc6 asks for a reboot (/run/reboot-required.pkgs)",
        ]
    );
    let p = &c.inventory.packages;
    assert_eq!(p.len(), 720);
    assert!(p.is_sorted(), "packages are in canonical order");
    assert!(p.iter().all(|p| p.manager == Manager::Dpkg));

    // Collecting an unchanged host again gives the same inventory and an empty delta.
    let again = collect_root(root.path()).unwrap();
    assert_eq!(again.inventory, c.inventory);
    assert!(delta(&c.inventory, &again.inventory).is_empty());
}

#[test]
fn an_alpine_image_with_only_alpine_release() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "etc/alpine-release", "3.18.4\n");
    copy(
        r,
        "lib/apk/db/installed",
        &shared_data().join("inventories/apk/scalibr-installed"),
    );
    let c = collect_root(r).unwrap();
    let h = &c.inventory.host;
    assert_eq!(h.os.ecosystem.as_deref(), Some("Alpine:v3.18"));
    assert_eq!(h.arch.as_deref(), Some("x86_64"));
    assert_eq!(c.inventory.packages.len(), 15);
    assert!(!h.reboot_required);
    // An image has no kernel, no boot time and here no hostname: each is said, not guessed.
    let said: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    for want in [
        "facts: hostname unknown",
        "facts: running kernel unknown",
        "facts: boot time unknown",
    ] {
        assert!(
            said.iter().any(|w| w.starts_with(want)),
            "{want} not in {said:#?}"
        );
    }
    assert_eq!(h.hostname, "");
    assert_eq!(h.kernel, None);
}

#[test]
fn an_rpm_database_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    copy(
        r,
        "etc/os-release",
        &shared_data()
            .join("inventories/os-release/claircore_rhel_testdata_releasefiles_9_etc_os-release"),
    );
    // osv-scalibr's one-package Berkeley DB database, with an epoch.
    copy(
        r,
        "var/lib/rpm/Packages",
        &shared_data().join("inventories/rpm/scalibr-Packages_epoch.bdb"),
    );
    let c = collect_root(r).unwrap();
    assert_eq!(
        c.inventory.host.os.ecosystem.as_deref(),
        Some("Red Hat:enterprise_linux:9")
    );
    let p = &c.inventory.packages;
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].manager, Manager::Rpm);
    assert!(p[0].epoch.is_some(), "{:?}", p[0]);
    // No running kernel and no kernel package: the reboot question is open, and said so.
    let said: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        said.iter().any(|w| w.starts_with(
            "facts: whether a newer kernel awaits a reboot is unknown: the running kernel is unknown"
        )),
        "{said:#?}"
    );
}

/// Two kernels built with the real `rpmbuild` and recorded with the real `rpm`, the older one
/// running: the inventory says a reboot is required and why.
#[test]
fn an_rpm_host_running_an_older_kernel_needs_a_reboot() {
    if !rpm_support::have_rpm("an_rpm_host_running_an_older_kernel_needs_a_reboot") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("build");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&build).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    // The releases of AlmaLinux 9.3's and 9.4's kernels.
    let specs = [("362.8.1.el9_3", "a"), ("427.13.1.el9_4", "b")];
    let mut rpms = Vec::new();
    for (release, sub) in specs {
        let d = build.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        rpms.extend(rpm_support::build_rpms(
            &d,
            &[rpm_support::Spec {
                name: "kernel-core",
                version: "5.14.0",
                release,
                ..rpm_support::Spec::default()
            }],
        ));
    }
    rpm_support::install(&root, "/var/lib/rpm", "sqlite", &rpms);
    write(
        &root,
        "proc/sys/kernel/osrelease",
        "5.14.0-362.8.1.el9_3.x86_64\n",
    );
    let c = collect_root(&root).unwrap();
    let kernels: Vec<&str> = c
        .inventory
        .packages
        .iter()
        .map(|p| p.version.as_str())
        .collect();
    assert_eq!(kernels, ["5.14.0-362.8.1.el9_3", "5.14.0-427.13.1.el9_4"]);
    let h = &c.inventory.host;
    assert!(h.reboot_required);
    assert_eq!(
        h.reboot_reasons,
        ["kernel 5.14.0-427.13.1.el9_4 installed, 5.14.0-362.8.1.el9_3 running"]
    );
    // Running the newest kernel: no reboot.
    write(
        &root,
        "proc/sys/kernel/osrelease",
        "5.14.0-427.13.1.el9_4.x86_64\n",
    );
    let c = collect_root(&root).unwrap();
    assert!(!c.inventory.host.reboot_required);
    assert!(
        c.warnings.iter().all(|w| !w.message.contains("kernel")),
        "{:#?}",
        c.warnings
    );
}

#[test]
fn a_failing_collector_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    // dpkg's status is a directory, apk's database is real.
    std::fs::create_dir_all(r.join("var/lib/dpkg/status")).unwrap();
    copy(
        r,
        "lib/apk/db/installed",
        &shared_data().join("inventories/apk/scalibr-installed"),
    );
    // And a dpkg status.d with one broken stanza beside a good one.
    write(
        r,
        "var/lib/dpkg/status.d/ok",
        "Package: tzdata\nVersion: 2025b-0+deb12u2\nArchitecture: all\n",
    );
    write(r, "var/lib/dpkg/status.d/broken", "Version: 1\n");
    let c = collect_root(r).unwrap();
    let names: Vec<&str> = c
        .inventory
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names.len(), 16);
    assert!(names.contains(&"tzdata") && names.contains(&"musl"));
    let said: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        said.iter()
            .any(|w| w.starts_with("dpkg: ")
                && w.ends_with("var/lib/dpkg/status is not a regular file")),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|w| w
            == "dpkg: /var/lib/dpkg/status.d: line 1: stanza skipped: it has no Package field"),
        "{said:#?}"
    );
}

#[test]
fn an_empty_root_says_there_is_no_package_database() {
    let dir = tempfile::tempdir().unwrap();
    let c = collect_root(dir.path()).unwrap();
    assert!(c.inventory.packages.is_empty());
    assert!(
        c.warnings
            .iter()
            .any(|w| w.source == "inventory" && w.message.starts_with("no package database")),
        "{:#?}",
        c.warnings
    );
}

#[test]
fn roots_that_cannot_be_used_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = collect_root(&file).unwrap_err();
    assert!(matches!(err, CollectError::Root { .. }));
    assert!(err.to_string().contains("is not a directory"), "{err}");

    let missing = collect_root(&dir.path().join("missing")).unwrap_err();
    assert!(missing.to_string().contains("No such file"), "{missing}");

    let looped = dir.path().join("loop");
    symlink(&looped, &looped).unwrap();
    let err = collect_root(&looped).unwrap_err();
    assert!(err.to_string().contains("loop"), "{err}");
}

#[test]
fn a_symlink_loop_inside_the_root_is_a_warning() {
    let root = debian_root();
    let r = root.path();
    std::fs::remove_file(r.join("etc/os-release")).unwrap();
    symlink("../usr/lib/os-release", r.join("etc/os-release")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib")).unwrap();
    symlink("/etc/os-release", r.join("usr/lib/os-release")).unwrap();
    let c = collect_root(r).unwrap();
    assert_eq!(c.inventory.packages.len(), 720);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.starts_with("operating system unknown")
                && w.message.contains("too many symbolic links")),
        "{:#?}",
        c.warnings
    );
}

#[test]
fn this_machine() {
    let c = collect_root(Path::new("/")).unwrap();
    let h = &c.inventory.host;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(h.kernel.as_deref(), Some(kernel.trim()));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(h.hostname, hostname.trim());
    assert!(h.boot_time.is_some());
    assert!(h.arch.is_some());
    if !Path::new("/var/lib/dpkg/status").exists() {
        eprintln!("skipped: this machine has no dpkg database to compare with dpkg-query");
        return;
    }
    let out = match Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_none(),
                "dpkg-query is needed (Debian package dpkg): {e}"
            );
            eprintln!("skipped: dpkg-query is not installed (Debian package dpkg): {e}");
            return;
        }
    };
    let mut theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with("\tnot-installed"))
        .map(|l| l.rsplit_once('\t').unwrap().0.to_string())
        .collect();
    let mut ours: Vec<String> = c
        .inventory
        .packages
        .iter()
        .filter(|p| p.manager == Manager::Dpkg && p.status != PackageStatus::NotInstalled)
        .map(|p| format!("{}\t{}", p.name, p.version))
        .collect();
    theirs.sort();
    ours.sort();
    theirs.dedup();
    ours.dedup();
    assert_eq!(ours, theirs);
}

#[test]
fn an_sbom_inventory() {
    let c = collect_sbom(&shared_data().join("inventories/rpm/ubi9-9.2-755.spdx.json")).unwrap();
    assert_eq!(c.inventory.host.hostname, "ubi9-container");
    assert_eq!(c.inventory.packages.len(), 605);
    assert!(c.inventory.packages.is_sorted());
    // Four architectures of the multi-arch image; the most common wins.
    assert!(c.inventory.host.arch.is_some());
    let said: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        said,
        [
            "sbom: components that are not deb, rpm or apk packages were left out: 5 oci",
            "sbom: the SBOM does not name its operating system (no `distro` qualifier, no \
             operating-system component)",
            "sbom: an SBOM says nothing of a running host: its kernel, boot time and whether it \
             needs a reboot are unknown",
        ]
    );
}
