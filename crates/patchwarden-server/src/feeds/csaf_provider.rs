//! Following a CSAF 2.0 provider (§7.1.7): a `csaf` source whose location is a
//! `provider-metadata.json` is read as the provider's index, not as a document. Each of its
//! `distributions[].directory_url` is a directory whose `index.txt` (§7.1.13) lists the
//! documents by path relative to the directory; every listed document is fetched into one
//! work directory, and the whole set is parsed and imported as one run — so a provider's
//! advisories are in force all from one fetch or all from the previous one.
//!
//! Limits: the metadata and each index are small documents (a few MiB at most); the number of
//! documents is capped (`MAX_DOCUMENTS`); each download obeys the feeds' size limit and
//! timeouts (`fetch`). A listed path that is absolute, has a scheme or `..`, or resolves
//! outside its directory is refused by name — a provider's index must not make the server
//! fetch arbitrary URLs. A document that fails to download or to parse is rejected with its
//! reason and the rest are imported.
//!
//! Every document is fetched at each run (ROLIE feeds and `changes.csv` are not read yet); the
//! set's fingerprint (each path with its content hash) makes an unchanged provider an
//! `unchanged` run that imports nothing.

use std::path::{Path, PathBuf};

use patchwarden_store::feed::FetchValidators;
use reqwest::Url;
use sha2::{Digest, Sha256};

use super::config::FeedsConfig;
use super::fetch::{self, Fetched};

/// The most documents one run fetches from a provider.
pub const MAX_DOCUMENTS: usize = 5000;

/// The most distributions (directories) followed.
const MAX_DIRECTORIES: usize = 8;

/// The largest `provider-metadata.json` or `index.txt` read.
const MAX_INDEX_BYTES: u64 = 4 << 20;

/// Whether a CSAF location names a provider's metadata rather than one document.
pub fn is_provider_metadata(location: &str) -> bool {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    path.ends_with("/provider-metadata.json")
}

/// A work directory, removed with everything in it when dropped.
#[derive(Debug)]
pub struct WorkDir {
    pub path: PathBuf,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a provider gave: its documents in `dir`, the set's fingerprint, the bytes fetched,
/// and the documents refused before parsing (a path outside its directory, a failed
/// download), each with its reason.
#[derive(Debug)]
pub struct ProviderFetch {
    pub dir: WorkDir,
    pub fingerprint: String,
    pub bytes: u64,
    pub rejects: Vec<String>,
    /// Each work file's path with the URL it came from, so that the parser's reasons name
    /// the provider's URL.
    pub names: Vec<(String, String)>,
}

/// A listed document's URL, if the path stays inside `dir`.
pub fn resolve(dir: &Url, listed: &str) -> Result<Url, String> {
    let listed = listed.trim();
    if listed.is_empty()
        || listed.starts_with('/')
        || listed.starts_with('\\')
        || listed.contains("://")
        || listed.contains('\\')
        || listed.split('/').any(|seg| seg == ".." || seg == ".")
    {
        return Err(format!(
            "{listed:?}: not a path inside the provider's directory"
        ));
    }
    let url = dir
        .join(listed)
        .map_err(|e| format!("{listed:?}: not a path: {e}"))?;
    // The joined URL must still be under the directory (percent-encoded dots and the like
    // are normalised by the parser; this is the check that counts).
    if url.origin() != dir.origin() || !url.path().starts_with(dir.path()) {
        return Err(format!("{listed:?}: leaves the provider's directory"));
    }
    Ok(url)
}

async fn small(
    http: &reqwest::Client,
    url: &str,
    config: &FeedsConfig,
    work_dir: &Path,
) -> Result<(Vec<u8>, u64), String> {
    let capped = FeedsConfig {
        max_download_bytes: config.max_download_bytes.min(MAX_INDEX_BYTES),
        ..config.clone()
    };
    match fetch::fetch(http, url, &FetchValidators::default(), &capped, work_dir).await {
        Ok(Fetched::Body(body)) => {
            let bytes = tokio::fs::read(&body.file.path)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            Ok((bytes, body.bytes))
        }
        Ok(Fetched::NotModified { .. }) => Err(format!("{url}: 304 to a plain request")),
        Err(e) => Err(e.to_string()),
    }
}

/// The directories a provider's metadata names.
pub fn directories(metadata: &[u8], metadata_url: &Url) -> Result<Vec<Url>, String> {
    let doc: serde_json::Value = serde_json::from_slice(metadata)
        .map_err(|e| format!("{metadata_url}: not valid JSON: {e}"))?;
    let distributions = doc
        .get("distributions")
        .and_then(|d| d.as_array())
        .ok_or_else(|| {
            format!("{metadata_url}: no distributions (not a CSAF provider-metadata.json)")
        })?;
    let mut out = Vec::new();
    for d in distributions {
        let Some(dir) = d.get("directory_url").and_then(|u| u.as_str()) else {
            continue;
        };
        let mut dir = metadata_url
            .join(dir)
            .map_err(|e| format!("{metadata_url}: directory_url {dir:?}: {e}"))?;
        if !matches!(dir.scheme(), "https" | "http") {
            return Err(format!(
                "{metadata_url}: directory_url {dir} is not HTTP(S)"
            ));
        }
        // A directory URL without its trailing slash would make every listed path resolve
        // beside the directory rather than in it.
        if !dir.path().ends_with('/') {
            let path = format!("{}/", dir.path());
            dir.set_path(&path);
        }
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{metadata_url}: no distribution has a directory_url (ROLIE feeds are not read)"
        ));
    }
    if out.len() > MAX_DIRECTORIES {
        return Err(format!(
            "{metadata_url}: {} directories; at most {MAX_DIRECTORIES} are followed",
            out.len()
        ));
    }
    Ok(out)
}

