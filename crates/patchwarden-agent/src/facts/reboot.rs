//! Whether a host needs a reboot to finish its updates, and why, in words an operator can act
//! on.
//!
//! Debian and Ubuntu say so themselves: packages that need a reboot create
//! `/run/reboot-required` and add their names to `/run/reboot-required.pkgs` (older releases
//! use `/var/run`, which is usually a link to `/run`). rpm distributions keep no such flag, so
//! the rule there is the one `needs-restarting -r` applies to the kernel: a reboot is due when
//! the newest installed kernel package is newer, in rpm order, than the running kernel.

use patchwarden_core::inventory::{Manager, Package};
use patchwarden_version::rpm;

use crate::root::{HostRoot, RootError};

/// The most of `reboot-required.pkgs` that is read: thousands of package names.
const PKGS_LIMIT: u64 = 256 * 1024;

/// Reasons from Debian's and Ubuntu's `reboot-required` flag files; empty when there is none.
pub fn flag_file_reasons(root: &HostRoot) -> Result<Vec<String>, RootError> {
    let mut reasons = Vec::new();
    let mut seen_flags = Vec::new();
    for dir in ["run", "var/run"] {
        let flag = format!("{dir}/reboot-required");
        let Some(resolved) = root.resolve(&flag)? else {
            continue;
        };
        // `var/run` is normally a link to `/run`: the same flag, reported once.
        if seen_flags.contains(&resolved) {
            continue;
        }
        seen_flags.push(resolved);
        let pkgs = root
            .read_text(&format!("{flag}.pkgs"), PKGS_LIMIT)?
            .unwrap_or_default();
        let mut named = Vec::new();
        for name in pkgs.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !named.contains(&name) {
                named.push(name);
            }
        }
        if named.is_empty() {
            reasons.push(format!("/{flag} exists"));
        }
        for name in named {
            let reason = format!("{name} asks for a reboot (/{flag}.pkgs)");
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    Ok(reasons)
}

/// What comparing the running kernel with the installed kernel packages found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelCheck {
    /// The running kernel is the newest installed one (or newer).
    Current,
    /// A newer kernel is installed than the one running.
    Outdated { running: String, newest: String },
    /// The check could not be made, and why.
    Unknown(String),
}

impl KernelCheck {
    /// The reboot reason, when there is one.
    pub fn reason(&self) -> Option<String> {
        match self {
            KernelCheck::Outdated { running, newest } => {
                Some(format!("kernel {newest} installed, {running} running"))
            }
            _ => None,
        }
    }
}

/// Compares the running kernel (`uname -r`, e.g. `5.14.0-362.8.1.el9_3.x86_64`) with the
/// newest installed kernel package of the same flavour among `packages` (rpm's `kernel`,
/// `kernel-core`; `kernel-rt*` for real-time kernels, `kernel-uek*` for Oracle's).
pub fn kernel_check(running: &str, packages: &[Package]) -> KernelCheck {
    let flavour = Flavour::of_release(running);
    let kernels: Vec<&Package> = packages
        .iter()
        .filter(|p| p.manager == Manager::Rpm && p.status.files_present())
        .filter(|p| Flavour::of_package(&p.name) == Some(flavour))
        .collect();
    if kernels.is_empty() {
        return KernelCheck::Unknown(format!(
            "no {} kernel package is installed to compare the running kernel {running} with",
            flavour.name()
        ));
    }
    let running_vr = running_version_release(running);
    if let Err(e) = rpm::parse_ref(running_vr) {
        return KernelCheck::Unknown(format!(
            "the running kernel {running} has no rpm version: {e}"
        ));
    }
    let mut newest: Option<String> = None;
    for k in kernels {
        let full = k.full_version().into_owned();
        if let Err(e) = rpm::parse_ref(&full) {
            return KernelCheck::Unknown(format!("kernel package {}: {e}", k.name));
        }
        let newer = match &newest {
            None => true,
            Some(n) => rpm::compare(&full, n).is_ok_and(|o| o.is_gt()),
        };
        if newer {
            newest = Some(full);
        }
    }
    let Some(newest) = newest else {
        return KernelCheck::Unknown("no kernel package".into());
    };
    let outdated = rpm::compare(running_vr, &newest).is_ok_and(|o| o.is_lt());
    if outdated {
        KernelCheck::Outdated {
            running: running_vr.to_string(),
            newest,
        }
    } else {
        KernelCheck::Current
    }
}

/// `5.14.0-362.8.1.el9_3.x86_64+debug` → `5.14.0-362.8.1.el9_3`: the package's
/// version-release, without the architecture and variant that `uname -r` appends.
fn running_version_release(running: &str) -> &str {
    let base = running.split('+').next().unwrap_or(running);
    const ARCHES: &[&str] = &[
        ".x86_64", ".aarch64", ".ppc64le", ".s390x", ".i686", ".armv7hl", ".noarch",
    ];
    ARCHES
        .iter()
        .find_map(|a| base.strip_suffix(a))
        .unwrap_or(base)
}

/// Kernel families whose versions are compared only with each other: installing a newer
/// real-time kernel does not make a stock kernel stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Stock,
    Realtime,
    Uek,
}

impl Flavour {
    fn of_release(running: &str) -> Flavour {
        if running.contains("uek") {
            Flavour::Uek
        } else if running.contains(".rt") || running.contains("+rt") {
            Flavour::Realtime
        } else {
            Flavour::Stock
        }
    }

    fn of_package(name: &str) -> Option<Flavour> {
        match name {
            "kernel" | "kernel-core" => Some(Flavour::Stock),
            "kernel-rt" | "kernel-rt-core" => Some(Flavour::Realtime),
            "kernel-uek" | "kernel-uek-core" => Some(Flavour::Uek),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flavour::Stock => "stock",
            Flavour::Realtime => "real-time",
            Flavour::Uek => "UEK",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwarden_core::inventory::PackageStatus;

    fn kernel(name: &str, version: &str) -> Package {
        Package {
            manager: Manager::Rpm,
            name: name.into(),
            version: version.into(),
            arch: Some("x86_64".into()),
            source_name: Some("kernel".into()),
            source_version: Some(version.into()),
            epoch: None,
            module: None,
            status: PackageStatus::Installed,
        }
    }

    // Versions from AlmaLinux 9 kernel advisories (ALSA-2023:6583, ALSA-2024:2394).
    #[test]
    fn a_newer_installed_kernel_needs_a_reboot() {
        let installed = [
            kernel("kernel-core", "5.14.0-362.8.1.el9_3"),
            kernel("kernel-core", "5.14.0-427.13.1.el9_4"),
            kernel("kernel-rt-core", "5.14.0-427.99.1.el9_4"),
        ];
        let check = kernel_check("5.14.0-362.8.1.el9_3.x86_64", &installed);
        assert_eq!(
            check.reason().as_deref(),
            Some("kernel 5.14.0-427.13.1.el9_4 installed, 5.14.0-362.8.1.el9_3 running")
        );
        assert_eq!(
            kernel_check("5.14.0-427.13.1.el9_4.x86_64", &installed),
            KernelCheck::Current
        );
        // A debug variant of the newest kernel is current too.
        assert_eq!(
            kernel_check("5.14.0-427.13.1.el9_4.x86_64+debug", &installed),
            KernelCheck::Current
        );
    }

    #[test]
    fn without_kernel_packages_the_answer_is_unknown_and_says_why() {
        let check = kernel_check("6.1.0-18-amd64", &[]);
        match check {
            KernelCheck::Unknown(why) => assert!(why.contains("no stock kernel package"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
