//! A whole [`Inventory`] for a root: host facts plus the packages of every package manager
//! found there (dpkg, its distroless `status.d`, apk, rpm), or the inventory an SBOM describes.
//! On rpm hosts the installed kernel packages also decide whether a reboot is due.
//!
//! Collectors are independent: one that fails, or reads a database only in part, becomes a
//! [`Warning`] and the others still run, so that a broken apk database on a Debian host does
//! not hide its dpkg packages. Only a root that cannot be opened at all is an error. The
//! packages come out in canonical order ([`Inventory::canonicalize`]), so that two collections
//! of an unchanged host are equal and their delta is empty.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use patchwarden_core::inventory::{HostFacts, Inventory, Manager, Package};

use super::{apk, dpkg, rpm, sbom};
use crate::facts::{self, reboot};
use crate::root::{HostRoot, RootError};

/// How many of one collector's problems are spelled out; the rest are counted.
const PROBLEMS_SHOWN: usize = 20;

/// Something a collector could not do, or did only in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `facts`, `dpkg`, `apk`, `rpm`, `sbom` or `inventory`.
    pub source: &'static str,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// An inventory and what could not be collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub inventory: Inventory,
    pub warnings: Vec<Warning>,
}

/// Why nothing could be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot use {path} as a root: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: RootError,
    },
    #[error(transparent)]
    Sbom(#[from] sbom::SbomError),
}

/// Collects the facts and packages of the host under `root` (`/` for this host).
pub fn collect_root(root: &Path) -> Result<Collected, CollectError> {
    let host = HostRoot::new(root).map_err(|source| CollectError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut warnings = Vec::new();
    let mut warn = |source: &'static str, message: String| {
        warnings.push(Warning { source, message });
    };

    let report = facts::collect(&host);
    for note in report.notes {
        warn("facts", note);
    }
    let mut facts = report.facts;

    let mut packages: Vec<Package> = Vec::new();
    let mut found_any = false;

    // The text databases (dpkg's status file and status.d, apk's installed file) all give
    // packages plus the stanzas they could not read; gather them the same way.
    let text_databases = [
        (
            "dpkg",
            dpkg::STATUS_PATH,
            dpkg::read_status(&host)
                .map(|o| o.map(|s| (s.packages, lines(&s.problems), s.problems_not_kept)))
                .map_err(|e| e.to_string()),
        ),
        (
            "dpkg",
            dpkg::STATUS_D_PATH,
            dpkg::read_status_d(&host)
                .map(|o| o.map(|s| (s.packages, lines(&s.problems), s.problems_not_kept)))
                .map_err(|e| e.to_string()),
        ),
        (
            "apk",
            apk::INSTALLED_PATH,
            apk::read_installed(&host)
                .map(|o| o.map(|d| (d.packages, lines(&d.problems), d.problems_not_kept)))
                .map_err(|e| e.to_string()),
        ),
    ];
    for (source, file, read) in text_databases {
        match read {
            Ok(Some((found, problems, not_kept))) => {
                found_any = true;
                report_problems(&mut warn, source, file, &problems, not_kept);
                packages.extend(found);
            }
            Ok(None) => {}
            Err(e) => {
                found_any = true;
                warn(source, e);
            }
        }
    }
    match rpm::locate(&host) {
        Ok(db) => {
            found_any = true;
            match rpm::read_database(&db, &rpm::Limits::default()) {
                Ok(p) => packages.extend(p),
                Err(e) => warn("rpm", e.to_string()),
            }
        }
        Err(rpm::RpmDbError::NotFound { .. }) => {}
        Err(e) => {
            found_any = true;
            warn("rpm", e.to_string());
        }
    }
    if !found_any {
        warn(
            "inventory",
            format!(
                "no package database under {}: none of /{}, /{}, /{} or an rpm database exists",
                host.path().display(),
                dpkg::STATUS_PATH,
                dpkg::STATUS_D_PATH,
                apk::INSTALLED_PATH
            ),
        );
    }

    if facts.arch.is_none() {
        facts.arch = arch_of_packages(&packages);
    }
    kernel_reboot_check(&mut facts, &packages, &mut warn);

    let mut inventory = Inventory {
        host: facts,
        packages,
        ..Inventory::default()
    };
    inventory.canonicalize();
    Ok(Collected {
        inventory,
        warnings,
    })
}

