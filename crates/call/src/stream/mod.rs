//! The Media Streams client: opens the `<Stream>` WebSocket with a signed upgrade, speaks
//! Twilio's protocol (`connected`, `start`, paced `media`, `dtmf`, `mark` echoes, `stop`) and
//! plays the app's audio out through [`crate::playout::Playout`].
//!
//! One reader task feeds app messages through a bounded channel to one driver loop that owns
//! the socket's write half, the pacing schedule and the playout queue. Frame k is due at
//! `start + 20 ms·k`; frames are never skipped, and each one's lateness is recorded.
//!
//! - this file: the stream's inputs and outcome, the signed connect, the reader task, the
//!   socket helpers;
//! - `driver`: the driver loop (pacing, sending, the report), with `driver/app` (the app's
//!   messages, playout, marks), `driver/faults` (injected faults on the wire) and
//!   `driver/hangup` (the caller's hang-up) and `driver/virtual_time` (`--fast`: waiting for
//!   the app to read, and failing an app that answers on the wall clock).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_net::{SocketOptions, WsError};
use dialtone_protocol::media::{StreamIds, WsViolation};
use dialtone_protocol::signing;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::{
    Message, protocol::CloseFrame, protocol::frame::coding::CloseCode,
};

use crate::capture::Captured;
use crate::faults::StreamFaults;
use crate::report::{EventKind, Failure, LatencySummary, StreamReport};
use crate::timeline::Timeline;

mod driver;

use driver::Driver;
pub(crate) use driver::hangup::{CallerHangup, HangupState};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that cannot complete for this long means the app stopped reading its socket; the
/// stream is abandoned rather than letting the call hang past its max duration.
const WRITE_STALL: Duration = Duration::from_secs(5);
/// How many ignored messages are kept verbatim in the report (all are counted).
const INVALID_SAMPLES: usize = 5;

/// Which media tracks a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tracks {
    Inbound,
    Outbound,
    Both,
}

/// What Twilio is playing to the caller right now (`<Say>`/`<Play>`), for forks that carry
/// the outbound track. The executor sets it per verb; forks read the frame due at `now`.
#[derive(Default)]
pub(crate) struct OutboundAudio {
    playing: Mutex<Option<(Arc<FrameSet>, Instant)>>,
}

impl OutboundAudio {
    pub(crate) fn set(&self, frames: Option<Arc<FrameSet>>) {
        *self.playing.lock().expect("outbound lock") = frames.map(|f| (f, Instant::now()));
    }

    fn frame_b64_at(&self, now: Instant) -> Option<String> {
        let guard = self.playing.lock().expect("outbound lock");
        let (frames, since) = guard.as_ref()?;
        if frames.is_empty() {
            return None;
        }
        let k = (now.saturating_duration_since(*since).as_millis() / 20) as usize;
        Some(frames.b64(k % frames.len()).to_string())
    }
}

/// One `<Stream>` to run.
pub(crate) struct StreamSpec {
    /// The stream URL as the TwiML wrote it (resolved): signed over, and connected to
    /// through the call's tunnel table.
    pub(crate) url: String,
    pub(crate) name: Option<String>,
    /// `<Stream statusCallback>`, resolved; reported in the timeline for whoever sends
    /// stream status callbacks (the REST server).
    pub(crate) status_callback: Option<String>,
    pub(crate) status_callback_method: crate::config::HttpMethod,
    pub(crate) bidirectional: bool,
    pub(crate) tracks: Tracks,
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) ids: StreamIds,
}

/// What the stream needs from its call.
pub(crate) struct StreamCtx {
    pub(crate) auth_token: String,
    pub(crate) caller_audio: Arc<FrameSet>,
    /// Where `caller_audio` (and `turns`, `dtmf`) start when not at this stream's start:
    /// the call's answer ([`crate::config::CallerAudioStart::Answer`]).
    pub(crate) caller_epoch: Option<Instant>,
    pub(crate) turns: Vec<crate::config::TurnTruth>,
    pub(crate) dtmf: Vec<(Duration, char)>,
    pub(crate) outbound: Arc<OutboundAudio>,
    pub(crate) record: bool,
    /// The call's longest length: no stream is heard for longer.
    pub(crate) max_duration: Duration,
    pub(crate) no_audio_timeout: Option<Duration>,
    pub(crate) timeline: Arc<Timeline>,
    /// Set to true to send `stop` and close (call ended, or `<Stop>`).
    pub(crate) stop: watch::Receiver<bool>,
    /// Told when `start` has gone out, if this stream claimed the caller's hang-up.
    pub(crate) started: Option<oneshot::Sender<Instant>>,
    /// The caller's hang-up, claimed by the first stream to start.
    pub(crate) hangup: Option<CallerHangup>,
    /// Injected faults (`--faults`).
    pub(crate) faults: Option<StreamFaults>,
    /// Virtual time (`--fast`).
    pub(crate) fast: bool,
    /// Transport (TLS) and the call's tunnel table.
    pub(crate) net: dialtone_net::Net,
    pub(crate) tunnels: Arc<dialtone_net::Tunnels>,
}

