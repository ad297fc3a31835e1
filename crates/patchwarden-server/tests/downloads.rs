//! Agent packages served at `/downloads/{file}` by a real server: a package comes back whole,
//! with its length and SHA-256, over TLS to the real client and over plain HTTP; and every
//! attempt to reach anything else — `../`, `%2e%2e`, an encoded slash, an absolute path, a
//! symlink in the directory (pointing out or in), a directory, a name that does not decode —
//! is a `not-found` problem document. The requests that try to escape are written byte for
//! byte on a TCP connection, because an HTTP client library would normalise `..` and
//! `%2e%2e` away before the server ever saw them.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use patchwarden_api::v1::problem::{self, Problem, ProblemCode};
use patchwarden_client::{Client, Fingerprint, Trust};
use patchwarden_server::Config;
use patchwarden_server::config::TlsMode;
use patchwarden_server::downloads::SHA256_HEADER;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEB: &str = "patchwarden_0.1.0_amd64.deb";

/// A downloads directory beside a secret it must never serve: a package, a file outside, a
/// symlink to that file and one to the package, a subdirectory.
fn downloads(root: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let dir = root.join("downloads");
    std::fs::create_dir(&dir).unwrap();
    // Bytes of every value, and more than one read's worth, so that a body cut or mangled
    // anywhere shows.
    let package: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join(DEB), &package).unwrap();
    std::fs::write(root.join("secret.deb"), b"the server's secret").unwrap();
    symlink(root.join("secret.deb"), dir.join("out.deb")).unwrap();
    symlink(dir.join(DEB), dir.join("in.deb")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub").join("x.deb"), b"below").unwrap();
    (dir, package)
}

fn config(data: &Path, downloads: Option<&Path>, mode: TlsMode) -> Config {
    let mut c = Config {
        data_dir: data.to_owned(),
        ..Config::default()
    };
    c.listen.api = "127.0.0.1:0".into();
    c.listen.metrics = String::new();
    c.tls.mode = mode;
    if let Some(d) = downloads {
        c.downloads.dir = d.to_owned();
    }
    c
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn assert_not_found(&self, what: &str) {
        assert_eq!(
            self.status,
            404,
            "{what}: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some(problem::CONTENT_TYPE),
            "{what}"
        );
        let p: Problem = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(p.code, ProblemCode::NotFound, "{what}");
    }
}

/// Sends `request_line` as written, on its own connection, and reads the whole answer.
async fn raw(addr: std::net::SocketAddr, method: &str, target: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {target} HTTP/1.1\r\nHost: pw\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("the server answers within 10 s")
        .unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_package_is_served_whole_with_its_length_and_sha256_and_nothing_else_is() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, package) = downloads(tmp.path());
    let server = patchwarden_server::start(&config(
        &tmp.path().join("data"),
        Some(&dir),
        TlsMode::PlainHttp,
    ))
    .await
    .unwrap();
    let addr = server.api_addr;

    let got = raw(addr, "GET", &format!("/downloads/{DEB}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, package);
    assert_eq!(
        got.header("content-length"),
        Some(package.len().to_string().as_str())
    );
    assert_eq!(
        got.header(SHA256_HEADER),
        Some(sha256_hex(&package).as_str())
    );
    assert_eq!(
        got.header("content-type"),
        Some("application/vnd.debian.binary-package")
    );
    // HEAD tells the length and the checksum without the body.
    let head = raw(addr, "HEAD", &format!("/downloads/{DEB}")).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(package.len().to_string().as_str())
    );
    assert_eq!(
        head.header(SHA256_HEADER),
        Some(sha256_hex(&package).as_str())
    );

    for target in [
        "/downloads/../secret.deb",
        "/downloads/..%2fsecret.deb",
        "/downloads/..%2Fsecret.deb",
        "/downloads/%2e%2e%2fsecret.deb",
        "/downloads/%2e%2e/secret.deb",
        "/downloads/%2e%2e",
        "/downloads/..",
        "/downloads/.",
        "/downloads/%2fetc%2fpasswd",
        "/downloads//etc/passwd",
        "/downloads/%2Fetc%2Fpasswd",
        "/downloads/out.deb",
        "/downloads/in.deb",
        "/downloads/sub",
        "/downloads/sub/x.deb",
        "/downloads/sub%2fx.deb",
        "/downloads/%ff.deb",
        "/downloads/missing.deb",
        "/downloads/",
        "/downloads",
        "/secret.deb",
        "/downloads/patchwarden_0.1.0_amd64.deb%00.txt",
    ] {
        let answer = raw(addr, "GET", target).await;
        answer.assert_not_found(target);
        assert!(
            !String::from_utf8_lossy(&answer.body).contains("secret"),
            "{target}"
        );
    }
    let post = raw(addr, "POST", &format!("/downloads/{DEB}")).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("content-type"), Some(problem::CONTENT_TYPE));

    // A package replaced while the server runs is served, and hashed, anew.
    let newer = b"a newer package".to_vec();
    std::fs::remove_file(dir.join(DEB)).unwrap();
    std::fs::write(dir.join(DEB), &newer).unwrap();
    let got = raw(addr, "GET", &format!("/downloads/{DEB}")).await;
    assert_eq!(got.body, newer);
    assert_eq!(got.header(SHA256_HEADER), Some(sha256_hex(&newer).as_str()));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn packages_come_over_tls_to_the_real_client_and_only_when_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, package) = downloads(tmp.path());
    let server = patchwarden_server::start(&config(
        &tmp.path().join("data"),
        Some(&dir),
        TlsMode::Generate,
    ))
    .await
    .unwrap();
    let pin = Fingerprint::parse(server.fingerprint.as_deref().unwrap()).unwrap();
    let client = Client::new(&server.url(), &Trust::Pinned(pin)).unwrap();
    let got = client.get_raw(&format!("/downloads/{DEB}")).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&package));
    server.shutdown(Duration::from_secs(1)).await;

    // Without a downloads directory nothing is served.
    let bare = tempfile::tempdir().unwrap();
    let server = patchwarden_server::start(&config(bare.path(), None, TlsMode::PlainHttp))
        .await
        .unwrap();
    raw(server.api_addr, "GET", &format!("/downloads/{DEB}"))
        .await
        .assert_not_found("no downloads directory");
    server.shutdown(Duration::from_secs(1)).await;

    // A configured directory that does not exist stops the start, naming it.
    let e = patchwarden_server::start(&config(
        &tmp.path().join("data2"),
        Some(&tmp.path().join("no-such-dir")),
        TlsMode::PlainHttp,
    ))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no-such-dir"), "{e}");
}

