//! `<Connect><ConversationRelay>`: Twilio runs speech-to-text and text-to-speech and the app
//! speaks a JSON text protocol over a WebSocket. The noun, its attributes (every one Twilio's
//! reference and twilio-python's `conversation_relay()` name), and its `<Language>` and
//! `<Parameter>` children.
//!
//! What dialtone simulates is typed; the speech providers' settings (voices, models, text
//! normalization, sensitivity…) have no effect on a simulated recognizer and synthesizer, so
//! they are checked against their documented values and kept as written.

use crate::attrs::Attrs;
use crate::cursor::{Cursor, Elem, Ev};
use crate::error::TwimlError;
use crate::verbs::{bad_child, empty_content, parameter, reject_text};

/// Which caller input may interrupt the agent's speech (`interruptible`,
/// `welcomeGreetingInterruptible`) or reaches the app while the agent speaks
/// (`reportInputDuringAgentSpeech`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RelayInput {
    /// `none` (legacy `false`): nothing.
    None,
    /// `dtmf`: keyed digits only.
    Dtmf,
    /// `speech`: speech only.
    Speech,
    /// `any` (legacy `true`): speech and digits.
    #[default]
    Any,
}

impl RelayInput {
    /// The attribute spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayInput::None => "none",
            RelayInput::Dtmf => "dtmf",
            RelayInput::Speech => "speech",
            RelayInput::Any => "any",
        }
    }

    /// Whether speech is let through.
    pub fn speech(self) -> bool {
        matches!(self, RelayInput::Speech | RelayInput::Any)
    }

    /// Whether keyed digits are let through.
    pub fn dtmf(self) -> bool {
        matches!(self, RelayInput::Dtmf | RelayInput::Any)
    }
}

/// `<Language>`: the settings a language code uses when it becomes active (adding one does
/// not switch to it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelayLanguage {
    /// `code`, e.g. `sv-SE`, or `multi`.
    pub code: String,
    /// `ttsProvider`.
    pub tts_provider: Option<String>,
    /// `voice`.
    pub voice: Option<String>,
    /// `transcriptionProvider`.
    pub transcription_provider: Option<String>,
    /// `speechModel`.
    pub speech_model: Option<String>,
}

/// `<ConversationRelay>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConversationRelay {
    /// `url`: the app's WebSocket (`wss://`; `ws://` is dialtone's allowance for local apps).
    pub url: String,
    /// `welcomeGreeting`: spoken once the WebSocket is up.
    pub welcome_greeting: Option<String>,
    /// `welcomeGreetingInterruptible` (default `any`).
    pub welcome_greeting_interruptible: RelayInput,
    /// `interruptible` (default `any`): which caller input cuts the agent's speech short.
    pub interruptible: RelayInput,
    /// `preemptible` (default false): the next talk cycle's first token stops this one.
    pub preemptible: bool,
    /// `dtmfDetection` (default false): keyed digits reach the app as `dtmf` messages.
    pub dtmf_detection: bool,
    /// `partialPrompts` (default false): growing `prompt`s with `last: false` come first.
    pub partial_prompts: bool,
    /// `reportInputDuringAgentSpeech` (default `none`).
    pub report_input_during_agent_speech: RelayInput,
    /// `language` (default `en-US`): both speech directions.
    pub language: Option<String>,
    /// `ttsLanguage`: speech synthesis, over `language`.
    pub tts_language: Option<String>,
    /// `transcriptionLanguage`: recognition, over `language`.
    pub transcription_language: Option<String>,
    /// `hints`: comma-separated phrases for the recognizer.
    pub hints: Option<String>,
    /// `debug`: space-separated `debugging`, `speaker-events`, `tokens-played`.
    pub debug: Option<String>,
    /// The providers' settings, as written and in document order: accepted, checked where
    /// Twilio documents their values, not simulated.
    pub settings: Vec<(String, String)>,
    /// `<Language>` children in document order.
    pub languages: Vec<RelayLanguage>,
    /// `<Parameter name value/>` children in document order (the `setup` message's
    /// `customParameters`).
    pub parameters: Vec<(String, String)>,
}

impl ConversationRelay {
    /// The language `prompt`s are transcribed in: `transcriptionLanguage`, else `language`,
    /// else `en-US`.
    pub fn transcription_language(&self) -> &str {
        self.transcription_language
            .as_deref()
            .or(self.language.as_deref())
            .unwrap_or(DEFAULT_LANGUAGE)
    }

    /// The language the agent speaks in: `ttsLanguage`, else `language`, else `en-US`.
    pub fn tts_language(&self) -> &str {
        self.tts_language
            .as_deref()
            .or(self.language.as_deref())
            .unwrap_or(DEFAULT_LANGUAGE)
    }
}

/// Twilio's default `language`.
pub const DEFAULT_LANGUAGE: &str = "en-US";

/// Typed attributes: simulated.
const TYPED: &[&str] = &[
    "url",
    "welcomeGreeting",
    "welcomeGreetingInterruptible",
    "interruptible",
    "preemptible",
    "dtmfDetection",
    "partialPrompts",
    "reportInputDuringAgentSpeech",
    "language",
    "ttsLanguage",
    "transcriptionLanguage",
    "hints",
    "debug",
];

