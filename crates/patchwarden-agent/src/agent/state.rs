//! The agent's state directory: who it is (host id, server, pinned CA), its key, its check-in
//! counter, and the last inventory the server accepted (the base of the next delta).
//!
//! Every file is created 0600 in a 0700 directory and replaced atomically (written beside,
//! synced, renamed), so a crash leaves the old file or the new one, never half of one. Every
//! read is bounded, and a damaged file is an error that names it — the agent then refuses to
//! guess, rather than enrolling anew or sending a wrong delta.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use std::collections::BTreeMap;

use patchwarden_api::v1::agent::Schedule;
use patchwarden_api::v1::jobs::JobResult;
use patchwarden_api::v1::signing::{hex, unhex};
use patchwarden_client::AgentKey;
use patchwarden_core::inventory::Inventory;
use serde::{Deserialize, Serialize};

/// The largest identity or counter file read.
const MAX_SMALL_FILE: u64 = 64 * 1024;
/// The largest saved inventory read (far above any real host's).
const MAX_INVENTORY_FILE: u64 = 64 * 1024 * 1024;

const IDENTITY: &str = "agent.json";
const KEY: &str = "agent.key";
const SEQ: &str = "checkin.seq";
const INVENTORY: &str = "inventory.json";
const OUTBOX: &str = "results.json";

/// What the agent knows about its enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub host_id: String,
    /// The server's base URL.
    pub server: String,
    /// The pinned CA, `sha256:…`; `None` only for a server explicitly reached over plain HTTP.
    pub ca_fingerprint: Option<String>,
    pub group: String,
    pub enrolled_at: Timestamp,
    pub schedule: Schedule,
}

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("agent state {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("agent state {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("agent state {0} holds no enrollment: run `patchwarden agent enroll` first")]
    NotEnrolled(PathBuf),
    #[error("agent state {0} already holds an enrollment; remove it to enroll again")]
    AlreadyEnrolled(PathBuf),
}

/// The agent's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The directory at `dir`, created 0700 when missing.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        if !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io(dir, e))?;
        }
        Ok(StateDir {
            dir: dir.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether an enrollment is saved here.
    pub fn is_enrolled(&self) -> bool {
        self.file(IDENTITY).exists()
    }

    /// Saves a new enrollment: the identity and the key. Refuses to overwrite one.
    pub fn save_enrollment(&self, identity: &Identity, key: &AgentKey) -> Result<(), StateError> {
        if self.is_enrolled() {
            return Err(StateError::AlreadyEnrolled(self.dir.clone()));
        }
        write_atomic(&self.file(KEY), hex(&key.secret()).as_bytes())?;
        write_atomic(&self.file(SEQ), b"0")?;
        let _ = fs::remove_file(self.file(INVENTORY));
        let json = serde_json::to_vec_pretty(identity).map_err(|e| StateError::Damaged {
            path: self.file(IDENTITY),
            reason: e.to_string(),
        })?;
        // The identity goes last: its presence is what says "enrolled", so a crash before it
        // leaves a directory that is simply not enrolled yet.
        write_atomic(&self.file(IDENTITY), &json)
    }

    /// The saved enrollment and key.
    pub fn load(&self) -> Result<(Identity, AgentKey), StateError> {
        if !self.is_enrolled() {
            return Err(StateError::NotEnrolled(self.dir.clone()));
        }
        let path = self.file(IDENTITY);
        let bytes = read_bounded(&path, MAX_SMALL_FILE)?;
        let identity: Identity = serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e))?;
        let path = self.file(KEY);
        let text = read_bounded(&path, MAX_SMALL_FILE)?;
        let text = std::str::from_utf8(&text).map_err(|e| damaged(&path, e))?;
        let secret = unhex::<32>(text.trim()).ok_or_else(|| damaged(&path, "not 64 hex digits"))?;
        Ok((identity, AgentKey::from_secret(&secret)))
    }

    /// Raises the check-in counter by one and saves it *before* it is sent, so no number is
    /// ever sent twice by this machine (which the server would take for a clone).
    pub fn next_seq(&self) -> Result<u64, StateError> {
        let path = self.file(SEQ);
        let current = match read_bounded(&path, MAX_SMALL_FILE) {
            Ok(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| damaged(&path, "not a number"))?,
            Err(StateError::Io { .. }) if !path.exists() => 0,
            Err(e) => return Err(e),
        };
        let next = current.saturating_add(1);
        write_atomic(&path, next.to_string().as_bytes())?;
        Ok(next)
    }

    /// The last inventory the server accepted, if saved.
    pub fn last_inventory(&self) -> Result<Option<Inventory>, StateError> {
        let path = self.file(INVENTORY);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_bounded(&path, MAX_INVENTORY_FILE)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| damaged(&path, e))
    }

    /// Saves the inventory the server just accepted.
    pub fn save_inventory(&self, inventory: &Inventory) -> Result<(), StateError> {
        let path = self.file(INVENTORY);
        let bytes = serde_json::to_vec(inventory).map_err(|e| damaged(&path, e))?;
        write_atomic(&path, &bytes)
    }
}

