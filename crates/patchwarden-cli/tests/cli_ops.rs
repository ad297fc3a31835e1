//! The operator CLI end to end: the real `patchwarden` binary against a real server
//! (`patchwarden-testkit`: TLS with a pinned CA, SQLite) holding a host enrolled with the real
//! Debian 12 status file and findings from advisories made of the real Debian security suite
//! (`server_support::security_feed`). Operators are made in the server's store with a known
//! password; everything else goes through the CLI: login (config file 0600), hosts and
//! findings in table and JSON with filters, exit codes for forbidden and not found, users,
//! API tokens, enrollment tokens, logout revoking the token.

mod server_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::Inventory;
use patchwarden_store::{NewUser, Role};
use patchwarden_testkit::TestServer;
use serde_json::Value;
use server_support::{debian_root, security_feed};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

/// The CLI as an operator on this machine: its own config directory, no token from the
/// environment of whoever runs the tests.
struct Cli {
    config_home: PathBuf,
    server: String,
    fingerprint: String,
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

    /// Runs and expects success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "patchwarden {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    fn login(&self, user: &str, password_lines: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(["login", "--server", &self.server])
            .args(["--ca-fingerprint", &self.fingerprint])
            .args(["--user", user, "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password_lines.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn config_file(&self) -> PathBuf {
        self.config_home.join("patchwarden/cli.toml")
    }
}

async fn user(server: &TestServer, name: &str, roles: &[Role], must_change: bool) {
    let hash = patchwarden_server::secrets::hash_password(PASSWORD).unwrap();
    let now = patchwarden_testkit::now();
    server
        .store()
        .create_user(
            NewUser {
                id: Uuid::new_v4(),
                username: name.into(),
                password_hash: hash,
                roles: roles.iter().copied().collect(),
                groups: Default::default(),
                must_change_password: must_change,
                created_by: "test".into(),
            },
            now,
            AuditEntry::new(now, Actor::System("test".into()), "user.create", name),
        )
        .await
        .unwrap();
}

/// The real Debian 12 host's inventory, as `patchwarden inventory` reads it from a root.
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
    serde_json::from_slice(&out.stdout).expect("the inventory's JSON")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// One server for the whole story: starting one and matching the real host is the slow part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_cli_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let feed = security_feed(dir.path());
    let feed_spec = format!("osv:{}", feed.display());
    let server = TestServer::start_with(|c| c.advisories.files = vec![feed_spec]).await;
    user(&server, "alice", &[Role::Admin], false).await;
    user(&server, "avery", &[Role::Auditor], false).await;
    user(&server, "newbie", &[Role::Auditor], true).await;

    // A host with the real Debian 12 packages, enrolled and uploaded as its agent would.
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
    let host_id = agent.host_id().to_owned();

    let cli = Cli {
        config_home: dir.path().join("config"),
        server: server.url.clone(),
        fingerprint: server.fingerprint.to_string(),
    };

