//! Enrichment records: facts about a CVE that are not advisories but change how urgent one is.
//!
//! CISA's Known Exploited Vulnerabilities catalogue says a CVE is exploited in the wild and by
//! when US federal agencies must fix it (the default policy makes such findings Emergency);
//! FIRST's EPSS gives the probability that a CVE will be exploited in the next 30 days. Both
//! are keyed by CVE id and joined to vulnerabilities by the matcher.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// One entry of the CISA KEV catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KevEntry {
    pub cve: String,
    pub vendor_project: String,
    pub product: String,
    pub vulnerability_name: String,
    /// The day CISA added the CVE: BOD 22-01 clocks start here.
    pub date_added: Date,
    /// The remediation deadline CISA set for federal agencies.
    pub due_date: Date,
    pub known_ransomware_use: RansomwareUse,
    pub short_description: String,
    pub required_action: String,
    pub notes: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cwes: Vec<String>,
}

/// KEV's `knownRansomwareCampaignUse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RansomwareUse {
    Known,
    Unknown,
}

/// One CVE's EPSS score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpssScore {
    /// Probability of exploitation in the next 30 days, 0–1.
    pub epss: f64,
    /// The share of all scored CVEs with a lower or equal score, 0–1.
    pub percentile: f64,
}

/// One EPSS CSV file: the scores and the model and date they were computed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpssSnapshot {
    /// From the CSV's comment header (`#model_version:v2023.03.01,…`).
    pub model_version: Option<String>,
    /// From the CSV's comment header (`…,score_date:2025-02-20T00:00:00+0000`).
    pub score_date: Option<jiff::Timestamp>,
    /// `(cve, score)` in file order.
    pub scores: Vec<(String, EpssScore)>,
}
