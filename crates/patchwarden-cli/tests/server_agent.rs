//! `patchwarden serve`, `agent enroll|once`, `admin token` and `audit verify` as real
//! processes: an agent reads a sandbox root built from a real Debian 12 dpkg status, and the
//! server keeps exactly the findings `patchwarden scan` finds for the same root and feeds —
//! the same findings, the same classes, the same numbers. Then a package is upgraded and the
//! delta closes its findings with the fixing version; the server stops gracefully on SIGTERM;
//! and editing or deleting an audit row by hand makes `audit verify` fail at that row.
//!
//! The advisory feed is made here from real archive data: one OSV advisory per source package
//! that Debian's bookworm-security suite updated (`shared/data/debian/
//! bookworm-security-main-amd64.tsv`), fixed in the version the suite carries, each aliased to
//! a CVE of CISA's KEV catalogue in turn so that the policy's classes differ between findings.
//! The shared data has no Debian 12 advisories of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use patchwarden_store::{FindingFilter, FindingState, HostFilter};
use serde_json::{Value, json};

fn shared_data() -> PathBuf {
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

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patchwarden"));
    c.env("PATCHWARDEN_LOG", "warn");
    c
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A sandbox root with the real Debian 12 status file.
fn debian_root(dir: &Path) -> PathBuf {
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
fn security_feed(dir: &Path) -> PathBuf {
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
struct Server {
    child: Child,
    url: String,
    fingerprint: String,
}

fn start_server(config: &Path) -> Server {
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

fn run_ok(cmd: &mut Command) -> String {
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
type Row = (String, String, String, String, String, String);

fn scan_rows(root: &Path, feed: &Path, kev: &Path) -> (BTreeSet<Row>, Value) {
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

#[test]
fn the_server_keeps_the_findings_scan_finds_for_the_same_root_and_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let root = debian_root(dir.path());
    let feed = security_feed(dir.path());
    let kev = shared_data().join("kev/known_exploited_vulnerabilities.json");
    let data_dir = dir.path().join("server");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[listen]\napi = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n\
             [advisories]\nfiles = [{:?}, {:?}]\n",
            data_dir, feed, kev
        ),
    )
    .unwrap();
    let mut server = start_server(&config);
    let db = format!("sqlite://{}", data_dir.join("patchwarden.db").display());

    let secret = run_ok(
        bin()
            .args([
                "admin",
                "token",
                "create",
                "--group",
                "web",
                "--uses",
                "1",
                "--database",
            ])
            .arg(&db),
    );
    let state = dir.path().join("agent-state");
    let enrolled = run_ok(
        bin()
            .args([
                "agent",
                "enroll",
                "--server",
                &server.url,
                "--token",
                secret.trim(),
            ])
            .args(["--ca-fingerprint", &server.fingerprint, "--state-dir"])
            .arg(&state)
            .arg("--root")
            .arg(&root),
    );
    assert!(enrolled.contains("enrolled as host"), "{enrolled}");
    assert!(enrolled.contains("inventory sent (full)"), "{enrolled}");
    assert!(enrolled.contains("new host"), "{enrolled}");

    let (scan, summary) = scan_rows(&root, &feed, &kev);
    assert!(
        scan.len() > 20,
        "the feed should expose the host: {summary}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(patchwarden_server::open_store(&db))
        .unwrap();
    let hosts = runtime
        .block_on(store.list_hosts(&HostFilter::default()))
        .unwrap();
    assert_eq!(hosts.len(), 1);
    let host = hosts[0].id;
    let open = |state| {
        runtime
            .block_on(store.list_findings(&FindingFilter {
                host: Some(host),
                state: Some(state),
                ..FindingFilter::default()
            }))
            .unwrap()
    };
    let held: BTreeSet<Row> = open(FindingState::Open)
        .iter()
        .map(|f| {
            (
                f.finding.vulnerability.clone(),
                f.finding.package.clone(),
                f.finding.arch.clone().unwrap_or_default(),
                f.finding.installed.clone(),
                f.finding.fixed.clone().unwrap_or_default(),
                f.classification
                    .class
                    .map_or(String::new(), |c| c.to_string()),
            )
        })
        .collect();
    assert_eq!(held, scan, "the server's findings differ from scan's");
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    for r in &held {
        *by_class.entry(r.5.clone()).or_default() += 1;
    }
    let scan_by_class: BTreeMap<String, u64> =
        serde_json::from_value(summary["by_class"].clone()).unwrap();
    assert_eq!(by_class, scan_by_class);
    assert!(by_class.len() >= 2, "several classes: {by_class:?}");
    println!(
        "server and scan agree: {} findings, {by_class:?}",
        held.len()
    );

    // Nothing changed: the next check-in sends nothing.
    let once = run_ok(
        bin()
            .args(["agent", "once", "--state-dir"])
            .arg(&state)
            .arg("--root")
            .arg(&root),
    );
    assert!(once.contains("inventory unchanged"), "{once}");

    // Upgrade every binary of one vulnerable source package to its fixed version: the delta
    // closes its findings with that version.
    let (vuln, package, _, installed, fixed, _) = scan.iter().next().unwrap().clone();
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
                            format!("Version: {fixed}")
                        } else if l.starts_with("Source: ") {
                            l.split(" (").next().unwrap().to_owned()
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
    let once = run_ok(
        bin()
            .args(["agent", "once", "--state-dir"])
            .arg(&state)
            .arg("--root")
            .arg(&root),
    );
    assert!(once.contains("inventory sent (delta)"), "{once}");
    let closed = open(FindingState::Closed);
    let this = closed
        .iter()
        .find(|f| f.finding.vulnerability == vuln && f.finding.package == package)
        .unwrap_or_else(|| panic!("{vuln} on {package} {installed} closed: {once}"));
    assert_eq!(this.fixed_version.as_deref(), Some(fixed.as_str()));
    assert!(this.closed_at.is_some());
    let (scan_after, _) = scan_rows(&root, &feed, &kev);
    assert_eq!(open(FindingState::Open).len(), scan_after.len());

    // SIGTERM: the server finishes and exits cleanly.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "the server exits 0 after SIGTERM: {status}"
    );

    // The audit chain is intact — until a row is edited, or deleted, by hand.
    drop(store);
    let verify = |db: &str| {
        let out = bin()
            .args(["audit", "verify", "--database", db])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = verify(&db);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("audit chain intact"), "{text}");

    let db_path = data_dir.join("patchwarden.db");
    let edited = dir.path().join("edited.db");
    std::fs::copy(&db_path, &edited).unwrap();
    let conn = rusqlite::Connection::open(&edited).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('audit_events')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(columns.iter().any(|c| c == "seq"), "{columns:?}");
    // An edit that keeps the JSON valid: the object of event 3.
    let entry_column = columns
        .iter()
        .find(|c| c.as_str() == "entry")
        .cloned()
        .unwrap_or_else(|| panic!("no entry column in {columns:?}"));
    let changed = conn
        .execute(
            &format!(
                "UPDATE audit_events SET {entry_column} = replace({entry_column}, '\"object\":\"', \
                 '\"object\":\"x') WHERE seq = 3"
            ),
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let (code, text) = verify(&format!("sqlite://{}", edited.display()));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("event 3"), "{text}");

    let deleted = dir.path().join("deleted.db");
    std::fs::copy(&db_path, &deleted).unwrap();
    let conn = rusqlite::Connection::open(&deleted).unwrap();
    assert_eq!(
        conn.execute("DELETE FROM audit_events WHERE seq = 4", [])
            .unwrap(),
        1
    );
    drop(conn);
    let (code, text) = verify(&format!("sqlite://{}", deleted.display()));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("event 5"), "{text}");
}
