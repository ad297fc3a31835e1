//! The `cyber-essentials` preset against the scheme's security update management requirement:
//! updates fixing vulnerabilities the vendor calls critical or high risk, or with a CVSS v3
//! base score of 7 or above, or with no severity given, within 14 days of release. The fix was
//! published at 2025-03-03T12:00Z; 14 days is 2025-03-17T12:00Z.

mod policy_support;

use patchwarden_core::policy::Class;
use policy_support::{Case, outcome, v3};

const CE: &[&str] = &["cyber-essentials"];

#[test]
fn high_risk_14_days_at_cvss_7_0_but_not_6_9() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S7_0)
        .vendor("Moderate")
        .under(CE);
    assert_eq!(
        outcome(&a),
        "high by cyber-essentials/high-risk-14-days | due 2025-03-17T12:00:00Z by \
         cyber-essentials/high-risk-14-days"
    );
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S6_9)
        .vendor("Moderate")
        .under(CE);
    assert_eq!(
        outcome(&a),
        "low by cyber-essentials/other-updates | due - by -"
    );
}

#[test]
fn high_risk_14_days_when_the_vendor_says_high_or_critical() {
    for rating in ["Important", "Critical"] {
        let a = Case::new("CVE-2025-0001")
            .cvss(v3::S4_0)
            .vendor(rating)
            .under(CE);
        assert_eq!(a.class, Some(Class::High), "{rating}");
        assert_eq!(a.due_at, Some(policy_support::ts("2025-03-17T12:00:00Z")));
    }
}

#[test]
fn no_severity_14_days() {
    let a = Case::new("CVE-2025-0001").under(CE);
    assert_eq!(
        outcome(&a),
        "high by cyber-essentials/no-severity-14-days | due 2025-03-17T12:00:00Z by \
         cyber-essentials/no-severity-14-days"
    );
}

#[test]
fn other_updates() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S3_9)
        .vendor("Low")
        .under(CE);
    assert_eq!(
        outcome(&a),
        "low by cyber-essentials/other-updates | due - by -"
    );
}

#[test]
fn layered_with_seed_default_the_earliest_due_date_wins() {
    // Cyber Essentials' 14 days beats the seed's 30; the class is High under both, and the
    // first policy given names it.
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S7_5)
        .under(&["cyber-essentials", "seed-default"]);
    assert_eq!(
        outcome(&a),
        "high by cyber-essentials/high-risk-14-days | due 2025-03-17T12:00:00Z by \
         cyber-essentials/high-risk-14-days"
    );
    // A KEV entry makes it an emergency under the seed, due in 8 hours.
    let a = Case::new("CVE-2021-44228")
        .real_kev()
        .cvss(v3::S9_8)
        .under(&["cyber-essentials", "seed-default"]);
    assert_eq!(
        outcome(&a),
        "emergency by seed-default/known-exploited | due 2025-03-03T20:00:00Z by \
         seed-default/known-exploited"
    );
}
