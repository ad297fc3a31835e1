//! How long the monthly compliance report takes to compute and render for a realistic month:
//! 200 changes (each a test ring of 2 hosts and a broad ring of 48, so 10,000 installs, 2% of
//! them failed), 10,000 findings on 1,000 hosts (classes mixed; 88% fixed on time, 7% late,
//! 5% still past due at the month's end), 30 exceptions, 1,000 hosts with their scan counts.
//! It measures `patchwarden_core::report::monthly` (the numbers) and the two renderings
//! the server answers with: the HTML page (askama) and the PDF (pdf-writer). Reading the
//! records from the store is not part of it.
//!
//! `cargo bench -p patchwarden-server --bench reports`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use patchwarden_core::change::{Change, ChangeKind, ChangeState, Signed, Testing};
use patchwarden_core::exception::{
    Control, ControlKind, Exception, ExceptionRequest, ExceptionState, Justification,
};
use patchwarden_core::policy::Class;
use patchwarden_core::report::{
    ChangeRecord, ExceptionRecord, ExceptionSpan, FindingRecord, HostRecord, InstallOutcome,
    InstallRecord, Month, MonthRecords, RingRecord, monthly,
};

fn at(month: Month, hours: i64) -> Timestamp {
    month.start() + SignedDuration::from_hours(hours)
}

