//! Available updates on an Alpine root, as apk decides them: `apk --root <root> version -l
//! '<'` lists each installed package whose repositories (those its repository tag allows)
//! offer a newer version, and `/etc/apk/world` says which of them the administrator has
//! constrained (`musl=1.2.4-r2`, `openssl<3.2`), which `apk upgrade` then leaves alone.
//!
//! apk-tools is not packaged for Debian, so these parsers are tested only on text written
//! to the format strings of apk-tools' own source (`src/app_version.c` and `src/app_list.c`,
//! identical in 2.14 and 3.0), not on output recorded from a real apk. The function that
//! runs apk is untested for the same reason.
//!
//! Alpine publishes no update classification, so every update's kind is
//! [`UpdateKind::Unknown`]; advisories come from the secdb feeds, matched elsewhere.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use patchwarden_core::inventory::{AvailableUpdate, UpdateKind};
use patchwarden_version::apk::{self, Rules};

use super::command::Invocation;
use super::{UpdateReport, UpdatesError, Withheld, WithheldReason};

const OUTPUT_LIMIT: usize = 16 * 1024 * 1024;
/// How large `/etc/apk/world` may be; a real one is a few kilobytes.
const WORLD_LIMIT: u64 = 1024 * 1024;

/// apk on one root.
#[derive(Debug, Clone)]
pub struct Apk {
    root: PathBuf,
    pub query_timeout: Duration,
    pub refresh_timeout: Duration,
    /// The `PATH` apk is looked up in; `None` keeps the agent's own.
    pub search_path: Option<OsString>,
}

impl Apk {
    pub fn new(root: &Path) -> Apk {
        Apk {
            root: root.to_owned(),
            query_timeout: Duration::from_secs(120),
            refresh_timeout: Duration::from_secs(600),
            search_path: None,
        }
    }

    /// `apk update`: fetches the repositories' indexes into the root's cache.
    pub fn refresh(&self) -> Result<(), UpdatesError> {
        self.run(&["update"], self.refresh_timeout)?;
        Ok(())
    }

    /// What `apk upgrade` would install on the root, and the updates the world file's
    /// constraints hold back.
    pub fn report(&self) -> Result<UpdateReport, UpdatesError> {
        let installed_db = self.root.join("lib/apk/db/installed");
        if !installed_db.is_file() {
            return Err(UpdatesError::NoState {
                root: self.root.clone(),
                manager: "apk",
                missing: installed_db,
            });
        }
        let rules = rules_for(&self.run(&["--version"], self.query_timeout)?);
        let lines = parse_version_list(&self.run(&["version", "-l", "<"], self.query_timeout)?)?;
        let world = read_world(&self.root.join("etc/apk/world"))?;
        Ok(decide(&lines, &world, rules))
    }

    fn run(&self, args: &[&str], timeout: Duration) -> Result<String, UpdatesError> {
        let mut all: Vec<OsString> =
            vec![OsString::from("--root"), self.root.clone().into_os_string()];
        all.extend(args.iter().map(OsString::from));
        Ok(Invocation {
            program: "apk",
            args: all,
            env: Vec::new(),
            search_path: self.search_path.as_deref().map(OsStr::new),
            timeout,
            stdout_limit: OUTPUT_LIMIT,
        }
        .run()?
        .stdout)
    }
}

/// The version rules of the apk that printed `apk --version` (`apk-tools 2.14.4, compiled
/// for x86_64.`): 2.x for 2.*, else 3.x.
pub fn rules_for(version_output: &str) -> Rules {
    match version_output.trim().strip_prefix("apk-tools 2.") {
        Some(_) => Rules::V2,
        None => Rules::V3,
    }
}

/// One line of `apk version`: an installed package and the newest version on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionLine {
    pub name: String,
    pub installed: String,
    /// `<`, `=`, `>`, `?` …: how the installed version compares with the available one.
    pub op: String,
    pub available: String,
    /// The repository tag the available version comes from (`@edge`); `None` for the
    /// untagged repositories.
    pub tag: Option<String>,
}

/// Parses `apk version [-l OPS]` at the default verbosity: a header `Installed: …
/// Available:`, then `name-version<padding> op available tag` per package (apk-tools
/// `ver_print_package_status`; the tag is empty for untagged repositories).
pub fn parse_version_list(text: &str) -> Result<Vec<VersionLine>, UpdatesError> {
    const WHAT: &str = "apk version";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: &str| UpdatesError::malformed(WHAT, i + 1, reason, line);
        if line.trim().is_empty() || line.starts_with("Installed:") {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (pkg, op, available, tag) = match words.as_slice() {
            [pkg, op, available] => (*pkg, *op, *available, None),
            [pkg, op, available, tag] => (*pkg, *op, *available, Some((*tag).to_owned())),
            _ => return Err(bad("expected `name-version op available [tag]`")),
        };
        if !op.chars().all(|c| "<>=~?".contains(c)) {
            return Err(bad("unknown version operator"));
        }
        let (name, installed) =
            split_name_version(pkg).ok_or_else(|| bad("cannot split name and version"))?;
        out.push(VersionLine {
            name: name.to_owned(),
            installed: installed.to_owned(),
            op: op.to_owned(),
            available: available.to_owned(),
            tag,
        });
    }
    Ok(out)
}

