//! `<Dial>` with `<Number>`, `<Client>`, `<Sip>` or a bare number: every party rings at
//! once (Twilio rings up to ten), the first to answer is bridged to the caller and the rest
//! are hung up. A hosted app's leg is a whole call in this engine: it hears the caller's
//! audio from where it has got to, and what it plays is what the caller hears. A simulated
//! callee rings, then answers and says its audio, or is busy, does not answer, or fails.
//! The bridge ends when either side hangs up, at `timeLimit`, on `*` with `hangupOnStar`,
//! or when the call is redirected; then `action` gets `DialCallStatus`, `DialCallSid`,
//! `DialCallDuration` and `DialBridged`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{CallInfo, CallStatus, Direction};
use dialtone_twiml::{Dial, Node, NounKind};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::dial_record::{self, DialRecorder, Recorded};
use super::whisper::{Listener, Whisper};
use super::{Call, CallResult, Next};
use crate::config::{CallConfig, CallerAudioStart, HttpMethod};
use crate::dial::{
    Callee, DialEvent, DialReport, DialStatus, HostedApp, LegCallbacks, LegEnd, LegStart,
    SimulatedCallee,
};
use crate::report::{CallEvent, EventKind};
use crate::webhook;

/// Parties one `<Dial>` rings at once (Twilio's limit for `<Number>`s).
const MAX_PARTIES: usize = 10;
/// How deep dialed apps may dial further apps: an app that dials its own number would
/// otherwise ring itself without end.
pub(crate) const MAX_DIAL_DEPTH: u8 = 4;
/// Dial reports a call keeps (the rest are counted in the timeline only).
pub(super) const DIALS_KEPT: usize = 20;
/// A digit keyed by the engine takes this long.
const DIGIT_MS: u64 = 100;

/// One party of a `<Dial>`.
#[derive(Debug, Clone)]
struct Party {
    /// `To` as Twilio sends it: the number, `client:name` or the `sip:` URI.
    to: String,
    send_digits: String,
    status_callback: Option<(String, HttpMethod, Vec<String>)>,
    /// `url`: TwiML the party hears once it picks up, before the bridge.
    whisper: Option<Whisper>,
}

/// The parties of a `<Dial>`, in order: a bare number, or its `<Number>`, `<Client>` and
/// `<Sip>` nouns.
fn parties(d: &Dial, doc_url: &str) -> Vec<Party> {
    if d.nouns.is_empty() {
        return vec![Party {
            to: d.target.clone(),
            send_digits: String::new(),
            status_callback: None,
            whisper: None,
        }];
    }
    d.nouns
        .iter()
        .filter(|n| {
            matches!(
                n.kind(),
                NounKind::Number | NounKind::Client | NounKind::Sip
            )
        })
        .take(MAX_PARTIES)
        .map(|n| {
            // The attributes as the parser checked them.
            let o = n.number_options();
            let to = match n.kind() {
                NounKind::Client if !n.value.starts_with("client:") => {
                    format!("client:{}", n.value)
                }
                _ => n.value.clone(),
            };
            let status_callback = o
                .status_callback
                .as_deref()
                .and_then(|u| webhook::resolve(doc_url, u).ok())
                .map(|url| {
                    (
                        url,
                        o.status_callback_method.into(),
                        with_completed(o.status_callback_events),
                    )
                });
            let whisper = o
                .url
                .as_deref()
                .and_then(|u| webhook::resolve(doc_url, u).ok())
                .map(|url| Whisper {
                    url,
                    method: o.method.into(),
                });
            Party {
                to,
                send_digits: o.send_digits.unwrap_or_default(),
                status_callback,
                whisper,
            }
        })
        .collect()
}

/// `completed` is always sent (Twilio's default event, kept when others are named).
fn with_completed(mut events: Vec<String>) -> Vec<String> {
    if !events.iter().any(|e| e == "completed") {
        events.push("completed".into());
    }
    events
}

/// How one party's leg went.
struct LegResult {
    party: usize,
    leg_sid: String,
    status: DialStatus,
    answered_at: Option<Instant>,
    /// When a party with a whisper picked up (its leg is answered from then, bridged or
    /// not): its `CallDuration` counts from here.
    picked_up_at: Option<Instant>,
    ended_at: Instant,
    ended_by: String,
    /// What the caller heard from the party once bridged (a simulated callee's audio, or
    /// the hosted app's call audio from its answer).
    heard: Option<Arc<FrameSet>>,
    /// What the caller said into the bridge (the hosted app's caller track).
    said: Option<Vec<u8>>,
    app: Option<Arc<CallResult>>,
}

