//! The tokio driver of one stream: only I/O around the [`Session`]. It opens the signed
//! upgrade (TLS and tunnels through `dialtone_net`), reads the app's frames in a task of their
//! own, and feeds them and the time to the session; what the session sends goes to the socket
//! with the [`WRITE_STALL`] bound. Virtual time (`--fast`) is the clock it keeps in
//! `lockstep`.

use std::collections::VecDeque;
use std::time::Duration;

use dialtone_net::{SocketOptions, WsError};
use dialtone_protocol::media::WsViolation;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{
    Message, protocol::CloseFrame, protocol::frame::coding::CloseCode,
};

use super::session::{End, Phase, Session, WRITE_STALL, Wire};
use super::{
    CONNECT_TIMEOUT, CallerHangup, STREAM_SNDBUF, StreamCtx, StreamOutcome, StreamSpec,
    caller_offset, stream_connect_failure,
};
use crate::capture::Captured;
use crate::report::{EventKind, Failure};
use crate::timeline::Timeline;

mod lockstep;

use lockstep::Lockstep;

/// What the reader task hands the driver.
pub(super) enum Inbound {
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

type WsSink = futures_util::stream::SplitSink<dialtone_net::Ws, Message>;

/// The session's output: messages queued for the socket (captured), events to the timeline.
struct Outbox<'a> {
    queue: &'a mut VecDeque<Message>,
    timeline: &'a Timeline,
    stream_sid: &'a str,
    lateness: Option<&'a crate::config::FrameLateness>,
}

impl Wire for Outbox<'_> {
    fn text(&mut self, text: &str) {
        self.timeline.capture(&Captured::WsOut {
            stream_sid: self.stream_sid,
            text,
        });
        self.queue.push_back(Message::Text(text.into()));
    }

    fn event(&mut self, kind: EventKind) {
        self.timeline.emit(kind);
    }

    fn frame_sent(&mut self, lateness_us: u64) {
        if let Some(sink) = self.lateness {
            super::record_lateness(sink, lateness_us);
        }
    }
}

