//! One paced worker thread: a mio event loop driving many Media Streams connections from a
//! 20-slot, 1 ms timer wheel. Each stream's frames fall on one slot (its start is aligned to a
//! whole ms), so a tick touches only the streams due in that ms; frames are formatted into a
//! reused buffer, masked and written with one `write` each; nothing is allocated per frame.
//! Lateness is taken against the absolute schedule `t0 + 20 ms·k` and recorded into the
//! worker's own HDR histogram, sent to the collector once a second.

use std::io::{ErrorKind, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use dialtone_call::Outcome;
use dialtone_call::playout::Playout;
use dialtone_protocol::media::{self, StreamIds, Track};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

mod inbound;

use super::Shared;
use super::ws;
use crate::collector::WorkerInterval;
use crate::metrics::Metric;
use crate::plan::mix;
use inbound::{on_readable, send_echoes};

/// A stream whose upgrade has not completed by then fails (`stream_connect`).
const CONNECT_TIMEOUT_US: u64 = 10_000_000;
/// After `stop` and our close frame, the app gets this long to close back.
const CLOSE_TIMEOUT_US: u64 = 5_000_000;
/// A socket that has not accepted our bytes for this long is abandoned: the app stopped
/// reading (the engine's 5 s write bound).
const STALL_US: u64 = 5_000_000;
/// Kernel send buffer of a stream's socket, as the full-call engine sets its own
/// (`STREAM_SNDBUF`): Linux grows loopback send buffers to ~4 MiB, which at ~16 kB/s of media
/// hid an app that stopped reading for minutes (the cross-path test found `never_read`
/// streams ending `ok` here and `stream stalled` in full calls). The kernel doubles it.
const STREAM_SNDBUF: usize = 16 * 1024;
/// Bytes buffered for a full socket before the stream is abandoned.
const MAX_PENDING: usize = 1 << 20;
/// Milliseconds in one frame period: the wheel's size.
const SLOTS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Connecting,
    Upgrading,
    Streaming,
    Closing,
    Done,
}

struct Conn {
    sock: Option<TcpStream>,
    state: State,
    index: u64,
    ids: StreamIds,
    /// Next media frame (0-based).
    k: u32,
    /// Next `sequenceNumber` (every message after `connected` counts).
    seq: u64,
    /// The ms (since the epoch) frame 0 is due.
    t0_ms: u64,
    connect_us: u64,
    start_us: u64,
    deadline_us: u64,
    rx: Vec<u8>,
    pending: Vec<u8>,
    pending_since_us: u64,
    rng: u32,
    playout: Option<Box<Playout>>,
    /// Ended by a stop (Ctrl-C) after the drain, not by its own end.
    interrupted: bool,
}

/// Scratch buffers and counters shared by every stream of the worker.
struct Out {
    frame: Vec<u8>,
    stats: WorkerInterval,
}

impl Conn {
    fn mask(&mut self) -> [u8; 4] {
        // xorshift32: masks need not be secret here, only not constant.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x.to_ne_bytes()
    }

    fn now_rel(&self, now_us: u64) -> u64 {
        now_us.saturating_sub(self.start_us)
    }
}

