//! dpkg's database of installed packages, `/var/lib/dpkg/status`: what Debian and Ubuntu hosts
//! have installed, with each package's state, version, architecture and source package.
//!
//! The file is a list of RFC 822-like stanzas separated by blank lines: `Field: value` lines,
//! continued by lines that start with a space. The parser streams over bytes and keeps only the
//! five fields an inventory needs (`Package`, `Status`, `Version`, `Architecture`, `Source`);
//! every line is read with a cap of [`MAX_LINE`] bytes and the rest of a longer line is skipped
//! without being stored, so a 2 GB `Description` costs no memory. The number of packages is
//! capped too ([`MAX_PACKAGES`]), which bounds memory for any input.
//!
//! A stanza that cannot be a package (no `Package`, no `Version`, a `Status` that is not three
//! known words, a malformed line, an overlong or non-UTF-8 needed field) is skipped and named in
//! [`StatusFile::problems`] with its line number; the other stanzas are still read, so one bad
//! record never hides the rest. A version that dpkg's rules reject is kept (the package is
//! there) and also named as a problem. Packages are reported in every state dpkg records,
//! including `config-files` and `not-installed`: [`PackageStatus::files_present`] tells which
//! of them can be exposed.
//!
//! Distroless images have no `status` file but one file per package in
//! `/var/lib/dpkg/status.d/`, without `Status` fields: those are read with
//! [`MissingStatus::AssumeInstalled`].

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use patchwarden_core::inventory::{Manager, Package, PackageStatus};

use crate::root::{HostRoot, RootError};

/// The longest line kept, in bytes. Longer lines are skipped past; the fields we keep are a
/// few dozen bytes in real files.
pub const MAX_LINE: usize = 8 * 1024;
/// The most packages one file may list: real hosts have a few thousand.
pub const MAX_PACKAGES: usize = 1_000_000;
/// The most problems kept in detail; the rest are only counted.
pub const MAX_PROBLEMS: usize = 100;
/// The most package files read from `status.d/` (each may have an `.md5sums` file beside it,
/// so the directory may hold twice as many entries).
pub const MAX_STATUS_D_FILES: usize = 100_000;

/// Where dpkg keeps its database, under the root.
pub const STATUS_PATH: &str = "var/lib/dpkg/status";
/// Distroless images' one-file-per-package database.
pub const STATUS_D_PATH: &str = "var/lib/dpkg/status.d";

/// What to make of a stanza without a `Status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingStatus {
    /// The real status file always has one: a stanza without it is skipped.
    Reject,
    /// `status.d` files have none: everything listed is installed.
    AssumeInstalled,
}

/// The packages of one status file and the stanzas that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFile {
    pub packages: Vec<Package>,
    /// The first [`MAX_PROBLEMS`] problems, in file order.
    pub problems: Vec<Problem>,
    /// How many more problems there were.
    pub problems_not_kept: u64,
}

impl StatusFile {
    /// All problems, kept or only counted.
    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.problems_not_kept
    }

    fn add_problem(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.problems_not_kept += 1;
        }
    }
}

/// One stanza that was skipped, or a package kept with a flaw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {kind}", package.as_ref().map(|p| format!(" (package {p})")).unwrap_or_default())]
pub struct Problem {
    /// The line the stanza (or the bad line) starts on, counting from 1.
    pub line: u64,
    /// The package's name, when the stanza had one.
    pub package: Option<String>,
    pub kind: ProblemKind,
}

