//! The lean `--stream` runner: Media Streams straight to a WebSocket URL, no webhook. This is
//! the path the capacity bench measures, built for thousands of streams per core: a few paced
//! worker threads (one per core by default), each driving its share of the streams from one
//! timer wheel with pre-built frames and one write per frame; lateness against the absolute
//! schedule goes into per-worker HDR histograms merged once a second by the collector.
//!
//! Each stream speaks Twilio's messages in Twilio's order: `connected`, `start`
//! (`sequenceNumber` 1), a `media` frame every 20 ms (the caller audio, then μ-law silence),
//! `mark` echoes when the app sends marks (after their audio's playout, as Twilio does),
//! `stop`, and a close handshake. Stream *i* carries `CA`/`MZ` + *i* as 32 hex digits and
//! connects at `i × ramp / N`.

mod media_frame;
mod worker;
pub(crate) mod ws;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, SystemTime};

use dialtone_audio::FrameSet;
use tokio::time::Instant;

use crate::LoadError;
use crate::collector::{Collector, Finished, Progress, RunInfo};
use crate::plan::Shard;
use crate::summary::WorkloadInfo;

/// A `--stream` run.
#[derive(Debug, Clone)]
pub struct StreamRun {
    /// `ws://host:port/path`.
    pub url: String,
    /// Streams across all shards.
    pub streams: u64,
    /// Media per stream.
    pub media: Duration,
    /// Stream starts spread over this.
    pub ramp: Duration,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Caller audio (silence follows it).
    pub audio: Arc<FrameSet>,
    /// `accountSid` in `start`/`stop`.
    pub account_sid: String,
    /// Signs the upgrade (`X-Twilio-Signature`).
    pub auth_token: String,
    /// Seed (WebSocket keys and masks).
    pub seed: u64,
    /// This process's slice.
    pub shard: Shard,
    /// Public origins mapped to local ones: `url` may name the app's public `wss://` origin.
    pub tunnels: dialtone_call::Tunnels,
    /// Own lateness above this means dialtone was late.
    pub lateness_bound: Duration,
    /// After a stop (Ctrl-C), streams in progress may run this much longer before they are
    /// ended and counted `interrupted`.
    pub drain: Duration,
}

/// What every worker reads.
pub(crate) struct Shared {
    addr: SocketAddr,
    /// `Host` and forwarding header lines of the upgrade.
    head: String,
    path: String,
    signature: String,
    account_sid: String,
    frames: u32,
    audio: Arc<FrameSet>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    drain_us: u64,
    active: Arc<AtomicI64>,
    seed: u64,
}

