//! The rpm header blob: the binary record every rpm database backend stores per installed
//! package, parsed from bytes with the same structural checks rpm's `hdrblobInit` and
//! `hdrblobImport` make (`lib/header.cc`), so that a blob rpm would refuse is refused here too.
//!
//! A blob is two big-endian counts (`il` index entries, `dl` data bytes), `il` index entries of
//! 16 bytes (tag, type, offset, count) and `dl` bytes of data. Installed headers start with a
//! *region* entry (`HEADERIMMUTABLE`, tag 63) whose trailer, stored in the data, says how many
//! of the entries belong to the signed, immutable part; entries after it are "dribbles" that
//! rpm added at install time, and they replace region entries with the same tag. Every offset
//! and count comes from the file, so each one is checked before it is used: a hostile blob
//! gives a [`HeaderError`], never a panic, an out-of-bounds read or a large allocation.

use patchwarden_core::inventory::{Manager, Package, PackageStatus};

/// The largest header blob we accept: 64 MiB. rpm's own ceiling is 256 MiB (`headerMaxbytes`),
/// which only packages with hundreds of thousands of files approach; the largest real headers
/// (kernel sources, texlive collections) are a few MiB, so 64 MiB leaves ample room while
/// keeping one hostile record from claiming a quarter of a gigabyte.
pub const MAX_HEADER_BYTES: usize = 64 * 1024 * 1024;

/// rpm's `HEADER_TAGS_MAX`: at most 65,535 index entries.
const MAX_INDEX_ENTRIES: u32 = 0x0000_ffff;
/// rpm's `HEADER_DATA_MAX`: at most 256 MiB − 1 of data.
const MAX_DATA_BYTES: u32 = 0x0fff_ffff;
/// rpm's `HEADER_ARRAY_MAX`: arrays (other than binary blobs) hold at most about a million
/// elements.
const MAX_ARRAY_COUNT: u32 = 0x000f_ffff;
/// Size of one index entry, and the `count` a region tag must carry (`REGION_TAG_COUNT`).
const ENTRY_BYTES: usize = 16;

/// Tags below this are reserved for regions (`HEADER_I18NTABLE`); ordinary entries never use
/// them.
const TAG_I18NTABLE: u32 = 100;
const TAG_HEADERIMAGE: u32 = 61;
const TAG_HEADERSIGNATURES: u32 = 62;
const TAG_HEADERIMMUTABLE: u32 = 63;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_MODULARITYLABEL: u32 = 5096;

