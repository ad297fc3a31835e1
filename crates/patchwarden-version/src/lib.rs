//! Package version parsing and total ordering, exactly as the package managers do it.
//!
//! Every decision Patchwarden makes — is this host exposed, which version fixes it, did the
//! install work — rests on ordering versions the way the host's own package manager does. One
//! wrong comparison is a false alarm or a missed vulnerability, so each scheme here is a
//! faithful port of the upstream algorithm (dpkg's `verrevcmp`, rpm's `rpmvercmp` and
//! `rpmverCmp`, apk-tools' `version.c` in its 2.x and 3.x forms), checked against the
//! upstream test suites and, in `patchwarden-oracle`, against the real C libraries.
//!
//! Invalid versions give a [`VersionError`] that says what is wrong. Nothing here panics on
//! input, nothing allocates on the compare-two-strings path, and no invalid version is ever
//! silently treated as equal to another.
//!
//! This crate is pure: no I/O, no clock, no dependencies of ours.

mod error;
mod scheme;

pub mod apk;
pub mod dpkg;
pub mod pep440;
pub mod rpm;
pub mod semver;

mod digits;

pub use error::{Reason, VersionError};
pub use scheme::{Scheme, UnknownEcosystem, UnknownScheme, Version};
