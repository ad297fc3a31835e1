//! A stable digest of an inventory's packages, so that an agent and the server can tell in 32
//! bytes whether they hold the same package list, and an agent can send only a delta when they
//! do not.
//!
//! The digest is SHA-256 over a canonical encoding that does not depend on the order in which a
//! collector happened to list the packages. The encoding is versioned (`v1`) and documented
//! field by field in `docs/inventory.md`, so that another implementation can reproduce it:
//!
//! ```text
//! digest  = SHA-256( "patchwarden/packages/v1\n" || u64be(count) || record_1 || … || record_n )
//! record  = u32be(len(body)) || body          records sorted by their bytes, duplicates kept
//! body    = str(manager) str(name) str(version) opt(arch) opt(source_name)
//!           opt(source_version) opt(epoch as decimal) opt(module) str(status)
//! str(s)  = u32be(len(s)) || s                UTF-8 bytes
//! opt(x)  = 0x00                              when absent
//!         | 0x01 || str(x)                    when present
//! ```
//!
//! `manager` and `status` are spelled as in the JSON (`dpkg`, `config-files` …). Length prefixes
//! make the encoding unambiguous (no field can be confused with the next), and sorting the
//! encoded records bytewise gives the same digest for any permutation of the same multiset.

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::{Package, PackageStatus};

/// The first bytes hashed: the encoding's name and version, so that a future encoding can never
/// produce a digest equal to this one's by accident.
const DOMAIN: &[u8] = b"patchwarden/packages/v1\n";

/// The SHA-256 digest of a package list's canonical encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackagesDigest(pub [u8; 32]);

impl PackagesDigest {
    /// Computes the digest of `packages`, whatever their order.
    pub fn of(packages: &[Package]) -> PackagesDigest {
        let mut records: Vec<Vec<u8>> = packages.iter().map(encode_record).collect();
        records.sort_unstable();
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN);
        hasher.update((records.len() as u64).to_be_bytes());
        for r in &records {
            hasher.update(r);
        }
        PackagesDigest(hasher.finalize().into())
    }

    /// The digest as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        s
    }
}

impl fmt::Display for PackagesDigest {
    /// `sha256:` and the hex digits, the form the CLI prints and the JSON carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for PackagesDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for PackagesDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PackagesDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_digest(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid packages digest {s:?}: expected \"sha256:\" and 64 hex digits"
            ))
        })
    }
}

fn parse_digest(s: &str) -> Option<PackagesDigest> {
    let hex = s.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let hi = hex_value(*pair.first()?)?;
        let lo = hex_value(*pair.get(1)?)?;
        *byte = hi << 4 | lo;
    }
    Some(PackagesDigest(out))
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The canonical bytes of one package: the record of the module documentation.
pub(crate) fn encode_record(p: &Package) -> Vec<u8> {
    let mut body = Vec::with_capacity(
        64 + p.name.len() + p.version.len() + p.source_name.as_ref().map_or(0, String::len),
    );
    put_str(&mut body, p.manager.name());
    put_str(&mut body, &p.name);
    put_str(&mut body, &p.version);
    put_opt(&mut body, p.arch.as_deref());
    put_opt(&mut body, p.source_name.as_deref());
    put_opt(&mut body, p.source_version.as_deref());
    put_opt(&mut body, p.epoch.map(|e| e.to_string()).as_deref());
    put_opt(&mut body, p.module.as_deref());
    put_str(&mut body, status_name(p.status));
    let mut record = Vec::with_capacity(body.len() + 4);
    record.extend_from_slice(&len32(body.len()).to_be_bytes());
    record.extend_from_slice(&body);
    record
}

/// A field's length as the encoding's `u32be`. Nothing in a package comes near 4 GiB (every
/// collector caps its fields far below), and saturating keeps this total without a panic.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&len32(s.len()).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// The status as the JSON spells it (serde's kebab-case names), written out here so that the
/// digest cannot change when someone touches the serde attributes.
pub(crate) fn status_name(s: PackageStatus) -> &'static str {
    match s {
        PackageStatus::Installed => "installed",
        PackageStatus::Unpacked => "unpacked",
        PackageStatus::HalfConfigured => "half-configured",
        PackageStatus::HalfInstalled => "half-installed",
        PackageStatus::ConfigFiles => "config-files",
        PackageStatus::TriggersAwaited => "triggers-awaited",
        PackageStatus::TriggersPending => "triggers-pending",
        PackageStatus::NotInstalled => "not-installed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Manager;

    fn pkg(name: &str, version: &str) -> Package {
        Package {
            manager: Manager::Dpkg,
            name: name.into(),
            version: version.into(),
            arch: Some("amd64".into()),
            source_name: Some(name.into()),
            source_version: Some(version.into()),
            epoch: None,
            module: None,
            status: PackageStatus::Installed,
        }
    }

    #[test]
    fn status_names_match_the_json() {
        for s in [
            PackageStatus::Installed,
            PackageStatus::Unpacked,
            PackageStatus::HalfConfigured,
            PackageStatus::HalfInstalled,
            PackageStatus::ConfigFiles,
            PackageStatus::TriggersAwaited,
            PackageStatus::TriggersPending,
            PackageStatus::NotInstalled,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", status_name(s)));
        }
    }

    #[test]
    fn empty_list_has_a_fixed_digest() {
        // SHA-256 of the domain line followed by eight zero bytes, computed independently with
        // `printf 'patchwarden/packages/v1\n\0\0\0\0\0\0\0\0' | sha256sum`.
        expect_test::expect![
            "sha256:bbc84abba0573cceb8f67637810a11cbcf6b1fced0fb710355feec1cfa6a6bd5"
        ]
        .assert_eq(&PackagesDigest::of(&[]).to_string());
    }

    #[test]
    fn one_record_is_encoded_as_documented() {
        let p = pkg("a", "1");
        let got = encode_record(&p);
        let mut want = Vec::new();
        let body: Vec<u8> = [
            &b"\0\0\0\x04dpkg"[..],
            b"\0\0\0\x01a",
            b"\0\0\0\x011",
            b"\x01\0\0\0\x05amd64",
            b"\x01\0\0\0\x01a",
            b"\x01\0\0\0\x011",
            b"\0",
            b"\0",
            b"\0\0\0\x09installed",
        ]
        .concat();
        want.extend_from_slice(&(body.len() as u32).to_be_bytes());
        want.extend_from_slice(&body);
        assert_eq!(got, want);
    }

    #[test]
    fn hex_round_trips_through_serde() {
        let d = PackagesDigest::of(&[pkg("bash", "5.2.15-2+b2")]);
        let json = serde_json::to_string(&d).unwrap();
        let back: PackagesDigest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        for bad in [
            "\"sha256:00\"",
            "\"md5:0000\"",
            "\"sha256:zz00000000000000000000000000000000000000000000000000000000000000\"",
        ] {
            let err = serde_json::from_str::<PackagesDigest>(bad).unwrap_err();
            assert!(err.to_string().contains("invalid packages digest"), "{err}");
        }
    }

    #[test]
    fn absent_and_empty_fields_differ() {
        let mut a = pkg("x", "1");
        let mut b = a.clone();
        a.arch = None;
        b.arch = Some(String::new());
        assert_ne!(PackagesDigest::of(&[a]), PackagesDigest::of(&[b]));
    }
}
