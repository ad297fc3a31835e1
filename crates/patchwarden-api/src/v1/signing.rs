//! The canonical form of a signed agent request, which the agent signs with its Ed25519 key and
//! the server verifies with the public key it recorded at enrollment.
//!
//! The signature covers everything that gives a request its meaning: the method, the path with
//! its query, the host id the request claims, a timestamp (so an old request is refused), a
//! nonce (so a request inside the window cannot be replayed), and the SHA-256 of the body
//! exactly as sent (compressed bytes when the body is gzip). Leaving any of these out would let
//! an observer re-point a valid signature at another route, host or body.
//!
//! ```text
//! patchwarden-agent-request-v1 LF METHOD LF path-and-query LF host-id-or-"-" LF
//! unix-seconds LF nonce LF hex(SHA-256(body))
//! ```
//!
//! Keys, nonces and signatures travel as lower-case hex in the headers below.

use sha2::{Digest, Sha256};

/// The host id the request acts for (absent on enrollment, where the key is new).
pub const HEADER_HOST: &str = "x-patchwarden-host";
/// Unix seconds when the agent made the request.
pub const HEADER_TIMESTAMP: &str = "x-patchwarden-timestamp";
/// 16 random bytes, hex: never used twice by one key.
pub const HEADER_NONCE: &str = "x-patchwarden-nonce";
/// The Ed25519 signature of [`message`], hex (128 digits).
pub const HEADER_SIGNATURE: &str = "x-patchwarden-signature";

/// How far a request's timestamp may be from the server's clock, either way, in seconds. The
/// server remembers nonces for twice this long, so a replay is refused for as long as its
/// timestamp would be accepted.
pub const MAX_SKEW_SECS: i64 = 300;

/// A nonce is 16 bytes as 32 hex digits.
pub const NONCE_HEX_LEN: usize = 32;

/// The bytes an agent signs for one request.
pub fn message(
    method: &str,
    path_and_query: &str,
    host: Option<&str>,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let body_hash = hex(&Sha256::digest(body));
    format!(
        "patchwarden-agent-request-v1\n{}\n{path_and_query}\n{}\n{timestamp}\n{nonce}\n{body_hash}",
        method.to_ascii_uppercase(),
        host.unwrap_or("-"),
    )
    .into_bytes()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The bytes of lower-case (or upper-case) hex text of exactly `N` bytes; `None` for anything
/// else.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let value = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
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
    fn the_message_is_the_documented_text() {
        let m = message(
            "post",
            "/api/v1/agent/check-in",
            Some("h1"),
            1_700_000_000,
            "ab",
            b"",
        );
        expect_test::expect![[r#"
            patchwarden-agent-request-v1
            POST
            /api/v1/agent/check-in
            h1
            1700000000
            ab
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"#]]
        .assert_eq(&String::from_utf8(m).unwrap());
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex::<4>(&hex(&b)), Some(b));
        assert_eq!(unhex::<4>("0001abf"), None);
        assert_eq!(unhex::<4>("0001abfg"), None);
        assert_eq!(unhex::<4>("é001abff"), None);
        assert_eq!(unhex::<2>("0001abff"), None);
    }
}
