//! Alpine versions, ordered as apk-tools orders them, in both of its generations.
//!
//! An apk version is `digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN}`. Suffixes `_alpha`,
//! `_beta`, `_pre` and `_rc` mark pre-releases (before the bare version); `_cvs`, `_svn`,
//! `_git`, `_hg` and `_p` come after it.
//!
//! apk-tools 3.x (Alpine 3.23 and later; [`Rules::V3`]) and 2.x (Alpine 3.22 and earlier;
//! [`Rules::V2`]) differ in places, and the hosts we read run one or the other, so both are
//! ported from their `src/version.c` and the caller picks one explicitly:
//!
//! - 3.x knows the `~hash` commit part; 2.x does not accept it.
//! - In a non-first number with a leading zero, 3.x compares the digits as a string
//!   (`8.2.001` < `8.2.0`? no: `8.2.0` < `8.2.001`), 2.x treats the zeros as a negative weight.
//! - 2.x accepts suffixes by prefix (`_pre` also matches `_preview`…) and refuses numbers of 18
//!   digits or more; 3.x requires the exact suffix and reads numbers of any length into a
//!   64-bit value that wraps, which we reproduce because it is what apk decides.
//!
//! apk compares token by token and stops at the first difference, so it orders some strings
//! it would not accept as a version (its own test suite has `1.0 < 1.0bc`). We give apk's
//! answer when it is decided before any invalid part, and an error
//! ([`Reason::ApkUndecidable`] or the token error) when apk's answer would rest on a part it
//! does not accept — so an invalid version is never silently equal to another.

use std::cmp::Ordering;

use crate::error::ApkFound;
use crate::{Reason, Scheme, VersionError};

/// Which apk-tools generation's rules to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rules {
    /// apk-tools 2.x (2.14), used by Alpine 3.22 and earlier.
    V2,
    /// apk-tools 3.x, used by Alpine 3.23 and later.
    V3,
}

impl Rules {
    fn scheme(self) -> Scheme {
        match self {
            Rules::V2 => Scheme::Apk2,
            Rules::V3 => Scheme::Apk,
        }
    }
}

/// Checks that apk-tools would accept `input` as a version (`apk_version_validate`).
pub fn validate(input: &str, rules: Rules) -> Result<(), VersionError> {
    let r = if input.is_empty() {
        Err(Reason::Empty)
    } else {
        match rules {
            Rules::V3 => v3::validate(input.as_bytes()),
            Rules::V2 => v2::validate(input.as_bytes()),
        }
    };
    r.map_err(|reason| VersionError::new(rules.scheme(), input, reason))
}

/// Compares two versions as `apk version -t` does, under the given rules.
pub fn compare(a: &str, b: &str, rules: Rules) -> Result<Ordering, VersionError> {
    compare_fuzzy(a, b, rules, false)
}

/// apk's fuzzy comparison: with `fuzzy`, `a` equals `b` when `b` is a prefix of `a` at token
/// boundaries (`3.6.9 ~ 3.6`). Used by dependency operators such as `~`, `<~`, `>~`.
pub fn compare_fuzzy(
    a: &str,
    b: &str,
    rules: Rules,
    fuzzy: bool,
) -> Result<Ordering, VersionError> {
    // apk-tools 2.x reads "" as "0"; an empty version is never meaningful, so both refuse it.
    for s in [a, b] {
        if s.is_empty() {
            return Err(VersionError::new(rules.scheme(), s, Reason::Empty));
        }
    }
    let r = match rules {
        Rules::V3 => v3::compare(a.as_bytes(), b.as_bytes(), fuzzy),
        Rules::V2 => v2::compare(a.as_bytes(), b.as_bytes(), fuzzy),
    };
    r.map_err(|(side, reason)| {
        VersionError::new(rules.scheme(), if side == Side::B { b } else { a }, reason)
    })
}

