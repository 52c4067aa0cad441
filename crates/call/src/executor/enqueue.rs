//! `<Enqueue>` and `<Leave>`: the call joins a queue of its engine and waits, hearing its
//! `waitUrl` documents (requested again each time one runs out), until a `<Dial><Queue>`
//! bridges it, a REST dequeue redirects it, its `waitUrl` says `<Leave>`, or it hangs up;
//! then `action` gets `QueueResult`, `QueueSid` and `QueueTime`. The bridge itself, from
//! both sides, is in `queue_bridge.rs`.

use std::time::Duration;

use dialtone_protocol::webhook::CallStatus;
use dialtone_twiml::{Enqueue, Node, Verb};
use tokio::time::{Instant, sleep};

use super::{Call, Next};
use crate::Redirect;
use crate::queue::{Bridge, Dequeued, QueueError, QueueEvent, Ticket};
use crate::report::EventKind;
use crate::webhook;

/// A `waitUrl` round (its documents, or the hold silence without one) lasts at least this
/// long: a `waitUrl` answering with nothing must not be requested in a tight loop.
const MIN_ROUND: Duration = Duration::from_secs(1);
/// `waitUrl` rounds that may fail in a row before the call leaves with `error`.
const MAX_FAILED_ROUNDS: u32 = 3;

/// How a wait in the queue ended.
enum Waited {
    /// A `<Dial><Queue>` took the call.
    Bridge(Bridge),
    /// A REST dequeue: run this.
    Dequeued(Redirect),
    /// `<Leave>`.
    Leave,
    /// The caller hung up, or `<Hangup>` in a `waitUrl` document (with why).
    Hangup(String),
    /// A REST redirect of the call (Calls update).
    Redirected,
    /// `waitUrl` kept failing.
    Error,
}

/// How one `waitUrl` round ended.
pub(super) enum Round {
    /// Its documents ran out (or the hold silence passed): request `waitUrl` again.
    Exhausted,
    /// `<Leave>`.
    Leave,
    /// `<Hangup>`.
    Hangup,
    /// A request failed.
    Failed,
    /// The call ended or was redirected during a verb.
    Interrupted,
}

