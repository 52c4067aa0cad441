//! A timeline event in words, once: `dialtone call` prints it after the time and the step,
//! and `serve` logs it with its level on the call's timeline.

use std::time::Duration;

use crate::report::{EventKind, url_via};

/// An event as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventText {
    /// The step it belongs to (`webhook`, `twiml`, `verb`, `stream`, `audio`, `mark`,
    /// `clear`, `dtmf`, `record`, `warning`, `fault`, `update`, `call`): `dialtone call`'s
    /// column.
    pub step: &'static str,
    /// How it went: `ok`, `info`, `warn` or `fail` (`serve`'s timeline level).
    pub level: &'static str,
    /// What happened, in words.
    pub words: String,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl EventKind {
    /// This event's step, level and words.
    pub fn text(&self) -> EventText {
        let (step, level, words) = match self {
            EventKind::WebhookSent {
                purpose,
                url,
                method,
                via,
            } => (
                "webhook",
                "info",
                format!("{method} {} ({purpose})", url_via(url, via.as_deref())),
            ),
            EventKind::WebhookAnswered {
                status,
                elapsed,
                content_type,
                bytes,
            } => (
                "webhook",
                if (200..300).contains(status) {
                    "ok"
                } else {
                    "fail"
                },
                format!(
                    "HTTP {status} in {:.1} ms, {content_type:?}, {bytes} bytes",
                    ms(*elapsed)
                ),
            ),
            EventKind::Answered => ("call", "ok", "answered (in-progress)".into()),
            EventKind::SpeechResult { text, .. } if text.is_empty() => {
                ("speech", "info", "no speech".into())
            }
            EventKind::SpeechResult {
                text,
                confidence,
                after_speech,
            } => (
                "speech",
                "ok",
                format!(
                    "{text:?} (confidence {confidence:.2}), {:.0} ms after the caller stopped",
                    ms(*after_speech)
                ),
            ),
            EventKind::Twiml { verbs } => ("twiml", "info", verbs.join(", ")),
            EventKind::Verb { verb, line, detail } => {
                ("verb", "info", format!("<{verb}> line {line} {detail}"))
            }
            EventKind::StreamConnecting {
                url,
                via,
                bidirectional,
                ..
            } => (
                "stream",
                "info",
                format!(
                    "upgrading {} ({})",
                    url_via(url, via.as_deref()),
                    if *bidirectional {
                        "bidirectional <Connect>"
                    } else {
                        "unidirectional <Start>"
                    }
                ),
            ),
            EventKind::StreamConnected {
                stream_sid,
                elapsed,
            } => (
                "stream",
                "ok",
                format!(
                    "101 Switching Protocols in {:.1} ms, {stream_sid}",
                    ms(*elapsed)
                ),
            ),
            EventKind::StartSent { tracks, .. } => (
                "stream",
                "info",
                format!(
                    "connected + start sent (tracks {}); media every 20 ms",
                    tracks.join("+")
                ),
            ),
            EventKind::FirstAudioBack { after_start, .. } => (
                "audio",
                "ok",
                format!("first app audio {:.1} ms after start", ms(*after_start)),
            ),
            EventKind::MarkEchoed {
                name,
                round_trip,
                cleared,
                ..
            } => (
                "mark",
                "info",
                format!(
                    "echoed {name:?} after {:.1} ms{}",
                    ms(*round_trip),
                    if *cleared { " (cleared)" } else { "" }
                ),
            ),
            EventKind::Clear {
                dropped_ms,
                marks_echoed,
                ..
            } => (
                "clear",
                "info",
                format!("dropped {dropped_ms} ms of queued audio, echoed {marks_echoed} marks"),
            ),
            EventKind::Dtmf { digits } => ("dtmf", "info", digits.clone()),
            EventKind::InvalidMessage { reason, raw, .. } => (
                "warning",
                "warn",
                format!("31951 ignored app message: {reason}: {raw}"),
            ),
            EventKind::StopSent { .. } => ("stream", "info", "stop sent, closing".to_string()),
            EventKind::StreamClosed {
                by,
                code,
                frames_sent,
                ..
            } => (
                "stream",
                // The stream broke rather than ended.
                if *by == "dropped" || *by == "stalled" {
                    "fail"
                } else {
                    "info"
                },
                format!(
                    "closed by {by}{} after {frames_sent} frames",
                    code.map(|c| format!(" (code {c})")).unwrap_or_default()
                ),
            ),
            EventKind::Fault { what } => ("fault", "warn", what.clone()),
            EventKind::Redirected { url, twiml } => (
                "update",
                "info",
                match (url, twiml) {
                    (Some(u), _) => {
                        format!("redirected through the REST API: new TwiML from {u}")
                    }
                    (None, t) => format!(
                        "redirected through the REST API: new TwiML {}",
                        t.as_deref().unwrap_or_default()
                    ),
                },
            ),
            EventKind::Relay(r) => relay_text(r),
            EventKind::Dial(d) => dial_text(d),
            EventKind::Queue(q) => q.text(),
            EventKind::Transcription(t) => t.text(),
            EventKind::Record(r) => r.text(),
            EventKind::Warning { code, message } => {
                ("warning", "warn", format!("{code} {message}"))
            }
            EventKind::Ended { status, reason } => (
                "call",
                if *status == "completed" { "ok" } else { "fail" },
                format!("{status}: {reason}"),
            ),
        };
        EventText { step, level, words }
    }
}

