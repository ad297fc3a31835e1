//! The header blob parser on real headers (the shared Berkeley DB fixture's, written by rpm,
//! and the 35 of the SUSE NDB fixture), on those headers with each structural field made to
//! lie, on small headers built here to pin one rule each, and on thousands of random
//! corruptions: every bad blob is a typed error, never a panic.

mod rpm_support;

use patchwarden_agent::inventory::rpm::{
    self, HeaderError, Limits, parse_header, split_source_rpm,
};
use patchwarden_agent::root::HostRoot;
use patchwarden_core::inventory::{Manager, Package, PackageStatus};
use rpm_support::*;

/// The header blobs of the database under `root`.
fn blobs_under(root: &std::path::Path) -> Vec<Vec<u8>> {
    let db = rpm::locate(&HostRoot::new(root).unwrap()).unwrap();
    let mut blobs = Vec::new();
    rpm::for_each_header(&db, &Limits::default(), |_, blob| blobs.push(blob.to_vec())).unwrap();
    blobs
}

/// The one header of the shared Berkeley DB fixture: `hello-1:0.0.1-rls.x86_64`.
fn real_blob() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
    std::fs::copy(
        shared_data().join("inventories/rpm/scalibr-Packages_epoch.bdb"),
        dir.path().join("var/lib/rpm/Packages"),
    )
    .unwrap();
    let mut blobs = blobs_under(dir.path());
    assert_eq!(blobs.len(), 1);
    blobs.remove(0)
}

/// The 35 headers of the SUSE NDB fixture.
fn suse_blobs() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
    std::fs::copy(
        test_data("rpm/sle15-bci-Packages.db"),
        dir.path().join("var/lib/rpm/Packages.db"),
    )
    .unwrap();
    blobs_under(dir.path())
}

fn be32(blob: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(blob[at..at + 4].try_into().unwrap())
}

