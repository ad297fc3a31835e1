//! The CSAF document as published: the parts of the schema we read, as serde types.
//!
//! Fields the schema requires are required here too, so that serde names what is missing;
//! everything we do not use is left out and ignored.

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub(super) struct RawCsaf {
    pub(super) document: RawDocument,
    pub(super) product_tree: Option<RawProductTree>,
    #[serde(default)]
    pub(super) vulnerabilities: Option<Vec<RawVulnerability>>,
}

#[derive(Deserialize)]
pub(super) struct RawDocument {
    pub(super) category: String,
    pub(super) csaf_version: String,
    pub(super) publisher: RawPublisher,
    pub(super) title: String,
    pub(super) tracking: RawTracking,
    pub(super) aggregate_severity: Option<RawText>,
    #[serde(default)]
    pub(super) notes: Option<Vec<RawNote>>,
    #[serde(default)]
    pub(super) references: Option<Vec<RawReference>>,
}

#[derive(Deserialize)]
pub(super) struct RawPublisher {
    #[allow(dead_code)] // Required by the schema; its presence is the check.
    pub(super) category: String,
    pub(super) name: String,
    #[allow(dead_code)] // Required by the schema; its presence is the check.
    pub(super) namespace: String,
}

#[derive(Deserialize)]
pub(super) struct RawTracking {
    pub(super) id: String,
    pub(super) initial_release_date: String,
    pub(super) current_release_date: String,
    pub(super) status: String,
    #[allow(dead_code)] // Required by the schema; its presence is the check.
    pub(super) version: String,
    pub(super) revision_history: Vec<Value>,
}

#[derive(Deserialize)]
pub(super) struct RawText {
    pub(super) text: String,
}

#[derive(Deserialize)]
pub(super) struct RawNote {
    pub(super) category: String,
    pub(super) text: String,
    pub(super) title: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawReference {
    pub(super) category: Option<String>,
    pub(super) url: String,
}

#[derive(Deserialize, Default)]
pub(super) struct RawProductTree {
    #[serde(default)]
    pub(super) branches: Option<Vec<RawBranch>>,
    #[serde(default)]
    pub(super) full_product_names: Option<Vec<RawProduct>>,
    #[serde(default)]
    pub(super) relationships: Option<Vec<RawRelationship>>,
    #[serde(default)]
    pub(super) product_groups: Option<Vec<RawGroup>>,
}

#[derive(Deserialize)]
pub(super) struct RawBranch {
    pub(super) category: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) branches: Option<Vec<RawBranch>>,
    pub(super) product: Option<RawProduct>,
}

#[derive(Deserialize)]
pub(super) struct RawProduct {
    pub(super) name: String,
    pub(super) product_id: String,
    pub(super) product_identification_helper: Option<RawHelper>,
}

