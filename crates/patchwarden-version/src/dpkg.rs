//! Debian versions: `[epoch:]upstream_version[-debian_revision]`, ordered as dpkg orders them.
//!
//! Parsing follows dpkg's `parseversion` (lib/dpkg/parsehelp.c) and ordering its
//! `dpkg_version_compare`/`verrevcmp` (lib/dpkg/version.c), rule for rule:
//!
//! - the epoch is a decimal number up to `i32::MAX`, read as C's `strtol` reads it;
//! - the revision is everything after the *last* hyphen, and may not be empty;
//! - in each part, runs of non-digits compare character by character where `~` sorts before
//!   everything (even the end of the string), letters before non-letters, and runs of digits
//!   compare numerically whatever their length;
//! - a missing revision equals `0`, so `1.0` = `1.0-0` = `0:1.0`.
//!
//! dpkg has two levels of bad version. Errors (an empty version, a bad epoch, an empty
//! revision, embedded spaces) make a version unusable, and [`parse_ref`] refuses them. Warnings
//! (a version that does not start with a digit, a character outside `[A-Za-z0-9.+~:-]`) are
//! what dpkg still reads from a status file and still compares, so [`parse_ref`] and
//! [`compare`] accept them as dpkg does, and [`validate`] reports them: no package can be built
//! with such a version today, and an advisory carrying one is suspect.

use std::cmp::Ordering;
use std::fmt;

use crate::digits::{resume_after_common_prefix, trim_zeros};
use crate::{Reason, Scheme, VersionError};

/// A parsed Debian version borrowing its parts from the input. Parsing it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgVersionRef<'a> {
    /// The epoch (0 when absent).
    pub epoch: u32,
    /// The upstream version: between the epoch's colon and the last hyphen.
    pub upstream: &'a str,
    /// The Debian revision after the last hyphen, empty when absent.
    pub revision: &'a str,
}

/// A parsed, owned Debian version.
#[derive(Clone)]
pub struct DpkgVersion {
    text: Box<str>,
    epoch: u32,
    /// Byte ranges of the upstream version and the revision within `text`.
    upstream: (u32, u32),
    revision: (u32, u32),
}

/// C's `isblank` in the "C" locale: what dpkg trims around a version.
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// C's `isspace` in the "C" locale: what `strtol` skips before a number.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Reads an epoch as dpkg does with `strtol(string, &end, 10)`: leading white space, an
/// optional sign, digits. Returns the value (saturated as `strtol` does) and where it ended,
/// or `None` when no digit was read.
fn strtol(s: &[u8]) -> Option<(i128, usize)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    // i128 saturating at a value beyond i64 keeps "too big" and "negative" apart without
    // overflow, whatever the run's length.
    let mut value: i128 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        value = (value * 10 + i128::from(s[i] - b'0')).min(i128::from(u64::MAX));
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    Some((if negative { -value } else { value }, i))
}

/// Parses a Debian version without allocating, accepting what dpkg accepts with a warning.
pub fn parse_ref(input: &str) -> Result<DpkgVersionRef<'_>, VersionError> {
    parts(input)
        .map(|(v, _warning)| v)
        .map_err(|reason| VersionError::new(Scheme::Dpkg, input, reason))
}

/// Checks a version strictly: what dpkg rejects *or warns about* is an error here, as it is
/// for `dpkg-deb` and `dpkg-source`, which refuse to build such a package.
pub fn validate(input: &str) -> Result<(), VersionError> {
    match parts(input) {
        Ok((_, None)) => Ok(()),
        Ok((_, Some(reason))) | Err(reason) => Err(VersionError::new(Scheme::Dpkg, input, reason)),
    }
}

