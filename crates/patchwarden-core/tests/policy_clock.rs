//! The SLA clock: which event starts it, the fallbacks when its time is unknown, the pure
//! on-time / due-soon / breached answer, and how several policies and overrides combine.

mod policy_support;

use expect_test::expect;
use jiff::SignedDuration;
use patchwarden_core::policy::{
    Class, ClockStart, Decision, Override, Policy, Reason, SlaStatus, sla_status,
};
use policy_support::{AVAILABLE, Case, DETECTED, NOW, load, outcome, ts, v3};

const SEED: &[&str] = &["seed-default"];

#[test]
fn fix_released_clock_starts_at_availability() {
    let a = Case::new("CVE-2025-0001").cvss(v3::S7_5).under(SEED);
    let clock = a.clock.clone().unwrap();
    assert_eq!(clock.start, ClockStart::FixReleased);
    assert_eq!(clock.used, Some(ClockStart::FixReleased));
    assert_eq!(clock.started_at, Some(ts(AVAILABLE)));
    assert_eq!(clock.note, None);
    assert_eq!(a.summary().clock_started_at, Some(ts(AVAILABLE)));
}

#[test]
fn unknown_availability_falls_back_to_detection() {
    // A Debian tracker fix: the fixed version is known, its publication time is not.
    let mut case = Case::new("CVE-2025-0001").cvss(v3::S7_5);
    case.finding.available_at = None;
    let a = case.under(SEED);
    assert_eq!(
        a.due_at,
        Some(ts(DETECTED) + SignedDuration::from_hours(24 * 30))
    );
    let clock = a.clock.as_ref().unwrap();
    assert_eq!(clock.used, Some(ClockStart::Detected));
    assert_eq!(
        clock.note.as_deref(),
        Some("the time of fix_released is not known: the clock started at detected")
    );
    assert!(a.notes.contains(&clock.note.clone().unwrap()));
}

#[test]
fn nothing_known_falls_back_to_this_evaluation() {
    let mut case = Case::new("CVE-2025-0001").cvss(v3::S7_5);
    case.finding.available_at = None;
    case.detected_at = None;
    let a = case.under(SEED);
    assert_eq!(
        a.due_at,
        Some(ts(NOW) + SignedDuration::from_hours(24 * 30))
    );
    assert_eq!(
        a.clock.unwrap().note.as_deref(),
        Some(
            "the time of fix_released is not known: the clock started at evaluated (this evaluation)"
        )
    );
    // A recorded evaluation is used instead of now.
    let mut triaged = case.clone();
    triaged.evaluated_at = Some(ts("2025-03-11T00:00:00Z"));
    assert_eq!(
        triaged.under(SEED).due_at,
        Some(ts("2025-03-11T00:00:00Z") + SignedDuration::from_hours(24 * 30))
    );
}

#[test]
fn no_fix_released_means_the_clock_has_not_started() {
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S9_8)
        .no_fix()
        .under(SEED);
    assert_eq!(a.class, Some(Class::High));
    assert_eq!(a.due_at, None);
    let clock = a.clock.unwrap();
    assert_eq!((clock.used, clock.started_at), (None, None));
    assert_eq!(
        clock.note.as_deref(),
        Some("no fix has been released: the clock starts when one is")
    );
    // A policy counting from detection gives it a deadline all the same.
    let a = Case::new("CVE-2025-0001")
        .cvss(v3::S9_8)
        .no_fix()
        .labels("tag=fedramp-boundary")
        .under(&["seed-default", "fedramp-rev5"]);
    assert_eq!(
        outcome(&a),
        "high by seed-default/cvss-high | due 2025-04-09T08:00:00Z by fedramp-rev5/high-30-days"
    );
}

#[test]
fn published_and_evaluated_clocks() {
    let org = Policy::parse(
        r#"
[policy]
id = "org"
title = "clock test"

[[rule]]
id = "from-publication"
description = "A week from the vulnerability's publication."
class = "high"
due = "7d"
clock = "published"

[[rule]]
id = "from-triage"
description = "Two days from triage."
class = "medium"
due = "2d"
clock = "evaluated"
"#,
        "org.toml",
    )
    .unwrap();
    let mut case = Case::new("CVE-2025-0001");
    case.evaluated_at = Some(ts("2025-03-11T09:00:00Z"));
    let a = case.assessed(std::slice::from_ref(&org), NOW);
    let m = &a.verdicts[0].matched;
    assert_eq!(m[0].due_at, Some(ts("2025-02-18T00:00:00Z")));
    assert_eq!(m[1].due_at, Some(ts("2025-03-13T09:00:00Z")));
    // The earliest wins although its rule's class is lower.
    assert_eq!(
        outcome(&a),
        "high by org/from-publication | due 2025-02-18T00:00:00Z by org/from-publication"
    );
}

