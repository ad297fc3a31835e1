//! The `cisa-bod-26-04` preset against BOD 26-04's Table 1, all sixteen combinations of In
//! KEV × Publicly Exposed × Automatable × Technical Impact, on real CVEs: each row takes a CVE
//! whose KEV membership (the real catalogue) and SSVC decision (the real CISA Vulnrichment
//! record) are the row's, on an asset labelled exposed or not.
//!
//! The table, as CERT/CC publishes it in
//! <https://github.com/CERTCC/SSVC/blob/main/data/csv/cisa/cisa_bod_26_04_1_0_0.csv>:
//!
//! ```text
//! row,In KEV,Publicly Exposed,Automatable,Technical Impact,Remediation Timelines
//! 0,no,no,no,partial,fix on system upgrade
//! 1,yes,no,no,partial,14 days
//! 2,no,yes,no,partial,60 days
//! 3,no,no,yes,partial,60 days
//! 4,no,no,no,total,fix on system upgrade
//! 5,yes,yes,no,partial,14 days
//! 6,yes,no,yes,partial,14 days
//! 7,no,yes,yes,partial,14 days
//! 8,yes,no,no,total,14 days
//! 9,no,yes,no,total,14 days
//! 10,no,no,yes,total,60 days
//! 11,yes,yes,yes,partial,3 days
//! 12,yes,yes,no,total,3 days & forensic investigation
//! 13,yes,no,yes,total,3 days & forensic investigation
//! 14,no,yes,yes,total,3 days
//! 15,yes,yes,yes,total,3 days & forensic investigation
//! ```
//!
//! KEV rows count from the day CISA added the CVE; the others from detection.

mod policy_support;

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::policy::{Class, ClockStart, Lookup, TechnicalImpact};
use policy_support::{Case, DETECTED, kev_catalogue, ts, vulnrichment_ssvc};

const BOD: &[&str] = &["cisa-bod-26-04"];

/// A real CVE with this KEV membership and these SSVC decision points.
fn real_cve(kev: bool, automatable: bool, ti: TechnicalImpact) -> Case {
    let (cve, ssvc) = vulnrichment_ssvc()
        .iter()
        .find(|(cve, s)| {
            kev_catalogue().contains_key(*cve) == kev
                && s.automatable == automatable
                && s.technical_impact == ti
        })
        .unwrap_or_else(|| panic!("no real CVE with kev={kev} automatable={automatable} {ti}"));
    let mut case = Case::new(cve);
    case.ssvc = Lookup::Listed(ssvc.clone());
    if kev { case.real_kev() } else { case }
}

/// Checks one row: the class, the rule, and the due date counted from the row's clock.
fn row(kev: bool, exposed: bool, automatable: bool, ti: TechnicalImpact, timeline: &str) {
    let exposure = if exposed {
        "exposure=internet"
    } else {
        "exposure=internal"
    };
    let case = real_cve(kev, automatable, ti).labels(exposure);
    let a = case.under(BOD);
    let rule = format!(
        "{}-{}-{}-{ti}",
        if kev { "kev" } else { "not-kev" },
        if exposed { "exposed" } else { "not-exposed" },
        if automatable {
            "automatable"
        } else {
            "not-automatable"
        },
    );
    let start: Timestamp = if kev {
        let added = case.kev.listed().unwrap().date_added;
        ts(&format!("{added}T00:00:00Z"))
    } else {
        ts(DETECTED)
    };
    let (class, days) = match timeline {
        "3 days" | "3 days & forensic investigation" => (Class::Emergency, Some(3)),
        "14 days" => (Class::High, Some(14)),
        "60 days" => (Class::Medium, Some(60)),
        "fix on system upgrade" => (Class::Low, None),
        other => panic!("{other}"),
    };
    let what = format!("{} ({rule})", case.finding.vulnerability);
    assert_eq!(a.class, Some(class), "{what}");
    assert_eq!(
        a.summary().class_rule.as_deref(),
        Some(rule.as_str()),
        "{what}"
    );
    assert_eq!(
        a.due_at,
        days.map(|d| start + SignedDuration::from_hours(24 * d)),
        "{what}"
    );
    if days.is_some() {
        let clock = a.clock.as_ref().unwrap();
        let event = if kev {
            ClockStart::KevAdded
        } else {
            ClockStart::Detected
        };
        assert_eq!(
            (clock.used, clock.started_at),
            (Some(event), Some(start)),
            "{what}"
        );
    }
    let forensic = timeline.contains("forensic");
    assert_eq!(
        a.actions,
        if forensic {
            vec!["forensic_triage".to_owned()]
        } else {
            vec![]
        }
    );
    let milestones: Vec<(String, Timestamp)> = a
        .milestones
        .iter()
        .map(|m| (m.name.clone(), m.due_at))
        .collect();
    let expected: Vec<(String, Timestamp)> = if forensic {
        [
            ("scope the forensic triage", 2),
            ("collect forensic evidence", 24),
            ("decide whether the asset was compromised", 72),
        ]
        .iter()
        .map(|(n, h)| (n.to_string(), start + SignedDuration::from_hours(*h)))
        .collect()
    } else {
        vec![]
    };
    assert_eq!(milestones, expected, "{what}");
    assert!(a.missing.is_empty(), "{what}: {:?}", a.missing_sentences());
}

