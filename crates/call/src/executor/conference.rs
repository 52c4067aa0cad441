//! `<Dial><Conference>`: the caller joins a room of the engine's conferences, talks (its
//! audio from where it has got to) and hears the others mixed, until it hangs up, is sent
//! out (kicked, or the conference ended), `timeLimit` passes, `*` with `hangupOnStar`, or
//! the call is redirected. Then `action` gets `DialCallStatus=answered` and `DialBridged`
//! (no `DialCallSid` or `DialCallDuration`, as Twilio sends none after a conference).

use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_protocol::webhook::CallStatus;
use dialtone_twiml::{Dial, DialNoun, Node};
use tokio::time::Instant;

use super::{Call, Next};
use crate::callbacks::Sender;
use crate::conference::{Join, LegProgress, Role, Subscription};
use crate::dial::{DialEvent, DialReport, DialStatus};
use crate::report::EventKind;
use crate::webhook;

impl Call<'_> {
    pub(super) async fn conference(
        &mut self,
        node: &Node,
        d: &Dial,
        noun: &DialNoun,
        doc_url: &str,
    ) -> Next {
        let o = noun.conference_options();
        self.verb_event(node, format!("<Conference>{}", noun.value));
        if self.cfg.fast {
            // Participants meet on a shared clock, which virtual time does not keep.
            self.warn(
                0,
                "<Conference> needs real time; skipped under virtual time (--fast)".into(),
            );
            return Next::Continue;
        }
        let subscription = o
            .status_callback
            .as_deref()
            .and_then(|u| webhook::resolve(doc_url, u).ok())
            .map(|url| Subscription {
                sender: self.callback_sender(url, o.status_callback_method.into()),
                events: o.status_callback_events.clone(),
            });
        let voice = self.caller_from_here().audio;
        self.caller_talks_from_now();
        let join = Join {
            account_sid: self.info.account_sid.clone(),
            friendly_name: noun.value.clone(),
            call_sid: self.info.call_sid.clone(),
            role: Role {
                label: o.participant_label.clone(),
                muted: o.muted,
                start_on_enter: o.start_conference_on_enter,
                end_on_exit: o.end_conference_on_exit,
                beep: o.beep,
            },
            max_participants: o.max_participants as usize,
            voice: voice.clone(),
            live: self.cfg.caller.live.clone(),
            record: self.cfg.record,
            subscription,
        };
        let mut seat = match self.engine.conferences().join(join) {
            Ok(s) => s,
            Err(e) => {
                // As on Twilio: the call is not added and goes on with the next verb.
                self.warn(e.code(), e.to_string());
                return Next::Continue;
            }
        };
        let sid = seat.conference().sid().to_string();
        let mut started = seat.started();
        let was_started = *started.borrow();
        self.timeline
            .emit(EventKind::Dial(DialEvent::ConferenceJoined {
                sid: sid.clone(),
                name: noun.value.clone(),
                participants: seat.conference().participants().len(),
                started: was_started,
            }));
        let joined_at = Instant::now();
        let star_at = if d.hangup_on_star {
            self.caller_digit_after('*')
        } else {
            None
        };
        let limit = joined_at + Duration::from_secs(d.time_limit_secs.into());
        let mut end = self.end.clone();
        let mut redirect = self.redirect.clone();
        let mut waiting = !was_started;
        let (reason, why) = loop {
            tokio::select! {
                r = seat.sent_out() => break (r.clone(), format!("sent out ({r})")),
                _ = end.wait_for(|r| r.is_some()) => {
                    break ("participant_hung_up".into(), "the caller hung up".into());
                }
                _ = redirect.wait_for(|r| r.is_some()) => {
                    break (
                        "participant_updated_via_api".into(),
                        "the call was redirected".into(),
                    );
                }
                () = tokio::time::sleep_until(limit) => {
                    break (
                        "participant_hung_up".into(),
                        format!("timeLimit ({} s)", d.time_limit_secs),
                    );
                }
                () = sleep_until_some(star_at) => {
                    self.timeline.emit(EventKind::Dtmf { digits: "*".into() });
                    break (
                        "participant_hung_up".into(),
                        "the caller pressed * (hangupOnStar)".into(),
                    );
                }
                _ = started.wait_for(|s| *s), if waiting => {
                    waiting = false;
                    self.timeline
                        .emit(EventKind::Dial(DialEvent::ConferenceStarted { sid: sid.clone() }));
                }
            }
        };
        let left = seat.leave(&reason);
        let left_at = Instant::now();
        self.timeline
            .emit(EventKind::Dial(DialEvent::ConferenceLeft {
                sid: sid.clone(),
                reason: reason.clone(),
            }));
        if let Some((from, heard)) = left.heard {
            let to = from + Duration::from_micros(heard.len() as u64 * 125);
            self.note_played_span(Arc::new(FrameSet::from_mulaw(&heard)), from, to);
        }
        let spoke = (left_at - joined_at).as_micros() as usize / 125;
        let said = &voice.mulaw()[..spoke.min(voice.mulaw().len())];
        self.note_said(joined_at, said.to_vec());
        if let Some(task) = left.callbacks {
            self.leg_callbacks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
        }
        let duration = left_at - joined_at;
        self.timeline.emit(EventKind::Dial(DialEvent::Ended {
            status: DialStatus::Answered,
            duration_s: duration.as_secs(),
            why: why.clone(),
        }));
        if self.dials.len() < super::dial::DIALS_KEPT {
            self.dials.push(DialReport {
                to: vec![format!("conference:{}", noun.value)],
                status: DialStatus::Answered,
                leg_sid: Some(sid),
                answered_by: None,
                answer_ms: Some(0.0),
                duration_ms: duration.as_secs_f64() * 1e3,
                ended_by: why,
                app: None,
            });
        }
        let extra = vec![
            ("DialCallStatus".to_string(), "answered".to_string()),
            ("DialBridged".to_string(), "true".to_string()),
        ];
        self.dial_action(d, doc_url, extra).await
    }
}

