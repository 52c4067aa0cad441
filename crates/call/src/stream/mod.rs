//! The Media Streams client: opens the `<Stream>` WebSocket with a signed upgrade, speaks
//! Twilio's protocol (`connected`, `start`, paced `media`, `dtmf`, `mark` echoes, `stop`) and
//! plays the app's audio out through [`crate::playout::Playout`].
//!
//! - `session`: the whole protocol, sans-IO: one state machine fed the app's messages and the
//!   time, yielding messages, deadlines, events and the report (no socket, clock or runtime);
//! - `plane`: I/O only: thousands of streams per thread on mio, a 1 ms timer wheel, the
//!   WebSocket framing (plain `ws://` in real time: full calls and `load --stream`);
//! - `on_plane`: a full call's stream handed to the plane, and its news carried back;
//! - `tokio_driver`: I/O only: one stream on tokio (TLS, `--fast`'s lockstep virtual time, an
//!   injected slow reader);
//! - `hangup`: the caller's hang-up, shared by a call's streams;
//! - this file: the stream's inputs and outcome, and which driver runs it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_protocol::media::StreamIds;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::faults::StreamFaults;
use crate::report::{Failure, StreamReport};
use crate::timeline::Timeline;

mod hangup;
mod on_plane;
pub mod plane;
pub(crate) mod session;
mod tokio_driver;

pub(crate) use hangup::{CallerHangup, HangupState};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which media tracks a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tracks {
    Inbound,
    Outbound,
    Both,
}

/// What Twilio is playing to the caller right now (`<Say>`/`<Play>`), for forks that carry
/// the outbound track. The executor sets it per verb; each fork plays it from its first frame
/// on, counting its own frames (never a clock, so virtual time stays virtual).
#[derive(Default)]
pub(crate) struct OutboundAudio {
    /// The audio playing and its generation (bumped at every `set`).
    playing: Mutex<(u64, Option<Arc<FrameSet>>)>,
    /// A live caller hears it too.
    live: Option<Arc<crate::live::LiveCaller>>,
}

impl OutboundAudio {
    /// What a call plays, heard by its live caller if it has one.
    pub(crate) fn new(live: Option<Arc<crate::live::LiveCaller>>) -> Self {
        Self {
            live,
            ..Self::default()
        }
    }

    pub(crate) fn set(&self, frames: Option<Arc<FrameSet>>) {
        if let Some(live) = &self.live {
            live.play(frames.clone());
        }
        let mut p = self.playing.lock().expect("outbound lock");
        *p = (p.0 + 1, frames);
    }

