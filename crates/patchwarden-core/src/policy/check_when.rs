//! Reading conditions (a rule's `when`, a policy's `scope`) from their raw form.
//!
//! Each key of a condition table becomes one [`Condition`]; the table is their conjunction.
//! Problems are reported in the context the checker is in ("rule `x`: cvss: …"), and a
//! condition with no problem of its own is then checked for parts that can never hold
//! ([`Condition::contradiction`]) by the caller.

use std::collections::BTreeSet;

use toml::Spanned;

use super::check::Checker;
use super::condition::{Condition, CvssMajor, Glob, VendorLevel};
use super::facts::{AssetCriticality, Exposure, Role, is_tag};
use super::raw::{RawCond, Words};
use super::ssvc::{Exploitation, TechnicalImpact};
use super::threshold::Threshold;

impl Checker<'_> {
    fn threshold(&mut self, s: &Spanned<String>, key: &str, max: f64) -> Option<Threshold> {
        match Threshold::parse(s.get_ref(), 0.0, max) {
            Ok(t) => Some(t),
            Err(e) => {
                let key = self.key(key);
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    pub(super) fn condition(&mut self, raw: Spanned<RawCond>) -> Condition {
        let raw = raw.into_inner();
        let mut parts = Vec::new();
        for (value, make) in [
            (raw.kev, Condition::Kev as fn(bool) -> Condition),
            (raw.kev_known, Condition::KevKnown),
            (raw.kev_ransomware, Condition::KevRansomware),
            (raw.cvss_known, Condition::CvssKnown),
            (raw.no_severity, Condition::NoSeverity),
            (raw.fix_available, Condition::FixAvailable),
            (raw.ssvc_known, Condition::SsvcKnown),
            (raw.ssvc_automatable, Condition::SsvcAutomatable),
        ] {
            if let Some(b) = value {
                parts.push(make(b));
            }
        }
        if let Some(t) = raw
            .epss
            .as_ref()
            .and_then(|s| self.threshold(s, "epss", 1.0))
        {
            parts.push(Condition::Epss(t));
        }
        if let Some(t) = raw
            .epss_percentile
            .as_ref()
            .and_then(|s| self.threshold(s, "epss_percentile", 1.0))
        {
            parts.push(Condition::EpssPercentile(t));
        }
        for (value, major, key) in [
            (&raw.cvss, None, "cvss"),
            (&raw.cvss_v2, Some(CvssMajor::V2), "cvss_v2"),
            (&raw.cvss_v3, Some(CvssMajor::V3), "cvss_v3"),
            (&raw.cvss_v4, Some(CvssMajor::V4), "cvss_v4"),
        ] {
            if let Some(t) = value.as_ref().and_then(|s| self.threshold(s, key, 10.0)) {
                parts.push(Condition::Cvss(major, t));
            }
        }
        if let Some(m) = &raw.cvss_metrics {
            if m.get_ref().is_empty() {
                let msg = self.key("cvss_metrics = {} says nothing: name a metric");
                self.problem(&m.span(), msg);
            }
            for (metric, values) in m.get_ref() {
                let good = |s: &str| {
                    !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_alphanumeric())
                };
                if !good(metric) {
                    self.problem_at(
                        &m.span(),
                        format!(
                            "cvss_metrics: `{metric}` is not a CVSS metric abbreviation (AV, UI …)"
                        ),
                    );
                }
                if values.0.is_empty() {
                    self.problem_at(
                        &m.span(),
                        format!("cvss_metrics.{metric} = [] can never hold"),
                    );
                }
                for v in &values.0 {
                    if !good(v) {
                        self.problem_at(
                            &m.span(),
                            format!("cvss_metrics.{metric}: `{v}` is not a metric value (N, L …)"),
                        );
                    }
                }
                parts.push(Condition::CvssMetric {
                    metric: metric.clone(),
                    values: values.0.clone(),
                });
            }
        }
        if let Some(w) = &raw.vendor_severity {
            let levels: Vec<VendorLevel> = self.words(w, "vendor_severity");
            parts.push(Condition::VendorSeverity(levels));
        }
        if let Some(w) = &raw.ssvc_exploitation {
            let v: Vec<Exploitation> = self.words(w, "ssvc_exploitation");
            parts.push(Condition::SsvcExploitation(v));
        }
        if let Some(w) = &raw.ssvc_technical_impact {
            let v: Vec<TechnicalImpact> = self.words(w, "ssvc_technical_impact");
            parts.push(Condition::SsvcTechnicalImpact(v));
        }
        if let Some(w) = &raw.exposure {
            let v: Vec<Exposure> = self.words(w, "exposure");
            parts.push(Condition::Exposure(v));
        }
        if let Some(w) = &raw.role {
            let v: Vec<Role> = self.words(w, "role");
            parts.push(Condition::Role(v));
        }
        if let Some(w) = &raw.tag {
            if w.get_ref().0.is_empty() {
                self.problem_at(
                    &w.span(),
                    "tag = [] can never hold: list at least one tag".into(),
                );
            }
            for t in &w.get_ref().0 {
                if !is_tag(t) {
                    self.problem_at(
                        &w.span(),
                        format!("tag `{t}`: letters, digits, `-`, `_`, `.` or `:` (at most 64)"),
                    );
                }
            }
            parts.push(Condition::Tag(w.get_ref().0.clone()));
        }
        if let Some(w) = &raw.asset_criticality {
            let levels = self.criticality(w);
            parts.push(Condition::AssetCriticality(levels));
        }
        if let Some(w) = &raw.package {
            if w.get_ref().0.is_empty() {
                self.problem_at(
                    &w.span(),
                    "package = [] can never hold: list at least one name".into(),
                );
            }
            let mut globs = Vec::new();
            for p in &w.get_ref().0 {
                match Glob::new(p) {
                    Ok(g) => globs.push(g),
                    Err(e) => self.problem_at(&w.span(), format!("package: {e}")),
                }
            }
            parts.push(Condition::Package(globs));
        }
        for (list, is_any) in [(raw.any, true), (raw.all, false)] {
            let Some(list) = list else { continue };
            let key = if is_any { "any" } else { "all" };
            if list.get_ref().is_empty() {
                self.problem_at(
                    &list.span(),
                    format!("{key} = [] says nothing: list at least one condition"),
                );
            }
            let inner: Vec<Condition> = list
                .into_inner()
                .into_iter()
                .map(|c| self.condition(c))
                .collect();
            parts.push(if is_any {
                Condition::Any(inner)
            } else {
                Condition::All(inner)
            });
        }
        if let Some(not) = raw.not {
            let inner = self.condition(*not);
            parts.push(Condition::Not(Box::new(inner)));
        }
        Condition::All(parts)
    }

    /// `asset_criticality`: levels (`"high"`) or comparisons (`">=high"`), any mix.
    fn criticality(&mut self, w: &Spanned<Words>) -> BTreeSet<AssetCriticality> {
        let mut out = BTreeSet::new();
        if w.get_ref().0.is_empty() {
            self.problem_at(&w.span(), "asset_criticality = [] can never hold".into());
        }
        for text in &w.get_ref().0 {
            let text = text.trim();
            let (op, word) = [">=", "<=", ">", "<", "="]
                .iter()
                .find_map(|op| text.strip_prefix(op).map(|rest| (*op, rest.trim())))
                .unwrap_or(("=", text));
            let level: AssetCriticality = match word.parse() {
                Ok(l) => l,
                Err(e) => {
                    self.problem_at(&w.span(), format!("asset_criticality: {e}"));
                    continue;
                }
            };
            out.extend(AssetCriticality::ALL.iter().copied().filter(|&c| match op {
                ">=" => c >= level,
                "<=" => c <= level,
                ">" => c > level,
                "<" => c < level,
                _ => c == level,
            }));
        }
        if out.is_empty() && !w.get_ref().0.is_empty() {
            self.problem_at(
                &w.span(),
                "asset_criticality can never hold: no level satisfies it".into(),
            );
        }
        out
    }
}
