//! The CLI's feeds and triage commands over the API (`/api/v1/feeds`, `/api/v1/triage`,
//! `POST /api/v1/advisories`), end to end: the real binary against a real server
//! (`patchwarden-testkit`) with the real Debian 12 host enrolled. An OSV zip of advisories
//! made from the real Debian security suite is imported over the API and opens findings; an
//! advisory entered by hand opens a triage item, which is classified; a manual source is
//! checked; an unknown source is not found (exit 4) and an auditor may not import (exit 3).

mod server_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::Inventory;
use patchwarden_store::{NewUser, Role};
use patchwarden_testkit::TestServer;
use serde_json::{Value, json};
use server_support::{debian_root, security_feed};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

struct Cli {
    config_home: PathBuf,
}

impl Cli {
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_patchwarden"));
        c.env("XDG_CONFIG_HOME", &self.config_home)
            .env_remove("PATCHWARDEN_TOKEN")
            .env_remove("PATCHWARDEN_SERVER")
            .env("NO_COLOR", "1")
            .env("PATCHWARDEN_LOG", "warn");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("running patchwarden")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .cmd()
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "patchwarden {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn login(&self, server: &TestServer, user: &str) {
        let mut child = self
            .cmd()
            .args(["login", "--server", &server.url])
            .args(["--ca-fingerprint", &server.fingerprint.to_string()])
            .args(["--user", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

async fn user(server: &TestServer, name: &str, role: Role) {
    let hash = patchwarden_server::secrets::hash_password(PASSWORD).unwrap();
    let now = patchwarden_testkit::now();
    server
        .store()
        .create_user(
            NewUser {
                id: Uuid::new_v4(),
                username: name.into(),
                password_hash: hash,
                roles: [role].into(),
                groups: Default::default(),
                must_change_password: false,
                created_by: "test".into(),
            },
            now,
            AuditEntry::new(now, Actor::System("test".into()), "user.create", name),
        )
        .await
        .unwrap();
}

fn debian_inventory(dir: &Path) -> Inventory {
    let root = debian_root(dir);
    let out = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(["inventory", "--root"])
        .arg(&root)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The OSV records of `feed` as one zip, the form OSV publishes (`all.zip`).
fn zip_dir(feed: &Path, to: &Path) {
    let file = std::fs::File::create(to).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    for entry in std::fs::read_dir(feed).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        zip.start_file(name, options).unwrap();
        zip.write_all(&std::fs::read(&path).unwrap()).unwrap();
    }
    zip.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_and_triage_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    user(&server, "alice", Role::Admin).await;
    user(&server, "avery", Role::Auditor).await;
    let inventory = debian_inventory(dir.path());
    let (agent, _) = server.enroll(inventory.host.clone()).await;
    agent
        .check_in(&CheckInRequest {
            seq: 1,
            facts: inventory.host.clone(),
            packages: inventory.packages_digest(),
            agent_version: "test".into(),
        })
        .await
        .unwrap();
    agent
        .upload_inventory(&InventoryUpload::Full {
            inventory: inventory.clone(),
        })
        .await
        .unwrap();

    let cli = Cli {
        config_home: dir.path().join("alice"),
    };
    cli.login(&server, "alice");

    // No findings before any advisory.
    let before = cli.json(&["findings", "list"]);
    assert!(before["items"].as_array().unwrap().is_empty());

    // An OSV zip over the API: records read, the host matched again, findings open.
    let feed = security_feed(dir.path());
    let zip = dir.path().join("all.zip");
    zip_dir(&feed, &zip);
    let zip_arg = zip.to_str().unwrap();
    let outcome = cli.json(&["feeds", "import", zip_arg, "--kind", "osv"]);
    assert_eq!(outcome["source"].as_str(), Some("import-osv"));
    assert_eq!(outcome["outcome"].as_str(), Some("imported"));
    assert!(outcome["records"].as_u64().unwrap() > 0);
    assert_eq!(outcome["hosts_rematched"].as_u64(), Some(1));
    let after = cli.json(&["findings", "list", "--all"]);
    assert!(!after["items"].as_array().unwrap().is_empty());
    // The same file again: the same records read.
    let again = cli.json(&["feeds", "import", zip_arg, "--kind", "osv"]);
    assert_eq!(again["records"], outcome["records"], "{again}");

    // The source is listed and shown with its run.
    let list = cli.json(&["feeds", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "import-osv"),
        "{list}"
    );
    let shown = cli.json(&["feeds", "show", "import-osv"]);
    assert_eq!(shown["source"]["kind"].as_str(), Some("osv"));
    assert!(!shown["runs"].as_array().unwrap().is_empty());
    let table = cli.cmd().args(["feeds", "list"]).output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("NAME") && table.contains("import-osv"),
        "{table}"
    );
    let out = cli.run(&["feeds", "show", "no-such-source"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let out = cli.run(&["feeds", "sync", "no-such-source"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    // An advisory entered by hand about a package the host has (its real source name and
    // version), fixed later: a finding and a triage item.
    let pkg = inventory
        .packages
        .iter()
        .find(|p| p.source_name.is_some())
        .unwrap();
    let src = pkg.source_name.clone().unwrap();
    let record = json!({
        "schema_version": "1.6.0",
        "id": "ACME-2026-7",
        "aliases": ["CVE-2026-99002"],
        "published": patchwarden_testkit::now().to_string(),
        "modified": patchwarden_testkit::now().to_string(),
        "summary": format!("{src}: security update"),
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": src},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99:0"}]}]
        }]
    });
    let file = dir.path().join("acme.json");
    std::fs::write(&file, record.to_string()).unwrap();
    let entered = cli.json(&[
        "advisories",
        "enter",
        file.to_str().unwrap(),
        "--source",
        "acme",
    ]);
    assert_eq!(entered["source"].as_str(), Some("acme"));
    assert_eq!(entered["hosts_rematched"].as_u64(), Some(1));

    // A person's check of the manual source is recorded (as its last update, and as a run).
    let checked = cli.json(&[
        "feeds",
        "check",
        "acme",
        "--note",
        "vendor page: nothing new",
    ]);
    assert_eq!(checked["kind"].as_str(), Some("manual"));
    assert!(checked["last_updated_at"].is_string(), "{checked}");
    let shown = cli.json(&["feeds", "show", "acme"]);
    assert!(
        shown["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "checked"),
        "{shown}"
    );

    // Triage: the item is pending, classified high with a reason, then decided.
    let pending = cli.json(&["triage", "list", "--pending", "--all"]);
    let item = pending["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["vulnerability"] == "CVE-2026-99002")
        .unwrap_or_else(|| panic!("no triage item: {pending}"))
        .clone();
    let id = item["id"].as_i64().unwrap().to_string();
    let classified = cli.json(&[
        "triage",
        "classify",
        &id,
        "high",
        "--reason",
        "internet-facing service",
    ]);
    assert_eq!(classified["classification"].as_str(), Some("high"));
    assert!(classified["decided_by"].as_str().unwrap().contains("alice"));
    let decided = cli.json(&["triage", "list", "--decided"]);
    assert!(
        decided["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"].as_i64() == item["id"].as_i64())
    );
    // A classification without a reason is the server's to refuse; clap refuses its absence.
    let out = cli.run(&["triage", "classify", &id, "low"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // An auditor reads the feeds but may not import: exit 3.
    let auditor = Cli {
        config_home: dir.path().join("avery"),
    };
    auditor.login(&server, "avery");
    auditor.json(&["feeds", "list"]);
    let out = auditor.run(&["feeds", "import", zip_arg, "--kind", "osv"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}
