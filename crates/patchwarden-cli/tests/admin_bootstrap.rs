//! The first admin, through the binary: `patchwarden serve` on an empty database says how to
//! make one, `patchwarden admin bootstrap` prints a one-time password (stored only as an argon2
//! hash, with the change required at first login), a second bootstrap is refused, and the
//! server no longer says it once an operator exists.

mod server_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use server_support::{bin, write_config};

const FIRST_START: &str = "no operator exists yet";

/// Starts `serve`, reads its stderr until it prints its URL, stops it, and says whether it
/// printed the first-start message.
fn serve_says_no_operator(config: &std::path::Path) -> bool {
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = false;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the server starts and prints its URL");
        said |= line.contains(FIRST_START) && line.contains("patchwarden admin bootstrap");
        if line.starts_with("patchwarden: serving the API at ") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_makes_the_first_admin_once_with_a_one_time_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &data, &[]);
    assert!(serve_says_no_operator(&config));

    let out = bin()
        .args(["admin", "bootstrap", "--username", "root", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = stdout.lines().next().unwrap().to_owned();
    assert_eq!(password.chars().count(), 20, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("admin root created"), "{stderr}");
    assert!(!stderr.contains(&password));

    let again = bin()
        .args(["admin", "bootstrap", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exist already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Stored as an argon2 hash of the printed password, to be changed at first login, and
    // audited.
    let store = patchwarden_server::open_store(&format!(
        "sqlite://{}",
        data.join("patchwarden.db").display()
    ))
    .await
    .unwrap();
    let root = store.find_user("root").await.unwrap().expect("the admin");
    assert!(root.must_change_password);
    assert!(root.roles.contains(&patchwarden_store::Role::Admin));
    assert!(!root.password_hash.contains(&password));
    assert!(patchwarden_server::secrets::verify_password(&password, &root.password_hash).unwrap());
    let chain = store.audit_events(0, 100).await.unwrap();
    assert!(
        chain
            .iter()
            .any(|e| e.entry.action == "user.create" && e.entry.object == "user:root")
    );
    drop(store);

    assert!(!serve_says_no_operator(&config));
}
