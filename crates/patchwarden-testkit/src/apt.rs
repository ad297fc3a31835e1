//! A real APT repository and sandbox roots for tests that install packages with the real apt
//! and dpkg: `demo-lib` 1.0, 1.1 and 1.2 built with `dpkg-deb` (1.2's postinst exits 1, so
//! installing it leaves the package half-configured, as a broken upgrade does), indexed with
//! `apt-ftparchive`, and served over HTTP on 127.0.0.1 by a small server in the test process.
//! The test chooses which versions the repository publishes ([`AptRepo::publish`]), so it can
//! publish 1.1 later, then 1.2, and drop 1.0 as real archives drop old versions.
//!
//! A [`SandboxRoot`] is a minimal Debian root that `apt-get` (with `Dir` pointed at it) and
//! `dpkg --root` operate on: dpkg's database, apt's directories, a `sources.list` naming the
//! repository, and `sh` with its libraries for the maintainer scripts that dpkg runs
//! chrooted into the root; `demo-lib` 1.0 is installed in it.
//!
//! Call [`tools_ready`] first: it follows the project's rule for missing tools (fail naming
//! the Debian package when `PATCHWARDEN_REQUIRE_TOOLS` is set, else print what is skipped and
//! return `false`). Helpers panic on failure: they are test fixtures.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// The package the fixture builds.
pub const PACKAGE: &str = "demo-lib";
/// The versions built; 1.2's postinst fails.
pub const VERSIONS: [&str; 3] = ["1.0", "1.1", "1.2"];
/// What 1.2's postinst prints before it exits 1.
pub const FAILING_POSTINST_SAYS: &str = "demo-lib 1.2 postinst fails on purpose";
/// The suite the repository publishes.
pub const SUITE: &str = "stable";

/// The tools the fixture runs, with their Debian packages.
pub const TOOLS: &[(&str, &str)] = &[
    ("dpkg-deb", "dpkg"),
    ("dpkg", "dpkg"),
    ("dpkg-query", "dpkg"),
    ("apt-get", "apt"),
    ("apt-ftparchive", "apt-utils"),
    ("ldd", "libc-bin"),
    ("mknod", "coreutils"),
];

/// Whether `test` can run: every tool of [`TOOLS`] is on the `PATH` and this process is root
/// (dpkg chroots into the sandbox for maintainer scripts). Otherwise panics naming the Debian
/// packages when `PATCHWARDEN_REQUIRE_TOOLS` is set, else prints one line and returns `false`.
pub fn tools_ready(test: &str) -> bool {
    let mut missing: Vec<String> = TOOLS
        .iter()
        .filter(|(t, _)| which(t).is_none())
        .map(|(t, p)| format!("{t} (Debian package {p})"))
        .collect();
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        missing.push("root privileges (dpkg chroots into the sandbox root)".into());
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some() {
        panic!(
            "{test} needs {}; install them with scripts/install-test-deps",
            missing.join(", ")
        );
    }
    eprintln!("skipping {test}: missing {}", missing.join(", "));
    false
}

/// The full path of `tool` in the `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs a command that must succeed; returns its standard output.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lets apt's unprivileged download user (`_apt`) into a test directory (temporary
/// directories are 0700).
fn open_up(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

/// Creates `dir` and opens it and its parent (the test's temporary directory) to `_apt`.
fn prepare(dir: &Path) {
    fs::create_dir_all(dir).expect("create the fixture directory");
    open_up(dir);
    if let Some(parent) = dir.parent()
        && !matches!(parent.to_str(), Some("/" | "/tmp" | "/var/tmp" | ""))
    {
        open_up(parent);
    }
}

/// Builds `demo-lib` `version` into `out` and returns the `.deb`.
fn build_deb(out: &Path, version: &str) -> PathBuf {
    let tree = out.join(format!(".tree-{version}"));
    let _ = fs::remove_dir_all(&tree);
    let share = tree.join("usr/share").join(PACKAGE);
    fs::create_dir_all(tree.join("DEBIAN")).expect("create DEBIAN");
    fs::create_dir_all(&share).expect("create share");
    fs::write(share.join("VERSION"), format!("{version}\n")).expect("write VERSION");
    fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: Patchwarden Tests <tests@example.invalid>\nSection: libs\n\
             Priority: optional\nDescription: Patchwarden's demo library {version}\n"
        ),
    )
    .expect("write control");
    if version == "1.2" {
        let postinst = tree.join("DEBIAN/postinst");
        fs::write(
            &postinst,
            format!("#!/bin/sh\necho \"{FAILING_POSTINST_SAYS}\" >&2\nexit 1\n"),
        )
        .expect("write postinst");
        fs::set_permissions(&postinst, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let deb = out.join(format!("{PACKAGE}_{version}_all.deb"));
    run(Command::new("dpkg-deb")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&tree)
        .arg(&deb)
        .stdout(Stdio::null()));
    fs::remove_dir_all(&tree).expect("remove tree");
    deb
}

