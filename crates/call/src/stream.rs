//! The Media Streams client: opens the `<Stream>` WebSocket with a signed upgrade, speaks
//! Twilio's protocol (`connected`, `start`, paced `media`, `dtmf`, `mark` echoes, `stop`) and
//! plays the app's audio out through [`Playout`].
//!
//! One reader task feeds app messages through a bounded channel to one driver loop that owns
//! the socket's write half, the pacing schedule and the playout queue. Frame k is due at
//! `start + 20 ms·k`; frames are never skipped, and each one's lateness is recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_audio::{FrameSet, frames::silence_b64};
use dialtone_protocol::media::{self, AppMessage, StreamIds, Track};
use dialtone_protocol::signing;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{
    self, Message, client::IntoClientRequest, protocol::CloseFrame,
    protocol::frame::coding::CloseCode,
};

use crate::capture::Captured;
use crate::faults::{FaultCounts, StreamFaults};
use crate::playout::Playout;
use crate::report::{EventKind, Failure, InvalidMessage, LatencySummary, MarkRecord, StreamReport};
use crate::timeline::Timeline;
use crate::turns::TurnTracker;

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
    /// Where to connect.
    pub(crate) url: String,
    /// The URL the upgrade's signature covers (as written in the TwiML).
    pub(crate) sign_url: String,
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
    pub(crate) turns: Vec<crate::config::TurnTruth>,
    pub(crate) dtmf: Vec<(Duration, char)>,
    pub(crate) outbound: Arc<OutboundAudio>,
    pub(crate) record: bool,
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
}

/// The caller hangs up `talk` after the first stream's start. The stream that claims it
/// ends the call on its own frame clock (real or virtual), so the frames before that moment,
/// and only those, go out: a seeded run sends the same frames every time.
#[derive(Clone)]
pub(crate) struct CallerHangup {
    pub(crate) talk: Duration,
    pub(crate) state: Arc<Mutex<HangupState>>,
    pub(crate) end: Arc<watch::Sender<Option<String>>>,
    pub(crate) reason: String,
}

/// Who holds the caller's hang-up.
#[derive(Debug, Default)]
pub(crate) struct HangupState {
    /// A stream has claimed it (and, in real time, keeps it even after it ended).
    claimed: bool,
    /// The claiming stream is still running it on its frame clock.
    running: bool,
    /// In virtual time, what is left of the caller's time for the next stream to run.
    left: Option<Duration>,
}

impl CallerHangup {
    /// For the first stream to ask (or, in virtual time, the next one after it ended
    /// early): how long after its start the caller hangs up.
    fn claim(&self) -> Option<Duration> {
        let mut st = self.state.lock().expect("hang-up lock");
        if st.claimed {
            return None;
        }
        st.claimed = true;
        st.running = true;
        Some(st.left.take().unwrap_or(self.talk))
    }

    /// The claiming stream ended before the hang-up. In real time the caller still hangs up
    /// at its wall-clock moment (the backstop timer, now without its grace); in virtual time
    /// there is no wall clock, so the time left passes to the next stream.
    fn release(&self, left_in_virtual_time: Option<Duration>) {
        let mut st = self.state.lock().expect("hang-up lock");
        st.running = false;
        if let Some(left) = left_in_virtual_time {
            st.claimed = false;
            st.left = Some(left);
        }
    }

    /// True while the claiming stream runs the hang-up itself.
    pub(crate) fn running(&self) -> bool {
        self.state.lock().expect("hang-up lock").running
    }

    /// Ends the call (the first reason wins).
    pub(crate) fn fire(&self) {
        self.end.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(self.reason.clone());
            true
        });
    }
}

/// How a stream went.
pub(crate) struct StreamOutcome {
    pub(crate) report: StreamReport,
    pub(crate) failures: Vec<Failure>,
    /// What the caller heard from the app (μ-law, on the stream's timeline), when recording.
    pub(crate) heard: Option<Vec<u8>>,
    /// What the caller sent on the inbound track (μ-law), when recording.
    pub(crate) sent: Option<Vec<u8>>,
}

