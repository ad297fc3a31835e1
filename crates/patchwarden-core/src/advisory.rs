//! The advisory model: what every feed parser produces and what the matcher consumes.
//!
//! OSV is the internal model. Every published feed — OSV itself, CSAF 2.0, the Alpine secdb,
//! the Debian security tracker, CVE JSON 5 — is turned into [`Advisory`] records that keep
//! OSV's field names and meaning, plus the few things OSV leaves to `database_specific` that
//! Patchwarden needs typed: the vendor's own severity rating, "not affected" statements from
//! VEX documents and the tracker, remediations, and where the record came from.
//!
//! # What the matcher relies on
//!
//! * **Index key.** Every [`Affected`] entry names one package in one ecosystem
//!   ([`PackageRef::ecosystem`], [`PackageRef::name`]); the matcher indexes on that pair. The
//!   ecosystem is spelled as OSV spells it (`Debian:12`, `Ubuntu:22.04:LTS`, `AlmaLinux:9`,
//!   `Alpine:v3.19`, `Red Hat:enterprise_linux:9::appstream`), so a host's
//!   [`crate::inventory::OsInfo::ecosystem`] selects the entries that concern it.
//! * **Which name.** Debian and Ubuntu advisories name *source* packages, Alpine names the
//!   *origin* (its source package), rpm distributions name *binary* packages:
//!   [`PackageRef::naming`] says which of a host package's names to compare.
//! * **Versions.** Range events keep the feed's text. rpm events carry epoch-aware EVRs
//!   (`1:3.0.7-24.el9`; CSAF's explicit `0:` epoch is kept as written, which rpm orders the same
//!   as no epoch). [`Affected::scheme`] gives the ordering to use. Parsers reject records whose
//!   `ECOSYSTEM` range events do not parse under their ecosystem's scheme, so a matcher never
//!   meets a version it cannot order. `GIT` ranges are kept for display but
//!   [`Range::is_matchable`] is false for them: we cannot order commits.
//! * **Several sources, one vulnerability.** One CVE is reached through many advisories (an
//!   ALSA, a USN, a Red Hat CSAF document, the CVE record itself). [`group_vulnerabilities`]
//!   merges them: ids and aliases name the same vulnerability, `upstream` names the
//!   vulnerabilities an advisory fixes (see [`Advisory::fixes`]).
//! * **Withdrawn** records ([`Advisory::withdrawn`]) are kept so that a withdrawal replaces an
//!   earlier import, and ignored for matching ([`Advisory::is_active`]).
//! * **Fix availability.** [`Advisory::fix_available_at`] is the moment the fix was published
//!   (OSV `published` of the fixing advisory, CSAF `initial_release_date`): SLA clocks that
//!   start at "fix released" start there.
//! * **Not affected.** [`NotAffected`] statements (CSAF VEX `known_not_affected`, the Debian
//!   tracker's "not affected" releases) suppress findings for that package.

mod enrichment;
mod severity;
mod vulnerability;

pub use enrichment::{EpssScore, EpssSnapshot, KevEntry, RansomwareUse};
pub use patchwarden_version::Scheme;
pub use severity::{
    CvssVersion, Score, Severity, SeverityKind, SeverityLevel, VendorSeverity, vector_score,
};
pub use vulnerability::{Vulnerability, group_vulnerabilities};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One advisory in the OSV model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The record's own id: `ALSA-2024:1234`, `CVE-2024-1234`, `GHSA-…`, `ALPINE-CVE-…`.
    pub id: String,
    /// Other ids of the *same* vulnerability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Ids of closely related but different vulnerabilities or advisories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// The vulnerabilities this record is derived from or fixes (`USN-…` → its CVEs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
    pub published: Option<Timestamp>,
    pub modified: Option<Timestamp>,
    /// Set when the publisher withdrew the record: it must not produce findings.
    pub withdrawn: Option<Timestamp>,
    pub summary: Option<String>,
    pub details: Option<String>,
    /// Scored severity vectors (CVSS v2/v3/v4) and other typed ratings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// The vendor's own rating of the whole advisory (Red Hat's "Important", Debian's urgency,
    /// Ubuntu's priority), normalised, with the original text.
    pub vendor_severity: Option<VendorSeverity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<Affected>,
    /// Packages the publisher states are not affected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_affected: Vec<NotAffected>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// OSV's free-form `database_specific`, kept as published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
    /// CISA's SSVC decision points for the CVE (Vulnrichment's ADP container of a CVE 5
    /// record): what BOD 26-04's matrix decides on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssvc: Option<crate::policy::Ssvc>,
    pub source: Source,
}

