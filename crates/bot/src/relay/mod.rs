//! `/relay`: the ConversationRelay WebSocket of the bot's relay mode
//! ([`crate::BotConfig::relay`]). Checks the upgrade's signature as `/media` does, then talks
//! text with Twilio: reads `setup`, answers each final `prompt` with tokens streamed after a
//! moment of thinking, answers digits, stops an answer on `interrupt` ([`talk`]), until
//! Twilio closes the socket or the server shuts down.

mod talk;

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::AppState;
use crate::misbehave::{self, Behaviour};
use crate::signature::{self, Rejection};

pub use talk::{CLOSE_AFTER_TOKENS, MALFORMED_MESSAGES, SLOW_FIRST_TOKEN, TOKEN_FLOOD};
use talk::{Out, Talk};

/// The largest message the bot reads: Twilio's are small JSON (a prompt is a sentence or
/// two); a bigger one ends the session.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// `GET /relay`: refuse the upgrade (403) unless `X-Twilio-Signature` signs the relay URL
/// (`ws(s)://{host}/relay`, plus the query the webhook wrote), as Twilio does; a signed
/// upgrade marked `?misbehave=refuse_upgrade` is refused too, one marked `stuck_upgrade` is
/// never answered.
pub(crate) async fn relay(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, Rejection> {
    let base = signature::ws_base(&signature::http_base(&state.config, &headers)?);
    signature::check(
        &state.config,
        &headers,
        signature::request_url(&base, &uri),
        &[],
    )?;
    if misbehave::upgrade_marked(uri.query(), Behaviour::RefuseUpgrade) {
        tracing::info!("misbehave refuse_upgrade");
        return Ok((StatusCode::FORBIDDEN, "upgrade refused (misbehave)").into_response());
    }
    if misbehave::upgrade_marked(uri.query(), Behaviour::StuckUpgrade) {
        let mut shutdown = state.shutdown.clone();
        crate::media::hold(&mut shutdown).await;
        return Ok((StatusCode::SERVICE_UNAVAILABLE, "upgrade held (misbehave)").into_response());
    }
    let mode = state.config.relay.unwrap_or_default();
    let talk = Talk::new(mode, state.config.misbehave.clone());
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| drive(socket, talk, state.shutdown)))
}

/// Why the session ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Closed,
    SendFailed,
    Shutdown,
    /// `close_mid_turn` closed it.
    Dropped,
}

/// Pumps the socket, the clock and the shutdown signal into `talk`.
async fn drive(mut socket: WebSocket, mut talk: Talk, mut shutdown: watch::Receiver<bool>) {
    let opened = Instant::now();
    let mut out = Vec::new();
    let end = loop {
        // Far enough to never fire, near enough not to overflow the timer.
        let due = talk
            .next_at()
            .map_or(opened + Duration::from_secs(86_400 * 365), |d| opened + d);
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => talk.on_message(opened.elapsed(), text.as_str()),
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break End::Closed,
            },
            () = sleep_until(due) => talk.on_timeout(opened.elapsed(), &mut out),
            () = crate::media::shutting_down(&mut shutdown) => break End::Shutdown,
        }
        match send(&mut socket, &mut out).await {
            Ok(true) => {}
            Ok(false) => break End::Dropped,
            Err(()) => break End::SendFailed,
        }
    };
    if end == End::Shutdown {
        let frame = CloseFrame {
            code: close_code::AWAY,
            reason: "".into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    let stats = talk.stats();
    tracing::info!(
        call_sid = talk.call_sid(),
        ?end,
        fault = ?talk.fault(),
        prompts = stats.prompts,
        answers = stats.answers,
        tokens = stats.tokens,
        interrupts = stats.interrupts,
        cut = stats.cut,
        errors = stats.errors,
        ignored = stats.ignored,
        "relay session ended"
    );
}

/// Sends what `talk` asked for, flushed once. `Ok(false)`: the socket was closed on purpose.
async fn send(socket: &mut WebSocket, out: &mut Vec<Out>) -> Result<bool, ()> {
    if out.is_empty() {
        return Ok(true);
    }
    for o in out.drain(..) {
        match o {
            Out::Send(text) => socket.feed(Message::text(text)).await.map_err(drop)?,
            Out::Flood(n) => {
                let token = Message::text(talk::text_message(talk::FLOOD_TOKEN, false));
                for _ in 1..n {
                    socket.feed(token.clone()).await.map_err(drop)?;
                }
                let last = talk::text_message(talk::FLOOD_TOKEN, true);
                socket.feed(Message::text(last)).await.map_err(drop)?;
            }
            Out::Close => {
                let frame = CloseFrame {
                    code: close_code::NORMAL,
                    reason: "".into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return Ok(false);
            }
        }
    }
    socket.flush().await.map_err(drop)?;
    Ok(true)
}
