//! One plane worker: a mio event loop carrying many streams. Each stream's session says when
//! it next needs the time (a wheel of deadlines, on whole milliseconds so a wake-up serves
//! every stream due in that ms); what a session sends is framed, masked and written with one
//! `write` per wake-up of that stream. Nothing is allocated per frame.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tokio::time::Instant;

use super::ws;
mod read;
mod wire;
mod write;

use super::wheel::Wheel;
use super::{Job, Observer, Target};
use crate::report::{EventKind, Failure};
use crate::stream::session::{End, Phase, Session, SessionConfig, WRITE_STALL, Wire};
use std::sync::Arc;
pub(crate) use wire::NoWire;
use wire::{MioWire, next_mask};

/// The token the waker wakes the loop with (new jobs, stop requests).
pub(super) const WAKE: Token = Token(usize::MAX);
/// An upgrade not answered within this fails the stream.
const CONNECT_TIMEOUT_US: u64 = 10_000_000;
/// After our close frame, the app gets this long to close back.
const CLOSE_TIMEOUT_US: u64 = 1_000_000;
/// Bytes held for a full socket before the stream counts as stalled: room for the largest
/// burst a session sends at once (a `clear` echoing every pending mark: at most 10,000 marks
/// and 1 MiB of names), so only an app that stopped reading reaches it.
const MAX_PENDING: usize = 4 << 20;
/// Past this many bytes waiting for the socket, the app's messages are not read on: what
/// they would make us send (mark echoes) waits, as a blocking write would make it wait, and
/// the app's own writes back up into its socket.
const READ_PAUSE: usize = 64 << 10;
/// The kernel send buffer of a stream's socket (see `STREAM_SNDBUF`): an app that stopped
/// reading shows as a stall within seconds, not minutes.
const SNDBUF: usize = crate::stream::STREAM_SNDBUF as usize;
/// An emptied read or write buffer larger than this is freed.
const KEEP_BUFFER: usize = 4 << 10;
/// One read from a socket, at most (the worker's one buffer).
const READ_BUF: usize = 64 << 10;
/// Timeouts and stop requests are looked at this often.
const SWEEP_US: u64 = 100_000;

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
    target: Arc<Target>,
    key: String,
    /// The session to start once the upgrade is done (boxed: a running stream has none).
    cfg: Option<Box<SessionConfig>>,
    caller_epoch: Option<Instant>,
    session: Option<Session>,
    observer: Option<Box<dyn Observer>>,
    /// The observer wants each message (`--capture`).
    wants_text: bool,
    frame_lateness: Option<crate::config::FrameLateness>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    stop_seen: bool,
    connect_started: Option<Instant>,
    connect_elapsed: Option<Duration>,
    /// The session's time 0, µs on the worker's clock (a whole ms).
    t0_us: u64,
    started: Option<Instant>,
    /// A timeout (upgrade, close) falls then, µs on the worker's clock.
    deadline_us: u64,
    rx: Vec<u8>,
    pending: Vec<u8>,
    pending_since_us: u64,
    rng: u32,
    /// Reading stopped until the socket takes what waits ([`READ_PAUSE`]).
    read_paused: bool,
    /// A failure found before the session started (connect, upgrade).
    failure: Option<Failure>,
}

struct Loop {
    poll: Poll,
    conns: Vec<Conn>,
    /// Slots of finished streams, reused for new ones.
    free: Vec<usize>,
    timers: Wheel,
    /// Scratch for the streams due in one look at the wheel.
    due: Vec<usize>,
    starts: BinaryHeap<Reverse<(u64, usize)>>,
    epoch: Instant,
    out: Vec<u8>,
    rbuf: Vec<u8>,
    live: usize,
    /// The clock as last read ([`Loop::clock`]): one read per stream served, not per write.
    now: u64,
}

impl Loop {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Reads the clock and keeps it for the writes that follow.
    fn clock(&mut self) -> u64 {
        self.now = self.now_us();
        self.now
    }
}

