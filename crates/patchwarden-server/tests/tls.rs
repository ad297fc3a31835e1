//! The API listener's three ways of speaking: a CA made on first start (kept across restarts,
//! so the pin agents hold stays valid), an operator's certificate files, and plain HTTP only
//! when configured — each checked with the real client and its pinning.

use patchwarden_client::{Client, ClientError, Fingerprint, Trust};
use patchwarden_server::Config;
use patchwarden_server::config::TlsMode;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.listen.api = "127.0.0.1:0".into();
    c.listen.metrics = String::new();
    c
}

async fn health(url: &str, trust: &Trust) -> Result<u16, ClientError> {
    Ok(Client::new(url, trust)?.get_raw("/healthz").await?.status)
}

#[tokio::test]
async fn a_generated_ca_is_kept_across_restarts_and_only_its_pin_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let first = patchwarden_server::start(&c).await.unwrap();
    assert!(first.ca_generated);
    let pin = Fingerprint::parse(first.fingerprint.as_deref().unwrap()).unwrap();
    assert_eq!(
        health(&first.url(), &Trust::Pinned(pin)).await.unwrap(),
        200
    );
    let mut wrong = pin;
    wrong.0[31] ^= 0x80;
    let err = health(&first.url(), &Trust::Pinned(wrong))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    first.shutdown(std::time::Duration::from_secs(1)).await;

    let again = patchwarden_server::start(&c).await.unwrap();
    assert!(!again.ca_generated);
    assert_eq!(again.fingerprint.as_deref(), Some(pin.to_string().as_str()));
    assert_eq!(
        health(&again.url(), &Trust::Pinned(pin)).await.unwrap(),
        200
    );
    // The private keys are the owner's alone.
    use std::os::unix::fs::MetadataExt;
    for key in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(dir.path().join("tls").join(key))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    again.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_operators_certificate_files_are_served_and_their_ca_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Example Corp CA");
    ca_params.distinguished_name = dn;
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let cert_path = dir.path().join("chain.pem");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let mut c = config(dir.path());
    c.tls.mode = TlsMode::Files;
    c.tls.cert = cert_path;
    c.tls.key = key_path.clone();
    let running = patchwarden_server::start(&c).await.unwrap();
    let pin = Fingerprint::of_der(ca.der());
    assert_eq!(
        running.fingerprint.as_deref(),
        Some(pin.to_string().as_str())
    );
    assert_eq!(
        health(&running.url(), &Trust::Pinned(pin)).await.unwrap(),
        200
    );
    running.shutdown(std::time::Duration::from_secs(1)).await;

    // A key file that is not a key is an error that names the file.
    std::fs::write(&key_path, "not a key").unwrap();
    let err = patchwarden_server::start(&c).await.unwrap_err().to_string();
    assert!(err.contains("server.key"), "{err}");
}

#[tokio::test]
async fn plain_http_is_spoken_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tls.mode = TlsMode::PlainHttp;
    let running = patchwarden_server::start(&c).await.unwrap();
    assert_eq!(running.fingerprint, None);
    assert!(running.url().starts_with("http://"));
    assert_eq!(
        health(&running.url(), &Trust::PlainHttp).await.unwrap(),
        200
    );
    // A client that pins a CA will not talk plain HTTP.
    let err = Client::new(&running.url(), &Trust::Pinned(Fingerprint([0; 32]))).unwrap_err();
    assert!(matches!(err, ClientError::Config(_)), "{err}");
    assert!(!dir.path().join("tls").exists(), "no TLS material is made");
    running.shutdown(std::time::Duration::from_secs(1)).await;
}