#[test]
fn sla_status_on_time_due_soon_breached() {
    let due = ts("2025-03-10T00:00:00Z");
    let week = SignedDuration::from_hours(24 * 7);
    assert_eq!(
        sla_status(due, ts("2025-03-01T00:00:00Z"), week),
        SlaStatus::OnTime
    );
    assert_eq!(
        sla_status(due, ts("2025-03-03T00:00:00Z"), week),
        SlaStatus::DueSoon
    );
    assert_eq!(sla_status(due, due, week), SlaStatus::DueSoon);
    assert_eq!(
        sla_status(due, ts("2025-03-10T00:00:01Z"), week),
        SlaStatus::Breached
    );
    assert_eq!(
        sla_status(due, ts("2025-03-09T23:59:59Z"), SignedDuration::ZERO),
        SlaStatus::OnTime
    );
}

#[test]
fn highest_class_and_earliest_due_win_across_policies_and_ties_go_to_the_first() {
    let case = Case::new("CVE-2025-0001").cvss(v3::S7_5);
    let one = case.under(&["seed-default", "cyber-essentials"]);
    let two = case.under(&["cyber-essentials", "seed-default"]);
    // High under both; the first policy given names the class; the 14 days win either way.
    assert_eq!(
        outcome(&one),
        "high by seed-default/cvss-high | due 2025-03-17T12:00:00Z by cyber-essentials/high-risk-14-days"
    );
    assert_eq!(
        outcome(&two),
        "high by cyber-essentials/high-risk-14-days | due 2025-03-17T12:00:00Z by cyber-essentials/high-risk-14-days"
    );
}

fn org_with_overrides() -> Policy {
    Policy::parse(
        r#"
[policy]
id = "org"
title = "overrides"

[[override]]
vulnerability = "CVE-2025-0001"
class = "low"
reason = "Only reachable from the build network."

[[override]]
vulnerability = "CVE-2025-0001"
host = "host-1"
class = "not_applicable"
reason = "host-1 never loads the vulnerable module (checked 2025-03-11)."

[[override]]
vulnerability = "CVE-2025-0002"
class = "emergency"
reason = "Exploited against us."
"#,
        "org.toml",
    )
    .unwrap()
}

#[test]
fn overrides_take_precedence_and_the_most_specific_wins() {
    let policies = [load("seed-default"), org_with_overrides()];
    let case = Case::new("CVE-2025-0001").cvss(v3::S9_8);
    let a = case.assessed(&policies, NOW);
    assert_eq!(a.class, Some(Class::NotApplicable));
    assert_eq!(a.due_at, None);
    assert_eq!(
        a.class_set_by,
        Some(Decision::Override {
            policy: Some("org".into()),
            vulnerability: "CVE-2025-0001".into(),
            reason: "host-1 never loads the vulnerable module (checked 2025-03-11).".into(),
        })
    );
    // The rules' verdicts stay on record beside the override.
    assert_eq!(a.verdicts[0].class, Some(Class::High));
    assert!(
        a.notes
            .iter()
            .any(|n| n.starts_with("the rules said high; override in org:"))
    );
    // On another host the vulnerability-wide override applies, with the class's deadline.
    let mut elsewhere = case.clone();
    elsewhere.host = Some("host-2".into());
    let a = elsewhere.assessed(&policies, NOW);
    assert_eq!(
        outcome(&a),
        "low by override in org: Only reachable from the build network. | due 2025-06-01T12:00:00Z by seed-default (default deadline of low)"
    );
}

#[test]
fn an_override_raising_the_class_gets_that_class_deadline() {
    let policies = [load("seed-default"), org_with_overrides()];
    let case = Case::new("CVE-2025-0002").cvss(v3::S3_9);
    let a = case.assessed(&policies, NOW);
    assert_eq!(a.class, Some(Class::Emergency));
    assert_eq!(a.due_at, Some(ts("2025-03-03T20:00:00Z")));
}

