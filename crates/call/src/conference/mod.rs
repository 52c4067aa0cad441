//! `<Conference>` rooms shared by an engine's calls: who is in each, what each hears (the
//! [`dialtone_audio::mix::Room`] mixer, driven one 20 ms frame at a time by a ticker task),
//! the conference's status callbacks, and what the REST API shows and changes.
//!
//! A participant is a call inside `<Dial><Conference>` (the executor holds its [`Seat`]) or
//! a simulated party the REST API added ([`AddParticipant`], run by
//! [`crate::Engine::add_participant`]). Its voice is its caller's audio
//! from where the caller had got to when it joined. A conference starts when two are present
//! and one has `startConferenceOnEnter`; until then its participants wait, unheard. It ends
//! when the last leaves, when one with `endConferenceOnExit` leaves (the others are sent
//! out), or through the REST API; a later join by the same name opens a new conference.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use dialtone_audio::FrameSet;
use dialtone_audio::mix::{self, ParticipantId, Room};
use dialtone_protocol::{sid, webhook};
use dialtone_twiml::Beep;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::callbacks::{Queue, Sender};

/// Conferences running at once per engine; joining a further one is refused.
const LIVE_MAX: usize = 10_000;
/// Ended conferences kept for the REST API.
const ENDED_KEPT: usize = 1_000;
/// What a participant heard is kept (when recording) up to this long; later audio is not.
const HEARD_MAX_BYTES: usize = 3_600 * 8_000;
/// One mixer frame.
const FRAME: Duration = Duration::from_millis(20);

/// A conference's status, as the REST API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Participants wait for it to start.
    Init,
    /// Started.
    InProgress,
    /// Ended.
    Completed,
}

impl Status {
    /// Twilio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
        }
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JoinError {
    /// `maxParticipants` reached.
    #[error("conference {0:?} is full ({1} participants)")]
    Full(String, usize),
    /// Another participant has this label (Twilio's 16025).
    #[error("participant label {0:?} is already in use in conference {1:?}")]
    LabelInUse(String, String),
    /// The call is already in this conference.
    #[error("call {0} is already in conference {1:?}")]
    AlreadyIn(String, String),
    /// Too many conferences at once.
    #[error("{LIVE_MAX} conferences are running; no further one can start")]
    TooMany,
}

impl JoinError {
    /// Twilio's error code for it.
    pub fn code(&self) -> u16 {
        match self {
            Self::LabelInUse(..) => 16025,
            _ => 16000,
        }
    }
}

/// A conference's events and where they go (the first participant's `statusCallback`).
pub(crate) struct Subscription {
    pub(crate) sender: Sender,
    /// `start`, `end`, `join`, `leave`, `mute`, `hold`, `speaker`, …
    pub(crate) events: Vec<String>,
}

/// How a participant takes part.
#[derive(Debug, Clone)]
pub struct Role {
    /// `participantLabel`.
    pub label: Option<String>,
    /// Listens only.
    pub muted: bool,
    /// Its joining starts the conference.
    pub start_on_enter: bool,
    /// Its leaving ends the conference.
    pub end_on_exit: bool,
    /// Beeps on its joining and leaving.
    pub beep: Beep,
}

/// A participant joining.
pub(crate) struct Join {
    pub(crate) account_sid: String,
    pub(crate) friendly_name: String,
    pub(crate) call_sid: String,
    pub(crate) role: Role,
    /// `maxParticipants` (the first participant's counts).
    pub(crate) max_participants: usize,
    /// Its voice, from now on.
    pub(crate) voice: Arc<FrameSet>,
    /// A caller talking live instead: its slots are its voice, and it hears the room's mix
    /// frame by frame.
    pub(crate) live: Option<Arc<crate::live::LiveCaller>>,
    /// Keep what it hears.
    pub(crate) record: bool,
    /// The conference's callbacks, if it is the first.
    pub(crate) subscription: Option<Subscription>,
}

