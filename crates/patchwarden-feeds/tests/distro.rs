//! The distribution feeds on the real files: the Alpine secdb and the Debian security tracker.

mod common;

use std::collections::BTreeSet;

use common::{describe, reject_lines, shared_data};
use expect_test::expect;
use patchwarden_core::advisory::{Justification, PackageNaming, SeverityLevel};
use patchwarden_feeds::load::{AdvisoryFeed, load_path};
use patchwarden_feeds::{Limits, alpine, debian};

#[test]
fn alpine_secdb_counts() {
    let import = load_path(
        &shared_data().join("alpine/json"),
        AdvisoryFeed::AlpineSecdb,
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Typos in the published data: versions apk itself would refuse, so no matcher could
    // order them. Each costs only its own (package, version) entry.
    expect![[r#"
        alpine/json/v3.11/main.json#python2@2.7.16-33: fixed version "2.7.16-33" is not a valid apk2 version: invalid apk2 version "2.7.16-33": unexpected character '-' at byte 6 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
        alpine/json/v3.11/main.json#xen@4.10-1-r1: fixed version "4.10-1-r1" is not a valid apk2 version: invalid apk2 version "4.10-1-r1": unexpected character '-' at byte 4 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
        alpine/json/v3.4/main.json#icu@57-1-r2: fixed version "57-1-r2" is not a valid apk2 version: invalid apk2 version "57-1-r2": unexpected character '-' at byte 2 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
        alpine/json/v3.6/main.json#heimdal@7.4.0-r0: the fixed version names no vulnerability, so there is nothing to match
        alpine/json/v3.6/main.json#py-django@1.11-20-r0: fixed version "1.11-20-r0" is not a valid apk2 version: invalid apk2 version "1.11-20-r0": unexpected character '-' at byte 4 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
        alpine/json/v3.7/main.json#py-django@1.11-20-r0: fixed version "1.11-20-r0" is not a valid apk2 version: invalid apk2 version "1.11-20-r0": unexpected character '-' at byte 4 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
        alpine/json/v3.8/main.json#py-django@1.11-20-r0: fixed version "1.11-20-r0" is not a valid apk2 version: invalid apk2 version "1.11-20-r0": unexpected character '-' at byte 4 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
        alpine/json/v3.8/main.json#xen@4.10-1-r1: fixed version "4.10-1-r1" is not a valid apk2 version: invalid apk2 version "4.10-1-r1": unexpected character '-' at byte 4 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
        alpine/json/v3.9/main.json#xen@4.10-1-r1: fixed version "4.10-1-r1" is not a valid apk2 version: invalid apk2 version "4.10-1-r1": unexpected character '-' at byte 4 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})
    "#]].assert_eq(&reject_lines(&import));
    // Every (file, package, fixed version) of the 1,652 packages' 4,265 fixed versions is an
    // affected range, a not-affected statement (version 0) or one of the rejects above.
    let mut fixes: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut packages: BTreeSet<(String, String)> = BTreeSet::new();
    for a in &import.records {
        for x in &a.affected {
            let p = x.package.as_ref().unwrap_or_else(|| panic!("{}", a.id));
            assert_eq!(p.naming(), PackageNaming::Origin);
            for v in x.fixed_versions() {
                fixes.insert((a.source.location.clone(), p.name.clone(), v.to_owned()));
            }
            packages.insert((a.source.location.clone(), p.name.clone()));
        }
        for n in &a.not_affected {
            fixes.insert((
                a.source.location.clone(),
                n.package.name.clone(),
                "0".into(),
            ));
            packages.insert((a.source.location.clone(), n.package.name.clone()));
        }
    }
    assert_eq!(fixes.len() + import.rejects.len(), 4265);
    // Packages with an empty `secfixes` have nothing to say; the rest are all here.
    assert_eq!(packages.len(), 1652 - packages_without_fixes());
    expect![[r#"
        11440 advisories
    "#]]
    .assert_eq(&format!("{} advisories\n", import.records.len()));
}

/// Packages listed with no fixed version at all (counted from the files with a plain JSON
/// walk, independent of the parser).
fn packages_without_fixes() -> usize {
    let mut n = 0;
    for release in std::fs::read_dir(shared_data().join("alpine/json"))
        .into_iter()
        .flatten()
    {
        for file in std::fs::read_dir(release.map(|r| r.path()).unwrap_or_default())
            .into_iter()
            .flatten()
        {
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(file.map(|f| f.path()).unwrap_or_default()).unwrap_or_default(),
            )
            .unwrap_or_default();
            for p in v["packages"].as_array().into_iter().flatten() {
                if p["pkg"]["secfixes"]
                    .as_object()
                    .is_none_or(|m| m.is_empty())
                {
                    n += 1;
                }
            }
        }
    }
    n
}

#[test]
fn alpine_traps() {
    let dir = shared_data().join("alpine/json");
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    // A null `packages`: an empty repository, not an error.
    let empty = alpine::parse(&read("v3.3/community.json"), "v3.3/community.json")
        .unwrap_or_else(|r| panic!("{r}"));
    assert!(empty.records.is_empty() && empty.rejects.is_empty());

    let main = alpine::parse(&read("v3.10/main.json"), "v3.10/main.json")
        .unwrap_or_else(|r| panic!("{r}"));
    let find = |id: &str| {
        main.records
            .iter()
            .find(|a| a.id == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    // Two ids of one issue in one string: the CVE is the vulnerability, the XSA its alias.
    expect![[r#"
        id ALPINE-CVE-2016-9932 (AlpineSecdb v3.10/main.json)
        aliases ["CVE-2016-9932", "XSA-200"]
        published None modified None withdrawn None
          affected Alpine:v3.10 / xen (Origin): Ecosystem[introduced 0, fixed 4.7.1-r3]
    "#]]
    .assert_eq(&describe(find("ALPINE-CVE-2016-9932"), 3));
    // An id that is not a CVE.
    expect![[r#"
        id ALPINE-XSA-207 (AlpineSecdb v3.10/main.json)
        aliases ["XSA-207"]
        published None modified None withdrawn None
          affected Alpine:v3.10 / xen (Origin): Ecosystem[introduced 0, fixed 4.7.1-r5]
    "#]]
    .assert_eq(&describe(find("ALPINE-XSA-207"), 3));

    // Version 0: never vulnerable.
    let v38 =
        alpine::parse(&read("v3.8/main.json"), "v3.8/main.json").unwrap_or_else(|r| panic!("{r}"));
    let db: Vec<_> = v38
        .records
        .iter()
        .flat_map(|a| a.not_affected.iter().map(move |n| (a.id.clone(), n)))
        .collect();
    assert!(!db.is_empty());
    assert!(
        db.iter().all(|(_, n)| n.package.name == "db"
            && n.justification == Some(Justification::NeverVulnerable))
    );
}

#[test]
fn alpine_bad_input_says_why() {
    let cases: [&[u8]; 4] = [
        br#"{"distroversion":"v3.10","reponame":"main","packages":[{"pkg":{"name":"x","secfixes":{"1.0 -r0":["CVE-2020-0001"]}}}]}"#,
        br#"{"distroversion":"nonsense","packages":[]}"#,
        br#"{"reponame":"main"}"#,
        br#"{"distroversion":"v3.10","packages":[{"pkg":{"name":"x","secfixes":{"1.0-r0":[""]}}}]}"#,
    ];
    let out: String = cases
        .iter()
        .map(|c| match alpine::parse(c, "t.json") {
            Ok(i) => format!(
                "ok {} records, rejects {:?}\n",
                i.records.len(),
                i.reject_lines()
            ),
            Err(r) => format!("{r}\n"),
        })
        .collect();
    expect![[r#"
        ok 0 records, rejects ["t.json#x@1.0 -r0: fixed version \"1.0 -r0\" is not a valid apk2 version: invalid apk2 version \"1.0 -r0\": unexpected character ' ' at byte 3 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})"]
        ok 0 records, rejects []
        t.json: is not valid JSON for this feed: missing field `distroversion` at line 1 column 19
        ok 0 records, rejects ["t.json#x@1.0-r0: an empty vulnerability id"]
    "#]].assert_eq(&out);
}

#[test]
fn debian_tracker_fixture() {
    let path = shared_data()
        .join("fixtures/vunnel/tests/unit/providers/debian/test-fixtures/input/debian.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let import = debian::parse(&bytes, "debian.json").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(reject_lines(&import), "");
    let text: String = import.records.iter().map(|a| describe(a, 8)).collect();
    expect![[r#"
        id DEBIAN-CVE-2005-3111 (DebianTracker debian.json)
        aliases ["CVE-2005-3111"]
        published None modified None withdrawn None
          affected Debian:10 / backupninja (Source): Ecosystem[introduced 0, fixed 0.8-2] vendor Medium "medium" eco {"status":"resolved","urgency":"medium"}
          affected Debian:8 / backupninja (Source): Ecosystem[introduced 0, fixed 0.8-2] vendor Medium "medium" eco {"status":"resolved","urgency":"medium"}
          affected Debian:unstable / backupninja (Source): Ecosystem[introduced 0, fixed 0.8-2] vendor Medium "medium" eco {"status":"resolved","urgency":"medium"}
          affected Debian:9 / backupninja (Source): Ecosystem[introduced 0, fixed 0.8-2] vendor Medium "medium" eco {"status":"resolved","urgency":"medium"}
        database_specific {"debianbug":null,"scope":"local"}
        id DEBIAN-CVE-2007-2383 (DebianTracker debian.json)
        aliases ["CVE-2007-2383"]
        published None modified None withdrawn None
          not affected Debian:10 / prototypejs version None Some(NeverVulnerable) Some("not affected in buster (Debian security tracker)")
          not affected Debian:8 / prototypejs version None Some(NeverVulnerable) Some("not affected in jessie (Debian security tracker)")
          not affected Debian:unstable / prototypejs version None Some(NeverVulnerable) Some("not affected in sid (Debian security tracker)")
          not affected Debian:9 / prototypejs version None Some(NeverVulnerable) Some("not affected in stretch (Debian security tracker)")
        database_specific {"debianbug":555217,"scope":"remote"}
        id DEBIAN-CVE-2008-7220 (DebianTracker debian.json)
        aliases ["CVE-2008-7220"]
        published None modified None withdrawn None
          affected Debian:10 / prototypejs (Source): Ecosystem[introduced 0, fixed 1.6.0.2-1] vendor High "high**" eco {"status":"resolved","urgency":"high**"}
          affected Debian:8 / prototypejs (Source): Ecosystem[introduced 0, fixed 1.6.0.2-1] vendor High "high**" eco {"status":"resolved","urgency":"high**"}
          affected Debian:unstable / prototypejs (Source): Ecosystem[introduced 0, fixed 1.6.0.2-1] vendor High "high**" eco {"status":"resolved","urgency":"high**"}
          affected Debian:9 / prototypejs (Source): Ecosystem[introduced 0, fixed 1.6.0.2-1] vendor High "high**" eco {"status":"resolved","urgency":"high**"}
        database_specific {"debianbug":555217,"scope":"remote"}
        id DEBIAN-CVE-2013-1444 (DebianTracker debian.json)
        aliases ["CVE-2013-1444"]
        published None modified None withdrawn None
          affected Debian:10 / txt2man (Source): Ecosystem[introduced 0, fixed 1.5.5-4.1] vendor Low "low**" eco {"status":"resolved","urgency":"low**"}
          affected Debian:8 / txt2man (Source): Ecosystem[introduced 0, fixed 1.5.5-4.1] vendor Low "low**" eco {"status":"resolved","urgency":"low**"}
          affected Debian:unstable / txt2man (Source): Ecosystem[introduced 0, fixed 1.5.5-4.1] vendor Low "low**" eco {"status":"resolved","urgency":"low**"}
          affected Debian:9 / txt2man (Source): Ecosystem[introduced 0, fixed 1.5.5-4.1] vendor Low "low**" eco {"status":"resolved","urgency":"low**"}
        database_specific {"debianbug":724614,"scope":"local"}
        id DEBIAN-CVE-2022-0358 (DebianTracker debian.json)
        aliases ["CVE-2022-0358"]
        published None modified None withdrawn None
        id DEBIAN-CVE-2022-0456 (DebianTracker debian.json)
        aliases ["CVE-2022-0456"]
        published None modified None withdrawn None
          affected Debian:12 / chromium (Source): Ecosystem[introduced 0, fixed 98.0.4758.80-1] vendor Unknown "not yet assigned" eco {"status":"resolved","urgency":"not yet assigned"}
          affected Debian:11 / chromium (Source): Ecosystem[introduced 0, fixed 98.0.4758.80-1~deb11u1] vendor Unknown "not yet assigned" eco {"status":"resolved","urgency":"not yet assigned"}
          affected Debian:10 / chromium (Source): Ecosystem[introduced 0] vendor Unknown "end-of-life" eco {"status":"open","urgency":"end-of-life"}
          affected Debian:unstable / chromium (Source): Ecosystem[introduced 0, fixed 98.0.4758.80-1] vendor Unknown "not yet assigned" eco {"status":"resolved","urgency":"not yet assigned"}
          affected Debian:9 / chromium (Source): Ecosystem[introduced 0] vendor Unknown "end-of-life" eco {"status":"open","urgency":"end-of-life"}
        id DEBIAN-CVE-2025-53603 (DebianTracker debian.json)
        aliases ["CVE-2025-53603"]
        published None modified None withdrawn None
          affected Debian:12 / sope (Source): Ecosystem[introduced 0, fixed 5.8.0-1+deb12u1] vendor Unknown "not yet assigned" eco {"status":"resolved","urgency":"not yet assigned"}
          affected Debian:11 / sope (Source): Ecosystem[introduced 0, fixed 5.0.1-2+deb11u1] vendor Unknown "not yet assigned" eco {"status":"resolved","urgency":"not yet assigned"}
          affected Debian:unstable / sope (Source): Ecosystem[introduced 0, fixed 5.12.1-2] vendor Unknown "not yet assigned" eco {"status":"resolved","urgency":"not yet assigned"}
          affected Debian:13 / sope (Source): Ecosystem[introduced 0, fixed 5.12.1-2] vendor Unknown "not yet assigned" eco {"status":"resolved","urgency":"not yet assigned"}
        database_specific {"debianbug":1108798,"scope":"local"}
    "#]].assert_eq(&text);
    for a in &import.records {
        for x in &a.affected {
            let p = x.package.as_ref().unwrap_or_else(|| panic!("{}", a.id));
            assert_eq!(
                p.naming(),
                PackageNaming::Source,
                "Debian names source packages"
            );
        }
    }
}

#[test]
fn debian_tracker_osv_dev_mock() {
    let path = shared_data()
        .join("osv/misc/osv.dev-vulnfeeds-parts/debian/debian_security_tracker_mock.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let import = debian::parse(&bytes, "mock.json").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(reject_lines(&import), "");
    let not_affected: usize = import.records.iter().map(|a| a.not_affected.len()).sum();
    let affected: usize = import.records.iter().map(|a| a.affected.len()).sum();
    expect![[r#"
        3 advisories, 10 affected, 5 not affected
    "#]]
    .assert_eq(&format!(
        "{} advisories, {affected} affected, {not_affected} not affected\n",
        import.records.len()
    ));
    let urgencies: BTreeSet<(String, SeverityLevel)> = import
        .records
        .iter()
        .flat_map(|a| &a.affected)
        .filter_map(|x| x.vendor_severity.as_ref())
        .map(|v| (v.text.clone(), v.level))
        .collect();
    expect![[r#"
        {
            (
                "not yet assigned",
                Unknown,
            ),
            (
                "unimportant",
                None,
            ),
        }
    "#]]
    .assert_debug_eq(&urgencies);
}

#[test]
fn debian_bad_records_cost_only_themselves() {
    let doc = br#"{
      "pkg": {
        "CVE-2020-0001": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "1.0-1", "urgency": "high**"}}},
        "CVE-2020-0002": {"releases": "everywhere"},
        "CVE-2020-0003": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "not a version"}}},
        "CVE-2020-0004": {"releases": {"hurd": {"status": "open"}}},
        "CVE-2020-0005": {"releases": {"bookworm": {"status": "exploded"}}},
        "CVE-2020-0006": {"releases": [1]},
        "CVE-2020-0007": 5
      }
    }"#;
    let import = debian::parse(doc, "t.json").unwrap_or_else(|r| panic!("{r}"));
    expect![[r#"
        t.json#pkg/CVE-2020-0002 (CVE-2020-0002): `releases` must be an object of releases, found a string
        t.json#pkg/CVE-2020-0003/bookworm: fixed_version "not a version" is not a valid dpkg version: invalid dpkg version "not a version": version string has embedded spaces
        t.json#pkg/CVE-2020-0004/hurd: unknown Debian release code name "hurd"
        t.json#pkg/CVE-2020-0005/bookworm: status "exploded" with fixed_version None is not one the tracker uses
        t.json#pkg/CVE-2020-0006 (CVE-2020-0006): `releases` must be an object of releases, found a non-empty array
        t.json#pkg/CVE-2020-0007 (CVE-2020-0007): is not valid JSON for this feed: invalid type: integer `5`, expected struct RawRecord at line 1 column 1
    "#]].assert_eq(&reject_lines(&import));
    assert!(
        import
            .records
            .iter()
            .any(|a| a.id == "DEBIAN-CVE-2020-0001" && a.affected.len() == 1)
    );
    assert!(debian::parse(b"[]", "t.json").is_err());
}
