//! `patchwarden inventory`, the real binary, on a sandbox root built from a real Debian 12
//! host's dpkg status and os-release: the JSON has exactly the documented keys and values,
//! the table is aligned with a summary line, warnings go to standard error without stopping
//! the command, and errors exit 2 with `patchwarden: <message>`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use patchwarden_core::inventory::Inventory;
use serde_json::Value;

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

fn patchwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(args)
        .output()
        .expect("the patchwarden binary runs")
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A Debian 12 host in a directory: real dpkg status (720 packages) and os-release, with a
/// hostname, a machine id, a pending reboot and the kernel's `proc` files.
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let data = shared_data();
    write(
        r,
        "usr/lib/os-release",
        std::fs::read(
            data.join("inventories/os-release/claircore_debian_testdata_dist_12_etc_os-release"),
        )
        .unwrap(),
    );
    // As on real Debian: etc/os-release is a relative link to usr/lib/os-release.
    std::fs::create_dir_all(r.join("etc")).unwrap();
    symlink("../usr/lib/os-release", r.join("etc/os-release")).unwrap();
    write(
        r,
        "var/lib/dpkg/status",
        std::fs::read(data.join("debian/debian12-host.status")).unwrap(),
    );
    write(r, "etc/hostname", "db-01\n");
    write(r, "etc/machine-id", "0f1e2d3c4b5a69788796a5b4c3d2e1f0\n");
    write(
        r,
        "var/run/reboot-required",
        "*** System restart required ***\n",
    );
    write(
        r,
        "var/run/reboot-required.pkgs",
        "linux-image-6.1.0-28-amd64\n",
    );
    write(r, "proc/stat", "cpu 1 2 3\nbtime 1795708984\n");
    write(r, "proc/sys/kernel/osrelease", "6.1.0-27-amd64\n");
    dir
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[test]
fn json_of_a_sandbox_root() {
    let root = sandbox();
    let out = patchwarden(&[
        "inventory",
        "--root",
        root.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(keys(&v), ["host", "packages"]);
    let host = &v["host"];
    assert_eq!(
        keys(host),
        [
            "arch",
            "boot_time",
            "hostname",
            "kernel",
            "machine_id",
            "os",
            "reboot_reasons",
            "reboot_required"
        ]
    );
    assert_eq!(host["hostname"], "db-01");
    assert_eq!(host["arch"], "x86_64");
    assert_eq!(host["kernel"], "6.1.0-27-amd64");
    assert_eq!(host["boot_time"], "2026-11-26T16:03:04Z");
    assert_eq!(host["machine_id"], "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    assert_eq!(host["reboot_required"], true);
    assert_eq!(
        host["reboot_reasons"],
        serde_json::json!([
            "linux-image-6.1.0-28-amd64 asks for a reboot (/var/run/reboot-required.pkgs)"
        ])
    );
    assert_eq!(
        host["os"],
        serde_json::json!({
            "id": "debian",
            "version_id": "12",
            "codename": "bookworm",
            "pretty_name": "Debian GNU/Linux 12 (bookworm)",
            "ecosystem": "Debian:12"
        })
    );

    let packages = v["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 720);
    for p in packages {
        assert_eq!(
            keys(p),
            [
                "arch",
                "manager",
                "name",
                "source_name",
                "source_version",
                "status",
                "version"
            ]
        );
        assert_eq!(p["manager"], "dpkg");
        assert_eq!(p["status"], "installed");
    }
    let libssl = packages.iter().find(|p| p["name"] == "libssl3").unwrap();
    assert_eq!(
        libssl,
        &serde_json::json!({
            "manager": "dpkg", "name": "libssl3", "version": "3.0.19-1~deb12u2",
            "arch": "amd64", "source_name": "openssl", "source_version": "3.0.19-1~deb12u2",
            "status": "installed"
        })
    );
    let bash = packages.iter().find(|p| p["name"] == "bash").unwrap();
    assert_eq!(bash["version"], "5.2.15-2+b8");
    assert_eq!(bash["source_version"], "5.2.15-2");

    // It is the serde form of the core type, and reads back as one.
    let inv: Inventory = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(serde_json::to_value(&inv).unwrap(), v);
}

#[test]
fn table_of_a_sandbox_root() {
    let root = sandbox();
    let out = patchwarden(&[
        "inventory",
        "--root",
        root.path().to_str().unwrap(),
        "--format",
        "table",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "host       db-01");
    assert_eq!(
        lines[1],
        "os         Debian GNU/Linux 12 (bookworm) (Debian:12)"
    );
    assert!(lines[6].starts_with("reboot     required: linux-image-6.1.0-28-amd64"));
    let header = lines[8];
    assert!(header.starts_with("MANAGER  NAME "), "{header}");
    // Every column starts where its header does.
    let columns: Vec<usize> = ["NAME", "VERSION", "ARCH", "SOURCE", "STATUS"]
        .iter()
        .map(|h| header.find(h).unwrap())
        .collect();
    let rows = &lines[9..9 + 720];
    for row in rows {
        for &c in &columns {
            let before = &row[..c];
            assert!(before.ends_with("  "), "column {c} misaligned in {row:?}");
            assert_ne!(row.as_bytes()[c], b' ', "column {c} empty in {row:?}");
        }
    }
    let bash = rows
        .iter()
        .find(|r| r.starts_with("dpkg     bash "))
        .unwrap();
    assert!(bash.contains("bash (5.2.15-2)"), "{bash}");
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with("720 packages (dpkg 720), 0 not fully installed; digest sha256:"),
        "{summary}"
    );
}

#[test]
fn warnings_go_to_stderr_and_do_not_stop_the_command() {
    let root = sandbox();
    // A broken apk database beside the good dpkg one.
    std::fs::create_dir_all(root.path().join("lib/apk/db/installed")).unwrap();
    let out = patchwarden(&["inventory", "--root", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("patchwarden: warning: apk: ")
            && stderr
                .trim_end()
                .ends_with("lib/apk/db/installed is not a regular file"),
        "{stderr}"
    );
    let inv: Inventory = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inv.packages.len(), 720);
}

#[test]
fn json_of_an_sbom() {
    let sbom = shared_data().join("inventories/rpm/ubi9-9.2-755.spdx.json");
    let out = patchwarden(&["inventory", "--sbom", sbom.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let inv: Inventory = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inv.host.hostname, "ubi9-container");
    assert_eq!(inv.packages.len(), 605);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acl = &v["packages"][0];
    assert_eq!(acl["manager"], "rpm");
    assert_eq!(acl["name"], "acl");
    // rpm packages from this SBOM have no source (Red Hat's purls carry no `upstream`).
    assert_eq!(acl["source_name"], Value::Null);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("patchwarden: warning: sbom: components that are not deb"));
}

#[test]
fn errors_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    let out = patchwarden(&["inventory", "--root", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "patchwarden: cannot use {} as a root: cannot read {}: No such file or directory \
             (os error 2)",
            missing.display(),
            missing.display()
        )
    );
    assert!(out.stdout.is_empty());

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"spdxVersion\": \"SPDX-3.0\"}").unwrap();
    let out = patchwarden(&["inventory", "--sbom", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "patchwarden: {}: SPDX-3.0 is not supported",
            bad.display()
        )),
        "{stderr}"
    );

    // --root and --sbom together is a usage error (clap's exit code is 2 too).
    let out = patchwarden(&["inventory", "--root", "/", "--sbom", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}
