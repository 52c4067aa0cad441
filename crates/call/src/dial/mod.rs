//! `<Dial>`: who answers a dialed number, and what a dialed leg reports.
//!
//! A call's [`Directory`] says what stands behind each number it dials: a hosted app (a
//! voice URL the engine rings as a new inbound call, hearing the caller, heard by the
//! caller) or a simulated callee that answers, is busy, does not answer or fails. `dialtone
//! call` and `load` fill one from `--dial`; `dialtone serve` answers from its numbers and
//! registers each leg in its store.

use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use serde::Serialize;

use crate::config::HttpMethod;
use crate::report::CallReport;
use crate::timeline::EventSink;

pub(crate) mod callbacks;
pub(crate) use callbacks::LegCallbacks;

/// How a simulated callee takes the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalleeAnswer {
    /// Picks up after ringing.
    Answer,
    /// Busy signal after ringing.
    Busy,
    /// Rings until the dial's `timeout`.
    NoAnswer,
    /// The number does not exist: fails at once.
    Failed,
}

impl std::str::FromStr for CalleeAnswer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "answer" => Ok(Self::Answer),
            "busy" => Ok(Self::Busy),
            "no-answer" => Ok(Self::NoAnswer),
            "failed" => Ok(Self::Failed),
            _ => Err(format!(
                "{s:?} is not a callee behaviour (answer, busy, no-answer, failed)"
            )),
        }
    }
}

/// A party dialtone plays: it rings, then answers (and says its audio), or not.
#[derive(Debug, Clone)]
pub struct SimulatedCallee {
    /// What it does.
    pub answer: CalleeAnswer,
    /// How long it rings before answering or sounding busy.
    pub ring: Duration,
    /// What it says once answered (silence after).
    pub audio: Arc<FrameSet>,
    /// How long it stays after its audio before hanging up.
    pub tail: Duration,
    /// What it keys when a whisper's `<Gather>` (`<Number url>`) asks (none by default).
    pub keys: String,
}

impl SimulatedCallee {
    /// A callee that answers after a second and says `audio`, hanging up 2 s after it.
    pub fn answering(audio: Arc<FrameSet>) -> Self {
        Self {
            answer: CalleeAnswer::Answer,
            ring: Duration::from_secs(1),
            audio,
            tail: Duration::from_secs(2),
            keys: String::new(),
        }
    }
}

/// A number answered by a voice app: the engine rings it as a new inbound call.
#[derive(Debug, Clone)]
pub struct HostedApp {
    /// The app's voice URL.
    pub url: String,
    /// Method for it.
    pub method: HttpMethod,
    /// Requested when the voice URL fails.
    pub fallback_url: Option<String>,
    /// The number's account.
    pub account_sid: String,
    /// Signs the app's requests.
    pub auth_token: String,
    /// The app's tunnels (its public URLs mapped to local ones).
    pub tunnels: Arc<dialtone_net::Tunnels>,
}

/// Who answers a dialed `to` (a number, `client:name` or a `sip:` URI).
#[derive(Debug, Clone)]
pub enum Callee {
    /// A hosted app.
    App(HostedApp),
    /// A simulated party.
    Simulated(SimulatedCallee),
}

/// A dialed leg, as the directory is told about it.
#[derive(Debug, Clone)]
pub struct LegStart {
    /// The call that dialed.
    pub parent_sid: String,
    /// The dialed leg (`outbound-dial`): `DialCallSid`.
    pub leg_sid: String,
    /// For a hosted app, its inbound call's SID.
    pub app_sid: Option<String>,
    /// The account.
    pub account_sid: String,
    /// Caller ID shown to the callee.
    pub from: String,
    /// Who is dialed.
    pub to: String,
}

/// How a dialed leg ended, as the directory is told about it.
#[derive(Debug, Clone)]
pub struct LegEnd {
    /// `DialCallStatus`.
    pub status: DialStatus,
    /// From the answer to the end (zero when never answered).
    pub duration: Duration,
    /// For a hosted app, its call's result (audio included when recording).
    pub app: Option<Arc<crate::CallResult>>,
}

/// What stands behind the numbers a call dials.
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Who answers `to` for `account_sid`.
    fn lookup(&self, account_sid: &str, to: &str) -> Callee;
    /// A leg starts ringing (`app`: the hosted app's call, to steer it from outside); the
    /// returned sink also gets the app's call events.
    fn leg_started(&self, _leg: &LegStart, _app: Option<&crate::CallHandle>) -> Option<EventSink> {
        None
    }
    /// The leg answered: at its pick-up when a whisper plays first, else at the bridge
    /// (called again there: implementations take the first).
    fn leg_answered(&self, _leg: &LegStart) {}
    /// The leg ended.
    fn leg_ended(&self, _leg: &LegStart, _end: &LegEnd) {}
}

