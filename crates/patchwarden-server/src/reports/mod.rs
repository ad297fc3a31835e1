//! Reports for people: the monthly patch management compliance report (seed 000 Appendix B
//! with the KPIs of seed 001 step 12 and the evidence auditors ask for) and the patch control
//! form of a change (Appendix A), each as a printable HTML page, CSV and PDF made in-process.
//! docs/reports.md says what every column means.
//!
//! The numbers are computed by `patchwarden_core::report` from the records [`gather`] reads;
//! this module only picks the format and renders. Every operator role reads reports; a
//! provider's report holds only its own groups' hosts and the changes and exceptions wholly
//! inside them.

pub(crate) mod gather;
pub(crate) mod pdf;
mod render;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use patchwarden_core::report::{self, Month, MonthlyReport};

use crate::access::{Access, Caller, EVERYONE};
use crate::error::ApiError;
use crate::routes::Routes;
use crate::state::AppState;
use crate::web::{Chrome, PageResult};

/// The longest path segment a report route reads (`2026-10.pdf`, a change number).
const MAX_SEGMENT: usize = 64;

/// Declares the report pages.
pub(crate) fn declare(routes: Routes) -> Routes {
    routes
        .page(Access::Roles(EVERYONE), Method::GET, "/reports", get(index))
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/reports/monthly/{month}",
            get(monthly),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/changes/{number}/form",
            get(form_html),
        )
        .page(
            Access::Roles(EVERYONE),
            Method::GET,
            "/changes/{number}/form.pdf",
            get(form_pdf),
        )
}

/// The formats a report comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Html,
    Csv,
    Pdf,
}

/// The month and format a path segment names: `2026-10`, `2026-10.csv` or `2026-10.pdf`
/// (axum captures whole segments only, so the suffix is read here).
pub(crate) fn month_and_format(segment: &str) -> Result<(Month, Format), ApiError> {
    if segment.len() > MAX_SEGMENT {
        return Err(ApiError::InvalidParameter(
            "the month is too long: write it as YYYY-MM".into(),
        ));
    }
    let (month, format) = match segment.split_once('.') {
        None => (segment, Format::Html),
        Some((m, "csv")) => (m, Format::Csv),
        Some((m, "pdf")) => (m, Format::Pdf),
        Some((m, "html")) => (m, Format::Html),
        Some((_, other)) => {
            return Err(ApiError::InvalidParameter(format!(
                "{:?} is not a report format: use .csv, .pdf or none for HTML",
                other.chars().take(16).collect::<String>()
            )));
        }
    };
    let month = Month::parse(month).map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
    Ok((month, format))
}

/// The monthly report of `month` for the caller, as of now.
pub(crate) async fn build_monthly(
    state: &AppState,
    caller: &Caller,
    month: Month,
) -> Result<MonthlyReport, ApiError> {
    let records = gather::month_records(state, &caller.scope(), month).await?;
    Ok(report::monthly(month, &records, crate::clock::now()))
}

/// The monthly report as its printable page (also for the benchmark, `benches/reports.rs`).
pub fn monthly_html(report: &MonthlyReport, prepared_by: &str) -> Result<String, askama::Error> {
    use askama::Template;
    render::MonthlyPage::new(report, prepared_by).render()
}

/// The monthly report as a PDF (also for the benchmark).
pub fn monthly_pdf(report: &MonthlyReport, prepared_by: &str) -> Vec<u8> {
    render::monthly_pdf(report, prepared_by)
}

async fn index(caller: Caller) -> PageResult {
    let current = Month::of(crate::clock::now());
    let mut months = Vec::with_capacity(12);
    let mut m = current;
    for _ in 0..12 {
        months.push((m.to_string(), m.title()));
        m = m.previous();
    }
    Ok(crate::web::render(&render::IndexPage {
        chrome: Chrome::new(&caller, "reports"),
        months,
    }))
}

async fn monthly(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(segment): Path<String>,
) -> PageResult {
    let (month, format) = month_and_format(&segment)?;
    let report = build_monthly(&state, &caller, month).await?;
    let prepared_by = caller.user.username.clone();
    Ok(match format {
        Format::Html => crate::web::render(&render::MonthlyPage::new(&report, &prepared_by)),
        Format::Csv => file(
            "text/csv; charset=utf-8",
            &format!("attachment; filename=\"patchwarden-report-{month}.csv\""),
            report::monthly_csv(&report).into_bytes(),
        ),
        Format::Pdf => file(
            "application/pdf",
            &format!("inline; filename=\"patchwarden-report-{month}.pdf\""),
            render::monthly_pdf(&report, &prepared_by),
        ),
    })
}

fn change_number(number: &str) -> Result<&str, ApiError> {
    if number.is_empty() || number.len() > MAX_SEGMENT {
        return Err(ApiError::InvalidParameter(
            "a change number looks like PCR-2026-0001".into(),
        ));
    }
    Ok(number)
}

async fn form_html(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(number): Path<String>,
) -> PageResult {
    let record = gather::one_change(&state, &caller.scope(), change_number(&number)?).await?;
    let form = report::control_form(&record);
    Ok(crate::web::render(&render::FormPage::new(
        &form,
        crate::clock::now(),
    )))
}

async fn form_pdf(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(number): Path<String>,
) -> PageResult {
    let record = gather::one_change(&state, &caller.scope(), change_number(&number)?).await?;
    let form = report::control_form(&record);
    Ok(file(
        "application/pdf",
        &format!("inline; filename=\"{}.pdf\"", form.number),
        render::form_pdf(&form, crate::clock::now()),
    ))
}

/// A file answer; never cached on the way (reports hold what only this operator may see).
fn file(content_type: &'static str, disposition: &str, body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_segment_names_month_and_format() {
        let ok = |s: &str| {
            month_and_format(s)
                .map(|(m, f)| (m.to_string(), f))
                .unwrap()
        };
        assert_eq!(ok("2026-10"), ("2026-10".into(), Format::Html));
        assert_eq!(ok("2026-10.csv"), ("2026-10".into(), Format::Csv));
        assert_eq!(ok("2026-10.pdf"), ("2026-10".into(), Format::Pdf));
        for bad in [
            "2026-13",
            "2026-10.xlsx",
            "2026-10.",
            "october",
            "2026-10.pdf.csv",
            "",
        ] {
            assert!(
                matches!(month_and_format(bad), Err(ApiError::InvalidParameter(_))),
                "{bad}"
            );
        }
        assert!(month_and_format(&"9".repeat(100)).is_err());
    }
}
