//! Findings kept current by the server: matched at the first upload, re-matched for the
//! packages an inventory changes, re-matched across the fleet for the packages changed
//! advisories name (and only on the hosts that have them), closed with the time and the
//! fixing version, and a new host flagged until it is current (P19).

use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload};
use patchwarden_client::AgentClient;
use patchwarden_core::audit::Actor;
use patchwarden_core::inventory::{HostFacts, Inventory, Manager, Package, PackageStatus};
use patchwarden_store::{FindingFilter, FindingState, Store};
use patchwarden_testkit::{TestServer, debian_facts};
use serde_json::json;
use uuid::Uuid;

fn pkg(name: &str, version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some("amd64".into()),
        source_name: Some(name.into()),
        source_version: Some(version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

fn inventory(facts: &HostFacts, packages: Vec<Package>) -> Inventory {
    let mut inv = Inventory {
        host: facts.clone(),
        packages,
        ..Inventory::default()
    };
    inv.canonicalize();
    inv
}

fn advisory(dir: &std::path::Path, id: &str, cve: &str, package: &str, fixed: &str) {
    let record = json!({
        "schema_version": "1.6.0", "id": id, "upstream": [cve],
        "published": "2025-06-01T00:00:00Z", "modified": "2025-06-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    std::fs::write(dir.join(format!("{id}.json")), record.to_string()).unwrap();
}

async fn upload(agent: &AgentClient, seq: u64, inv: &Inventory, old: Option<&Inventory>) -> bool {
    let answer = agent
        .check_in(&CheckInRequest {
            seq,
            facts: inv.host.clone(),
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap();
    let upload = match old {
        Some(old) => InventoryUpload::Delta {
            delta: patchwarden_core::inventory::delta(old, inv),
        },
        None => InventoryUpload::Full {
            inventory: inv.clone(),
        },
    };
    agent.upload_inventory(&upload).await.unwrap();
    answer.standing.new_host
}

async fn findings(store: &dyn Store, host: Uuid, state: FindingState) -> Vec<(String, String)> {
    let mut v: Vec<_> = store
        .list_findings(&FindingFilter {
            host: Some(host),
            state: Some(state),
            ..FindingFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.finding.package, f.finding.vulnerability))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn findings_follow_inventories_and_advisories_and_close_with_the_fixing_version() {
    let feeds = tempfile::tempdir().unwrap();
    advisory(feeds.path(), "ADV-1", "CVE-2099-35", "bash", "5.2.15-3");
    let feed = feeds.path().to_str().unwrap().to_owned();
    let server = TestServer::start_with(|c| c.advisories.files = vec![format!("osv:{feed}")]).await;

    let fa = debian_facts("a", "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0");
    let fb = debian_facts("b", "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0");
    let (a, _) = server.enroll(fa.clone()).await;
    let (b, _) = server.enroll(fb.clone()).await;
    let ha = Uuid::parse_str(a.host_id()).unwrap();
    let hb = Uuid::parse_str(b.host_id()).unwrap();
    let a1 = inventory(
        &fa,
        vec![pkg("bash", "5.2.15-2"), pkg("zlib1g", "1.2.13-1")],
    );
    let b1 = inventory(&fb, vec![pkg("curl", "7.88.1-10")]);
    assert!(upload(&a, 1, &a1, None).await, "a new host is flagged");
    upload(&b, 1, &b1, None).await;
    let store = server.store();
    assert_eq!(
        findings(store.as_ref(), ha, FindingState::Open).await,
        vec![("bash".into(), "CVE-2099-35".into())]
    );
    assert!(
        findings(store.as_ref(), hb, FindingState::Open)
            .await
            .is_empty()
    );

    // A new advisory arrives (the server restarts with it in its files): host A's zlib1g is
    // matched without A checking in; B, which has no zlib1g, is not touched.
    let (dir, config) = server.stop().await;
    advisory(feeds.path(), "ADV-22", "CVE-2099-42", "zlib1g", "1.2.13-2");
    let server = TestServer::start_in(dir, config).await;
    let store = server.store();
    assert_eq!(
        findings(store.as_ref(), ha, FindingState::Open).await,
        vec![
            ("bash".into(), "CVE-2099-35".into()),
            ("zlib1g".into(), "CVE-2099-42".into())
        ]
    );
    let syncs: Vec<String> = store
        .audit_events(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.entry.action == "findings.sync" && e.entry.actor == Actor::System("matcher".into())
        })
        .map(|e| e.entry.object)
        .collect();
    assert_eq!(syncs, vec![format!("host:{ha}")]);

    // A upgrades bash: only that finding closes, with the version that fixed it; zlib1g keeps
    // its first-seen time.
    let a = server.client.agent(a.host_id(), a.key().clone());
    let before = store
        .list_findings(&FindingFilter {
            host: Some(ha),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .await
        .unwrap();
    let zlib_first_seen = before
        .iter()
        .find(|f| f.finding.package == "zlib1g")
        .unwrap()
        .first_seen;
    let a2 = inventory(
        &fa,
        vec![pkg("bash", "5.2.15-3"), pkg("zlib1g", "1.2.13-1")],
    );
    assert!(
        upload(&a, 2, &a2, Some(&a1)).await,
        "still flagged: zlib1g has a fix"
    );
    let closed = store
        .list_findings(&FindingFilter {
            host: Some(ha),
            state: Some(FindingState::Closed),
            ..FindingFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].finding.package, "bash");
    assert_eq!(closed[0].fixed_version.as_deref(), Some("5.2.15-3"));
    assert!(closed[0].closed_at.is_some());
    let after = store
        .list_findings(&FindingFilter {
            host: Some(ha),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].first_seen, zlib_first_seen);
    assert!(!store.finding_history(after[0].id).await.unwrap().is_empty());

    // Once nothing fixable is open, the new-host flag drops, and the moment is recorded.
    let a3 = inventory(
        &fa,
        vec![pkg("bash", "5.2.15-3"), pkg("zlib1g", "1.2.13-2")],
    );
    upload(&a, 3, &a3, Some(&a2)).await;
    let answer = a
        .check_in(&CheckInRequest {
            seq: 4,
            facts: fa.clone(),
            packages: a3.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap();
    assert!(!answer.standing.new_host);
    assert_eq!(answer.standing.open_findings, 0);
    let host = store.get_host(ha).await.unwrap().unwrap();
    assert!(host.baseline_met_at.is_some(), "{host:?}");
    assert!(host.labels.is_empty(), "{:?}", host.labels);
}
