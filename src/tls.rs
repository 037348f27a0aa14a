//! The TLS client settings herald's connections share (IMAP, PostgreSQL):
//! the system's roots plus those of an optional CA file, with ring as the
//! only crypto provider (the one lettre uses; deps.md P3).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The client settings; an error says what is wrong with `ca_file` (the
/// caller names the file).
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(file) = ca_file {
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
            .map_err(|error| error.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|error| error.to_string())?;
        if certificates.is_empty() {
            return Err("it holds no certificate (-----BEGIN CERTIFICATE-----)".to_owned());
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|error| error.to_string())?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|error| error.to_string())
}
