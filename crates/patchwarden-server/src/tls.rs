//! TLS for the API listener: the CA and server certificate made on first start (or the
//! operator's files), turned into a rustls configuration with the ring provider.
//!
//! On first start in `generate` mode the server makes an ECDSA P-256 CA and a server
//! certificate signed by it, writes them to `data_dir/tls/` (private keys 0600), and from then
//! on loads them. The server sends the CA in its chain, so an agent that pins the CA's SHA-256
//! fingerprint (printed at start) finds it in the handshake. The CA's key stays on the server's
//! disk only to sign a new server certificate when the configured names change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::{Tls, TlsMode};

/// The largest PEM file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// What TLS setup failed at.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("making the certificates: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The material the API listener serves.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub config: Arc<rustls::ServerConfig>,
    /// The CA certificate, PEM, served at `/api/v1/ca.pem`.
    pub ca_pem: String,
    /// SHA-256 of the pinned certificate's DER, as `sha256:` hex.
    pub fingerprint: String,
    /// Whether the CA was made by this start.
    pub generated: bool,
}

/// Loads or makes the TLS material; `None` in plain-HTTP mode.
pub fn setup(tls: &Tls, data_dir: &Path) -> Result<Option<TlsMaterial>, TlsError> {
    match tls.mode {
        TlsMode::PlainHttp => Ok(None),
        TlsMode::Files => {
            let chain = read_chain(&tls.cert)?;
            let key = read_key(&tls.key)?;
            // Agents pin the last certificate of the chain: the CA when the operator included
            // it, the server's own certificate when it is self-signed and alone.
            let pinned = chain.last().cloned().ok_or_else(|| TlsError::File {
                path: tls.cert.clone(),
                reason: "no certificate in the file".into(),
            })?;
            let ca_pem = pem_of(&pinned);
            Ok(Some(material(chain, key, &pinned, ca_pem, false)?))
        }
        TlsMode::Generate => generate_or_load(&tls.names, &data_dir.join("tls")),
    }
}

/// The fingerprint agents pin, read without making or changing anything: what `admin token
/// create` puts in the install commands. `None` in plain-HTTP mode (the agents pin the
/// proxy's certificate, which the server does not know). In `generate` mode the CA must have
/// been made already, by a first start of the server.
pub fn pinned_fingerprint(tls: &Tls, data_dir: &Path) -> Result<Option<String>, TlsError> {
    let path = match tls.mode {
        TlsMode::PlainHttp => return Ok(None),
        TlsMode::Files => tls.cert.clone(),
        TlsMode::Generate => {
            let path = data_dir.join("tls").join("ca.pem");
            if !path.exists() {
                return Err(TlsError::File {
                    path,
                    reason: "no CA yet: start the server once, and it makes one".into(),
                });
            }
            path
        }
    };
    // As `setup` does: the last certificate of the file is the one agents pin.
    let chain = read_chain(&path)?;
    Ok(chain.last().map(|der| fingerprint(der)))
}

fn material(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pinned: &CertificateDer<'static>,
    ca_pem: String,
    generated: bool,
) -> Result<TlsMaterial, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsMaterial {
        config: Arc::new(config),
        ca_pem,
        fingerprint: fingerprint(pinned),
        generated,
    })
}

/// `sha256:` and the hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    format!(
        "sha256:{}",
        patchwarden_api::v1::signing::hex(&Sha256::digest(der))
    )
}

