//! The one error type of the crate: which scheme, which input, and what is wrong with it.

use std::fmt;

use crate::Scheme;

/// How much of an offending input an error keeps: enough to recognise it, never a copy of a
/// 2 GB field.
const MAX_SHOWN: usize = 80;

/// A version string that its scheme does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheme} version {input}: {reason}")]
pub struct VersionError {
    /// The scheme whose rules the input broke.
    pub scheme: Scheme,
    /// The input, quoted and shortened to a readable length.
    pub input: Shown,
    /// What is wrong, in the package manager's own terms.
    pub reason: Reason,
}

impl VersionError {
    pub(crate) fn new(scheme: Scheme, input: &str, reason: Reason) -> Self {
        VersionError {
            scheme,
            input: Shown::new(input),
            reason,
        }
    }
}

/// An input as it appears in an error: quoted, escaped, and cut to [`MAX_SHOWN`] characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    fn new(input: &str) -> Self {
        let mut out = String::new();
        let mut chars = input.chars();
        for c in chars.by_ref().take(MAX_SHOWN) {
            out.extend(c.escape_debug());
        }
        if chars.next().is_some() {
            out.push('…');
        }
        Shown(out)
    }

    /// The shown text, without quotes.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What is wrong with a version. The wording follows the package manager's own messages
/// where it has them (dpkg's `parseversion`), so that people recognise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    #[error("version string is empty")]
    Empty,
    #[error("version string is longer than 4 GiB")]
    TooLong,
    #[error("version string has embedded spaces")]
    EmbeddedSpace,
    #[error("version string contains the control character {0:?}")]
    ControlCharacter(char),
    #[error("epoch in version is empty")]
    EpochEmpty,
    #[error("epoch in version is not number")]
    EpochNotNumber,
    #[error("epoch in version is negative")]
    EpochNegative,
    #[error("epoch in version is too big")]
    EpochTooBig,
    #[error("nothing after colon in version number")]
    NothingAfterColon,
    #[error("revision number is empty")]
    RevisionEmpty,
    #[error("version number is empty")]
    VersionEmpty,
    #[error("version number does not start with digit")]
    VersionNotDigit,
    #[error("invalid character {0:?} in version number")]
    InvalidVersionChar(char),
    #[error("invalid character {0:?} in revision number")]
    InvalidRevisionChar(char),
    /// apk-tools stops reading a version at the first token it does not accept.
    #[error(
        "unexpected {found} at byte {at} (apk versions are digit{{.digit}}…{{letter}}{{_suffix{{N}}}}…{{~hash}}{{-rN}})"
    )]
    ApkToken { at: usize, found: ApkFound },
    /// Two apk versions whose order apk-tools decides only by reading past an invalid part;
    /// apk would give an arbitrary answer, we give this error.
    #[error("the order is decided by a part of the version that apk does not accept")]
    ApkUndecidable,
    #[error("{0}")]
    Semver(&'static str),
    #[error("{0}")]
    Pep440(&'static str),
}

/// What apk-tools found where it expected a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApkFound {
    /// A byte that cannot start any token at this point.
    Char(char),
    /// A suffix other than alpha, beta, pre, rc, cvs, svn, git, hg or p.
    UnknownSuffix,
    /// A number longer than apk-tools 2.x reads (18 digits or more).
    NumberTooLong,
    /// A `.`, `_` or `-r` with no digits or letters after it.
    MissingNumber,
}

impl fmt::Display for ApkFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApkFound::Char(c) => write!(f, "character {c:?}"),
            ApkFound::UnknownSuffix => f.write_str("unknown suffix"),
            ApkFound::NumberTooLong => f.write_str("number of 18 or more digits"),
            ApkFound::MissingNumber => f.write_str("missing number"),
        }
    }
}
