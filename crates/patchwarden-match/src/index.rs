//! The advisory index, and matching one host's packages against it.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
// The index is hashed on every package of every host: FxHash is several times cheaper than
// SipHash for short keys, and the keys are package names from our own feeds, not an
// attacker's choice of collisions against a long-lived table.
use patchwarden_core::advisory::{
    Advisory, Event, PackageNaming, RangeKind, group_vulnerabilities,
};
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::{Manager, Package};
use patchwarden_version::{Scheme, Version, VersionError};
use rustc_hash::FxHashMap as HashMap;

use crate::ecosystem::ecosystem_applies;
use crate::kept::AdvisoryFacts;
use crate::module;
use crate::range::{Bound, CompiledRange, Verdict};

/// One `affected[]` entry, compiled. Boxed slices rather than vectors: the index holds one
/// entry per package per advisory (71,329 for the AlmaLinux archive) for as long as
/// the server runs, and never grows them.
#[derive(Debug)]
struct Entry {
    advisory: u32,
    ranges: Box<[CompiledRange]>,
    /// Explicitly listed affected versions.
    versions: Box<[Version]>,
    /// The rpm epoch the entry's versions carry (`1` of `1:3.0.7-25.el9`), when not 0.
    epoch: Option<Box<str>>,
}

/// How to read the packages given to [`Index::match_packages_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchOptions {
    /// The packages' rpm epochs are unknown rather than absent. Red Hat's SBOMs, for one,
    /// leave every epoch out of their package URLs, so `openssl-libs 3.0.7-27.el9` there is
    /// really `1:3.0.7-27.el9`; read as epoch 0 it would look older than every fix carrying
    /// epoch 1 — a false alarm on every such package. With this set, an rpm package without
    /// an epoch is compared with the epoch of the advisory's own versions, and the explanation
    /// says so.
    pub rpm_epoch_unknown: bool,
}

/// A "not affected" statement, compiled.
#[derive(Debug)]
struct NotAffected {
    advisory: u32,
    /// `None`: every version.
    version: Option<Version>,
}

/// The entries of one ecosystem, by package name.
#[derive(Debug, Default)]
struct EcosystemEntries {
    naming: Option<PackageNaming>,
    scheme: Option<Scheme>,
    by_name: HashMap<String, Vec<Entry>>,
    not_affected: HashMap<String, Vec<NotAffected>>,
}

/// Something in the advisories that the index could not use, said with the advisory's id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{advisory}: {reason}")]
pub struct IndexProblem {
    pub advisory: String,
    pub reason: String,
}

/// Something about a host's package that the matcher could not judge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{package} {version}: {reason}")]
pub struct MatchProblem {
    pub package: String,
    pub version: String,
    pub reason: String,
}

/// What matching one host gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchReport {
    /// One finding per (package, vulnerability), sorted by package then vulnerability.
    pub findings: Vec<Finding>,
    /// Packages whose versions could not be ordered.
    pub problems: Vec<MatchProblem>,
    /// How many packages were looked up (installed, with files present, in a known ecosystem).
    pub packages_checked: usize,
}

/// Advisories indexed for matching.
///
/// The index keeps what matching needs of each advisory ([`AdvisoryFacts`]), not the whole
/// advisory: a caller that shows or re-matches one reads it from where the advisories came
/// from (the server: its store).
#[derive(Debug)]
pub struct Index {
    advisories: Vec<AdvisoryFacts>,
    /// For each advisory, the vulnerabilities (indices into `vulnerabilities`) it speaks of.
    advisory_vulns: Vec<Vec<u32>>,
    vulnerabilities: Vec<patchwarden_core::advisory::Vulnerability>,
    /// Every name of every vulnerability → its index in `vulnerabilities`.
    vulnerability_names: HashMap<String, u32>,
    ecosystems: HashMap<String, EcosystemEntries>,
}

