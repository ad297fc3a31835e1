//! The advisory index and the matcher: which installed packages are exposed to which
//! vulnerabilities, with the version that fixes each, and why, in words.
//!
//! [`Index::build`] takes advisories in the core model, parses every range event once with the
//! version scheme of its ecosystem, and keys the entries by (ecosystem, package name).
//! [`Index::match_packages`] takes one host's ecosystem and packages and returns its findings.
//!
//! The traps that make other scanners wrong are handled here, each with a test named after it
//! in `tests/traps.rs`:
//!
//! - Debian and Ubuntu advisories name **source** packages and source versions (`libssl3` is
//!   built from `openssl`; a binNMU `+b1` is not in the source version); Alpine names origins;
//!   rpm distributions name binary packages with epoch-aware EVRs.
//! - Ecosystems must agree: a `Debian:11` advisory says nothing about a `Debian:12` host.
//! - `introduced`/`fixed`/`last_affected`/`limit` and explicit `versions` follow OSV's
//!   evaluation; `~` backports sort before their base version.
//! - Withdrawn advisories and "not affected" statements (VEX, the Debian tracker) produce no
//!   findings.
//! - RHEL module streams: a fix built for `nodejs:18` does not close `nodejs:16`, and a
//!   modular fix does not apply to a non-modular package of the same name (and vice versa).
//! - One CVE reached through several advisories is one finding per package, with every
//!   advisory as a source, and the lowest fixed version above the installed one.
//!
//! Pure: no I/O, no clock.

mod ecosystem;
mod enrich;
mod index;
mod kept;
mod module;
mod range;

pub use ecosystem::ecosystem_applies;
pub use enrich::{Enrichment, Ratings};
pub use index::{Index, IndexProblem, MatchOptions, MatchProblem, MatchReport};
pub use kept::AdvisoryFacts;