enum Inbound {
    Text(String),
    Binary(usize),
    Closed(Option<u16>),
    /// The connection broke (the cause is not needed: the report says "dropped").
    Dropped,
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
        clears: 0,
        invalid_messages: 0,
        invalid_samples: Vec::new(),
        closed_by: "never_opened",
        close_code: None,
        duration_ms: 0.0,
        turns: Vec::new(),
        faults: None,
        lateness_us: crate::report::new_lateness_histogram(),
    };
    let fail = |report: StreamReport, f: Failure| StreamOutcome {
        report,
        failures: vec![f],
        heard: None,
        sent: None,
    };

    let mut request = match spec.url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => {
            let cause = crate::webhook::root_cause(&e);
            return fail(report, stream_connect_failure(&spec.url, cause));
        }
    };
    let signature = signing::signature(&ctx.auth_token, &signing::url_to_sign(&spec.sign_url), &[]);
    request.headers_mut().insert(
        "X-Twilio-Signature",
        signature.parse().expect("base64 is a valid header value"),
    );
    ctx.timeline.emit(EventKind::StreamConnecting {
        url: spec.url.clone(),
        bidirectional: spec.bidirectional,
        stream_sid: stream_sid.clone(),
        name: spec.name.clone(),
        status_callback: spec.status_callback.clone(),
        status_callback_method: spec.status_callback_method.as_str(),
    });
    let connect_started = Instant::now();
    let handshake = async {
        let tcp = open_socket(&spec.url).await?;
        tokio_tungstenite::client_async(request, tcp)
            .await
            .map_err(ConnectError::Ws)
    };
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
        Ok(Err(ConnectError::Tcp(cause))) => {
            return fail(report, stream_connect_failure(&spec.url, cause));
        }
        Ok(Err(ConnectError::Ws(tungstenite::Error::Http(response)))) => {
            return fail(
                report,
                Failure::StreamUpgradeRefused {
                    url: spec.url.clone(),
                    status: response.status().as_u16(),
                },
            );
        }
        Ok(Err(ConnectError::Ws(e))) => {
            let cause = crate::webhook::root_cause(&e);
            return fail(report, stream_connect_failure(&spec.url, cause));
        }
        Ok(Ok((ws, _response))) => ws,
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
                Ok(Message::Close(frame)) => {
                    let _ = tx
                        .send(Inbound::Closed(frame.map(|f| u16::from(f.code))))
                        .await;
                    return;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!("stream read error: {e}");
                    let _ = tx.send(Inbound::Dropped).await;
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

enum ConnectError {
    /// DNS or TCP connect failed (the cause in words).
    Tcp(String),
    /// The WebSocket handshake failed.
    Ws(tungstenite::Error),
}

/// Connects the stream's TCP socket: small send buffer, no Nagle (each frame is due now).
async fn open_socket(url: &str) -> Result<tokio::net::TcpStream, ConnectError> {
    let u = url::Url::parse(url).map_err(|e| ConnectError::Tcp(format!("invalid URL ({e})")))?;
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(ConnectError::Tcp("the URL has no host".into())),
    };
    let port = u.port_or_known_default().unwrap_or(80);
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| ConnectError::Tcp(format!("cannot resolve {host}: {e}")))?;
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| ConnectError::Tcp(e.to_string()))?;
        let _ = socket.set_send_buffer_size(STREAM_SNDBUF);
        match socket.connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(ConnectError::Tcp(last))
}

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
}

struct Driver {
    /// The call's timeline, for `--capture` of every message.
    timeline: Arc<Timeline>,
    ids: StreamIds,
    url: String,
    bidirectional: bool,
    tracks: Tracks,
    parameters: Vec<(String, String)>,
    seq: u64,
    chunk_in: u64,
    chunk_out: u64,
    frames_sent: u64,
    dtmf_sent: u64,
    lateness: Histogram<u64>,
    playout: Playout,
    turns: TurnTracker,
    t0: Option<Instant>,
    /// Unix time (ms) of `t0`, to put turns on the wall clock apps report milestones in.
    wall0_unix_ms: f64,
    ended_at: Option<Instant>,
    media_received: u64,
    first_audio_at: Option<Duration>,
    marks: Vec<MarkRecord>,
    clears: u64,
    invalid: u64,
    invalid_samples: Vec<InvalidMessage>,
    sent: Option<Vec<u8>>,
    failures: Vec<Failure>,
    no_audio_checked: bool,
    buf: String,
    /// Virtual time (`--fast`): the clock is the schedule itself.
    fast: bool,
    /// Virtual time since `t0`, µs.
    virt_us: u64,
    faults: Option<StreamFaults>,
    fault_counts: FaultCounts,
    /// Messages of a frame swapped with the next one, sent after it.
    swapped: Vec<String>,
    /// Mark echoes seen so far (each one's fault hangs off its index).
    echoes: u64,
    /// Echoes held back by `mark_delay`: (due µs, echo).
    delayed_echoes: VecDeque<(u64, crate::playout::MarkEcho)>,
    /// The caller's hang-up and when it falls, when this stream claimed it.
    hangup: Option<(CallerHangup, Duration)>,
    /// Per mark record: answered (echoed or lost to `mark_loss`); echoes settle the first
    /// open record of their name, so a lost echo is never credited to a later mark.
    marks_settled: Vec<bool>,
}