/// A party the REST API adds (`POST …/Participants.json`): dialtone dials `to`, a simulated
/// callee, and seats it when it answers. Its voice is its audio; it hangs up after its audio
/// and tail, or is sent out.
#[derive(Debug, Clone)]
pub struct AddParticipant {
    /// The account.
    pub account_sid: String,
    /// Signs its callbacks.
    pub auth_token: String,
    /// The conference's name.
    pub conference: String,
    /// The new call's SID.
    pub call_sid: String,
    /// `From`.
    pub from: String,
    /// `To`.
    pub to: String,
    /// How it takes part.
    pub role: Role,
    /// Who answers.
    pub callee: crate::dial::SimulatedCallee,
    /// `Timeout`: how long it rings at most.
    pub timeout: Duration,
    /// `TimeLimit`: how long it stays at most.
    pub time_limit: Duration,
    /// `ConferenceStatusCallback`, its method and events (used if it opens the conference).
    pub conference_status_callback: Option<(String, crate::config::HttpMethod, Vec<String>)>,
    /// Where the callbacks go.
    pub tunnels: Arc<dialtone_net::Tunnels>,
}

/// How a REST-added participant's call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegProgress {
    /// Ringing.
    Ringing,
    /// Answered and seated.
    InProgress,
    /// Over: completed, busy, no-answer or failed, after `Duration` in the room.
    Ended(webhook::CallStatus, Duration),
}

/// A conference as the REST API shows it.
#[derive(Debug, Clone)]
pub struct ConferenceInfo {
    /// `CF…`.
    pub sid: String,
    /// The account.
    pub account_sid: String,
    /// The name the TwiML gave it.
    pub friendly_name: String,
    /// Its status.
    pub status: Status,
    /// When it was created.
    pub created: SystemTime,
    /// Last change.
    pub updated: SystemTime,
    /// `reason_conference_ended`.
    pub reason_ended: Option<String>,
    /// `call_sid_ending_conference`.
    pub call_sid_ending: Option<String>,
}

/// A participant as the REST API shows it.
#[derive(Debug, Clone)]
pub struct ParticipantInfo {
    /// Its call.
    pub call_sid: String,
    /// `CF…`.
    pub conference_sid: String,
    /// The account.
    pub account_sid: String,
    /// How it takes part (`muted` as it is now).
    pub role: Role,
    /// On hold.
    pub hold: bool,
    /// Joined at.
    pub created: SystemTime,
    /// Last change.
    pub updated: SystemTime,
}

/// A change to a participant through the REST API.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// `Muted`.
    pub muted: Option<bool>,
    /// `Hold`.
    pub hold: Option<bool>,
    /// `EndConferenceOnExit`.
    pub end_on_exit: Option<bool>,
    /// `BeepOnExit`.
    pub beep_on_exit: Option<bool>,
}

struct Member {
    id: ParticipantId,
    call_sid: String,
    role: Role,
    hold: bool,
    created: SystemTime,
    updated: SystemTime,
    /// The frame it joined at; its voice's first frame plays then.
    joined_frame: u64,
    voice: Arc<FrameSet>,
    live: Option<Arc<crate::live::LiveCaller>>,
    /// In the mixer (the conference has started).
    mixing: bool,
    /// What it heard from `heard_from` on, when recording.
    heard: Option<Vec<u8>>,
    heard_from: u64,
    /// Set (with `ReasonParticipantLeft`) when it must leave: kicked, or the conference ended.
    out: watch::Sender<Option<String>>,
}

struct State {
    status: Status,
    updated: SystemTime,
    room: Room,
    members: Vec<Member>,
    next_id: ParticipantId,
    max_participants: usize,
    /// The last frame mixed.
    frame: u64,
    callbacks: Option<(Queue, Vec<String>)>,
    sequence: u32,
    reason_ended: Option<String>,
    call_sid_ending: Option<String>,
    label_ending: Option<String>,
    ticker: Option<JoinHandle<()>>,
}

/// One conference.
pub struct Conference {
    sid: String,
    account_sid: String,
    friendly_name: String,
    created: SystemTime,
    /// Frame 0 of its mixer.
    t0: Instant,
    state: Mutex<State>,
    /// Set when it starts.
    started: watch::Sender<bool>,
}