/// Whether `a op b` holds for an apk dependency operator (`<`, `<=`, `=`, `>=`, `>`, `~`,
/// `<~`, `>~`, and the negated forms with a leading `!`), as `apk_version_match` decides.
pub fn matches(a: &str, op: &str, b: &str, rules: Rules) -> Result<bool, VersionError> {
    let (negate, op) = match op.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, op),
    };
    let (mut less, mut equal, mut greater, mut fuzzy) = (false, false, false, false);
    for c in op.chars() {
        match c {
            '<' => less = true,
            '>' => greater = true,
            '=' => equal = true,
            '~' => (fuzzy, equal) = (true, true),
            _ => {
                return Err(VersionError::new(
                    rules.scheme(),
                    op,
                    Reason::ApkToken {
                        at: 0,
                        found: ApkFound::Char(c),
                    },
                ));
            }
        }
    }
    let ok = match compare_fuzzy(a, b, rules, fuzzy)? {
        Ordering::Less => less,
        Ordering::Equal => equal,
        Ordering::Greater => greater,
    };
    Ok(ok != negate)
}

/// Which side of a comparison an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

fn char_err(s: &[u8], at: usize) -> Reason {
    let found = match s.get(at) {
        Some(&c) if c.is_ascii() => ApkFound::Char(char::from(c)),
        Some(_) => ApkFound::Char(
            std::str::from_utf8(&s[at..])
                .ok()
                .and_then(|t| t.chars().next())
                .unwrap_or(char::REPLACEMENT_CHARACTER),
        ),
        None => ApkFound::MissingNumber,
    };
    Reason::ApkToken { at, found }
}

/// apk-tools 3.x, `src/version.c` on the master branch.
mod v3 {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Tok {
        InitialDigit,
        Digit,
        Letter,
        Suffix,
        SuffixNo,
        CommitHash,
        RevisionNo,
        End,
        Invalid,
    }

    /// Suffix weights as in apk's `DECLARE_SUFFIXES`; `NONE` sits between pre- and
    /// post-release suffixes.
    const SUFFIX_NONE: u8 = 5;

    fn suffix_value(s: &[u8]) -> Option<u8> {
        Some(match s {
            b"alpha" => 1,
            b"beta" => 2,
            b"pre" => 3,
            b"rc" => 4,
            b"cvs" => 6,
            b"svn" => 7,
            b"git" => 8,
            b"hg" => 9,
            b"p" => 10,
            _ => return None,
        })
    }

