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

mod server_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use patchwarden_store::{FindingFilter, FindingState, HostFilter};
use server_support::{
    Row, audit_verify, bin, debian_root, run_ok, scan_rows, security_feed, shared_data,
    start_server, upgrade_package, write_config,
};

#[test]
fn the_server_keeps_the_findings_scan_finds_for_the_same_root_and_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let root = debian_root(dir.path());
    let feed = security_feed(dir.path());
    let kev = shared_data().join("kev/known_exploited_vulnerabilities.json");
    let data_dir = dir.path().join("server");
    let config = write_config(dir.path(), &data_dir, &[&feed, &kev]);
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
    upgrade_package(&root, &package, &fixed);
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

    // An administrator retires the host: its agent is refused from then on.
    let retired = run_ok(
        bin()
            .args(["admin", "host", "retire", &host.to_string(), "--database"])
            .arg(&db),
    );
    assert!(retired.contains("retired host"), "{retired}");
    let out = bin()
        .args(["agent", "once", "--state-dir"])
        .arg(&state)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retired"), "{err}");

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
    let verify = audit_verify;
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

/// `patchwarden config example` prints a configuration `serve` reads as the defaults, and
/// `config show` never prints the database password.
#[test]
fn config_example_parses_and_config_show_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let example = run_ok(bin().args(["config", "example"]));
    let path = dir.path().join("example.toml");
    std::fs::write(&path, &example).unwrap();
    let (config, warnings) = patchwarden_server::Config::load(Some(&path), Vec::new()).unwrap();
    assert_eq!(config, patchwarden_server::Config::default());
    assert!(warnings.is_empty());
    let shown = run_ok(
        bin()
            .args(["config", "show", "--config"])
            .arg(&path)
            .env("PATCHWARDEN_DATABASE_URL", "postgres://pw:hunter2@db/pw"),
    );
    assert!(shown.contains("pw:***@db"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let out = bin()
        .args(["config", "show", "--config"])
        .arg(&path)
        .env("PATCHWARDEN_LISTEN_API", "nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen.api"));
}
