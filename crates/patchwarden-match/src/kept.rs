//! What the index keeps of each advisory once its entries are compiled.
//!
//! A whole [`Advisory`] carries the details text, references, package URLs, free-form
//! `database_specific` JSON and one ecosystem string per affected entry — most of an
//! advisory's memory, and none of it needed to match a package. The server holds the index
//! for as long as it runs (two of them while a rebuild replaces the old one), so the index
//! keeps only what matching, the policy's ratings and a finding's fields read; whoever shows
//! or re-matches a whole advisory reads it from the store.

use jiff::Timestamp;
use patchwarden_core::advisory::{Advisory, Severity, VendorSeverity};

use crate::module;

/// The facts of one advisory that matching, ratings and findings need.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvisoryFacts {
    id: Box<str>,
    published: Option<Timestamp>,
    active: bool,
    summary: Option<Box<str>>,
    /// Module streams its summary names (AlmaLinux and Rocky: "Moderate: nodejs:14 …").
    streams: Box<[Box<str>]>,
    /// The advisory's scored CVSS ratings (unscored vectors inform no policy).
    cvss: Box<[Severity]>,
    vendor: Option<VendorSeverity>,
    /// The scored CVSS and vendor ratings of its affected entries, in entry order.
    package_cvss: Box<[Severity]>,
    package_vendor: Box<[VendorSeverity]>,
}

impl AdvisoryFacts {
    /// Keeps what the index needs of `advisory`.
    pub(crate) fn of(advisory: &Advisory) -> AdvisoryFacts {
        let scored = |s: &[Severity]| -> Vec<Severity> {
            s.iter()
                .filter(|s| s.base_score.is_some())
                .cloned()
                .collect()
        };
        AdvisoryFacts {
            id: advisory.id.as_str().into(),
            published: advisory.published,
            active: advisory.is_active(),
            summary: advisory.summary.as_deref().map(Into::into),
            streams: advisory
                .summary
                .as_deref()
                .map(module::summary_streams)
                .unwrap_or_default()
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            cvss: scored(&advisory.severity).into(),
            vendor: advisory.vendor_severity.clone(),
            package_cvss: advisory
                .affected
                .iter()
                .flat_map(|e| scored(&e.severity))
                .collect(),
            package_vendor: advisory
                .affected
                .iter()
                .filter_map(|e| e.vendor_severity.clone())
                .collect(),
        }
    }

    /// The advisory's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When it was published; also when the fix it announces became available
    /// ([`Advisory::fix_available_at`]).
    pub fn published(&self) -> Option<Timestamp> {
        self.published
    }

    /// [`Advisory::fix_available_at`], kept.
    pub fn fix_available_at(&self) -> Option<Timestamp> {
        self.published
    }

    /// Whether it may produce findings (it is not withdrawn).
    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn summary(&self) -> Option<&str> {
        self.summary.as_deref()
    }

    pub(crate) fn streams(&self) -> &[Box<str>] {
        &self.streams
    }

    /// The advisory's own scored CVSS ratings.
    pub fn cvss(&self) -> &[Severity] {
        &self.cvss
    }

    /// The vendor's rating of the whole advisory.
    pub fn vendor_severity(&self) -> Option<&VendorSeverity> {
        self.vendor.as_ref()
    }

    /// The scored CVSS ratings its affected entries carry, in entry order.
    pub fn package_cvss(&self) -> &[Severity] {
        &self.package_cvss
    }

    /// The vendor ratings its affected entries carry, in entry order.
    pub fn package_vendor_severity(&self) -> &[VendorSeverity] {
        &self.package_vendor
    }
}