#[test]
fn an_operators_override_beats_the_files_and_needs_a_reason() {
    assert!(Reason::new("  ").is_err());
    let policies = [load("seed-default"), org_with_overrides()];
    let mut case = Case::new("CVE-2025-0001").cvss(v3::S3_9);
    let mut ov = Override::new(
        "CVE-2025-0001",
        Class::Emergency,
        Reason::new("Seen in our honeypot.").unwrap(),
    );
    ov.due = Some("4h".parse().unwrap());
    case.manual_override = Some(ov);
    case.evaluated_at = Some(ts("2025-03-11T10:00:00Z"));
    let a = case.assessed(&policies, NOW);
    assert_eq!(
        outcome(&a),
        "emergency by override: Seen in our honeypot. | due 2025-03-11T14:00:00Z by override: Seen in our honeypot."
    );
    assert_eq!(a.clock.unwrap().used, Some(ClockStart::Evaluated));
    // An override of another vulnerability is not applied, and that is said.
    let mut other = Case::new("CVE-2025-0003").cvss(v3::S3_9);
    other.manual_override = case.manual_override.clone();
    let a = other.assessed(&policies, NOW);
    assert_eq!(a.class, Some(Class::Low));
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("does not concern this finding"))
    );
}

#[test]
fn explain_shows_every_rule_the_winners_and_the_clock() {
    let case = Case::new("CVE-2021-44228")
        .real_kev()
        .cvss(v3::S9_8)
        .labels("tag=pci-cde");
    let a = case.under(&["pci-dss-4.0.1", "seed-default", "cisa-bod-26-04"]);
    expect![[r#"
        class emergency, set by seed-default/known-exploited
        due 2021-12-24T00:00:00Z, set by cisa-bod-26-04/kev-without-ssvc
        clock: kev_added at 2021-12-10T00:00:00Z
        pci-dss-4.0.1:
           6.3.3-critical: high, due 2025-04-03T12:00:00Z (clock: fix_released at 2025-03-03T12:00:00Z): Critical by the preset's 6.3.1 ranking (CVSS 9.0+, vendor critical, or in KEV): installed within one month of release.
           6.3.3-other-high: high, due none: Not critical, ranked high (CVSS 7.0–8.9 or vendor high): within a time frame the entity sets.
           6.3.3-other-medium: medium, due none: Not critical, ranked medium (CVSS 4.0–6.9 or vendor medium): within a time frame the entity sets.
           6.3.3-other-low: low, due none: Not critical, ranked low: within a time frame the entity sets.
        seed-default:
         * known-exploited: emergency, due 2025-03-03T20:00:00Z (clock: fix_released at 2025-03-03T12:00:00Z): In CISA's KEV catalogue: exploited in the wild, an imminent threat (§6.6.3.1).
           cvss-high: high, due 2025-04-02T12:00:00Z (clock: fix_released at 2025-03-03T12:00:00Z): CVSS base score 7.0 or more: compromise of confidentiality, integrity or availability (§6.6.3.2).
           low: low, due 2025-06-01T12:00:00Z (clock: fix_released at 2025-03-03T12:00:00Z): Everything else: exploitation extremely difficult or impact minimal (§6.6.3.4).
           wormable-on-important-asset: undecided without the asset's criticality
        cisa-bod-26-04:
         * kev-without-ssvc: high, due 2021-12-24T00:00:00Z (clock: kev_added at 2021-12-10T00:00:00Z): In KEV without an SSVC record: 14 days from the KEV date added, the longest deadline of any KEV row. [inf]
           kev-exposed-not-automatable-partial: undecided without SSVC data
           kev-exposed-automatable-partial: undecided without SSVC data
           kev-exposed-not-automatable-total: undecided without SSVC data
           kev-exposed-automatable-total: undecided without SSVC data
        missing: classified without SSVC data (undecided: cisa-bod-26-04/kev-exposed-not-automatable-partial, cisa-bod-26-04/kev-exposed-automatable-partial, cisa-bod-26-04/kev-exposed-not-automatable-total, cisa-bod-26-04/kev-exposed-automatable-total)
        missing: classified without the asset's criticality (undecided: seed-default/wormable-on-important-asset)
        note: the asset's exposure is not labelled: cisa-bod-26-04 counts it as internet
    "#]]
    .assert_eq(&a.explain());
}

#[test]
fn the_policy_fields_of_the_scan_json() {
    let a = Case::new("CVE-2025-0001").cvss(v3::S7_5).under(&[
        "pci-dss-4.0.1",
        "cyber-essentials",
        "seed-default",
    ]);
    expect![[r#"
        {
          "preset": "cyber-essentials",
          "rule": "high-risk-14-days",
          "clock_start": "fix_released",
          "clock_started_at": "2025-03-03T12:00:00Z",
          "class_preset": "cyber-essentials",
          "class_rule": "high-risk-14-days"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&a.summary()).unwrap());
    // The whole assessment serialises too (for the server and `--format json --explain`).
    let full = serde_json::to_value(&a).unwrap();
    assert_eq!(full["class"], "high");
    assert_eq!(full["due_set_by"]["by"], "rule");
    assert_eq!(full["verdicts"][0]["in_scope"], false);
    assert_eq!(full["missing"][0]["fact"], "the asset's criticality");
}
