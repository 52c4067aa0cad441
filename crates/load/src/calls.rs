//! The full-call runner: every call goes through the call engine (signed webhook, TwiML,
//! Media Streams, marks/clear). One engine is shared; a semaphore bounds concurrency and its
//! owned permit moves into each call's task, so calls never wait on each other, and a failed
//! or panicking call is classified and counted without touching the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use dialtone_call::{CallConfig, CallEvent, CallRegistry, Engine, EventKind, EventSink};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until, timeout};

use crate::inflight::{self, Cut, InFlight};
use crate::plan::Workload;
use crate::sample::CallSample;
use crate::scenario::Callers;
use crate::summary::WorkloadInfo;
use crate::tally::{Finished, Progress, RunInfo, RunTally};

/// A full-call load run.
pub struct CallRun {
    /// The schedule.
    pub workload: Workload,
    /// Caller profiles and numbers.
    pub callers: Callers,
    /// Every call's config but for what is chosen per call (caller number and profile, call
    /// SID, seed): the run's settings, filled once. Its caller script is replaced by each
    /// call's profile; its `max_duration` is the bound a profile's `hangup_after` can only
    /// shorten.
    pub template: CallConfig,
    /// Transport: TLS trust (`--cacert`, `--insecure`).
    pub net: dialtone_call::Net,
    /// Frame lateness above this counts against the generator.
    pub lateness_bound: Duration,
    /// After a stop, calls in progress get this long to finish before they are cut.
    pub drain: Duration,
    /// Where the app's milestone records arrive (dialtone's events endpoint), and how long to
    /// wait after a call for late ones; they are matched to the call's turns.
    pub milestones: Option<(dialtone_events::MilestoneInbox, Duration)>,
    /// Follows every call placed (e.g. the REST API that lets the app hang its calls up).
    pub registry: Option<Arc<dyn CallRegistry>>,
}

enum Msg {
    Started(Option<u64>),
    Done(Box<CallSample>),
}

/// Runs the calls of `run` until the schedule is done or `stop` turns true, calling
/// `on_second` once a second with the live view. Returns the collected results (also after
/// a stop: every call that finished is in them).
pub async fn run(
    run: CallRun,
    mut stop: watch::Receiver<bool>,
    mut on_second: impl FnMut(&Progress),
) -> Finished {
    let started_wall = SystemTime::now();
    let start = Instant::now();
    let mut tally = RunTally::new(started_wall);
    // Calls due in this slice: known up front for a count, and for a duration with a rate.
    // Those that never start (every slot busy until the end) are reported as not started, so
    // queueing cannot hide offered load.
    if let Some(n) = run.workload.scheduled() {
        tally.set_scheduled(n);
    }
    let info = RunInfo {
        mode: "call".into(),
        target: run.template.url.clone(),
        shard: run.workload.shard,
        workload: workload_info(&run),
        interrupted: false,
        lateness_bound: run.lateness_bound,
        cores: crate::proc_stats::cores(),
    };
    let active = Arc::new(AtomicI64::new(0));
    let open_streams = Arc::new(AtomicI64::new(0));
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    // Every frame's lateness goes here (taken once a second), not into a histogram per call.
    let lateness: dialtone_call::FrameLateness = Arc::new(std::sync::Mutex::new(
        dialtone_call::report::new_lateness_histogram(),
    ));
    let dispatcher = tokio::spawn(dispatch(
        Arc::new(run),
        lateness.clone(),
        start,
        tx,
        stop.clone(),
        active.clone(),
        open_streams.clone(),
    ));
    let mut ticker = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Started(delay)) => tally.call_started(delay),
                Some(Msg::Done(s)) => tally.add_call(*s),
                None => break,
            },
            _ = ticker.tick() => {
                tally.add_lateness(&take_lateness(&lateness));
                let open = open_streams.load(Ordering::Relaxed).max(0) as u64;
                tally.tick(start.elapsed(), active.load(Ordering::Relaxed).max(0) as u64, Some(open * 50));
                on_second(&tally.progress());
            }
            _ = stop.changed() => {}
        }
    }
    let interrupted = *stop.borrow();
    let _ = dispatcher.await;
    tally.add_lateness(&take_lateness(&lateness));
    tally.tick(
        start.elapsed(),
        0,
        Some(open_streams.load(Ordering::Relaxed).max(0) as u64 * 50),
    );
    tally.finish(RunInfo {
        interrupted,
        ..info
    })
}