/// Splits a version into its parts; the second value is dpkg's warning, if any.
fn parts(input: &str) -> Result<(DpkgVersionRef<'_>, Option<Reason>), Reason> {
    let b = input.as_bytes();
    let start = b.iter().position(|&c| !is_blank(c)).ok_or(Reason::Empty)?;

    // One pass over the token finds its end, the first and last colon, the last hyphen, and
    // whether every byte is one dpkg allows in an upstream version; the precise checks below
    // run only when that says something is off.
    let (mut first_colon, mut last_colon, mut last_hyphen) = (None, None, None);
    let mut clean = true;
    let mut end = b.len();
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b' ' | b'\t' => {
                end = i;
                break;
            }
            b':' => {
                first_colon = first_colon.or(Some(i));
                last_colon = Some(i);
            }
            b'-' => last_hyphen = Some(i),
            b'.' | b'+' | b'~' => {}
            // A C string ends at NUL; a version of ours that holds one is not what it seems.
            0 => return Err(Reason::ControlCharacter('\0')),
            c if c.is_ascii_alphanumeric() => {}
            _ => clean = false,
        }
    }
    if b[end..].iter().any(|&c| !is_blank(c)) {
        return Err(if b[end..].contains(&0) {
            Reason::ControlCharacter('\0')
        } else {
            Reason::EmbeddedSpace
        });
    }

    let (epoch, version) = match first_colon {
        Some(colon) => {
            let (value, stop) = strtol(&b[start..end]).ok_or(Reason::EpochEmpty)?;
            if start + stop != colon {
                return Err(Reason::EpochNotNumber);
            }
            if value < 0 {
                return Err(Reason::EpochNegative);
            }
            let epoch = u32::try_from(value)
                .ok()
                .filter(|&e| e <= i32::MAX as u32)
                .ok_or(Reason::EpochTooBig)?;
            // dpkg complains here only when the colon ends the whole string; "1: " goes on
            // to fail as an empty version number.
            if colon + 1 == b.len() {
                return Err(Reason::NothingAfterColon);
            }
            (epoch, colon + 1)
        }
        None => (0, start),
    };

    // The revision follows the last hyphen of the version part ("-0:1" has its hyphen in the
    // epoch, which strtol read as a sign).
    let (upstream, revision) = match last_hyphen.filter(|&h| h >= version) {
        Some(hyphen) => {
            if hyphen + 1 == end {
                return Err(Reason::RevisionEmpty);
            }
            ((version, hyphen), (hyphen + 1, end))
        }
        None => ((version, end), (end, end)),
    };

    let up = &b[upstream.0..upstream.1];
    let warning = match up.first() {
        None => return Err(Reason::VersionEmpty),
        Some(c) if !c.is_ascii_digit() => Some(Reason::VersionNotDigit),
        Some(_) => None,
    };
    let colon_in_revision = last_colon.is_some_and(|c| c >= revision.0 && revision.0 < end);
    let warning = if warning.is_some() || !clean || colon_in_revision {
        warning
            .or_else(|| {
                up.iter()
                    .find(|&&c| !(c.is_ascii_alphanumeric() || b".-+~:".contains(&c)))
                    .map(|&c| Reason::InvalidVersionChar(char_at(input, c)))
            })
            .or_else(|| {
                b[revision.0..revision.1]
                    .iter()
                    .find(|&&c| !(c.is_ascii_alphanumeric() || b".+~".contains(&c)))
                    .map(|&c| Reason::InvalidRevisionChar(char_at(input, c)))
            })
    } else {
        None
    };

    // Every boundary above sits next to an ASCII byte (blank, colon or hyphen) or at an end,
    // so these slices are on char boundaries.
    let v = DpkgVersionRef {
        epoch,
        upstream: &input[upstream.0..upstream.1],
        revision: &input[revision.0..revision.1],
    };
    Ok((v, warning))
}

