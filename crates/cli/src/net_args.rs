//! The flags that say how dialtone reaches the app, shared by `call`, `load`, `replay` and
//! `serve`: the tunnel table and TLS trust.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use dialtone_call::{Net, TlsOptions, Tunnel, Tunnels};

/// How dialtone reaches the app.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct NetArgs {
    /// Stand in for the app's tunnel: PUBLIC=LOCAL, e.g.
    /// https://bot.example.ts.net=http://127.0.0.1:8765 (repeatable). Every URL dialtone
    /// requests on PUBLIC (webhooks, <Play>, callbacks, wss:// streams) is signed over and
    /// names PUBLIC, and connects to LOCAL.
    #[arg(long = "tunnel", value_name = "PUBLIC=LOCAL")]
    pub(crate) tunnels: Vec<Tunnel>,
    /// A PEM file of CA certificates to trust for https:// and wss:// apps, besides the
    /// system's roots (repeatable).
    #[arg(long = "cacert", value_name = "PEM")]
    pub(crate) cacerts: Vec<PathBuf>,
    /// Accept any TLS certificate from the app (self-signed, expired, other host).
    #[arg(long)]
    pub(crate) insecure: bool,
}

impl NetArgs {
    /// The transport these flags ask for (a bad --cacert is bad input).
    pub(crate) fn net(&self) -> anyhow::Result<Net> {
        Net::new(&TlsOptions {
            cacerts: self.cacerts.clone(),
            insecure: self.insecure,
        })
        .context("TLS settings")
    }

    /// The tunnel table, flags first, then `more` (a scenario file's).
    pub(crate) fn tunnels(&self, more: &Tunnels) -> Tunnels {
        Tunnels::new(self.tunnels.clone()).then(more)
    }
}

/// Checks a URL the user gave for the app: http(s) with a host.
pub(crate) fn check_webhook(flag: &str, u: &str) -> anyhow::Result<()> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => Ok(()),
        Ok(_) => anyhow::bail!("{flag} {u:?} must be an http:// or https:// URL"),
        Err(e) => anyhow::bail!("{flag} {u:?} is not a URL: {e}"),
    }
}
