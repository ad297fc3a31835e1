//! CISA's Known Exploited Vulnerabilities catalogue (JSON), into [`KevEntry`] records.
//!
//! The catalogue is one JSON object with a `vulnerabilities` array. Each entry is checked on
//! its own: an entry with a malformed CVE id, date or ransomware flag is rejected with its
//! index and CVE, and the rest of the catalogue still imports. A document that is a single
//! entry object (as some mirrors store them) is read as a one-entry catalogue.

use jiff::Timestamp;
use jiff::civil::Date;
use patchwarden_core::advisory::{KevEntry, RansomwareUse, is_cve};
use serde::Deserialize;
use serde_json::Value;

use crate::{Import, Reject, RejectReason, time};

/// The catalogue: its header and its entries.
#[derive(Debug)]
pub struct KevCatalog {
    pub catalog_version: Option<String>,
    pub date_released: Option<Timestamp>,
    /// The `count` the catalogue claims; compare with `entries.records.len()`.
    pub count: Option<u64>,
    pub entries: Import<KevEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCatalog {
    catalog_version: Option<String>,
    date_released: Option<String>,
    count: Option<u64>,
    vulnerabilities: Option<Vec<Value>>,
    #[serde(rename = "cveID")]
    cve_id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(rename = "cveID")]
    cve_id: String,
    vendor_project: String,
    product: String,
    vulnerability_name: String,
    date_added: String,
    short_description: String,
    required_action: String,
    due_date: String,
    known_ransomware_campaign_use: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    cwes: Vec<String>,
}

/// Parses a KEV catalogue (or one entry). Fails as a whole only when the document is not a
/// JSON object of either shape.
pub fn parse(bytes: &[u8], location: &str) -> Result<KevCatalog, Reject> {
    let raw: RawCatalog = serde_json::from_slice(bytes)
        .map_err(|e| Reject::new(location, None, RejectReason::Json(e)))?;
    let (values, single) = match (raw.vulnerabilities, raw.cve_id) {
        (Some(v), _) => (v, false),
        (None, Some(_)) => {
            let whole: Value = serde_json::from_slice(bytes)
                .map_err(|e| Reject::new(location, None, RejectReason::Json(e)))?;
            (vec![whole], true)
        }
        (None, None) => {
            return Err(Reject::new(
                location,
                None,
                RejectReason::NotThisFeed(
                    "not a KEV catalogue: no `vulnerabilities` array and no `cveID`".into(),
                ),
            ));
        }
    };
    let date_released = match raw.date_released.as_deref().map(time::strict).transpose() {
        Ok(d) => d,
        Err(e) => {
            return Err(Reject::new(
                location,
                None,
                RejectReason::Invalid(format!("dateReleased: {e}")),
            ));
        }
    };
    let mut entries = Import::default();
    for (i, value) in values.into_iter().enumerate() {
        let here = if single {
            location.to_owned()
        } else {
            format!("{location}#vulnerabilities[{i}]")
        };
        let cve = value.get("cveID").and_then(Value::as_str).map(String::from);
        match serde_json::from_value::<RawEntry>(value)
            .map_err(RejectReason::Json)
            .and_then(entry)
        {
            Ok(e) => entries.records.push(e),
            Err(reason) => entries.rejects.push(Reject::new(here, cve, reason)),
        }
    }
    Ok(KevCatalog {
        catalog_version: raw.catalog_version,
        date_released,
        count: raw.count,
        entries,
    })
}

fn date(field: &str, s: &str) -> Result<Date, RejectReason> {
    s.trim()
        .parse::<Date>()
        .map_err(|e| RejectReason::Invalid(format!("{field} {s:?} is not a date: {e}")))
}

fn entry(raw: RawEntry) -> Result<KevEntry, RejectReason> {
    if !is_cve(&raw.cve_id) {
        return Err(RejectReason::Invalid(format!(
            "cveID {:?} is not a CVE id",
            raw.cve_id
        )));
    }
    let known_ransomware_use = match raw.known_ransomware_campaign_use.as_str() {
        "Known" => RansomwareUse::Known,
        "Unknown" => RansomwareUse::Unknown,
        other => {
            return Err(RejectReason::Invalid(format!(
                "knownRansomwareCampaignUse {other:?} is neither Known nor Unknown"
            )));
        }
    };
    Ok(KevEntry {
        date_added: date("dateAdded", &raw.date_added)?,
        due_date: date("dueDate", &raw.due_date)?,
        cve: raw.cve_id,
        vendor_project: raw.vendor_project,
        product: raw.product,
        vulnerability_name: raw.vulnerability_name,
        known_ransomware_use,
        short_description: raw.short_description,
        required_action: raw.required_action,
        notes: raw.notes,
        cwes: raw.cwes,
    })
}
