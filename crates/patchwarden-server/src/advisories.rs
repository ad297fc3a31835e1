//! The advisory files named in the configuration, read at start-up into advisories (which go to
//! the store) and enrichment (KEV, EPSS, SSVC, which the matcher keeps in memory).
//!
//! This is the same reading `patchwarden scan --feed` does — recognised by content, or named
//! `KIND:PATH` — so a server and a one-shot scan given the same files judge hosts the same way.
//! Scheduled fetching of feeds over the network is `feeds`'s; these are files on disk.

use std::path::{Path, PathBuf};

use patchwarden_core::advisory::{Advisory, FeedKind};
use patchwarden_feeds::detect::{FeedFormat, detect_path};
use patchwarden_feeds::load::{AdvisoryFeed, load_path, read_file};
use patchwarden_feeds::{Limits, epss, kev};
use patchwarden_match::Enrichment;

/// What the configured files gave.
#[derive(Debug, Default)]
pub struct Loaded {
    pub advisories: Vec<Advisory>,
    pub enrichment: Enrichment,
    /// The same enrichment as records, for rebuilding the matcher after feed imports.
    pub files: crate::feeds::FileEnrichment,
    /// Records skipped, with their file and reason, for the log.
    pub skipped: Vec<String>,
}

/// A configured file that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("advisory file {path}: {reason}")]
pub struct LoadError {
    pub path: PathBuf,
    pub reason: String,
}

/// Reads every configured advisory file.
pub fn load(specs: &[String]) -> Result<Loaded, LoadError> {
    let limits = Limits::default();
    let mut out = Loaded::default();
    for spec in specs {
        let (format, path) = spec_of(spec)?;
        let err = |reason: String| LoadError {
            path: path.clone(),
            reason,
        };
        match format {
            FeedFormat::Advisories(feed) => {
                let import = load_path(&path, feed, &limits).map_err(|e| err(e.to_string()))?;
                out.skipped.extend(import.reject_lines());
                let ssvc: Vec<_> = import
                    .records
                    .iter()
                    .filter(|a| a.source.feed == FeedKind::Cve5)
                    .filter_map(|a| Some((a.id.clone(), a.ssvc.clone()?)))
                    .collect();
                if import
                    .records
                    .iter()
                    .any(|a| a.source.feed == FeedKind::Cve5)
                {
                    out.files
                        .ssvc
                        .get_or_insert_with(Vec::new)
                        .extend(ssvc.iter().cloned());
                    out.enrichment.add_ssvc(ssvc);
                }
                out.advisories.extend(import.records);
            }
            FeedFormat::Kev => {
                let bytes =
                    read_file(&path, limits.max_feed_bytes).map_err(|e| err(e.to_string()))?;
                let catalog = kev::parse(&bytes, &path.display().to_string())
                    .map_err(|e| err(e.to_string()))?;
                out.skipped.extend(catalog.entries.reject_lines());
                out.files
                    .kev
                    .get_or_insert_with(Vec::new)
                    .extend(catalog.entries.records.iter().cloned());
                out.enrichment.add_kev(catalog.entries.records);
            }
            FeedFormat::Epss => {
                let bytes =
                    read_file(&path, limits.max_feed_bytes).map_err(|e| err(e.to_string()))?;
                let import = epss::parse(&bytes, &path.display().to_string())
                    .map_err(|e| err(e.to_string()))?;
                out.skipped
                    .extend(import.rejects.iter().map(|r| r.to_string()));
                out.files
                    .epss
                    .get_or_insert_with(Vec::new)
                    .extend(import.snapshot.scores.iter().cloned());
                out.enrichment.add_epss(import.snapshot.scores);
            }
        }
    }
    Ok(out)
}

/// `PATH` (recognised by content) or `KIND:PATH`.
fn spec_of(spec: &str) -> Result<(FeedFormat, PathBuf), LoadError> {
    if let Some((kind, path)) = spec.split_once(':') {
        let format = match kind {
            "osv" => Some(FeedFormat::Advisories(AdvisoryFeed::Osv)),
            "csaf" => Some(FeedFormat::Advisories(AdvisoryFeed::Csaf)),
            "alpine" => Some(FeedFormat::Advisories(AdvisoryFeed::AlpineSecdb)),
            "debian" => Some(FeedFormat::Advisories(AdvisoryFeed::DebianTracker)),
            "kev" => Some(FeedFormat::Kev),
            "epss" => Some(FeedFormat::Epss),
            _ => None,
        };
        if let Some(format) = format {
            return Ok((format, PathBuf::from(path)));
        }
    }
    let path = Path::new(spec).to_owned();
    let format = detect_path(&path).map_err(|e| LoadError {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok((format, path))
}
