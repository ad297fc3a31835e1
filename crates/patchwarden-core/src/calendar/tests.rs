use jiff::civil::date;

use super::*;

fn london() -> TimeZone {
    // The rule for Europe/London as a POSIX TZ string: the tests do not depend on the
    // machine's time zone database.
    TimeZone::posix("GMT0BST,M3.5.0/1,M10.5.0").expect("a POSIX TZ string")
}

fn utc(s: &str) -> Timestamp {
    s.parse().expect("a test timestamp")
}

fn starts(w: &Window, from: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut t = utc(from);
    while out.len() < n {
        let Some(s) = w.next_after(t) else { break };
        out.push(s.start.to_string());
        t = s.end;
    }
    out
}

#[test]
fn second_tuesday_including_months_that_start_on_wednesday() {
    // January 2025 starts on a Wednesday: its second Tuesday is the 14th, not the 7th +7.
    let w = Window::new(
        "patch tuesday",
        "FREQ=MONTHLY;BYDAY=2TU",
        date(2025, 1, 1).at(20, 0, 0, 0),
        london(),
        SignedDuration::from_hours(4),
    )
    .unwrap();
    expect_test::expect![[r#"
        [
            "2025-01-14T20:00:00Z",
            "2025-02-11T20:00:00Z",
            "2025-03-11T20:00:00Z",
            "2025-04-08T19:00:00Z",
            "2025-05-13T19:00:00Z",
            "2025-10-14T19:00:00Z",
            "2025-11-11T20:00:00Z",
        ]
    "#]]
    .assert_debug_eq(
        &[
            starts(&w, "2025-01-01T00:00:00Z", 5),
            starts(&w, "2025-10-01T00:00:00Z", 2),
        ]
        .concat(),
    );
}

#[test]
fn a_daily_window_keeps_its_local_time_across_both_daylight_saving_changes() {
    // 01:30 London: on 30 March 2025 that time does not exist (01:00 → 02:00), so the window
    // opens at 02:30 BST = 01:30 UTC; on 26 October it happens twice, and the first (BST) is
    // taken.
    let w = Window::new(
        "nightly",
        "FREQ=DAILY",
        date(2025, 3, 28).at(1, 30, 0, 0),
        london(),
        SignedDuration::from_hours(1),
    )
    .unwrap();
    expect_test::expect![[r#"
        [
            "2025-03-29T01:30:00Z",
            "2025-03-30T01:30:00Z",
            "2025-03-31T00:30:00Z",
            "2025-10-25T00:30:00Z",
            "2025-10-26T00:30:00Z",
            "2025-10-27T01:30:00Z",
        ]
    "#]]
    .assert_debug_eq(
        &[
            starts(&w, "2025-03-29T00:00:00Z", 3),
            starts(&w, "2025-10-25T00:00:00Z", 3),
        ]
        .concat(),
    );
}

#[test]
fn month_ends_and_last_weekdays() {
    let zone = TimeZone::UTC;
    let thirty_first = Window::new(
        "31st",
        "FREQ=MONTHLY;BYMONTHDAY=31",
        date(2025, 1, 1).at(22, 0, 0, 0),
        zone.clone(),
        SignedDuration::from_hours(2),
    )
    .unwrap();
    // Months without a 31st have no window (RFC 5545: invalid dates are skipped).
    expect_test::expect![[r#"
        [
            "2025-01-31T22:00:00Z",
            "2025-03-31T22:00:00Z",
            "2025-05-31T22:00:00Z",
        ]
    "#]]
    .assert_debug_eq(&starts(&thirty_first, "2025-01-01T00:00:00Z", 3));
    let last_day = Window::new(
        "last day",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        date(2024, 1, 1).at(22, 0, 0, 0),
        zone.clone(),
        SignedDuration::from_hours(2),
    )
    .unwrap();
    expect_test::expect![[r#"
        [
            "2024-01-31T22:00:00Z",
            "2024-02-29T22:00:00Z",
            "2024-03-31T22:00:00Z",
        ]
    "#]]
    .assert_debug_eq(&starts(&last_day, "2024-01-01T00:00:00Z", 3));
    let last_friday = Window::new(
        "last friday",
        "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=18,21",
        date(2025, 1, 1).at(0, 0, 0, 0),
        zone,
        SignedDuration::from_hours(1),
    )
    .unwrap();
    expect_test::expect![[r#"
        [
            "2025-01-31T18:00:00Z",
            "2025-01-31T21:00:00Z",
            "2025-02-28T18:00:00Z",
        ]
    "#]]
    .assert_debug_eq(&starts(&last_friday, "2025-01-01T00:00:00Z", 3));
}

#[test]
fn weekly_with_interval_count_and_until() {
    let w = Window::new(
        "fortnightly",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=5",
        date(2025, 1, 2).at(20, 0, 0, 0), // a Thursday
        TimeZone::UTC,
        SignedDuration::from_hours(2),
    )
    .unwrap();
    expect_test::expect![[r#"
        [
            "2025-01-02T20:00:00Z",
            "2025-01-14T20:00:00Z",
            "2025-01-16T20:00:00Z",
            "2025-01-28T20:00:00Z",
            "2025-01-30T20:00:00Z",
        ]
    "#]]
    .assert_debug_eq(&starts(&w, "2025-01-01T00:00:00Z", 10));
    let until = Window::new(
        "until",
        "FREQ=DAILY;UNTIL=20250103T200000Z",
        date(2025, 1, 1).at(20, 0, 0, 0),
        TimeZone::UTC,
        SignedDuration::from_hours(1),
    )
    .unwrap();
    assert_eq!(starts(&until, "2025-01-01T00:00:00Z", 10).len(), 3);
    // Far from DTSTART the walk starts near the question, not at the beginning.
    let daily = Window::new(
        "old daily",
        "FREQ=DAILY",
        date(1990, 1, 1).at(2, 0, 0, 0),
        london(),
        SignedDuration::from_hours(1),
    )
    .unwrap();
    assert_eq!(
        starts(&daily, "2026-11-26T12:00:00Z", 1),
        ["2026-11-27T02:00:00Z"]
    );
    assert!(daily.open_at(utc("2026-11-27T02:30:00Z")).is_some());
    assert!(daily.open_at(utc("2026-11-27T03:00:00Z")).is_none());
}

#[test]
fn rules_read_differently_than_meant_are_refused() {
    let errors: Vec<String> = [
        "FREQ=YEARLY",
        "FREQ=MONTHLY;BYSETPOS=-1",
        "BYDAY=MO",
        "FREQ=WEEKLY;BYDAY=2TU",
        "FREQ=DAILY;COUNT=3;UNTIL=20250101",
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=DAILY;FREQ=WEEKLY",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;UNTIL=2025-01-01",
        "FREQ",
    ]
    .iter()
    .map(|r| r.parse::<Rule>().unwrap_err().to_string())
    .collect();
    expect_test::expect![[r#"
        [
            "recurrence rule: FREQ=YEARLY is not supported for maintenance windows (DAILY, WEEKLY or MONTHLY)",
            "recurrence rule: BYSETPOS is not supported (FREQ, INTERVAL, BYDAY, BYMONTHDAY, BYHOUR, BYMINUTE, COUNT, UNTIL, WKST)",
            "recurrence rule: FREQ is required",
            "recurrence rule: BYDAY with an ordinal (such as 2TU) needs FREQ=MONTHLY",
            "recurrence rule: COUNT and UNTIL together (RFC 5545 allows one)",
            "recurrence rule: BYMONTHDAY: cannot read \"32\"",
            "recurrence rule: FREQ appears twice",
            "recurrence rule: INTERVAL=0: 1 to 1000",
            "recurrence rule: UNTIL=2025-01-01: a UTC time such as 20261231T235959Z",
            "recurrence rule: \"FREQ\" is not NAME=VALUE",
        ]
    "#]]
    .assert_debug_eq(&errors);
    assert!(
        Window::new(
            "zero",
            "FREQ=DAILY",
            date(2025, 1, 1).at(0, 0, 0, 0),
            TimeZone::UTC,
            SignedDuration::ZERO
        )
        .is_err()
    );
}

#[test]
fn freezes_push_normal_changes_to_the_first_window_after_them_but_not_emergencies() {
    let calendar = Calendar {
        windows: vec![
            Window::new(
                "weekly",
                "FREQ=WEEKLY;BYDAY=TU",
                date(2025, 1, 7).at(20, 0, 0, 0),
                london(),
                SignedDuration::from_hours(4),
            )
            .unwrap(),
        ],
        freezes: vec![
            Freeze::new(
                "year end",
                utc("2025-12-19T00:00:00Z"),
                utc("2026-01-05T00:00:00Z"),
            )
            .unwrap(),
        ],
    };
    let during = utc("2025-12-23T21:00:00Z"); // a Tuesday window inside the freeze
    let m = calendar.moment(during);
    assert!(m.in_window && m.in_freeze);
    let next = calendar.next_opportunity(during, false).unwrap();
    assert_eq!(next.start, utc("2026-01-06T20:00:00Z"));
    assert_eq!(
        calendar.next_opportunity(during, true).unwrap().start,
        during
    );
    // A High finding due on 1 January will breach: the first window after the freeze is
    // later. An emergency meets an 8-hour deadline.
    assert!(!calendar.meets(during, utc("2026-01-01T00:00:00Z"), false));
    assert!(calendar.meets(during, utc("2026-01-07T00:00:00Z"), false));
    assert!(calendar.meets(during, utc("2025-12-24T05:00:00Z"), true));
    // A window that a freeze starts inside is cut where the freeze starts.
    let cut = Calendar {
        freezes: vec![
            Freeze::new(
                "midnight",
                utc("2025-12-16T22:00:00Z"),
                utc("2025-12-17T06:00:00Z"),
            )
            .unwrap(),
        ],
        ..calendar.clone()
    };
    let s = cut
        .next_opportunity(utc("2025-12-16T12:00:00Z"), false)
        .unwrap();
    assert_eq!(
        (s.start, s.end),
        (utc("2025-12-16T20:00:00Z"), utc("2025-12-16T22:00:00Z"))
    );
    // No windows: never, and the answer says so rather than guessing.
    assert_eq!(Calendar::default().next_opportunity(during, false), None);
}

/// The change rules and the calendar together: every half hour over two months that hold a
/// freeze and both daylight saving changes, a tested normal change may deploy exactly when the
/// moment is inside a window and outside the freeze, and an emergency always.
#[test]
fn changes_deploy_only_when_the_calendar_allows() {
    use crate::change::{
        Capacities, Change, ChangeActor, ChangeEvent, ChangeKind, ChangeState, Testing, apply,
    };
    let calendar = Calendar {
        windows: vec![
            Window::new(
                "sunday night",
                "FREQ=WEEKLY;BYDAY=SU",
                date(2025, 1, 5).at(1, 0, 0, 0),
                london(),
                SignedDuration::from_hours(3),
            )
            .unwrap(),
        ],
        freezes: vec![
            Freeze::new(
                "audit",
                utc("2025-03-20T00:00:00Z"),
                utc("2025-03-27T00:00:00Z"),
            )
            .unwrap(),
        ],
    };
    let tested = |kind| {
        let mut c = Change::draft(kind, "alice", Testing::Required);
        c.state = ChangeState::Tested;
        let signed = Some(crate::change::Signed {
            by: "x".into(),
            at: Timestamp::UNIX_EPOCH,
        });
        c.approved = signed.clone();
        c.authorised = signed.clone();
        c.tested = signed;
        c
    };
    let officer = ChangeActor::person(
        "dave",
        Capacities {
            implement: true,
            ..Capacities::default()
        },
    );
    let (normal, emergency) = (tested(ChangeKind::Normal), tested(ChangeKind::Emergency));
    let mut t = utc("2025-03-01T00:00:00Z");
    let (mut allowed, mut windows_seen) = (0, 0);
    while t < utc("2025-11-01T00:00:00Z") {
        let m = calendar.moment(t);
        windows_seen += usize::from(m.in_window);
        let ok = apply(&normal, &ChangeEvent::Deploy, &officer, m).is_ok();
        assert_eq!(ok, m.in_window && !m.in_freeze, "at {t}");
        allowed += usize::from(ok);
        assert!(apply(&emergency, &ChangeEvent::Deploy, &officer, m).is_ok());
        t = t.checked_add(SignedDuration::from_mins(30)).unwrap();
    }
    // 35 Sundays, one inside the freeze, six half hours each.
    assert_eq!(windows_seen, 35 * 6);
    assert_eq!(allowed, 34 * 6);
}

#[test]
fn a_template_follows_its_anchor_the_test_ring_the_next_day_and_the_broad_rings_a_week_later() {
    // Seed 001 step 9: sync on the second Tuesday at 20:00 (London), test ring the next day,
    // broad rings seven days after the test ring verified.
    let anchor = Window::new(
        "patch tuesday sync",
        "FREQ=MONTHLY;BYDAY=2TU",
        date(2025, 1, 1).at(20, 0, 0, 0),
        london(),
        SignedDuration::from_hours(1),
    )
    .unwrap();
    let t = Template::new(
        "monthly",
        anchor,
        SignedDuration::from_hours(24),
        SignedDuration::from_hours(24 * 7),
    )
    .unwrap();
    // Ready on 1 April 2025: the anchor is 8 April (BST), the test ring from 9 April.
    let p = t.plan(utc("2025-04-01T00:00:00Z")).unwrap();
    assert_eq!(p.anchor, utc("2025-04-08T19:00:00Z"));
    assert_eq!(p.test_not_before, utc("2025-04-09T19:00:00Z"));
    assert_eq!(p.broad_after_test, SignedDuration::from_hours(24 * 7));
    // Ready the evening after the anchor's test time has passed: the next month's anchor.
    let p = t.plan(utc("2025-04-09T20:00:00Z")).unwrap();
    assert_eq!(p.anchor, utc("2025-05-13T19:00:00Z"));
    // Ready between the anchor and its test time: that anchor still serves.
    let p = t.plan(utc("2025-04-09T10:00:00Z")).unwrap();
    assert_eq!(p.anchor, utc("2025-04-08T19:00:00Z"));
    // Offsets out of bounds are refused.
    let anchor = t.anchor.clone();
    assert!(
        Template::new(
            "x",
            anchor,
            SignedDuration::from_hours(-1),
            SignedDuration::ZERO
        )
        .is_err()
    );
}
