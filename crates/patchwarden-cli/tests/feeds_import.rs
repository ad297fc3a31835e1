//! `patchwarden feeds import` (air-gapped sites): every AlmaLinux advisory
//! (`shared/data/osv/almalinux-all.zip`) imported by hand into a server's database gives the
//! AlmaLinux 9 host there the findings `patchwarden scan` finds for the same packages (Red
//! Hat's UBI 9 SBOM) and feed — same vulnerabilities, packages, versions, fixes and classes —
//! wherever the SBOM's missing epochs do not matter (see the test). A second import of the same file changes nothing; a file that is not a feed is
//! refused and the data in force stays.

mod server_support;

use std::collections::BTreeSet;

use patchwarden_core::inventory::Inventory;
use patchwarden_store::conformance::fixtures;
use patchwarden_store::{FindingFilter, FindingState, SecretHash};
use serde_json::Value;
use server_support::{Row, bin, shared_data};

#[test]
fn an_imported_almalinux_feed_gives_a_host_the_findings_scan_finds() {
    let data = shared_data();
    let zip = data.join("osv/almalinux-all.zip");
    let sbom = data.join("inventories/rpm/ubi9-9.2-755.spdx.json");
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("patchwarden.db").display());

    // The host, enrolled in the server's database with the SBOM's packages as AlmaLinux 9.
    let mut inventory: Inventory = patchwarden_agent::inventory::collect::collect_sbom(&sbom)
        .unwrap()
        .inventory;
    inventory.host.os.ecosystem = Some("AlmaLinux:9".into());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(patchwarden_server::open_store(&db))
        .unwrap();
    let host = runtime.block_on(async {
        let token = fixtures::new_token("secret-alma", "servers", 1);
        let id = token.id;
        store
            .create_enrollment_token(
                token,
                fixtures::t0(),
                fixtures::entry(fixtures::t0(), "token.create", format!("token:{id}")),
            )
            .await
            .unwrap();
        let mut new = fixtures::new_host("ubi9", "0123456789abcdef0123456789abcd99");
        new.facts = inventory.host.clone();
        let h = store
            .enroll_host(
                SecretHash::of(b"secret-alma"),
                new,
                fixtures::at(1),
                fixtures::entry(fixtures::at(1), "host.enroll", "host"),
            )
            .await
            .unwrap();
        store
            .replace_inventory(
                h.id,
                &inventory,
                fixtures::at(2),
                fixtures::entry(fixtures::at(2), "inventory.replace", "host"),
            )
            .await
            .unwrap();
        h
    });

    let out = bin()
        .args(["feeds", "import"])
        .arg(&zip)
        .args(["--database", &db])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("into source import-osv"), "{stdout}");
    assert!(stdout.contains("1 host(s) matched again"), "{stdout}");

    let held: BTreeSet<Row> = runtime
        .block_on(store.list_findings(&FindingFilter {
            host: Some(host.id),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        }))
        .unwrap()
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

    let scan = bin()
        .args(["scan", "--format", "json", "--os", "AlmaLinux:9", "--sbom"])
        .arg(&sbom)
        .arg("--feed")
        .arg(&zip)
        .output()
        .unwrap();
    assert_eq!(
        scan.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let json: Value = serde_json::from_slice(&scan.stdout).unwrap();
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let scanned: BTreeSet<Row> = json["findings"]
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
    assert!(scanned.len() > 100, "{} findings", scanned.len());
    // Red Hat's SBOM leaves every rpm epoch out. `scan --sbom` knows it read an SBOM and
    // compares such packages with the epoch of each fix; the server judges agents'
    // inventories, which carry their epochs, and reads a missing epoch as 0. So on the fixes
    // that carry an epoch the server finds more, and on those only: the rest must be equal.
    let has_epoch = |r: &Row| r.4.contains(':');
    let extra: Vec<&Row> = held.difference(&scanned).collect();
    assert!(
        extra.iter().all(|r| has_epoch(r)),
        "findings beyond scan's that the missing epochs do not explain: {:?}",
        extra
            .iter()
            .filter(|r| !has_epoch(r))
            .take(5)
            .collect::<Vec<_>>()
    );
    let held: BTreeSet<Row> = held.into_iter().filter(|r| !has_epoch(r)).collect();
    let scanned: BTreeSet<Row> = scanned.into_iter().filter(|r| !has_epoch(r)).collect();
    assert!(
        scanned.len() > 100,
        "{} findings without an epoch",
        scanned.len()
    );
    let only_held: Vec<_> = held.difference(&scanned).take(5).collect();
    let only_scan: Vec<_> = scanned.difference(&held).take(5).collect();
    assert!(
        only_held.is_empty() && only_scan.is_empty(),
        "the imported feed's findings differ from scan's ({} held, {} scanned): only held \
         {only_held:?}; only scanned {only_scan:?}",
        held.len(),
        scanned.len()
    );
    println!("feeds import and scan agree: {} findings", held.len());

    // The same file again: nothing new.
    let again = bin()
        .args(["feeds", "import"])
        .arg(&zip)
        .args(["--database", &db])
        .output()
        .unwrap();
    let again = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.contains(" 0 new, 0 updated"), "{again}");

    // A file that is not a feed: refused, nothing changed.
    let count = runtime.block_on(store.advisory_count()).unwrap();
    let bad = bin()
        .args(["feeds", "import", "--kind", "osv"])
        .arg(data.join("kev/known_exploited_vulnerabilities.csv"))
        .args(["--database", &db])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("the data in force is kept"), "{stderr}");
    assert_eq!(runtime.block_on(store.advisory_count()).unwrap(), count);
}
