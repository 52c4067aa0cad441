//! How dialtone reaches apps. dialtone stands in for Twilio *and* the tunnel in front of an
//! app: a [`Tunnels`] table maps public origins (`https://bot.example.ts.net`) to local ones
//! (`http://127.0.0.1:8765`), and every request and WebSocket goes through it, signed over
//! and naming the public URL while connecting to the local one. TLS is rustls with the
//! system roots, `--cacert` files, or `--insecure`.
//!
//! # Layout
//! - [`tunnel`]: the table, routes, forwarding headers (pure).
//! - [`tls`]: the client configuration and certificate errors in words.
//! - `http`: [`Net::send`], routed requests with redirects followed hop by hop.
//! - `ws`: [`Net::connect_ws`], routed WebSocket connects.

mod http;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod tunnel;
mod ws;

use std::sync::Arc;

pub use http::{HttpError, MAX_REDIRECTS, Request, Response, USER_AGENT};
pub use tls::TlsOptions;
pub use tunnel::{Origin, Route, Scheme, Tunnel, Tunnels};
pub use ws::{
    Conn, SocketOptions, Ws, WsError, upgrade_headers, upgrade_signature, violation, ws_config,
};

/// A bad `--cacert` or TLS setting.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    /// The CA file cannot be used.
    #[error("--cacert {path}: {why}")]
    CaCert {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// The TLS configuration cannot be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// The transport every request of a run shares: one HTTP connection pool and one TLS
/// configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Net {
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
}

impl Net {
    /// A transport trusting what `tls` says.
    pub fn new(tls: &TlsOptions) -> Result<Self, NetError> {
        let config = tls::client_config(tls)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            // Redirects are followed by `send`, hop by hop through the tunnel table.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .tls_backend_preconfigured(config.clone())
            .build()
            .map_err(|e| NetError::Tls(root_cause(&e)))?;
        Ok(Self {
            http,
            tls: Arc::new(config),
        })
    }

    /// The system roots only.
    pub fn system() -> Self {
        Self::new(&TlsOptions::default()).expect("the default TLS configuration builds")
    }

    /// The HTTP client (no redirects followed, no tunnel routing) for requests that need
    /// neither, such as loopback requests to dialtone's own endpoints.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Default for Net {
    fn default() -> Self {
        Self::system()
    }
}

/// The innermost error's words ("Connection refused (os error 111)"), which say more than
/// an outer "error sending request".
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    let mut words = e.to_string();
    while let Some(next) = cur.source() {
        words = next.to_string();
        cur = next;
    }
    if e.to_string().contains("builder") && !words.contains("URL") {
        return format!("invalid URL ({words})");
    }
    words
}
