//! The `fedramp-rev5` preset against RA-5(d): High (CVSS 7.0–10.0) 30 days, Moderate (4.0–6.9)
//! 90 days, Low (0.1–3.9) 180 days from detection, and the KEV catalogue's due date
//! superseding them; only inside the authorization boundary (scope tag `fedramp-boundary`).
//! Detected at 2025-03-10T08:00Z: +30 d is 2025-04-09, +90 d 2025-06-08, +180 d 2025-09-06.

mod policy_support;

use patchwarden_core::policy::{Class, ClockStart};
use policy_support::{Case, outcome, ts, v3};

const FEDRAMP: &[&str] = &["fedramp-rev5"];
const IN: &str = "tag=fedramp-boundary";

#[test]
fn high_30_days() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S7_0)
        .labels(IN)
        .under(FEDRAMP);
    assert_eq!(
        outcome(&a),
        "high by fedramp-rev5/high-30-days | due 2025-04-09T08:00:00Z by fedramp-rev5/high-30-days"
    );
    assert_eq!(a.clock.unwrap().used, Some(ClockStart::Detected));
}

#[test]
fn moderate_90_days() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S6_9)
        .labels(IN)
        .under(FEDRAMP);
    assert_eq!(
        outcome(&a),
        "medium by fedramp-rev5/moderate-90-days | due 2025-06-08T08:00:00Z by \
         fedramp-rev5/moderate-90-days"
    );
}

#[test]
fn low_180_days() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S3_9)
        .labels(IN)
        .under(FEDRAMP);
    assert_eq!(
        outcome(&a),
        "low by fedramp-rev5/low-180-days | due 2025-09-06T08:00:00Z by fedramp-rev5/low-180-days"
    );
}

#[test]
fn vendor_rating_stands_in_without_cvss() {
    let a = Case::new("CVE-2025-0001")
        .vendor("Important")
        .labels(IN)
        .under(FEDRAMP);
    assert_eq!(a.summary().class_rule.as_deref(), Some("high-30-days"));
    // With a CVSS score the vendor's word does not count.
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S3_9)
        .vendor("Important")
        .labels(IN)
        .under(FEDRAMP);
    assert_eq!(a.class, Some(Class::Low));
}

#[test]
fn kev_due_date_supersedes_a_later_and_an_earlier_band_deadline() {
    // Log4Shell: added to KEV 2021-12-10, due 2021-12-24 (the real catalogue).
    let mut early = Case::new("CVE-2021-44228")
        .real_kev()
        .cvss(v3::S9_8)
        .labels(IN);
    early.detected_at = Some(ts("2021-11-01T00:00:00Z"));
    // The band alone says 2021-12-01; the KEV due date replaces it although it is later.
    let a = early.under_at(FEDRAMP, "2021-12-05T00:00:00Z");
    assert_eq!(
        outcome(&a),
        "high by fedramp-rev5/high-30-days | due 2021-12-25T00:00:00Z by fedramp-rev5/kev-due-date"
    );
    assert_eq!(a.clock.as_ref().unwrap().used, Some(ClockStart::KevAdded));
    assert_eq!(
        a.clock.as_ref().unwrap().started_at,
        Some(ts("2021-12-10T00:00:00Z"))
    );

    let mut late = Case::new("CVE-2021-44228")
        .real_kev()
        .cvss(v3::S9_8)
        .labels(IN);
    late.detected_at = Some(ts("2021-12-20T00:00:00Z"));
    let a = late.under_at(FEDRAMP, "2021-12-21T00:00:00Z");
    assert_eq!(a.due_at, Some(ts("2021-12-25T00:00:00Z")));
}

#[test]
fn outside_the_boundary_is_not_applicable() {
    let a = Case::new("CVE-2025-0001").cvss(v3::S9_8).under(FEDRAMP);
    assert_eq!(
        outcome(&a),
        "not_applicable by fedramp-rev5 (outside its scope) | due - by -"
    );
}
