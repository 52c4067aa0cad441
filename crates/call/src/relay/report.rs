//! What a relay session measured: per caller turn, the app's first and last token and when
//! its answer would be heard, all from the caller's true end of speech; the interrupts and
//! how soon the app stopped after each; how the session ended.

use serde::Serialize;

/// How the session ended, as the `<Connect action>` request's `SessionStatus` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// The app sent `end`.
    Ended,
    /// The caller hung up.
    Completed,
    /// The socket failed or closed under the session.
    Failed,
}

impl SessionStatus {
    /// The parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Ended => "ended",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
        }
    }
}

/// The session's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionEnd {
    /// `SessionStatus`.
    pub status: SessionStatus,
    /// When, since the socket opened.
    pub at_ms: f64,
    /// The `end` message's `handoffData`.
    pub handoff_data: Option<String>,
    /// `ErrorCode` and `ErrorMessage` of a failed session.
    pub error: Option<(u16, String)>,
}

/// One caller turn's measurements; times in ms from the caller's true end of speech.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayTurn {
    /// 1-based.
    pub index: u32,
    /// The words.
    pub text: String,
    /// When the final `prompt` went out (`None`: not sent, e.g. dropped while the agent
    /// spoke and `reportInputDuringAgentSpeech` kept it from the app).
    pub prompt_ms: Option<f64>,
    /// The app's first token after the prompt.
    pub first_token_ms: Option<f64>,
    /// Its token with `last: true`.
    pub last_token_ms: Option<f64>,
    /// When the answer would start to be heard.
    pub speech_ms: Option<f64>,
    /// Tokens of the answer.
    pub tokens: u32,
}

/// The caller cutting the agent short.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayInterrupt {
    /// When, since the socket opened.
    pub at_ms: f64,
    /// What the caller had heard.
    pub utterance: String,
    /// How long the speech had played.
    pub duration_ms: u64,
    /// Tokens the app still sent for the cut talk cycle.
    pub tokens_after: u32,
    /// Its last token after the interrupt, from the interrupt (`None`: it stopped at once).
    pub stopped_after_ms: Option<f64>,
}

/// A `play` whose audio could not be fetched or decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayFailure {
    /// The `source`.
    pub source: String,
    /// Why, in words.
    pub cause: String,
}

/// Everything the session measured.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RelayReport {
    /// Caller turns, in order.
    pub turns: Vec<RelayTurn>,
    /// Interrupts, in order.
    pub interrupts: Vec<RelayInterrupt>,
    /// Tokens the app sent.
    pub tokens: u32,
    /// `error` messages sent for app messages Twilio could not use.
    pub errors_sent: u32,
    /// Digits the app asked to key (`sendDigits`): the first 100.
    pub digits_sent: String,
    /// `play` sources the app asked for: the first 100.
    pub plays: Vec<String>,
    /// `play` messages, all of them (only the first 100 are heard).
    pub play_requests: u32,
    /// `play`s whose audio could not be had (the first 100): not heard, the session goes on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub play_failures: Vec<PlayFailure>,
    /// How it ended (`None` while it runs).
    pub end: Option<SessionEnd>,
}

/// A step of a relay session, for the call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "relay", rename_all = "snake_case")]
pub enum RelayEvent {
    /// The upgrade succeeded and `setup` went out.
    Connected {
        /// The relay URL.
        url: String,
        /// `VX…`.
        session_id: String,
    },
    /// A `prompt` went out.
    Prompt {
        /// The caller turn (1-based).
        turn: u32,
        /// Its words so far.
        words: String,
        /// Final (or a partial).
        last: bool,
    },
    /// The app's first token for a turn.
    FirstToken {
        /// The caller turn (1-based).
        turn: u32,
        /// From the caller's true end of speech.
        after_speech_ms: f64,
    },
    /// The app's `last: true` for a turn.
    LastToken {
        /// The caller turn (1-based).
        turn: u32,
        /// From the caller's true end of speech.
        after_speech_ms: f64,
        /// Tokens of the answer.
        tokens: u32,
    },
    /// An `interrupt` went out.
    Interrupt {
        /// What the caller had heard.
        utterance: String,
        /// How long it had played.
        played_ms: u64,
    },
    /// A `play`'s audio is in: it is heard from `start_ms` (`None`: stopped or cut before
    /// it could start).
    Play {
        /// The `source`.
        source: String,
        /// How long it plays, its loops included.
        duration_ms: u64,
        /// When it starts to be heard, since the socket opened.
        start_ms: Option<f64>,
    },
    /// A `play`'s audio could not be had: it is skipped.
    PlayFailed {
        /// The `source`.
        source: String,
        /// Why.
        cause: String,
    },
    /// An `error` went out for an app message.
    Error {
        /// The message refused, cut to 200 characters.
        message: String,
    },
    /// The session ended.
    Ended {
        /// `ended`, `completed`, `failed`.
        status: SessionStatus,
        /// The app's `handoffData`.
        handoff_data: Option<String>,
    },
}
