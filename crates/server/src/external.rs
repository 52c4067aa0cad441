//! Calls the server did not create — placed by `dialtone call` or `dialtone load` — followed
//! through the call engine's [`CallRegistry`] hook. They are listed and fetched like the
//! server's own calls (`ringing`, `in-progress` from the first TwiML that does not
//! `<Reject>`, then the final status), and hung up or redirected by the same
//! `Calls/{CA}.json` update. The store's `history` bound forgets the oldest finished ones, so
//! a long load run keeps a bounded number.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use dialtone_call::{CallConfig, CallEvent, CallHandle, CallRegistry, CallReport, EventKind};
use dialtone_call::{EventSink, REST_HANGUP};
use dialtone_protocol::webhook::CallStatus;

use crate::observe::describe;
use crate::store::{CallRecord, Control};
use crate::{Shared, Simulator};

/// Registers calls placed elsewhere with a [`Simulator`]'s REST API (see the module docs).
pub struct ExternalCalls {
    shared: Arc<Shared>,
    timelines: bool,
}

impl Simulator {
    /// A [`CallRegistry`] that lists the calls registered with it in this simulator's REST
    /// API and lets REST updates hang them up or redirect them. With `timelines`, every
    /// engine event is also kept as a line of the call's timeline (the web page shows it);
    /// without (long load runs), only the answer, redirects and the end are.
    pub fn external_calls(&self, timelines: bool) -> ExternalCalls {
        ExternalCalls {
            shared: self.shared.clone(),
            timelines,
        }
    }
}

impl CallRegistry for ExternalCalls {
    fn register(&self, handle: &CallHandle, cfg: &CallConfig) -> EventSink {
        let sid = handle.call_sid().to_string();
        let source = match cfg.twiml {
            Some(_) => "(inline TwiML)".into(),
            None => cfg.url.clone(),
        };
        self.shared.store.insert_call(CallRecord {
            control: Control {
                handle: Some(handle.clone()),
                redirectable: true,
                ..Control::default()
            },
            ..CallRecord::new(
                sid.clone(),
                cfg.account_sid.clone(),
                (cfg.from.clone(), cfg.to.clone()),
                cfg.direction,
                CallStatus::Ringing,
                source,
            )
        });
        let (shared, timelines) = (self.shared.clone(), self.timelines);
        let answered = AtomicBool::new(false);
        Arc::new(move |e: &CallEvent| {
            match &e.kind {
                EventKind::Answered if !answered.swap(true, Ordering::Relaxed) => {
                    shared.store.update_call(&sid, |c| {
                        if !c.status.is_terminal() {
                            c.status = CallStatus::InProgress;
                            c.started = Some(SystemTime::now());
                        }
                    });
                }
                EventKind::Ended { status, reason } => {
                    end(&shared, &sid, status, reason);
                    return;
                }
                _ => {}
            }
            if timelines || matches!(e.kind, EventKind::Redirected { .. }) {
                let (level, text) = describe(&e.kind);
                shared.store.log(&sid, level, text);
            }
        })
    }

    fn finished(&self, report: &CallReport) {
        let failures = report
            .failures
            .iter()
            .map(|f| format!("{} [{}]: {f}", f.step(), f.code()))
            .collect();
        self.shared
            .store
            .update_call(&report.call_sid, |c| c.failures = failures);
    }
}

/// The call ended: its final status (unless a REST hang-up already set it), end time and
/// reason; REST updates now get 21220.
fn end(shared: &Shared, sid: &str, status: &str, reason: &str) {
    let status = match status {
        "busy" => CallStatus::Busy,
        "no-answer" => CallStatus::NoAnswer,
        "failed" => CallStatus::Failed,
        "canceled" => CallStatus::Canceled,
        _ => CallStatus::Completed,
    };
    let ended = shared.store.update_call(sid, |c| {
        if !c.status.is_terminal() {
            c.status = status;
        }
        c.ended.get_or_insert_with(SystemTime::now);
        c.outcome = Some(reason.to_string());
        c.control.handle = None;
        c.status
    });
    if let Some(status) = ended {
        let level = if status == CallStatus::Completed || reason.starts_with(REST_HANGUP) {
            "ok"
        } else {
            "fail"
        };
        shared
            .store
            .log(sid, level, format!("{}: {reason}", status.as_str()));
    }
}