#[derive(Deserialize)]
pub(super) struct RawHelper {
    pub(super) cpe: Option<String>,
    pub(super) purl: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawRelationship {
    pub(super) category: String,
    pub(super) full_product_name: RawProduct,
    pub(super) product_reference: String,
    pub(super) relates_to_product_reference: String,
}

#[derive(Deserialize)]
pub(super) struct RawGroup {
    pub(super) group_id: String,
    pub(super) product_ids: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct RawVulnerability {
    pub(super) cve: Option<String>,
    #[serde(default)]
    pub(super) ids: Option<Vec<Value>>,
    #[serde(default)]
    pub(super) notes: Option<Vec<RawNote>>,
    #[serde(default)]
    pub(super) product_status: Option<RawProductStatus>,
    #[serde(default)]
    pub(super) remediations: Option<Vec<RawRemediation>>,
    /// CSAF 2.0.
    #[serde(default)]
    pub(super) scores: Option<Vec<RawScore>>,
    /// CSAF 2.1.
    #[serde(default)]
    pub(super) metrics: Option<Vec<RawMetric>>,
    #[serde(default)]
    pub(super) threats: Option<Vec<RawThreat>>,
    #[serde(default)]
    pub(super) flags: Option<Vec<RawFlag>>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawProductStatus {
    #[serde(default)]
    pub(super) first_affected: Option<Vec<String>>,
    #[serde(default)]
    pub(super) first_fixed: Option<Vec<String>>,
    #[serde(default)]
    pub(super) fixed: Option<Vec<String>>,
    #[serde(default)]
    pub(super) known_affected: Option<Vec<String>>,
    #[serde(default)]
    pub(super) known_not_affected: Option<Vec<String>>,
    #[serde(default)]
    pub(super) last_affected: Option<Vec<String>>,
    #[serde(default)]
    pub(super) recommended: Option<Vec<String>>,
    #[serde(default)]
    pub(super) under_investigation: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct RawRemediation {
    pub(super) category: String,
    pub(super) details: Option<String>,
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) product_ids: Option<Vec<String>>,
    #[serde(default)]
    pub(super) group_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct RawScore {
    #[serde(default)]
    pub(super) products: Vec<String>,
    pub(super) cvss_v2: Option<RawCvss>,
    pub(super) cvss_v3: Option<RawCvss>,
    pub(super) cvss_v4: Option<RawCvss>,
}

#[derive(Deserialize)]
pub(super) struct RawMetric {
    #[serde(default)]
    pub(super) products: Vec<String>,
    pub(super) content: RawMetricContent,
}

#[derive(Deserialize)]
pub(super) struct RawMetricContent {
    pub(super) cvss_v2: Option<RawCvss>,
    pub(super) cvss_v3: Option<RawCvss>,
    pub(super) cvss_v4: Option<RawCvss>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawCvss {
    pub(super) vector_string: Option<String>,
    pub(super) base_score: Option<f64>,
}

#[derive(Deserialize)]
pub(super) struct RawThreat {
    pub(super) category: String,
    pub(super) details: String,
    #[serde(default)]
    pub(super) product_ids: Option<Vec<String>>,
    #[serde(default)]
    pub(super) group_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct RawFlag {
    pub(super) label: String,
    #[serde(default)]
    pub(super) product_ids: Option<Vec<String>>,
    #[serde(default)]
    pub(super) group_ids: Option<Vec<String>>,
}

impl RawVulnerability {
    /// `(version, products, cvss)` for every score, CSAF 2.0 `scores` and 2.1 `metrics` alike.
    pub(super) fn cvss(&self) -> Vec<(u8, &[String], &RawCvss)> {
        let mut out = Vec::new();
        for s in self.scores.iter().flatten() {
            let p = s.products.as_slice();
            out.extend(s.cvss_v2.as_ref().map(|c| (2, p, c)));
            out.extend(s.cvss_v3.as_ref().map(|c| (3, p, c)));
            out.extend(s.cvss_v4.as_ref().map(|c| (4, p, c)));
        }
        for m in self.metrics.iter().flatten() {
            let p = m.products.as_slice();
            out.extend(m.content.cvss_v2.as_ref().map(|c| (2, p, c)));
            out.extend(m.content.cvss_v3.as_ref().map(|c| (3, p, c)));
            out.extend(m.content.cvss_v4.as_ref().map(|c| (4, p, c)));
        }
        out
    }
}

impl RawProductStatus {
    /// `(status name, product ids)` for every status list.
    pub(super) fn lists(&self) -> [(&'static str, &[String]); 8] {
        fn l(v: &Option<Vec<String>>) -> &[String] {
            v.as_deref().unwrap_or(&[])
        }
        [
            ("first_affected", l(&self.first_affected)),
            ("first_fixed", l(&self.first_fixed)),
            ("fixed", l(&self.fixed)),
            ("known_affected", l(&self.known_affected)),
            ("known_not_affected", l(&self.known_not_affected)),
            ("last_affected", l(&self.last_affected)),
            ("recommended", l(&self.recommended)),
            ("under_investigation", l(&self.under_investigation)),
        ]
    }
}
