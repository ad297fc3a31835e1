//! Says plainly when the oracles are missing (or fails under PATCHWARDEN_REQUIRE_TOOLS), so
//! that a build without libdpkg-dev/librpm-dev never passes the differential suite silently.

#[test]
fn oracles_are_linked() {
    if patchwarden_oracle::require_oracles("differential tests against libdpkg and librpm") {
        assert!(patchwarden_oracle::oracles_available());
    }
}
