//! One call leg's bookkeeping while the runner drives it: status changes, the answer, REST
//! cancels, and the end (outcome, audio, recording and the terminal status callback, which
//! goes out whatever ended the leg, even a cancel while it was queued).

use std::sync::Arc;
use std::time::SystemTime;

use dialtone_call::Redirect;
use dialtone_protocol::webhook::CallStatus;

use crate::Shared;
use crate::callbacks::Callbacks;
use crate::capture::make_recording;
use crate::store::StreamClip;

/// One leg's bookkeeping: its record, timeline clock and callbacks.
pub(crate) struct Leg {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sid: String,
    pub(crate) cb: Arc<Callbacks>,
}

impl Leg {
    pub(crate) fn log(&self, level: &'static str, text: impl Into<String>) {
        self.shared.store.log(&self.sid, level, text.into());
    }

    pub(crate) fn set_status(&self, status: CallStatus) {
        self.shared.store.update_call(&self.sid, |c| {
            if !c.status.is_terminal() {
                c.status = status;
            }
        });
    }

    /// The callee answered: `in-progress`, start time, `answered` callback (once).
    pub(crate) fn answer(&self) {
        let first = self.shared.store.update_call(&self.sid, |c| {
            if c.status.is_terminal() || c.started.is_some() {
                return false;
            }
            c.status = CallStatus::InProgress;
            c.started = Some(SystemTime::now());
            true
        });
        if first == Some(true) {
            self.log("ok", "answered (in-progress)");
            self.cb.progress("answered", "in-progress", Vec::new());
        }
    }

    /// `Status=canceled|completed` arrived before the call was answered.
    pub(crate) fn cancelled(&self) -> Option<CallStatus> {
        match self.shared.store.call(&self.sid) {
            Some(c) => c
                .control
                .cancel
                .or(c.status.is_terminal().then_some(c.status)),
            // Only an ended call is forgotten (`history`): a cancel ended it.
            None => Some(CallStatus::Canceled),
        }
    }

    pub(crate) fn pending(&self) -> Option<Redirect> {
        self.shared
            .store
            .update_call(&self.sid, |c| c.control.pending.take())
            .flatten()
    }

    /// Ends the leg: status (unless a REST update already ended it), outcome, audio,
    /// recording, and the terminal callback.
    pub(crate) fn finish(
        &self,
        status: CallStatus,
        reason: String,
        failures: Vec<String>,
        audio: Vec<StreamClip>,
        recording: Option<(u16, Vec<u8>, Vec<u8>)>,
    ) {
        let now = SystemTime::now();
        let updated = self.shared.store.update_call(&self.sid, |c| {
            if !c.status.is_terminal() {
                c.status = status;
            }
            c.ended.get_or_insert(now);
            c.outcome = Some(reason.clone());
            c.failures = failures;
            c.audio = audio;
            c.control.handle = None;
            c.clone()
        });
        let Some(call) = updated else {
            // Forgotten already (`history`): its callback still goes out.
            let extra = vec![
                ("CallDuration".to_string(), "0".to_string()),
                ("SipResponseCode".to_string(), sip_code(status).to_string()),
            ];
            self.cb.progress("completed", status.as_str(), extra);
            return;
        };
        let mut extra = Vec::new();
        let secs = match (call.started, call.ended) {
            (Some(s), Some(e)) => e.duration_since(s).unwrap_or_default().as_secs(),
            _ => 0,
        };
        extra.push(("CallDuration".to_string(), secs.to_string()));
        if call.status == CallStatus::Completed {
            extra.push(("Duration".to_string(), secs.div_ceil(60).max(1).to_string()));
        }
        extra.push((
            "SipResponseCode".to_string(),
            sip_code(call.status).to_string(),
        ));
        if let Some((channels, own, other)) = recording {
            let rec = make_recording(&call, channels, &own, &other);
            let url = format!(
                "{}{}/Recordings/{}",
                self.shared.public_url,
                crate::resources::account_path(&rec.account_sid),
                rec.sid
            );
            extra.push(("RecordingDuration".into(), rec.duration_secs().to_string()));
            extra.push(("RecordingSid".into(), rec.sid.clone()));
            extra.push(("RecordingUrl".into(), url.clone()));
            self.log(
                "ok",
                format!("recording {} ({} s): {url}", rec.sid, rec.duration_secs()),
            );
            self.shared.store.insert_recording(rec);
        }
        self.log(
            if call.status == CallStatus::Completed {
                "ok"
            } else {
                "fail"
            },
            format!("{}: {reason}", call.status.as_str()),
        );
        self.cb.progress("completed", call.status.as_str(), extra);
    }
}

/// The SIP response code Twilio reports for a final status.
fn sip_code(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Completed => "200",
        CallStatus::Busy => "486",
        CallStatus::NoAnswer | CallStatus::Canceled => "487",
        _ => "500",
    }
}
