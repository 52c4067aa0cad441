//! `<Number url>` (a whisper): once the dialed party picks up, its leg runs the URL's TwiML
//! (`<Say>`, `<Play>`, `<Gather>`, `<Hangup>`) while the caller still hears ringing. The
//! leg is bridged when that TwiML runs out; a `<Hangup>` (or a failure) ends the leg
//! unbridged. The leg is a call in this engine: requested as `outbound-dial` with the dial
//! leg's `CallSid` and `ParentCallSid`, signed with the dialing call's account.

use std::sync::Arc;

use dialtone_audio::FrameSet;
use dialtone_protocol::webhook::{CallStatus, Direction};
use tokio::sync::watch;

use super::dial::boxed_run;
use super::{CallResult, END_OF_TWIML};
use crate::config::{CallConfig, HttpMethod};
use crate::dial::{DialEvent, LegStart};
use crate::report::{CallEvent, EventKind};

/// A `<Number url>` to run on the answered leg.
#[derive(Debug, Clone)]
pub(super) struct Whisper {
    pub(super) url: String,
    pub(super) method: HttpMethod,
}

/// What the party does while its whisper runs: says its audio, keys `keys` when asked.
pub(super) struct Listener {
    pub(super) audio: Arc<FrameSet>,
    pub(super) keys: String,
}

impl super::dial::DialCtx<'_> {
    /// Runs `w` on `start`'s leg; `Err(why)` when the leg must end unbridged (the whisper
    /// hung up or failed, or the dial stopped or another party answered meanwhile).
    pub(super) async fn whisper(
        &self,
        party: usize,
        w: &Whisper,
        start: &LegStart,
        party_side: Listener,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let call = self.call;
        let parent = &call.cfg;
        let mut cfg = CallConfig::new(w.url.clone(), party_side.audio);
        cfg.method = w.method;
        cfg.account_sid = start.account_sid.clone();
        cfg.auth_token = parent.auth_token.clone();
        cfg.tunnels = parent.tunnels.clone();
        cfg.from = start.from.clone();
        cfg.to = start.to.clone();
        cfg.direction = Direction::OutboundDial;
        cfg.call_sid = Some(start.leg_sid.clone());
        cfg.parent_call_sid = Some(start.parent_sid.clone());
        cfg.caller.gather_digits = party_side.keys;
        cfg.caller.start = crate::config::CallerAudioStart::Answer;
        // The party listens to the whisper: it hangs up only with the leg, not after its
        // own audio as a caller would.
        cfg.caller.tail = self.time_limit();
        cfg.recordings = parent.recordings.clone();
        cfg.word_errors = parent.word_errors;
        cfg.max_duration = parent.max_duration.min(self.time_limit());
        cfg.webhook_timeout = parent.webhook_timeout;
        cfg.no_audio_timeout = None;
        cfg.seed = parent.seed.map(|s| s.wrapping_add(0x7f4a_7c15));
        cfg.fast = parent.fast;
        cfg.keep_timeline = false;
        cfg.directory = parent.directory.clone();
        cfg.dial_depth = parent.dial_depth + 1;
        let prepared = call.engine.prepare(cfg);
        let handle = prepared.handle();
        let timeline = call.timeline.clone();
        let leg_sid = start.leg_sid.clone();
        let sink: crate::EventSink = Arc::new(move |e: &CallEvent| {
            timeline.emit(EventKind::Dial(DialEvent::Leg {
                app_sid: leg_sid.clone(),
                event: Box::new(e.clone()),
            }));
        });
        let mut run = boxed_run(prepared, sink);
        let mut stop = self.stop.subscribe();
        let mut winner: watch::Receiver<Option<usize>> = self.winner.subscribe();
        let result: Option<CallResult> = tokio::select! {
            r = &mut run => Some(r),
            _ = stop.wait_for(|s| s.is_some()) => None,
            _ = winner.wait_for(|w| w.is_some_and(|w| w != party)) => None,
            _ = cancel.wait_for(|c| *c) => None,
        };
        let Some(result) = result else {
            let why = if *cancel.borrow() {
                "the app hung up during the whisper".to_string()
            } else {
                self.lost_why().1
            };
            handle.hangup(why.clone());
            run.await;
            return Err(why);
        };
        let report = &result.report;
        if report.status == CallStatus::Completed
            && report.end_reason == END_OF_TWIML
            && report.failures.is_empty()
        {
            return Ok(());
        }
        self.whisper_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(report.failures.iter().cloned());
        let why = match report.failures.first() {
            Some(f) => format!("the whisper failed: {f}"),
            None => format!("the whisper ended the leg: {}", report.end_reason),
        };
        Err(why)
    }
}
