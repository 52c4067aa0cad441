//! Milestone reporting: the bot tells an events endpoint (dialtone's, or any) what it
//! really detected and when, as JSON milestone records (`docs/milestones.md`).
//!
//! The media loop must never wait on this. Records go into a bounded channel with
//! `try_send`; one background task POSTs them. When the channel is full (the endpoint is
//! slow or down) a record is dropped and counted, never queued without bound. Records
//! already queued when the task wakes are sent together as one JSON array.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

/// Records waiting to be POSTed. About 30 s of a busy call's milestones, or a few
/// hundred calls' worth of one turn each.
pub(crate) const QUEUE_CAPACITY: usize = 1024;

/// Most records in one POST.
const MAX_BATCH: usize = 64;

/// An endpoint slower than this loses the request (counted as failed) rather than
/// holding up every record behind it.
const POST_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters of the reporter, shared with whoever wants to read them.
#[derive(Debug, Default)]
pub(crate) struct EventCounters {
    /// Records delivered (the endpoint answered 2xx).
    pub(crate) sent: AtomicU64,
    /// Records dropped because the queue was full.
    pub(crate) dropped: AtomicU64,
    /// Records lost because the POST failed (connection error, timeout, non-2xx).
    pub(crate) failed: AtomicU64,
}

/// One milestone record, as POSTed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) call_sid: String,
    pub(crate) name: &'static str,
    /// Wall-clock time of the detection, epoch milliseconds.
    pub(crate) ts_ms: i64,
    /// The media timestamp it refers to (stream ms), for debugging; not in the schema,
    /// so receivers ignore it.
    pub(crate) stream_ms: Option<u64>,
}

impl Record {
    fn to_json(&self) -> serde_json::Value {
        let mut obj = serde_json::json!({
            "call_sid": self.call_sid,
            "name": self.name,
            "ts": self.ts_ms,
        });
        if let Some(ms) = self.stream_ms {
            obj["stream_ms"] = ms.into();
        }
        obj
    }
}

/// Wall-clock now in epoch milliseconds. Milestones are compared with another
/// machine's clock (dialtone's), so this is `SystemTime`, not a monotonic instant.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The sending half: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    tx: mpsc::Sender<Record>,
    counters: Arc<EventCounters>,
}

impl Reporter {
    /// Starts the background task POSTing to `url`. Must run inside a tokio runtime.
    /// The task ends once every `Reporter` clone is dropped and the queue is drained.
    pub(crate) fn spawn(url: String, capacity: usize, counters: Arc<EventCounters>) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(post_loop(url, rx, Arc::clone(&counters)));
        Self { tx, counters }
    }

    /// The counters shared with the background task.
    pub(crate) fn counters(&self) -> &EventCounters {
        &self.counters
    }

    /// Queues `record`, or drops and counts it when the queue is full.
    pub(crate) fn report(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            let before = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            // One warning says the endpoint is behind; the count says by how much.
            if before == 0 {
                tracing::warn!("milestone queue full: dropping records (endpoint too slow?)");
            }
        }
    }
}

async fn post_loop(url: String, mut rx: mpsc::Receiver<Record>, counters: Arc<EventCounters>) {
    let client = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "cannot build the milestone HTTP client");
            return;
        }
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        // One record goes as an object, as most apps would send it; several as an array.
        let body = if batch.len() == 1 {
            batch[0].to_json()
        } else {
            serde_json::Value::Array(batch.iter().map(Record::to_json).collect())
        };
        let n = batch.len() as u64;
        batch.clear();
        let result = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                counters.sent.fetch_add(n, Ordering::Relaxed);
            }
            Ok(resp) => {
                counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::debug!(status = %resp.status(), "milestone POST refused");
            }
            Err(err) => {
                counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::debug!(%err, "milestone POST failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            call_sid: "CA1".into(),
            name: "vad.speech_end",
            ts_ms: 1_732_460_000_000,
            stream_ms: Some(i),
        }
    }

    #[test]
    fn record_json_follows_the_schema() {
        assert_eq!(
            record(7).to_json().to_string(),
            r#"{"call_sid":"CA1","name":"vad.speech_end","stream_ms":7,"ts":1732460000000}"#
        );
    }

    /// An endpoint that accepts connections and never answers: the queue fills, the
    /// rest is dropped and counted, and `report` never waits.
    #[tokio::test]
    async fn a_stuck_endpoint_costs_counted_drops_not_waiting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/events", listener.local_addr().expect("addr"));
        let (accepted_tx, accepted) = tokio::sync::oneshot::channel();
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            let _ = accepted_tx.send(());
            // Hold the connection open, never answering.
            std::future::pending::<()>().await;
            drop(socket);
        });
        let counters = Arc::new(EventCounters::default());
        let reporter = Reporter::spawn(url, 4, Arc::clone(&counters));
        // The task takes the first record and gets stuck on its POST.
        reporter.report(record(0));
        accepted.await.expect("the reporter connected");
        for i in 1..=100 {
            reporter.report(record(i));
        }
        // Four fit in the queue behind the stuck one; 96 are dropped, none waited for.
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 96);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 0);
        hold.abort();
    }
}
