//! A 2 GiB `Description` in a real (sparse) status file under a root: the collector streams
//! past it and its peak memory does not grow with it. Alone in its test binary, so that no
//! other test's memory blurs the measurement.

use std::io::Write;

use patchwarden_agent::inventory::dpkg;
use patchwarden_agent::root::HostRoot;

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn a_2_gib_description_is_streamed_past_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let dpkg_dir = dir.path().join("var/lib/dpkg");
    std::fs::create_dir_all(&dpkg_dir).unwrap();
    let root = HostRoot::new(dir.path()).unwrap();
    let path = dpkg_dir.join("status");
    let head = b"Package: big\nStatus: install ok installed\nVersion: 1.0\nDescription: ";
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(head).unwrap();
    // A sparse file: 2 GiB of NUL bytes after `Description: `, one line with no newline, that
    // costs no disk and no memory to create.
    let huge = 2u64 << 30;
    f.set_len(head.len() as u64 + huge).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(
        b"\n more description\n\nPackage: after\nStatus: install ok installed\nVersion: 2\n",
    )
    .unwrap();
    drop(f);

    let before = peak_rss();
    let s = dpkg::read_status(&root).unwrap().unwrap();
    let grew = peak_rss().saturating_sub(before);
    let names: Vec<&str> = s.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["big", "after"]);
    assert_eq!(s.problem_count(), 0);
    assert!(
        grew < 64 << 20,
        "reading a 2 GiB field raised peak memory by {grew} bytes"
    );
}