    struct State<'a> {
        s: &'a [u8],
        pos: usize,
        token: Tok,
        suffix: u8,
        number: u64,
        value: &'a [u8],
        /// Why the token is `Invalid`.
        error: Option<Reason>,
    }

    impl<'a> State<'a> {
        fn first(s: &'a [u8]) -> Self {
            let mut t = State {
                s,
                pos: 0,
                token: Tok::InitialDigit,
                suffix: 0,
                number: 0,
                value: &[],
                error: None,
            };
            t.digits();
            t
        }

        fn invalid(&mut self, reason: Reason) {
            self.token = Tok::Invalid;
            self.error = Some(reason);
        }

        /// `token_parse_digits`: a 64-bit number that wraps on overflow, as apk's
        /// `apk_blob_pull_uint` does.
        fn digits(&mut self) {
            let start = self.pos;
            let mut n: u64 = 0;
            while let Some(&c) = self.s.get(self.pos).filter(|c| c.is_ascii_digit()) {
                n = n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                self.pos += 1;
            }
            self.number = n;
            self.value = &self.s[start..self.pos];
            if self.value.is_empty() {
                self.invalid(char_err(self.s, self.pos));
            }
        }

        /// `token_next`.
        fn next(&mut self) {
            let Some(&c) = self.s.get(self.pos) else {
                self.token = Tok::End;
                return;
            };
            let at = self.pos;
            match c {
                b'a'..=b'z' => {
                    if self.token > Tok::Digit {
                        return self.invalid(char_err(self.s, at));
                    }
                    self.value = &self.s[at..at + 1];
                    self.token = Tok::Letter;
                    self.pos += 1;
                }
                b'.' | b'0'..=b'9' => {
                    if c == b'.' {
                        if self.token > Tok::Digit {
                            return self.invalid(char_err(self.s, at));
                        }
                        self.pos += 1;
                    }
                    self.token = match self.token {
                        Tok::InitialDigit | Tok::Digit => Tok::Digit,
                        Tok::Suffix => Tok::SuffixNo,
                        _ => return self.invalid(char_err(self.s, at)),
                    };
                    self.digits();
                }
                b'_' => {
                    if self.token > Tok::SuffixNo {
                        return self.invalid(char_err(self.s, at));
                    }
                    self.pos += 1;
                    let n = self.s[self.pos..]
                        .iter()
                        .take_while(|c| c.is_ascii_lowercase())
                        .count();
                    self.value = &self.s[self.pos..self.pos + n];
                    self.pos += n;
                    match suffix_value(self.value) {
                        Some(v) => {
                            self.suffix = v;
                            self.token = Tok::Suffix;
                        }
                        None => self.invalid(Reason::ApkToken {
                            at,
                            found: ApkFound::UnknownSuffix,
                        }),
                    }
                }
                b'~' => {
                    if self.token >= Tok::CommitHash {
                        return self.invalid(char_err(self.s, at));
                    }
                    self.pos += 1;
                    let n = self.s[self.pos..]
                        .iter()
                        .take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                        .count();
                    self.value = &self.s[self.pos..self.pos + n];
                    self.pos += n;
                    if n == 0 {
                        return self.invalid(char_err(self.s, self.pos));
                    }
                    self.token = Tok::CommitHash;
                }
                b'-' => {
                    if self.token >= Tok::RevisionNo || self.s.get(at + 1) != Some(&b'r') {
                        return self.invalid(char_err(self.s, at));
                    }
                    self.pos += 2;
                    self.token = Tok::RevisionNo;
                    self.digits();
                }
                _ => self.invalid(char_err(self.s, at)),
            }
        }
    }

    /// `token_cmp`, for two tokens of the same kind.
    fn token_cmp(a: &State<'_>, b: &State<'_>) -> Ordering {
        let string_sort = |a: &[u8], b: &[u8]| a.cmp(b);
        match a.token {
            // A leading zero in either number: compare the digits as strings (Gentoo's rule).
            Tok::Digit if a.value[0] == b'0' || b.value[0] == b'0' => string_sort(a.value, b.value),
            Tok::Digit | Tok::InitialDigit | Tok::SuffixNo | Tok::RevisionNo => {
                a.number.cmp(&b.number)
            }
            Tok::Letter => a.value[0].cmp(&b.value[0]),
            Tok::Suffix => a.suffix.cmp(&b.suffix),
            _ => string_sort(a.value, b.value),
        }
    }

    pub(super) fn validate(s: &[u8]) -> Result<(), Reason> {
        let mut t = State::first(s);
        while t.token < Tok::End {
            t.next();
        }
        match t.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(super) fn compare(a: &[u8], b: &[u8], fuzzy: bool) -> Result<Ordering, (Side, Reason)> {
        let (mut ta, mut tb) = (State::first(a), State::first(b));
        while ta.token == tb.token && ta.token < Tok::End {
            let r = token_cmp(&ta, &tb);
            if r != Ordering::Equal {
                return Ok(r);
            }
            ta.next();
            tb.next();
        }
        // apk would decide from here with an invalid token in hand: refuse instead.
        if let Some(e) = ta.error {
            return Err((Side::A, e));
        }
        if let Some(e) = tb.error {
            return Err((Side::B, e));
        }
        if ta.token == tb.token || (tb.token == Tok::End && fuzzy) {
            return Ok(Ordering::Equal);
        }
        // The shared leading tokens are equal: the longer version is newer, unless what it
        // has next is a pre-release suffix.
        if ta.token == Tok::Suffix && ta.suffix < SUFFIX_NONE {
            return Ok(Ordering::Less);
        }
        if tb.token == Tok::Suffix && tb.suffix < SUFFIX_NONE {
            return Ok(Ordering::Greater);
        }
        Ok(tb.token.cmp(&ta.token))
    }
}

/// apk-tools 2.x, `src/version.c` on the 2.14-stable branch.
mod v2 {
    use super::*;