/// A local APT repository of `demo-lib`, served over HTTP on loopback while it lives.
#[derive(Debug)]
pub struct AptRepo {
    /// Where the built `.deb` files are kept (published or not).
    pub built: PathBuf,
    /// The document root the server serves: `dists/` and `pool/`.
    pub dir: PathBuf,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    server: HttpServer,
}

impl AptRepo {
    /// Builds `demo-lib` 1.0, 1.1 and 1.2 under `dir` (created; it and its parent are opened
    /// to apt's `_apt` user), starts the server, and publishes 1.0.
    pub fn build(dir: &Path) -> AptRepo {
        prepare(dir);
        let built = dir.join("built");
        let docroot = dir.join("repo");
        fs::create_dir_all(&built).expect("create built");
        fs::create_dir_all(&docroot).expect("create repo");
        for v in VERSIONS {
            build_deb(&built, v);
        }
        open_up(&built);
        open_up(&docroot);
        let server = HttpServer::start(&docroot);
        let repo = AptRepo {
            built,
            url: format!("http://127.0.0.1:{}/", server.port),
            dir: docroot,
            server,
        };
        repo.publish(&["1.0"]);
        repo
    }

    /// The built `.deb` of `version`.
    pub fn deb(&self, version: &str) -> PathBuf {
        let p = self.built.join(format!("{PACKAGE}_{version}_all.deb"));
        assert!(p.exists(), "no demo-lib {version} was built");
        p
    }

    /// Makes the repository offer exactly `versions` (from [`VERSIONS`]): the pool holds only
    /// them, and the `Packages` and `Release` files are written anew. Clients see the change at
    /// their next `apt-get update`.
    pub fn publish(&self, versions: &[&str]) {
        let pool = self.dir.join("pool/main");
        let _ = fs::remove_dir_all(self.dir.join("pool"));
        let _ = fs::remove_dir_all(self.dir.join("dists"));
        fs::create_dir_all(&pool).expect("create pool");
        for v in versions {
            let deb = self.deb(v);
            fs::copy(&deb, pool.join(deb.file_name().expect("file name"))).expect("copy deb");
        }
        // The index of this machine's architecture, the one apt reads (the packages are `all`).
        let arch = run(Command::new("dpkg").arg("--print-architecture"))
            .trim()
            .to_owned();
        let index = self
            .dir
            .join("dists")
            .join(SUITE)
            .join(format!("main/binary-{arch}"));
        fs::create_dir_all(&index).expect("create dists");
        let packages = run(Command::new("apt-ftparchive")
            .current_dir(&self.dir)
            .args(["packages", "pool"]));
        fs::write(index.join("Packages"), packages).expect("write Packages");
        let release = run(Command::new("apt-ftparchive")
            .current_dir(self.dir.join("dists").join(SUITE))
            .args([
                "-oAPT::FTPArchive::Release::Origin=Patchwarden",
                "-oAPT::FTPArchive::Release::Label=Patchwarden",
                &format!("-oAPT::FTPArchive::Release::Suite={SUITE}"),
                &format!("-oAPT::FTPArchive::Release::Codename={SUITE}"),
                &format!("-oAPT::FTPArchive::Release::Architectures={arch} all"),
                "-oAPT::FTPArchive::Release::Components=main",
                "release",
                ".",
            ]));
        fs::write(self.dir.join("dists").join(SUITE).join("Release"), release)
            .expect("write Release");
        let mut pending = vec![self.dir.clone()];
        while let Some(d) = pending.pop() {
            open_up(&d);
            for e in fs::read_dir(&d).expect("read dir").flatten() {
                if e.path().is_dir() {
                    pending.push(e.path());
                }
            }
        }
    }

    /// The `sources.list` line for this repository.
    pub fn source_line(&self) -> String {
        format!("deb [trusted=yes] {} {SUITE} main\n", self.url)
    }

    /// How many requests the server has answered (a test can check apt really used it).
    pub fn requests(&self) -> usize {
        self.server.count()
    }
}

