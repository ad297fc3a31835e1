//! `patchwarden exceptions` end to end: the real binary against a real server holding a host
//! with the real Debian 12 packages and their findings. A security officer requests an
//! exception for the whole host, cannot approve it herself (exit 1, the rule's words), an
//! auditor cannot approve (exit 3), an approver does; the host's findings are then listed as
//! excepted with the exception's number, until it is revoked.

mod cli_support;
mod server_support;

use std::path::Path;
use std::process::Command;

use cli_support::{Cli, PASSWORD, user};
use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload};
use patchwarden_core::inventory::Inventory;
use patchwarden_store::Role;
use patchwarden_testkit::TestServer;
use server_support::{debian_root, security_feed};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_over_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let feed = security_feed(dir.path());
    let feed_spec = format!("osv:{}", feed.display());
    let server = TestServer::start_with(|c| c.advisories.files = vec![feed_spec]).await;
    user(&server, "sasha", &[Role::Security], false).await;
    user(&server, "bob", &[Role::Approver], false).await;
    user(&server, "avery", &[Role::Auditor], false).await;

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

    let as_user = |name: &str| {
        let cli = Cli {
            config_home: dir.path().join(name),
            server: server.url.clone(),
            fingerprint: server.fingerprint.to_string(),
        };
        let out = cli.login(name, &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "{out:?}");
        cli
    };
    let sasha = as_user("sasha");
    let bob = as_user("bob");
    let avery = as_user("avery");

    let open = sasha.json(&["findings", "list", "--host", &host_id, "--all"]);
    let open_count = open["items"].as_array().unwrap().len();
    assert!(open_count > 0, "the host has findings");
    let excepted = |cli: &Cli| {
        cli.json(&["findings", "list", "--state", "excepted", "--all"])["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(excepted(&sasha).is_empty());

    let requested = sasha.json(&[
        "exceptions",
        "request",
        "--justification",
        "patch-causes-instability",
        "--explanation",
        "the historian's vendor certifies only the installed libraries; case 2291",
        "--control",
        "network-segmentation:OT VLAN 12, no route from the office LAN",
        "--control",
        "intrusion-prevention:IPS signatures for the open CVEs on the OT uplink",
        "--host",
        &host_id,
        "--days",
        "60",
    ]);
    let number = requested["number"].as_str().unwrap().to_owned();
    assert_eq!(requested["state"], "requested");

    // The requester cannot approve: exit 1 with the rule's words.
    let out = sasha.run(&["exceptions", "approve", &number]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the requester cannot approve their own exception"),
        "{err}"
    );
    // An auditor may not approve: exit 3.
    let out = avery.run(&["exceptions", "approve", &number]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // Unknown: exit 4.
    let out = bob.run(&["exceptions", "approve", "EXC-1999-0001"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    let approved = bob.json(&["exceptions", "approve", &number]);
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["in_force"], true);

    // Every open finding of the host is excepted, marked with the number.
    let items = excepted(&avery);
    assert_eq!(items.len(), open_count);
    for f in &items {
        assert_eq!(f["standing"], "excepted");
        assert_eq!(f["exception"]["number"], number.as_str());
    }
    let table = avery.ok(&["findings", "list", "--host", &host_id]);
    assert!(
        table.contains("STANDING") && table.contains(&number),
        "{table}"
    );
    let shown = avery.ok(&["exceptions", "show", &number]);
    assert!(
        shown.contains("intrusion_prevention") || shown.contains("intrusion"),
        "{shown}"
    );
    let listed = avery.json(&["exceptions", "list", "--state", "approved"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let table = avery.ok(&["exceptions", "list"]);
    assert!(
        table.contains(&number) && table.contains("in force"),
        "{table}"
    );

    // Revoked: back on the clock.
    let revoked = bob.json(&[
        "exceptions",
        "revoke",
        &number,
        "--reason",
        "the vendor certified the fixed libraries",
    ]);
    assert_eq!(revoked["state"], "revoked");
    assert!(excepted(&avery).is_empty());
}
