//! The driver loop of one stream: pacing on an absolute schedule (or virtual time), the
//! app's messages, playout and mark echoes, and the report at the end. The app's messages
//! are handled in `app`, injected faults in `faults`, the caller's hang-up in `hangup`,
//! virtual time's read barrier and wall-clock check in `virtual_time`, the report in
//! `finish`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::frames::silence_b64;
use dialtone_protocol::media::{self, StreamIds, Track};
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use super::{
    End, Inbound, SendError, StreamCtx, StreamSpec, Tracks, WRITE_STALL, WsSink, close_and_wait,
    frame_due, send, send_msg, us_since,
};
use crate::capture::Captured;
use crate::faults::{FaultCounts, FrameFate, StreamFaults};
use crate::marks::MarkLog;
use crate::playout::Playout;
use crate::report::{EventKind, Failure, InvalidMessage};
use crate::timeline::Timeline;
use crate::turns::TurnTracker;

mod app;
mod faults;
mod finish;
pub(super) mod hangup;
mod virtual_time;

use hangup::CallerHangup;

/// Mark echoes and clears of one stream shown in the timeline (the report counts them
/// all): an app sending marks by the hundred thousand must not grow the timeline.
const EVENTS_SHOWN: u64 = 50;

/// One stream in flight: owns the socket's write half, the frame schedule, the playout
/// queue and everything the report will say.
pub(super) struct Driver {
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
    pub(super) ended_at: Option<Instant>,
    media_received: u64,
    first_audio_at: Option<Duration>,
    /// Every mark counted, a sample kept (O(1) per mark).
    marks: MarkLog,
    /// Mark echoes shown in the timeline so far (at most [`EVENTS_SHOWN`]).
    echoes_shown: u64,
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
    /// Virtual time: the caller waits for the app to read what it sent.
    barrier: virtual_time::ReadBarrier,
    /// Virtual time, after the caller's hang-up: app audio still coming on the wall clock.
    late: Option<virtual_time::LateAudio>,
    /// Warnings for the call's report.
    warnings: Vec<(u16, String)>,
    /// Frames of the caller's audio already gone when this stream started (its audio is
    /// anchored at the answer): stream frame k carries caller frame k + this.
    caller_offset: u64,
}

impl Driver {
    pub(super) fn new(spec: &StreamSpec, ctx: &StreamCtx) -> Self {
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
            playout: Playout::new(ctx.record)
                .record_until(u64::try_from(ctx.max_duration.as_micros()).unwrap_or(u64::MAX)),
            turns: TurnTracker::new(&ctx.turns),
            t0: None,
            wall0_unix_ms: 0.0,
            ended_at: None,
            media_received: 0,
            first_audio_at: None,
            marks: MarkLog::default(),
            echoes_shown: 0,
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
            barrier: virtual_time::ReadBarrier::default(),
            late: None,
            warnings: Vec::new(),
            caller_offset: 0,
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

    /// Waits for `deadline`; in virtual time, jumps to it once the app has read what was
    /// sent (after letting the app's messages in).
    async fn sleep_until(&mut self, t0: Instant, deadline: Instant) {
        if self.fast {
            self.virtual_sleep(t0, deadline).await;
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

    pub(super) async fn run(
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
        self.anchor_caller(t0, ctx);
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
            // The caller's time counts from where its audio starts.
            let after = after.saturating_sub(self.caller_offset_duration());
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
                    Some(Inbound::Violation(v)) => return End::Violation(v),
                    Some(Inbound::Pong(id)) => self.on_pong(id),
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
            if let Err(e) = self.ping_if_sent(sink).await {
                return self.send_failed(e, rx).await;
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
        // Ground truth is in the caller audio's frames, which this stream may join late.
        self.turns
            .on_frame_sent(k + self.caller_offset, sent_us, playing);
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
            let j = (k + self.caller_offset) as usize;
            let payload = if j < audio.len() {
                audio.b64(j)
            } else {
                silence_b64()
            };
            if let Some(sent) = &mut self.sent {
                if j < audio.len() {
                    sent.extend_from_slice(audio.frame(j));
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
        fate: FrameFate,
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
        if self.faults.is_some() && fate != FrameFate::default() {
            return self.send_faulty(sink, fate, k).await;
        }
        self.cap_out(&self.buf);
        send_msg(sink, Message::Text(self.buf.as_str().into())).await?;
        self.frames_sent += 1;
        Ok(())
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

    async fn stop(&mut self, sink: &mut WsSink, rx: &mut mpsc::Receiver<Inbound>) -> End {
        for text in std::mem::take(&mut self.swapped) {
            let _ = self.send_wire(sink, text).await;
        }
        let seq = self.next_seq();
        let _ = self.send_text(sink, media::stop(seq, &self.ids)).await;
        close_and_wait(sink, rx, CloseCode::Normal).await;
        End::Stopped
    }
}
