//! What a call tells its user: a timeline of steps as they happen, the failures (each with
//! Twilio's error code and a plain-words cause), and the per-stream measurements.

use std::time::Duration;

use dialtone_protocol::webhook::CallStatus;
use serde::Serialize;

/// One step of a call, stamped relative to the moment the call was placed.
#[derive(Debug, Clone, Serialize)]
pub struct CallEvent {
    /// Time since the call was placed.
    #[serde(serialize_with = "ser_ms")]
    pub at: Duration,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The steps a call goes through, in the vocabulary of Twilio's debugger.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A TwiML request went out (voice URL, action, redirect, fallback).
    WebhookSent {
        /// Why it was requested: `voice`, `action`, `redirect`, `fallback`.
        purpose: &'static str,
        /// The URL requested, as Twilio requests it (the public URL when tunnelled).
        url: String,
        /// `POST` or `GET`.
        method: &'static str,
        /// The local address connected to when `url`'s origin is tunnelled (`--tunnel`).
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    /// The app answered a TwiML request.
    WebhookAnswered {
        /// HTTP status.
        status: u16,
        /// Round trip.
        #[serde(serialize_with = "ser_ms")]
        elapsed: Duration,
        /// The Content-Type it declared.
        content_type: String,
        /// Body length.
        bytes: usize,
    },
    /// The call was answered: an inbound call by its first TwiML that does not `<Reject>`
    /// (or, under `<Dial answerOnBridge>`, when the dialed party answers); an outbound call
    /// when its callee picked up.
    Answered,
    /// A TwiML document was parsed; its top-level verbs in order.
    Twiml {
        /// Verb names.
        verbs: Vec<String>,
    },
    /// A verb started executing.
    Verb {
        /// Verb name.
        verb: String,
        /// Line in its document.
        line: u32,
        /// Key attributes, in words.
        detail: String,
    },
    /// The WebSocket upgrade to a `<Stream>` URL was sent.
    StreamConnecting {
        /// The stream URL, as the TwiML wrote it.
        url: String,
        /// The local address connected to when `url`'s origin is tunnelled (`--tunnel`).
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<String>,
        /// `<Connect>` (true) or `<Start>` fork (false).
        bidirectional: bool,
        /// The stream's SID (`MZ…`), as `start` will carry it.
        stream_sid: String,
        /// The `<Stream name>`, if any.
        name: Option<String>,
        /// The `<Stream statusCallback>`, resolved against the document, if any.
        status_callback: Option<String>,
        /// `statusCallbackMethod` (`POST` unless set).
        status_callback_method: &'static str,
    },
    /// The upgrade succeeded (HTTP 101).
    StreamConnected {
        /// Stream SID.
        stream_sid: String,
        /// Upgrade round trip.
        #[serde(serialize_with = "ser_ms")]
        elapsed: Duration,
    },
    /// `connected` and `start` were sent; media frames begin.
    StartSent {
        /// Stream SID.
        stream_sid: String,
        /// Tracks announced in `start`.
        tracks: Vec<String>,
    },
    /// The first app `media` message arrived.
    FirstAudioBack {
        /// Stream SID.
        stream_sid: String,
        /// Since `start` was sent.
        #[serde(serialize_with = "ser_ms")]
        after_start: Duration,
    },
    /// An app mark was echoed back.
    MarkEchoed {
        /// Stream SID.
        stream_sid: String,
        /// Mark name.
        name: String,
        /// From the app's `mark` to our echo.
        #[serde(serialize_with = "ser_ms")]
        round_trip: Duration,
        /// Echoed because of `clear`, not because its audio played.
        cleared: bool,
    },
    /// The app sent `clear`.
    Clear {
        /// Stream SID.
        stream_sid: String,
        /// Unplayed audio dropped.
        dropped_ms: u64,
        /// Pending marks echoed at once.
        marks_echoed: usize,
    },
    /// A `dtmf` message was sent on a stream, or a digit entered at a `<Gather>`.
    Dtmf {
        /// Digits.
        digits: String,
    },
    /// An app message was ignored as Twilio ignores it (warning 31951).
    InvalidMessage {
        /// Stream SID.
        stream_sid: String,
        /// Why.
        reason: String,
        /// The raw frame (truncated to 200 chars).
        raw: String,
    },
    /// `stop` was sent.
    StopSent {
        /// Stream SID.
        stream_sid: String,
    },
    /// The stream's WebSocket closed.
    StreamClosed {
        /// Stream SID.
        stream_sid: String,
        /// `app` (the app closed), `dialtone` (after `stop`), `dropped` (no close frame).
        by: &'static str,
        /// Close code, when one was sent.
        code: Option<u16>,
        /// Media frames sent on the stream.
        frames_sent: u64,
    },
    /// dialtone injected a fault on purpose (`--faults`).
    Fault {
        /// What, in words.
        what: String,
    },
    /// The running TwiML was replaced from outside the call (a REST API update with `Url`
    /// or `Twiml`); the new document runs next.
    Redirected {
        /// `METHOD URL` of the new TwiML (`Url`), or `None` for inline TwiML.
        url: Option<String>,
        /// The inline TwiML (`Twiml`), truncated to 200 characters.
        twiml: Option<String>,
    },
    /// A ConversationRelay session's step.
    Relay(crate::relay::RelayEvent),
    /// A `<Dial>`'s step (its legs ringing and answering, the hosted app's call, the end).
    Dial(crate::dial::DialEvent),
    /// A queue step (`<Enqueue>`, `<Dial><Queue>`).
    Queue(crate::queue::QueueEvent),
    /// What the simulated recognizer returned to a speech `<Gather>` (empty: no speech).
    SpeechResult {
        /// `SpeechResult`.
        text: String,
        /// `Confidence`.
        confidence: f64,
        /// From the end of the caller's speech to the result.
        #[serde(serialize_with = "ser_ms")]
        after_speech: Duration,
    },
    /// A real-time transcription's step (started, a final result, stopped).
    Transcription(crate::transcription::TranscriptionEvent),
    /// A `<Record>` step (started, ended and why, its transcription sent).
    Record(crate::record::RecordEvent),
    /// A warning that does not end the call.
    Warning {
        /// Twilio error/warning code.
        code: u16,
        /// What happened.
        message: String,
    },
    /// The call ended.
    Ended {
        /// Final status: `completed`, `busy`, `no-answer`, `failed`.
        status: &'static str,
        /// Why it ended, in words.
        reason: String,
    },
}

/// True for the step that answers the call (see [`EventKind::Answered`]).
pub fn answers(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Answered)
}