impl Shared {
    #[inline]
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// Most streams of one `--stream` run: 100,000. Every stream is planned up front and may be
/// open at once (one socket each, beyond the ~28,000 ephemeral ports one app address gets).
pub const MAX_STREAMS: u64 = 100_000;

/// Most worker threads: 1024. A worker paces its streams on its own clock, so threads past
/// the cores only add context switches; 1024 covers the largest machines while a thread's
/// stack and buffers (about 13 kB resident each, measured: 100,000 threads took 1.26 GB)
/// stay small.
pub const MAX_THREADS: usize = 1024;

/// Where the streams connect and what the upgrade says.
struct Target {
    addr: SocketAddr,
    /// Header lines after the request line: `Host` (the public authority) and, when
    /// tunnelled, the forwarding headers, each ending in CRLF.
    head: String,
    /// Path and query.
    path: String,
    /// The URL as parsed (what goes on the wire, so what is signed).
    signed: String,
}

/// Resolves `url` (as the app's TwiML would write it) through `tunnels` to a plain-TCP
/// address. The lean path speaks plain WebSocket only: a TLS target is refused.
fn target(url: &str, tunnels: &dialtone_call::Tunnels) -> Result<Target, LoadError> {
    let bad = |why: String| LoadError::Target(format!("{url}: {why}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(bad("expected a ws:// or wss:// URL".into()));
    }
    let route = tunnels.route(&parsed);
    if route.connect.scheme() == "wss" {
        return Err(bad(
            "--stream speaks plain WebSocket only (its framing is hand-rolled for speed); map the \
             wss:// origin to the app's local ws:// address with --tunnel \
             PUBLIC=http://127.0.0.1:PORT, or load full calls with --webhook, which do TLS"
                .into(),
        ));
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
    let signed = dialtone_protocol::signing::url_to_sign(parsed.as_str());
    Ok(Target {
        addr,
        head,
        path,
        signed,
    })
}

/// Runs the streams until they are done or `stop` is set, calling `on_second` with the live
/// view once a second. Blocking: call it from a thread of its own (`spawn_blocking`).
pub fn run(
    run: &StreamRun,
    stop: Arc<AtomicBool>,
    mut on_second: impl FnMut(&Progress),
) -> Result<Finished, LoadError> {
    let Target {
        addr,
        head,
        path,
        signed,
    } = target(&run.url, &run.tunnels)?;
    if !(1..=MAX_STREAMS).contains(&run.streams) {
        return Err(LoadError::Invalid(format!(
            "--streams {} is out of range: 1 to {MAX_STREAMS}",
            run.streams
        )));
    }
    if run.threads > MAX_THREADS {
        return Err(LoadError::Invalid(format!(
            "--threads {} is out of range: 0 (one per core) to {MAX_THREADS}",
            run.threads
        )));
    }
    let frames = (run.media.as_millis() / 20) as u32;
    let threads = match run.threads {
        0 => crate::proc_stats::cores() as usize,
        n => n,
    };
    let started_wall = SystemTime::now();
    let epoch = Instant::now();
    let shared = Arc::new(Shared {
        addr,
        head,
        path,
        signature: dialtone_protocol::signing::signature(&run.auth_token, &signed, &[]),
        account_sid: run.account_sid.clone(),
        frames,
        audio: run.audio.clone(),
        epoch,
        stop: stop.clone(),
        drain_us: run.drain.as_micros() as u64,
        active: Arc::new(AtomicI64::new(0)),
        seed: run.seed,
    });
    // Stream i connects at i × ramp / N; streams go to workers round-robin so each worker's
    // load rises evenly during the ramp.
    let ramp_us = run.ramp.as_micros() as u64;
    let mine: Vec<u64> = (0..run.streams).filter(|&i| run.shard.owns(i)).collect();
    let mut plans: Vec<Vec<(u64, u64)>> = vec![Vec::new(); threads];
    for (n, &i) in mine.iter().enumerate() {
        let at = (u128::from(i) * u128::from(ramp_us) / u128::from(run.streams)) as u64;
        plans[n % threads].push((i, at));
    }
    let mut collector = Collector::new(started_wall);
    collector.set_scheduled(mine.len() as u64);
    let (tx, rx) = sync_channel(64 * threads);
    let mut handles = Vec::new();
    for (w, plan) in plans.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        let (shared, tx) = (shared.clone(), tx.clone());
        let h = std::thread::Builder::new()
            .name(format!("dialtone-stream-{w}"))
            .spawn(move || worker::run(&shared, plan, tx))
            .map_err(|e| LoadError::Target(format!("cannot start a worker thread: {e}")))?;
        handles.push(h);
    }
    drop(tx);
    let mut next = Duration::from_secs(1);
    loop {
        let wait = next.saturating_sub(epoch.elapsed());
        match rx.recv_timeout(wait) {
            Ok(interval) => collector.add_interval(&interval),
            Err(RecvTimeoutError::Timeout) => {
                let active = shared.active.load(Ordering::Relaxed).max(0) as u64;
                collector.tick(epoch.elapsed(), active, None);
                on_second(&collector.progress());
                next += Duration::from_secs(1);
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let mut io_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => io_error = Some(e),
            // A worker that panicked lost its streams' results: say so, never silently.
            Err(_) => tracing::error!("a stream worker panicked; its streams' results are lost"),
        }
    }
    if let Some(e) = io_error {
        tracing::error!("a stream worker stopped on an IO error: {e}");
    }
    collector.tick(epoch.elapsed(), 0, None);
    let info = RunInfo {
        mode: "stream".into(),
        target: run.url.clone(),
        shard: run.shard,
        workload: WorkloadInfo {
            calls: Some(run.streams),
            duration_s: None,
            concurrency: run.streams,
            rate_per_s: None,
            ramp_s: run.ramp.as_secs_f64(),
            seed: run.seed,
            media_s: Some(run.media.as_secs_f64()),
            profiles: [("stream".to_string(), 1)].into(),
        },
        interrupted: stop.load(Ordering::Relaxed),
        lateness_bound: run.lateness_bound,
        cores: crate::proc_stats::cores(),
    };
    Ok(collector.finish(info))
}