const TYPE_CHAR: u32 = 1;
const TYPE_INT8: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_INT32: u32 = 4;
const TYPE_INT64: u32 = 5;
const TYPE_STRING: u32 = 6;
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// What is wrong with a header blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(
        "header blob is {len} bytes, too short for its 8-byte intro (entry count, data length)"
    )]
    TooShort { len: usize },
    #[error("header blob is {len} bytes, over the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("header declares {il} index entries; rpm allows 1 to 65535")]
    BadEntryCount { il: u32 },
    #[error("header declares {dl} data bytes; rpm allows at most 268435455")]
    BadDataLength { dl: u32 },
    #[error(
        "header declares {il} index entries and {dl} data bytes, which take {expected} bytes, \
         but the blob has {actual}"
    )]
    SizeMismatch {
        il: u32,
        dl: u32,
        expected: u64,
        actual: usize,
    },
    #[error("region tag {tag}: {reason}")]
    BadRegion { tag: u32, reason: &'static str },
    #[error(
        "index entry {index} (tag {tag}, type {kind}, offset {offset}, count {count}): {reason}"
    )]
    BadEntry {
        index: u32,
        tag: u32,
        kind: u32,
        offset: i32,
        count: u32,
        reason: &'static str,
    },
    #[error("the entries' data add up to {sum} bytes, but the header declares {dl}")]
    DataLengthMismatch { sum: u64, dl: u32 },
    #[error("the header has no {name} tag ({tag})")]
    MissingTag { tag: u32, name: &'static str },
    #[error("tag {name} ({tag}) has type {kind}; rpm stores it as {expected}")]
    WrongType {
        tag: u32,
        name: &'static str,
        kind: u32,
        expected: &'static str,
    },
    #[error("tag {name} ({tag}) is not UTF-8")]
    NotUtf8 { tag: u32, name: &'static str },
    #[error("tag {name} ({tag}) is empty")]
    Empty { tag: u32, name: &'static str },
    #[error("source rpm {0:?} is not of the form name-version-release.src.rpm")]
    BadSourceRpm(String),
}

/// One index entry, converted from its big-endian on-disk form.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: i32,
    count: u32,
}

impl Entry {
    fn decode(raw: &[u8; ENTRY_BYTES]) -> Entry {
        let [
            t0,
            t1,
            t2,
            t3,
            k0,
            k1,
            k2,
            k3,
            o0,
            o1,
            o2,
            o3,
            c0,
            c1,
            c2,
            c3,
        ] = *raw;
        Entry {
            tag: u32::from_be_bytes([t0, t1, t2, t3]),
            kind: u32::from_be_bytes([k0, k1, k2, k3]),
            offset: i32::from_be_bytes([o0, o1, o2, o3]),
            count: u32::from_be_bytes([c0, c1, c2, c3]),
        }
    }

    fn bad(&self, index: usize, reason: &'static str) -> HeaderError {
        HeaderError::BadEntry {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            tag: self.tag,
            kind: self.kind,
            offset: self.offset,
            count: self.count,
            reason,
        }
    }
}

/// The size of one element of a fixed-size type, or `None` for the string types, whose
/// length is found by looking for their NUL terminators (rpm's `typeSizes`).
fn type_size(kind: u32) -> Option<u64> {
    match kind {
        TYPE_CHAR | TYPE_INT8 | TYPE_BIN => Some(1),
        TYPE_INT16 => Some(2),
        TYPE_INT32 => Some(4),
        TYPE_INT64 => Some(8),
        _ => None,
    }
}

fn is_string_type(kind: u32) -> bool {
    matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING)
}

/// The padding rpm inserts before data of `kind` that would start at `at` (`alignDiff`).
fn align_pad(kind: u32, at: u64) -> u64 {
    match type_size(kind) {
        Some(size) if size > 1 => (size - at % size) % size,
        _ => 0,
    }
}

/// The number of bytes an entry's data occupies, starting at the first byte of `rest` (the
/// data store from the entry's offset to its end): rpm's `dataLength` for on-disk data.
/// `None` when the data would run past the end of the store.
fn data_length(kind: u32, count: u32, rest: &[u8]) -> Option<u64> {
    match kind {
        TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING => {
            if kind == TYPE_STRING && count != 1 {
                return None;
            }
            // `count` consecutive NUL-terminated strings; `count` is at most the data length
            // (checked by the caller), so this loop is bounded by the data it walks.
            let mut used = 0usize;
            for _ in 0..count {
                let tail = rest.get(used..)?;
                let nul = tail.iter().position(|&b| b == 0)?;
                used += nul + 1;
            }
            u64::try_from(used).ok()
        }
        _ => {
            let length = type_size(kind)? * u64::from(count);
            (length <= rest.len() as u64).then_some(length)
        }
    }
}

/// A structurally valid header blob: its index and data store, ready for tag lookups.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    entries: &'a [[u8; ENTRY_BYTES]],
    data: &'a [u8],
}