/// Fetches a provider's documents into a new work directory. An error is fatal for the run
/// (the metadata or an index could not be read, or too many documents are listed).
pub async fn fetch_provider(
    http: &reqwest::Client,
    location: &str,
    config: &FeedsConfig,
    work_dir: &Path,
) -> Result<ProviderFetch, String> {
    let metadata_url = Url::parse(location).map_err(|e| format!("{location}: {e}"))?;
    tokio::fs::create_dir_all(work_dir)
        .await
        .map_err(|e| format!("the work directory {}: {e}", work_dir.display()))?;
    let (metadata, mut bytes) = small(http, location, config, work_dir).await?;
    let dirs = directories(&metadata, &metadata_url)?;
    let mut listed: Vec<(Url, String)> = Vec::new();
    let mut rejects = Vec::new();
    for dir in &dirs {
        let index_url = dir
            .join("index.txt")
            .map_err(|e| format!("{dir}: index.txt: {e}"))?;
        let (index, n) = small(http, index_url.as_str(), config, work_dir).await?;
        bytes = bytes.saturating_add(n);
        let text = String::from_utf8(index).map_err(|_| format!("{index_url}: not UTF-8"))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match resolve(dir, line) {
                Ok(url) => {
                    let rel = url.path()[dir.path().len()..].to_owned();
                    if !listed.iter().any(|(u, _)| *u == url) {
                        listed.push((url, rel));
                    }
                }
                Err(why) => rejects.push(format!("{index_url}: {why}")),
            }
            if listed.len() > MAX_DOCUMENTS {
                return Err(format!(
                    "{index_url}: more than {MAX_DOCUMENTS} documents listed; nothing imported"
                ));
            }
        }
    }
    let dir = WorkDir {
        path: work_dir.join(format!("csaf-{}", uuid::Uuid::new_v4())),
    };
    tokio::fs::create_dir_all(&dir.path)
        .await
        .map_err(|e| format!("the work directory {}: {e}", dir.path.display()))?;
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut names = Vec::new();
    for (i, (url, rel)) in listed.iter().enumerate() {
        let fetched = fetch::fetch(
            http,
            url.as_str(),
            &FetchValidators::default(),
            config,
            work_dir,
        )
        .await;
        match fetched {
            Ok(Fetched::Body(body)) => {
                // Flat, numbered names that keep the extension the parser reads by
                // (`.json`, `.json.xz`); the fingerprint keeps the listed path.
                let base = rel.rsplit('/').next().unwrap_or_default();
                let ext = if base.ends_with(".json.xz") {
                    ".json.xz"
                } else if base.ends_with(".json") {
                    ".json"
                } else {
                    rejects.push(format!("{url}: not a .json or .json.xz document"));
                    continue;
                };
                let target = dir.path.join(format!("{i:05}{ext}"));
                if let Err(e) = tokio::fs::rename(&body.file.path, &target).await {
                    return Err(format!("the work file {}: {e}", target.display()));
                }
                bytes = bytes.saturating_add(body.bytes);
                names.push((target.display().to_string(), url.to_string()));
                parts.push((rel.clone(), body.sha256.clone()));
            }
            Ok(Fetched::NotModified { .. }) => {
                rejects.push(format!("{url}: 304 to a plain request"));
            }
            Err(e) => rejects.push(e.to_string()),
        }
    }
    parts.sort();
    let mut hash = Sha256::new();
    for (rel, sha) in &parts {
        hash.update(format!("{rel}\0{sha}\n").as_bytes());
    }
    Ok(ProviderFetch {
        dir,
        fingerprint: format!("csaf-provider:{}", hex(&hash.finalize())),
        bytes,
        rejects,
        names,
    })
}

fn hex(bytes: &[u8]) -> String {
    patchwarden_store::codec::hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_paths_stay_inside_the_directory() {
        let dir = Url::parse("https://p.example/csaf/white/").unwrap();
        assert_eq!(
            resolve(&dir, "2024/rhsa-2024_1.json").unwrap().as_str(),
            "https://p.example/csaf/white/2024/rhsa-2024_1.json"
        );
        for bad in [
            "../secret.json",
            "2024/../../x.json",
            "/etc/passwd",
            "https://elsewhere.example/x.json",
            "//elsewhere.example/x.json",
            "./x.json",
            "a\\..\\x.json",
            "%2e%2e/x.json",
            "",
        ] {
            assert!(resolve(&dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_metadata_names_its_directories() {
        let url = Url::parse("https://p.example/.well-known/csaf/provider-metadata.json").unwrap();
        let doc = br#"{"distributions": [{"directory_url": "https://p.example/csaf/white"},
            {"rolie": {"feeds": []}}]}"#;
        assert_eq!(
            directories(doc, &url).unwrap(),
            [Url::parse("https://p.example/csaf/white/").unwrap()]
        );
        assert!(directories(b"{}", &url).is_err());
        assert!(
            directories(
                br#"{"distributions": [{"directory_url": "file:///etc/"}]}"#,
                &url
            )
            .is_err()
        );
        assert!(is_provider_metadata(url.as_str()));
        assert!(!is_provider_metadata("https://p.example/csaf/rhsa.json"));
    }
}
