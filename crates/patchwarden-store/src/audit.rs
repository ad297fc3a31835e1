//! The storage side of the audit chain: how an entry is checked and bound to the chain head
//! before a backend writes it in the same transaction as the change it records.
//!
//! Both backends keep the head (last sequence number and hash) in a one-row table and lock it
//! (SQLite: the single writer; PostgreSQL: `SELECT … FOR UPDATE`) as the last step of every
//! changing transaction, so two writers can never chain to the same event, and the lock is held
//! only from the append to the commit. The hash itself is `patchwarden_core::audit`'s.

use patchwarden_core::audit::{AuditEntry, AuditEvent};

use crate::error::{Result, StoreError};
use crate::limits::{MAX_AUDIT_ACTION, MAX_AUDIT_JSON, MAX_AUDIT_OBJECT, check_len};

/// The chain's head: the last event's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// An event ready to be inserted: the event and its entry's JSON text.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub event: AuditEvent,
    /// The entry exactly as stored; reading it back gives the entry that was hashed.
    pub entry_json: String,
}

/// An entry checked and normalised, not yet bound to the chain.
#[derive(Debug, Clone)]
pub struct CheckedEntry {
    /// The entry as a reader of its stored JSON gets it: the value that is hashed.
    pub entry: AuditEntry,
    /// The entry exactly as stored.
    pub json: String,
}

/// Checks `entry` and normalises it: the entry is written to JSON and read back, so the hash
/// is computed over the very value a reader will get from the stored text (a float that does
/// not survive the round trip exactly would otherwise make an intact chain fail verification).
pub fn check(entry: &AuditEntry) -> Result<CheckedEntry> {
    if entry.action.is_empty() {
        return Err(StoreError::Invalid {
            field: "audit.action",
            reason: "must not be empty".into(),
        });
    }
    if entry.object.is_empty() {
        return Err(StoreError::Invalid {
            field: "audit.object",
            reason: "must not be empty".into(),
        });
    }
    check_len("audit.action", &entry.action, MAX_AUDIT_ACTION)?;
    check_len("audit.object", &entry.object, MAX_AUDIT_OBJECT)?;
    let json = crate::codec::to_json("audit entry", entry, MAX_AUDIT_JSON)?;
    let normalised: AuditEntry = serde_json::from_str(&json).map_err(|e| StoreError::Invalid {
        field: "audit entry",
        reason: format!("does not read back from JSON: {e}"),
    })?;
    Ok(CheckedEntry {
        entry: normalised,
        json,
    })
}

/// Checks `entry` ([`check`]) and makes the event that follows `head`.
///
/// Backends call this *after* making the change, inside its transaction: a refused entry
/// rolls the change back, which is what "no change without its event" means.
pub fn prepare(head: Option<&AuditHead>, entry: &AuditEntry) -> Result<PreparedEvent> {
    let checked = check(entry)?;
    let event = AuditEvent::next(head.map(|h| (h.seq, h.hash.as_str())), checked.entry);
    Ok(PreparedEvent {
        event,
        entry_json: checked.json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwarden_core::audit::{Actor, GENESIS, verify};

    fn entry(action: &str) -> AuditEntry {
        AuditEntry::new(
            "2026-11-26T00:00:00Z".parse().unwrap(),
            Actor::System("test".into()),
            action,
            "host:1",
        )
        .after(serde_json::json!({"ratio": 0.1 + 0.2}))
    }

    #[test]
    fn prepared_events_chain_and_verify_after_a_json_round_trip() {
        let first = prepare(None, &entry("a.b")).unwrap();
        assert_eq!(first.event.prev_hash, GENESIS);
        let head = AuditHead {
            seq: first.event.seq,
            hash: first.event.hash.clone(),
        };
        let second = prepare(Some(&head), &entry("a.c")).unwrap();
        assert_eq!(second.event.seq, 2);
        let read_back: Vec<AuditEvent> = [&first, &second]
            .iter()
            .map(|p| AuditEvent {
                entry: serde_json::from_str(&p.entry_json).unwrap(),
                ..p.event.clone()
            })
            .collect();
        assert_eq!(verify(&read_back).unwrap().events, 2);
    }

    #[test]
    fn empty_and_oversized_actions_are_refused() {
        assert!(matches!(
            prepare(None, &entry("")),
            Err(StoreError::Invalid {
                field: "audit.action",
                ..
            })
        ));
        assert!(matches!(
            prepare(None, &entry(&"x".repeat(65))),
            Err(StoreError::TooLong {
                field: "audit.action",
                ..
            })
        ));
    }
}
