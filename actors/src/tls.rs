//! The TLS side of RTMPS: a rustls server configuration from the PEM files
//! named in `[rtmps]` (RFC 8446 and RFC 5246 through rustls, ring as the
//! crypto provider). Loading fails with the file and the reason, at start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor for the certificate chain and key in these PEM files.
pub fn acceptor(certificate: &Path, private_key: &Path) -> Result<TlsAcceptor, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| format!("rtmps.certificate {}: {e}", certificate.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("rtmps.certificate {}: {e}", certificate.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "rtmps.certificate {}: no certificate in the file",
            certificate.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(private_key)
        .map_err(|e| format!("rtmps.private_key {}: {e}", private_key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("rtmps: the certificate and key do not go together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
