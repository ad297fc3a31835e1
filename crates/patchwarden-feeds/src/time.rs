//! Timestamps as feeds write them.
//!
//! OSV and CSAF require RFC 3339 with an offset, and we hold them to it. CVE JSON 5 records and
//! EPSS headers are looser in practice (no offset, or `+0000`): those are read as UTC, which is
//! what their publishers mean.

use jiff::Timestamp;
use jiff::civil::DateTime;

/// An RFC 3339 timestamp with an offset (`2024-01-02T03:04:05Z`, `…+00:00`).
pub(crate) fn strict(s: &str) -> Result<Timestamp, String> {
    s.trim()
        .parse::<Timestamp>()
        .map_err(|e| format!("{s:?} is not an RFC 3339 timestamp: {e}"))
}

/// Like [`strict`], but a timestamp without an offset is UTC and `+0000` is `+00:00`.
pub(crate) fn lenient(s: &str) -> Result<Timestamp, String> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    // `…+0000` / `…-0500`: insert the colon RFC 3339 wants.
    let split = t
        .len()
        .checked_sub(5)
        .and_then(|i| Some((t.get(..i)?, t.get(i..)?)));
    if let Some((head, tail)) = split
        && let (Some(sign_hours), Some(minutes)) = (tail.get(..3), tail.get(3..))
        && (tail.starts_with('+') || tail.starts_with('-'))
        && tail.bytes().skip(1).all(|b| b.is_ascii_digit())
        && let Ok(ts) = format!("{head}{sign_hours}:{minutes}").parse::<Timestamp>()
    {
        return Ok(ts);
    }
    t.parse::<DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| format!("{s:?} is not a timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_seen_in_feeds() {
        for s in [
            "2022-06-28T00:00:00Z",
            "2024-04-03T00:00:00+00:00",
            "2023-10-10T13:59:17.250Z",
        ] {
            assert!(strict(s).is_ok(), "{s}");
        }
        assert!(strict("2017-07-21T00:00:00").is_err());
        assert!(strict("yesterday").is_err());
        assert_eq!(
            lenient("2025-02-20T00:00:00+0000").map(|t| t.to_string()),
            Ok("2025-02-20T00:00:00Z".into())
        );
        assert_eq!(
            lenient("2017-07-21T00:00:00").map(|t| t.to_string()),
            Ok("2017-07-21T00:00:00Z".into())
        );
        assert!(lenient("+0000").is_err());
        assert!(lenient("é+0000").is_err());
    }
}
