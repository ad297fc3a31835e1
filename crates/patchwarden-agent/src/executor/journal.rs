//! The per-job journal: one 0600 file per job under `STATE/jobs/`, replaced atomically at
//! every phase, so an agent that stops mid-job (a crash, a reboot, a kill) knows on its next
//! run what it had recorded and done, and neither repeats an install nor forgets to report.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use patchwarden_api::v1::jobs::{JobResult, PackageChange, PackagePin};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::agent::state::{StateError, read_bounded, write_atomic};

/// The largest journal read.
const MAX_JOURNAL: u64 = 16 * 1024 * 1024;

/// Where a job stands on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The versions before the job are recorded (and their packages cached).
    PreviousRecorded,
    /// The package manager was started.
    Installing,
    /// The package manager finished (successfully or not).
    Installed,
    /// The database was re-read and the checks ran: the result is in the journal.
    Verified,
    /// A reboot was started; the result follows once the boot id has changed.
    Rebooting,
    /// The result was handed to the server's outbox: the job is never run again.
    Reported,
}

/// One job's journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub job: String,
    /// `install`, `rollback` or `reboot`.
    pub kind: String,
    pub phase: Phase,
    /// The versions the job installs.
    pub targets: Vec<PackagePin>,
    /// Each touched package, the version before the job and the target.
    pub changes: Vec<PackageChange>,
    /// Package files kept for a rollback, in the agent's cache.
    #[serde(default)]
    pub cached: Vec<PathBuf>,
    /// How many times the package manager was started for this job.
    #[serde(default)]
    pub runs: u32,
    /// The boot id when a reboot was started.
    #[serde(default)]
    pub boot_id: Option<String>,
    #[serde(default)]
    pub result: Option<JobResult>,
    pub updated_at: Timestamp,
}

/// The journals and the package cache of one state directory.
#[derive(Debug, Clone)]
pub struct Journals {
    dir: PathBuf,
    cache: PathBuf,
}

fn dir_0700(path: &Path) -> Result<(), StateError> {
    let io = |e: std::io::Error| StateError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if !path.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io)?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io)
}

/// A file name for a job id: the id itself when it is plain, else its digest.
fn file_name(job: &str) -> String {
    let plain = !job.is_empty()
        && job.len() <= 128
        && job
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        format!("{job}.json")
    } else {
        let hash = Sha256::digest(job.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.json")
    }
}

impl Journals {
    /// `STATE/jobs` and `STATE/cache`, created 0700.
    pub fn open(state_dir: &Path) -> Result<Journals, StateError> {
        let dir = state_dir.join("jobs");
        let cache = state_dir.join("cache");
        dir_0700(&dir)?;
        dir_0700(&cache)?;
        Ok(Journals { dir, cache })
    }

