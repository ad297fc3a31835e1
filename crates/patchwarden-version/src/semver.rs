//! SemVer 2.0.0 precedence, with the tolerance OSV's `SEMVER` ranges need.
//!
//! OSV uses `SEMVER` ranges for Go, npm, crates.io, Hex and others, and real advisories carry
//! `v1.2.3`, `1.2` or `1.2.3.4`. As OSV's reference implementation (osv-scalibr `semantic`) and
//! node-semver's loose mode do, we accept a leading `v` or `=` (and spaces around it), missing
//! minor and patch numbers (read as 0), more than three numeric components (compared
//! numerically, so `1.2.3.4` > `1.2.3`), numbers of any length, and a pre-release without its
//! hyphen (`1.2.3beta` = `1.2.3-beta`). Precedence is the specification's: numeric components,
//! then a version without pre-release above one with, then pre-release identifiers (numeric
//! ones numerically and below alphanumeric ones, alphanumeric ones in ASCII order, more
//! identifiers above fewer); build metadata after `+` never counts.
//!
//! Anything else — no leading number, empty components or identifiers, characters outside
//! `[0-9A-Za-z-]` — is an error.

use std::cmp::Ordering;
use std::fmt;

use crate::digits::cmp_digits;
use crate::{Reason, Scheme, VersionError};

/// A parsed SemVer version borrowing from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemverRef<'a> {
    /// The dot-separated numeric components, e.g. `1.2.3`.
    pub core: &'a str,
    /// The pre-release identifiers without the leading hyphen, if any.
    pub pre: Option<&'a str>,
    /// The build metadata after `+`, if any. It does not take part in ordering.
    pub build: Option<&'a str>,
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Parses a version without allocating.
pub fn parse_ref(input: &str) -> Result<SemverRef<'_>, VersionError> {
    split(input).map_err(|reason| VersionError::new(Scheme::Semver, input, Reason::Semver(reason)))
}

fn split(input: &str) -> Result<SemverRef<'_>, &'static str> {
    let s = input.trim_matches([' ', '\t']);
    let s = s.trim_start_matches(['v', '=', ' ', '\t']);
    if s.is_empty() {
        return Err("version string is empty");
    }
    let b = s.as_bytes();
    // Core: digits, separated by single dots.
    let mut i = 0;
    loop {
        let n = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(if i == 0 {
                "version does not start with a number"
            } else {
                "empty numeric component"
            });
        }
        i += n;
        // A dot continues the core only when a digit follows; "1.2.3.beta" is not a version.
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        if b.get(i) == Some(&b'.') {
            return Err("empty numeric component");
        }
        break;
    }
    let core = &s[..i];
    let rest = &s[i..];
    let (pre_part, build) = match rest.split_once('+') {
        Some((p, b)) => (p, Some(b)),
        None => (rest, None),
    };
    let pre = match pre_part.as_bytes().first() {
        None => None,
        Some(b'-') => Some(&pre_part[1..]),
        Some(c) if c.is_ascii_alphabetic() => Some(pre_part),
        Some(_) => return Err("unexpected character after the version numbers"),
    };
    if let Some(p) = pre {
        check_identifiers(p, "empty pre-release identifier")?;
    }
    if let Some(b) = build {
        check_identifiers(b, "empty build metadata identifier")?;
    }
    Ok(SemverRef { core, pre, build })
}

fn check_identifiers(s: &str, empty: &'static str) -> Result<(), &'static str> {
    for id in s.split('.') {
        if id.is_empty() {
            return Err(empty);
        }
        if !id.bytes().all(is_ident_char) {
            return Err("identifiers may hold only ASCII letters, digits and hyphens");
        }
    }
    Ok(())
}

impl SemverRef<'_> {
    /// SemVer precedence.
    pub fn compare(&self, other: &SemverRef<'_>) -> Ordering {
        cmp_core(self.core, other.core).then_with(|| match (self.pre, other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => cmp_pre(a, b),
        })
    }
}

fn cmp_core(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let o = cmp_digits(x.unwrap_or("0").as_bytes(), y.unwrap_or("0").as_bytes());
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

fn cmp_pre(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        let o = match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let xn = x.bytes().all(|c| c.is_ascii_digit());
                let yn = y.bytes().all(|c| c.is_ascii_digit());
                match (xn, yn) {
                    (true, true) => cmp_digits(x.as_bytes(), y.as_bytes()),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
}

/// Compares two version strings by SemVer precedence.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse_ref(a)?.compare(&parse_ref(b)?))
}

/// A parsed, owned SemVer version.
#[derive(Clone)]
pub struct SemverVersion {
    text: Box<str>,
}

impl SemverVersion {
    /// Parses a version.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        parse_ref(input)?;
        Ok(SemverVersion { text: input.into() })
    }

    /// The borrowed view.
    pub fn as_ref(&self) -> SemverRef<'_> {
        // Checked in `parse`; the fallback keeps this total without a panic.
        split(&self.text).unwrap_or(SemverRef {
            core: "0",
            pre: None,
            build: None,
        })
    }

    /// The version as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for SemverVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for SemverVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SemverVersion({:?})", self.text)
    }
}

impl Ord for SemverVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().compare(&other.as_ref())
    }
}

impl PartialOrd for SemverVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is precedence: `v1.2` and `1.2.0+build` are the same version.
impl PartialEq for SemverVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemverVersion {}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(input: &str, expect: Expect) {
        let got = match parse_ref(input) {
            Ok(v) => format!("ok {} {:?} {:?}", v.core, v.pre, v.build),
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn parses_loosely_as_osv() {
        check(
            "v1.2.3-rc.1+build.5",
            expect![[r#"ok 1.2.3 Some("rc.1") Some("build.5")"#]],
        );
        check(" = v 1.2", expect!["ok 1.2 None None"]);
        check("1.2.3beta", expect![[r#"ok 1.2.3 Some("beta") None"#]]);
        check("1.2.3.4.5", expect!["ok 1.2.3.4.5 None None"]);
        check(
            "",
            expect![[r#"error: invalid semver version "": version string is empty"#]],
        );
        check(
            "x1",
            expect![[
                r#"error: invalid semver version "x1": version does not start with a number"#
            ]],
        );
        check(
            "1..2",
            expect![[r#"error: invalid semver version "1..2": empty numeric component"#]],
        );
        check(
            "1.2.3-",
            expect![[r#"error: invalid semver version "1.2.3-": empty pre-release identifier"#]],
        );
        check(
            "1.2.3-a..b",
            expect![[
                r#"error: invalid semver version "1.2.3-a..b": empty pre-release identifier"#
            ]],
        );
        check(
            "1.2.3_4",
            expect![[
                r#"error: invalid semver version "1.2.3_4": unexpected character after the version numbers"#
            ]],
        );
        check(
            "1.2.3-ä",
            expect![[
                r#"error: invalid semver version "1.2.3-ä": identifiers may hold only ASCII letters, digits and hyphens"#
            ]],
        );
    }

    #[test]
    fn precedence() {
        use Ordering::*;
        assert_eq!(compare("1.2", "1.2.0"), Ok(Equal));
        assert_eq!(compare("1.2.3.4", "1.2.3"), Ok(Greater));
        assert_eq!(compare("1.0.0-alpha.1", "1.0.0-alpha.beta"), Ok(Less));
        assert_eq!(compare("1.0.0-rc.1", "1.0.0"), Ok(Less));
        assert_eq!(compare("1.0.0+a", "1.0.0+b"), Ok(Equal));
        assert_eq!(
            compare(
                "999999999999999999999999999991",
                "999999999999999999999999999999"
            ),
            Ok(Less)
        );
    }
}