/// A tiny HTTP/1.1 file server on 127.0.0.1 for the repository: `GET` and `HEAD` of files
/// under its directory, one answer per connection (`Connection: close`).
#[derive(Debug)]
struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    served: Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpServer {
    fn start(docroot: &Path) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the repository server");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (docroot, stop2, served2) = (docroot.to_owned(), stop.clone(), served.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let docroot = docroot.clone();
                let served = served2.clone();
                thread::spawn(move || {
                    if serve(&docroot, stream).is_ok() {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        HttpServer { port, stop, served }
    }

    fn count(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(docroot: &Path, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let rel = Path::new(path.trim_start_matches('/'));
    let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
    let file = docroot.join(rel);
    let mut stream = stream;
    match (method, safe && file.is_file()) {
        ("GET" | "HEAD", true) => {
            let body = fs::read(&file)?;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if method == "GET" {
                stream.write_all(&body)?;
            }
        }
        _ => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
        }
    }
    stream.flush()
}

/// A minimal Debian root that apt and dpkg operate on, with `demo-lib` 1.0 installed.
#[derive(Debug)]
pub struct SandboxRoot {
    pub path: PathBuf,
}

impl SandboxRoot {
    /// Builds the root in `dir/root` (`dir` is created, and it and its parent opened to `_apt`): a merged `/usr` with `sh` (and the libraries it loads)
    /// for maintainer scripts, `/dev/null`, the user database of a system with root alone,
    /// dpkg's database, apt's directories and a `sources.list` naming `repo`; then installs
    /// `demo-lib` 1.0 with `dpkg --root`.
    pub fn new(dir: &Path, repo: &AptRepo) -> SandboxRoot {
        prepare(dir);
        let root = dir.join("root");
        for d in [
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "usr/lib64",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "dev",
            "tmp",
            "var/tmp",
            "var/log",
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "var/lib/dpkg/triggers",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "run",
        ] {
            fs::create_dir_all(root.join(d)).expect("create root dirs");
        }
        for link in ["bin", "sbin", "lib", "lib64"] {
            symlink(format!("usr/{link}"), root.join(link)).expect("usr link");
        }
        symlink("/run", root.join("var/run")).expect("var/run link");
        for tool in ["sh", "rm", "rmdir"] {
            add_tool(&root, tool);
        }
        for (file, text) in [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
            (
                "etc/os-release",
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
            ),
            ("var/lib/dpkg/status", ""),
        ] {
            fs::write(root.join(file), text).expect("write root file");
        }
        fs::write(root.join("etc/apt/sources.list"), repo.source_line()).expect("sources.list");
        run(Command::new("mknod")
            .args(["-m", "666"])
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"]));
        open_up(&root);
        let sandbox = SandboxRoot { path: root };
        sandbox.dpkg_install(&repo.deb("1.0"));
        assert_eq!(sandbox.installed_version(PACKAGE).as_deref(), Some("1.0"));
        sandbox
    }

    /// Installs a `.deb` with `dpkg --root` (a set-up step, not the code under test).
    pub fn dpkg_install(&self, deb: &Path) {
        run(Command::new("dpkg")
            .arg(format!("--root={}", self.path.display()))
            .arg(format!(
                "--log={}",
                self.path.join("var/log/dpkg.log").display()
            ))
            .arg("-i")
            .arg(deb)
            .stdout(Stdio::null()));
    }

    /// The installed version of `name`, as dpkg records it.
    pub fn installed_version(&self, name: &str) -> Option<String> {
        installed_version(&self.path, name)
    }

    /// `(version, status)` of `name`, e.g. `("1.2", "install ok half-configured")`.
    pub fn package_status(&self, name: &str) -> Option<(String, String)> {
        package_status(&self.path, name)
    }

    /// dpkg's log lines under the root that record `name` being unpacked (one per install,
    /// upgrade or downgrade): counts how often a package was really installed.
    pub fn unpacks(&self, name: &str) -> usize {
        let log = fs::read_to_string(self.path.join("var/log/dpkg.log")).unwrap_or_default();
        log.lines()
            .filter(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                matches!(w.get(2), Some(&("install" | "upgrade")))
                    && w.get(3).is_some_and(|p| p.split(':').next() == Some(name))
            })
            .count()
    }
}

/// The installed version of `name` in the dpkg database under `root` (`None` when it is not
/// there or not fully installed nor half-configured).
pub fn installed_version(root: &Path, name: &str) -> Option<String> {
    package_status(root, name)
        .filter(|(_, status)| {
            !status.ends_with("not-installed") && !status.ends_with("config-files")
        })
        .map(|(v, _)| v)
}

/// `(version, status)` of `name` in the dpkg database under `root`.
pub fn package_status(root: &Path, name: &str) -> Option<(String, String)> {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Version}\t${Status}", "--", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (version, status) = text.trim().split_once('\t')?;
    (!version.is_empty()).then(|| (version.to_owned(), status.to_owned()))
}

/// Copies `tool` of this machine and the libraries it loads into `root`.
fn add_tool(root: &Path, tool: &str) {
    let path = which(tool).unwrap_or_else(|| panic!("{tool} is not installed"));
    copy_in(root, &path);
    let ldd = run(Command::new("ldd").arg(&path));
    for lib in ldd
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
    {
        copy_in(root, Path::new(lib));
    }
}

/// Copies `path` to the same path under `root` (symlinks followed).
fn copy_in(root: &Path, path: &Path) {
    let target = root.join(path.strip_prefix("/").expect("absolute path"));
    if target.exists() {
        return;
    }
    fs::create_dir_all(target.parent().expect("parent")).expect("create parent");
    fs::copy(path, &target)
        .unwrap_or_else(|e| panic!("copy {} into the sandbox: {e}", path.display()));
}