impl StateDir {
    /// Job results not yet acknowledged by the server, by job id. A result is saved here
    /// before it is sent and removed once the server has it, so a crash of either side between
    /// the two is repaired by the next check-in re-sending it (the server takes a repeat of
    /// the same result as the same result).
    pub fn pending_results(&self) -> Result<BTreeMap<String, JobResult>, StateError> {
        let path = self.file(OUTBOX);
        if !path.exists() {
            return Ok(BTreeMap::new());
        }
        let bytes = read_bounded(&path, MAX_INVENTORY_FILE)?;
        serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e))
    }

    /// Replaces the pending results.
    pub fn save_pending_results(
        &self,
        pending: &BTreeMap<String, JobResult>,
    ) -> Result<(), StateError> {
        let path = self.file(OUTBOX);
        let bytes = serde_json::to_vec(pending).map_err(|e| damaged(&path, e))?;
        write_atomic(&path, &bytes)
    }
}

fn io(path: &Path, e: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn damaged(path: &Path, e: impl std::fmt::Display) -> StateError {
    StateError::Damaged {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, StateError> {
    let file = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(damaged(path, format!("longer than {limit} bytes")));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically, mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    // A file left by an older run may have wider permissions; `mode` applies only on create.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    if let Some(parent) = path.parent()
        && let Ok(d) = fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn identity() -> Identity {
        Identity {
            host_id: "h".into(),
            server: "https://s".into(),
            ca_fingerprint: Some("sha256:00".into()),
            group: "g".into(),
            enrolled_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            schedule: Schedule {
                interval_secs: 60,
                jitter_secs: 5,
            },
        }
    }

    #[test]
    fn state_files_are_0600_in_a_0700_directory_and_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let state = StateDir::open(&dir).unwrap();
        let key = AgentKey::generate().unwrap();
        state.save_enrollment(&identity(), &key).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        for name in [IDENTITY, KEY, SEQ] {
            let mode = fs::metadata(dir.join(name)).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        let (id, loaded) = state.load().unwrap();
        assert_eq!(id, identity());
        assert_eq!(loaded.public_hex(), key.public_hex());
        assert_eq!(state.next_seq().unwrap(), 1);
        assert_eq!(state.next_seq().unwrap(), 2);
        assert!(matches!(
            state.save_enrollment(&identity(), &key),
            Err(StateError::AlreadyEnrolled(_))
        ));
    }

    #[test]
    fn damaged_state_files_are_errors_that_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        assert!(matches!(state.load(), Err(StateError::NotEnrolled(_))));
        state
            .save_enrollment(&identity(), &AgentKey::generate().unwrap())
            .unwrap();
        fs::write(tmp.path().join(KEY), "not hex").unwrap();
        let e = state.load().unwrap_err().to_string();
        assert!(e.contains("agent.key"), "{e}");
        fs::write(tmp.path().join(SEQ), "x").unwrap();
        assert!(matches!(state.next_seq(), Err(StateError::Damaged { .. })));
        fs::write(tmp.path().join(INVENTORY), vec![b'{'; 10]).unwrap();
        assert!(matches!(
            state.last_inventory(),
            Err(StateError::Damaged { .. })
        ));
    }
}
