//! The call's timeline: every step stamped relative to the call's start, kept for the report
//! and handed to an optional live observer (the CLI prints it as it happens).

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::capture::{Capture, Captured};
use crate::report::{CallEvent, EventKind};

/// Receives each event as it happens.
pub type EventSink = Arc<dyn Fn(&CallEvent) + Send + Sync>;

/// Shared by the executor and the stream tasks of one call.
pub(crate) struct Timeline {
    t0: Instant,
    events: Mutex<Vec<CallEvent>>,
    sink: Option<EventSink>,
    /// Where every exchange goes with `--capture`, and the call it belongs to.
    capture: Option<(Arc<Capture>, String)>,
}

impl Timeline {
    pub(crate) fn new(sink: Option<EventSink>, capture: Option<(Arc<Capture>, String)>) -> Self {
        Self {
            t0: Instant::now(),
            events: Mutex::new(Vec::new()),
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

    pub(crate) fn emit(&self, kind: EventKind) {
        let event = CallEvent {
            at: self.t0.elapsed(),
            kind,
        };
        if let Some(sink) = &self.sink {
            sink(&event);
        }
        self.events.lock().expect("timeline lock").push(event);
    }

    pub(crate) fn take(&self) -> Vec<CallEvent> {
        std::mem::take(&mut *self.events.lock().expect("timeline lock"))
    }
}