impl Advisory {
    /// A record with only an id and a source; parsers fill in the rest.
    pub fn new(id: impl Into<String>, source: Source) -> Advisory {
        Advisory {
            id: id.into(),
            aliases: Vec::new(),
            related: Vec::new(),
            upstream: Vec::new(),
            published: None,
            modified: None,
            withdrawn: None,
            summary: None,
            details: None,
            severity: Vec::new(),
            vendor_severity: None,
            affected: Vec::new(),
            not_affected: Vec::new(),
            references: Vec::new(),
            database_specific: None,
            ssvc: None,
            source,
        }
    }

    /// Whether the record may produce findings: withdrawn records may not.
    pub fn is_active(&self) -> bool {
        self.withdrawn.is_none()
    }

    /// When the fix this advisory announces became available: its publication time. SLA rules
    /// that start at "fix released" start here; `None` when the feed gives no date (the Debian
    /// tracker), in which case the caller falls back to the time it first saw the record.
    pub fn fix_available_at(&self) -> Option<Timestamp> {
        self.published
    }

    /// The ids of the vulnerabilities this advisory is about or fixes.
    ///
    /// * A record that is itself about one vulnerability — its id or an alias is a CVE (a CVE
    ///   record, a GHSA with its CVE alias, an `ALPINE-CVE-…`) — answers its id and aliases.
    /// * A vendor advisory that bundles fixes (a USN, a DLA, an RHSA, an `UBUNTU-CVE-…`) names
    ///   what it fixes in `upstream`.
    /// * AlmaLinux and older Red Hat OSV records put the fixed CVEs in `related` instead, so a
    ///   record with neither a CVE name nor `upstream` counts the CVE ids in `related`.
    /// * Anything else (a `MAL-…`, a `GO-…` without a CVE) is its own vulnerability.
    ///
    /// Only the record's own fields count: `upstream` is not followed transitively, so cycles
    /// in the published data (`A` upstream of `B` upstream of `A`) cannot loop.
    pub fn fixes(&self) -> Vec<&str> {
        let own =
            || std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str));
        let mut out: Vec<&str> = if own().any(is_cve) {
            own().collect()
        } else if !self.upstream.is_empty() {
            self.upstream.iter().map(String::as_str).collect()
        } else {
            let related: Vec<&str> = self
                .related
                .iter()
                .map(String::as_str)
                .filter(|r| is_cve(r))
                .collect();
            if related.is_empty() {
                own().collect()
            } else {
                related
            }
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The first CVSS score of the highest version present (v4 over v3 over v2), the usual
    /// choice for a single number.
    pub fn best_cvss(&self) -> Option<&Severity> {
        self.severity
            .iter()
            .filter(|s| s.base_score.is_some())
            .max_by_key(|s| match s.kind {
                SeverityKind::Cvss(v) => v as u8,
                _ => 0,
            })
    }
}

/// Whether an id is a CVE id (`CVE-YYYY-N…`).
pub fn is_cve(id: &str) -> bool {
    id.strip_prefix("CVE-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(year, num)| {
            year.len() == 4
                && year.bytes().all(|b| b.is_ascii_digit())
                && num.len() >= 4
                && num.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Where a record came from: which feed, which file or URL, which document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    pub feed: FeedKind,
    /// The file, archive member (`archive.zip!dir/file.json`) or URL the record was read from.
    pub location: String,
    /// The id of the enclosing document when it differs from the record's id (a CSAF
    /// document's `tracking.id`, a secdb file's `distroversion/reponame`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// The feeds Patchwarden reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedKind {
    Osv,
    Csaf,
    AlpineSecdb,
    DebianTracker,
    /// CVE JSON 5 records (cvelistV5, CISA Vulnrichment): severity and text for a CVE, with no
    /// matchable package ranges.
    Cve5,
    Kev,
    Epss,
}

/// A reference link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// OSV's reference type (`ADVISORY`, `FIX`, `WEB` …) or CSAF's category.
    pub kind: String,
    pub url: String,
}

