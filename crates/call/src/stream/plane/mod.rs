//! The stream plane: a few paced worker threads (one per core by default), each carrying
//! thousands of Media Streams on one mio event loop. It is only I/O around the
//! [`Session`](super::session::Session): the plain-TCP connect, the signed upgrade, RFC 6455
//! framing written into one reused buffer (one `write` per wake-up of a stream), and a 1 ms
//! timer wheel of the sessions' deadlines. Both full calls (plain `ws://` streams in real time) and
//! `load --stream` run on it; TLS streams and virtual time run on the tokio driver.
//!
//! - this file: the target (address, upgrade head, signature), the job a stream is handed in
//!   as, the observer that hears back, the worker handles;
//! - `worker`: the event loop and a stream's connection;
//! - `wheel`: the timer wheel;
//! - `ws`: the little of RFC 6455 a client needs, hand-rolled so a frame costs one copy.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::StreamOutcome;
use super::session::SessionConfig;
use crate::report::EventKind;

mod wheel;
mod worker;
pub mod ws;

/// Where a stream connects and what its upgrade says.
#[derive(Debug, Clone)]
pub struct Target {
    /// The app's (local) address.
    pub addr: SocketAddr,
    /// Header lines after the request line: `Host` (the public authority) and, when
    /// tunnelled, the forwarding headers, each ending in CRLF.
    pub head: String,
    /// Path and query.
    pub path: String,
    /// `X-Twilio-Signature` over the URL as written.
    pub signature: String,
}

/// Why a URL cannot go on the plane.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL is not a `ws://` or `wss://` URL, or does not resolve.
    #[error("{url}: {why}")]
    Bad {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The URL (after the tunnel table) needs TLS: the plane speaks plain WebSocket only.
    #[error("{0}: the stream plane speaks plain WebSocket only")]
    Tls(String),
}

impl Target {
    /// Resolves `url` (as the app's TwiML writes it) through `tunnels` to a plain-TCP
    /// address; signs it with `auth_token`.
    pub fn resolve(
        url: &str,
        tunnels: &dialtone_net::Tunnels,
        auth_token: &str,
    ) -> Result<Target, TargetError> {
        let bad = |why: String| TargetError::Bad {
            url: url.to_string(),
            why,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "ws" | "wss") {
            return Err(bad("expected a ws:// or wss:// URL".into()));
        }
        let route = tunnels.route(&parsed);
        if route.connect.scheme() == "wss" {
            return Err(TargetError::Tls(url.to_string()));
        }
        let host = route
            .connect
            .host_str()
            .ok_or_else(|| bad("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = route.connect.port_or_known_default().unwrap_or(80);
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| {
                let hint = tunnels
                    .unmapped_hint(&parsed)
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                bad(format!("cannot resolve {host}: {e}{hint}"))
            })?
            .next()
            .ok_or_else(|| bad(format!("{host} has no address")))?;
        let mut head = String::new();
        let forwarding = route.forwarding_headers();
        if forwarding.is_empty() {
            let authority = &parsed[url::Position::BeforeHost..url::Position::AfterPort];
            head.push_str(&format!("Host: {authority}\r\n"));
        }
        for (name, value) in forwarding {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let path = parsed[url::Position::BeforePath..url::Position::AfterQuery].to_string();
        Ok(Target {
            addr,
            head,
            path,
            signature: dialtone_net::upgrade_signature(auth_token, parsed.as_str()),
        })
    }
}

/// What the plane tells about one stream as it goes. Called on the plane's thread: keep it
/// short (a counter, a channel send).
pub trait Observer: Send {
    /// Asked at the stream's connect time: false cancels it (it never starts).
    fn should_start(&mut self) -> bool {
        true
    }
    /// The connect began (a stream stopped before this never started).
    fn connecting(&mut self) {}
    /// The upgrade completed after `elapsed`.
    fn connected(&mut self, _elapsed: Duration) {}
    /// `start` went out at `t0`: the caller's hang-up, as time after `t0`, when this
    /// stream runs it.
    fn started(&mut self, _t0: Instant) -> Option<Duration> {
        None
    }
    /// Whether [`Observer::sent`] and [`Observer::received`] want each message; asked once
    /// (a call per message on a cold object is a cache miss per frame).
    fn wants_text(&self) -> bool {
        true
    }
    /// A message went out (for `--capture`).
    fn sent(&mut self, _text: &str) {}
    /// A message came in (for `--capture`).
    fn received(&mut self, _text: &str) {}
    /// A step of the call's timeline.
    fn event(&mut self, _kind: EventKind) {}
    /// A scheduled frame went out this late (µs), unless the job records lateness into a
    /// load run's histogram itself (full calls under `load`).
    fn frame(&mut self, _lateness_us: u64) {}
    /// The app's first audio came this long after `start` (µs).
    fn first_audio(&mut self, _after_us: u64) {}
    /// An app `media` message came.
    fn app_media(&mut self) {}
    /// A mark was echoed this long after the app sent it (µs).
    fn mark_echoed(&mut self, _round_trip_us: u64) {}
    /// What the session sent waited behind bytes the socket had not taken yet.
    fn backpressured(&mut self) {}
    /// The caller's time is over: end the call.
    fn hung_up(&mut self) {}
    /// The stream is over.
    fn finished(self: Box<Self>, outcome: StreamOutcome, interrupted: bool);
}

/// One stream handed to the plane.
pub struct Job {
    /// Where it connects.
    pub target: Arc<Target>,
    /// The session it runs (its caller offset is set at the start from `caller_epoch`).
    pub(crate) session: SessionConfig,
    /// Where the caller's audio starts when not at the stream's start.
    pub(crate) caller_epoch: Option<Instant>,
    /// When to connect (`None`: now).
    pub connect_at: Option<Instant>,
    /// Seeds the WebSocket key and masks.
    pub seed: u64,
    /// Set (then wake the plane) to send `stop` and close.
    pub stop: Arc<AtomicBool>,
    /// Hears how it goes.
    pub observer: Box<dyn Observer>,
    /// Where each frame's lateness goes, straight from the plane (no observer call per
    /// frame): a load run's shared histogram.
    pub(crate) frame_lateness: Option<crate::config::FrameLateness>,
}

impl Job {
    /// A bare stream (`load --stream`): `connected`, `start` (inbound track), `frames`
    /// frames of `audio` then silence, mark echoes, `stop`; no call around it.
    #[allow(clippy::too_many_arguments)]
    pub fn bare(
        target: Arc<Target>,
        url: &str,
        ids: dialtone_protocol::media::StreamIds,
        audio: Arc<dialtone_audio::FrameSet>,
        frames: u64,
        connect_at: Instant,
        seed: u64,
        stop: Arc<AtomicBool>,
        observer: Box<dyn Observer>,
    ) -> Job {
        Job {
            target,
            session: SessionConfig {
                url: url.to_string(),
                ids,
                name: None,
                bidirectional: true,
                tracks: super::Tracks::Inbound,
                parameters: Vec::new(),
                caller_audio: audio,
                caller_offset: 0,
                live: None,
                turns: Vec::new(),
                dtmf: Vec::new(),
                outbound: None,
                record: false,
                max_duration: Duration::from_micros(frames.saturating_mul(20_000)),
                no_audio_timeout: None,
                faults: None,
                real_time: true,
                frames: Some(frames),
                histograms: false,
            },
            caller_epoch: None,
            connect_at: Some(connect_at),
            seed,
            stop,
            observer,
            frame_lateness: None,
        }
    }
}

/// The handle of one worker thread.
struct Worker {
    jobs: Sender<Job>,
    waker: Arc<mio::Waker>,
}

/// The plane: its workers, started when the plane is made.
pub struct Plane {
    workers: Vec<Worker>,
    next: Mutex<usize>,
}

/// A stop request for a stream on the plane.
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
}

impl StopHandle {
    /// Sends `stop` and closes the stream (soon: the worker wakes now).
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
    }
}