    /// Where rollback material is kept.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    fn path(&self, job: &str) -> PathBuf {
        self.dir.join(file_name(job))
    }

    pub fn load(&self, job: &str) -> Result<Option<Journal>, StateError> {
        let path = self.path(job);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_bounded(&path, MAX_JOURNAL)?;
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| StateError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some(journal))
    }

    /// Saves the journal (atomically, 0600), stamped `now`.
    pub fn save(&self, journal: &mut Journal, now: Timestamp) -> Result<(), StateError> {
        journal.updated_at = now;
        let path = self.path(&journal.job);
        let bytes = serde_json::to_vec_pretty(journal).map_err(|e| StateError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &bytes)
    }

    /// Removes the package files of the cache that no journal names any more and that were
    /// written before `before`; returns how many. A cached file is rollback material for the
    /// job whose journal lists it (a later job that needs the same version lists it too, so
    /// it stays while any of them is kept); once the journals are pruned nothing can roll
    /// back to it, and without this the cache would grow with every change forever. A file
    /// no journal ever named (a download cut short by a crash) goes after the same time.
    pub fn prune_cache(&self, before: Timestamp) -> usize {
        let referenced: std::collections::BTreeSet<std::ffi::OsString> = self
            .all()
            .iter()
            .flat_map(|j| j.cached.iter())
            .filter_map(|p| p.file_name().map(ToOwned::to_owned))
            .collect();
        let Ok(entries) = fs::read_dir(&self.cache) else {
            return 0;
        };
        let cutoff = std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(before.as_second()).unwrap_or(0));
        let mut removed = 0;
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|written| written < cutoff);
            if old
                && entry.file_type().is_ok_and(|t| t.is_file())
                && !referenced.contains(&entry.file_name())
                && fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// Removes the journals of jobs reported before `before`; returns how many. Their
    /// manifests have long expired, so a job that came back would be refused anyway. The
    /// cached packages they name go with [`Journals::prune_cache`].
    pub fn prune(&self, before: Timestamp) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(bytes) = read_bounded(&path, MAX_JOURNAL)
                && let Ok(j) = serde_json::from_slice::<Journal>(&bytes)
                && j.phase == Phase::Reported
                && j.updated_at < before
                && fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// Every journal.
    pub fn all(&self) -> Vec<Journal> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(bytes) = read_bounded(&path, MAX_JOURNAL)
                && let Ok(j) = serde_json::from_slice::<Journal>(&bytes)
            {
                out.push(j);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn journals_are_0600_in_0700_directories_and_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let journals = Journals::open(tmp.path()).unwrap();
        let mut j = Journal {
            job: "job/../../x".into(),
            kind: "install".into(),
            phase: Phase::Installing,
            targets: Vec::new(),
            changes: Vec::new(),
            cached: Vec::new(),
            runs: 1,
            boot_id: None,
            result: None,
            updated_at: Timestamp::UNIX_EPOCH,
        };
        journals.save(&mut j, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(journals.load("job/../../x").unwrap().unwrap(), j);
        for d in ["jobs", "cache"] {
            let mode = fs::metadata(tmp.path().join(d)).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o700, "{d}");
        }
        let files: Vec<_> = fs::read_dir(tmp.path().join("jobs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(fs::metadata(&files[0]).unwrap().mode() & 0o777, 0o600);
        assert_eq!(journals.all().len(), 1);
        assert!(journals.load("other").unwrap().is_none());

        // Only reported journals older than the limit go.
        let later: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(journals.prune(later), 0, "not reported yet");
        j.phase = Phase::Reported;
        journals.save(&mut j, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(journals.prune(Timestamp::UNIX_EPOCH), 0, "not old enough");
        assert_eq!(journals.prune(later), 1);
        assert!(journals.all().is_empty());
    }

    #[test]
    fn cached_packages_go_when_no_kept_journal_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        let journals = Journals::open(tmp.path()).unwrap();
        let cache = journals.cache_dir().to_owned();
        for f in ["old_1_all.deb", "kept_1_all.deb", "stray_1_all.deb"] {
            fs::write(cache.join(f), b"package").unwrap();
        }
        let journal = |job: &str, cached: &str| Journal {
            job: job.into(),
            kind: "install".into(),
            phase: Phase::Reported,
            targets: Vec::new(),
            changes: Vec::new(),
            cached: vec![cache.join(cached)],
            runs: 1,
            boot_id: None,
            result: None,
            updated_at: Timestamp::UNIX_EPOCH,
        };
        let long_ago: Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
        let recently: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        journals
            .save(&mut journal("old", "old_1_all.deb"), long_ago)
            .unwrap();
        journals
            .save(&mut journal("kept", "kept_1_all.deb"), recently)
            .unwrap();
        // Files written just now are not old enough for any cut-off in the past.
        assert_eq!(journals.prune_cache(long_ago), 0);
        // Every file is older than a cut-off far in the future: what a kept journal names
        // stays, the pruned job's package and the stray download go.
        let cutoff: Timestamp = "2090-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(journals.prune(recently), 1, "the old journal");
        assert_eq!(journals.prune_cache(cutoff), 2);
        let left: Vec<String> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["kept_1_all.deb"]);
    }
}