    /// The audio playing now, with its generation.
    pub(crate) fn current(&self) -> Option<(u64, Arc<FrameSet>)> {
        let p = self.playing.lock().expect("outbound lock");
        p.1.clone().map(|f| (p.0, f))
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
    /// A caller talking live ([`crate::config::CallerScript::live`]).
    pub(crate) live: Option<Arc<crate::live::LiveCaller>>,
    pub(crate) turns: Vec<dialtone_corpus::Turn>,
    pub(crate) dtmf: Vec<(Duration, char)>,
    pub(crate) outbound: Arc<OutboundAudio>,
    pub(crate) record: bool,
    /// The call's longest length: no stream is heard for longer.
    pub(crate) max_duration: Duration,
    pub(crate) no_audio_timeout: Option<Duration>,
    pub(crate) timeline: Arc<Timeline>,
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
    /// Where frame lateness goes instead of the stream's own histogram.
    pub(crate) frame_lateness: Option<crate::config::FrameLateness>,
}

/// How a stream went.
pub struct StreamOutcome {
    /// Everything measured.
    pub report: StreamReport,
    /// What went wrong, typed.
    pub failures: Vec<Failure>,
    /// Warnings for the call's report: (code, message).
    pub warnings: Vec<(u16, String)>,
    /// What the caller heard from the app (μ-law, on the stream's timeline), when recording.
    pub heard: Option<Vec<u8>>,
    /// What the caller sent on the inbound track (μ-law), when recording.
    pub sent: Option<Vec<u8>>,
    /// When `start` went out: where `heard` and `sent` begin (`None`: never started).
    pub started_at: Option<Instant>,
}

/// Runs one stream to its end: on the plane when it can carry it (plain WebSocket, real
/// time), else on the tokio driver.
pub(crate) fn spawn_stream(
    plane: Option<&plane::Plane>,
    spec: StreamSpec,
    ctx: StreamCtx,
) -> StreamTask {
    StreamTask(match plane.zip(on_plane::target(&spec, &ctx)) {
        Some((plane, target)) => {
            let (done, stop) = on_plane::run(plane, target, spec, ctx);
            Running::Plane { done, stop }
        }
        None => {
            // Set to true to send `stop` and close (the plane has a flag of its own).
            let (stop, stopped) = watch::channel(false);
            Running::Tokio {
                task: tokio::spawn(tokio_driver::run(spec, ctx, stopped)),
                stop,
            }
        }
    })
}

/// A running stream as its call holds it: stopped on demand, awaited for its outcome. A
/// stream on the plane costs no task of its own: its observer sends the outcome here.
pub(crate) struct StreamTask(Running);

enum Running {
    Tokio {
        task: tokio::task::JoinHandle<StreamOutcome>,
        stop: watch::Sender<bool>,
    },
    Plane {
        done: oneshot::Receiver<Box<StreamOutcome>>,
        stop: plane::StopHandle,
    },
}

impl StreamTask {
    /// Asks the stream to send `stop` and close (the call ended, or `<Stop>`).
    pub(crate) fn stop(&self) {
        match &self.0 {
            Running::Tokio { stop, .. } => {
                let _ = stop.send(true);
            }
            Running::Plane { stop, .. } => stop.stop(),
        }
    }
}

impl std::future::Future for StreamTask {
    /// `Err` says how dialtone lost the stream (a bug: its task or its plane worker died).
    type Output = Result<StreamOutcome, String>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::pin::Pin;
        match &mut self.get_mut().0 {
            Running::Tokio { task, .. } => Pin::new(task)
                .poll(cx)
                .map(|r| r.map_err(|e| format!("stream task failed: {e}"))),
            Running::Plane { done, .. } => Pin::new(done).poll(cx).map(|r| {
                r.map(|o| *o)
                    .map_err(|_| "the stream plane lost the stream".to_string())
            }),
        }
    }
}

/// Kernel send buffer of a stream's socket. Linux grows loopback send buffers to ~4 MiB,
/// which at ~20 kB/s of media hides an app that stopped reading for minutes; a small buffer
/// makes the write stall show within seconds and keeps a stalled stream's kernel memory
/// small. (The kernel doubles the value.)
pub(crate) const STREAM_SNDBUF: u32 = 16 * 1024;

impl StreamSpec {
    /// The session for this stream, joining the caller's audio `caller_offset` frames in.
    pub(crate) fn session(&self, ctx: &StreamCtx, caller_offset: u64) -> session::SessionConfig {
        session::SessionConfig {
            url: self.url.clone(),
            ids: self.ids.clone(),
            name: self.name.clone(),
            bidirectional: self.bidirectional,
            tracks: self.tracks,
            parameters: self.parameters.clone(),
            caller_audio: ctx.caller_audio.clone(),
            caller_offset,
            live: ctx.live.clone(),
            turns: ctx.turns.clone(),
            dtmf: ctx.dtmf.clone(),
            outbound: matches!(self.tracks, Tracks::Outbound | Tracks::Both)
                .then(|| ctx.outbound.clone()),
            record: ctx.record,
            max_duration: ctx.max_duration,
            no_audio_timeout: ctx.no_audio_timeout,
            faults: ctx.faults.clone(),
            real_time: !ctx.fast,
            frames: None,
            histograms: ctx.frame_lateness.is_none(),
        }
    }
}

/// Where a stream starting at `t0` joins the caller's audio, in frames: at its start, or
/// where the audio is when it is anchored at the answer (the frames and digits before are
/// gone, as for a stream Twilio opens mid-call).
fn caller_offset(ctx: &StreamCtx, t0: Instant) -> u64 {
    ctx.caller_epoch.map_or(0, |epoch| {
        (t0.saturating_duration_since(epoch).as_micros() / 20_000) as u64
    })
}

/// The stream's URL failed to connect.
fn stream_connect_failure(url: &str, cause: String) -> Failure {
    Failure::StreamConnect {
        url: url.to_string(),
        cause,
    }
}

/// Records one frame's lateness into a shared histogram.
pub(crate) fn record_lateness(sink: &crate::config::FrameLateness, us: u64) {
    // A poisoned lock only means another recorder panicked: record on.
    sink.lock()
        .unwrap_or_else(|p| p.into_inner())
        .saturating_record(us.max(1));
}