impl Call<'_> {
    pub(super) async fn enqueue(&mut self, node: &Node, e: &Enqueue, doc_url: &str) -> Next {
        self.verb_event(
            node,
            format!(
                "{:?} waitUrl {}",
                e.queue,
                e.wait_url.as_deref().unwrap_or("(hold silence)")
            ),
        );
        if e.queue.is_empty() {
            self.warn(
                0,
                "<Enqueue workflowSid> (TaskRouter) is not simulated; skipped".into(),
            );
            return Next::Continue;
        }
        let queues = self.engine.queues();
        let account = self.info.account_sid.clone();
        let call_sid = self.info.call_sid.clone();
        let mut ticket = match queues.join(&account, &e.queue, &call_sid) {
            Ok(t) => t,
            Err(err) => {
                let result = match err {
                    QueueError::Full { .. } => "queue-full",
                    _ => "error",
                };
                self.warn(0, format!("<Enqueue> {:?}: {err}", e.queue));
                return self.queue_action(e, doc_url, result, None).await;
            }
        };
        self.timeline.emit(EventKind::Queue(QueueEvent::Enqueued {
            queue: e.queue.clone(),
            queue_sid: ticket.queue_sid.clone(),
            position: ticket.standing().map_or(0, |s| s.position),
        }));
        let waited = self.wait_in_queue(&mut ticket, e, doc_url).await;
        let queue_sid = ticket.queue_sid.clone();
        let queue_time = ticket.since.elapsed();
        // Out of the queue before anything else is requested.
        drop(ticket);
        let queued = Some((queue_sid.as_str(), queue_time));
        match waited {
            Waited::Bridge(b) => self.member_bridge(b, e, doc_url).await,
            Waited::Dequeued(to) => {
                // The action hears `redirected`; the dequeue's URL drives the call.
                self.queue_left("redirected", queued);
                if let Some(action) = &e.action {
                    let extra = queue_params("redirected", queued);
                    self.notify(doc_url, action, e.method.into(), extra).await;
                }
                self.redirect_tx.send_replace(Some(to));
                self.interrupted().await
            }
            Waited::Redirected => {
                self.queue_left("redirected", queued);
                self.interrupted().await
            }
            Waited::Leave => self.queue_action(e, doc_url, "leave", queued).await,
            Waited::Error => self.queue_action(e, doc_url, "error", queued).await,
            Waited::Hangup(reason) => {
                // Twilio still tells the app; the caller is gone, so its answer is not run.
                let _ = self.queue_action(e, doc_url, "hangup", queued).await;
                Next::End {
                    status: CallStatus::Completed,
                    reason,
                }
            }
        }
    }

    /// `action` with `QueueResult` (and `QueueSid`, `QueueTime` once enqueued); without
    /// one, the next verb.
    pub(super) async fn queue_action(
        &mut self,
        e: &Enqueue,
        doc_url: &str,
        result: &'static str,
        queued: Option<(&str, Duration)>,
    ) -> Next {
        self.queue_left(result, queued);
        match &e.action {
            Some(action) => {
                let extra = queue_params(result, queued);
                self.follow("action", doc_url, Some(action), e.method.into(), extra)
                    .await
            }
            None => Next::Continue,
        }
    }

    pub(super) fn queue_left(&self, result: &'static str, queued: Option<(&str, Duration)>) {
        self.timeline.emit(EventKind::Queue(QueueEvent::Left {
            queue_sid: queued.map_or_else(String::new, |(s, _)| s.to_string()),
            result,
            queue_time_s: queued.map_or(0, |(_, t)| t.as_secs()),
        }));
    }

    /// Requests `action` for its parameters only: its answer is not run (a REST dequeue's
    /// URL drives the call).
    async fn notify(
        &mut self,
        doc_url: &str,
        action: &str,
        method: crate::HttpMethod,
        extra: Vec<(String, String)>,
    ) {
        let url = match webhook::resolve(doc_url, action) {
            Ok(u) => u,
            Err(e) => return self.warn(0, format!("bad <Enqueue action> {action:?}: {e}")),
        };
        if let Err(f) = self
            .request("action", &url, method, CallStatus::InProgress, extra)
            .await
        {
            self.failures.push(f);
        }
    }

    /// Waits in the queue until something takes the call out.
    async fn wait_in_queue(
        &mut self,
        ticket: &mut Ticket<'_>,
        e: &Enqueue,
        doc_url: &str,
    ) -> Waited {
        let Some(mut rx) = ticket.rx.take() else {
            return Waited::Error;
        };
        let mut end = self.end.clone();
        let mut redirect = self.redirect.clone();
        let mut failed = 0;
        loop {
            // Each round takes call time: the documents before it were no loop.
            self.idle_documents = 0;
            let started = Instant::now();
            let round = async {
                let r = self.hold_round(e, doc_url, &*ticket).await;
                if matches!(r, Round::Exhausted | Round::Failed) {
                    sleep(MIN_ROUND.saturating_sub(started.elapsed())).await;
                }
                r
            };
            // Biased: a dequeue, hang-up or redirect wins over the verb that is playing,
            // which is dropped where it is (its own handling would take the redirect).
            let r = tokio::select! {
                biased;
                d = &mut rx => {
                    self.outbound.set(None);
                    return match d {
                        Ok(Dequeued::Bridge(b)) => Waited::Bridge(b),
                        Ok(Dequeued::Redirect(to)) => Waited::Dequeued(to),
                        Err(_) => Waited::Error,
                    };
                }
                _ = end.wait_for(|r| r.is_some()) => None,
                _ = redirect.wait_for(|r| r.is_some()) => None,
                r = round => Some(r),
            };
            self.outbound.set(None);
            match r {
                None | Some(Round::Interrupted) => {
                    return match self.ended() {
                        Some(reason) => Waited::Hangup(reason),
                        None => Waited::Redirected,
                    };
                }
                Some(Round::Exhausted) => failed = 0,
                Some(Round::Leave) => return Waited::Leave,
                Some(Round::Hangup) => return Waited::Hangup("<Hangup> in waitUrl".into()),
                Some(Round::Failed) => {
                    failed += 1;
                    if failed >= MAX_FAILED_ROUNDS {
                        return Waited::Error;
                    }
                }
            }
        }
    }

    /// One round of waiting: the `waitUrl` document (and the documents it redirects to)
    /// to its end; without a `waitUrl`, a round of hold silence (Twilio's default hold music
    /// is not fetched: only loopback apps are reachable).
    async fn hold_round(&mut self, e: &Enqueue, doc_url: &str, ticket: &Ticket<'_>) -> Round {
        let target = e.wait_url.as_deref().filter(|u| !u.trim().is_empty());
        let Some(target) = target else {
            return if self.hold(MIN_ROUND).await {
                Round::Interrupted
            } else {
                Round::Exhausted
            };
        };
        let url = match webhook::resolve(doc_url, target) {
            Ok(u) => u,
            Err(err) => {
                self.warn(0, format!("bad waitUrl {target:?}: {err}"));
                return Round::Failed;
            }
        };
        let Some(s) = ticket.standing() else {
            return Round::Exhausted;
        };
        let extra = vec![
            ("QueuePosition".to_string(), s.position.to_string()),
            ("QueueSid".to_string(), ticket.queue_sid.clone()),
            (
                "QueueTime".to_string(),
                ticket.since.elapsed().as_secs().to_string(),
            ),
            ("AvgQueueTime".to_string(), s.average_wait.to_string()),
            ("CurrentQueueSize".to_string(), s.size.to_string()),
            ("MaxQueueSize".to_string(), s.max_size.to_string()),
        ];
        let mut doc = match self
            .request(
                "wait",
                &url,
                e.wait_url_method.into(),
                CallStatus::InProgress,
                extra,
            )
            .await
        {
            Ok(f) => f,
            Err(f) => {
                self.failures.push(f);
                return Round::Failed;
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
                    Err(r) => return r,
                }
            }
            match next {
                Some(f) => doc = f,
                None => return Round::Exhausted,
            }
        }
    }

    /// One verb of a `waitUrl` document: `Ok(Some(doc))` when it brings the next document.
    pub(super) async fn hold_verb(
        &mut self,
        node: &Node,
        doc_url: &str,
    ) -> Result<Option<crate::webhook::Fetched>, Round> {
        let cut = match &node.verb {
            Verb::Say(s) => {
                self.verb_event(
                    node,
                    format!("{:?}", s.text.chars().take(60).collect::<String>()),
                );
                self.hold_say(&s.text, s.loop_count).await
            }
            Verb::Play(p) => {
                self.verb_event(node, p.url.clone().unwrap_or_default());
                self.hold_play(p, doc_url).await
            }
            Verb::Pause(p) => {
                self.verb_event(node, format!("{} s", p.length_secs));
                self.hold(Duration::from_secs(p.length_secs.into())).await
            }
            Verb::Leave => {
                self.verb_event(node, String::new());
                return Err(Round::Leave);
            }
            Verb::Hangup => {
                self.verb_event(node, String::new());
                return Err(Round::Hangup);
            }
            Verb::Redirect(r) => {
                self.verb_event(node, r.url.clone());
                return match self
                    .follow(
                        "redirect",
                        doc_url,
                        Some(&r.url),
                        r.method.into(),
                        Vec::new(),
                    )
                    .await
                {
                    Next::Replace(f) => Ok(Some(f)),
                    _ => Err(Round::Failed),
                };
            }
            Verb::Gather(g) => {
                return match self.gather(g, doc_url).await {
                    Next::Continue => Ok(None),
                    Next::Replace(f) => Ok(Some(f)),
                    Next::End { .. } => Err(if self.interrupt_pending() {
                        Round::Interrupted
                    } else {
                        Round::Failed
                    }),
                };
            }
            other => {
                self.verb_event(node, String::new());
                self.warn(
                    0,
                    format!(
                        "<{}> is not allowed in a waitUrl document (Play, Say, Pause, Gather, \
                         Redirect, Leave, Hangup); skipped",
                        other.name()
                    ),
                );
                false
            }
        };
        if cut {
            Err(Round::Interrupted)
        } else {
            Ok(None)
        }
    }

    /// Waits `d` on hold (a real wait, also in virtual time: only a dequeue ends it early);
    /// true when the call ended or was redirected.
    async fn hold(&mut self, d: Duration) -> bool {
        if self.cfg.fast {
            sleep(d.min(MIN_ROUND)).await;
            return self.interrupt_pending();
        }
        self.wait(d).await
    }

    /// `<Say>` on hold: as `say`, without handling the interruption itself.
    async fn hold_say(&mut self, text: &str, loops: u32) -> bool {
        let words = text.split_whitespace().count().max(1) as u64;
        let once = Duration::from_millis((words * super::SAY_MS_PER_WORD).max(500));
        let tone = self.engine.say_tone.clone();
        let from = Instant::now();
        self.outbound.set(Some(tone.clone()));
        let d = if loops == 0 {
            self.cfg.max_duration
        } else {
            once * loops
        };
        let cut = self.hold(d).await;
        self.outbound.set(None);
        self.note_played(tone, from);
        cut
    }

    /// `<Play>` on hold (a file it cannot fetch is skipped, as Twilio does).
    async fn hold_play(&mut self, play: &dialtone_twiml::Play, doc_url: &str) -> bool {
        let Some(src) = &play.url else {
            return self.hold(Duration::from_millis(500)).await;
        };
        let frames = match self.fetch_audio(doc_url, src).await {
            Ok((f, _)) => f,
            Err(f) => {
                self.failures.push(f);
                return false;
            }
        };
        let loops = if play.loop_count == 0 {
            1000
        } else {
            play.loop_count
        };
        let from = Instant::now();
        self.outbound.set(Some(frames.clone()));
        let cut = self.hold(frames.duration() * loops).await;
        self.outbound.set(None);
        self.note_played(frames, from);
        cut
    }
}

/// `QueueResult`, and `QueueSid` and `QueueTime` when the call got into the queue.
pub(super) fn queue_params(
    result: &str,
    queued: Option<(&str, Duration)>,
) -> Vec<(String, String)> {
    let mut p = vec![("QueueResult".to_string(), result.to_string())];
    if let Some((sid, t)) = queued {
        p.push(("QueueSid".to_string(), sid.to_string()));
        p.push(("QueueTime".to_string(), t.as_secs().to_string()));
    }
    p
}
