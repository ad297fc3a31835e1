//! The NDB backend on a real SUSE `Packages.db` (Debian's rpm cannot write NDB), and on
//! copies of it damaged in each way the format's checks exist for.

mod rpm_support;

use std::path::{Path, PathBuf};

use patchwarden_agent::inventory::rpm::{
    self, Backend, Limits, NdbError, RpmDbError, read_database, read_packages,
};
use patchwarden_agent::root::HostRoot;
use rpm_support::*;

/// What `rpm -qa` printed inside the SLE 15 BCI image the fixture comes from: go-rpmdb's
/// `SLE15WithNDB` expectations (name, epoch, version-release, arch, source rpm), from
/// <https://github.com/knqyf263/go-rpmdb/blob/7e39c901d1c42d070a7c681b5d36c92ac6c129d6/pkg/rpmdb_testcase_test.go#L2784>.
const SLE15_RPM_QA: &[&str] = &[
    "bash|(none)|4.4-19.6.1|x86_64|bash-4.4-19.6.1.src.rpm|(none)",
    "ca-certificates-mozilla-prebuilt|(none)|2.44-21.1|noarch|ca-certificates-mozilla-prebuilt-2.44-21.1.src.rpm|(none)",
    "coreutils|(none)|8.32-3.2.1|x86_64|coreutils-8.32-3.2.1.src.rpm|(none)",
    "file-magic|(none)|5.32-7.14.1|noarch|file-5.32-7.14.1.src.rpm|(none)",
    "filesystem|(none)|15.0-11.3.2|x86_64|filesystem-15.0-11.3.2.src.rpm|(none)",
    "glibc|(none)|2.31-9.3.2|x86_64|glibc-2.31-9.3.2.src.rpm|(none)",
    "libacl1|(none)|2.2.52-4.3.1|x86_64|acl-2.2.52-4.3.1.src.rpm|(none)",
    "libattr1|(none)|2.4.47-2.19|x86_64|attr-2.4.47-2.19.src.rpm|(none)",
    "libbz2-1|(none)|1.0.6-5.11.1|x86_64|bzip2-1.0.6-5.11.1.src.rpm|(none)",
    "libcap2|(none)|2.26-4.6.1|x86_64|libcap-2.26-4.6.1.src.rpm|(none)",
    "libcrypt1|(none)|4.4.15-2.51|x86_64|libxcrypt-4.4.15-2.51.src.rpm|(none)",
    "libdw1|(none)|0.168-4.5.3|x86_64|elfutils-0.168-4.5.3.src.rpm|(none)",
    "libebl-plugins|(none)|0.168-4.5.3|x86_64|elfutils-0.168-4.5.3.src.rpm|(none)",
    "libelf1|(none)|0.168-4.5.3|x86_64|elfutils-0.168-4.5.3.src.rpm|(none)",
    "libgcc_s1|(none)|11.2.1+git610-1.3.9|x86_64|gcc11-11.2.1+git610-1.3.9.src.rpm|(none)",
    "libgcrypt20|(none)|1.8.2-8.39.1|x86_64|libgcrypt-1.8.2-8.39.1.src.rpm|(none)",
    "libgmp10|(none)|6.1.2-4.6.1|x86_64|gmp-6.1.2-4.6.1.src.rpm|(none)",
    "libgpg-error0|(none)|1.29-1.8|x86_64|libgpg-error-1.29-1.8.src.rpm|(none)",
    "liblua5_3-5|(none)|5.3.6-3.6.1|x86_64|lua53-5.3.6-3.6.1.src.rpm|(none)",
    "liblzma5|(none)|5.2.3-4.3.1|x86_64|xz-5.2.3-4.3.1.src.rpm|(none)",
    "libmagic1|(none)|5.32-7.14.1|x86_64|file-5.32-7.14.1.src.rpm|(none)",
    "libncurses6|(none)|6.1-5.9.1|x86_64|ncurses-6.1-5.9.1.src.rpm|(none)",
    "libpcre1|(none)|8.45-20.10.1|x86_64|pcre-8.45-20.10.1.src.rpm|(none)",
    "libpopt0|(none)|1.16-3.22|x86_64|popt-1.16-3.22.src.rpm|(none)",
    "libreadline7|(none)|7.0-19.6.1|x86_64|bash-4.4-19.6.1.src.rpm|(none)",
    "libselinux1|(none)|3.0-1.31|x86_64|libselinux-3.0-1.31.src.rpm|(none)",
    "libstdc++6|(none)|11.2.1+git610-1.3.9|x86_64|gcc11-11.2.1+git610-1.3.9.src.rpm|(none)",
    "libz1|(none)|1.2.11-3.21.1|x86_64|zlib-1.2.11-3.21.1.src.rpm|(none)",
    "libzstd1|(none)|1.4.4-1.6.1|x86_64|zstd-1.4.4-1.6.1.src.rpm|(none)",
    "perl-base|(none)|5.26.1-15.87|x86_64|perl-5.26.1-15.87.src.rpm|(none)",
    "rpm-config-SUSE|(none)|1-5.6.1|noarch|rpm-config-SUSE-1-5.6.1.src.rpm|(none)",
    "rpm-ndb|(none)|4.14.3-40.1|x86_64|rpm-ndb-4.14.3-40.1.src.rpm|(none)",
    "sles-release|(none)|15.3-55.4.1|x86_64|sles-release-15.3-55.4.1.src.rpm|(none)",
    "system-user-root|(none)|20190513-3.3.1|noarch|system-user-root-20190513-3.3.1.src.rpm|(none)",
    "terminfo-base|(none)|6.1-5.9.1|x86_64|ncurses-6.1-5.9.1.src.rpm|(none)",
];