/// The conferences of one engine.
#[derive(Default)]
pub struct Conferences {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    live: HashMap<(String, String), Arc<Conference>>,
    ended: VecDeque<Arc<Conference>>,
}

impl std::fmt::Debug for Conferences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conferences")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conferences {
    /// The account's conferences, live and ended, newest first.
    pub fn list(&self, account_sid: &str) -> Vec<Arc<Conference>> {
        let inner = lock(&self.inner);
        let mut all: Vec<Arc<Conference>> = inner
            .live
            .values()
            .chain(inner.ended.iter())
            .filter(|c| c.account_sid == account_sid)
            .cloned()
            .collect();
        all.sort_by(|a, b| b.created.cmp(&a.created).then(b.sid.cmp(&a.sid)));
        all
    }

    /// The account's conference with SID `sid`, or the live one named `sid`.
    pub fn find(&self, account_sid: &str, sid: &str) -> Option<Arc<Conference>> {
        let inner = lock(&self.inner);
        if let Some(c) = inner.live.get(&(account_sid.to_string(), sid.to_string())) {
            return Some(c.clone());
        }
        inner
            .live
            .values()
            .chain(inner.ended.iter())
            .find(|c| c.account_sid == account_sid && c.sid == sid)
            .cloned()
    }

    /// Seats `j` in its conference (opened if none by that name is running).
    pub(crate) fn join(self: &Arc<Self>, j: Join) -> Result<Seat, JoinError> {
        let conf = {
            let mut inner = lock(&self.inner);
            let key = (j.account_sid.clone(), j.friendly_name.clone());
            // One ended (by the API or a moderator) but still emptying is kept for the API;
            // joining by its name opens a new conference.
            if let Some(old) = inner.live.get(&key).cloned()
                && old.info().status == Status::Completed
            {
                inner.live.remove(&key);
                inner.ended.push_back(old);
                if inner.ended.len() > ENDED_KEPT {
                    inner.ended.pop_front();
                }
            }
            match inner.live.get(&key) {
                Some(c) => c.clone(),
                None => {
                    if inner.live.len() >= LIVE_MAX {
                        return Err(JoinError::TooMany);
                    }
                    let c = Arc::new(Conference::new(&j));
                    inner.live.insert(key, c.clone());
                    c
                }
            }
        };
        let mut seat = conf.seat(j)?;
        seat.registry = Arc::downgrade(self);
        conf.ensure_ticker();
        Ok(seat)
    }

    /// `conf` has ended: no longer found by name, kept for the REST API.
    fn retire(&self, conf: &Arc<Conference>) {
        let mut inner = lock(&self.inner);
        let key = (conf.account_sid.clone(), conf.friendly_name.clone());
        if inner.live.get(&key).is_some_and(|c| Arc::ptr_eq(c, conf)) {
            inner.live.remove(&key);
            inner.ended.push_back(conf.clone());
            if inner.ended.len() > ENDED_KEPT {
                inner.ended.pop_front();
            }
        }
    }
}

/// A participant's place in a conference, held by whoever runs it.
pub(crate) struct Seat {
    conf: Arc<Conference>,
    registry: Weak<Conferences>,
    id: ParticipantId,
    out: watch::Receiver<Option<String>>,
}

/// What a participant takes away when it leaves.
pub(crate) struct Left {
    /// What it heard, from when (when recording).
    pub(crate) heard: Option<(Instant, Vec<u8>)>,
    /// Its leaving was the conference's last.
    pub(crate) last: bool,
    /// The conference's callbacks still being sent, when it was the last: to await.
    pub(crate) callbacks: Option<JoinHandle<()>>,
}

impl Seat {
    /// The conference.
    pub(crate) fn conference(&self) -> &Arc<Conference> {
        &self.conf
    }

    /// Resolves with `ReasonParticipantLeft` when it is sent out (kicked, conference over).
    pub(crate) async fn sent_out(&mut self) -> String {
        let reason = match self.out.wait_for(|o| o.is_some()).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        match reason {
            Some(r) => r,
            // The conference is gone: nothing will send it out, so it stays.
            None => std::future::pending().await,
        }
    }

