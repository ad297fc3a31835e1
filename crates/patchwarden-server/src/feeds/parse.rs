//! Reading what a source gave — a downloaded file, a local file or a directory — with the
//! parsers of `patchwarden-feeds`, and deciding whether the result may replace the data in
//! force.
//!
//! The parsers skip a bad record and report it; that is normal in published feeds and costs
//! only that record. What is fatal here is an input that gave nothing usable: an archive or
//! document that cannot be read as a whole (a truncated zip, a KEV catalogue that is not JSON),
//! or one whose every record was rejected. Then nothing is imported and the reason is
//! recorded; the data of the last good import stays in force.

use std::io::Read;
use std::path::Path;

use patchwarden_core::advisory::Advisory;
use patchwarden_feeds::load::{AdvisoryFeed, load_path, read_file};
use patchwarden_feeds::{Import, Limits, epss, kev};
use patchwarden_store::feed::{EnrichmentDoc, SourceKind};

/// What a source's content gave.
#[derive(Debug, Default)]
pub struct Parsed {
    pub advisories: Vec<Advisory>,
    pub enrichment: Option<EnrichmentDoc>,
    /// The records skipped, as `location (id): reason`, sorted.
    pub rejects: Vec<String>,
}

impl Parsed {
    pub fn records(&self) -> usize {
        self.enrichment
            .as_ref()
            .map_or(self.advisories.len(), EnrichmentDoc::len)
    }
}

/// Why content could not be imported at all, with the records that were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Fatal {
    pub reason: String,
    pub rejects: Vec<String>,
}

impl Fatal {
    fn new(reason: impl Into<String>) -> Fatal {
        Fatal {
            reason: reason.into(),
            rejects: Vec::new(),
        }
    }
}

/// Reads `path` (a file or a directory) as a feed of `kind`.
pub fn parse(kind: SourceKind, path: &Path, limits: &Limits) -> Result<Parsed, Fatal> {
    let location = path.display().to_string();
    let parsed = match kind {
        SourceKind::Osv => advisories(load(path, AdvisoryFeed::Osv, limits)?),
        SourceKind::Csaf => advisories(load(path, AdvisoryFeed::Csaf, limits)?),
        SourceKind::Alpine => advisories(load(path, AdvisoryFeed::AlpineSecdb, limits)?),
        SourceKind::Debian => advisories(load(path, AdvisoryFeed::DebianTracker, limits)?),
        SourceKind::Kev => {
            let bytes = read_file(path, limits.max_feed_bytes)
                .map_err(|e| Fatal::new(format!("{location}: {e}")))?;
            let catalog = kev::parse(&bytes, &location).map_err(|r| Fatal::new(r.to_string()))?;
            Parsed {
                rejects: catalog.entries.reject_lines(),
                enrichment: Some(EnrichmentDoc::Kev {
                    entries: catalog.entries.records,
                }),
                advisories: Vec::new(),
            }
        }
        SourceKind::Epss => {
            let bytes = if is_gzip(path) {
                gunzip(path, limits.max_feed_bytes)
                    .map_err(|e| Fatal::new(format!("{location}: {e}")))?
            } else {
                read_file(path, limits.max_feed_bytes)
                    .map_err(|e| Fatal::new(format!("{location}: {e}")))?
            };
            let import = epss::parse(&bytes, &location).map_err(|r| Fatal::new(r.to_string()))?;
            let mut rejects: Vec<String> = import.rejects.iter().map(|r| r.to_string()).collect();
            rejects.sort();
            Parsed {
                rejects,
                enrichment: Some(EnrichmentDoc::Epss {
                    scores: import.snapshot.scores,
                }),
                advisories: Vec::new(),
            }
        }
        SourceKind::Manual => {
            return Err(Fatal::new(
                "a manual source is not read from files: enter its advisories by hand",
            ));
        }
    };
    judge(parsed)
}

impl Parsed {
    /// Names the content by `name` (the URL it was downloaded from) where the parsers named it
    /// by the work file it was read from, so that an advisory's location stays the same from
    /// one download to the next and an unchanged record is not rewritten.
    pub fn relocate(mut self, path: &Path, name: &str) -> Parsed {
        let from = path.display().to_string();
        let fix = |s: &mut String| {
            if let Some(rest) = s.strip_prefix(&from) {
                *s = format!("{name}{rest}");
            }
        };
        for a in &mut self.advisories {
            fix(&mut a.source.location);
        }
        for r in &mut self.rejects {
            fix(r);
        }
        self
    }
}

fn load(path: &Path, feed: AdvisoryFeed, limits: &Limits) -> Result<Import<Advisory>, Fatal> {
    load_path(path, feed, limits).map_err(|e| Fatal::new(e.to_string()))
}

fn advisories(import: Import<Advisory>) -> Parsed {
    Parsed {
        rejects: import.reject_lines(),
        // CVE 5 records in an OSV feed carry only ratings and SSVC; they are advisories of
        // the model all the same and go to the store with the rest.
        advisories: import.records,
        enrichment: None,
    }
}

/// Refuses content with no usable record: an empty download, or one whose every record was
/// rejected, must not stand in for the data in force.
fn judge(parsed: Parsed) -> Result<Parsed, Fatal> {
    if parsed.records() > 0 {
        return Ok(parsed);
    }
    match parsed.rejects.first() {
        Some(first) => Err(Fatal {
            reason: format!(
                "every record was rejected ({}); the first: {first}",
                parsed.rejects.len()
            ),
            rejects: parsed.rejects,
        }),
        None => Err(Fatal::new("the feed held no records")),
    }
}

fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

/// Decompresses a gzip file, never more than `limit` bytes of content.
fn gunzip(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot be decompressed: gzip: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("larger than the limit of {limit} bytes"));
    }
    Ok(out)
}

/// The file name a download is given so that the parsers recognise it: the URL's last
/// segment when it names a kind of file they read, else one chosen from the first bytes.
pub fn download_name(url: &str, head: &[u8], kind: SourceKind) -> String {
    let segment = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let clean: String = segment
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(100)
        .collect();
    let known = [".zip", ".json", ".json.xz", ".csv", ".csv.gz", ".gz"];
    if known.iter().any(|k| clean.ends_with(k)) && !clean.starts_with('.') {
        return clean;
    }
    let ext = if head.starts_with(b"PK\x03\x04") {
        ".zip"
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ".json.xz"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        ".gz"
    } else if kind == SourceKind::Epss {
        ".csv"
    } else {
        ".json"
    };
    format!("feed{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_named_so_the_parsers_recognise_them() {
        let zip = b"PK\x03\x04rest";
        assert_eq!(
            download_name("https://x/osv/AlmaLinux/all.zip", zip, SourceKind::Osv),
            "all.zip"
        );
        assert_eq!(
            download_name("https://x/download?id=3", zip, SourceKind::Osv),
            "feed.zip"
        );
        assert_eq!(
            download_name(
                "https://x/epss_scores-current.csv.gz",
                b"\x1f\x8b",
                SourceKind::Epss
            ),
            "epss_scores-current.csv.gz"
        );
        assert_eq!(
            download_name("https://x/kev", b"{", SourceKind::Kev),
            "feed.json"
        );
        assert_eq!(
            download_name("https://x/../../etc/.json", b"{", SourceKind::Kev),
            "feed.json"
        );
    }
}
