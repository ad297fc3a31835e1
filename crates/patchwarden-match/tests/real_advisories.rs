//! Real hosts against real advisories, with their findings pinned: the whole AlmaLinux OSV
//! archive against Red Hat's UBI 9.2 package set (with its epochs, and again without them as
//! an SBOM gives them), and Alpine 3.10's secdb against every package it names.
//!
//! The index's representation is free to change (it was made compact to cut the server's
//! fixed memory); what it finds is not. Each host's findings, their ratings and problems are
//! folded into a digest, and the first findings are shown in full, so a change in any finding
//! fails here. `UPDATE_EXPECT=1 cargo test -p patchwarden-match --test real_advisories`
//! refreshes it, for a change that means to alter findings.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use expect_test::expect;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::inventory::{Manager, Package, PackageStatus};
use patchwarden_feeds::Limits;
use patchwarden_feeds::load::{AdvisoryFeed, load_path};
use patchwarden_match::{Index, MatchOptions};

fn shared_data() -> PathBuf {
    std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn load(path: &str, feed: AdvisoryFeed) -> Vec<Advisory> {
    let path = shared_data().join(path);
    load_path(&path, feed, &Limits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .records
}

/// UBI 9.2's x86_64 and noarch packages, from the name/epoch/version/release columns.
fn ubi9() -> Vec<Package> {
    let path = shared_data().join("inventories/rpm/ubi9-9.2-755.rpm-inventory.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let (name, epoch, version, release, arch) = (f[0], f[1], f[2], f[3], f[4]);
            if arch != "x86_64" && arch != "noarch" {
                return None;
            }
            Some(Package {
                manager: Manager::Rpm,
                name: name.to_owned(),
                version: format!("{version}-{release}"),
                arch: Some(arch.to_owned()),
                source_name: None,
                source_version: None,
                epoch: epoch.parse().ok(),
                module: None,
                status: PackageStatus::Installed,
            })
        })
        .collect()
}

/// Every package Alpine 3.10's secdb names: alternately at its oldest fix and one `-rN` below.
fn alpine() -> Vec<Package> {
    use patchwarden_version::apk::{Rules, compare, validate};
    let mut out = Vec::new();
    for repo in ["main", "community"] {
        let path = shared_data().join(format!("alpine/json/v3.10/{repo}.json"));
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for (i, p) in doc["packages"].as_array().unwrap().iter().enumerate() {
            let name = p["pkg"]["name"].as_str().unwrap();
            let Some(fixes) = p["pkg"]["secfixes"].as_object() else {
                continue;
            };
            let Some(oldest) = fixes
                .keys()
                .filter(|v| validate(v, Rules::V2).is_ok())
                .min_by(|a, b| compare(a, b, Rules::V2).unwrap_or(std::cmp::Ordering::Equal))
            else {
                continue;
            };
            let version = match oldest.rsplit_once("-r") {
                Some((v, r)) if i % 2 == 0 => match r.parse::<u32>() {
                    Ok(n) if n > 0 => format!("{v}-r{}", n - 1),
                    _ => oldest.clone(),
                },
                _ => oldest.clone(),
            };
            out.push(Package {
                manager: Manager::Apk,
                name: name.to_owned(),
                version,
                arch: Some("x86_64".into()),
                source_name: Some(name.to_owned()),
                source_version: None,
                epoch: None,
                module: None,
                status: PackageStatus::Installed,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// FNV-1a: a digest that is the same on every platform and toolchain.
fn fnv(h: &mut u64, text: &str) {
    for b in text.bytes() {
        *h ^= u64::from(b);
        *h = h.wrapping_mul(0x0100_0000_01b3);
    }
}

fn summarise(
    index: &Index,
    host: &str,
    ecosystem: &str,
    packages: &[Package],
    o: MatchOptions,
) -> String {
    let report = index.match_packages_with(ecosystem, packages, o);
    let mut digest = 0xcbf2_9ce4_8422_2325;
    for f in &report.findings {
        fnv(&mut digest, &format!("{f:?}{:?}", index.ratings(f)));
    }
    for p in &report.problems {
        fnv(&mut digest, &p.to_string());
    }
    let mut out = format!(
        "{host}: {} packages checked, {} findings, {} problems, digest {digest:016x}\n",
        report.packages_checked,
        report.findings.len(),
        report.problems.len(),
    );
    for f in report.findings.iter().take(3) {
        let r = index.ratings(f);
        writeln!(
            out,
            "  {} {} {} fixed {:?} available {:?} published {:?} [{}] aliases {} cvss {} vendor {:?}\n    {}",
            f.vulnerability,
            f.package,
            f.installed,
            f.fixed,
            f.available_at.map(|t| t.to_string()),
            f.published_at.map(|t| t.to_string()),
            f.advisories.join(", "),
            f.aliases.len(),
            r.cvss.len(),
            r.vendor.iter().map(|v| v.text.as_str()).collect::<Vec<_>>(),
            f.explanation,
        )
        .unwrap();
    }
    out
}

#[test]
fn real_hosts_against_the_real_feeds_keep_their_findings() {
    let mut advisories = load("osv/almalinux-all.zip", AdvisoryFeed::Osv);
    advisories.extend(load(
        "alpine/json/v3.10/main.json",
        AdvisoryFeed::AlpineSecdb,
    ));
    advisories.extend(load(
        "alpine/json/v3.10/community.json",
        AdvisoryFeed::AlpineSecdb,
    ));
    let count = advisories.len();
    let (index, problems) = Index::build(advisories);
    let ubi = ubi9();
    let sbom: Vec<Package> = ubi
        .iter()
        .cloned()
        .map(|mut p| {
            p.epoch = None;
            p
        })
        .collect();
    let mut out = format!(
        "{count} advisories, {} package keys, {} index problems\n",
        index.package_keys(),
        problems.len()
    );
    out += &summarise(&index, "ubi9", "AlmaLinux:9", &ubi, MatchOptions::default());
    out += &summarise(
        &index,
        "ubi9 sbom",
        "AlmaLinux:9",
        &sbom,
        MatchOptions {
            rpm_epoch_unknown: true,
        },
    );
    out += &summarise(
        &index,
        "alpine",
        "Alpine:v3.10",
        &alpine(),
        MatchOptions::default(),
    );
    expect![[r#"
        7484 advisories, 10782 package keys, 0 index problems
        ubi9: 78 packages checked, 484 findings, 0 problems, digest 09ee9da0debb00fc
          CVE-2026-54369 acl 2.3.1-3.el9 fixed Some("2.4.0-1.el9_8") available Some("2026-07-21T00:00:00Z") published Some("2026-07-21T00:00:00Z") [ALSA-2026:42736] aliases 0 cvss 0 vendor ["Important", "Important", "Important"]
            acl 2.3.1-3.el9 < 2.4.0-1.el9_8 fixed in ALSA-2026:42736 (AlmaLinux:9)
          CVE-2026-54370 acl 2.3.1-3.el9 fixed Some("2.4.0-1.el9_8") available Some("2026-07-21T00:00:00Z") published Some("2026-07-21T00:00:00Z") [ALSA-2026:42736] aliases 0 cvss 0 vendor ["Important", "Important", "Important"]
            acl 2.3.1-3.el9 < 2.4.0-1.el9_8 fixed in ALSA-2026:42736 (AlmaLinux:9)
          CVE-2019-12900 bzip2-libs 1.0.8-8.el9 fixed Some("1.0.8-10.el9_5") available Some("2025-02-04T00:00:00Z") published Some("2025-02-04T00:00:00Z") [ALSA-2025:0925] aliases 1 cvss 0 vendor ["Moderate", "Low", "Moderate"]
            bzip2-libs 1.0.8-8.el9 < 1.0.8-10.el9_5 fixed in ALSA-2025:0925 (AlmaLinux:9)
        ubi9 sbom: 78 packages checked, 418 findings, 0 problems, digest 67b5a74514e3dac7
          CVE-2026-54369 acl 2.3.1-3.el9 fixed Some("2.4.0-1.el9_8") available Some("2026-07-21T00:00:00Z") published Some("2026-07-21T00:00:00Z") [ALSA-2026:42736] aliases 0 cvss 0 vendor ["Important", "Important", "Important"]
            acl 2.3.1-3.el9 < 2.4.0-1.el9_8 fixed in ALSA-2026:42736 (AlmaLinux:9)
          CVE-2026-54370 acl 2.3.1-3.el9 fixed Some("2.4.0-1.el9_8") available Some("2026-07-21T00:00:00Z") published Some("2026-07-21T00:00:00Z") [ALSA-2026:42736] aliases 0 cvss 0 vendor ["Important", "Important", "Important"]
            acl 2.3.1-3.el9 < 2.4.0-1.el9_8 fixed in ALSA-2026:42736 (AlmaLinux:9)
          CVE-2019-12900 bzip2-libs 1.0.8-8.el9 fixed Some("1.0.8-10.el9_5") available Some("2025-02-04T00:00:00Z") published Some("2025-02-04T00:00:00Z") [ALSA-2025:0925] aliases 1 cvss 0 vendor ["Moderate", "Low", "Moderate"]
            bzip2-libs 1.0.8-8.el9 < 1.0.8-10.el9_5 fixed in ALSA-2025:0925 (AlmaLinux:9)
        alpine: 239 packages checked, 1209 findings, 0 problems, digest 16473193741cbffc
          CVE-2018-16876 ansible 2.6.3-r0 fixed Some("2.7.9-r0") available None published None [ALPINE-CVE-2018-16876] aliases 1 cvss 0 vendor []
            ansible 2.6.3-r0 < 2.7.9-r0 fixed in ALPINE-CVE-2018-16876 (Alpine:v3.10, origin ansible)
          CVE-2019-10156 ansible 2.6.3-r0 fixed Some("2.8.2-r0") available None published None [ALPINE-CVE-2019-10156] aliases 1 cvss 0 vendor []
            ansible 2.6.3-r0 < 2.8.2-r0 fixed in ALPINE-CVE-2019-10156 (Alpine:v3.10, origin ansible)
          CVE-2019-10206 ansible 2.6.3-r0 fixed Some("2.8.4-r0") available None published None [ALPINE-CVE-2019-10206] aliases 1 cvss 0 vendor []
            ansible 2.6.3-r0 < 2.8.4-r0 fixed in ALPINE-CVE-2019-10206 (Alpine:v3.10, origin ansible)
    "#]].assert_eq(&out);
}