fn workload_info(run: &CallRun) -> WorkloadInfo {
    let w = &run.workload;
    let (rate, ramp) = match w.arrival {
        crate::Arrival::Rate { per_sec, ramp } => (Some(per_sec), ramp),
        crate::Arrival::Spread { ramp } => (None, ramp),
    };
    WorkloadInfo {
        calls: match w.extent {
            crate::Extent::Calls(n) => Some(n),
            crate::Extent::Duration(_) => None,
        },
        duration_s: w.deadline().map(|d| d.as_secs_f64()),
        concurrency: w.concurrency as u64,
        rate_per_s: rate,
        ramp_s: ramp.as_secs_f64(),
        seed: w.seed,
        media_s: None,
        profiles: run
            .callers
            .profiles
            .iter()
            .map(|p| (p.name.clone(), p.weight))
            .collect(),
    }
}

/// The frame lateness recorded since the last take.
fn take_lateness(sink: &dialtone_call::FrameLateness) -> hdrhistogram::Histogram<u64> {
    let mut h = sink.lock().unwrap_or_else(|p| p.into_inner());
    let fresh = dialtone_call::report::new_lateness_histogram();
    std::mem::replace(&mut *h, fresh)
}

async fn dispatch(
    run: Arc<CallRun>,
    lateness: dialtone_call::FrameLateness,
    start: Instant,
    tx: mpsc::Sender<Msg>,
    mut stop: watch::Receiver<bool>,
    active: Arc<AtomicI64>,
    open_streams: Arc<AtomicI64>,
) {
    let engine = Arc::new(Engine::with_net(run.net.clone()));
    let sem = Arc::new(Semaphore::new(
        run.workload.shard.part_of(run.workload.concurrency),
    ));
    let mut calls = InFlight::default();
    let deadline = run.workload.deadline().and_then(|d| start.checked_add(d));
    for slot in run.workload.slots() {
        // Due times are at most MAX_DUE, which fits; a clock that cannot say when is the end.
        let due = match slot.due.map(|d| start.checked_add(d)) {
            Some(None) => break,
            due => due.flatten(),
        };
        if let Some(due) = due {
            if deadline.is_some_and(|end| due >= end) {
                break;
            }
            tokio::select! {
                _ = sleep_until(due) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.wait_for(|s| *s) => break,
            _ = async { match deadline { Some(d) => sleep_until(d).await, None => std::future::pending().await } } => break,
        };
        while let Some(cut) = calls.try_next() {
            send_cut(cut, &run, &tx).await;
        }
        let delay = due.map(|d| Instant::now().saturating_duration_since(d).as_micros() as u64);
        if tx.send(Msg::Started(delay)).await.is_err() {
            break;
        }
        let (tx, engine, active, open, lateness) = (
            tx.clone(),
            engine.clone(),
            active.clone(),
            open_streams.clone(),
            lateness.clone(),
        );
        active.fetch_add(1, Ordering::Relaxed);
        let run = run.clone();
        let index = slot.index;
        let measured: inflight::Slot =
            Arc::new(std::sync::Mutex::new(inflight::Measured::new(index)));
        let sink = call_sink(open, measured.clone());
        calls.spawn(measured.clone(), async move {
            // Made in here, where the call consumes it before its first await: a config
            // made outside would sit in the task, unused, for the call's whole life.
            let mut cfg = call_config(&run, index);
            cfg.frame_lateness = Some(lateness);
            cfg.keep_timeline = false;
            let result = engine
                .place_registered_call(cfg, Some(sink), run.registry.as_deref())
                .await;
            drop(permit);
            active.fetch_sub(1, Ordering::Relaxed);
            // Kept where a cut finds it while the call waits for its late milestones.
            lock(&measured).set_report(result.report);
            if let Some((_, grace)) = &run.milestones {
                // Apps report milestones asynchronously: give late ones a moment (the call's
                // concurrency slot is already free).
                tokio::time::sleep(*grace).await;
            }
            // No await between taking the report and sending it: a cut cannot lose it.
            let Ok(permit) = tx.reserve().await else {
                return;
            };
            if let Some(report) = lock(&measured).take_report() {
                permit.send(Msg::Done(Box::new(sample(&run, index, report))));
            }
        });
    }
    // Stopped or done dispatching: let calls in progress finish (bounded after a stop).
    let drain = async {
        while let Some(cut) = calls.next().await {
            send_cut(cut, &run, &tx).await;
        }
    };
    if *stop.borrow() {
        let _ = timeout(run.drain, drain).await;
    } else {
        tokio::select! {
            _ = drain => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        if *stop.borrow() {
            let rest = async {
                while let Some(cut) = calls.next().await {
                    send_cut(cut, &run, &tx).await;
                }
            };
            let _ = timeout(run.drain, rest).await;
        }
    }
    // Calls still running are cut; each still gives what it measured, as `interrupted`.
    calls.abort_all();
    while let Some(cut) = calls.next().await {
        send_cut(cut, &run, &tx).await;
    }
    active.store(0, Ordering::Relaxed);
}

fn lock(slot: &inflight::Slot) -> std::sync::MutexGuard<'_, inflight::Measured> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// A finished call's sample, with the app milestones that arrived for it.
fn sample(run: &CallRun, index: u64, mut report: dialtone_call::CallReport) -> CallSample {
    if let Some((events, _)) = &run.milestones {
        let records = events.take(&report.call_sid);
        dialtone_events::attach(&mut report, &records);
    }
    CallSample::from_report(index, report)
}

/// Sends the sample of a call task that did not send its own (cut, or panicked).
async fn send_cut(cut: Option<Cut>, run: &CallRun, tx: &mpsc::Sender<Msg>) {
    let s = match cut {
        None => return,
        Some(Cut::Ended(index, report)) => sample(run, index, report),
        Some(Cut::Measured(s)) => s,
    };
    let _ = tx.send(Msg::Done(Box::new(s))).await;
}

/// The call's event sink: counts open streams from its timeline (the live frames/s figure)
/// and records its measurements as they happen (kept if the call is cut).
fn call_sink(open: Arc<AtomicI64>, measured: inflight::Slot) -> EventSink {
    let record = inflight::recorder(measured);
    Arc::new(move |e: &CallEvent| {
        match e.kind {
            EventKind::StartSent { .. } => {
                open.fetch_add(1, Ordering::Relaxed);
            }
            EventKind::StreamClosed { .. } => {
                open.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        record(e);
    })
}

/// Call `index`'s config: the run's template with its seeded caller, audio and SID.
fn call_config(run: &CallRun, index: u64) -> CallConfig {
    let choice = run.callers.choose(run.workload.seed, index);
    let mut cfg = run.template.clone();
    cfg.from = choice.from.to_string();
    cfg.call_sid = Some(crate::plan::call_sid(run.workload.seed, index));
    // Stream SIDs and fault schedules follow the run's seed too.
    cfg.seed = Some(crate::plan::mix(run.workload.seed, index, 0xFA17));
    let caller = &mut cfg.caller;
    caller.audio = choice.audio.frames.clone();
    caller.turns = choice.audio.turns.clone();
    caller.tail = choice.profile.tail;
    caller.gather_digits = choice.profile.dtmf.clone();
    caller.stream_dtmf = choice.profile.stream_dtmf.clone();
    if let Some(h) = choice.profile.hangup_after {
        cfg.max_duration = cfg.max_duration.min(h);
    }
    cfg
}
