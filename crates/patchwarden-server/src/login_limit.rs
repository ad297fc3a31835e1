//! Login rate limiting by source address, and by user name for names that are not users.
//!
//! A user's own lockout lives in the store (so every server sharing the database sees it);
//! this limiter adds what the store cannot count: an address that tries many user names, and a
//! name that belongs to nobody. Counting unknown names like real ones means a locked answer
//! does not tell an attacker which names exist. It is kept in memory per server, bounded: past
//! [`MAX_KEYS`] keys it forgets expired windows first and then stops adding new ones, leaving
//! the store's per-user lockout in force (a flood of addresses must not lock everyone out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// The most addresses and names remembered at once.
pub(crate) const MAX_KEYS: usize = 100_000;

/// What is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Address(IpAddr),
    /// A user name that is not a user (lower-cased, so case games count once).
    UnknownName(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: i64,
    failures: u32,
}

/// Failures per key within a window.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    max_failures: u32,
    window_secs: i64,
    windows: Mutex<HashMap<Key, Window>>,
}

impl LoginLimiter {
    pub(crate) fn new(max_failures: u32, window_secs: u32) -> LoginLimiter {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window_secs: i64::from(window_secs.max(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` while `key` has used up its failures: the seconds until its window ends.
    pub(crate) fn check(&self, key: &Key, now: i64) -> Result<(), u64> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        match windows.get(key) {
            Some(w) if w.failures >= self.max_failures && now < w.started + self.window_secs => {
                Err(u64::try_from(w.started + self.window_secs - now).unwrap_or(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed login for `key`.
    pub(crate) fn fail(&self, key: Key, now: i64) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if !windows.contains_key(&key) && windows.len() >= MAX_KEYS {
            let window = self.window_secs;
            windows.retain(|_, w| now < w.started + window);
            if windows.len() >= MAX_KEYS {
                tracing::warn!(
                    keys = windows.len(),
                    "the login limiter is full: a new address or name is not counted"
                );
                return;
            }
        }
        let w = windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window_secs {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let limiter = LoginLimiter::new(3, 60);
        let key = Key::Address("192.0.2.1".parse().unwrap());
        let other = Key::Address("192.0.2.2".parse().unwrap());
        for t in 0..3 {
            assert_eq!(limiter.check(&key, t), Ok(()));
            limiter.fail(key.clone(), t);
        }
        assert_eq!(limiter.check(&key, 3), Err(57));
        assert_eq!(limiter.check(&other, 3), Ok(()));
        assert_eq!(limiter.check(&key, 60), Ok(()));
        // A new window starts counting from one.
        limiter.fail(key.clone(), 61);
        assert_eq!(limiter.check(&key, 62), Ok(()));
    }
}
