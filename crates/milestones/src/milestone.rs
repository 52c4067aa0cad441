//! One milestone record: its JSON shape, the aliases accepted for each field, and
//! parsing of a single record, a request body, or one line of a log.

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest raw text kept with a rejected record: enough to recognise it, bounded so a
/// multi-megabyte garbage line costs no more than any other.
pub const RAW_KEEP: usize = 200;

/// Epoch-millisecond timestamps below this (1973-03-03) are refused as "seconds, not
/// milliseconds", the usual mistake: 1.7e9 is now in seconds, 1.7e12 in milliseconds.
const MIN_EPOCH_MS: f64 = 1e11;

/// Keys accepted for each field, first match wins.
const CALL_SID_KEYS: [&str; 3] = ["call_sid", "callSid", "CallSid"];
const NAME_KEYS: [&str; 2] = ["name", "event"];
const TS_KEYS: [&str; 2] = ["ts", "timestamp"];

/// A named point (and/or duration) an app reports for a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Milestone {
    /// `CA…` of the call; empty for records that carry only a duration and no call.
    pub call_sid: String,
    /// Dotted event name, e.g. `vad.speech_end`, `transcript.final`, `transcription_job`.
    pub name: String,
    /// When it happened, Unix epoch milliseconds (wall clock of the app's machine).
    pub ts_ms: Option<i64>,
    /// How long it took, in milliseconds, for records that measure a span.
    pub duration_ms: Option<f64>,
    /// Text attached to it, e.g. a transcript.
    pub text: Option<String>,
}

/// Why a record was refused. Messages are short; the caller adds the line number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MilestoneError {
    /// The text is not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A required field is absent (or empty).
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field has the wrong type or an impossible value.
    #[error("{field}: {reason}")]
    Field {
        /// The field as named in the schema (`ts`, `duration_ms`, …).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither a timestamp nor a duration: nothing to measure.
    #[error("needs ts or duration_ms")]
    NoTime,
}

/// A record of a request body that could not be used, with where it was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadRecord {
    /// 1-based position: the element of a JSON array, or the line of JSON lines.
    pub index: usize,
    /// Why it was refused.
    pub reason: String,
    /// The record as sent, cut to [`RAW_KEEP`] characters.
    pub raw: String,
}

/// Parses one JSON object (one line of a log, or one POSTed record).
pub fn parse_line(line: &str) -> Result<Milestone, MilestoneError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| MilestoneError::NotJson(e.to_string()))?;
    from_value(&value)
}

/// Parses a request body: one JSON object, a JSON array of objects, or JSON lines.
/// Good records are returned in order; each bad one is reported, never fatal.
pub fn parse_body(body: &str) -> (Vec<Milestone>, Vec<BadRecord>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let trimmed = body.trim();
    if trimmed.starts_with('[') {
        match serde_json::from_str::<Vec<Value>>(trimmed) {
            Ok(values) => {
                for (i, value) in values.iter().enumerate() {
                    match from_value(value) {
                        Ok(m) => good.push(m),
                        Err(e) => bad.push(BadRecord {
                            index: i + 1,
                            reason: e.to_string(),
                            raw: truncate(&value.to_string()),
                        }),
                    }
                }
            }
            Err(e) => bad.push(BadRecord {
                index: 1,
                reason: MilestoneError::NotJson(e.to_string()).to_string(),
                raw: truncate(trimmed),
            }),
        }
        return (good, bad);
    }
    // A single object may be pretty-printed over several lines: try it whole first.
    if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(trimmed) {
        match from_value(&value) {
            Ok(m) => good.push(m),
            Err(e) => bad.push(BadRecord {
                index: 1,
                reason: e.to_string(),
                raw: truncate(trimmed),
            }),
        }
        return (good, bad);
    }
    for (i, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(m) => good.push(m),
            Err(e) => bad.push(BadRecord {
                index: i + 1,
                reason: e.to_string(),
                raw: truncate(line),
            }),
        }
    }
    (good, bad)
}

/// Builds a milestone from a parsed JSON value, applying the schema's rules.
pub fn from_value(value: &Value) -> Result<Milestone, MilestoneError> {
    let obj = value.as_object().ok_or(MilestoneError::NotObject)?;
    let name = string_field(obj, &NAME_KEYS, "name")?
        .filter(|n| !n.is_empty())
        .ok_or(MilestoneError::Missing("name"))?;
    let call_sid = string_field(obj, &CALL_SID_KEYS, "call_sid")?.unwrap_or_default();
    let ts_ms = match first(obj, &TS_KEYS) {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_ts(v)?),
    };
    let duration_ms = match obj.get("duration_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_duration(v)?),
    };
    let text = string_field(obj, &["text"], "text")?;
    if ts_ms.is_none() && duration_ms.is_none() {
        return Err(MilestoneError::NoTime);
    }
    // A point in time means nothing without its call; a bare duration still counts.
    if call_sid.is_empty() && duration_ms.is_none() {
        return Err(MilestoneError::Missing("call_sid"));
    }
    Ok(Milestone {
        call_sid,
        name,
        ts_ms,
        duration_ms,
        text,
    })
}

/// Formats epoch milliseconds as RFC 3339 (UTC, millisecond precision), or the
/// number itself when it is outside the representable range.
pub fn format_ts(ts_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ts_ms.to_string())
}

fn first<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| obj.get(*k))
}

/// The first present key of `keys` as a string; `null` counts as absent.
fn string_field(
    obj: &Map<String, Value>,
    keys: &[&str],
    field: &'static str,
) -> Result<Option<String>, MilestoneError> {
    match first(obj, keys) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(MilestoneError::Field {
            field,
            reason: format!("expected a string, got {}", kind(other)),
        }),
    }
}

