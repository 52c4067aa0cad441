//! Small JSON helpers shared by the Media Streams builders and parsers: string
//! escaping without allocation, and a value type that tells a string from anything else
//! so parsers can report a wrong type instead of failing the whole message.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Append `s` as a JSON string literal (with quotes) to `out`.
///
/// Escapes exactly what serde_json escapes: `"`, `\`, and control characters below
/// U+0020 (short forms `\b \f \n \r \t`, otherwise `\u00xx`). Everything else, non-ASCII
/// included, is written as raw UTF-8. How Twilio's own encoder escapes is unknown; any
/// JSON parser reads both forms the same.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    // The common case (base64 payloads, SIDs, names) needs no escape: one branch-free scan
    // the compiler vectorises, then one copy, instead of a match per byte.
    if !bytes.iter().fold(false, |bad, &b| {
        bad | (b == b'"') | (b == b'\\') | (b < 0x20)
    }) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Runs between escapes are valid UTF-8 because escapes are all ASCII bytes.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Append `n` as a quoted decimal string (Twilio sends counters as strings).
pub(crate) fn push_num_str(out: &mut String, n: u64) {
    out.push('"');
    push_u64(out, n);
    out.push('"');
}

/// Append `n` in decimal without going through `fmt` (hot path, no allocation).
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // n % 10 < 10, so the cast cannot truncate.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// A JSON value that is either a string (borrowed from the input when it has no
/// escapes) or something else, which parsers report as a wrong type.
pub(crate) enum JStr<'a> {
    /// The value was a JSON string.
    Str(Cow<'a, str>),
    /// The value was a number, bool, null, array or object.
    Other,
}

impl<'de> Deserialize<'de> for JStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JStrVisitor)
    }
}

struct JStrVisitor;

impl<'de> Visitor<'de> for JStrVisitor {
    type Value = JStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JStr::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JStr::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(JStr::Str(Cow::Owned(v)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JStr::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JStr::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JStr::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JStr::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JStr::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JStr::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JStr::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JStr::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_serde_json() {
        for s in [
            "",
            "plain",
            "q\"b\\s",
            "\u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}",
            "é😀\u{2028}/",
        ] {
            let mut out = String::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).expect("serialises"), "{s:?}");
        }
    }

    #[test]
    fn numbers() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }
}