impl Index {
    /// Indexes advisories. Withdrawn ones are kept out; entries whose versions cannot be
    /// ordered are kept out with a problem each, and the rest of their advisory still counts.
    /// The advisories are consumed: the index keeps only their [`AdvisoryFacts`].
    pub fn build(advisories: Vec<Advisory>) -> (Index, Vec<IndexProblem>) {
        let mut problems = Vec::new();
        let vulnerabilities = group_vulnerabilities(&advisories);
        let mut advisory_vulns = vec![Vec::new(); advisories.len()];
        for (v, vuln) in vulnerabilities.iter().enumerate() {
            for &s in &vuln.sources {
                if let Some(list) = advisory_vulns.get_mut(s) {
                    list.push(v as u32);
                }
            }
        }
        let mut ecosystems: HashMap<String, EcosystemEntries> = HashMap::default();
        let mut kept = Vec::with_capacity(advisories.len());
        let mut versions = Versions::default();
        // Each advisory is dropped as soon as it is compiled, so the whole set and the index
        // are not both held longer than they must be.
        for (i, adv) in advisories.into_iter().enumerate() {
            kept.push(AdvisoryFacts::of(&adv));
            if !adv.is_active() {
                continue;
            }
            let problem = |reason: String| IndexProblem {
                advisory: adv.id.clone(),
                reason,
            };
            for affected in &adv.affected {
                let Some(pkg) = &affected.package else {
                    continue;
                };
                let Ok(scheme) = Scheme::from_osv_ecosystem(&pkg.ecosystem) else {
                    // Language ecosystems we cannot order are not errors: we do not inventory
                    // them on hosts either.
                    continue;
                };
                match compile_entry(i as u32, scheme, affected, &mut versions) {
                    Ok(entry) => {
                        let eco = ecosystem_entries(&mut ecosystems, &pkg.ecosystem);
                        eco.naming = Some(pkg.naming());
                        eco.scheme = Some(scheme);
                        match eco.by_name.get_mut(pkg.name.as_str()) {
                            Some(list) => list.push(entry),
                            None => {
                                eco.by_name.insert(pkg.name.clone(), vec![entry]);
                            }
                        }
                    }
                    Err(e) => {
                        problems.push(problem(format!("{} {}: {e}", pkg.ecosystem, pkg.name)))
                    }
                }
            }
            for na in &adv.not_affected {
                let Ok(scheme) = Scheme::from_osv_ecosystem(&na.package.ecosystem) else {
                    continue;
                };
                let version = match na.version.as_deref().map(|v| scheme.parse(v)) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(e)) => {
                        problems.push(problem(format!("not-affected statement: {e}")));
                        continue;
                    }
                };
                let eco = ecosystem_entries(&mut ecosystems, &na.package.ecosystem);
                eco.naming = Some(na.package.naming());
                eco.scheme = Some(scheme);
                eco.not_affected
                    .entry(na.package.name.clone())
                    .or_default()
                    .push(NotAffected {
                        advisory: i as u32,
                        version,
                    });
            }
        }
        let mut vulnerability_names = HashMap::default();
        for (v, vuln) in vulnerabilities.iter().enumerate() {
            for name in &vuln.names {
                vulnerability_names.insert(name.clone(), v as u32);
            }
        }
        // Lists grown entry by entry have spare capacity: give it back, since the index lives
        // as long as the server.
        for eco in ecosystems.values_mut() {
            eco.by_name.values_mut().for_each(Vec::shrink_to_fit);
            eco.by_name.shrink_to_fit();
            eco.not_affected.values_mut().for_each(Vec::shrink_to_fit);
        }
        advisory_vulns.iter_mut().for_each(Vec::shrink_to_fit);
        let index = Index {
            advisories: kept,
            advisory_vulns,
            vulnerabilities,
            vulnerability_names,
            ecosystems,
        };
        (index, problems)
    }

    /// How many advisories the index holds (withdrawn ones included).
    pub fn advisory_count(&self) -> usize {
        self.advisories.len()
    }

    /// What the index keeps of the advisories, in the order given to [`Index::build`].
    pub fn advisories(&self) -> &[AdvisoryFacts] {
        &self.advisories
    }

    /// What the index keeps of the advisory with this id, if indexed.
    pub fn advisory(&self, id: &str) -> Option<&AdvisoryFacts> {
        self.advisories.iter().find(|a| a.id() == id)
    }

    /// The active advisories that speak of the vulnerability with this name (any of its
    /// names), CVE records among them.
    pub fn vulnerability_sources(&self, name: &str) -> impl Iterator<Item = &AdvisoryFacts> {
        self.vulnerability_names
            .get(name)
            .and_then(|&v| self.vulnerabilities.get(v as usize))
            .into_iter()
            .flat_map(|v| v.sources.iter().filter_map(|&s| self.advisories.get(s)))
    }

    /// How many (ecosystem, package) keys the index has.
    pub fn package_keys(&self) -> usize {
        self.ecosystems.values().map(|e| e.by_name.len()).sum()
    }

    /// The ecosystems whose advisories concern a host of `host_ecosystem`.
    fn applicable<'a>(
        &'a self,
        host_ecosystem: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a EcosystemEntries)> {
        self.ecosystems
            .iter()
            .filter(move |(eco, _)| ecosystem_applies(eco, host_ecosystem))
            .map(|(eco, entries)| (eco.as_str(), entries))
    }

    /// Matches one host's packages. `host_ecosystem` is the host's OSV ecosystem
    /// (`OsInfo::ecosystem`).
    ///
    /// `packages` may be owned packages or references to them, so that a fleet of hosts can
    /// share one pool of package records.
    pub fn match_packages<P: Borrow<Package>>(
        &self,
        host_ecosystem: &str,
        packages: &[P],
    ) -> MatchReport {
        self.match_packages_with(host_ecosystem, packages, MatchOptions::default())
    }

    /// [`Index::match_packages`] with options for inventories that know less than a package
    /// database does.
    pub fn match_packages_with<P: Borrow<Package>>(
        &self,
        host_ecosystem: &str,
        packages: &[P],
        options: MatchOptions,
    ) -> MatchReport {
        let ecosystems: Vec<(&str, &EcosystemEntries)> = self.applicable(host_ecosystem).collect();
        let mut report = MatchReport::default();
        // (package index, vulnerability) → the evidence gathered for it.
        let mut hits: BTreeMap<(usize, u32), Evidence<'_>> = BTreeMap::new();
        for (p, pkg) in packages.iter().enumerate() {
            let pkg: &Package = pkg.borrow();
            if !pkg.status.files_present() {
                continue;
            }
            for &(eco_name, eco) in &ecosystems {
                let (Some(naming), Some(scheme)) = (eco.naming, eco.scheme) else {
                    continue;
                };
                if !manager_fits(pkg.manager, scheme) {
                    continue;
                }
                let (name, version_text) = names_for(pkg, naming);
                let entries = eco.by_name.get(name);
                let statements = eco.not_affected.get(name);
                if entries.is_none() && statements.is_none() {
                    continue;
                }
                report.packages_checked += 1;
                let installed = match scheme.parse(&version_text) {
                    Ok(v) => v,
                    Err(e) => {
                        report.problems.push(problem(pkg, &version_text, &e));
                        continue;
                    }
                };
                let suppressed = |advisory: u32| -> bool {
                    statements.is_some_and(|list| {
                        list.iter().any(|s| {
                            self.shares_vulnerability(s.advisory, advisory)
                                && s.version.as_ref().is_none_or(|v| v == &installed)
                        })
                    })
                };
                for entry in entries.into_iter().flatten() {
                    // An SBOM that leaves epochs out: compare as if the package carried the
                    // epoch the advisory's versions carry.
                    let assumed = match (&entry.epoch, options.rpm_epoch_unknown) {
                        (Some(e), true) if pkg.manager == Manager::Rpm && pkg.epoch.is_none() => {
                            scheme
                                .parse(&format!("{e}:{version_text}"))
                                .ok()
                                .map(|v| (e, v))
                        }
                        _ => None,
                    };
                    let compared = assumed.as_ref().map_or(&installed, |(_, v)| v);
                    let Some(mut judgement) = self.judge(entry, pkg, compared, &version_text)
                    else {
                        continue;
                    };
                    judgement.assumed_epoch = assumed.map(|(e, _)| &**e);
                    if suppressed(entry.advisory) {
                        continue;
                    }
                    for &v in &self.advisory_vulns[entry.advisory as usize] {
                        let ev = hits.entry((p, v)).or_insert_with(|| Evidence {
                            ecosystem: eco_name,
                            name,
                            installed: version_text.clone().into_owned(),
                            advisories: Vec::new(),
                            best_fix: None,
                            introduced: None,
                            listed: false,
                            assumed_epoch: None,
                        });
                        ev.add(entry.advisory, &judgement, &self.advisories);
                    }
                }
            }
        }
        report.findings = hits
            .into_iter()
            .map(|((p, v), ev)| self.finding(packages[p].borrow(), v, ev))
            .collect();
        report
    }

    /// Whether two advisories speak of a common vulnerability (a VEX statement in one
    /// document answers for the CVE, whichever advisory reported it).
    fn shares_vulnerability(&self, a: u32, b: u32) -> bool {
        a == b || {
            let (va, vb) = (
                &self.advisory_vulns[a as usize],
                &self.advisory_vulns[b as usize],
            );
            va.iter().any(|v| vb.contains(v))
        }
    }

    /// How one entry judges one package; `None` when it is not affected.
    fn judge<'a>(
        &'a self,
        entry: &'a Entry,
        pkg: &Package,
        installed: &Version,
        installed_text: &str,
    ) -> Option<Judgement<'a>> {
        if entry.versions.iter().any(|v| v == installed) {
            return Some(Judgement {
                fixed: None,
                introduced: "",
                listed: true,
                assumed_epoch: None,
            });
        }
        let mut affected: Option<Judgement<'a>> = None;
        for range in &entry.ranges {
            if let Verdict::Affected { fixed, introduced } = range.judge(installed) {
                // A fix from another module stream does not close this package.
                let fixed = fixed.filter(|(_, text)| {
                    pkg.manager != Manager::Rpm
                        || module::stream_mismatch(
                            installed_text,
                            pkg.module.as_deref(),
                            text,
                            self.advisories[entry.advisory as usize].streams(),
                        )
                        .is_none()
                });
                if pkg.manager == Manager::Rpm && fixed.is_none() {
                    // Every fix this range offers is for another stream (or there is none):
                    // only an open-ended range still speaks of this package.
                    let has_fix = range.bounds.iter().any(|b| matches!(b, Bound::Fixed(_)));
                    if has_fix {
                        continue;
                    }
                }
                let better = match (&affected, fixed) {
                    (None, _) => true,
                    (Some(a), Some((v, _))) => a
                        .fixed
                        .is_none_or(|(w, _)| v.compare(w) == Some(std::cmp::Ordering::Less)),
                    (Some(_), None) => false,
                };
                if better {
                    affected = Some(Judgement {
                        fixed,
                        introduced,
                        listed: false,
                        assumed_epoch: None,
                    });
                }
            }
        }
        affected
    }

    fn finding(&self, pkg: &Package, v: u32, ev: Evidence<'_>) -> Finding {
        let vuln = &self.vulnerabilities[v as usize];
        let mut advisories: Vec<String> = ev
            .advisories
            .iter()
            .map(|&a| self.advisories[a as usize].id().to_owned())
            .collect();
        advisories.sort();
        advisories.dedup();
        let published_at = ev
            .advisories
            .iter()
            .filter_map(|&a| self.advisories[a as usize].published())
            .min();
        let fixed = ev.best_fix.as_ref().map(|f| f.text.to_owned());
        let available_at = ev.best_fix.as_ref().and_then(|f| f.available_at);
        let source = match pkg.manager {
            Manager::Dpkg | Manager::Apk if ev.name != pkg.name => Some(ev.name.to_owned()),
            Manager::Dpkg | Manager::Apk => {
                pkg.source_name.clone().or_else(|| Some(pkg.name.clone()))
            }
            Manager::Rpm => None,
        };
        let explanation = explain(pkg, &ev, source.as_deref(), &advisories, self);
        Finding {
            vulnerability: vuln.id.clone(),
            aliases: vuln
                .names
                .iter()
                .filter(|n| **n != vuln.id)
                .cloned()
                .collect(),
            advisories,
            manager: pkg.manager,
            package: pkg.name.clone(),
            arch: pkg.arch.clone(),
            source_package: source,
            installed: ev.installed,
            fixed,
            ecosystem: ev.ecosystem.to_owned(),
            available_at,
            published_at,
            explanation,
        }
    }
}

