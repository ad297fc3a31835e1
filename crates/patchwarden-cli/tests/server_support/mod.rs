//! Helpers of the server end-to-end tests: the real binary as server, agent and scanner, a
//! sandbox root from the real Debian 12 status, and the advisory feed made from real archive
//! data (see `server_agent.rs` for how).

// Each test file uses the helpers it needs; the others would be warned about as unused.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

pub(crate) fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("osv").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

pub(crate) fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patchwarden"));
    c.env("PATCHWARDEN_LOG", "warn");
    c
}

pub(crate) fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A sandbox root with the real Debian 12 status file.
pub(crate) fn debian_root(dir: &Path) -> PathBuf {
    let data = shared_data();
    let root = dir.join("root");
    write(
        &root,
        "etc/os-release",
        &std::fs::read_to_string(
            data.join("inventories/os-release/claircore_debian_testdata_dist_12_etc_os-release"),
        )
        .unwrap(),
    );
    write(
        &root,
        "var/lib/dpkg/status",
        &std::fs::read_to_string(data.join("debian/debian12-host.status")).unwrap(),
    );
    write(&root, "etc/hostname", "web-07\n");
    write(
        &root,
        "etc/machine-id",
        "4c4c4544005a4e108052b7c04f4e3732\n",
    );
    root
}

/// The feed described in the module documentation: an OSV directory.
pub(crate) fn security_feed(dir: &Path) -> PathBuf {
    let data = shared_data();
    let tsv =
        std::fs::read_to_string(data.join("debian/bookworm-security-main-amd64.tsv")).unwrap();
    let kev: Value = serde_json::from_slice(
        &std::fs::read(data.join("kev/known_exploited_vulnerabilities.json")).unwrap(),
    )
    .unwrap();
    let cves: Vec<&str> = kev["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cveID"].as_str().unwrap())
        .collect();
    // The security suite's version of each source package: its binaries' version without a
    // binNMU suffix (the source version Debian advisories name).
    let mut fixed: BTreeMap<&str, String> = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (version, source) = (cols[1], cols[3]);
        let source_version = match version.rsplit_once("+b") {
            Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) => base,
            _ => version,
        };
        fixed
            .entry(source)
            .or_insert_with(|| source_version.to_owned());
    }
    let feed = dir.join("feed");
    std::fs::create_dir_all(&feed).unwrap();
    for (i, (source, version)) in fixed.iter().enumerate() {
        // Every third advisory is about a known-exploited CVE; the rest are about CVEs that
        // are not in the catalogue.
        let cve = if i % 3 == 0 {
            cves[i % cves.len()].to_owned()
        } else {
            format!("CVE-2099-{:05}", i)
        };
        let record = json!({
            "schema_version": "1.6.0",
            "id": format!("PWTEST-{source}"),
            "upstream": [cve],
            "published": "2025-06-01T00:00:00Z",
            "modified": "2025-06-01T00:00:00Z",
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": source},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": version}]}]
            }]
        });
        std::fs::write(
            feed.join(format!("PWTEST-{source}.json")),
            record.to_string(),
        )
        .unwrap();
    }
    feed
}

/// A `patchwarden serve` child, its API URL and CA fingerprint.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) fingerprint: String,
}

pub(crate) fn start_server(config: &Path) -> Server {
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut url, mut fingerprint) = (None, None);
    while url.is_none() || fingerprint.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the server prints its URL and fingerprint");
        if let Some(u) = line.strip_prefix("patchwarden: serving the API at ") {
            url = Some(u.to_owned());
        }
        if let Some((_, f)) = line.split_once("(agents pin it: --ca-fingerprint): ") {
            fingerprint = Some(f.to_owned());
        }
        assert!(!line.contains("error"), "server: {line}");
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Server {
        child,
        url: url.unwrap(),
        fingerprint: fingerprint.unwrap(),
    }
}

pub(crate) fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed ({}):\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (vulnerability, package, arch, installed, fixed, class) of every finding scan reports.
pub(crate) type Row = (String, String, String, String, String, String);

pub(crate) fn scan_rows(root: &Path, feed: &Path, kev: &Path) -> (BTreeSet<Row>, Value) {
    let out = bin()
        .args(["scan", "--format", "json", "--root"])
        .arg(root)
        .arg("--feed")
        .arg(feed)
        .arg("--feed")
        .arg(kev)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let rows = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                s(&f["vulnerability"]),
                s(&f["package"]),
                s(&f["arch"]),
                s(&f["installed"]),
                s(&f["fixed"]),
                s(&f["criticality"]),
            )
        })
        .collect();
    (rows, json["summary"].clone())
}

/// A server configuration in `dir` with its data directory at `data_dir`, listening on free
/// loopback ports, importing `files`.
pub(crate) fn write_config(dir: &Path, data_dir: &Path, files: &[&Path]) -> PathBuf {
    let config = dir.join("server.toml");
    let files: Vec<String> = files.iter().map(|f| format!("{f:?}")).collect();
    std::fs::write(
        &config,
        format!(
            "data_dir = {data_dir:?}\n[listen]\napi = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n\
             [advisories]\nfiles = [{}]\n",
            files.join(", ")
        ),
    )
    .unwrap();
    config
}

/// Sets every binary of `package` in the root's dpkg status to `version` (its source version
/// too).
pub(crate) fn upgrade_package(root: &Path, package: &str, version: &str) {
    let status_path = root.join("var/lib/dpkg/status");
    let status = std::fs::read_to_string(&status_path).unwrap();
    let upgraded: Vec<String> = status
        .split("\n\n")
        .map(|stanza| {
            if stanza.lines().any(|l| l == format!("Package: {package}")) {
                stanza
                    .lines()
                    .map(|l| {
                        if l.starts_with("Version: ") {
                            format!("Version: {version}")
                        } else if l.starts_with("Source: ") {
                            l.split(" (").next().unwrap_or(l).to_owned()
                        } else {
                            l.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                stanza.to_owned()
            }
        })
        .collect();
    std::fs::write(&status_path, upgraded.join("\n\n")).unwrap();
}

/// Whether the audit chain in `db` verifies, and what `audit verify` said.
pub(crate) fn audit_verify(db: &str) -> (Option<i32>, String) {
    let out = bin()
        .args(["audit", "verify", "--database", db])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
