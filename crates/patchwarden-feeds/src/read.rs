//! Bounded reading: documents, zip archive members and xz streams, never more than the limits
//! allow.
//!
//! Sizes in headers are claims, not facts: a zip member's declared size or an xz stream's
//! content can be anything. Every read here stops one byte past its limit and reports the
//! document as too large, so a zip bomb costs at most the limit in memory and time. Archives
//! are read one member at a time, so memory holds one decompressed member, not the archive.

use std::io::{Read, Seek};

use crate::{FeedError, Reject, RejectReason};

/// How much any one import may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One record or document: an OSV record, a CSAF document, one archive member.
    pub max_document_bytes: u64,
    /// One whole-feed file: the Debian tracker's JSON, the KEV catalogue, an EPSS CSV, a secdb.
    pub max_feed_bytes: u64,
    /// Members of one archive (directories included).
    pub max_archive_members: usize,
    /// Decompressed bytes read from one archive in total.
    pub max_archive_bytes: u64,
}

impl Default for Limits {
    /// Generous for the real feeds (the largest Red Hat CSAF document is 23 MB, the Debian
    /// tracker's JSON about 80 MB, OSV's largest per-ecosystem `all.zip` a few GB
    /// decompressed) and small enough that one hostile input cannot exhaust a server.
    fn default() -> Self {
        Limits {
            max_document_bytes: 64 << 20,
            max_feed_bytes: 512 << 20,
            max_archive_members: 2_000_000,
            max_archive_bytes: 16 << 30,
        }
    }
}

/// Reads all of `reader`, failing once more than `limit` bytes arrive.
pub(crate) fn read_limited(reader: impl Read, limit: u64) -> Result<Vec<u8>, RejectReason> {
    let mut buf = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(RejectReason::Read)?;
    if buf.len() as u64 > limit {
        return Err(RejectReason::TooLarge { limit });
    }
    Ok(buf)
}

/// Decompresses an xz stream, failing once more than `limit` bytes come out.
pub(crate) fn read_xz(reader: impl Read, limit: u64) -> Result<Vec<u8>, RejectReason> {
    // 256 MiB of dictionary is far above what xz's presets use (64 MiB at -9e) and caps the
    // memory a crafted header can make the decoder allocate.
    let xz = lzma_rust2::XzReader::new_mem_limit(reader, true, 256 * 1024);
    let mut buf = Vec::new();
    match xz.take(limit.saturating_add(1)).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > limit => Err(RejectReason::TooLarge { limit }),
        Ok(_) => Ok(buf),
        Err(e) => Err(RejectReason::Decompress(format!("xz: {e}"))),
    }
}

/// Calls `each(member_location, member_name, bytes)` for every file member of a zip archive,
/// one at a time, and collects the members that could not be read as rejects.
///
/// Fails as a whole only when the archive's directory cannot be read.
pub(crate) fn for_each_zip_member<R: Read + Seek>(
    reader: R,
    location: &str,
    limits: &Limits,
    mut each: impl FnMut(&str, &str, Vec<u8>),
) -> Result<Vec<Reject>, FeedError> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| FeedError::Archive {
        location: location.into(),
        reason: e.to_string(),
    })?;
    let mut rejects = Vec::new();
    if archive.len() > limits.max_archive_members {
        return Err(FeedError::Archive {
            location: location.into(),
            reason: format!(
                "{} members, more than the limit of {}",
                archive.len(),
                limits.max_archive_members
            ),
        });
    }
    let mut total: u64 = 0;
    let count = archive.len();
    for index in 0..count {
        let mut member = match archive.by_index(index) {
            Ok(m) => m,
            Err(e) => {
                rejects.push(Reject::new(
                    format!("{location}!#{index}"),
                    None,
                    RejectReason::Decompress(e.to_string()),
                ));
                continue;
            }
        };
        if member.is_dir() {
            continue;
        }
        let name = member.name().to_owned();
        let member_location = format!("{location}!{name}");
        let remaining = limits.max_archive_bytes.saturating_sub(total);
        let limit = limits.max_document_bytes.min(remaining);
        // The declared size is only a hint, but a member that admits to being too large
        // need not be decompressed to be refused.
        if member.size() > limits.max_document_bytes {
            rejects.push(Reject::new(
                member_location,
                None,
                RejectReason::TooLarge {
                    limit: limits.max_document_bytes,
                },
            ));
            continue;
        }
        match read_limited(&mut member, limit) {
            Ok(bytes) => {
                total = total.saturating_add(bytes.len() as u64);
                each(&member_location, &name, bytes);
            }
            Err(RejectReason::TooLarge { .. }) if limit < limits.max_document_bytes => {
                rejects.push(Reject::new(
                    member_location,
                    None,
                    RejectReason::ArchiveLimit(format!(
                        "the archive decompresses to more than {} bytes; this member and the \
                         {} after it were not read",
                        limits.max_archive_bytes,
                        count.saturating_sub(index + 1)
                    )),
                ));
                break;
            }
            Err(reason) => rejects.push(Reject::new(member_location, None, reason)),
        }
    }
    Ok(rejects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_one_byte_past_the_limit() {
        assert_eq!(read_limited(&b"12345"[..], 5).ok(), Some(b"12345".to_vec()));
        assert!(matches!(
            read_limited(&b"123456"[..], 5),
            Err(RejectReason::TooLarge { limit: 5 })
        ));
        // An endless reader is cut off, not read to exhaustion.
        assert!(matches!(
            read_limited(std::io::repeat(b'x'), 1 << 20),
            Err(RejectReason::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_not_xz() {
        assert!(matches!(
            read_xz(&b"not xz at all"[..], 1 << 20),
            Err(RejectReason::Decompress(_))
        ));
        assert!(matches!(
            read_xz(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0][..], 1 << 20),
            Err(RejectReason::Decompress(_))
        ));
    }

    #[test]
    fn garbage_is_not_a_zip() {
        let r = for_each_zip_member(
            std::io::Cursor::new(b"PK\x03\x04 truncated".to_vec()),
            "bad.zip",
            &Limits::default(),
            |_, _, _| {},
        );
        assert!(matches!(r, Err(FeedError::Archive { .. })));
    }
}