type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    Message,
>;

impl Driver {
    fn new(spec: &StreamSpec, ctx: &StreamCtx) -> Self {
        Self {
            timeline: ctx.timeline.clone(),
            ids: spec.ids.clone(),
            url: spec.url.clone(),
            bidirectional: spec.bidirectional,
            tracks: spec.tracks,
            parameters: spec.parameters.clone(),
            seq: 0,
            chunk_in: 0,
            chunk_out: 0,
            frames_sent: 0,
            dtmf_sent: 0,
            lateness: crate::report::new_lateness_histogram(),
            playout: Playout::new(ctx.record),
            turns: TurnTracker::new(&ctx.turns),
            t0: None,
            wall0_unix_ms: 0.0,
            ended_at: None,
            media_received: 0,
            first_audio_at: None,
            marks: Vec::new(),
            clears: 0,
            invalid: 0,
            invalid_samples: Vec::new(),
            sent: ctx.record.then(Vec::new),
            failures: Vec::new(),
            no_audio_checked: false,
            buf: String::with_capacity(512),
            fast: ctx.fast,
            virt_us: 0,
            fault_counts: FaultCounts::default(),
            faults: ctx.faults.clone(),
            swapped: Vec::new(),
            echoes: 0,
            delayed_echoes: VecDeque::new(),
            hangup: None,
            marks_settled: Vec::new(),
        }
    }

    /// Now, on the stream's clock: the wall clock, or in virtual time the schedule.
    fn now(&self, t0: Instant) -> Instant {
        if self.fast {
            t0 + Duration::from_micros(self.virt_us)
        } else {
            Instant::now()
        }
    }

    /// Waits for `deadline`; in virtual time, jumps to it (after letting the app's messages
    /// in).
    async fn sleep_until(&mut self, t0: Instant, deadline: Instant) {
        if self.fast {
            tokio::task::yield_now().await;
            self.virt_us = self.virt_us.max(us_since(t0, deadline));
        } else {
            sleep_until(deadline).await;
        }
    }

    /// When frame k goes out: its slot, or its faulty send time.
    fn frame_at(&mut self, t0: Instant, k: u64) -> Instant {
        match &mut self.faults {
            Some(f) => t0 + Duration::from_micros(f.send_offset_us(k)),
            None => frame_due(t0, k),
        }
    }

    /// Captures a message dialtone sends (no-op without `--capture`).
    fn cap_out(&self, text: &str) {
        self.timeline.capture(&Captured::WsOut {
            stream_sid: &self.ids.stream_sid,
            text,
        });
    }