/// Who takes a party's leg: a hosted app's call (its SID, ready to run) or a simulated
/// callee.
enum Answerer<'e> {
    App(String, Box<super::PreparedCall<'e>>),
    Simulated(SimulatedCallee),
}

/// What every party's leg shares.
pub(super) struct DialCtx<'c> {
    pub(super) call: &'c Call<'c>,
    dial: &'c Dial,
    from: String,
    /// The caller's audio from where it has got to, and its turns and digits shifted to
    /// match: what a hosted app hears.
    caller: crate::config::CallerScript,
    /// Set when the first party answers (its index).
    pub(super) winner: watch::Sender<Option<usize>>,
    /// Set when the bridge must end, with why.
    pub(super) stop: watch::Sender<Option<String>>,
    /// Failures of whispers (`<Number url>`), the call's own.
    pub(super) whisper_failures: std::sync::Mutex<Vec<crate::report::Failure>>,
    /// Records the bridge (`record`).
    recorder: Option<&'c DialRecorder>,
}

impl Call<'_> {
    pub(super) async fn dial(&mut self, node: &Node, d: &Dial, doc_url: &str) -> Next {
        if self.info.direction == Direction::OutboundDial {
            // A dialed leg's TwiML (a whisper) cannot dial further.
            self.failures.push(crate::report::Failure::Twiml {
                url: doc_url.to_string(),
                code: 13201,
                error: "Dial: Cannot Dial out from a Dial Call Segment".into(),
            });
            return Next::End {
                status: CallStatus::Completed,
                reason: "<Dial> in a dialed leg's TwiML (13201)".into(),
            };
        }
        if let Some(n) = d.nouns.iter().find(|n| n.kind() == NounKind::Conference) {
            // A room or a queue has no party whose answer the call could wait for.
            self.answered();
            return self.conference(node, d, n, doc_url).await;
        }
        if let Some(n) = d.nouns.iter().find(|n| n.kind() == NounKind::Queue) {
            self.answered();
            return self.dial_queue(node, d, n, doc_url).await;
        }
        let parties = parties(d, doc_url);
        let names: Vec<String> = parties.iter().map(|p| p.to.clone()).collect();
        self.verb_event(node, names.join(", "));
        if parties.is_empty() {
            self.warn(
                0,
                "<Dial> names no party dialtone can call (<Number>, <Client>, <Sip>); skipped"
                    .into(),
            );
            return Next::Continue;
        }
        if self.cfg.dial_depth >= MAX_DIAL_DEPTH {
            self.warn(
                0,
                format!(
                    "<Dial> skipped: {MAX_DIAL_DEPTH} dialed apps deep (an app dialing itself?)"
                ),
            );
            return Next::Continue;
        }
        if d.answer_on_bridge && self.answered_at.is_some() {
            // Only a <Dial> before anything answers can hold the answer back.
            self.warn(
                0,
                "answerOnBridge has no effect: the call was answered before the <Dial>".into(),
            );
        }
        let was_answered = self.answered_at.is_some();
        let ringback = dial_record::ringback(d);
        let recorder = DialRecorder::new(self, d, doc_url);
        let began = Instant::now();
        let live = self.cfg.caller.live.clone();
        if let Some(live) = &live {
            // A live caller hears the ringback until a party is bridged.
            live.play(Some(ringback.clone()));
        }
        let results = self.ring(d, &parties, recorder.as_ref()).await;
        if let Some(live) = &live {
            live.play(None);
        }
        let ended = Instant::now();
        let winner = results.iter().find(|r| r.answered_at.is_some());
        if was_answered {
            // What the caller heard while it rang (answerOnBridge rings before any answer).
            let ring_end = winner.and_then(|w| w.answered_at).unwrap_or(ended);
            self.note_played_span(ringback.clone(), began, ring_end);
        }
        let recorded = match recorder {
            Some(rec) => {
                let audio = Recorded {
                    began,
                    bridge: winner.and_then(|w| w.answered_at.map(|a| (a, w.ended_at))),
                    ended,
                    ringback: &ringback,
                    heard: winner.and_then(|w| w.heard.as_deref()).map(|f| f.mulaw()),
                    said: winner.and_then(|w| w.said.as_deref()),
                };
                rec.finish(self, &audio)
            }
            None => Vec::new(),
        };
        let lead = winner.or(results.first());
        let status = lead.map_or(DialStatus::Failed, |r| r.status);
        let duration = winner.map_or(Duration::ZERO, |r| {
            r.ended_at
                .saturating_duration_since(r.answered_at.unwrap_or(r.ended_at))
        });
        let ended_by = lead.map_or_else(String::new, |r| r.ended_by.clone());
        if let Some(w) = winner {
            if let Some(at) = w.answered_at {
                // answerOnBridge: the call was answered with the party (announced then).
                self.answered_since(at);
            }
            self.note_bridged(w);
            // A bridge is the call advancing: the documents before it were no loop.
            self.idle_documents = 0;
        }
        self.timeline.emit(EventKind::Dial(DialEvent::Ended {
            status,
            duration_s: duration.as_secs(),
            why: ended_by.clone(),
        }));
        let leg_sid = lead.map(|r| r.leg_sid.clone());
        self.last_dial = Some(status);
        if self.dials.len() < DIALS_KEPT {
            self.dials.push(DialReport {
                to: names,
                status,
                leg_sid: leg_sid.clone(),
                answered_by: winner.map(|w| parties[w.party].to.clone()),
                answer_ms: winner
                    .and_then(|w| w.answered_at)
                    .map(|a| a.saturating_duration_since(began).as_secs_f64() * 1e3),
                duration_ms: duration.as_secs_f64() * 1e3,
                ended_by,
                app: winner
                    .and_then(|w| w.app.as_ref())
                    .map(|a| Box::new(a.report.clone())),
            });
        }
        let bridged = winner.is_some();
        drop(results);
        let mut extra = vec![
            ("DialCallStatus".to_string(), status.as_str().to_string()),
            (
                "DialCallDuration".to_string(),
                duration.as_secs().to_string(),
            ),
            ("DialBridged".to_string(), bridged.to_string()),
        ];
        if let Some(sid) = leg_sid {
            extra.push(("DialCallSid".to_string(), sid));
        }
        extra.extend(recorded);
        self.dial_action(d, doc_url, extra).await
    }

    /// After a `<Dial>`: its `action` with `extra`, or the next verb; a REST redirect's
    /// TwiML instead; the end when the caller has gone (the action still requested).
    pub(super) async fn dial_action(
        &mut self,
        d: &Dial,
        doc_url: &str,
        extra: Vec<(String, String)>,
    ) -> Next {
        if self.redirect.borrow().is_some() {
            // A REST redirect ended the bridge: its TwiML runs, not the action.
            return self.interrupted().await;
        }
        let caller_gone = self.ended();
        let next = match &d.action {
            Some(action) => {
                self.follow("action", doc_url, Some(action), d.method.into(), extra)
                    .await
            }
            None => Next::Continue,
        };
        match caller_gone {
            // Twilio still tells the app how the dial went; the caller is gone, so its
            // answer is not run.
            Some(reason) => Next::End {
                status: self.final_status(),
                reason,
            },
            None => next,
        }
    }

    /// Rings every party; bridges the first to answer until the bridge ends.
    async fn ring(
        &mut self,
        d: &Dial,
        parties: &[Party],
        recorder: Option<&DialRecorder>,
    ) -> Vec<LegResult> {
        let (winner, _) = watch::channel(None);
        let (stop, _) = watch::channel(None);
        let star_at = if d.hangup_on_star {
            self.caller_digit_after('*')
        } else {
            None
        };
        let caller = self.caller_from_here();
        let from = d
            .caller_id
            .clone()
            .unwrap_or_else(|| self.info.from.clone());
        let (results, whispered) = {
            let ctx = DialCtx {
                call: &*self,
                dial: d,
                from,
                caller,
                winner,
                stop,
                recorder,
                whisper_failures: std::sync::Mutex::default(),
            };
            let legs = futures_util::future::join_all(
                parties
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Box::pin(ctx.leg(i, p.clone()))),
            );
            tokio::pin!(legs);
            let mut end = self.end.clone();
            let mut redirect = self.redirect.clone();
            let star = async {
                match star_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(star);
            let mut stopped = false;
            let results = loop {
                tokio::select! {
                    r = &mut legs => break r,
                    _ = end.wait_for(|r| r.is_some()), if !stopped => {
                        stopped = true;
                        ctx.stop.send_replace(Some("the caller hung up".into()));
                    }
                    _ = redirect.wait_for(|r| r.is_some()), if !stopped => {
                        stopped = true;
                        ctx.stop.send_replace(Some("the call was redirected".into()));
                    }
                    () = &mut star, if !stopped => {
                        stopped = true;
                        ctx.timeline_dtmf("*");
                        ctx.stop.send_replace(Some("the caller pressed * (hangupOnStar)".into()));
                    }
                }
            };
            let whispered = std::mem::take(
                &mut *ctx
                    .whisper_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            );
            (results, whispered)
        };
        for r in &results {
            if let Some(app) = &r.app {
                self.failures.extend(app.report.failures.iter().cloned());
            }
        }
        self.failures.extend(whispered);
        results
    }

    /// When the caller keys `digit` on its stream schedule, from now on.
    pub(super) fn caller_digit_after(&self, digit: char) -> Option<Instant> {
        let t0 = self.caller_t0()?;
        let now = Instant::now();
        self.cfg
            .caller
            .stream_dtmf
            .iter()
            .map(|(at, c)| (t0 + *at, *c))
            .find(|(at, c)| *c == digit && *at >= now)
            .map(|(at, _)| at)
    }

    /// Where the caller's audio started: the answer, or the first stream's start; `None`
    /// when it has not started (it then starts in the bridge from its beginning).
    pub(super) fn caller_t0(&self) -> Option<Instant> {
        if self.cfg.fast {
            return None;
        }
        match self.cfg.caller.start {
            CallerAudioStart::Answer => self.answered_at,
            CallerAudioStart::StreamStart => self.caller_started.get().copied(),
        }
    }

    /// The caller's script from now on: its audio from the frame it has reached, its turns
    /// and stream digits shifted to match, anchored at the answer of the leg it talks into.
    pub(super) fn caller_from_here(&self) -> crate::config::CallerScript {
        let mut s = self.cfg.caller.clone();
        let offset = self
            .caller_t0()
            .map_or(Duration::ZERO, |t0| t0.elapsed())
            .min(s.audio.duration());
        let frames = (offset.as_millis() / 20) as usize;
        let offset = Duration::from_millis(frames as u64 * 20);
        s.audio = Arc::new(FrameSet::from_mulaw(
            &s.audio.mulaw()[(frames * 160).min(s.audio.mulaw().len())..],
        ));
        let cut = offset.as_millis() as u32;
        s.turns = s
            .turns
            .into_iter()
            .filter(|t| t.start_ms >= cut)
            .map(|t| dialtone_corpus::Turn {
                start_ms: t.start_ms - cut,
                end_ms: t.end_ms - cut,
                text: t.text,
            })
            .collect();
        s.stream_dtmf = s
            .stream_dtmf
            .into_iter()
            .filter(|(at, _)| *at >= offset)
            .map(|(at, c)| (at - offset, c))
            .collect();
        s.gather_digits = self.digits.iter().collect();
        s.start = CallerAudioStart::Answer;
        s
    }

    /// Keeps what the caller heard and said while bridged, for the call's recording.
    fn note_bridged(&mut self, w: &LegResult) {
        let Some(at) = w.answered_at else { return };
        if let Some(heard) = &w.heard {
            let to = w.ended_at.min(at + heard.duration());
            self.note_played_span(heard.clone(), at, to);
        }
        if let Some(said) = &w.said {
            self.note_said(at, said.clone());
        }
    }
}