pub(super) fn run(poll: Poll, jobs: Receiver<Job>) {
    let mut l = Loop {
        poll,
        conns: Vec::new(),
        free: Vec::new(),
        timers: Wheel::new(0),
        due: Vec::new(),
        starts: BinaryHeap::new(),
        epoch: Instant::now(),
        out: Vec::with_capacity(4096),
        rbuf: vec![0u8; READ_BUF],
        live: 0,
        now: 0,
    };
    let mut events = Events::with_capacity(1024);
    let mut open = true;
    let mut next_sweep = 0u64;
    loop {
        if open {
            loop {
                match jobs.try_recv() {
                    Ok(job) => l.add(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
        }
        if !open && l.live == 0 {
            return;
        }
        let now = l.clock();
        while let Some(&Reverse((at, ci))) = l.starts.peek() {
            if at > now {
                break;
            }
            l.starts.pop();
            l.connect(ci);
        }
        let mut due = std::mem::take(&mut l.due);
        l.timers.advance(now / 1000, &mut due);
        for ci in due.drain(..) {
            l.on_timer(ci);
        }
        l.due = due;
        if now >= next_sweep {
            next_sweep = now + SWEEP_US;
            l.sweep(now);
        }
        let mut wake = next_sweep;
        if let Some(ms) = l.timers.next_ms() {
            wake = wake.min(ms * 1000);
        }
        if let Some(&Reverse((at, _))) = l.starts.peek() {
            wake = wake.min(at);
        }
        let wait = Duration::from_micros(wake.saturating_sub(l.now_us()));
        if l.poll.poll(&mut events, Some(wait)).is_err() {
            continue;
        }
        for ev in events.iter() {
            if ev.token() == WAKE {
                l.check_stops();
                continue;
            }
            let ci = ev.token().0;
            if ci >= l.conns.len() || l.conns[ci].state == State::Done {
                continue;
            }
            if ev.is_writable() {
                l.on_writable(ci);
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                l.on_readable(ci);
            }
        }
    }
}

impl Loop {
    fn add(&mut self, job: Job) {
        let now = self.now_us();
        let connect_at_us = job.connect_at.map_or(now, |at| {
            now + at.saturating_duration_since(Instant::now()).as_micros() as u64
        });
        let key_seed = job.seed;
        let conn = Conn {
            sock: None,
            state: State::Waiting,
            target: job.target,
            key: ws::key(nonce(key_seed)),
            cfg: Some(Box::new(job.session)),
            caller_epoch: job.caller_epoch,
            session: None,
            wants_text: job.observer.wants_text(),
            observer: Some(job.observer),
            frame_lateness: job.frame_lateness,
            stop: job.stop,
            stop_seen: false,
            connect_started: None,
            connect_elapsed: None,
            t0_us: 0,
            started: None,
            deadline_us: 0,
            rx: Vec::new(),
            pending: Vec::new(),
            pending_since_us: 0,
            rng: (key_seed as u32 ^ (key_seed >> 32) as u32) | 1,
            read_paused: false,
            failure: None,
        };
        let ci = match self.free.pop() {
            Some(ci) => {
                self.conns[ci] = conn;
                ci
            }
            None => {
                self.conns.push(conn);
                self.conns.len() - 1
            }
        };
        self.live += 1;
        self.starts.push(Reverse((connect_at_us, ci)));
    }

    fn connect(&mut self, ci: usize) {
        let now = self.now_us();
        let c = &mut self.conns[ci];
        if c.state != State::Waiting {
            return;
        }
        if c.stop.load(Ordering::Relaxed) || c.observer.as_mut().is_some_and(|o| !o.should_start())
        {
            return self.done(ci);
        }
        c.state = State::Connecting;
        c.connect_started = Some(Instant::now());
        if let Some(o) = c.observer.as_mut() {
            o.connecting();
        }
        c.deadline_us = now + CONNECT_TIMEOUT_US;
        match open_socket(c.target.addr) {
            Ok(mut s) => {
                if self
                    .poll
                    .registry()
                    .register(&mut s, Token(ci), Interest::READABLE | Interest::WRITABLE)
                    .is_err()
                {
                    return self.fail_connect(ci, "cannot register the socket".into());
                }
                self.conns[ci].sock = Some(s);
            }
            Err(e) => self.fail_connect(ci, e.to_string()),
        }
    }

    fn fail_connect(&mut self, ci: usize, cause: String) {
        let c = &mut self.conns[ci];
        let url = c.cfg.as_ref().map(|s| s.url.clone()).unwrap_or_default();
        c.failure = Some(Failure::StreamConnect { url, cause });
        self.done(ci);
    }

    fn on_writable(&mut self, ci: usize) {
        let c = &mut self.conns[ci];
        match c.state {
            State::Connecting => {
                let Some(sock) = c.sock.as_ref() else { return };
                if let Ok(Some(e)) | Err(e) = sock.take_error() {
                    return self.fail_connect(ci, e.to_string());
                }
                if let Err(e) = sock.peer_addr() {
                    if e.kind() == ErrorKind::NotConnected {
                        // Not yet: another writable event follows the handshake.
                        return;
                    }
                    return self.fail_connect(ci, e.to_string());
                }
                let req = ws::upgrade_request(
                    &c.target.path,
                    &c.target.head,
                    &c.key,
                    &c.target.signature,
                );
                c.state = State::Upgrading;
                self.write(ci, &req);
            }
            State::Upgrading | State::Streaming | State::Closing => self.flush(ci),
            State::Waiting | State::Done => {}
        }
    }

    /// The upgrade succeeded: the session starts, on a whole ms of the worker's clock.
    fn start(&mut self, ci: usize) {
        let now = self.now_us();
        let t0 = Instant::now();
        let c = &mut self.conns[ci];
        let Some(mut cfg) = c.cfg.take() else { return };
        let elapsed = c.connect_started.map(|s| t0.saturating_duration_since(s));
        c.connect_elapsed = elapsed;
        cfg.caller_offset = c.caller_epoch.map_or(0, |epoch| {
            (t0.saturating_duration_since(epoch).as_micros() / 20_000) as u64
        });
        let mut s = Session::new(*cfg);
        let observer = c.observer.as_mut().expect("observer until finished");
        if let Some(e) = elapsed {
            observer.connected(e);
        }
        c.t0_us = (now / 1000 + 1) * 1000;
        c.state = State::Streaming;
        c.started = Some(t0);
        if let Some(after) = observer.started(t0) {
            s.set_hangup(after);
        }
        let wall0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        c.session = Some(s);
        self.with_session(ci, |s, _, w| s.start(wall0, w));
    }

    /// Runs `f` on the stream's session with its wire, then writes what it sent, follows
    /// its phase and books its next deadline.
    fn with_session(&mut self, ci: usize, f: impl FnOnce(&mut Session, u64, &mut MioWire<'_>)) {
        let now = self.clock();
        let c = &mut self.conns[ci];
        let (Some(s), Some(observer)) = (c.session.as_mut(), c.observer.as_mut()) else {
            return;
        };
        let rel = now.saturating_sub(c.t0_us);
        self.out.clear();
        let mut wire = MioWire {
            out: &mut self.out,
            rng: &mut c.rng,
            observer: observer.as_mut(),
            wants_text: c.wants_text,
            frame_lateness: c.frame_lateness.as_ref(),
        };
        f(s, rel, &mut wire);
        if s.phase() == Phase::HungUp {
            wire.observer.hung_up();
            s.clear_hangup();
            s.stop(rel, &mut wire);
        }
        let phase = s.phase();
        let bytes = std::mem::take(&mut self.out);
        if !bytes.is_empty() {
            if !self.conns[ci].pending.is_empty()
                && let Some(o) = self.conns[ci].observer.as_mut()
            {
                o.backpressured();
            }
            self.write(ci, &bytes);
        }
        self.out = bytes;
        match phase {
            Phase::Ended(end) => self.after_end(ci, end),
            _ => self.schedule(ci),
        }
    }

    fn on_timer(&mut self, ci: usize) {
        if self.conns[ci].state == State::Streaming {
            self.with_session(ci, |s, now, w| s.handle_timeout(now, w));
        }
    }

    /// Books the session's next deadline on the wheel (if it moved earlier or is new).
    fn schedule(&mut self, ci: usize) {
        let c = &mut self.conns[ci];
        if c.state != State::Streaming {
            return;
        }
        let Some(s) = c.session.as_mut() else { return };
        let Some(rel) = s.poll_timeout() else { return };
        // Whole ms: every stream due in one ms is served by one wake-up.
        let at = (c.t0_us + rel).div_ceil(1000);
        if self.timers.booked(ci).is_none_or(|t| at < t) {
            self.timers.set(ci, at);
        }
    }

    /// The driver's side ended the session (the app closed, the socket broke, a stall, a
    /// violation).
    fn end_session(&mut self, ci: usize, end: End) {
        let now = self.now_us();
        let c = &mut self.conns[ci];
        match c.session.as_mut() {
            Some(s) => {
                s.on_end(end, now.saturating_sub(c.t0_us));
                let end = match s.phase() {
                    Phase::Ended(e) => e,
                    _ => End::Dropped,
                };
                self.after_end(ci, end);
            }
            None => self.done(ci),
        }
    }

    /// The session is over: the close frame its end calls for, then done (or closing).
    fn after_end(&mut self, ci: usize, end: End) {
        if let Some(code) = end.close_code() {
            self.send_close(ci, code);
        }
        let now = self.now_us();
        let c = &mut self.conns[ci];
        if end.awaits_close() && c.state != State::Done {
            c.state = State::Closing;
            c.deadline_us = now + CLOSE_TIMEOUT_US;
        } else {
            self.done(ci);
        }
    }

    /// Timeouts (upgrades never answered, closes never returned, sockets that stopped
    /// draining) and stop requests.
    fn sweep(&mut self, now: u64) {
        for ci in 0..self.conns.len() {
            let c = &self.conns[ci];
            match c.state {
                State::Connecting | State::Upgrading if now > c.deadline_us => self.fail_connect(
                    ci,
                    format!(
                        "no answer to the upgrade within {} s",
                        CONNECT_TIMEOUT_US / 1_000_000
                    ),
                ),
                State::Closing if now > c.deadline_us => self.done(ci),
                State::Streaming | State::Closing
                    if !c.pending.is_empty()
                        && now.saturating_sub(c.pending_since_us)
                            > WRITE_STALL.as_micros() as u64 =>
                {
                    self.end_session(ci, End::Stalled)
                }
                _ => {}
            }
        }
        self.check_stops();
        for ci in 0..self.conns.len() {
            let c = &mut self.conns[ci];
            if c.state == State::Streaming
                && let Some(s) = c.session.as_mut()
                && let Some(started) = c.started
            {
                s.check_no_audio(started.elapsed());
            }
        }
    }

    /// Streams whose owner asked them to stop: `stop` and close (or, not started yet, end).
    fn check_stops(&mut self) {
        for ci in 0..self.conns.len() {
            let c = &mut self.conns[ci];
            if c.stop_seen || c.state == State::Done || !c.stop.load(Ordering::Relaxed) {
                continue;
            }
            c.stop_seen = true;
            match c.state {
                State::Streaming => self.with_session(ci, |s, now, w| {
                    if s.stop(now, w) {
                        w.observer.hung_up();
                    }
                }),
                State::Waiting | State::Connecting | State::Upgrading => self.done(ci),
                State::Closing | State::Done => {}
            }
        }
    }

    /// The stream is over: its report goes to its observer.
    fn done(&mut self, ci: usize) {
        let c = &mut self.conns[ci];
        if c.state == State::Done {
            return;
        }
        c.state = State::Done;
        if let Some(mut sock) = c.sock.take() {
            let _ = self.poll.registry().deregister(&mut sock);
        }
        c.rx = Vec::new();
        c.pending = Vec::new();
        self.timers.cancel(ci);
        self.live -= 1;
        self.free.push(ci);
        let session = match (c.session.take(), c.cfg.take()) {
            (Some(s), _) => s,
            (None, Some(cfg)) => Session::new(*cfg),
            (None, None) => {
                tracing::error!("internal error: a plane stream lost its session");
                return;
            }
        };
        let wall = c.started.map_or(Duration::ZERO, |t| t.elapsed());
        let observer = c.observer.take();
        let failure = c.failure.take();
        let interrupted = c.stop.load(Ordering::Relaxed);
        let started = c.started;
        let connect = c.connect_elapsed;
        if let Some(mut observer) = observer {
            let mut wire = ForObserver(observer.as_mut());
            let mut o = session.finish(connect, wall, &mut wire);
            o.started_at = started;
            o.failures.extend(failure);
            observer.finished(o, interrupted);
        }
    }
}

/// The end-of-stream events go to the observer.
struct ForObserver<'a>(&'a mut dyn Observer);

impl Wire for ForObserver<'_> {
    fn text(&mut self, text: &str) {
        self.0.sent(text);
    }
    fn event(&mut self, kind: EventKind) {
        self.0.event(kind);
    }
}

fn nonce(seed: u64) -> [u8; 16] {
    let mut n = [0u8; 16];
    n[..8].copy_from_slice(&crate::faults::mix(seed, 0, 10).to_le_bytes());
    n[8..].copy_from_slice(&crate::faults::mix(seed, 0, 11).to_le_bytes());
    n
}

/// A non-blocking socket with a small send buffer, connecting to `addr`.
fn open_socket(addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    let _ = socket.set_send_buffer_size(SNDBUF);
    socket.set_nonblocking(true)?;
    let _ = socket.set_tcp_nodelay(true);
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// `EINPROGRESS` on Linux (a non-blocking connect under way).
const fn libc_einprogress() -> i32 {
    115
}
