//! Certificate pinning: the agent trusts a server whose certificate chain contains the one CA
//! certificate whose SHA-256 it was given at enrollment, and verifies the server's certificate
//! against that CA alone (signature chain, validity, server name) — never against the system's
//! trust store, which any public CA could satisfy.
//!
//! The server sends its CA certificate in its chain (the one it generates on first start
//! does), so the pin can be found without a second round trip. A chain given by an operator
//! can be pinned by any certificate in it, the server's own included.

use std::fmt;
use std::sync::Arc;

use patchwarden_api::v1::signing::{hex, unhex};
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// A fingerprint that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a certificate fingerprint: expected 64 hex digits (optionally after \
     \"sha256:\", optionally in colon-separated pairs)"
)]
pub struct FingerprintError(pub String);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Reads `sha256:ab12…`, `AB:12:…` or bare hex.
    pub fn parse(text: &str) -> Result<Fingerprint, FingerprintError> {
        let trimmed = text.trim();
        let body = trimmed
            .strip_prefix("sha256:")
            .or_else(|| trimmed.strip_prefix("SHA256:"))
            .unwrap_or(trimmed);
        let digits: String = body.chars().filter(|c| *c != ':').collect();
        unhex::<32>(&digits)
            .map(Fingerprint)
            .ok_or_else(|| FingerprintError(text.chars().take(120).collect()))
    }
}

impl fmt::Display for Fingerprint {
    /// `sha256:` and 64 lower-case hex digits, the form `serve` prints and `enroll` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A rustls verifier that trusts only the pinned certificate.
#[derive(Debug)]
pub(crate) struct PinnedVerifier {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl PinnedVerifier {
    pub(crate) fn new(pin: Fingerprint, provider: Arc<CryptoProvider>) -> PinnedVerifier {
        PinnedVerifier { pin, provider }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The server's own certificate pinned directly (a self-signed certificate given by an
        // operator): the exact bytes are what was pinned, so nothing else is needed.
        if Fingerprint::of_der(end_entity) == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(anchor) = intermediates
            .iter()
            .find(|c| Fingerprint::of_der(c) == self.pin)
        else {
            return Err(rustls::Error::General(format!(
                "the server's certificate chain does not contain the pinned CA {}",
                self.pin
            )));
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(anchor.clone().into_owned())
            .map_err(|e| rustls::Error::General(format!("the pinned CA is unusable: {e}")))?;
        let others: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .filter(|c| Fingerprint::of_der(c) != self.pin)
            .cloned()
            .collect();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(format!("verifier: {e}")))?;
        verifier.verify_server_cert(end_entity, &others, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_usual_spellings() {
        let f = Fingerprint([0xab; 32]);
        let shown = f.to_string();
        assert_eq!(Fingerprint::parse(&shown), Ok(f));
        assert_eq!(Fingerprint::parse(&shown.to_uppercase()), Ok(f));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(Fingerprint::parse(&colons), Ok(f));
        for bad in ["", "sha256:", "sha256:ab", &"g".repeat(64), "sha1:abcd"] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
    }
}