impl<'c> DialCtx<'c> {
    fn timeline_dtmf(&self, digits: &str) {
        self.call.timeline.emit(EventKind::Dtmf {
            digits: digits.to_string(),
        });
    }

    /// One party's leg from `initiated` to its end.
    async fn leg(&self, party: usize, p: Party) -> LegResult {
        let call = self.call;
        let index = call
            .dials_placed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let leg_sid = sid::seeded_or_random("CA", call.cfg.seed, 1_000_000 + index);
        let info = CallInfo {
            parent_call_sid: Some(call.info.call_sid.clone()),
            ..CallInfo::new(
                call.info.account_sid.clone(),
                leg_sid.clone(),
                self.from.clone(),
                p.to.clone(),
                Direction::OutboundDial,
            )
        };
        let mut cb = match &p.status_callback {
            Some((url, method, events)) => LegCallbacks::new(
                info,
                events.clone(),
                call.callback_sender(url.clone(), *method),
            ),
            None => LegCallbacks::none(info),
        };
        cb.progress("initiated", "initiated", Vec::new());
        let callee = call.cfg.directory.lookup(&call.info.account_sid, &p.to);
        // A hosted app's call is prepared before the leg is announced, so that its handle
        // goes with the announcement.
        let answerer = match callee {
            Callee::App(app) => {
                let sid = sid::seeded_or_random("CA", call.cfg.seed, 2_000_000 + index);
                let prepared = call
                    .engine
                    .prepare(self.app_config(&p, &app, sid.clone(), index));
                Answerer::App(sid, Box::new(prepared))
            }
            Callee::Simulated(c) => Answerer::Simulated(c),
        };
        let app_sid = match &answerer {
            Answerer::App(sid, _) => Some(sid.clone()),
            Answerer::Simulated(_) => None,
        };
        let start = LegStart {
            parent_sid: call.info.call_sid.clone(),
            leg_sid: leg_sid.clone(),
            app_sid: app_sid.clone(),
            account_sid: call.info.account_sid.clone(),
            from: self.from.clone(),
            to: p.to.clone(),
        };
        let handle = match &answerer {
            Answerer::App(_, prepared) => Some(prepared.handle()),
            Answerer::Simulated(_) => None,
        };
        let extra_sink = call.cfg.directory.leg_started(&start, handle.as_ref());
        call.timeline.emit(EventKind::Dial(DialEvent::Ringing {
            leg_sid: leg_sid.clone(),
            to: p.to.clone(),
            app_sid: app_sid.clone(),
        }));
        let r = match answerer {
            Answerer::App(_, prepared) => {
                self.hosted(
                    party,
                    *prepared,
                    extra_sink,
                    &mut cb,
                    &start,
                    p.whisper.as_ref(),
                )
                .await
            }
            Answerer::Simulated(c) => self.simulated(party, &p, &c, &mut cb, &start).await,
        };
        let duration = r
            .picked_up_at
            .or(r.answered_at)
            .map_or(Duration::ZERO, |a| r.ended_at.saturating_duration_since(a));
        let status = match r.status {
            DialStatus::Canceled => "canceled",
            s => s.as_str(),
        };
        cb.progress(
            "completed",
            status,
            vec![
                ("CallDuration".into(), duration.as_secs().to_string()),
                (
                    "Duration".into(),
                    duration.as_secs().div_ceil(60).to_string(),
                ),
            ],
        );
        if let Some(task) = cb.finish() {
            call.leg_callbacks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
        }
        call.cfg.directory.leg_ended(
            &start,
            &LegEnd {
                status: r.status,
                duration,
                app: r.app.clone(),
            },
        );
        r
    }

