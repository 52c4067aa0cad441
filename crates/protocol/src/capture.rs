//! The `--capture` file's schema (`docs/capture.md`): one JSON object per line, every
//! exchange of a call with its time. Not a Twilio format but dialtone's own record of
//! Twilio's traffic; defined once here, below both its writer (the call engine) and its
//! reader (replay). Generic over the string type: the writer serializes borrowed `&str`
//! without copying, the reader deserializes owned `String`s.

use serde::{Deserialize, Serialize};

/// One line of a capture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureLine<S> {
    /// Milliseconds since the call was placed.
    pub t_ms: f64,
    /// The call's SID (a load's capture holds many calls).
    pub call_sid: S,
    /// What happened.
    #[serde(flatten)]
    pub record: CaptureRecord<S>,
}

/// One captured exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaptureRecord<S> {
    /// A TwiML request as sent.
    HttpRequest {
        /// `voice`, `action`, `redirect`, `fallback`.
        purpose: S,
        /// `POST` or `GET`.
        method: S,
        /// The URL on the wire.
        url: S,
        /// `X-Twilio-Signature`.
        signature: S,
        /// Form body (empty for GET).
        body: S,
    },
    /// The app's answer.
    HttpResponse {
        /// URL it answered.
        url: S,
        /// HTTP status.
        status: u16,
        /// Declared Content-Type.
        content_type: S,
        /// Body, as text.
        body: S,
    },
    /// A stream's WebSocket opened.
    WsOpen {
        /// Stream SID.
        stream_sid: S,
        /// URL connected to.
        url: S,
    },
    /// A text message dialtone sent (Twilio → app).
    WsOut {
        /// Stream SID.
        stream_sid: S,
        /// The message.
        text: S,
    },
    /// A message the app sent (app → Twilio).
    WsIn {
        /// Stream SID.
        stream_sid: S,
        /// The message.
        text: S,
    },
    /// A stream's WebSocket closed.
    WsClose {
        /// Stream SID.
        stream_sid: S,
        /// `app`, `dialtone`, `dropped`, `stalled`.
        by: S,
        /// Close code, if any.
        code: Option<u16>,
    },
    /// A ConversationRelay socket's upgrade: opened (`status` 101), refused (its HTTP
    /// status) or not answered (`status` null, `error` says why).
    RelayOpen {
        /// The session's `VX…` (as `setup` carries it).
        session_id: S,
        /// The relay URL, as the TwiML wrote it (signed and named on the upgrade).
        url: S,
        /// `X-Twilio-Signature` of the upgrade: over `url`, no parameters.
        signature: S,
        /// 101 when the socket opened, else the status the app refused it with.
        status: Option<u16>,
        /// Why the upgrade failed, when it did.
        error: Option<S>,
    },
    /// A relay message dialtone sent (`setup`, `prompt`, `dtmf`, `interrupt`, `error`).
    RelayOut {
        /// The session's `VX…`.
        session_id: S,
        /// The message, byte for byte.
        text: S,
    },
    /// A relay text message the app sent, valid or not.
    RelayIn {
        /// The session's `VX…`.
        session_id: S,
        /// The message, byte for byte.
        text: S,
    },
    /// A relay socket closed.
    RelayClose {
        /// The session's `VX…`.
        session_id: S,
        /// `app` (its close frame), `dialtone` (after the app's `end`, the caller's hang-up
        /// or too many malformed messages), `dropped` (broke without a close frame).
        by: S,
        /// Close code, if any.
        code: Option<u16>,
        /// Close reason (empty when none).
        reason: S,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `record` as the writer does (borrowed strings) and reads it back as the reader
    /// does (owned ones).
    fn round_trip(record: CaptureRecord<&str>) -> (String, CaptureRecord<String>) {
        let line = CaptureLine {
            t_ms: 12.5,
            call_sid: "CA1",
            record,
        };
        let text = serde_json::to_string(&line).unwrap();
        let back: CaptureLine<String> = serde_json::from_str(&text).unwrap();
        assert_eq!((back.t_ms, back.call_sid.as_str()), (12.5, "CA1"));
        (text, back.record)
    }

    #[test]
    fn relay_records_round_trip_in_the_documented_shape() {
        let (text, back) = round_trip(CaptureRecord::RelayOpen {
            session_id: "VX1",
            url: "wss://app.example/relay?x=1",
            signature: "abc=",
            status: Some(101),
            error: None,
        });
        assert_eq!(
            text,
            r#"{"t_ms":12.5,"call_sid":"CA1","kind":"relay_open","session_id":"VX1","url":"wss://app.example/relay?x=1","signature":"abc=","status":101,"error":null}"#
        );
        assert_eq!(
            back,
            CaptureRecord::RelayOpen {
                session_id: "VX1".into(),
                url: "wss://app.example/relay?x=1".into(),
                signature: "abc=".into(),
                status: Some(101),
                error: None,
            }
        );
        let (_, back) = round_trip(CaptureRecord::RelayOpen {
            session_id: "VX1",
            url: "ws://127.0.0.1:9/relay",
            signature: "abc=",
            status: None,
            error: Some("connection refused"),
        });
        assert!(
            matches!(&back, CaptureRecord::RelayOpen { status: None, error: Some(e), .. } if e == "connection refused"),
            "{back:?}"
        );

        let prompt = r#"{"type":"prompt","voicePrompt":"hi \"there\"","lang":"en-US","last":true}"#;
        let (text, back) = round_trip(CaptureRecord::RelayOut {
            session_id: "VX1",
            text: prompt,
        });
        assert!(
            text.contains(r#""kind":"relay_out","session_id":"VX1","text":"#),
            "{text}"
        );
        assert_eq!(
            back,
            CaptureRecord::RelayOut {
                session_id: "VX1".into(),
                text: prompt.into()
            }
        );
        let (_, back) = round_trip(CaptureRecord::RelayIn {
            session_id: "VX1",
            text: "not json \u{1F600}",
        });
        assert_eq!(
            back,
            CaptureRecord::RelayIn {
                session_id: "VX1".into(),
                text: "not json \u{1F600}".into()
            }
        );
        let (text, back) = round_trip(CaptureRecord::RelayClose {
            session_id: "VX1",
            by: "dialtone",
            code: Some(1007),
            reason: "Too many consecutive malformed messages.",
        });
        assert!(
            text.ends_with(
                r#""kind":"relay_close","session_id":"VX1","by":"dialtone","code":1007,"reason":"Too many consecutive malformed messages."}"#
            ),
            "{text}"
        );
        assert_eq!(
            back,
            CaptureRecord::RelayClose {
                session_id: "VX1".into(),
                by: "dialtone".into(),
                code: Some(1007),
                reason: "Too many consecutive malformed messages.".into()
            }
        );
    }

    #[test]
    fn a_relay_record_of_another_shape_is_an_error_not_a_guess() {
        // A missing field (an older writer) and an unknown kind both fail to parse.
        let missing =
            r#"{"t_ms":1,"call_sid":"CA1","kind":"relay_close","session_id":"VX1","by":"app"}"#;
        let e = serde_json::from_str::<CaptureLine<String>>(missing).unwrap_err();
        assert!(e.to_string().contains("missing field"), "{e}");
        let unknown = r#"{"t_ms":1,"call_sid":"CA1","kind":"relay_media","session_id":"VX1"}"#;
        let e = serde_json::from_str::<CaptureLine<String>>(unknown).unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[test]
    fn a_written_line_reads_back_as_the_documented_shape() {
        let line = CaptureLine {
            t_ms: 4.9,
            call_sid: "CA1",
            record: CaptureRecord::WsClose {
                stream_sid: "MZ1",
                by: "app",
                code: Some(1000),
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"t_ms":4.9,"call_sid":"CA1","kind":"ws_close","stream_sid":"MZ1","by":"app","code":1000}"#
        );
        let back: CaptureLine<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.call_sid, "CA1");
        assert_eq!(
            back.record,
            CaptureRecord::WsClose {
                stream_sid: "MZ1".to_string(),
                by: "app".to_string(),
                code: Some(1000),
            }
        );
    }
}
