//! Dev-only: the real libdpkg and librpm, linked in process, as oracles for
//! `patchwarden-version`, and a generator of nasty version pairs to feed both.
//!
//! `tests/differential.rs` compares a million generated pairs per run against the C libraries
//! and requires zero disagreements; `benches/vercmp.rs` measures both on the same pairs. The
//! libraries come from `libdpkg-dev` and `librpm-dev` (`scripts/install-test-deps`); without
//! them the crate builds but [`oracles_available`] is false and the tests say they skipped.

pub mod generate;

#[cfg(oracle_libs)]
pub mod ffi;

/// Whether the C libraries were found at build time.
pub fn oracles_available() -> bool {
    cfg!(oracle_libs)
}

/// For tests and benches: true when the oracles can run; otherwise says plainly why not and
/// returns false — or fails when `PATCHWARDEN_REQUIRE_TOOLS` is set (as `scripts/test` sets it
/// after installing the packages), so that CI never skips them silently.
pub fn require_oracles(what: &str) -> bool {
    if oracles_available() {
        return true;
    }
    let why = "libdpkg-dev and librpm-dev were not found by pkg-config when this crate was built";
    if std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some() {
        panic!("{what}: {why} (scripts/install-test-deps installs them)");
    }
    eprintln!("SKIPPED {what}: {why}; run scripts/test, which installs them");
    false
}

/// rpm's own EVR ordering (`rpmverCmp`, what `rpm.labelCompare` calls), for other crates'
/// tests: `None` when librpm is not linked or rpm cannot parse one of the strings.
pub fn rpm_evr_compare(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    #[cfg(oracle_libs)]
    {
        let (a, b) = (
            std::ffi::CString::new(a).ok()?,
            std::ffi::CString::new(b).ok()?,
        );
        Some(ffi::RpmEvr::parse(&a)?.compare(&ffi::RpmEvr::parse(&b)?))
    }
    #[cfg(not(oracle_libs))]
    {
        let _ = (a, b);
        None
    }
}
