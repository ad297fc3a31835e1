//! FIRST's EPSS scores (the daily CSV), into an [`EpssSnapshot`].
//!
//! The file starts with a comment line naming the model and the score date
//! (`#model_version:v2023.03.01,score_date:2025-02-20T00:00:00+0000`), then the header
//! `cve,epss,percentile`, then one line per CVE. A wrong header means the format changed and
//! fails the whole file; a bad line (not a CVE, a probability outside 0–1) is rejected with
//! its line number and the rest still imports. A missing comment line or date leaves the
//! field empty: the scores are still good, only their date is unknown.

use patchwarden_core::advisory::{EpssScore, EpssSnapshot, is_cve};

use crate::{Reject, RejectReason, time};

/// The snapshot and the lines that were skipped.
#[derive(Debug)]
pub struct EpssImport {
    pub snapshot: EpssSnapshot,
    pub rejects: Vec<Reject>,
}

/// Parses one EPSS CSV file.
pub fn parse(bytes: &[u8], location: &str) -> Result<EpssImport, Reject> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Reject::new(
            location,
            None,
            RejectReason::Invalid(format!("not UTF-8 text: {e}")),
        )
    })?;
    let mut snapshot = EpssSnapshot {
        model_version: None,
        score_date: None,
        scores: Vec::new(),
    };
    let mut rejects = Vec::new();
    let mut header_seen = false;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            for field in comment.split(',') {
                match field.split_once(':') {
                    Some(("model_version", v)) => snapshot.model_version = Some(v.trim().into()),
                    Some(("score_date", v)) => match time::lenient(v) {
                        Ok(t) => snapshot.score_date = Some(t),
                        Err(e) => rejects.push(Reject::new(
                            format!("{location}:{line_no}"),
                            None,
                            RejectReason::Invalid(format!("score_date: {e}")),
                        )),
                    },
                    _ => {}
                }
            }
            continue;
        }
        if !header_seen {
            let columns: Vec<&str> = line.split(',').map(str::trim).collect();
            if columns != ["cve", "epss", "percentile"] {
                return Err(Reject::new(
                    format!("{location}:{line_no}"),
                    None,
                    RejectReason::Invalid(format!(
                        "the header is {line:?}, expected \"cve,epss,percentile\""
                    )),
                ));
            }
            header_seen = true;
            continue;
        }
        match row(line) {
            Ok((cve, score)) => snapshot.scores.push((cve, score)),
            Err(reason) => rejects.push(Reject::new(
                format!("{location}:{line_no}"),
                line.split(',').next().map(String::from),
                RejectReason::Invalid(reason),
            )),
        }
    }
    if !header_seen {
        return Err(Reject::new(
            location,
            None,
            RejectReason::Invalid("no header line \"cve,epss,percentile\"".into()),
        ));
    }
    Ok(EpssImport { snapshot, rejects })
}

fn row(line: &str) -> Result<(String, EpssScore), String> {
    let mut it = line.split(',').map(str::trim);
    let (Some(cve), Some(epss), Some(pct), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(format!("{line:?} does not have three columns"));
    };
    if !is_cve(cve) {
        return Err(format!("{cve:?} is not a CVE id"));
    }
    let prob = |name: &str, s: &str| -> Result<f64, String> {
        let v: f64 = s
            .parse()
            .map_err(|_| format!("{name} {s:?} is not a number"))?;
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{name} {s:?} is outside 0–1"))
        }
    };
    Ok((
        cve.into(),
        EpssScore {
            epss: prob("epss", epss)?,
            percentile: prob("percentile", pct)?,
        },
    ))
}
