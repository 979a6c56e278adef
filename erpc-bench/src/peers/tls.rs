//! The certificate of the `erpc+tls` row: generated once by the parent (the client) and
//! handed to each TLS server child in its environment, so no file is written.

use std::process::Command;
use std::sync::OnceLock;

use erpc::{TlsClientConfig, TlsServerConfig};

const CERT_ENV: &str = "ERPC_BENCH_TLS_CERT_PEM";
const KEY_ENV: &str = "ERPC_BENCH_TLS_KEY_PEM";

/// A self-signed certificate for 127.0.0.1 and its key, as PEM text.
struct Material {
    cert: String,
    key: String,
}

fn material() -> Result<&'static Material, String> {
    static MATERIAL: OnceLock<Result<Material, String>> = OnceLock::new();
    MATERIAL
        .get_or_init(|| {
            let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
            let certified = rcgen::generate_simple_self_signed(names)
                .map_err(|e| format!("generating the TLS certificate: {e}"))?;
            Ok(Material {
                cert: certified.cert.pem(),
                key: certified.signing_key.serialize_pem(),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Gives a server child the certificate and key.
pub(crate) fn hand_to_server(command: &mut Command) -> Result<(), String> {
    let material = material()?;
    command
        .env(CERT_ENV, &material.cert)
        .env(KEY_ENV, &material.key);
    Ok(())
}

/// The server child's TLS configuration, from what the parent handed it.
pub(crate) fn server_config() -> Result<TlsServerConfig, String> {
    let read = |name: &str| {
        std::env::var(name).map_err(|_| format!("{name} is not set (the bench parent sets it)"))
    };
    TlsServerConfig::from_pem(read(CERT_ENV)?, read(KEY_ENV)?).map_err(|e| e.to_string())
}

/// The client's TLS configuration: trusts the generated certificate.
pub(crate) fn client_config() -> Result<TlsClientConfig, String> {
    TlsClientConfig::from_ca_pem(&material()?.cert).map_err(|e| e.to_string())
}
