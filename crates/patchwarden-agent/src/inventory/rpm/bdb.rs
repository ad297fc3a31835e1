//! The Berkeley DB `Packages` database of rpm before 4.16 (RHEL/CentOS 5–8, Amazon Linux 2,
//! old Fedora and SUSE): a Berkeley DB *hash* file whose keys are 4-byte record numbers and
//! whose values are header blobs. Read without Berkeley DB, as rpm's own `bdb_ro` backend
//! does (`lib/backend/bdb_ro.cc`), so that a host that has moved on to SQLite, or an image
//! scanned from elsewhere, still yields its packages.
//!
//! The file is a sequence of pages. Page 0 is the hash meta page (magic, byte order, page
//! size, last page, bucket count and the `spares` table that maps buckets to pages). Each
//! bucket is a chain of hash pages holding key/value item pairs; a value too large for its
//! page is an "off-page" item that names a chain of overflow pages. The database is in the
//! byte order of the machine that wrote it, so both orders are read.
//!
//! Every page number comes from the file, so each one is checked against the last page, and
//! each page may be visited only once: a chain that loops or two chains that share a page are
//! a corrupt file, reported as such rather than walked forever.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// The hash database magic number, as read in the file's own byte order.
const HASH_MAGIC: u32 = 0x0006_1561;
/// The btree magic number: rpm's index files, never its `Packages`.
const BTREE_MAGIC: u32 = 0x0005_3162;
/// Page header size (`SIZEOF_PAGE`): items and overflow data start after it.
const PAGE_HEADER: usize = 26;
/// Page types (`P_*` in Berkeley DB's `db_page.h`).
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
/// Hash item types (`H_*`).
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
/// `DBMETA_CHKSUM`: pages carry checksums, which move the item index; rpm never sets it.
const META_CHECKSUM: u8 = 0x01;

/// What is wrong with a Berkeley DB `Packages` file.
#[derive(Debug, thiserror::Error)]
pub enum BdbError {
    #[error("the file is {len} bytes, too short for a Berkeley DB meta page (512 bytes)")]
    TooShort { len: u64 },
    #[error("magic number {magic:#010x} is not that of a Berkeley DB hash database")]
    NotHash { magic: u32 },
    #[error("this is a Berkeley DB btree (an rpm index), not the hash database of packages")]
    Btree,
    #[error("hash version {0} is not one rpm reads (8 to 10)")]
    Version(u32),
    #[error("page size {0} is not a power of two from 512 to 65536")]
    PageSize(u32),
    #[error("the database is encrypted")]
    Encrypted,
    #[error("the database has page checksums, which rpm's databases never use")]
    Checksummed,
    #[error("the meta page says the last page is {last}, but the file holds {pages} pages")]
    LastPage { last: u32, pages: u64 },
    #[error("bucket {bucket} maps to no page: the spares table is corrupt")]
    Bucket { bucket: u32 },
    #[error("page {page}: {reason}")]
    Page { page: u32, reason: &'static str },
    #[error("page {page} is reached a second time: page links loop or cross")]
    Revisit { page: u32 },
    #[error("record {record}: its value is {len} bytes, over the {limit}-byte header limit")]
    ValueTooLarge { record: u32, len: u64, limit: usize },
    #[error("reading page {page}: {source}")]
    Io {
        page: u32,
        #[source]
        source: std::io::Error,
    },
}

/// The facts of the meta page that reading needs.
#[derive(Debug)]
struct Meta {
    big_endian: bool,
    page_size: usize,
    last_page: u32,
    max_bucket: u32,
    spares: [u32; 32],
}

fn u16_at(bytes: &[u8], at: usize, big: bool) -> Option<u16> {
    let b = bytes.get(at..)?.first_chunk::<2>()?;
    Some(if big {
        u16::from_be_bytes(*b)
    } else {
        u16::from_le_bytes(*b)
    })
}

fn u32_at(bytes: &[u8], at: usize, big: bool) -> Option<u32> {
    let b = bytes.get(at..)?.first_chunk::<4>()?;
    Some(if big {
        u32::from_be_bytes(*b)
    } else {
        u32::from_le_bytes(*b)
    })
}

impl Meta {
    /// Decodes the first 512 bytes of the file (the part of the hash meta page rpm reads).
    fn decode(head: &[u8; 512], file_len: u64) -> Result<Meta, BdbError> {
        let field = |at, big| u32_at(head, at, big).unwrap_or(0);
        let big_endian = match (field(12, false), field(12, true)) {
            (HASH_MAGIC, _) => false,
            (_, HASH_MAGIC) => true,
            (BTREE_MAGIC, _) | (_, BTREE_MAGIC) => return Err(BdbError::Btree),
            (magic, _) => return Err(BdbError::NotHash { magic }),
        };
        let big = big_endian;
        let version = field(16, big);
        if !(8..=10).contains(&version) {
            return Err(BdbError::Version(version));
        }
        let page_size = field(20, big);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(BdbError::PageSize(page_size));
        }
        let [encrypt_alg, _page_type, meta_flags] =
            [24, 25, 26].map(|at| head.get(at).copied().unwrap_or(0));
        if encrypt_alg != 0 {
            return Err(BdbError::Encrypted);
        }
        if meta_flags & META_CHECKSUM != 0 {
            return Err(BdbError::Checksummed);
        }
        // Every page we may read must exist, which also bounds the visited-page bitmap by the
        // file's size rather than by a number the file chooses.
        let pages = file_len / u64::from(page_size);
        let last_page = field(32, big);
        if u64::from(last_page) >= pages {
            return Err(BdbError::LastPage {
                last: last_page,
                pages,
            });
        }
        let mut spares = [0u32; 32];
        for (i, spare) in spares.iter_mut().enumerate() {
            *spare = field(96 + 4 * i, big);
        }
        Ok(Meta {
            big_endian,
            page_size: page_size as usize,
            last_page,
            max_bucket: field(72, big),
            spares,
        })
    }

