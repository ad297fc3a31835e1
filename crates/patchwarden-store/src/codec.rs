//! How values are written to columns, the same way in every backend: times as integer
//! nanoseconds since the Unix epoch, structured values as JSON text, hashes as hex.
//!
//! Integer nanoseconds keep a `jiff::Timestamp` exact (PostgreSQL's `timestamptz` would round
//! it to microseconds, and a round trip that changes a time breaks equality in tests and the
//! audit chain's hashes), and they compare and index the same in SQLite and PostgreSQL. JSON
//! is stored as text, never as PostgreSQL `jsonb`, for the same reason: `jsonb` reorders keys
//! and rewrites numbers.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StoreError};

/// `t` as nanoseconds since the Unix epoch. Times beyond the years 1677–2262 do not fit in
/// 64 bits and are refused rather than wrapped.
pub fn ts_to_db(field: &'static str, t: Timestamp) -> Result<i64> {
    i64::try_from(t.as_nanosecond()).map_err(|_| StoreError::Invalid {
        field,
        reason: format!("{t} is outside the storable years 1677–2262"),
    })
}

/// The time stored as `nanos`.
pub fn ts_from_db(
    table: &'static str,
    key: &dyn std::fmt::Display,
    nanos: i64,
) -> Result<Timestamp> {
    Timestamp::from_nanosecond(i128::from(nanos))
        .map_err(|e| StoreError::corrupt(table, key, format!("time {nanos}: {e}")))
}

/// Like [`ts_to_db`] for an optional time.
pub fn opt_ts_to_db(field: &'static str, t: Option<Timestamp>) -> Result<Option<i64>> {
    t.map(|t| ts_to_db(field, t)).transpose()
}

/// Like [`ts_from_db`] for an optional time.
pub fn opt_ts_from_db(
    table: &'static str,
    key: &dyn std::fmt::Display,
    nanos: Option<i64>,
) -> Result<Option<Timestamp>> {
    nanos.map(|n| ts_from_db(table, key, n)).transpose()
}

/// `value` as JSON text, refused when longer than `max` bytes.
pub fn to_json<T: Serialize + ?Sized>(
    field: &'static str,
    value: &T,
    max: usize,
) -> Result<String> {
    let text = serde_json::to_string(value).map_err(|e| StoreError::Invalid {
        field,
        reason: format!("cannot be written as JSON: {e}"),
    })?;
    crate::limits::check_len(field, &text, max)?;
    Ok(text)
}

/// Advisories checked and encoded as stored rows, (id, JSON), before a store's transaction.
/// It takes them by value and drops each once it is written out: a feed archive's advisories
/// parsed (69 MB for AlmaLinux's) and their JSON (32 MB) are then never all held at once.
pub fn advisory_rows(
    advisories: Vec<patchwarden_core::advisory::Advisory>,
) -> Result<Vec<(String, String)>> {
    advisories
        .into_iter()
        .map(|a| {
            crate::limits::check_name("advisory id", &a.id, crate::limits::MAX_ID)?;
            let body = to_json("advisory", &a, crate::limits::MAX_ADVISORY_JSON)?;
            Ok((a.id, body))
        })
        .collect()
}

/// The value stored as JSON `text` in `table`'s row `key`.
pub fn from_json<T: DeserializeOwned>(
    table: &'static str,
    key: &dyn std::fmt::Display,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(table, key, format!("JSON: {e}")))
}

/// `json` compressed for storage (zlib, deflate at its fastest level, with an Adler-32 check so
/// that a damaged row is reported, not misread). A host's inventory is ~60 KiB of repetitive
/// JSON that packs to about a sixth; the bytes not written are the part of an upload's
/// database work that needs no thought (pages, WAL frames, their checksums, writeback).
pub fn pack(json: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = z.write_all(json.as_bytes());
    z.finish().unwrap_or_default()
}

/// The JSON text [`pack`] made, from `table`'s row `key`; at most `max` bytes once inflated,
/// so a damaged or hostile row cannot make a reader inflate without bound.
pub fn unpack(
    table: &'static str,
    key: &dyn std::fmt::Display,
    packed: &[u8],
    max: usize,
) -> Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(packed)
        .take(limit)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::corrupt(table, key, format!("packed JSON: {e}")))?;
    if text.len() > max {
        return Err(StoreError::corrupt(
            table,
            key,
            format!("packed JSON inflates past {max} bytes"),
        ));
    }
    Ok(text)
}

/// 32 bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// 64 hex digits as 32 bytes; `None` for anything else.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let digits = s.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let value = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *byte = value(*pair.first()?)? << 4 | value(*pair.get(1)?)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_nanosecond_and_far_times_are_refused() {
        let t: Timestamp = "2026-11-26T10:11:12.123456789Z".parse().unwrap();
        let n = ts_to_db("t", t).unwrap();
        assert_eq!(ts_from_db("x", &1, n).unwrap(), t);
        let far: Timestamp = "9000-01-01T00:00:00Z".parse().unwrap();
        assert!(matches!(
            ts_to_db("t", far),
            Err(StoreError::Invalid { .. })
        ));
    }

    #[test]
    fn packed_json_round_trips_and_bad_or_oversized_input_is_corrupt() {
        let json = serde_json::to_string(&vec!["libssl3 3.0.11-1~deb12u2 amd64"; 500]).unwrap();
        let packed = pack(&json);
        assert!(
            packed.len() * 10 < json.len(),
            "{} of {}",
            packed.len(),
            json.len()
        );
        assert_eq!(unpack("t", &1, &packed, json.len()).unwrap(), json);
        assert_eq!(unpack("t", &1, &pack(""), 0).unwrap(), "");
        // One byte over the limit once inflated: refused, not read to the end.
        assert!(matches!(
            unpack("t", &1, &packed, json.len() - 1),
            Err(StoreError::Corrupt { table: "t", .. })
        ));
        // A small row inflating to far more than the limit is stopped at the limit.
        let bomb = pack(&" ".repeat(64 << 20));
        assert!(bomb.len() * 100 < 64 << 20, "{}", bomb.len());
        assert!(matches!(
            unpack("t", &1, &bomb, 1 << 20),
            Err(StoreError::Corrupt { .. })
        ));
        for bad in [&b""[..], b"not zlib", &packed[..packed.len() - 3]] {
            assert!(
                matches!(
                    unpack("t", &1, bad, 1 << 20),
                    Err(StoreError::Corrupt { .. })
                ),
                "{bad:?}"
            );
        }
        // Not UTF-8 once inflated.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &[0xff, 0xfe, 0x00]).unwrap();
        let not_text = z.finish().unwrap();
        assert!(matches!(
            unpack("t", &1, &not_text, 1 << 20),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn hex_round_trips_and_bad_hex_is_none() {
        let b = [0xabu8; 32];
        assert_eq!(unhex32(&hex(&b)), Some(b));
        assert_eq!(unhex32("zz"), None);
        assert_eq!(unhex32(&"A".repeat(64)), None);
    }
}
