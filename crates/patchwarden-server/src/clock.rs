//! The server's one reading of the clock. Everything else takes `now` as a parameter (the
//! store, the policy, the matcher), so tests can set time to the second; this is where the
//! shell asks the operating system.
//!
//! `patchwarden demo` alone moves this clock back while it seeds its simulated fleet
//! ([`set_seeding_offset`]), so that hosts are first seen days or weeks ago and their findings
//! reach every SLA state through the real agent protocol and the real policy. `serve` never
//! sets it, and the demo sets it back to zero before it prints its URL.

use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};

/// How many seconds [`now`] runs behind the operating system's clock (0 outside the demo's
/// seeding phase).
static SEEDING_OFFSET_SECS: AtomicI64 = AtomicI64::new(0);

/// The current time.
pub fn now() -> Timestamp {
    // The shell's single call site: request handlers and start-up pass this value down.
    #[allow(clippy::disallowed_methods)]
    let real = Timestamp::now();
    let back = SEEDING_OFFSET_SECS.load(Ordering::Acquire);
    if back == 0 {
        return real;
    }
    real.checked_sub(SignedDuration::from_secs(back))
        .unwrap_or(real)
}

/// Demo only: makes [`now`] run `back` behind the real clock (zero restores it). Process-wide:
/// only the demo's seeding phase, before it serves anyone, calls it.
pub fn set_seeding_offset(back: SignedDuration) {
    SEEDING_OFFSET_SECS.store(back.as_secs(), Ordering::Release);
}
