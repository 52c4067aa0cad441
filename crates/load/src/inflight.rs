//! The calls of a run in progress, so that one cut by a stop (Ctrl-C, SIGTERM after
//! `--drain`) or lost to a panic still gives what was measured before: each call's event sink
//! records its measurements as they happen (webhook and WebSocket connect round trips, first
//! app audio, mark echoes), and a call that finished but was cut while waiting for its late
//! milestones keeps its whole report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dialtone_call::{CallEvent, CallReport, EventKind, EventSink, Outcome};
use tokio::task::{Id, JoinError, JoinSet};

use crate::metrics::Metric;
use crate::sample::CallSample;

/// Most measurements kept for a call that never reports: a call that redirects or marks
/// without end costs a bounded buffer, and its first 4,096 samples still count.
pub const MAX_KEPT: usize = 4096;

/// What one call has measured so far.
#[derive(Default)]
pub struct Measured {
    /// The call's index in the run's schedule.
    index: u64,
    /// Scalar measurements in µs, in the order they happened (at most [`MAX_KEPT`]).
    values: Vec<(Metric, u64)>,
    /// The call's report once the call has ended (the task may still wait for milestones).
    report: Option<CallReport>,
}

/// One call's shared record: written by its event sink and its task, read when it is cut.
pub type Slot = Arc<Mutex<Measured>>;

impl Measured {
    /// Nothing measured yet for call `index`.
    pub fn new(index: u64) -> Self {
        Self {
            index,
            ..Self::default()
        }
    }

    /// The call's index in the run's schedule.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Keeps the call's report (taken back by [`Measured::take_report`] when it is sent).
    pub fn set_report(&mut self, report: CallReport) {
        self.report = Some(report);
    }

    /// The kept report, if the call ended and it was not sent yet.
    pub fn take_report(&mut self) -> Option<CallReport> {
        self.report.take()
    }

    fn record(&mut self, e: &CallEvent) {
        let (metric, d) = match &e.kind {
            EventKind::WebhookAnswered { elapsed, .. } => (Metric::Webhook, elapsed),
            EventKind::StreamConnected { elapsed, .. } => (Metric::WsConnect, elapsed),
            EventKind::FirstAudioBack { after_start, .. } => (Metric::FirstAudio, after_start),
            EventKind::MarkEchoed { round_trip, .. } => (Metric::MarkRoundTrip, round_trip),
            _ => return,
        };
        if self.values.len() < MAX_KEPT {
            // Rounded as the report's ms values are when a finished call is reduced.
            let us = (d.as_secs_f64() * 1e6).round() as u64;
            self.values.push((metric, us));
        }
    }
}

/// An event sink that records the call's measurements into `slot` as they happen.
pub fn recorder(slot: Slot) -> EventSink {
    Arc::new(move |e: &CallEvent| {
        if let Ok(mut m) = slot.lock() {
            m.record(e);
        }
    })
}

/// The call tasks of a run, each with its slot.
#[derive(Default)]
pub struct InFlight {
    tasks: JoinSet<()>,
    slots: HashMap<Id, Slot>,
}

impl InFlight {
    /// Runs a call task that uses `slot`.
    pub fn spawn(
        &mut self,
        slot: Slot,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let id = self.tasks.spawn(task).id();
        self.slots.insert(id, slot);
    }

    /// Calls still running.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when no call is running.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next call task to end: `None` when none is left, `Some(None)` when it
    /// sent its own sample, `Some(Some(cut))` when it panicked or was cut (what it measured).
    pub async fn next(&mut self) -> Option<Option<Cut>> {
        let r = self.tasks.join_next_with_id().await?;
        Some(self.ended(r))
    }

    /// [`InFlight::next`] without waiting: `None` when no task has ended.
    pub fn try_next(&mut self) -> Option<Option<Cut>> {
        let r = self.tasks.try_join_next_with_id()?;
        Some(self.ended(r))
    }

    /// Cuts every call still running (their tasks end as cancelled: see [`InFlight::next`]).
    pub fn abort_all(&mut self) {
        self.tasks.abort_all();
    }

    fn ended(&mut self, r: Result<(Id, ()), JoinError>) -> Option<Cut> {
        let (id, outcome) = match &r {
            Ok((id, ())) => {
                self.slots.remove(id);
                return None;
            }
            Err(e) if e.is_panic() => (e.id(), Outcome::DialtonePanic),
            Err(e) => (e.id(), Outcome::Interrupted),
        };
        let slot = self.slots.remove(&id)?;
        let mut m = std::mem::take(&mut *slot.lock().unwrap_or_else(|p| p.into_inner()));
        Some(match m.report.take() {
            Some(report) if outcome == Outcome::Interrupted => Cut::Ended(m.index, report),
            _ => {
                let mut s = CallSample::outcome_only(m.index, outcome);
                s.values = m.values;
                Cut::Measured(s)
            }
        })
    }
}

/// A call task that did not send its own sample.
pub enum Cut {
    /// The call (by its index) ended; only its wait for late milestones was cut: its whole
    /// report.
    Ended(u64, CallReport),
    /// Cut while running (`interrupted`) or panicked (`dialtone_panic`): what it measured.
    Measured(CallSample),
}
