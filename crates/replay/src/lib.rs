//! Replays the caller's side of one captured call (`dialtone call --capture`) against an app
//! and reports where the app's answers diverge from the capture's.
//!
//! - [`capture`]: reading a capture file and picking one call.
//! - [`replay`]: the voice webhook sent again, the stream reconnected and every captured
//!   `ws_out` message sent byte for byte (real-time or `--fast`), the close reproduced; or,
//!   for a call with a ConversationRelay session and no stream, the relay socket reopened and
//!   every captured `relay_out` sent (`relay`), the app's answers compared turn by turn
//!   (`relay_compare`).
//! - [`Report`]: the comparison (`compare`, with drift and `--fast` timing divergences in
//!   `timing`) — first divergence, close, timing drift — and whether the
//!   capture's outcome was reproduced.
//!
//! The format is described in `docs/capture.md`, the replay in `docs/replay.md`.

pub mod capture;
mod compare;
mod relay;
mod relay_compare;
mod report;
mod stream;
mod timing;
mod webhook;

use std::path::PathBuf;
use std::time::Duration;

pub use report::{
    CloseReport, Divergence, RelayEnd, RelayEndReport, RelaySummary, RelayTurnReport, Report, Side,
    StreamSummary, Timing, WebhookReport,
};

/// Default of [`ReplayOptions::latency_tolerance`] (`--latency-tolerance-ms`).
pub const DEFAULT_LATENCY_TOLERANCE: Duration = Duration::from_millis(100);

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The capture file.
    pub file: PathBuf,
    /// The call to replay (default: the file's first call).
    pub call_sid: Option<String>,
    /// The app's voice webhook URL (`http://` or `https://`; its public URL with a
    /// mapping in `tunnels`).
    pub webhook: String,
    /// Auth token that signs the webhook and the upgrade.
    pub auth_token: String,
    /// Send back to back (causal order kept) instead of at the captured offsets.
    pub fast: bool,
    /// Compare the app's `media` messages by shape, not payload.
    pub ignore_payloads: bool,
    /// How long to wait for the app's own close when the capture's ended by the app.
    pub grace: Duration,
    /// Transport (TLS trust).
    pub net: dialtone_net::Net,
    /// Public origins mapped to local ones (`--tunnel`).
    pub tunnels: dialtone_net::Tunnels,
    /// A relay session's first-token latency further than this from the captured one is a
    /// timing divergence.
    pub latency_tolerance: Duration,
}

impl ReplayOptions {
    /// Options with the defaults: first call, real-time pacing, exact payloads, 1 s grace.
    pub fn new(file: impl Into<PathBuf>, webhook: impl Into<String>, auth_token: &str) -> Self {
        Self {
            file: file.into(),
            call_sid: None,
            webhook: webhook.into(),
            auth_token: auth_token.to_string(),
            fast: false,
            ignore_payloads: false,
            grace: Duration::from_secs(1),
            net: dialtone_net::Net::system(),
            tunnels: dialtone_net::Tunnels::default(),
            latency_tolerance: DEFAULT_LATENCY_TOLERANCE,
        }
    }
}

/// Bad input: the replay could not be run (exit code 2), as opposed to a divergence.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The capture file could not be opened or read.
    #[error("cannot read capture {path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The OS's words.
        cause: String,
    },
    /// A line is not a capture record.
    #[error("{path}:{line}: not a valid capture line: {cause}")]
    InvalidLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        cause: String,
    },
    /// The file holds no records.
    #[error("{path}: the capture is empty")]
    EmptyCapture {
        /// The file.
        path: String,
    },
    /// `--call-sid` names a call the file does not hold.
    #[error("{path}: no call {call_sid} in the capture (it holds: {calls})")]
    NoSuchCall {
        /// The file.
        path: String,
        /// The SID asked for.
        call_sid: String,
        /// The first SIDs present.
        calls: String,
    },
    /// The call has no voice webhook request to replay.
    #[error("{path}: call {call_sid} has no voice webhook request (http_request, purpose voice)")]
    NoVoiceRequest {
        /// The file.
        path: String,
        /// The call.
        call_sid: String,
    },
    /// The call never opened a stream or a relay session, so there is nothing to replay
    /// past the webhook.
    #[error(
        "{path}: call {call_sid} has no stream and no ConversationRelay session (no ws_open or \
         relay_open line); replay needs a captured <Stream> or <ConversationRelay>"
    )]
    NoStream {
        /// The file.
        path: String,
        /// The call.
        call_sid: String,
    },
    /// A URL that cannot be used.
    #[error("{url}: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why not.
        why: String,
    },
    /// The webhook could not be reached (or gave no usable answer).
    #[error("webhook {url} unreachable: {cause}")]
    WebhookUnreachable {
        /// The URL.
        url: String,
        /// The innermost cause.
        cause: String,
    },
    /// The stream's WebSocket could not be reached.
    #[error("stream {url} unreachable: {cause}")]
    StreamUnreachable {
        /// The URL.
        url: String,
        /// The innermost cause.
        cause: String,
    },
}