/// A step that failed, with Twilio's error code and the cause in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The webhook's host refused or could not be reached.
    #[error("webhook unreachable: {url}: {cause}")]
    WebhookUnreachable {
        /// URL requested.
        url: String,
        /// Plain-words cause.
        cause: String,
    },
    /// No answer within Twilio's timeout.
    #[error("webhook timed out after {} s: {url}", *ms as f64 / 1e3)]
    WebhookTimeout {
        /// URL requested.
        url: String,
        /// Timeout in milliseconds.
        ms: u64,
    },
    /// The webhook answered with a non-2xx status.
    #[error("webhook returned HTTP {status}{hint}: {url}")]
    WebhookStatus {
        /// URL requested.
        url: String,
        /// HTTP status.
        status: u16,
        /// Extra words for common statuses (403 → signature check).
        hint: String,
        /// Start of the body, to show what the app said.
        body: String,
    },
    /// The TwiML looped: documents kept coming without the call advancing (no verb that
    /// takes call time, no stream that ran), as a `<Redirect>` to itself does.
    #[error(
        "TwiML loop: {documents} documents in a row without the call advancing (no audio, \
         pause, gather or stream); the last from {url}"
    )]
    TwimlLoop {
        /// URL of the last document.
        url: String,
        /// Documents fetched in a row without the call advancing.
        documents: u32,
    },
    /// More than 10 redirects.
    #[error("webhook redirected more than 10 times: {url}")]
    WebhookRedirects {
        /// URL requested.
        url: String,
    },
    /// The TwiML body exceeded Twilio's 64 KB limit.
    #[error("TwiML response larger than {limit} bytes: {url}")]
    TwimlTooLarge {
        /// URL requested.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The response was not TwiML by its Content-Type.
    #[error("webhook answered with Content-Type {content_type:?}, not TwiML (text/xml): {url}")]
    InvalidContentType {
        /// URL requested.
        url: String,
        /// What it declared.
        content_type: String,
    },
    /// The TwiML failed to parse or validate.
    #[error("invalid TwiML from {url}: {error}")]
    Twiml {
        /// URL the document came from.
        url: String,
        /// Parser's error (names line and element).
        error: String,
        /// 12100 or 12200.
        code: u16,
    },
    /// The WebSocket upgrade was answered with a non-101 status.
    #[error("stream WebSocket upgrade refused with HTTP {status}: {url}")]
    StreamUpgradeRefused {
        /// Stream URL.
        url: String,
        /// HTTP status of the refusal.
        status: u16,
    },
    /// The WebSocket could not be opened at all.
    #[error("stream WebSocket connection failed: {url}: {cause}")]
    StreamConnect {
        /// Stream URL.
        url: String,
        /// Plain-words cause.
        cause: String,
    },
    /// The TCP connection dropped without a WebSocket close.
    #[error("stream WebSocket dropped without a close frame after {frames_sent} frames: {url}")]
    StreamDropped {
        /// Stream URL.
        url: String,
        /// Frames sent before the drop.
        frames_sent: u64,
    },
    /// The app broke the WebSocket protocol (a message over the size limit, a text message
    /// that is not UTF-8, …) and dialtone failed the connection with a close frame.
    #[error(
        "stream WebSocket protocol error: {cause}; dialtone closed the stream ({close_code}) \
         after {frames_sent} frames: {url}"
    )]
    StreamProtocol {
        /// Stream URL.
        url: String,
        /// What the app did, in words.
        cause: String,
        /// The close code dialtone sent (1009 too big, 1007 not UTF-8, 1002 other).
        close_code: u16,
        /// Media frames sent before it.
        frames_sent: u64,
    },
    /// The app stopped reading its socket: a write could not complete.
    #[error(
        "stream stalled: the app stopped reading its WebSocket (a write waited {secs} s) after {frames_sent} frames: {url}"
    )]
    StreamStalled {
        /// Stream URL.
        url: String,
        /// The write bound.
        secs: u64,
        /// Frames sent before the stall.
        frames_sent: u64,
    },
    /// The ConversationRelay WebSocket could not be opened (or refused the upgrade).
    #[error("ConversationRelay WebSocket connection failed: {url}: {cause}")]
    RelayConnect {
        /// Relay URL.
        url: String,
        /// Plain-words cause.
        cause: String,
    },
    /// The ConversationRelay session ended under the call: the app closed or broke its
    /// socket without `end`, or sent too many malformed messages.
    #[error("ConversationRelay session failed: {cause}: {url}")]
    RelayEnded {
        /// Relay URL.
        url: String,
        /// What happened.
        cause: String,
    },
    /// A bidirectional stream ran but the app never sent audio.
    #[error("no audio back from the app within {secs} s of the stream start: {url}")]
    NoAudioBack {
        /// Stream URL.
        url: String,
        /// The configured bound.
        secs: u64,
    },
    /// A `<Play>` URL could not be fetched or decoded.
    #[error("<Play> audio failed: {url}: {cause}")]
    PlayFailed {
        /// Audio URL.
        url: String,
        /// Why.
        cause: String,
    },
    /// The app rejected the call with `<Reject>`.
    #[error("call rejected by the app with <Reject reason=\"{reason}\">")]
    Rejected {
        /// `rejected` or `busy`.
        reason: String,
    },
    /// Virtual time (`--fast`): caller turns went unanswered while the app's audio was still
    /// on its way. It came on the wall clock after the app had read all of the caller's
    /// audio, so the turns were unanswered only because the caller did not wait: the app
    /// paces its audio in real time, and a clean result would have been hollow.
    #[error(
        "{unanswered} of {turns} caller turns got no reply in virtual time; {}; the app paces \
         its audio in real time, and --fast needs an app that answers as it reads the \
         caller's audio: rerun without --fast",
        late_audio_words(*media, *audio_ms, *wall_ms, *after_ms)
    )]
    WallClockApp {
        /// Stream URL.
        url: String,
        /// Turns that got no app audio after their end (before the next turn began).
        unanswered: usize,
        /// Turns the caller finished on the stream.
        turns: usize,
        /// App `media` messages that came after the app had read everything.
        media: u64,
        /// Their audio, ms.
        audio_ms: u64,
        /// Wall-clock time from the first of them to the last, ms.
        wall_ms: u64,
        /// Wall-clock time from the app's reading the caller's last message to the first of
        /// them, ms.
        after_ms: u64,
    },
}