    /// The page holding the head of `bucket`'s chain (Berkeley DB's `BUCKET_TO_PAGE`).
    fn bucket_page(&self, bucket: u32) -> Option<u32> {
        let split_point = (u32::BITS - bucket.leading_zeros()) as usize;
        let page = u64::from(bucket) + u64::from(*self.spares.get(split_point)?);
        u32::try_from(page).ok()
    }
}

/// Reads pages, refusing any page number outside the file or seen before.
#[derive(Debug)]
struct Pages {
    file: File,
    meta: Meta,
    seen: Vec<u64>,
}

impl Pages {
    fn read(&mut self, page: u32, buf: &mut Vec<u8>) -> Result<(), BdbError> {
        if page == 0 || page > self.meta.last_page {
            return Err(BdbError::Page {
                page,
                reason: "the page number lies outside the database",
            });
        }
        let (word, bit) = ((page / 64) as usize, page % 64);
        let Some(slot) = self.seen.get_mut(word) else {
            return Err(BdbError::Revisit { page });
        };
        if *slot & (1 << bit) != 0 {
            return Err(BdbError::Revisit { page });
        }
        *slot |= 1 << bit;
        buf.resize(self.meta.page_size, 0);
        let at = u64::from(page) * self.meta.page_size as u64;
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(buf))
            .map_err(|source| BdbError::Io { page, source })?;
        // Berkeley DB writes each page's own number into its header; a mismatch means the
        // file was truncated, overwritten or is not what its meta page says.
        if u32_at(buf, 8, self.meta.big_endian) != Some(page) {
            return Err(BdbError::Page {
                page,
                reason: "the page's header names a different page number",
            });
        }
        Ok(())
    }

    /// Follows an overflow chain of `total` bytes from `first` into `out`.
    fn read_overflow(
        &mut self,
        record: u32,
        first: u32,
        total: u32,
        limit: usize,
        out: &mut Vec<u8>,
        page_buf: &mut Vec<u8>,
    ) -> Result<(), BdbError> {
        let total = total as usize;
        if total > limit {
            return Err(BdbError::ValueTooLarge {
                record,
                len: total as u64,
                limit,
            });
        }
        // The chain cannot hold more than its pages: refuse a length the file cannot back
        // before reserving memory for it.
        let capacity = (self.meta.last_page as usize).saturating_mul(self.meta.page_size);
        if total == 0 || total > capacity {
            return Err(BdbError::Page {
                page: first,
                reason: "off-page item's length is zero or larger than the database",
            });
        }
        out.clear();
        out.reserve_exact(total);
        let big = self.meta.big_endian;
        let mut page = first;
        while out.len() < total {
            if page == 0 {
                return Err(BdbError::Page {
                    page,
                    reason: "overflow chain ends before the item's length",
                });
            }
            self.read(page, page_buf)?;
            if page_buf.get(25) != Some(&P_OVERFLOW) {
                return Err(BdbError::Page {
                    page,
                    reason: "an off-page item's chain leads to a page that is not an overflow page",
                });
            }
            let len = usize::from(u16_at(page_buf, 22, big).unwrap_or(0));
            let chunk = page_buf
                .get(PAGE_HEADER..PAGE_HEADER + len)
                .filter(|c| !c.is_empty() && c.len() <= total - out.len())
                .ok_or(BdbError::Page {
                    page,
                    reason: "overflow page's data length is zero, too long for the page or \
                             longer than the item",
                })?;
            out.extend_from_slice(chunk);
            page = u32_at(page_buf, 16, big).unwrap_or(0);
        }
        Ok(())
    }
}