    /// Sends one text message, captured.
    async fn send_text(&self, sink: &mut WsSink, text: String) -> Result<(), SendError> {
        self.cap_out(&text);
        send(sink, text).await
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn start_tracks(&self) -> Vec<Track> {
        match self.tracks {
            Tracks::Inbound => vec![Track::Inbound],
            Tracks::Outbound => vec![Track::Outbound],
            Tracks::Both => vec![Track::Inbound, Track::Outbound],
        }
    }

    async fn run(
        &mut self,
        sink: &mut WsSink,
        rx: &mut mpsc::Receiver<Inbound>,
        ctx: &mut StreamCtx,
    ) -> End {
        if *ctx.stop.borrow() {
            // The call ended while the upgrade was in flight: close without starting.
            let _ = timeout(WRITE_STALL, sink.close()).await;
            return End::Stopped;
        }
        if let Err(e) = self.send_text(sink, media::connected()).await {
            return self.send_failed(e, rx).await;
        }
        let seq = self.next_seq();
        let tracks = self.start_tracks();
        let start = media::start(seq, &self.ids, &tracks, &self.parameters);
        if let Err(e) = self.send_text(sink, start).await {
            return self.send_failed(e, rx).await;
        }
        let t0 = Instant::now();
        self.t0 = Some(t0);
        self.wall0_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        ctx.timeline.emit(EventKind::StartSent {
            stream_sid: self.ids.stream_sid.clone(),
            tracks: tracks
                .iter()
                .map(|t| match t {
                    Track::Inbound => "inbound".to_string(),
                    Track::Outbound => "outbound".to_string(),
                })
                .collect(),
        });
        if let Some(h) = ctx.hangup.take()
            && let Some(after) = h.claim()
        {
            self.hangup = Some((h, after));
            if let Some(started) = ctx.started.take() {
                let _ = started.send(t0);
            }
        }
        let mut next_dtmf = 0usize;
        let mut k: u64 = 0;
        loop {
            let mut deadline = self.frame_at(t0, k);
            if let Some((_, after)) = &self.hangup {
                deadline = deadline.min(t0 + *after);
            }
            if let Some(at) = self.injected_end_at() {
                deadline = deadline.min(t0 + at);
            }
            if let Some((us, _)) = self.delayed_echoes.front() {
                deadline = deadline.min(t0 + Duration::from_micros(*us));
            }
            if let Some(us) = self.playout.next_deadline_us() {
                deadline = deadline.min(t0 + Duration::from_micros(us));
            }
            if let Some((at, _)) = ctx.dtmf.get(next_dtmf) {
                deadline = deadline.min(t0 + *at);
            }
            tokio::select! {
                biased;
                changed = ctx.stop.changed() => {
                    if changed.is_err() || *ctx.stop.borrow() {
                        if self.hangup_due(t0) {
                            // The backstop beat a driver running late: still the caller's
                            // hang-up, with all of its frames.
                            return self.hang_up(sink, rx, ctx, t0, k).await;
                        }
                        return self.stop(sink, rx).await;
                    }
                }
                msg = rx.recv() => match msg {
                    Some(Inbound::Text(text)) => {
                        if let Err(e) = self.on_app_text(&text, t0, ctx, sink).await {
                            return self.send_failed(e, rx).await;
                        }
                    }
                    Some(Inbound::Binary(len)) => self.invalid_message(
                        ctx,
                        media::Violation::BinaryFrame.to_string(),
                        format!("<binary frame, {len} bytes>"),
                    ),
                    Some(Inbound::Closed(code)) => {
                        // Completes the close handshake tungstenite has queued.
                        let _ = timeout(WRITE_STALL, sink.close()).await;
                        return End::AppClosed(code);
                    }
                    Some(Inbound::Dropped) | None => return End::Dropped,
                },
                _ = self.sleep_until(t0, deadline) => {}
            }
            let now = self.now(t0);
            // Frames and DTMF go in schedule order, every one whose time has come, late ones
            // included (skipping would hide the generator's own stalls from the lateness
            // figures): the order never depends on how late the driver woke.
            loop {
                let frame = (!self.past_end(t0, k))
                    .then(|| self.frame_at(t0, k))
                    .filter(|at| *at <= now);
                let digit = ctx
                    .dtmf
                    .get(next_dtmf)
                    .copied()
                    .filter(|(at, _)| t0 + *at <= now && frame.is_none_or(|f| t0 + *at <= f));
                let sent = if let Some((_, digit)) = digit {
                    next_dtmf += 1;
                    self.send_dtmf(sink, ctx, digit).await
                } else if frame.is_some() {
                    k += 1;
                    self.send_scheduled_frame(sink, ctx, t0, k - 1).await
                } else {
                    break;
                };
                if let Err(e) = sent {
                    return self.send_failed(e, rx).await;
                }
            }
            if let Some(at) = self.injected_end_at()
                && now >= t0 + at
            {
                return self.inject_end(sink, rx, ctx).await;
            }
            if self.hangup_due(t0) {
                return self.hang_up(sink, rx, ctx, t0, k).await;
            }
            let now_us = us_since(t0, self.now(t0));
            for echo in self.playout.due_marks(now_us) {
                if let Err(e) = self.release_echo(sink, ctx, echo, now_us).await {
                    return self.send_failed(e, rx).await;
                }
            }
            while let Some((due, _)) = self.delayed_echoes.front() {
                if *due > now_us {
                    break;
                }
                let (_, echo) = self.delayed_echoes.pop_front().expect("checked");
                if let Err(e) = self.echo_mark(sink, ctx, echo, now_us).await {
                    return self.send_failed(e, rx).await;
                }
            }
            self.check_no_audio(ctx, t0);
        }
    }

    /// Sends frame k and books it: turns, lateness against its (faulty) schedule, delay.
    async fn send_scheduled_frame(
        &mut self,
        sink: &mut WsSink,
        ctx: &StreamCtx,
        t0: Instant,
        k: u64,
    ) -> Result<(), SendError> {
        self.send_frame(sink, ctx, k).await?;
        let sent = self.now(t0);
        let sent_us = us_since(t0, sent);
        let scheduled = self.frame_at(t0, k);
        if self.faults.is_some() && scheduled > frame_due(t0, k) {
            self.fault_counts.delayed += 1;
        }
        let playing = self.playout.busy_until_us() > sent_us;
        self.turns.on_frame_sent(k, sent_us, playing);
        if !self.fast {
            let late = sent.saturating_duration_since(scheduled);
            self.lateness
                .saturating_record((late.as_micros() as u64).max(1));
        }
        Ok(())
    }

    async fn send_dtmf(
        &mut self,
        sink: &mut WsSink,
        ctx: &StreamCtx,
        digit: char,
    ) -> Result<(), SendError> {
        let seq = self.next_seq();
        self.send_text(sink, media::dtmf(seq, &self.ids.stream_sid, digit))
            .await?;
        self.dtmf_sent += 1;
        ctx.timeline.emit(EventKind::Dtmf {
            digits: digit.to_string(),
        });
        Ok(())
    }

    /// This stream runs the caller's hang-up and its moment has come.
    fn hangup_due(&self, t0: Instant) -> bool {
        self.hangup
            .as_ref()
            .is_some_and(|(_, after)| self.now(t0) >= t0 + *after)
    }

    /// The caller hangs up: every frame of its time goes out (however late faults made
    /// them), the call is ended, the stream stopped.
    async fn hang_up(
        &mut self,
        sink: &mut WsSink,
        rx: &mut mpsc::Receiver<Inbound>,
        ctx: &StreamCtx,
        t0: Instant,
        mut k: u64,
    ) -> End {
        let Some((h, after)) = self.hangup.take() else {
            return self.stop(sink, rx).await;
        };
        while Duration::from_micros(k * 20_000) < after {
            if let Err(e) = self.send_scheduled_frame(sink, ctx, t0, k).await {
                return self.send_failed(e, rx).await;
            }
            k += 1;
        }
        h.fire();
        self.stop(sink, rx).await
    }

    /// The claiming stream ended before the caller hung up: hand the hang-up back.
    fn release_hangup(&mut self) {
        if let Some((h, after)) = self.hangup.take() {
            let left = self
                .fast
                .then(|| after.saturating_sub(Duration::from_micros(self.virt_us)));
            h.release(left);
        }
    }

    /// Sends frame k on every track the stream carries.
    async fn send_frame(
        &mut self,
        sink: &mut WsSink,
        ctx: &StreamCtx,
        k: u64,
    ) -> Result<(), SendError> {
        let ts = k * 20;
        let fate = self.faults.as_ref().map(|f| f.frame(k)).unwrap_or_default();
        if fate.paused {
            self.fault_counts.paused += 1;
            if let Some(sent) = &mut self.sent {
                // The caller spoke; the app never got it.
                sent.extend_from_slice(&[0xFF; 160]);
            }
            return Ok(());
        }
        if fate.seq_skip > 0 {
            self.seq += fate.seq_skip;
            self.fault_counts.seq_gaps += 1;
        }
        if matches!(self.tracks, Tracks::Inbound | Tracks::Both) {
            let audio = &ctx.caller_audio;
            let payload = if (k as usize) < audio.len() {
                audio.b64(k as usize)
            } else {
                silence_b64()
            };
            if let Some(sent) = &mut self.sent {
                if (k as usize) < audio.len() {
                    sent.extend_from_slice(audio.frame(k as usize));
                } else {
                    sent.extend_from_slice(&[0xFF; 160]);
                }
            }
            self.chunk_in += 1;
            let chunk = self.chunk_in;
            self.send_media(sink, Track::Inbound, chunk, ts, payload, k, fate)
                .await?;
        }
        if matches!(self.tracks, Tracks::Outbound | Tracks::Both) {
            let playing = ctx.outbound.frame_b64_at(Instant::now());
            let payload = playing.as_deref().unwrap_or(silence_b64());
            self.chunk_out += 1;
            let chunk = self.chunk_out;
            self.send_media(sink, Track::Outbound, chunk, ts, payload, k, fate)
                .await?;
        }
        if !fate.swapped && !self.swapped.is_empty() {
            // The frame held back by a swap goes after this one.
            for text in std::mem::take(&mut self.swapped) {
                self.send_wire(sink, text).await?;
            }
        }
        Ok(())
    }

    /// Sends a faulty frame's message, captured, counted.
    async fn send_wire(&mut self, sink: &mut WsSink, text: String) -> Result<(), SendError> {
        self.send_text(sink, text).await?;
        self.frames_sent += 1;
        Ok(())
    }

    /// Formats one `media` message into the reused buffer (counters only; the payload's
    /// base64 is precomputed) and sends it, captured.
    #[allow(clippy::too_many_arguments)]
    async fn send_media(
        &mut self,
        sink: &mut WsSink,
        track: Track,
        chunk: u64,
        ts: u64,
        payload: &str,
        k: u64,
        fate: crate::faults::FrameFate,
    ) -> Result<(), SendError> {
        self.seq += 1;
        self.buf.clear();
        media::write_media(
            &mut self.buf,
            self.seq,
            track,
            chunk,
            ts,
            payload,
            &self.ids.stream_sid,
        );
        if let Some(faults) = &self.faults
            && fate != crate::faults::FrameFate::default()
        {
            if fate.lost {
                self.fault_counts.lost += 1;
                return Ok(());
            }
            let mut text = self.buf.clone();
            if let Some(how) = fate.corrupt {
                text = faults.corrupt(how, &text, &self.ids.stream_sid, k);
                let c = &mut self.fault_counts;
                match how {
                    crate::faults::Corrupt::BadJson => c.bad_json += 1,
                    crate::faults::Corrupt::BadBase64 => c.bad_base64 += 1,
                    crate::faults::Corrupt::WrongSid => c.wrong_sid += 1,
                }
            }
            if fate.swapped {
                self.fault_counts.reordered += 1;
                self.swapped.push(text);
                return Ok(());
            }
            if fate.duplicated {
                self.fault_counts.duplicated += 1;
                self.send_wire(sink, text.clone()).await?;
            }
            return self.send_wire(sink, text).await;
        }
        self.cap_out(&self.buf);
        send_msg(sink, Message::Text(self.buf.as_str().into())).await?;
        self.frames_sent += 1;
        Ok(())
    }

    /// Frame k never goes out in the main loop: its slot is at or past the caller's hang-up
    /// (which flushes the frames before it), or it is scheduled at or past an injected end.
    /// Decided on the schedule, so the frames sent never depend on how late the driver woke.
    fn past_end(&mut self, t0: Instant, k: u64) -> bool {
        let slot = Duration::from_micros(k * 20_000);
        if self
            .hangup
            .as_ref()
            .is_some_and(|(_, after)| slot >= *after)
        {
            return true;
        }
        match self.injected_end_at() {
            Some(at) => self.frame_at(t0, k) >= t0 + at,
            None => false,
        }
    }

    /// When an injected `drop` or `close` ends the stream, from its start.
    fn injected_end_at(&self) -> Option<Duration> {
        let spec = self.faults.as_ref()?.spec();
        match (spec.drop_at, spec.close_at) {
            (Some(d), Some((c, _))) => Some(d.min(c)),
            (Some(d), None) => Some(d),
            (None, Some((c, _))) => Some(c),
            (None, None) => None,
        }
    }

    /// Ends the stream the injected way: the TCP connection dropped (no `stop`, no close
    /// frame), or a close frame with the configured code (no `stop`).
    async fn inject_end(
        &mut self,
        sink: &mut WsSink,
        rx: &mut mpsc::Receiver<Inbound>,
        ctx: &StreamCtx,
    ) -> End {
        let spec = self.faults.as_ref().expect("faults armed").spec();
        let close = match (spec.drop_at, spec.close_at) {
            (Some(d), Some((c, code))) if c < d => Some(code),
            (None, Some((_, code))) => Some(code),
            _ => None,
        };
        let what = match close {
            Some(code) => format!("close {code}"),
            None => "drop".to_string(),
        };
        ctx.timeline.emit(EventKind::Fault {
            what: match close {
                Some(code) => format!("close frame {code} sent without stop"),
                None => "TCP connection dropped without stop or close frame".into(),
            },
        });
        self.fault_counts.ended = Some(what);
        if let Some(code) = close {
            close_and_wait(sink, rx, CloseCode::from(code)).await;
        }
        // Dropping the halves (on return) closes the socket without a close frame.
        End::Injected(close)
    }

    /// An echo the playout released: sent now, later, or never, as the mark faults say.
    async fn release_echo(
        &mut self,
        sink: &mut WsSink,
        ctx: &StreamCtx,
        echo: crate::playout::MarkEcho,
        now_us: u64,
    ) -> Result<(), SendError> {
        let n = self.echoes;
        self.echoes += 1;
        match self.faults.as_ref().map(|f| f.mark(n)) {
            None => self.echo_mark(sink, ctx, echo, now_us).await,
            Some(None) => {
                self.fault_counts.marks_dropped += 1;
                self.settle_mark(&echo.name);
                Ok(())
            }
            Some(Some(delay)) if delay.is_zero() => self.echo_mark(sink, ctx, echo, now_us).await,
            Some(Some(delay)) => {
                self.fault_counts.marks_delayed += 1;
                let due = now_us + delay.as_micros() as u64;
                self.delayed_echoes.push_back((due, echo));
                Ok(())
            }
        }
    }

    async fn on_app_text(
        &mut self,
        text: &str,
        t0: Instant,
        ctx: &StreamCtx,
        sink: &mut WsSink,
    ) -> Result<(), SendError> {
        let now_us = us_since(t0, self.now(t0));
        self.timeline.capture(&Captured::WsIn {
            stream_sid: &self.ids.stream_sid,
            text,
        });
        // Lenient about extra fields: widely used apps add e.g. `media.track`, and Twilio plays
        // their audio.
        let msg = match media::parse_app_message_with(
            text,
            &self.ids.stream_sid,
            media::Strictness::Lenient,
        ) {
            Ok(m) => m,
            Err(v) => {
                self.invalid_message(ctx, v.to_string(), text.to_string());
                return Ok(());
            }
        };
        if !self.bidirectional {
            // Twilio: sending to a unidirectional stream is a protocol error (31924); the
            // message has no effect.
            self.invalid_message(
                ctx,
                "message sent on a unidirectional <Start> stream (31924)".into(),
                text.to_string(),
            );
            return Ok(());
        }
        match msg {
            AppMessage::Media { payload } => {
                self.media_received += 1;
                let heard_us = self.playout.push_media(now_us, &payload);
                self.turns.on_app_media(now_us, heard_us);
                if self.first_audio_at.is_none() {
                    let after = Duration::from_micros(now_us);
                    self.first_audio_at = Some(after);
                    ctx.timeline.emit(EventKind::FirstAudioBack {
                        stream_sid: self.ids.stream_sid.clone(),
                        after_start: after,
                    });
                }
            }
            AppMessage::Mark { name } => {
                let index = self.marks.len();
                self.marks.push(MarkRecord {
                    name: name.clone(),
                    round_trip_ms: None,
                    cleared: false,
                });
                self.marks_settled.push(false);
                if let Some(echo) = self.playout.push_mark(now_us, name) {
                    debug_assert_eq!(index, self.marks.len() - 1);
                    self.release_echo(sink, ctx, echo, now_us).await?;
                }
            }
            AppMessage::Clear => {
                self.clears += 1;
                let out = self.playout.clear(now_us);
                self.turns.on_clear(now_us);
                ctx.timeline.emit(EventKind::Clear {
                    stream_sid: self.ids.stream_sid.clone(),
                    dropped_ms: out.dropped_ms,
                    marks_echoed: out.echoes.len(),
                });
                for echo in out.echoes {
                    self.release_echo(sink, ctx, echo, now_us).await?;
                }
            }
        }
        Ok(())
    }

    async fn echo_mark(
        &mut self,
        sink: &mut WsSink,
        ctx: &StreamCtx,
        echo: crate::playout::MarkEcho,
        now_us: u64,
    ) -> Result<(), SendError> {
        let seq = self.next_seq();
        self.send_text(sink, media::mark(seq, &self.ids.stream_sid, &echo.name))
            .await?;
        let rtt = Duration::from_micros(now_us.saturating_sub(echo.received_us));
        if let Some(i) = self.settle_mark(&echo.name) {
            let rec = &mut self.marks[i];
            rec.round_trip_ms = Some(rtt.as_secs_f64() * 1e3);
            rec.cleared = echo.cleared;
        }
        ctx.timeline.emit(EventKind::MarkEchoed {
            stream_sid: self.ids.stream_sid.clone(),
            name: echo.name,
            round_trip: rtt,
            cleared: echo.cleared,
        });
        Ok(())
    }

    /// Echoes come in the order marks were queued, so the first open record of the name is
    /// the one answered (or lost).
    fn settle_mark(&mut self, name: &str) -> Option<usize> {
        let i = (0..self.marks.len())
            .find(|&i| !self.marks_settled[i] && self.marks[i].name == name)?;
        self.marks_settled[i] = true;
        Some(i)
    }

    fn invalid_message(&mut self, ctx: &StreamCtx, reason: String, raw: String) {
        self.invalid += 1;
        let raw: String = raw.chars().take(200).collect();
        if self.invalid_samples.len() < INVALID_SAMPLES {
            self.invalid_samples.push(InvalidMessage {
                reason: reason.clone(),
                raw: raw.clone(),
            });
        }
        // Counted always, shown a few times: a misbehaving app must not grow the timeline.
        if self.invalid <= INVALID_SAMPLES as u64 {
            ctx.timeline.emit(EventKind::InvalidMessage {
                stream_sid: self.ids.stream_sid.clone(),
                reason,
                raw,
            });
        }
    }

    fn check_no_audio(&mut self, ctx: &StreamCtx, t0: Instant) {
        let Some(limit) = ctx.no_audio_timeout else {
            return;
        };
        if self.no_audio_checked || !self.bidirectional {
            return;
        }
        if self.first_audio_at.is_some() {
            self.no_audio_checked = true;
        } else if t0.elapsed() >= limit {
            // Wall clock even in virtual time: a slow app is slow in real time.
            self.no_audio_checked = true;
            self.failures.push(Failure::NoAudioBack {
                url: self.url.clone(),
                secs: limit.as_secs(),
            });
        }
    }

    /// A write failed: tell a clean close by the app (its Close frame may still be queued
    /// behind other messages) from a broken or stalled socket.
    async fn send_failed(&mut self, e: SendError, rx: &mut mpsc::Receiver<Inbound>) -> End {
        if let SendError::Stalled = e {
            return End::Stalled;
        }
        let closed = timeout(Duration::from_millis(100), async {
            while let Some(m) = rx.recv().await {
                match m {
                    Inbound::Closed(code) => return Some(code),
                    Inbound::Dropped => return None,
                    _ => {}
                }
            }
            None
        })
        .await;
        match closed {
            Ok(Some(code)) => End::AppClosed(code),
            _ => End::Dropped,
        }
    }

    async fn stop(&mut self, sink: &mut WsSink, rx: &mut mpsc::Receiver<Inbound>) -> End {
        for text in std::mem::take(&mut self.swapped) {
            let _ = self.send_wire(sink, text).await;
        }
        let seq = self.next_seq();
        let _ = self.send_text(sink, media::stop(seq, &self.ids)).await;
        close_and_wait(sink, rx, CloseCode::Normal).await;
        End::Stopped
    }

    fn finish(mut self, mut report: StreamReport, end: End, ctx: &StreamCtx) -> StreamOutcome {
        let ended = self.ended_at.unwrap_or_else(Instant::now);
        let t0 = self.t0.unwrap_or(ended);
        let end_us = if self.fast {
            self.virt_us
        } else {
            us_since(t0, ended)
        };
        match end {
            End::Stopped => {
                report.closed_by = "dialtone";
                report.close_code = Some(1000);
                ctx.timeline.emit(EventKind::StopSent {
                    stream_sid: self.ids.stream_sid.clone(),
                });
            }
            End::AppClosed(code) => {
                report.closed_by = "app";
                report.close_code = code;
            }
            End::Stalled => {
                report.closed_by = "stalled";
                self.failures.push(Failure::StreamStalled {
                    url: self.url.clone(),
                    secs: WRITE_STALL.as_secs(),
                    frames_sent: self.frames_sent,
                });
            }
            End::Injected(code) => {
                report.closed_by = "dialtone";
                report.close_code = code;
            }
            End::Dropped => {
                report.closed_by = "dropped";
                self.failures.push(Failure::StreamDropped {
                    url: self.url.clone(),
                    frames_sent: self.frames_sent,
                });
            }
        }
        ctx.timeline.capture(&Captured::WsClose {
            stream_sid: &self.ids.stream_sid,
            by: report.closed_by,
            code: report.close_code,
        });
        ctx.timeline.emit(EventKind::StreamClosed {
            stream_sid: self.ids.stream_sid.clone(),
            by: report.closed_by,
            code: report.close_code,
            frames_sent: self.frames_sent,
        });
        // A stream too short to reach the bound cannot be blamed for silence.
        if !self.no_audio_checked
            && self.bidirectional
            && self.first_audio_at.is_none()
            && ctx
                .no_audio_timeout
                .is_some_and(|l| ended.saturating_duration_since(t0) >= l)
        {
            self.failures.push(Failure::NoAudioBack {
                url: self.url.clone(),
                secs: ctx.no_audio_timeout.map_or(0, |l| l.as_secs()),
            });
        }
        report.frames_sent = self.frames_sent;
        report.dtmf_sent = self.dtmf_sent;
        report.lateness = LatencySummary::from_us(&self.lateness);
        report.lateness_us = self.lateness;
        report.media_received = self.media_received;
        report.audio_received_ms = self.playout.bytes_received() / 8;
        report.audio_cleared_ms = self.playout.bytes_dropped() / 8;
        report.underrun_ms = self.playout.underrun_ms();
        report.time_to_first_audio_ms = self.first_audio_at.map(|d| d.as_secs_f64() * 1e3);
        report.marks = self.marks;
        report.clears = self.clears;
        report.invalid_messages = self.invalid;
        report.invalid_samples = self.invalid_samples;
        report.duration_ms = end_us as f64 / 1e3;
        if self.faults.is_some() {
            report.faults = Some(std::mem::take(&mut self.fault_counts));
        }
        report.turns = self.turns.finish(self.wall0_unix_ms);
        StreamOutcome {
            heard: self.playout.heard_mulaw(end_us),
            sent: self.sent,
            report,
            failures: self.failures,
        }
    }
}

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
            if matches!(m, Inbound::Closed(_) | Inbound::Dropped) {
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