/// Runs the replay: webhook, stream, comparison.
pub async fn replay(opts: &ReplayOptions) -> Result<Report, ReplayError> {
    let webhook_url = webhook::check_http_url(&opts.webhook)?;
    let cap = capture::read(&opts.file, opts.call_sid.as_deref())?;
    let path = opts.file.display().to_string();
    let Some(cap_stream) = cap.stream.as_ref() else {
        let Some(cap_relay) = cap.relay.as_ref() else {
            return Err(ReplayError::NoStream {
                path,
                call_sid: cap.call_sid.clone(),
            });
        };
        return replay_relay(opts, &webhook_url, &path, &cap, cap_relay).await;
    };

    let answer = webhook::send(
        &opts.net,
        &opts.tunnels,
        &webhook_url,
        &cap.request,
        &opts.auth_token,
    )
    .await?;
    let (stream_url, url_source) = match webhook::stream_url(&answer.body, &webhook_url) {
        Some(u) => (u, "twiml"),
        None => (cap_stream.url.clone(), "capture"),
    };
    if !(stream_url.starts_with("ws://") || stream_url.starts_with("wss://")) {
        return Err(ReplayError::BadUrl {
            url: stream_url,
            why: "not a ws:// or wss:// URL".into(),
        });
    }
    let stream_opts = stream::StreamOpts {
        url: &stream_url,
        net: &opts.net,
        tunnels: &opts.tunnels,
        auth_token: &opts.auth_token,
        fast: opts.fast,
        grace: opts.grace,
    };
    let run = stream::replay(&stream_opts, cap_stream).await?;
    Ok(compare::build(
        opts,
        &path,
        &cap,
        cap_stream,
        &answer,
        &webhook_url,
        stream_url,
        url_source,
        run,
    ))
}

/// A call whose capture holds a relay session and no stream: the webhook, then the session.
async fn replay_relay(
    opts: &ReplayOptions,
    webhook_url: &url::Url,
    path: &str,
    cap: &capture::CapturedCall,
    cap_relay: &capture::CapturedRelay,
) -> Result<Report, ReplayError> {
    let answer = webhook::send(
        &opts.net,
        &opts.tunnels,
        webhook_url,
        &cap.request,
        &opts.auth_token,
    )
    .await?;
    let (relay_url, url_source) = match webhook::relay_url(&answer.body) {
        Some(u) => (u, "twiml"),
        None => (cap_relay.socket.url.clone(), "capture"),
    };
    if !(relay_url.starts_with("ws://") || relay_url.starts_with("wss://")) {
        return Err(ReplayError::BadUrl {
            url: relay_url,
            why: "not a ws:// or wss:// URL".into(),
        });
    }
    let socket_opts = stream::StreamOpts {
        url: &relay_url,
        net: &opts.net,
        tunnels: &opts.tunnels,
        auth_token: &opts.auth_token,
        fast: opts.fast,
        grace: opts.grace,
    };
    let run = relay::replay(&socket_opts, cap_relay).await?;
    Ok(relay_compare::build(
        opts,
        path,
        cap,
        cap_relay,
        &answer,
        webhook_url,
        relay_url,
        url_source,
        run,
    ))
}
