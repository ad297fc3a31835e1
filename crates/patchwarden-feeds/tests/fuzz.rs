//! No panic is reachable from input: the parsers are run on the CSAF validator corpus and on
//! thousands of mutations of real documents — bytes flipped, documents cut short, JSON values
//! swapped for values of other types, nesting made deep — and must answer every one with a
//! record or a reject.
//!
//! The mutations are deterministic (a fixed-seed xorshift generator), so a failure reproduces.

mod common;

use std::path::{Path, PathBuf};

use common::shared_data;
use patchwarden_feeds::{Limits, alpine, csaf, cve5, debian, epss, kev, osv};
use serde_json::Value;

/// A small deterministic generator: reproducible mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Byte-level mutations: flips, cuts, insertions of JSON punctuation.
fn mutate_bytes(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(out.len());
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        1 => out.truncate(rng.below(out.len())),
        2 => {
            let tokens: [&[u8]; 8] = [b"{", b"}", b"[", b"]", b"\"", b",", b":", b"null"];
            let i = rng.below(out.len() + 1);
            let t = tokens[rng.below(tokens.len())];
            out.splice(i.min(out.len())..i.min(out.len()), t.iter().copied());
        }
        _ => {
            let i = rng.below(out.len());
            let j = (i + rng.below(64)).min(out.len());
            out.drain(i..j);
        }
    }
    out
}

/// Structural mutations: replace a random value somewhere in the tree with one of another
/// type (or a deep nest, or a huge number), so the typed conversion code is exercised, not
/// just the JSON syntax checker.
fn mutate_tree(rng: &mut Rng, doc: &Value) -> Vec<u8> {
    let mut doc = doc.clone();
    for _ in 0..1 + rng.below(3) {
        let replacement = match rng.below(9) {
            0 => Value::Null,
            1 => Value::Bool(true),
            2 => serde_json::json!(-1),
            3 => serde_json::json!(1e308),
            4 => Value::String(String::new()),
            5 => Value::String("0:".into()),
            6 => Value::Array(vec![]),
            7 => serde_json::json!({}),
            _ => {
                let mut v = Value::Null;
                for _ in 0..64 {
                    v = Value::Array(vec![v]);
                }
                v
            }
        };
        replace_random(rng, &mut doc, replacement, 0);
    }
    serde_json::to_vec(&doc).unwrap_or_default()
}

fn replace_random(rng: &mut Rng, v: &mut Value, replacement: Value, depth: usize) {
    let stop = depth > 0 && rng.below(4) == 0;
    let next: Option<&mut Value> = match v {
        Value::Array(a) if !a.is_empty() && !stop => {
            let i = rng.below(a.len());
            a.get_mut(i)
        }
        Value::Object(o) if !o.is_empty() && !stop => {
            let i = rng.below(o.len());
            o.values_mut().nth(i)
        }
        _ => None,
    };
    match next {
        Some(child) => replace_random(rng, child, replacement, depth + 1),
        None => *v = replacement,
    }
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
}

/// Runs `parse` on `rounds` mutations of each seed (half bytes, half tree) and counts them.
fn fuzz(seeds: &[Vec<u8>], rounds: usize, seed: u64, parse: impl Fn(&[u8])) -> usize {
    let mut rng = Rng(seed);
    let mut n = 0;
    for bytes in seeds {
        parse(bytes);
        let tree: Option<Value> = serde_json::from_slice(bytes).ok();
        for r in 0..rounds {
            let mutated = match (&tree, r % 2) {
                (Some(t), 0) => mutate_tree(&mut rng, t),
                _ => mutate_bytes(&mut rng, bytes),
            };
            parse(&mutated);
            n += 1;
        }
    }
    n
}

#[test]
fn csaf_validator_corpus_and_mutations() {
    let mut paths = Vec::new();
    files(&shared_data().join("csaf/invalid"), ".json", &mut paths);
    assert_eq!(paths.len(), 1155);
    let seeds: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    let n = fuzz(&seeds, 8, 0x5eed_c5af, |b| {
        let _ = csaf::parse(b, "fuzz.json");
    });
    assert_eq!(n, 1155 * 8);
    // Real Red Hat documents, smaller ones only, mutated more.
    let mut rh = Vec::new();
    files(&shared_data().join("csaf/redhat"), ".json", &mut rh);
    let seeds: Vec<Vec<u8>> = rh
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| b.len() < 64 * 1024)
        .collect();
    fuzz(&seeds, 40, 0xc5af_0002, |b| {
        let _ = csaf::parse(b, "fuzz.json");
    });
}

