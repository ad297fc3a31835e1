//! The legacy `cisa-bod-22-01` preset: every KEV vulnerability is due by the catalogue's due
//! date (the end of that day, UTC), counted from the day CISA added it; the directive says
//! nothing of other vulnerabilities.

mod policy_support;

use patchwarden_core::policy::{ClockStart, Lookup, PolicyStatus};
use policy_support::{Case, load, outcome, ts, v3};

const BOD: &[&str] = &["cisa-bod-22-01"];

#[test]
fn kev_due_date() {
    // Real catalogue entries: Log4Shell (added 2021-12-10, due 2021-12-24) and Heartbleed, a
    // pre-2021 CVE added on 2022-05-04 with three weeks (due 2022-05-25).
    for (cve, added, due) in [
        (
            "CVE-2021-44228",
            "2021-12-10T00:00:00Z",
            "2021-12-25T00:00:00Z",
        ),
        (
            "CVE-2014-0160",
            "2022-05-04T00:00:00Z",
            "2022-05-26T00:00:00Z",
        ),
    ] {
        let a = Case::new(cve).real_kev().cvss(v3::S7_5).under(BOD);
        assert_eq!(
            outcome(&a),
            format!(
                "high by cisa-bod-22-01/kev-due-date | due {due} by cisa-bod-22-01/kev-due-date"
            )
        );
        let clock = a.clock.unwrap();
        assert_eq!(
            (clock.used, clock.started_at),
            (Some(ClockStart::KevAdded), Some(ts(added)))
        );
    }
}

#[test]
fn not_in_kev_gets_no_verdict() {
    let a = Case::new("CVE-2025-0001").cvss(v3::S9_8).under(BOD);
    assert_eq!(outcome(&a), "- by - | due - by -");
    assert!(a.missing.is_empty());
    let mut unknown = Case::new("CVE-2025-0001");
    unknown.kev = Lookup::NotLoaded;
    assert_eq!(
        unknown.under(BOD).missing_sentences(),
        ["classified without the KEV catalogue (undecided: cisa-bod-22-01/kev-due-date)"]
    );
}

#[test]
fn it_is_marked_revoked() {
    assert_eq!(load("cisa-bod-22-01").status, PolicyStatus::Revoked);
}
