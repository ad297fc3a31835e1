//! `patchwarden serve`: the server that agents enroll with and check in to, which keeps every
//! host's inventory and findings current and records every change in the audit chain.
//!
//! The shell around the pure crates: axum on tokio for HTTP, rustls for TLS, the `Store` trait
//! for everything kept. Handlers read bodies with limits (`body`), authenticate agents by their
//! Ed25519 signatures (`auth`), and fail through one `ApiError` (`error`), which decides what
//! the client sees and what only the log gets. Findings are kept current incrementally
//! (`findings`) with the same judgement `patchwarden scan` makes (`matcher`). Operators log
//! in with argon2-hashed passwords or API tokens (`secrets`, `operators`), and every route
//! declares who may call it (`access`, `routes::declare`): what is not declared is refused.
//!
//! **Architecture Invariant**: the server never holds a secret that lets it act as an agent
//! (only public keys and hashes of enrollment secrets), and it reads the clock in one place
//! (`clock`).

mod access;
pub mod admin;
pub mod advisories;
mod auth;
mod body;
pub mod changes;
pub mod clock;
pub mod config;
pub mod downloads;
mod error;
pub mod feeds;
mod findings;
pub mod host_state;
mod login_limit;
mod matcher;
mod memory;
pub mod metrics;
pub mod notify;
pub mod operators;
pub mod reports;
mod routes;
pub mod secrets;
pub mod serve;
mod state;
pub mod status;
pub mod tls;
mod traced;
mod web;

pub use access::Access;
pub use config::{Config, ConfigError};
pub use error::ApiError;
pub use routes::Declared;
pub use serve::{Running, ServeError, open_store, shutdown_signal, start, start_with_store};
pub use state::AppState;
