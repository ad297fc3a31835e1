//! apk's database of installed packages, `/lib/apk/db/installed`: what Alpine (and Wolfi,
//! Chainguard) hosts have installed.
//!
//! The file is a list of stanzas separated by blank lines, one `K:value` line per field with a
//! one-letter key. We keep `P` (name), `V` (version), `A` (architecture) and `o` (origin, the
//! source package that Alpine's advisories name); the file lists (`F`, `R`, `Z` …) that make up
//! most of the file are skipped line by line. Lines are read with the same cap as dpkg's
//! ([`MAX_LINE`]), and the number of packages is capped, so memory stays bounded for any input.
//!
//! A stanza without a name or a version, or with a line that is not `K:value`, is skipped and
//! named in [`InstalledDb::problems`]; the others are still read. A package without an origin
//! is its own source (as `apk` treats it). apk records only installed packages, so every
//! package is [`PackageStatus::Installed`].

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use patchwarden_core::inventory::{Manager, Package, PackageStatus};
use patchwarden_version::apk::{self, Rules};

use super::dpkg::{MAX_LINE, MAX_PACKAGES, MAX_PROBLEMS, read_line_capped};
use crate::root::{HostRoot, RootError};

/// Where apk keeps its database, under the root.
pub const INSTALLED_PATH: &str = "lib/apk/db/installed";

/// The packages of an apk database and the stanzas that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledDb {
    pub packages: Vec<Package>,
    /// The first [`MAX_PROBLEMS`] problems, in file order.
    pub problems: Vec<Problem>,
    /// How many more problems there were.
    pub problems_not_kept: u64,
}

impl InstalledDb {
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
    /// The line the stanza starts on, counting from 1.
    pub line: u64,
    pub package: Option<String>,
    pub kind: ProblemKind,
}

/// What is wrong with a stanza.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    #[error("stanza skipped: it has no P: (name) line")]
    NoName,
    #[error("stanza skipped: it has no V: (version) line")]
    NoVersion,
    #[error("stanza skipped: line {0} is not `K:value`")]
    NotAField(u64),
    #[error("stanza skipped: its {0}: line is longer than {MAX_LINE} bytes")]
    FieldTooLong(char),
    #[error("stanza skipped: its {0}: line is not UTF-8")]
    NotUtf8(char),
    #[error("kept, but its version {version:?} is not a valid apk version: {reason}")]
    InvalidVersion { version: String, reason: String },
}

impl ProblemKind {
    /// Whether the package was left out of the inventory.
    pub fn skipped(&self) -> bool {
        !matches!(self, ProblemKind::InvalidVersion { .. })
    }
}

/// Why the apk database could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ApkError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("{path}: read failed: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: lists more than {MAX_PACKAGES} packages")]
    TooManyPackages { path: PathBuf },
}

#[derive(Debug, Default)]
struct Stanza {
    start_line: u64,
    any: bool,
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
    broken: Option<ProblemKind>,
}

/// Why parsing stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("read failed: {0}")]
    Read(#[from] std::io::Error),
    #[error("lists more than {MAX_PACKAGES} packages")]
    TooManyPackages,
}

/// Parses an apk `installed` database from a reader, streaming.
pub fn parse_installed(mut input: impl BufRead) -> Result<InstalledDb, ParseError> {
    let mut out = InstalledDb::default();
    let mut stanza = Stanza::default();
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    while let Some(truncated) = read_line_capped(&mut input, &mut line, MAX_LINE)? {
        number += 1;
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            finish(&mut out, std::mem::take(&mut stanza))?;
            continue;
        }
        if !stanza.any {
            stanza.any = true;
            stanza.start_line = number;
        }
        let (Some(&key), Some(b':')) = (text.first(), text.get(1).copied()) else {
            stanza.broken.get_or_insert(ProblemKind::NotAField(number));
            continue;
        };
        let slot = match key {
            b'P' => &mut stanza.name,
            b'V' => &mut stanza.version,
            b'A' => &mut stanza.arch,
            b'o' => &mut stanza.origin,
            _ => continue,
        };
        let key = char::from(key);
        if truncated {
            stanza.broken.get_or_insert(ProblemKind::FieldTooLong(key));
            continue;
        }
        match std::str::from_utf8(text.get(2..).unwrap_or_default()) {
            Ok(v) => *slot = Some(v.trim().to_string()).filter(|v| !v.is_empty()),
            Err(_) => {
                stanza.broken.get_or_insert(ProblemKind::NotUtf8(key));
            }
        }
    }
    finish(&mut out, stanza)?;
    Ok(out)
}

fn finish(out: &mut InstalledDb, s: Stanza) -> Result<(), ParseError> {
    if !s.any {
        return Ok(());
    }
    let problem = |kind| Problem {
        line: s.start_line,
        package: s.name.clone(),
        kind,
    };
    if let Some(kind) = s.broken.clone() {
        out.add_problem(problem(kind));
        return Ok(());
    }
    let Some(name) = s.name.clone() else {
        out.add_problem(problem(ProblemKind::NoName));
        return Ok(());
    };
    let Some(version) = s.version.clone() else {
        out.add_problem(problem(ProblemKind::NoVersion));
        return Ok(());
    };
    // Either generation of apk-tools accepting the version is enough: the database does not
    // say which one wrote it.
    if let Err(e) = apk::validate(&version, Rules::V2)
        && apk::validate(&version, Rules::V3).is_err()
    {
        out.add_problem(problem(ProblemKind::InvalidVersion {
            version: version.clone(),
            reason: e.to_string(),
        }));
    }
    if out.packages.len() >= MAX_PACKAGES {
        return Err(ParseError::TooManyPackages);
    }
    out.packages.push(Package {
        manager: Manager::Apk,
        source_name: Some(s.origin.unwrap_or_else(|| name.clone())),
        source_version: Some(version.clone()),
        name,
        version,
        arch: s.arch,
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    });
    Ok(())
}

/// Reads `lib/apk/db/installed` under the root. `Ok(None)` when there is none.
pub fn read_installed(root: &HostRoot) -> Result<Option<InstalledDb>, ApkError> {
    let Some((path, file)) = root.open(INSTALLED_PATH)? else {
        return Ok(None);
    };
    match parse_installed(BufReader::with_capacity(64 * 1024, file)) {
        Ok(db) => Ok(Some(db)),
        Err(ParseError::Read(source)) => Err(ApkError::Read { path, source }),
        Err(ParseError::TooManyPackages) => Err(ApkError::TooManyPackages { path }),
    }
}
