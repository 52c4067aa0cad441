//! TLS for `https://` webhooks and `wss://` streams: rustls (no OpenSSL), the system's roots
//! plus the user's `--cacert`, or no verification at all with `--insecure`; and a
//! certificate error put in words that say what is wrong.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::NetError;

/// A CA file larger than this is not a CA file.
const CACERT_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// What to trust.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM files whose certificates are trusted in addition to the system roots.
    pub cacerts: Vec<std::path::PathBuf>,
    /// Accept any certificate (a local app with a self-signed one).
    pub insecure: bool,
}

/// The system's roots, loaded once per process (parsing them costs milliseconds).
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("system roots: {e}");
        }
        let (added, ignored) = store.add_parsable_certificates(found.certs);
        tracing::debug!("system roots: {added} trusted, {ignored} unusable");
        store
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Reads the certificates of a PEM file, bounded.
fn read_cacert(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let bad = |why: String| NetError::CaCert {
        path: path.display().to_string(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.len() > CACERT_MAX_BYTES {
        return Err(bad(format!(
            "{} bytes is over the {CACERT_MAX_BYTES}-byte limit for a CA file",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

/// The client configuration every TLS connection of dialtone uses.
pub(crate) fn client_config(opts: &TlsOptions) -> Result<rustls::ClientConfig, NetError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = system_roots().clone();
        for path in &opts.cacerts {
            for cert in read_cacert(path)? {
                roots.add(cert).map_err(|e| NetError::CaCert {
                    path: path.display().to_string(),
                    why: format!("unusable certificate: {e}"),
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// `--insecure`: any certificate is accepted, but the handshake's signatures are still
/// checked (so the connection is at least to whoever holds the key it presented).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls error somewhere in `e`'s chain (I/O errors carry it inside, where `source()`
/// does not reach).
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(r) = find_rustls(inner)
        {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// A TLS failure in `e`'s chain in words that say what to do, or `None` when `e` is not
/// a TLS failure. `host` is the name the certificate was checked against.
pub(crate) fn describe_tls(e: &(dyn std::error::Error + 'static), host: &str) -> Option<String> {
    let err = find_rustls(e)?;
    let fix = "pass --cacert FILE.pem with the CA that signed it, or --insecure";
    Some(match err {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => format!(
                "TLS: {host}'s certificate is from an unknown issuer (not in the system roots \
                 or any --cacert): {fix}"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "TLS: the certificate is not valid for host {host} (wrong host: it names \
                     other hosts): connect by a name it covers, or pass --insecure"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("TLS: {host}'s certificate has expired: renew it, or pass --insecure")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("TLS: {host}'s certificate is not valid yet (check the clocks)")
            }
            CertificateError::BadEncoding => {
                format!("TLS: {host}'s certificate could not be parsed")
            }
            other => format!("TLS: {host}'s certificate was refused ({other:?}): {fix}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!(
                "TLS: {host} did not answer with TLS (is it serving plain http? then map or \
                 call it as http://)"
            )
        }
        other => format!("TLS: {other}"),
    })
}
