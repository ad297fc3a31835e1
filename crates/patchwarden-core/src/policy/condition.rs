//! Conditions: the `when` of a rule and the `scope` of a policy, and how they are judged
//! against a finding's facts.
//!
//! A condition is judged in three values: it holds, it does not, or it cannot be told because
//! a fact it needs is missing (no SSVC record, the KEV catalogue not loaded, the asset's role
//! not labelled …). `all` and `any` combine these as Kleene's logic does: `any` holds when one
//! part holds even if another is unknown, `all` fails when one part fails even if another is
//! unknown. A rule applies only when its condition holds; the undecided ones are reported with
//! what was missing, so that "classified without SSVC data" is visible on the finding.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::facts::{AssetCriticality, Exposure, FindingFacts, Lookup, Role};
use super::ssvc::{Exploitation, TechnicalImpact};
use super::threshold::Threshold;
use super::words::{comma_list, word_enum};
use crate::advisory::{CvssVersion, SeverityKind, SeverityLevel};

word_enum! {
    /// A CVSS major version, for conditions on one version's score.
    pub enum CvssMajor as "CVSS version" {
        V2 = "2",
        V3 = "3",
        V4 = "4",
    }
}

impl CvssMajor {
    fn of(v: CvssVersion) -> CvssMajor {
        match v {
            CvssVersion::V2 => CvssMajor::V2,
            CvssVersion::V3_0 | CvssVersion::V3_1 => CvssMajor::V3,
            CvssVersion::V4 => CvssMajor::V4,
        }
    }
}

word_enum! {
    /// A vendor's severity level as a policy file names it.
    pub enum VendorLevel as "vendor severity" {
        /// Rated, as negligible (Debian's "unimportant", Ubuntu's "negligible").
        None = "none",
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

impl VendorLevel {
    fn of(level: SeverityLevel) -> Option<VendorLevel> {
        match level {
            SeverityLevel::Unknown => None,
            SeverityLevel::None => Some(VendorLevel::None),
            SeverityLevel::Low => Some(VendorLevel::Low),
            SeverityLevel::Medium => Some(VendorLevel::Medium),
            SeverityLevel::High => Some(VendorLevel::High),
            SeverityLevel::Critical => Some(VendorLevel::Critical),
        }
    }
}

/// A fact a condition needed and did not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Missing {
    KevCatalogue,
    Epss,
    Cvss(Option<CvssMajor>),
    CvssVector,
    Ssvc,
    Exposure,
    Role,
    Criticality,
}

impl Missing {
    /// What was missing, as the object of "classified without …".
    pub fn noun(self) -> &'static str {
        match self {
            Missing::KevCatalogue => "the KEV catalogue",
            Missing::Epss => "EPSS scores",
            Missing::Cvss(None) => "a CVSS score",
            Missing::Cvss(Some(CvssMajor::V2)) => "a CVSS v2 score",
            Missing::Cvss(Some(CvssMajor::V3)) => "a CVSS v3 score",
            Missing::Cvss(Some(CvssMajor::V4)) => "a CVSS v4 score",
            Missing::CvssVector => "a CVSS vector",
            Missing::Ssvc => "SSVC data",
            Missing::Exposure => "the asset's exposure",
            Missing::Role => "the asset's role",
            Missing::Criticality => "the asset's criticality",
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

impl Serialize for Missing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.noun())
    }
}

/// The three values a condition can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown(BTreeSet<Missing>),
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn unknown(m: Missing) -> Truth {
        Truth::Unknown(BTreeSet::from([m]))
    }
}