/// The providers' settings and how their values are checked.
const SETTINGS: &[(&str, Setting)] = &[
    ("ttsProvider", Setting::Text),
    ("voice", Setting::Text),
    ("transcriptionProvider", Setting::Text),
    ("speechModel", Setting::Text),
    ("intelligenceService", Setting::Text),
    ("events", Setting::Text),
    ("profanityFilter", Setting::Bool),
    ("ignoreBackchannel", Setting::Bool),
    ("backgroundNoiseReduction", Setting::Bool),
    ("deepgramSmartFormat", Setting::Bool),
    ("speechTimeout", Setting::Millis),
    (
        "interruptSensitivity",
        Setting::OneOf(&["low", "medium", "high"]),
    ),
    (
        "elevenlabsTextNormalization",
        Setting::OneOf(&["on", "auto", "off"]),
    ),
];

#[derive(Debug, Clone, Copy)]
enum Setting {
    Text,
    Bool,
    Millis,
    OneOf(&'static [&'static str]),
}

const LANGUAGE_ATTRS: &[&str] = &[
    "code",
    "ttsProvider",
    "voice",
    "transcriptionProvider",
    "speechModel",
];

/// `<ConversationRelay>` inside `<Connect>`.
pub(crate) fn conversation_relay(
    cur: &mut Cursor<'_>,
    e: &Elem<'_>,
) -> Result<ConversationRelay, TwimlError> {
    let allowed: Vec<&str> = TYPED
        .iter()
        .copied()
        .chain(SETTINGS.iter().map(|(k, _)| *k))
        .collect();
    let attrs = Attrs::check(e, &allowed)?;
    let url = attrs.string("url").unwrap_or_default();
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if url.trim().is_empty() {
        return Err(attrs.err("<ConversationRelay> requires a url attribute"));
    }
    if !matches!(scheme.as_deref(), Some("wss" | "ws")) {
        return Err(attrs.err(format!(
            "<ConversationRelay> url must begin with wss:// (or ws:// for a local app), found {url}"
        )));
    }
    let mut relay = ConversationRelay {
        url,
        welcome_greeting: attrs.string("welcomeGreeting"),
        welcome_greeting_interruptible: input(&attrs, "welcomeGreetingInterruptible")?
            .unwrap_or(RelayInput::Any),
        interruptible: input(&attrs, "interruptible")?.unwrap_or(RelayInput::Any),
        preemptible: attrs.boolean("preemptible", false)?,
        dtmf_detection: attrs.boolean("dtmfDetection", false)?,
        partial_prompts: attrs.boolean("partialPrompts", false)?,
        report_input_during_agent_speech: input(&attrs, "reportInputDuringAgentSpeech")?
            .unwrap_or(RelayInput::None),
        language: attrs.string("language"),
        tts_language: attrs.string("ttsLanguage"),
        transcription_language: attrs.string("transcriptionLanguage"),
        hints: attrs.string("hints"),
        debug: attrs.string("debug"),
        settings: settings(&attrs, e)?,
        languages: Vec::new(),
        parameters: Vec::new(),
    };
    loop {
        match cur.next()? {
            Ev::Open(child) if child.name == "Parameter" => {
                relay.parameters.push(parameter(cur, &child)?);
            }
            Ev::Open(child) if child.name == "Language" => {
                relay.languages.push(language(cur, &child)?);
            }
            Ev::Open(child) => return Err(bad_child(e, &child, "<Language>, <Parameter>")),
            Ev::Text(t) => reject_text(e, &t)?,
            Ev::Close | Ev::Eof => return Ok(relay),
        }
    }
}

/// An interruption mode: the four values, or the legacy `true` (any) / `false` (none).
fn input(attrs: &Attrs<'_, '_>, key: &str) -> Result<Option<RelayInput>, TwimlError> {
    let Some(value) = attrs.get(key) else {
        return Ok(None);
    };
    let mode = match value.trim().to_ascii_lowercase().as_str() {
        "none" | "false" => RelayInput::None,
        "dtmf" => RelayInput::Dtmf,
        "speech" => RelayInput::Speech,
        "any" | "true" => RelayInput::Any,
        _ => {
            return Err(attrs.err(format!(
                "attribute {key}=\"{value}\" must be one of none, dtmf, speech, any (or true, false)"
            )));
        }
    };
    Ok(Some(mode))
}

/// The providers' settings present, in document order, each checked.
fn settings(attrs: &Attrs<'_, '_>, e: &Elem<'_>) -> Result<Vec<(String, String)>, TwimlError> {
    let mut out = Vec::new();
    for attr in &e.attrs {
        let (key, value) = (attr.key, attr.value.as_ref());
        let Some((_, kind)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        match kind {
            Setting::Text => {}
            Setting::Bool => {
                attrs.boolean(key, false)?;
            }
            Setting::Millis => {
                attrs.uint(key, 0, 0)?;
            }
            Setting::OneOf(choices) => {
                if !choices.iter().any(|c| c.eq_ignore_ascii_case(value.trim())) {
                    return Err(attrs.err(format!(
                        "attribute {key}=\"{value}\" must be one of {}",
                        choices.join(", ")
                    )));
                }
            }
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

fn language(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<RelayLanguage, TwimlError> {
    let attrs = Attrs::check(e, LANGUAGE_ATTRS)?;
    let code = attrs.string("code").unwrap_or_default();
    if code.trim().is_empty() {
        return Err(attrs.err("<Language> requires a code attribute"));
    }
    let lang = RelayLanguage {
        code,
        tts_provider: attrs.string("ttsProvider"),
        voice: attrs.string("voice"),
        transcription_provider: attrs.string("transcriptionProvider"),
        speech_model: attrs.string("speechModel"),
    };
    empty_content(cur, e, false)?;
    Ok(lang)
}