/// A fixed book of numbers (`--dial NUMBER=...`): hosted apps, simulated callees, and the
/// callee every other number gets.
#[derive(Debug, Clone)]
pub struct Numbers {
    /// Numbers answered by apps.
    pub apps: Vec<(String, HostedApp)>,
    /// Numbers answered by particular simulated callees.
    pub callees: Vec<(String, SimulatedCallee)>,
    /// Everyone else.
    pub default: SimulatedCallee,
}

impl Numbers {
    /// Every number answered by `default`.
    pub fn simulated(default: SimulatedCallee) -> Self {
        Self {
            apps: Vec::new(),
            callees: Vec::new(),
            default,
        }
    }
}

impl Directory for Numbers {
    fn lookup(&self, _account_sid: &str, to: &str) -> Callee {
        if let Some((_, app)) = self.apps.iter().find(|(n, _)| same_party(n, to)) {
            return Callee::App(app.clone());
        }
        let callee = self
            .callees
            .iter()
            .find(|(n, _)| same_party(n, to))
            .map_or(&self.default, |(_, c)| c);
        Callee::Simulated(callee.clone())
    }
}

/// `+1 (415) 555-1212` and `+14155551212` are one number; `client:`/`sip:` compare as written.
pub fn same_party(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        if s.starts_with("client:") || s.starts_with("sip:") {
            return s.to_string();
        }
        s.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    }
    a == b || norm(a) == norm(b)
}

/// `DialCallStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DialStatus {
    /// Answered and ended.
    Completed,
    /// Connected to a conference (what Twilio reports for `<Dial><Conference>`).
    Answered,
    /// Busy.
    Busy,
    /// Not answered within `timeout`.
    NoAnswer,
    /// Could not be placed.
    Failed,
    /// The caller hung up (or the dial was ended) before anyone answered.
    Canceled,
}

impl DialStatus {
    /// Twilio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// One `<Dial>` in a call's report.
#[derive(Debug, Clone, Serialize)]
pub struct DialReport {
    /// Who was dialed (each noun's party, in order).
    pub to: Vec<String>,
    /// `DialCallStatus`.
    pub status: DialStatus,
    /// `DialCallSid`: the leg that answered (else the first dialed).
    pub leg_sid: Option<String>,
    /// Who answered.
    pub answered_by: Option<String>,
    /// From the `<Dial>` to the answer, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_ms: Option<f64>,
    /// From the answer to the end, ms (`DialCallDuration`, in whole seconds on the wire).
    pub duration_ms: f64,
    /// Why the bridge ended, in words.
    pub ended_by: String,
    /// The hosted app's call, when an app answered (its own timeline is in the caller's,
    /// as `dial` steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<Box<CallReport>>,
}

/// A `<Dial>` step on a call's timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DialEvent {
    /// A leg is ringing.
    Ringing {
        /// `CA…` of the leg.
        leg_sid: String,
        /// Who.
        to: String,
        /// A hosted app (its call's SID) or a simulated callee.
        #[serde(skip_serializing_if = "Option::is_none")]
        app_sid: Option<String>,
    },
    /// A leg answered; the caller is bridged to it.
    Answered {
        /// `CA…` of the leg.
        leg_sid: String,
        /// Who.
        to: String,
    },
    /// A step of the hosted app's call.
    Leg {
        /// The app's call SID.
        app_sid: String,
        /// What happened on it.
        event: Box<crate::report::CallEvent>,
    },
    /// The caller joined a `<Conference>`.
    ConferenceJoined {
        /// `CF…`.
        sid: String,
        /// Its name.
        name: String,
        /// Participants now, the caller included.
        participants: usize,
        /// Whether it had started (otherwise the caller waits).
        started: bool,
    },
    /// The conference the caller waited in started.
    ConferenceStarted {
        /// `CF…`.
        sid: String,
    },
    /// The caller left the conference.
    ConferenceLeft {
        /// `CF…`.
        sid: String,
        /// `ReasonParticipantLeft`.
        reason: String,
    },
    /// The dial ended.
    Ended {
        /// `DialCallStatus`.
        status: DialStatus,
        /// `DialCallDuration`, s.
        duration_s: u64,
        /// Why, in words.
        why: String,
    },
}

/// Digits keyed into a call (`SendDigits`, `<Number sendDigits>`): one every 100 ms from a
/// second after its audio starts, `w` waiting 500 ms.
pub fn digit_schedule(digits: &str) -> Vec<(Duration, char)> {
    let mut at = Duration::from_secs(1);
    let mut out = Vec::new();
    for c in digits.chars() {
        if c.eq_ignore_ascii_case(&'w') {
            at += Duration::from_millis(500);
        } else {
            out.push((at, c));
            at += Duration::from_millis(100);
        }
    }
    out
}
