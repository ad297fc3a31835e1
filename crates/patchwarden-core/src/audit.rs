//! The audit chain: every state change as an event that carries the hash of the one before it,
//! so that removing, reordering or editing any event breaks every hash after it.
//!
//! The store appends an event in the same transaction as the change it records (no change
//! without its event); this module owns what an event is, how its hash is computed, and how a
//! chain is verified — pure functions, so that `patchwarden audit verify` and the tests check
//! exactly what the server wrote.
//!
//! The hash is SHA-256 over a canonical encoding: the sequence number, the previous hash, and
//! the event as JSON with object keys sorted and no insignificant white space. The encoding is
//! written here rather than left to a serializer's settings, because a dependency enabling
//! `serde_json`'s `preserve_order` feature elsewhere in the build must not change the hashes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash the first event chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An operator, by user name.
    Operator(String),
    /// An agent, by host id.
    Agent(String),
    /// Patchwarden itself: a scheduler, an import, start-up (`feeds`, `matcher` …).
    System(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Operator(u) => write!(f, "operator {u}"),
            Actor::Agent(h) => write!(f, "agent of host {h}"),
            Actor::System(c) => write!(f, "system ({c})"),
        }
    }
}

/// A state change, as the code that makes it describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: Actor,
    /// What was done, as a dotted verb: `host.enroll`, `inventory.replace`, `job.lease` …
    pub action: String,
    /// What it was done to: `host:3f2a…`, `enrollment-token:…`, `job:…`.
    pub object: String,
    /// The object's state before, where it matters (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The object's state after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl AuditEntry {
    pub fn new(at: Timestamp, actor: Actor, action: &str, object: impl Into<String>) -> Self {
        AuditEntry {
            at,
            actor,
            action: action.into(),
            object: object.into(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, v: Value) -> Self {
        self.before = Some(v);
        self
    }

    pub fn after(mut self, v: Value) -> Self {
        self.after = Some(v);
        self
    }
}

/// An event as stored: its place in the chain and the hashes that bind it there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 1 for the first event, then consecutive.
    pub seq: i64,
    pub entry: AuditEntry,
    /// The previous event's hash ([`GENESIS`] for the first), hex.
    pub prev_hash: String,
    /// This event's hash, hex.
    pub hash: String,
}

impl AuditEvent {
    /// The event that follows `prev` (or starts the chain) with `entry`.
    pub fn next(prev: Option<(i64, &str)>, entry: AuditEntry) -> AuditEvent {
        let (seq, prev_hash) = match prev {
            Some((seq, hash)) => (seq + 1, hash.to_owned()),
            None => (1, GENESIS.to_owned()),
        };
        let hash = chain_hash(seq, &prev_hash, &entry);
        AuditEvent {
            seq,
            entry,
            prev_hash,
            hash,
        }
    }
}

/// What every event's hashed text starts with. PostgreSQL's `audit_append` function
/// (migration `0012_audit_append`) builds the same text, so that it can chain events while it
/// holds the head's lock without a round trip to the server; the two must change together.
pub const CHAIN_PREFIX: &str = "patchwarden-audit-v1\n";

/// SHA-256 of `seq`, `prev_hash` and the canonical JSON of `entry`, hex.
pub fn chain_hash(seq: i64, prev_hash: &str, entry: &AuditEntry) -> String {
    chain_hash_canonical(seq, prev_hash, &canonical_json(entry))
}

/// [`chain_hash`] of an entry already in its canonical form ([`canonical_json`]):
/// SHA-256 of `CHAIN_PREFIX`, `seq` in decimal, a newline, `prev_hash`, a newline, and
/// `canonical`, as UTF-8.
pub fn chain_hash_canonical(seq: i64, prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(CHAIN_PREFIX.as_bytes());
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex(&h.finalize())
}

/// The entry as the hash sees it: JSON with object keys in byte order and no white space.
pub fn canonical_json(entry: &AuditEntry) -> String {
    let value = serde_json::to_value(entry).unwrap_or(Value::Null);
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    canonical
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// JSON with object keys in byte order and no white space. Strings and numbers are written as
/// `serde_json` writes them, which is deterministic for a given value.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(x) = map.get(k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Where a chain breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenLink {
    #[error(
        "event {seq}: expected sequence number {expected} (an event is missing or out of order)"
    )]
    Sequence { seq: i64, expected: i64 },
    #[error("event {seq}: its previous hash does not match event {}'s hash", seq - 1)]
    PrevHash { seq: i64 },
    #[error("event {seq}: its hash does not match its contents (the event was altered)")]
    Hash { seq: i64 },
}

/// What verifying a chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub events: i64,
    /// The last event's hash: publish it elsewhere, and a rewrite of the whole chain shows.
    pub head: String,
}

/// Walks a chain from its first event and names the first broken link.
pub fn verify<'a>(
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Result<Verified, BrokenLink> {
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    for e in events {
        if e.seq != expected_seq {
            return Err(BrokenLink::Sequence {
                seq: e.seq,
                expected: expected_seq,
            });
        }
        if e.prev_hash != prev {
            return Err(BrokenLink::PrevHash { seq: e.seq });
        }
        if chain_hash(e.seq, &e.prev_hash, &e.entry) != e.hash {
            return Err(BrokenLink::Hash { seq: e.seq });
        }
        prev = e.hash.clone();
        expected_seq += 1;
    }
    Ok(Verified {
        events: expected_seq - 1,
        head: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 0..n {
            let entry = AuditEntry::new(
                "2026-11-26T00:00:00Z".parse().unwrap(),
                Actor::Operator("alice".into()),
                "host.enroll",
                format!("host:{i}"),
            )
            .after(serde_json::json!({"b": 1, "a": [1, {"z": null, "y": "é"}]}));
            let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
            out.push(AuditEvent::next(prev, entry));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_each_tamper_names_its_link() {
        let c = chain(5);
        assert_eq!(verify(&c).unwrap().events, 5);

        let mut edited = c.clone();
        edited[2].entry.object = "host:99".into();
        assert_eq!(verify(&edited), Err(BrokenLink::Hash { seq: 3 }));

        let mut removed = c.clone();
        removed.remove(1);
        assert_eq!(
            verify(&removed),
            Err(BrokenLink::Sequence {
                seq: 3,
                expected: 2
            })
        );

        // Removing an event and renumbering the rest still breaks the previous-hash link.
        let mut renumbered = c.clone();
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(verify(&renumbered), Err(BrokenLink::PrevHash { seq: 2 }));
    }

    #[test]
    fn the_hash_does_not_depend_on_key_order() {
        let at: Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
        let a = AuditEntry::new(at, Actor::System("t".into()), "x", "y")
            .after(serde_json::from_str(r#"{"a":1,"b":{"d":2,"c":3}}"#).unwrap());
        let b = AuditEntry::new(at, Actor::System("t".into()), "x", "y")
            .after(serde_json::from_str(r#"{"b":{"c":3,"d":2},"a":1}"#).unwrap());
        assert_eq!(chain_hash(1, GENESIS, &a), chain_hash(1, GENESIS, &b));
    }
}
