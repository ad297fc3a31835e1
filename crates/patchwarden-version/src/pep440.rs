//! Python package versions (PEP 440), ordered as `packaging.version` orders them.
//!
//! A version is `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the spellings PEP 440
//! normalises (`alpha`, `beta`, `c`, `pre`, `preview`, `rev`, `r`, `-N` as a post-release,
//! optional separators, a leading `v`, any case, surrounding white space). Ordering is
//! `packaging`'s `_cmpkey`: epoch, release without trailing zeros, then a dev-only release
//! before its pre-releases, pre-releases before the release, post-releases after it, dev
//! releases before what they lead to, and local labels after the public version (numeric
//! segments above alphabetic ones).
//!
//! Strings that are not PEP 440 versions are ordered as setuptools' `LegacyVersion` did
//! (packaging < 22), below every PEP 440 version, because PyPI still holds such releases and
//! OSV's reference implementation orders them that way. Only an empty string is an error.

use std::cmp::Ordering;
use std::fmt;

use crate::digits::{cmp_digits, digit_run, trim_zeros};
use crate::{Reason, Scheme, VersionError};

/// A number of any length, kept as its digits without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Num(Box<str>);

impl Num {
    fn new(digits: &str) -> Self {
        let t = trim_zeros(digits.as_bytes());
        // `t` is a suffix of ASCII digits, so it is valid UTF-8.
        Num(std::str::from_utf8(t).unwrap_or("").into())
    }
    fn zero() -> Self {
        Num("".into())
    }
    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A pre-release kind; the derive order is PEP 440's: `a` < `b` < `rc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pre {
    A,
    B,
    Rc,
}

/// One segment of a local label: alphabetic segments sort below numeric ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalSegment {
    Alpha(Box<str>),
    Num(Num),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Public {
    epoch: Num,
    /// The release numbers with trailing zeros removed, as `_cmpkey` does.
    release: Vec<Num>,
    pre: Option<(Pre, Num)>,
    post: Option<Num>,
    dev: Option<Num>,
    local: Option<Vec<LocalSegment>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Pep440(Public),
    /// setuptools' legacy key: the parts after `_legacy_cmpkey`.
    Legacy(Vec<Box<str>>),
}

/// A parsed Python package version.
#[derive(Clone)]
pub struct Pep440Version {
    text: Box<str>,
    /// Boxed: the parsed form is several times the size of the other schemes' versions, and
    /// every `Version` (an enum of all of them) would otherwise be as large as it — the
    /// advisory index holds hundreds of thousands of them.
    repr: Box<Repr>,
}

/// A cursor over the lowercased version text.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }
    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.i += prefix.len();
            true
        } else {
            false
        }
    }
    fn eat_sep(&mut self) -> bool {
        self.eat("-") || self.eat("_") || self.eat(".")
    }
    fn number(&mut self) -> Option<Num> {
        let n = digit_run(self.rest().as_bytes());
        if n == 0 {
            return None;
        }
        let num = Num::new(&self.rest()[..n]);
        self.i += n;
        Some(num)
    }
    /// Tries `[-_.]?LABEL[-_.]?N?` for the first label that matches, longest first.
    fn labelled(&mut self, labels: &[&str]) -> Option<(usize, Num)> {
        let start = self.i;
        self.eat_sep();
        let Some(which) = labels.iter().position(|l| self.rest().starts_with(l)) else {
            self.i = start;
            return None;
        };
        self.i += labels[which].len();
        let before_sep = self.i;
        self.eat_sep();
        match self.number() {
            Some(n) => Some((which, n)),
            None => {
                // The separator belonged to what follows, not to an omitted number.
                self.i = before_sep;
                Some((which, Num::zero()))
            }
        }
    }
}

