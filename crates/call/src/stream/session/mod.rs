//! One Media Streams session, sans-IO: the whole of a stream's logic with no socket, no
//! clock and no runtime. The app's messages and the time go in; the messages to send (through
//! [`Wire`]), the next deadline ([`Session::poll_timeout`]), timeline events and, at the end,
//! the typed report ([`Session::finish`]) come out. Both engines pump it: the tokio driver of
//! one call (`stream::tokio_driver`) and the mio plane that carries thousands (`stream::plane`).
//!
//! Time is microseconds since `start` went out, on whatever clock the driver keeps: the wall
//! clock, or virtual time in `--fast`. Frame k is due at `20 ms·k` (or its faulty send time);
//! frames are never skipped, so the frames sent and their order depend only on the schedule,
//! never on how late the driver woke.
//!
//! - this file: the configuration, the pacing (`handle_timeout`), the end;
//! - `app`: the app's messages (playout, marks, `clear`, invalid messages, the no-audio bound);
//! - `faults`: injected faults on the wire (a frame's fate, the injected end, mark faults);
//! - `finish`: the report.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use dialtone_audio::FrameSet;
use dialtone_audio::frames::silence_b64;
use dialtone_protocol::media::{self, StreamIds, Track, WsViolation};

use super::{OutboundAudio, Tracks};
use crate::faults::{FaultCounts, FrameFate, StreamFaults};
use crate::marks::MarkLog;
use crate::playout::{MarkEcho, Playout};
use crate::report::{EventKind, Failure, InvalidMessage};
use crate::turns::TurnTracker;
use dialtone_corpus::Turn;

mod app;
mod faults;
mod finish;
#[cfg(test)]
mod tests;

/// A write that cannot complete for this long means the app stopped reading its socket; the
/// stream is abandoned rather than letting the call hang past its max duration. Both drivers
/// apply it.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(5);
/// How many ignored messages are kept verbatim in the report (all are counted).
const INVALID_SAMPLES: usize = 5;
/// Mark echoes and clears of one stream shown in the timeline (the report counts them
/// all): an app sending marks by the hundred thousand must not grow the timeline.
const EVENTS_SHOWN: u64 = 50;
const FRAME_US: u64 = 20_000;

/// Where a session's output goes: the driver's socket and the call's timeline.
pub(crate) trait Wire {
    /// Sends one text message (the driver captures it with `--capture`).
    fn text(&mut self, text: &str);
    /// A step of the call's timeline.
    fn event(&mut self, kind: EventKind);
    /// A scheduled frame went out this late (µs; real time only).
    fn frame_sent(&mut self, _lateness_us: u64) {}
    /// An app `media` message came; the first one carries its time since the start (µs).
    fn app_media(&mut self, _first_after_us: Option<u64>) {}
    /// A mark was echoed this long after the app sent it (µs).
    fn mark_echoed(&mut self, _round_trip_us: u64) {}
}

