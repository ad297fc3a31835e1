//! The dpkg collector on hostile input: a 2 GiB `Description`, binary garbage, a million and
//! one packages, a status "file" that is a directory, symlink loops under the root, overlong
//! and non-UTF-8 fields. Each gives a clear error or a documented partial result, never a
//! panic and never memory in proportion to the input.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use patchwarden_agent::inventory::dpkg::{
    self, DpkgError, MAX_PROBLEMS, MissingStatus, ParseError, ProblemKind, parse_status,
};
use patchwarden_agent::root::{HostRoot, RootError};

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("inventories").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

fn root_with_dpkg_dir() -> (tempfile::TempDir, HostRoot, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dpkg_dir = dir.path().join("var/lib/dpkg");
    std::fs::create_dir_all(&dpkg_dir).unwrap();
    let root = HostRoot::new(dir.path()).unwrap();
    (dir, root, dpkg_dir)
}

#[test]
fn binary_garbage_gives_bounded_problems_and_no_packages() {
    // xorshift bytes: every byte value, newlines included, 4 MiB of them.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let garbage: Vec<u8> = (0..4 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let s = parse_status(&garbage[..], MissingStatus::Reject).unwrap();
    assert!(s.packages.is_empty());
    assert!(!s.problems.is_empty() && s.problems.len() <= MAX_PROBLEMS);
    assert!(s.problems.iter().all(|p| p.kind.skipped()));

    // Garbage cut into many stanzas: only the first problems are kept, the rest counted.
    let many = b"\xff\xfe not a field\n\n".repeat(10_000);
    let s = parse_status(&many[..], MissingStatus::Reject).unwrap();
    assert_eq!(s.problems.len(), MAX_PROBLEMS);
    assert_eq!(s.problem_count(), 10_000);
}

#[test]
fn garbage_between_real_stanzas_costs_only_the_stanzas_it_touches() {
    let real = std::fs::read(shared_data().join("debian/debian12-host.status")).unwrap();
    let mut mixed = b"\x00\xff\xfe garbage\n\x01\x02\n\n".to_vec();
    mixed.extend_from_slice(&real);
    mixed.extend_from_slice(b"\n\xde\xad\xbe\xef\n");
    let s = parse_status(&mixed[..], MissingStatus::Reject).unwrap();
    assert_eq!(s.packages.len(), 720);
    assert_eq!(s.problems.len(), 2);
    assert!(s.problems.iter().all(|p| p.kind.skipped()));
}

/// `Package: pN` stanzas, generated as they are read.
struct ManyPackages {
    next: u64,
    count: u64,
    pending: Vec<u8>,
}

impl Read for ManyPackages {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.len() < buf.len() && self.next < self.count {
            self.pending.extend_from_slice(
                format!(
                    "Package: p{}\nStatus: install ok installed\nVersion: 1\n\n",
                    self.next
                )
                .as_bytes(),
            );
            self.next += 1;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[test]
fn more_packages_than_the_cap_is_an_error() {
    let input = ManyPackages {
        next: 0,
        count: dpkg::MAX_PACKAGES as u64 + 1,
        pending: Vec::new(),
    };
    let err = parse_status(BufReader::new(input), MissingStatus::Reject).unwrap_err();
    assert!(matches!(err, ParseError::TooManyPackages));
    assert_eq!(err.to_string(), "lists more than 1000000 packages");
}

#[test]
fn a_status_file_that_is_a_directory_is_a_clear_error() {
    let (_dir, root, dpkg_dir) = root_with_dpkg_dir();
    std::fs::create_dir(dpkg_dir.join("status")).unwrap();
    let err = dpkg::read_status(&root).unwrap_err();
    assert!(
        matches!(err, DpkgError::Root(RootError::NotAFile { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("var/lib/dpkg/status is not a regular file"),
        "{err}"
    );
}

#[test]
fn a_symlink_loop_under_the_root_is_a_clear_error() {
    let (_dir, root, dpkg_dir) = root_with_dpkg_dir();
    std::os::unix::fs::symlink("status.old", dpkg_dir.join("status")).unwrap();
    std::os::unix::fs::symlink("/var/lib/dpkg/status", dpkg_dir.join("status.old")).unwrap();
    let err = dpkg::read_status(&root).unwrap_err();
    assert!(
        err.to_string()
            .contains("too many symbolic links (a loop?) resolving var/lib/dpkg/status"),
        "{err}"
    );
    // A directory that links to itself is a loop too.
    let (dir, root, _) = root_with_dpkg_dir();
    std::fs::remove_dir(dir.path().join("var/lib/dpkg")).unwrap();
    std::os::unix::fs::symlink("/var/lib/dpkg", dir.path().join("var/lib/dpkg")).unwrap();
    let err = dpkg::read_status(&root).unwrap_err();
    assert!(matches!(
        err,
        DpkgError::Root(RootError::SymlinkLoop { .. })
    ));
}

#[test]
fn an_unreadable_status_is_an_error_naming_the_file() {
    let (_dir, root, dpkg_dir) = root_with_dpkg_dir();
    // A fifo cannot be read as a file: refused before anything blocks on it.
    let fifo = dpkg_dir.join("status");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_none(),
            "mkfifo is needed (Debian package coreutils)"
        );
        eprintln!("skipped: mkfifo is not available (Debian package coreutils)");
        return;
    }
    let err = dpkg::read_status(&root).unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");
}

#[test]
fn overlong_and_non_utf8_needed_fields_skip_their_stanza() {
    let mut input = Vec::new();
    input.extend_from_slice(b"Package: long\nStatus: install ok installed\nVersion: ");
    input.extend(std::iter::repeat_n(b'1', 20_000));
    input.extend_from_slice(b"\n\nPackage: latin1\nStatus: install ok installed\nVersion: 1\n");
    input.extend_from_slice(b"Source: caf\xe9\n\n");
    input.extend_from_slice(b"Package: fine\nStatus: install ok installed\nVersion: 1.0-1\n");
    input.extend_from_slice(b"Description: ");
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend_from_slice(b"\n\nPackage: spaced\nStatus: install ok installed\n");
    input.extend_from_slice(b"Version: 1.0 beta\n");
    let s = parse_status(&input[..], MissingStatus::Reject).unwrap();
    let names: Vec<&str> = s.packages.iter().map(|p| p.name.as_str()).collect();
    // An overlong field we do not keep (Description) costs nothing; a version dpkg would
    // refuse is kept with a problem, since the package is there.
    assert_eq!(names, ["fine", "spaced"]);
    let kinds: Vec<&ProblemKind> = s.problems.iter().map(|p| &p.kind).collect();
    assert_eq!(kinds.len(), 3);
    assert_eq!(kinds[0], &ProblemKind::FieldTooLong("Version"));
    assert_eq!(kinds[1], &ProblemKind::NotUtf8("Source"));
    assert!(matches!(kinds[2], ProblemKind::InvalidVersion { .. }));
    assert!(!kinds[2].skipped());
    assert!(
        s.problems[2]
            .to_string()
            .contains("kept, but its version \"1.0 beta\"")
    );
}

#[test]
fn crlf_line_endings_read_like_lf() {
    let lf = std::fs::read(shared_data().join("inventories/dpkg/scalibr-valid")).unwrap();
    let crlf: Vec<u8> = lf
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect();
    let a = parse_status(&lf[..], MissingStatus::Reject).unwrap();
    let b = parse_status(&crlf[..], MissingStatus::Reject).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.packages.len(), 7);
}
