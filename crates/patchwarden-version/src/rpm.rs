//! RPM versions: `rpmvercmp` segment ordering and full `[epoch:]version[-release]` (EVR)
//! ordering, as rpm 4.18 does them.
//!
//! [`vercmp`] is rpm's `rpmvercmp` (rpmio/rpmvercmp.c): a string is a sequence of alphabetic
//! or numeric segments separated by anything else; numeric segments compare numerically (any
//! length) and beat alphabetic ones; `~` sorts before everything, even the end of the string;
//! `^` sorts after the end of the string but before any further segment. Identical strings are
//! equal before any of that, which is why `1.1.α` and `1.1.β` are different but equal-ordered.
//!
//! [`compare`] is rpm's `rpmverCmp` (rpmio/rpmver.c, which `rpm.labelCompare` calls): the epoch
//! is the digits before a `:` (missing = `0`), the release is what follows the last `-`. A
//! missing release sorts *before* any release: `1.0` < `1.0-1`. That is the total order rpm uses
//! to sort packages. Dependency matching (`Requires: foo >= 1.0`) is different: there a side
//! without a release matches any release of an equal version; see [`EvrRef::matches_release`].
//!
//! rpm accepts any string. We refuse only what no rpm header can hold and what would make the
//! answer meaningless: an empty string, an empty version, white space and control characters.

use std::cmp::Ordering;
use std::fmt;

use crate::digits::{cmp_digits, resume_after_common_prefix};
use crate::{Reason, Scheme, VersionError};

/// rpm's `rpmvercmp`: orders two version (or release) strings. Total over all strings.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    vercmp_bytes(a.as_bytes(), b.as_bytes())
}

fn vercmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let is_sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    // The identical prefix compares equal: skip it, backing up to the start of the segment it
    // ends in (separators, `~` and `^` there were matched pairwise and are consumed).
    let skip = resume_after_common_prefix(a, b, |c| c.is_ascii_alphanumeric());
    let (mut i, mut j) = (skip, skip);
    while i < a.len() || j < b.len() {
        while i < a.len() && is_sep(a[i]) {
            i += 1;
        }
        while j < b.len() && is_sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());

        // The tilde sorts before everything else.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // The caret sorts like the tilde, except that the end of the string (a base version)
        // sorts before it.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else { break };

        let numeric = ca.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let (si, sj) = (i, j);
        i += a[i..].iter().take_while(|c| class(c)).count();
        j += b[j..].iter().take_while(|c| class(c)).count();
        // A numeric segment against an alphabetic one: numbers are newer.
        if j == sj {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            cmp_digits(&a[si..i], &b[sj..j])
        } else {
            a[si..i].cmp(&b[sj..j])
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// A parsed EVR borrowing from its input. Parsing allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvrRef<'a> {
    /// The epoch digits, `None` when the string has no `N:` prefix. `":1.0"` has epoch `"0"`.
    pub epoch: Option<&'a str>,
    /// The version: after the epoch, before the last hyphen.
    pub version: &'a str,
    /// The release after the last hyphen, `None` when there is no hyphen.
    pub release: Option<&'a str>,
}

/// Parses `[epoch:]version[-release]` as rpm's `parseEVR` splits it.
pub fn parse_ref(input: &str) -> Result<EvrRef<'_>, VersionError> {
    split(input).map_err(|reason| VersionError::new(Scheme::Rpm, input, reason))
}

fn split(input: &str) -> Result<EvrRef<'_>, Reason> {
    let b = input.as_bytes();
    if b.is_empty() {
        return Err(Reason::Empty);
    }
    // White space and control characters: a branch-free fold the compiler vectorises, with
    // the offending byte looked for only when there is one.
    let bad = b.iter().fold(0u8, |bad, &c| {
        bad | u8::from(c <= b' ') | u8::from(c == 0x7f)
    }) != 0;
    if bad {
        let c = b
            .iter()
            .copied()
            .find(|&c| c <= b' ' || c == 0x7f)
            .unwrap_or(b' ');
        return Err(if c == b' ' || c == b'\t' {
            Reason::EmbeddedSpace
        } else {
            Reason::ControlCharacter(char::from(c))
        });
    }
    // The release is short and at the end: look for its hyphen from there.
    let last_hyphen = b.iter().rposition(|&c| c == b'-');
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let (epoch, rest) = if b.get(digits) == Some(&b':') {
        let e = &input[..digits];
        (Some(if e.is_empty() { "0" } else { e }), digits + 1)
    } else {
        (None, 0)
    };
    // Epoch digits hold no hyphen, so the last hyphen is always in the rest.
    let (version, release) = match last_hyphen {
        Some(h) => (&input[rest..h], Some(&input[h + 1..])),
        None => (&input[rest..], None),
    };
    if version.is_empty() {
        return Err(Reason::VersionEmpty);
    }
    Ok(EvrRef {
        epoch,
        version,
        release,
    })
}

