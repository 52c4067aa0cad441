//! `dialtone serve`: a local stand-in for Twilio's Programmable Voice REST API. Scripts that
//! use the official helper libraries run against it by changing only the base URL: calls are
//! created, fetched, listed, updated and deleted with Twilio's JSON, paging, errors and status
//! lifecycle; calls to hosted numbers ring those numbers' voice apps through the call engine;
//! status callbacks are signed; recordings are WAVs; a read-only web page shows it all live.
//!
//! # Layout
//! - [`config`]: accounts, hosted numbers and simulation knobs (TOML, two stages).
//! - `store`: calls, numbers and recordings in memory, bounded by `history`.
//! - `auth`, `params`, [`error`]: Basic auth, form parameters, Twilio-shaped errors (one
//!   `IntoResponse`).
//! - `resources`: the resources' JSON and list paging, exactly as Twilio shapes them.
//! - `calls_api`, `numbers_api`, `recordings_api`, `queues_api`: the REST handlers.
//! - `runner`: one call's life (queue, ring, answer, the engine, the end); `caller_leg` turns
//!   the caller leg's TwiML into audio for two-leg calls; `callbacks` sends status callbacks.
//! - `capture`: a finished call's stream audio and recording.
//! - `external`: calls placed by `dialtone call`/`dialtone load`, registered through the call
//!   engine's `CallRegistry` hook so the same REST API lists, hangs up and redirects them.
//! - `web`: the page at `/`, with `web_legs` (a call's dialed legs and bridges),
//!   `web_sections` (conferences and queues) and `web_phone` (the browser softphone, whose
//!   WebSocket `phone` serves); `wav`: WAV bytes for players and recordings.
//!
//! # Routes
//! - `/2010-04-01/Accounts/{AC}/Calls.json`, `…/Calls/{CA}.json`, `…/Calls/{CA}/Recordings.json`
//! - `/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json`, `…/IncomingPhoneNumbers/{PN}.json`
//! - `/2010-04-01/Accounts/{AC}/Queues.json`, `…/Queues/{QU}.json`, `…/Queues/{QU}/Members.json`,
//!   `…/Queues/{QU}/Members/{CA|Front}.json` (the engine's call queues)
//! - `/2010-04-01/Accounts/{AC}/Recordings.json`, `…/Recordings/{RE}.json`, media at
//!   `…/Recordings/{RE}` or `{RE}.wav` (no auth, as Twilio's default)
//! - `/` the web page and `/calls/{CA}/streams/{n}/{heard|sent}.wav` (an account's
//!   credentials unless `web_auth = false`), `/audio/{file}`, `/health`,
//!   `/_dialtone/version` (open)
//!
//! Every error of every route is Twilio's JSON error (`error::twilio_errors`); bodies are
//! at most 64 KB (413/20413) and URIs 8 KB (414).

pub mod config;
pub mod error;
pub mod format;

mod auth;
mod callbacks;
mod caller_leg;
mod calls_api;
mod capture;
mod conferences_api;
mod dial_legs;
mod external;
mod leg;
mod numbers_api;
mod observe;
mod params;
mod phone;
mod phone_call;
mod queues_api;
mod recordings_api;
mod resources;
mod runner;
mod store;
mod web;
mod web_legs;
mod web_phone;
mod web_sections;

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use dialtone_call::Engine;
use tokio::sync::{Semaphore, mpsc};

pub use config::{ConfigError, FileConfig, ServerConfig};
pub use error::{ApiError, MAX_URI};
pub use external::ExternalCalls;
pub use params::{MAX_BODY, MAX_TWIML};

use crate::store::{NumberRecord, Store};