/// One line of `apk list --upgradable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLine {
    pub name: String,
    pub available: String,
    pub arch: String,
    /// The origin (source) package.
    pub origin: String,
    pub installed: String,
}

/// Parses `apk list -u`: `name-version arch {origin} (license) [upgradable from:
/// name-version]` (apk-tools `print_package`). The licence may contain spaces.
pub fn parse_list_upgradable(text: &str) -> Result<Vec<ListLine>, UpdatesError> {
    const WHAT: &str = "apk list";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: &str| UpdatesError::malformed(WHAT, i + 1, reason, line);
        if line.trim().is_empty() {
            continue;
        }
        let (head, from) = line
            .strip_suffix(']')
            .and_then(|l| l.rsplit_once(" [upgradable from: "))
            .ok_or_else(|| bad("no `[upgradable from: …]`"))?;
        let mut words = head.splitn(3, ' ');
        let (Some(pkg), Some(arch), Some(rest)) = (words.next(), words.next(), words.next()) else {
            return Err(bad("expected `name-version arch {origin} (license)`"));
        };
        let origin = rest
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
            .map(|(o, _)| o)
            .ok_or_else(|| bad("no `{origin}`"))?;
        let (name, available) =
            split_name_version(pkg).ok_or_else(|| bad("cannot split name and version"))?;
        let (old_name, installed) = split_name_version(from)
            .ok_or_else(|| bad("cannot split the installed name and version"))?;
        if old_name != name {
            return Err(bad("the upgrade is from another package"));
        }
        out.push(ListLine {
            name: name.to_owned(),
            available: available.to_owned(),
            arch: arch.to_owned(),
            origin: origin.to_owned(),
            installed: installed.to_owned(),
        });
    }
    Ok(out)
}

/// Splits `name-version` as apk-tools' `apk_pkg_parse_name` does: the version starts after
/// the last dash that is followed by a digit, and at most one other dash (the `-rN`) may
/// follow it.
pub fn split_name_version(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    let mut dashes = 0;
    for i in (0..bytes.len().saturating_sub(1)).rev() {
        if bytes.get(i) != Some(&b'-') {
            continue;
        }
        if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let (name, version) = (s.get(..i)?, s.get(i + 1..)?);
            return (!name.is_empty()).then_some((name, version));
        }
        dashes += 1;
        if dashes >= 2 {
            return None;
        }
    }
    None
}

/// A version constraint from `/etc/apk/world`: `name[@tag]OPversion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldConstraint {
    pub name: String,
    pub op: String,
    pub version: String,
}

/// Reads the world file's version constraints; a root without one has none.
fn read_world(path: &Path) -> Result<Vec<WorldConstraint>, UpdatesError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(UpdatesError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut text = String::new();
    file.take(WORLD_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|source| UpdatesError::Read {
            path: path.to_owned(),
            source,
        })?;
    if text.len() as u64 > WORLD_LIMIT {
        return Err(UpdatesError::FileTooLarge {
            path: path.to_owned(),
            limit: WORLD_LIMIT,
        });
    }
    Ok(parse_world(&text))
}

/// The version constraints among the world file's entries (whitespace-separated;
/// conflicts `!name` and unconstrained names carry none).
pub fn parse_world(text: &str) -> Vec<WorldConstraint> {
    text.split_whitespace()
        .filter(|e| !e.starts_with('!'))
        .filter_map(|entry| {
            let at = entry.find(['<', '>', '=', '~'])?;
            let (name, rest) = entry.split_at(at);
            let op_len = rest.find(|c: char| !"<>=~".contains(c))?;
            let (op, version) = rest.split_at(op_len);
            let name = name.split('@').next().unwrap_or(name);
            Some(WorldConstraint {
                name: name.to_owned(),
                op: op.to_owned(),
                version: version.to_owned(),
            })
        })
        .collect()
}

/// Updates are the `<` lines; an update whose version a world constraint forbids is held.
pub fn decide(lines: &[VersionLine], world: &[WorldConstraint], rules: Rules) -> UpdateReport {
    let mut report = UpdateReport::default();
    for l in lines.iter().filter(|l| l.op == "<") {
        let update = AvailableUpdate {
            name: l.name.clone(),
            installed: l.installed.clone(),
            candidate: l.available.clone(),
            origin: l.tag.clone(),
            kind: UpdateKind::Unknown,
            severity: None,
            advisories: Vec::new(),
        };
        // A constraint apk cannot read is one apk would refuse too: treat it as holding.
        let held = world
            .iter()
            .filter(|c| c.name == l.name)
            .any(|c| !apk::matches(&l.available, &c.op, &c.version, rules).unwrap_or(false));
        if held {
            report.withheld.push(Withheld {
                update,
                reason: WithheldReason::Held,
            });
        } else {
            report.updates.push(update);
        }
    }
    report
}