/// `ts`: an RFC 3339 string (any offset, any fraction) or epoch milliseconds.
fn parse_ts(value: &Value) -> Result<i64, MilestoneError> {
    let bad = |reason: String| MilestoneError::Field {
        field: "ts",
        reason,
    };
    match value {
        Value::String(s) => {
            let t = OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|e| bad(format!("not RFC 3339 ({e}): {s:?}")))?;
            // Round to the nearest millisecond, the precision of every latency.
            let ns = t.unix_timestamp_nanos();
            Ok(((ns + 500_000).div_euclid(1_000_000)) as i64)
        }
        Value::Number(n) => {
            let ms = n.as_f64().unwrap_or(f64::NAN);
            if !ms.is_finite() || ms > 1e15 {
                return Err(bad(format!("{n} is not a time")));
            }
            if ms < MIN_EPOCH_MS {
                return Err(bad(format!(
                    "{n} looks like seconds; epoch milliseconds expected"
                )));
            }
            Ok(ms.round() as i64)
        }
        other => Err(bad(format!(
            "expected an RFC 3339 string or epoch milliseconds, got {}",
            kind(other)
        ))),
    }
}

/// `duration_ms`: a finite, non-negative number.
fn parse_duration(value: &Value) -> Result<f64, MilestoneError> {
    let bad = |reason: String| MilestoneError::Field {
        field: "duration_ms",
        reason,
    };
    let Value::Number(n) = value else {
        return Err(bad(format!("expected a number, got {}", kind(value))));
    };
    match n.as_f64() {
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(ms),
        _ => Err(bad(format!("{n} is not a duration"))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `text` cut to [`RAW_KEEP`] characters (on a character boundary), with `…` if cut.
pub(crate) fn truncate(text: &str) -> String {
    match text.char_indices().nth(RAW_KEEP) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_732_460_000_000; // 2024-11-24T14:53:20Z

    #[test]
    fn canonical_and_alias_fields() {
        let m = parse_line(
            r#"{"call_sid":"CA1","name":"vad.speech_end","ts":1732460000123,"text":null}"#,
        )
        .expect("valid");
        assert_eq!(
            m,
            Milestone {
                call_sid: "CA1".into(),
                name: "vad.speech_end".into(),
                ts_ms: Some(T0 + 123),
                duration_ms: None,
                text: None
            }
        );
        for line in [
            r#"{"callSid":"CA1","event":"vad.speech_end","ts":"2024-11-24T14:53:20.123Z"}"#,
            r#"{"CallSid":"CA1","event":"vad.speech_end","ts":"2024-11-24T15:53:20.1234+01:00"}"#,
            r#"{"CallSid":"CA1","name":"vad.speech_end","timestamp":1732460000123.4,"extra":[1]}"#,
        ] {
            assert_eq!(parse_line(line), Ok(m.clone()), "{line}");
        }
    }

    #[test]
    fn duration_only_records_need_no_call() {
        let m = parse_line(r#"{"name":"transcription_job","duration_ms":1250}"#).expect("ok");
        assert_eq!((m.call_sid.as_str(), m.duration_ms), ("", Some(1250.0)));
    }

    #[test]
    fn bad_records_say_why() {
        let cases = [
            ("{not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"call_sid":"CA1","ts":1732460000000}"#, "missing name"),
            (r#"{"name":"x","ts":1732460000000}"#, "missing call_sid"),
            (
                r#"{"call_sid":"CA1","name":"x"}"#,
                "needs ts or duration_ms",
            ),
            (
                r#"{"call_sid":"CA1","name":"x","ts":1732460000}"#,
                "looks like seconds",
            ),
            (
                r#"{"call_sid":"CA1","name":"x","ts":"yesterday"}"#,
                "ts: not RFC 3339",
            ),
            (r#"{"call_sid":"CA1","name":"x","ts":true}"#, "ts: expected"),
            (r#"{"name":"x","duration_ms":-5}"#, "duration_ms: -5 is not"),
            (
                r#"{"name":"x","duration_ms":"5"}"#,
                "duration_ms: expected a number",
            ),
            (
                r#"{"call_sid":7,"name":"x","duration_ms":5}"#,
                "call_sid: expected a string",
            ),
        ];
        for (line, want) in cases {
            let err = parse_line(line).expect_err(line).to_string();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn bodies_object_array_and_lines() {
        let one = r#"{"call_sid":"CA1","name":"a","ts":1732460000000}"#;
        let pretty = "{\n  \"call_sid\": \"CA1\",\n  \"name\": \"a\",\n  \"ts\": 1732460000000\n}";
        for body in [one, pretty] {
            let (good, bad) = parse_body(body);
            assert_eq!((good.len(), bad.len()), (1, 0), "{body}");
        }
        let array = format!(r#"[{one}, {{"name": 1}}, {one}]"#);
        let (good, bad) = parse_body(&array);
        assert_eq!(good.len(), 2);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].index, 2);
        let lines = format!("{one}\n\n{{oops\n{one}\n");
        let (good, bad) = parse_body(&lines);
        assert_eq!(good.len(), 2);
        assert_eq!((bad[0].index, bad[0].raw.as_str()), (3, "{oops"));
        let (good, bad) = parse_body("[{");
        assert!(good.is_empty());
        assert!(bad[0].reason.starts_with("not JSON"));
    }

    #[test]
    fn raw_text_is_bounded() {
        let long = "é".repeat(1000);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), RAW_KEEP + 1);
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(format_ts(T0 + 5), "2024-11-24T14:53:20.005Z");
    }
}
