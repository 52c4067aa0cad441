//! A dialed leg's `<Number statusCallback>`: progress events (`initiated`, `ringing`,
//! `answered`, `completed`) with Twilio's parameters, signed, sent in order by one task per
//! leg. None is dropped: the call waits for them before it reports (each bounded by
//! Twilio's 15 s), and a failure is a warning (15003) on the call's timeline.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dialtone_protocol::webhook::{self, CallInfo};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::HttpMethod;
use crate::report::EventKind;
use crate::timeline::Timeline;

/// How long one callback may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// One callback: what it is, in words, and its parameters.
type Job = (String, Vec<(String, String)>);

/// Where a leg's events go and which are wanted.
pub(crate) struct LegCallbacks {
    info: CallInfo,
    events: Vec<String>,
    seq: u32,
    tx: Option<mpsc::UnboundedSender<Job>>,
    task: Option<JoinHandle<()>>,
}

/// What a sender needs from its call.
pub(crate) struct Sender {
    pub(crate) url: String,
    pub(crate) method: HttpMethod,
    pub(crate) auth_token: String,
    pub(crate) net: dialtone_net::Net,
    pub(crate) tunnels: Arc<dialtone_net::Tunnels>,
    pub(crate) timeline: Arc<Timeline>,
}

impl LegCallbacks {
    /// A leg without a status callback: nothing is sent.
    pub(crate) fn none(info: CallInfo) -> Self {
        Self {
            info,
            events: Vec::new(),
            seq: 0,
            tx: None,
            task: None,
        }
    }

    /// Sends the leg `info`'s subscribed `events` through `to`.
    pub(crate) fn new(info: CallInfo, events: Vec<String>, to: Sender) -> Self {
        // Unbounded in name only: a leg has at most four events.
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            info,
            events,
            seq: 0,
            tx: Some(tx),
            task: Some(tokio::spawn(send_all(to, rx))),
        }
    }

    /// Progress `event` with `CallStatus` `status`; `extra` adds terminal fields.
    pub(crate) fn progress(&mut self, event: &str, status: &str, extra: Vec<(String, String)>) {
        let Some(tx) = &self.tx else { return };
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
        // The task holds the receiver until every sender is gone.
        let _ = tx.send((format!("{event} ({status})"), params));
    }

    /// Closes the queue; the returned task ends once the last callback is answered.
    pub(crate) fn finish(mut self) -> Option<JoinHandle<()>> {
        self.tx = None;
        self.task.take()
    }
}

async fn send_all(to: Sender, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some((what, params)) = rx.recv().await {
        let outcome = send(&to, &params).await;
        let problem = match outcome {
            Ok(status) if (200..300).contains(&status) => None,
            Ok(status) => Some(format!("answered HTTP {status}")),
            Err(e) => Some(e),
        };
        if let Some(p) = problem {
            to.timeline.emit(EventKind::Warning {
                code: 15003,
                message: format!("dialed leg status callback {what} to {}: {p}", to.url),
            });
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
