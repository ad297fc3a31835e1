//! `patchwarden inventory`: what this host (or a host mounted under `--root`, or the subject of
//! an SBOM) is and what is installed on it, as the agent would report it.
//!
//! The JSON is exactly the serde form of `patchwarden_core::inventory::Inventory`, documented
//! field by field in `docs/inventory.md`; the table is for people. Warnings (a collector that
//! failed, a database read only in part, a fact that could not be known) go to standard error
//! and do not stop the other collectors.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use patchwarden_agent::inventory::collect::{self, Collected};
use patchwarden_agent::inventory::updates;
use patchwarden_core::inventory::{Inventory, Package};

#[derive(Debug, Args)]
pub(crate) struct InventoryArgs {
    /// The directory that holds the host's file system: `/` for this host, or a mounted disk
    /// or unpacked image. Symlinks inside it are resolved inside it.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Read the packages from an SBOM (SPDX 2.x or CycloneDX 1.4–1.6 JSON) instead of a root.
    #[arg(long, value_name = "FILE", conflicts_with = "root")]
    sbom: Option<PathBuf>,
    /// Also ask the host's own package managers (apt, dnf, apk, run on the root) which newer
    /// versions its configured repositories offer, as they would decide it.
    #[arg(long, conflicts_with = "sbom")]
    updates: bool,
    /// Refresh the repositories' metadata first (`apt-get update`, …): this downloads.
    #[arg(long, requires = "updates")]
    refresh: bool,
    /// How to print the inventory.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// The inventory's JSON form (docs/inventory.md).
    Json,
    /// Aligned columns and a summary line, for people.
    Table,
}

pub(crate) fn run(args: InventoryArgs) -> anyhow::Result<ExitCode> {
    let Collected {
        inventory,
        warnings,
    } = match &args.sbom {
        Some(path) => collect::collect_sbom(path),
        None => collect::collect_root(&args.root),
    }
    // The error's message already names its causes; anyhow's chain would repeat them.
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &warnings {
        eprintln!("patchwarden: warning: {}", printable(&w.to_string()));
    }
    let mut inventory = inventory;
    if args.updates {
        let (report, errors) = updates::for_inventory(&args.root, &inventory, args.refresh);
        for (manager, e) in errors {
            eprintln!(
                "patchwarden: warning: updates ({}): {}",
                manager.name(),
                printable(&e.to_string())
            );
        }
        for w in &report.withheld {
            eprintln!(
                "patchwarden: note: {} {} is offered but not taken: {:?}",
                w.update.name, w.update.candidate, w.reason
            );
        }
        inventory.updates = report.updates;
        #[allow(clippy::disallowed_methods)] // when the updates were read: the shell's clock
        let now = jiff::Timestamp::now();
        inventory.updates_checked_at = Some(now);
    }
    match write_inventory(&inventory, args.format) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A reader that stopped early (`| head`) is not an error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("writing the inventory"),
    }
}

fn write_inventory(inventory: &Inventory, format: Format) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, inventory)?;
            writeln!(out)?;
        }
        Format::Table => write_table(&mut out, inventory)?,
    }
    out.flush()
}

/// The inventory for people: the host's facts, one aligned row per package, and a summary.
fn write_table(out: &mut impl Write, inv: &Inventory) -> io::Result<()> {
    let h = &inv.host;
    let os = match (&h.os.pretty_name, h.os.id.is_empty()) {
        (Some(p), _) => p.clone(),
        (None, false) => h.os.id.clone(),
        (None, true) => "unknown".into(),
    };
    let facts: [(&str, String); 7] = [
        (
            "host",
            or_unknown(Some(&h.hostname).filter(|s| !s.is_empty())),
        ),
        (
            "os",
            match &h.os.ecosystem {
                Some(e) => format!("{os} ({e})"),
                None => os,
            },
        ),
        ("arch", or_unknown(h.arch.as_ref())),
        ("kernel", or_unknown(h.kernel.as_ref())),
        (
            "booted",
            or_unknown(h.boot_time.map(|t| t.to_string()).as_ref()),
        ),
        ("machine id", or_unknown(h.machine_id.as_ref())),
        (
            "reboot",
            if h.reboot_required {
                format!("required: {}", h.reboot_reasons.join("; "))
            } else {
                "not required".into()
            },
        ),
    ];
    for (k, v) in facts {
        writeln!(out, "{k:<11}{}", printable(&v))?;
    }
    writeln!(out)?;

    let header = ["MANAGER", "NAME", "VERSION", "ARCH", "SOURCE", "STATUS"];
    let rows: Vec<[String; 6]> = inv.packages.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    write_row(out, &header.map(String::from), &widths)?;
    for r in &rows {
        write_row(out, r, &widths)?;
    }

    let mut per_manager: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &inv.packages {
        *per_manager.entry(p.manager.name()).or_default() += 1;
    }
    let managers: Vec<String> = per_manager
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    let not_installed = inv
        .packages
        .iter()
        .filter(|p| p.status != patchwarden_core::inventory::PackageStatus::Installed)
        .count();
    writeln!(
        out,
        "\n{} packages{}, {not_installed} not fully installed; digest {}",
        inv.packages.len(),
        if managers.is_empty() {
            String::new()
        } else {
            format!(" ({})", managers.join(", "))
        },
        inv.packages_digest()
    )
}

fn row(p: &Package) -> [String; 6] {
    let version = p.full_version().into_owned();
    let source = match (&p.source_name, &p.source_version) {
        (Some(n), Some(v)) if *v != p.version => format!("{n} ({v})"),
        (Some(n), _) => n.clone(),
        (None, _) => "-".into(),
    };
    let status = serde_json::to_value(p.status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    [
        p.manager.name().into(),
        printable(&p.name),
        printable(&version),
        printable(p.arch.as_deref().unwrap_or("-")),
        printable(&source),
        status,
    ]
}

fn write_row(out: &mut impl Write, cells: &[String; 6], widths: &[usize; 6]) -> io::Result<()> {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

fn or_unknown(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "unknown".into())
}

/// Text from a package database, safe to print on a terminal: control characters (an escape
/// sequence planted in a package name) are shown escaped, not interpreted.
fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("bash"), "bash");
        assert_eq!(printable("evil\u{1b}[2Jname"), "evil\\u{1b}[2Jname");
        assert_eq!(printable("a\nb"), "a\\nb");
    }
}
