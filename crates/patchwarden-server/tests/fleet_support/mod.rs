//! A fleet made in a real store for the web pages' tests and benchmark: hosts enrolled with an
//! enrollment token (the store's own enrollment), placed in groups and rings, checked in with
//! their facts at chosen times, their inventories stored, and their findings synced with
//! chosen classes and due dates — so a test knows exactly which numbers a page must show.
//!
//! Host `i` of a fleet of `n`:
//! - group `GROUPS[i % 3]` (`web`, `db`, `edge`), ring `canary` for `i % 4 == 0` else `broad`;
//! - Debian 12 for even `i`, AlmaLinux 9 for odd; reboot required for `i % 3 == 0`;
//! - last seen `i % 10` days ago (and five minutes);
//! - findings, first seen 40 days ago: `CVE-2026-0001` (Emergency, due a day ago: breached)
//!   on even hosts; `CVE-2026-0002` (High, due in 2 days: due soon) on every host;
//!   `CVE-2026-0003` (Low, due in 60 days: on time) on hosts with `i % 3 == 0`;
//! - with `history`: `CVE-2025-0009` opened 70 days ago and closed 20 days ago by openssl
//!   `3.0.15-1~deb12u1` (the patch history).

#![allow(dead_code)]

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::{HostFacts, Inventory, Manager, OsInfo, Package, PackageStatus};
use patchwarden_core::policy::Class;
use patchwarden_server::admin::{self, TokenRequest};
use patchwarden_store::{
    Classification, CurrentFinding, HostPlacement, NewHost, SecretHash, Store,
};
use uuid::Uuid;

pub(crate) const GROUPS: [&str; 3] = ["web", "db", "edge"];

/// The openssl version a host runs now, and the one it ran before its patch.
pub(crate) const OPENSSL_NOW: &str = "3.0.15-1~deb12u1";
pub(crate) const OPENSSL_BEFORE: &str = "3.0.11-1~deb12u2";

pub(crate) fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn audit(now: Timestamp, action: &str, object: String) -> AuditEntry {
    AuditEntry::new(now, Actor::System("fleet-test".into()), action, object)
}

pub(crate) fn facts(i: usize) -> HostFacts {
    let debian = i.is_multiple_of(2);
    HostFacts {
        hostname: format!("host-{i:05}"),
        os: if debian {
            OsInfo {
                id: "debian".into(),
                version_id: Some("12".into()),
                codename: Some("bookworm".into()),
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
                id_like: Vec::new(),
                ecosystem: Some("Debian:12".into()),
            }
        } else {
            OsInfo {
                id: "almalinux".into(),
                version_id: Some("9.4".into()),
                codename: None,
                pretty_name: Some("AlmaLinux 9.4 (Seafoam Ocelot)".into()),
                id_like: vec!["rhel".into()],
                ecosystem: Some("AlmaLinux:9".into()),
            }
        },
        arch: Some("x86_64".into()),
        kernel: Some("6.1.0-28-amd64".into()),
        machine_id: Some(format!("{:032x}", i + 1)),
        reboot_required: i.is_multiple_of(3),
        reboot_reasons: if i.is_multiple_of(3) {
            vec!["kernel 6.1.0-28 installed, 6.1.0-26 running".into()]
        } else {
            Vec::new()
        },
        ..HostFacts::default()
    }
}