pub(super) fn run(
    shared: &Shared,
    starts: Vec<(u64, u64)>,
    tx: SyncSender<WorkerInterval>,
) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = starts
        .iter()
        .map(|&(index, _)| Conn {
            sock: None,
            state: State::Waiting,
            index,
            ids: StreamIds {
                account_sid: shared.account_sid.clone(),
                call_sid: crate::plan::call_sid(shared.seed, index),
                stream_sid: format!("MZ{index:032x}"),
            },
            k: 0,
            seq: 1,
            t0_ms: 0,
            connect_us: 0,
            start_us: 0,
            deadline_us: 0,
            rx: Vec::new(),
            pending: Vec::new(),
            pending_since_us: 0,
            rng: (mix(shared.seed, index, 9) as u32) | 1,
            playout: None,
            interrupted: false,
        })
        .collect();
    let mut wheel: Vec<Vec<u32>> = vec![Vec::new(); SLOTS as usize];
    let mut out = Out {
        frame: Vec::with_capacity(1024),
        stats: WorkerInterval::default(),
    };
    let mut rbuf = vec![0u8; 64 << 10];
    let mut next_start = 0usize;
    let mut live = conns.len();
    let mut tick_ms = shared.now_us() / 1000;
    let mut next_report_us = 1_000_000u64;
    let mut next_sweep_us = 0u64;
    let mut stopping = false;
    // When streams still running after a stop are cut (the drain is over).
    let mut cut_at_us = u64::MAX;
    while live > 0 {
        let now = shared.now_us();
        if !stopping && shared.stop.load(Ordering::Relaxed) {
            // No new streams; those under way may finish within the drain, as calls do.
            stopping = true;
            cut_at_us = now.saturating_add(shared.drain_us);
            for c in conns.iter_mut() {
                match c.state {
                    State::Waiting => c.state = State::Done,
                    State::Connecting | State::Upgrading => {
                        fail(c, &mut out, shared, Outcome::Interrupted)
                    }
                    _ => {}
                }
            }
            live = conns.iter().filter(|c| c.state != State::Done).count();
        }
        if now >= cut_at_us {
            cut_at_us = u64::MAX;
            for c in conns.iter_mut().filter(|c| c.state == State::Streaming) {
                c.interrupted = true;
                finish_stream(c, &mut out, shared, now);
                if c.state == State::Done {
                    live -= 1;
                }
            }
        }
        while !stopping && next_start < starts.len() && starts[next_start].1 <= now {
            let c = &mut conns[next_start];
            connect(c, next_start, &poll, shared, &mut out, now);
            if c.state == State::Done {
                live -= 1;
            }
            next_start += 1;
        }
        let now_ms = shared.now_us() / 1000;
        while tick_ms <= now_ms {
            live -= tick(tick_ms, &mut wheel, &mut conns, &mut out, shared);
            tick_ms += 1;
        }
        if now >= next_sweep_us {
            next_sweep_us = now + 100_000;
            live -= sweep(&mut conns, &mut out, shared, now);
        }
        if now >= next_report_us {
            next_report_us = (now / 1_000_000 + 1) * 1_000_000;
            report(&mut out.stats, &tx, false);
        }
        if live == 0 {
            break;
        }
        let mut wake = (tick_ms * 1000)
            .min(next_sweep_us)
            .min(next_report_us)
            .min(cut_at_us);
        if !stopping && next_start < starts.len() {
            wake = wake.min(starts[next_start].1);
        }
        let wait = wake.saturating_sub(shared.now_us());
        poll.poll(&mut events, Some(Duration::from_micros(wait)))?;
        for ev in events.iter() {
            let ci = ev.token().0;
            let Some(c) = conns.get_mut(ci) else { continue };
            let before = c.state;
            if ev.is_writable() {
                on_writable(c, &mut out, shared);
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                on_readable(c, &mut out, shared, &mut rbuf, &mut wheel, ci);
            }
            if before != State::Done && c.state == State::Done {
                live -= 1;
            }
        }
    }
    report(&mut out.stats, &tx, true);
    Ok(())
}

/// Sends the interval to the collector; a full channel keeps it accumulating (the hot path
/// never blocks on reporting), except the last one, which must arrive.
fn report(stats: &mut WorkerInterval, tx: &SyncSender<WorkerInterval>, last: bool) {
    let interval = std::mem::take(stats);
    if last {
        let _ = tx.send(interval);
        return;
    }
    match tx.try_send(interval) {
        Ok(()) => {}
        Err(TrySendError::Full(back)) => *stats = back,
        Err(TrySendError::Disconnected(_)) => {}
    }
}

fn connect(c: &mut Conn, ci: usize, poll: &Poll, shared: &Shared, out: &mut Out, now: u64) {
    out.stats.started += 1;
    out.stats.expected += u64::from(shared.frames);
    shared.active.fetch_add(1, Ordering::Relaxed);
    c.connect_us = now;
    c.deadline_us = now + CONNECT_TIMEOUT_US;
    // Counted as started above, so a failure from here on must be recorded as one (an
    // immediate EMFILE must not vanish from the counts).
    c.state = State::Connecting;
    match TcpStream::connect(shared.addr) {
        Ok(mut s) => {
            let _ = s.set_nodelay(true);
            // Set before any byte is written, so autotuning never grows it.
            let _ = socket2::SockRef::from(&s).set_send_buffer_size(STREAM_SNDBUF);
            if poll
                .registry()
                .register(&mut s, Token(ci), Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                return fail(c, out, shared, Outcome::StreamConnect);
            }
            c.sock = Some(s);
            c.state = State::Connecting;
        }
        Err(_) => fail(c, out, shared, Outcome::StreamConnect),
    }
}

fn nonce(shared: &Shared, index: u64) -> [u8; 16] {
    let mut n = [0u8; 16];
    n[..8].copy_from_slice(&mix(shared.seed, index, 10).to_le_bytes());
    n[8..].copy_from_slice(&mix(shared.seed, index, 11).to_le_bytes());
    n
}

