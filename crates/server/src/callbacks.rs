//! Status callbacks, signed like every Twilio request: call progress events
//! (`initiated`, `ringing`, `answered`, `completed`) to the call's `StatusCallback` with
//! Twilio's parameters, and stream status events (`stream-started`, `stream-stopped`,
//! `stream-error`) to a `<Stream statusCallback>`.
//!
//! Each call leg has one bounded queue and one sender task, so its callbacks leave in firing
//! order; a full queue drops the callback and says so in the call's timeline (Twilio does
//! not retry either). Responses are ignored; failures are noted as warning 15003.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dialtone_call::HttpMethod;
use dialtone_protocol::webhook::{self, CallInfo};
use tokio::sync::mpsc;

use crate::Shared;
use crate::format::{iso8601, rfc2822};

/// Stream status callbacks waiting to be sent for one leg; more are dropped (logged). Call
/// progress events are never dropped: a leg has at most one of each (four), so they need
/// no bound of their own.
const QUEUE: usize = 32;
/// How long one callback may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Where a call's progress events go and which are wanted.
#[derive(Debug, Clone)]
pub(crate) struct CallbackTarget {
    pub(crate) url: String,
    pub(crate) method: HttpMethod,
    /// Subscribed events; `completed` stands for every terminal status.
    pub(crate) events: Vec<String>,
}

/// A stream's `statusCallback`.
#[derive(Debug, Clone)]
pub(crate) struct StreamTarget {
    pub(crate) url: String,
    pub(crate) method: HttpMethod,
    pub(crate) name: Option<String>,
}

struct Job {
    url: String,
    method: HttpMethod,
    params: Vec<(String, String)>,
    what: String,
    /// A stream status callback (counted against [`QUEUE`]).
    stream: bool,
}

/// One leg's callback sender.
pub(crate) struct Callbacks {
    shared: Arc<Shared>,
    call_sid: String,
    info: CallInfo,
    target: Option<CallbackTarget>,
    seq: AtomicU32,
    tx: mpsc::UnboundedSender<Job>,
    /// Stream status callbacks queued and not yet sent.
    streams_waiting: Arc<AtomicUsize>,
}

impl Callbacks {
    /// A sender for the leg `info` (signed with its account's token). It holds `guard`, the
    /// call task's, so shutdown waits for its last callback (a call ended by the shutdown
    /// itself still reports `canceled`).
    pub(crate) fn new(
        shared: Arc<Shared>,
        info: CallInfo,
        target: Option<CallbackTarget>,
        guard: mpsc::Sender<()>,
    ) -> Self {
        // Unbounded, but only in name: progress events are at most four, and stream events
        // are held to QUEUE by `streams_waiting`.
        let (tx, rx) = mpsc::unbounded_channel();
        let streams_waiting = Arc::new(AtomicUsize::new(0));
        tokio::spawn(send_all(
            shared.clone(),
            info.call_sid.clone(),
            rx,
            streams_waiting.clone(),
            guard,
        ));
        Self {
            streams_waiting,
            call_sid: info.call_sid.clone(),
            shared,
            info,
            target,
            seq: AtomicU32::new(0),
            tx,
        }
    }

    /// Sends progress `event` (`initiated|ringing|answered|completed`) with `CallStatus`
    /// `status`, if subscribed; `extra` adds terminal fields.
    pub(crate) fn progress(&self, event: &str, status: &str, extra: Vec<(String, String)>) {
        let Some(target) = &self.target else { return };
        if !target.events.iter().any(|e| e == event) {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let params =
            webhook::progress_params(&self.info, status, seq, rfc2822(SystemTime::now()), extra);
        self.enqueue(Job {
            url: target.url.clone(),
            method: target.method,
            params,
            what: format!("status callback {event} ({status})"),
            stream: false,
        });
    }

    /// Sends a stream status event to the stream's own callback.
    pub(crate) fn stream(
        &self,
        target: &StreamTarget,
        stream_sid: &str,
        event: &str,
        error: Option<String>,
    ) {
        let mut params = vec![
            ("AccountSid".to_string(), self.info.account_sid.clone()),
            ("CallSid".to_string(), self.info.call_sid.clone()),
            ("StreamEvent".to_string(), event.to_string()),
            (
                "StreamName".to_string(),
                target
                    .name
                    .clone()
                    .unwrap_or_else(|| stream_sid.to_string()),
            ),
            ("StreamSid".to_string(), stream_sid.to_string()),
            ("Timestamp".to_string(), iso8601(SystemTime::now())),
        ];
        if let Some(e) = error {
            params.push(("StreamError".into(), e));
        }
        webhook::sort_params(&mut params);
        self.enqueue(Job {
            url: target.url.clone(),
            method: target.method,
            params,
            what: format!("stream status callback {event}"),
            stream: true,
        });
    }

    fn enqueue(&self, job: Job) {
        if job.stream && self.streams_waiting.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            self.streams_waiting.fetch_sub(1, Ordering::Relaxed);
            self.shared.store.log(
                &self.call_sid,
                "warn",
                format!(
                    "{} dropped: {QUEUE} stream callbacks already waiting",
                    job.what
                ),
            );
            return;
        }
        // The sender task outlives every leg (it holds the receiver until the last sender
        // goes), so a send cannot fail while `self` exists.
        let _ = self.tx.send(job);
    }
}

async fn send_all(
    shared: Arc<Shared>,
    call_sid: String,
    mut rx: mpsc::UnboundedReceiver<Job>,
    streams_waiting: Arc<AtomicUsize>,
    _guard: mpsc::Sender<()>,
) {
    while let Some(job) = rx.recv().await {
        let outcome = send(&shared, &job).await;
        if job.stream {
            streams_waiting.fetch_sub(1, Ordering::Relaxed);
        }
        let (level, text) = match outcome {
            Ok(status) if (200..300).contains(&status) => {
                ("info", format!("{} → HTTP {status}", job.what))
            }
            Ok(status) => (
                "warn",
                format!("{} → HTTP {status} (warning 15003)", job.what),
            ),
            Err(e) => ("warn", format!("{} failed: {e} (warning 15003)", job.what)),
        };
        shared.store.log(&call_sid, level, text);
    }
}

async fn send(shared: &Shared, job: &Job) -> Result<u16, String> {
    let token = signing_token(shared, &job.params);
    let url = url::Url::parse(&job.url).map_err(|e| format!("bad URL {:?}: {e}", job.url))?;
    let req =
        dialtone_call::net::Request::twilio(job.method.into(), &url, &token, &job.params, TIMEOUT)
            .map_err(|e| e.to_string())?;
    let resp = shared
        .net
        .send(&shared.tunnels, req)
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.inner.status().as_u16())
}

/// Callbacks are signed with the token of the account in their `AccountSid`.
fn signing_token(shared: &Shared, params: &[(String, String)]) -> String {
    params.iter().find(|(n, _)| n == "AccountSid").map_or_else(
        || crate::config::DEFAULT_AUTH_TOKEN.to_string(),
        |(_, sid)| shared.auth_token(sid),
    )
}