/// State every handler and call task shares.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    /// Base URL apps reach the server at (no trailing `/`).
    pub(crate) public_url: String,
    pub(crate) store: Store,
    pub(crate) engine: Arc<Engine>,
    /// Transport for status callbacks and the caller leg's requests.
    pub(crate) net: dialtone_call::Net,
    /// Every mapping: the global table, then each configured number's (status callbacks
    /// and the caller leg are routed through it).
    pub(crate) tunnels: Arc<dialtone_call::Tunnels>,
    /// One permit per running call.
    pub(crate) permits: Arc<Semaphore>,
    /// Calls waiting for a permit.
    pub(crate) queued: AtomicUsize,
    /// Cloned into every task; taken (dropped) at shutdown so the receiver sees the end.
    guard: Mutex<Option<mpsc::Sender<()>>>,
    drained: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

impl Shared {
    /// A guard for a new task, or `None` once shutting down.
    pub(crate) fn task_guard(&self) -> Option<mpsc::Sender<()>> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The account with this SID.
    pub(crate) fn account(&self, sid: &str) -> Option<&config::Account> {
        self.config.accounts.iter().find(|a| a.sid == sid)
    }

    /// The token that signs requests for account `sid` (the default account's when unknown).
    pub(crate) fn auth_token(&self, sid: &str) -> String {
        self.account(sid).map_or_else(
            || config::DEFAULT_AUTH_TOKEN.to_string(),
            |a| a.auth_token.clone(),
        )
    }
}