/// Runs one stream to its end.
pub(super) async fn run(
    spec: StreamSpec,
    mut ctx: StreamCtx,
    mut stop: watch::Receiver<bool>,
) -> StreamOutcome {
    let stream_sid = spec.ids.stream_sid.clone();
    // The app validates the upgrade's signature over the URL as written in its TwiML.
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
    let headers = dialtone_net::upgrade_headers(&ctx.auth_token, &spec.url);
    let handshake = ctx.net.connect_ws(
        &ctx.tunnels,
        &spec.url,
        &headers,
        SocketOptions {
            send_buffer: Some(STREAM_SNDBUF),
        },
    );
    let failed = match timeout(CONNECT_TIMEOUT, handshake).await {
        Err(_) => Err(stream_connect_failure(
            &spec.url,
            format!(
                "no answer to the upgrade within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(WsError::Refused(status))) => Err(Failure::StreamUpgradeRefused {
            url: spec.url.clone(),
            status,
        }),
        Ok(Err(e)) => {
            let cause = match &via {
                Some(v) => format!("{e} (connecting via the tunnel to {v})"),
                None => e.to_string(),
            };
            Err(stream_connect_failure(&spec.url, cause))
        }
        Ok(Ok((ws, _route))) => Ok(ws),
    };
    let ws = match failed {
        Ok(ws) => ws,
        Err(f) => {
            let session = Session::new(spec.session(&ctx, 0));
            let mut o = finish(session, &ctx.timeline, &stream_sid, None, Duration::ZERO);
            o.failures.push(f);
            return o;
        }
    };
    let connect_elapsed = connect_started.elapsed();
    ctx.timeline.capture(&Captured::WsOpen {
        stream_sid: &stream_sid,
        url: &spec.url,
    });
    ctx.timeline.emit(EventKind::StreamConnected {
        stream_sid: stream_sid.clone(),
        elapsed: connect_elapsed,
    });

    let (mut sink, source) = ws.split();
    let slow_read = ctx.faults.as_ref().and_then(|f| f.spec().slow_read);
    let (reader, mut rx) = spawn_reader(source, slow_read);
    let mut d = Driver {
        sink: &mut sink,
        queue: VecDeque::new(),
        timeline: ctx.timeline.clone(),
        stream_sid: stream_sid.clone(),
        fast: ctx.fast,
        t0: Instant::now(),
        lockstep: Lockstep::default(),
        pending_warning: None,
        lateness: ctx.frame_lateness.clone(),
    };
    let mut session = None;
    let end = d
        .drive(&spec, &mut ctx, &mut stop, &mut rx, &mut session)
        .await;
    let ended = Instant::now();
    if let Some(code) = end.close_code() {
        // Our close frame (a clean stop, an injected close, or the code that says how the
        // app broke the protocol); for a stop the app gets a moment to answer it.
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        let _ = d.send_msg(Message::Close(Some(frame))).await;
        if end.awaits_close() {
            wait_for_close(&mut rx).await;
        }
    }
    reader.abort();
    let session = session.unwrap_or_else(|| Session::new(spec.session(&ctx, 0)));
    let started = d.started();
    let wall = started.map_or(Duration::ZERO, |t0| ended.saturating_duration_since(t0));
    let mut outcome = finish(
        session,
        &ctx.timeline,
        &stream_sid,
        Some(connect_elapsed),
        wall,
    );
    outcome.started_at = started;
    ctx.timeline.capture(&Captured::WsClose {
        stream_sid: &stream_sid,
        by: outcome.report.closed_by,
        code: outcome.report.close_code,
    });
    outcome
}

/// Ends the session once the socket is done: its events still reach the timeline; what it
/// would send has nowhere to go.
fn finish(
    session: Session,
    timeline: &Timeline,
    stream_sid: &str,
    connect: Option<Duration>,
    wall: Duration,
) -> StreamOutcome {
    let mut queue = VecDeque::new();
    let mut out = Outbox {
        queue: &mut queue,
        timeline,
        stream_sid,
        lateness: None,
    };
    session.finish(connect, wall, &mut out)
}

/// Reads the app's frames into a bounded channel: a slow driver makes the reader wait, which
/// pushes back on the app's socket instead of buffering without limit.
fn spawn_reader(
    mut source: futures_util::stream::SplitStream<dialtone_net::Ws>,
    slow_read: Option<Duration>,
) -> (tokio::task::JoinHandle<()>, mpsc::Receiver<Inbound>) {
    let (tx, rx) = mpsc::channel::<Inbound>(256);
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
    (reader, rx)
}

/// Gives the app a moment to answer our close frame, so the handshake completes cleanly.
async fn wait_for_close(rx: &mut mpsc::Receiver<Inbound>) {
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

/// Why a write to the app's socket failed.
enum SendError {
    /// The socket refused the write (closed or broken).
    Socket,
    /// The write did not complete within [`WRITE_STALL`]: the app stopped reading.
    Stalled,
}

struct Driver<'s> {
    sink: &'s mut WsSink,
    queue: VecDeque<Message>,
    timeline: std::sync::Arc<Timeline>,
    stream_sid: String,
    fast: bool,
    /// When `start` went out (set once it has).
    t0: Instant,
    lockstep: Lockstep,
    /// A warning virtual time found while waiting, for the session's report.
    pending_warning: Option<String>,
    lateness: Option<crate::config::FrameLateness>,
}

impl Driver<'_> {
    fn outbox(&mut self) -> Outbox<'_> {
        Outbox {
            queue: &mut self.queue,
            timeline: &self.timeline,
            stream_sid: &self.stream_sid,
            lateness: self.lateness.as_ref(),
        }
    }

    fn started(&self) -> Option<Instant> {
        self.lockstep.started.then_some(self.t0)
    }

    /// Now, on the session's clock: µs since `start`, wall or virtual.
    fn now_us(&self) -> u64 {
        if self.fast {
            self.lockstep.virt_us
        } else {
            Instant::now()
                .saturating_duration_since(self.t0)
                .as_micros() as u64
        }
    }

    async fn send_msg(&mut self, msg: Message) -> Result<(), SendError> {
        match timeout(WRITE_STALL, self.sink.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SendError::Socket),
            Err(_) => Err(SendError::Stalled),
        }
    }

    /// Sends what the session queued, in order.
    async fn flush(&mut self) -> Result<(), SendError> {
        while let Some(msg) = self.queue.pop_front() {
            self.send_msg(msg).await?;
        }
        Ok(())
    }

    /// A write failed: tell a clean close by the app (its Close frame may still be queued
    /// behind other messages) from a broken or stalled socket.
    async fn send_failed(e: SendError, rx: &mut mpsc::Receiver<Inbound>) -> End {
        if let SendError::Stalled = e {
            return End::Stalled;
        }
        let closed = timeout(Duration::from_millis(100), async {
            while let Some(m) = rx.recv().await {
                match m {
                    Inbound::Closed(code) => return Some(End::AppClosed(code)),
                    Inbound::Dropped => return None,
                    Inbound::Violation(v) => return Some(End::Violation(v)),
                    _ => {}
                }
            }
            None
        })
        .await;
        closed.ok().flatten().unwrap_or(End::Dropped)
    }

    /// Feeds one message of the app to the session; `Some(end)` when the stream ended.
    async fn on_inbound(&mut self, s: &mut Session, msg: Option<Inbound>) -> Option<End> {
        let now = self.now_us();
        match msg {
            Some(Inbound::Text(text)) => {
                self.timeline.capture(&Captured::WsIn {
                    stream_sid: &self.stream_sid,
                    text: &text,
                });
                self.lockstep.on_app_message();
                let before = s.media_received();
                s.on_text(now, &text, &mut self.outbox());
                if s.media_received() > before {
                    self.lockstep.on_media(s);
                }
                None
            }
            Some(Inbound::Binary(len)) => {
                self.lockstep.on_app_message();
                s.on_binary(len, &mut self.outbox());
                None
            }
            Some(Inbound::Closed(code)) => {
                // Completes the close handshake tungstenite has queued.
                let _ = timeout(WRITE_STALL, self.sink.close()).await;
                Some(End::AppClosed(code))
            }
            Some(Inbound::Dropped) | None => Some(End::Dropped),
            Some(Inbound::Violation(v)) => Some(End::Violation(v)),
            Some(Inbound::Pong(id)) => {
                self.lockstep.on_pong(id);
                None
            }
        }
    }

    /// The stream's life after the upgrade; the session is left in `slot` for the report.
    async fn drive(
        &mut self,
        spec: &StreamSpec,
        ctx: &mut StreamCtx,
        stop: &mut watch::Receiver<bool>,
        rx: &mut mpsc::Receiver<Inbound>,
        slot: &mut Option<Session>,
    ) -> End {
        if *stop.borrow() {
            // The call ended while the upgrade was in flight: close without starting.
            let mut s = Session::new(spec.session(ctx, 0));
            s.stop(0, &mut self.outbox());
            *slot = Some(s);
            return End::Stopped;
        }
        let t0 = Instant::now();
        let mut s = Session::new(spec.session(ctx, caller_offset(ctx, t0)));
        let wall0_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        s.start(wall0_unix_ms, &mut self.outbox());
        self.t0 = t0;
        self.lockstep.started = true;
        let mut hangup: Option<CallerHangup> = None;
        if let Some(h) = ctx.hangup.take()
            && let Some(after) = h.claim()
        {
            s.set_hangup(after);
            hangup = Some(h);
            if let Some(started) = ctx.started.take() {
                let _ = started.send(t0);
            }
        }
        let end = self.pump(&mut s, stop, rx, &hangup).await;
        if let Some(h) = hangup {
            // The stream ended before the caller hung up: hand the hang-up back (in virtual
            // time, with the caller's time left).
            if s.hangup_at().is_some() {
                let left = s.hangup_left(self.now_us()).filter(|_| self.fast);
                h.release(left);
            }
        }
        s.on_end(end.clone(), self.now_us());
        *slot = Some(s);
        end
    }

    /// The loop: the app's messages, the session's deadlines, the call's stop.
    async fn pump(
        &mut self,
        s: &mut Session,
        stop: &mut watch::Receiver<bool>,
        rx: &mut mpsc::Receiver<Inbound>,
        hangup: &Option<CallerHangup>,
    ) -> End {
        if let Err(e) = self.flush().await {
            return Self::send_failed(e, rx).await;
        }
        loop {
            let deadline = s.poll_timeout();
            let ended = tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        let now = self.now_us();
                        if s.stop(now, &mut self.outbox()) {
                            // The backstop beat a driver running late: still the caller's
                            // hang-up, with all of its frames.
                            if let Some(h) = hangup {
                                h.fire();
                            }
                            s.clear_hangup();
                        }
                    }
                    None
                }
                msg = rx.recv() => self.on_inbound(s, msg).await,
                _ = self.wait(deadline) => None,
            };
            self.warn_pending(s);
            if let Some(end) = ended {
                return end;
            }
            s.handle_timeout(self.now_us(), &mut self.outbox());
            if let Err(e) = self.flush().await {
                return Self::send_failed(e, rx).await;
            }
            if s.phase() == Phase::HungUp {
                // In virtual time the caller's tail passed at once: wait for the app to read
                // everything, and on the wall clock for replies still on their way.
                if self.fast
                    && let Some(end) = self.settle(s, stop, rx, hangup).await
                {
                    if let Some(h) = hangup {
                        h.fire();
                    }
                    s.clear_hangup();
                    return end;
                }
                if let Some(h) = hangup {
                    h.fire();
                }
                s.clear_hangup();
                s.stop(self.now_us(), &mut self.outbox());
                if let Err(e) = self.flush().await {
                    return Self::send_failed(e, rx).await;
                }
            }
            if let Phase::Ended(end) = s.phase() {
                return end;
            }
            if self.fast
                && let Err(e) = self.ping_if_sent(s).await
            {
                return Self::send_failed(e, rx).await;
            }
            s.check_no_audio(self.t0.elapsed());
        }
    }

    /// Waits for the session's next deadline: on the wall clock, or in virtual time until
    /// the app has settled, then a jump to it.
    async fn wait(&mut self, deadline: Option<u64>) {
        if self.fast {
            return self.virtual_wait(deadline).await;
        }
        match deadline {
            Some(us) => sleep_until(self.t0 + Duration::from_micros(us)).await,
            None => std::future::pending().await,
        }
    }
}