/// The character to name in an error for an offending byte: the byte itself when ASCII, else
/// the first non-ASCII character of the input.
fn char_at(input: &str, byte: u8) -> char {
    if byte.is_ascii() {
        char::from(byte)
    } else {
        input
            .chars()
            .find(|c| !c.is_ascii())
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

/// dpkg's `order()`: the weight of one non-digit character, 0 for the end of the string.
///
/// dpkg passes a C `char`, which is signed on the platforms Debian builds for, so a byte of
/// 0x80 or more arrives negative and weighs `byte - 256 + 256`: between the letters and the
/// ASCII punctuation. Such bytes only occur in versions dpkg warns about, but it compares
/// them, and so do we.
#[inline]
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c as i8) + 256,
    }
}

/// dpkg's `verrevcmp`: compares two upstream versions or two revisions.
pub fn verrevcmp(a: &str, b: &str) -> Ordering {
    verrevcmp_bytes(a.as_bytes(), b.as_bytes())
}

#[inline]
fn verrevcmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    // The identical prefix compares equal: skip it, backing up to the start of a digit run
    // (a non-digit run compares byte by byte, so resuming inside one is exact).
    let skip = resume_after_common_prefix(a, b, |c| c.is_ascii_digit());
    let (mut a, mut b) = (&a[skip..], &b[skip..]);
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefixes, character by character.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            // Equal weights mean both are the same non-digit character here.
            a = &a[1..];
            b = &b[1..];
        }
        // Digit runs, numerically.
        a = trim_zeros(a);
        b = trim_zeros(b);
        let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
        match na.cmp(&nb) {
            Ordering::Equal => match a[..na].cmp(&b[..nb]) {
                Ordering::Equal => {}
                other => return other,
            },
            other => return other,
        }
        a = &a[na..];
        b = &b[nb..];
    }
    Ordering::Equal
}

impl DpkgVersionRef<'_> {
    /// Orders two versions as `dpkg --compare-versions` does.
    pub fn compare(&self, other: &DpkgVersionRef<'_>) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream, other.upstream))
            .then_with(|| verrevcmp(self.revision, other.revision))
    }
}

/// Compares two version strings as dpkg does, parsing both without allocating.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse_ref(a)?.compare(&parse_ref(b)?))
}

impl DpkgVersion {
    /// Parses a Debian version.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        // Offsets are stored as u32; a version over 4 GiB is not a version.
        if input.len() > u32::MAX as usize {
            return Err(VersionError::new(Scheme::Dpkg, input, Reason::TooLong));
        }
        let r = parse_ref(input)?;
        let base = input.as_ptr() as usize;
        let span = |s: &str| {
            let from = s.as_ptr() as usize - base;
            (from as u32, (from + s.len()) as u32)
        };
        let (upstream, revision) = (span(r.upstream), span(r.revision));
        Ok(DpkgVersion {
            text: input.into(),
            epoch: r.epoch,
            upstream,
            revision,
        })
    }

    /// The borrowed view of this version.
    pub fn as_ref(&self) -> DpkgVersionRef<'_> {
        DpkgVersionRef {
            epoch: self.epoch,
            upstream: &self.text[self.upstream.0 as usize..self.upstream.1 as usize],
            revision: &self.text[self.revision.0 as usize..self.revision.1 as usize],
        }
    }

    /// The epoch, 0 when the version has none.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version.
    pub fn upstream(&self) -> &str {
        self.as_ref().upstream
    }

    /// The Debian revision, empty when absent.
    pub fn revision(&self) -> &str {
        self.as_ref().revision
    }

    /// The version as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for DpkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text.trim_matches([' ', '\t']))
    }
}

impl fmt::Debug for DpkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DpkgVersion({:?})", self.text)
    }
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().compare(&other.as_ref())
    }
}

impl PartialOrd for DpkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is dpkg's: `1.0`, `0:1.0` and `1.0-0` are the same version.
impl PartialEq for DpkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion {}