    /// Whether the conference has started.
    pub(crate) fn started(&self) -> watch::Receiver<bool> {
        self.conf.started.subscribe()
    }

    /// Leaves with `reason` (`ReasonParticipantLeft`; ignored when it was sent out, which
    /// carries its own).
    pub(crate) fn leave(self, reason: &str) -> Left {
        let reason = self
            .out
            .borrow()
            .clone()
            .unwrap_or_else(|| reason.to_string());
        let left = self.conf.remove(self.id, &reason);
        if left.last
            && let Some(r) = self.registry.upgrade()
        {
            r.retire(&self.conf);
        }
        left
    }
}

impl Conference {
    fn new(j: &Join) -> Self {
        let (started, _) = watch::channel(false);
        let now = SystemTime::now();
        Self {
            sid: sid::random("CF"),
            account_sid: j.account_sid.clone(),
            friendly_name: j.friendly_name.clone(),
            created: now,
            t0: Instant::now(),
            state: Mutex::new(State {
                status: Status::Init,
                updated: now,
                room: Room::new(),
                members: Vec::new(),
                next_id: 1,
                max_participants: j.max_participants.clamp(1, mix::MAX_PARTICIPANTS),
                frame: 0,
                callbacks: None,
                sequence: 0,
                reason_ended: None,
                call_sid_ending: None,
                label_ending: None,
                ticker: None,
            }),
            started,
        }
    }

    /// `CF…`.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// How the REST API shows it.
    pub fn info(&self) -> ConferenceInfo {
        let st = lock(&self.state);
        ConferenceInfo {
            sid: self.sid.clone(),
            account_sid: self.account_sid.clone(),
            friendly_name: self.friendly_name.clone(),
            status: st.status,
            created: self.created,
            updated: st.updated,
            reason_ended: st.reason_ended.clone(),
            call_sid_ending: st.call_sid_ending.clone(),
        }
    }

    /// Its participants, in joining order.
    pub fn participants(&self) -> Vec<ParticipantInfo> {
        let st = lock(&self.state);
        st.members
            .iter()
            .map(|m| self.participant_info(m))
            .collect()
    }

    /// The participant with this call SID or label.
    pub fn participant(&self, who: &str) -> Option<ParticipantInfo> {
        let st = lock(&self.state);
        st.find(who).map(|i| self.participant_info(&st.members[i]))
    }

    fn participant_info(&self, m: &Member) -> ParticipantInfo {
        ParticipantInfo {
            call_sid: m.call_sid.clone(),
            conference_sid: self.sid.clone(),
            account_sid: self.account_sid.clone(),
            role: m.role.clone(),
            hold: m.hold,
            created: m.created,
            updated: m.updated,
        }
    }

    /// Mutes, holds or changes a participant; its events go to the callback.
    pub fn update(&self, who: &str, u: &Update) -> Option<ParticipantInfo> {
        let mut st = lock(&self.state);
        let i = st.find(who)?;
        let now = SystemTime::now();
        let st = &mut *st;
        let m = &mut st.members[i];
        let mut events = Vec::new();
        if let Some(muted) = u.muted
            && muted != m.role.muted
        {
            m.role.muted = muted;
            if m.mixing {
                let _ = st.room.set_muted(m.id, muted);
            }
            events.push(if muted {
                "participant-mute"
            } else {
                "participant-unmute"
            });
        }
        if let Some(hold) = u.hold
            && hold != m.hold
        {
            m.hold = hold;
            if m.mixing {
                let _ = st.room.set_hold(m.id, hold);
            }
            events.push(if hold {
                "participant-hold"
            } else {
                "participant-unhold"
            });
        }
        let mut modified = false;
        if let Some(e) = u.end_on_exit
            && e != m.role.end_on_exit
        {
            m.role.end_on_exit = e;
            modified = true;
        }
        if let Some(b) = u.beep_on_exit {
            let enter = matches!(m.role.beep, Beep::True | Beep::OnEnter);
            let beep = match (enter, b) {
                (true, true) => Beep::True,
                (true, false) => Beep::OnEnter,
                (false, true) => Beep::OnExit,
                (false, false) => Beep::False,
            };
            modified |= beep != m.role.beep;
            m.role.beep = beep;
        }
        if modified {
            events.push("participant-modify");
        }
        if !events.is_empty() {
            m.updated = now;
            st.updated = now;
        }
        let info = self.participant_info(&st.members[i]);
        for e in events {
            self.notify(st, e, Some(i), Vec::new());
        }
        Some(info)
    }

