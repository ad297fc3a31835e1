//! CSAF on the real files: Red Hat advisories and VEX (xz-compressed ones too), agreement with
//! OSV's own Red Hat converter, and the OASIS validator's test documents.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{describe, reject_lines, shared_data};
use expect_test::expect;
use patchwarden_core::advisory::{Advisory, Justification, RemediationCategory};
use patchwarden_feeds::load::{AdvisoryFeed, load_path, read_file};
use patchwarden_feeds::{Limits, csaf, osv};

fn parse(path: &Path) -> Advisory {
    let bytes = read_file(path, Limits::default().max_document_bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    csaf::parse(&bytes, &path.display().to_string()).unwrap_or_else(|r| panic!("{r}"))
}

fn redhat(name: &str) -> Advisory {
    parse(&shared_data().join("csaf/redhat").join(name))
}

#[test]
fn red_hat_corpus_counts() {
    let import = load_path(
        &shared_data().join("csaf/redhat"),
        AdvisoryFeed::Csaf,
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The two files under `_with_osv_conversion/` are OSV records, not CSAF: they are refused
    // for the missing `document`, which is the point of reading them with the wrong parser.
    expect![[r#"
        csaf/redhat/_with_osv_conversion/RHSA-2024_4546.json: is not valid JSON for this feed: missing field `document` at line 243 column 1
        csaf/redhat/_with_osv_conversion/RHSA-2024_6220.json: is not valid JSON for this feed: missing field `document` at line 4617 column 1
        csaf/redhat/rhba-2023_0564.json (): CSAF schema: document.title is empty
        csaf/redhat/rhsa-2021_3029.json (RHSA-2021:3029): CSAF 6.1.1: vulnerabilities[5].product_status.fixed names product id "notexits-7ComputeNode-7.7.EUS:microcode_ctl-2:2.1-53.18.el7_7.src", which the product tree does not define
        csaf/redhat/rhsa-2023_1441.json (RHSA-2023:1441): CSAF 6.1.27.7: vulnerabilities[0] needs fixed, known_affected, known_not_affected or under_investigation products
        csaf/redhat/rhsa-2023_3408.json (RHSA-2023:3408): CSAF 6.1.27.11: a csaf_vex needs vulnerabilities
        csaf/redhat/rhsa-2023_4378.json (RHSA-2023:4378): CSAF 6.1.1: relationship "notmatch-NFV-9.2.0.Z.MAIN.EUS:kernel-rt-0:5.14.0-284.25.1.rt14.310.el9_2.src" names product id "notmatch-NFV-9.2.0.Z.MAIN.EUS", which the product tree does not define
        csaf/redhat/rhsa-2024-2705.json (RHSA-2024:2705): CSAF 6.1.1: vulnerabilities[0].remediations[1] names product id "Red Hat build of Quarkus", which the product tree does not define
    "#]].assert_eq(&reject_lines(&import));
    let mut summary = BTreeMap::new();
    for a in &import.records {
        summary.insert(
            a.id.clone(),
            format!(
                "{} affected, {} not affected, {} CVEs, {:?}",
                a.affected.len(),
                a.not_affected.len(),
                a.fixes().len(),
                a.vendor_severity.as_ref().map(|v| v.text.clone())
            ),
        );
    }
    expect![[r#"
        {
            "CVE-2023-0044": "0 affected, 0 not affected, 1 CVEs, Some(\"low\")",
            "CVE-2023-20862": "0 affected, 0 not affected, 1 CVEs, Some(\"moderate\")",
            "CVE-2023-33201": "18 affected, 287 not affected, 1 CVEs, Some(\"moderate\")",
            "CVE-2024-2961": "6663 affected, 2 not affected, 1 CVEs, Some(\"important\")",
            "CVE-2024-34500": "1 affected, 0 not affected, 1 CVEs, Some(\"Moderate\")",
            "CVE-2024-34502": "1 affected, 0 not affected, 1 CVEs, Some(\"Moderate\")",
            "CVE-2024-34506": "1 affected, 0 not affected, 1 CVEs, Some(\"Moderate\")",
            "CVE-2024-34507": "1 affected, 0 not affected, 1 CVEs, Some(\"Moderate\")",
            "CVE-2024-5154": "16 affected, 255 not affected, 1 CVEs, Some(\"important\")",
            "RHBA-2024:1440": "0 affected, 0 not affected, 2 CVEs, Some(\"Important\")",
            "RHSA-2003:315": "4 affected, 0 not affected, 1 CVEs, Some(\"Low\")",
            "RHSA-2015:0008": "84 affected, 0 not affected, 1 CVEs, Some(\"Low\")",
            "RHSA-2023:5835": "3 affected, 0 not affected, 2 CVEs, Some(\"Important\")",
            "RHSA-2023:7201": "80 affected, 233 not affected, 4 CVEs, Some(\"Important\")",
            "RHSA-2023:7831": "0 affected, 0 not affected, 3 CVEs, Some(\"Important\")",
            "RHSA-2024:0041": "0 affected, 0 not affected, 17 CVEs, Some(\"Critical\")",
            "RHSA-2024:10771": "400 affected, 5 not affected, 34 CVEs, Some(\"Moderate\")",
            "RHSA-2024:2049": "34 affected, 188 not affected, 3 CVEs, Some(\"Important\")",
            "RHSA-2024:2054": "8 affected, 113 not affected, 1 CVEs, Some(\"Moderate\")",
            "RHSA-2024:2071": "8 affected, 132 not affected, 1 CVEs, Some(\"Moderate\")",
            "RHSA-2024:2394": "400 affected, 0 not affected, 74 CVEs, Some(\"Important\")",
            "RHSA-2024:2776": "4 affected, 109 not affected, 1 CVEs, Some(\"Moderate\")",
            "RHSA-2024:2784": "24 affected, 82 not affected, 3 CVEs, Some(\"Important\")",
            "RHSA-2024:3351": "16 affected, 58 not affected, 1 CVEs, Some(\"Moderate\")",
            "RHSA-2024:3666": "8 affected, 0 not affected, 2 CVEs, Some(\"Important\")",
            "RHSA-2024:4420": "938 affected, 0 not affected, 1 CVEs, Some(\"Important\")",
            "RHSA-2024:4546": "9 affected, 0 not affected, 1 CVEs, Some(\"Important\")",
            "RHSA-2024:5101": "72 affected, 0 not affected, 166 CVEs, Some(\"Important\")",
            "RHSA-2024:5363": "400 affected, 5 not affected, 47 CVEs, Some(\"Important\")",
            "RHSA-2024:6220": "228 affected, 0 not affected, 1 CVEs, Some(\"Important\")",
            "RHSA-2025:2270": "395 affected, 5 not affected, 21 CVEs, Some(\"Moderate\")",
            "RHSA-2025:3215": "395 affected, 5 not affected, 11 CVEs, Some(\"Important\")",
            "RHSA-2025:3301": "0 affected, 0 not affected, 9 CVEs, Some(\"Important\")",
        }
    "#]]
    .assert_debug_eq(&summary);
}

/// OSV's Red Hat converter turned these two documents into OSV; we must read the same
/// packages, ecosystems and fixed versions out of the CSAF.
#[test]
fn agrees_with_the_osv_conversion() {
    for (csaf_name, osv_name) in [
        ("rhsa-2024_4546.json", "RHSA-2024_4546.json"),
        ("rhsa-2024_6220.json", "RHSA-2024_6220.json"),
    ] {
        let ours = redhat(csaf_name);
        let theirs_path = shared_data()
            .join("csaf/redhat/_with_osv_conversion")
            .join(osv_name);
        let theirs = osv::parse(
            &std::fs::read(&theirs_path).unwrap_or_default(),
            &theirs_path.display().to_string(),
        )
        .unwrap_or_else(|r| panic!("{r}"));
        let triples = |a: &Advisory| -> BTreeSet<(String, String, String)> {
            a.affected
                .iter()
                .filter_map(|x| {
                    let p = x.package.as_ref()?;
                    Some(
                        x.fixed_versions()
                            .map(|v| (p.ecosystem.clone(), p.name.clone(), v.to_owned()))
                            .collect::<Vec<_>>(),
                    )
                })
                .flatten()
                .collect()
        };
        let (a, b) = (triples(&ours), triples(&theirs));
        assert_eq!(
            a.difference(&b).collect::<Vec<_>>(),
            Vec::<&(String, String, String)>::new(),
            "{csaf_name}: ours, not theirs"
        );
        assert_eq!(
            b.difference(&a).collect::<Vec<_>>(),
            Vec::<&(String, String, String)>::new(),
            "{csaf_name}: theirs, not ours"
        );
        assert_eq!(ours.id, theirs.id);
        assert_eq!(ours.upstream, theirs.upstream);
        let vectors = |a: &Advisory| -> BTreeSet<String> {
            a.severity.iter().map(|s| s.vector.clone()).collect()
        };
        assert_eq!(vectors(&ours), vectors(&theirs));
    }
}

#[test]
fn advisory_snapshot() {
    let a = redhat("rhsa-2024_4546.json");
    expect![[r#"
        id RHSA-2024:4546 (Csaf csaf/redhat/rhsa-2024_4546.json)
        upstream ["CVE-2023-45288"]
        published Some("2024-07-15T16:12:25Z") modified Some("2024-07-16T13:38:03Z") withdrawn None
        summary "Red Hat Security Advisory: git-lfs security update"
        severity Cvss(V3_1) CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H score Some("7.5") level Some(High)
        vendor severity Red Hat Product Security High "Important"
          affected Red Hat:rhel_aus:8.6::appstream / git-lfs (Binary): Ecosystem[introduced 0, fixed 0:2.13.3-3.el8_6.1] remediation VendorFix Some("For details on how to apply this update, which includes the changes described in this advisory, refer to:\n\nhttps://access.redhat.com/articles/11258") remediation Workaround Some("In some environments where http/2 support is not required, it may be possible to disable this feature to reduce risk.") db {"cves":["CVE-2023-45288"]}
          affected Red Hat:rhel_aus:8.6::appstream / git-lfs-debuginfo (Binary): Ecosystem[introduced 0, fixed 0:2.13.3-3.el8_6.1] remediation VendorFix Some("For details on how to apply this update, which includes the changes described in this advisory, refer to:\n\nhttps://access.redhat.com/articles/11258") remediation Workaround Some("In some environments where http/2 support is not required, it may be possible to disable this feature to reduce risk.") db {"cves":["CVE-2023-45288"]}
          affected Red Hat:rhel_aus:8.6::appstream / git-lfs-debugsource (Binary): Ecosystem[introduced 0, fixed 0:2.13.3-3.el8_6.1] remediation VendorFix Some("For details on how to apply this update, which includes the changes described in this advisory, refer to:\n\nhttps://access.redhat.com/articles/11258") remediation Workaround Some("In some environments where http/2 support is not required, it may be possible to disable this feature to reduce risk.") db {"cves":["CVE-2023-45288"]}
          affected Red Hat:rhel_e4s:8.6::appstream / git-lfs (Binary): Ecosystem[introduced 0, fixed 0:2.13.3-3.el8_6.1] remediation VendorFix Some("For details on how to apply this update, which includes the changes described in this advisory, refer to:\n\nhttps://access.redhat.com/articles/11258") remediation Workaround Some("In some environments where http/2 support is not required, it may be possible to disable this feature to reduce risk.") db {"cves":["CVE-2023-45288"]}
          … 9 affected entries in all
    "#]].assert_eq(&describe(&a, 4));
}

/// VEX: not-affected statements with their justification, from an xz-compressed document.
#[test]
fn vex_not_affected_from_xz() {
    let a = redhat("large-xz/cve-2024-2961.json.xz");
    let text: String = a
        .not_affected
        .iter()
        .map(|n| {
            format!(
                "{} / {} {:?} {:?}\n",
                n.package.ecosystem, n.package.name, n.justification, n.statement
            )
        })
        .collect();
    expect![[r#"
        Red Hat:enterprise_linux:6 / compat-glibc Some(VulnerableCodeNotPresent) None
        Red Hat:enterprise_linux:7 / compat-glibc Some(VulnerableCodeNotPresent) None
    "#]]
    .assert_eq(&text);
    assert!(
        a.not_affected
            .iter()
            .all(|n| n.justification == Some(Justification::VulnerableCodeNotPresent))
    );
    expect![[r#"
        6663 affected entries, published Some("2024-04-17T00:00:00Z")
    "#]]
    .assert_eq(&format!(
        "{} affected entries, published {:?}\n",
        a.affected.len(),
        a.published.map(|t| t.to_string())
    ));
}

/// VEX: a known-affected package with no fix planned.
#[test]
fn vex_known_affected_with_no_fix_planned() {
    let a = redhat("CVE-2024-34500.json");
    expect![[r#"
        id CVE-2024-34500 (Csaf csaf/redhat/CVE-2024-34500.json)
        published Some("2024-05-05T00:00:00Z") modified Some("2024-11-18T12:18:55Z") withdrawn None
        summary "mediawiki: XSS through interface message in UnlinkedWikibase"
        severity Cvss(V3_1) CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N score Some("5.3") level Some(Medium)
        vendor severity Red Hat Product Security Medium "Moderate"
          affected Red Hat:openshift:3.11 / mediawiki (Binary): Ecosystem[introduced 0] remediation NoFixPlanned Some("Out of support scope") eco {"status":"known_affected"} db {"cves":["CVE-2024-34500"]}
    "#]].assert_eq(&describe(&a, 4));
    assert!(
        a.affected
            .iter()
            .flat_map(|x| &x.remediations)
            .any(|r| r.category == RemediationCategory::NoFixPlanned)
    );
    assert_eq!(a.fixed_versions_count(), 0);
}

trait FixedCount {
    fn fixed_versions_count(&self) -> usize;
}

impl FixedCount for Advisory {
    fn fixed_versions_count(&self) -> usize {
        self.affected
            .iter()
            .map(|x| x.fixed_versions().count())
            .sum()
    }
}

/// Every large xz-compressed document decompresses and parses.
#[test]
fn large_xz_documents() {
    let import = load_path(
        &shared_data().join("csaf/redhat/large-xz"),
        AdvisoryFeed::Csaf,
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reject_lines(&import), "");
    assert_eq!(import.records.len(), 9);
    // A limit below the decompressed size refuses the document instead of reading it all.
    let small = Limits {
        max_document_bytes: 1 << 20,
        ..Limits::default()
    };
    let import = load_path(
        &shared_data().join("csaf/redhat/large-xz/cve-2024-2961.json.xz"),
        AdvisoryFeed::Csaf,
        &small,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    expect![[r#"
        csaf/redhat/large-xz/cve-2024-2961.json.xz: larger than the limit of 1048576 bytes
    "#]]
    .assert_eq(&reject_lines(&import));
}

#[test]
fn oasis_examples_parse() {
    let import = load_path(
        &shared_data().join("csaf/oasis-examples/csaf_2.0/examples/csaf"),
        AdvisoryFeed::Csaf,
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    expect![""].assert_eq(&reject_lines(&import));
    expect![[r#"
        19 accepted
    "#]]
    .assert_eq(&format!("{} accepted\n", import.records.len()));
}

/// The OASIS validator's test documents: the mandatory tests' failing examples must be
/// rejected with a reason, every other document (valid examples, and the failing examples of
/// optional, recommended and informative tests, which are still valid CSAF) accepted.
#[test]
fn validator_corpus() {
    let mut report = String::new();
    for version in ["csaf_2.0", "csaf_2.1"] {
        let dir = shared_data()
            .join("csaf/invalid")
            .join(version)
            .join("test/validator/data");
        let cases: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("testcases.json")).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut wrongly_rejected = Vec::new();
        let mut rejected = Vec::new();
        let mut still_accepted: BTreeMap<String, usize> = BTreeMap::new();
        let mut total = 0;
        for test in cases["tests"].as_array().into_iter().flatten() {
            let id = test["id"].as_str().unwrap_or("?");
            let mandatory = test["group"] == "mandatory";
            for (list, should_fail) in [("failures", mandatory), ("valid", false)] {
                for case in test[list].as_array().into_iter().flatten() {
                    let name = case["name"].as_str().unwrap_or("?");
                    let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
                    total += 1;
                    match (csaf::parse(&bytes, name), should_fail) {
                        (Ok(_), false) => {}
                        (Err(r), false) => wrongly_rejected.push(format!("{id} {r}")),
                        (Err(r), true) => rejected.push(format!("{id} {r}")),
                        (Ok(_), true) => *still_accepted.entry(id.to_owned()).or_default() += 1,
                    }
                }
            }
        }
        // CSAF 2.1's examples are valid only with respect to their own test (some "valid"
        // examples state CVSS scores that do not match their vectors), and 2.1 is not our
        // target: its figures are reported, and only 2.0's are held to zero wrong rejections.
        report.push_str(&format!(
            "{version}: {total} documents; {} mandatory failures rejected, {} accepted \
             (by test: {still_accepted:?}); {} other documents rejected\n",
            rejected.len(),
            still_accepted.values().sum::<usize>(),
            wrongly_rejected.len()
        ));
        if version == "csaf_2.0" {
            assert_eq!(wrongly_rejected, Vec::<String>::new());
            for line in &rejected {
                report.push_str(&format!("  {line}\n"));
            }
        }
    }
    expect![[r#"
        csaf_2.0: 239 documents; 37 mandatory failures rejected, 50 accepted (by test: {"6.1.10": 1, "6.1.11": 1, "6.1.12": 1, "6.1.14": 8, "6.1.15": 2, "6.1.16": 8, "6.1.17": 1, "6.1.18": 1, "6.1.19": 2, "6.1.20": 1, "6.1.21": 2, "6.1.22": 1, "6.1.24": 2, "6.1.25": 1, "6.1.26": 4, "6.1.28": 1, "6.1.30": 1, "6.1.31": 9, "6.1.8": 3}); 0 other documents rejected
          6.1.1 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-01-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-01-01): CSAF 6.1.1: product group "CSAFGID-1020300" names product id "CSAFPID-9080700", which the product tree does not define
          6.1.1 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-01-02.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-01-02): CSAF 6.1.1: vulnerabilities[0].flags[0] names product id "CSAFPID-9080701", which the product tree does not define
          6.1.2 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-02-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-02-01): CSAF 6.1.2: product id "CSAFPID-9080700" is defined more than once, differently
          6.1.3 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-03-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-03-01): CSAF 6.1.3: relationship "CSAFPID-9080701" refers back to itself
          6.1.4 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-04-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-04-01): CSAF 6.1.4: vulnerabilities[0].threats[0] names group id "CSAFGID-1020301", which the product tree does not define
          6.1.4 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-04-02.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-04-02): CSAF 6.1.4: vulnerabilities[0].flags[0] names group id "CSAFGID-1020300", which the product tree does not define
          6.1.5 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-05-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-05-01): CSAF 6.1.5: group id "CSAFGID-1020300" is defined more than once
          6.1.6 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-06-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-06-01): CSAF 6.1.6: vulnerabilities[0]: product "CSAFPID-9080700" is both affected and not affected
          6.1.6 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-06-02.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-06-02): CSAF 6.1.6: vulnerabilities[0]: product "CSAFPID-9080700" is both affected and not affected
          6.1.6 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-06-03.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-06-03): CSAF 6.1.6: vulnerabilities[0]: product "CSAFPID-9080700" is both not affected and affected
          6.1.6 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-06-04.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-06-04): CSAF 6.1.6: vulnerabilities[0]: product "CSAFPID-9080701" is both fixed and not affected
          6.1.6 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-06-05.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-06-05): CSAF 6.1.6: vulnerabilities[0]: product "CSAFPID-9080702" is both fixed and affected
          6.1.7 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-07-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-07-01): CSAF 6.1.7: vulnerabilities[0]: product "CSAFPID-9080700" has more than one CVSS v3 score
          6.1.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-09-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-09-01): CSAF 6.1.9: vulnerabilities[0]: baseScore 10 does not match CVSS:3.1/AV:L/AC:L/PR:H/UI:R/S:U/C:H/I:H/A:H, which scores 6.5
          6.1.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-09-02.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-09-02): CSAF 6.1.9: vulnerabilities[0]: baseScore 10 does not match CVSS:3.0/AV:L/AC:L/PR:H/UI:R/S:U/C:H/I:H/A:H, which scores 6.5
          6.1.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-09-03.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-09-03): CSAF 6.1.9: vulnerabilities[0]: baseScore 6.5 does not match AV:N/AC:L/Au:N/C:C/I:C/A:C, which scores 10.0
          6.1.13 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-13-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-13-01): CSAF 6.1.13: product "CSAFPID-9080700" has the purl "pkg:maven/@1.3.4", which is not a purl
          6.1.23 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-23-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-23-01): CSAF 6.1.23: CVE-2017-0145 appears in more than one vulnerability
          6.1.27.1 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-01-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-01-01): CSAF 6.1.27.1: a csaf_security_incident_response needs a note of category description, details, general or summary
          6.1.27.2 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-02-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-02-01): CSAF 6.1.27.1: a csaf_informational_advisory needs a note of category description, details, general or summary
          6.1.27.3 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-03-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-03-01): CSAF 6.1.27.1: a csaf_informational_advisory needs a note of category description, details, general or summary
          6.1.27.4 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-04-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-04-01): CSAF 6.1.27.4: a csaf_security_advisory needs a product tree
          6.1.27.5 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-05-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-05-01): CSAF 6.1.27.4: a csaf_security_advisory needs a product tree
          6.1.27.6 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-06-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-06-01): CSAF 6.1.27.4: a csaf_security_advisory needs a product tree
          6.1.27.7 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-07-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-07-01): CSAF 6.1.27.5: vulnerabilities[0] needs notes
          6.1.27.8 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-08-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-08-01): CSAF 6.1.27.4: a csaf_vex needs a product tree
          6.1.27.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-09-01): CSAF 6.1.27.9: vulnerabilities[0]: not-affected product "CSAFPID-9080702" has no impact statement
          6.1.27.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-02.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-09-02): CSAF 6.1.27.9: vulnerabilities[0]: not-affected product "CSAFPID-9080702" has no impact statement
          6.1.27.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-03.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-09-03): CSAF 6.1.27.9: vulnerabilities[0]: not-affected product "CSAFPID-9080700" has no impact statement
          6.1.27.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-04.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-09-04): CSAF 6.1.27.9: vulnerabilities[0]: not-affected product "CSAFPID-9080700" has no impact statement
          6.1.27.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-05.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-09-05): CSAF 6.1.27.9: vulnerabilities[0]: not-affected product "CSAFPID-9080700" has no impact statement
          6.1.27.9 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-06.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-09-06): CSAF 6.1.27.9: vulnerabilities[1]: not-affected product "CSAFPID-9080701" has no impact statement
          6.1.27.10 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-10-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-10-01): CSAF 6.1.27.5: vulnerabilities[0] needs notes
          6.1.27.11 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-27-11-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-27-11-01): CSAF 6.1.27.11: a csaf_security_advisory needs vulnerabilities
          6.1.29 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-29-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-29-01): CSAF 6.1.29: vulnerabilities[0].remediations[0] names no product and no group
          6.1.32 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-32-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-32-01): CSAF 6.1.32: vulnerabilities[0].flags[0] names no product and no group
          6.1.33 mandatory/oasis_csaf_tc-csaf_2_0-2021-6-1-33-01.json (OASIS_CSAF_TC-CSAF_2.0-2021-6-1-33-01): CSAF 6.1.33: vulnerabilities[0]: product "CSAFPID-9080700" has more than one VEX justification
        csaf_2.1: 856 documents; 54 mandatory failures rejected, 206 accepted (by test: {"6.1.1": 1, "6.1.10": 3, "6.1.11": 6, "6.1.12": 1, "6.1.13": 2, "6.1.14": 10, "6.1.15": 2, "6.1.16": 9, "6.1.17": 1, "6.1.18": 1, "6.1.19": 2, "6.1.20": 1, "6.1.21": 7, "6.1.22": 1, "6.1.24": 2, "6.1.25": 1, "6.1.26": 8, "6.1.27.11": 1, "6.1.27.12": 1, "6.1.27.13": 3, "6.1.27.14": 2, "6.1.27.15": 2, "6.1.27.16": 2, "6.1.27.17": 5, "6.1.27.18": 5, "6.1.27.19": 2, "6.1.27.3": 2, "6.1.27.4": 1, "6.1.27.5": 1, "6.1.27.6": 1, "6.1.27.8": 1, "6.1.28": 1, "6.1.3": 2, "6.1.30": 1, "6.1.31": 9, "6.1.34": 2, "6.1.35": 4, "6.1.36": 4, "6.1.37": 9, "6.1.38": 4, "6.1.39": 2, "6.1.4": 1, "6.1.40": 2, "6.1.41": 4, "6.1.42": 2, "6.1.43": 2, "6.1.44": 2, "6.1.45": 3, "6.1.46": 2, "6.1.47": 6, "6.1.48": 10, "6.1.49": 3, "6.1.50": 4, "6.1.51": 3, "6.1.52": 2, "6.1.53": 2, "6.1.54": 8, "6.1.55": 2, "6.1.56": 4, "6.1.57": 3, "6.1.58": 1, "6.1.59": 2, "6.1.6": 1, "6.1.60.1": 2, "6.1.60.2": 2, "6.1.60.3": 2, "6.1.61": 2, "6.1.8": 4}); 12 other documents rejected
    "#]].assert_eq(&report);
}

