//! Version 1 of the API, served under `/api/v1/`.

pub mod agent;
pub mod changes;
pub mod exceptions;
pub mod feeds;
pub mod fleet;
pub mod jobs;
pub mod manifest;
pub mod operator;
pub mod problem;
pub mod signing;

/// Where version 1 is served.
pub const PREFIX: &str = "/api/v1";
