//! Errors: why a record was skipped ([`Reject`]) and why a whole input could not be read
//! ([`FeedError`]).
//!
//! The two are apart on purpose. A bad record is normal in published feeds and costs only
//! that record; an archive whose directory cannot be read, or a path that does not exist, is
//! a failure of the whole import that the caller must see.

use std::fmt;

/// Why one record or document was skipped.
#[derive(Debug, thiserror::Error)]
pub enum RejectReason {
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("cannot be read: {0}")]
    Read(#[source] std::io::Error),
    #[error("cannot be decompressed: {0}")]
    Decompress(String),
    #[error("is not valid JSON for this feed: {0}")]
    Json(#[source] serde_json::Error),
    /// The document is well-formed but breaks its schema or our model's rules.
    #[error("{0}")]
    Invalid(String),
    /// The document belongs to another feed or format.
    #[error("{0}")]
    NotThisFeed(String),
    /// An archive limit was reached; the rest of the archive was not read.
    #[error("{0}")]
    ArchiveLimit(String),
}

/// A skipped record: where it was, which record it was when its id could be read, and why.
#[derive(Debug)]
pub struct Reject {
    /// The file, archive member (`archive.zip!dir/file.json`) or line.
    pub location: String,
    pub id: Option<String>,
    pub reason: RejectReason,
}

impl Reject {
    pub fn new(location: impl Into<String>, id: Option<String>, reason: RejectReason) -> Reject {
        Reject {
            location: location.into(),
            id,
            reason,
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} ({id}): {}", self.location, self.reason),
            None => write!(f, "{}: {}", self.location, self.reason),
        }
    }
}

/// A failure of a whole input.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{location}: cannot be read: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: not a readable zip archive: {reason}")]
    Archive { location: String, reason: String },
    #[error("{location}: {reason}")]
    Invalid { location: String, reason: String },
}