/// What one entry said about one package.
#[derive(Debug, Clone, Copy)]
struct Judgement<'a> {
    fixed: Option<(&'a Version, &'a str)>,
    introduced: &'a str,
    /// Matched through the explicit `versions` list rather than a range.
    listed: bool,
    /// The epoch assumed for a package whose epoch is unknown.
    assumed_epoch: Option<&'a str>,
}

#[derive(Debug)]
struct Fix<'a> {
    version: &'a Version,
    text: &'a str,
    advisory: u32,
    available_at: Option<Timestamp>,
}

/// Everything gathered for one (package, vulnerability).
#[derive(Debug)]
struct Evidence<'a> {
    ecosystem: &'a str,
    /// The name the advisories use (source, origin or binary).
    name: &'a str,
    installed: String,
    advisories: Vec<u32>,
    best_fix: Option<Fix<'a>>,
    /// Where the affected range starts ("0" for always), from the first range that matched.
    introduced: Option<&'a str>,
    /// Whether an advisory lists the installed version explicitly.
    listed: bool,
    /// The epoch assumed for a package whose epoch is unknown, if one was.
    assumed_epoch: Option<&'a str>,
}

impl<'a> Evidence<'a> {
    fn add(&mut self, advisory: u32, j: &Judgement<'a>, all: &[AdvisoryFacts]) {
        if !self.advisories.contains(&advisory) {
            self.advisories.push(advisory);
        }
        self.listed |= j.listed;
        self.assumed_epoch = self.assumed_epoch.or(j.assumed_epoch);
        if !j.listed && self.introduced.is_none() {
            self.introduced = Some(j.introduced);
        }
        let Some((version, text)) = j.fixed else {
            return;
        };
        let available_at = all[advisory as usize].fix_available_at();
        match &mut self.best_fix {
            Some(best) => match version.compare(best.version) {
                Some(std::cmp::Ordering::Less) => {
                    *best = Fix {
                        version,
                        text,
                        advisory,
                        available_at,
                    };
                }
                // The same fix offered by several advisories: available from the earliest.
                Some(std::cmp::Ordering::Equal) => {
                    if let Some(t) = available_at
                        && best.available_at.is_none_or(|b| t < b)
                    {
                        best.available_at = Some(t);
                        best.advisory = advisory;
                    }
                }
                _ => {}
            },
            None => {
                self.best_fix = Some(Fix {
                    version,
                    text,
                    advisory,
                    available_at,
                })
            }
        }
    }
}