fn on_writable(c: &mut Conn, out: &mut Out, shared: &Shared) {
    match c.state {
        State::Connecting => {
            let Some(sock) = c.sock.as_ref() else { return };
            if matches!(sock.take_error(), Ok(Some(_)) | Err(_)) || sock.peer_addr().is_err() {
                return fail(c, out, shared, Outcome::StreamConnect);
            }
            let key = ws::key(nonce(shared, c.index));
            let req = ws::upgrade_request(&shared.path, &shared.head, &key, &shared.signature);
            c.state = State::Upgrading;
            write_bytes(c, out, shared, &req, false);
        }
        State::Upgrading | State::Streaming | State::Closing => flush(c, out, shared),
        State::Waiting | State::Done => {}
    }
}

/// The upgrade succeeded: `connected`, `start`, and the stream joins the wheel.
fn started(c: &mut Conn, out: &mut Out, shared: &Shared, wheel: &mut [Vec<u32>], ci: usize) {
    let now = shared.now_us();
    out.stats.rec.record(Metric::WsConnect, now - c.connect_us);
    send_text(c, out, shared, &media::connected());
    let start = media::start(c.seq, &c.ids, &[Track::Inbound], &[]);
    c.seq += 1;
    send_text(c, out, shared, &start);
    if c.state == State::Done {
        return;
    }
    c.start_us = now;
    // Frame 0 is due at the next whole ms, so every frame of this stream falls on one slot.
    c.t0_ms = now / 1000 + 1;
    c.state = State::Streaming;
    wheel[(c.t0_ms % SLOTS) as usize].push(ci as u32);
}

/// Processes wheel slot `ms`: every stream due then sends its frame (and any it owes).
/// Returns how many streams ended.
fn tick(
    ms: u64,
    wheel: &mut [Vec<u32>],
    conns: &mut [Conn],
    out: &mut Out,
    shared: &Shared,
) -> usize {
    let slot = (ms % SLOTS) as usize;
    let mut ids = std::mem::take(&mut wheel[slot]);
    let mut ended = 0;
    ids.retain(|&ci| {
        let c = &mut conns[ci as usize];
        if c.state != State::Streaming {
            return false;
        }
        if c.t0_ms > ms {
            return true;
        }
        while c.k < shared.frames && c.t0_ms + SLOTS * u64::from(c.k) <= ms {
            send_media(c, out, shared);
            if c.state != State::Streaming {
                ended += 1;
                return false;
            }
        }
        if c.playout.is_some() {
            let rel = c.now_rel(shared.now_us());
            let p = c.playout.as_mut().expect("checked");
            if p.next_deadline_us().is_some_and(|d| d <= rel) {
                let echoes = p.due_marks(rel);
                send_echoes(c, out, shared, echoes, rel);
            }
        }
        if c.k >= shared.frames && c.state == State::Streaming {
            finish_stream(c, out, shared, shared.now_us());
        }
        if c.state == State::Done {
            ended += 1;
        }
        c.state == State::Streaming
    });
    wheel[slot] = ids;
    ended
}

/// The hot path: one media frame formatted straight after room for its header in the
/// reused buffer, sealed (header + mask) in place, one write. No allocation, one copy of
/// the payload.
#[inline]
fn send_media(c: &mut Conn, out: &mut Out, shared: &Shared) {
    let k = c.k;
    let due_us = (c.t0_ms + SLOTS * u64::from(k)) * 1000;
    let payload = if (k as usize) < shared.audio.len() {
        shared.audio.b64(k as usize)
    } else {
        dialtone_audio::frames::silence_b64()
    };
    let mut bytes = std::mem::take(&mut out.frame);
    bytes.clear();
    // Room for the frame header, filled in by `seal_medium_text`.
    bytes.extend_from_slice(&[0; ws::MEDIUM_HEADER]);
    super::media_frame::push_inbound_media(
        &mut bytes,
        c.seq,
        u64::from(k) + 1,
        u64::from(k) * 20,
        payload,
        &c.ids.stream_sid,
    );
    c.seq += 1;
    c.k += 1;
    let mask = c.mask();
    ws::seal_medium_text(&mut bytes, mask);
    let now = shared.now_us();
    out.stats
        .rec
        .record(Metric::FrameLateness, now.saturating_sub(due_us));
    out.stats.frames += 1;
    write_bytes(c, out, shared, &bytes, true);
    out.frame = bytes;
}

fn send_text(c: &mut Conn, out: &mut Out, shared: &Shared, text: &str) {
    let mask = c.mask();
    out.frame.clear();
    ws::push_frame(&mut out.frame, ws::OP_TEXT, text.as_bytes(), mask);
    let bytes = std::mem::take(&mut out.frame);
    write_bytes(c, out, shared, &bytes, false);
    out.frame = bytes;
}

