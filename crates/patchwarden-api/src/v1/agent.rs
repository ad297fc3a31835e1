//! The agent protocol: enrollment, check-in and inventory upload, under `/api/v1/agent/`.
//!
//! An agent enrolls once with an enrollment token and a public key it generated itself, and
//! from then on signs every request (see [`super::signing`]). At each check-in it sends its
//! facts and the digest of its package list; the server answers whether it wants the inventory
//! (in full, or as a delta against the digest it holds), hands out the jobs it leased to this
//! host, and says when to come back. The host facts, inventories, deltas and digests travel in
//! the JSON form `patchwarden-core` documents as stable (`docs/inventory.md`).

use jiff::Timestamp;
use patchwarden_core::inventory::{HostFacts, Inventory, InventoryDelta, PackagesDigest};
use serde::{Deserialize, Serialize};

use super::jobs::Job;

/// `POST`: enroll a new host.
pub const ENROLL_PATH: &str = "/api/v1/agent/enroll";
/// `POST`: check in.
pub const CHECK_IN_PATH: &str = "/api/v1/agent/check-in";
/// `POST`: upload the inventory, full or delta (`Content-Encoding: gzip` accepted).
pub const INVENTORY_PATH: &str = "/api/v1/agent/inventory";
/// `GET`: the CA certificate (PEM) the server's certificate chains to, for pinning.
pub const CA_PATH: &str = "/api/v1/ca.pem";

/// An enrollment token: a secret, shown to an operator once. Its `Debug` hides it so that no
/// log line carries it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnrollmentSecret(pub String);

impl std::fmt::Debug for EnrollmentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollmentSecret(<hidden>)")
    }
}

/// `POST /api/v1/agent/enroll`. The request is signed with the new key (without a host
/// header), which proves that the enrolling agent holds the private half of `public_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token: EnrollmentSecret,
    /// The agent's Ed25519 public key, 64 hex digits.
    pub public_key: String,
    pub facts: HostFacts,
    /// Retire the enrolled host that has this machine id, explicitly (a re-imaged host that
    /// kept its machine id). Without it such an enrollment is refused with
    /// `machine-id-conflict`.
    #[serde(default)]
    pub replace: bool,
    pub agent_version: String,
}

/// When to check in: every `interval_secs`, each time plus a random delay up to
/// `jitter_secs`, so that a fleet restarted at once does not arrive at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub interval_secs: u32,
    pub jitter_secs: u32,
}

/// The answer to an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub host_id: String,
    /// The host group the token was scoped to.
    pub group: String,
    pub schedule: Schedule,
    /// The host this enrollment retired (`replace`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    pub server_time: Timestamp,
}

/// `POST /api/v1/agent/check-in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInRequest {
    /// A counter the agent raises by one at every check-in and keeps on disk. Two machines
    /// running one copied agent state send the same numbers, which is how the server tells
    /// one host id used from two machines (`host-identity-conflict`).
    pub seq: u64,
    pub facts: HostFacts,
    /// The digest of the package list the agent would upload now.
    pub packages: PackagesDigest,
    pub agent_version: String,
}

/// What the server wants of the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "want", rename_all = "snake_case")]
pub enum InventoryWanted {
    /// The server holds this package list already.
    Nothing,
    /// The server holds no inventory it can diff against: send it all.
    Full,
    /// Send a delta from `base`, the digest the server holds.
    Delta { base: PackagesDigest },
}

/// The host's standing, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStanding {
    /// New hosts are flagged until their first inventory is matched and no finding of theirs
    /// is past due (policy P19: a new host must be brought current before it counts as such).
    pub new_host: bool,
    pub open_findings: u64,
}

/// The answer to a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInResponse {
    pub inventory: InventoryWanted,
    /// Jobs leased to this host by this check-in or still leased to it.
    pub jobs: Vec<Job>,
    pub schedule: Schedule,
    pub standing: HostStanding,
    pub server_time: Timestamp,
}

/// `POST /api/v1/agent/inventory`: a full inventory or a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "UploadWire")]
pub enum InventoryUpload {
    Full { inventory: Inventory },
    Delta { delta: InventoryDelta },
}

/// [`InventoryUpload`] as it is read: the same JSON (`{"kind": "full", "inventory": …}`), read
/// as a plain struct. serde reads an internally tagged enum by first copying the whole document
/// into a tree of its own to find the tag, then reading the variant from the tree: for a full
/// inventory of some 700 packages that doubled the server's cost of reading it.
#[derive(Deserialize)]
struct UploadWire {
    kind: UploadKind,
    #[serde(default)]
    inventory: Option<Inventory>,
    #[serde(default)]
    delta: Option<InventoryDelta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum UploadKind {
    Full,
    Delta,
}

impl TryFrom<UploadWire> for InventoryUpload {
    type Error = &'static str;

    /// As the tagged enum read it: the field the kind names is required, the other ignored.
    fn try_from(w: UploadWire) -> Result<InventoryUpload, &'static str> {
        match (w.kind, w.inventory, w.delta) {
            (UploadKind::Full, Some(inventory), _) => Ok(InventoryUpload::Full { inventory }),
            (UploadKind::Full, None, _) => Err("missing field `inventory`"),
            (UploadKind::Delta, _, Some(delta)) => Ok(InventoryUpload::Delta { delta }),
            (UploadKind::Delta, _, None) => Err("missing field `delta`"),
        }
    }
}

/// Findings opened and closed by one inventory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCounts {
    pub open: u64,
    pub opened: u64,
    pub closed: u64,
}

/// The answer to an inventory upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryAccepted {
    /// The digest of the package list the server now holds.
    pub packages: PackagesDigest,
    pub findings: FindingCounts,
}

#[cfg(test)]
mod upload_tests {
    use super::*;

    fn read(json: &str) -> Result<InventoryUpload, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn uploads_read_back_what_they_write_and_refuse_what_the_tagged_enum_refused() {
        let mut inventory = Inventory::default();
        inventory.host.hostname = "web-1".into();
        let full = InventoryUpload::Full { inventory };
        let json = serde_json::to_string(&full).unwrap();
        assert!(
            json.starts_with(r#"{"kind":"full","inventory":{"#),
            "{json}"
        );
        assert_eq!(read(&json).unwrap(), full);

        let delta = InventoryUpload::Delta {
            delta: patchwarden_core::inventory::delta(&Inventory::default(), &Inventory::default()),
        };
        let json = serde_json::to_string(&delta).unwrap();
        assert!(json.starts_with(r#"{"kind":"delta","delta":{"#), "{json}");
        assert_eq!(read(&json).unwrap(), delta);

        // The kind's own field is required; the other one is ignored, as before.
        let e = read(r#"{"kind":"full"}"#).unwrap_err();
        assert!(e.contains("missing field `inventory`"), "{e}");
        let e = read(r#"{"kind":"delta","inventory":null}"#).unwrap_err();
        assert!(e.contains("missing field `delta`"), "{e}");
        let e = read(r#"{"kind":"snapshot","inventory":{}}"#).unwrap_err();
        assert!(e.contains("unknown variant `snapshot`"), "{e}");
        let e = read("{}").unwrap_err();
        assert!(e.contains("missing field `kind`"), "{e}");
        assert!(read(r#"{"kind":"full","inventory":{"host":7}}"#).is_err());
        assert!(read("[]").is_err());
    }
}