/// What `admin token create` shows: one command per package, with the URL the server is
/// reached at and the fingerprint it serves; and, when something is missing, which setting.
#[tokio::test]
async fn install_commands_name_the_public_url_the_packages_and_the_pinned_ca() {
    use patchwarden_server::admin::{InstallCommandError, install_commands, install_sources};
    let tmp = tempfile::tempdir().unwrap();
    let (dir, package) = downloads(tmp.path());
    std::fs::write(dir.join("patchwarden-0.1.0-1.x86_64.rpm"), b"an rpm").unwrap();
    let mut c = config(&tmp.path().join("data"), Some(&dir), TlsMode::Generate);
    c.public_url = "https://pw.example.org:8443/".into();

    // Before the first start there is no CA to pin.
    let e = install_sources(&c).unwrap_err();
    assert!(matches!(e, InstallCommandError::Tls(_)), "{e}");
    assert!(e.to_string().contains("start the server once"), "{e}");
    let server = patchwarden_server::start(&c).await.unwrap();
    let fingerprint = server.fingerprint.clone().unwrap();
    server.shutdown(Duration::from_secs(1)).await;

    let sources = install_sources(&c).unwrap();
    assert_eq!(sources.public_url, "https://pw.example.org:8443");
    assert_eq!(sources.ca_fingerprint, fingerprint);
    let commands = install_commands(&sources, "pwe_0123abcd").unwrap();
    let urls: Vec<&str> = commands.iter().map(|c| c.package_url.as_str()).collect();
    assert_eq!(
        urls,
        [
            format!("https://pw.example.org:8443/downloads/{DEB}"),
            "https://pw.example.org:8443/downloads/patchwarden-0.1.0-1.x86_64.rpm".to_owned(),
        ]
    );
    let deb = &commands[0];
    assert_eq!(deb.package.sha256, sha256_hex(&package));
    for line in [
        "SERVER='https://pw.example.org:8443'".to_owned(),
        "TOKEN='pwe_0123abcd'".to_owned(),
        format!("CA_FINGERPRINT='{fingerprint}'"),
        format!("SHA256='{}'", sha256_hex(&package)),
    ] {
        assert!(deb.script.lines().any(|l| l == line), "{line}");
    }
    assert!(deb.paste.contains(&deb.script));

    // What is missing is named.
    let cases = [
        (
            Config {
                public_url: String::new(),
                ..c.clone()
            },
            "public_url is not set",
        ),
        (
            Config {
                downloads: Default::default(),
                ..c.clone()
            },
            "downloads.dir is not set",
        ),
    ];
    for (config, expected) in cases {
        let e = install_sources(&config).unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }
    let mut plain = c.clone();
    plain.tls.mode = TlsMode::PlainHttp;
    assert!(matches!(
        install_sources(&plain),
        Err(InstallCommandError::PlainHttp)
    ));
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut none = c.clone();
    none.downloads.dir = empty;
    assert!(matches!(
        install_sources(&none),
        Err(InstallCommandError::NoPackages(_))
    ));
}
