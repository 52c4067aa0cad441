//! `/media`: the Media Streams WebSocket. Checks the upgrade's signature, then drives
//! one [`Session`] per connection until Twilio sends `stop`, the socket closes, or the
//! server shuts down — or until a configured fault (`misbehave`) drops or abandons it.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::watch;

use crate::AppState;
use crate::events::{self, Record, Reporter};
use crate::hostile;
use crate::misbehave::{self, Action, Behaviour, StreamFaults};
use crate::session::{Flow, Milestone, Session};
use crate::signature::{self, Rejection};

/// `GET /media`: refuse the upgrade (403) unless `X-Twilio-Signature` signs the
/// stream URL (`ws(s)://{host}/media`, plus the query the webhook wrote), as Twilio does.
/// A signed upgrade marked `?misbehave=refuse_upgrade` is refused too.
pub(crate) async fn media(
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
        // Never answer: the caller's upgrade waits until it gives up.
        let mut shutdown = state.shutdown.clone();
        hold(&mut shutdown).await;
        return Ok((StatusCode::SERVICE_UNAVAILABLE, "upgrade held (misbehave)").into_response());
    }
    Ok(ws.on_upgrade(move |socket: WebSocket| async move {
        let session = Session::new(state.config.reply_audio.clone(), &state.config.vad);
        let faults = StreamFaults::new(&state.config.misbehave);
        let reporter = state.reporter();
        drive(socket, session, faults, reporter, state.shutdown).await;
    }))
}

/// Why the driver stopped, for the end-of-call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Stop,
    Closed,
    SendFailed,
    Shutdown,
    /// A fault dropped the connection (abrupt close, or the duplicate-frame "crash").
    Dropped,
    /// A fault stopped reading (`never_read`); the socket was held, then dropped.
    Abandoned,
}

/// Pumps messages between `socket` and `session`. Generic over the socket so unit
/// tests could drive it with channels; axum's `WebSocket` is one such socket.
async fn drive<S, E>(
    mut socket: S,
    mut session: Session,
    mut faults: StreamFaults,
    reporter: Option<Reporter>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: std::fmt::Display,
{
    // Reused for every message: replies are ~30 strings, so no per-turn Vec churn.
    let mut out: Vec<String> = Vec::new();
    // A hostile flood waiting for the first reply (`mark_flood`, `huge_frame`, `media_flood`).
    let mut flood = None;
    let end = loop {
        let next = tokio::select! {
            next = socket.next() => next,
            () = shutting_down(&mut shutdown) => break End::Shutdown,
        };
        let flow = match next {
            None | Some(Ok(Message::Close(_))) => break End::Closed,
            Some(Err(err)) => {
                tracing::debug!(call_sid = session.call_sid(), %err, "websocket error");
                break End::Closed;
            }
            Some(Ok(Message::Text(text))) => {
                if faults.before(text.as_str()) == Action::Drop {
                    break End::Dropped;
                }
                let flow = session.on_text(text.as_str(), &mut out);
                match faults.after(session.call_sid(), session.stats().media) {
                    Action::Continue => flow,
                    Action::Quirk(b) => {
                        session.misbehave(b);
                        flow
                    }
                    Action::Flood(b) => {
                        flood = Some(b);
                        flow
                    }
                    Action::Mute => {
                        out.clear();
                        flow
                    }
                    Action::Drop => break End::Dropped,
                    Action::StopReading => {
                        hold(&mut shutdown).await;
                        break End::Abandoned;
                    }
                }
            }
            Some(Ok(Message::Binary(_))) => {
                session.on_binary();
                Flow::Continue
            }
            // Pings are answered by the WebSocket layer itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
        };
        // Detection happened while handling this message: stamp it now, before sending.
        let reply_queued = report_detections(&mut session, reporter.as_ref());
        if !out.is_empty() && send_all(&mut socket, &mut out).await.is_err() {
            break End::SendFailed;
        }
        if let (true, Some(reporter)) = (reply_queued, &reporter) {
            reporter.report(Record {
                call_sid: session.call_sid().to_owned(),
                name: "reply.first_audio",
                ts_ms: events::now_ms(),
                stream_ms: None,
            });
        }
        // A flood goes out right behind the first reply: the call has been answered and
        // measured, and the caller now has audio queued when the flood arrives.
        if let (true, Some(b)) = (reply_queued, flood) {
            flood = None;
            let sid = session.stream_sid().unwrap_or_default().to_owned();
            if hostile::flood(&mut socket, b, &sid).await.is_err() {
                break End::SendFailed;
            }
        }
        if flow == Flow::Stop {
            break End::Stop;
        }
    };
    if matches!(end, End::Stop | End::Shutdown) {
        let code = if end == End::Stop {
            close_code::NORMAL
        } else {
            close_code::AWAY
        };
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        // Best effort: the peer may already be gone.
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    let stats = session.stats();
    if let Some(counters) = reporter.as_ref().map(Reporter::counters) {
        // Server-wide totals so far: a non-zero drop count means the endpoint lags.
        tracing::debug!(
            sent = counters.sent.load(Ordering::Relaxed),
            dropped = counters.dropped.load(Ordering::Relaxed),
            failed = counters.failed.load(Ordering::Relaxed),
            "milestone reporting"
        );
    }
    tracing::info!(
        call_sid = session.call_sid(),
        ?end,
        media = stats.media,
        turns = stats.turns,
        barge_ins = stats.barge_ins,
        marks_echoed = stats.marks_echoed,
        ignored = stats.ignored,
        "stream ended"
    );
}

/// Reports the VAD milestones of the last message, stamped with the wall clock now.
/// Returns whether a reply was queued (its milestone is stamped once it is sent).
fn report_detections(session: &mut Session, reporter: Option<&Reporter>) -> bool {
    let ts_ms = events::now_ms();
    let mut records = Vec::new();
    let mut reply_queued = false;
    for milestone in session.drain_milestones() {
        let (name, at_ms) = match milestone {
            Milestone::SpeechStart { at_ms } => ("vad.speech_start", at_ms),
            Milestone::SpeechEnd { at_ms } => ("vad.speech_end", at_ms),
            Milestone::ReplyQueued => {
                reply_queued = true;
                continue;
            }
        };
        records.push((name, at_ms));
    }
    // Allocation-free for the many messages that detect nothing.
    if let Some(reporter) = reporter {
        for (name, at_ms) in records {
            reporter.report(Record {
                call_sid: session.call_sid().to_owned(),
                name,
                ts_ms,
                stream_ms: Some(at_ms),
            });
        }
    }
    reply_queued
}

/// Queues every message of `out` and flushes once: a reply goes out as one burst.
async fn send_all<S: Sink<Message> + Unpin>(
    socket: &mut S,
    out: &mut Vec<String>,
) -> Result<(), S::Error> {
    for text in out.drain(..) {
        socket.feed(Message::Text(text.into())).await?;
    }
    socket.flush().await
}

/// A `never_read` stream (or a `stuck_upgrade` request): keep the socket open, unread, for
/// [`misbehave::NEVER_READ_HOLD`] or until shutdown. The caller's writes fill the socket
/// buffers and then block.
pub(crate) async fn hold(shutdown: &mut watch::Receiver<bool>) {
    tracing::info!("misbehave: holding the socket unread");
    tokio::select! {
        () = tokio::time::sleep(misbehave::NEVER_READ_HOLD) => {}
        () = shutting_down(shutdown) => {}
    }
}

/// Resolves once the server starts shutting down; never, if nobody can signal it.
pub(crate) async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    let closed = rx.wait_for(|&down| down).await.is_err();
    if closed {
        std::future::pending::<()>().await;
    }
}