fn put32(blob: &mut [u8], at: usize, value: u32) {
    blob[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Field offsets inside a blob: entry `i`'s tag, type, offset and count, and the data start.
fn entry_at(i: usize) -> usize {
    8 + 16 * i
}
const TAG: usize = 0;
const TYPE: usize = 4;
const OFFSET: usize = 8;
const COUNT: usize = 12;

fn data_start(blob: &[u8]) -> usize {
    8 + 16 * be32(blob, 0) as usize
}

/// The index of the first entry with `tag`.
fn find_entry(blob: &[u8], tag: u32) -> usize {
    (0..be32(blob, 0) as usize)
        .find(|&i| be32(blob, entry_at(i) + TAG) == tag)
        .unwrap()
}

fn err(blob: &[u8]) -> HeaderError {
    parse_header(blob).expect_err("a bad header was accepted")
}

/// Asserts that `blob` fails with a `BadEntry` or `BadRegion` whose reason contains `reason`.
#[track_caller]
fn fails_with(blob: &[u8], reason: &str) {
    let e = err(blob);
    assert!(
        matches!(
            e,
            HeaderError::BadEntry { .. } | HeaderError::BadRegion { .. }
        ) && e.to_string().contains(reason),
        "wanted {reason:?}, got {e}"
    );
}

#[test]
fn a_real_header_written_by_rpm() {
    let package = parse_header(&real_blob()).unwrap().unwrap();
    assert_eq!(
        package,
        Package {
            manager: Manager::Rpm,
            name: "hello".into(),
            version: "0.0.1-rls".into(),
            arch: Some("x86_64".into()),
            source_name: Some("hello".into()),
            source_version: Some("0.0.1-rls".into()),
            epoch: Some(1),
            module: None,
            status: PackageStatus::Installed,
        }
    );
}

#[test]
fn every_truncation_is_an_error() {
    for blob in std::iter::once(real_blob()).chain(suse_blobs().into_iter().take(3)) {
        for len in 0..blob.len() {
            let e = err(&blob[..len]);
            if len < 8 {
                assert_eq!(e, HeaderError::TooShort { len });
            } else {
                assert!(matches!(e, HeaderError::SizeMismatch { .. }), "{len}: {e}");
            }
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(matches!(err(&longer), HeaderError::SizeMismatch { .. }));
    }
}

#[test]
fn counts_that_point_past_the_blob_are_refused_without_allocating() {
    let blob = real_blob();
    let il = be32(&blob, 0);
    let mut b = blob.clone();
    put32(&mut b, 0, il + 1000);
    let e = err(&b);
    assert!(matches!(e, HeaderError::SizeMismatch { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("declares {} index entries", il + 1000)),
        "{e}"
    );
    let mut b = blob.clone();
    put32(&mut b, 0, 0);
    assert_eq!(err(&b), HeaderError::BadEntryCount { il: 0 });
    let mut b = blob.clone();
    put32(&mut b, 0, 0x1_0000);
    assert_eq!(err(&b), HeaderError::BadEntryCount { il: 0x1_0000 });
    let mut b = blob.clone();
    put32(&mut b, 4, 0x1000_0000);
    assert_eq!(err(&b), HeaderError::BadDataLength { dl: 0x1000_0000 });
    // The largest counts rpm allows, in a blob of a dozen bytes.
    let tiny = [0, 0, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 1, 2, 3, 4];
    assert!(matches!(err(&tiny), HeaderError::SizeMismatch { .. }));
}

#[test]
fn region_tag_lies_are_refused() {
    let blob = real_blob();
    assert_eq!(
        be32(&blob, entry_at(0) + TAG),
        63,
        "the fixture starts with HEADERIMMUTABLE"
    );
    let dl = be32(&blob, 4);
    let trailer = data_start(&blob) + be32(&blob, entry_at(0) + OFFSET) as usize;
    let il = be32(&blob, 0);

    let mut b = blob.clone();
    put32(&mut b, entry_at(0) + OFFSET, dl - 8);
    fails_with(&b, "trailer lies outside the data");
    let mut b = blob.clone();
    put32(&mut b, entry_at(0) + OFFSET, 0x8000_0000);
    fails_with(&b, "trailer's offset is negative");
    let mut b = blob.clone();
    put32(&mut b, entry_at(0) + TYPE, 6);
    fails_with(&b, "must be binary with a count of 16");
    let mut b = blob.clone();
    put32(&mut b, entry_at(0) + COUNT, 17);
    fails_with(&b, "must be binary with a count of 16");
    let mut b = blob.clone();
    put32(&mut b, trailer + TAG, 62);
    fails_with(&b, "does not repeat the region tag");
    let mut b = blob.clone();
    put32(&mut b, trailer + OFFSET, (-16 * (i64::from(il) + 1)) as u32);
    fails_with(&b, "claims more entries than the header has");
    let mut b = blob.clone();
    put32(&mut b, trailer + OFFSET, (-20i32) as u32);
    fails_with(&b, "not a positive multiple of 16");
    let mut b = blob.clone();
    put32(&mut b, trailer + OFFSET, 16);
    fails_with(&b, "not a positive multiple of 16");
    // The region's last entry moved onto the trailer.
    let mut entries = nevra("pkg");
    entries.push((1004, 7, 4, vec![1, 2, 3, 4]));
    let mut b = Builder::regioned(entries).build();
    let last = be32(&b, 0) as usize - 1;
    let at = be32(&b, entry_at(last) + OFFSET);
    put32(&mut b, entry_at(last) + OFFSET, at + 4);
    fails_with(&b, "overlaps the region trailer");
}

#[test]
fn index_entry_lies_are_refused() {
    let blob = real_blob();
    let dl = be32(&blob, 4);
    let name = find_entry(&blob, 1000);
    let epoch = find_entry(&blob, 1003);
    assert_eq!(be32(&blob, entry_at(epoch) + TYPE), 4, "EPOCH is INT32");

    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + TYPE, 0);
    fails_with(&b, "unknown data type");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + TYPE, 10);
    fails_with(&b, "unknown data type");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + COUNT, 0);
    fails_with(&b, "count is zero or larger than the data");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + COUNT, dl + 1);
    fails_with(&b, "count is zero or larger than the data");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + COUNT, 2);
    fails_with(&b, "data runs past the end");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + TAG, 50);
    fails_with(&b, "reserved for regions");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + OFFSET, u32::MAX);
    fails_with(&b, "negative data offset");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + OFFSET, dl + 1);
    fails_with(&b, "offset lies outside the data");
    let mut b = blob.clone();
    let at = be32(&blob, entry_at(epoch) + OFFSET);
    put32(&mut b, entry_at(epoch) + OFFSET, at + 1);
    fails_with(&b, "not aligned");
    let mut b = blob.clone();
    let previous = be32(&blob, entry_at(name - 1) + OFFSET);
    put32(&mut b, entry_at(name) + OFFSET, previous);
    fails_with(&b, "overlaps the previous entry");
    let mut b = blob.clone();
    put32(&mut b, entry_at(name) + COUNT, 0x10_0000);
    put32(&mut b, entry_at(name) + TYPE, 8);
    fails_with(&b, "count is zero or larger than the data");
}

