//! Parsers that turn published advisory feeds into Patchwarden's advisory model.
//!
//! Each module reads one feed exactly as its publisher writes it and produces
//! [`patchwarden_core::advisory`] types: [`osv`] (single records, directories, OSV's `all.zip`),
//! [`csaf`] (CSAF 2.0 advisories and VEX, xz-compressed or not), [`alpine`] (secdb),
//! [`debian`] (the security tracker's JSON), [`cve5`] (CVE JSON 5 records), and the
//! enrichment feeds [`kev`] and [`epss`]. The model's module documentation says what the
//! matcher relies on; the parsers keep those promises (ecosystems spelled as OSV spells them,
//! versions that order under their ecosystem's scheme, source-package names where the
//! distribution uses them).
//!
//! **Architecture Invariant**: parsing is pure. The parsers read from bytes or a
//! [`std::io::Read`] handed to them and never touch the filesystem, the network or the clock.
//! The one exception is [`load::load_path`], a small convenience that walks a directory or
//! opens a file or archive and hands what it reads to the parsers.
//!
//! **Bad input never stops an import and never panics.** A record that is malformed or
//! violates its schema is skipped and reported as a [`Reject`] with its location, its id when
//! one could be read, and the reason; the good records are returned beside the rejects in an
//! [`Import`]. Every read is bounded by [`Limits`]: per document, per archive member, and in
//! total per archive, whatever sizes an archive's headers claim.

pub mod alpine;
pub mod csaf;
pub mod cve5;
pub mod debian;
pub mod detect;
pub mod epss;
pub mod kev;
pub mod load;
pub mod osv;

mod error;
mod read;
mod time;

pub use error::{FeedError, Reject, RejectReason};
pub use read::Limits;

/// The records an import produced and the ones it skipped.
#[derive(Debug)]
pub struct Import<T> {
    pub records: Vec<T>,
    pub rejects: Vec<Reject>,
}

impl<T> Default for Import<T> {
    fn default() -> Self {
        Import {
            records: Vec::new(),
            rejects: Vec::new(),
        }
    }
}

impl<T> Import<T> {
    /// Adds another import's records and rejects to this one.
    pub fn extend(&mut self, other: Import<T>) {
        self.records.extend(other.records);
        self.rejects.extend(other.rejects);
    }

    /// The rejects as lines `location (id): reason`, sorted, for reports and snapshots.
    pub fn reject_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.rejects.iter().map(|r| r.to_string()).collect();
        lines.sort();
        lines
    }
}
