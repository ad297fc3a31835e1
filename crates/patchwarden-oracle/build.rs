//! Links the real libdpkg (static, from libdpkg-dev) and librpmio (from librpm-dev) when
//! pkg-config finds them, and says so with the `oracle_libs` cfg. Without them the crate still
//! builds, and its tests say plainly that they skipped (or fail, under
//! PATCHWARDEN_REQUIRE_TOOLS, which scripts/test sets after installing the packages).

use std::process::Command;

fn pkg_config(args: &[&str]) -> Option<String> {
    let out = Command::new("pkg-config").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(oracle_libs)");
    println!("cargo::rerun-if-env-changed=PKG_CONFIG_PATH");
    let dpkg = pkg_config(&["--libs", "--static", "libdpkg"]);
    let rpmio = pkg_config(&["--libs", "rpm"]);
    let (Some(dpkg), Some(rpmio)) = (dpkg, rpmio) else {
        println!(
            "cargo::warning=libdpkg-dev or librpm-dev not found: the version oracles are not \
             linked and their tests will skip (scripts/install-test-deps installs them)"
        );
        return;
    };
    // The archive sits in the default library directory, which pkg-config does not print but
    // rustc's static lookup needs.
    if let Some(dir) = pkg_config(&["--variable=libdir", "libdpkg"]) {
        println!("cargo::rustc-link-search=native={dir}");
    }
    for flag in dpkg.split_whitespace().chain(rpmio.split_whitespace()) {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo::rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            // libdpkg ships only as a static archive.
            let kind = if lib == "dpkg" { "static" } else { "dylib" };
            println!("cargo::rustc-link-lib={kind}={lib}");
        }
    }
    println!("cargo::rustc-cfg=oracle_libs");
}
