//! The `seed-default` preset, one case per row of seed 000's classes (§6.6.3) and timeframes
//! (§6.9.5: Emergency 8 hours, High 30 days, Medium 60 days, Low 90 days of availability),
//! each test named after the rule it pins. The fix in every case was published at
//! 2025-03-03T12:00Z (`AVAILABLE`); the expected due dates are that plus the policy's period.

mod policy_support;

use patchwarden_core::policy::{Class, ClockStart};
use policy_support::{Case, outcome, v3};

const SEED: &[&str] = &["seed-default"];

#[test]
fn known_exploited() {
    let a = Case::new("CVE-2021-44228")
        .real_kev()
        .cvss(v3::S3_9)
        .under(SEED);
    assert_eq!(
        outcome(&a),
        "emergency by seed-default/known-exploited | due 2025-03-03T20:00:00Z by \
         seed-default/known-exploited"
    );
    let clock = a.clock.unwrap();
    assert_eq!(clock.used, Some(ClockStart::FixReleased));
    // The low rule matched too; the highest class and the earliest due date won.
    let matched: Vec<&str> = a.verdicts[0]
        .matched
        .iter()
        .map(|m| m.rule.as_str())
        .collect();
    assert_eq!(matched, ["known-exploited", "low"]);
}

#[test]
fn cvss_high() {
    let a = Case::new("CVE-2025-0001").cvss(v3::S7_0).under(SEED);
    assert_eq!(
        outcome(&a),
        "high by seed-default/cvss-high | due 2025-04-02T12:00:00Z by seed-default/cvss-high"
    );
}

#[test]
fn cvss_medium() {
    for vector in [v3::S6_9, v3::S4_0] {
        let a = Case::new("CVE-2025-0001").cvss(vector).under(SEED);
        assert_eq!(
            outcome(&a),
            "medium by seed-default/cvss-medium | due 2025-05-02T12:00:00Z by \
             seed-default/cvss-medium",
            "{vector}"
        );
    }
}

#[test]
fn vendor_high() {
    // Red Hat's "Important" is its high; the CVSS score alone would say medium.
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S6_9)
        .vendor("Important")
        .under(SEED);
    assert_eq!(
        outcome(&a),
        "high by seed-default/vendor-high | due 2025-04-02T12:00:00Z by seed-default/vendor-high"
    );
}

#[test]
fn vendor_medium() {
    let a = Case::new("CVE-2025-0001").vendor("Moderate").under(SEED);
    assert_eq!(
        outcome(&a),
        "medium by seed-default/vendor-medium | due 2025-05-02T12:00:00Z by \
         seed-default/vendor-medium"
    );
}

#[test]
fn likely_exploited() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S3_9)
        .epss(0.1, 0.95)
        .under(SEED);
    assert_eq!(a.class, Some(Class::High));
    assert_eq!(a.summary().class_rule.as_deref(), Some("likely-exploited"));
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S3_9)
        .epss(0.0999, 0.9)
        .under(SEED);
    assert_eq!(a.class, Some(Class::Low));
}

#[test]
fn wormable_on_important_asset() {
    // AV:N and UI:N at 4.0: high on an important asset, medium elsewhere.
    let important = Case::new("CVE-2025-0001")
        .cvss(v3::S4_0)
        .labels("criticality=critical");
    assert_eq!(
        outcome(&important.under(SEED)),
        "high by seed-default/wormable-on-important-asset | due 2025-04-02T12:00:00Z by \
         seed-default/wormable-on-important-asset"
    );
    let ordinary = Case::new("CVE-2025-0001")
        .cvss(v3::S4_0)
        .labels("criticality=medium");
    assert_eq!(ordinary.under(SEED).class, Some(Class::Medium));
    // UI:R does not qualify, however important the asset.
    let needs_a_user = Case::new("CVE-2025-0001")
        .cvss(v3::S6_9)
        .labels("criticality=critical");
    assert_eq!(needs_a_user.under(SEED).class, Some(Class::Medium));
}

#[test]
fn unrated() {
    let a = Case::new("CVE-2025-0001").under(SEED);
    assert_eq!(
        outcome(&a),
        "medium by seed-default/unrated | due 2025-05-02T12:00:00Z by seed-default/unrated"
    );
}

#[test]
fn low() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S3_9)
        .vendor("Low")
        .under(SEED);
    assert_eq!(
        outcome(&a),
        "low by seed-default/low | due 2025-06-01T12:00:00Z by seed-default/low"
    );
}

#[test]
fn kev_not_loaded_is_said_in_words() {
    let mut case = Case::new("CVE-2025-0001").cvss(v3::S7_5);
    case.kev = patchwarden_core::policy::Lookup::NotLoaded;
    let a = case.under(SEED);
    assert_eq!(a.class, Some(Class::High));
    assert_eq!(
        a.missing_sentences(),
        [
            "classified without the KEV catalogue (undecided: seed-default/known-exploited)",
            "classified without the asset's criticality (undecided: \
             seed-default/wormable-on-important-asset)"
        ]
    );
}