impl<'a> Header<'a> {
    /// Checks a blob as rpm does before it trusts any offset in it.
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        if blob.len() > MAX_HEADER_BYTES {
            return Err(HeaderError::TooLarge {
                len: blob.len(),
                limit: MAX_HEADER_BYTES,
            });
        }
        let Some((intro, rest)) = blob.split_first_chunk::<8>() else {
            return Err(HeaderError::TooShort { len: blob.len() });
        };
        let [a0, a1, a2, a3, b0, b1, b2, b3] = *intro;
        let il = u32::from_be_bytes([a0, a1, a2, a3]);
        let dl = u32::from_be_bytes([b0, b1, b2, b3]);
        if il == 0 || il > MAX_INDEX_ENTRIES {
            return Err(HeaderError::BadEntryCount { il });
        }
        if dl > MAX_DATA_BYTES {
            return Err(HeaderError::BadDataLength { dl });
        }
        let expected = 8 + u64::from(il) * ENTRY_BYTES as u64 + u64::from(dl);
        if expected != blob.len() as u64 {
            return Err(HeaderError::SizeMismatch {
                il,
                dl,
                expected,
                actual: blob.len(),
            });
        }
        // The sizes agree, so the index is exactly `il` whole entries and the rest is data.
        let mismatch = HeaderError::SizeMismatch {
            il,
            dl,
            expected,
            actual: blob.len(),
        };
        let Some((index, data)) = rest.split_at_checked(il as usize * ENTRY_BYTES) else {
            return Err(mismatch);
        };
        let (entries, []) = index.as_chunks::<ENTRY_BYTES>() else {
            return Err(mismatch);
        };
        let header = Header { entries, data };
        let region = header.verify_region()?;
        header.verify_entries(region)?;
        header.verify_data_sum(region)?;
        Ok(header)
    }

    fn entry(&self, index: usize) -> Option<Entry> {
        self.entries.get(index).map(Entry::decode)
    }

    fn dl(&self) -> u64 {
        self.data.len() as u64
    }

    /// rpm's `hdrblobVerifyRegion`: when the first entry is a region tag, its trailer must sit
    /// inside the data, name the same region, and describe a region that fits the header.
    fn verify_region(&self) -> Result<Option<Region>, HeaderError> {
        let Some(first) = self.entry(0) else {
            return Err(HeaderError::BadEntryCount { il: 0 });
        };
        let tag = first.tag;
        if !matches!(
            tag,
            TAG_HEADERIMAGE | TAG_HEADERSIGNATURES | TAG_HEADERIMMUTABLE
        ) {
            // A header without a region (rpm v3 and older): every entry is checked alike.
            return Ok(None);
        }
        let bad = |reason| HeaderError::BadRegion { tag, reason };
        if first.kind != TYPE_BIN || first.count != ENTRY_BYTES as u32 {
            return Err(bad("the region entry must be binary with a count of 16"));
        }
        let trailer_at = u64::try_from(first.offset)
            .map_err(|_| bad("the region trailer's offset is negative"))?;
        let rdl = trailer_at + ENTRY_BYTES as u64;
        if rdl > self.dl() {
            return Err(bad("the region trailer lies outside the data"));
        }
        let trailer = self
            .data
            .get(trailer_at as usize..rdl as usize)
            .and_then(|bytes| bytes.first_chunk::<ENTRY_BYTES>())
            .map(Entry::decode)
            .ok_or_else(|| bad("the region trailer lies outside the data"))?;
        let mut trailer_tag = trailer.tag;
        // Some old packages name HEADERIMAGE in their signature region's trailer; rpm accepts
        // that, and so do we.
        if tag == TAG_HEADERSIGNATURES && trailer_tag == TAG_HEADERIMAGE {
            trailer_tag = TAG_HEADERSIGNATURES;
        }
        if trailer_tag != tag || trailer.kind != TYPE_BIN || trailer.count != ENTRY_BYTES as u32 {
            return Err(bad(
                "the region trailer does not repeat the region tag, binary type and count 16",
            ));
        }
        // The trailer's offset is the negated size of the region's index.
        let region_index_bytes = -i64::from(trailer.offset);
        if region_index_bytes <= 0 || region_index_bytes % ENTRY_BYTES as i64 != 0 {
            return Err(bad(
                "the region trailer's size is not a positive multiple of 16",
            ));
        }
        let ril = (region_index_bytes / ENTRY_BYTES as i64) as u64;
        if ril > self.entries.len() as u64 {
            return Err(bad("the region claims more entries than the header has"));
        }
        // rpm's import uses the trailer's entry count only when the region entry's offset is
        // non-zero (a zero offset marks an upgraded v3 header whose region is the whole index).
        let ril = if first.offset != 0 {
            ril as usize
        } else {
            self.entries.len()
        };
        Ok(Some(Region { ril, rdl }))
    }

    /// rpm's `hdrblobVerifyInfo`: every entry after the region tag has a known type, a sane
    /// count, an aligned offset inside the data, data that fits, does not overlap the entry
    /// before it, and does not overlap the region trailer.
    fn verify_entries(&self, region: Option<Region>) -> Result<(), HeaderError> {
        let dl = self.dl();
        let first = usize::from(region.is_some());
        let mut end = 0u64;
        for index in first..self.entries.len() {
            let Some(e) = self.entry(index) else { break };
            let offset =
                u64::try_from(e.offset).map_err(|_| e.bad(index, "negative data offset"))?;
            if end > offset {
                return Err(e.bad(index, "its data overlaps the previous entry's"));
            }
            if e.tag < TAG_I18NTABLE {
                return Err(e.bad(index, "tags below 100 are reserved for regions"));
            }
            if !(TYPE_CHAR..=TYPE_I18NSTRING).contains(&e.kind) {
                return Err(e.bad(index, "unknown data type"));
            }
            if e.count == 0 || u64::from(e.count) > dl {
                return Err(e.bad(index, "count is zero or larger than the data"));
            }
            if align_pad(e.kind, offset) != 0 {
                return Err(e.bad(index, "offset is not aligned for the data type"));
            }
            if offset > dl {
                return Err(e.bad(index, "offset lies outside the data"));
            }
            if e.kind != TYPE_BIN && e.count > MAX_ARRAY_COUNT {
                return Err(e.bad(index, "array has more than 1048575 elements"));
            }
            let rest = self.data.get(offset as usize..).unwrap_or_default();
            let len = data_length(e.kind, e.count, rest)
                .ok_or_else(|| e.bad(index, "data runs past the end of the header"))?;
            end = offset + len;
            if len == 0 || end > dl {
                return Err(e.bad(index, "data runs past the end of the header"));
            }
            if let Some(r) = region
                && end > r.rdl - ENTRY_BYTES as u64
                && offset < r.rdl
            {
                return Err(e.bad(index, "data overlaps the region trailer"));
            }
        }
        Ok(())
    }

    /// rpm's `hdrblobImport` (in the "fast" mode the database code uses) adds up the entries'
    /// data, with alignment, and refuses a header whose sum differs from its declared data
    /// length: the data must hold exactly the entries and nothing else.
    fn verify_data_sum(&self, region: Option<Region>) -> Result<(), HeaderError> {
        let mut sum = 0u64;
        let groups: [(usize, usize); 2] = match region {
            Some(r) => [(1, r.ril), (r.ril, self.entries.len())],
            None => [(0, self.entries.len()), (0, 0)],
        };
        for (start, stop) in groups {
            for index in start..stop {
                let Some(e) = self.entry(index) else { break };
                sum += align_pad(e.kind, sum);
                // In fast mode a string's length is the distance to the next entry of the same
                // group; the last one's is measured. Both were bounds-checked above.
                let next = (index + 1 < stop).then(|| self.entry(index + 1)).flatten();
                let offset = u64::try_from(e.offset).unwrap_or(u64::MAX);
                let len = match next {
                    Some(n) if is_string_type(e.kind) => {
                        u64::try_from(n.offset).unwrap_or(0).saturating_sub(offset)
                    }
                    _ => {
                        let rest = self.data.get(offset as usize..).unwrap_or_default();
                        data_length(e.kind, e.count, rest).unwrap_or(0)
                    }
                };
                sum += len;
            }
        }
        if region.is_some() {
            sum += ENTRY_BYTES as u64;
        }
        if sum != self.dl() {
            return Err(HeaderError::DataLengthMismatch {
                sum,
                dl: self.data.len() as u32,
            });
        }
        Ok(())
    }

    /// The last entry with `tag`: dribble entries, which follow the region, replace the
    /// region's entries of the same tag, as rpm's import does.
    fn find(&self, tag: u32) -> Option<Entry> {
        self.entries
            .iter()
            .rev()
            .map(Entry::decode)
            .find(|e| e.tag == tag)
    }

    /// The first string of a string-class tag (rpm lets string tags disagree on the exact
    /// string type).
    pub(crate) fn string(
        &self,
        tag: u32,
        name: &'static str,
    ) -> Result<Option<&'a str>, HeaderError> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        if !is_string_type(e.kind) {
            return Err(HeaderError::WrongType {
                tag,
                name,
                kind: e.kind,
                expected: "a string",
            });
        }
        // `verify_entries` proved the offset is inside the data and that a NUL follows.
        let rest = usize::try_from(e.offset)
            .ok()
            .and_then(|at| self.data.get(at..))
            .unwrap_or_default();
        let bytes = rest.split(|&b| b == 0).next().unwrap_or_default();
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| HeaderError::NotUtf8 { tag, name })
    }

    /// The first value of an INT32 tag.
    pub(crate) fn int32(&self, tag: u32, name: &'static str) -> Result<Option<u32>, HeaderError> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        if e.kind != TYPE_INT32 {
            return Err(HeaderError::WrongType {
                tag,
                name,
                kind: e.kind,
                expected: "a 32-bit integer",
            });
        }
        let value = usize::try_from(e.offset)
            .ok()
            .and_then(|at| self.data.get(at..))
            .and_then(|rest| rest.first_chunk::<4>())
            .map(|b| u32::from_be_bytes(*b));
        Ok(value)
    }
}