/// Everything a session is told once, before `start`.
pub(crate) struct SessionConfig {
    /// The stream URL as the TwiML wrote it (for failures and the report).
    pub(crate) url: String,
    pub(crate) ids: StreamIds,
    /// `<Stream name>`.
    pub(crate) name: Option<String>,
    pub(crate) bidirectional: bool,
    pub(crate) tracks: Tracks,
    pub(crate) parameters: Vec<(String, String)>,
    /// The caller's audio, one 20 ms frame each; silence follows it.
    pub(crate) caller_audio: Arc<FrameSet>,
    /// A caller talking live: its slots replace `caller_audio`, its keys go out as `dtmf`
    /// on a bidirectional stream as they are pressed, and such a stream's playout is handed
    /// to it frame by frame.
    pub(crate) live: Option<Arc<crate::live::LiveCaller>>,
    /// Frames of the caller's audio already gone when this stream starts (its audio is
    /// anchored at the answer): stream frame k carries caller frame k + this.
    pub(crate) caller_offset: u64,
    /// The caller's speech turns (offsets into the caller's audio).
    pub(crate) turns: Vec<Turn>,
    /// Digits keyed on the stream, from its start.
    pub(crate) dtmf: Vec<(Duration, char)>,
    /// What Twilio plays to the caller, for forks carrying the outbound track.
    pub(crate) outbound: Option<Arc<OutboundAudio>>,
    /// Keep what was sent and heard.
    pub(crate) record: bool,
    /// The call's longest length: no stream is heard for longer.
    pub(crate) max_duration: Duration,
    pub(crate) no_audio_timeout: Option<Duration>,
    /// Injected faults (`--faults`).
    pub(crate) faults: Option<StreamFaults>,
    /// Frames are timed against a real clock: their lateness is recorded (not in virtual
    /// time, where every frame is on time by construction).
    pub(crate) real_time: bool,
    /// Frames to send at most (`load --stream`'s `--seconds`); `None`: until stopped.
    pub(crate) frames: Option<u64>,
    /// Keep this stream's own lateness record for its report (under `load`, lateness goes
    /// to the run's histograms instead, through [`Wire::frame_sent`]).
    pub(crate) histograms: bool,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// We sent `stop`; the driver closes (1000) and lets the app answer.
    Stopped,
    /// The app closed the socket.
    AppClosed(Option<u16>),
    /// The connection broke.
    Dropped,
    /// The app stopped reading: a write could not complete within [`WRITE_STALL`].
    Stalled,
    /// An injected fault ended the stream: a dropped connection (`None`) or a close frame.
    Injected(Option<u16>),
    /// The app broke the WebSocket protocol; dialtone fails the connection.
    Violation(WsViolation),
}

impl End {
    /// The close frame the driver sends for this end, if any.
    pub(crate) fn close_code(&self) -> Option<u16> {
        match self {
            End::Stopped => Some(1000),
            End::Injected(code) => *code,
            End::Violation(v) => Some(v.close_code()),
            End::AppClosed(_) | End::Dropped | End::Stalled => None,
        }
    }

    /// After its close frame, the driver waits (briefly) for the app's.
    pub(crate) fn awaits_close(&self) -> bool {
        matches!(self, End::Stopped | End::Injected(Some(_)))
    }
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not started yet.
    Idle,
    /// Frames going out.
    Streaming,
    /// The caller's time is over: every frame of it went out. The driver ends the call (and,
    /// in virtual time, first lets the app settle), then calls [`Session::stop`].
    HungUp,
    /// Over.
    Ended(End),
}

/// One stream's state machine.
pub(crate) struct Session {
    ids: StreamIds,
    name: Option<String>,
    url: String,
    bidirectional: bool,
    tracks: Tracks,
    parameters: Vec<(String, String)>,
    caller_audio: Arc<FrameSet>,
    caller_offset: u64,
    live: Option<Arc<crate::live::LiveCaller>>,
    /// Keys of the live caller already sent (or pressed before this stream).
    live_keys: usize,
    dtmf: Vec<(u64, char)>,
    next_dtmf: usize,
    outbound: Option<Arc<OutboundAudio>>,
    /// The outbound audio last seen (its generation) and the next frame of it.
    outbound_at: (u64, usize),
    frames_limit: Option<u64>,
    phase: Phase,
    /// Next frame.
    k: u64,
    seq: u64,
    chunk_in: u64,
    chunk_out: u64,
    frames_sent: u64,
    dtmf_sent: u64,
    real_time: bool,
    /// Every frame's lateness, when the stream keeps its own histograms. (Boxed, as are
    /// the faults: a load run's thousands of sessions have neither.)
    lateness: Option<Box<crate::Latencies>>,
    playout: Playout,
    turns: TurnTracker,
    /// Unix time (ms) of the start, to put turns on the wall clock apps report milestones in.
    wall0_unix_ms: f64,
    media_received: u64,
    first_audio_us: Option<u64>,
    /// Every mark counted, a sample kept (O(1) per mark).
    marks: MarkLog,
    echoes_shown: u64,
    clears: u64,
    invalid: u64,
    invalid_samples: Vec<InvalidMessage>,
    sent: Option<Vec<u8>>,
    failures: Vec<Failure>,
    warnings: Vec<(u16, String)>,
    no_audio_timeout: Option<Duration>,
    no_audio_checked: bool,
    /// The stream SID needs no JSON escaping (dialtone's never do): frames skip the scan.
    plain_sid: bool,
    faults: Option<Box<StreamFaults>>,
    fault_counts: FaultCounts,
    /// Messages of a frame swapped with the next one, sent after it.
    swapped: Vec<String>,
    /// Mark echoes seen so far (each one's fault hangs off its index).
    echoes: u64,
    /// Echoes held back by `mark_delay`: (due µs, echo).
    delayed_echoes: VecDeque<(u64, MarkEcho)>,
    /// The caller hangs up this long after the start, when this stream runs the hang-up.
    hangup_us: Option<u64>,
    /// After the caller's hang-up in virtual time: app audio still coming is counted here
    /// (media, bytes), not as replies.
    late: Option<(u64, u64)>,
    /// When the session ended, on its clock.
    ended_us: u64,
}

