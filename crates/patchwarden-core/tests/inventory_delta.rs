//! Inventory digests and deltas on real Debian 12 package lists: the digest ignores order and
//! sees every field, and `apply(a, delta(a, b)) == b` for real upgrades and for thousands of
//! random edits (removals, additions, upgrades, status changes, duplicates, several versions of
//! one name, reordering).

use std::path::{Path, PathBuf};

use patchwarden_core::inventory::{
    DeltaError, HostFacts, Inventory, InventoryDelta, Manager, Package, PackageStatus,
    PackagesDigest, apply, delta,
};

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("debian").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// Packages from one of the `bookworm-*.tsv` files (`package version architecture source`,
/// where source may be `name (version)`).
fn tsv_packages(name: &str) -> Vec<Package> {
    let path = shared_data().join("debian").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "bad line in {name}: {l:?}");
            let (source, source_version) = match f[3].split_once(" (") {
                Some((s, v)) => (s, v.trim_end_matches(')')),
                None => (f[3], f[1]),
            };
            Package {
                manager: Manager::Dpkg,
                name: f[0].into(),
                version: f[1].into(),
                arch: Some(f[2].into()),
                source_name: Some(source.into()),
                source_version: Some(source_version.into()),
                epoch: None,
                module: None,
                status: PackageStatus::Installed,
            }
        })
        .collect()
}

fn inventory(packages: Vec<Package>) -> Inventory {
    Inventory {
        host: HostFacts {
            hostname: "db1".into(),
            ..HostFacts::default()
        },
        packages,
        ..Inventory::default()
    }
}

fn canonical(mut inv: Inventory) -> Inventory {
    inv.canonicalize();
    inv
}

/// The property every delta must have, checked with all its consequences.
fn check_round_trip(a: &Inventory, b: &Inventory) -> InventoryDelta {
    let d = delta(a, b);
    assert_eq!(d.base, a.packages_digest());
    assert_eq!(d.result, b.packages_digest());
    let rebuilt = apply(a, &d).expect("a delta applies to its own base");
    assert_eq!(rebuilt, canonical(b.clone()));
    assert_eq!(rebuilt.packages_digest(), b.packages_digest());
    // A delta survives its JSON form unchanged (it is what agents send).
    let json = serde_json::to_string(&d).unwrap();
    let back: InventoryDelta = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    d
}

/// A small deterministic generator (xorshift64*), so that a failure names its seed and can be
/// replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

#[test]
fn a_real_security_upgrade_is_a_delta_of_changes_only() {
    let main = tsv_packages("bookworm-main-amd64.tsv");
    let security = tsv_packages("bookworm-security-main-amd64.tsv");
    // The host has every binary that the security suite updates, at its bookworm version, plus
    // the first 2,000 other packages of the archive.
    let updated: std::collections::BTreeSet<(&str, &str)> = security
        .iter()
        .map(|p| (p.name.as_str(), p.arch.as_deref().unwrap_or("")))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut old = Vec::new();
    let mut others = 0;
    for p in &main {
        let key = (p.name.as_str(), p.arch.as_deref().unwrap_or(""));
        if !seen.insert(key) {
            continue; // two versions of one name in the archive: a host has one of them.
        }
        if updated.contains(&key) {
            old.push(p.clone());
        } else if others < 2000 {
            old.push(p.clone());
            others += 1;
        }
    }
    let mut new: Vec<Package> = old
        .iter()
        .map(|p| {
            security
                .iter()
                .find(|s| s.name == p.name && s.arch == p.arch)
                .cloned()
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    // Security-only packages (new binaries in a security upload) are additions.
    let added: Vec<Package> = security
        .iter()
        .filter(|s| !old.iter().any(|p| p.name == s.name && p.arch == s.arch))
        .cloned()
        .collect();
    new.extend(added.iter().cloned());

    let (a, b) = (inventory(old), inventory(new));
    let d = check_round_trip(&a, &b);
    let really_changed = a
        .packages
        .iter()
        .filter(|p| !b.packages.contains(p))
        .count();
    assert!(really_changed > 1000, "only {really_changed} upgrades");
    assert_eq!(d.changed.len(), really_changed);
    assert_eq!(d.added.len(), added.len());
    assert!(d.removed.is_empty());
    assert!(d.host.is_none() && d.updates.is_none());
    for c in &d.changed {
        assert_eq!((&c.old.name, &c.old.arch), (&c.new.name, &c.new.arch));
        assert_ne!(c.old.version, c.new.version);
    }
}

#[test]
fn random_edits_round_trip() {
    let main = tsv_packages("bookworm-main-amd64.tsv");
    let security = tsv_packages("bookworm-security-main-amd64.tsv");
    let statuses = [
        PackageStatus::Installed,
        PackageStatus::Unpacked,
        PackageStatus::HalfConfigured,
        PackageStatus::HalfInstalled,
        PackageStatus::ConfigFiles,
        PackageStatus::TriggersAwaited,
        PackageStatus::TriggersPending,
        PackageStatus::NotInstalled,
    ];
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = rng.below(400);
        let a: Vec<Package> = (0..n)
            .map(|_| main[rng.below(main.len())].clone())
            .collect();
        let mut b = a.clone();
        for _ in 0..rng.below(60) {
            match rng.below(7) {
                0 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b.remove(i);
                }
                1 => b.push(main[rng.below(main.len())].clone()),
                2 if !b.is_empty() => {
                    // An upgrade: the same name and architecture with a security version.
                    let i = rng.below(b.len());
                    b[i].version = security[rng.below(security.len())].version.clone();
                }
                3 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i].status = statuses[rng.below(statuses.len())];
                }
                4 if !b.is_empty() => {
                    // A duplicate record, or a second kernel of the same name.
                    let i = rng.below(b.len());
                    let mut p = b[i].clone();
                    if rng.below(2) == 0 {
                        p.version.push_str("+k2");
                    }
                    b.push(p);
                }
                5 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i].epoch = Some(rng.below(3) as u32);
                    b[i].manager = Manager::Rpm;
                }
                _ => {}
            }
        }
        rng.shuffle(&mut b);
        let (a, mut b) = (inventory(a), inventory(b));
        if rng.below(5) == 0 {
            b.host.reboot_required = true;
        }
        let d = check_round_trip(&a, &b);
        assert!(delta(&a, &a).is_empty(), "seed {seed}");
        if a.packages_digest() == b.packages_digest() {
            assert!(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty());
        }
    }
}

