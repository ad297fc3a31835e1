//! What the conformance tests are made of: times, tokens, hosts and real inventories.
//!
//! Inventories are built from the Debian 12 archive listings in the shared test data
//! (`debian/bookworm-main-amd64.tsv` and `bookworm-security-main-amd64.tsv`): the same packages
//! at their release version and at their security update, the way a real host changes when it
//! is patched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::{HostFacts, Inventory, Manager, OsInfo, Package, PackageStatus};
use uuid::Uuid;

use crate::{Host, NewEnrollmentToken, NewHost, SecretHash, Store};

/// The shared test data directory: `../shared/data` beside the workspace, or
/// `PATCHWARDEN_SHARED_DATA`.
pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("debian").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// A fixed starting time; tests move forward from it.
pub fn t0() -> Timestamp {
    // A constant that parses; written out so a typo fails every test at once, loudly.
    match "2026-11-26T09:00:00.123456789Z".parse() {
        Ok(t) => t,
        Err(e) => panic!("t0: {e}"),
    }
}

/// `t0` plus `secs` seconds.
pub fn at(secs: i64) -> Timestamp {
    match t0().checked_add(SignedDuration::from_secs(secs)) {
        Ok(t) => t,
        Err(e) => panic!("t0 + {secs}s: {e}"),
    }
}

/// An audit entry by the operator `alice`.
pub fn entry(now: Timestamp, action: &str, object: impl Into<String>) -> AuditEntry {
    AuditEntry::new(now, Actor::Operator("alice".into()), action, object)
}

/// A new token for `group`, valid for an hour from `t0`, with `max_uses`; its secret is
/// `secret`.
pub fn new_token(secret: &str, group: &str, max_uses: u32) -> NewEnrollmentToken {
    NewEnrollmentToken {
        id: Uuid::new_v4(),
        secret_hash: SecretHash::of(secret.as_bytes()),
        group: group.into(),
        expires_at: at(3600),
        max_uses,
        note: Some(format!("for {group}")),
        created_by: "alice".into(),
    }
}

/// Facts of a Debian 12 host.
/// The audit chain's last sequence number (0 while it is empty): unchanged when a refused
/// change appended nothing.
pub async fn audit_seq(store: &Arc<dyn Store>) -> i64 {
    store.audit_head().await.unwrap().map_or(0, |h| h.seq)
}

/// `upload` applied to `host` at `at(t)`, with the two audit entries an upload makes.
pub async fn apply_at(
    store: &Arc<dyn Store>,
    host: uuid::Uuid,
    upload: crate::PreparedUpload,
    t: i64,
) -> crate::Result<(
    crate::FindingSync,
    patchwarden_core::inventory::PackagesDigest,
)> {
    store
        .apply_inventory(
            host,
            upload,
            at(t),
            entry(at(t), "findings.sync", "h"),
            entry(at(t), "inventory.replace", "h"),
        )
        .await
}

pub fn facts(hostname: &str, machine_id: &str) -> HostFacts {
    HostFacts {
        hostname: hostname.into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            id_like: Vec::new(),
            ecosystem: Some("Debian:12".into()),
        },
        arch: Some("x86_64".into()),
        kernel: Some("6.1.0-18-amd64".into()),
        boot_time: Some(t0()),
        machine_id: Some(machine_id.into()),
        reboot_required: false,
        reboot_reasons: Vec::new(),
    }
}

pub fn new_host(hostname: &str, machine_id: &str) -> NewHost {
    NewHost {
        id: Uuid::new_v4(),
        public_key: format!("ed25519:{}", Uuid::new_v4().simple()),
        facts: facts(hostname, machine_id),
    }
}

/// Creates a token in `group` and enrolls one host with it.
pub async fn enrolled(store: &Arc<dyn Store>, group: &str, hostname: &str) -> Host {
    let secret = format!("secret-{}", Uuid::new_v4());
    let token = new_token(&secret, group, 1);
    let id = token.id;
    if let Err(e) = store
        .create_enrollment_token(
            token,
            t0(),
            entry(t0(), "token.create", format!("token:{id}")),
        )
        .await
    {
        panic!("create token: {e}");
    }
    let host = new_host(hostname, &Uuid::new_v4().simple().to_string());
    let hid = host.id;
    match store
        .enroll_host(
            SecretHash::of(secret.as_bytes()),
            host,
            at(1),
            entry(at(1), "host.enroll", format!("host:{hid}")),
        )
        .await
    {
        Ok(h) => h,
        Err(e) => panic!("enroll: {e}"),
    }
}