/// Parses a strict PEP 440 version from lowercased, trimmed text.
fn parse_public(s: &str) -> Option<Public> {
    let mut c = Cursor { s, i: 0 };
    c.eat("v");
    let first = c.number()?;
    let (epoch, first) = if c.eat("!") {
        (first, c.number()?)
    } else {
        (Num::zero(), first)
    };
    let mut release = vec![first];
    while c.rest().starts_with('.') && c.rest()[1..].starts_with(|ch: char| ch.is_ascii_digit()) {
        c.i += 1;
        release.push(c.number()?);
    }
    while release.last().is_some_and(Num::is_zero) {
        release.pop();
    }

    // Longest spellings first so that "alpha" is not read as "a" followed by garbage.
    const PRE: [&str; 8] = ["preview", "alpha", "beta", "pre", "rc", "a", "b", "c"];
    let pre = c.labelled(&PRE).map(|(i, n)| {
        let kind = match PRE[i] {
            "alpha" | "a" => Pre::A,
            "beta" | "b" => Pre::B,
            _ => Pre::Rc,
        };
        (kind, n)
    });

    let post = {
        let start = c.i;
        if c.eat("-") {
            match c.number() {
                Some(n) => Some(n),
                None => {
                    c.i = start;
                    c.labelled(&["post", "rev", "r"]).map(|(_, n)| n)
                }
            }
        } else {
            c.labelled(&["post", "rev", "r"]).map(|(_, n)| n)
        }
    };
    let dev = c.labelled(&["dev"]).map(|(_, n)| n);

    let local = if c.eat("+") {
        let label = c.rest();
        let mut segments = Vec::new();
        for seg in label.split(['-', '_', '.']) {
            if seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            segments.push(if seg.bytes().all(|b| b.is_ascii_digit()) {
                LocalSegment::Num(Num::new(seg))
            } else {
                LocalSegment::Alpha(seg.into())
            });
        }
        c.i = s.len();
        Some(segments)
    } else {
        None
    };
    if !c.rest().is_empty() {
        return None;
    }
    Some(Public {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// setuptools' `_legacy_cmpkey`, from packaging 21.3 `version.py`.
fn legacy_key(s: &str) -> Vec<Box<str>> {
    let mut parts: Vec<Box<str>> = Vec::new();
    let mut push = |part: &str| {
        let part = match part {
            "pre" | "preview" | "rc" => "c",
            "-" => "final-",
            "dev" => "@",
            p => p,
        };
        if part.is_empty() || part == "." {
            return;
        }
        let part: Box<str> = if part.as_bytes()[0].is_ascii_digit() {
            format!("{part:0>8}").into()
        } else {
            format!("*{part}").into()
        };
        if part.starts_with('*') {
            if &*part < "*final" {
                while parts.last().is_some_and(|p| &**p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| &**p == "00000000") {
                parts.pop();
            }
        }
        parts.push(part);
    };
    // re.split(r"(\d+|[a-z]+|\.|-)") yields the matches and the text between them.
    let b = s.as_bytes();
    let (mut i, mut between) = (0, 0);
    while i < b.len() {
        let n = if b[i].is_ascii_digit() {
            digit_run(&b[i..])
        } else if b[i].is_ascii_lowercase() {
            b[i..].iter().take_while(|c| c.is_ascii_lowercase()).count()
        } else if b[i] == b'.' || b[i] == b'-' {
            1
        } else {
            // Not a token: part of the text between tokens. Step over a whole character.
            i += s[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        push(&s[between..i]);
        push(&s[i..i + n]);
        i += n;
        between = i;
    }
    push(&s[between..]);
    push("final");
    parts
}

impl Pep440Version {
    /// Parses a version; strings that are not PEP 440 become legacy versions.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(VersionError::new(
                Scheme::Pep440,
                input,
                Reason::Pep440("version string is empty"),
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        let repr = match parse_public(&lower) {
            Some(p) => Repr::Pep440(p),
            None => Repr::Legacy(legacy_key(&lower)),
        };
        Ok(Pep440Version {
            text: input.into(),
            repr: Box::new(repr),
        })
    }

    /// Whether this is a PEP 440 version (not a legacy one).
    pub fn is_pep440(&self) -> bool {
        matches!(*self.repr, Repr::Pep440(_))
    }

    /// Whether this is a pre-release (including dev releases), as PEP 440 defines it.
    pub fn is_prerelease(&self) -> bool {
        matches!(&*self.repr, Repr::Pep440(p) if p.pre.is_some() || p.dev.is_some())
    }

    /// The version as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Compares two version strings as `packaging.version` does.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Pep440Version::parse(a)?.cmp(&Pep440Version::parse(b)?))
}

fn cmp_public(a: &Public, b: &Public) -> Ordering {
    // `_cmpkey`'s infinities as an explicit order: a dev-only release sorts before its
    // pre-releases, which sort before the release itself.
    fn pre_key(p: &Public) -> (u8, Option<&(Pre, Num)>) {
        match (&p.pre, &p.post, &p.dev) {
            (None, None, Some(_)) => (0, None),
            (Some(pre), _, _) => (1, Some(pre)),
            (None, _, _) => (2, None),
        }
    }
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| a.release.cmp(&b.release))
        .then_with(|| pre_key(a).cmp(&pre_key(b)))
        // No post-release sorts first; no dev release sorts last.
        .then_with(|| a.post.cmp(&b.post))
        .then_with(|| match (&a.dev, &b.dev) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.cmp(y),
        })
        .then_with(|| a.local.cmp(&b.local))
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&*self.repr, &*other.repr) {
            (Repr::Pep440(a), Repr::Pep440(b)) => cmp_public(a, b),
            // Legacy versions have epoch -1: below every PEP 440 version.
            (Repr::Legacy(_), Repr::Pep440(_)) => Ordering::Less,
            (Repr::Pep440(_), Repr::Legacy(_)) => Ordering::Greater,
            (Repr::Legacy(a), Repr::Legacy(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is PEP 440's: `1.0`, `1.0.0` and `v1.0` are the same version.
impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

impl fmt::Display for Pep440Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pep440Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pep440Version({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(a: &str, b: &str) {
        assert_eq!(compare(a, b), Ok(Ordering::Less), "{a} < {b}");
        assert_eq!(compare(b, a), Ok(Ordering::Greater), "{b} > {a}");
    }

    #[test]
    fn pep440_order_from_the_specification() {
        let ordered = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for w in ordered.windows(2) {
            lt(w[0], w[1]);
        }
    }

    #[test]
    fn spellings_normalise() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("v1.0", "1.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0-c1", "1.0rc1"),
            ("1.0.preview2", "1.0rc2"),
            ("1.0-1", "1.0.post1"),
            ("1.0-r", "1.0.post0"),
            ("1.0.dev", "1.0.dev0"),
            (" 1!2.0 ", "1!2"),
            ("1.0+ubuntu-1", "1.0+ubuntu.1"),
        ] {
            assert_eq!(compare(a, b), Ok(Ordering::Equal), "{a} = {b}");
        }
    }

    #[test]
    fn legacy_versions_sort_first() {
        assert!(!Pep440Version::parse("0.1-bulbasaur").unwrap().is_pep440());
        lt("0.1-bulbasaur", "0.1-charmander");
        lt("zzz", "0.0.1");
        assert!(Pep440Version::parse("  ").is_err());
    }
}