/// A hostile product tree: a chain of 20,000 relationships each built on the one before is
/// valid and checked in linear time; closing the chain into a loop is refused (6.1.3).
#[test]
fn long_relationship_chains_and_cycles() {
    let chain = |n: usize, closed: bool| -> Vec<u8> {
        let relationships: Vec<serde_json::Value> = (1..=n)
            .map(|i| {
                let below = if i == 1 {
                    if closed {
                        format!("R{n}")
                    } else {
                        "P0".to_owned()
                    }
                } else {
                    format!("R{}", i - 1)
                };
                serde_json::json!({
                    "category": "default_component_of",
                    "full_product_name": {"product_id": format!("R{i}"), "name": "r"},
                    "product_reference": below,
                    "relates_to_product_reference": "P0",
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "document": {
                "category": "csaf_base",
                "csaf_version": "2.0",
                "publisher": {"category": "other", "name": "t", "namespace": "https://t.invalid"},
                "title": "chain",
                "tracking": {
                    "id": "CHAIN-1", "status": "final", "version": "1",
                    "initial_release_date": "2024-01-01T00:00:00Z",
                    "current_release_date": "2024-01-01T00:00:00Z",
                    "revision_history": [{"date": "2024-01-01T00:00:00Z", "number": "1", "summary": "x"}]
                }
            },
            "product_tree": {
                "full_product_names": [{"product_id": "P0", "name": "p"}],
                "relationships": relationships,
            }
        }))
        .unwrap_or_default()
    };
    assert!(csaf::parse(&chain(20_000, false), "chain.json").is_ok());
    let looped = csaf::parse(&chain(20_000, true), "loop.json");
    expect![[r#"loop.json (CHAIN-1): CSAF 6.1.3: relationship "R1" refers back to itself"#]]
        .assert_eq(&looped.err().map(|r| r.to_string()).unwrap_or_default());
}
