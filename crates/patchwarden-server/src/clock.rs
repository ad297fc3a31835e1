//! The server's one reading of the clock. Everything else takes `now` as a parameter (the
//! store, the policy, the matcher), so tests can set time to the second; this is where the
//! shell asks the operating system.

use jiff::Timestamp;

/// The current time.
pub fn now() -> Timestamp {
    // The shell's single call site: request handlers and start-up pass this value down.
    #[allow(clippy::disallowed_methods)]
    Timestamp::now()
}
