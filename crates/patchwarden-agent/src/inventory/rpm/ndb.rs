//! The NDB `Packages.db` of rpm's "new database" backend, used by SUSE (SLES 15 and openSUSE
//! from 2019 until their move to SQLite): a single little-endian file that rpm reads without
//! any library, and so do we (`lib/backend/ndb/rpmpkg.c`).
//!
//! The file starts with a 32-byte header (magic `RpmP`, version 0, generation, the number of
//! 4 KiB slot pages, the next package index). The slot pages that follow hold 16-byte slots
//! (magic `Slot`, package index, block offset, block count; offset 0 marks a free slot). Each
//! used slot points at a blob in 16-byte blocks: a head (magic `BlbS`, package index,
//! generation, length), the header blob, padding, and a tail (Adler-32 of everything before
//! it, length, magic `BlbE`). We check what rpm checks, including the checksum, so a torn or
//! tampered record is reported rather than parsed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

const DB_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_HEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const BLOB_TAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
const SLOT_PAGE: u64 = 4096;
const SLOT_SIZE: usize = 16;
const BLOCK: u64 = 16;
const DB_HEADER: usize = 32;
const BLOB_HEAD: usize = 16;
const BLOB_TAIL: usize = 12;

/// What is wrong with an NDB `Packages.db`.
#[derive(Debug, thiserror::Error)]
pub enum NdbError {
    #[error("the file is {len} bytes, too short for the 32-byte NDB header")]
    TooShort { len: u64 },
    #[error("the file does not start with the NDB magic `RpmP`")]
    Magic,
    #[error("NDB version {0} is not the one rpm writes (0)")]
    Version(u32),
    #[error("the file is {len} bytes, not a whole number of 16-byte blocks")]
    Unaligned { len: u64 },
    #[error("the header claims {pages} slot pages, but the file holds only {len} bytes")]
    SlotPages { pages: u32, len: u64 },
    #[error("slot {slot}: {reason}")]
    Slot { slot: u64, reason: &'static str },
    #[error("package {pkgidx} appears in two slots")]
    DuplicateSlot { pkgidx: u32 },
    #[error("the database holds more than {limit} packages")]
    TooManyPackages { limit: usize },
    #[error("package {pkgidx}: {reason}")]
    Blob { pkgidx: u32, reason: &'static str },
    #[error("package {pkgidx}: its header is {len} bytes, over the {limit}-byte header limit")]
    BlobTooLarge { pkgidx: u32, len: u32, limit: usize },
    #[error(
        "package {pkgidx}: Adler-32 checksum {stored:#010x} does not match the data's {computed:#010x}"
    )]
    Checksum {
        pkgidx: u32,
        stored: u32,
        computed: u32,
    },
    #[error("reading at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_le_bytes(*b))
}

