//! `<Dial>` from a call `serve` runs: a number hosted here rings its app as a new inbound
//! call (in the store, with the number's status callback, steerable through the REST API);
//! any other number is the simulated far end. Each dialed leg is a call record of its own
//! (`outbound-dial`, with its `parent_call_sid`), as on Twilio.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dialtone_call::dial::{
    Callee, DialStatus, Directory, HostedApp, LegEnd, LegStart, SimulatedCallee,
};
use dialtone_call::{CallHandle, EventSink};
use dialtone_protocol::webhook::{CallInfo, CallStatus, Direction};

use crate::Shared;
use crate::callbacks::{CallbackTarget, Callbacks};
use crate::capture::clips;
use crate::leg::Leg;
use crate::observe::Observer;
use crate::store::{CallRecord, Control};

/// A live dialed leg's bookkeeping: the dial leg and, for a hosted app, its call's leg.
type LiveLeg = (Arc<Leg>, Option<Arc<Leg>>);

/// What `serve`'s calls dial.
pub(crate) struct ServeBook {
    shared: Arc<Shared>,
    /// Live legs by `DialCallSid`.
    legs: Mutex<HashMap<String, LiveLeg>>,
}

impl std::fmt::Debug for ServeBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServeBook")
    }
}

impl ServeBook {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            legs: Mutex::default(),
        }
    }

    fn leg(&self, sid: String, info: CallInfo, target: Option<CallbackTarget>) -> Arc<Leg> {
        // At shutdown no guard can be had: the leg's callbacks then go out unwaited.
        let guard = self
            .shared
            .task_guard()
            .unwrap_or_else(|| tokio::sync::mpsc::channel(1).0);
        Arc::new(Leg {
            shared: self.shared.clone(),
            sid,
            cb: Arc::new(Callbacks::new(self.shared.clone(), info, target, guard)),
        })
    }
}

impl Directory for ServeBook {
    fn lookup(&self, _account_sid: &str, to: &str) -> Callee {
        let shared = &self.shared;
        match shared.store.number_by_phone(to) {
            Some(n) if n.voice_url.is_some() => Callee::App(HostedApp {
                url: n.voice_url.clone().unwrap_or_default(),
                method: n.voice_method,
                fallback_url: n.voice_fallback_url.clone(),
                auth_token: shared.auth_token(&n.account_sid),
                account_sid: n.account_sid.clone(),
                tunnels: Arc::new(n.tunnels.then(&shared.tunnels)),
            }),
            _ => Callee::Simulated(SimulatedCallee {
                ring: shared.config.ring,
                ..SimulatedCallee::answering(shared.config.far_end_audio.clone())
            }),
        }
    }

    fn leg_started(&self, start: &LegStart, app: Option<&CallHandle>) -> Option<EventSink> {
        let store = &self.shared.store;
        store.insert_call(CallRecord {
            parent_call_sid: Some(start.parent_sid.clone()),
            peer_sid: start.app_sid.clone(),
            ..CallRecord::new(
                start.leg_sid.clone(),
                start.account_sid.clone(),
                (start.from.clone(), start.to.clone()),
                Direction::OutboundDial,
                CallStatus::Ringing,
                format!("<Dial> from {}", start.parent_sid),
            )
        });
        let info = CallInfo {
            parent_call_sid: Some(start.parent_sid.clone()),
            ..CallInfo::new(
                start.account_sid.clone(),
                start.leg_sid.clone(),
                start.from.clone(),
                start.to.clone(),
                Direction::OutboundDial,
            )
        };
        // The dialing TwiML's <Number statusCallback> is the engine's to send.
        let dial_leg = self.leg(start.leg_sid.clone(), info, None);
        dial_leg.log(
            "info",
            format!("dialed by {}: ringing {}", start.parent_sid, start.to),
        );
        let (Some(app_sid), Some(handle)) = (&start.app_sid, app) else {
            self.lock().insert(start.leg_sid.clone(), (dial_leg, None));
            return None;
        };
        let number = store.number_by_phone(&start.to)?;
        store.insert_call(CallRecord {
            phone_number_sid: Some(number.sid.clone()),
            peer_sid: Some(start.leg_sid.clone()),
            control: Control {
                handle: Some(handle.clone()),
                redirectable: true,
                ..Control::default()
            },
            ..CallRecord::new(
                app_sid.clone(),
                number.account_sid.clone(),
                (start.from.clone(), start.to.clone()),
                Direction::Inbound,
                CallStatus::Ringing,
                number.voice_url.clone().unwrap_or_default(),
            )
        });
        let app_info = CallInfo::new(
            number.account_sid.clone(),
            app_sid.clone(),
            start.from.clone(),
            start.to.clone(),
            Direction::Inbound,
        );
        let target = number.status_callback.clone().map(|url| CallbackTarget {
            url,
            method: number.status_callback_method,
            events: vec!["completed".into()],
        });
        let app_leg = self.leg(app_sid.clone(), app_info, target);
        dial_leg.log(
            "info",
            format!(
                "{} is hosted here: its app answers as call {app_sid}",
                start.to
            ),
        );
        let on_answer = {
            let app_leg = app_leg.clone();
            Box::new(move || app_leg.answer()) as Box<dyn FnOnce() + Send>
        };
        let observer = Observer::new(
            self.shared.clone(),
            app_sid.clone(),
            app_leg.cb.clone(),
            Some(on_answer),
        );
        self.lock()
            .insert(start.leg_sid.clone(), (dial_leg, Some(app_leg)));
        Some(observer.sink())
    }

    fn leg_answered(&self, start: &LegStart) {
        if let Some((dial_leg, _)) = self.lock().get(&start.leg_sid) {
            dial_leg.answer();
        }
    }

    fn leg_ended(&self, start: &LegStart, end: &LegEnd) {
        let Some((dial_leg, app_leg)) = self.lock().remove(&start.leg_sid) else {
            return;
        };
        let status = match end.status {
            DialStatus::Completed | DialStatus::Answered => CallStatus::Completed,
            DialStatus::Busy => CallStatus::Busy,
            DialStatus::NoAnswer => CallStatus::NoAnswer,
            DialStatus::Failed => CallStatus::Failed,
            DialStatus::Canceled => CallStatus::Canceled,
        };
        let (reason, failures, audio) = match &end.app {
            Some(result) => {
                let (_, reason, failures) = crate::runner::outcome(result);
                (reason, failures, clips(result))
            }
            None => (
                format!("dial {}", end.status.as_str()),
                Vec::new(),
                Vec::new(),
            ),
        };
        if let (Some(app_leg), Some(result)) = (app_leg, &end.app) {
            let (app_status, _, _) = crate::runner::outcome(result);
            app_leg.finish(
                app_status,
                reason.clone(),
                failures.clone(),
                audio.clone(),
                None,
            );
        }
        dial_leg.finish(status, reason, failures, audio, None);
    }
}

impl ServeBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveLeg>> {
        self.legs.lock().unwrap_or_else(|p| p.into_inner())
    }
}
