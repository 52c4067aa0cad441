//! What a real-time transcription tells the call's timeline and report.

use serde::Serialize;

use super::Side;

/// A transcription's step on the call's timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum TranscriptionEvent {
    /// It started (`transcription-started`).
    Started {
        /// `GT…`.
        sid: String,
        /// `name`, if any.
        name: Option<String>,
        /// `inbound_track`, `outbound_track` or `both_tracks`.
        track: &'static str,
    },
    /// A final result (`transcription-content` with `Final=true`).
    Final {
        /// `GT…`.
        sid: String,
        /// Its track.
        track: Side,
        /// The words.
        transcript: String,
        /// 0 to 1.
        confidence: f64,
        /// From the end of its speech to the result, ms.
        after_speech_ms: f64,
    },
    /// A `statusCallbackUrl` request failed (Twilio's warning 94100); the transcription
    /// goes on.
    CallbackFailed {
        /// [`CALLBACK_FAILED`](super::CALLBACK_FAILED) (Twilio's codes outgrow the `u16`
        /// of other warnings).
        code: u32,
        /// What happened.
        message: String,
    },
    /// It stopped (`transcription-stopped`).
    Stopped {
        /// `GT…`.
        sid: String,
        /// `<Stop>` or `call end`.
        by: &'static str,
        /// Final results sent.
        finals: u64,
        /// Partial results sent.
        partials: u64,
    },
}

impl TranscriptionEvent {
    /// Step, level and words, for the timeline's text.
    pub(crate) fn text(&self) -> (&'static str, &'static str, String) {
        match self {
            Self::Started { sid, name, track } => (
                "transcription",
                "info",
                format!(
                    "{sid}{} started ({track})",
                    name.as_deref()
                        .map(|n| format!(" {n:?}"))
                        .unwrap_or_default()
                ),
            ),
            Self::Final {
                track,
                transcript,
                confidence,
                after_speech_ms,
                ..
            } => (
                "transcription",
                "ok",
                format!(
                    "{} {transcript:?} (confidence {confidence:.2}), {after_speech_ms:.0} ms after the speech ended",
                    track.as_str()
                ),
            ),
            Self::CallbackFailed { code, message } => {
                ("warning", "warn", format!("{code} {message}"))
            }
            Self::Stopped {
                sid,
                by,
                finals,
                partials,
            } => (
                "transcription",
                "info",
                format!("{sid} stopped ({by}): {finals} final, {partials} partial results"),
            ),
        }
    }
}

/// One final result, as a report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FinalResult {
    /// Since the call was placed, ms.
    pub at_ms: f64,
    /// Its track.
    pub track: Side,
    /// The words.
    pub transcript: String,
    /// 0 to 1.
    pub confidence: f64,
}

/// What one `<Transcription>` did.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptionReport {
    /// `TranscriptionSid` (`GT…`).
    pub sid: String,
    /// `name`, if any.
    pub name: Option<String>,
    /// `inbound_track`, `outbound_track` or `both_tracks`.
    pub track: &'static str,
    /// `statusCallbackUrl`, resolved, if any.
    pub status_callback_url: Option<String>,
    /// `<Stop>` or `call end`.
    pub stopped_by: &'static str,
    /// Final results, the first 50.
    pub finals: Vec<FinalResult>,
    /// Final results in all.
    pub final_count: u64,
    /// Partial results sent.
    pub partial_count: u64,
    /// Utterances the recognizer dropped past its bound.
    pub dropped: u64,
}
