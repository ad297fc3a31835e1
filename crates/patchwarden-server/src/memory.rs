//! Giving the memory freed by a matcher build back to the system.
//!
//! Building the matcher reads every advisory (at start, from the files and then again from the
//! store; after a feed import, from the store) and frees nearly all of it again: only the
//! compact index stays. glibc keeps what a thread frees in that thread's arena for later
//! allocations and returns little of it by itself, and the start-up work runs on several
//! threads (the file parser, the store's reader and writer, the runtime's workers), each with
//! an arena of its own. Measured in the fleet benchmark's server after start: glibc held
//! 126 MB and counted 28 MB of it in use. `malloc_trim(0)` hands the free pages of every
//! arena back (RSS at start 144 → 92 MiB; BENCHMARKS.md, the fleet's memory).
//!
//! This is the server's one `unsafe` call (the crate denies `unsafe_code` everywhere else).

/// Returns freed heap memory to the system, where the allocator supports it (glibc); elsewhere
/// does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release_freed() {
    // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's own free lists,
    // under each arena's lock; glibc documents it as safe to call from any thread at any time
    // (MT-Safe). Its result only says whether anything was returned.
    let _released = unsafe { libc::malloc_trim(0) };
}

/// Returns freed heap memory to the system, where the allocator supports it (glibc); elsewhere
/// does nothing.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_freed() {}
