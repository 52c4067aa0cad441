//! A dialed leg's `<Number statusCallback>`: progress events (`initiated`, `ringing`,
//! `answered`, `completed`) with Twilio's parameters, signed, sent in order (see
//! [`crate::callbacks`]); the call waits for them before it reports.

use std::time::SystemTime;

use dialtone_protocol::webhook::{self, CallInfo};
use tokio::task::JoinHandle;

use crate::callbacks::{Queue, Sender};

/// Where a leg's events go and which are wanted.
pub(crate) struct LegCallbacks {
    info: CallInfo,
    events: Vec<String>,
    seq: u32,
    queue: Option<Queue>,
}

impl LegCallbacks {
    /// A leg without a status callback: nothing is sent.
    pub(crate) fn none(info: CallInfo) -> Self {
        Self {
            info,
            events: Vec::new(),
            seq: 0,
            queue: None,
        }
    }

    /// Sends the leg `info`'s subscribed `events` through `to`.
    pub(crate) fn new(info: CallInfo, events: Vec<String>, to: Sender) -> Self {
        Self {
            info,
            events,
            seq: 0,
            queue: Some(Queue::new("dialed leg status callback", to)),
        }
    }

    /// Progress `event` with `CallStatus` `status`; `extra` adds terminal fields.
    pub(crate) fn progress(&mut self, event: &str, status: &str, extra: Vec<(String, String)>) {
        let Some(queue) = &self.queue else { return };
        if !self.events.iter().any(|e| e == event) {
            return;
        }
        let params = webhook::progress_params(
            &self.info,
            status,
            self.seq,
            webhook::rfc2822(SystemTime::now()),
            extra,
        );
        self.seq += 1;
        queue.push(format!("{event} ({status})"), params);
    }

    /// Closes the queue; the returned task ends once the last callback is answered.
    pub(crate) fn finish(self) -> Option<JoinHandle<()>> {
        self.queue.and_then(Queue::finish)
    }
}