/// The evidence of a [`Failure::WallClockApp`] in words: how much audio came late, at what
/// pace against the wall clock, and how long after the app had read everything.
fn late_audio_words(media: u64, audio_ms: u64, wall_ms: u64, after_ms: u64) -> String {
    let mut s = format!(
        "the app's audio came on the wall clock after it had read all of the caller's audio: \
         {media} media ({audio_ms} ms of audio), the first {after_ms} ms later"
    );
    if let Some(pace) = late_pace(media, audio_ms, wall_ms) {
        s.push_str(&format!(
            ", over {wall_ms} ms wall ({pace:.1}\u{d7} real-time pace)"
        ));
    }
    s
}

/// Audio ms per wall ms of late app audio; `None` for fewer than two messages or no span.
/// Over the gaps between messages: the last message's audio plays after the span.
pub(crate) fn late_pace(media: u64, audio_ms: u64, wall_ms: u64) -> Option<f64> {
    (media >= 2 && wall_ms > 0).then(|| {
        let per = audio_ms as f64 / media as f64;
        (audio_ms as f64 - per) / wall_ms as f64
    })
}

impl Failure {
    /// Twilio's error code for this failure.
    pub fn code(&self) -> u16 {
        match self {
            Failure::WebhookUnreachable { .. } => 11205,
            Failure::WebhookTimeout { .. } | Failure::WebhookStatus { .. } => 11200,
            Failure::WebhookRedirects { .. } => 11215,
            // Twilio's "Document retrieval limit reached" (a self-referencing <Redirect>).
            Failure::TwimlLoop { .. } => 14106,
            Failure::TwimlTooLarge { .. } => 11750,
            Failure::InvalidContentType { .. } => 12300,
            Failure::Twiml { code, .. } => *code,
            Failure::StreamUpgradeRefused { .. } => 31920,
            Failure::StreamConnect { .. } => 31920,
            Failure::StreamDropped { .. } => 31903,
            Failure::StreamProtocol { .. } => dialtone_protocol::media::PROTOCOL_ERROR,
            // dialtone's own finding: Twilio has no code for an app that stops reading.
            Failure::StreamStalled { .. } => 0,
            Failure::NoAudioBack { .. } => 0,
            Failure::RelayConnect { .. } => dialtone_protocol::relay::UNABLE_TO_CONNECT,
            Failure::RelayEnded { .. } => dialtone_protocol::relay::WEBSOCKET_ENDED,
            Failure::PlayFailed { .. } => 11200,
            Failure::Rejected { .. } => 0,
            Failure::WallClockApp { .. } => 0,
        }
    }

