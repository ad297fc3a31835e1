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
            },
            problems,
        )
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