/// A header built from `(tag, type, count, data)` entries, laid out as rpm lays them out:
/// each entry's data aligned for its type, an optional HEADERIMMUTABLE region around the
/// first list, and "dribble" entries after the region trailer.
struct Builder {
    region: Vec<(u32, u32, u32, Vec<u8>)>,
    dribbles: Vec<(u32, u32, u32, Vec<u8>)>,
    with_region: bool,
}

fn s(tag: u32, value: &str) -> (u32, u32, u32, Vec<u8>) {
    let mut data = value.as_bytes().to_vec();
    data.push(0);
    (tag, 6, 1, data)
}

fn i32_tag(tag: u32, value: u32) -> (u32, u32, u32, Vec<u8>) {
    (tag, 4, 1, value.to_be_bytes().to_vec())
}

fn nevra(name: &str) -> Vec<(u32, u32, u32, Vec<u8>)> {
    vec![
        s(1000, name),
        s(1001, "1.0"),
        s(1002, "2.el9"),
        s(1022, "aarch64"),
        s(1044, "source-name-1.0-2.el9.src.rpm"),
    ]
}

impl Builder {
    fn legacy(entries: Vec<(u32, u32, u32, Vec<u8>)>) -> Builder {
        Builder {
            region: entries,
            dribbles: Vec::new(),
            with_region: false,
        }
    }

    fn regioned(entries: Vec<(u32, u32, u32, Vec<u8>)>) -> Builder {
        Builder {
            region: entries,
            dribbles: Vec::new(),
            with_region: true,
        }
    }