/// A simple `*` pattern over package names (`firefox*`, `*-microcode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() || pattern.len() > 200 || pattern.chars().all(|c| c == '*') {
            return Err(format!(
                "`{pattern}` is not a package pattern: name a package, with `*` for any run of \
                 characters (as in \"firefox*\")"
            ));
        }
        if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{pattern}` has a space or control character"));
        }
        Ok(Glob(pattern.to_owned()))
    }

    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            // No `*` at all: the whole name must match.
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = rest.get(at + part.len()..).unwrap_or(""),
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A condition over a finding's facts.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every part holds (a `when` table is the `all` of its keys; `all = […]`).
    All(Vec<Condition>),
    /// At least one part holds (`any = […]`).
    Any(Vec<Condition>),
    /// The part does not hold (`not = {…}`).
    Not(Box<Condition>),
    /// In CISA's KEV catalogue (`kev`).
    Kev(bool),
    /// The KEV catalogue was loaded (`kev_known`).
    KevKnown(bool),
    /// KEV says the CVE is known to be used in ransomware campaigns (`kev_ransomware`).
    KevRansomware(bool),
    /// EPSS probability (`epss`).
    Epss(Threshold),
    /// EPSS percentile (`epss_percentile`).
    EpssPercentile(Threshold),
    /// CVSS base score: the best available (`cvss`) or one version's (`cvss_v3` …).
    Cvss(Option<CvssMajor>, Threshold),
    /// Metrics of the best CVSS vector (`cvss_metrics = { AV = "N", UI = "N" }`).
    CvssMetric {
        metric: String,
        values: Vec<String>,
    },
    /// The highest vendor severity is one of these (`vendor_severity`).
    VendorSeverity(Vec<VendorLevel>),
    /// Some CVSS score is known, of any version (`cvss_known`).
    CvssKnown(bool),
    /// No vendor severity and no CVSS score at all (`no_severity`).
    NoSeverity(bool),
    /// A fixed version exists (`fix_available`).
    FixAvailable(bool),
    /// CISA has published SSVC decision points for the CVE (`ssvc_known`).
    SsvcKnown(bool),
    SsvcExploitation(Vec<Exploitation>),
    SsvcAutomatable(bool),
    SsvcTechnicalImpact(Vec<TechnicalImpact>),
    /// The asset's exposure is one of these (`exposure`); `unknown` may be listed.
    Exposure(Vec<Exposure>),
    /// The asset has one of these roles (`role`).
    Role(Vec<Role>),
    /// The asset carries one of these scope tags (`tag`).
    Tag(Vec<String>),
    /// The asset's criticality is one of these (`asset_criticality`).
    AssetCriticality(BTreeSet<AssetCriticality>),
    /// The package (binary or source name) matches one of these patterns (`package`).
    Package(Vec<Glob>),
}

/// The facts prepared once per finding and policy, so that each rule reads them cheaply.
#[derive(Debug)]
pub(crate) struct Context<'f, 'a> {
    pub(crate) facts: &'f FindingFacts<'a>,
    /// The exposure after the policy's assumption for unknown exposure.
    pub(crate) exposure: Exposure,
    /// (major, score in tenths, vector) of the best CVSS rating.
    best: Option<(CvssMajor, u8, &'a str)>,
    /// The highest score of each major version, in tenths.
    by_major: [Option<u8>; 3],
    vendor: Option<VendorLevel>,
}

impl<'f, 'a> Context<'f, 'a> {
    pub(crate) fn new(facts: &'f FindingFacts<'a>, exposure: Exposure) -> Context<'f, 'a> {
        let mut best: Option<(CvssMajor, u8, &'a str)> = None;
        let mut by_major = [None; 3];
        for s in facts.cvss {
            let (SeverityKind::Cvss(v), Some(score)) = (&s.kind, s.base_score) else {
                continue;
            };
            let major = CvssMajor::of(*v);
            let t = score.tenths();
            if best.is_none_or(|(m, bt, _)| (major, t) > (m, bt)) {
                best = Some((major, t, s.vector.as_str()));
            }
            if let Some(slot) = by_major.get_mut(major as usize) {
                *slot = Some(slot.map_or(t, |old: u8| old.max(t)));
            }
        }
        let vendor = facts
            .vendor_severity
            .iter()
            .filter_map(|v| VendorLevel::of(v.level))
            .max();
        Context {
            facts,
            exposure,
            best,
            by_major,
            vendor,
        }
    }

    fn score(&self, major: Option<CvssMajor>) -> Option<f64> {
        let tenths = match major {
            None => self.best.map(|(_, t, _)| t),
            Some(m) => self.by_major.get(m as usize).copied().flatten(),
        }?;
        Some(f64::from(tenths) / 10.0)
    }
}

impl Condition {
    /// Judges the condition on the prepared facts.
    pub(crate) fn eval(&self, cx: &Context<'_, '_>) -> Truth {
        let facts = cx.facts;
        match self {
            Condition::All(parts) => {
                let mut missing = BTreeSet::new();
                for p in parts {
                    match p.eval(cx) {
                        Truth::False => return Truth::False,
                        Truth::Unknown(m) => missing.extend(m),
                        Truth::True => {}
                    }
                }
                if missing.is_empty() {
                    Truth::True
                } else {
                    Truth::Unknown(missing)
                }
            }
            Condition::Any(parts) => {
                let mut missing = BTreeSet::new();
                for p in parts {
                    match p.eval(cx) {
                        Truth::True => return Truth::True,
                        Truth::Unknown(m) => missing.extend(m),
                        Truth::False => {}
                    }
                }
                if missing.is_empty() {
                    Truth::False
                } else {
                    Truth::Unknown(missing)
                }
            }
            Condition::Not(inner) => match inner.eval(cx) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                unknown => unknown,
            },
            Condition::Kev(want) => match facts.kev {
                Lookup::NotLoaded => Truth::unknown(Missing::KevCatalogue),
                Lookup::NotListed => Truth::of(!want),
                Lookup::Listed(_) => Truth::of(*want),
            },
            Condition::KevKnown(want) => Truth::of(facts.kev.is_loaded() == *want),
            Condition::KevRansomware(want) => match facts.kev {
                Lookup::NotLoaded => Truth::unknown(Missing::KevCatalogue),
                Lookup::NotListed => Truth::of(!want),
                Lookup::Listed(k) => Truth::of(
                    (k.known_ransomware_use == crate::advisory::RansomwareUse::Known) == *want,
                ),
            },
            // EPSS scores nearly every published CVE: a loaded snapshot without this one has
            // no score to meet a threshold with.
            Condition::Epss(t) => match facts.epss {
                Lookup::Listed(e) => Truth::of(t.contains(e.epss)),
                Lookup::NotListed => Truth::False,
                Lookup::NotLoaded => Truth::unknown(Missing::Epss),
            },
            Condition::EpssPercentile(t) => match facts.epss {
                Lookup::Listed(e) => Truth::of(t.contains(e.percentile)),
                Lookup::NotListed => Truth::False,
                Lookup::NotLoaded => Truth::unknown(Missing::Epss),
            },
            Condition::Cvss(major, t) => match cx.score(*major) {
                Some(score) => Truth::of(t.contains(score)),
                None => Truth::unknown(Missing::Cvss(*major)),
            },
            Condition::CvssMetric { metric, values } => match cx.best {
                // A metric the vector's version does not have (UI in v2) does not hold.
                Some((_, _, vector)) => Truth::of(
                    vector_metric(vector, metric).is_some_and(|v| values.iter().any(|w| w == v)),
                ),
                None => Truth::unknown(Missing::CvssVector),
            },
            // The advisories are what the vendor said: no rating in them is a known absence.
            Condition::VendorSeverity(levels) => {
                Truth::of(cx.vendor.is_some_and(|level| levels.contains(&level)))
            }
            Condition::CvssKnown(want) => Truth::of(cx.best.is_some() == *want),
            Condition::NoSeverity(want) => {
                let none = cx.vendor.is_none() && cx.best.is_none();
                Truth::of(none == *want)
            }
            Condition::FixAvailable(want) => Truth::of(facts.finding.fixed.is_some() == *want),
            Condition::SsvcKnown(want) => Truth::of(facts.ssvc.listed().is_some() == *want),
            Condition::SsvcExploitation(values) => match facts.ssvc.listed() {
                Some(s) => Truth::of(values.contains(&s.exploitation)),
                None => Truth::unknown(Missing::Ssvc),
            },
            Condition::SsvcAutomatable(want) => match facts.ssvc.listed() {
                Some(s) => Truth::of(s.automatable == *want),
                None => Truth::unknown(Missing::Ssvc),
            },
            Condition::SsvcTechnicalImpact(values) => match facts.ssvc.listed() {
                Some(s) => Truth::of(values.contains(&s.technical_impact)),
                None => Truth::unknown(Missing::Ssvc),
            },
            Condition::Exposure(values) => {
                if values.contains(&cx.exposure) {
                    Truth::True
                } else if cx.exposure == Exposure::Unknown {
                    Truth::unknown(Missing::Exposure)
                } else {
                    Truth::False
                }
            }
            Condition::Role(roles) => {
                if facts.asset.roles.is_empty() {
                    Truth::unknown(Missing::Role)
                } else {
                    Truth::of(roles.iter().any(|r| facts.asset.roles.contains(r)))
                }
            }
            Condition::Tag(tags) => Truth::of(tags.iter().any(|t| facts.asset.tags.contains(t))),
            Condition::AssetCriticality(levels) => match facts.asset.criticality {
                Some(c) => Truth::of(levels.contains(&c)),
                None => Truth::unknown(Missing::Criticality),
            },
            Condition::Package(globs) => {
                let f = facts.finding;
                Truth::of(globs.iter().any(|g| {
                    g.matches(&f.package)
                        || f.source_package.as_deref().is_some_and(|s| g.matches(s))
                }))
            }
        }
    }

    /// Whether the condition can only hold for vulnerabilities in the KEV catalogue: it
    /// requires `kev = true` at its top level (directly or through nested `all`).
    pub(crate) fn requires_kev(&self) -> bool {
        match self {
            Condition::Kev(true) => true,
            Condition::All(parts) => parts.iter().any(Condition::requires_kev),
            _ => false,
        }
    }

    /// Finds a conjunction in this condition that can never hold, and says why.
    ///
    /// The check is deliberately simple and exact for what people write: within one `all`
    /// (a `when` table and its nested `all` lists), the same yes/no fact asked both ways,
    /// thresholds on one score whose intersection is empty, lists of words with nothing in
    /// common, and a few pairs that exclude each other (`kev = true` with `kev_known = false`,
    /// `ssvc_known = false` with a condition on an SSVC decision point, `no_severity = true`
    /// with a condition on a score or vendor severity). Every nested `any` and `not` part is
    /// checked the same way, since a part that can never hold is a mistake too.
    pub(crate) fn contradiction(&self) -> Option<String> {
        match self {
            Condition::All(_) => {
                let mut leaves = Vec::new();
                self.flatten_all(&mut leaves);
                conjunction_conflict(&leaves).or_else(|| {
                    leaves.iter().find_map(|c| match c {
                        Condition::Any(_) | Condition::Not(_) => c.contradiction(),
                        _ => None,
                    })
                })
            }
            Condition::Any(parts) => parts.iter().find_map(Condition::contradiction),
            Condition::Not(inner) => inner.contradiction(),
            _ => None,
        }
    }

    fn flatten_all<'c>(&'c self, out: &mut Vec<&'c Condition>) {
        match self {
            Condition::All(parts) => parts.iter().for_each(|p| p.flatten_all(out)),
            other => out.push(other),
        }
    }
}

/// The value of one metric in a CVSS vector (`AV` in `CVSS:3.1/AV:N/…` is `N`).
fn vector_metric<'v>(vector: &'v str, metric: &str) -> Option<&'v str> {
    let v = vector.trim().trim_start_matches('(').trim_end_matches(')');
    v.split('/')
        .filter_map(|part| part.split_once(':'))
        .find(|(k, _)| *k == metric)
        .map(|(_, value)| value)
}

/// The conflicts within one conjunction of leaves.
fn conjunction_conflict(leaves: &[&Condition]) -> Option<String> {
    use std::collections::BTreeMap;

    let mut bools: BTreeMap<&'static str, bool> = BTreeMap::new();
    let mut thresholds: BTreeMap<String, Threshold> = BTreeMap::new();
    let mut sets: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut asks_ssvc = None;
    let mut asks_severity = None;
    let mut asks_cvss = None;

    for leaf in leaves {
        let (name, b) = match leaf {
            Condition::Kev(b) => ("kev", *b),
            Condition::KevKnown(b) => ("kev_known", *b),
            Condition::KevRansomware(b) => ("kev_ransomware", *b),
            Condition::NoSeverity(b) => ("no_severity", *b),
            Condition::CvssKnown(b) => ("cvss_known", *b),
            Condition::FixAvailable(b) => ("fix_available", *b),
            Condition::SsvcKnown(b) => ("ssvc_known", *b),
            Condition::SsvcAutomatable(b) => ("ssvc_automatable", *b),
            _ => ("", false),
        };
        if !name.is_empty()
            && let Some(old) = bools.insert(name, b)
            && old != b
        {
            return Some(format!("{name} = {old} and {name} = {b} cannot both hold"));
        }
        let threshold = match leaf {
            Condition::Epss(t) => Some(("epss".to_owned(), t)),
            Condition::EpssPercentile(t) => Some(("epss_percentile".to_owned(), t)),
            Condition::Cvss(None, t) => Some(("cvss".to_owned(), t)),
            Condition::Cvss(Some(m), t) => Some((format!("cvss_v{m}"), t)),
            _ => None,
        };
        if let Some((key, t)) = threshold {
            let merged = match thresholds.get(&key) {
                Some(old) => old.intersect(t),
                None => t.clone(),
            };
            if merged.is_empty() {
                return Some(format!("{key} = \"{merged}\" can never hold"));
            }
            thresholds.insert(key, merged);
        }
        let words: Option<(&'static str, BTreeSet<String>)> = match leaf {
            Condition::VendorSeverity(v) => Some(("vendor_severity", strings(v))),
            Condition::SsvcExploitation(v) => Some(("ssvc_exploitation", strings(v))),
            Condition::SsvcTechnicalImpact(v) => Some(("ssvc_technical_impact", strings(v))),
            Condition::Exposure(v) => Some(("exposure", strings(v))),
            Condition::AssetCriticality(v) => Some(("asset_criticality", strings(v))),
            _ => None,
        };
        if let Some((key, set)) = words {
            let merged: BTreeSet<String> = match sets.get(key) {
                Some(old) => old.intersection(&set).cloned().collect(),
                None => set,
            };
            if merged.is_empty() {
                return Some(format!("the {key} lists have no value in common"));
            }
            sets.insert(key, merged);
        }
        if matches!(
            leaf,
            Condition::SsvcExploitation(_)
                | Condition::SsvcAutomatable(_)
                | Condition::SsvcTechnicalImpact(_)
        ) {
            asks_ssvc.get_or_insert(leaf);
        }
        if matches!(leaf, Condition::Cvss(..) | Condition::CvssMetric { .. }) {
            asks_cvss.get_or_insert(leaf);
        }
        if matches!(leaf, Condition::Cvss(..) | Condition::VendorSeverity(_)) {
            asks_severity.get_or_insert(leaf);
        }
    }
    if bools.get("kev") == Some(&true) && bools.get("kev_known") == Some(&false) {
        return Some("kev = true needs the KEV catalogue, but kev_known = false".into());
    }
    if bools.get("kev_ransomware") == Some(&true) && bools.get("kev") == Some(&false) {
        return Some("kev_ransomware = true needs kev = true".into());
    }
    if bools.get("ssvc_known") == Some(&false) && asks_ssvc.is_some() {
        return Some("ssvc_known = false, yet an SSVC decision point is asked for".into());
    }
    if bools.get("cvss_known") == Some(&false) && asks_cvss.is_some() {
        return Some("cvss_known = false, yet a CVSS score or metric is asked for".into());
    }
    if bools.get("no_severity") == Some(&true) && bools.get("cvss_known") == Some(&true) {
        return Some("no_severity = true and cvss_known = true cannot both hold".into());
    }
    if bools.get("no_severity") == Some(&true) && asks_severity.is_some() {
        return Some("no_severity = true, yet a CVSS score or vendor severity is asked for".into());
    }
    None
}

fn strings<'i, T: fmt::Display + 'i>(items: impl IntoIterator<Item = &'i T>) -> BTreeSet<String> {
    items.into_iter().map(ToString::to_string).collect()
}

impl fmt::Display for Condition {
    /// The condition in the file's own words, for explanations.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: Vec<String>| {
            if items.len() == 1 {
                format!("\"{}\"", items.concat())
            } else {
                format!(
                    "[{}]",
                    comma_list(&items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>())
                )
            }
        };
        match self {
            Condition::All(parts) => {
                if parts.is_empty() {
                    return f.write_str("always");
                }
                let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                write!(f, "{}", parts.join(" and "))
            }
            Condition::Any(parts) => {
                let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                write!(f, "({})", parts.join(" or "))
            }
            Condition::Not(inner) => write!(f, "not ({inner})"),
            Condition::Kev(b) => write!(f, "kev = {b}"),
            Condition::KevKnown(b) => write!(f, "kev_known = {b}"),
            Condition::KevRansomware(b) => write!(f, "kev_ransomware = {b}"),
            Condition::Epss(t) => write!(f, "epss = \"{t}\""),
            Condition::EpssPercentile(t) => write!(f, "epss_percentile = \"{t}\""),
            Condition::Cvss(None, t) => write!(f, "cvss = \"{t}\""),
            Condition::Cvss(Some(m), t) => write!(f, "cvss_v{m} = \"{t}\""),
            Condition::CvssMetric { metric, values } => {
                write!(f, "cvss_metrics.{metric} = {}", list(values.clone()))
            }
            Condition::VendorSeverity(v) => {
                write!(
                    f,
                    "vendor_severity = {}",
                    list(v.iter().map(ToString::to_string).collect())
                )
            }
            Condition::NoSeverity(b) => write!(f, "no_severity = {b}"),
            Condition::CvssKnown(b) => write!(f, "cvss_known = {b}"),
            Condition::FixAvailable(b) => write!(f, "fix_available = {b}"),
            Condition::SsvcKnown(b) => write!(f, "ssvc_known = {b}"),
            Condition::SsvcExploitation(v) => write!(
                f,
                "ssvc_exploitation = {}",
                list(v.iter().map(ToString::to_string).collect())
            ),
            Condition::SsvcAutomatable(b) => write!(f, "ssvc_automatable = {b}"),
            Condition::SsvcTechnicalImpact(v) => write!(
                f,
                "ssvc_technical_impact = {}",
                list(v.iter().map(ToString::to_string).collect())
            ),
            Condition::Exposure(v) => {
                write!(
                    f,
                    "exposure = {}",
                    list(v.iter().map(ToString::to_string).collect())
                )
            }
            Condition::Role(v) => {
                write!(
                    f,
                    "role = {}",
                    list(v.iter().map(ToString::to_string).collect())
                )
            }
            Condition::Tag(v) => write!(f, "tag = {}", list(v.clone())),
            Condition::AssetCriticality(v) => write!(
                f,
                "asset_criticality = {}",
                list(v.iter().map(ToString::to_string).collect())
            ),
            Condition::Package(v) => {
                write!(
                    f,
                    "package = {}",
                    list(v.iter().map(ToString::to_string).collect())
                )
            }
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names() {
        let g = |p: &str| Glob::new(p).unwrap();
        assert!(g("firefox*").matches("firefox-esr"));
        assert!(g("firefox*").matches("firefox"));
        assert!(!g("firefox*").matches("xfirefox"));
        assert!(g("*-microcode").matches("intel-microcode"));
        assert!(!g("*-microcode").matches("intel-microcode-tools"));
        assert!(g("lib*office*").matches("libreoffice-core"));
        assert!(g("openssl").matches("openssl"));
        assert!(!g("openssl").matches("openssl-libs"));
        assert!(g("a*a").matches("aa"));
        assert!(!g("a*a").matches("a"));
        assert!(Glob::new("*").is_err());
        assert!(Glob::new("").is_err());
        assert!(Glob::new("a b").is_err());
    }

    #[test]
    fn vector_metrics_are_read_from_any_version() {
        assert_eq!(
            vector_metric("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "UI"),
            Some("N")
        );
        assert_eq!(
            vector_metric("(AV:N/AC:M/Au:N/C:N/I:P/A:N)", "Au"),
            Some("N")
        );
        assert_eq!(vector_metric("AV:N/AC:M/Au:N/C:N/I:P/A:N", "UI"), None);
    }
}