    /// The step of the call path that failed, as a short stable name.
    pub fn step(&self) -> &'static str {
        match self {
            Failure::WebhookUnreachable { .. }
            | Failure::WebhookTimeout { .. }
            | Failure::WebhookStatus { .. }
            | Failure::WebhookRedirects { .. }
            | Failure::InvalidContentType { .. } => "webhook",
            Failure::TwimlTooLarge { .. } => "twiml",
            Failure::Twiml { .. } => "twiml",
            Failure::TwimlLoop { .. } => "twiml_loop",
            Failure::StreamUpgradeRefused { .. } | Failure::StreamConnect { .. } => {
                "stream_connect"
            }
            Failure::StreamDropped { .. }
            | Failure::StreamProtocol { .. }
            | Failure::StreamStalled { .. } => "stream",
            Failure::NoAudioBack { .. } => "app_audio",
            Failure::RelayConnect { .. } => "relay_connect",
            Failure::RelayEnded { .. } => "relay",
            Failure::PlayFailed { .. } => "play",
            Failure::Rejected { .. } => "rejected",
            Failure::WallClockApp { .. } => "virtual_time",
        }
    }
}

/// Percentile summary of a latency histogram, in ms.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises a histogram of microseconds.
    pub fn from_us(h: &hdrhistogram::Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// A mark the app sent and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct MarkRecord {
    /// Mark name.
    pub name: String,
    /// From the app's `mark` to our echo; `None` if never echoed (the call ended first).
    pub round_trip_ms: Option<f64>,
    /// Echoed because of `clear`.
    pub cleared: bool,
}

