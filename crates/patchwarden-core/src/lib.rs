//! Patchwarden's domain: hosts, packages, advisories, findings and the pure rules over them.
//!
//! **Architecture Invariant**: this crate does no I/O, has no async and never reads the clock.
//! Time arrives as a parameter (`now: jiff::Timestamp`), so every SLA clock, window and freeze
//! is testable to the second. The agent, the server and the CLI are the shell around it.

pub mod advisory;
pub mod audit;
pub mod calendar;
pub mod change;
pub mod compliance;
pub mod exception;
pub mod finding;
pub mod install_script;
pub mod inventory;
pub mod policy;
pub mod report;
pub mod rollout;
pub mod triage;