fn records(month: Month) -> MonthRecords {
    let host = |i: usize| format!("host-{i:04}");
    let signed = |by: &str, t: Timestamp| {
        Some(Signed {
            by: by.into(),
            at: t,
        })
    };
    let mut changes = Vec::new();
    for c in 0..200usize {
        let start = at(month, (c as i64 * 3) % 600);
        let mut change = Change::draft(ChangeKind::Normal, "olive", Testing::Required);
        change.state = ChangeState::Closed;
        change.justification = "Security update for the fleet".into();
        change.rollback_plan = "reinstall the previous version from the agent's cache".into();
        change.submitted = signed("olive", start);
        change.approved = signed("amos", start + SignedDuration::from_hours(1));
        change.authorised = signed("dora", start + SignedDuration::from_hours(2));
        change.tested = signed("system", start + SignedDuration::from_hours(5));
        change.closed = signed("olive", start + SignedDuration::from_hours(30));
        let install = |h: usize, n: usize| InstallRecord {
            host: host(h),
            packages: vec![format!("pkg{c} 1.{c}")],
            outcome: if n % 50 == 49 {
                InstallOutcome::Failed
            } else {
                InstallOutcome::Succeeded
            },
            at: Some(start + SignedDuration::from_hours(6)),
            rolled_back: false,
        };
        let base = (c * 50) % 1000;
        changes.push(ChangeRecord {
            number: format!("PCR-2026-{:04}", c + 1),
            title: format!("Security update of pkg{c}"),
            systems: vec!["group web".into(), "group db".into()],
            patches: vec![format!("pkg{c} 1.{c}")],
            patch_packages: vec![format!("pkg{c}")],
            risk: "medium".into(),
            priority: "high".into(),
            restart_order: vec!["nginx.service".into()],
            health_checks: 1,
            reboot_allowed: false,
            change,
            window: Some((
                start + SignedDuration::from_hours(3),
                start + SignedDuration::from_hours(27),
            )),
            rings: vec![
                RingRecord {
                    name: "test".into(),
                    test: true,
                    started_at: Some(start + SignedDuration::from_hours(3)),
                    verified_at: Some(start + SignedDuration::from_hours(5)),
                    installs: (0..2).map(|n| install(base + n, n)).collect(),
                },
                RingRecord {
                    name: "broad".into(),
                    test: false,
                    started_at: Some(start + SignedDuration::from_hours(6)),
                    verified_at: Some(start + SignedDuration::from_hours(8)),
                    installs: (2..50).map(|n| install(base + n, n)).collect(),
                },
            ],
            halted: None,
            created_at: start,
            updated_at: start + SignedDuration::from_hours(30),
        });
    }
    let classes = [Class::Emergency, Class::High, Class::Medium, Class::Low];
    let findings = (0..10_000usize)
        .map(|i| {
            let seen = at(month, (i as i64 % 500) - 100);
            let due = seen + SignedDuration::from_hours(24 * (1 + (i as i64 % 30)));
            let closed = match i % 100 {
                0..=87 => Some(due - SignedDuration::from_hours(1)),
                88..=94 => Some(due + SignedDuration::from_hours(5)),
                _ => None,
            }
            .map(|t| t.min(month.end() - SignedDuration::from_hours(1)));
            FindingRecord {
                host: host(i % 1000),
                group: if i % 2 == 0 {
                    "web".into()
                } else {
                    "db".into()
                },
                vulnerability: format!("CVE-2026-{:05}", i % 3000),
                package: format!("pkg{}", i % 200),
                class: Some(classes[i % 4]),
                policy: Some("seed-000".into()),
                rule: Some(format!("rule-{}", i % 12)),
                first_seen: seen,
                available_at: Some(seen - SignedDuration::from_hours(12)),
                due_at: Some(due),
                closed_at: closed,
                fixed_version: closed.map(|_| format!("1.{}", i % 200)),
                exceptions: if i % 300 == 0 {
                    vec![ExceptionSpan {
                        number: format!("EXC-2026-{:04}", i / 300 + 1),
                        from: month.start() - SignedDuration::from_hours(24 * 30),
                        until: month.end() + SignedDuration::from_hours(24 * 60),
                    }]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    let exceptions = (0..30)
        .map(|i| ExceptionRecord {
            number: format!("EXC-2026-{:04}", i + 1),
            scope: format!("host {}", host(i * 10)),
            exception: Exception {
                request: ExceptionRequest {
                    justification: Justification::NoVendorPatch,
                    explanation: "the vendor has not released a fix".into(),
                    controls: vec![Control {
                        kind: ControlKind::NetworkSegmentation,
                        description: "own VLAN, no inbound from the user LAN".into(),
                    }],
                    protected_data: false,
                    requester: "olive".into(),
                    requested_at: month.start() - SignedDuration::from_hours(24 * 31),
                    expires_at: month.end() + SignedDuration::from_hours(24 * 60),
                },
                data_owner_ack: None,
                state: ExceptionState::Approved {
                    by: "sue".into(),
                    at: month.start() - SignedDuration::from_hours(24 * 30),
                },
            },
        })
        .collect();
    let hosts = (0..1000)
        .map(|i| HostRecord {
            hostname: host(i),
            group: if i % 2 == 0 {
                "web".into()
            } else {
                "db".into()
            },
            last_seen: Some(month.end() - SignedDuration::from_hours(1)),
            scans: 30 + (i % 5) as u32,
        })
        .collect();
    MonthRecords {
        changes,
        findings,
        exceptions,
        hosts,
    }
}

fn bench(c: &mut Criterion) {
    let month = Month::parse("2026-10").unwrap();
    let records = records(month);
    let now = month.end() + SignedDuration::from_hours(24);
    let report = monthly(month, &records, now);
    let html = patchwarden_server::reports::monthly_html(&report, "bench").unwrap();
    let pdf = patchwarden_server::reports::monthly_pdf(&report, "bench");
    eprintln!(
        "report of {month}: {} rows, {} past due, {} patches; HTML {} KiB, PDF {} KiB",
        report.rows.len(),
        report.past_due.len(),
        report.install_vs_release.len(),
        html.len() / 1024,
        pdf.len() / 1024
    );
    let mut g = c.benchmark_group("monthly report (200 changes, 10,000 findings)");
    g.sample_size(20);
    g.bench_function("compute", |b| {
        b.iter(|| black_box(monthly(month, black_box(&records), now)))
    });
    g.bench_function("compute + HTML", |b| {
        b.iter(|| {
            let r = monthly(month, black_box(&records), now);
            black_box(patchwarden_server::reports::monthly_html(&r, "bench").unwrap())
        })
    });
    g.bench_function("compute + PDF", |b| {
        b.iter(|| {
            let r = monthly(month, black_box(&records), now);
            black_box(patchwarden_server::reports::monthly_pdf(&r, "bench"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