/// What is wrong with a stanza.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    #[error("stanza skipped: it has no Package field")]
    NoPackage,
    #[error("stanza skipped: it has no Version field")]
    NoVersion,
    #[error("stanza skipped: it has no Status field")]
    NoStatus,
    #[error("stanza skipped: Status {0:?} is not `want flag state` in dpkg's words")]
    BadStatus(String),
    #[error("stanza skipped: line {0} is neither `Field: value` nor a continuation")]
    NotAField(u64),
    #[error("stanza skipped: its {0} field is longer than {MAX_LINE} bytes")]
    FieldTooLong(&'static str),
    #[error("stanza skipped: its {0} field is not UTF-8")]
    NotUtf8(&'static str),
    #[error("kept, but its version {version:?} is not a valid dpkg version: {reason}")]
    InvalidVersion { version: String, reason: String },
}

impl ProblemKind {
    /// Whether the package was left out of the inventory.
    pub fn skipped(&self) -> bool {
        !matches!(self, ProblemKind::InvalidVersion { .. })
    }
}

/// Why a status file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("read failed: {0}")]
    Read(#[from] io::Error),
    #[error("lists more than {MAX_PACKAGES} packages")]
    TooManyPackages,
}

/// Why the dpkg database under a root could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DpkgError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
}

/// The fields an inventory needs; every other field is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Package,
    Status,
    Version,
    Architecture,
    Source,
    Other,
}

impl Field {
    fn of(name: &[u8]) -> Field {
        // dpkg treats field names case-insensitively.
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("Package") {
            Field::Package
        } else if is("Status") {
            Field::Status
        } else if is("Version") {
            Field::Version
        } else if is("Architecture") {
            Field::Architecture
        } else if is("Source") {
            Field::Source
        } else {
            Field::Other
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Package => "Package",
            Field::Status => "Status",
            Field::Version => "Version",
            Field::Architecture => "Architecture",
            Field::Source => "Source",
            Field::Other => "other",
        }
    }
}

/// The stanza being read.
#[derive(Debug, Default)]
struct Stanza {
    start_line: u64,
    any: bool,
    package: Option<String>,
    status: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    source: Option<String>,
    /// The first thing wrong with it that makes it unusable.
    broken: Option<ProblemKind>,
}

/// Parses a status file from a reader, streaming.
pub fn parse_status(
    mut input: impl BufRead,
    missing_status: MissingStatus,
) -> Result<StatusFile, ParseError> {
    let mut out = StatusFile::default();
    let mut stanza = Stanza::default();
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    while let Some(truncated) = read_line_capped(&mut input, &mut line, MAX_LINE)? {
        number += 1;
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            finish(&mut out, std::mem::take(&mut stanza), missing_status)?;
            continue;
        }
        if !stanza.any {
            stanza.any = true;
            stanza.start_line = number;
        }
        // A continuation line belongs to the field before it; none of the fields we keep spans
        // lines, so continuations are skipped.
        if text.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            continue;
        }
        let Some(colon) = text.iter().position(|&b| b == b':') else {
            stanza.broken.get_or_insert(ProblemKind::NotAField(number));
            continue;
        };
        let (name, value) = (text.get(..colon).unwrap_or_default(), text.get(colon + 1..));
        let field = Field::of(name.trim_ascii());
        if field == Field::Other {
            continue;
        }
        if truncated {
            stanza
                .broken
                .get_or_insert(ProblemKind::FieldTooLong(field.name()));
            continue;
        }
        let Ok(value) = std::str::from_utf8(value.unwrap_or_default()) else {
            stanza
                .broken
                .get_or_insert(ProblemKind::NotUtf8(field.name()));
            continue;
        };
        let value = value.trim().to_string();
        let slot = match field {
            Field::Package => &mut stanza.package,
            Field::Status => &mut stanza.status,
            Field::Version => &mut stanza.version,
            Field::Architecture => &mut stanza.arch,
            Field::Source => &mut stanza.source,
            Field::Other => continue,
        };
        *slot = Some(value);
    }
    finish(&mut out, stanza, missing_status)?;
    Ok(out)
}

