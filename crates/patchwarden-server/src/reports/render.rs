//! The report models as pages (askama templates in `templates/reports/`) and as PDF files
//! ([`super::pdf`]). Both show the same cells, computed once by `patchwarden_core::report`.

use askama::Template;
use jiff::Timestamp;
use patchwarden_core::report::{
    APPENDIX_B_COLUMNS, ControlForm, MonthlyReport, day, days, percent, when,
};

use super::pdf::{A4, A4_LANDSCAPE, Columns, Doc};
use crate::web::Chrome;

/// The list of months.
#[derive(Template)]
#[template(path = "reports/index.html")]
pub(crate) struct IndexPage {
    pub chrome: Chrome,
    /// (`2026-10`, `October 2026`), newest first.
    pub months: Vec<(String, String)>,
}

/// A table: headers and rows of text cells.
pub(crate) struct Table {
    pub title: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// What an empty table says.
    pub empty: &'static str,
    /// Relative column widths for the PDF.
    pub shares: Vec<f32>,
}

/// The monthly report as sections of text and tables, shared by the page and the PDF.
pub(crate) struct MonthlyView {
    pub title: String,
    pub month: String,
    pub generated: String,
    pub prepared_by: String,
    pub summary: Vec<(String, String)>,
    pub tables: Vec<Table>,
}

