//! Media Streams WebSocket protocol: the JSON messages Twilio sends to an app
//! (`connected`, `start`, `media`, `dtmf`, `mark`, `stop`), the ones an app may send back
//! on a bidirectional stream (`media`, `mark`, `clear`), and how strictly Twilio checks
//! the latter.
//!
//! Wire facts (see `twilio-protocol.md` §4): every message is compact JSON in a text
//! frame; `sequenceNumber`, `chunk` and `timestamp` are decimal strings while
//! `mediaFormat.sampleRate`/`channels` are JSON numbers; key order follows captured
//! real traffic.

mod app;
mod build;
mod json;
mod twilio;

pub use app::{Strictness, parse_app_message, parse_app_message_with};
pub use build::{
    app_clear, app_mark, app_media, connected, dtmf, mark, media, needs_no_escape, start, stop,
    write_media, write_media_plain,
};
pub use twilio::parse_twilio_message;

/// Largest message (and frame) dialtone takes from an app on a stream: 1 MiB.
///
/// Twilio documents no limit. The largest legitimate message is a `media` message, and apps
/// that send a whole synthesized reply in one message send about 10.7 KB of base64 per
/// second of 8 kHz μ-law: 1 MiB holds about 98 s of audio, far past any real reply, while
/// each stream's read buffer stays bounded (50 streams of junk cost about 50 MiB, not
/// whatever the app sends). A larger message fails the connection: close code 1009 and
/// Twilio's [`PROTOCOL_ERROR`].
pub const MAX_APP_MESSAGE: usize = 1 << 20;

/// Twilio's error for an app that breaks the WebSocket protocol: 31924 "Stream - Websocket -
/// Protocol Error" ("malformed message or message not conformant with WebSocket protocol").
pub const PROTOCOL_ERROR: u16 = 31924;

/// How an app's frames broke the WebSocket protocol, so that dialtone failed the connection
/// (RFC 6455 §7.1.7) with Twilio's [`PROTOCOL_ERROR`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsViolation {
    /// A message or frame longer than [`MAX_APP_MESSAGE`] (`size` as declared, or as far as
    /// it was received).
    #[error("the app sent a message of {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A text message that is not valid UTF-8.
    #[error("the app sent a text message that is not valid UTF-8")]
    NotUtf8,
    /// Another breach of RFC 6455, in words.
    #[error("the app broke the WebSocket protocol: {0}")]
    Protocol(String),
}

impl WsViolation {
    /// The close code dialtone fails the connection with (RFC 6455 §7.4.1): 1009 "message
    /// too big", 1007 "invalid frame payload data", 1002 "protocol error".
    pub fn close_code(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 1009,
            Self::NotUtf8 => 1007,
            Self::Protocol(_) => 1002,
        }
    }
}

/// Ids a stream carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamIds {
    /// `AC…` of the account.
    pub account_sid: String,
    /// `CA…` of the call the stream belongs to.
    pub call_sid: String,
    /// `MZ…` of the stream.
    pub stream_sid: String,
}

/// Direction of audio in a `media` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// Caller → Twilio.
    Inbound,
    /// Twilio → caller (`<Say>`, `<Play>`, dialled party).
    Outbound,
}

impl Track {
    /// Spelling in `media.track` and `start.tracks`: `inbound` / `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// A message an app sends on a bidirectional stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMessage {
    /// Raw μ-law 8 kHz mono bytes to append to the playout queue (may be empty).
    Media {
        /// Decoded audio bytes.
        payload: Vec<u8>,
    },
    /// A marker to echo back once playout reaches it.
    Mark {
        /// The app's label, echoed verbatim.
        name: String,
    },
    /// Drop all buffered audio and echo pending marks.
    Clear,
}

