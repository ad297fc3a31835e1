//! CSV (RFC 4180): fields quoted when they hold a comma, a quote or a line break, quotes
//! doubled, lines ended with CRLF. A cell a spreadsheet would read as a formula (starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, so a change title
//! like `=HYPERLINK(…)` stays text when the report is opened in a spreadsheet.

use super::{APPENDIX_B_COLUMNS, MonthlyReport};

/// The cell with a leading `'` when a spreadsheet would take it for a formula.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// One CSV record, CRLF-terminated.
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let cell = neutralise(cell.as_ref());
        if cell.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&cell);
        }
    }
    out.push_str("\r\n");
    out
}

/// The report's Appendix B table as CSV: the five columns, one record per change.
pub fn monthly_csv(report: &MonthlyReport) -> String {
    let mut out = csv_line(&APPENDIX_B_COLUMNS);
    for row in &report.rows {
        out.push_str(&csv_line(&row.cells()));
    }
    out
}