/// The inventory an SBOM describes: its packages, its operating system when it names one, and
/// its subject's name as the host name. Nothing about a running host (kernel, boot time,
/// reboot) can be known from an SBOM.
pub fn collect_sbom(path: &Path) -> Result<Collected, CollectError> {
    let doc = sbom::read_sbom(path)?;
    let mut warnings: Vec<Warning> = doc
        .problems
        .iter()
        .map(|p| Warning {
            source: "sbom",
            message: p.clone(),
        })
        .collect();
    if !doc.not_os_packages.is_empty() {
        let kinds: Vec<String> = doc
            .not_os_packages
            .iter()
            .map(|(ty, n)| format!("{n} {ty}"))
            .collect();
        warnings.push(Warning {
            source: "sbom",
            message: format!(
                "components that are not deb, rpm or apk packages were left out: {}",
                kinds.join(", ")
            ),
        });
    }
    if doc.os.is_none() {
        warnings.push(Warning {
            source: "sbom",
            message: "the SBOM does not name its operating system (no `distro` qualifier, no \
                      operating-system component)"
                .into(),
        });
    }
    warnings.push(Warning {
        source: "sbom",
        message: "an SBOM says nothing of a running host: its kernel, boot time and whether it \
                  needs a reboot are unknown"
            .into(),
    });
    let arch = arch_of_packages(&doc.packages);
    let mut inventory = Inventory {
        host: HostFacts {
            hostname: doc.name.unwrap_or_default(),
            os: doc.os.unwrap_or_default(),
            arch,
            ..HostFacts::default()
        },
        packages: doc.packages,
        ..Inventory::default()
    };
    inventory.canonicalize();
    Ok(Collected {
        inventory,
        warnings,
    })
}

/// Problems as the lines a warning shows (they are of a different type per database).
fn lines<P: fmt::Display>(problems: &[P]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn report_problems<P: fmt::Display>(
    warn: &mut impl FnMut(&'static str, String),
    source: &'static str,
    file: &str,
    problems: &[P],
    not_kept: u64,
) {
    for p in problems.iter().take(PROBLEMS_SHOWN) {
        warn(source, format!("/{file}: {p}"));
    }
    let more = (problems.len().saturating_sub(PROBLEMS_SHOWN)) as u64 + not_kept;
    if more > 0 {
        warn(source, format!("/{file}: {more} more problems"));
    }
}

/// The machine architecture of a root that is not the live host, from its packages: the most
/// common architecture other than `all`/`noarch`, in the kernel's spelling.
fn arch_of_packages(packages: &[Package]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in packages {
        if let Some(a) = p.arch.as_deref()
            && !matches!(a, "all" | "noarch" | "any")
        {
            *counts.entry(a).or_default() += 1;
        }
    }
    let (arch, _) = counts.into_iter().max_by_key(|(_, n)| *n)?;
    Some(kernel_arch(arch).to_string())
}

/// Debian's architecture names in the kernel's (`uname -m`) spelling; rpm and apk already use
/// the kernel's.
fn kernel_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "i386" => "i686",
        "armhf" => "armv7l",
        "armel" => "armv5tel",
        "ppc64el" => "ppc64le",
        other => other,
    }
}

/// On rpm hosts, a newer installed kernel than the running one means a reboot is due.
fn kernel_reboot_check(
    facts: &mut HostFacts,
    packages: &[Package],
    warn: &mut impl FnMut(&'static str, String),
) {
    if !packages.iter().any(|p| p.manager == Manager::Rpm) {
        return;
    }
    let Some(running) = facts.kernel.as_deref() else {
        warn(
            "facts",
            "whether a newer kernel awaits a reboot is unknown: the running kernel is unknown"
                .into(),
        );
        return;
    };
    match reboot::kernel_check(running, packages) {
        reboot::KernelCheck::Current => {}
        check @ reboot::KernelCheck::Outdated { .. } => {
            if let Some(reason) = check.reason() {
                facts.reboot_reasons.push(reason);
                facts.reboot_required = true;
            }
        }
        reboot::KernelCheck::Unknown(why) => warn(
            "facts",
            format!("whether a newer kernel awaits a reboot is unknown: {why}"),
        ),
    }
}