impl Plane {
    /// A plane of `threads` workers (0: one per core).
    pub fn new(threads: usize) -> std::io::Result<Plane> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut workers = Vec::with_capacity(threads);
        for w in 0..threads {
            let poll = mio::Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), worker::WAKE)?);
            let (tx, rx) = channel();
            std::thread::Builder::new()
                .name(format!("dialtone-plane-{w}"))
                .spawn(move || worker::run(poll, rx))?;
            workers.push(Worker { jobs: tx, waker });
        }
        Ok(Plane {
            workers,
            next: Mutex::new(0),
        })
    }

    /// Hands a stream to the next worker (round robin); the observer hears back.
    pub fn submit(&self, job: Job) -> StopHandle {
        let w = {
            let mut next = self.next.lock().expect("plane lock");
            *next = (*next + 1) % self.workers.len();
            *next
        };
        self.submit_to(w, job)
    }

    /// Hands a stream to worker `w` (modulo the workers).
    pub fn submit_to(&self, w: usize, job: Job) -> StopHandle {
        let worker = &self.workers[w % self.workers.len()];
        let handle = StopHandle {
            flag: job.stop.clone(),
            waker: worker.waker.clone(),
        };
        if let Err(back) = worker.jobs.send(job) {
            // The worker is gone (it panicked): the stream never runs; say so.
            let job = back.0;
            let s = super::session::Session::new(job.session);
            let mut o = s.finish(None, Duration::ZERO, &mut worker::NoWire);
            o.failures.push(crate::report::Failure::StreamConnect {
                url: String::new(),
                cause: "internal error: the stream plane stopped".into(),
            });
            job.observer.finished(o, false);
            return handle;
        }
        let _ = worker.waker.wake();
        handle
    }

    /// Workers in the plane.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        // Dropping the senders ends each worker once its streams are done.
        for w in self.workers.drain(..) {
            drop(w.jobs);
            let _ = w.waker.wake();
        }
    }
}
