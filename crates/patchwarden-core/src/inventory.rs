//! What a host is and what is installed on it: the inventory an agent collects and the server
//! keeps. The JSON form of these types is the one `patchwarden inventory --format json` prints
//! and the README documents; field names are stable.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

mod delta;
mod digest;

pub use delta::{DeltaError, InventoryDelta, PackageChange, UpdatesSnapshot, apply, delta};
pub use digest::PackagesDigest;

/// The package manager that owns a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    Dpkg,
    Rpm,
    Apk,
}

impl Manager {
    /// The manager's name as the JSON and the CLI spell it.
    pub fn name(self) -> &'static str {
        match self {
            Manager::Dpkg => "dpkg",
            Manager::Rpm => "rpm",
            Manager::Apk => "apk",
        }
    }
}

/// Where a package stands in its manager's life cycle. dpkg knows all of these; rpm and apk
/// only record installed packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageStatus {
    /// Unpacked and configured: what "installed" means to people.
    Installed,
    /// Unpacked but not yet configured.
    Unpacked,
    /// Configuration started and did not finish.
    HalfConfigured,
    /// Installation started and did not finish.
    HalfInstalled,
    /// Removed, but its configuration files remain.
    ConfigFiles,
    /// Waiting for another package's triggers.
    TriggersAwaited,
    /// Its own triggers are pending.
    TriggersPending,
    /// Not installed (dpkg keeps a record of packages it once knew).
    NotInstalled,
}

impl PackageStatus {
    /// Whether the package's files are on the host: everything but `config-files` and
    /// `not-installed`. A half-installed package can still be exposed to a vulnerability.
    pub fn files_present(self) -> bool {
        !matches!(
            self,
            PackageStatus::ConfigFiles | PackageStatus::NotInstalled
        )
    }
}

/// One package as its manager records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub manager: Manager,
    pub name: String,
    /// The version as the manager writes it: dpkg `[epoch:]upstream[-revision]`, rpm
    /// `version-release` (the epoch is in [`Package::epoch`]), apk `version-rN`.
    pub version: String,
    pub arch: Option<String>,
    /// The source package: dpkg `Source:` (the binary name when absent), the rpm's source rpm
    /// name, apk's origin. Debian and Ubuntu advisories name source packages.
    pub source_name: Option<String>,
    /// The source package's version when it differs from the binary's (dpkg
    /// `Source: name (version)`), else the binary's version.
    pub source_version: Option<String>,
    /// rpm's epoch, when the header has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub epoch: Option<u32>,
    /// rpm's modularity label (`name:stream:version:context`), when the package is modular.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub module: Option<String>,
    pub status: PackageStatus,
}

impl Package {
    /// The version in the form its scheme orders: rpm's `epoch:version-release` when there is
    /// an epoch, else [`Package::version`].
    pub fn full_version(&self) -> std::borrow::Cow<'_, str> {
        match (self.manager, self.epoch) {
            (Manager::Rpm, Some(e)) => format!("{e}:{}", self.version).into(),
            _ => self.version.as_str().into(),
        }
    }
}

/// The operating system, from `/etc/os-release` or its older equivalents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID`: `debian`, `ubuntu`, `almalinux`, `alpine` …
    pub id: String,
    /// `VERSION_ID`: `12`, `22.04`, `9.4`, `3.19.1` …
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`: `bookworm`, `jammy` …
    pub codename: Option<String>,
    /// `PRETTY_NAME`, for people.
    pub pretty_name: Option<String>,
    /// `ID_LIKE`, e.g. `["rhel", "centos", "fedora"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// The OSV ecosystem advisories for this OS are filed under: `Debian:12`,
    /// `Ubuntu:22.04:LTS`, `AlmaLinux:9`, `Alpine:v3.19` … `None` when we do not know one.
    pub ecosystem: Option<String>,
}

/// Facts about a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub os: OsInfo,
    /// The machine architecture as the kernel names it (`x86_64`, `aarch64` …).
    pub arch: Option<String>,
    /// The running kernel's release (`uname -r`).
    pub kernel: Option<String>,
    pub boot_time: Option<Timestamp>,
    /// `/etc/machine-id`: tells a re-imaged or cloned host from a new one.
    pub machine_id: Option<String>,
    pub reboot_required: bool,
    /// Why a reboot is required, in words (`/var/run/reboot-required.pkgs`, "kernel 5.14.0-427
    /// installed, 5.14.0-362 running" …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reboot_reasons: Vec<String>,
}

/// What an update is for, as the repository classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateKind {
    Security,
    Bugfix,
    Enhancement,
    Unknown,
}

/// A newer version that the host's own configured repositories offer for an installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailableUpdate {
    pub name: String,
    pub installed: String,
    pub candidate: String,
    /// Where the candidate comes from: an apt origin and suite (`Debian:bookworm-security`), a
    /// dnf repository id, an apk repository.
    pub origin: Option<String>,
    pub kind: UpdateKind,
    /// The repository's severity for the update, where it publishes one.
    pub severity: Option<String>,
    /// Advisory ids the repository attaches to the update (DSA, RHSA, ALSA …).
    #[serde(default)]
    pub advisories: Vec<String>,
}

/// Everything an agent reports about its host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub host: HostFacts,
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<AvailableUpdate>,
    /// When the available updates were computed; `None` when they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates_checked_at: Option<Timestamp>,
}