/// Writes now, or queues behind bytes a full socket left (counted as backpressure).
fn write_bytes(c: &mut Conn, out: &mut Out, shared: &Shared, bytes: &[u8], media: bool) {
    let Some(sock) = c.sock.as_mut() else { return };
    if !c.pending.is_empty() {
        if media {
            out.stats.backpressured += 1;
        }
        c.pending.extend_from_slice(bytes);
        if c.pending.len() > MAX_PENDING {
            fail(c, out, shared, Outcome::StreamStalled);
        }
        return;
    }
    let mut at = 0;
    while at < bytes.len() {
        match sock.write(&bytes[at..]) {
            Ok(0) => return fail(c, out, shared, Outcome::StreamDropped),
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return fail(c, out, shared, Outcome::StreamDropped),
        }
    }
    if at < bytes.len() {
        if media {
            out.stats.backpressured += 1;
        }
        c.pending.extend_from_slice(&bytes[at..]);
        c.pending_since_us = shared.now_us();
    }
}

fn flush(c: &mut Conn, out: &mut Out, shared: &Shared) {
    let Some(sock) = c.sock.as_mut() else { return };
    let mut at = 0;
    while at < c.pending.len() {
        match sock.write(&c.pending[at..]) {
            Ok(0) => return fail(c, out, shared, Outcome::StreamDropped),
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return fail(c, out, shared, Outcome::StreamDropped),
        }
    }
    c.pending.drain(..at);
    if at > 0 {
        c.pending_since_us = shared.now_us();
    }
    if c.pending.is_empty() && c.pending.capacity() > 64 << 10 {
        c.pending = Vec::new();
    }
}

/// All frames sent (or a stop requested): `stop`, then our close frame; the app closes back.
fn finish_stream(c: &mut Conn, out: &mut Out, shared: &Shared, now: u64) {
    let stop = media::stop(c.seq, &c.ids);
    c.seq += 1;
    send_text(c, out, shared, &stop);
    if c.state == State::Done {
        return;
    }
    send_close(c, out, shared);
    if c.state != State::Done {
        c.state = State::Closing;
        c.deadline_us = now + CLOSE_TIMEOUT_US;
    }
}

/// Writes our (masked) close frame through the reused frame buffer.
fn send_close(c: &mut Conn, out: &mut Out, shared: &Shared) {
    send_close_code(c, out, shared, 1000);
}

/// A close frame with `code` (1009, 1007… when dialtone fails the connection).
fn send_close_code(c: &mut Conn, out: &mut Out, shared: &Shared, code: u16) {
    let mask = c.mask();
    out.frame.clear();
    ws::push_close(&mut out.frame, code, mask);
    let bytes = std::mem::take(&mut out.frame);
    write_bytes(c, out, shared, &bytes, false);
    out.frame = bytes;
}

/// Timeouts: upgrades that never finish, closes never answered, sockets that stopped
/// draining. Returns how many streams ended.
fn sweep(conns: &mut [Conn], out: &mut Out, shared: &Shared, now: u64) -> usize {
    let mut ended = 0;
    for c in conns.iter_mut() {
        let before = c.state;
        match c.state {
            State::Connecting | State::Upgrading if now > c.deadline_us => {
                fail(c, out, shared, Outcome::StreamConnect)
            }
            State::Closing if now > c.deadline_us => done(c, out, shared, None),
            State::Streaming | State::Closing
                if !c.pending.is_empty() && now.saturating_sub(c.pending_since_us) > STALL_US =>
            {
                fail(c, out, shared, Outcome::StreamStalled)
            }
            _ => {}
        }
        if before != State::Done && c.state == State::Done {
            ended += 1;
        }
    }
    ended
}

fn fail(c: &mut Conn, out: &mut Out, shared: &Shared, class: Outcome) {
    done(c, out, shared, Some(class));
}

/// The stream is over: `None` is a clean end.
fn done(c: &mut Conn, out: &mut Out, shared: &Shared, class: Option<Outcome>) {
    if c.state == State::Done {
        return;
    }
    let was_started = c.state != State::Waiting;
    c.state = State::Done;
    c.sock = None;
    c.rx = Vec::new();
    c.pending = Vec::new();
    c.playout = None;
    if was_started {
        shared.active.fetch_sub(1, Ordering::Relaxed);
        out.stats.finished += 1;
        let class = match class {
            Some(class) => class,
            None if c.interrupted => Outcome::Interrupted,
            None => Outcome::Ok,
        };
        *out.stats.outcomes.entry(class).or_default() += 1;
        out.stats.calls.push((c.index, class));
    }
}
