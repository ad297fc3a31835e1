//! Output of the operator commands: aligned tables for people, the API's own JSON for
//! scripts, and the documented exit codes (docs/cli.md).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::ClientError;
use serde::Serialize;

/// Exit codes, stable for scripts (docs/cli.md). 2 is clap's usage error.
pub(crate) const EXIT_ERROR: u8 = 1;
pub(crate) const EXIT_AUTH: u8 = 3;
pub(crate) const EXIT_NOT_FOUND: u8 = 4;
pub(crate) const EXIT_UNREACHABLE: u8 = 5;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

/// An error of an operator command, with the exit code it means.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn report(&self) -> ExitCode {
        eprintln!("patchwarden: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        match &e {
            ClientError::Problem(p) => {
                let code = match (p.status, p.code) {
                    (401 | 403, _) => EXIT_AUTH,
                    (_, ProblemCode::Unauthenticated | ProblemCode::Forbidden) => EXIT_AUTH,
                    (404, _) => EXIT_NOT_FOUND,
                    _ => EXIT_ERROR,
                };
                // The problem's title and detail are what the server wants a person to read.
                let message = match &p.detail {
                    Some(d) => format!("{} ({}): {}: {d}", p.title, p.status, p.code.as_str()),
                    None => format!("{} ({}): {}", p.title, p.status, p.code.as_str()),
                };
                Failure::new(code, message)
            }
            ClientError::Transport(_) => Failure::new(EXIT_UNREACHABLE, e.to_string()),
            _ => Failure::new(EXIT_ERROR, e.to_string()),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::new(EXIT_ERROR, format!("{e:#}"))
    }
}

/// One JSON document on stdout.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(EXIT_ERROR, format!("encoding JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Whether to colour: stdout is a terminal and `NO_COLOR` is not set (no-color.org).
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// An aligned table: the header in bold when colour is on.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let head = line(&mut header.iter().copied());
    let _ = if colour() {
        writeln!(out, "\x1b[1m{head}\x1b[0m")
    } else {
        writeln!(out, "{head}")
    };
    for row in rows {
        let _ = writeln!(out, "{}", line(&mut row.iter().map(String::as_str)));
    }
}

/// `key: value` lines for one object.
pub(crate) fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        println!("{k:<width$}  {v}");
    }
}

/// An optional value, `-` when absent.
pub(crate) fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A serde enum's wire name (`not_applicable`), as the JSON says it.
pub(crate) fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwarden_api::v1::problem::Problem;

    fn code(status: u16, problem: ProblemCode) -> u8 {
        Failure::from(ClientError::Problem(Problem::new(problem, status, "t"))).code
    }

    #[test]
    fn problems_map_to_the_documented_exit_codes() {
        assert_eq!(code(401, ProblemCode::Unauthenticated), EXIT_AUTH);
        assert_eq!(code(403, ProblemCode::Forbidden), EXIT_AUTH);
        assert_eq!(code(404, ProblemCode::NotFound), EXIT_NOT_FOUND);
        assert_eq!(code(409, ProblemCode::Other), EXIT_ERROR);
        assert_eq!(
            Failure::from(ClientError::Transport("refused".into())).code,
            EXIT_UNREACHABLE
        );
    }

    #[test]
    fn enum_names_are_the_wire_names() {
        use patchwarden_api::v1::fleet::Criticality;
        assert_eq!(name(&Criticality::NotApplicable), "not_applicable");
    }
}