fn pem_of(der: &[u8]) -> String {
    use base64_lite::encode;
    let b64 = encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Standard base64, for the one PEM the server writes from DER (an operator's chain).
mod base64_lite {
    pub(super) fn encode(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk.first().copied().unwrap_or(0),
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
                if i <= chunk.len() {
                    out.push(char::from(T[((n >> shift) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let err = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(err(format!("longer than {MAX_PEM_BYTES} bytes")));
    }
    Ok(bytes)
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_limited(path)?;
    let chain: Result<Vec<_>, _> = rustls_pemfile::certs(&mut bytes.as_slice()).collect();
    let chain = chain.map_err(|e| TlsError::File {
        path: path.to_owned(),
        reason: format!("not a PEM certificate chain: {e}"),
    })?;
    if chain.is_empty() {
        return Err(TlsError::File {
            path: path.to_owned(),
            reason: "no certificate in the file".into(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_limited(path)?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| TlsError::File {
            path: path.to_owned(),
            reason: format!("not a PEM private key: {e}"),
        })?
        .ok_or_else(|| TlsError::File {
            path: path.to_owned(),
            reason: "no private key in the file".into(),
        })
}

/// Writes `contents` to `path`, readable by the owner only when `secret`.
fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| TlsError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 });
    let mut f = options.open(path).map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

fn generate_or_load(names: &[String], dir: &Path) -> Result<Option<TlsMaterial>, TlsError> {
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let (ca_cert, ca_key, ca_key_pem, generated) = {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if cert_path.exists() {
            let cert_pem =
                String::from_utf8(read_limited(&cert_path)?).map_err(|_| TlsError::File {
                    path: cert_path.clone(),
                    reason: "not UTF-8 PEM".into(),
                })?;
            let key_pem =
                String::from_utf8(read_limited(&key_path)?).map_err(|_| TlsError::File {
                    path: key_path.clone(),
                    reason: "not UTF-8 PEM".into(),
                })?;
            (
                cert_pem,
                KeyPair::from_pem(&key_pem).map_err(gen_err)?,
                key_pem,
                false,
            )
        } else {
            std::fs::create_dir_all(dir).map_err(|e| TlsError::File {
                path: dir.to_owned(),
                reason: e.to_string(),
            })?;
            let key = KeyPair::generate().map_err(gen_err)?;
            let mut params = ca_params().map_err(gen_err)?;
            set_validity(&mut params, 20 * 365);
            let cert = params.self_signed(&key).map_err(gen_err)?;
            let key_pem = key.serialize_pem();
            write_file(&key_path, &key_pem, true)?;
            write_file(&cert_path, &cert.pem(), false)?;
            (cert.pem(), key, key_pem, true)
        }
    };
    let _ = ca_key_pem;
    // The issuer is the CA's name and key: what a signature over a new server certificate
    // needs (the CA certificate itself is read from disk for the chain).
    let issuer = Issuer::new(ca_params().map_err(gen_err)?, ca_key);

    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in names {
        if !sans.contains(n) {
            sans.push(n.clone());
        }
    }
    let server_cert_path = dir.join("server.pem");
    let server_key_path = dir.join("server.key");
    let names_path = dir.join("server.names");
    let wanted_names = sans.join("\n");
    let have_names = std::fs::read_to_string(&names_path).unwrap_or_default();
    if !server_cert_path.exists() || have_names != wanted_names || generated {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params.subject_alt_names = sans
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(gen_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Patchwarden server");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, 2 * 365);
        let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
        write_file(&server_key_path, &key.serialize_pem(), true)?;
        write_file(&server_cert_path, &cert.pem(), false)?;
        write_file(&names_path, &wanted_names, false)?;
    }
    let mut chain = read_chain(&server_cert_path)?;
    let ca_chain = read_chain(&dir.join("ca.pem"))?;
    let ca_der = ca_chain.first().cloned().ok_or_else(|| TlsError::File {
        path: dir.join("ca.pem"),
        reason: "no certificate".into(),
    })?;
    chain.push(ca_der.clone());
    let key = read_key(&server_key_path)?;
    material(chain, key, &ca_der, ca_cert, generated).map(Some)
}

/// The CA's parameters: made once, and rebuilt to sign with its stored key.
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Patchwarden server CA");
    params.distinguished_name = dn;
    Ok(params)
}

/// Sets a validity period from a day ago (clocks of agents differ) for `days` days.
/// Certificates are made once and kept, so this reads the clock when one is made.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = crate::clock::now();
    let day = |offset: i64| {
        let d = now
            .checked_add(jiff::SignedDuration::from_hours(offset * 24))
            .unwrap_or(now)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        rcgen::date_time_ymd(
            i32::from(d.year()),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    };
    params.not_before = day(-1);
    params.not_after = day(days);
}