/// How a stream went.
pub(crate) struct StreamOutcome {
    pub(crate) report: StreamReport,
    pub(crate) failures: Vec<Failure>,
    /// Warnings for the call's report: (code, message).
    pub(crate) warnings: Vec<(u16, String)>,
    /// What the caller heard from the app (μ-law, on the stream's timeline), when recording.
    pub(crate) heard: Option<Vec<u8>>,
    /// What the caller sent on the inbound track (μ-law), when recording.
    pub(crate) sent: Option<Vec<u8>>,
    /// When `start` went out: where `heard` and `sent` begin (`None`: never started).
    pub(crate) started_at: Option<Instant>,
}

enum Inbound {
    Text(String),
    Binary(usize),
    Closed(Option<u16>),
    /// The connection broke (the cause is not needed: the report says "dropped").
    Dropped,
    /// The app broke the WebSocket protocol (a message over the size limit, text that is
    /// not UTF-8, …): dialtone fails the connection (31924).
    Violation(WsViolation),
    /// The app's WebSocket layer answered the ping with this id (virtual time's read
    /// barrier; other pongs carry `None`).
    Pong(Option<u64>),
}

/// Runs one stream to its end.
pub(crate) async fn run_stream(spec: StreamSpec, mut ctx: StreamCtx) -> StreamOutcome {
    let stream_sid = spec.ids.stream_sid.clone();
    let mut report = StreamReport {
        stream_sid: stream_sid.clone(),
        name: spec.name.clone().unwrap_or_else(|| stream_sid.clone()),
        url: spec.url.clone(),
        bidirectional: spec.bidirectional,
        connect_ms: None,
        frames_sent: 0,
        dtmf_sent: 0,
        lateness: LatencySummary::default(),
        media_received: 0,
        audio_received_ms: 0,
        audio_cleared_ms: 0,
        underrun_ms: 0,
        time_to_first_audio_ms: None,
        marks: Vec::new(),
        mark_stats: Default::default(),
        clears: 0,
        invalid_messages: 0,
        invalid_samples: Vec::new(),
        closed_by: "never_opened",
        close_code: None,
        duration_ms: 0.0,
        turns: Vec::new(),
        talk_over_ms: 0.0,
        vad_splits: 0,
        faults: None,
        lateness_us: crate::report::new_lateness_histogram(),
        mark_round_trip_us: crate::marks::new_mark_histogram(),
    };
    let fail = |report: StreamReport, f: Failure| StreamOutcome {
        report,
        failures: vec![f],
        warnings: Vec::new(),
        heard: None,
        sent: None,
        started_at: None,
    };

    // The app validates the upgrade's signature over the URL as written in its TwiML.
    let signature = signing::signature(&ctx.auth_token, &signing::url_to_sign(&spec.url), &[]);
    let via = url::Url::parse(&spec.url)
        .ok()
        .and_then(|u| ctx.tunnels.route(&u).via());
    ctx.timeline.emit(EventKind::StreamConnecting {
        url: spec.url.clone(),
        via: via.clone(),
        bidirectional: spec.bidirectional,
        stream_sid: stream_sid.clone(),
        name: spec.name.clone(),
        status_callback: spec.status_callback.clone(),
        status_callback_method: spec.status_callback_method.as_str(),
    });
    let connect_started = Instant::now();
    let headers = [(signing::HEADER, signature)];
    let handshake = ctx.net.connect_ws(
        &ctx.tunnels,
        &spec.url,
        &headers,
        SocketOptions {
            send_buffer: Some(STREAM_SNDBUF),
        },
    );
    let ws = match timeout(CONNECT_TIMEOUT, handshake).await {
        Err(_) => {
            return fail(
                report,
                stream_connect_failure(
                    &spec.url,
                    format!(
                        "no answer to the upgrade within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                ),
            );
        }
        Ok(Err(WsError::Refused(status))) => {
            return fail(
                report,
                Failure::StreamUpgradeRefused {
                    url: spec.url.clone(),
                    status,
                },
            );
        }
        Ok(Err(e)) => {
            let cause = match &via {
                Some(v) => format!("{e} (connecting via the tunnel to {v})"),
                None => e.to_string(),
            };
            return fail(report, stream_connect_failure(&spec.url, cause));
        }
        Ok(Ok((ws, _route))) => ws,
    };
    let connect_elapsed = connect_started.elapsed();
    report.connect_ms = Some(connect_elapsed.as_secs_f64() * 1e3);
    ctx.timeline.capture(&Captured::WsOpen {
        stream_sid: &stream_sid,
        url: &spec.url,
    });
    ctx.timeline.emit(EventKind::StreamConnected {
        stream_sid: stream_sid.clone(),
        elapsed: connect_elapsed,
    });

    let (mut sink, mut source) = ws.split();
    // Bounded: a slow driver makes the reader wait, which pushes back on the app's socket
    // instead of buffering without limit.
    let (tx, mut rx) = mpsc::channel::<Inbound>(256);
    let slow_read = ctx.faults.as_ref().and_then(|f| f.spec().slow_read);
    let reader = tokio::spawn(async move {
        while let Some(msg) = source.next().await {
            let item = match msg {
                Ok(Message::Text(t)) => Inbound::Text(t.as_str().to_owned()),
                Ok(Message::Binary(b)) => Inbound::Binary(b.len()),
                Ok(Message::Pong(p)) => {
                    Inbound::Pong(p.as_ref().try_into().ok().map(u64::from_be_bytes))
                }
                Ok(Message::Close(frame)) => {
                    let _ = tx
                        .send(Inbound::Closed(frame.map(|f| u16::from(f.code))))
                        .await;
                    return;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!("stream read error: {e}");
                    let end =
                        dialtone_net::violation(&e).map_or(Inbound::Dropped, Inbound::Violation);
                    let _ = tx.send(end).await;
                    return;
                }
            };
            if tx.send(item).await.is_err() {
                return;
            }
            if let Some(pause) = slow_read {
                // Injected slow reader: the app's writes back up into its socket.
                tokio::time::sleep(pause).await;
            }
        }
        let _ = tx.send(Inbound::Dropped).await;
    });

    let mut driver = Driver::new(&spec, &ctx);
    let end = driver.run(&mut sink, &mut rx, &mut ctx).await;
    if let End::Violation(v) = &end {
        // Fail the connection as RFC 6455 says: a close frame naming why, then let go.
        let frame = CloseFrame {
            code: CloseCode::from(v.close_code()),
            reason: "".into(),
        };
        let _ = send_msg(&mut sink, Message::Close(Some(frame))).await;
    }
    driver.release_hangup();
    driver.ended_at = Some(Instant::now());
    reader.abort();
    driver.finish(report, end, &ctx)
}

/// Kernel send buffer of a stream's socket. Linux grows loopback send buffers to ~4 MiB,
/// which at ~20 kB/s of media hides an app that stopped reading for minutes; a small buffer
/// makes the write stall show within seconds and keeps a stalled stream's kernel memory
/// small. (The kernel doubles the value.)
const STREAM_SNDBUF: u32 = 16 * 1024;

fn stream_connect_failure(url: &str, cause: String) -> Failure {
    Failure::StreamConnect {
        url: url.to_string(),
        cause,
    }
}

/// How the driver loop ended.
enum End {
    /// We sent `stop` and closed.
    Stopped,
    /// The app closed the socket.
    AppClosed(Option<u16>),
    /// The connection broke.
    Dropped,
    /// The app stopped reading: a write could not complete.
    Stalled,
    /// An injected fault ended the stream: a dropped connection (`None`) or a close frame.
    Injected(Option<u16>),
    /// The app broke the WebSocket protocol; dialtone failed the connection.
    Violation(WsViolation),
}

type WsSink = futures_util::stream::SplitSink<dialtone_net::Ws, Message>;

/// Sends a close frame and gives the app a moment to answer it, so the handshake completes
/// cleanly.
async fn close_and_wait(sink: &mut WsSink, rx: &mut mpsc::Receiver<Inbound>, code: CloseCode) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    let _ = send_msg(sink, Message::Close(Some(frame))).await;
    let _ = timeout(Duration::from_secs(1), async {
        while let Some(m) = rx.recv().await {
            if matches!(
                m,
                Inbound::Closed(_) | Inbound::Dropped | Inbound::Violation(_)
            ) {
                break;
            }
        }
    })
    .await;
}

fn frame_due(t0: Instant, k: u64) -> Instant {
    t0 + Duration::from_micros(k * 20_000)
}

fn us_since(t0: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(t0).as_micros() as u64
}

/// Why a write to the app's socket failed.
enum SendError {
    /// The socket refused the write (closed or broken).
    Socket,
    /// The write did not complete within [`WRITE_STALL`]: the app stopped reading.
    Stalled,
}

async fn send_msg(sink: &mut WsSink, msg: Message) -> Result<(), SendError> {
    match timeout(WRITE_STALL, sink.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendError::Socket),
        Err(_) => Err(SendError::Stalled),
    }
}

async fn send(sink: &mut WsSink, text: String) -> Result<(), SendError> {
    send_msg(sink, Message::Text(text.into())).await
}
