//! The enrichment feeds on the real files: CISA KEV and EPSS.

mod common;

use common::{reject_lines, shared_data};
use expect_test::expect;
use patchwarden_core::advisory::RansomwareUse;
use patchwarden_feeds::{epss, kev};

#[test]
fn kev_catalogue_counts() {
    let bytes = std::fs::read(shared_data().join("kev/known_exploited_vulnerabilities.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let catalog = kev::parse(&bytes, "kev.json").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(reject_lines(&catalog.entries), "");
    assert_eq!(catalog.entries.records.len(), 1404);
    assert_eq!(catalog.count, Some(1404));
    assert_eq!(catalog.catalog_version.as_deref(), Some("2025.08.25"));
    assert_eq!(
        catalog.date_released.map(|t| t.to_string()).as_deref(),
        Some("2025-08-25T17:04:19.9796Z")
    );
    let known = catalog
        .entries
        .records
        .iter()
        .filter(|e| e.known_ransomware_use == RansomwareUse::Known)
        .count();
    assert_eq!(known, 293);
    let first = catalog
        .entries
        .records
        .first()
        .unwrap_or_else(|| panic!("entries"));
    expect![[r#"
        KevEntry {
            cve: "CVE-2025-48384",
            vendor_project: "Git",
            product: "Git",
            vulnerability_name: "Git Link Following Vulnerability",
            date_added: 2025-08-25,
            due_date: 2025-09-15,
            known_ransomware_use: Unknown,
            short_description: "Git contains a link following vulnerability that stems from Git’s inconsistent handling of carriage return characters in configuration files.",
            required_action: "Apply mitigations per vendor instructions, follow applicable BOD 22-01 guidance for cloud services, or discontinue use of the product if mitigations are unavailable.",
            notes: "This vulnerability affects a common open-source component, third-party library, or a protocol used by different products. For more information, please see: https://github.com/git/git/security/advisories/GHSA-vwqx-4fm8-6qc9 ; https://access.redhat.com/errata/RHSA-2025:13933 ; https://alas.aws.amazon.com/AL2/ALAS2-2025-2941.html ; https://linux.oracle.com/errata/ELSA-2025-11534.html ; https://msrc.microsoft.com/update-guide/vulnerability/CVE-2025-48384 ; https://nvd.nist.gov/vuln/detail/CVE-2025-48384",
            cwes: [
                "CWE-59",
                "CWE-436",
            ],
        }
    "#]].assert_debug_eq(first);
}

#[test]
fn kev_single_entry_and_bad_entries() {
    let dir = shared_data().join("fixtures/vunnel/tests/unit/providers/kev/test-fixtures");
    let single = std::fs::read(dir.join("single-entry/example1.json")).unwrap_or_default();
    let c = kev::parse(&single, "example1.json").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(c.entries.records.len(), 1);
    let valid = std::fs::read(dir.join("valid-catalog-1.json")).unwrap_or_default();
    let c = kev::parse(&valid, "valid-catalog-1.json").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(reject_lines(&c.entries), "");
    assert!(!c.entries.records.is_empty());

    // Mutate real entries of the real catalogue: each broken one is rejected alone.
    let full = std::fs::read(shared_data().join("kev/known_exploited_vulnerabilities.json"))
        .unwrap_or_default();
    let mut doc: serde_json::Value = serde_json::from_slice(&full).unwrap_or_default();
    let total = doc["vulnerabilities"].as_array().map_or(0, Vec::len);
    doc["vulnerabilities"][0]["dueDate"] = "soon".into();
    doc["vulnerabilities"][1]["knownRansomwareCampaignUse"] = "Maybe".into();
    doc["vulnerabilities"][2]["cveID"] = "CVE-XXXX".into();
    doc["vulnerabilities"][3] = serde_json::json!(42);
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let c = kev::parse(&bytes, "mutated.json").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(c.entries.records.len(), total - 4);
    expect![[r#"
        mutated.json#vulnerabilities[0] (CVE-2025-48384): dueDate "soon" is not a date: failed to parse four digit integer as year: invalid digit, expected 0-9 but got s
        mutated.json#vulnerabilities[1] (CVE-2024-8068): knownRansomwareCampaignUse "Maybe" is neither Known nor Unknown
        mutated.json#vulnerabilities[2] (CVE-XXXX): cveID "CVE-XXXX" is not a CVE id
        mutated.json#vulnerabilities[3]: is not valid JSON for this feed: invalid type: integer `42`, expected struct RawEntry
    "#]].assert_eq(&reject_lines(&c.entries));
    assert!(kev::parse(b"{\"title\": \"x\"}", "t.json").is_err());
    assert!(kev::parse(b"\xff", "t.json").is_err());
}

#[test]
fn epss_csv() {
    let dir = shared_data().join("fixtures/vunnel/tests/unit/providers/epss/test-fixtures");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    let e = epss::parse(&read("example-1.csv"), "example-1.csv").unwrap_or_else(|r| panic!("{r}"));
    assert!(e.rejects.is_empty());
    expect![[r#"
        EpssSnapshot {
            model_version: Some(
                "v2023.03.01",
            ),
            score_date: Some(
                2025-02-20T00:00:00Z,
            ),
            scores: [
                (
                    "CVE-1999-0001",
                    EpssScore {
                        epss: 0.00383,
                        percentile: 0.73075,
                    },
                ),
                (
                    "CVE-1999-0002",
                    EpssScore {
                        epss: 0.01328,
                        percentile: 0.85996,
                    },
                ),
                (
                    "CVE-1999-0003",
                    EpssScore {
                        epss: 0.04409,
                        percentile: 0.9244,
                    },
                ),
                (
                    "CVE-1999-0004",
                    EpssScore {
                        epss: 0.00917,
                        percentile: 0.82963,
                    },
                ),
                (
                    "CVE-1999-0005",
                    EpssScore {
                        epss: 0.91963,
                        percentile: 0.99214,
                    },
                ),
            ],
        }
    "#]]
    .assert_debug_eq(&e.snapshot);

    let missing = epss::parse(&read("missing-date.csv"), "missing-date.csv")
        .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(missing.snapshot.score_date, None);
    assert_eq!(
        missing.snapshot.model_version.as_deref(),
        Some("v2023.03.01")
    );
    assert_eq!(missing.snapshot.scores.len(), 5);

    let bad = epss::parse(&read("invalid-header.csv"), "invalid-header.csv");
    expect![[r#"invalid-header.csv:2: the header is "invalid,header,format", expected "cve,epss,percentile""#]].assert_eq(&bad.err().map(|r| r.to_string()).unwrap_or_default());

    let rows = b"cve,epss,percentile\nCVE-2024-0001,0.5,0.9\nCVE-2024-0002,1.5,0.9\nnot-a-cve,0.1,0.1\nCVE-2024-0003,NaN,0.1\nCVE-2024-0004,0.1\nCVE-2024-0005,0.1,0.2\n";
    let e = epss::parse(rows, "rows.csv").unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(e.snapshot.scores.len(), 2);
    let lines: String = e.rejects.iter().map(|r| format!("{r}\n")).collect();
    expect![[r#"
        rows.csv:3 (CVE-2024-0002): epss "1.5" is outside 0–1
        rows.csv:4 (not-a-cve): "not-a-cve" is not a CVE id
        rows.csv:5 (CVE-2024-0003): epss "NaN" is outside 0–1
        rows.csv:6 (CVE-2024-0004): "CVE-2024-0004,0.1" does not have three columns
    "#]]
    .assert_eq(&lines);
    assert!(epss::parse(b"", "empty.csv").is_err());
    assert!(epss::parse(b"\xff\xfe", "bin.csv").is_err());
}