/// Turns a finished stanza into a package or a problem.
fn finish(
    out: &mut StatusFile,
    s: Stanza,
    missing_status: MissingStatus,
) -> Result<(), ParseError> {
    if !s.any {
        return Ok(());
    }
    let problem = |kind| Problem {
        line: s.start_line,
        package: s.package.clone().filter(|p| !p.is_empty()),
        kind,
    };
    if let Some(kind) = s.broken.clone() {
        out.add_problem(problem(kind));
        return Ok(());
    }
    let Some(name) = s.package.clone().filter(|p| !p.is_empty()) else {
        out.add_problem(problem(ProblemKind::NoPackage));
        return Ok(());
    };
    let status = match (&s.status, missing_status) {
        (Some(st), _) => match parse_status_field(st) {
            Some(state) => state,
            None => {
                out.add_problem(problem(ProblemKind::BadStatus(st.clone())));
                return Ok(());
            }
        },
        (None, MissingStatus::AssumeInstalled) => PackageStatus::Installed,
        (None, MissingStatus::Reject) => {
            out.add_problem(problem(ProblemKind::NoStatus));
            return Ok(());
        }
    };
    let Some(version) = s.version.clone().filter(|v| !v.is_empty()) else {
        out.add_problem(problem(ProblemKind::NoVersion));
        return Ok(());
    };
    if let Err(e) = patchwarden_version::dpkg::validate(&version) {
        out.add_problem(problem(ProblemKind::InvalidVersion {
            version: version.clone(),
            reason: e.to_string(),
        }));
    }
    let (source_name, source_version) = match s.source.as_deref().and_then(parse_source) {
        Some((n, Some(v))) => (n.to_string(), v.to_string()),
        Some((n, None)) => (n.to_string(), version.clone()),
        None => (name.clone(), version.clone()),
    };
    if out.packages.len() >= MAX_PACKAGES {
        return Err(ParseError::TooManyPackages);
    }
    out.packages.push(Package {
        manager: Manager::Dpkg,
        name,
        version,
        arch: s.arch.filter(|a| !a.is_empty()),
        source_name: Some(source_name),
        source_version: Some(source_version),
        epoch: None,
        module: None,
        status,
    });
    Ok(())
}

/// `Source: name` or `Source: name (version)`. `None` for an empty field.
fn parse_source(v: &str) -> Option<(&str, Option<&str>)> {
    let v = v.trim();
    let (name, rest) = match v.split_once(char::is_whitespace) {
        Some((n, r)) => (n, r.trim()),
        None => (v, ""),
    };
    if name.is_empty() {
        return None;
    }
    let version = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(str::trim)
        .filter(|v| !v.is_empty());
    Some((name, version))
}

/// `want flag state`, as dpkg writes it (`install ok installed`, `deinstall ok config-files`,
/// `install reinstreq half-installed` …), to the state. `None` unless all three words are
/// dpkg's.
pub fn parse_status_field(v: &str) -> Option<PackageStatus> {
    let mut words = v.split_whitespace();
    let (want, flag, state) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    if !matches!(want, "unknown" | "install" | "hold" | "deinstall" | "purge") {
        return None;
    }
    // `hold` and `hold-reinstreq` are the flags of old dpkg versions, still found in old files.
    if !matches!(flag, "ok" | "reinstreq" | "hold" | "hold-reinstreq") {
        return None;
    }
    Some(match state {
        "installed" => PackageStatus::Installed,
        "unpacked" => PackageStatus::Unpacked,
        "half-configured" => PackageStatus::HalfConfigured,
        "half-installed" => PackageStatus::HalfInstalled,
        "config-files" => PackageStatus::ConfigFiles,
        "triggers-awaited" => PackageStatus::TriggersAwaited,
        "triggers-pending" => PackageStatus::TriggersPending,
        "not-installed" => PackageStatus::NotInstalled,
        _ => return None,
    })
}

/// Reads one line into `buf` (without its newline), keeping at most `cap` bytes and skipping
/// the rest of a longer line without storing it. `None` at the end of input; otherwise whether
/// the line was cut.
pub(crate) fn read_line_capped(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let n = Read::take(&mut *input, cap as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(false));
    }
    if buf.len() > cap {
        buf.truncate(cap);
        input.skip_until(b'\n')?;
        return Ok(Some(true));
    }
    // The last line of a file without a final newline.
    Ok(Some(false))
}