fn package(name: &str, version: &str) -> Package {
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

pub(crate) fn inventory(facts: &HostFacts, openssl: &str) -> Inventory {
    let mut packages = vec![
        package("openssl", openssl),
        package("libssl3", openssl),
        package("bash", "5.2.15-2+b7"),
        package("zlib1g", "1:1.2.13.dfsg-1"),
        package("curl", "7.88.1-10+deb12u8"),
    ];
    packages.extend((0..15).map(|k| package(&format!("lib-extra-{k}"), "1.0-1")));
    let mut inv = Inventory {
        host: facts.clone(),
        packages,
        ..Inventory::default()
    };
    inv.canonicalize();
    inv
}

fn finding(vulnerability: &str, package: &str, installed: &str, fixed: &str) -> Finding {
    Finding {
        vulnerability: vulnerability.into(),
        aliases: Vec::new(),
        advisories: vec![format!("DSA-{}-1", &vulnerability[9..])],
        manager: Manager::Dpkg,
        package: package.into(),
        arch: Some("amd64".into()),
        source_package: Some(package.into()),
        installed: installed.into(),
        fixed: Some(fixed.into()),
        ecosystem: "Debian:12".into(),
        available_at: None,
        published_at: None,
        explanation: format!("{package} {installed} < {fixed}"),
    }
}

fn classified(f: Finding, class: Class, due_at: Timestamp) -> CurrentFinding {
    CurrentFinding {
        body: None,
        finding: f.into(),
        classification: Classification {
            class: Some(class),
            due_at: Some(due_at),
            policy: Some("fleet-test".into()),
            rule: Some(format!("{class}-rule")),
        },
    }
}

/// The open findings host `i` has, as this fleet makes them.
pub(crate) fn open_findings(i: usize, now: Timestamp) -> Vec<CurrentFinding> {
    let mut out = Vec::new();
    if i.is_multiple_of(2) {
        out.push(classified(
            finding("CVE-2026-0001", "bash", "5.2.15-2+b7", "5.2.15-2+b9"),
            Class::Emergency,
            now - days(1),
        ));
    }
    out.push(classified(
        finding(
            "CVE-2026-0002",
            "curl",
            "7.88.1-10+deb12u8",
            "7.88.1-10+deb12u9",
        ),
        Class::High,
        now + days(2),
    ));
    if i.is_multiple_of(3) {
        out.push(classified(
            finding(
                "CVE-2026-0003",
                "zlib1g",
                "1:1.2.13.dfsg-1",
                "1:1.2.13.dfsg-2",
            ),
            Class::Low,
            now + days(60),
        ));
    }
    out
}

/// A fleet's hosts: ids in enrollment order.
pub(crate) struct Fleet {
    pub(crate) ids: Vec<Uuid>,
}

/// Makes `n` hosts in `store` as the module says; `history` adds the closed finding.
pub(crate) async fn build(store: &dyn Store, n: usize, history: bool) -> Fleet {
    let now = patchwarden_server::clock::now();
    let (_, secret) = admin::create_enrollment_token(
        store,
        TokenRequest {
            group: "unplaced".into(),
            valid_for: SignedDuration::from_hours(1),
            max_uses: u32::try_from(n).unwrap(),
            note: Some("the fleet test".into()),
        },
        Actor::System("fleet-test".into()),
        now,
    )
    .await
    .unwrap();
    let hash = SecretHash::of(secret.as_bytes());
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let facts = facts(i);
        let id = Uuid::new_v4();
        store
            .enroll_host(
                hash,
                NewHost {
                    id,
                    public_key: format!("key-{}", id.simple()),
                    facts: facts.clone(),
                },
                now,
                audit(now, "host.enroll", format!("host:{id}")),
            )
            .await
            .unwrap();
        store
            .set_host_placement(
                id,
                HostPlacement {
                    group: GROUPS[i % 3].into(),
                    ring: Some(
                        if i.is_multiple_of(4) {
                            "canary"
                        } else {
                            "broad"
                        }
                        .into(),
                    ),
                    labels: [("application".to_owned(), format!("app-{}", i % 7))].into(),
                },
                now,
                audit(now, "host.place", format!("host:{id}")),
            )
            .await
            .unwrap();
        let seen = now - days(i64::try_from(i % 10).unwrap()) - SignedDuration::from_mins(5);
        store
            .record_check_in(
                id,
                facts.clone(),
                seen,
                audit(seen, "host.check_in", format!("host:{id}")),
            )
            .await
            .unwrap();
        let before = inventory(&facts, OPENSSL_BEFORE);
        let after = inventory(&facts, OPENSSL_NOW);
        let first_seen = now - days(40);
        if history {
            // Opened 70 days ago on the old openssl, closed 20 days ago by the new one.
            let opened = now - days(70);
            let mut current = vec![classified(
                finding("CVE-2025-0009", "openssl", OPENSSL_BEFORE, OPENSSL_NOW),
                Class::High,
                now - days(40),
            )];
            store
                .sync_findings(
                    id,
                    &current,
                    &before.packages,
                    opened,
                    audit(opened, "findings.sync", format!("host:{id}")),
                )
                .await
                .unwrap();
            current.extend(open_findings(i, now));
            store
                .sync_findings(
                    id,
                    &current,
                    &before.packages,
                    first_seen,
                    audit(first_seen, "findings.sync", format!("host:{id}")),
                )
                .await
                .unwrap();
            let closed = now - days(20);
            current.remove(0);
            store
                .sync_findings(
                    id,
                    &current,
                    &after.packages,
                    closed,
                    audit(closed, "findings.sync", format!("host:{id}")),
                )
                .await
                .unwrap();
        } else {
            store
                .sync_findings(
                    id,
                    &open_findings(i, now),
                    &after.packages,
                    first_seen,
                    audit(first_seen, "findings.sync", format!("host:{id}")),
                )
                .await
                .unwrap();
        }
        store
            .replace_inventory(
                id,
                &after,
                now,
                audit(now, "inventory.replace", format!("host:{id}")),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    Fleet { ids }
}
