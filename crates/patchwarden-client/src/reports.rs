//! The operator client for reports: the monthly compliance report
//! (`/reports/monthly/{month}[.csv|.pdf]`) and a change's patch control form
//! (`/changes/{number}/form[.pdf]`), fetched as the files the server renders. These are pages,
//! not API documents: a refusal comes as an HTML page whose problem code is in
//! `X-Problem-Code`, which is turned into the same [`ClientError::Problem`] as the API's.

use patchwarden_api::v1::problem::{Problem, ProblemCode};
use reqwest::Method;

use crate::ClientError;
use crate::agent::RawResponse;
use crate::operator::{Body, OperatorClient, segment};

/// A report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Csv,
    Pdf,
}

impl ReportFormat {
    /// The path's suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            ReportFormat::Html => "",
            ReportFormat::Csv => ".csv",
            ReportFormat::Pdf => ".pdf",
        }
    }
}

/// The file of a success, or the page's refusal as a problem.
fn file(raw: RawResponse) -> Result<Vec<u8>, ClientError> {
    if (200..300).contains(&raw.status) {
        return Ok(raw.body);
    }
    let code = raw
        .problem_code
        .as_deref()
        .and_then(|c| serde_json::from_value::<ProblemCode>(serde_json::json!(c)).ok());
    match code {
        Some(code) => Err(ClientError::Problem(
            Problem::new(code, raw.status, "the report was refused").detail(page_detail(&raw.body)),
        )),
        None => Err(ClientError::Problem(raw.problem())),
    }
}

/// The explanation an error page gives: the text of its last paragraph before the links.
fn page_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let paragraphs: Vec<&str> = text
        .split("<p>")
        .skip(1)
        .filter_map(|p| p.split("</p>").next())
        .filter(|p| !p.contains("<a "))
        .collect();
    paragraphs
        .last()
        .map(|p| {
            p.replace("&quot;", "\"")
                .replace("&#34;", "\"")
                .replace("&amp;", "&")
        })
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect()
}

impl OperatorClient {
    /// `GET /reports/monthly/{month}[.csv|.pdf]`: the monthly compliance report of `month`
    /// (`2026-10`) for the caller's scope.
    pub async fn monthly_report(
        &self,
        month: &str,
        format: ReportFormat,
    ) -> Result<Vec<u8>, ClientError> {
        let path = format!("/reports/monthly/{}{}", segment(month), format.suffix());
        file(
            self.send::<()>(Method::GET, &path, None, Body::None)
                .await?,
        )
    }

    /// `GET /changes/{number}/form[.pdf]`: the patch control form (HTML or PDF; a form has
    /// no CSV).
    pub async fn change_form(
        &self,
        number: &str,
        format: ReportFormat,
    ) -> Result<Vec<u8>, ClientError> {
        let suffix = match format {
            ReportFormat::Pdf => ".pdf",
            ReportFormat::Html | ReportFormat::Csv => "",
        };
        let path = format!("/changes/{}/form{suffix}", segment(number));
        file(
            self.send::<()>(Method::GET, &path, None, Body::None)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_page_gives_its_detail() {
        let page = b"<main><h1>Invalid parameter</h1><p class=\"muted\">HTTP 400</p>\n\
            <p>\"2026-13\" is not a month</p>\n<p><a href=\"/dashboard\">Back</a></p>";
        assert_eq!(page_detail(page), "\"2026-13\" is not a month");
        assert_eq!(page_detail(b"nothing"), "");
    }
}