/// The simulator: its router and its calls. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    /// A simulator hosting `config`'s accounts and numbers; `public_url` is where apps reach
    /// it (`http://127.0.0.1:8080`), used in recording URLs.
    pub fn new(config: ServerConfig, public_url: &str) -> Self {
        let store = Store::new(config.history);
        let now = SystemTime::now();
        for n in &config.numbers {
            let method = |m: &Option<String>| {
                m.as_deref()
                    .and_then(config::parse_method)
                    .unwrap_or_default()
            };
            store.insert_number(NumberRecord {
                sid: dialtone_protocol::sid::random("PN"),
                account_sid: n
                    .account_sid
                    .clone()
                    .unwrap_or_else(|| config.accounts[0].sid.clone()),
                phone_number: n.phone_number.clone(),
                friendly_name: n
                    .friendly_name
                    .clone()
                    .unwrap_or_else(|| format::national(&n.phone_number)),
                voice_url: n.voice_url.clone(),
                voice_method: method(&n.voice_method),
                voice_fallback_url: n.voice_fallback_url.clone(),
                voice_fallback_method: dialtone_call::HttpMethod::Post,
                status_callback: n.status_callback.clone(),
                status_callback_method: method(&n.status_callback_method),
                // Validated by the config.
                tunnels: Arc::new(config::parse_tunnels(&n.tunnels, "tunnels").unwrap_or_default()),
                created: now,
                updated: now,
            });
        }
        let (tx, rx) = mpsc::channel(1);
        let tunnels = Arc::new(all_tunnels(&config));
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| public_url.trim_end_matches('/').to_string());
        Self {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(config.max_concurrent_calls)),
                engine: Arc::new(Engine::with_net(config.net.clone())),
                net: config.net.clone(),
                config,
                public_url,
                store,
                tunnels,
                queued: AtomicUsize::new(0),
                guard: Mutex::new(Some(tx)),
                drained: tokio::sync::Mutex::new(rx),
            }),
        }
    }

    /// Where apps reach the server.
    pub fn public_url(&self) -> &str {
        &self.shared.public_url
    }

    /// Keeps the recordings calls make (`<Dial record>`, `<Record>`) in this simulator's
    /// Recordings resource: hand it to calls placed elsewhere (`CallConfig::recordings`).
    pub fn recording_store(&self) -> Arc<dyn dialtone_call::recordings::RecordingStore> {
        Arc::new(capture::StoreRecordings(self.shared.clone()))
    }

    /// The routes (see the crate docs).
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/Calls.json", get(calls_api::list).post(calls_api::create))
            .route(
                "/Calls/{file}",
                get(calls_api::fetch)
                    .post(calls_api::update)
                    .delete(calls_api::delete),
            )
            .route(
                "/Calls/{call}/Recordings.json",
                get(recordings_api::list_for_call),
            )
            .route(
                "/IncomingPhoneNumbers.json",
                get(numbers_api::list).post(numbers_api::create),
            )
            .route(
                "/IncomingPhoneNumbers/{file}",
                get(numbers_api::fetch)
                    .post(numbers_api::update)
                    .delete(numbers_api::delete),
            )
            .route(
                "/Queues.json",
                get(queues_api::list).post(queues_api::create),
            )
            .route(
                "/Queues/{file}",
                get(queues_api::fetch)
                    .post(queues_api::update)
                    .delete(queues_api::delete),
            )
            .route("/Queues/{queue}/Members.json", get(queues_api::members))
            .route(
                "/Queues/{queue}/Members/{file}",
                get(queues_api::member).post(queues_api::dequeue),
            )
            .route("/Conferences.json", get(conferences_api::list))
            .route(
                "/Conferences/{file}",
                get(conferences_api::fetch).post(conferences_api::update),
            )
            .route(
                "/Conferences/{conf}/Participants.json",
                get(conferences_api::list_participants).post(conferences_api::create_participant),
            )
            .route(
                "/Conferences/{conf}/Participants/{file}",
                get(conferences_api::fetch_participant)
                    .post(conferences_api::update_participant)
                    .delete(conferences_api::delete_participant),
            )
            .route("/Recordings.json", get(recordings_api::list))
            .route(
                "/Recordings/{file}",
                get(recordings_api::fetch).delete(recordings_api::delete),
            );
        Router::new()
            .nest("/2010-04-01/Accounts/{account}", api)
            .route("/2010-04-01/Accounts/{file}", get(calls_api::fetch_account))
            .route("/", get(web::index))
            .route("/phone/ws", get(phone::ws))
            .route("/_dialtone/version", get(web::version))
            .route("/calls/{call}/streams/{n}/{file}", get(web::stream_audio))
            .route("/audio/{file}", get(web::audio_file))
            .route("/health", get(|| async { "ok" }))
            .fallback(web::not_found)
            .layer(axum::extract::DefaultBodyLimit::max(params::MAX_BODY))
            .layer(axum::middleware::from_fn(error::twilio_errors))
            .with_state(self.shared.clone())
    }

    /// Serves the routes on `listener` until `shutdown` resolves (calls are left alone: for
    /// a REST API beside calls placed elsewhere, see [`Simulator::external_calls`]).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Hangs up every live call, cancels queued ones, and waits up to `grace` for their
    /// tasks (and status callbacks) to finish. True when everything drained in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.shared
            .guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for (sid, control) in self.shared.store.live_handles() {
            match control.handle {
                Some(h) => h.hangup("dialtone serve is shutting down"),
                None => {
                    self.shared.store.update_call(&sid, |c| {
                        c.control.cancel = Some(dialtone_protocol::webhook::CallStatus::Canceled);
                    });
                }
            }
        }
        // Queued calls wait on permits: closing the semaphore wakes them to end canceled.
        self.shared.permits.close();
        let mut rx = self.shared.drained.lock().await;
        tokio::time::timeout(grace, rx.recv()).await.is_ok()
    }
}

/// The global table, then every configured number's mappings.
fn all_tunnels(config: &ServerConfig) -> dialtone_call::Tunnels {
    config
        .numbers
        .iter()
        .fold(config.tunnels.clone(), |acc, n| {
            acc.then(&config::parse_tunnels(&n.tunnels, "tunnels").unwrap_or_default())
        })
}

/// Serves the simulator on `listener` until `shutdown` resolves, then hangs up live calls
/// and waits (10 s at most) for them and their callbacks to finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let sim = Simulator::new(config, &format!("http://{addr}"));
    let stopping = sim.clone();
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Live calls end first so that their final callbacks still go out.
            if !stopping.shutdown(Duration::from_secs(10)).await {
                tracing::warn!("some calls did not finish within 10 s of shutdown");
            }
        })
        .await
}