impl Session {
    pub(crate) fn new(cfg: SessionConfig) -> Self {
        let skipped = cfg.caller_offset * FRAME_US;
        let plain_sid = media::needs_no_escape(&cfg.ids.stream_sid);
        let live_keys = cfg.live.as_ref().map(|l| l.keys_pressed());
        Self {
            // The digits keyed before a stream joining mid-audio are gone, as its frames are.
            dtmf: cfg
                .dtmf
                .iter()
                .map(|(at, c)| (at.as_micros() as u64, *c))
                .filter(|(at, _)| *at >= skipped)
                .map(|(at, c)| (at - skipped, c))
                .collect(),
            ids: cfg.ids,
            name: cfg.name,
            url: cfg.url,
            bidirectional: cfg.bidirectional,
            tracks: cfg.tracks,
            parameters: cfg.parameters,
            caller_audio: cfg.caller_audio,
            caller_offset: cfg.caller_offset,
            live_keys: live_keys.unwrap_or(0),
            live: cfg.live,
            next_dtmf: 0,
            outbound: cfg.outbound,
            outbound_at: (0, 0),
            frames_limit: cfg.frames,
            phase: Phase::Idle,
            k: 0,
            seq: 0,
            chunk_in: 0,
            chunk_out: 0,
            frames_sent: 0,
            dtmf_sent: 0,
            real_time: cfg.real_time,
            lateness: cfg
                .histograms
                .then(|| Box::new(crate::Latencies::new(crate::report::new_lateness_histogram))),
            playout: Playout::new(cfg.record || live_keys.is_some())
                .record_until(u64::try_from(cfg.max_duration.as_micros()).unwrap_or(u64::MAX)),
            turns: TurnTracker::new(&cfg.turns),
            wall0_unix_ms: 0.0,
            media_received: 0,
            first_audio_us: None,
            marks: MarkLog::default(),
            echoes_shown: 0,
            clears: 0,
            invalid: 0,
            invalid_samples: Vec::new(),
            sent: cfg.record.then(Vec::new),
            failures: Vec::new(),
            warnings: Vec::new(),
            no_audio_timeout: cfg.no_audio_timeout,
            no_audio_checked: false,
            plain_sid,
            faults: cfg.faults.map(Box::new),
            fault_counts: FaultCounts::default(),
            swapped: Vec::new(),
            echoes: 0,
            delayed_echoes: VecDeque::new(),
            hangup_us: None,
            late: None,
            ended_us: 0,
        }
    }

    /// Where the session is.
    pub(crate) fn phase(&self) -> Phase {
        self.phase.clone()
    }

    /// The last `sequenceNumber` used (virtual time pings after each new one).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// `connected` and `start`: the stream's time starts now. `wall0_unix_ms` is the Unix
    /// time of this moment, for the turns' wall-clock times.
    pub(crate) fn start(&mut self, wall0_unix_ms: f64, wire: &mut impl Wire) {
        if self.phase != Phase::Idle {
            return;
        }
        wire.text(&media::connected());
        self.seq += 1;
        let tracks = match self.tracks {
            Tracks::Inbound => vec![Track::Inbound],
            Tracks::Outbound => vec![Track::Outbound],
            Tracks::Both => vec![Track::Inbound, Track::Outbound],
        };
        wire.text(&media::start(
            self.seq,
            &self.ids,
            &tracks,
            &self.parameters,
        ));
        self.wall0_unix_ms = wall0_unix_ms;
        self.phase = Phase::Streaming;
        wire.event(EventKind::StartSent {
            stream_sid: self.ids.stream_sid.clone(),
            tracks: tracks
                .iter()
                .map(|t| match t {
                    Track::Inbound => "inbound".to_string(),
                    Track::Outbound => "outbound".to_string(),
                })
                .collect(),
        });
    }

