//! OSV on the real files: AlmaLinux's `all.zip`, the osv.dev and linter test records, CVE 5
//! records among them, and the traps the model must keep apart.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Write};

use common::{describe, reject_lines, rel, shared_data};
use expect_test::expect;
use patchwarden_core::advisory::{
    Advisory, Event, FeedKind, PackageNaming, Scheme, group_vulnerabilities,
};
use patchwarden_feeds::load::{AdvisoryFeed, load_path};
use patchwarden_feeds::{Limits, RejectReason, osv};

/// The archive, parsed once for all tests of this file (a few seconds in a debug build).
fn almalinux() -> &'static [Advisory] {
    static RECORDS: std::sync::OnceLock<Vec<Advisory>> = std::sync::OnceLock::new();
    RECORDS.get_or_init(parse_almalinux)
}

fn parse_almalinux() -> Vec<Advisory> {
    let path = shared_data().join("osv/almalinux-all.zip");
    let file = BufReader::new(File::open(&path).unwrap_or_else(|e| panic!("{e}")));
    let import = osv::parse_zip(file, "almalinux-all.zip", &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reject_lines(&import), "", "no AlmaLinux record is rejected");
    import.records
}

#[test]
fn almalinux_all_zip_counts() {
    let records = almalinux();
    assert_eq!(records.len(), 5680);
    let affected: usize = records.iter().map(|a| a.affected.len()).sum();
    assert_eq!(affected, 71_329);

    let mut by_ecosystem: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_prefix: BTreeMap<String, usize> = BTreeMap::new();
    let mut vendor: BTreeMap<String, usize> = BTreeMap::new();
    let mut epochs = 0;
    for a in records {
        *by_prefix
            .entry(a.id.split('-').next().unwrap_or("").to_owned())
            .or_default() += 1;
        *vendor
            .entry(
                a.vendor_severity
                    .as_ref()
                    .map(|v| format!("{} {:?}", v.vendor, v.level))
                    .unwrap_or_else(|| "none".into()),
            )
            .or_default() += 1;
        assert!(a.published.is_some(), "{} has a fix date", a.id);
        for x in &a.affected {
            let p = x.package.as_ref().unwrap_or_else(|| panic!("{}", a.id));
            *by_ecosystem.entry(p.ecosystem.clone()).or_default() += 1;
            assert_eq!(x.scheme(), Some(Scheme::Rpm));
            assert_eq!(p.naming(), PackageNaming::Binary);
            epochs += x.fixed_versions().filter(|v| v.contains(':')).count();
        }
    }
    let show = |m: &BTreeMap<String, usize>| -> String {
        m.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
    };
    expect![[r#"
        AlmaLinux:10: 6479
        AlmaLinux:8: 40867
        AlmaLinux:9: 23983
    "#]]
    .assert_eq(&show(&by_ecosystem));
    expect![[r#"
        ALBA: 978
        ALEA: 222
        ALSA: 4480
    "#]]
    .assert_eq(&show(&by_prefix));
    expect![[r#"
        AlmaLinux Critical: 34
        AlmaLinux High: 2386
        AlmaLinux Low: 154
        AlmaLinux Medium: 1908
        none: 1198
    "#]]
    .assert_eq(&show(&vendor));
    // Epoch-bearing EVRs, as `unzip -p … | grep -c '"fixed": "[0-9]*:'` counts them.
    assert_eq!(epochs, 17_201);
}

#[test]
fn almalinux_record_snapshot() {
    let records = almalinux();
    let a = records
        .iter()
        .find(|a| a.id == "ALSA-2022:5267")
        .unwrap_or_else(|| panic!("ALSA-2022:5267 is in the archive"));
    expect![[r#"
        id ALSA-2022:5267 (Osv almalinux-all.zip!almalinux9/ALSA-2022:5267.json)
        related ["CVE-2022-1012", "CVE-2022-1729", "CVE-2022-1966", "CVE-2022-27666"]
        published Some("2022-06-28T00:00:00Z") modified Some("2022-06-30T08:42:28Z") withdrawn None
        summary "Important: kernel-rt security and bug fix update"
        vendor severity AlmaLinux High "Important"
          affected AlmaLinux:9 / kernel-rt (Binary): Ecosystem[introduced 0, fixed 5.14.0-70.17.1.rt21.89.el9_0]
          affected AlmaLinux:9 / kernel-rt-core (Binary): Ecosystem[introduced 0, fixed 5.14.0-70.17.1.rt21.89.el9_0]
          … 12 affected entries in all
    "#]]
    .assert_eq(&describe(a, 2));
    // The ALSA bundles its CVEs in `related`: that is what it fixes.
    assert_eq!(
        a.fixes(),
        [
            "CVE-2022-1012",
            "CVE-2022-1729",
            "CVE-2022-1966",
            "CVE-2022-27666"
        ]
    );
    assert_eq!(a.fix_available_at(), a.published);
}

/// Epoch-aware EVRs: `1:3.0.1-43.el9_0` is above any epoch-0 version and orders by rpm's rules.
#[test]
fn rpm_fixed_versions_keep_their_epoch() {
    let records = almalinux();
    let (id, fixed) = records
        .iter()
        .flat_map(|a| {
            a.affected.iter().flat_map(move |x| {
                x.fixed_versions()
                    .filter(|v| v.starts_with("1:3.0.1-43"))
                    .map(move |v| (a.id.clone(), v.to_owned()))
            })
        })
        .next()
        .unwrap_or_else(|| panic!("a fix at epoch 1"));
    let cmp = |a: &str, b: &str| Scheme::Rpm.compare(a, b).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cmp("3.0.7-24.el9", &fixed).is_lt(),
        "{id}: epoch 0 is below {fixed}"
    );
    assert!(cmp("1:3.0.1-42.el9", &fixed).is_lt());
    assert!(cmp("1:3.0.1-43.el9_0", &fixed).is_eq());
    assert!(cmp("1:3.0.1-43.el9_0.1", &fixed).is_gt());
}

#[test]
fn misc_directory_accepts_the_good_and_says_why_for_the_rest() {
    let import = load_path(
        &shared_data().join("osv/misc"),
        AdvisoryFeed::Osv,
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for a in &import.records {
        *kinds.entry(format!("{:?}", a.source.feed)).or_default() += 1;
    }
    expect![[r#"
        {
            "Cve5": 11,
            "Osv": 48,
        }
    "#]]
    .assert_debug_eq(&kinds);
    expect![[r#"
        osv/misc/osv-schema-linter-testdata/nointroduced-CVE-2023-41045.json (CVE-2023-41045): affected[0] range 0: the range has no introduced event
        osv/misc/osv-schema-linter-testdata/nondistinct-CVE-2018-5407.json (CVE-2018-5407): affected[6] range 1: the events are not distinct: "e818b74be2170fbe957a07b0da4401c2b694b3b8" appears in Introduced("e818b74be2170fbe957a07b0da4401c2b694b3b8") and Fixed("e818b74be2170fbe957a07b0da4401c2b694b3b8")
        osv/misc/osv.dev-vulnfeeds-parts/debian/debian_security_tracker_mock.json: the record has no id
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2015-9251.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2016-2176.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2016-8568.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2017-13723.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2017-14448.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2017-9352.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2017-9993.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2019-14811.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2021-3770.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2022-32746.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/alpine/CVE-2022-33745.alpine.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/debian/CVE-2016-1585.debian.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/debian/CVE-2017-6507.debian.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/nvd/CVE-2016-2176.nvd.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/nvd/CVE-2022-32746.nvd.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/osv.dev-vulnfeeds-parts/parts/nvd/CVE-2023-0049.nvd.json: not an OSV record: the document is a JSON array, an OSV record is an object
        osv/misc/trustify-osv/PYSEC-2024-55.yaml: YAML documents are not read; OSV publishes JSON
        osv/misc/trustify-osv/RSEC-2023-6.yaml: YAML documents are not read; OSV publishes JSON
    "#]]
    .assert_eq(&reject_lines(&import));
}

#[test]
fn cve5_records_are_severity_without_ranges() {
    let path = shared_data().join("osv/misc/trustify-cve5/CVE-2017-20197.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let a = osv::parse(&bytes, "CVE-2017-20197.json").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(a.source.feed, FeedKind::Cve5);
    assert!(
        a.affected.is_empty(),
        "a CVE record produces no findings by itself"
    );
    expect![[r#"
        id CVE-2017-20197 (Cve5 CVE-2017-20197.json)
        published Some("2025-04-09T11:00:16.705Z") modified Some("2025-04-09T13:17:18.497Z") withdrawn None
        summary "propanetank Roommate-Bill-Tracking login.php sql injection"
        severity Cvss(V4) CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N score Some("6.9") level Some(Medium)
        severity Cvss(V3_1) CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:L score Some("7.3") level Some(High)
        severity Cvss(V3_0) CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:L score Some("7.3") level Some(High)
        severity Cvss(V2) AV:N/AC:L/Au:N/C:P/I:P/A:P score Some("7.5") level Some(High)
    "#]]
    .assert_eq(&describe(&a, 0).lines().filter(|l| !l.starts_with("database")).map(|l| format!("{l}\n")).collect::<String>());
}

/// The traps of the model, each on a real record.
#[test]
fn git_ranges_are_kept_unmatched_and_alpine_names_origins() {
    let path = shared_data().join("osv/misc/osv-schema-linter-testdata/CVE-2018-5407.json");
    let a = osv::parse(
        &std::fs::read(&path).unwrap_or_default(),
        "CVE-2018-5407.json",
    )
    .unwrap_or_else(|r| panic!("{r}"));
    let git: Vec<_> = a
        .affected
        .iter()
        .flat_map(|x| &x.ranges)
        .filter(|r| !r.is_matchable())
        .collect();
    assert_eq!(git.len(), 1);
    assert!(git.iter().all(|r| r.repo.is_some()));
    let alpine = a
        .affected
        .iter()
        .filter_map(|x| x.package.as_ref())
        .find(|p| p.ecosystem.starts_with("Alpine:"))
        .unwrap_or_else(|| panic!("an Alpine entry"));
    assert_eq!(alpine.naming(), PackageNaming::Origin);
}

#[test]
fn last_affected_and_enumerated_versions_survive() {
    let dir = shared_data().join("osv/misc/trustify-osv");
    let a = osv::parse(
        &std::fs::read(dir.join("GHSA-458h-wv48-fq75.json")).unwrap_or_default(),
        "GHSA-458h-wv48-fq75.json",
    )
    .unwrap_or_else(|r| panic!("{r}"));
    let last: Vec<&str> = a
        .affected
        .iter()
        .flat_map(|x| &x.ranges)
        .flat_map(|r| &r.events)
        .filter_map(|e| match e {
            Event::LastAffected(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(last.len(), 2);
    assert!(a.affected.iter().any(|x| !x.versions.is_empty()));
    // Enumerated versions are compared by equality, so even one PEP 440 does not accept
    // (`4.36.-1`, in the real GHSA record) does not cost the record.
    let ghsa = osv::parse(
        &std::fs::read(
            shared_data().join("osv/misc/osv-schema-linter-testdata/GHSA-9v2f-6vcg-3hgv.json"),
        )
        .unwrap_or_default(),
        "GHSA-9v2f-6vcg-3hgv.json",
    )
    .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(
        ghsa.affected.first().map(|x| x.versions.clone()),
        Some(vec!["4.36.1".to_owned(), "4.36.-1".to_owned()])
    );
}

#[test]
fn withdrawn_records_parse_and_drop_out_of_matching() {
    let path = shared_data().join("osv/misc/trustify-osv/GHSA-2ccf-ffrj-m4qw.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_default();
    if let Some(o) = doc.as_object_mut() {
        o.insert("withdrawn".into(), "2024-05-01T00:00:00Z".into());
    }
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let a = osv::parse(&bytes, "withdrawn.json").unwrap_or_else(|r| panic!("{r}"));
    assert!(!a.is_active());
    assert!(group_vulnerabilities(std::slice::from_ref(&a)).is_empty());
}

/// osv.dev's alias and upstream test records, cycles included, merge into vulnerabilities
/// without looping.
#[test]
fn aliases_and_cycles_group_into_vulnerabilities() {
    let import = load_path(
        &shared_data().join("osv/misc/osv.dev-testdata"),
        AdvisoryFeed::Osv,
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let groups = group_vulnerabilities(&import.records);
    let text: String = groups
        .iter()
        .map(|v| {
            let sources: Vec<&str> = v
                .sources
                .iter()
                .filter_map(|&i| import.records.get(i).map(|a| a.id.as_str()))
                .collect();
            format!("{} {:?} <- {:?}\n", v.id, v.names, sources)
        })
        .collect();
    expect![[r#"
        ALIAS ["ALIAS", "ALIAS-CVE-1", "CVE-1", "CVE-2"] <- ["ALIAS-CVE-1", "ALIAS", "CVE-1", "CVE-2", "CVE-3"]
        CVE-2021-44228 ["CVE-2021-44228"] <- ["CVE-2021-44228"]
        CVE-2022-39189 ["CVE-2022-39189"] <- ["DLA-3623-1"]
        CVE-2022-40982 ["CVE-2022-40982", "UBUNTU-CVE-2022-40982"] <- ["USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2022-4269 ["CVE-2022-4269", "UBUNTU-CVE-2022-4269"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2022-48502 ["CVE-2022-48502", "UBUNTU-CVE-2022-48502"] <- ["USN-6332-1"]
        CVE-2023-0597 ["CVE-2023-0597", "UBUNTU-CVE-2023-0597"] <- ["USN-6332-1"]
        CVE-2023-1206 ["CVE-2023-1206"] <- ["DLA-3623-1"]
        CVE-2023-1380 ["CVE-2023-1380"] <- ["DLA-3623-1"]
        CVE-2023-1611 ["CVE-2023-1611", "UBUNTU-CVE-2023-1611"] <- ["USN-6332-1"]
        CVE-2023-1855 ["CVE-2023-1855", "UBUNTU-CVE-2023-1855"] <- ["USN-6332-1"]
        CVE-2023-1990 ["CVE-2023-1990", "UBUNTU-CVE-2023-1990"] <- ["USN-6332-1"]
        CVE-2023-2002 ["CVE-2023-2002", "UBUNTU-CVE-2023-2002"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2023-2007 ["CVE-2023-2007"] <- ["DLA-3623-1"]
        CVE-2023-20588 ["CVE-2023-20588"] <- ["DLA-3623-1"]
        CVE-2023-20593 ["CVE-2023-20593", "UBUNTU-CVE-2023-20593"] <- ["USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-2124 ["CVE-2023-2124", "UBUNTU-CVE-2023-2124"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2023-21255 ["CVE-2023-21255"] <- ["DLA-3623-1"]
        CVE-2023-21400 ["CVE-2023-21400", "UBUNTU-CVE-2023-21400"] <- ["CVE-2023-21400", "DLA-3623-1", "UBUNTU-CVE-2023-21400", "USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1", "USN-7234-1", "USN-7234-2", "USN-7234-3"]
        CVE-2023-2163 ["CVE-2023-2163", "UBUNTU-CVE-2023-2163"] <- ["USN-6332-1"]
        CVE-2023-2194 ["CVE-2023-2194", "UBUNTU-CVE-2023-2194"] <- ["USN-6332-1"]
        CVE-2023-2235 ["CVE-2023-2235", "UBUNTU-CVE-2023-2235"] <- ["USN-6332-1"]
        CVE-2023-2269 ["CVE-2023-2269", "UBUNTU-CVE-2023-2269"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2023-23004 ["CVE-2023-23004", "UBUNTU-CVE-2023-23004"] <- ["USN-6332-1"]
        CVE-2023-28466 ["CVE-2023-28466", "UBUNTU-CVE-2023-28466"] <- ["USN-6332-1"]
        CVE-2023-2898 ["CVE-2023-2898"] <- ["DLA-3623-1"]
        CVE-2023-30772 ["CVE-2023-30772", "UBUNTU-CVE-2023-30772"] <- ["USN-6332-1"]
        CVE-2023-3090 ["CVE-2023-3090"] <- ["DLA-3623-1"]
        CVE-2023-31084 ["CVE-2023-31084"] <- ["DLA-3623-1"]
        CVE-2023-3111 ["CVE-2023-3111"] <- ["DLA-3623-1"]
        CVE-2023-3141 ["CVE-2023-3141", "UBUNTU-CVE-2023-3141"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2023-3212 ["CVE-2023-3212"] <- ["DLA-3623-1"]
        CVE-2023-32248 ["CVE-2023-32248", "UBUNTU-CVE-2023-32248"] <- ["USN-6332-1"]
        CVE-2023-3268 ["CVE-2023-3268", "UBUNTU-CVE-2023-3268"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2023-33203 ["CVE-2023-33203", "UBUNTU-CVE-2023-33203"] <- ["USN-6332-1"]
        CVE-2023-33288 ["CVE-2023-33288", "UBUNTU-CVE-2023-33288"] <- ["USN-6332-1"]
        CVE-2023-3338 ["CVE-2023-3338"] <- ["DLA-3623-1"]
        CVE-2023-3389 ["CVE-2023-3389"] <- ["DLA-3623-1"]
        CVE-2023-34256 ["CVE-2023-34256"] <- ["DLA-3623-1"]
        CVE-2023-34319 ["CVE-2023-34319"] <- ["DLA-3623-1"]
        CVE-2023-35788 ["CVE-2023-35788"] <- ["DLA-3623-1"]
        CVE-2023-35823 ["CVE-2023-35823", "UBUNTU-CVE-2023-35823"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2023-35824 ["CVE-2023-35824", "UBUNTU-CVE-2023-35824"] <- ["DLA-3623-1", "USN-6332-1"]
        CVE-2023-35828 ["CVE-2023-35828", "UBUNTU-CVE-2023-35828"] <- ["USN-6332-1"]
        CVE-2023-35829 ["CVE-2023-35829", "UBUNTU-CVE-2023-35829"] <- ["USN-6332-1"]
        CVE-2023-3609 ["CVE-2023-3609", "UBUNTU-CVE-2023-3609"] <- ["DLA-3623-1", "USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-3610 ["CVE-2023-3610", "UBUNTU-CVE-2023-3610"] <- ["USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-3611 ["CVE-2023-3611", "UBUNTU-CVE-2023-3611"] <- ["DLA-3623-1", "USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-3772 ["CVE-2023-3772"] <- ["DLA-3623-1"]
        CVE-2023-3773 ["CVE-2023-3773"] <- ["DLA-3623-1"]
        CVE-2023-3776 ["CVE-2023-3776", "UBUNTU-CVE-2023-3776"] <- ["DLA-3623-1", "USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-3777 ["CVE-2023-3777", "UBUNTU-CVE-2023-3777"] <- ["USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-3863 ["CVE-2023-3863"] <- ["DLA-3623-1"]
        CVE-2023-4004 ["CVE-2023-4004", "UBUNTU-CVE-2023-4004"] <- ["DLA-3623-1", "UBUNTU-CVE-2023-4004", "USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-4015 ["CVE-2023-4015", "UBUNTU-CVE-2023-4015"] <- ["UBUNTU-CVE-2023-4015", "USN-6315-1", "USN-6325-1", "USN-6330-1", "USN-6332-1", "USN-6348-1"]
        CVE-2023-40283 ["CVE-2023-40283"] <- ["DLA-3623-1"]
        CVE-2023-4132 ["CVE-2023-4132"] <- ["DLA-3623-1"]
        CVE-2023-4147 ["CVE-2023-4147"] <- ["DLA-3623-1"]
        CVE-2023-4194 ["CVE-2023-4194"] <- ["DLA-3623-1"]
        CVE-2023-4244 ["CVE-2023-4244"] <- ["DLA-3623-1"]
        CVE-2023-4273 ["CVE-2023-4273"] <- ["DLA-3623-1"]
        CVE-2023-42753 ["CVE-2023-42753"] <- ["DLA-3623-1"]
        CVE-2023-42755 ["CVE-2023-42755"] <- ["DLA-3623-1"]
        CVE-2023-42756 ["CVE-2023-42756"] <- ["DLA-3623-1"]
        CVE-2023-4622 ["CVE-2023-4622"] <- ["DLA-3623-1"]
        CVE-2023-4623 ["CVE-2023-4623"] <- ["DLA-3623-1"]
        CVE-2023-4921 ["CVE-2023-4921"] <- ["DLA-3623-1"]
        CVE-2024-40967 ["CVE-2024-40967", "UBUNTU-CVE-2024-40967"] <- ["USN-7234-1", "USN-7234-2", "USN-7234-3"]
        CVE-2024-53103 ["CVE-2024-53103", "UBUNTU-CVE-2024-53103"] <- ["USN-7234-1", "USN-7234-2", "USN-7234-3"]
        CVE-2024-53141 ["CVE-2024-53141", "UBUNTU-CVE-2024-53141"] <- ["USN-7234-1", "USN-7234-2", "USN-7234-3"]
        CVE-2024-53164 ["CVE-2024-53164", "UBUNTU-CVE-2024-53164"] <- ["USN-7234-1", "USN-7234-2", "USN-7234-3"]
        CVE-3 ["CVE-3", "CVE-4"] <- ["CVE-4"]
        CVE-5 ["CVE-5"] <- ["CVE-5"]
        CYCLE-ROOT-1 ["CYCLE-ROOT-1"] <- ["CYCLE-ROOT-2", "CYCLE-ROOT-3"]
        CYCLE-ROOT-2 ["CYCLE-ROOT-2"] <- ["CYCLE-ROOT-1", "CYCLE-ROOT-3"]
        MULTI-ECO-FIX-DEMO ["MULTI-ECO-FIX-DEMO"] <- ["MULTI-ECO-FIX-DEMO"]
        SUSE-SU-2023:3313-1 ["SUSE-SU-2023:3313-1"] <- ["SUSE-SU-2023:3313-1"]
    "#]].assert_eq(&text);
}

/// An archive's limits hold whatever its members claim, and one bad member costs only itself.
#[test]
fn zip_limits_and_bad_members() {
    let mut buf = Vec::new();
    {
        let mut zip = zip::ZipWriter::new(Cursor::new(&mut buf));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let good = br#"{"id":"GOOD-1","modified":"2024-01-01T00:00:00Z"}"#;
        let members: [(&str, Vec<u8>); 5] = [
            ("a/GOOD-1.json", good.to_vec()),
            ("a/BAD.json", b"{\"id\": \"BAD-1\", ".to_vec()),
            ("a/README.txt", b"not a record".to_vec()),
            ("a/BIG.json", vec![b' '; 4096]),
            ("a/GOOD-2.json", good.to_vec()),
        ];
        for (name, data) in members {
            zip.start_file(name, opts).unwrap_or_else(|e| panic!("{e}"));
            zip.write_all(&data).unwrap_or_else(|e| panic!("{e}"));
        }
        zip.finish().unwrap_or_else(|e| panic!("{e}"));
    }
    let limits = Limits {
        max_document_bytes: 1024,
        ..Limits::default()
    };
    let import =
        osv::parse_zip(Cursor::new(&buf), "t.zip", &limits).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(import.records.len(), 2);
    expect![[r#"
        t.zip!a/BAD.json: is not valid JSON for this feed: EOF while parsing a value at line 1 column 16
        t.zip!a/BIG.json: larger than the limit of 1024 bytes
    "#]].assert_eq(&reject_lines(&import));

    // The archive's total: the third member's bytes would pass it.
    let limits = Limits {
        max_archive_bytes: 120,
        ..Limits::default()
    };
    let import =
        osv::parse_zip(Cursor::new(&buf), "t.zip", &limits).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        import
            .rejects
            .iter()
            .any(|r| matches!(r.reason, RejectReason::ArchiveLimit(_))),
        "{}",
        reject_lines(&import)
    );
    let _ = rel("");
}

/// `limit` events (GIT ranges) and the Ubuntu priority, on real records with the field added:
/// no published record in the data carries them.
#[test]
fn limit_events_and_ubuntu_priority() {
    let d = shared_data().join("osv/misc");
    let mut doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join("osv-schema-linter-testdata/CVE-2023-41045.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    if let Some(events) = doc["affected"][0]["ranges"][0]["events"].as_array_mut() {
        events.push(serde_json::json!({"limit": "*"}));
    }
    let a = osv::parse(&serde_json::to_vec(&doc).unwrap_or_default(), "limit.json")
        .unwrap_or_else(|r| panic!("{r}"));
    assert!(
        a.affected
            .iter()
            .flat_map(|x| &x.ranges)
            .flat_map(|r| &r.events)
            .any(|e| *e == Event::Limit("*".into()))
    );

    let mut doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join("osv.dev-testdata/UBUNTU-CVE-2023-4004.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    doc["severity"] = serde_json::json!([
        {"type": "Ubuntu", "score": "medium"},
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}
    ]);
    let a = osv::parse(&serde_json::to_vec(&doc).unwrap_or_default(), "ubuntu.json")
        .unwrap_or_else(|r| panic!("{r}"));
    expect![[r#"
        id UBUNTU-CVE-2023-4004 (Osv ubuntu.json)
        upstream ["CVE-2023-4004"]
        published Some("2023-08-14T00:00:00Z") modified Some("2025-10-13T15:48:05.891034Z") withdrawn None
        severity Ubuntu medium score None level Some(Medium)
        severity Cvss(V3_1) CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H score Some("7.8") level Some(High)
        vendor severity Ubuntu Medium "medium"
    "#]].assert_eq(&describe(&a, 0));
    assert_eq!(a.fixes(), ["CVE-2023-4004"]);
}

/// CISA Vulnrichment's CVE 5 records, read from their zip as OSV's loader meets them: every
/// record is a CVE 5 advisory with its vectors scored and no ranges.
#[test]
fn vulnrichment_cve5_records() {
    let path = shared_data().join("vulnrichment/vulnrichment-sample.zip");
    let file = BufReader::new(File::open(&path).unwrap_or_else(|e| panic!("{e}")));
    let import = osv::parse_zip(file, "vulnrichment-sample.zip", &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    expect![[r#""#]].assert_eq(&reject_lines(&import));
    assert_eq!(import.records.len() + import.rejects.len(), 2076);
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for a in &import.records {
        assert_eq!(a.source.feed, FeedKind::Cve5);
        assert!(a.affected.is_empty());
        for s in &a.severity {
            let key = match (&s.base_score, &s.error) {
                (Some(_), None) => format!("{:?} scored", s.kind),
                _ => format!(
                    "{:?} not scored: {}",
                    s.kind,
                    s.error.clone().unwrap_or_default()
                ),
            };
            *by_kind.entry(key).or_default() += 1;
        }
        if !a.is_active() {
            *by_kind.entry("withdrawn (REJECTED)".into()).or_default() += 1;
        }
    }
    expect![[r#"
        {
            "Cvss(V2) scored": 4,
            "Cvss(V3_0) scored": 101,
            "Cvss(V3_1) scored": 1108,
            "Cvss(V4) scored": 16,
            "withdrawn (REJECTED)": 3,
        }
    "#]]
    .assert_debug_eq(&by_kind);
}

#[test]
fn ghsa_severity_is_github_s() {
    let path = shared_data().join("osv/misc/trustify-osv/GHSA-2ccf-ffrj-m4qw.json");
    let a = osv::parse(&std::fs::read(&path).unwrap_or_default(), "ghsa.json")
        .unwrap_or_else(|r| panic!("{r}"));
    let v = a
        .vendor_severity
        .unwrap_or_else(|| panic!("GitHub rates its advisories"));
    expect!["GitHub Medium MODERATE"].assert_eq(&format!("{} {:?} {}", v.vendor, v.level, v.text));
}
