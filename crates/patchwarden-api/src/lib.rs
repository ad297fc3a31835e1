//! The wire types of Patchwarden's HTTP API: what the server, the client and the agent say to
//! each other, versioned (`v1`) so that a fleet of agents keeps working while the server moves
//! on.
//!
//! **API Boundary**: these types are a contract with agents already deployed. Field names and
//! meanings only ever grow (new optional fields); a change that breaks an old agent is a new
//! version module. Where a wire type differs from a domain type of `patchwarden-core`, the
//! conversion is written out here (`From`/`TryFrom`), never left to a shared `Serialize`; where
//! the core type's JSON is already documented as stable (`HostFacts`, `Inventory`,
//! `InventoryDelta`, `PackagesDigest`), the wire carries it as it is.
//!
//! This crate does no I/O: it is serde types, the RFC 9457 problem document, and the canonical
//! form of a signed agent request, which the client and the server must compute identically.

pub mod v1;