fn explain(
    pkg: &Package,
    ev: &Evidence<'_>,
    source: Option<&str>,
    advisories: &[String],
    index: &Index,
) -> String {
    let whose = match (pkg.manager, source) {
        (Manager::Dpkg, Some(s)) => format!("{}, source {s}", ev.ecosystem),
        (Manager::Apk, Some(s)) => format!("{}, origin {s}", ev.ecosystem),
        _ => ev.ecosystem.to_owned(),
    };
    // A binNMU or a binary versioned apart from its source: say which version was compared.
    let binary = if pkg.manager != Manager::Rpm && pkg.version != ev.installed {
        format!(" (binary {} {})", pkg.name, pkg.version)
    } else {
        String::new()
    };
    let name = source
        .filter(|_| pkg.manager != Manager::Rpm)
        .unwrap_or(&pkg.name);
    let binary = match ev.assumed_epoch {
        Some(e) => format!("{binary} (epoch unknown, compared as {e}:{})", ev.installed),
        None => binary,
    };
    match &ev.best_fix {
        Some(fix) => format!(
            "{name} {}{binary} < {} fixed in {} ({whose})",
            ev.installed,
            fix.text,
            index.advisories[fix.advisory as usize].id(),
        ),
        None => {
            let since = match (ev.listed, ev.introduced) {
                (true, _) => "listed as affected".to_owned(),
                (false, Some("0") | None) => "affected in every version".to_owned(),
                (false, Some(v)) => format!("affected since {v}"),
            };
            format!(
                "{name} {}{binary} is {since} per {} ({whose}); no fixed version is published",
                ev.installed,
                advisories.join(", "),
            )
        }
    }
}

