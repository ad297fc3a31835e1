use super::*;
use crate::change::Signed;
use crate::exception::{Control, ControlKind, ExceptionRequest, Justification};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn signed(by: &str, at: &str) -> Option<Signed> {
    Some(Signed {
        by: by.into(),
        at: t(at),
    })
}

fn install(host: &str, outcome: InstallOutcome, at: &str) -> InstallRecord {
    InstallRecord {
        host: host.into(),
        packages: vec!["openssl 3.0.15".into()],
        outcome,
        at: Some(t(at)),
        rolled_back: false,
    }
}

/// A normal change that followed the process: submitted in `submitted`, tested in the test ring
/// on day 10, broad ring on day 11, closed at `closed`.
fn change(number: &str, submitted: &str, closed: &str) -> ChangeRecord {
    let mut c = Change::draft(ChangeKind::Normal, "olive", Testing::Required);
    c.state = ChangeState::Closed;
    c.justification = "CVE on the web tier".into();
    c.rollback_plan = "reinstall".into();
    c.submitted = signed("olive", submitted);
    c.approved = signed("amos", submitted);
    c.authorised = signed("dora", submitted);
    c.tested = signed("system", "2026-10-10T03:00:00Z");
    c.closed = signed("olive", closed);
    ChangeRecord {
        number: number.into(),
        title: "OpenSSL security update".into(),
        systems: vec!["web".into()],
        patches: vec!["openssl 3.0.15".into()],
        patch_packages: vec!["openssl".into()],
        risk: "medium".into(),
        priority: "high".into(),
        restart_order: vec![],
        health_checks: 0,
        reboot_allowed: false,
        change: c,
        window: Some((t("2026-10-10T00:00:00Z"), t("2026-10-12T00:00:00Z"))),
        rings: vec![
            RingRecord {
                name: "test".into(),
                test: true,
                started_at: Some(t("2026-10-10T01:00:00Z")),
                verified_at: Some(t("2026-10-10T03:00:00Z")),
                installs: vec![install(
                    "web-test-1",
                    InstallOutcome::Succeeded,
                    "2026-10-10T02:00:00Z",
                )],
            },
            RingRecord {
                name: "broad".into(),
                test: false,
                started_at: Some(t("2026-10-11T01:00:00Z")),
                verified_at: Some(t("2026-10-11T03:00:00Z")),
                installs: vec![
                    install("web-1", InstallOutcome::Succeeded, "2026-10-11T02:00:00Z"),
                    install("web-2", InstallOutcome::Succeeded, "2026-10-11T02:00:00Z"),
                ],
            },
        ],
        halted: None,
        created_at: t(submitted),
        updated_at: t(closed),
    }
}

fn finding(host: &str, class: Class, seen: &str, due: &str, closed: Option<&str>) -> FindingRecord {
    FindingRecord {
        host: host.into(),
        group: "web".into(),
        vulnerability: "CVE-2024-5535".into(),
        package: "openssl".into(),
        class: Some(class),
        policy: Some("seed-000".into()),
        rule: Some("high-cvss".into()),
        first_seen: t(seen),
        available_at: Some(t(seen)),
        due_at: Some(t(due)),
        closed_at: closed.map(t),
        fixed_version: closed.map(|_| "3.0.15".into()),
        exceptions: vec![],
    }
}

const OCT: &str = "2026-10";
fn oct() -> Month {
    Month::parse(OCT).unwrap()
}
fn now() -> Timestamp {
    t("2026-11-05T00:00:00Z")
}