fn dial_text(d: &crate::dial::DialEvent) -> (&'static str, &'static str, String) {
    use crate::dial::{DialEvent, DialStatus};
    match d {
        DialEvent::Ringing {
            leg_sid,
            to,
            app_sid,
        } => (
            "dial",
            "info",
            match app_sid {
                Some(app) => {
                    format!("ringing {to} (leg {leg_sid}): hosted here, its app's call {app}")
                }
                None => format!("ringing {to} (leg {leg_sid}): a simulated callee"),
            },
        ),
        DialEvent::Answered { leg_sid, to } => (
            "dial",
            "ok",
            format!("{to} answered (leg {leg_sid}); the caller is bridged to it"),
        ),
        DialEvent::Leg { app_sid, event } => {
            let inner = event.kind.text();
            // The SID's tail tells legs apart without drowning the line.
            let tag = &app_sid[app_sid.len().saturating_sub(6)..];
            (
                "dial",
                inner.level,
                format!("[app …{tag}] {}: {}", inner.step, inner.words),
            )
        }
        DialEvent::ConferenceJoined {
            sid,
            name,
            participants,
            started,
        } => (
            "dial",
            "ok",
            format!(
                "joined conference {name:?} ({sid}), {participants} in it{}",
                if *started {
                    ""
                } else {
                    "; waiting for it to start"
                }
            ),
        ),
        DialEvent::ConferenceStarted { sid } => ("dial", "ok", format!("conference {sid} started")),
        DialEvent::ConferenceLeft { sid, reason } => {
            ("dial", "info", format!("left conference {sid}: {reason}"))
        }
        DialEvent::Ended {
            status,
            duration_s,
            why,
        } => (
            "dial",
            if matches!(status, DialStatus::Completed | DialStatus::Answered) {
                "ok"
            } else {
                "warn"
            },
            format!("ended {} after {duration_s} s: {why}", status.as_str()),
        ),
    }
}

fn relay_text(r: &crate::relay::RelayEvent) -> (&'static str, &'static str, String) {
    use crate::relay::{RelayEvent, SessionStatus};
    match r {
        RelayEvent::Connected { url, session_id } => (
            "relay",
            "ok",
            format!("connected {url}; setup sent (session {session_id})"),
        ),
        RelayEvent::Prompt { turn, words, last } => (
            "relay",
            "info",
            format!(
                "prompt{} turn {turn}: {words:?}",
                if *last { "" } else { " (partial)" }
            ),
        ),
        RelayEvent::FirstToken {
            turn,
            after_speech_ms,
        } => (
            "relay",
            "info",
            format!(
                "first token for turn {turn}: {after_speech_ms:.0} ms after the caller stopped"
            ),
        ),
        RelayEvent::LastToken {
            turn,
            after_speech_ms,
            tokens,
        } => (
            "relay",
            "info",
            format!(
                "last token for turn {turn}: {after_speech_ms:.0} ms after the caller stopped ({tokens} tokens)"
            ),
        ),
        RelayEvent::Interrupt {
            utterance,
            played_ms,
        } => (
            "relay",
            "info",
            format!("interrupt after {played_ms} ms of speech: heard {utterance:?}"),
        ),
        RelayEvent::Play {
            source,
            duration_ms,
            start_ms,
        } => (
            "relay",
            "info",
            match start_ms {
                Some(at) => format!("play {source}: {duration_ms} ms, heard from {at:.0} ms"),
                None => format!("play {source}: {duration_ms} ms, stopped before it was heard"),
            },
        ),
        RelayEvent::PlayFailed { source, cause } => {
            ("relay", "warn", format!("play {source} skipped: {cause}"))
        }
        RelayEvent::Error { message } => (
            "relay",
            "warn",
            format!("error sent: invalid message {message}"),
        ),
        RelayEvent::Ended {
            status,
            handoff_data,
        } => (
            "relay",
            if *status == SessionStatus::Failed {
                "fail"
            } else {
                "ok"
            },
            match handoff_data {
                Some(h) => format!("session {}, handoff {h}", status.as_str()),
                None => format!("session {}", status.as_str()),
            },
        ),
    }
}
