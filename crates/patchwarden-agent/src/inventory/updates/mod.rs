//! Available updates: for each installed package, the newer version that the host's own
//! configured repositories offer, where it comes from and what it is for — as the host's
//! package manager itself decides it (pinning, priorities, phased updates, holds).
//!
//! We ask the package manager (`apt-cache policy`, `dnf updateinfo`, `apk version`) instead
//! of re-implementing its policy, and parse what it says; the parsers are pure functions from
//! its output to values, tested on real output, and the thin functions around them run the
//! tool on a root with a deadline and an output cap ([`command`]).
//!
//! Refreshing the repository metadata (`apt-get update`, dnf's `makecache`) is a separate,
//! explicit step: it needs the network in production, and an inventory run must not start
//! downloading by surprise.
//!
//! What a manager would *not* install although a newer version exists (a held package, one
//! pinned down, a phased update this host is not yet in) is reported beside the updates in
//! [`UpdateReport::withheld`], each with the reason, so an operator can see that a fix exists
//! and why the host does not take it.

pub mod apk;
pub mod apt;
pub(crate) mod command;
pub mod dnf;

use std::path::{Path, PathBuf};
use std::time::Duration;

use patchwarden_core::inventory::{AvailableUpdate, Inventory, Manager};
use serde::{Deserialize, Serialize};

pub use apk::Apk;
pub use apt::{Apt, apt_updates};
pub use dnf::{Dnf, dnf_updates};

/// What a package manager would install, and what it offers but would not install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReport {
    /// One entry per installed package that the manager would move to a newer version, sorted
    /// by name (then installed version, for multi-arch twins).
    pub updates: Vec<AvailableUpdate>,
    /// Newer versions the repositories offer that the manager would not install, with the
    /// reason; sorted like `updates`.
    #[serde(default)]
    pub withheld: Vec<Withheld>,
}

/// Asks each package manager that `inventory` found on `root` what it would update (apt for
/// dpkg packages, dnf for rpm, apk for apk), refreshing its metadata first when `refresh`.
/// One manager failing does not stop the others: its error is returned beside the report.
pub fn for_inventory(
    root: &Path,
    inventory: &Inventory,
    refresh: bool,
) -> (UpdateReport, Vec<(Manager, UpdatesError)>) {
    let mut report = UpdateReport::default();
    let mut errors = Vec::new();
    let mut managers: Vec<Manager> = inventory.packages.iter().map(|p| p.manager).collect();
    managers.sort();
    managers.dedup();
    for manager in managers {
        let one = match manager {
            Manager::Dpkg => apt_updates(root, refresh),
            Manager::Rpm => dnf_updates(root, refresh),
            Manager::Apk => {
                let apk = Apk::new(root);
                (if refresh { apk.refresh() } else { Ok(()) }).and_then(|()| apk.report())
            }
        };
        match one {
            Ok(r) => {
                report.updates.extend(r.updates);
                report.withheld.extend(r.withheld);
            }
            Err(e) => errors.push((manager, e)),
        }
    }
    (report, errors)
}

/// A newer version that is offered but that the package manager would not install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    /// The offered version, described as an update would be (its `candidate` is the newest
    /// version offered that the manager passes over).
    pub update: AvailableUpdate,
    pub reason: WithheldReason,
}

/// Why a package manager passes over a newer version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum WithheldReason {
    /// The package is on hold (`apt-mark hold`, `dpkg --set-selections` … `hold`), or an
    /// apk world constraint (`musl=1.2.4-r2`) forbids the newer version.
    Held,
    /// The package manager's policy prefers the installed version: an apt pin
    /// (`preferences.d`) or a not-automatic archive gives the newer version a lower priority.
    /// `priority` is the newer version's apt pin priority.
    Pinned { priority: i32 },
    /// A phased update (`Phased-Update-Percentage`) that has not yet reached this host: apt
    /// offers it to `percentage` per cent of machines, chosen from `/etc/machine-id`.
    Phased { percentage: u8 },
    /// dnf's configuration excludes the package from upgrades (`excludepkgs=` in
    /// `dnf.conf` or a repository file, or the versionlock plugin).
    Excluded,
}

/// Why the available updates could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum UpdatesError {
    #[error("cannot run {tool}: it is not in the search path {search_path:?}")]
    ToolMissing { tool: String, search_path: String },
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} {args} failed ({status}): {stderr}")]
    Failed {
        tool: String,
        args: String,
        status: String,
        stderr: String,
    },
    #[error("{tool} did not finish within {after:?} and was killed; it said: {stderr}")]
    TimedOut {
        tool: String,
        after: Duration,
        stderr: String,
    },
    #[error("{tool} printed more than {limit} bytes; refusing to read further")]
    OutputTooLarge { tool: String, limit: usize },
    #[error("cannot read {what} at line {line}: {reason}: {excerpt:?}")]
    Malformed {
        /// Whose output: `apt-cache policy`, `dpkg-query`, `dnf updateinfo` …
        what: String,
        line: usize,
        reason: String,
        excerpt: String,
    },
    #[error("{root} has no {manager} state: {missing} does not exist")]
    NoState {
        root: PathBuf,
        manager: &'static str,
        missing: PathBuf,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {limit} bytes")]
    FileTooLarge { path: PathBuf, limit: u64 },
    #[error("the root {root} cannot be used: {reason}")]
    InvalidRoot { root: PathBuf, reason: String },
    #[error("cannot write the temporary {what}: {source}")]
    Scratch {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl UpdatesError {
    /// A [`UpdatesError::Malformed`] for line `line` (1-based) of `what`'s output.
    pub(crate) fn malformed(
        what: &str,
        line: usize,
        reason: impl Into<String>,
        text: &str,
    ) -> Self {
        UpdatesError::Malformed {
            what: what.to_owned(),
            line,
            reason: reason.into(),
            excerpt: command::cut(text, 200),
        }
    }
}
