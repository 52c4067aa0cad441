//! ConversationRelay's WebSocket messages, both ways (docs/relay-protocol-notes.md §2–3):
//! the JSON Twilio sends the app (`setup`, `prompt`, `dtmf`, `interrupt`, `error`) and the
//! app's messages (`text`, `play`, `sendDigits`, `language`, `end`) parsed and checked the
//! way Twilio checks them. A message Twilio cannot use costs an `error` message back
//! ([`INVALID_MESSAGE`], the session goes on); [`MALFORMED_LIMIT`] unidentified ones in a
//! row close the socket ([`MALFORMED_CLOSE_CODE`], [`MALFORMED_CLOSE_REASON`]).

use serde::Serialize;
use serde_json::{Map, Value};

/// 64102: the app's WebSocket could not be reached or refused the upgrade.
pub const UNABLE_TO_CONNECT: u16 = 64102;
/// 64105: the WebSocket ended during the call (also after too many malformed messages).
pub const WEBSOCKET_ENDED: u16 = 64105;
/// 64107: an app message Twilio could not use; it is dropped and the session goes on.
pub const INVALID_MESSAGE: u16 = 64107;
/// Unidentified app messages in a row that close the socket.
pub const MALFORMED_LIMIT: u32 = 10;
/// The close code for them.
pub const MALFORMED_CLOSE_CODE: u16 = 1007;
/// The close reason for them.
pub const MALFORMED_CLOSE_REASON: &str = "Too many consecutive malformed messages.";
/// `play`'s `loop: 0`: as many times as Twilio plays anything, 1000.
pub const PLAY_LOOP_MAX: u32 = 1000;

/// The call as `setup` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Setup {
    /// `VX…`, also the action callback's `SessionId`.
    pub session_id: String,
    /// `AC…`.
    pub account_sid: String,
    /// The parent call's SID, `""` when none.
    pub parent_call_sid: String,
    /// `CA…`.
    pub call_sid: String,
    /// Caller.
    pub from: String,
    /// Called.
    pub to: String,
    /// The number that forwarded the call, `""` when none.
    pub forwarded_from: String,
    /// `PSTN`, `SIP` or `CLIENT`.
    pub call_type: String,
    /// Caller ID name, `""` when none.
    pub caller_name: String,
    /// `inbound`, `outbound-api`, …
    pub direction: String,
    /// As Twilio's example spells it: upper case (`RINGING`, `IN-PROGRESS`).
    pub call_status: String,
    /// `<Parameter>`s, in document order.
    #[serde(serialize_with = "ordered_map")]
    pub custom_parameters: Vec<(String, String)>,
}

fn ordered_map<S: serde::Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// A message Twilio sends the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ToApp {
    /// First, once the socket is up.
    Setup(Box<Setup>),
    /// What the caller said: the whole utterance with `last: true` (partials before it with
    /// `last: false` under `partialPrompts`).
    Prompt {
        /// The words.
        voice_prompt: String,
        /// The recognizer's language.
        lang: String,
        /// Whether the utterance is complete.
        last: bool,
    },
    /// A key the caller pressed (under `dtmfDetection`).
    Dtmf {
        /// `0`–`9`, `*` or `#`.
        digit: String,
    },
    /// The caller cut the agent's speech short.
    Interrupt {
        /// What the caller heard of it.
        utterance_until_interrupt: String,
        /// How long it had played.
        duration_until_interrupt_ms: u64,
    },
    /// An app message Twilio could not use.
    Error {
        /// Why, in Twilio's words.
        description: String,
    },
}

impl ToApp {
    /// The JSON text sent.
    pub fn to_json(&self) -> String {
        // Plain strings and numbers: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The `error` Twilio answers an unusable message with.
    pub fn invalid(raw: &str) -> ToApp {
        ToApp::Error {
            description: format!("Invalid message received: {raw}"),
        }
    }
}

/// A message the app sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromApp {
    /// A token of the agent's speech (empty ones included: apps end a reply with
    /// `{"token":"","last":true}`).
    Text {
        /// The text, spaces kept: Twilio joins tokens as they come.
        token: String,
        /// The talk cycle's last token.
        last: bool,
        /// Its language, over the session's.
        lang: Option<String>,
        /// Overrides `interruptible` for this speech.
        interruptible: Option<bool>,
        /// Overrides `preemptible` for this speech.
        preemptible: Option<bool>,
    },
    /// Play audio from a URL.
    Play {
        /// The URL.
        source: String,
        /// Times to play it (`loop: 0` is [`PLAY_LOOP_MAX`]).
        loop_count: u32,
        /// Whether the next talk cycle stops it.
        preemptible: Option<bool>,
        /// Overrides `interruptible` for it.
        interruptible: Option<bool>,
    },
    /// Digits to key on the call (`w` waits half a second).
    SendDigits {
        /// `0`–`9`, `*`, `#`, `w`.
        digits: String,
    },
    /// Switch the languages.
    Language {
        /// Speech synthesis.
        tts_language: Option<String>,
        /// Recognition.
        transcription_language: Option<String>,
    },
    /// End the session; the `<Connect action>` gets `HandoffData`.
    End {
        /// Passed on as written.
        handoff_data: Option<String>,
    },
}

