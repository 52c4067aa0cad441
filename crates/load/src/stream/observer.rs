//! What a bare stream tells its run: counters and histograms into its worker's interval
//! (the tally takes them once a second), its outcome class at the end.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_call::plane::Observer;
use dialtone_call::{Outcome, StreamOutcome};

use crate::metrics::Metric;
use crate::tally::WorkerInterval;

/// One stream's reporter.
pub(super) struct LeanObserver {
    interval: Arc<Mutex<WorkerInterval>>,
    active: Arc<AtomicI64>,
    /// A stop came: streams not connecting yet never start.
    cancel: Arc<AtomicBool>,
    done: Sender<()>,
    frames: u64,
    /// The stream's index in the run (its per-call record).
    index: u64,
    connecting: bool,
}

impl LeanObserver {
    pub(super) fn new(
        interval: Arc<Mutex<WorkerInterval>>,
        active: Arc<AtomicI64>,
        cancel: Arc<AtomicBool>,
        done: Sender<()>,
        frames: u64,
        index: u64,
    ) -> Self {
        Self {
            interval,
            active,
            cancel,
            done,
            frames,
            index,
            connecting: false,
        }
    }

    fn with(&self, f: impl FnOnce(&mut WorkerInterval)) {
        // A poisoned lock only means another stream's reporter panicked: count on.
        let mut i = self.interval.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut i);
    }
}

impl Observer for LeanObserver {
    fn wants_text(&self) -> bool {
        false
    }

    fn should_start(&mut self) -> bool {
        !self.cancel.load(Ordering::Relaxed)
    }

    fn connecting(&mut self) {
        self.connecting = true;
        self.active.fetch_add(1, Ordering::Relaxed);
        let frames = self.frames;
        self.with(|i| {
            i.started += 1;
            i.expected += frames;
        });
    }

    fn connected(&mut self, elapsed: Duration) {
        self.with(|i| i.rec.record(Metric::WsConnect, elapsed.as_micros() as u64));
    }

    fn frame(&mut self, lateness_us: u64) {
        self.with(|i| {
            i.rec.record(Metric::FrameLateness, lateness_us);
            i.frames += 1;
        });
    }

    fn first_audio(&mut self, after_us: u64) {
        self.with(|i| i.rec.record(Metric::FirstAudio, after_us));
    }

    fn app_media(&mut self) {
        self.with(|i| i.app_media += 1);
    }

    fn mark_echoed(&mut self, round_trip_us: u64) {
        self.with(|i| i.rec.record(Metric::MarkRoundTrip, round_trip_us));
    }

    fn backpressured(&mut self) {
        self.with(|i| i.backpressured += 1);
    }

    fn finished(self: Box<Self>, outcome: StreamOutcome, interrupted: bool) {
        if self.connecting {
            self.active.fetch_sub(1, Ordering::Relaxed);
            let class = class(&outcome, interrupted);
            let index = self.index;
            self.with(|i| {
                i.finished += 1;
                *i.outcomes.entry(class).or_default() += 1;
                i.calls.push((index, class));
            });
        }
        let _ = self.done.send(());
    }
}

/// The stream's outcome class, in the vocabulary full calls use.
fn class(o: &StreamOutcome, interrupted: bool) -> Outcome {
    match o.failures.first() {
        Some(f) => Outcome::from(f),
        None if interrupted => Outcome::Interrupted,
        None if o.report.closed_by == "app" => Outcome::ClosedByApp,
        None => Outcome::Ok,
    }
}