pub use crate::marks::MarkStats;

/// An ignored app message (Twilio warning 31951).
#[derive(Debug, Clone, Serialize)]
pub struct InvalidMessage {
    /// Why it was ignored.
    pub reason: String,
    /// The raw frame, truncated.
    pub raw: String,
}

/// Measurements of one Media Stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Stream SID.
    pub stream_sid: String,
    /// Stream name (`name` attribute or the SID).
    pub name: String,
    /// URL.
    pub url: String,
    /// `<Connect>` (true) or `<Start>` fork.
    pub bidirectional: bool,
    /// Upgrade round trip.
    #[serde(rename = "connect_ms", serialize_with = "ser_opt_ms")]
    pub connect: Option<Duration>,
    /// `media` messages sent.
    pub frames_sent: u64,
    /// `dtmf` messages sent.
    pub dtmf_sent: u64,
    /// Lateness of each frame against its schedule (start + 20 ms·k).
    pub lateness: LatencySummary,
    /// App `media` messages received.
    pub media_received: u64,
    /// App audio received, in ms of playout.
    pub audio_received_ms: u64,
    /// App audio dropped by `clear` before being heard, in ms.
    pub audio_cleared_ms: u64,
    /// Silence heard inside app replies (gaps under 500 ms between its audio chunks), in ms.
    pub underrun_ms: u64,
    /// From `start` to the first app `media`.
    #[serde(rename = "time_to_first_audio_ms", serialize_with = "ser_opt_ms")]
    pub time_to_first_audio: Option<Duration>,
    /// A sample of the marks in the order the app sent them: the first 50 and the last 50
    /// (`mark_stats.omitted` were left out between).
    pub marks: Vec<MarkRecord>,
    /// Every mark counted, and their round trips' percentiles.
    pub mark_stats: MarkStats,
    /// `clear` messages received.
    pub clears: u64,
    /// Ignored app messages (31951), counted.
    pub invalid_messages: u64,
    /// The first few ignored messages with their reasons.
    pub invalid_samples: Vec<InvalidMessage>,
    /// Who closed: `app`, `dialtone`, `dropped`, `stalled`, or `never_opened`.
    pub closed_by: &'static str,
    /// Close code received or sent.
    pub close_code: Option<u16>,
    /// Stream length from `start` to close.
    pub duration_ms: f64,
    /// The caller's turns as the app experienced them (when the caller's audio has ground
    /// truth).
    pub turns: Vec<crate::turns::TurnReport>,
    /// App audio heard while the caller was speaking, outside barge-ins the app handled
    /// (ms, all turns): talk-over.
    pub talk_over_ms: f64,
    /// Re-onsets of the app's VAD inside the caller's turns (turns split), all turns; filled
    /// in with the milestones.
    pub vad_splits: u32,
    /// What injected faults did on this stream (`--faults`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::faults::FaultCounts>,
    /// Every frame's lateness in µs, for load runs to merge into their own histograms; empty
    /// when the call recorded it straight into the run's ([`crate::CallConfig`]'s
    /// `frame_lateness`).
    #[serde(skip)]
    pub lateness_us: crate::Latencies,
    /// Every echoed mark's round trip in µs, for load runs to merge.
    #[serde(skip)]
    pub mark_round_trip_us: crate::Latencies,
}

