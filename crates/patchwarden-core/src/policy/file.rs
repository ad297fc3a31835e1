//! Reading a policy file: TOML in, a checked [`Policy`] or every problem with its line out.
//!
//! The file is read in two steps, after a size and nesting check that keeps hostile input from
//! exhausting memory or the stack. First the TOML is deserialised into raw structures
//! (`raw.rs`) that keep where each value was written and refuse unknown keys, so a misspelt key
//! is an error on its line rather than a silently ignored rule. Then the raw structures are
//! checked (`check.rs`, `check_when.rs`) and turned into the model: words, thresholds, periods, patterns, and the
//! contradictions that TOML cannot see (two rules with one id, a condition that can never hold,
//! a higher class due later than a lower one, an override without a reason …). Every problem
//! found is reported, each with its line; a file with any problem gives no policy at all, so
//! nothing is ever half-applied.
//!
//! The format is documented for people in `docs/policy.md`.

use serde::Serialize;

use super::check::Checker;
use super::model::Policy;
use super::raw::RawFile;

/// The largest policy file accepted. Real ones are a few kilobytes; a megabyte holds thousands
/// of rules and overrides.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// How deeply tables and lists may nest. Conditions nest a few levels; the bound keeps a
/// hostile file from exhausting the stack of the recursive reader.
const MAX_NESTING: usize = 32;

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{origin}: the file is {size} bytes, more than the {limit} a policy file may have")]
    TooLarge {
        origin: String,
        size: usize,
        limit: usize,
    },
    #[error("{}", render(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl PolicyError {
    /// The problems, each with its line (one for a file that is too large).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            PolicyError::TooLarge { .. } => vec![Problem {
                line: None,
                message: self.to_string(),
            }],
            PolicyError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

/// One thing wrong with a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<usize>,
    pub message: String,
}

fn render(origin: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match p.line {
            Some(line) => out.push_str(&format!("{origin}:{line}: {}", p.message)),
            None => out.push_str(&format!("{origin}: {}", p.message)),
        }
    }
    out
}

impl Policy {
    /// Reads and checks a policy file. `origin` names it in errors (a path, `preset NAME`).
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                origin: origin.to_owned(),
                size: text.len(),
                limit: MAX_POLICY_BYTES,
            });
        }
        let invalid = |problems| PolicyError::Invalid {
            origin: origin.to_owned(),
            problems,
        };
        if let Some(line) = nesting_too_deep(text, MAX_NESTING) {
            return Err(invalid(vec![Problem {
                line: Some(line),
                message: format!("tables and lists nest more than {MAX_NESTING} levels deep"),
            }]));
        }
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            invalid(vec![Problem {
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().trim().to_owned(),
            }])
        })?;
        let mut checker = Checker {
            text,
            problems: Vec::new(),
            context: String::new(),
        };
        let policy = checker.file(raw);
        if checker.problems.is_empty() {
            Ok(policy)
        } else {
            checker.problems.sort_by_key(|p| p.line);
            Err(invalid(checker.problems))
        }
    }
}

/// The 1-based line of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// The line where tables and lists first nest deeper than `max`, outside strings and
/// comments. Nesting comes from brackets and braces, and from dotted keys (`a.b.c = 1`, in a
/// key or a `[table.header]`), so every dot counts as a level on its line, and a header's dots
/// count for the lines below it. Dots in numbers count too: that only errs on the safe side.
fn nesting_too_deep(text: &str, max: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let starts = |i: usize, s: &[u8]| bytes.get(i..i.saturating_add(s.len())) == Some(s);
    let (mut i, mut line, mut depth) = (0usize, 1usize, 0usize);
    let (mut line_dots, mut header_dots, mut header_line) = (0usize, 0usize, false);
    let mut line_start = true;
    while let Some(c) = at(i) {
        if line_start && !c.is_ascii_whitespace() {
            line_start = false;
            header_line = c == b'[' && depth == 0;
        }
        match c {
            b'\n' => {
                if header_line {
                    header_dots = line_dots;
                }
                line += 1;
                line_dots = 0;
                line_start = true;
                header_line = false;
            }
            b'#' => {
                while at(i).is_some_and(|c| c != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let triple = if c == b'"' {
                    &b"\"\"\""[..]
                } else {
                    &b"'''"[..]
                };
                let multi = starts(i, triple);
                i += if multi { 3 } else { 1 };
                loop {
                    match at(i) {
                        None => return None,
                        Some(b'\\') if c == b'"' => {
                            if at(i + 1) == Some(b'\n') {
                                line += 1;
                            }
                            i += 2;
                            continue;
                        }
                        Some(b'\n') => {
                            line += 1;
                            if !multi {
                                break;
                            }
                        }
                        Some(q) if q == c && (!multi || starts(i, triple)) => {
                            i += if multi { 3 } else { 1 };
                            break;
                        }
                        Some(_) => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' => depth += 1,
            b'.' => line_dots += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth + line_dots + header_dots > max {
            return Some(line);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        assert_eq!(nesting_too_deep("a = [[[1]]]", 3), None);
        assert_eq!(nesting_too_deep("a = [[[[1]]]]", 3), Some(1));
        assert_eq!(nesting_too_deep("a = \"[[[[[[\"\n# {{{{{{{\n", 3), None);
        assert_eq!(
            nesting_too_deep("a = '''\n[[[[[\n'''\nb = [[[[1]]]]", 3),
            Some(4)
        );
        assert_eq!(nesting_too_deep("a = \"\\\"[[[[[[\"", 3), None);
        assert_eq!(nesting_too_deep("a = \"unterminated", 3), None);
        assert_eq!(nesting_too_deep("a.b.c = 1", 3), None);
        assert_eq!(nesting_too_deep("a.b.c.d.e = 1", 3), Some(1));
        assert_eq!(nesting_too_deep("[a.b.c]\nd.e.f = 1\n", 3), Some(2));
        assert_eq!(
            nesting_too_deep("[a.b.c]\nd = 1\n[x]\nd.e.f = 1\n", 3),
            None
        );
    }
}