use TechnicalImpact::{Partial, Total};

#[test]
fn row_00_not_kev_not_exposed_not_automatable_partial() {
    row(false, false, false, Partial, "fix on system upgrade");
}
#[test]
fn row_01_kev_not_exposed_not_automatable_partial() {
    row(true, false, false, Partial, "14 days");
}
#[test]
fn row_02_not_kev_exposed_not_automatable_partial() {
    row(false, true, false, Partial, "60 days");
}
#[test]
fn row_03_not_kev_not_exposed_automatable_partial() {
    row(false, false, true, Partial, "60 days");
}
#[test]
fn row_04_not_kev_not_exposed_not_automatable_total() {
    row(false, false, false, Total, "fix on system upgrade");
}
#[test]
fn row_05_kev_exposed_not_automatable_partial() {
    row(true, true, false, Partial, "14 days");
}
#[test]
fn row_06_kev_not_exposed_automatable_partial() {
    row(true, false, true, Partial, "14 days");
}
#[test]
fn row_07_not_kev_exposed_automatable_partial() {
    row(false, true, true, Partial, "14 days");
}
#[test]
fn row_08_kev_not_exposed_not_automatable_total() {
    row(true, false, false, Total, "14 days");
}
#[test]
fn row_09_not_kev_exposed_not_automatable_total() {
    row(false, true, false, Total, "14 days");
}
#[test]
fn row_10_not_kev_not_exposed_automatable_total() {
    row(false, false, true, Total, "60 days");
}
#[test]
fn row_11_kev_exposed_automatable_partial() {
    row(true, true, true, Partial, "3 days");
}
#[test]
fn row_12_kev_exposed_not_automatable_total() {
    row(true, true, false, Total, "3 days & forensic investigation");
}
#[test]
fn row_13_kev_not_exposed_automatable_total() {
    row(true, false, true, Total, "3 days & forensic investigation");
}
#[test]
fn row_14_not_kev_exposed_automatable_total() {
    row(false, true, true, Total, "3 days");
}
#[test]
fn row_15_kev_exposed_automatable_total() {
    row(true, true, true, Total, "3 days & forensic investigation");
}

#[test]
fn unknown_exposure_counts_as_exposed() {
    let case = real_cve(true, true, Total);
    let a = case.under(BOD);
    assert_eq!(
        a.summary().class_rule.as_deref(),
        Some("kev-exposed-automatable-total")
    );
    assert!(
        a.notes
            .iter()
            .any(|n| n
                == "the asset's exposure is not labelled: cisa-bod-26-04 counts it as internet"),
        "{:?}",
        a.notes
    );
}

#[test]
fn no_cisa_data() {
    // Not in KEV, no Vulnrichment record: 60 days from detection, and the finding says why.
    let case = Case::new("CVE-2025-0001").labels("exposure=internet");
    let a = case.under(BOD);
    assert_eq!(a.class, Some(Class::Medium));
    assert_eq!(a.summary().class_rule.as_deref(), Some("no-cisa-data"));
    assert_eq!(
        a.due_at,
        Some(ts(DETECTED) + SignedDuration::from_hours(24 * 60))
    );
    let sentences = a.missing_sentences();
    assert_eq!(sentences.len(), 1, "{sentences:?}");
    assert!(
        sentences[0].starts_with("classified without SSVC data (undecided: cisa-bod-26-04/"),
        "{sentences:?}"
    );
    // The same when neither KEV nor Vulnrichment was loaded at all.
    let mut bare = Case::new("CVE-2025-0001").labels("exposure=internal");
    bare.kev = Lookup::NotLoaded;
    bare.ssvc = Lookup::NotLoaded;
    assert_eq!(
        bare.under(BOD).summary().class_rule.as_deref(),
        Some("no-cisa-data")
    );
}

#[test]
fn kev_without_ssvc() {
    let case = Case::new("CVE-2021-44228")
        .real_kev()
        .labels("exposure=internal");
    let a = case.under(BOD);
    assert_eq!(a.class, Some(Class::High));
    assert_eq!(a.summary().class_rule.as_deref(), Some("kev-without-ssvc"));
    assert_eq!(a.due_at, Some(ts("2021-12-24T00:00:00Z")));
}