    /// Waits `d` (none in virtual time); false if the bridge was stopped or another party
    /// answered first.
    async fn ring_for(&self, party: usize, d: Duration) -> bool {
        if self.call.cfg.fast {
            tokio::task::yield_now().await;
            return !self.lost(party);
        }
        let mut stop = self.stop.subscribe();
        let mut winner = self.winner.subscribe();
        tokio::select! {
            () = sleep(d) => !self.lost(party),
            _ = stop.wait_for(|s| s.is_some()) => false,
            _ = winner.wait_for(|w| w.is_some_and(|w| w != party)) => false,
        }
    }

    /// The bridge was stopped, or another party answered.
    fn lost(&self, party: usize) -> bool {
        self.stop.borrow().is_some() || self.winner.borrow().is_some_and(|w| w != party)
    }

    /// Claims the bridge for `party`; false if another party has it (or it was stopped).
    fn claim(&self, party: usize) -> bool {
        if self.stop.borrow().is_some() {
            return false;
        }
        let mut won = false;
        self.winner.send_if_modified(|w| {
            if w.is_none() {
                *w = Some(party);
                won = true;
            }
            won
        });
        won
    }

    fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.dial.timeout_secs.into())
    }

    pub(super) fn time_limit(&self) -> Duration {
        Duration::from_secs(self.dial.time_limit_secs.into())
    }

    /// Why a leg that did not get the bridge ended.
    pub(super) fn lost_why(&self) -> (DialStatus, String) {
        match self.stop.borrow().clone() {
            Some(why) => (DialStatus::Canceled, why),
            None => (DialStatus::Canceled, "another party answered first".into()),
        }
    }

    async fn simulated(
        &self,
        party: usize,
        p: &Party,
        c: &SimulatedCallee,
        cb: &mut LegCallbacks,
        start: &LegStart,
    ) -> LegResult {
        use crate::dial::CalleeAnswer as A;
        let mut r = LegResult {
            party,
            leg_sid: start.leg_sid.clone(),
            status: DialStatus::Failed,
            answered_at: None,
            picked_up_at: None,
            ended_at: Instant::now(),
            ended_by: String::new(),
            heard: None,
            said: None,
            app: None,
        };
        if c.answer == A::Failed {
            r.ended_by = format!("{} could not be reached", p.to);
            return r;
        }
        cb.progress("ringing", "ringing", Vec::new());
        let timeout = self.ring_timeout();
        let (ring, answers) = match c.answer {
            A::Answer if c.ring < timeout => (c.ring, true),
            A::Busy => (c.ring.min(timeout), false),
            _ => (timeout, false),
        };
        if !self.ring_for(party, ring).await {
            (r.status, r.ended_by) = self.lost_why();
            r.ended_at = Instant::now();
            return r;
        }
        if !answers {
            (r.status, r.ended_by) = match c.answer {
                A::Busy => (DialStatus::Busy, format!("{} is busy", p.to)),
                _ => (
                    DialStatus::NoAnswer,
                    format!("no answer within timeout ({} s)", timeout.as_secs()),
                ),
            };
            r.ended_at = Instant::now();
            return r;
        }
        if let Some(w) = &p.whisper {
            // The party picked up: its leg is answered before it is bridged.
            cb.progress("answered", "in-progress", Vec::new());
            self.call.cfg.directory.leg_answered(start);
            r.picked_up_at = Some(Instant::now());
            let side = Listener {
                audio: c.audio.clone(),
                keys: c.keys.clone(),
            };
            // Nothing else ends a simulated party's whisper.
            let (_keep, never) = watch::channel(false);
            if let Err(why) = self.whisper(party, w, start, side, never).await {
                (r.status, r.ended_by) = self.unbridged(party, why);
                r.ended_at = Instant::now();
                return r;
            }
        }
        if !self.claim(party) {
            (r.status, r.ended_by) = if p.whisper.is_some() {
                // Its whisper ran: it was answered, so it completes.
                self.unbridged(party, String::new())
            } else {
                self.lost_why()
            };
            r.ended_at = Instant::now();
            return r;
        }
        let answered = Instant::now();
        r.answered_at = Some(answered);
        if p.whisper.is_none() {
            cb.progress("answered", "in-progress", Vec::new());
        }
        self.bridged(start);
        // The callee hears the digits first, then talks until it hangs up.
        let digits = Duration::from_millis(DIGIT_MS * p.send_digits.len() as u64);
        let talk = (digits + c.audio.duration() + c.tail).min(self.time_limit());
        let live = self.call.cfg.caller.live.as_ref();
        if let Some(live) = live {
            // A live caller hears the callee as it talks (after the digits it is sent).
            let mut voice = vec![0xFF; (digits.as_millis() as usize) * 8];
            voice.extend_from_slice(c.audio.mulaw());
            // Then silence for its tail (the prompt player loops what it is given).
            voice.resize(voice.len() + (c.tail.as_millis() as usize) * 8, 0xFF);
            live.play(Some(Arc::new(FrameSet::from_mulaw(&voice))));
        }
        let full = self.ring_for(party, talk).await;
        if let Some(live) = live {
            live.play(None);
        }
        r.status = DialStatus::Completed;
        r.ended_at = Instant::now();
        r.ended_by = if full {
            if talk < digits + c.audio.duration() + c.tail {
                format!("timeLimit ({} s)", self.dial.time_limit_secs)
            } else {
                format!("{} hung up", p.to)
            }
        } else {
            self.lost_why().1
        };
        r.heard = Some(c.audio.clone());
        // The caller talks into the bridge from where it had got to when the dial began.
        let spoken = super::recording::bytes_between(answered, r.ended_at);
        r.said = Some(match (live, live.and_then(|l| l.epoch())) {
            // A live caller's own slots over the bridge.
            (Some(live), Some(epoch)) => {
                let from = super::recording::bytes_between(epoch, answered) as u64;
                live.said_between(from, from + spoken as u64)
            }
            _ => {
                let caller = self.caller.audio.mulaw();
                caller[..spoken.min(caller.len())].to_vec()
            }
        });
        r
    }

    /// How a leg that picked up but was not bridged ended: completed, as any answered call
    /// ends (it was told `in-progress`), because the dial stopped or another party won
    /// meanwhile, or its whisper hung up.
    fn unbridged(&self, party: usize, why: String) -> (DialStatus, String) {
        if self.lost(party) {
            (DialStatus::Completed, self.lost_why().1)
        } else {
            (DialStatus::Completed, why)
        }
    }

    /// The party is bridged to the caller.
    fn bridged(&self, start: &LegStart) {
        if let Some(live) = &self.call.cfg.caller.live {
            live.play(None);
        }
        if self.call.answered_at.is_none() {
            // answerOnBridge held the caller's answer until now.
            self.call.timeline.emit(EventKind::Answered);
        }
        if let Some(r) = self.recorder.filter(|r| r.starts_at_answer()) {
            r.start();
        }
        self.call
            .timeline
            .emit(EventKind::Dial(DialEvent::Answered {
                leg_sid: start.leg_sid.clone(),
                to: start.to.clone(),
            }));
        self.call.cfg.directory.leg_answered(start);
    }

    /// A hosted app's leg: its own call in this engine, answered when its first TwiML is
    /// in hand (and not a `<Reject>`).
    async fn hosted(
        &self,
        party: usize,
        prepared: super::PreparedCall<'_>,
        extra_sink: Option<crate::EventSink>,
        cb: &mut LegCallbacks,
        start: &LegStart,
        whisper: Option<&Whisper>,
    ) -> LegResult {
        let call = self.call;
        let handle = prepared.handle();
        let (answer_tx, mut answer_rx) = watch::channel(None::<Instant>);
        let timeline = call.timeline.clone();
        let sid = start.app_sid.clone().unwrap_or_default();
        let sink: crate::EventSink = Arc::new(move |e: &CallEvent| {
            if crate::report::answers(&e.kind) {
                // The first answer counts (a later document is no new answer).
                answer_tx.send_if_modified(|a| {
                    let first = a.is_none();
                    a.get_or_insert_with(Instant::now);
                    first
                });
            }
            if let Some(s) = &extra_sink {
                s(e);
            }
            timeline.emit(EventKind::Dial(DialEvent::Leg {
                app_sid: sid.clone(),
                event: Box::new(e.clone()),
            }));
        });
        cb.progress("ringing", "ringing", Vec::new());
        let mut run = boxed_run(prepared, sink);
        let mut stop = self.stop.subscribe();
        let mut winner = self.winner.subscribe();
        let ring_end = Instant::now() + self.ring_timeout();
        // Ringing: until the app answers, ends, the dial times out, or the bridge is lost.
        let mut answered_at = None;
        let mut ended_by = String::new();
        let mut done = None;
        tokio::select! {
            r = &mut run => done = Some(r),
            a = answer_rx.wait_for(|a| a.is_some()) => answered_at = a.ok().and_then(|a| *a),
            () = tokio::time::sleep_until(ring_end), if !call.cfg.fast => {
                ended_by = format!("no answer within timeout ({} s)", self.dial.timeout_secs);
                handle.hangup("the dial's timeout passed before the app answered");
            }
            _ = stop.wait_for(|s| s.is_some()) => {
                ended_by = self.lost_why().1;
                handle.hangup(ended_by.clone());
            }
            _ = winner.wait_for(|w| w.is_some_and(|w| w != party)) => {
                ended_by = self.lost_why().1;
                handle.hangup(ended_by.clone());
            }
        }
        if answered_at.is_none() {
            // The answer may have raced the end: the sink saw it.
            answered_at = *answer_rx.borrow();
        }
        let mut bridge_at = answered_at;
        let mut unbridged = None;
        let whispered = answered_at.is_some() && whisper.is_some() && done.is_none();
        if let (true, Some(w)) = (whispered, whisper) {
            cb.progress("answered", "in-progress", Vec::new());
            self.call.cfg.directory.leg_answered(start);
            // The app's call runs on while its leg hears the whisper (it hears silence: a
            // hosted app is no party that listens).
            let side = Listener {
                audio: Arc::new(FrameSet::from_mulaw(&[])),
                keys: String::new(),
            };
            let (cancel, cancelled) = watch::channel(false);
            let whisper = self.whisper(party, w, start, side, cancelled);
            tokio::pin!(whisper);
            let first = tokio::select! {
                r = &mut run => Err(r),
                w = &mut whisper => Ok(w),
            };
            let outcome = match first {
                Ok(w) => w,
                Err(r) => {
                    // The app hung up: the whisper's leg is hung up and waited for, so its
                    // callbacks and failures are not lost.
                    done = Some(r);
                    cancel.send_replace(true);
                    whisper.await
                }
            };
            match outcome {
                Ok(()) if done.is_none() => bridge_at = Some(Instant::now()),
                Ok(()) => unbridged = Some("the app hung up during the whisper".to_string()),
                Err(why) => unbridged = Some(why),
            }
        }
        let won = answered_at.is_some() && unbridged.is_none() && self.claim(party);
        if answered_at.is_some() && !won {
            ended_by = unbridged.clone().unwrap_or_else(|| self.lost_why().1);
            handle.hangup(ended_by.clone());
        }
        if won {
            if !whispered {
                cb.progress("answered", "in-progress", Vec::new());
            }
            self.bridged(start);
            // Bridged: until either side hangs up, the time limit, or the bridge is stopped.
            let limit = bridge_at.unwrap_or_else(Instant::now) + self.time_limit();
            if done.is_none() {
                tokio::select! {
                    r = &mut run => done = Some(r),
                    () = tokio::time::sleep_until(limit) => {
                        ended_by = format!("timeLimit ({} s)", self.dial.time_limit_secs);
                        handle.hangup(ended_by.clone());
                    }
                    _ = stop.wait_for(|s| s.is_some()) => {
                        ended_by = self.lost_why().1;
                        handle.hangup(ended_by.clone());
                    }
                }
            }
        }
        let result = match done {
            Some(r) => r,
            None => run.await,
        };
        let ended_at = Instant::now();
        let status = if won {
            if ended_by.is_empty() {
                ended_by = format!("the app hung up: {}", result.report.end_reason);
            }
            DialStatus::Completed
        } else if let Some(why) = unbridged {
            let (status, why) = self.unbridged(party, why);
            ended_by = why;
            status
        } else if !ended_by.is_empty() {
            if ended_by.starts_with("no answer") {
                DialStatus::NoAnswer
            } else if whispered {
                // Answered (its whisper ran) but not bridged: it completes.
                DialStatus::Completed
            } else {
                DialStatus::Canceled
            }
        } else {
            ended_by = format!("the app did not answer: {}", result.report.end_reason);
            match result.report.status {
                CallStatus::Busy => DialStatus::Busy,
                CallStatus::NoAnswer => DialStatus::NoAnswer,
                _ => DialStatus::Failed,
            }
        };
        // The app's call audio counts from its answer; the bridge from after the whisper.
        let skip = match (answered_at, bridge_at) {
            (Some(a), Some(b)) => super::recording::bytes_between(a, b),
            _ => 0,
        };
        let (heard, said) = match (&result.call_audio, won) {
            (Some(a), true) => (
                Some(Arc::new(FrameSet::from_mulaw(
                    &a.heard[skip.min(a.heard.len())..],
                ))),
                Some(a.said[skip.min(a.said.len())..].to_vec()),
            ),
            _ => (None, None),
        };
        LegResult {
            party,
            leg_sid: start.leg_sid.clone(),
            status,
            answered_at: bridge_at.filter(|_| won),
            picked_up_at: answered_at.filter(|_| whispered),
            ended_at,
            ended_by,
            heard,
            said,
            app: Some(Arc::new(result)),
        }
    }

    /// The hosted app's call: an inbound call to its number from the caller ID, hearing the
    /// caller from where it has got to, on the parent's settings.
    fn app_config(&self, p: &Party, app: &HostedApp, app_sid: String, leg: u64) -> CallConfig {
        let parent = &self.call.cfg;
        let mut cfg = CallConfig::new(app.url.clone(), self.caller.audio.clone());
        cfg.method = app.method;
        cfg.fallback_url = app.fallback_url.clone();
        cfg.account_sid = app.account_sid.clone();
        cfg.auth_token = app.auth_token.clone();
        cfg.tunnels = app.tunnels.clone();
        cfg.from = self.from.clone();
        cfg.to = p.to.clone();
        cfg.direction = Direction::Inbound;
        cfg.call_sid = Some(app_sid);
        cfg.caller = self.caller.clone();
        // `sendDigits` reach the app first, as serve keys a created call's `SendDigits`.
        let keyed = crate::dial::digit_schedule(&p.send_digits);
        let typed: String = keyed.iter().map(|(_, c)| *c).collect();
        cfg.caller.gather_digits = typed + &cfg.caller.gather_digits;
        cfg.caller.stream_dtmf.extend(keyed);
        cfg.caller.stream_dtmf.sort_by_key(|(t, _)| *t);
        cfg.max_duration = parent
            .max_duration
            .min(self.time_limit() + self.ring_timeout());
        cfg.webhook_timeout = parent.webhook_timeout;
        cfg.no_audio_timeout = parent.no_audio_timeout;
        // A recorded dial needs what the app's caller said and heard.
        cfg.record = parent.record || self.dial.recording().is_some();
        // Each leg its own seed: seeded SIDs (RE…, MZ…, GT…) of two legs must not collide.
        cfg.seed = parent
            .seed
            .map(|s| s.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(leg + 1));
        cfg.fast = parent.fast;
        cfg.relay_speech = parent.relay_speech;
        cfg.frame_lateness = parent.frame_lateness.clone();
        cfg.keep_timeline = false;
        cfg.directory = parent.directory.clone();
        cfg.dial_depth = parent.dial_depth + 1;
        cfg.recordings = parent.recordings.clone();
        cfg
    }
}

/// The app's call, boxed behind a named type: it is a call like the one dialing it, and a
/// future may not contain itself (nor can its `Send` be proven through its own type).
pub(super) fn boxed_run<'e>(
    prepared: super::PreparedCall<'e>,
    sink: crate::EventSink,
) -> Pin<Box<dyn Future<Output = CallResult> + Send + 'e>> {
    Box::pin(prepared.run(Some(sink)))
}