fn fixture() -> Vec<u8> {
    std::fs::read(test_data("rpm/sle15-bci-Packages.db")).unwrap()
}

/// A root holding `bytes` as its SUSE-style `usr/lib/sysimage/rpm/Packages.db`.
fn root_with(dir: &Path, bytes: &[u8]) -> PathBuf {
    let db_dir = dir.join("usr/lib/sysimage/rpm");
    std::fs::create_dir_all(&db_dir).unwrap();
    std::fs::write(db_dir.join("Packages.db"), bytes).unwrap();
    dir.to_path_buf()
}

fn read(bytes: &[u8]) -> Result<Vec<patchwarden_core::inventory::Package>, RpmDbError> {
    let dir = tempfile::tempdir().unwrap();
    read_packages(&root_with(dir.path(), bytes))
}

fn ndb_error(bytes: &[u8]) -> NdbError {
    match read(bytes) {
        Err(RpmDbError::Ndb { source, .. }) => source,
        other => panic!("expected an NDB error, got {other:?}"),
    }
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The byte offset of the first used slot and of its blob.
fn first_slot(bytes: &[u8]) -> (usize, usize) {
    let slot = (32..4096)
        .step_by(16)
        .find(|&at| le32(bytes, at + 8) != 0)
        .unwrap();
    (slot, le32(bytes, slot + 8) as usize * 16)
}

#[test]
fn sle15_packages_db_matches_rpm_qa_in_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), &fixture());
    let db = rpm::locate(&HostRoot::new(&root).unwrap()).unwrap();
    assert_eq!(db.backend, Backend::Ndb);
    let packages = read_packages(&root).unwrap();
    assert_eq!(rows(&packages), SLE15_RPM_QA);
    // A library whose source package has another name and version.
    let readline = packages.iter().find(|p| p.name == "libreadline7").unwrap();
    assert_eq!(readline.version, "7.0-19.6.1");
    assert_eq!(readline.source_name.as_deref(), Some("bash"));
    assert_eq!(readline.source_version.as_deref(), Some("4.4-19.6.1"));
}

#[test]
fn ndb_under_var_lib_rpm_is_found_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
    std::fs::write(dir.path().join("var/lib/rpm/Packages.db"), fixture()).unwrap();
    assert_eq!(read_packages(dir.path()).unwrap().len(), SLE15_RPM_QA.len());
}