    /// This stream runs the caller's hang-up: it falls `after` the start (the caller's time
    /// left, less the audio this stream joined past).
    pub(crate) fn set_hangup(&mut self, after: Duration) {
        let skipped = self.caller_offset * FRAME_US;
        self.hangup_us = Some((after.as_micros() as u64).saturating_sub(skipped));
    }

    /// The caller's hang-up time still ahead at `now_us`, when this stream runs it (handed
    /// to the next stream in virtual time when this one ends first).
    pub(crate) fn hangup_left(&self, now_us: u64) -> Option<Duration> {
        self.hangup_us
            .map(|h| Duration::from_micros(h.saturating_sub(now_us)))
    }

    /// Forgets the hang-up (it was handed back or fired).
    pub(crate) fn clear_hangup(&mut self) {
        self.hangup_us = None;
    }

    /// The caller's planned hang-up, µs after the start, when this stream runs it.
    pub(crate) fn hangup_at(&self) -> Option<u64> {
        self.hangup_us
    }

    /// When the session next needs [`Session::handle_timeout`], on its clock.
    pub(crate) fn poll_timeout(&mut self) -> Option<u64> {
        if self.phase != Phase::Streaming {
            return None;
        }
        let mut next = (!self.past_end(self.k)).then(|| self.frame_at(self.k));
        let mut at = |t: Option<u64>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        at(self.hangup_us);
        at(self.injected_end_at());
        at(self.delayed_echoes.front().map(|(us, _)| *us));
        at(self.playout.next_deadline_us());
        at(self.dtmf.get(self.next_dtmf).map(|(us, _)| *us));
        next
    }

    /// Time has come to `now_us`: frames and digits due go out in schedule order (late ones
    /// included), then an injected end or the caller's hang-up, then mark echoes due.
    pub(crate) fn handle_timeout(&mut self, now_us: u64, wire: &mut impl Wire) {
        if self.phase != Phase::Streaming {
            return;
        }
        loop {
            let frame = (!self.past_end(self.k))
                .then(|| self.frame_at(self.k))
                .filter(|at| *at <= now_us);
            let digit = self
                .dtmf
                .get(self.next_dtmf)
                .copied()
                .filter(|(at, _)| *at <= now_us && frame.is_none_or(|f| *at <= f));
            if let Some((_, digit)) = digit {
                self.next_dtmf += 1;
                self.send_dtmf(wire, digit);
            } else if frame.is_some() {
                self.k += 1;
                self.send_scheduled_frame(wire, now_us, self.k - 1);
            } else {
                break;
            }
        }
        if let Some(at) = self.injected_end_at()
            && now_us >= at
        {
            self.inject_end(wire, now_us);
            return;
        }
        if self.hangup_us.is_some_and(|h| now_us >= h) {
            self.hang_up(wire, now_us);
            return;
        }
        for echo in self.playout.due_marks(now_us) {
            self.release_echo(wire, echo, now_us);
        }
        while self
            .delayed_echoes
            .front()
            .is_some_and(|(due, _)| *due <= now_us)
        {
            let (_, echo) = self.delayed_echoes.pop_front().expect("checked");
            self.echo_mark(wire, echo, now_us);
        }
        if self.frames_limit.is_some_and(|n| self.k >= n) && self.hangup_us.is_none() {
            // Every frame asked for went out: the caller is done.
            self.stop(now_us, wire);
        }
    }

