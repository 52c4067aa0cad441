//! The bridge between a queued call and the call that dequeues it with `<Dial><Queue>`.
//!
//! The dequeuing (agent's) call takes the front member (waiting up to the `<Dial>`'s
//! `timeout` for one to join), hands it a [`Bridge`]; the member runs the `<Queue url>`
//! document if any, then answers with its side. From then each call's recording hears the
//! other's caller from the frame it had reached, until either side ends the bridge (hang-up,
//! redirect, the agent's `timeLimit` or `hangupOnStar`). The agent's `action` gets the
//! `<Dial>` parameters (`DialCallSid` is the member's call: no new leg is made) plus
//! `QueueSid` and `QueueTime`; the member's `<Enqueue action>` gets `QueueResult=bridged`.

use std::sync::Arc;
use std::time::Duration;

use dialtone_protocol::webhook::CallStatus;
use dialtone_twiml::{Dial, DialNoun, Enqueue, Node};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until};

use super::dial::DIALS_KEPT;
use super::enqueue::queue_params;
use super::{Call, Next};
use crate::HttpMethod;
use crate::dial::{DialEvent, DialReport, DialStatus};
use crate::queue::{Bridge, BridgeLink, Dequeued, MemberSide, QueueEvent};
use crate::report::EventKind;
use crate::webhook;

