//! The one place that touches the filesystem: open a file, an archive or a directory of feed
//! documents and hand what it reads to the pure parsers.
//!
//! Directories are walked recursively in name order (so imports and their reports are
//! reproducible), without following symbolic links to directories. `.json` files are
//! documents, `.json.xz` files are decompressed first, `.zip` files are OSV-style archives read
//! member by member. Files with other names are not feed documents and are passed over, except
//! OSV's YAML form, which is reported as a reject because it *is* a record we did not read.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use patchwarden_core::advisory::Advisory;

use crate::read::{read_limited, read_xz};
use crate::{FeedError, Import, Limits, Reject, RejectReason, alpine, csaf, debian, osv};

/// Which parser the documents under a path are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvisoryFeed {
    /// OSV records (CVE JSON 5 records among them are recognised and read as such).
    Osv,
    Csaf,
    AlpineSecdb,
    DebianTracker,
}

/// Loads every document of one feed under `path` (a file, a `.zip`, or a directory).
pub fn load_path(
    path: &Path,
    feed: AdvisoryFeed,
    limits: &Limits,
) -> Result<Import<Advisory>, FeedError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        walk(path, &mut files, 0)?;
    } else {
        files.push(path.to_path_buf());
    }
    let mut import = Import::default();
    for file in files {
        let location = file.display().to_string();
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".zip") {
            let reader = BufReader::new(File::open(&file).map_err(|e| io(&file, e))?);
            match feed {
                AdvisoryFeed::Osv => import.extend(osv::parse_zip(reader, &location, limits)?),
                _ => import.rejects.push(Reject::new(
                    location,
                    None,
                    RejectReason::NotThisFeed(format!("{feed:?} is not read from zip archives")),
                )),
            }
            continue;
        }
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            import.rejects.push(Reject::new(
                location,
                None,
                RejectReason::NotThisFeed("YAML documents are not read; OSV publishes JSON".into()),
            ));
            continue;
        }
        let compressed = name.ends_with(".json.xz");
        if !compressed && !name.ends_with(".json") {
            continue;
        }
        let limit = match feed {
            AdvisoryFeed::Osv | AdvisoryFeed::Csaf => limits.max_document_bytes,
            AdvisoryFeed::AlpineSecdb | AdvisoryFeed::DebianTracker => limits.max_feed_bytes,
        };
        let bytes = match read_file(&file, limit) {
            Ok(b) => b,
            Err(reason) => {
                import.rejects.push(Reject::new(location, None, reason));
                continue;
            }
        };
        match feed {
            AdvisoryFeed::Osv => push(&mut import, osv::parse(&bytes, &location)),
            AdvisoryFeed::Csaf => push(&mut import, csaf::parse(&bytes, &location)),
            AdvisoryFeed::AlpineSecdb => match alpine::parse(&bytes, &location) {
                Ok(i) => import.extend(i),
                Err(r) => import.rejects.push(r),
            },
            AdvisoryFeed::DebianTracker => match debian::parse(&bytes, &location) {
                Ok(i) => import.extend(i),
                Err(r) => import.rejects.push(r),
            },
        }
    }
    Ok(import)
}

/// Reads one file, decompressing `.xz`, never more than `limit` bytes of content.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, RejectReason> {
    let file = File::open(path).map_err(RejectReason::Read)?;
    if path.extension().is_some_and(|e| e == "xz") {
        read_xz(BufReader::new(file), limit)
    } else {
        read_limited(file, limit)
    }
}

fn push(import: &mut Import<Advisory>, r: Result<Advisory, Reject>) {
    match r {
        Ok(a) => import.records.push(a),
        Err(r) => import.rejects.push(r),
    }
}

fn io(path: &Path, source: std::io::Error) -> FeedError {
    FeedError::Io {
        location: path.display().to_string(),
        source,
    }
}

/// Collects the files under `dir`, sorted, not following symbolic links to directories.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), FeedError> {
    if depth > 32 {
        return Err(FeedError::Invalid {
            location: dir.display().to_string(),
            reason: "directories nest more than 32 deep".into(),
        });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let meta = std::fs::symlink_metadata(&p).map_err(|e| io(&p, e))?;
        if meta.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if meta.is_file() || (meta.file_type().is_symlink() && p.is_file()) {
            out.push(p);
        }
    }
    Ok(())
}