#[test]
fn garbage_in_place_of_packages_db_is_an_error() {
    assert!(matches!(ndb_error(&[0x41; 8192]), NdbError::Magic));
    assert!(matches!(ndb_error(b"RpmP"), NdbError::TooShort { len: 4 }));
    let err = read(b"").unwrap_err();
    assert!(
        err.to_string()
            .contains("too short for the 32-byte NDB header"),
        "{err}"
    );
}

#[test]
fn a_newer_format_version_is_refused() {
    let mut bytes = fixture();
    bytes[4] = 1;
    assert!(matches!(ndb_error(&bytes), NdbError::Version(1)));
}

#[test]
fn a_length_that_is_not_whole_blocks_is_refused() {
    let bytes = fixture();
    let err = ndb_error(&bytes[..bytes.len() - 5]);
    assert!(matches!(err, NdbError::Unaligned { .. }), "{err:?}");
}

#[test]
fn a_truncated_file_is_refused_before_reading_past_its_end() {
    let bytes = fixture();
    let err = ndb_error(&bytes[..bytes.len() - 4096]);
    assert!(matches!(err, NdbError::Slot { .. }), "{err:?}");
    assert!(
        err.to_string().contains("runs past the end of the file"),
        "{err}"
    );
}

#[test]
fn slot_pages_beyond_the_file_are_refused() {
    let mut bytes = fixture();
    bytes[12..16].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    assert!(matches!(ndb_error(&bytes), NdbError::SlotPages { .. }));
}

#[test]
fn a_broken_slot_is_refused() {
    let mut bytes = fixture();
    let (slot, _) = first_slot(&bytes);
    bytes[slot] = b'X';
    assert!(matches!(ndb_error(&bytes), NdbError::Slot { .. }));
}

#[test]
fn a_flipped_byte_in_a_blob_fails_its_checksum() {
    let mut bytes = fixture();
    let (_, blob) = first_slot(&bytes);
    bytes[blob + 16 + 100] ^= 0x01;
    let err = ndb_error(&bytes);
    assert!(matches!(err, NdbError::Checksum { .. }), "{err:?}");
}

#[test]
fn a_blob_head_for_another_package_is_refused() {
    let mut bytes = fixture();
    let (_, blob) = first_slot(&bytes);
    bytes[blob + 4] ^= 0x40;
    assert!(matches!(ndb_error(&bytes), NdbError::Blob { .. }));
}

#[test]
fn two_slots_for_one_package_are_refused() {
    let mut bytes = fixture();
    let (slot, _) = first_slot(&bytes);
    let next = (slot + 16..4096)
        .step_by(16)
        .find(|&at| le32(&bytes, at + 8) != 0)
        .unwrap();
    let pkgidx = bytes[slot + 4..slot + 8].to_vec();
    bytes[next + 4..next + 8].copy_from_slice(&pkgidx);
    assert!(matches!(ndb_error(&bytes), NdbError::DuplicateSlot { .. }));
}

#[test]
fn limits_on_packages_and_header_size_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), &fixture());
    let db = rpm::locate(&HostRoot::new(&root).unwrap()).unwrap();
    let few = Limits {
        max_packages: 10,
        ..Limits::default()
    };
    let err = read_database(&db, &few).unwrap_err();
    assert!(
        matches!(err, RpmDbError::TooManyPackages { limit: 10, .. }),
        "{err:?}"
    );
    let small = Limits {
        max_header_bytes: 1000,
        ..Limits::default()
    };
    let err = read_database(&db, &small).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Ndb {
                source: NdbError::BlobTooLarge { limit: 1000, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

/// Thousands of random single-byte and word corruptions of the real file: each read ends in
/// packages or an error, never a panic.
#[test]
fn random_corruption_never_panics() {
    let original = fixture();
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), &original);
    let path = root.join("usr/lib/sysimage/rpm/Packages.db");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..200 {
        let mut bytes = original.clone();
        // Mostly the slot area and blob heads and tails, where the structure lives.
        for _ in 0..1 + rng.below(4) {
            let at = if rng.below(2) == 0 {
                rng.below(4096)
            } else {
                rng.below(bytes.len())
            };
            bytes[at] = rng.next() as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        match read_packages(&root) {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    assert!(failed > 0 && ok + failed == 200);
}