/// Sleeps until `at`, or for ever.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl super::Engine {
    /// Runs a REST-added participant's call to its end; `on` hears each step, the last
    /// one [`LegProgress::Ended`] (its status callbacks are the caller's to send from them).
    pub async fn add_participant(
        &self,
        p: crate::conference::AddParticipant,
        on: &(dyn Fn(LegProgress) + Send + Sync),
    ) {
        let end = self.run_participant(&p, on).await;
        on(end);
    }

    async fn run_participant(
        &self,
        p: &crate::conference::AddParticipant,
        on: &(dyn Fn(LegProgress) + Send + Sync),
    ) -> LegProgress {
        use crate::dial::CalleeAnswer as A;
        let c = &p.callee;
        if c.answer == A::Failed {
            return LegProgress::Ended(CallStatus::Failed, Duration::ZERO);
        }
        on(LegProgress::Ringing);
        let (ring, answers) = match c.answer {
            A::Answer if c.ring < p.timeout => (c.ring, true),
            A::Busy => (c.ring.min(p.timeout), false),
            _ => (p.timeout, false),
        };
        tokio::time::sleep(ring).await;
        if !answers {
            let status = if c.answer == A::Busy {
                CallStatus::Busy
            } else {
                CallStatus::NoAnswer
            };
            return LegProgress::Ended(status, Duration::ZERO);
        }
        let subscription = p
            .conference_status_callback
            .as_ref()
            .map(|(url, method, events)| Subscription {
                sender: Sender {
                    url: url.clone(),
                    method: *method,
                    auth_token: p.auth_token.clone(),
                    net: self.net.clone(),
                    tunnels: p.tunnels.clone(),
                    timeline: None,
                },
                events: events.clone(),
            });
        let join = Join {
            account_sid: p.account_sid.clone(),
            friendly_name: p.conference.clone(),
            call_sid: p.call_sid.clone(),
            role: p.role.clone(),
            max_participants: dialtone_audio::mix::MAX_PARTICIPANTS,
            voice: c.audio.clone(),
            live: None,
            record: false,
            subscription,
        };
        let mut seat = match self.conferences.join(join) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("participant {} could not join: {e}", p.call_sid);
                return LegProgress::Ended(CallStatus::Failed, Duration::ZERO);
            }
        };
        on(LegProgress::InProgress);
        let joined = Instant::now();
        let talk = (c.audio.duration() + c.tail).min(p.time_limit);
        let reason = tokio::select! {
            () = tokio::time::sleep(talk) => "participant_hung_up".to_string(),
            r = seat.sent_out() => r,
        };
        let left = seat.leave(&reason);
        if let Some(task) = left.callbacks {
            let _ = task.await;
        }
        LegProgress::Ended(CallStatus::Completed, joined.elapsed())
    }
}
