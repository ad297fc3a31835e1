//! Host facts: OS release, hostname, architecture, kernel, boot time, machine id and whether a
//! reboot is required, all read relative to a root directory.
//!
//! The root is `/` for the host the agent runs on, or any directory that holds a host's file
//! system (a mounted disk, an unpacked container image). Only the live host has a kernel to
//! ask, so facts that come from the kernel (hostname, architecture) are read from `proc/` under
//! the root, where an image usually has nothing; what cannot be known is left empty and said in
//! [`FactsReport::notes`] rather than guessed.
//!
//! Every file read here is small and read with a size limit; no fact's failure stops the
//! others.

pub mod os_release;
pub mod reboot;

use jiff::Timestamp;
use patchwarden_core::inventory::{HostFacts, OsInfo};

use crate::root::{HostRoot, RootError};

/// The most read of any one facts file: os-release files are a few hundred bytes, and
/// `/proc/stat` on a machine with hundreds of CPUs a few tens of kilobytes.
const FACT_FILE_LIMIT: u64 = 1024 * 1024;

/// The files that say which operating system this is, in the order they are tried.
pub const OS_FILES: [&str; 5] = [
    "etc/os-release",
    "usr/lib/os-release",
    "etc/lsb-release",
    "etc/redhat-release",
    "etc/alpine-release",
];

/// Facts about a host, and what could not be found out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactsReport {
    pub facts: HostFacts,
    /// The file the OS came from (`etc/os-release` …), when one was found.
    pub os_source: Option<String>,
    /// What could not be known, and why, for people: `running kernel unknown: …`.
    pub notes: Vec<String>,
}

/// Collects the facts of the host under `root`. Never fails: each fact that cannot be read
/// is left empty with a note.
pub fn collect(root: &HostRoot) -> FactsReport {
    let mut notes = Vec::new();

    let (os, os_source) = match read_os_info(root) {
        Ok(Some((source, os))) => (os, Some(source)),
        Ok(None) => {
            notes.push(format!(
                "operating system unknown: none of {} exists",
                OS_FILES.join(", ")
            ));
            (OsInfo::default(), None)
        }
        Err(e) => {
            notes.push(format!("operating system unknown: {e}"));
            (OsInfo::default(), None)
        }
    };

    let hostname = match read_hostname(root) {
        Ok(Some(h)) => h,
        Ok(None) => {
            notes.push("hostname unknown: etc/hostname is missing or empty".into());
            String::new()
        }
        Err(e) => {
            notes.push(format!("hostname unknown: {e}"));
            String::new()
        }
    };

    let kernel = match first_line(root, "proc/sys/kernel/osrelease") {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            notes.push(
                "running kernel unknown: proc/sys/kernel/osrelease is missing (not a live host)"
                    .into(),
            );
            None
        }
        Err(e) => {
            notes.push(format!("running kernel unknown: {e}"));
            None
        }
    };

    let arch = match first_line(root, "proc/sys/kernel/arch") {
        Ok(Some(a)) => Some(a),
        // Kernels before 6.1 have no `arch` file; the live host's architecture is then the one
        // this agent was built for (a 32-bit agent on a 64-bit kernel would say i686: rare).
        Ok(None) if root.is_live() => Some(std::env::consts::ARCH.to_string()),
        Ok(None) => None,
        Err(e) => {
            notes.push(format!("architecture unknown: {e}"));
            None
        }
    };

    let boot_time = match root.read_text("proc/stat", FACT_FILE_LIMIT) {
        Ok(Some(text)) => {
            let t = parse_btime(&text);
            if t.is_none() {
                notes.push("boot time unknown: proc/stat has no valid btime line".into());
            }
            t
        }
        Ok(None) => {
            notes.push("boot time unknown: proc/stat is missing (not a live host)".into());
            None
        }
        Err(e) => {
            notes.push(format!("boot time unknown: {e}"));
            None
        }
    };

    let machine_id = match first_line(root, "etc/machine-id") {
        Ok(Some(id)) if is_machine_id(&id) => Some(id),
        Ok(Some(id)) => {
            notes.push(format!(
                "machine id unknown: etc/machine-id holds {:?}, not 32 hex digits",
                truncate(&id, 40)
            ));
            None
        }
        Ok(None) => None,
        Err(e) => {
            notes.push(format!("machine id unknown: {e}"));
            None
        }
    };

    let reboot_reasons = match reboot::flag_file_reasons(root) {
        Ok(r) => r,
        Err(e) => {
            notes.push(format!("reboot flag unknown: {e}"));
            Vec::new()
        }
    };

    FactsReport {
        facts: HostFacts {
            hostname,
            os,
            arch,
            kernel,
            boot_time,
            machine_id,
            reboot_required: !reboot_reasons.is_empty(),
            reboot_reasons,
        },
        os_source,
        notes,
    }
}

/// The operating system, from the first of [`OS_FILES`] that exists and names one, with the
/// file it came from.
pub fn read_os_info(root: &HostRoot) -> Result<Option<(String, OsInfo)>, RootError> {
    for file in OS_FILES {
        let Some(text) = root.read_text(file, FACT_FILE_LIMIT)? else {
            continue;
        };
        let os = match file {
            "etc/os-release" | "usr/lib/os-release" => Some(os_release::from_os_release(&text)),
            "etc/lsb-release" => os_release::from_lsb_release(&text),
            "etc/redhat-release" => os_release::from_redhat_release(&text),
            _ => os_release::from_alpine_release(&text),
        };
        if let Some(os) = os {
            return Ok(Some((file.to_string(), os)));
        }
    }
    Ok(None)
}

/// The host's name: the kernel's for the live host, else `etc/hostname`.
fn read_hostname(root: &HostRoot) -> Result<Option<String>, RootError> {
    if root.is_live()
        && let Some(h) = first_line(root, "proc/sys/kernel/hostname")?
    {
        return Ok(Some(h));
    }
    // etc/hostname may carry comments (hostname(5)); the name is the first other line.
    let Some(text) = root.read_text("etc/hostname", FACT_FILE_LIMIT)? else {
        return Ok(None);
    };
    Ok(text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from))
}

/// The first line of a small file, trimmed; `None` when the file is missing or blank.
fn first_line(root: &HostRoot, rel: &str) -> Result<Option<String>, RootError> {
    Ok(root.read_text(rel, FACT_FILE_LIMIT)?.and_then(|t| {
        t.lines()
            .next()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
    }))
}

/// The boot time from `/proc/stat`'s `btime` line (seconds since the Unix epoch).
pub fn parse_btime(proc_stat: &str) -> Option<Timestamp> {
    let secs: i64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Timestamp::from_second(secs).ok()
}

/// `machine-id(5)`: 32 lower-case hex digits.
fn is_machine_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_is_read_and_garbage_is_none() {
        let t = parse_btime("cpu  1 2 3\nbtime 1795708984\nprocesses 5\n").unwrap();
        assert_eq!(t.as_second(), 1_795_708_984);
        assert_eq!(parse_btime("btime soon\n"), None);
        assert_eq!(parse_btime("btime 99999999999999999\n"), None);
        assert_eq!(parse_btime(""), None);
    }

    #[test]
    fn machine_ids_are_checked() {
        assert!(is_machine_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_machine_id("uninitialized"));
        assert!(!is_machine_id("0123456789ABCDEF0123456789ABCDEF"));
    }
}
