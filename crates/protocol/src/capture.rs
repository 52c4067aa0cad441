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
}

#[cfg(test)]
mod tests {
    use super::*;

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
