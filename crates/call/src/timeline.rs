//! The call's timeline: every step stamped relative to the call's start, kept for the report
//! and handed to an optional live observer (the CLI prints it as it happens).
//!
//! What is kept is bounded (the first and the last [`TIMELINE_HEAD`]/[`TIMELINE_TAIL`] steps;
//! the TwiML round trips as a histogram and their first [`WEBHOOK_SAMPLE`]), so a call that
//! loops or floods for hours costs counts, not memory. The live observer sees every step.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::capture::{Capture, Captured};
use crate::report::{CallEvent, EventKind};
use crate::retention::HeadTail;

/// Steps kept from the start of a call.
pub(crate) const TIMELINE_HEAD: usize = 500;
/// Steps kept from the end of a call.
pub(crate) const TIMELINE_TAIL: usize = 500;
/// TwiML round trips listed one by one in the report (all are in its histogram).
pub(crate) const WEBHOOK_SAMPLE: usize = 100;

/// What the timeline kept of a call.
pub(crate) struct Kept {
    /// The first and last steps, in order.
    pub(crate) events: Vec<CallEvent>,
    /// Steps left out between them.
    pub(crate) omitted: u64,
    /// The first TwiML round trips, ms.
    pub(crate) webhook_ms: Vec<f64>,
    /// TwiML requests answered.
    pub(crate) webhooks: u64,
    /// Every TwiML round trip, µs.
    pub(crate) webhook_us: crate::Latencies,
    /// Warnings background tasks raised (a status callback that failed), for the report.
    pub(crate) warnings: Vec<(u16, String)>,
    /// Such warnings past [`TASK_WARNINGS_KEPT`], counted.
    pub(crate) warnings_dropped: u64,
}

/// Warnings from background tasks a call keeps for its report (its own are bounded apart).
const TASK_WARNINGS_KEPT: usize = 50;

struct Store {
    events: HeadTail<CallEvent>,
    webhook_ms: Vec<f64>,
    webhooks: u64,
    webhook_us: crate::Latencies,
    warnings: Vec<(u16, String)>,
    warnings_dropped: u64,
}

impl Store {
    fn new(keep: bool) -> Self {
        let (head, tail) = if keep {
            (TIMELINE_HEAD, TIMELINE_TAIL)
        } else {
            (0, 0)
        };
        Self {
            events: HeadTail::new(head, tail),
            webhook_ms: Vec::new(),
            webhooks: 0,
            webhook_us: crate::Latencies::new(crate::marks::new_mark_histogram),
            warnings: Vec::new(),
            warnings_dropped: 0,
        }
    }
}

/// Receives each event as it happens.
pub type EventSink = Arc<dyn Fn(&CallEvent) + Send + Sync>;

/// Shared by the executor and the stream tasks of one call.
pub(crate) struct Timeline {
    t0: Instant,
    store: Mutex<Store>,
    sink: Option<EventSink>,
    /// Where every exchange goes with `--capture`, and the call it belongs to.
    capture: Option<(Arc<Capture>, String)>,
}

impl Timeline {
    /// A timeline starting now; `keep`: the steps are kept for the report (else only
    /// counted).
    pub(crate) fn new(
        sink: Option<EventSink>,
        capture: Option<(Arc<Capture>, String)>,
        keep: bool,
    ) -> Self {
        Self {
            t0: Instant::now(),
            store: Mutex::new(Store::new(keep)),
            sink,
            capture,
        }
    }

    /// True when exchanges are being captured (callers skip building records otherwise).
    pub(crate) fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// Captures one exchange, stamped relative to the call's start.
    pub(crate) fn capture(&self, what: &Captured<'_>) {
        if let Some((c, call_sid)) = &self.capture {
            c.record(self.t0.elapsed().as_secs_f64() * 1e3, call_sid, what);
        }
    }

    /// Stamps a step, hands it to the sink and keeps it; returns its stamp.
    pub(crate) fn emit(&self, kind: EventKind) -> Duration {
        let at = self.t0.elapsed();
        let event = CallEvent { at, kind };
        if let Some(sink) = &self.sink {
            sink(&event);
        }
        let mut store = self.store.lock().expect("timeline lock");
        if let EventKind::WebhookAnswered { elapsed, .. } = &event.kind {
            store.webhooks += 1;
            if store.webhook_ms.len() < WEBHOOK_SAMPLE {
                store.webhook_ms.push(elapsed.as_secs_f64() * 1e3);
            }
            store.webhook_us.record((elapsed.as_micros() as u64).max(1));
        }
        store.events.push(event);
        at
    }

    /// A warning step raised off the call's own path (a background task's failed callback):
    /// on the timeline, and, when it is a plain [`EventKind::Warning`], kept for the
    /// report's warnings.
    pub(crate) fn warn(&self, step: EventKind) {
        let kept = match &step {
            EventKind::Warning { code, message } => Some((*code, message.clone())),
            _ => None,
        };
        self.emit(step);
        let mut store = self.store.lock().expect("timeline lock");
        if let Some(w) = kept {
            if store.warnings.len() < TASK_WARNINGS_KEPT {
                store.warnings.push(w);
            } else {
                store.warnings_dropped += 1;
            }
        }
    }

    /// Takes what was kept, leaving the timeline empty.
    pub(crate) fn take(&self) -> Kept {
        let store = std::mem::replace(
            &mut *self.store.lock().expect("timeline lock"),
            Store::new(false),
        );
        let (events, omitted) = store.events.into_parts();
        Kept {
            events,
            omitted,
            webhook_ms: store.webhook_ms,
            webhooks: store.webhooks,
            webhook_us: store.webhook_us,
            warnings: store.warnings,
            warnings_dropped: store.warnings_dropped,
        }
    }
}