/// Why an app message cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppMessageError {
    /// Not a JSON object with a known `type`: counts towards [`MALFORMED_LIMIT`].
    #[error("unidentified message: {0}")]
    Unidentified(String),
    /// A known `type` whose fields break Twilio's rules.
    #[error("{kind}: {reason}")]
    Invalid {
        /// The `type`.
        kind: &'static str,
        /// The rule broken.
        reason: String,
    },
}

impl AppMessageError {
    /// Whether the message counts towards closing the socket.
    pub fn unidentified(&self) -> bool {
        matches!(self, AppMessageError::Unidentified(_))
    }
}

/// Parses and checks one app message.
pub fn parse_app_message(text: &str) -> Result<FromApp, AppMessageError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| AppMessageError::Unidentified(format!("not JSON ({e})")))?;
    let Value::Object(obj) = value else {
        return Err(AppMessageError::Unidentified("not a JSON object".into()));
    };
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(AppMessageError::Unidentified("type is not a string".into())),
        None => return Err(AppMessageError::Unidentified("no type".into())),
    };
    let kind = match kind {
        "text" => "text",
        "play" => "play",
        "sendDigits" => "sendDigits",
        "language" => "language",
        "end" => "end",
        other => {
            return Err(AppMessageError::Unidentified(format!(
                "unknown type {other:?}"
            )));
        }
    };
    let fields = Fields { obj: &obj, kind };
    match kind {
        "text" => text_message(&fields),
        "play" => play_message(&fields),
        "sendDigits" => send_digits(&fields),
        "language" => language_message(&fields),
        _ => Ok(FromApp::End {
            handoff_data: fields.string("handoffData")?,
        }),
    }
}

fn text_message(f: &Fields<'_>) -> Result<FromApp, AppMessageError> {
    Ok(FromApp::Text {
        token: f.required_string("token")?,
        last: f.boolean("last")?.unwrap_or(false),
        lang: f.string("lang")?,
        interruptible: f.boolean("interruptible")?,
        preemptible: f.boolean("preemptible")?,
    })
}

fn play_message(f: &Fields<'_>) -> Result<FromApp, AppMessageError> {
    let source = f.required_string("source")?;
    let url = url_scheme(&source);
    if !matches!(url.as_deref(), Some("http" | "https")) {
        return Err(f.invalid(format!("source {source:?} is not an http(s) URL")));
    }
    let loop_count = match f.obj.get("loop") {
        None | Some(Value::Null) => 1,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => PLAY_LOOP_MAX,
            Some(n) if n <= u64::from(PLAY_LOOP_MAX) => n as u32,
            _ => {
                return Err(f.invalid(format!("loop {n} is not 0 to {PLAY_LOOP_MAX}")));
            }
        },
        Some(other) => return Err(f.invalid(format!("loop {other} is not a number"))),
    };
    Ok(FromApp::Play {
        source,
        loop_count,
        preemptible: f.boolean("preemptible")?,
        interruptible: f.boolean("interruptible")?,
    })
}

fn send_digits(f: &Fields<'_>) -> Result<FromApp, AppMessageError> {
    let digits = f.required_string("digits")?;
    if digits.is_empty() {
        return Err(f.invalid("digits is empty".into()));
    }
    if let Some(c) = digits
        .chars()
        .find(|c| !matches!(c, '0'..='9' | '*' | '#' | 'w'))
    {
        return Err(f.invalid(format!(
            "digits {digits:?} holds {c:?}: only 0-9, *, # and w"
        )));
    }
    Ok(FromApp::SendDigits { digits })
}

fn language_message(f: &Fields<'_>) -> Result<FromApp, AppMessageError> {
    let tts_language = f.string("ttsLanguage")?;
    let transcription_language = f.string("transcriptionLanguage")?;
    if tts_language.is_none() && transcription_language.is_none() {
        return Err(f.invalid("needs ttsLanguage or transcriptionLanguage".into()));
    }
    Ok(FromApp::Language {
        tts_language,
        transcription_language,
    })
}

/// The scheme of an absolute URL, lower case.
fn url_scheme(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let valid = !rest.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// A message's fields, read with Twilio's rules.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    kind: &'static str,
}

impl Fields<'_> {
    fn invalid(&self, reason: String) -> AppMessageError {
        AppMessageError::Invalid {
            kind: self.kind,
            reason,
        }
    }

    /// A string field that may be absent (or null).
    fn string(&self, key: &str) -> Result<Option<String>, AppMessageError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.invalid(format!("{key} {other} is not a string"))),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, AppMessageError> {
        self.string(key)?
            .ok_or_else(|| self.invalid(format!("{key} is required")))
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, AppMessageError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.invalid(format!("{key} {other} is not true or false"))),
        }
    }
}

#[cfg(test)]
mod tests;
