//! The reference voice app: a small, production-shaped axum service that answers a
//! call with signed-webhook TwiML, talks over a bidirectional Media Stream with
//! turn-taking and barge-in, and is dialtone's embedded default target.
//!
//! It is deliberately the app a user would write against real Twilio: it validates
//! `X-Twilio-Signature` on the webhook *and* on the WebSocket upgrade, returns
//! `<Say>` + `<Connect><Stream>`, detects the caller's turns with an energy VAD clocked
//! by the media `timestamp`s, answers each turn with a short clip followed by a `mark`,
//! and sends `clear` when the caller talks over that clip.
//!
//! In relay mode ([`BotConfig::relay`]) it is a ConversationRelay app instead: `/voice`
//! answers `<Connect><ConversationRelay url=".../relay" welcomeGreeting="...">`, and the
//! `/relay` WebSocket (signature checked on the upgrade too) answers each final `prompt`
//! with text tokens streamed after a moment of thinking ([`RelayMode`]), answers digits, and
//! stops an answer on `interrupt`.
//!
//! # Layout
//! - [`BotConfig`] / [`VadConfig`]: everything the app needs, with working defaults.
//! - [`router`] builds the axum [`Router`]; [`serve`] runs it on a bound listener until a
//!   shutdown future resolves; [`spawn_loopback`] starts it on a free loopback port.
//! - `voice`: the `/voice` webhook (signature check, caller check, TwiML).
//! - `media`: the `/media` WebSocket (signature check on upgrade, per-call session).
//! - [`relay`]: the `/relay` ConversationRelay WebSocket of the relay mode.
//! - [`vad`]: the pure energy voice-activity detector the session feeds.
//! - `events`: milestone records (`vad.speech_start`, `vad.speech_end`,
//!   `reply.first_audio`) POSTed to [`BotConfig::events_url`] by one background task.
//! - [`misbehave`]: deliberate faults ([`BotConfig::misbehave`]) for testing callers against
//!   a failing app; [`hostile`]: the bodies and floods of its hostile faults.
//!
//! # Routes
//! - `POST /voice` (form body) or `GET /voice` (query): TwiML.
//! - `GET /media`: the Media Streams WebSocket.
//! - `GET /relay`: the ConversationRelay WebSocket (relay mode).
//! - `GET /hostile/huge.wav`: the 200 MiB `<Play>` of the `huge_play` fault.
//! - `GET /health`: `200 ok`, for readiness probes.

mod events;
pub mod hostile;
mod media;
pub mod misbehave;
pub mod relay;
mod session;
mod signature;
pub mod vad;
mod voice;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use dialtone_audio::FrameSet;
use tokio::sync::watch;

pub use misbehave::{Behaviour, Misbehave, MisbehaveError};

/// The auth token the bot expects when none is configured. It equals dialtone's own
/// default signing token, so the embedded target accepts dialtone's calls out of the box.
pub const DEFAULT_AUTH_TOKEN: &str = "dialtone-local-auth-token";