impl Call<'_> {
    /// `<Dial><Queue>`: bridges the caller to the queue's front member.
    pub(super) async fn dial_queue(
        &mut self,
        node: &Node,
        d: &Dial,
        noun: &DialNoun,
        doc_url: &str,
    ) -> Next {
        let name = noun.value.clone();
        let opts = noun.queue_options();
        self.verb_event(node, format!("<Queue>{name}"));
        let began = Instant::now();
        let announce = opts
            .url
            .as_deref()
            .and_then(|u| webhook::resolve(doc_url, u).ok())
            .map(|u| (u, HttpMethod::from(opts.method)));
        let (status, duration, ended_by, link, answered) =
            match self.take_member(d, &name, announce).await {
                Ok((link, side)) => {
                    let at = side.at;
                    let (duration, why) = self.agent_bridge(d, &name, &link, side).await;
                    (DialStatus::Completed, duration, why, Some(link), Some(at))
                }
                Err((status, why)) => (status, Duration::ZERO, why, None, None),
            };
        self.timeline.emit(EventKind::Dial(DialEvent::Ended {
            status,
            duration_s: duration.as_secs(),
            why: ended_by.clone(),
        }));
        let member = link.as_ref().map(|l| l.member_sid.clone());
        if self.dials.len() < DIALS_KEPT {
            self.dials.push(DialReport {
                to: vec![format!("queue {name}")],
                status,
                leg_sid: member.clone(),
                answered_by: member.clone(),
                answer_ms: answered.map(|a| a.saturating_duration_since(began).as_secs_f64() * 1e3),
                duration_ms: duration.as_secs_f64() * 1e3,
                ended_by,
                app: None,
            });
        }
        let mut extra = vec![
            ("DialCallStatus".to_string(), status.as_str().to_string()),
            (
                "DialCallDuration".to_string(),
                duration.as_secs().to_string(),
            ),
            ("DialBridged".to_string(), link.is_some().to_string()),
        ];
        if let Some(l) = &link {
            extra.push(("DialCallSid".to_string(), l.member_sid.clone()));
            extra.push(("QueueSid".to_string(), l.queue_sid.clone()));
            extra.push(("QueueTime".to_string(), l.queue_time.as_secs().to_string()));
        }
        self.dial_action(d, doc_url, extra).await
    }

    /// Takes the front member (waiting for one up to `timeout`) and hands it the bridge;
    /// the member's side once it is in, or the `DialCallStatus` and why not.
    async fn take_member(
        &mut self,
        d: &Dial,
        name: &str,
        announce: Option<(String, HttpMethod)>,
    ) -> Result<(Arc<BridgeLink>, MemberSide), (DialStatus, String)> {
        let queues = self.engine.queues();
        let account = self.info.account_sid.clone();
        let deadline = Instant::now() + Duration::from_secs(d.timeout_secs.into());
        let mut joined = queues.subscribe();
        let mut end = self.end.clone();
        let mut redirect = self.redirect.clone();
        let hung_up = || (DialStatus::Canceled, "the caller hung up".to_string());
        let redirected = || (DialStatus::Canceled, "the call was redirected".to_string());
        loop {
            joined.borrow_and_update();
            let taken = match queues.take_front(&account, name) {
                Err(_) => {
                    return Err((DialStatus::Failed, format!("queue {name:?} does not exist")));
                }
                Ok(Some(t)) => t,
                Ok(None) => {
                    tokio::select! {
                        r = joined.changed() => {
                            if r.is_err() {
                                return Err((DialStatus::Failed, "the queues closed".into()));
                            }
                            continue;
                        }
                        () = sleep_until(deadline) => {
                            return Err((
                                DialStatus::NoAnswer,
                                format!(
                                    "nobody waited in queue {name:?} within timeout ({} s)",
                                    d.timeout_secs
                                ),
                            ));
                        }
                        _ = end.wait_for(|r| r.is_some()) => return Err(hung_up()),
                        _ = redirect.wait_for(|r| r.is_some()) => return Err(redirected()),
                    }
                }
            };
            let link = Arc::new(BridgeLink {
                agent_sid: self.info.call_sid.clone(),
                member_sid: taken.call_sid,
                queue_sid: taken.queue_sid,
                queue_time: taken.queue_time,
                agent_audio: std::sync::OnceLock::new(),
                ended: watch::channel(None).0,
            });
            let (reply, answer) = oneshot::channel();
            let bridge = Bridge {
                link: link.clone(),
                announce: announce.clone(),
                reply,
            };
            if taken.tx.send(Dequeued::Bridge(bridge)).is_err() {
                // The member hung up as it was taken: the next one.
                continue;
            }
            tokio::select! {
                side = answer => match side {
                    Ok(side) => return Ok((link, side)),
                    // It hung up during the `<Queue url>` document.
                    Err(_) => continue,
                },
                _ = end.wait_for(|r| r.is_some()) => {
                    link.end("the dequeuing call hung up");
                    return Err(hung_up());
                }
                _ = redirect.wait_for(|r| r.is_some()) => {
                    link.end("the dequeuing call was redirected");
                    return Err(redirected());
                }
            }
        }
    }

    /// The agent's side of the bridge until it ends: its length and why it ended.
    async fn agent_bridge(
        &mut self,
        d: &Dial,
        name: &str,
        link: &BridgeLink,
        side: MemberSide,
    ) -> (Duration, String) {
        let at = side.at;
        let mine = self.caller_from_here().audio;
        let _ = link.agent_audio.set(mine.clone());
        self.timeline.emit(EventKind::Dial(DialEvent::Answered {
            leg_sid: link.member_sid.clone(),
            to: format!("queue {name}"),
        }));
        self.timeline.emit(EventKind::Queue(QueueEvent::Bridged {
            with: link.member_sid.clone(),
            queue_sid: link.queue_sid.clone(),
            queue_time_s: link.queue_time.as_secs(),
        }));
        let star_at = if d.hangup_on_star {
            self.caller_digit_after('*')
        } else {
            None
        };
        let star = async {
            match star_at {
                Some(t) => sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let limit = at + Duration::from_secs(d.time_limit_secs.into());
        let mut ended = link.ended.subscribe();
        let mut end = self.end.clone();
        let mut redirect = self.redirect.clone();
        tokio::select! {
            _ = ended.wait_for(|e| e.is_some()) => {}
            _ = end.wait_for(|r| r.is_some()) => {
                link.end("the dequeuing call hung up");
            }
            _ = redirect.wait_for(|r| r.is_some()) => {
                link.end("the dequeuing call was redirected");
            }
            () = sleep_until(limit) => {
                link.end(format!("timeLimit ({} s)", d.time_limit_secs));
            }
            () = star => {
                self.timeline.emit(EventKind::Dtmf { digits: "*".into() });
                link.end("the caller pressed * (hangupOnStar)");
            }
        }
        let (to, why) = link
            .ended()
            .unwrap_or_else(|| (Instant::now(), String::new()));
        self.note_bridge(at, to, &side.audio, &mine);
        (to.saturating_duration_since(at), why)
    }

    /// Keeps both parties of a bridge for the recording: `heard` from `at` to `to` (as far
    /// as it lasts), `said` from `at`.
    fn note_bridge(
        &mut self,
        at: Instant,
        to: Instant,
        heard: &Arc<dialtone_audio::FrameSet>,
        said: &dialtone_audio::FrameSet,
    ) {
        let to = to.min(at + heard.duration());
        if to > at {
            self.note_played_span(heard.clone(), at, to);
        }
        self.note_said(at, said.mulaw().to_vec());
    }

    /// The member's side: the `<Queue url>` document, then the bridge until either side
    /// ends it; then `action` with `QueueResult=bridged`.
    pub(super) async fn member_bridge(&mut self, b: Bridge, e: &Enqueue, doc_url: &str) -> Next {
        let Bridge {
            link,
            announce,
            reply,
        } = b;
        let queued = (link.queue_sid.clone(), link.queue_time);
        let queued = Some((queued.0.as_str(), queued.1));
        if let Some((url, method)) = announce {
            self.announce(&url, method, &link).await;
        }
        if self.interrupt_pending() || link.ended().is_some() {
            // Hung up, redirected or abandoned before the bridge: no bridge happened.
            link.end("the bridge never started");
            drop(reply);
            if self.redirect.borrow().is_some() {
                self.queue_left("redirected", queued);
                return self.interrupted().await;
            }
            if let Some(reason) = self.ended() {
                let _ = self.queue_action(e, doc_url, "hangup", queued).await;
                return Next::End {
                    status: CallStatus::Completed,
                    reason,
                };
            }
            return self.queue_action(e, doc_url, "error", queued).await;
        }
        let at = Instant::now();
        let mine = self.caller_from_here().audio;
        if reply
            .send(MemberSide {
                at,
                audio: mine.clone(),
            })
            .is_err()
        {
            link.end("the dequeuing call ended before the bridge");
            return self.queue_action(e, doc_url, "error", queued).await;
        }
        self.timeline.emit(EventKind::Queue(QueueEvent::Bridged {
            with: link.agent_sid.clone(),
            queue_sid: link.queue_sid.clone(),
            queue_time_s: link.queue_time.as_secs(),
        }));
        let mut ended = link.ended.subscribe();
        let mut end = self.end.clone();
        let mut redirect = self.redirect.clone();
        tokio::select! {
            _ = ended.wait_for(|e| e.is_some()) => {}
            _ = end.wait_for(|r| r.is_some()) => {
                link.end("the queued call hung up");
            }
            _ = redirect.wait_for(|r| r.is_some()) => {
                link.end("the queued call was redirected");
            }
        }
        let (to, why) = link
            .ended()
            .unwrap_or_else(|| (Instant::now(), String::new()));
        // The agent's audio is set as soon as it has the member's side; a moment's grace
        // covers a bridge ended in the instant between.
        if link.agent_audio.get().is_none() {
            sleep(Duration::from_millis(20)).await;
        }
        if let Some(heard) = link.agent_audio.get().cloned() {
            self.note_bridge(at, to, &heard, &mine);
        }
        self.timeline
            .emit(EventKind::Queue(QueueEvent::BridgeEnded {
                duration_s: to.saturating_duration_since(at).as_secs(),
                why,
            }));
        if self.redirect.borrow().is_some() {
            self.queue_left("bridged", queued);
            return self.interrupted().await;
        }
        let caller_gone = self.ended();
        let next = self.queue_action(e, doc_url, "bridged", queued).await;
        match caller_gone {
            Some(reason) => Next::End {
                status: CallStatus::Completed,
                reason,
            },
            None => next,
        }
    }

    /// The `<Queue url>` document on the member before the bridge (`Play`, `Say`, `Pause`,
    /// `Redirect`), with `QueueSid`, `QueueTime` and `DequeingCallSid`.
    async fn announce(&mut self, url: &str, method: HttpMethod, link: &BridgeLink) {
        let mut extra = queue_params(
            "bridging-in-process",
            Some((&link.queue_sid, link.queue_time)),
        );
        // Only the queue's parameters: QueueResult is for the action.
        extra.remove(0);
        extra.push(("DequeingCallSid".to_string(), link.agent_sid.clone()));
        let mut doc = match self
            .request("url", url, method, CallStatus::InProgress, extra)
            .await
        {
            Ok(f) => f,
            Err(f) => {
                self.failures.push(f);
                return;
            }
        };
        loop {
            let verbs = std::mem::take(&mut doc.doc.verbs);
            let mut next = None;
            for node in &verbs {
                match self.hold_verb(node, &doc.url).await {
                    Ok(None) => {}
                    Ok(Some(f)) => {
                        next = Some(f);
                        break;
                    }
                    Err(_) => return,
                }
            }
            match next {
                Some(f) => doc = f,
                None => return,
            }
        }
    }
}
