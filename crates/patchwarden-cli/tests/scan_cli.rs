//! `patchwarden scan` end to end: the real binary on real inventories and real advisories,
//! checked against computations made here independently of our feed parser and matcher.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use patchwarden_oracle::require_oracles;
use serde_json::Value;

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

fn scan(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .arg("scan")
        .args(args)
        .output()
        .expect("run patchwarden");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr:\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// Every advisory in OSV's `all.zip` layout, read with serde_json alone (not our parser).
fn raw_advisories(zip: &Path) -> Vec<Value> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).unwrap();
        if !member.name().ends_with(".json") {
            continue;
        }
        let mut text = String::new();
        member.read_to_string(&mut text).unwrap();
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

/// Scans Red Hat's UBI 9 SBOM as AlmaLinux 9 against the AlmaLinux advisories, the given feeds
/// and policies, at a fixed time; the JSON result (which must have findings).
fn scan_ubi9(more: &[&str]) -> Value {
    let data = shared_data();
    let sbom = data.join("inventories/rpm/ubi9-9.2-755.spdx.json");
    let zip = data.join("osv/almalinux-all.zip");
    let mut args = vec![
        "--sbom",
        sbom.to_str().unwrap(),
        "--os",
        "AlmaLinux:9",
        "--feed",
        zip.to_str().unwrap(),
        "--format",
        "json",
        "--now",
        "2026-11-26T00:00:00Z",
    ];
    args.extend_from_slice(more);
    let (code, json, stderr) = scan(&args);
    assert_eq!(code, 1, "findings exit 1; stderr:\n{stderr}");
    json
}

/// The TSV keeps names as the package URLs spell them (`libstdc%2B%2B`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            s.get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// rpm's own EVR ordering (`rpmverCmp`, as `rpm.labelCompare`), from librpm.
fn rpm_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    patchwarden_oracle::rpm_evr_compare(a, b)
        .unwrap_or_else(|| panic!("librpm cannot order {a:?} and {b:?}"))
}

/// The issue's acceptance scan: Red Hat's UBI 9 SBOM against every AlmaLinux advisory. The
/// expectation is computed here from the raw files — the inventory TSV beside the SBOM, the
/// advisories read with serde_json from the zip, rpm's own ordering from librpm — with the
/// same two rules the product states: an SBOM without epochs is compared with each fix's
/// epoch, and a finding is one (package, arch, CVE) with the lowest fixed version above the
/// installed one.
#[test]
fn ubi9_sbom_against_almalinux_advisories_matches_an_independent_computation() {
    if !require_oracles("the UBI 9 scan's independent check (it orders with librpm)") {
        return;
    }
    let data = shared_data();
    let json = scan_ubi9(&[]);

    // The inventory, from the TSV that lists the SBOM's packages.
    let tsv = std::fs::read_to_string(data.join("inventories/rpm/ubi9-9.2-755.rpm-inventory.tsv"))
        .unwrap();
    let packages: Vec<(String, String, String)> = tsv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[1], "", "the SBOM carries no epochs");
            (
                percent_decode(f[0]),
                format!("{}-{}", f[2], f[3]),
                f[4].to_owned(),
            )
        })
        .collect();
    assert_eq!(packages.len(), 605);

    // Every AlmaLinux 9 advisory's fixes, by package name: (fixed EVR, CVEs, published).
    let mut fixes: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for adv in raw_advisories(&data.join("osv/almalinux-all.zip")) {
        if adv.get("withdrawn").is_some() {
            continue;
        }
        let cves: Vec<String> = adv["related"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| s.starts_with("CVE-"))
            .map(String::from)
            .collect();
        for affected in adv["affected"].as_array().into_iter().flatten() {
            if affected["package"]["ecosystem"] != "AlmaLinux:9" {
                continue;
            }
            let name = affected["package"]["name"].as_str().unwrap().to_owned();
            for range in affected["ranges"].as_array().into_iter().flatten() {
                let events = range["events"].as_array().unwrap();
                // AlmaLinux's ranges are all `introduced: 0, fixed: E:V-R`.
                assert_eq!(events[0]["introduced"], "0");
                let fixed = events[1]["fixed"].as_str().unwrap().to_owned();
                fixes
                    .entry(name.clone())
                    .or_default()
                    .push((fixed, cves.clone()));
            }
        }
    }

    let mut expected: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for (name, version, arch) in &packages {
        for (fixed, cves) in fixes.get(name).into_iter().flatten() {
            let installed = match fixed.split_once(':') {
                Some((epoch, _)) => format!("{epoch}:{version}"),
                None => version.clone(),
            };
            if rpm_cmp(&installed, fixed) != std::cmp::Ordering::Less {
                continue;
            }
            for cve in cves {
                let slot = expected
                    .entry((name.clone(), arch.clone(), cve.clone()))
                    .or_insert_with(|| fixed.clone());
                if rpm_cmp(fixed, slot) == std::cmp::Ordering::Less {
                    *slot = fixed.clone();
                }
            }
        }
    }

    let got: BTreeMap<(String, String, String), String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let key = (
                f["package"].as_str().unwrap().to_owned(),
                f["arch"].as_str().unwrap().to_owned(),
                f["vulnerability"].as_str().unwrap().to_owned(),
            );
            (key, f["fixed"].as_str().unwrap().to_owned())
        })
        .collect();
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(10)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    for (k, fixed) in &expected {
        assert_eq!(&got[k], fixed, "fixed version of {k:?}");
    }
    assert_eq!(json["findings"].as_array().unwrap().len(), expected.len());
    assert!(expected.len() > 1000, "{}", expected.len());

    // Every finding is classified with a due date and says why.
    for f in json["findings"].as_array().unwrap() {
        assert!(f["criticality"].is_string(), "{f}");
        assert!(f["due_at"].is_string(), "{f}");
        assert_eq!(f["policy"]["preset"], "seed-default", "{f}");
        assert!(
            f["explanation"]
                .as_str()
                .unwrap()
                .contains("fixed in ALSA-"),
            "{f}"
        );
    }
    let distinct: BTreeSet<&str> = got.keys().map(|k| k.2.as_str()).collect();
    assert_eq!(json["summary"]["vulnerabilities"], distinct.len());
}

