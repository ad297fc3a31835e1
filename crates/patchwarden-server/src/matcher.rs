//! The server's matcher: the advisory index built from the store's advisories, the enrichment
//! read from the configured files, and the classification policies — and the judgement of one
//! host's packages into findings with their class and due date.
//!
//! The judgement is the one `patchwarden scan` makes (the same index, the same enrichment
//! joins, the same policy facts), so the server and a one-shot scan of the same root and feeds
//! give the same findings; the end-to-end test holds them to that.

use std::path::Path;

use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::inventory::{HostFacts, Package};
use patchwarden_core::policy::{self, AssetLabels, FindingFacts, Policy};
use patchwarden_match::{Enrichment, Index, IndexProblem, MatchProblem};
use patchwarden_store::{Classification, CurrentFinding};

/// Advisories, enrichment and policies, ready to judge hosts.
#[derive(Debug)]
pub struct Matcher {
    pub index: Index,
    pub enrichment: Enrichment,
    pub policies: Vec<Policy>,
    /// Operators' triage classifications, by vulnerability name in lower case (its id and
    /// aliases): each is a manual override with the time it was decided.
    pub decisions: std::collections::HashMap<String, (policy::Override, Timestamp)>,
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
        let report = self.index.match_packages(ecosystem, packages);
        let mut asset = AssetLabels::default();
        for (k, v) in labels {
            // Host labels that are asset labels (exposure, role, tag, criticality) reach the
            // policy; the rest (owner, the server's own `patchwarden.*`) are not its business.
            let _ = asset.apply(&format!("{k}={v}"));
        }
        let findings = report
            .findings
            .into_iter()
            .map(|finding| {
                let ratings = self.index.ratings(&finding);
                let mut f = FindingFacts::new(&finding, &asset);
                f.host = Some(&facts.hostname);
                f.kev = self.enrichment.kev(&finding);
                f.epss = self.enrichment.epss(&finding);
                f.ssvc = self.enrichment.ssvc(&finding);
                f.cvss = &ratings.cvss;
                f.vendor_severity = &ratings.vendor;
                f.detected_at = Some(now);
                if let Some((ov, decided_at)) = self.decision(&finding) {
                    f.manual_override = Some(ov);
                    f.evaluated_at = Some(*decided_at);
                }
                let assessment = policy::assess(&self.policies, &f, now);
                let classification = Classification::from_assessment(&assessment);
                CurrentFinding {
                    finding,
                    classification,
                }
            })
            .collect();
        (findings, report.problems)
    }
}