    /// Sends a participant out (`ReasonParticipantLeft=participant_updated_via_api`);
    /// false if there is none by that SID or label.
    pub fn kick(&self, who: &str) -> bool {
        let st = lock(&self.state);
        let Some(i) = st.find(who) else { return false };
        st.members[i]
            .out
            .send_replace(Some("participant_updated_via_api".into()));
        true
    }

    /// Ends the conference (REST `Status=completed`): everyone is sent out.
    pub fn end(&self) {
        let mut st = lock(&self.state);
        if st.status == Status::Completed {
            return;
        }
        st.end_with("conference-ended-via-api", None, None);
        for m in &st.members {
            m.out.send_replace(Some("conference_ended_via_api".into()));
        }
    }

    fn seat(self: &Arc<Self>, j: Join) -> Result<Seat, JoinError> {
        let mut st = lock(&self.state);
        if st.members.iter().any(|m| m.call_sid == j.call_sid) {
            return Err(JoinError::AlreadyIn(j.call_sid, self.friendly_name.clone()));
        }
        if let Some(label) = &j.role.label
            && st
                .members
                .iter()
                .any(|m| m.role.label.as_ref() == Some(label))
        {
            return Err(JoinError::LabelInUse(
                label.clone(),
                self.friendly_name.clone(),
            ));
        }
        if st.members.len() >= st.max_participants {
            return Err(JoinError::Full(
                self.friendly_name.clone(),
                st.max_participants,
            ));
        }
        if st.callbacks.is_none()
            && st.members.is_empty()
            && let Some(s) = j.subscription
        {
            st.callbacks = Some((Queue::new("conference status callback", s.sender), s.events));
        }
        let id = st.next_id;
        st.next_id += 1;
        let (out, out_rx) = watch::channel(None);
        let now = SystemTime::now();
        let joined_frame = self.frame_now();
        st.members.push(Member {
            id,
            call_sid: j.call_sid,
            role: j.role,
            hold: false,
            created: now,
            updated: now,
            joined_frame,
            voice: j.voice,
            live: j.live,
            mixing: false,
            heard: j.record.then(Vec::new),
            heard_from: 0,
            out,
        });
        st.updated = now;
        let i = st.members.len() - 1;
        self.notify(&mut st, "participant-join", Some(i), Vec::new());
        let at = st.frame + 1;
        if st.status == Status::InProgress {
            st.mix_in(i, at);
            if matches!(st.members[i].role.beep, Beep::True | Beep::OnEnter) {
                st.room.beep(at);
            }
        } else if st.members.len() >= 2 && st.members.iter().any(|m| m.role.start_on_enter) {
            st.status = Status::InProgress;
            for k in 0..st.members.len() {
                st.mix_in(k, at);
            }
            if matches!(st.members[i].role.beep, Beep::True | Beep::OnEnter) {
                st.room.beep(at);
            }
            self.notify(&mut st, "conference-start", None, Vec::new());
            self.started.send_replace(true);
        }
        Ok(Seat {
            conf: self.clone(),
            registry: Weak::new(),
            id,
            out: out_rx,
        })
    }