pub(crate) fn monthly_view(r: &MonthlyReport, prepared_by: &str) -> MonthlyView {
    let k = &r.kpis;
    let summary = vec![
        ("Changes implemented".to_owned(), k.changes.to_string()),
        (
            "Change management process followed".to_owned(),
            format!("{} of {}", k.changes_followed, k.changes),
        ),
        (
            "Installs: succeeded / failed".to_owned(),
            format!(
                "{} / {} (success rate {})",
                k.installs_succeeded,
                k.installs_failed,
                k.install_success_rate()
            ),
        ),
        (
            "Failed installs resubmitted".to_owned(),
            format!(
                "{} of {}{}",
                k.failed_resubmitted,
                k.installs_failed,
                if k.failed_not_resubmitted.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (still to resubmit: {})",
                        k.failed_not_resubmitted.join(", ")
                    )
                }
            ),
        ),
        ("SLA breaches".to_owned(), k.breaches.to_string()),
        ("Findings closed".to_owned(), k.findings_closed.to_string()),
        (
            "Mean time to patch (detection to install)".to_owned(),
            days(k.mean_time_to_patch),
        ),
        (
            "Mean time from release to install".to_owned(),
            days(k.mean_release_to_install),
        ),
    ];
    let sla_rows = |lines: &[patchwarden_core::report::SlaLine]| -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|l| {
                vec![
                    l.key.clone(),
                    l.on_time.to_string(),
                    l.late.to_string(),
                    l.past_due.to_string(),
                    l.excepted.to_string(),
                    l.breaches().to_string(),
                    percent(l.rate()),
                ]
            })
            .collect()
    };
    let sla_headers = vec![
        "",
        "On time",
        "Closed late",
        "Past due",
        "Excepted",
        "Breaches",
        "On-time rate",
    ];
    let mut class_headers = sla_headers.clone();
    class_headers[0] = "Class";
    let mut rule_headers = sla_headers;
    rule_headers[0] = "Policy / rule";
    let tables = vec![
        Table {
            title: "Patch management compliance (Appendix B)".into(),
            headers: APPENDIX_B_COLUMNS.to_vec(),
            rows: r.rows.iter().map(|row| row.cells().to_vec()).collect(),
            empty: "No change was implemented in this month.",
            // Wide enough that each header fits on one line at 8 pt.
            shares: vec![1.6, 2.7, 2.8, 2.7, 2.4],
        },
        Table {
            title: "SLA attainment by class".into(),
            headers: class_headers,
            rows: sla_rows(&k.by_class),
            empty: "",
            shares: vec![2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        },
        Table {
            title: "SLA attainment by the rule that set the deadline".into(),
            headers: rule_headers,
            rows: sla_rows(&r.sla_by_rule),
            empty: "No finding was due or closed in this month.",
            shares: vec![3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        },
        Table {
            title: "Install date against release date, per patch".into(),
            headers: vec![
                "Package",
                "Fixed version",
                "Released",
                "Hosts",
                "First install",
                "Last install",
                "Longest release to install",
                "Installed late",
            ],
            rows: r
                .install_vs_release
                .iter()
                .map(|p| {
                    vec![
                        p.package.clone(),
                        p.version.clone(),
                        p.released.map(day).unwrap_or_else(|| "unknown".into()),
                        p.hosts.to_string(),
                        day(p.first_install),
                        day(p.last_install),
                        days(p.longest),
                        p.late.to_string(),
                    ]
                })
                .collect(),
            empty: "No patch was installed in this month.",
            shares: vec![1.6, 1.6, 1.0, 0.6, 1.0, 1.0, 1.0, 0.8],
        },
        Table {
            // A month not yet over is judged as of the moment the report is made.
            title: if r.generated_at < r.month.end() {
                format!("Past due as of {}", when(r.generated_at))
            } else {
                format!("Past due at the end of {}", r.month.title())
            },
            headers: vec![
                "Host",
                "Group",
                "Vulnerability",
                "Package",
                "Class",
                "Rule",
                "Due",
                "Overdue",
            ],
            rows: r
                .past_due
                .iter()
                .map(|p| {
                    vec![
                        p.host.clone(),
                        p.group.clone(),
                        p.vulnerability.clone(),
                        p.package.clone(),
                        p.class.clone(),
                        p.rule.clone(),
                        day(p.due_at),
                        days(Some(p.overdue)),
                    ]
                })
                .collect(),
            empty: "Nothing was past due.",
            shares: vec![1.4, 1.0, 1.4, 1.2, 0.8, 1.2, 0.9, 0.7],
        },
        Table {
            title: "Exceptions in force during the month".into(),
            headers: vec![
                "Exception",
                "Covers",
                "Justification",
                "Requested by",
                "Approved by",
                "Compensating controls",
                "Expires",
                "State",
            ],
            rows: r
                .exceptions
                .iter()
                .map(|e| {
                    vec![
                        e.number.clone(),
                        e.scope.clone(),
                        e.justification.clone(),
                        e.requester.clone(),
                        match e.approved_at {
                            Some(at) => format!("{} on {}", e.approver, day(at)),
                            None => e.approver.clone(),
                        },
                        e.controls.join("; "),
                        day(e.expires_at),
                        e.state.clone(),
                    ]
                })
                .collect(),
            empty: "No exception was in force.",
            shares: vec![1.1, 1.6, 2.0, 0.9, 1.2, 2.0, 0.9, 1.0],
        },
        Table {
            title: "Inventory scans per host".into(),
            headers: vec![
                "Host",
                "Group",
                "Inventories received in the month",
                "Last check-in",
            ],
            rows: r
                .hosts
                .iter()
                .map(|h| {
                    vec![
                        h.hostname.clone(),
                        h.group.clone(),
                        h.scans.to_string(),
                        h.last_seen.map(when).unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect(),
            empty: "No host is enrolled.",
            shares: vec![2.0, 1.5, 1.5, 2.0],
        },
    ];
    MonthlyView {
        title: format!(
            "Monthly patch management compliance report: {}",
            r.month.title()
        ),
        month: r.month.to_string(),
        generated: when(r.generated_at),
        prepared_by: prepared_by.to_owned(),
        summary,
        tables,
    }
}

/// The monthly report as a standalone printable page.
#[derive(Template)]
#[template(path = "reports/monthly.html")]
pub(crate) struct MonthlyPage {
    pub view: MonthlyView,
}

impl MonthlyPage {
    pub(crate) fn new(r: &MonthlyReport, prepared_by: &str) -> MonthlyPage {
        MonthlyPage {
            view: monthly_view(r, prepared_by),
        }
    }
}

/// The signature lines a printed report carries.
pub(crate) const SIGNATURES: [&str; 3] = ["Prepared by:", "Reviewed by:", "Date:"];

pub(crate) fn monthly_pdf(r: &MonthlyReport, prepared_by: &str) -> Vec<u8> {
    let v = monthly_view(r, prepared_by);
    let mut doc = Doc::new(&v.title, A4_LANDSCAPE);
    doc.text(&v.title, 15.0, true);
    doc.text(
        &format!(
            "Month {} (UTC). Generated {} for {}.",
            v.month, v.generated, v.prepared_by
        ),
        9.0,
        false,
    );
    doc.heading("Key performance indicators", 12.0);
    let summary: Vec<Vec<String>> = v
        .summary
        .iter()
        .map(|(k, val)| vec![k.clone(), val.clone()])
        .collect();
    doc.table(
        &Columns {
            headers: &["Indicator", "Value"],
            shares: &[1.0, 2.0],
            size: 9.0,
        },
        &summary,
    );
    for t in &v.tables {
        doc.heading(&t.title, 12.0);
        // The header is drawn even over no rows: the printed form shows its columns.
        doc.table(
            &Columns {
                headers: &t.headers,
                shares: &t.shares,
                size: 8.0,
            },
            &t.rows,
        );
        if t.rows.is_empty() && !t.empty.is_empty() {
            doc.text(t.empty, 9.0, false);
        }
    }
    doc.heading("Sign-off", 12.0);
    doc.signature_lines(&SIGNATURES);
    doc.finish()
}

/// The patch control form as a standalone printable page.
#[derive(Template)]
#[template(path = "reports/form.html")]
pub(crate) struct FormPage {
    pub form: ControlForm,
    pub generated: String,
}

impl FormPage {
    pub(crate) fn new(form: &ControlForm, now: Timestamp) -> FormPage {
        FormPage {
            form: form.clone(),
            generated: when(now),
        }
    }
}

pub(crate) fn form_pdf(form: &ControlForm, now: Timestamp) -> Vec<u8> {
    let title = format!("Patch control form {}", form.number);
    let mut doc = Doc::new(&title, A4);
    doc.text(&title, 15.0, true);
    doc.text(&form.title, 11.0, false);
    doc.text(&format!("Generated {}", when(now)), 8.0, false);
    for s in &form.sections {
        doc.heading(&s.heading, 11.0);
        let rows: Vec<Vec<String>> = s
            .fields
            .iter()
            .map(|(l, v)| vec![l.clone(), v.clone()])
            .collect();
        doc.table(
            &Columns {
                headers: &["Field", "Value"],
                shares: &[1.0, 2.6],
                size: 9.0,
            },
            &rows,
        );
    }
    doc.heading("Authorisation, approval and sign-off", 11.0);
    let rows: Vec<Vec<String>> = form
        .signatures
        .iter()
        // Two blank lines in the signature cell: room for a hand.
        .map(|s| {
            vec![
                s.role.clone(),
                s.name.clone(),
                s.date.clone(),
                "\n\n".into(),
            ]
        })
        .collect();
    doc.table(
        &Columns {
            headers: &["", "Name", "Date", "Signature"],
            shares: &[1.4, 1.2, 0.8, 1.6],
            size: 9.0,
        },
        &rows,
    );
    doc.signature_lines(&["Reviewed by:", "Date:"]);
    doc.finish()
}