    /// The call ended or `<Stop>` came: `stop`, then the driver closes. When the caller's
    /// hang-up was due (the call's backstop beat a driver running late), it is still the
    /// caller's hang-up, with all of its frames: returns true then, and the driver ends the
    /// call as the caller.
    pub(crate) fn stop(&mut self, now_us: u64, wire: &mut impl Wire) -> bool {
        let hung_up = match self.phase {
            Phase::Streaming if self.hangup_us.is_some_and(|h| now_us >= h) => {
                self.hang_up(wire, now_us);
                true
            }
            Phase::HungUp => true,
            Phase::Streaming => false,
            Phase::Idle => {
                self.end(End::Stopped, now_us);
                return false;
            }
            Phase::Ended(_) => return false,
        };
        for text in std::mem::take(&mut self.swapped) {
            self.send_wire(wire, &text);
        }
        self.seq += 1;
        wire.text(&media::stop(self.seq, &self.ids));
        self.end(End::Stopped, now_us);
        hung_up
    }

    /// The connection ended on the driver's side (the app closed, the socket broke or
    /// stalled, or the app broke the protocol).
    pub(crate) fn on_end(&mut self, end: End, now_us: u64) {
        if !matches!(self.phase, Phase::Ended(_)) {
            self.end(end, now_us);
        }
    }

    fn end(&mut self, end: End, now_us: u64) {
        self.phase = Phase::Ended(end);
        self.ended_us = now_us;
    }

    /// The caller hangs up: every frame of its time goes out (however late faults made them).
    fn hang_up(&mut self, wire: &mut impl Wire, now_us: u64) {
        let Some(after) = self.hangup_us else { return };
        while self.k * FRAME_US < after {
            self.k += 1;
            self.send_scheduled_frame(wire, now_us, self.k - 1);
        }
        self.phase = Phase::HungUp;
    }

    /// When frame k goes out: its slot, or its faulty send time.
    fn frame_at(&mut self, k: u64) -> u64 {
        match &mut self.faults {
            Some(f) => f.send_offset_us(k),
            None => k * FRAME_US,
        }
    }

    /// Frame k never goes out in the pacing loop: past the frames asked for, at or past the
    /// caller's hang-up (which flushes the frames before it), or at or past an injected end.
    /// Decided on the schedule, so the frames sent never depend on how late the driver woke.
    fn past_end(&mut self, k: u64) -> bool {
        if self.frames_limit.is_some_and(|n| k >= n)
            || self.hangup_us.is_some_and(|h| k * FRAME_US >= h)
        {
            return true;
        }
        match self.injected_end_at() {
            Some(at) => self.frame_at(k) >= at,
            None => false,
        }
    }

    /// Sends frame k and books it: turns, lateness against its (faulty) schedule, delay.
    fn send_scheduled_frame(&mut self, wire: &mut impl Wire, now_us: u64, k: u64) {
        self.send_frame(wire, k);
        let scheduled = self.frame_at(k);
        if self.faults.is_some() && scheduled > k * FRAME_US {
            self.fault_counts.delayed += 1;
        }
        let playing = self.playout.busy_until_us() > now_us;
        // Ground truth is in the caller audio's frames, which this stream may join late.
        self.turns
            .on_frame_sent(k + self.caller_offset, now_us, playing);
        if self.real_time {
            let late = now_us.saturating_sub(scheduled);
            wire.frame_sent(late);
            if let Some(h) = &mut self.lateness {
                h.record(late.max(1));
            }
        }
    }

    fn send_dtmf(&mut self, wire: &mut impl Wire, digit: char) {
        self.seq += 1;
        wire.text(&media::dtmf(self.seq, &self.ids.stream_sid, digit));
        self.dtmf_sent += 1;
        wire.event(EventKind::Dtmf {
            digits: digit.to_string(),
        });
    }

