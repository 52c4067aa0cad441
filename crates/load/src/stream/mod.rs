//! The lean `--stream` runner: Media Streams straight to a WebSocket URL, no webhook. This is
//! the path the capacity bench measures. The streams run on the call engine's stream plane
//! (`dialtone_call::plane`: a few paced mio workers, one per core by default, each carrying
//! its share of the streams), as full calls' streams do: the same session, the same wire.
//! Each worker's streams report into that worker's interval (HDR histograms and counters),
//! which the tally takes once a second.
//!
//! Each stream speaks Twilio's messages in Twilio's order: `connected`, `start`
//! (`sequenceNumber` 1), a `media` frame every 20 ms (the caller audio, then μ-law silence),
//! `mark` echoes when the app sends marks (after their audio's playout, as Twilio does),
//! `stop`, and a close handshake. Stream *i* carries full call *i*'s seeded `CallSid` and
//! `MZ` + *i* as 32 hex digits, and connects at `i × ramp / N`.

mod observer;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dialtone_audio::FrameSet;
use dialtone_call::plane::{Job, Plane, Target, TargetError};
use dialtone_protocol::media::StreamIds;
use tokio::time::Instant;

use crate::LoadError;
use crate::plan::Shard;
use crate::summary::WorkloadInfo;
use crate::tally::{Finished, Progress, RunInfo, RunTally, WorkerInterval};
use observer::LeanObserver;

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

/// Most streams of one `--stream` run: 100,000. Every stream is planned up front and may be
/// open at once (one socket each, beyond the ~28,000 ephemeral ports one app address gets).
pub const MAX_STREAMS: u64 = 100_000;

/// Most worker threads: 1024. A worker paces its streams on its own clock, so threads past
/// the cores only add context switches; 1024 covers the largest machines while a thread's
/// stack and buffers (about 13 kB resident each, measured: 100,000 threads took 1.26 GB)
/// stay small.
pub const MAX_THREADS: usize = 1024;

/// Resolves `url` (as the app's TwiML would write it) through `tunnels` to a plain-TCP
/// address. The lean path speaks plain WebSocket only: a TLS target is refused.
fn target(url: &str, run: &StreamRun) -> Result<Target, LoadError> {
    Target::resolve(url, &run.tunnels, &run.auth_token).map_err(|e| match e {
        TargetError::Tls(_) => LoadError::Target(format!(
            "{url}: --stream speaks plain WebSocket only (its framing is hand-rolled for speed); \
             map the wss:// origin to the app's local ws:// address with --tunnel \
             PUBLIC=http://127.0.0.1:PORT, or load full calls with --webhook, which do TLS"
        )),
        e => LoadError::Target(e.to_string()),
    })
}

/// Runs the streams until they are done or `stop` is set, calling `on_second` with the live
/// view once a second. Blocking: call it from a thread of its own (`spawn_blocking`).
pub fn run(
    run: &StreamRun,
    stop: Arc<AtomicBool>,
    mut on_second: impl FnMut(&Progress),
) -> Result<Finished, LoadError> {
    let target = Arc::new(target(&run.url, run)?);
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
    let frames = (run.media.as_millis() / 20) as u64;
    let threads = match run.threads {
        0 => crate::proc_stats::cores() as usize,
        n => n,
    };
    let plane = Plane::new(threads)
        .map_err(|e| LoadError::Target(format!("cannot start a worker thread: {e}")))?;
    let started_wall = SystemTime::now();
    let epoch = Instant::now();
    let active = Arc::new(AtomicI64::new(0));
    // Set at a stop (Ctrl-C): streams not yet connecting never start. Set after the drain:
    // streams still running stop and count `interrupted`.
    let cancel = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicBool::new(false));
    let intervals: Vec<Arc<Mutex<WorkerInterval>>> = (0..threads)
        .map(|_| Arc::new(Mutex::new(WorkerInterval::default())))
        .collect();
    let (done_tx, done_rx) = channel::<()>();
    // Stream i connects at i × ramp / N; streams go to workers round-robin so each worker's
    // load rises evenly during the ramp.
    let ramp_us = run.ramp.as_micros() as u64;
    let mine: Vec<u64> = (0..run.streams).filter(|&i| run.shard.owns(i)).collect();
    let mut tally = RunTally::new(started_wall);
    tally.set_scheduled(mine.len() as u64);
    // One handle per worker wakes it for the cut (the flag is shared by every stream).
    let mut stops = vec![None; threads];
    for (n, &i) in mine.iter().enumerate() {
        let at = (u128::from(i) * u128::from(ramp_us) / u128::from(run.streams)) as u64;
        let w = n % threads;
        let observer = LeanObserver::new(
            intervals[w].clone(),
            active.clone(),
            cancel.clone(),
            done_tx.clone(),
            frames,
            i,
        );
        let ids = StreamIds {
            account_sid: run.account_sid.clone(),
            // Call i's CallSid is full call i's (same seed): a seeded app treats both alike.
            call_sid: crate::plan::call_sid(run.seed, i),
            stream_sid: format!("MZ{i:032x}"),
        };
        let job = Job::bare(
            target.clone(),
            &run.url,
            ids,
            run.audio.clone(),
            frames,
            epoch + Duration::from_micros(at),
            dialtone_call::faults::mix(run.seed, i, 9),
            cut.clone(),
            Box::new(observer),
        );
        let handle = plane.submit_to(w, job);
        stops[w].get_or_insert(handle);
    }
    drop(done_tx);
    let total = mine.len();
    let mut finished = 0usize;
    let mut next = Duration::from_secs(1);
    let mut cut_at: Option<Duration> = None;
    while finished < total {
        if cut_at.is_none() && stop.load(Ordering::Relaxed) {
            cancel.store(true, Ordering::Relaxed);
            cut_at = Some(epoch.elapsed() + run.drain);
        }
        if cut_at.is_some_and(|at| epoch.elapsed() >= at) && !cut.load(Ordering::Relaxed) {
            // The drain is over: every stream still running stops now.
            for s in stops.iter().flatten() {
                s.stop();
            }
        }
        let wait = next
            .saturating_sub(epoch.elapsed())
            .min(Duration::from_millis(100));
        match done_rx.recv_timeout(wait) {
            Ok(()) => finished += 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if epoch.elapsed() >= next {
            for i in &intervals {
                let interval = std::mem::take(&mut *i.lock().expect("interval lock"));
                tally.add_interval(&interval);
            }
            let live = active.load(Ordering::Relaxed).max(0) as u64;
            tally.tick(epoch.elapsed(), live, None);
            on_second(&tally.progress());
            next += Duration::from_secs(1);
        }
    }
    drop(plane);
    for i in &intervals {
        let interval = std::mem::take(&mut *i.lock().expect("interval lock"));
        tally.add_interval(&interval);
    }
    tally.tick(epoch.elapsed(), 0, None);
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
    Ok(tally.finish(info))
}