/// One package's affected versions, as OSV's `affected[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// Absent only when the entry has nothing but `GIT` ranges, which OSV allows.
    pub package: Option<PackageRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Explicitly enumerated affected versions, compared by equality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Per-package severity (OSV 1.5 `affected[].severity`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// The vendor's rating for this package or release when it differs per entry (Debian's
    /// per-release urgency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_severity: Option<VendorSeverity>,
    /// What the publisher says to do (CSAF remediations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remediations: Vec<Remediation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

impl Affected {
    /// An entry for one package with no ranges yet.
    pub fn new(package: PackageRef) -> Affected {
        Affected {
            package: Some(package),
            ranges: Vec::new(),
            versions: Vec::new(),
            severity: Vec::new(),
            vendor_severity: None,
            remediations: Vec::new(),
            ecosystem_specific: None,
            database_specific: None,
        }
    }

    /// The version ordering of this entry's ecosystem, when we know one.
    pub fn scheme(&self) -> Option<Scheme> {
        self.package
            .as_ref()
            .and_then(|p| Scheme::from_osv_ecosystem(&p.ecosystem).ok())
    }

    /// The fixed versions named by this entry's matchable ranges.
    pub fn fixed_versions(&self) -> impl Iterator<Item = &str> {
        self.ranges
            .iter()
            .filter(|r| r.is_matchable())
            .flat_map(|r| r.events.iter())
            .filter_map(|e| match e {
                Event::Fixed(v) => Some(v.as_str()),
                _ => None,
            })
    }
}

/// A package in an ecosystem, as OSV names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageRef {
    pub ecosystem: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

impl PackageRef {
    pub fn new(ecosystem: impl Into<String>, name: impl Into<String>) -> PackageRef {
        PackageRef {
            ecosystem: ecosystem.into(),
            name: name.into(),
            purl: None,
        }
    }

    /// Which of a host package's names this entry's `name` is.
    pub fn naming(&self) -> PackageNaming {
        PackageNaming::for_ecosystem(&self.ecosystem)
    }
}

/// Which name of an installed package an advisory's package name is to be compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageNaming {
    /// The source package (Debian, Ubuntu): compare with dpkg's `Source:`.
    Source,
    /// Alpine's origin (the APKBUILD's `pkgname`): compare with apk's `o:`.
    Origin,
    /// The binary package name (rpm distributions, language ecosystems).
    Binary,
}

impl PackageNaming {
    /// The naming an OSV ecosystem uses.
    pub fn for_ecosystem(ecosystem: &str) -> PackageNaming {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" => PackageNaming::Source,
            "Alpine" => PackageNaming::Origin,
            _ => PackageNaming::Binary,
        }
    }
}

/// One OSV range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    /// The repository of a `GIT` range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    pub events: Vec<Event>,
}

impl Range {
    /// An `ECOSYSTEM` range from `introduced` to `fixed` (or open-ended).
    pub fn ecosystem(introduced: impl Into<String>, fixed: Option<String>) -> Range {
        let mut events = vec![Event::Introduced(introduced.into())];
        events.extend(fixed.map(Event::Fixed));
        Range {
            kind: RangeKind::Ecosystem,
            repo: None,
            events,
        }
    }

    /// Whether the matcher can evaluate this range: `GIT` ranges name commits, which cannot
    /// be ordered without the repository, so they are kept but never matched.
    pub fn is_matchable(&self) -> bool {
        self.kind != RangeKind::Git
    }
}

/// OSV range types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    Ecosystem,
    Semver,
    Git,
}

/// One event of a range. `introduced: "0"` means "from the beginning".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    /// The version the event names.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// A statement that a package is not affected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAffected {
    pub package: PackageRef,
    /// The version the statement is about, when it names one; `None` means every version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<Justification>,
    /// The publisher's words (a CSAF impact statement, the tracker's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
}

/// Why a package is not affected: the five CSAF VEX justifications, plus the Debian tracker's
/// "never vulnerable" (fixed in version 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Justification {
    ComponentNotPresent,
    VulnerableCodeNotPresent,
    VulnerableCodeCannotBeControlledByAdversary,
    VulnerableCodeNotInExecutePath,
    InlineMitigationsAlreadyExist,
    /// Debian's tracker: the release never shipped a vulnerable version.
    NeverVulnerable,
}

impl Justification {
    /// The CSAF flag label, if `label` is one.
    pub fn from_csaf_label(label: &str) -> Option<Justification> {
        Some(match label {
            "component_not_present" => Justification::ComponentNotPresent,
            "vulnerable_code_not_present" => Justification::VulnerableCodeNotPresent,
            "vulnerable_code_cannot_be_controlled_by_adversary" => {
                Justification::VulnerableCodeCannotBeControlledByAdversary
            }
            "vulnerable_code_not_in_execute_path" => Justification::VulnerableCodeNotInExecutePath,
            "inline_mitigations_already_exist" => Justification::InlineMitigationsAlreadyExist,
            _ => return None,
        })
    }
}

