//! The Twilio REST API that `dialtone call` and `dialtone load` serve beside their calls: the
//! `dialtone serve` router, following every call they place through the engine's
//! `CallRegistry` hook, so an app's own REST requests (list, fetch, hang up, redirect) can be
//! tested.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use dialtone_call::CallRegistry;
use dialtone_server::{ServerConfig, Simulator};
use tokio::task::JoinHandle;

/// Finished calls the REST API keeps (live ones are bounded by the run's concurrency), so a
/// long load run's memory stays bounded.
pub(crate) const HISTORY: usize = 200;

/// A running REST API.
pub(crate) struct RestApi {
    /// Where the app's Twilio client reaches it (`http://ADDR`).
    pub(crate) url: String,
    /// Hand this to the engine so every call placed is listed and can be steered.
    pub(crate) registry: Arc<dyn CallRegistry>,
    /// Hand this to every call: its recordings (`<Dial record>`, `<Record>`) are served here.
    pub(crate) recordings: Arc<dyn dialtone_call::recordings::RecordingStore>,
    task: JoinHandle<()>,
}

impl RestApi {
    /// Binds `listen` and serves the REST API for one account: `account_sid` with
    /// `auth_token` as its Basic-auth password (the token calls are signed with). `history`
    /// bounds the finished calls kept; `timelines` keeps every engine event of each call for
    /// the web page at `/`, which, as in `dialtone serve`, needs the same credentials (the
    /// browser asks), and whose recording media follow serve's defaults.
    pub(crate) async fn start(
        listen: SocketAddr,
        account_sid: &str,
        auth_token: &str,
        history: usize,
        timelines: bool,
    ) -> anyhow::Result<RestApi> {
        if !listen.ip().is_loopback() {
            eprintln!(
                "warning: --rest-listen {listen} is not a loopback address: other machines can \
                 reach the REST API (and hang up calls) with the account SID and auth token"
            );
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("cannot listen for the REST API on {listen} (--rest-listen)")
            })?;
        let addr = listener.local_addr()?;
        let mut config = ServerConfig::default();
        // No file validation: `--account-sid` has always been taken as given.
        config.accounts[0].sid = account_sid.to_string();
        config.accounts[0].auth_token = auth_token.to_string();
        config.history = history.max(1);
        let url = format!("http://{addr}");
        let sim = Simulator::new(config, &url);
        let registry: Arc<dyn CallRegistry> = Arc::new(sim.external_calls(timelines));
        let recordings = sim.recording_store();
        let task = tokio::spawn(async move {
            if let Err(e) = sim.serve(listener, std::future::pending()).await {
                tracing::warn!("the REST API stopped: {e}");
            }
        });
        Ok(RestApi {
            url,
            registry,
            recordings,
            task,
        })
    }

    /// The line that tells the user where to point the app's Twilio client.
    pub(crate) fn banner(&self, account_sid: &str) -> String {
        format!(
            "REST API: {}  (point the app's Twilio client here; account {account_sid}, auth token as --auth-token; the web page at {}/ signs in with the same)",
            self.url, self.url
        )
    }

    /// Stops serving.
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}
