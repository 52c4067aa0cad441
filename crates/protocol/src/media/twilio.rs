//! Parsing Twilio→app Media Streams messages the way an app does: used by the
//! reference bot and by tests that check dialtone's own output.
//!
//! It is deliberately picky about the things apps rely on (counters must be decimal
//! strings, the payload must be base64, `start` must carry the stream SID both inside
//! and at the top level) so that a dialtone bug shows up here, and lenient about fields
//! it does not know, as Twilio reserves the right to add them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::{TwilioMessage, Violation};

/// Parse a Twilio→app message.
///
/// # Errors
///
/// A [`Violation`] naming the first problem: not JSON, not an object, unknown event,
/// a missing field, a counter that is not a decimal string, or a payload that is not
/// base64.
pub fn parse_twilio_message(text: &str) -> Result<TwilioMessage, Violation> {
    let env: Envelope = serde_json::from_str(text).map_err(|e| classify(text, &e))?;
    let event = env.event.ok_or(Violation::MissingEvent)?;
    if event == "connected" {
        return Ok(TwilioMessage::Connected {
            protocol: req(env.protocol, "protocol")?,
            version: req(env.version, "version")?,
        });
    }
    let sequence_number = number(
        &req(env.sequence_number, "sequenceNumber")?,
        "sequenceNumber",
    )?;
    let stream_sid = req(env.stream_sid, "streamSid")?;
    match event.as_str() {
        "start" => {
            let start = req(env.start, "start")?;
            let inner_sid = req(start.stream_sid, "start.streamSid")?;
            if inner_sid != stream_sid {
                return Err(Violation::Schema(format!(
                    "start.streamSid {inner_sid} differs from streamSid {stream_sid}"
                )));
            }
            let format = req(start.media_format, "start.mediaFormat")?;
            Ok(TwilioMessage::Start {
                sequence_number,
                stream_sid,
                account_sid: req(start.account_sid, "start.accountSid")?,
                call_sid: req(start.call_sid, "start.callSid")?,
                tracks: req(start.tracks, "start.tracks")?,
                custom_parameters: req(start.custom_parameters, "start.customParameters")?.0,
                media_format: (
                    req(format.encoding, "start.mediaFormat.encoding")?,
                    req(format.sample_rate, "start.mediaFormat.sampleRate")?,
                    req(format.channels, "start.mediaFormat.channels")?,
                ),
            })
        }
        "media" => {
            let media = req(env.media, "media")?;
            let payload = req(media.payload, "media.payload")?;
            Ok(TwilioMessage::Media {
                sequence_number,
                stream_sid,
                track: req(media.track, "media.track")?,
                chunk: number(&req(media.chunk, "media.chunk")?, "media.chunk")?,
                timestamp_ms: number(&req(media.timestamp, "media.timestamp")?, "media.timestamp")?,
                payload: STANDARD
                    .decode(payload.as_bytes())
                    .map_err(|e| Violation::BadBase64(e.to_string()))?,
            })
        }
        "dtmf" => {
            let dtmf = req(env.dtmf, "dtmf")?;
            Ok(TwilioMessage::Dtmf {
                sequence_number,
                stream_sid,
                track: req(dtmf.track, "dtmf.track")?,
                digit: req(dtmf.digit, "dtmf.digit")?,
            })
        }
        "mark" => Ok(TwilioMessage::Mark {
            sequence_number,
            stream_sid,
            name: req(req(env.mark, "mark")?.name, "mark.name")?,
        }),
        "stop" => {
            let stop = req(env.stop, "stop")?;
            Ok(TwilioMessage::Stop {
                sequence_number,
                stream_sid,
                account_sid: req(stop.account_sid, "stop.accountSid")?,
                call_sid: req(stop.call_sid, "stop.callSid")?,
            })
        }
        _ => Err(Violation::UnknownEvent(event)),
    }
}

fn req<T>(value: Option<T>, field: &'static str) -> Result<T, Violation> {
    value.ok_or(Violation::MissingField(field))
}

/// Counters arrive as decimal strings; anything else is a protocol bug.
fn number(s: &str, field: &'static str) -> Result<u64, Violation> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Violation::Schema(format!(
            "{field} \"{s}\" is not a decimal string"
        )));
    }
    s.parse()
        .map_err(|_| Violation::Schema(format!("{field} \"{s}\" is out of range")))
}

fn classify(text: &str, e: &serde_json::Error) -> Violation {
    if e.is_syntax() || e.is_eof() {
        Violation::NotJson(e.to_string())
    } else if !text.trim_start().starts_with('{') {
        Violation::NotObject
    } else {
        Violation::Schema(e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    event: Option<String>,
    sequence_number: Option<String>,
    stream_sid: Option<String>,
    protocol: Option<String>,
    version: Option<String>,
    start: Option<StartBody>,
    media: Option<MediaBody>,
    dtmf: Option<DtmfBody>,
    mark: Option<MarkBody>,
    stop: Option<StopBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    account_sid: Option<String>,
    stream_sid: Option<String>,
    call_sid: Option<String>,
    tracks: Option<Vec<String>>,
    media_format: Option<MediaFormat>,
    custom_parameters: Option<OrderedParams>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormat {
    encoding: Option<String>,
    sample_rate: Option<u32>,
    channels: Option<u32>,
}

#[derive(Deserialize)]
struct MediaBody {
    track: Option<String>,
    chunk: Option<String>,
    timestamp: Option<String>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct DtmfBody {
    track: Option<String>,
    digit: Option<String>,
}

#[derive(Deserialize)]
struct MarkBody {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopBody {
    account_sid: Option<String>,
    call_sid: Option<String>,
}

/// `customParameters` as name/value pairs in message order (serde_json's map would
/// sort them).
struct OrderedParams(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedParams;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(OrderedParams(out))
            }
        }
        d.deserialize_map(V)
    }
}