/// What a publisher says to do about an affected package (CSAF `remediations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    pub category: RemediationCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// CSAF's remediation categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationCategory {
    VendorFix,
    Workaround,
    Mitigation,
    NoFixPlanned,
    NoneAvailable,
    /// CSAF 2.1 additions and anything newer.
    Other,
}

impl RemediationCategory {
    pub fn from_csaf(category: &str) -> RemediationCategory {
        match category {
            "vendor_fix" => RemediationCategory::VendorFix,
            "workaround" => RemediationCategory::Workaround,
            "mitigation" => RemediationCategory::Mitigation,
            "no_fix_planned" => RemediationCategory::NoFixPlanned,
            "none_available" => RemediationCategory::NoneAvailable,
            _ => RemediationCategory::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source {
            feed: FeedKind::Osv,
            location: "test".into(),
            document: None,
        }
    }

    #[test]
    fn cve_ids_are_recognised_strictly() {
        assert!(is_cve("CVE-2024-1234"));
        assert!(is_cve("CVE-1999-0001"));
        assert!(!is_cve("CVE-1"));
        assert!(!is_cve("UBUNTU-CVE-2023-4004"));
        assert!(!is_cve("CVE-2024-12a4"));
    }

    #[test]
    fn bundles_fix_their_upstream_or_related_cves() {
        let mut usn = Advisory::new("USN-1", source());
        usn.upstream = vec!["CVE-2023-0002".into(), "CVE-2023-0001".into()];
        assert_eq!(usn.fixes(), ["CVE-2023-0001", "CVE-2023-0002"]);

        let mut alsa = Advisory::new("ALSA-2022:5267", source());
        alsa.related = vec!["CVE-2022-1012".into(), "RHBZ-1".into()];
        assert_eq!(alsa.fixes(), ["CVE-2022-1012"]);

        // A GHSA's `related` names other vulnerabilities, not what it fixes.
        let mut ghsa = Advisory::new("GHSA-xxxx", source());
        ghsa.aliases = vec!["CVE-2024-0001".into()];
        ghsa.related = vec!["CVE-2024-0002".into()];
        assert_eq!(ghsa.fixes(), ["CVE-2024-0001", "GHSA-xxxx"]);
    }

    #[test]
    fn naming_follows_the_ecosystem() {
        assert_eq!(
            PackageNaming::for_ecosystem("Debian:12"),
            PackageNaming::Source
        );
        assert_eq!(
            PackageNaming::for_ecosystem("Ubuntu:22.04:LTS"),
            PackageNaming::Source
        );
        assert_eq!(
            PackageNaming::for_ecosystem("Alpine:v3.19"),
            PackageNaming::Origin
        );
        assert_eq!(
            PackageNaming::for_ecosystem("Red Hat:enterprise_linux:9::appstream"),
            PackageNaming::Binary
        );
    }

    #[test]
    fn git_ranges_are_kept_but_not_matchable() {
        let git = Range {
            kind: RangeKind::Git,
            repo: Some("https://example.invalid/r".into()),
            events: vec![Event::Introduced("0".into()), Event::Fixed("abc".into())],
        };
        let mut a = Affected::new(PackageRef::new("PyPI", "x"));
        a.ranges = vec![git, Range::ecosystem("0", Some("1.2".into()))];
        assert!(!a.ranges[0].is_matchable());
        assert_eq!(a.fixed_versions().collect::<Vec<_>>(), ["1.2"]);
    }

    #[test]
    fn the_best_cvss_is_the_newest_version_scored() {
        let mut a = Advisory::new("CVE-2024-0001", source());
        assert!(a.best_cvss().is_none());
        a.severity = vec![
            Severity::cvss("AV:N/AC:L/Au:N/C:P/I:P/A:P", None),
            Severity::cvss("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", None),
            Severity::cvss("CVSS:4.0/AV:X", None),
        ];
        // The v4 vector does not parse, so the v3.1 one is the best scored.
        assert_eq!(
            a.best_cvss()
                .and_then(|s| s.base_score)
                .map(|s| s.to_string()),
            Some("7.5".to_owned())
        );
    }

    #[test]
    fn withdrawn_records_are_inactive() {
        let mut a = Advisory::new("GHSA-1", source());
        assert!(a.is_active());
        a.withdrawn = Some("2024-01-01T00:00:00Z".parse().unwrap_or_default());
        assert!(!a.is_active());
    }
}
