//! Enrollment tokens: short-lived, use-limited, group-scoped permissions to enroll a host.
//!
//! The store keeps only the SHA-256 of a token's secret, so a copy of the database cannot be
//! used to enroll anything; the agent presents the secret, the server hashes it and the store
//! finds the token by that hash. Several tokens may be valid at once so they can be rotated.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{EnrollRejection, Result};
use crate::limits::{MAX_NAME, MAX_NOTE, check_name, check_opt};

/// The SHA-256 of an enrollment token's secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// The hash of `secret`.
    pub fn of(secret: &[u8]) -> SecretHash {
        use sha2::Digest as _;
        SecretHash(sha2::Sha256::digest(secret).into())
    }
}

impl std::fmt::Debug for SecretHash {
    /// Only a prefix: enough to tell two apart in a log, not enough to matter.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = crate::codec::hex(&self.0);
        write!(f, "SecretHash({}…)", hex.get(..8).unwrap_or(""))
    }
}

/// A token to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrollmentToken {
    pub id: Uuid,
    pub secret_hash: SecretHash,
    /// The host group every host enrolled with it joins.
    pub group: String,
    pub expires_at: Timestamp,
    /// How many hosts may enroll with it (at least 1).
    pub max_uses: u32,
    pub note: Option<String>,
    /// Who made it (an operator's name).
    pub created_by: String,
}

impl NewEnrollmentToken {
    pub fn check(&self) -> Result<()> {
        check_name("token group", &self.group, MAX_NAME)?;
        check_opt("token note", self.note.as_deref(), MAX_NOTE)?;
        check_name("token created_by", &self.created_by, crate::limits::MAX_ID)?;
        if self.max_uses == 0 {
            return Err(crate::StoreError::Invalid {
                field: "token max_uses",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A stored token. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    pub id: Uuid,
    pub group: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Timestamp,
    pub max_uses: u32,
    pub uses: u32,
    pub revoked_at: Option<Timestamp>,
    pub note: Option<String>,
}

impl EnrollmentToken {
    /// Whether a host may enroll with this token at `now`, and if not, why. Checked in the
    /// order an operator would want to hear: revoked before expired before used up.
    pub fn usable_at(&self, now: Timestamp) -> Result<(), EnrollRejection> {
        if let Some(revoked_at) = self.revoked_at {
            return Err(EnrollRejection::Revoked {
                id: self.id,
                revoked_at,
            });
        }
        if now >= self.expires_at {
            return Err(EnrollRejection::Expired {
                id: self.id,
                expired_at: self.expires_at,
            });
        }
        if self.uses >= self.max_uses {
            return Err(EnrollRejection::UsedUp {
                id: self.id,
                max_uses: self.max_uses,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> EnrollmentToken {
        EnrollmentToken {
            id: Uuid::nil(),
            group: "web".into(),
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            created_by: "alice".into(),
            expires_at: "2026-01-02T00:00:00Z".parse().unwrap(),
            max_uses: 1,
            uses: 0,
            revoked_at: None,
            note: None,
        }
    }

    #[test]
    fn a_token_is_refused_when_revoked_expired_or_used_up_and_says_which() {
        let before: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        assert_eq!(token().usable_at(before), Ok(()));
        let at_expiry = token().expires_at;
        assert!(matches!(
            token().usable_at(at_expiry),
            Err(EnrollRejection::Expired { .. })
        ));
        let used = EnrollmentToken { uses: 1, ..token() };
        assert!(matches!(
            used.usable_at(before),
            Err(EnrollRejection::UsedUp { .. })
        ));
        let revoked = EnrollmentToken {
            revoked_at: Some(before),
            uses: 1,
            ..token()
        };
        assert!(matches!(
            revoked.usable_at(at_expiry),
            Err(EnrollRejection::Revoked { .. })
        ));
    }

    #[test]
    fn the_debug_form_of_a_secret_hash_shows_only_a_prefix() {
        let h = SecretHash::of(b"secret");
        assert_eq!(format!("{h:?}").len(), "SecretHash(…)".len() + 8);
    }
}