    // Before login: not authenticated, exit 3.
    let out = cli.run(&["hosts", "list"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    // A wrong password: refused, exit 3, no config file.
    let out = cli.login("alice", "not the password\n");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(!cli.config_file().exists());

    // Login writes the config file, 0600, with the server, the pin and a pwt_ token.
    let out = cli.login("alice", &format!("{PASSWORD}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = cli.config_file();
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    let saved: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(saved["server"].as_str(), Some(server.url.as_str()));
    assert_eq!(
        saved["ca_fingerprint"].as_str(),
        Some(cli.fingerprint.as_str())
    );
    let token = saved["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pwt_"), "{token}");
    let token_id = saved["token_id"].as_str().unwrap().to_owned();

    // Hosts: JSON is the API's page; the table names the host.
    let hosts = cli.json(&["hosts", "list"]);
    let items = hosts["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"].as_str(), Some(host_id.as_str()));
    assert_eq!(items[0]["hostname"].as_str(), Some("web-07"));
    let open = items[0]["open_findings"].as_u64().unwrap();
    assert!(open > 0, "the real Debian 12 host has open findings");
    let table = cli.ok(&["hosts", "list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID"), "{table}");
    let row = lines.next().unwrap();
    assert!(row.contains("web-07") && row.contains(&host_id), "{table}");
    assert!(
        !table.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let shown = cli.json(&["hosts", "show", &host_id]);
    assert_eq!(shown["host"]["hostname"].as_str(), Some("web-07"));
    assert_eq!(
        shown["packages"].as_array().unwrap().len(),
        inventory.packages.len()
    );

    // Findings: every page equals the host's open count; a page of 2 says where to go on.
    let all = cli.json(&["findings", "list", "--all", "--limit", "7"]);
    let found = all["items"].as_array().unwrap();
    assert_eq!(found.len() as u64, open);
    assert!(all["next_after"].is_null());
    let page = cli.json(&["findings", "list", "--limit", "2"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["next_after"].is_i64());
    // Filters reach the server: this host's findings are all of them; none are closed; the
    // criticality filter keeps exactly the findings of that class.
    let by_host = cli.json(&["findings", "list", "--all", "--host", &host_id]);
    assert_eq!(by_host["items"].as_array().unwrap().len() as u64, open);
    let other = Uuid::new_v4().to_string();
    let none = cli.json(&["findings", "list", "--host", &other]);
    assert!(none["items"].as_array().unwrap().is_empty());
    let closed = cli.json(&["findings", "list", "--state", "closed"]);
    assert!(closed["items"].as_array().unwrap().is_empty());
    let class = found
        .iter()
        .find_map(|f| f["criticality"].as_str())
        .map(str::to_owned);
    if let Some(class) = class {
        let want = found
            .iter()
            .filter(|f| f["criticality"].as_str() == Some(class.as_str()))
            .count();
        let arg = class.replace('_', "-");
        let got = cli.json(&["findings", "list", "--all", "--criticality", &arg]);
        let got = got["items"].as_array().unwrap();
        assert_eq!(got.len(), want);
        assert!(
            got.iter()
                .all(|f| f["criticality"].as_str() == Some(class.as_str()))
        );
    }
    let past = cli.json(&["findings", "list", "--due-before", "2000-01-01T00:00:00Z"]);
    assert!(past["items"].as_array().unwrap().is_empty());
    let table = cli.ok(&["findings", "list", "--host", &host_id]);
    let first = &found[0];
    assert!(
        table.contains(first["finding"]["vulnerability"].as_str().unwrap()),
        "{table}"
    );

    // An advisory of a finding, and one that does not exist: exit 4.
    let adv = first["finding"]["advisories"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = cli.json(&["advisories", "show", &adv]);
    assert_eq!(shown["advisory"]["id"].as_str(), Some(adv.as_str()));
    let out = cli.run(&["advisories", "show", "PWTEST-no-such-package"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // An unknown host: exit 4.
    let out = cli.run(&["hosts", "show", &other]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let out = cli.run(&["hosts", "show", "web-07"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    // Users: create (a one-time password once), set roles, disable and enable.
    let created = cli.json(&["users", "create", "bob", "--roles", "officer"]);
    assert_eq!(created["user"]["username"].as_str(), Some("bob"));
    assert!(created["one_time_password"].as_str().unwrap().len() >= 12);
    let bob = created["user"]["id"].as_str().unwrap().to_owned();
    let changed = cli.json(&["users", "set-roles", "bob", "--roles", "officer,approver"]);
    assert_eq!(changed["roles"], serde_json::json!(["officer", "approver"]));
    let disabled = cli.json(&["users", "disable", &bob]);
    assert_eq!(disabled["enabled"].as_bool(), Some(false));
    let enabled = cli.json(&["users", "enable", "bob"]);
    assert_eq!(enabled["enabled"].as_bool(), Some(true));
    let list = cli.ok(&["users", "list"]);
    assert!(
        list.contains("bob") && list.contains("officer,approver"),
        "{list}"
    );
    let out = cli.run(&["users", "disable", "nobody-by-that-name"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    // API tokens: create one, it works, revoke it, it no longer does.
    // The server makes tokens only from a login: the password comes on stdin.
    let made = {
        use std::io::Write;
        let mut child = cli
            .cmd()
            .args([
                "tokens",
                "create",
                "ci",
                "--roles",
                "admin",
                "--password-stdin",
            ])
            .args(["--format", "json"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let secret = made["secret"].as_str().unwrap().to_owned();
    let ci_id = made["token"]["id"].as_str().unwrap().to_owned();
    let with_it = cli
        .cmd()
        .args(["hosts", "list", "--token", &secret])
        .output()
        .unwrap();
    assert!(with_it.status.success(), "{with_it:?}");
    let listed = cli.json(&["tokens", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == ci_id.as_str())
    );
    let revoked = cli.json(&["tokens", "revoke", &ci_id]);
    assert!(revoked["revoked_at"].is_string());
    let after = cli
        .cmd()
        .args(["hosts", "list"])
        .env("PATCHWARDEN_TOKEN", &secret)
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(3), "{after:?}");

    // Enrollment tokens: create, list, revoke.
    let made = cli.json(&[
        "enrollment-tokens",
        "create",
        "--group",
        "web",
        "--max-uses",
        "3",
        "--note",
        "cli test",
    ]);
    assert!(made["secret"].as_str().unwrap().starts_with("pwe_"));
    let et = made["token"]["id"].as_str().unwrap().to_owned();
    let list = cli.ok(&["enrollment-tokens", "list"]);
    assert!(list.contains(&et) && list.contains("cli test"), "{list}");
    let revoked = cli.json(&["enrollment-tokens", "revoke", &et]);
    assert!(revoked["revoked_at"].is_string());

    // Forbidden: an auditor's token may not create users; exit 3 with the server's message.
    let auditor = Cli {
        config_home: dir.path().join("auditor"),
        server: cli.server.clone(),
        fingerprint: cli.fingerprint.clone(),
    };
    let out = auditor.login("avery", &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{out:?}");
    let out = auditor.run(&["users", "create", "eve", "--roles", "admin"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("forbidden"), "{stderr}");
    // … but may read the fleet.
    auditor.ok(&["findings", "list"]);

    // A one-time password: login sets the new one (the second line) and then logs in.
    let newbie = Cli {
        config_home: dir.path().join("newbie"),
        server: cli.server.clone(),
        fingerprint: cli.fingerprint.clone(),
    };
    let out = newbie.login(
        "newbie",
        &format!("{PASSWORD}\na much better new password\n"),
    );
    assert!(out.status.success(), "{out:?}");
    newbie.ok(&["hosts", "list"]);

    // A wrong pin: the server is unreachable as trusted, exit 5.
    let out = cli
        .cmd()
        .args(["hosts", "list", "--ca-fingerprint"])
        .arg("00".repeat(32))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");

    // Logout revokes the token and removes it from the file; the token no longer works.
    cli.ok(&["logout"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token), "{text}");
    assert!(
        text.contains(&server.url),
        "the server stays for the next login"
    );
    assert_eq!(mode(&file), 0o600);
    let out = cli
        .cmd()
        .args(["hosts", "list", "--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = cli.run(&["hosts", "list"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let _ = token_id;
}
