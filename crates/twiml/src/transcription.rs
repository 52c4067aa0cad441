//! `<Start><Transcription>` and `<Stop><Transcription>`: Twilio's real-time transcription of
//! the call's audio, reported to `statusCallbackUrl` as it is recognized. The noun, its
//! attributes (every one Twilio's reference and twilio-python's `transcription()` name) and
//! its `<Config>` and `<Parameter>` children.

use crate::attrs::Attrs;
use crate::cursor::{Cursor, Elem, Ev};
use crate::error::TwimlError;
use crate::model::{Method, Track};
use crate::verbs::{bad_child, empty_content, parameter, reject_text};

/// `<Transcription>`, with Twilio's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcription {
    /// `name`: unique per call, used by `<Stop><Transcription name>`.
    pub name: Option<String>,
    /// `track` (default `both_tracks`): the caller (`inbound_track`), what the call plays
    /// to the caller (`outbound_track`), or both.
    pub track: Track,
    /// `statusCallbackUrl`: where the transcription's events go.
    pub status_callback_url: Option<String>,
    /// `statusCallbackMethod` (default POST).
    pub status_callback_method: Method,
    /// `inboundTrackLabel`: a friendly name for the inbound track.
    pub inbound_track_label: Option<String>,
    /// `outboundTrackLabel`: a friendly name for the outbound track.
    pub outbound_track_label: Option<String>,
    /// `partialResults` (default false): interim results too, not only final ones.
    pub partial_results: bool,
    /// `languageCode` (BCP-47; Twilio's default `en-US`).
    pub language_code: Option<String>,
    /// `transcriptionEngine`: `google` (Twilio's default) or `deepgram`, as written.
    pub transcription_engine: Option<String>,
    /// `profanityFilter` (default true).
    pub profanity_filter: bool,
    /// `speechModel`, passed through.
    pub speech_model: Option<String>,
    /// `hints`: comma-separated phrases for the recognizer.
    pub hints: Option<String>,
    /// `enableAutomaticPunctuation` (default true).
    pub enable_automatic_punctuation: bool,
    /// `intelligenceService`: a Conversational Intelligence service's SID or unique name.
    pub intelligence_service: Option<String>,
    /// `<Config name value/>` children in document order (the engine's custom settings).
    pub config: Vec<(String, String)>,
    /// `<Parameter name value/>` children in document order.
    pub parameters: Vec<(String, String)>,
}

impl Default for Transcription {
    fn default() -> Self {
        Self {
            name: None,
            track: Track::Both,
            status_callback_url: None,
            status_callback_method: Method::Post,
            inbound_track_label: None,
            outbound_track_label: None,
            partial_results: false,
            language_code: None,
            transcription_engine: None,
            profanity_filter: true,
            speech_model: None,
            hints: None,
            enable_automatic_punctuation: true,
            intelligence_service: None,
            config: Vec::new(),
            parameters: Vec::new(),
        }
    }
}

/// Twilio's default `languageCode`.
pub const DEFAULT_LANGUAGE_CODE: &str = "en-US";

/// `transcriptionEngine` values Twilio documents, and their `ProviderName`.
const ENGINES: &[(&str, &str)] = &[("google", "Google"), ("deepgram", "Deepgram")];

impl Transcription {
    /// The language results are in: `languageCode`, else `en-US`.
    pub fn language_code(&self) -> &str {
        self.language_code
            .as_deref()
            .unwrap_or(DEFAULT_LANGUAGE_CODE)
    }

    /// The provider behind `transcriptionEngine`, as its callbacks' `ProviderName` spells
    /// it: `Google` (the default) or `Deepgram`.
    pub fn provider_name(&self) -> &'static str {
        let engine = self.transcription_engine.as_deref().unwrap_or("google");
        ENGINES
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(engine))
            .map_or("Google", |(_, p)| p)
    }
}

const ATTRS: &[&str] = &[
    "name",
    "track",
    "statusCallbackUrl",
    "statusCallbackMethod",
    "inboundTrackLabel",
    "outboundTrackLabel",
    "partialResults",
    "languageCode",
    "transcriptionEngine",
    "profanityFilter",
    "speechModel",
    "hints",
    "enableAutomaticPunctuation",
    "intelligenceService",
];

/// `<Transcription>` inside `<Start>` or `<Stop>` (which only needs its name, but Twilio's
/// schema checks the same attributes there).
pub(crate) fn transcription(
    cur: &mut Cursor<'_>,
    e: &Elem<'_>,
) -> Result<Transcription, TwimlError> {
    let attrs = Attrs::check(e, ATTRS)?;
    let track = match attrs.choice("track", &["inbound_track", "outbound_track", "both_tracks"])? {
        Some(t) if t == "inbound_track" => Track::Inbound,
        Some(t) if t == "outbound_track" => Track::Outbound,
        _ => Track::Both,
    };
    let transcription_engine = attrs.string("transcriptionEngine");
    if let Some(engine) = &transcription_engine
        && !ENGINES.iter().any(|(e, _)| e.eq_ignore_ascii_case(engine))
    {
        return Err(attrs.err(format!(
            "attribute transcriptionEngine=\"{engine}\" must be google or deepgram"
        )));
    }
    let mut t = Transcription {
        name: attrs.string("name"),
        track,
        status_callback_url: attrs.string("statusCallbackUrl"),
        status_callback_method: attrs.method("statusCallbackMethod")?,
        inbound_track_label: attrs.string("inboundTrackLabel"),
        outbound_track_label: attrs.string("outboundTrackLabel"),
        partial_results: attrs.boolean("partialResults", false)?,
        language_code: attrs.string("languageCode"),
        transcription_engine,
        profanity_filter: attrs.boolean("profanityFilter", true)?,
        speech_model: attrs.string("speechModel"),
        hints: attrs.string("hints"),
        enable_automatic_punctuation: attrs.boolean("enableAutomaticPunctuation", true)?,
        intelligence_service: attrs.string("intelligenceService"),
        config: Vec::new(),
        parameters: Vec::new(),
    };
    loop {
        match cur.next()? {
            Ev::Open(child) if child.name == "Parameter" => {
                t.parameters.push(parameter(cur, &child)?);
            }
            Ev::Open(child) if child.name == "Config" => {
                t.config.push(config(cur, &child)?);
            }
            Ev::Open(child) => return Err(bad_child(e, &child, "<Config>, <Parameter>")),
            Ev::Text(text) => reject_text(e, &text)?,
            Ev::Close | Ev::Eof => return Ok(t),
        }
    }
}

/// `<Config name value/>`: like `<Parameter>`, a name is required.
fn config(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<(String, String), TwimlError> {
    let attrs = Attrs::check(e, &["name", "value"])?;
    let name = attrs.string("name").unwrap_or_default();
    if name.is_empty() {
        return Err(attrs.err("<Config> requires a name attribute"));
    }
    let value = attrs.string("value").unwrap_or_default();
    empty_content(cur, e, false)?;
    Ok((name, value))
}