    /// Removes participant `id`; ends the conference if it was the last, or ended it.
    fn remove(&self, id: ParticipantId, reason: &str) -> Left {
        let mut st = lock(&self.state);
        let Some(i) = st.members.iter().position(|m| m.id == id) else {
            return Left {
                heard: None,
                last: false,
                callbacks: None,
            };
        };
        self.notify(
            &mut st,
            "participant-leave",
            Some(i),
            vec![
                ("ParticipantCallStatus".into(), "completed".into()),
                ("ReasonParticipantLeft".into(), reason.into()),
            ],
        );
        let m = st.members.remove(i);
        let at = st.frame + 1;
        if m.mixing {
            let _ = st.room.leave(id, at);
            if matches!(m.role.beep, Beep::True | Beep::OnExit) && !st.members.is_empty() {
                st.room.beep(at);
            }
        }
        st.updated = SystemTime::now();
        let kicked = reason == "participant_updated_via_api";
        if st.status != Status::Completed {
            if m.role.end_on_exit {
                let why = if kicked {
                    "participant-with-end-conference-on-exit-kicked"
                } else {
                    "participant-with-end-conference-on-exit-left"
                };
                st.end_with(why, Some(m.call_sid.clone()), m.role.label.clone());
                for o in &st.members {
                    o.out
                        .send_replace(Some("moderator_ended_conference".into()));
                }
            } else if st.members.is_empty() {
                let why = if kicked {
                    "last-participant-kicked"
                } else {
                    "last-participant-left"
                };
                st.end_with(why, Some(m.call_sid.clone()), m.role.label.clone());
            }
        }
        let mut callbacks = None;
        let last = st.members.is_empty();
        if last {
            // The end event follows every leave; then nothing more is sent.
            let reason = st.reason_ended.clone().unwrap_or_default();
            let mut extra = vec![("ReasonConferenceEnded".into(), reason.clone())];
            extra.push(("Reason".into(), ended_in_words(&reason)));
            if let Some(c) = &st.call_sid_ending {
                extra.push(("CallSidEndingConference".into(), c.clone()));
            }
            if let Some(l) = &st.label_ending {
                extra.push(("ParticipantLabelEndingConference".into(), l.clone()));
            }
            self.notify(&mut st, "conference-end", None, extra);
            callbacks = st.callbacks.take().and_then(|(q, _)| q.finish());
            if let Some(t) = st.ticker.take() {
                t.abort();
            }
        }
        let heard = m.heard.map(|h| {
            (
                self.t0 + FRAME * u32::try_from(m.heard_from).unwrap_or(u32::MAX),
                h,
            )
        });
        Left {
            heard,
            last,
            callbacks,
        }
    }

    /// The mixer frame of this instant.
    fn frame_now(&self) -> u64 {
        (self.t0.elapsed().as_micros() / FRAME.as_micros()) as u64
    }

    /// Starts the mixer's ticker unless it runs.
    fn ensure_ticker(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        if st.ticker.is_some() || st.status == Status::Completed {
            return;
        }
        let weak = Arc::downgrade(self);
        st.ticker = Some(tokio::spawn(tick_until_ended(weak)));
    }

    /// Mixes every frame up to now.
    fn advance(&self) {
        let now = self.frame_now();
        let mut st = lock(&self.state);
        while st.frame < now {
            st.frame += 1;
            let f = st.frame;
            let at = self.t0 + FRAME * u32::try_from(f).unwrap_or(u32::MAX);
            let st = &mut *st;
            for m in st.members.iter().filter(|m| m.mixing) {
                // A live caller says its slot for this frame's instant.
                if let Some(live) = &m.live
                    && let Some(epoch) = live.epoch()
                {
                    let k = (at.saturating_duration_since(epoch).as_micros() / 20_000) as u64;
                    let _ = st.room.push(m.id, &live.frame(k));
                }
            }
            let speakers: Vec<mix::SpeakerEvent> = st.room.tick(f).to_vec();
            for m in &mut st.members {
                if !m.mixing {
                    continue;
                }
                if let (Some(live), Some(frame)) = (&m.live, st.room.heard(m.id)) {
                    live.push_heard(*frame);
                }
                if let (Some(h), Some(frame)) = (&mut m.heard, st.room.heard(m.id))
                    && h.len() + frame.len() <= HEARD_MAX_BYTES
                {
                    h.extend_from_slice(frame);
                }
            }
            for e in speakers {
                if let Some(i) = st.members.iter().position(|m| m.id == e.id) {
                    let event = if e.speaking {
                        "participant-speech-start"
                    } else {
                        "participant-speech-stop"
                    };
                    self.notify(st, event, Some(i), Vec::new());
                }
            }
        }
    }

