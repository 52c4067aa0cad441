//! The outcome class of a call or a bare stream: one vocabulary for both load paths. Full
//! calls derive theirs from their first [`Failure`] (or their final status); the lean
//! `--stream` worker names its streams' classes with the same variants. Summaries,
//! thresholds and docs use the text of [`Outcome::text`], so it is stable.

use std::borrow::Cow;
use std::fmt;

use dialtone_protocol::webhook::CallStatus;

use crate::report::{CallReport, Failure};

/// How a call or stream ended, as load runs count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// It completed with no failure: `ok`.
    Ok,
    /// The stream's WebSocket could not be opened or its upgrade was refused:
    /// `stream_connect 31920`.
    StreamConnect,
    /// The stream's TCP connection dropped without a WebSocket close: `stream 31903`.
    StreamDropped,
    /// The app broke the WebSocket protocol and dialtone failed the connection:
    /// `stream 31924`.
    StreamProtocol,
    /// The app stopped reading its socket: `stream stalled` (no Twilio code).
    StreamStalled,
    /// The app closed a bare stream before dialtone's `stop` (`--stream` only: a full call
    /// goes on with its TwiML): `closed_by_app`.
    ClosedByApp,
    /// Cut by a stop (Ctrl-C, SIGTERM) after the drain: `interrupted`.
    Interrupted,
    /// The call's task panicked: `dialtone_panic`.
    DialtonePanic,
    /// Another failed step of a full call, by its step and Twilio's code (0: none), e.g.
    /// `webhook 11200`, `twiml 12100`, `app_audio`.
    Step {
        /// [`Failure::step`].
        step: &'static str,
        /// [`Failure::code`].
        code: u16,
    },
    /// Ended with no failure but not `completed` (e.g. `status busy`).
    Status(CallStatus),
}

impl Outcome {
    /// The class as summaries, thresholds and docs write it; the one place it is spelt.
    pub fn text(self) -> Cow<'static, str> {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::StreamConnect => "stream_connect 31920".into(),
            Outcome::StreamDropped => "stream 31903".into(),
            Outcome::StreamProtocol => "stream 31924".into(),
            Outcome::StreamStalled => "stream stalled".into(),
            Outcome::ClosedByApp => "closed_by_app".into(),
            Outcome::Interrupted => "interrupted".into(),
            Outcome::DialtonePanic => "dialtone_panic".into(),
            Outcome::Step { step, code: 0 } => step.into(),
            Outcome::Step { step, code } => format!("{step} {code}").into(),
            Outcome::Status(s) => format!("status {}", s.as_str()).into(),
        }
    }

    /// True for [`Outcome::Ok`].
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }

    /// A finished call's class: its first failure's, or its final status when it ended
    /// without a failure but not `completed` (e.g. `busy`).
    pub fn of_call(report: &CallReport) -> Outcome {
        match (report.failures.first(), report.status) {
            (Some(f), _) => Outcome::from(f),
            (None, CallStatus::Completed) => Outcome::Ok,
            (None, s) => Outcome::Status(s),
        }
    }
}

impl From<&Failure> for Outcome {
    fn from(f: &Failure) -> Outcome {
        match f {
            Failure::StreamUpgradeRefused { .. } | Failure::StreamConnect { .. } => {
                Outcome::StreamConnect
            }
            Failure::StreamDropped { .. } => Outcome::StreamDropped,
            Failure::StreamProtocol { .. } => Outcome::StreamProtocol,
            // No Twilio code: named by its kind, so a stall is not mistaken for another
            // stream error.
            Failure::StreamStalled { .. } => Outcome::StreamStalled,
            other => Outcome::Step {
                step: other.step(),
                code: other.code(),
            },
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream classes keep the text both load paths wrote before they shared a type,
    /// and a failure's class is its step and code, as the full-call path always named it.
    #[test]
    fn texts_match_the_documented_classes() {
        let url = String::from("ws://x/media");
        let cases: [(Outcome, &str); 11] = [
            (Outcome::Ok, "ok"),
            (Outcome::StreamConnect, "stream_connect 31920"),
            (Outcome::StreamDropped, "stream 31903"),
            (Outcome::StreamProtocol, "stream 31924"),
            (Outcome::StreamStalled, "stream stalled"),
            (Outcome::ClosedByApp, "closed_by_app"),
            (Outcome::Interrupted, "interrupted"),
            (Outcome::DialtonePanic, "dialtone_panic"),
            (
                Outcome::Step {
                    step: "app_audio",
                    code: 0,
                },
                "app_audio",
            ),
            (
                Outcome::Step {
                    step: "webhook",
                    code: 11200,
                },
                "webhook 11200",
            ),
            (Outcome::Status(CallStatus::Busy), "status busy"),
        ];
        for (o, text) in cases {
            assert_eq!(o.text(), text);
            assert_eq!(o.to_string(), text);
        }
        let failures = [
            Failure::StreamUpgradeRefused {
                url: url.clone(),
                status: 403,
            },
            Failure::StreamConnect {
                url: url.clone(),
                cause: "refused".into(),
            },
            Failure::StreamDropped {
                url: url.clone(),
                frames_sent: 1,
            },
            Failure::StreamProtocol {
                url: url.clone(),
                cause: "too big".into(),
                close_code: 1009,
                frames_sent: 1,
            },
            Failure::StreamStalled {
                url: url.clone(),
                secs: 5,
                frames_sent: 1,
            },
            Failure::NoAudioBack { url, secs: 10 },
        ];
        let texts: Vec<String> = failures
            .iter()
            .map(|f| Outcome::from(f).to_string())
            .collect();
        assert_eq!(
            texts,
            [
                "stream_connect 31920",
                "stream_connect 31920",
                "stream 31903",
                "stream 31924",
                "stream stalled",
                "app_audio"
            ]
        );
        // A coded failure's class is always `step code`, the stream ones included.
        for f in &failures[..4] {
            assert_eq!(
                Outcome::from(f).to_string(),
                format!("{} {}", f.step(), f.code())
            );
        }
    }
}
