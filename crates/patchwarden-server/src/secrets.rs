//! The operators' secrets: argon2id password hashes, random secrets for sessions, API tokens
//! and one-time passwords, CSRF tokens, and the constant-time comparison they need.
//!
//! Passwords are hashed with argon2id at OWASP's recommended cost (19 MiB, two passes, one
//! lane) with a random salt, stored as a PHC string, and verified by the `argon2` crate, which
//! compares the hashes in constant time. Hashing is deliberately slow, so it runs on the
//! blocking pool and never stalls the event loop. Session and token secrets are 32 random
//! bytes: a guess is hopeless, so the store finds them by their SHA-256, and nothing about the
//! secret leaks through how long that lookup takes.
//!
//! A session's CSRF token is derived from its secret (SHA-256 under a label of its own): the
//! server need not store it, a request proves it knows it, and a page that leaks the CSRF
//! token does not leak the session.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use patchwarden_api::v1::signing::hex;
use sha2::{Digest, Sha256};

/// The shortest password accepted when a user chooses one.
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest: argon2 takes any length, but a megabyte "password" is only a way to make the
/// server work.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why a secret could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system gave no random numbers: {0}")]
    Random(String),
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("the stored password hash is not a PHC string: {0}")]
    StoredHash(String),
}

/// `n` random bytes.
fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A new secret: `prefix` and 32 random bytes in hex.
pub fn new_secret(prefix: &str) -> Result<String, SecretError> {
    Ok(format!("{prefix}{}", hex(&random::<32>()?)))
}

/// A one-time password a person can type: 20 characters from an alphabet without the letters
/// and digits people confuse (0/O, 1/l/I), about 110 bits.
pub fn one_time_password() -> Result<String, SecretError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = random::<20>()?;
    // 256 is not a multiple of the alphabet's length, so a byte is taken modulo a multiple
    // of it and the rest rejected would be exact; with 55 symbols the bias of a plain modulo
    // is under 2 % per symbol and leaves far more entropy than any password needs.
    Ok(bytes
        .iter()
        .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
        .map(|b| char::from(*b))
        .collect())
}

fn argon2() -> Result<Argon2<'static>, SecretError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| SecretError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id hash of `password`, as a PHC string. Slow: call it on the blocking pool.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt =
        SaltString::encode_b64(&random::<16>()?).map_err(|e| SecretError::Hash(e.to_string()))?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches the stored `phc` hash (compared in constant time). Slow.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, SecretError> {
    let parsed = PasswordHash::new(phc).map_err(|e| SecretError::StoredHash(e.to_string()))?;
    Ok(argon2()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A hash of a password nobody has, verified when the user name is unknown or disabled so
/// that such a login takes as long as a wrong password (the difference would tell which
/// user names exist).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        // A fixed salt is fine here: nothing is protected by this hash.
        let salt = SaltString::encode_b64(b"patchwarden-decoy").ok();
        match (argon2(), salt) {
            (Ok(a), Some(salt)) => a
                .hash_password(b"no user has this password", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        }
    })
}

/// Checks a password a user chose: long enough, not absurdly long.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "the new password has {len} characters; at least {MIN_PASSWORD_LEN} are needed"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "the new password is longer than {MAX_PASSWORD_LEN} bytes"
        ));
    }
    Ok(())
}

/// The CSRF token of the session whose secret is `session_secret`.
pub fn csrf_token(session_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"patchwarden-csrf-v1\n");
    h.update(session_secret.as_bytes());
    hex(&h.finalize())
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths (which are
/// public: every token of a kind has the same length).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_and_no_other() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &hash).unwrap());
        assert!(!verify_password("correct horse batterz", &hash).unwrap());
        // The same password hashes differently each time (a random salt).
        assert_ne!(hash, hash_password("correct horse battery").unwrap());
        assert!(verify_password("x", "not a hash").is_err());
        assert!(!verify_password("x", decoy_hash()).unwrap());
    }

    #[test]
    fn secrets_and_one_time_passwords_are_random_and_well_formed() {
        let a = new_secret("pwt_").unwrap();
        assert_eq!(a.len(), 4 + 64);
        assert_ne!(a, new_secret("pwt_").unwrap());
        let p = one_time_password().unwrap();
        assert_eq!(p.chars().count(), 20);
        assert!(
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
        );
        assert!(check_new_password(&p).is_ok());
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn csrf_tokens_belong_to_their_session_and_compare_in_constant_time() {
        let t = csrf_token("pws_a");
        assert_eq!(t, csrf_token("pws_a"));
        assert_ne!(t, csrf_token("pws_b"));
        assert!(ct_eq(t.as_bytes(), csrf_token("pws_a").as_bytes()));
        assert!(!ct_eq(t.as_bytes(), csrf_token("pws_b").as_bytes()));
        assert!(!ct_eq(b"ab", b"abc"));
    }
}
