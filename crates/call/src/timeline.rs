//! The call's timeline: every step stamped relative to the call's start, kept for the report
//! and handed to an optional live observer (the CLI prints it as it happens).

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::report::{CallEvent, EventKind};

/// Receives each event as it happens.
pub type EventSink = Arc<dyn Fn(&CallEvent) + Send + Sync>;

/// Shared by the executor and the stream tasks of one call.
pub(crate) struct Timeline {
    t0: Instant,
    events: Mutex<Vec<CallEvent>>,
    sink: Option<EventSink>,
}

impl Timeline {
    pub(crate) fn new(sink: Option<EventSink>) -> Self {
        Self {
            t0: Instant::now(),
            events: Mutex::new(Vec::new()),
            sink,
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