/// The immutable region: how many leading index entries it covers (`ril`, the region tag
/// included) and where its data ends (`rdl`, the trailer included).
#[derive(Debug, Clone, Copy)]
struct Region {
    ril: usize,
    rdl: u64,
}

/// A required, non-empty string tag.
fn required<'a>(header: &Header<'a>, tag: u32, name: &'static str) -> Result<&'a str, HeaderError> {
    match header.string(tag, name)? {
        None => Err(HeaderError::MissingTag { tag, name }),
        Some("") => Err(HeaderError::Empty { tag, name }),
        Some(s) => Ok(s),
    }
}

/// Splits a source rpm file name into the source package's name and its `version-release`:
/// `openssl-3.0.7-24.el9.src.rpm` → (`openssl`, `3.0.7-24.el9`). The name may itself contain
/// dashes; version and release cannot, so the last two dashes separate them.
pub fn split_source_rpm(file: &str) -> Option<(&str, &str)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name, stem.get(name.len() + 1..)?))
}

/// Parses one installed-package header blob into a [`Package`].
///
/// Returns `Ok(None)` for the `gpg-pubkey` pseudo-packages: rpm (before 4.20) stores every
/// imported signing key as a fake package named `gpg-pubkey`, with the key id as its version
/// and no architecture or source. They are keys, not software, so no advisory can name them
/// and the inventory leaves them out entirely.
pub fn parse_header(blob: &[u8]) -> Result<Option<Package>, HeaderError> {
    let header = Header::parse(blob)?;
    let name = required(&header, TAG_NAME, "NAME")?;
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let version = required(&header, TAG_VERSION, "VERSION")?;
    let release = required(&header, TAG_RELEASE, "RELEASE")?;
    let epoch = header.int32(TAG_EPOCH, "EPOCH")?;
    let arch = header
        .string(TAG_ARCH, "ARCH")?
        .filter(|a| !a.is_empty())
        .map(String::from);
    // Every binary package built by rpmbuild names its source rpm; only source packages (and
    // the gpg-pubkey keys above) lack one, and then there is no source to report.
    let (source_name, source_version) = match header.string(TAG_SOURCERPM, "SOURCERPM")? {
        None | Some("") => (None, None),
        Some(file) => {
            let (name, version) =
                split_source_rpm(file).ok_or_else(|| HeaderError::BadSourceRpm(file.into()))?;
            (Some(name.to_owned()), Some(version.to_owned()))
        }
    };
    let module = header
        .string(TAG_MODULARITYLABEL, "MODULARITYLABEL")?
        .filter(|m| !m.is_empty())
        .map(String::from);
    Ok(Some(Package {
        manager: Manager::Rpm,
        name: name.to_owned(),
        version: format!("{version}-{release}"),
        arch,
        source_name,
        source_version,
        epoch,
        module,
        status: PackageStatus::Installed,
    }))
}
