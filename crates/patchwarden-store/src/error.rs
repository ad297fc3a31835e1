//! What can go wrong in a store, as one enum that callers branch on.
//!
//! The server maps these to HTTP answers in one place, so each variant says exactly one thing:
//! the refusals that are part of the protocol (an enrollment token that is expired, a nonce
//! seen before, a job that belongs to another host) are their own variants with the facts a
//! caller needs, and the database's own failures carry the operation they interrupted.

use jiff::Timestamp;
use uuid::Uuid;

/// Why an enrollment token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollRejection {
    /// No token has this secret.
    #[error("no enrollment token has this secret")]
    Unknown,
    #[error("enrollment token {id} expired at {expired_at}")]
    Expired { id: Uuid, expired_at: Timestamp },
    #[error("enrollment token {id} was revoked at {revoked_at}")]
    Revoked { id: Uuid, revoked_at: Timestamp },
    #[error("enrollment token {id} has been used its {max_uses} time(s) already")]
    UsedUp { id: Uuid, max_uses: u32 },
}

/// Every error a [`crate::Store`] returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The enrollment token was refused; nothing changed.
    #[error("enrollment refused: {0}")]
    Enrollment(EnrollRejection),
    /// The nonce was already used by this host and has not expired: a replayed request.
    #[error("nonce {nonce:?} of host {host} was already used (replayed request)")]
    Replay { host: Uuid, nonce: String },
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    /// A check-in counter that does not exceed the last one accepted for the host: the same
    /// agent identity is used from two machines (or its state was restored from a copy).
    /// Nothing changed.
    #[error("check-in counter {seq} of host {host} does not exceed the last one accepted ({last})")]
    CounterNotIncreased { host: Uuid, seq: u64, last: u64 },
    /// A change of standing that is not allowed (a retired host stays retired); nothing
    /// changed.
    #[error("host {host} is {state}: it cannot be {wanted}")]
    HostStateRefused {
        host: Uuid,
        state: crate::host::HostState,
        wanted: &'static str,
    },
    /// The change would leave no enabled admin (demoting or disabling the last one); nothing
    /// changed.
    #[error("user {username} is the last enabled admin: make another admin first")]
    LastAdmin { username: String },
    /// A host reported on a job that is not its own; nothing changed.
    #[error("job {job} does not belong to host {host}")]
    NotJobOwner { job: Uuid, host: Uuid },
    /// A finished job was reported again with a different outcome; nothing changed.
    #[error("job {job} already finished as {state}; a different result cannot replace it")]
    JobAlreadyFinished { job: Uuid, state: String },
    /// The object changed since the caller read it (another server or operator acted on it
    /// first); nothing changed. Read it again and decide anew.
    #[error("{kind} {id} changed since revision {revision} was read")]
    Stale {
        kind: &'static str,
        id: String,
        revision: i64,
    },
    /// The core's rules refuse a change of an exception (the requester approving it, an
    /// exception not in the state the change needs …); nothing changed.
    #[error("exception refused: {reason}")]
    ExceptionRefused { reason: String },
    /// A text or JSON value is longer than its column allows.
    #[error("{field} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A value is not acceptable for another reason (empty, out of range, not JSON …).
    #[error("{field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The database URL names no backend we have, or names it badly.
    #[error("database URL {url:?} is not understood: {reason}")]
    Url { url: String, reason: String },
    /// The database could not be opened (missing directory, not a database, corrupt file).
    #[error("cannot open the database {location}: {reason}")]
    Open { location: String, reason: String },
    /// Applying a migration failed; the migration was rolled back.
    #[error("migration {name} failed: {reason}")]
    Migration { name: String, reason: String },
    /// A stored row does not decode: the database was edited by hand or is damaged.
    #[error("stored {table} row {key} is damaged: {reason}")]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },
    /// The database failed during an operation.
    #[error("database error during {op}: {reason}")]
    Backend { op: &'static str, reason: String },
}

impl StoreError {
    /// A database failure during `op`, keeping the driver's message (with its error chain,
    /// which drivers often keep in `source`).
    pub fn backend(op: &'static str, e: impl std::error::Error) -> StoreError {
        let mut reason = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !reason.contains(&text) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            source = s.source();
        }
        StoreError::Backend { op, reason }
    }

    /// A row of `table` whose column does not decode.
    pub fn corrupt(table: &'static str, key: impl ToString, reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            table,
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
