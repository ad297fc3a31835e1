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

/// A real server (SQLite in a temporary directory, plain HTTP on loopback) holding 1,000 hosts
/// with 10 findings each (10,000 findings: 9,000 closed this month, on time or late, 1,000 open
/// and past due) and 4 inventory scans each in the audit chain; the report fetched over HTTP
/// as an auditor would, so the store's reads are in the time. No change is in this store (a
/// change that touched hosts needs the rollout and agents): the changes' reads are not.
fn served(c: &mut Criterion) {
    use std::collections::BTreeSet;

    use patchwarden_client::{Client, ReportFormat, Trust};
    use patchwarden_core::audit::{Actor, AuditEntry};
    use patchwarden_core::finding::Finding;
    use patchwarden_core::inventory::{HostFacts, Manager, OsInfo};
    use patchwarden_server::admin::{self, TokenRequest};
    use patchwarden_store::{Classification, CurrentFinding, NewHost, NewUser, Role, SecretHash};
    use uuid::Uuid;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = patchwarden_server::Config {
        data_dir: dir.path().to_owned(),
        ..patchwarden_server::Config::default()
    };
    config.listen.api = "127.0.0.1:0".into();
    config.listen.metrics = String::new();
    config.tls.mode = patchwarden_server::config::TlsMode::PlainHttp;
    let running = rt.block_on(patchwarden_server::start(&config)).unwrap();
    let store = running.state.store.clone();
    let now = patchwarden_server::clock::now();
    let month = Month::of(now);
    let password = "a bench password that is long";
    let client = rt.block_on(async {
        let audit = |action: &str, object: String| {
            AuditEntry::new(now, Actor::System("bench".into()), action, object)
        };
        store
            .create_user(
                NewUser {
                    id: Uuid::new_v4(),
                    username: "audrey".into(),
                    password_hash: patchwarden_server::secrets::hash_password(password).unwrap(),
                    roles: [Role::Auditor].into_iter().collect(),
                    groups: BTreeSet::new(),
                    must_change_password: false,
                    created_by: "bench".into(),
                },
                now,
                audit("user.create", "audrey".into()),
            )
            .await
            .unwrap();
        let (_, secret) = admin::create_enrollment_token(
            store.as_ref(),
            TokenRequest {
                group: "web".into(),
                valid_for: SignedDuration::from_hours(1),
                max_uses: 1000,
                note: None,
            },
            Actor::System("bench".into()),
            now,
        )
        .await
        .unwrap();
        // Times inside this month, before now.
        let span = now.duration_since(month.start()).as_secs().max(3600);
        let within = |k: i64| month.start() + SignedDuration::from_secs(k.rem_euclid(span));
        for h in 0..1000i64 {
            let id = Uuid::new_v4();
            let facts = HostFacts {
                hostname: format!("host-{h:04}"),
                os: OsInfo {
                    id: "debian".into(),
                    version_id: Some("12".into()),
                    codename: Some("bookworm".into()),
                    pretty_name: None,
                    id_like: Vec::new(),
                    ecosystem: Some("Debian:12".into()),
                },
                ..HostFacts::default()
            };
            store
                .enroll_host(
                    SecretHash::of(secret.as_bytes()),
                    NewHost {
                        id,
                        public_key: format!("{:064x}", id.as_u128()),
                        facts,
                    },
                    now,
                    audit("host.enroll", format!("host:{id}")),
                )
                .await
                .unwrap();
            let finding = |j: i64| {
                let seen = within(h * 7 + j * 3600);
                CurrentFinding {
                    body: None,
                    finding: std::sync::Arc::new(Finding {
                        vulnerability: format!("CVE-2026-{:05}", (h * 10 + j) % 3000),
                        aliases: vec![],
                        advisories: vec![],
                        manager: Manager::Dpkg,
                        package: format!("pkg{j}"),
                        arch: Some("amd64".into()),
                        source_package: None,
                        installed: "1.0".into(),
                        fixed: Some("1.1".into()),
                        ecosystem: "Debian:12".into(),
                        available_at: Some(seen),
                        published_at: Some(seen),
                        explanation: "bench".into(),
                    }),
                    classification: Classification {
                        class: Some(
                            [Class::Emergency, Class::High, Class::Medium, Class::Low]
                                [(j % 4) as usize],
                        ),
                        due_at: Some(
                            seen + SignedDuration::from_hours(if h % 10 == 0 {
                                1
                            } else {
                                24 * 30
                            }),
                        ),
                        policy: Some("seed-000".into()),
                        rule: Some(format!("rule-{}", j % 4)),
                    },
                }
            };
            let all: Vec<CurrentFinding> = (0..10).map(finding).collect();
            let seen = within(h * 7);
            store
                .sync_findings(
                    id,
                    &all,
                    &[],
                    seen,
                    audit("findings.sync", format!("host:{id}")),
                )
                .await
                .unwrap();
            // Nine of ten fixed a few hours later; the tenth stays open.
            let fixed_at = (seen + SignedDuration::from_hours(5)).min(now);
            store
                .sync_findings(
                    id,
                    &all[9..],
                    &[],
                    fixed_at,
                    audit("findings.sync", format!("host:{id}")),
                )
                .await
                .unwrap();
            for k in 0..4 {
                store
                    .append_audit(
                        now,
                        AuditEntry::new(
                            within(h + k * 100_000),
                            Actor::System("bench".into()),
                            "inventory.replace",
                            format!("host:{id}"),
                        ),
                    )
                    .await
                    .unwrap();
            }
        }
        let client = Client::new(&running.url(), &Trust::PlainHttp).unwrap();
        client.login("audrey", password).await.unwrap().0
    });
    let html = rt
        .block_on(client.monthly_report(&month.to_string(), ReportFormat::Html))
        .unwrap();
    let pdf = rt
        .block_on(client.monthly_report(&month.to_string(), ReportFormat::Pdf))
        .unwrap();
    eprintln!(
        "served report of {month}: HTML {} KiB, PDF {} KiB",
        html.len() / 1024,
        pdf.len() / 1024
    );
    let mut g = c.benchmark_group("monthly report served (1,000 hosts, 10,000 findings, SQLite)");
    g.sample_size(10);
    for (name, format) in [("HTML", ReportFormat::Html), ("PDF", ReportFormat::Pdf)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    rt.block_on(client.monthly_report(&month.to_string(), format))
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, served);
criterion_main!(benches);
