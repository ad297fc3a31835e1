//! SSVC decision points as CISA publishes them for each CVE (the "CISA ADP Vulnrichment"
//! container of CVE JSON 5 records), and their extraction from such a record.
//!
//! BOD 26-04 sets remediation deadlines from KEV membership, the asset's exposure and two of
//! these decision points (Automatable, Technical Impact); the Essential Eight's "working
//! exploit exists" can be read from the third (Exploitation). CISA writes them as a list of
//! one-key objects in a metric of type `ssvc`:
//!
//! ```json
//! {"other": {"type": "ssvc", "content": {"options": [{"Exploitation": "active"},
//!   {"Automatable": "no"}, {"Technical Impact": "total"}], "version": "2.0.3", …}}}
//! ```
//!
//! The words come in either case in the published records (`active`, `Active`, `PoC`), so they
//! are compared without case. Extraction is pure: the caller reads the record.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::words::word_enum;

word_enum! {
    /// SSVC Exploitation: is the vulnerability exploited, and how far.
    pub enum Exploitation as "SSVC exploitation" {
        /// No evidence of exploitation, no public proof of concept.
        None = "none",
        /// A public proof of concept or exploit code exists.
        Poc = "poc",
        /// Reliable evidence of exploitation in the wild.
        Active = "active",
    }
}

word_enum! {
    /// SSVC Technical Impact: what exploitation gives the attacker.
    pub enum TechnicalImpact as "SSVC technical impact" {
        /// Limited control or information exposure.
        Partial = "partial",
        /// Total control of the component, or total disclosure of its information.
        Total = "total",
    }
}

/// The three decision points CISA publishes for one CVE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ssvc {
    pub exploitation: Exploitation,
    /// SSVC Automatable: can an attacker automate steps 1–4 of the kill chain.
    pub automatable: bool,
    pub technical_impact: TechnicalImpact,
    /// The SSVC version of the decision (`2.0.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When CISA made the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// An SSVC entry that is present but cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cve}: the SSVC decision of {provider} {problem}")]
pub struct SsvcError {
    /// The record's CVE id, or `a CVE record without an id`.
    pub cve: String,
    /// The ADP container's short name (`CISA-ADP`).
    pub provider: String,
    pub problem: String,
}

/// The SSVC decision points of a CVE JSON 5 record, from its ADP containers.
///
/// `Ok(None)` when the record has none (CISA has not assessed the CVE: BOD 26-04's "no CISA
/// data"); an error when an entry exists but lacks a decision point or has a value SSVC does
/// not define. When several ADP containers carry one, CISA's (`CISA-ADP`) is taken, else the
/// first.
pub fn ssvc_from_cve5(record: &Value) -> Result<Option<Ssvc>, SsvcError> {
    let cve = record
        .pointer("/cveMetadata/cveId")
        .and_then(Value::as_str)
        .unwrap_or("a CVE record without an id");
    let Some(adps) = record.pointer("/containers/adp").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut found: Option<(&str, &Value)> = None;
    for adp in adps {
        let provider = adp
            .pointer("/providerMetadata/shortName")
            .and_then(Value::as_str)
            .unwrap_or("an unnamed ADP");
        let metrics = adp.get("metrics").and_then(Value::as_array);
        for metric in metrics.into_iter().flatten() {
            let Some(other) = metric.get("other") else {
                continue;
            };
            if other.get("type").and_then(Value::as_str) != Some("ssvc") {
                continue;
            }
            let better = match found {
                None => true,
                Some((p, _)) => p != "CISA-ADP" && provider == "CISA-ADP",
            };
            if better {
                found = Some((provider, other.get("content").unwrap_or(&Value::Null)));
            }
        }
    }
    let Some((provider, content)) = found else {
        return Ok(None);
    };
    let fail = |problem: String| SsvcError {
        cve: cve.to_owned(),
        provider: provider.to_owned(),
        problem,
    };

    let mut exploitation = None;
    let mut automatable = None;
    let mut technical_impact = None;
    let options = content
        .get("options")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("has no list of options".into()))?;
    for option in options {
        let Some(object) = option.as_object() else {
            return Err(fail(format!(
                "has an option that is not an object: {option}"
            )));
        };
        for (key, value) in object {
            let word = value
                .as_str()
                .ok_or_else(|| fail(format!("gives {key} as {value}, not a word")))?
                .trim()
                .to_ascii_lowercase();
            let unknown = |what: &str| {
                fail(format!(
                    "gives {what} as `{word}`, which SSVC does not define"
                ))
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "exploitation" => {
                    // SSVC 2 spells the middle value "public poc" in its documentation and
                    // "poc" in CISA's records.
                    let w = if word == "public poc" {
                        "poc"
                    } else {
                        word.as_str()
                    };
                    exploitation = Some(w.parse().map_err(|_| unknown("Exploitation"))?);
                }
                "automatable" => {
                    automatable = Some(match word.as_str() {
                        "yes" => true,
                        "no" => false,
                        _ => return Err(unknown("Automatable")),
                    });
                }
                "technical impact" => {
                    technical_impact = Some(word.parse().map_err(|_| unknown("Technical Impact"))?);
                }
                // Later SSVC versions may add decision points; the three BOD 26-04 needs are
                // checked below, anything else is not ours to judge.
                _ => {}
            }
        }
    }
    let timestamp = match content.get("timestamp").and_then(Value::as_str) {
        None => None,
        Some(text) => Some(text.parse::<Timestamp>().map_err(|e| {
            fail(format!(
                "has a timestamp `{text}` that is not RFC 3339: {e}"
            ))
        })?),
    };
    let missing = |what: &str| fail(format!("has no {what} decision"));
    Ok(Some(Ssvc {
        exploitation: exploitation.ok_or_else(|| missing("Exploitation"))?,
        automatable: automatable.ok_or_else(|| missing("Automatable"))?,
        technical_impact: technical_impact.ok_or_else(|| missing("Technical Impact"))?,
        version: content
            .get("version")
            .and_then(Value::as_str)
            .map(str::to_owned),
        timestamp,
    }))
}