impl EvrRef<'_> {
    /// Orders two EVRs as rpm's `rpmverCmp` (and so `rpm.labelCompare`) does.
    pub fn compare(&self, other: &EvrRef<'_>) -> Ordering {
        vercmp(self.epoch.unwrap_or("0"), other.epoch.unwrap_or("0"))
            .then_with(|| vercmp(self.version, other.version))
            .then_with(|| match (self.release, other.release) {
                (Some(a), Some(b)) => vercmp(a, b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }

    /// Whether `self` equals `other` in the sense of rpm's dependency matching, where a side
    /// without a release stands for every release of its version (rpm's `rpmverOverlap` with
    /// `=` on both sides): `foo = 1.0` is satisfied by `1.0-3`.
    pub fn matches_release(&self, other: &EvrRef<'_>) -> bool {
        let epoch = match (self.epoch, other.epoch) {
            (Some(a), Some(b)) => vercmp(a, b),
            (Some(a), None) if cmp_digits(a.as_bytes(), b"0") != Ordering::Equal => {
                Ordering::Greater
            }
            (None, Some(b)) if cmp_digits(b.as_bytes(), b"0") != Ordering::Equal => Ordering::Less,
            _ => Ordering::Equal,
        };
        epoch == Ordering::Equal
            && vercmp(self.version, other.version) == Ordering::Equal
            && match (self.release, other.release) {
                (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                    vercmp(a, b) == Ordering::Equal
                }
                _ => true,
            }
    }
}

/// Compares two EVR strings as `rpm.labelCompare` does, without allocating.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse_ref(a)?.compare(&parse_ref(b)?))
}

/// A parsed, owned EVR.
#[derive(Clone)]
pub struct RpmVersion {
    text: Box<str>,
    /// Byte offsets: the epoch's end (0 when absent), the version's start and end, and the
    /// release's start (`u32::MAX` when absent).
    epoch_end: u32,
    version: (u32, u32),
    release: u32,
}

impl RpmVersion {
    /// Parses `[epoch:]version[-release]`.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        if input.len() >= u32::MAX as usize {
            return Err(VersionError::new(Scheme::Rpm, input, Reason::TooLong));
        }
        let r = parse_ref(input)?;
        let base = input.as_ptr() as usize;
        let offset = |s: &str| (s.as_ptr() as usize - base) as u32;
        let epoch_end = match r.epoch {
            // ":1.0" reports the static "0"; its span in the input is empty.
            Some(e) if input.starts_with(e) && input.as_bytes().get(e.len()) == Some(&b':') => {
                e.len() as u32
            }
            _ => 0,
        };
        Ok(RpmVersion {
            text: input.into(),
            epoch_end,
            version: (
                offset(r.version),
                offset(r.version) + r.version.len() as u32,
            ),
            release: r.release.map_or(u32::MAX, offset),
        })
    }

    /// The borrowed view.
    pub fn as_ref(&self) -> EvrRef<'_> {
        let has_epoch = self.version.0 > 0;
        EvrRef {
            epoch: has_epoch.then(|| {
                let e = &self.text[..self.epoch_end as usize];
                if e.is_empty() { "0" } else { e }
            }),
            version: &self.text[self.version.0 as usize..self.version.1 as usize],
            release: (self.release != u32::MAX).then(|| &self.text[self.release as usize..]),
        }
    }

    /// The epoch as a number (0 when absent, saturating for absurd lengths).
    pub fn epoch(&self) -> u64 {
        self.as_ref()
            .epoch
            .map_or(0, |e| e.parse().unwrap_or(u64::MAX))
    }

    /// The version part.
    pub fn version(&self) -> &str {
        self.as_ref().version
    }

    /// The release part, if any.
    pub fn release(&self) -> Option<&str> {
        self.as_ref().release
    }

    /// The EVR as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for RpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for RpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpmVersion({:?})", self.text)
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().compare(&other.as_ref())
    }
}

impl PartialOrd for RpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is rpm's: `0:1.0-1` and `1.0-1` are the same version.
impl PartialEq for RpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion {}

impl std::str::FromStr for RpmVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RpmVersion::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(input: &str, expect: Expect) {
        let got = match parse_ref(input) {
            Ok(v) => format!("ok {:?} {:?} {:?}", v.epoch, v.version, v.release),
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn splits_as_parse_evr() {
        check(
            "1:2.3-4.el9",
            expect![[r#"ok Some("1") "2.3" Some("4.el9")"#]],
        );
        check("2.3", expect![[r#"ok None "2.3" None"#]]);
        check(":2.3", expect![[r#"ok Some("0") "2.3" None"#]]);
        check("a:2.3-1", expect![[r#"ok None "a:2.3" Some("1")"#]]);
        check("1.0-1-2", expect![[r#"ok None "1.0-1" Some("2")"#]]);
        check("1.0-", expect![[r#"ok None "1.0" Some("")"#]]);
        check(
            "",
            expect![[r#"error: invalid rpm version "": version string is empty"#]],
        );
        check(
            "1:-2",
            expect![[r#"error: invalid rpm version "1:-2": version number is empty"#]],
        );
        check(
            "1.0 1",
            expect![[r#"error: invalid rpm version "1.0 1": version string has embedded spaces"#]],
        );
        check(
            "1.0\n",
            expect![[
                r#"error: invalid rpm version "1.0\n": version string contains the control character '\n'"#
            ]],
        );
    }

    #[test]
    fn missing_release_sorts_first_but_matches_any() {
        let (a, b) = (parse_ref("1.0").unwrap(), parse_ref("1.0-1").unwrap());
        assert_eq!(a.compare(&b), Ordering::Less);
        assert!(a.matches_release(&b));
        assert!(!parse_ref("1:1.0").unwrap().matches_release(&b));
        assert!(parse_ref("0:1.0").unwrap().matches_release(&b));
    }

    #[test]
    fn owned_round_trips() {
        for s in ["1:2.3-4", ":2.3-4", "2.3", "2.3-", "007:1-1"] {
            let v = RpmVersion::parse(s).unwrap();
            assert_eq!(v.as_ref(), parse_ref(s).unwrap(), "{s}");
        }
        assert_eq!(RpmVersion::parse("007:1-1").unwrap().epoch(), 7);
    }

    #[test]
    fn tilde_and_caret() {
        assert_eq!(vercmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(vercmp("1.0^git1", "1.0"), Ordering::Greater);
        assert_eq!(vercmp("1.0^git1", "1.0.1"), Ordering::Less);
        assert_eq!(vercmp("1.0^", "1.0"), Ordering::Greater);
    }
}