    /// Token kinds; the order matters, as in apk's `enum PARTS`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Tok {
        Invalid,
        DigitOrZero,
        Digit,
        Letter,
        Suffix,
        SuffixNo,
        RevisionNo,
        End,
    }

    const PRE_SUFFIXES: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
    const POST_SUFFIXES: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];

    struct Reader<'a> {
        s: &'a [u8],
        pos: usize,
        /// The kind of the next token, as apk's `*type`.
        kind: Tok,
        error: Option<Reason>,
    }

    impl<'a> Reader<'a> {
        fn new(s: &'a [u8]) -> Self {
            Reader {
                s,
                pos: 0,
                kind: Tok::Digit,
                error: None,
            }
        }

        fn rest(&self) -> &'a [u8] {
            &self.s[self.pos..]
        }

        fn fail(&mut self, reason: Reason) -> Option<i64> {
            self.kind = Tok::Invalid;
            self.error.get_or_insert(reason);
            None
        }

        /// `next_token`: decides the kind of the token after the one just read.
        fn next_kind(&mut self) {
            let rest = self.rest();
            let prev = self.kind;
            let at = self.pos;
            let c = rest[0];
            // apk-tools 2.x also ends a version at a NUL byte; no version it reads from its
            // database can hold one, so for us it is just an invalid character.
            let mut n = if matches!(prev, Tok::Digit | Tok::DigitOrZero) && c.is_ascii_lowercase() {
                Tok::Letter
            } else if prev == Tok::Letter && c.is_ascii_digit() {
                Tok::Digit
            } else if prev == Tok::Suffix && c.is_ascii_digit() {
                Tok::SuffixNo
            } else {
                let n = match c {
                    b'.' => Tok::DigitOrZero,
                    b'_' => Tok::Suffix,
                    b'-' if rest.get(1) == Some(&b'r') => {
                        self.pos += 1;
                        Tok::RevisionNo
                    }
                    _ => Tok::Invalid,
                };
                self.pos += 1;
                n
            };
            if n < prev
                && !((n == Tok::DigitOrZero && prev == Tok::Digit)
                    || (n == Tok::Suffix && prev == Tok::SuffixNo)
                    || (n == Tok::Digit && prev == Tok::Letter))
            {
                n = Tok::Invalid;
            }
            if n == Tok::Invalid {
                self.error.get_or_insert(char_err(self.s, at));
            }
            self.kind = n;
        }

        /// `get_token`: reads the token of the current kind and returns its weight, or `None`
        /// when this token itself is invalid (apk returns -1 then).
        fn token(&mut self) -> Option<i64> {
            let rest = self.rest();
            if rest.is_empty() {
                self.kind = Tok::End;
                return Some(0);
            }
            let at = self.pos;
            let mut i = 0;
            let mut next = None;
            let v: i64 = match self.kind {
                Tok::DigitOrZero if rest[0] == b'0' => {
                    // Leading zeros weigh negatively: 1.01 < 1.1, and 1.001 < 1.01.
                    while i + 1 < rest.len() && rest[i + 1] == b'0' {
                        i += 1;
                    }
                    next = Some(Tok::Digit);
                    -(i as i64)
                }
                Tok::DigitOrZero | Tok::Digit | Tok::SuffixNo | Tok::RevisionNo => {
                    let mut v: i64 = 0;
                    while i < rest.len() && rest[i].is_ascii_digit() {
                        // Capped at 18 digits just below, so this cannot overflow.
                        if i < 18 {
                            v = v * 10 + i64::from(rest[i] - b'0');
                        }
                        i += 1;
                    }
                    if i >= 18 {
                        return self.fail(Reason::ApkToken {
                            at,
                            found: ApkFound::NumberTooLong,
                        });
                    }
                    v
                }
                Tok::Letter => {
                    i = 1;
                    i64::from(rest[0])
                }
                Tok::Suffix => {
                    let pre = PRE_SUFFIXES.iter().position(|s| rest.starts_with(s));
                    let post = POST_SUFFIXES.iter().position(|s| rest.starts_with(s));
                    match (pre, post) {
                        (Some(p), _) => {
                            i = PRE_SUFFIXES[p].len();
                            p as i64 - PRE_SUFFIXES.len() as i64
                        }
                        (None, Some(p)) => {
                            i = POST_SUFFIXES[p].len();
                            p as i64
                        }
                        (None, None) => {
                            return self.fail(Reason::ApkToken {
                                at,
                                found: ApkFound::UnknownSuffix,
                            });
                        }
                    }
                }
                Tok::Invalid | Tok::End => {
                    return self.fail(char_err(self.s, at));
                }
            };
            self.pos += i;
            if self.pos == self.s.len() {
                self.kind = Tok::End;
            } else if let Some(n) = next {
                self.kind = n;
            } else {
                self.next_kind();
            }
            Some(v)
        }
    }

    pub(super) fn validate(s: &[u8]) -> Result<(), Reason> {
        let mut r = Reader::new(s);
        while r.kind != Tok::End && r.kind != Tok::Invalid {
            r.token();
        }
        match r.error {
            Some(e) if r.kind == Tok::Invalid => Err(e),
            _ => Ok(()),
        }
    }

    pub(super) fn compare(a: &[u8], b: &[u8], fuzzy: bool) -> Result<Ordering, (Side, Reason)> {
        let (mut ra, mut rb) = (Reader::new(a), Reader::new(b));
        let (mut av, mut bv) = (0i64, 0i64);
        while ra.kind == rb.kind && ra.kind != Tok::End && ra.kind != Tok::Invalid && av == bv {
            let (x, y) = (ra.token(), rb.token());
            // A token that is itself invalid has no weight to compare.
            let Some(x) = x else {
                return Err((Side::A, ra.error.unwrap_or(Reason::ApkUndecidable)));
            };
            let Some(y) = y else {
                return Err((Side::B, rb.error.unwrap_or(Reason::ApkUndecidable)));
            };
            (av, bv) = (x, y);
        }
        if av != bv {
            return Ok(av.cmp(&bv));
        }
        let undecidable = |r: &Reader<'_>| r.error.unwrap_or(Reason::ApkUndecidable);
        if ra.kind == Tok::Invalid {
            return Err((Side::A, undecidable(&ra)));
        }
        if rb.kind == Tok::Invalid {
            return Err((Side::B, undecidable(&rb)));
        }
        if ra.kind == rb.kind || fuzzy {
            return Ok(Ordering::Equal);
        }
        // Equal so far: the longer version is newer unless it continues with a pre-release
        // suffix. apk peeks at that suffix's weight.
        for (r, side, pre) in [
            (&ra, Side::A, Ordering::Less),
            (&rb, Side::B, Ordering::Greater),
        ] {
            if r.kind == Tok::Suffix {
                let mut peek = Reader {
                    s: r.s,
                    pos: r.pos,
                    kind: r.kind,
                    error: None,
                };
                match peek.token() {
                    None => return Err((side, undecidable(&peek))),
                    Some(w) if w < 0 => return Ok(pre),
                    Some(_) => {}
                }
            }
        }
        Ok(rb.kind.cmp(&ra.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generations_differ_where_apk_does() {
        use Ordering::*;
        assert_eq!(compare("8.2.0", "8.2.001", Rules::V3), Ok(Less));
        assert_eq!(compare("8.2.0", "8.2.001", Rules::V2), Ok(Greater));
        assert_eq!(compare("1.0~1234", "1.0~2345", Rules::V3), Ok(Less));
        assert!(compare("1.0~1234", "1.0~2345", Rules::V2).is_err());
    }

    #[test]
    fn decided_before_the_invalid_part() {
        // apk-tools' own suite: "1.0 < 1.0bc  # invalid. do string sort".
        assert_eq!(compare("1.0", "1.0bc", Rules::V3), Ok(Ordering::Less));
        assert!(validate("1.0bc", Rules::V3).is_err());
        // Equal up to an invalid part: apk's answer would be arbitrary.
        let e = compare("1.0_foo", "1.0", Rules::V3).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid apk version "1.0_foo": unexpected unknown suffix at byte 3 (apk versions are digit{.digit}…{letter}{_suffix{N}}…{~hash}{-rN})"#
        );
        assert!(compare("1.0_foo", "1.0", Rules::V2).is_err());
    }

    #[test]
    fn v3_numbers_wrap_like_apk() {
        // 2^64 wraps to 0 in apk-tools 3.x; we agree with what apk decides.
        assert_eq!(
            compare("18446744073709551616", "0", Rules::V3),
            Ok(Ordering::Equal)
        );
        assert!(validate("1234567890123456789", Rules::V2).is_err());
    }

    #[test]
    fn operators() {
        assert_eq!(matches("3.6.9", "~", "3.6", Rules::V3), Ok(true));
        assert_eq!(matches("3.8.0.1", "!~", "3.8.1", Rules::V3), Ok(true));
        assert_eq!(matches("1.0", "<=", "1.0-r0", Rules::V3), Ok(true));
        assert_eq!(matches("1.0-r1", "<=", "1.0-r0", Rules::V3), Ok(false));
    }
}
