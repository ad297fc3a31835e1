//! Which feed a file, archive or directory holds, so that `patchwarden scan --feed PATH` needs
//! no kind: decided from the name and the first bytes, the way a person would tell them apart.
//!
//! The markers are the documents' own required fields: CSAF's `document.csaf_version`, the
//! KEV catalogue's `catalogVersion`, a CVE record's `"dataType": "CVE_RECORD"`, OSV's
//! `schema_version`/`affected`, the secdb's `distroversion`; the Debian tracker's JSON is an
//! object of source packages whose values are objects keyed by CVE (or `TEMP-`) ids. Only the
//! beginning of a file is read.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::load::AdvisoryFeed;

/// What a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// Advisories, read with [`crate::load::load_path`].
    Advisories(AdvisoryFeed),
    /// CISA's Known Exploited Vulnerabilities catalogue ([`crate::kev`]).
    Kev,
    /// FIRST's EPSS scores CSV ([`crate::epss`]).
    Epss,
}

/// How much of a file is read to recognise it.
const SNIFF_BYTES: usize = 64 * 1024;

/// Why a path could not be recognised.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{0}: not a feed we recognise (OSV JSON or all.zip, CSAF 2.0, Alpine secdb, Debian \
         security tracker JSON, CISA KEV JSON, EPSS CSV); name its kind as KIND:PATH"
    )]
    Unknown(PathBuf),
}

/// Recognises the feed at `path`: a file, an archive, or a directory (by its first file that
/// can be recognised, in name order).
pub fn detect_path(path: &Path) -> Result<FeedFormat, DetectError> {
    let io = |source| DetectError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        // Files first, then subdirectories (OSV dumps are one folder per release).
        for e in entries
            .iter()
            .filter(|e| e.is_file())
            .chain(entries.iter().filter(|e| e.is_dir()))
        {
            if let Ok(f) = detect_path(e) {
                return Ok(f);
            }
        }
        return Err(DetectError::Unknown(path.to_path_buf()));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".zip") {
        return Ok(FeedFormat::Advisories(AdvisoryFeed::Osv));
    }
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let file = std::fs::File::open(path).map_err(io)?;
    if name.ends_with(".xz") {
        // A CSAF document compressed as Red Hat publishes its large ones.
        let bytes = crate::load::read_file(path, crate::Limits::default().max_document_bytes)
            .map_err(|_| DetectError::Unknown(path.to_path_buf()))?;
        head.extend_from_slice(&bytes[..bytes.len().min(SNIFF_BYTES)]);
    } else {
        file.take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(io)?;
    }
    detect_bytes(name, &head).ok_or_else(|| DetectError::Unknown(path.to_path_buf()))
}

/// Recognises a feed from its file name and first bytes.
pub fn detect_bytes(name: &str, head: &[u8]) -> Option<FeedFormat> {
    if name.ends_with(".csv") {
        return Some(FeedFormat::Epss);
    }
    let text = String::from_utf8_lossy(head);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("\"csaf_version\"") {
        return Some(FeedFormat::Advisories(AdvisoryFeed::Csaf));
    }
    if compact.contains("\"catalogVersion\"") && compact.contains("\"vulnerabilities\"") {
        return Some(FeedFormat::Kev);
    }
    if compact.contains("\"dataType\":\"CVE_RECORD\"") {
        return Some(FeedFormat::Advisories(AdvisoryFeed::Osv));
    }
    if compact.contains("\"distroversion\"") && compact.contains("\"packages\"") {
        return Some(FeedFormat::Advisories(AdvisoryFeed::AlpineSecdb));
    }
    if compact.starts_with('{')
        && (compact.contains("\"schema_version\"")
            || (compact.contains("\"id\"")
                && (compact.contains("\"affected\"") || compact.contains("\"modified\""))))
    {
        return Some(FeedFormat::Advisories(AdvisoryFeed::Osv));
    }
    // {"package": {"CVE-2024-1234": {…}, …}, …}
    let tracker = compact
        .strip_prefix('{')
        .and_then(|rest| rest.split_once(":{"))
        .is_some_and(|(key, rest)| {
            key.starts_with('"') && (rest.starts_with("\"CVE-") || rest.starts_with("\"TEMP-"))
        });
    tracker.then_some(FeedFormat::Advisories(AdvisoryFeed::DebianTracker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_feed_by_its_markers() {
        let osv = br#"{"schema_version": "1.6.0", "id": "DSA-1", "affected": []}"#;
        assert_eq!(
            detect_bytes("x.json", osv),
            Some(FeedFormat::Advisories(AdvisoryFeed::Osv))
        );
        let csaf = br#"{"document": {"category": "csaf_vex", "csaf_version": "2.0"}}"#;
        assert_eq!(
            detect_bytes("x.json", csaf),
            Some(FeedFormat::Advisories(AdvisoryFeed::Csaf))
        );
        let kev =
            br#"{"title": "CISA Catalog", "catalogVersion": "2025.08.25", "vulnerabilities": []}"#;
        assert_eq!(detect_bytes("kev.json", kev), Some(FeedFormat::Kev));
        let tracker = br#"{"openssl": {"CVE-2024-0001": {"releases": {}}}}"#;
        assert_eq!(
            detect_bytes("tracker.json", tracker),
            Some(FeedFormat::Advisories(AdvisoryFeed::DebianTracker))
        );
        let secdb = br#"{"apkurl": "x", "distroversion": "v3.11", "packages": []}"#;
        assert_eq!(
            detect_bytes("main.json", secdb),
            Some(FeedFormat::Advisories(AdvisoryFeed::AlpineSecdb))
        );
        assert_eq!(
            detect_bytes("epss.csv", b"#model_version"),
            Some(FeedFormat::Epss)
        );
        assert_eq!(detect_bytes("x.json", b"[1, 2, 3]"), None);
        assert_eq!(detect_bytes("x.json", b"\xff\xfe garbage"), None);
    }
}
