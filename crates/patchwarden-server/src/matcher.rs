//! The server's matcher: the advisory index built from the store's advisories, the enrichment
//! read from the configured files, and the classification policies — and the judgement of one
//! host's packages into findings with their class and due date.
//!
//! The judgement is the one `patchwarden scan` makes (the same index, the same enrichment
//! joins, the same policy facts), so the server and a one-shot scan of the same root and feeds
//! give the same findings; the end-to-end test holds them to that.

use std::path::Path;

use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::{HostFacts, Package};
use patchwarden_core::policy::{self, AssetLabels, FindingFacts, Policy};
use patchwarden_match::{Enrichment, Index, IndexProblem, MatchProblem, Ratings};
use patchwarden_store::{Classification, CurrentFinding, FindingBody};

/// Advisories, enrichment and policies, ready to judge hosts.
#[derive(Debug)]
pub struct Matcher {
    pub index: Index,
    pub enrichment: Enrichment,
    pub policies: Vec<Policy>,
    /// Operators' triage classifications, by vulnerability name in lower case (its id and
    /// aliases): each is a manual override with the time it was decided.
    pub decisions: std::collections::HashMap<String, (policy::Override, Timestamp)>,
    /// What each package matched, by host ecosystem and package (see [`PackageMatches`]).
    /// A matcher is rebuilt whenever advisories, enrichment, policies or decisions change, so
    /// an entry never outlives what it was computed from.
    matches: Mutex<MatchCache>,
}

/// A package's findings as the index gives them, ready to classify and store. They depend on
/// the package, the host's ecosystem and the index alone — not on the host — so a fleet whose
/// hosts share package versions matches, explains, rates and serialises each finding once,
/// not once per host.
#[derive(Debug)]
struct PackageMatches {
    ecosystem: String,
    package: Package,
    findings: Vec<(Arc<Finding>, Ratings, Option<Arc<FindingBody>>)>,
    problems: Vec<MatchProblem>,
}

/// [`PackageMatches`] by a hash of (ecosystem, package); the entry holds both, and a hit is
/// checked against them, so a hash collision is a miss, never a wrong answer.
#[derive(Debug, Default)]
struct MatchCache(rustc_hash::FxHashMap<u64, Arc<PackageMatches>>);

impl MatchCache {
    /// Distinct (ecosystem, package) pairs kept; past this the cache starts again. A fleet has
    /// far fewer distinct package versions than hosts; this bounds memory (a few MiB) on the
    /// rare fleet that has more.
    const MAX: usize = 20_000;

    fn key(ecosystem: &str, package: &Package) -> u64 {
        let mut h = rustc_hash::FxBuildHasher.build_hasher();
        ecosystem.hash(&mut h);
        package.hash(&mut h);
        std::hash::Hasher::finish(&h)
    }

    fn get(&self, key: u64, ecosystem: &str, package: &Package) -> Option<Arc<PackageMatches>> {
        self.0
            .get(&key)
            .filter(|m| m.ecosystem == ecosystem && &m.package == package)
            .cloned()
    }
}

/// A policy named in the configuration that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("policy {spec}: {reason}")]
pub struct PolicyLoadError {
    pub spec: String,
    pub reason: String,
}

/// Reads the configured policies: preset names or policy files.
pub(crate) fn load_policies(specs: &[String]) -> Result<Vec<Policy>, PolicyLoadError> {
    specs
        .iter()
        .map(|spec| {
            let err = |reason: String| PolicyLoadError {
                spec: spec.clone(),
                reason,
            };
            if let Some(preset) = policy::preset(spec) {
                return preset.policy().map_err(|e| err(e.to_string()));
            }
            let text = patchwarden_feeds::load::read_file(
                Path::new(spec),
                policy::MAX_POLICY_BYTES as u64,
            )
            .map_err(|e| err(format!("neither a preset nor a readable file: {e}")))?;
            let text = String::from_utf8(text).map_err(|_| err("not UTF-8 text".into()))?;
            Policy::parse(&text, spec).map_err(|e| err(e.to_string()))
        })
        .collect()
}

impl Matcher {
    /// Builds the index over `advisories`.
    pub fn new(
        advisories: Vec<Advisory>,
        enrichment: Enrichment,
        policies: Vec<Policy>,
    ) -> (Matcher, Vec<IndexProblem>) {
        let (index, problems) = Index::build(advisories);
        (
            Matcher {
                index,
                enrichment,
                policies,
                decisions: std::collections::HashMap::new(),
                matches: Mutex::new(MatchCache::default()),
            },
            problems,
        )
    }

