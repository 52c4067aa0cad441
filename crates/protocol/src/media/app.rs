//! Parsing and validating the messages an app sends on a bidirectional stream, as
//! strictly as Twilio's warning 31951 page describes: invalid JSON, an unknown event,
//! missing or extra fields, or a wrong `streamSid` each make Twilio ignore the message.
//!
//! This runs for every app media message, so it is a single pass over the text with
//! hand-written serde visitors: strings are borrowed from the input unless they contain
//! escapes, unknown values are skipped without being built, and the base64 payload is
//! decoded once straight into the result.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::json::JStr;
use super::{AppMessage, Violation};

/// How to treat fields a message should not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// Extra fields are a violation, as Twilio's 31951 page lists ("Missing or extra
    /// field in message"; "included unexpected fields").
    #[default]
    Strict,
    /// Extra fields are ignored. For diagnosing apps whose extra fields (e.g. a
    /// `media.track` on outbound audio, seen in several public apps) may or may not be
    /// tolerated by real Twilio — that part of Twilio's behaviour is unverified.
    Lenient,
}

/// Standard-alphabet base64 that accepts the payload with or without `=` padding and
/// with non-zero trailing bits. Twilio's decoder tolerance is undocumented; rejecting
/// only what is not base64 at all avoids flagging apps that real Twilio plays.
const PAYLOAD_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Parse and validate an app→Twilio text message against the stream's sid, with
/// [`Strictness::Strict`].
///
/// Rules: the text must be a JSON object with a string `event` of `media`, `mark` or
/// `clear` and a string `streamSid` equal to `stream_sid`; `media` needs an object
/// `media` with a string `payload` that is base64; `mark` needs an object `mark` with a
/// string `name`; no other fields. An empty payload (`""`) is accepted as zero bytes of
/// audio: it is valid base64 and Twilio documents no minimum length. If a key repeats,
/// its last value counts (as in common JSON readers).
///
/// # Errors
///
/// The [`Violation`] that makes Twilio ignore the message (warning 31951).
pub fn parse_app_message(text: &str, stream_sid: &str) -> Result<AppMessage, Violation> {
    parse_app_message_with(text, stream_sid, Strictness::Strict)
}

/// [`parse_app_message`] with a chosen treatment of extra fields.
///
/// # Errors
///
/// As [`parse_app_message`]; with [`Strictness::Lenient`] never
/// [`Violation::UnexpectedField`].
pub fn parse_app_message_with(
    text: &str,
    stream_sid: &str,
    strictness: Strictness,
) -> Result<AppMessage, Violation> {
    let raw = match serde_json::from_str::<Top<'_>>(text) {
        Ok(Top::Object(raw)) => raw,
        Ok(Top::NotObject) => return Err(Violation::NotObject),
        Err(e) => return Err(Violation::NotJson(e.to_string())),
    };
    let event = match raw.event {
        None => return Err(Violation::MissingEvent),
        Some(JStr::Other) => return Err(Violation::WrongType("event")),
        Some(JStr::Str(event)) => event,
    };
    let kind = match &*event {
        "media" => Kind::Media,
        "mark" => Kind::Mark,
        "clear" => Kind::Clear,
        _ => return Err(Violation::UnknownEvent(event.into_owned())),
    };
    match raw.stream_sid {
        None => return Err(Violation::MissingField("streamSid")),
        Some(JStr::Other) => return Err(Violation::WrongType("streamSid")),
        Some(JStr::Str(got)) if got != stream_sid => {
            return Err(Violation::WrongStreamSid {
                got: got.into_owned(),
                expected: stream_sid.to_owned(),
            });
        }
        Some(JStr::Str(_)) => {}
    }
    if strictness == Strictness::Strict {
        let extra = raw
            .unknown
            .or_else(|| (raw.media.is_some() && kind != Kind::Media).then(|| "media".to_owned()))
            .or_else(|| (raw.mark.is_some() && kind != Kind::Mark).then(|| "mark".to_owned()));
        if let Some(extra) = extra {
            return Err(Violation::UnexpectedField(extra));
        }
    }
    match kind {
        Kind::Clear => Ok(AppMessage::Clear),
        Kind::Media => {
            let payload = inner_string(raw.media, strictness, "media", "media.payload")?;
            PAYLOAD_B64
                .decode(payload.as_bytes())
                .map(|payload| AppMessage::Media { payload })
                .map_err(|e| Violation::BadBase64(e.to_string()))
        }
        Kind::Mark => {
            let name = inner_string(raw.mark, strictness, "mark", "mark.name")?;
            Ok(AppMessage::Mark {
                name: name.into_owned(),
            })
        }
    }
}