/// Everything the bot needs. [`Default`] gives a working local setup.
#[derive(Clone)]
pub struct BotConfig {
    /// Auth token used to validate `X-Twilio-Signature` (webhook and WebSocket upgrade).
    pub auth_token: String,
    /// Base URL the app believes it is reached at, e.g. `https://bot.example.com`, used to
    /// rebuild the URL Twilio signed and to write the `<Stream url>` (`http`→`ws`,
    /// `https`→`wss`, path `/media` appended). A path prefix is kept (the route paths
    /// are appended to it), for apps behind a proxy that strips it. `None`: `http://`
    /// plus the request's `Host` header, i.e. `http://{local_addr}` as the caller
    /// addressed it.
    pub public_url: Option<String>,
    /// Caller numbers (`From`) allowed to talk to the bot; `None` lets everyone in.
    /// Others hear a short apology and are hung up on.
    pub registered: Option<Vec<String>>,
    /// Text of the `<Say>` played before the stream connects (in relay mode, the
    /// `welcomeGreeting`).
    pub greeting: String,
    /// What the bot says after each caller turn. Default: [`beep_boop`].
    pub reply_audio: Arc<FrameSet>,
    /// Turn detection thresholds.
    pub vad: VadConfig,
    /// Where to POST milestone records (JSON, `docs/milestones.md`): `vad.speech_start`
    /// and `vad.speech_end` stamped with the wall-clock time the VAD detected them, and
    /// `reply.first_audio` when a reply's first media was sent. `None`: no reporting.
    /// Records are queued (bounded) and POSTed by one background task, so a slow
    /// endpoint costs dropped records, never a late media loop.
    pub events_url: Option<String>,
    /// Deliberate faults for a fraction of calls (HTTP 500, invalid TwiML, refused upgrade,
    /// dropped or unread stream, crash on a duplicated frame). Default: none.
    pub misbehave: Misbehave,
    /// ConversationRelay mode: `/voice` answers `<Connect><ConversationRelay>` to `/relay`
    /// instead of `<Connect><Stream>` to `/media`. `None` (default): Media Streams.
    pub relay: Option<RelayMode>,
}

/// How the relay mode answers: each final `prompt` gets "You said: " and its first words
/// back, one `text` token a word, the first after [`RelayMode::think`], the next ones
/// [`RelayMode::token_gap`] apart, the last with `last: true`. [`Default`]: 150 ms and 30 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayMode {
    /// From a final prompt (or a digit) to the answer's first token: the "LLM".
    pub think: Duration,
    /// Between two tokens of an answer.
    pub token_gap: Duration,
}

impl Default for RelayMode {
    fn default() -> Self {
        RelayMode {
            think: Duration::from_millis(150),
            token_gap: Duration::from_millis(30),
        }
    }
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            auth_token: DEFAULT_AUTH_TOKEN.to_owned(),
            public_url: None,
            registered: None,
            greeting: "Hello! You are talking to the dialtone reference bot.".to_owned(),
            reply_audio: Arc::new(beep_boop()),
            vad: VadConfig::default(),
            events_url: None,
            misbehave: Misbehave::default(),
            relay: None,
        }
    }
}

impl fmt::Debug for BotConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The auth token is a secret: configs end up in logs.
        f.debug_struct("BotConfig")
            .field("auth_token", &"<redacted>")
            .field("public_url", &self.public_url)
            .field("registered", &self.registered)
            .field("greeting", &self.greeting)
            .field("reply_audio", &self.reply_audio)
            .field("vad", &self.vad)
            .field("events_url", &self.events_url)
            .field("misbehave", &self.misbehave)
            .field("relay", &self.relay)
            .finish()
    }
}

/// Energy VAD thresholds (see [`vad`] for the exact rules).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// A 20 ms frame whose RMS level is at or above this is voiced. Default −35 dBFS:
    /// well above line noise and μ-law silence, well below normal speech (−25…−10).
    pub threshold_dbfs: f32,
    /// Consecutive voiced time needed before speech counts as started. Default 100 ms,
    /// enough to ignore clicks and single loud frames.
    pub min_speech_ms: u32,
    /// Unvoiced time needed to end a turn. Default 500 ms, longer than the pauses
    /// between words but short enough for a snappy reply.
    pub hangover_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold_dbfs: -35.0,
            min_speech_ms: 100,
            hangover_ms: 500,
        }
    }
}