/// Which of a package's names and versions an ecosystem's advisories use.
fn names_for(pkg: &Package, naming: PackageNaming) -> (&str, Cow<'_, str>) {
    match naming {
        PackageNaming::Source | PackageNaming::Origin => (
            pkg.source_name.as_deref().unwrap_or(&pkg.name),
            Cow::Borrowed(pkg.source_version.as_deref().unwrap_or(&pkg.version)),
        ),
        PackageNaming::Binary => (&pkg.name, pkg.full_version()),
    }
}

/// Only dpkg packages answer Debian advisories, only rpm packages rpm ones, and so on: a
/// Debian host with an rpm database of its own (for building rpms) must not match its rpm
/// packages against Debian's advisories.
fn manager_fits(manager: Manager, scheme: Scheme) -> bool {
    matches!(
        (manager, scheme),
        (Manager::Dpkg, Scheme::Dpkg)
            | (Manager::Rpm, Scheme::Rpm)
            | (Manager::Apk, Scheme::Apk | Scheme::Apk2)
    )
}

fn problem(pkg: &Package, version: &str, e: &VersionError) -> MatchProblem {
    MatchProblem {
        package: pkg.name.clone(),
        version: version.to_owned(),
        reason: e.reason.to_string(),
    }
}

/// Parsed range versions, shared by every event that names them while the index is built: the
/// AlmaLinux archive's 142,000 range events name fewer than 10,000 distinct versions (every
/// package an advisory fixes is fixed at the same release), so each is parsed and held once.
#[derive(Default)]
struct Versions(HashMap<Scheme, HashMap<Box<str>, Arc<Version>>>);

