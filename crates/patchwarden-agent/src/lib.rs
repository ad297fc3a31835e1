//! The agent's host side: what this host is (facts), what is installed on it (inventory
//! collectors for dpkg, rpm and apk, and SBOM input), and what its own repositories offer
//! (available updates); and, in [`agent`], the part that talks to the server (enrollment,
//! the check-in loop, leasing and reporting jobs).
//!
//! Parsing is pure wherever the format allows — functions from bytes to values, tested on the
//! real files — and the thin functions that read a `--root` call them. Only [`agent`] talks to
//! the network.

pub mod agent;
pub mod executor;
pub mod facts;
pub mod inventory;
pub mod root;