impl std::str::FromStr for DpkgVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DpkgVersion::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(input: &str, expect: Expect) {
        let got = match (parse_ref(input), validate(input)) {
            (Ok(v), Ok(())) => format!("ok {}:{}-{}", v.epoch, v.upstream, v.revision),
            (Ok(v), Err(w)) => format!("ok {}:{}-{} but {w}", v.epoch, v.upstream, v.revision),
            (Err(e), _) => format!("error: {e}"),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn parses_parts() {
        check("1:2.30-1~deb12u1", expect!["ok 1:2.30-1~deb12u1"]);
        check("  1.0  ", expect!["ok 0:1.0-"]);
        check("1.2-3-4", expect!["ok 0:1.2-3-4"]);
        check("2:1.0:beta-1", expect!["ok 2:1.0:beta-1"]);
        check("+3:1", expect!["ok 3:1-"]);
        check("-0:1", expect!["ok 0:1-"]);
    }

    #[test]
    fn rejects_what_dpkg_rejects_with_its_words() {
        check(
            "",
            expect![[r#"error: invalid dpkg version "": version string is empty"#]],
        );
        check(
            "0:",
            expect![[r#"error: invalid dpkg version "0:": nothing after colon in version number"#]],
        );
        check(
            "1: ",
            expect![[r#"error: invalid dpkg version "1: ": version number is empty"#]],
        );
        check(
            ":1.0",
            expect![[r#"error: invalid dpkg version ":1.0": epoch in version is empty"#]],
        );
        check(
            "1a:1.0",
            expect![[r#"error: invalid dpkg version "1a:1.0": epoch in version is not number"#]],
        );
        check(
            "-1:0-1",
            expect![[r#"error: invalid dpkg version "-1:0-1": epoch in version is negative"#]],
        );
        check(
            "2147483648:1",
            expect![[r#"error: invalid dpkg version "2147483648:1": epoch in version is too big"#]],
        );
        check(
            "999999999999999999999999:0-1",
            expect![[
                r#"error: invalid dpkg version "999999999999999999999999:0-1": epoch in version is too big"#
            ]],
        );
        check(
            "1.0-",
            expect![[r#"error: invalid dpkg version "1.0-": revision number is empty"#]],
        );
        check(
            "0 0-1",
            expect![[r#"error: invalid dpkg version "0 0-1": version string has embedded spaces"#]],
        );
        check(
            "abc3-0",
            expect![[
                r#"ok 0:abc3-0 but invalid dpkg version "abc3-0": version number does not start with digit"#
            ]],
        );
        check(
            "0!-0",
            expect![[
                r#"ok 0:0!-0 but invalid dpkg version "0!-0": invalid character '!' in version number"#
            ]],
        );
        check(
            "0:0-0:0",
            expect![[
                r#"ok 0:0-0:0 but invalid dpkg version "0:0-0:0": invalid character ':' in revision number"#
            ]],
        );
        check(
            "0-0:0",
            expect![[r#"error: invalid dpkg version "0-0:0": epoch in version is not number"#]],
        );
        check(
            "1.0é",
            expect![[
                r#"ok 0:1.0é- but invalid dpkg version "1.0é": invalid character 'é' in version number"#
            ]],
        );
    }

    #[test]
    fn forty_digit_runs_do_not_overflow() {
        let a = format!("1.{}", "9".repeat(40));
        let b = format!("1.1{}", "0".repeat(40));
        assert_eq!(compare(&a, &b), Ok(Ordering::Less));
    }

    #[test]
    fn tilde_sorts_before_the_end() {
        assert_eq!(compare("1.0~rc1", "1.0"), Ok(Ordering::Less));
        assert_eq!(compare("1.0~~", "1.0~"), Ok(Ordering::Less));
        assert_eq!(compare("2.30-1~deb12u1", "2.30-1"), Ok(Ordering::Less));
        assert_eq!(compare("1.0+b1", "1.0"), Ok(Ordering::Greater));
    }

    #[test]
    fn owned_equals_borrowed() {
        let v = DpkgVersion::parse("1:2.3-4").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (1, "2.3", "4"));
        assert_eq!(
            DpkgVersion::parse("1.0").unwrap(),
            DpkgVersion::parse("0:1.0-0").unwrap()
        );
    }
}
