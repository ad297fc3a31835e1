//! The Berkeley DB backend: the shared one-package `Packages` that rpm wrote (with an epoch),
//! hash databases of many packages written by the real Berkeley DB (`db5.3_load`) in both byte
//! orders and three page sizes, each checked against rpm's own `bdb_ro` reader, and damaged
//! copies that must fail with a clear error.

mod rpm_support;

use std::path::{Path, PathBuf};

use patchwarden_agent::inventory::rpm::{
    self, Backend, BdbError, Limits, RpmDbError, read_database, read_packages,
};
use patchwarden_agent::root::HostRoot;
use rpm_support::*;

fn fixture() -> Vec<u8> {
    std::fs::read(shared_data().join("inventories/rpm/scalibr-Packages_epoch.bdb")).unwrap()
}

/// A root holding `bytes` as `var/lib/rpm/Packages`.
fn root_with(dir: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir.join("var/lib/rpm")).unwrap();
    std::fs::write(dir.join("var/lib/rpm/Packages"), bytes).unwrap();
    dir.to_path_buf()
}

fn bdb_error(bytes: &[u8]) -> BdbError {
    let dir = tempfile::tempdir().unwrap();
    match read_packages(&root_with(dir.path(), bytes)) {
        Err(RpmDbError::Bdb { source, .. }) => source,
        other => panic!("expected a Berkeley DB error, got {other:?}"),
    }
}

#[test]
fn shared_packages_with_an_epoch_matches_rpm() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), &fixture());
    let db = rpm::locate(&HostRoot::new(&root).unwrap()).unwrap();
    assert_eq!(db.backend, Backend::BerkeleyDb);
    let packages = read_packages(&root).unwrap();
    assert_eq!(
        rows(&packages),
        ["hello|1|0.0.1-rls|x86_64|hello-0.0.1-rls.src.rpm|(none)"]
    );
    assert_eq!(packages[0].full_version(), "1:0.0.1-rls");
    if have_rpm("shared_packages_with_an_epoch_matches_rpm") {
        assert_eq!(rows(&packages), rpm_qa(&root, "/var/lib/rpm", "bdb_ro"));
    }
}