/// Pull the one string field out of a `media` / `mark` object, checking its shape.
fn inner_string<'a>(
    obj: Option<Inner<'a>>,
    strictness: Strictness,
    obj_name: &'static str,
    field_name: &'static str,
) -> Result<Cow<'a, str>, Violation> {
    match obj {
        None => Err(Violation::MissingField(obj_name)),
        Some(Inner::NotObject) => Err(Violation::WrongType(obj_name)),
        Some(Inner::Object { value, unknown }) => {
            if let (Some(extra), Strictness::Strict) = (unknown, strictness) {
                return Err(Violation::UnexpectedField(format!("{obj_name}.{extra}")));
            }
            match value {
                None => Err(Violation::MissingField(field_name)),
                Some(JStr::Other) => Err(Violation::WrongType(field_name)),
                Some(JStr::Str(s)) => Ok(s),
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Media,
    Mark,
    Clear,
}

/// The top level of an app message, or a marker that it was not an object.
enum Top<'a> {
    Object(RawMessage<'a>),
    NotObject,
}

struct RawMessage<'a> {
    event: Option<JStr<'a>>,
    stream_sid: Option<JStr<'a>>,
    media: Option<Inner<'a>>,
    mark: Option<Inner<'a>>,
    /// First key that no app message has at all.
    unknown: Option<String>,
}

/// A `media` or `mark` object: its one expected string field plus the first other key.
enum Inner<'a> {
    Object {
        value: Option<JStr<'a>>,
        unknown: Option<String>,
    },
    NotObject,
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawMessage {
            event: None,
            stream_sid: None,
            media: None,
            mark: None,
            unknown: None,
        };
        while let Some(key) = map.next_key::<JStr<'de>>()? {
            let JStr::Str(key) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match &*key {
                "event" => raw.event = Some(map.next_value()?),
                "streamSid" => raw.stream_sid = Some(map.next_value()?),
                "media" => raw.media = Some(map.next_value_seed(InnerSeed("payload"))?),
                "mark" => raw.mark = Some(map.next_value_seed(InnerSeed("name"))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    raw.unknown.get_or_insert_with(|| key.into_owned());
                }
            }
        }
        Ok(Top::Object(raw))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }
}

/// Deserializes a `media`/`mark` value, looking for the named string field.
struct InnerSeed(&'static str);

impl<'de> de::DeserializeSeed<'de> for InnerSeed {
    type Value = Inner<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InnerSeed {
    type Value = Inner<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        let mut unknown = None;
        while let Some(key) = map.next_key::<JStr<'de>>()? {
            match key {
                JStr::Str(key) if key == self.0 => value = Some(map.next_value()?),
                JStr::Str(key) => {
                    map.next_value::<IgnoredAny>()?;
                    unknown.get_or_insert_with(|| key.into_owned());
                }
                JStr::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Inner::Object { value, unknown })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Inner::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Inner::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Inner::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Inner::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Inner::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Inner::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Inner::NotObject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "MZ00000000000000000000000000000001";

    #[test]
    fn escaped_payload_is_unescaped_before_decoding() {
        // PHP's json_encode escapes '/' as "\/" by default.
        let text =
            format!(r#"{{"event":"media","streamSid":"{SID}","media":{{"payload":"\/w=="}}}}"#);
        assert_eq!(
            parse_app_message(&text, SID),
            Ok(AppMessage::Media {
                payload: vec![0xff]
            })
        );
    }

    #[test]
    fn padding_is_optional() {
        let text = format!(r#"{{"event":"media","streamSid":"{SID}","media":{{"payload":"/w"}}}}"#);
        assert_eq!(
            parse_app_message(&text, SID),
            Ok(AppMessage::Media {
                payload: vec![0xff]
            })
        );
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let text = format!(
            r#"{{"event":"clear","event":"mark","streamSid":"{SID}","mark":{{"name":"a"}}}}"#
        );
        assert_eq!(
            parse_app_message(&text, SID),
            Ok(AppMessage::Mark { name: "a".into() })
        );
    }

    #[test]
    fn null_stream_sid_is_wrong_type() {
        let text = r#"{"event":"clear","streamSid":null}"#;
        assert_eq!(
            parse_app_message(text, SID),
            Err(Violation::WrongType("streamSid"))
        );
    }
}
