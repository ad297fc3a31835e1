//! The `pci-dss-4.0.1` preset against requirement 6.3.3: patches for critical vulnerabilities
//! (by the 6.3.1 risk ranking) within one month of release, others in a time frame the entity
//! sets, and only in the cardholder data environment (scope tag `pci-cde`). Each test is named
//! after the rule it pins. The fix was published at 2025-03-03T12:00Z.

mod policy_support;

use patchwarden_core::policy::{Class, Decision};
use policy_support::{Case, outcome, v3};

const PCI: &[&str] = &["pci-dss-4.0.1"];

#[test]
fn critical_6_3_3_within_one_month() {
    // Critical by CVSS, by the vendor's rating, and by known exploitation.
    for case in [
        Case::new("CVE-2025-0001").cvss(v3::S9_0),
        Case::new("CVE-2025-0001").cvss(v3::S7_5).vendor("Critical"),
        Case::new("CVE-2021-44228").real_kev().cvss(v3::S7_5),
    ] {
        let a = case.labels("tag=pci-cde").under(PCI);
        assert_eq!(
            outcome(&a),
            "high by pci-dss-4.0.1/6.3.3-critical | due 2025-04-03T12:00:00Z by \
             pci-dss-4.0.1/6.3.3-critical"
        );
    }
}

#[test]
fn critical_6_3_3_month_is_a_calendar_month() {
    let mut case = Case::new("CVE-2025-0001")
        .cvss(v3::S9_8)
        .labels("tag=pci-cde");
    case.finding.available_at = Some(policy_support::ts("2025-01-31T09:00:00Z"));
    assert_eq!(
        case.under(PCI).due_at,
        Some(policy_support::ts("2025-02-28T09:00:00Z"))
    );
}

#[test]
fn non_critical_6_3_3_other_has_no_pci_deadline() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S8_9)
        .labels("tag=pci-cde")
        .under(PCI);
    assert_eq!(
        outcome(&a),
        "high by pci-dss-4.0.1/6.3.3-other-high | due - by -"
    );
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S6_9)
        .labels("tag=pci-cde")
        .under(PCI);
    assert_eq!(
        outcome(&a),
        "medium by pci-dss-4.0.1/6.3.3-other-medium | due - by -"
    );
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S3_9)
        .labels("tag=pci-cde")
        .under(PCI);
    assert_eq!(
        outcome(&a),
        "low by pci-dss-4.0.1/6.3.3-other-low | due - by -"
    );
}

#[test]
fn outside_the_cde_is_not_applicable() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S9_8)
        .labels("tag=corp")
        .under(PCI);
    assert_eq!(a.class, Some(Class::NotApplicable));
    assert_eq!(
        a.class_set_by,
        Some(Decision::Scope {
            policy: "pci-dss-4.0.1".into()
        })
    );
    assert_eq!(a.due_at, None);
    assert!(!a.verdicts[0].in_scope);
}

#[test]
fn non_critical_takes_the_entity_deadline_from_a_layered_policy() {
    // PCI ranks it (high, no deadline); the entity's own policy sets the deadline.
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S8_9)
        .labels("tag=pci-cde")
        .under(&["pci-dss-4.0.1", "seed-default"]);
    assert_eq!(
        outcome(&a),
        "high by pci-dss-4.0.1/6.3.3-other-high | due 2025-04-02T12:00:00Z by \
         seed-default/cvss-high"
    );
    // Outside the CDE the layered policy still classifies it: the highest class wins.
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S8_9)
        .under(&["pci-dss-4.0.1", "seed-default"]);
    assert_eq!(
        outcome(&a),
        "high by seed-default/cvss-high | due 2025-04-02T12:00:00Z by seed-default/cvss-high"
    );
}
