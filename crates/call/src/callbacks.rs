//! Signed status callbacks sent in order by one task per source (a dialed leg, a
//! conference, a transcription). None is dropped: whoever owns the source awaits the task
//! before it reports (each request is bounded by Twilio's 15 s), and a failure is a warning
//! (15003, or the source's own step) on the timeline of the call that asked for the
//! callbacks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::HttpMethod;
use crate::report::EventKind;
use crate::timeline::Timeline;

/// How long one callback may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// One callback: what it is, in words, and its parameters.
type Job = (String, Vec<(String, String)>);

/// The timeline step for a callback that failed, from its words.
pub(crate) type Warning = fn(String) -> EventKind;

/// Where callbacks go and how they are signed.
pub(crate) struct Sender {
    pub(crate) url: String,
    pub(crate) method: HttpMethod,
    pub(crate) auth_token: String,
    pub(crate) net: dialtone_net::Net,
    pub(crate) tunnels: Arc<dialtone_net::Tunnels>,
    /// Gets a warning for each callback that fails (the log does when there is no call to
    /// tell, as for a conference's REST-created participants).
    pub(crate) timeline: Option<Arc<Timeline>>,
}

/// An ordered queue of callbacks to one URL.
pub(crate) struct Queue {
    tx: Option<mpsc::UnboundedSender<Job>>,
    task: Option<JoinHandle<()>>,
}

impl Queue {
    /// Sends through `to`; `kind` names the callbacks in warnings ("conference status
    /// callback"), whose code is 15003 (an HTTP callback's failure).
    pub(crate) fn new(kind: &'static str, to: Sender) -> Self {
        Self::with_warning(kind, to, |message| EventKind::Warning {
            code: 15003,
            message,
        })
    }

    /// Like [`Queue::new`], with the step a failed callback puts on the timeline, made from
    /// its words (a real-time transcription's carries Twilio's 94100).
    pub(crate) fn with_warning(kind: &'static str, to: Sender, warning: Warning) -> Self {
        // Unbounded in name only: its sources send a bounded number of events (a leg four,
        // a conference a few per participant action, each caller-driven; a transcription
        // its bounded results).
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx: Some(tx),
            task: Some(tokio::spawn(send_all(kind, warning, to, rx))),
        }
    }

    /// Queues one callback; `what` says which, in words.
    pub(crate) fn push(&self, what: String, params: Vec<(String, String)>) {
        if let Some(tx) = &self.tx {
            // The task holds the receiver until every sender is gone.
            let _ = tx.send((what, params));
        }
    }

    /// Closes the queue; the returned task ends once the last callback is answered.
    pub(crate) fn finish(mut self) -> Option<JoinHandle<()>> {
        self.tx = None;
        self.task.take()
    }
}

async fn send_all(
    kind: &'static str,
    warning: Warning,
    to: Sender,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    while let Some((what, params)) = rx.recv().await {
        let outcome = send(&to, &params).await;
        let problem = match outcome {
            Ok(status) if (200..300).contains(&status) => None,
            Ok(status) => Some(format!("answered HTTP {status}")),
            Err(e) => Some(e),
        };
        if let Some(p) = problem {
            let message = format!("{kind} {what} to {}: {p}", to.url);
            match &to.timeline {
                Some(t) => t.warn(warning(message)),
                None => tracing::warn!("{message}"),
            }
        }
    }
}

async fn send(to: &Sender, params: &[(String, String)]) -> Result<u16, String> {
    let url = url::Url::parse(&to.url).map_err(|e| format!("bad URL: {e}"))?;
    let req =
        dialtone_net::Request::twilio(to.method.into(), &url, &to.auth_token, params, TIMEOUT)
            .map_err(|e| e.to_string())?;
    let resp = to
        .net
        .send(&to.tunnels, req)
        .await
        .map_err(|e| dialtone_net::root_cause(&e))?;
    Ok(resp.inner.status().as_u16())
}
