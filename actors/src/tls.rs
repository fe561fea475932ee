//! TLS configurations from the PEM files named in settings (RFC 8446 and
//! RFC 5246 through rustls, ring as the crypto provider): the server side
//! of RTMPS, and both sides of SIP over TLS (RFC 3261 §26.2, RFC 5922 §7
//! for which name a SIP peer's certificate must carry). Loading fails with
//! the setting, the file and the reason, at start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::sip_stream::SipTls;

/// A TLS acceptor for RTMPS from `rtmps.certificate` and `rtmps.private_key`.
pub fn acceptor(certificate: &Path, private_key: &Path) -> Result<TlsAcceptor, String> {
    let (chain, key) = identity(
        ("rtmps.certificate", "rtmps.private_key"),
        certificate,
        private_key,
    )?;
    server(chain, key, "rtmps")
}

/// Both sides of SIP over TLS from `sip.tls_certificate`,
/// `sip.tls_private_key` and `sip.tls_ca`. Peers we connect to are
/// verified against the certificates in `ca` when it is given, else
/// against the system's roots; our own certificate is presented to peers
/// that ask for one (mutual TLS, as trunks often want).
pub fn sip(certificate: &Path, private_key: &Path, ca: Option<&Path>) -> Result<SipTls, String> {
    let (chain, key) = identity(
        ("sip.tls_certificate", "sip.tls_private_key"),
        certificate,
        private_key,
    )?;
    let acceptor = server(chain.clone(), key.clone_key(), "sip.tls")?;
    let mut roots = RootCertStore::empty();
    match ca {
        Some(ca) => {
            let shown = ca.display();
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("sip.tls_ca {shown}: {e}"))?
            {
                let cert = cert.map_err(|e| format!("sip.tls_ca {shown}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sip.tls_ca {shown}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("sip.tls_ca {shown}: no certificate in the file"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // One unreadable system certificate does not stop the others.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "SIP over TLS: no system root certificates found (install ca-certificates, or set sip.tls_ca)"
                        .into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("sip.tls: the certificate and key do not go together: {e}"))?;
    Ok(SipTls {
        acceptor,
        connector: TlsConnector::from(Arc::new(client)),
    })
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The certificate chain and private key in these PEM files.
fn identity(
    (cert_setting, key_setting): (&str, &str),
    certificate: &Path,
    private_key: &Path,
) -> Result<Identity, String> {
    let shown = certificate.display();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| format!("{cert_setting} {shown}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert_setting} {shown}: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "{cert_setting} {shown}: no certificate in the file"
        ));
    }
    let key = PrivateKeyDer::from_pem_file(private_key)
        .map_err(|e| format!("{key_setting} {}: {e}", private_key.display()))?;
    Ok((chain, key))
}

fn server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    section: &str,
) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{section}: the certificate and key do not go together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