#[test]
fn berkeley_db_in_both_byte_orders_and_three_page_sizes_matches_rpm() {
    let test = "berkeley_db_in_both_byte_orders_and_three_page_sizes_matches_rpm";
    if !have_rpm(test) || !have_tool("db5.3_load", &["-V"], "db5.3-util", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The standard packages, a key, and 150 more so that buckets overflow onto chained pages.
    let mut specs = standard_specs();
    specs.push(Spec {
        name: "many",
        version: "1",
        release: "1",
        subpackages: (0..150).map(|i| format!("many-sub-{i}")).collect(),
        ..Spec::default()
    });
    let rpms = build_rpms(dir.path(), &specs);
    let source = dir.path().join("source");
    install(&source, "/var/lib/rpm", "sqlite", &rpms);
    import_key(dir.path(), &source, "/var/lib/rpm", test);
    let expected = without_keys(&rpm_qa(&source, "/var/lib/rpm", "sqlite"));
    assert_eq!(expected.len(), 156);
    let blobs = sqlite_blobs(&source);

    for big_endian in [false, true] {
        for page_size in [512, 4096, 65536] {
            let what = format!("big_endian={big_endian} page_size={page_size}");
            let root = dir.path().join(format!("bdb-{big_endian}-{page_size}"));
            let file = root.join("var/lib/rpm/Packages");
            db_load(&db_load_input(&blobs, big_endian, page_size), "hash", &file);
            let magic = &std::fs::read(&file).unwrap()[12..16];
            let want: [u8; 4] = if big_endian {
                [0x00, 0x06, 0x15, 0x61]
            } else {
                [0x61, 0x15, 0x06, 0x00]
            };
            assert_eq!(
                magic, want,
                "{what}: Berkeley DB wrote the other byte order"
            );
            let packages = read_packages(&root).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(rows(&packages), expected, "{what}");
            // rpm's own read-only Berkeley DB reader agrees about this very file.
            let oracle = without_keys(&rpm_qa(&root, "/var/lib/rpm", "bdb_ro"));
            assert_eq!(oracle, expected, "{what}: rpm's bdb_ro");
        }
    }
}

#[test]
fn a_btree_database_is_refused() {
    let test = "a_btree_database_is_refused";
    if !have_tool("db5.3_load", &["-V"], "db5.3-util", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("var/lib/rpm/Packages");
    db_load(
        "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 6b\n 76\nDATA=END\n",
        "btree",
        &file,
    );
    let err = read_packages(dir.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Bdb {
                source: BdbError::Btree,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn garbage_in_place_of_packages_is_an_error() {
    assert!(matches!(bdb_error(&[0x33; 8192]), BdbError::NotHash { .. }));
    assert!(matches!(
        bdb_error(&[0; 100]),
        BdbError::TooShort { len: 100 }
    ));
    let dir = tempfile::tempdir().unwrap();
    let err = read_packages(&root_with(dir.path(), &[0x33; 8192])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.ends_with(
            "var/lib/rpm/Packages (rpm Berkeley DB database): magic number 0x33333333 is not \
             that of a Berkeley DB hash database"
        ),
        "{msg}"
    );
}

/// The shared fixture's layout (little-endian, 4096-byte pages): page 1 holds bucket 0 with
/// the counter record and the package, whose header is an off-page item on page 4; page 2 is
/// bucket 1, empty; page 3 is free. The package is record 4.
const PAGE: usize = 4096;

fn set32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn set16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Where the package's off-page item is on page 1.
fn off_page_item(bytes: &[u8]) -> usize {
    let inp = |i: usize| u16::from_le_bytes([bytes[PAGE + 26 + 2 * i], bytes[PAGE + 27 + 2 * i]]);
    let at = PAGE + inp(3) as usize;
    assert_eq!(bytes[at], 3, "the fixture's layout changed");
    at
}

#[test]
fn meta_page_lies_are_refused() {
    let mut bytes = fixture();
    set32(&mut bytes, 16, 7);
    assert!(matches!(bdb_error(&bytes), BdbError::Version(7)));
    let mut bytes = fixture();
    set32(&mut bytes, 20, 1000);
    assert!(matches!(bdb_error(&bytes), BdbError::PageSize(1000)));
    let mut bytes = fixture();
    bytes[24] = 1;
    assert!(matches!(bdb_error(&bytes), BdbError::Encrypted));
    // More pages than the file holds: refused before any is read.
    let bytes = fixture();
    let err = bdb_error(&bytes[..3 * PAGE]);
    assert!(
        matches!(err, BdbError::LastPage { last: 4, pages: 3 }),
        "{err:?}"
    );
    // Four billion buckets: the walk stops at the first bucket whose page was seen before.
    let mut bytes = fixture();
    set32(&mut bytes, 72, u32::MAX);
    assert!(matches!(bdb_error(&bytes), BdbError::Revisit { .. }));
}

#[test]
fn a_bucket_chain_that_loops_is_an_error() {
    let mut bytes = fixture();
    set32(&mut bytes, PAGE + 16, 1);
    let err = bdb_error(&bytes);
    assert!(matches!(err, BdbError::Revisit { page: 1 }), "{err:?}");
}

#[test]
fn an_overflow_chain_that_loops_is_an_error() {
    let mut bytes = fixture();
    let item = off_page_item(&bytes);
    let len = u32::from_le_bytes(bytes[item + 8..item + 12].try_into().unwrap());
    set32(&mut bytes, item + 8, len + 100);
    set32(&mut bytes, 4 * PAGE + 16, 4);
    let err = bdb_error(&bytes);
    assert!(matches!(err, BdbError::Revisit { page: 4 }), "{err:?}");
}

#[test]
fn an_overflow_chain_that_ends_early_is_an_error() {
    let mut bytes = fixture();
    let item = off_page_item(&bytes);
    let len = u32::from_le_bytes(bytes[item + 8..item + 12].try_into().unwrap());
    set32(&mut bytes, item + 8, len + 100);
    let err = bdb_error(&bytes);
    assert!(
        err.to_string().contains("ends before the item's length"),
        "{err}"
    );
}

#[test]
fn an_off_page_item_pointing_at_the_wrong_page_is_an_error() {
    for (page, reason) in [
        (2, "not an overflow page"),
        (99, "outside the database"),
        (0, "ends before the item's length"),
    ] {
        let mut bytes = fixture();
        let item = off_page_item(&bytes);
        set32(&mut bytes, item + 4, page);
        let err = bdb_error(&bytes);
        assert!(err.to_string().contains(reason), "page {page}: {err}");
    }
}

#[test]
fn an_oversized_off_page_item_is_refused_before_allocating() {
    let mut bytes = fixture();
    let item = off_page_item(&bytes);
    set32(&mut bytes, item + 8, u32::MAX);
    let err = bdb_error(&bytes);
    assert!(
        matches!(err, BdbError::ValueTooLarge { record: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn page_header_lies_are_refused() {
    let mut bytes = fixture();
    set32(&mut bytes, PAGE + 8, 7);
    assert!(
        bdb_error(&bytes)
            .to_string()
            .contains("names a different page number")
    );
    let mut bytes = fixture();
    set16(&mut bytes, PAGE + 20, u16::MAX);
    assert!(
        bdb_error(&bytes)
            .to_string()
            .contains("item index runs past")
    );
    let mut bytes = fixture();
    set16(&mut bytes, PAGE + 26, 30);
    assert!(
        bdb_error(&bytes)
            .to_string()
            .contains("item offsets overlap")
    );
    let mut bytes = fixture();
    bytes[PAGE + 25] = 5;
    assert!(bdb_error(&bytes).to_string().contains("not a hash page"));
}

#[test]
fn the_header_size_limit_applies_to_berkeley_db_values() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), &fixture());
    let db = rpm::locate(&HostRoot::new(&root).unwrap()).unwrap();
    let small = Limits {
        max_header_bytes: 1000,
        ..Limits::default()
    };
    let err = read_database(&db, &small).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Bdb {
                source: BdbError::ValueTooLarge { limit: 1000, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

/// Random damage to the real file, concentrated on its page headers and items: every read
/// ends in packages or an error, never a panic or a hang.
#[test]
fn random_corruption_never_panics() {
    let original = fixture();
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), &original);
    let path = root.join("var/lib/rpm/Packages");
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut failed = 0;
    for _ in 0..2000 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(3) {
            let page = rng.below(original.len() / PAGE);
            let at = page * PAGE
                + if rng.below(2) == 0 {
                    rng.below(64)
                } else {
                    rng.below(PAGE)
                };
            bytes[at] = rng.next() as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        if read_packages(&root).is_err() {
            failed += 1;
        }
    }
    assert!(failed > 0);
}
