//! Findings: one host package exposed to one vulnerability, with the version that closes it
//! and the reason in words.
//!
//! The matcher (`patchwarden-match`) makes them; the policy (classification and SLA clock)
//! judges them; the server keeps them current and closes them when the fix is installed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::inventory::Manager;

/// One package on one host exposed to one vulnerability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The vulnerability's canonical id: its lowest CVE id when it has one, else the id of the
    /// advisory that names it.
    pub vulnerability: String,
    /// Its other names (GHSA, distribution CVE records …), without the canonical id.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The advisories that say this package is affected, by id.
    pub advisories: Vec<String>,
    pub manager: Manager,
    /// The installed (binary) package.
    pub package: String,
    /// Its architecture: a multi-arch host or image holds one package per architecture.
    #[serde(default)]
    pub arch: Option<String>,
    /// Its source package, when the advisory names source packages (Debian, Ubuntu) or
    /// origins (Alpine).
    pub source_package: Option<String>,
    /// The installed version, in the form the advisory's versions are compared with (the
    /// source version for Debian and Ubuntu, the EVR for rpm).
    pub installed: String,
    /// The lowest version above the installed one that the advisories say fixes it; `None`
    /// when no fix has been released.
    pub fixed: Option<String>,
    /// The ecosystem of the advisories that matched (`Debian:12`, `AlmaLinux:9` …).
    pub ecosystem: String,
    /// When the fix became available: the earliest publication of an advisory that offers a
    /// fixed version above the installed one. `None` for unfixed findings and for feeds without
    /// dates.
    pub available_at: Option<Timestamp>,
    /// When the vulnerability was first published by any of the matching advisories.
    pub published_at: Option<Timestamp>,
    /// Why this package is exposed, in words a person can check against the advisory.
    pub explanation: String,
}