/// Calls `visit(record, header_blob)` for every record of a `Packages` hash database, in the
/// database's bucket order. Record 0 is skipped: it is rpm's counter of the next record number,
/// not a package.
pub(crate) fn for_each_record<E>(
    mut file: File,
    file_len: u64,
    limit: usize,
    mut visit: impl FnMut(u32, &[u8]) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<BdbError>,
{
    let mut head = [0u8; 512];
    if file_len < head.len() as u64 {
        return Err(BdbError::TooShort { len: file_len }.into());
    }
    file.read_exact(&mut head)
        .map_err(|source| BdbError::Io { page: 0, source })?;
    let meta = Meta::decode(&head, file_len)?;
    let words = (meta.last_page as usize / 64) + 1;
    let mut pages = Pages {
        file,
        meta,
        seen: vec![0; words],
    };
    let mut page_buf = Vec::new();
    let mut overflow_buf = Vec::new();
    let mut value_buf = Vec::new();
    for bucket in 0..=pages.meta.max_bucket {
        let mut page = pages
            .meta
            .bucket_page(bucket)
            .ok_or(BdbError::Bucket { bucket })?;
        // A bucket is a chain of hash pages linked by their next-page numbers.
        while page != 0 {
            pages.read(page, &mut page_buf)?;
            if !matches!(page_buf.get(25), Some(&(P_HASH | P_HASH_UNSORTED))) {
                return Err(BdbError::Page {
                    page,
                    reason: "a bucket chain leads to a page that is not a hash page",
                }
                .into());
            }
            for (record, value) in hash_items(&page_buf, page, pages.meta.big_endian)? {
                let bytes = match value {
                    Value::Inline(range) => page_buf.get(range).unwrap_or_default(),
                    Value::OffPage { first, total } => {
                        pages.read_overflow(
                            record,
                            first,
                            total,
                            limit,
                            &mut value_buf,
                            &mut overflow_buf,
                        )?;
                        &value_buf
                    }
                };
                if bytes.len() > limit {
                    return Err(BdbError::ValueTooLarge {
                        record,
                        len: bytes.len() as u64,
                        limit,
                    }
                    .into());
                }
                visit(record, bytes)?;
            }
            page = u32_at(&page_buf, 16, pages.meta.big_endian).unwrap_or(0);
        }
    }
    Ok(())
}

/// Where a record's value lives.
#[derive(Debug)]
enum Value {
    /// On the hash page itself, at this byte range.
    Inline(std::ops::Range<usize>),
    /// In a chain of overflow pages.
    OffPage { first: u32, total: u32 },
}

/// The key/value pairs of one hash page. Items are stored from the end of the page towards its
/// start, a pair's key above its value, so each item ends where the item before it in the
/// index begins (the layout rpm's `hash_next` relies on).
fn hash_items(page: &[u8], page_no: u32, big: bool) -> Result<Vec<(u32, Value)>, BdbError> {
    let bad = |reason| BdbError::Page {
        page: page_no,
        reason,
    };
    let page_size = page.len();
    let count = usize::from(u16_at(page, 20, big).unwrap_or(0));
    let index_end = PAGE_HEADER + 2 * count;
    if index_end > page_size {
        return Err(bad("the item index runs past the end of the page"));
    }
    let offset = |i: usize| usize::from(u16_at(page, PAGE_HEADER + 2 * i, big).unwrap_or(0));
    let mut items = Vec::with_capacity(count / 2);
    let mut i = 0;
    while i + 1 < count {
        let key_end = if i == 0 { page_size } else { offset(i - 1) };
        let (key_at, value_at) = (offset(i), offset(i + 1));
        if !(index_end <= value_at && value_at < key_at && key_at < key_end && key_end <= page_size)
        {
            return Err(bad(
                "item offsets overlap, leave the page or reach into the index",
            ));
        }
        let key = page.get(key_at..key_end).unwrap_or_default();
        let record = match key {
            [H_KEYDATA, b0, b1, b2, b3] => {
                if big {
                    u32::from_be_bytes([*b0, *b1, *b2, *b3])
                } else {
                    u32::from_le_bytes([*b0, *b1, *b2, *b3])
                }
            }
            _ => return Err(bad("a key is not a 4-byte record number")),
        };
        let value = match page.get(value_at) {
            Some(&H_KEYDATA) => Value::Inline(value_at + 1..key_at),
            Some(&H_OFFPAGE) if key_at - value_at == 12 => Value::OffPage {
                first: u32_at(page, value_at + 4, big).unwrap_or(0),
                total: u32_at(page, value_at + 8, big).unwrap_or(0),
            },
            _ => return Err(bad("a value is neither inline data nor an off-page item")),
        };
        if record != 0 {
            items.push((record, value));
        }
        i += 2;
    }
    Ok(items)
}