/// The default reply: 600 ms of synthetic "beep-boop", a 300 ms 880 Hz tone then a
/// 300 ms 587 Hz tone at about −12 dBFS, each with 10 ms linear fades so the cuts do
/// not click. 30 frames of 20 ms; loud enough to trip a caller-side VAD, and
/// unmistakable in a recording.
pub fn beep_boop() -> FrameSet {
    const RATE: f32 = 8000.0;
    const HALF: usize = 2400; // 300 ms at 8 kHz
    const FADE: usize = 80; // 10 ms
    const AMPLITUDE: f32 = 8000.0; // ≈ −12 dBFS peak
    let tone = |freq: f32| {
        (0..HALF).map(move |i| {
            let edge = i.min(HALF - 1 - i);
            let gain = if edge < FADE {
                edge as f32 / FADE as f32
            } else {
                1.0
            };
            let phase = std::f32::consts::TAU * freq * i as f32 / RATE;
            (AMPLITUDE * gain * phase.sin()) as i16
        })
    };
    let pcm: Vec<i16> = tone(880.0).chain(tone(587.33)).collect();
    FrameSet::from_pcm(&pcm)
}

/// State shared by every request: the config and the "shutting down" signal that
/// open WebSockets watch so they can close instead of outliving the server.
#[derive(Clone)]
struct AppState {
    config: Arc<BotConfig>,
    shutdown: watch::Receiver<bool>,
    /// The milestone reporter, started by the first stream (it needs a runtime, which
    /// [`router`] may be called without). Dropped with the router, which ends its task.
    reporter: Arc<OnceLock<Option<events::Reporter>>>,
}

impl AppState {
    /// The shared reporter when `events_url` is set. Call from inside the runtime.
    fn reporter(&self) -> Option<events::Reporter> {
        self.reporter
            .get_or_init(|| {
                let url = self.config.events_url.clone()?;
                let counters = Arc::new(events::EventCounters::default());
                Some(events::Reporter::spawn(
                    url,
                    events::QUEUE_CAPACITY,
                    counters,
                ))
            })
            .clone()
    }
}

/// The bot's routes: `POST|GET /voice`, `GET /media` and `GET /relay` (WebSockets),
/// `GET /health`.
///
/// Streams opened through a router built here run until the peer closes them; use
/// [`serve`] to have them closed on shutdown as well.
pub fn router(config: BotConfig) -> Router {
    // The sender is dropped at once; handlers read a closed channel as "never".
    let (_tx, rx) = watch::channel(false);
    app(config, rx)
}

fn app(config: BotConfig, shutdown: watch::Receiver<bool>) -> Router {
    let state = AppState {
        config: Arc::new(config),
        shutdown,
        reporter: Arc::new(OnceLock::new()),
    };
    Router::new()
        .route("/voice", get(voice::voice).post(voice::voice))
        .route("/media", get(media::media))
        .route("/relay", get(relay::relay))
        .route(hostile::HUGE_PLAY_PATH, get(hostile::huge_wav))
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
}

/// Serves the bot on `listener` until `shutdown` resolves. Then it stops accepting,
/// lets in-flight HTTP requests finish, and tells every open media stream to close
/// (WebSocket close 1001 "going away").
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: BotConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = watch::channel(false);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "reference bot listening");
    }
    axum::serve(listener, app(config, rx))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Upgraded connections are not tracked by axum's graceful shutdown: tell them.
            let _ = tx.send(true);
        })
        .await
}

/// Starts the bot on a free loopback port (`127.0.0.1:0`) for the rest of the process, or
/// until the returned task is aborted: the embedded target of `dialtone call`, `load` and
/// `serve`. Returns its voice URL (`http://127.0.0.1:PORT/voice`) and its task.
pub async fn spawn_loopback(
    config: BotConfig,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        if let Err(e) = serve(listener, config, std::future::pending()).await {
            tracing::error!("reference app stopped: {e}");
        }
    });
    Ok((format!("http://{addr}/voice"), handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beep_boop_is_600_ms_and_audible() {
        let beep = beep_boop();
        assert_eq!(beep.len(), 30);
        let mid = beep
            .frame(7)
            .iter()
            .map(|&c| dialtone_audio::mulaw::decode(c));
        assert!(vad::rms_dbfs(mid) > VadConfig::default().threshold_dbfs);
    }

    #[test]
    fn debug_hides_the_token() {
        let text = format!("{:?}", BotConfig::default());
        assert!(!text.contains(DEFAULT_AUTH_TOKEN));
    }
}
