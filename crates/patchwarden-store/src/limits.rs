//! Length limits on every value that reaches a column from a request, checked before anything
//! is written.
//!
//! A database column holds whatever it is given, so a hostile agent could otherwise fill the
//! disk through a hostname or a label. Each limit is generous for honest data (a hostname is at
//! most 253 bytes by RFC 1035, an inventory of 100,000 packages is far larger than any real
//! host's) and both backends call the same checks, so they refuse the same inputs.

use crate::error::{Result, StoreError};

/// A host group, ring, or token group name.
pub const MAX_NAME: usize = 128;
/// A free-text note on a token.
pub const MAX_NOTE: usize = 1024;
/// An agent's public key (raw Ed25519 in base64, or a PEM certificate).
pub const MAX_PUBLIC_KEY: usize = 8 * 1024;
/// A machine id (`/etc/machine-id` is 32 hex digits; others are longer, none this long).
pub const MAX_MACHINE_ID: usize = 256;
/// A request nonce.
pub const MAX_NONCE: usize = 128;
/// Why a host was quarantined or retired.
pub const MAX_STATE_REASON: usize = 1024;
/// A host's facts as JSON.
pub const MAX_FACTS_JSON: usize = 64 * 1024;
/// Labels: how many, and each key and value.
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY: usize = 64;
pub const MAX_LABEL_VALUE: usize = 256;
/// A whole inventory as JSON (a real host's 720 packages are about 150 KiB).
pub const MAX_INVENTORY_JSON: usize = 32 * 1024 * 1024;
/// One advisory as JSON (the largest Red Hat CSAF documents become advisories far below this).
pub const MAX_ADVISORY_JSON: usize = 4 * 1024 * 1024;
/// An identifier that comes from data: an advisory or vulnerability id, a package name, an
/// architecture, a version, a policy or rule name, a user name.
pub const MAX_ID: usize = 256;
/// One finding as JSON (its explanation and advisory list).
pub const MAX_FINDING_JSON: usize = 256 * 1024;
/// A job's kind, progress or result as JSON.
pub const MAX_JOB_JSON: usize = 256 * 1024;
/// An audit event's action and object.
pub const MAX_AUDIT_ACTION: usize = 64;
pub const MAX_AUDIT_OBJECT: usize = 256;
/// An audit event's entry as JSON (before and after states included).
pub const MAX_AUDIT_JSON: usize = 512 * 1024;

/// Refuses `value` when it is longer than `max` bytes.
pub fn check_len(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(StoreError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// Refuses `value` when it is empty or longer than `max` bytes.
pub fn check_name(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::Invalid {
            field,
            reason: "must not be empty".into(),
        });
    }
    check_len(field, value, max)
}

/// Like [`check_len`] for an optional value.
pub fn check_opt(field: &'static str, value: Option<&str>, max: usize) -> Result<()> {
    match value {
        Some(v) => check_len(field, v, max),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_long_and_empty_values_and_say_which_field() {
        assert!(check_len("group", &"g".repeat(MAX_NAME), MAX_NAME).is_ok());
        let e = check_len("group", &"g".repeat(MAX_NAME + 1), MAX_NAME).unwrap_err();
        assert_eq!(
            e.to_string(),
            "group is 129 bytes long; at most 128 are allowed"
        );
        let e = check_name("group", "", MAX_NAME).unwrap_err();
        assert_eq!(e.to_string(), "group is invalid: must not be empty");
        assert!(check_opt("note", None, 1).is_ok());
    }
}