/// Reads `var/lib/dpkg/status` under the root. `Ok(None)` when there is none.
pub fn read_status(root: &HostRoot) -> Result<Option<StatusFile>, DpkgError> {
    let Some((path, file)) = root.open(STATUS_PATH)? else {
        return Ok(None);
    };
    let parsed = parse_status(
        BufReader::with_capacity(64 * 1024, file),
        MissingStatus::Reject,
    )
    .map_err(|source| DpkgError::Parse { path, source })?;
    Ok(Some(parsed))
}

/// Reads every file of `var/lib/dpkg/status.d/` under the root (distroless images), skipping
/// their `.md5sums` companions. `Ok(None)` when the directory does not exist.
pub fn read_status_d(root: &HostRoot) -> Result<Option<StatusFile>, DpkgError> {
    // Each package has a stanza file and an `.md5sums` file.
    let Some(entries) = root.list_dir(STATUS_D_PATH, 2 * MAX_STATUS_D_FILES)? else {
        return Ok(None);
    };
    let mut all = StatusFile::default();
    for rel in entries.iter().filter(|e| !e.ends_with(".md5sums")) {
        let Some((path, file)) = root.open(rel)? else {
            continue;
        };
        let one = parse_status(BufReader::new(file), MissingStatus::AssumeInstalled).map_err(
            |source| DpkgError::Parse {
                path: path.clone(),
                source,
            },
        )?;
        if all.packages.len() + one.packages.len() > MAX_PACKAGES {
            return Err(DpkgError::Parse {
                path,
                source: ParseError::TooManyPackages,
            });
        }
        all.packages.extend(one.packages);
        for p in one.problems {
            all.add_problem(p);
        }
        all.problems_not_kept += one.problems_not_kept;
    }
    Ok(Some(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words() {
        use PackageStatus::*;
        assert_eq!(parse_status_field("install ok installed"), Some(Installed));
        assert_eq!(
            parse_status_field("deinstall ok config-files"),
            Some(ConfigFiles)
        );
        assert_eq!(parse_status_field("hold ok installed"), Some(Installed));
        assert_eq!(
            parse_status_field("purge ok not-installed"),
            Some(NotInstalled)
        );
        assert_eq!(
            parse_status_field("install ok triggers-pending"),
            Some(TriggersPending)
        );
        assert_eq!(parse_status_field("install ok"), None);
        assert_eq!(parse_status_field("install ok installed extra"), None);
        assert_eq!(parse_status_field("want ok installed"), None);
        assert_eq!(parse_status_field("install maybe installed"), None);
        assert_eq!(parse_status_field("install ok done"), None);
    }

    #[test]
    fn source_forms() {
        assert_eq!(parse_source("glibc"), Some(("glibc", None)));
        assert_eq!(
            parse_source("util-linux (2.38.1-5+deb12u3)"),
            Some(("util-linux", Some("2.38.1-5+deb12u3")))
        );
        assert_eq!(parse_source("x (unclosed"), Some(("x", None)));
        assert_eq!(parse_source("  "), None);
    }

    #[test]
    fn lines_longer_than_the_cap_are_cut_and_skipped() {
        let mut input = io::Cursor::new(b"abcdefgh\nxy\nlast".to_vec());
        let mut buf = Vec::new();
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 4).unwrap(),
            Some(true)
        );
        assert_eq!(buf, b"abcd");
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 4).unwrap(),
            Some(false)
        );
        assert_eq!(buf, b"xy");
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 4).unwrap(),
            Some(false)
        );
        assert_eq!(buf, b"last");
        assert_eq!(read_line_capped(&mut input, &mut buf, 4).unwrap(), None);
        // Exactly the cap, with and without a newline.
        let mut input = io::Cursor::new(b"abcd\nabcd".to_vec());
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 4).unwrap(),
            Some(false)
        );
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 4).unwrap(),
            Some(false)
        );
        assert_eq!(buf, b"abcd");
    }
}