    fn build(&self) -> Vec<u8> {
        fn place(
            entries: &[(u32, u32, u32, Vec<u8>)],
            index: &mut Vec<[u32; 4]>,
            data: &mut Vec<u8>,
        ) {
            for (tag, kind, count, bytes) in entries {
                let align = match kind {
                    3 => 2,
                    4 => 4,
                    5 => 8,
                    _ => 1,
                };
                while !data.len().is_multiple_of(align) {
                    data.push(0);
                }
                index.push([*tag, *kind, data.len() as u32, *count]);
                data.extend_from_slice(bytes);
            }
        }
        let mut index: Vec<[u32; 4]> = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        if self.with_region {
            index.push([63, 7, 0, 16]);
            place(&self.region, &mut index, &mut data);
            let ril = index.len() as i32;
            index[0][2] = data.len() as u32;
            for word in [63, 7, (-16 * ril) as u32, 16] {
                data.extend_from_slice(&word.to_be_bytes());
            }
            place(&self.dribbles, &mut index, &mut data);
        } else {
            place(&self.region, &mut index, &mut data);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(index.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        for entry in &index {
            for word in entry {
                blob.extend_from_slice(&word.to_be_bytes());
            }
        }
        blob.extend_from_slice(&data);
        blob
    }
}

#[test]
fn built_headers_with_and_without_a_region_parse_alike() {
    let mut entries = nevra("pkg");
    entries.push(i32_tag(1003, 7));
    entries.push(s(5096, "perl:5.32:8040020210101:abcd1234"));
    for builder in [Builder::legacy(entries.clone()), Builder::regioned(entries)] {
        let p = parse_header(&builder.build()).unwrap().unwrap();
        assert_eq!(
            (
                p.name.as_str(),
                p.version.as_str(),
                p.epoch,
                p.arch.as_deref()
            ),
            ("pkg", "1.0-2.el9", Some(7), Some("aarch64"))
        );
        assert_eq!(p.source_name.as_deref(), Some("source-name"));
        assert_eq!(p.source_version.as_deref(), Some("1.0-2.el9"));
        assert_eq!(
            p.module.as_deref(),
            Some("perl:5.32:8040020210101:abcd1234")
        );
    }
}

#[test]
fn dribble_entries_replace_region_entries() {
    let mut b = Builder::regioned(nevra("pkg"));
    b.dribbles.push(s(1002, "3.el9"));
    let p = parse_header(&b.build()).unwrap().unwrap();
    assert_eq!(p.version, "1.0-3.el9");
}

#[test]
fn gpg_pubkey_is_not_a_package() {
    let key = vec![
        s(1000, "gpg-pubkey"),
        s(1001, "fd431d51"),
        s(1002, "4ae0493b"),
    ];
    assert_eq!(parse_header(&Builder::regioned(key).build()), Ok(None));
}

#[test]
fn missing_or_mistyped_tags_are_named() {
    for (tag, name) in [(1000, "NAME"), (1001, "VERSION"), (1002, "RELEASE")] {
        let entries = nevra("pkg").into_iter().filter(|e| e.0 != tag).collect();
        assert_eq!(
            err(&Builder::legacy(entries).build()),
            HeaderError::MissingTag { tag, name }
        );
    }
    let mut entries = nevra("pkg");
    entries.push(s(1003, "7"));
    let e = err(&Builder::legacy(entries).build());
    assert!(matches!(e, HeaderError::WrongType { tag: 1003, .. }), "{e}");
    let mut entries = nevra("pkg");
    entries[0] = i32_tag(1000, 1);
    let e = err(&Builder::regioned(entries).build());
    assert!(matches!(e, HeaderError::WrongType { tag: 1000, .. }), "{e}");
    let mut entries = nevra("pkg");
    entries[1] = s(1001, "");
    assert_eq!(
        err(&Builder::legacy(entries).build()),
        HeaderError::Empty {
            tag: 1001,
            name: "VERSION"
        }
    );
    let mut entries = nevra("pkg");
    entries[0] = (1000, 6, 1, vec![b'p', 0xff, b'g', 0]);
    assert_eq!(
        err(&Builder::legacy(entries).build()),
        HeaderError::NotUtf8 {
            tag: 1000,
            name: "NAME"
        }
    );
}

#[test]
fn string_class_types_are_all_accepted_for_string_tags() {
    // rpm lets string tags disagree on the exact string type (STRING_ARRAY, I18NSTRING).
    let mut entries = nevra("pkg");
    entries[0] = (1000, 9, 1, b"pkg\0".to_vec());
    entries[3] = (1022, 8, 2, b"noarch\0extra\0".to_vec());
    let p = parse_header(&Builder::regioned(entries).build())
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.name.as_str(), p.arch.as_deref()),
        ("pkg", Some("noarch"))
    );
}