/// The packages of `debian/<file>`: (name, version, arch, source) rows.
fn listing(file: &str) -> Vec<(String, String, String, String)> {
    let path = shared_data().join("debian").join(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.to_owned(),
                f.next()?.to_owned(),
                f.next()?.to_owned(),
                f.next()?.to_owned(),
            ))
        })
        .collect()
}

fn package(name: &str, version: &str, arch: &str, source: &str) -> Package {
    // The listing's source column is `name` or `name (version)` when the source version
    // differs from the binary's.
    let (source_name, source_version) = match source.split_once(" (") {
        Some((n, v)) => (n.to_owned(), v.trim_end_matches(')').to_owned()),
        None => (source.to_owned(), version.to_owned()),
    };
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some(arch.into()),
        source_name: Some(source_name),
        source_version: Some(source_version),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

/// Two inventories of the same `n` packages: before (Debian 12's release versions) and after
/// (their security updates). Every package differs between the two.
pub fn debian_inventories(n: usize) -> (Inventory, Inventory) {
    let security = listing("bookworm-security-main-amd64.tsv");
    let main: std::collections::HashMap<(String, String), (String, String)> =
        listing("bookworm-main-amd64.tsv")
            .into_iter()
            .map(|(p, v, a, s)| ((p, a), (v, s)))
            .collect();
    let mut before = Vec::new();
    let mut after = Vec::new();
    for (p, v, a, s) in security {
        if before.len() == n {
            break;
        }
        if let Some((old_v, old_s)) = main.get(&(p.clone(), a.clone())) {
            if old_v == &v {
                continue;
            }
            before.push(package(&p, old_v, &a, old_s));
            after.push(package(&p, &v, &a, &s));
        }
    }
    assert_eq!(
        before.len(),
        n,
        "the Debian listings hold fewer than {n} updated packages"
    );
    let host = facts("inventory-host", "0123456789abcdef0123456789abcdef");
    (
        Inventory {
            host: host.clone(),
            packages: before,
            ..Inventory::default()
        },
        Inventory {
            host,
            packages: after,
            ..Inventory::default()
        },
    )
}

/// A finding on `package` (as installed in `inv`) for `vulnerability`, fixed in the
/// package's version in `fixed_in`.
pub fn finding(p: &Package, vulnerability: &str, fixed: Option<&Package>) -> Finding {
    Finding {
        vulnerability: vulnerability.into(),
        aliases: Vec::new(),
        advisories: vec![format!("DSA-{vulnerability}")],
        manager: p.manager,
        package: p.name.clone(),
        arch: p.arch.clone(),
        source_package: p.source_name.clone(),
        installed: p
            .source_version
            .clone()
            .unwrap_or_else(|| p.version.clone()),
        fixed: fixed.and_then(|f| f.source_version.clone()),
        ecosystem: "Debian:12".into(),
        available_at: Some(t0()),
        published_at: Some(t0()),
        explanation: format!("{} is below the fixed version", p.name),
    }
}

/// An openssl finding on Debian 12 for `vulnerability`, with no dates: what the migration tests
/// of both backends store in a database as an older release left it.
pub fn openssl_finding(vulnerability: &str) -> Finding {
    Finding {
        vulnerability: vulnerability.into(),
        aliases: Vec::new(),
        advisories: vec![format!("DSA-{vulnerability}")],
        manager: Manager::Dpkg,
        package: "openssl".into(),
        arch: Some("amd64".into()),
        source_package: Some("openssl".into()),
        installed: "3.0.11-1~deb12u1".into(),
        fixed: Some("3.0.11-1~deb12u2".into()),
        ecosystem: "Debian:12".into(),
        available_at: None,
        published_at: None,
        explanation: "openssl is below the fixed version".into(),
    }
}