    /// Sends frame k on every track the stream carries.
    fn send_frame(&mut self, wire: &mut impl Wire, k: u64) {
        let ts = k * 20;
        if let Some(live) = self.live.clone().filter(|_| self.bidirectional) {
            // The 20 ms that just played (media arriving mid-frame starts there, and a
            // `clear` until now applies): 20 ms behind, and exact.
            if k > 0 {
                live.push_heard(self.playout.heard_frame((k - 1) * FRAME_US));
            }
            for digit in live.keys_after(&mut self.live_keys) {
                self.send_dtmf(wire, digit);
            }
        }
        let fate = self.faults.as_ref().map(|f| f.frame(k)).unwrap_or_default();
        if fate.paused {
            self.fault_counts.paused += 1;
            if let Some(sent) = &mut self.sent {
                // The caller spoke; the app never got it.
                sent.extend_from_slice(&[0xFF; 160]);
            }
            return;
        }
        if fate.seq_skip > 0 {
            self.seq += fate.seq_skip;
            self.fault_counts.seq_gaps += 1;
        }
        if matches!(self.tracks, Tracks::Inbound | Tracks::Both) {
            // Fields borrowed apart (no clone of the shared audio: its count is one cache
            // line every stream of every thread would write per frame).
            let j = (k + self.caller_offset) as usize;
            let audio = &self.caller_audio;
            let live = self.live.as_ref().map(|l| l.frame(j as u64));
            let live_b64 = live.map(|f| base64::engine::general_purpose::STANDARD.encode(f));
            let payload = match &live_b64 {
                Some(b) => b.as_str(),
                None if j < audio.len() => audio.b64(j),
                None => silence_b64(),
            };
            if let Some(sent) = &mut self.sent {
                match &live {
                    Some(f) => sent.extend_from_slice(f),
                    None if j < audio.len() => sent.extend_from_slice(audio.frame(j)),
                    None => sent.extend_from_slice(&[0xFF; 160]),
                }
            }
            self.chunk_in += 1;
            self.seq += 1;
            let mut buf = FRAME_TEXT.take();
            self.write_media(&mut buf, Track::Inbound, self.chunk_in, ts, payload);
            self.send_media(wire, &buf, k, fate);
            FRAME_TEXT.set(buf);
        }
        if matches!(self.tracks, Tracks::Outbound | Tracks::Both) {
            let playing = self.next_outbound_frame();
            let payload = playing.as_deref().unwrap_or(silence_b64());
            self.chunk_out += 1;
            self.seq += 1;
            let mut buf = FRAME_TEXT.take();
            self.write_media(&mut buf, Track::Outbound, self.chunk_out, ts, payload);
            self.send_media(wire, &buf, k, fate);
            FRAME_TEXT.set(buf);
        }
        if !fate.swapped && !self.swapped.is_empty() {
            // The frame held back by a swap goes after this one.
            for text in std::mem::take(&mut self.swapped) {
                self.send_wire(wire, &text);
            }
        }
    }

    /// The outbound track's next frame: what Twilio plays, counted in frames from when it
    /// began (no clock read: a `--fast` run's outbound track is the same every time).
    fn next_outbound_frame(&mut self) -> Option<String> {
        let (generation, frames) = self.outbound.as_ref()?.current()?;
        if generation != self.outbound_at.0 {
            self.outbound_at = (generation, 0);
        }
        let i = self.outbound_at.1;
        self.outbound_at.1 += 1;
        (!frames.is_empty()).then(|| frames.b64(i % frames.len()).to_string())
    }

    /// This stream's next `media` message into `buf`, replacing what it held: copied
    /// straight when the SID is plain (payloads are base64).
    fn write_media(&self, buf: &mut String, track: Track, chunk: u64, ts: u64, payload: &str) {
        buf.clear();
        let (seq, sid) = (self.seq, self.ids.stream_sid.as_str());
        if self.plain_sid {
            media::write_media_plain(buf, seq, track, chunk, ts, payload, sid);
        } else {
            media::write_media(buf, seq, track, chunk, ts, payload, sid);
        }
    }

    /// Sends frame k's `media` message, as its fate says.
    fn send_media(&mut self, wire: &mut impl Wire, text: &str, k: u64, fate: FrameFate) {
        if self.faults.is_some() && fate != FrameFate::default() {
            return self.send_faulty(wire, text, fate, k);
        }
        wire.text(text);
        self.frames_sent += 1;
    }
}

thread_local! {
    /// Where a thread formats each `media` message. One buffer per thread, not per stream:
    /// a thread serving thousands of streams would otherwise hold thousands of 512-byte
    /// buffers, each only in use for the instant of one frame.
    static FRAME_TEXT: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}