impl Versions {
    fn parse(&mut self, scheme: Scheme, text: &str) -> Result<Arc<Version>, VersionError> {
        let known = self.0.entry(scheme).or_default();
        if let Some(v) = known.get(text) {
            return Ok(v.clone());
        }
        let v = Arc::new(scheme.parse(text)?);
        known.insert(text.into(), v.clone());
        Ok(v)
    }
}

fn compile_entry(
    advisory: u32,
    scheme: Scheme,
    affected: &patchwarden_core::advisory::Affected,
    shared: &mut Versions,
) -> Result<Entry, VersionError> {
    let mut ranges = Vec::new();
    for r in &affected.ranges {
        if r.kind == RangeKind::Git {
            continue;
        }
        // ECOSYSTEM and SEMVER ranges alike order with the ecosystem's scheme: the installed
        // version is parsed with it, and the ecosystems that publish SEMVER ranges (npm,
        // crates.io, Go …) use SemVer as their scheme.
        let mut bounds = Vec::with_capacity(r.events.len());
        for e in &r.events {
            let bound = match e {
                Event::Introduced(v) if v == "0" => Bound::Introduced(None),
                Event::Introduced(v) => Bound::Introduced(Some(shared.parse(scheme, v)?)),
                Event::Fixed(v) => Bound::Fixed(shared.parse(scheme, v)?),
                Event::LastAffected(v) => Bound::LastAffected(shared.parse(scheme, v)?),
                Event::Limit(v) if v == "*" => continue,
                Event::Limit(v) => Bound::Limit(shared.parse(scheme, v)?),
            };
            bounds.push(bound);
        }
        ranges.push(CompiledRange::new(bounds));
    }
    let versions: Box<[Version]> = affected
        .versions
        .iter()
        .map(|v| scheme.parse(v))
        .collect::<Result<_, _>>()?;
    // The epoch of the entry's rpm versions: the first event that writes a non-zero one.
    let epoch = (scheme == Scheme::Rpm)
        .then(|| {
            affected
                .ranges
                .iter()
                .flat_map(|r| &r.events)
                .find_map(|e| {
                    let (epoch, _) = e.version().split_once(':')?;
                    let nonzero = !epoch.is_empty()
                        && epoch.bytes().all(|b| b.is_ascii_digit())
                        && epoch.bytes().any(|b| b != b'0');
                    nonzero.then(|| epoch.into())
                })
        })
        .flatten();
    Ok(Entry {
        advisory,
        ranges: ranges.into(),
        versions,
        epoch,
    })
}

/// The entries of an ecosystem, made on first use; the name is copied once per ecosystem, not
/// once per entry.
fn ecosystem_entries<'a>(
    ecosystems: &'a mut HashMap<String, EcosystemEntries>,
    name: &str,
) -> &'a mut EcosystemEntries {
    if !ecosystems.contains_key(name) {
        ecosystems.insert(name.to_owned(), EcosystemEntries::default());
    }
    ecosystems.get_mut(name).expect("inserted above")
}