/// Why an app message was ignored (Twilio warning 31951, or 31950 for binary frames).
/// `Display` gives a plain-words reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The text is not valid JSON.
    #[error("the message is not valid JSON ({0})")]
    NotJson(String),
    /// Valid JSON, but not an object.
    #[error("the message is JSON but not an object")]
    NotObject,
    /// No `event` field.
    #[error("the message has no \"event\" field")]
    MissingEvent,
    /// An `event` the receiver does not accept.
    #[error("unknown event \"{0}\" (an app may send only media, mark and clear)")]
    UnknownEvent(String),
    /// A required field is absent (dotted path, e.g. `media.payload`).
    #[error("the required field \"{0}\" is missing")]
    MissingField(&'static str),
    /// A field has the wrong JSON type (dotted path).
    #[error("the field \"{0}\" has the wrong type")]
    WrongType(&'static str),
    /// A field that this event does not have (Twilio lists extra fields as a cause).
    #[error("unexpected field \"{0}\" (Twilio ignores messages with extra fields)")]
    UnexpectedField(String),
    /// `media.payload` is not base64.
    #[error("media.payload is not valid base64 ({0})")]
    BadBase64(String),
    /// The message names another stream.
    #[error("streamSid \"{got}\" does not match this stream ({expected})")]
    WrongStreamSid {
        /// The `streamSid` the message carried.
        got: String,
        /// The stream's actual SID.
        expected: String,
    },
    /// A binary WebSocket frame (Twilio accepts text frames only).
    #[error("a binary WebSocket frame was sent; Twilio accepts only JSON text frames")]
    BinaryFrame,
    /// Any other shape problem found while parsing a Twilio→app message.
    #[error("the message does not have the expected shape ({0})")]
    Schema(String),
}

impl Violation {
    /// The Twilio warning code for this violation: 31950 "Stream - Protocol - Malformed
    /// Message" for binary frames (Twilio's documented cause for it), 31951 "Stream -
    /// Protocol - Invalid Message" for everything else.
    pub fn code(&self) -> u16 {
        match self {
            Self::BinaryFrame => 31950,
            _ => 31951,
        }
    }
}

/// A Twilio→app message as an app (e.g. a reference bot, or tests) would parse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioMessage {
    /// First message on every stream.
    Connected {
        /// Always `Call`.
        protocol: String,
        /// Protocol version, `1.0.0` today.
        version: String,
    },
    /// Stream metadata, sent once after `connected`.
    Start {
        /// Sequence number (`1` for `start`).
        sequence_number: u64,
        /// `MZ…`.
        stream_sid: String,
        /// `AC…`.
        account_sid: String,
        /// `CA…`.
        call_sid: String,
        /// `inbound` and/or `outbound`.
        tracks: Vec<String>,
        /// `<Parameter>` name/value pairs, in message order.
        custom_parameters: Vec<(String, String)>,
        /// (encoding, sample rate, channels), always `("audio/x-mulaw", 8000, 1)`.
        media_format: (String, u32, u32),
    },
    /// One chunk of audio.
    Media {
        /// Sequence number.
        sequence_number: u64,
        /// `MZ…`.
        stream_sid: String,
        /// `inbound` or `outbound`.
        track: String,
        /// Chunk counter, from 1.
        chunk: u64,
        /// Milliseconds since the stream started.
        timestamp_ms: u64,
        /// Decoded μ-law bytes.
        payload: Vec<u8>,
    },
    /// A key press (bidirectional streams only).
    Dtmf {
        /// Sequence number.
        sequence_number: u64,
        /// `MZ…`.
        stream_sid: String,
        /// Always `inbound_track`.
        track: String,
        /// The key, e.g. `1`, `#`.
        digit: String,
    },
    /// Echo of an app mark whose audio finished playing (or was cleared).
    Mark {
        /// Sequence number.
        sequence_number: u64,
        /// `MZ…`.
        stream_sid: String,
        /// The app's label.
        name: String,
    },
    /// The stream ended.
    Stop {
        /// Sequence number.
        sequence_number: u64,
        /// `MZ…`.
        stream_sid: String,
        /// `AC…`.
        account_sid: String,
        /// `CA…`.
        call_sid: String,
    },
}