#[test]
fn the_digest_ignores_order_and_sees_every_field() {
    let mut packages = tsv_packages("bookworm-security-main-amd64.tsv");
    let digest = PackagesDigest::of(&packages);
    packages.reverse();
    assert_eq!(PackagesDigest::of(&packages), digest);
    Rng(7).shuffle(&mut packages);
    assert_eq!(PackagesDigest::of(&packages), digest);

    let edits: Vec<fn(&mut Package)> = vec![
        |p| p.manager = Manager::Apk,
        |p| p.name.push('x'),
        |p| p.version.push('1'),
        |p| p.arch = None,
        |p| p.source_name = Some("other".into()),
        |p| p.source_version = None,
        |p| p.epoch = Some(0),
        |p| p.module = Some("nodejs:18:1:abc".into()),
        |p| p.status = PackageStatus::ConfigFiles,
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut changed = packages.clone();
        edit(&mut changed[0]);
        assert_ne!(PackagesDigest::of(&changed), digest, "edit {i} went unseen");
    }
    // A duplicate is a different multiset.
    let mut doubled = packages.clone();
    doubled.push(packages[0].clone());
    assert_ne!(PackagesDigest::of(&doubled), digest);
}

#[test]
fn apply_refuses_a_delta_for_another_base() {
    let main = tsv_packages("bookworm-updates-main-amd64.tsv");
    let a = inventory(main[..10].to_vec());
    let b = inventory(main[5..].to_vec());
    let d = delta(&a, &b);
    let other = inventory(main[..9].to_vec());
    match apply(&other, &d) {
        Err(DeltaError::BaseMismatch { expected, actual }) => {
            assert_eq!(expected, a.packages_digest());
            assert_eq!(actual, other.packages_digest());
        }
        r => panic!("expected a base mismatch, got {r:?}"),
    }
}

#[test]
fn apply_names_a_removed_package_the_base_lacks_and_checks_the_result() {
    let main = tsv_packages("bookworm-updates-main-amd64.tsv");
    let a = inventory(main[..10].to_vec());
    let b = inventory(main[3..].to_vec());
    let mut d = delta(&a, &b);

    // A delta edited in transit: it removes a package the base never had.
    let mut bad = d.clone();
    bad.removed.push(main[20].clone());
    let err = apply(&a, &bad).unwrap_err();
    assert!(matches!(
        err,
        DeltaError::MissingPackage {
            role: "removes",
            ..
        }
    ));
    assert!(err.to_string().contains(&main[20].name), "{err}");

    // An addition that the result digest does not cover.
    d.added.push(main[0].clone());
    let err = apply(&a, &d).unwrap_err();
    assert!(matches!(err, DeltaError::ResultMismatch { .. }), "{err}");
}

#[test]
fn a_delta_carries_changed_facts_and_updates_only_when_they_changed() {
    let main = tsv_packages("bookworm-updates-main-amd64.tsv");
    let a = inventory(main.clone());
    let mut b = a.clone();
    assert!(delta(&a, &b).is_empty());
    b.host.kernel = Some("6.1.0-18-amd64".into());
    b.updates_checked_at = Some("2026-11-26T10:00:00Z".parse().unwrap());
    let d = check_round_trip(&a, &b);
    assert_eq!(
        d.host.as_ref().and_then(|h| h.kernel.as_deref()),
        Some("6.1.0-18-amd64")
    );
    assert!(d.updates.is_some());
    assert!(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty());
}