/// The lateness histogram every stream records into (and `load`'s per-second sink): per-call
/// precision, up to [`crate::histogram::LATENESS_MAX_US`].
pub fn new_lateness_histogram() -> hdrhistogram::Histogram<u64> {
    use crate::histogram::{LATENESS_MAX_US, PER_CALL_DIGITS, new_us};
    new_us(Some(LATENESS_MAX_US), PER_CALL_DIGITS)
}

/// Everything a finished call reports.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// Call SID.
    pub call_sid: String,
    /// Final status: `completed`, `busy`, `no-answer`, `failed` (serialised as Twilio
    /// spells it).
    #[serde(serialize_with = "ser_status")]
    pub status: CallStatus,
    /// Why the call ended, in words.
    pub end_reason: String,
    /// What injected faults did to the call as a whole (`--faults`); the timeline says it
    /// in words.
    #[serde(skip)]
    pub faults: CallFaults,
    /// Call length.
    pub duration_ms: f64,
    /// TwiML round trips, in order: the first 100 (`webhooks` counts them all).
    pub webhook_ms: Vec<f64>,
    /// TwiML requests answered.
    pub webhooks: u64,
    /// Failures, first one first (the first 20); empty for a clean call.
    pub failures: Vec<Failure>,
    /// Failures past the first 20, counted.
    pub failures_omitted: u64,
    /// Warnings that did not end the call: (code, message); the first 50.
    pub warnings: Vec<(u16, String)>,
    /// Warnings past the first 50, counted.
    pub warnings_omitted: u64,
    /// Streams opened during the call: the first 20 and the last 20 to end.
    pub streams: Vec<StreamReport>,
    /// Streams left out of `streams` (between its first and last ones).
    pub streams_omitted: u64,
    /// ConversationRelay sessions, in order (the first 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relay: Vec<crate::relay::RelayReport>,
    /// Each `<Dial>` (the first 20): who rang, who answered, how it ended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dials: Vec<crate::dial::DialReport>,
    /// Each speech `<Gather>` that heard the caller (the first 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub speech: Vec<SpeechReport>,
    /// Each `<Start><Transcription>` (the first 20): what it recognized, how it stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcriptions: Vec<crate::transcription::TranscriptionReport>,
    /// Each `<Record>` (the first 20): its SID, length, why it ended, its transcription.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recordings: Vec<crate::record::RecordReport>,
    /// The steps, in order: the first 500 and the last 500.
    pub timeline: Vec<CallEvent>,
    /// Steps left out of `timeline` (between its first and last ones).
    pub timeline_omitted: u64,
    /// Every TwiML round trip in µs, for load runs to merge.
    #[serde(skip)]
    pub webhook_us: crate::Latencies,
}

impl CallReport {
    /// A call that completed with no failure.
    pub fn is_success(&self) -> bool {
        self.status == CallStatus::Completed && self.failures.is_empty()
    }
}

/// What a speech `<Gather>` heard.
#[derive(Debug, Clone, Serialize)]
pub struct SpeechReport {
    /// `SpeechResult`.
    pub result: String,
    /// `Confidence`.
    pub confidence: f64,
    /// From the caller's true end of speech to the action request, ms.
    pub after_speech_ms: f64,
}

/// What injected faults (`--faults`) did to a call outside its streams (those count theirs
/// in [`StreamReport::faults`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallFaults {
    /// The call drew faults from its seeded schedule.
    pub armed: bool,
    /// Its voice webhook was abandoned as a slow one.
    pub webhook_abandoned: bool,
}

fn ser_status<S: serde::Serializer>(status: &CallStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// An optional duration as ms with µs precision (measurements stay `Duration` until here).
pub(crate) fn ser_opt_ms<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_micros() as u64 as f64 / 1e3)),
        None => s.serialize_none(),
    }
}

/// `URL` or `URL (via 127.0.0.1:8765)`, as timelines show a tunnelled request.
pub fn url_via(url: &str, via: Option<&str>) -> String {
    match via {
        Some(v) => format!("{url} (via {v})"),
        None => url.to_string(),
    }
}
