//! A queue step on a call's timeline, and its words.

use serde::Serialize;

/// An `<Enqueue>` or `<Dial><Queue>` step.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum QueueEvent {
    /// The call joined a queue.
    Enqueued {
        /// The queue's name.
        queue: String,
        /// `QU…`.
        queue_sid: String,
        /// 1 for the front.
        position: u32,
    },
    /// The call left its queue; its `QueueResult`.
    Left {
        /// `QU…` (empty when it never got in).
        queue_sid: String,
        /// `bridged`, `leave`, `hangup`, `redirected`, `queue-full`, `error`.
        result: &'static str,
        /// `QueueTime`, s.
        queue_time_s: u64,
    },
    /// A bridge between a member and a dequeuing call began.
    Bridged {
        /// The other call.
        with: String,
        /// `QU…`.
        queue_sid: String,
        /// How long the member waited, s.
        queue_time_s: u64,
    },
    /// The bridge ended.
    BridgeEnded {
        /// How long it lasted, s.
        duration_s: u64,
        /// Why, in words.
        why: String,
    },
}

impl QueueEvent {
    /// Step, level and words (see [`crate::EventText`]).
    pub(crate) fn text(&self) -> (&'static str, &'static str, String) {
        match self {
            Self::Enqueued {
                queue,
                queue_sid,
                position,
            } => (
                "queue",
                "info",
                format!("joined queue {queue:?} ({queue_sid}) at position {position}"),
            ),
            Self::Left {
                queue_sid,
                result,
                queue_time_s,
            } => (
                "queue",
                match *result {
                    "error" | "queue-full" => "warn",
                    _ => "ok",
                },
                if queue_sid.is_empty() {
                    format!("not enqueued: {result}")
                } else {
                    format!("left {queue_sid} after {queue_time_s} s: {result}")
                },
            ),
            Self::Bridged {
                with,
                queue_sid,
                queue_time_s,
            } => (
                "queue",
                "ok",
                format!("bridged with {with} ({queue_sid}, waited {queue_time_s} s)"),
            ),
            Self::BridgeEnded { duration_s, why } => (
                "queue",
                "info",
                format!("bridge ended after {duration_s} s: {why}"),
            ),
        }
    }
}