#[test]
fn osv_and_cve5_mutations() {
    let mut paths = Vec::new();
    files(&shared_data().join("osv/misc"), ".json", &mut paths);
    let mut seeds: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    // And a slice of the AlmaLinux archive.
    let zip_path = shared_data().join("osv/almalinux-all.zip");
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    for i in (0..archive.len()).step_by(97) {
        if let Ok(mut m) = archive.by_index(i) {
            let mut buf = Vec::new();
            if std::io::Read::read_to_end(&mut m, &mut buf).is_ok() && !buf.is_empty() {
                seeds.push(buf);
            }
        }
    }
    let n = fuzz(&seeds, 30, 0x05f0_05f0, |b| {
        let _ = osv::parse(b, "fuzz.json");
        let _ = cve5::parse(b, "fuzz.json");
    });
    assert!(n > 3000, "{n}");
}

#[test]
fn distro_and_enrichment_mutations() {
    let d = shared_data();
    let read = |p: &str| std::fs::read(d.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let alpine_seed = vec![read("alpine/json/v3.10/community.json")];
    fuzz(&alpine_seed, 200, 1, |b| {
        let _ = alpine::parse(b, "fuzz.json");
    });
    let debian_seed = vec![
        read("fixtures/vunnel/tests/unit/providers/debian/test-fixtures/input/debian.json"),
        read("osv/misc/osv.dev-vulnfeeds-parts/debian/debian_security_tracker_mock.json"),
    ];
    fuzz(&debian_seed, 200, 2, |b| {
        let _ = debian::parse(b, "fuzz.json");
    });
    let kev_seed = vec![read(
        "fixtures/vunnel/tests/unit/providers/kev/test-fixtures/valid-catalog-1.json",
    )];
    fuzz(&kev_seed, 200, 3, |b| {
        let _ = kev::parse(b, "fuzz.json");
    });
    let epss_seed = vec![read(
        "fixtures/vunnel/tests/unit/providers/epss/test-fixtures/example-1.csv",
    )];
    fuzz(&epss_seed, 500, 4, |b| {
        let _ = epss::parse(b, "fuzz.csv");
    });
}

/// Archives: random bytes, a real archive cut short, and a real archive with bytes flipped
/// are refused or read member by member, never a panic.
#[test]
fn zip_mutations() {
    let bytes = std::fs::read(shared_data().join("osv/almalinux-all.zip"))
        .unwrap_or_else(|e| panic!("{e}"));
    let head = bytes.get(..200_000).unwrap_or(&bytes).to_vec();
    let mut rng = Rng(7);
    let limits = Limits::default();
    for _ in 0..40 {
        let mut m = bytes.clone();
        for _ in 0..16 {
            let i = rng.below(m.len());
            if let Some(b) = m.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
        }
        let _ = osv::parse_zip(std::io::Cursor::new(m), "fuzz.zip", &limits);
    }
    for cut in [0, 4, 22, 100, 199_999] {
        let _ = osv::parse_zip(
            std::io::Cursor::new(head.get(..cut).unwrap_or(&head).to_vec()),
            "cut.zip",
            &limits,
        );
    }
}

/// xz streams: a real compressed CSAF document with bytes flipped or cut short is refused as
/// undecompressable or unparsable, never a panic, and never read past the limit.
#[test]
fn xz_mutations() {
    let original = std::fs::read(shared_data().join("csaf/redhat/large-xz/rhsa-2025_3215.json.xz"))
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("patchwarden-feeds-xz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("mutated.json.xz");
    let mut rng = Rng(11);
    for round in 0..24 {
        let mut m = original.clone();
        if round % 3 == 0 {
            m.truncate(rng.below(m.len()));
        } else {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(m.len());
                if let Some(b) = m.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        std::fs::write(&path, &m).unwrap_or_else(|e| panic!("{e}"));
        let limits = Limits {
            max_document_bytes: 16 << 20,
            ..Limits::default()
        };
        let _ = patchwarden_feeds::load::load_path(
            &path,
            patchwarden_feeds::load::AdvisoryFeed::Csaf,
            &limits,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