    /// Queues `event` for the callback if subscribed.
    fn notify(
        &self,
        st: &mut State,
        event: &str,
        member: Option<usize>,
        extra: Vec<(String, String)>,
    ) {
        let Some((queue, events)) = &st.callbacks else {
            return;
        };
        if !events.iter().any(|e| subscribes(e, event)) {
            return;
        }
        st.sequence += 1;
        let mut p: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.account_sid.clone()),
            ("ConferenceSid".into(), self.sid.clone()),
            ("FriendlyName".into(), self.friendly_name.clone()),
            ("SequenceNumber".into(), st.sequence.to_string()),
            ("StatusCallbackEvent".into(), event.into()),
            ("Timestamp".into(), webhook::rfc2822(SystemTime::now())),
        ];
        if let Some(m) = member.and_then(|i| st.members.get(i)) {
            p.extend([
                ("CallSid".into(), m.call_sid.clone()),
                ("Coaching".into(), "false".into()),
                ("EndConferenceOnExit".into(), m.role.end_on_exit.to_string()),
                ("Hold".into(), m.hold.to_string()),
                ("Muted".into(), m.role.muted.to_string()),
                (
                    "StartConferenceOnEnter".into(),
                    m.role.start_on_enter.to_string(),
                ),
            ]);
            if let Some(l) = &m.role.label {
                p.push(("ParticipantLabel".into(), l.clone()));
            }
        }
        p.extend(extra);
        webhook::sort_params(&mut p);
        queue.push(event.to_string(), p);
    }
}

impl State {
    fn find(&self, who: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.call_sid == who || m.role.label.as_deref() == Some(who))
    }

    /// Puts member `i` in the mixer from frame `at`, its voice where it has got to.
    fn mix_in(&mut self, i: usize, at: u64) {
        let m = &mut self.members[i];
        if m.mixing {
            return;
        }
        let offset = usize::try_from(at.saturating_sub(m.joined_frame)).unwrap_or(usize::MAX);
        let source = match m.live {
            Some(_) => mix::Source::Live,
            None => mix::Source::Frames {
                frames: m.voice.clone(),
                offset_frame: offset,
            },
        };
        if self.room.join(m.id, source, at).is_ok() {
            m.mixing = true;
            m.heard_from = at;
            let _ = self.room.set_muted(m.id, m.role.muted);
            let _ = self.room.set_hold(m.id, m.hold);
        }
    }

    fn end_with(&mut self, reason: &str, call_sid: Option<String>, label: Option<String>) {
        self.status = Status::Completed;
        self.updated = SystemTime::now();
        self.reason_ended = Some(reason.to_string());
        self.call_sid_ending = call_sid;
        self.label_ending = label;
    }
}

/// Whether subscribing to `sub` (`start`, `mute`, …) covers `event`.
fn subscribes(sub: &str, event: &str) -> bool {
    match sub {
        "start" => event == "conference-start",
        "end" => event == "conference-end",
        "join" => event == "participant-join",
        "leave" => event == "participant-leave",
        "mute" => matches!(event, "participant-mute" | "participant-unmute"),
        "hold" => matches!(event, "participant-hold" | "participant-unhold"),
        "modify" => event == "participant-modify",
        "speaker" => matches!(
            event,
            "participant-speech-start" | "participant-speech-stop"
        ),
        _ => false,
    }
}

fn ended_in_words(reason: &str) -> String {
    match reason {
        "conference-ended-via-api" => "Conference ended via API",
        "participant-with-end-conference-on-exit-left" => {
            "Participant with 'endConferenceOnExit' left the conference"
        }
        "participant-with-end-conference-on-exit-kicked" => {
            "Participant with 'endConferenceOnExit' was kicked from the conference"
        }
        "last-participant-kicked" => "Last participant was kicked from the conference",
        _ => "Last participant left the conference",
    }
    .to_string()
}

/// The conference's mixer clock: every 20 ms, mixes the frames due.
async fn tick_until_ended(conf: Weak<Conference>) {
    let mut every = tokio::time::interval(FRAME);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        let Some(c) = conf.upgrade() else { return };
        c.advance();
    }
}
