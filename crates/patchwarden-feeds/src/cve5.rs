//! CVE JSON 5 records (the CVE List, CISA Vulnrichment): what a CVE is, not where it is fixed.
//!
//! **What a CVE 5 record is to us**: an [`Advisory`] of feed kind [`FeedKind::Cve5`] with the
//! CVE's text, dates, references and every CVSS vector its CNA and ADP containers publish
//! (scored like any other), and **no** `affected` entries. A CVE record's `affected` list names
//! vendors and products with free-form version strings, not packages of an ecosystem a
//! package manager installs; matching on it would guess. The list is kept verbatim in
//! `database_specific.cna_affected` for people to read. So a CVE record never produces a
//! finding by itself; it gives the distribution advisories that fix the CVE (grouped with it
//! by [`patchwarden_core::advisory::group_vulnerabilities`]) a severity where they lack one.
//!
//! A `REJECTED` CVE is a withdrawn record: `withdrawn` is its last update time.

use patchwarden_core::advisory::{Advisory, FeedKind, Reference, Severity, Source};
use patchwarden_core::policy::ssvc_from_cve5;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Reject, RejectReason, time};

/// Parses one CVE JSON 5 record.
///
/// CISA's SSVC decision points in a Vulnrichment ADP container become [`Advisory::ssvc`]; an
/// SSVC entry that is present but malformed rejects the record, because a policy deciding on
/// it (BOD 26-04) must not silently read "no CISA data" instead.
pub fn parse(bytes: &[u8], location: &str) -> Result<Advisory, Reject> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Reject::new(location, None, RejectReason::Json(e)))?;
    let ssvc = ssvc_from_cve5(&value);
    let raw: RawCve = serde_json::from_value(value)
        .map_err(|e| Reject::new(location, None, RejectReason::Json(e)))?;
    let id = raw.cve_metadata.cve_id.clone();
    let mut advisory =
        convert(raw, location).map_err(|reason| Reject::new(location, Some(id.clone()), reason))?;
    advisory.ssvc = ssvc.map_err(|e| {
        Reject::new(
            location,
            Some(id),
            RejectReason::Invalid(format!("SSVC: {e}")),
        )
    })?;
    Ok(advisory)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCve {
    data_type: String,
    data_version: Option<Value>,
    cve_metadata: RawMetadata,
    containers: RawContainers,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetadata {
    cve_id: String,
    state: String,
    date_published: Option<String>,
    date_updated: Option<String>,
}

#[derive(Deserialize)]
struct RawContainers {
    cna: Option<RawContainer>,
    #[serde(default)]
    adp: Option<Vec<RawContainer>>,
}

#[derive(Deserialize)]
struct RawContainer {
    title: Option<String>,
    #[serde(default)]
    descriptions: Option<Vec<RawDescription>>,
    #[serde(default)]
    metrics: Option<Vec<serde_json::Map<String, Value>>>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
    affected: Option<Value>,
}

#[derive(Deserialize)]
struct RawDescription {
    lang: String,
    value: String,
}

#[derive(Deserialize)]
struct RawReference {
    url: String,
}

fn convert(raw: RawCve, location: &str) -> Result<Advisory, RejectReason> {
    if raw.data_type != "CVE_RECORD" {
        return Err(RejectReason::NotThisFeed(format!(
            "dataType is {:?}, not CVE_RECORD",
            raw.data_type
        )));
    }
    if !patchwarden_core::advisory::is_cve(&raw.cve_metadata.cve_id) {
        return Err(RejectReason::Invalid(format!(
            "cveMetadata.cveId {:?} is not a CVE id",
            raw.cve_metadata.cve_id
        )));
    }
    let stamp = |field: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                time::lenient(s)
                    .map_err(|e| RejectReason::Invalid(format!("cveMetadata.{field}: {e}")))
            })
            .transpose()
    };
    let mut a = Advisory::new(
        raw.cve_metadata.cve_id.clone(),
        Source {
            feed: FeedKind::Cve5,
            location: location.into(),
            document: None,
        },
    );
    a.published = stamp("datePublished", &raw.cve_metadata.date_published)?;
    a.modified = stamp("dateUpdated", &raw.cve_metadata.date_updated)?;
    match raw.cve_metadata.state.as_str() {
        "PUBLISHED" => {}
        "REJECTED" => a.withdrawn = a.modified.or(a.published),
        other => {
            return Err(RejectReason::Invalid(format!(
                "cveMetadata.state {other:?} is neither PUBLISHED nor REJECTED"
            )));
        }
    }
    let cna = raw.containers.cna;
    let adp = raw.containers.adp.unwrap_or_default();
    if let Some(cna) = &cna {
        a.summary = cna.title.clone();
        a.details = cna.descriptions.as_ref().and_then(|d| {
            d.iter()
                .find(|d| d.lang.starts_with("en"))
                .or_else(|| d.first())
                .map(|d| d.value.clone())
        });
        if let Some(affected) = &cna.affected {
            a.database_specific = Some(json!({
                "data_version": raw.data_version,
                "cna_affected": affected,
            }));
        }
    }
    for container in cna.iter().chain(adp.iter()) {
        for metric in container.metrics.iter().flatten() {
            for (key, value) in metric {
                if !key.starts_with("cvssV") {
                    continue;
                }
                let Some(vector) = value.get("vectorString").and_then(Value::as_str) else {
                    continue;
                };
                if a.severity.iter().all(|s| s.vector != vector) {
                    a.severity.push(Severity::cvss(vector, None));
                }
            }
        }
        for r in container.references.iter().flatten() {
            if a.references.iter().all(|x| x.url != r.url) {
                a.references.push(Reference {
                    kind: "WEB".into(),
                    url: r.url.clone(),
                });
            }
        }
    }
    Ok(a)
}