#[test]
fn months_parse_and_bound() {
    let m = oct();
    assert_eq!(m.to_string(), "2026-10");
    assert_eq!(m.start(), t("2026-10-01T00:00:00Z"));
    assert_eq!(m.end(), t("2026-11-01T00:00:00Z"));
    assert_eq!(
        Month::parse("2026-12").unwrap().end(),
        t("2027-01-01T00:00:00Z")
    );
    assert_eq!(m.previous().to_string(), "2026-09");
    assert_eq!(
        Month::parse("2026-01").unwrap().previous().to_string(),
        "2025-12"
    );
    assert_eq!(m.title(), "October 2026");
    assert!(m.contains(t("2026-10-31T23:59:59Z")));
    assert!(!m.contains(t("2026-11-01T00:00:00Z")));
    for bad in [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-10",
        "2026/10",
        "２０２６-10",
        "",
        "2026-10x",
        "1969-12",
        "+026-10",
        "éé-ab",
        "2026-１",
    ] {
        assert!(Month::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(Month::of(t("2026-02-28T23:00:00Z")).to_string(), "2026-02");
}

#[test]
fn an_empty_month_reports_nothing_and_divides_by_nothing() {
    let r = monthly(oct(), &MonthRecords::default(), now());
    assert!(r.rows.is_empty());
    assert_eq!(r.kpis.breaches, 0);
    assert_eq!(r.kpis.mean_time_to_patch, None);
    assert_eq!(r.kpis.by_class.len(), 4);
    assert!(
        r.kpis
            .by_class
            .iter()
            .all(|l| l.rate().is_none() && l.rate_text() == "n/a")
    );
    assert_eq!(r.kpis.install_success_rate(), "n/a");
    assert_eq!(monthly_csv(&r).lines().count(), 1);
}

#[test]
fn a_change_is_reported_in_the_month_it_closed_only() {
    let records = MonthRecords {
        // Submitted in September, closed in October.
        changes: vec![
            change(
                "PCR-2026-0001",
                "2026-09-28T10:00:00Z",
                "2026-10-12T10:00:00Z",
            ),
            // Closed in November: not October's.
            change(
                "PCR-2026-0002",
                "2026-10-20T10:00:00Z",
                "2026-11-02T10:00:00Z",
            ),
        ],
        ..Default::default()
    };
    let oct_report = monthly(oct(), &records, now());
    let numbers: Vec<&str> = oct_report.rows.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(numbers, ["PCR-2026-0001"]);
    let sep = monthly(oct().previous(), &records, now());
    assert!(sep.rows.is_empty());
    let nov = monthly(oct().next(), &records, now());
    assert_eq!(nov.rows.len(), 1);
    assert_eq!(nov.rows[0].number, "PCR-2026-0002");

    let row = &oct_report.rows[0];
    assert!(row.process_followed, "{:?}", row.process_notes);
    assert_eq!(row.followed_text(), "Yes");
    let doc = row.documentation_text();
    assert!(doc.contains("approval by amos on 2026-09-28"), "{doc}");
    assert!(doc.contains("authorisation by dora"), "{doc}");
    assert!(doc.contains("testing evidence in ring test"), "{doc}");
    assert!(
        doc.contains("3 hosts in 2 rings, 3 succeeded, 0 failed"),
        "{doc}"
    );
    assert_eq!(row.exceptions_text(), "None");
    assert_eq!(oct_report.kpis.installs_succeeded, 3);
    assert_eq!(oct_report.kpis.changes_followed, 1);
}

#[test]
fn broken_process_says_no_and_why() {
    // Approved and authorised by one person, broad ring before the test ring was verified,
    // and a ring outside the window.
    let mut c = change(
        "PCR-2026-0003",
        "2026-10-01T10:00:00Z",
        "2026-10-12T10:00:00Z",
    );
    c.change.authorised = signed("amos", "2026-10-01T11:00:00Z");
    c.rings[1].started_at = Some(t("2026-10-10T02:00:00Z"));
    c.window = Some((t("2026-10-10T01:30:00Z"), t("2026-10-12T00:00:00Z")));
    let r = monthly(
        oct(),
        &MonthRecords {
            changes: vec![c],
            ..Default::default()
        },
        now(),
    );
    let row = &r.rows[0];
    assert!(!row.process_followed);
    let text = row.followed_text();
    assert!(text.starts_with("No: "), "{text}");
    assert!(
        text.contains("approved and authorised by the same person"),
        "{text}"
    );
    assert!(text.contains("before testing passed"), "{text}");
    assert!(
        text.contains("ring test started 2026-10-10 01:00 UTC outside its window"),
        "{text}"
    );

    // An emergency may deploy before testing and outside a window, and says so.
    let mut e = change(
        "PCR-2026-0004",
        "2026-10-01T10:00:00Z",
        "2026-10-12T10:00:00Z",
    );
    e.change.kind = ChangeKind::Emergency;
    e.window = None;
    e.rings[1].started_at = Some(t("2026-10-10T02:00:00Z"));
    let r = monthly(
        oct(),
        &MonthRecords {
            changes: vec![e.clone()],
            ..Default::default()
        },
        now(),
    );
    assert!(r.rows[0].process_followed, "{:?}", r.rows[0].process_notes);
    assert!(
        r.rows[0]
            .followed_text()
            .contains("emergency: tested after deployment")
    );

    // Without its testing recorded, it did not follow the process.
    e.change.tested = None;
    let r = monthly(
        oct(),
        &MonthRecords {
            changes: vec![e],
            ..Default::default()
        },
        now(),
    );
    assert_eq!(r.rows[0].followed_text(), "No: no testing recorded");
}

#[test]
fn failures_rollbacks_and_resubmissions_are_counted() {
    let mut failed = change(
        "PCR-2026-0005",
        "2026-10-01T10:00:00Z",
        "2026-10-12T10:00:00Z",
    );
    failed.change.state = ChangeState::RolledBack;
    failed.change.closed = None;
    failed.change.outcome_reason = Some("openssl broke nginx".into());
    failed.updated_at = t("2026-10-11T05:00:00Z");
    failed.rings[1].installs[0].outcome = InstallOutcome::Failed;
    failed.rings[1].installs[0].rolled_back = true;
    failed.rings[1].installs[1].outcome = InstallOutcome::Failed;
    // A later change installs it again on web-1 only.
    let mut retry = change(
        "PCR-2026-0006",
        "2026-10-13T10:00:00Z",
        "2026-10-20T10:00:00Z",
    );
    retry.rings[0].started_at = Some(t("2026-10-14T01:00:00Z"));
    retry.rings[1].started_at = Some(t("2026-10-15T01:00:00Z"));
    retry.rings[1].installs.truncate(1);
    let r = monthly(
        oct(),
        &MonthRecords {
            changes: vec![failed, retry],
            ..Default::default()
        },
        now(),
    );
    assert_eq!(r.rows.len(), 2);
    let row = &r.rows[0];
    let noted = row.exceptions_text();
    assert!(noted.contains("install failed on web-1, web-2"), "{noted}");
    assert!(noted.contains("rolled back on web-1"), "{noted}");
    assert!(
        noted.contains("rolled back: openssl broke nginx"),
        "{noted}"
    );
    // Its broad ring failed after tests passed: the process itself was followed.
    assert!(row.process_followed, "{:?}", row.process_notes);
    assert_eq!(r.kpis.installs_failed, 2);
    // The failed change's test host, and the retry's test host and web-1.
    assert_eq!(r.kpis.installs_succeeded, 1 + 2);
    assert_eq!(r.kpis.failed_resubmitted, 1);
    assert_eq!(r.kpis.failed_not_resubmitted, ["PCR-2026-0005 on web-2"]);
    assert_eq!(r.kpis.install_success_rate(), "60.0%");
}

#[test]
fn a_test_ring_that_failed_and_stopped_the_rollout_followed_the_process() {
    let mut c = change(
        "PCR-2026-0007",
        "2026-10-01T10:00:00Z",
        "2026-10-12T10:00:00Z",
    );
    c.change.state = ChangeState::RolledBack;
    c.change.closed = None;
    c.change.tested = None;
    c.rings[0].installs[0].outcome = InstallOutcome::Failed;
    c.rings[0].verified_at = None;
    c.rings[1].started_at = None;
    c.rings[1].verified_at = None;
    c.rings[1].installs.clear();
    let r = monthly(
        oct(),
        &MonthRecords {
            changes: vec![c.clone()],
            ..Default::default()
        },
        now(),
    );
    assert_eq!(
        r.rows[0].followed_text(),
        "Yes: tests failed in the test ring; nothing was released broadly"
    );
    // Had the broad ring started anyway, it would not have.
    c.rings[1].started_at = Some(t("2026-10-11T01:00:00Z"));
    let r = monthly(
        oct(),
        &MonthRecords {
            changes: vec![c],
            ..Default::default()
        },
        now(),
    );
    assert_eq!(
        r.rows[0].followed_text(),
        "No: broad rings started without passed tests"
    );
}

#[test]
fn findings_count_against_their_deadlines() {
    let mut excepted = finding(
        "web-3",
        Class::High,
        "2026-09-01T00:00:00Z",
        "2026-10-05T00:00:00Z",
        None,
    );
    excepted.exceptions = vec![ExceptionSpan {
        number: "EXC-2026-0001".into(),
        from: t("2026-09-20T00:00:00Z"),
        until: t("2026-12-31T00:00:00Z"),
    }];
    let findings = vec![
        // On time: closed in October before its due date, 4 days after detection.
        finding(
            "web-1",
            Class::High,
            "2026-10-01T00:00:00Z",
            "2026-10-15T00:00:00Z",
            Some("2026-10-05T00:00:00Z"),
        ),
        // Closed late: due 10 October, closed 20 October, 19 days after detection.
        finding(
            "web-2",
            Class::High,
            "2026-10-01T00:00:00Z",
            "2026-10-10T00:00:00Z",
            Some("2026-10-20T00:00:00Z"),
        ),
        // Past due at the end of October, still open.
        finding(
            "web-4",
            Class::Emergency,
            "2026-10-25T00:00:00Z",
            "2026-10-26T00:00:00Z",
            None,
        ),
        // Past due at the end of October, closed in November: past due in October's report.
        finding(
            "web-5",
            Class::Medium,
            "2026-09-01T00:00:00Z",
            "2026-10-01T00:00:00Z",
            Some("2026-11-03T00:00:00Z"),
        ),
        // Not yet due: not judged.
        finding(
            "web-6",
            Class::Low,
            "2026-10-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            None,
        ),
        // Closed in September: not October's.
        finding(
            "web-7",
            Class::Low,
            "2026-08-01T00:00:00Z",
            "2026-09-01T00:00:00Z",
            Some("2026-09-02T00:00:00Z"),
        ),
        excepted,
    ];
    let r = monthly(
        oct(),
        &MonthRecords {
            findings,
            ..Default::default()
        },
        now(),
    );
    let line = |k: &str| r.kpis.by_class.iter().find(|l| l.key == k).unwrap().clone();
    let high = line("High");
    assert_eq!(
        (high.on_time, high.late, high.past_due, high.excepted),
        (1, 1, 0, 1)
    );
    assert_eq!(high.rate_text(), "50.0%");
    let em = line("Emergency");
    assert_eq!((em.on_time, em.late, em.past_due), (0, 0, 1));
    assert_eq!(em.rate_text(), "0.0%");
    assert_eq!(line("Medium").past_due, 1);
    assert_eq!(line("Low").rate(), None);
    assert_eq!(r.kpis.breaches, 3);
    assert_eq!(r.kpis.findings_closed, 2);
    // (4 d + 19 d) / 2.
    assert_eq!(
        r.kpis.mean_time_to_patch,
        Some(SignedDuration::from_hours(23 * 12))
    );
    assert_eq!(days(r.kpis.mean_time_to_patch), "11.5 d");
    let past: Vec<&str> = r.past_due.iter().map(|p| p.host.as_str()).collect();
    assert_eq!(past, ["web-5", "web-4"]);
    assert_eq!(r.past_due[1].overdue, SignedDuration::from_hours(6 * 24));
    assert_eq!(r.sla_by_rule.len(), 1);
    assert_eq!(r.sla_by_rule[0].key, "seed-000 / high-cvss");
    assert_eq!(r.sla_by_rule[0].breaches(), 3);
    assert_eq!(r.install_vs_release.len(), 1);
    let p = &r.install_vs_release[0];
    assert_eq!((p.hosts, p.late), (2, 1));
    assert_eq!(p.longest, Some(SignedDuration::from_hours(19 * 24)));
}

#[test]
fn a_month_in_progress_is_judged_up_to_now() {
    // Due on the 20th, open: past due when the report is made on the 25th, not on the 15th.
    let f = finding(
        "web-1",
        Class::High,
        "2026-10-01T00:00:00Z",
        "2026-10-20T00:00:00Z",
        None,
    );
    let records = MonthRecords {
        findings: vec![f],
        ..Default::default()
    };
    assert_eq!(
        monthly(oct(), &records, t("2026-10-15T00:00:00Z"))
            .kpis
            .breaches,
        0
    );
    assert_eq!(
        monthly(oct(), &records, t("2026-10-25T00:00:00Z"))
            .kpis
            .breaches,
        1
    );
}

#[test]
fn exceptions_are_listed_with_approver_controls_and_expiry_and_noted_on_changes() {
    let request = ExceptionRequest {
        justification: Justification::NoVendorPatch,
        explanation: "vendor has no fix".into(),
        controls: vec![Control {
            kind: ControlKind::NetworkSegmentation,
            description: "VLAN 40".into(),
        }],
        protected_data: false,
        requester: "olive".into(),
        requested_at: t("2026-09-01T00:00:00Z"),
        expires_at: t("2026-12-01T00:00:00Z"),
    };
    let approved = Exception {
        request: request.clone(),
        data_owner_ack: None,
        state: ExceptionState::Approved {
            by: "sue".into(),
            at: t("2026-09-02T00:00:00Z"),
        },
    };
    let old = Exception {
        request: ExceptionRequest {
            expires_at: t("2026-09-30T00:00:00Z"),
            ..request.clone()
        },
        ..approved.clone()
    };
    let span = ExceptionSpan::of("EXC-2026-0001", &approved).unwrap();
    let mut f = finding(
        "web-1",
        Class::High,
        "2026-10-01T00:00:00Z",
        "2026-10-15T00:00:00Z",
        Some("2026-10-11T02:00:00Z"),
    );
    f.exceptions = vec![span];
    let records = MonthRecords {
        changes: vec![change(
            "PCR-2026-0001",
            "2026-10-01T10:00:00Z",
            "2026-10-12T10:00:00Z",
        )],
        findings: vec![f],
        exceptions: vec![
            ExceptionRecord {
                number: "EXC-2026-0001".into(),
                scope: "host web-1".into(),
                exception: approved,
            },
            // Expired before October: not listed.
            ExceptionRecord {
                number: "EXC-2026-0002".into(),
                scope: "host web-2".into(),
                exception: old,
            },
        ],
        hosts: vec![],
    };
    let r = monthly(oct(), &records, now());
    assert_eq!(r.exceptions.len(), 1);
    let e = &r.exceptions[0];
    assert_eq!(
        (e.approver.as_str(), e.expires_at),
        ("sue", t("2026-12-01T00:00:00Z"))
    );
    assert_eq!(e.controls, ["network segmentation: VLAN 40"]);
    assert!(
        r.rows[0]
            .exceptions_text()
            .contains("exception EXC-2026-0001 in force for openssl on web-1"),
        "{}",
        r.rows[0].exceptions_text()
    );
}

#[test]
fn csv_quotes_and_neutralises() {
    assert_eq!(
        csv_line(&["a", "b,c", "say \"hi\"", "two\nlines"]),
        "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
    );
    assert_eq!(
        csv_line(&["=1+1", "+x", "-y", "@z", "ok"]),
        "'=1+1,'+x,'-y,'@z,ok\r\n"
    );
    assert_eq!(csv_line(&["=a,b"]), "\"'=a,b\"\r\n");
    let mut c = change(
        "PCR-2026-0001",
        "2026-10-01T10:00:00Z",
        "2026-10-12T10:00:00Z",
    );
    c.title = "=HYPERLINK(\"http://evil\")".into();
    let r = monthly(
        oct(),
        &MonthRecords {
            changes: vec![c],
            ..Default::default()
        },
        now(),
    );
    let csv = monthly_csv(&r);
    assert!(
        csv.starts_with("Patch Request Number,Details of Change,"),
        "{csv}"
    );
    // The details start with the title: neutralised and quoted.
    assert!(csv.contains(",\"'=HYPERLINK(\"\"http://evil\"\")"), "{csv}");
}

#[test]
fn the_control_form_has_every_field_and_signature() {
    let c = change(
        "PCR-2026-0001",
        "2026-10-01T10:00:00Z",
        "2026-10-12T10:00:00Z",
    );
    let form = control_form(&c);
    let labels: Vec<&str> = form
        .sections
        .iter()
        .flat_map(|s| s.fields.iter().map(|(l, _)| l.as_str()))
        .collect();
    for want in [
        "System Affected",
        "Patch Request No",
        "Risk Rating",
        "Justification",
        "Criticality",
        "Testing Required",
        "Rollout",
        "Rollback plan",
    ] {
        assert!(labels.contains(&want), "{want} missing from {labels:?}");
    }
    let sigs: Vec<(&str, &str)> = form
        .signatures
        .iter()
        .map(|s| (s.role.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        sigs,
        [
            ("Requested by", "olive"),
            ("Approved by", "amos"),
            ("Authorised by", "dora"),
            ("Tested by (where applicable)", "system"),
            ("Patch Implemented by", "olive")
        ]
    );
}