/// Adler-32 (RFC 1950), continuing from `adler`.
fn adler32(adler: u32, data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 is the largest run whose sums cannot overflow 32 bits before the modulo.
    let (mut a, mut b) = (adler & 0xffff, adler >> 16);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// One used slot: which package, and where its blob lies (in 16-byte blocks).
#[derive(Debug, Clone, Copy)]
struct Slot {
    pkgidx: u32,
    block: u32,
    blocks: u32,
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> Result<(), NdbError> {
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(buf))
        .map_err(|source| NdbError::Io { offset, source })
}

/// Reads and checks the slot table: the used slots, ordered by package index.
fn read_slots(file: &mut File, file_len: u64, max_packages: usize) -> Result<Vec<Slot>, NdbError> {
    let mut header = [0u8; DB_HEADER];
    if file_len < DB_HEADER as u64 {
        return Err(NdbError::TooShort { len: file_len });
    }
    read_at(file, 0, &mut header)?;
    if le32(&header, 0) != DB_MAGIC {
        return Err(NdbError::Magic);
    }
    let version = le32(&header, 4);
    if version != 0 {
        return Err(NdbError::Version(version));
    }
    if !file_len.is_multiple_of(BLOCK) {
        return Err(NdbError::Unaligned { len: file_len });
    }
    let slot_pages = le32(&header, 12);
    if slot_pages == 0 || u64::from(slot_pages) * SLOT_PAGE > file_len {
        return Err(NdbError::SlotPages {
            pages: slot_pages,
            len: file_len,
        });
    }
    let file_blocks = file_len / BLOCK;
    // Blobs live after the slot pages.
    let first_blob_block = u64::from(slot_pages) * SLOT_PAGE / BLOCK;
    let mut slots = Vec::new();
    let mut page = vec![0u8; SLOT_PAGE as usize];
    for page_no in 0..u64::from(slot_pages) {
        read_at(file, page_no * SLOT_PAGE, &mut page)?;
        // The first two slots of page 0 hold the file header.
        let skip = if page_no == 0 { DB_HEADER } else { 0 };
        let (raw_slots, _) = page
            .get(skip..)
            .unwrap_or_default()
            .as_chunks::<SLOT_SIZE>();
        for (i, raw) in raw_slots.iter().enumerate() {
            let slot_no = page_no * (SLOT_PAGE / SLOT_SIZE as u64) + (skip / SLOT_SIZE + i) as u64;
            let bad = |reason| NdbError::Slot {
                slot: slot_no,
                reason,
            };
            if le32(raw, 0) != SLOT_MAGIC {
                return Err(bad("no slot magic"));
            }
            let (pkgidx, block, blocks) = (le32(raw, 4), le32(raw, 8), le32(raw, 12));
            if block == 0 {
                continue; // a free slot
            }
            if pkgidx == 0 || blocks == 0 || u64::from(block) < first_blob_block {
                return Err(bad(
                    "zero package index or length, or a blob inside the slot pages",
                ));
            }
            if u64::from(block) + u64::from(blocks) > file_blocks {
                return Err(bad("the blob runs past the end of the file"));
            }
            if slots.len() >= max_packages {
                return Err(NdbError::TooManyPackages {
                    limit: max_packages,
                });
            }
            slots.push(Slot {
                pkgidx,
                block,
                blocks,
            });
        }
    }
    slots.sort_unstable_by_key(|s| s.pkgidx);
    if let Some(pair) = slots
        .windows(2)
        .find(|w| matches!(w, [a, b] if a.pkgidx == b.pkgidx))
    {
        let pkgidx = pair.first().map_or(0, |s| s.pkgidx);
        return Err(NdbError::DuplicateSlot { pkgidx });
    }
    Ok(slots)
}

/// Calls `visit(pkgidx, header_blob)` for every package of an NDB `Packages.db`, in package
/// index order.
pub(crate) fn for_each_record<E>(
    mut file: File,
    file_len: u64,
    max_packages: usize,
    limit: usize,
    mut visit: impl FnMut(u32, &[u8]) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<NdbError>,
{
    let slots = read_slots(&mut file, file_len, max_packages)?;
    let mut buf = Vec::new();
    for slot in slots {
        let pkgidx = slot.pkgidx;
        let bad = |reason| NdbError::Blob { pkgidx, reason };
        let mut head = [0u8; BLOB_HEAD];
        let offset = u64::from(slot.block) * BLOCK;
        read_at(&mut file, offset, &mut head)?;
        if le32(&head, 0) != BLOB_HEAD_MAGIC || le32(&head, 4) != pkgidx {
            return Err(bad("the blob's head has the wrong magic or package index").into());
        }
        let len = le32(&head, 12);
        if len as usize > limit {
            return Err(NdbError::BlobTooLarge { pkgidx, len, limit }.into());
        }
        let span = (BLOB_HEAD + len as usize + BLOB_TAIL).div_ceil(BLOCK as usize);
        if span as u64 != u64::from(slot.blocks) {
            return Err(bad("the slot's block count does not fit the blob's length").into());
        }
        // The slot was checked against the file's length, and the length against the limit,
        // so this allocation is bounded by both.
        buf.resize(span * BLOCK as usize - BLOB_HEAD, 0);
        read_at(&mut file, offset + BLOB_HEAD as u64, &mut buf)?;
        let Some((body, tail)) = buf.split_last_chunk::<BLOB_TAIL>() else {
            return Err(bad("the blob is shorter than its tail").into());
        };
        if le32(tail, 4) != len || le32(tail, 8) != BLOB_TAIL_MAGIC {
            return Err(bad("the blob's tail has the wrong magic or length").into());
        }
        let computed = adler32(adler32(1, &head), body);
        let stored = le32(tail, 0);
        if computed != stored {
            return Err(NdbError::Checksum {
                pkgidx,
                stored,
                computed,
            }
            .into());
        }
        let blob = body.get(..len as usize).unwrap_or_default();
        visit(pkgidx, blob)?;
    }
    Ok(())
}