/// A Debian dpkg status with hand-written OSV records that exercise source names, epochs and
/// `~`, plus the KEV catalogue: classes, due dates and explanations as the seed policy says.
#[test]
fn debian_status_with_hand_written_osv_records() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    std::fs::write(
        &status,
        "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\n\
         Version: 3.0.11-1~deb12u1\n\n\
         Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\n\
         Source: zlib (1:1.2.13.dfsg-1)\nVersion: 1:1.2.13.dfsg-1+b1\n\n\
         Package: curl\nStatus: install ok installed\nArchitecture: amd64\n\
         Version: 7.88.1-10+deb12u5~bpo12+1\n\n\
         Package: libcurl4\nStatus: deinstall ok config-files\nArchitecture: amd64\nSource: curl\n\
         Version: 7.88.1-10+deb12u1\n",
    )
    .unwrap();
    let feed = dir.path().join("osv");
    std::fs::create_dir(&feed).unwrap();
    let record = |id: &str, cve: &str, pkg: &str, fixed: &str| {
        serde_json::json!({
            "schema_version": "1.6.0", "id": id, "upstream": [cve],
            "published": "2026-11-20T00:00:00Z", "modified": "2026-11-20T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": pkg},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
        })
    };
    for (id, cve, pkg, fixed) in [
        // libssl3 is built from openssl: named by its source.
        (
            "DSA-9001-1",
            "CVE-2023-44487",
            "openssl",
            "3.0.11-1~deb12u2",
        ),
        // zlib's source version carries the epoch the binNMU's binary version also has.
        ("DSA-9002-1", "CVE-2026-0002", "zlib", "1:1.2.13.dfsg-1"),
        // A backport sorts before its base version.
        ("DSA-9003-1", "CVE-2026-0003", "curl", "7.88.1-10+deb12u5"),
    ] {
        std::fs::write(
            feed.join(format!("{id}.json")),
            record(id, cve, pkg, fixed).to_string(),
        )
        .unwrap();
    }
    let kev = shared_data().join("kev/known_exploited_vulnerabilities.json");
    let (code, json, stderr) = scan(&[
        "--dpkg-status",
        status.to_str().unwrap(),
        "--os",
        "Debian:12",
        "--feed",
        feed.to_str().unwrap(),
        "--feed",
        kev.to_str().unwrap(),
        "--format",
        "json",
        "--now",
        "2026-11-20T06:00:00Z",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let findings: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} -> {} {} due {} {} | {}",
                f["vulnerability"].as_str().unwrap(),
                f["package"].as_str().unwrap(),
                f["installed"].as_str().unwrap(),
                f["fixed"].as_str().unwrap(),
                f["criticality"].as_str().unwrap(),
                f["due_at"].as_str().unwrap(),
                f["sla"].as_str().unwrap(),
                f["explanation"].as_str().unwrap(),
            )
        })
        .collect();
    // CVE-2023-44487 (HTTP/2 rapid reset) is in KEV: Emergency, due 8 hours after the fix's
    // release at 00:00, so due soon at 06:00. zlib's source version is the fixed one (the +b1
    // is a binNMU of the binary); the curl backport sorts below its base version and, rated by
    // nobody, is Medium under the seed policy: 60 days. The removed libcurl4 (config files
    // only) is not exposed.
    expect_test::expect![[r#"
        CVE-2023-44487 libssl3 3.0.11-1~deb12u1 -> 3.0.11-1~deb12u2 emergency due 2026-11-20T08:00:00Z due_soon | openssl 3.0.11-1~deb12u1 < 3.0.11-1~deb12u2 fixed in DSA-9001-1 (Debian:12, source openssl)
        CVE-2026-0003 curl 7.88.1-10+deb12u5~bpo12+1 -> 7.88.1-10+deb12u5 medium due 2027-01-19T00:00:00Z on_time | curl 7.88.1-10+deb12u5~bpo12+1 < 7.88.1-10+deb12u5 fixed in DSA-9003-1 (Debian:12, source curl)"#]]
    .assert_eq(&findings.join("\n"));

    // Table output for people, and exit 0 when nothing is found.
    let out = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args([
            "scan",
            "--dpkg-status",
            status.to_str().unwrap(),
            "--os",
            "Debian:11",
            "--feed",
        ])
        .arg(&feed)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("0 findings"));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("feed.json");
    std::fs::write(&garbage, b"\x00\x01 not json").unwrap();
    let status = dir.path().join("status");
    std::fs::write(
        &status,
        "Package: a\nStatus: install ok installed\nVersion: 1\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
            .arg("scan")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[
        "--dpkg-status",
        status.to_str().unwrap(),
        "--os",
        "Debian:12",
        "--feed",
        garbage.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a feed we recognise"), "{err}");
    let (code, err) = run(&[
        "--dpkg-status",
        status.to_str().unwrap(),
        "--feed",
        garbage.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--os"), "{err}");
    let (code, err) = run(&[
        "--dpkg-status",
        "/nonexistent/status",
        "--os",
        "Debian:12",
        "--feed",
        "osv:/nonexistent",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("patchwarden: "), "{err}");
    let (code, err) = run(&[
        "--dpkg-status",
        status.to_str().unwrap(),
        "--os",
        "Debian:12",
        "--feed",
        "osv:/nonexistent",
        "--policy",
        "no-such-preset",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no-such-preset"), "{err}");
}

/// Issue 6's acceptance scan: the UBI 9 SBOM against the AlmaLinux advisories under
/// `--policy cyber-essentials --policy seed-default`. Each finding's class, due date and the
/// rules that set them are recomputed here from the frameworks' own words and the raw files:
///
/// - seed 000: in KEV → Emergency, 8 hours; vendor Important/Critical → High, 30 days; vendor
///   Moderate, or no rating at all → Medium, 60 days; anything → Low, 90 days;
/// - Cyber Essentials: vendor critical/high, or no severity → 14 days; others: no deadline;
/// - clocks start when the fix was released (the earliest AlmaLinux advisory publishing the
///   lowest fix above the installed version); the highest class and earliest due date win,
///   ties to the policy given first.
///
/// The vendor's rating is the highest of every AlmaLinux advisory naming the CVE (the cautious
/// reading of several ratings, which is what the product states).
#[test]
fn ubi9_under_cyber_essentials_and_seed_policy_matches_an_independent_computation() {
    if !require_oracles("the policy scan's independent check (it orders with librpm)") {
        return;
    }
    let data = shared_data();
    let kev_path = data.join("kev/known_exploited_vulnerabilities.json");
    let json = scan_ubi9(&[
        "--feed",
        kev_path.to_str().unwrap(),
        "--policy",
        "cyber-essentials",
        "--policy",
        "seed-default",
    ]);

    let kev: Value = serde_json::from_str(&std::fs::read_to_string(&kev_path).unwrap()).unwrap();
    let in_kev: BTreeSet<String> = kev["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cveID"].as_str().unwrap().to_owned())
        .collect();

    // Every advisory: its rating word, publication time, the CVEs it fixes, and per
    // AlmaLinux 9 package its fixed EVRs.
    struct Alsa {
        rank: u8,
        published: jiff::Timestamp,
        fixes: BTreeMap<String, Vec<String>>,
    }
    let mut by_cve: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut alsas: Vec<Alsa> = Vec::new();
    for adv in raw_advisories(&data.join("osv/almalinux-all.zip")) {
        let word = adv["summary"]
            .as_str()
            .unwrap_or("")
            .split(": ")
            .next()
            .unwrap_or("");
        let rank = match word {
            "Critical" => 4,
            "Important" => 3,
            "Moderate" => 2,
            "Low" => 1,
            _ => 0,
        };
        let mut fixes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for affected in adv["affected"].as_array().into_iter().flatten() {
            if affected["package"]["ecosystem"] == "AlmaLinux:9" {
                for range in affected["ranges"].as_array().into_iter().flatten() {
                    let fixed = range["events"][1]["fixed"].as_str().unwrap().to_owned();
                    fixes
                        .entry(affected["package"]["name"].as_str().unwrap().to_owned())
                        .or_default()
                        .push(fixed);
                }
            }
        }
        let n = alsas.len();
        for cve in adv["related"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            by_cve.entry(cve.to_owned()).or_default().push(n);
        }
        alsas.push(Alsa {
            rank,
            published: adv["published"].as_str().unwrap().parse().unwrap(),
            fixes,
        });
    }

    let mut checked = 0;
    let mut winners: BTreeMap<String, usize> = BTreeMap::new();
    for f in json["findings"].as_array().unwrap() {
        let cve = f["vulnerability"].as_str().unwrap();
        let package = f["package"].as_str().unwrap();
        let installed = f["installed"].as_str().unwrap();
        let sources = &by_cve[cve];
        let vendor = sources.iter().map(|&a| alsas[a].rank).max().unwrap_or(0);
        // The lowest fix above the installed version, and when it was first published.
        let mut best: Option<(String, jiff::Timestamp)> = None;
        for &a in sources {
            for fixed in alsas[a].fixes.get(package).into_iter().flatten() {
                let ours = match fixed.split_once(':') {
                    Some((e, _)) => format!("{e}:{installed}"),
                    None => installed.to_owned(),
                };
                if rpm_cmp(&ours, fixed) != std::cmp::Ordering::Less {
                    continue;
                }
                best = match best {
                    Some((b, t)) if rpm_cmp(fixed, &b) == std::cmp::Ordering::Greater => {
                        Some((b, t))
                    }
                    Some((b, t)) if rpm_cmp(fixed, &b) == std::cmp::Ordering::Equal => {
                        Some((b, t.min(alsas[a].published)))
                    }
                    _ => Some((fixed.clone(), alsas[a].published)),
                };
            }
        }
        let (fixed, released) = best.expect("a finding with a fix");
        assert_eq!(f["fixed"], fixed.as_str());
        assert_eq!(
            f["available_at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap(),
            released
        );

        // (class rank, due, policy/rule), in the order the policies were given.
        let hours = |h: i64| {
            released
                .checked_add(jiff::SignedDuration::from_hours(h))
                .unwrap()
        };
        let mut matched: Vec<(u8, Option<jiff::Timestamp>, &str)> = Vec::new();
        if vendor >= 3 {
            matched.push((
                4,
                Some(hours(14 * 24)),
                "cyber-essentials/high-risk-14-days",
            ));
        }
        if vendor == 0 {
            matched.push((
                4,
                Some(hours(14 * 24)),
                "cyber-essentials/no-severity-14-days",
            ));
        }
        matched.push((2, None, "cyber-essentials/other-updates"));
        if in_kev.contains(cve) {
            matched.push((5, Some(hours(8)), "seed-default/known-exploited"));
        }
        if vendor >= 3 {
            matched.push((4, Some(hours(30 * 24)), "seed-default/vendor-high"));
        }
        if vendor == 2 {
            matched.push((3, Some(hours(60 * 24)), "seed-default/vendor-medium"));
        }
        if vendor == 0 {
            matched.push((3, Some(hours(60 * 24)), "seed-default/unrated"));
        }
        matched.push((2, Some(hours(90 * 24)), "seed-default/low"));
        let class = matched.iter().map(|m| m.0).max().unwrap();
        let class_rule = matched.iter().find(|m| m.0 == class).unwrap().2;
        let due = matched.iter().filter_map(|m| m.1).min().unwrap();
        let due_rule = matched.iter().find(|m| m.1 == Some(due)).unwrap().2;
        let class_name = ["", "", "low", "medium", "high", "emergency"][class as usize];

        let context = format!("{cve} {package} {}", f["arch"]);
        assert_eq!(f["criticality"], class_name, "{context}");
        assert_eq!(
            f["due_at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap(),
            due,
            "{context}"
        );
        assert_eq!(
            format!(
                "{}/{}",
                f["policy"]["preset"].as_str().unwrap(),
                f["policy"]["rule"].as_str().unwrap()
            ),
            due_rule,
            "{context}"
        );
        assert_eq!(
            format!(
                "{}/{}",
                f["policy"]["class_preset"].as_str().unwrap(),
                f["policy"]["class_rule"].as_str().unwrap()
            ),
            class_rule,
            "{context}"
        );
        assert_eq!(f["policy"]["clock_start"], "fix_released", "{context}");
        *winners.entry(due_rule.to_owned()).or_default() += 1;
        checked += 1;
    }
    assert!(checked > 1000, "{checked}");
    // The computation exercised each kind of winner, or it would prove little.
    for rule in [
        "seed-default/known-exploited",
        "cyber-essentials/high-risk-14-days",
        "seed-default/vendor-medium",
        "seed-default/low",
    ] {
        assert!(
            winners.get(rule).is_some_and(|&n| n > 0),
            "no finding was decided by {rule}: {winners:?}"
        );
    }
}

/// CISA's BOD 26-04 decides on SSVC points that only Vulnrichment's CVE 5 records carry: with
/// that feed loaded, CVE-2023-44487 (in KEV, exploitation active, automatable, partial impact)
/// on an internet-exposed host is row 11, three days from the KEV date; without it, the
/// preset's rule for a KEV entry without CISA's SSVC data applies.
#[test]
fn bod_26_04_reads_ssvc_from_vulnrichment() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    std::fs::write(
        &status,
        "Package: libnghttp2-14\nStatus: install ok installed\nArchitecture: amd64\n\
         Source: nghttp2\nVersion: 1.52.0-1\n",
    )
    .unwrap();
    let feed = dir.path().join("DSA-5540-1.json");
    let record = serde_json::json!({
        "schema_version": "1.6.0", "id": "DSA-5540-1", "upstream": ["CVE-2023-44487"],
        "published": "2023-10-14T00:00:00Z", "modified": "2023-10-14T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "nghttp2"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.52.0-1+deb12u1"}]}]}]
    });
    std::fs::write(&feed, record.to_string()).unwrap();
    let data = shared_data();
    let kev = data.join("kev/known_exploited_vulnerabilities.json");
    let vulnrichment = data.join("vulnrichment/vulnrichment-sample.zip");
    let run = |with_ssvc: bool| {
        let mut args = vec![
            "--dpkg-status",
            status.to_str().unwrap(),
            "--os",
            "Debian:12",
            "--feed",
            feed.to_str().unwrap(),
            "--feed",
            kev.to_str().unwrap(),
            "--policy",
            "cisa-bod-26-04",
            "--asset-label",
            "exposure=internet",
            "--format",
            "json",
            "--now",
            "2026-11-26T00:00:00Z",
        ];
        if with_ssvc {
            args.extend(["--feed", vulnrichment.to_str().unwrap()]);
        }
        let (code, json, stderr) = scan(&args);
        assert_eq!(code, 1, "{stderr}");
        let f = &json["findings"][0];
        format!(
            "{} {} {} {}",
            f["criticality"].as_str().unwrap(),
            f["policy"]["rule"].as_str().unwrap(),
            f["policy"]["clock_start"].as_str().unwrap(),
            f["due_at"].as_str().unwrap()
        )
    };
    assert_eq!(
        run(true),
        "emergency kev-exposed-automatable-partial kev_added 2023-10-13T00:00:00Z"
    );
    assert_eq!(
        run(false),
        "high kev-without-ssvc kev_added 2023-10-24T00:00:00Z"
    );
}
