//! Recordings a call makes as it runs (`<Dial record>`, `<Record>`), handed to whoever keeps
//! them and serves them as Twilio's Recordings resource (`dialtone serve`, and the REST API
//! beside `call` and `load`).

use std::time::SystemTime;

/// What made a recording (`RecordingSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingSource {
    /// `<Dial record>`.
    DialVerb,
    /// `<Record>`: the caller alone, one channel.
    RecordVerb,
}

impl RecordingSource {
    /// Twilio's spelling (`source` in the resource, `RecordingSource` in callbacks).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DialVerb => "DialVerb",
            Self::RecordVerb => "RecordVerb",
        }
    }
}

/// A finished recording.
#[derive(Debug, Clone)]
pub struct NewRecording {
    /// `RE…`.
    pub sid: String,
    /// The account.
    pub account_sid: String,
    /// The call it belongs to (for a `<Dial>`, the call that dialed).
    pub call_sid: String,
    /// What made it.
    pub source: RecordingSource,
    /// When it started.
    pub started: SystemTime,
    /// 1 (both parties mixed, or `<Record>`'s caller alone) or 2 (the call's party first,
    /// the other party second).
    pub channels: u16,
    /// The call's party, 8 kHz μ-law.
    pub first: Vec<u8>,
    /// The other party, 8 kHz μ-law, as long as `first`; empty for `<Record>`, which hears
    /// only the caller.
    pub second: Vec<u8>,
}

/// Keeps recordings and serves them.
pub trait RecordingStore: Send + Sync + std::fmt::Debug {
    /// Keeps `rec` and returns its `RecordingUrl` (the resource's URL without extension).
    fn keep(&self, rec: NewRecording) -> String;
}
