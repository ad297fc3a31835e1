//! The agent's network side: enrollment, the check-in loop, inventory upload (full or delta),
//! and leasing and reporting jobs.
//!
//! **Architecture Invariant**: this part reads the host and talks to the server; it never
//! changes the host itself. Installing packages, rebooting and rolling back belong to the small
//! privileged executor ([`crate::executor`], issue 9), which gets a job's typed description —
//! never a command — from here and checks the job's manifest itself, so the chatty part (or
//! the server) cannot make it run anything but its fixed package-manager commands. An agent
//! loaded without the executor ([`Agent::with_executor`]) refuses such jobs with a reason
//! the server records.

pub mod jobs;
pub mod session;
pub mod state;

pub use session::{Agent, AgentError, CycleReport, EnrollOptions, enroll};
pub use state::{Identity, StateDir, StateError};
