//! SSVC decision points read from the real CISA Vulnrichment records (the ADP container "CISA
//! ADP Vulnrichment" of CVE JSON 5 records), and malformed variants of them.
//!
//! The expected counts were computed independently with Python's `json` module over the same
//! zip (lower-casing the words, as the records spell them in either case).

mod policy_support;

use std::collections::BTreeMap;

use patchwarden_core::policy::{Exploitation, TechnicalImpact, ssvc_from_cve5};
use policy_support::{ts, vulnrichment_records, vulnrichment_ssvc};
use serde_json::json;

#[test]
fn every_real_record_reads_and_the_decisions_add_up() {
    let records = vulnrichment_records();
    assert_eq!(records.len(), 2076);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut without = Vec::new();
    for (cve, record) in records {
        match ssvc_from_cve5(record).unwrap_or_else(|e| panic!("{e}")) {
            Some(s) => {
                let key = format!(
                    "{} {} {}",
                    s.exploitation,
                    if s.automatable { "yes" } else { "no" },
                    s.technical_impact
                );
                *counts.entry(key).or_default() += 1;
            }
            None => without.push(cve.as_str()),
        }
    }
    let expected: BTreeMap<String, usize> = [
        ("active no partial", 23),
        ("active no total", 95),
        ("active yes partial", 23),
        ("active yes total", 69),
        ("none no partial", 1413),
        ("none no total", 193),
        ("none yes partial", 123),
        ("none yes total", 48),
        ("poc no partial", 37),
        ("poc no total", 23),
        ("poc yes partial", 18),
        ("poc yes total", 8),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, expected);
    // CISA had not assessed these three when the sample was taken: BOD 26-04's "no CISA data".
    assert_eq!(
        without,
        ["CVE-2022-48936", "CVE-2023-52605", "CVE-2024-26609"]
    );
}

#[test]
fn one_record_in_full() {
    let s = &vulnrichment_ssvc()["CVE-2019-1069"];
    assert_eq!(s.exploitation, Exploitation::Active);
    assert!(!s.automatable);
    assert_eq!(s.technical_impact, TechnicalImpact::Total);
    assert_eq!(s.version.as_deref(), Some("2.0.3"));
    assert_eq!(s.timestamp, Some(ts("2024-09-18T18:07:57.773732Z")));
}

fn record(options: serde_json::Value) -> serde_json::Value {
    json!({
        "cveMetadata": {"cveId": "CVE-2099-0001"},
        "containers": {"adp": [{
            "providerMetadata": {"shortName": "CISA-ADP"},
            "metrics": [{"other": {"type": "ssvc", "content": {"options": options}}}]
        }]}
    })
}

#[test]
fn malformed_decisions_are_errors_that_name_the_cve() {
    let missing = record(json!([{"Exploitation": "none"}, {"Automatable": "no"}]));
    assert_eq!(
        ssvc_from_cve5(&missing).unwrap_err().to_string(),
        "CVE-2099-0001: the SSVC decision of CISA-ADP has no Technical Impact decision"
    );
    let unknown = record(json!([
        {"Exploitation": "widespread"}, {"Automatable": "no"}, {"Technical Impact": "total"}
    ]));
    assert_eq!(
        ssvc_from_cve5(&unknown).unwrap_err().to_string(),
        "CVE-2099-0001: the SSVC decision of CISA-ADP gives Exploitation as `widespread`, which \
         SSVC does not define"
    );
    for bad in [
        json!("active"),
        json!([1, 2]),
        json!([{"Automatable": true}]),
    ] {
        assert!(ssvc_from_cve5(&record(bad.clone())).is_err(), "{bad}");
    }
}

#[test]
fn records_without_ssvc_have_none() {
    for r in [
        json!({}),
        json!({"containers": {"cna": {}}}),
        json!({"containers": {"adp": "not a list"}}),
        json!({"containers": {"adp": [{"metrics": [{"cvssV3_1": {}}]}]}}),
        json!([1, 2, 3]),
    ] {
        assert_eq!(ssvc_from_cve5(&r), Ok(None), "{r}");
    }
}

#[test]
fn cisa_decision_wins_over_another_adp() {
    let mut r = record(json!([
        {"Exploitation": "none"}, {"Automatable": "no"}, {"Technical Impact": "partial"}
    ]));
    let other = json!({
        "providerMetadata": {"shortName": "OTHER"},
        "metrics": [{"other": {"type": "ssvc", "content": {"options": [
            {"Exploitation": "active"}, {"Automatable": "yes"}, {"Technical Impact": "total"}
        ]}}}]
    });
    r["containers"]["adp"]
        .as_array_mut()
        .unwrap()
        .insert(0, other);
    let s = ssvc_from_cve5(&r).unwrap().unwrap();
    assert_eq!(s.exploitation, Exploitation::None);
}