    /// Puts the classified triage items in force as manual overrides (an item whose reason
    /// the policy refuses is left out, as the store never holds one).
    pub fn with_decisions(mut self, items: &[patchwarden_store::triage::TriageItem]) -> Matcher {
        for item in items {
            let Some(d) = &item.decision else { continue };
            let Ok(ov) = patchwarden_core::triage::classification_override(
                &item.vulnerability,
                d.class,
                &d.reason,
            ) else {
                continue;
            };
            self.decisions
                .insert(item.vulnerability.to_lowercase(), (ov, d.decided_at));
        }
        self
    }

    /// The decision about a finding's vulnerability, by its id or one of its aliases.
    fn decision(
        &self,
        finding: &patchwarden_core::finding::Finding,
    ) -> Option<&(policy::Override, Timestamp)> {
        if self.decisions.is_empty() {
            return None;
        }
        std::iter::once(&finding.vulnerability)
            .chain(&finding.aliases)
            .find_map(|n| self.decisions.get(&n.to_lowercase()))
    }

    /// What each of `packages` matches on a host of `ecosystem`, in their order: from the
    /// cache, and what it lacks from the index (then kept).
    fn package_matches(&self, ecosystem: &str, packages: &[&Package]) -> Vec<Arc<PackageMatches>> {
        let keys: Vec<u64> = packages
            .iter()
            .map(|p| MatchCache::key(ecosystem, p))
            .collect();
        let mut out: Vec<Option<Arc<PackageMatches>>> = {
            let cache = self.matches.lock().unwrap_or_else(PoisonError::into_inner);
            keys.iter()
                .zip(packages)
                .map(|(&k, p)| cache.get(k, ecosystem, p))
                .collect()
        };
        let mut fresh = Vec::new();
        for (i, slot) in out.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let package = packages[i];
            // One package at a time: a finding is about one package, so matching them apart
            // gives the same findings, in the same order, as matching the host's list at once.
            let report = self.index.match_packages(ecosystem, &[package]);
            let findings = report
                .findings
                .into_iter()
                .map(|f| {
                    let ratings = self.index.ratings(&f);
                    // A body that cannot be made (over the size limit) is left to the store,
                    // which then refuses the sync with its typed error.
                    let body = FindingBody::of(&f).ok().map(Arc::new);
                    (Arc::new(f), ratings, body)
                })
                .collect();
            let m = Arc::new(PackageMatches {
                ecosystem: ecosystem.to_owned(),
                package: package.clone(),
                findings,
                problems: report.problems,
            });
            fresh.push((keys[i], m.clone()));
            *slot = Some(m);
        }
        if !fresh.is_empty() {
            let mut cache = self.matches.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.0.len() + fresh.len() > MatchCache::MAX {
                cache.0.clear();
            }
            cache.0.extend(fresh);
        }
        out.into_iter().flatten().collect()
    }

    /// The findings of `packages` on a host with `facts` and `labels`, judged at `now` (which
    /// is also when they are detected: the store keeps the first-seen time of findings it
    /// already had).
    pub fn evaluate(
        &self,
        facts: &HostFacts,
        labels: &std::collections::BTreeMap<String, String>,
        packages: &[&Package],
        now: Timestamp,
    ) -> (Vec<CurrentFinding>, Vec<MatchProblem>) {
        let Some(ecosystem) = facts.os.ecosystem.as_deref() else {
            return (Vec::new(), Vec::new());
        };
        let matches = self.package_matches(ecosystem, packages);
        let mut asset = AssetLabels::default();
        for (k, v) in labels {
            // Host labels that are asset labels (exposure, role, tag, criticality) reach the
            // policy; the rest (owner, the server's own `patchwarden.*`) are not its business.
            let _ = asset.apply(&format!("{k}={v}"));
        }
        let mut findings = Vec::new();
        let mut problems = Vec::new();
        for m in &matches {
            problems.extend(m.problems.iter().cloned());
            for (finding, ratings, body) in &m.findings {
                // The classification is the host's own: its name, labels and detection time.
                let mut f = FindingFacts::new(finding, &asset);
                f.host = Some(&facts.hostname);
                f.kev = self.enrichment.kev(finding);
                f.epss = self.enrichment.epss(finding);
                f.ssvc = self.enrichment.ssvc(finding);
                f.cvss = &ratings.cvss;
                f.vendor_severity = &ratings.vendor;
                f.detected_at = Some(now);
                if let Some((ov, decided_at)) = self.decision(finding) {
                    f.manual_override = Some(ov);
                    f.evaluated_at = Some(*decided_at);
                }
                let assessment = policy::classify(&self.policies, &f, now);
                findings.push(CurrentFinding {
                    finding: finding.clone(),
                    classification: Classification::from_assessment(&assessment),
                    body: body.clone(),
                });
            }
        }
        (findings, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwarden_core::inventory::{Manager, OsInfo, PackageStatus};
    use patchwarden_feeds::load::{AdvisoryFeed, load_path};

    /// Alpine 3.10's real secdb, and one package per name it speaks of, at a version before
    /// every fix (affected by everything listed for it) or, every third, at `99-r0` (fixed).
    fn alpine() -> (Matcher, Vec<Package>) {
        let path = patchwarden_store::conformance::fixtures::shared_data()
            .join("alpine/json/v3.10/main.json");
        let import = load_path(
            &path,
            AdvisoryFeed::AlpineSecdb,
            &patchwarden_feeds::Limits::default(),
        )
        .unwrap();
        let mut names: Vec<String> = import
            .records
            .iter()
            .flat_map(|a| a.affected.iter().filter_map(|x| x.package.as_ref()))
            .map(|p| p.name.clone())
            .collect();
        names.sort();
        names.dedup();
        let packages = names
            .iter()
            .enumerate()
            .map(|(i, n)| Package {
                manager: Manager::Apk,
                name: n.clone(),
                version: if i % 3 == 0 { "99-r0" } else { "0.1-r0" }.into(),
                arch: Some("x86_64".into()),
                source_name: Some(n.clone()),
                source_version: None,
                epoch: None,
                module: None,
                status: PackageStatus::Installed,
            })
            .collect();
        let policies = load_policies(&["seed-default".into()]).unwrap();
        let (m, _) = Matcher::new(import.records, Enrichment::default(), policies);
        (m, packages)
    }

    fn host(name: &str) -> HostFacts {
        HostFacts {
            hostname: name.into(),
            os: OsInfo {
                id: "alpine".into(),
                version_id: Some("3.10.9".into()),
                ecosystem: Some("Alpine:v3.10".into()),
                ..OsInfo::default()
            },
            ..HostFacts::default()
        }
    }

    #[test]
    fn cached_package_matches_give_what_matching_the_whole_host_gives() {
        let (m, packages) = alpine();
        let refs: Vec<&Package> = packages.iter().collect();
        let labels = Default::default();
        let now = patchwarden_store::conformance::fixtures::t0();
        // The index's own answer for the whole list at once: the reference.
        let whole = m.index.match_packages("Alpine:v3.10", &refs);
        assert!(whole.findings.len() > 500, "{}", whole.findings.len());

        let (first, _) = m.evaluate(&host("a"), &labels, &refs, now);
        let cached = m.matches.lock().unwrap().0.len();
        assert_eq!(
            cached,
            packages.len(),
            "every package is kept, findings or not"
        );
        let (second, _) = m.evaluate(&host("b"), &labels, &refs, now);
        for run in [&first, &second] {
            let found: Vec<&Finding> = run.iter().map(|c| &*c.finding).collect();
            let expected: Vec<&Finding> = whole.findings.iter().collect();
            assert_eq!(found, expected, "the same findings in the same order");
            for c in run.iter() {
                let body = c
                    .body
                    .as_deref()
                    .expect("the matcher gives each finding its body");
                assert_eq!(body, &FindingBody::of(&c.finding).unwrap());
                assert!(c.classification.class.is_some(), "{:?}", c.classification);
            }
        }
        assert_eq!(
            first.iter().map(|c| &c.classification).collect::<Vec<_>>(),
            second.iter().map(|c| &c.classification).collect::<Vec<_>>()
        );

        // A package at another version is another entry: fixed now, no findings.
        let mut moved = packages.clone();
        let i = (0..moved.len())
            .find(|&i| whole.findings.iter().any(|f| f.package == moved[i].name))
            .unwrap();
        moved[i].version = "99-r0".into();
        let refs: Vec<&Package> = moved.iter().collect();
        let (third, _) = m.evaluate(&host("a"), &labels, &refs, now);
        assert!(third.iter().all(|c| c.finding.package != moved[i].name));
        assert_eq!(
            third.len(),
            first.len()
                - first
                    .iter()
                    .filter(|c| c.finding.package == moved[i].name)
                    .count()
        );
    }
}