#[test]
fn source_rpm_names() {
    let mut entries = nevra("pkg");
    entries[4] = s(1044, "not-a-source.rpm");
    assert_eq!(
        err(&Builder::legacy(entries).build()),
        HeaderError::BadSourceRpm("not-a-source.rpm".into())
    );
    // No SOURCERPM (a source package's own header): no source to report.
    let entries = nevra("pkg").into_iter().filter(|e| e.0 != 1044).collect();
    let p = parse_header(&Builder::legacy(entries).build())
        .unwrap()
        .unwrap();
    assert_eq!((p.source_name, p.source_version), (None, None));

    for (file, want) in [
        (
            "openssl-3.0.7-24.el9.src.rpm",
            Some(("openssl", "3.0.7-24.el9")),
        ),
        (
            "python3-foo-bar-2.0~rc1-1.fc40.src.rpm",
            Some(("python3-foo-bar", "2.0~rc1-1.fc40")),
        ),
        (
            "gcc11-11.2.1+git610-1.3.9.src.rpm",
            Some(("gcc11", "11.2.1+git610-1.3.9")),
        ),
        ("firmware-1-1.nosrc.rpm", Some(("firmware", "1-1"))),
        ("openssl-3.0.7.src.rpm", None),
        ("-1-2.src.rpm", None),
        ("openssl-3.0.7-24.el9.rpm", None),
        ("", None),
    ] {
        assert_eq!(split_source_rpm(file), want, "{file}");
    }
}

#[test]
fn data_that_does_not_add_up_is_refused() {
    // Four unused bytes between an INT32 and the string after it.
    let mut b = Builder::legacy(nevra("pkg")).build();
    let mut entries = nevra("pkg");
    entries.insert(0, (1003, 4, 1, vec![0, 0, 0, 7, 0, 0, 0, 0]));
    let with_gap = Builder::legacy(entries).build();
    assert!(matches!(
        err(&with_gap),
        HeaderError::DataLengthMismatch { .. }
    ));
    // The last string (SOURCERPM) without its terminator runs off the end.
    let end = b.len() - 1;
    b[end] = b'x';
    fails_with(&b, "data runs past the end");
}

#[test]
fn the_suse_headers_parse_and_agree_with_the_database_reader() {
    let blobs = suse_blobs();
    assert_eq!(blobs.len(), 35);
    for blob in &blobs {
        let p = parse_header(blob).unwrap().unwrap();
        assert!(p.source_name.is_some() && p.arch.is_some(), "{p:?}");
    }
}

/// Values that make arithmetic and bounds checks work hardest.
const NASTY: [u32; 10] = [
    0,
    1,
    15,
    16,
    17,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff0,
    0xffff_ffff,
    0x0fff_ffff,
];

/// Thousands of random corruptions of real headers (rpm's and the eight smallest SUSE ones, to
/// keep the test quick), aimed mostly at the index where the offsets and counts live: every
/// one is parsed to a result, never a panic (overflow checks are on in test builds, so an
/// unchecked sum would panic here too).
#[test]
fn random_corruption_never_panics() {
    let mut blobs = suse_blobs();
    blobs.sort_by_key(Vec::len);
    blobs.truncate(8);
    blobs.push(real_blob());
    let mut rng = XorShift(0xdead_beef_cafe_f00d);
    let (mut ok, mut failed) = (0usize, 0usize);
    for blob in &blobs {
        let index_end = data_start(blob);
        for _ in 0..2500 {
            let mut b = blob.clone();
            match rng.below(4) {
                // A word of the index (or the intro) replaced by a nasty or random value.
                0 | 1 => {
                    let at = rng.below(index_end / 4) * 4;
                    let value = if rng.below(2) == 0 {
                        NASTY[rng.below(NASTY.len())]
                    } else {
                        rng.next() as u32
                    };
                    put32(&mut b, at, value);
                }
                // A few random bytes anywhere.
                2 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(b.len());
                        b[at] = rng.next() as u8;
                    }
                }
                // A small data offset nudge, which keeps most checks passing.
                _ => {
                    let i = rng.below(be32(blob, 0) as usize);
                    let at = entry_at(i) + OFFSET;
                    let nudged = be32(&b, at)
                        .wrapping_add(rng.below(9) as u32)
                        .wrapping_sub(4);
                    put32(&mut b, at, nudged);
                }
            }
            match parse_header(&b) {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
    }
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
}
