//! Builders for Media Streams messages: Twilio→app messages with the exact key order of
//! captured real traffic, and the app→Twilio messages a reference app sends.
//!
//! Key orders: `start`, `media` and `stop` follow a 2019 capture of real traffic
//! (`stop` puts `streamSid` *before* the `stop` object, unlike Twilio's doc example);
//! `dtmf` and `mark` follow Twilio's documentation examples (no capture found).

use super::json::{push_num_str, push_str, push_u64};
use super::{StreamIds, Track};

/// `{"event":"connected","protocol":"Call","version":"1.0.0"}` — no sequence number and
/// no stream SID. (A 2019 capture showed version `0.2.0`; current docs show `1.0.0`.)
pub fn connected() -> String {
    r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_owned()
}

/// The `start` message. `customParameters` is always present (`{}` when empty); when a
/// name repeats, only its last value is kept (the value a JSON object reader would see).
pub fn start(
    seq: u64,
    ids: &StreamIds,
    tracks: &[Track],
    custom_parameters: &[(String, String)],
) -> String {
    let mut out = String::with_capacity(
        320 + custom_parameters
            .iter()
            .map(|(n, v)| n.len() + v.len() + 6)
            .sum::<usize>(),
    );
    out.push_str(r#"{"event":"start","sequenceNumber":"#);
    push_num_str(&mut out, seq);
    out.push_str(r#","start":{"accountSid":"#);
    push_str(&mut out, &ids.account_sid);
    out.push_str(r#","streamSid":"#);
    push_str(&mut out, &ids.stream_sid);
    out.push_str(r#","callSid":"#);
    push_str(&mut out, &ids.call_sid);
    out.push_str(r#","tracks":["#);
    for (i, track) in tracks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, track.as_str());
    }
    out.push_str(
        r#"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"#,
    );
    let mut first = true;
    for (i, (name, value)) in custom_parameters.iter().enumerate() {
        if custom_parameters[i + 1..]
            .iter()
            .any(|(later, _)| later == name)
        {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_str(&mut out, name);
        out.push(':');
        push_str(&mut out, value);
    }
    out.push_str(r#"}},"streamSid":"#);
    push_str(&mut out, &ids.stream_sid);
    out.push('}');
    out
}

/// A Twilio→app `media` message:
/// `{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"102","payload":"…"},"streamSid":"MZ…"}`.
pub fn media(
    seq: u64,
    track: Track,
    chunk: u64,
    timestamp_ms: u64,
    payload_b64: &str,
    stream_sid: &str,
) -> String {
    let mut out = String::with_capacity(140 + payload_b64.len() + stream_sid.len());
    write_media(
        &mut out,
        seq,
        track,
        chunk,
        timestamp_ms,
        payload_b64,
        stream_sid,
    );
    out
}

/// Same as [`media`] but appends to `buf` (the caller clears it between messages). Does
/// not allocate when `buf` has room: counters are formatted digit by digit and strings
/// are copied with escaping done in place.
pub fn write_media(
    buf: &mut String,
    seq: u64,
    track: Track,
    chunk: u64,
    timestamp_ms: u64,
    payload_b64: &str,
    stream_sid: &str,
) {
    buf.push_str(r#"{"event":"media","sequenceNumber":""#);
    push_u64(buf, seq);
    buf.push_str(match track {
        Track::Inbound => r#"","media":{"track":"inbound","chunk":""#,
        Track::Outbound => r#"","media":{"track":"outbound","chunk":""#,
    });
    push_u64(buf, chunk);
    buf.push_str(r#"","timestamp":""#);
    push_u64(buf, timestamp_ms);
    buf.push_str(r#"","payload":"#);
    push_str(buf, payload_b64);
    buf.push_str(r#"},"streamSid":"#);
    push_str(buf, stream_sid);
    buf.push('}');
}

/// Same as [`write_media`] for a payload and SID that need no JSON escaping (base64 and a
/// dialtone SID never do: check a SID once with [`needs_no_escape`]): the strings are
/// copied without a scan. This is the per-frame work of every stream.
#[allow(clippy::too_many_arguments)]
pub fn write_media_plain(
    buf: &mut String,
    seq: u64,
    track: Track,
    chunk: u64,
    timestamp_ms: u64,
    payload_b64: &str,
    stream_sid: &str,
) {
    debug_assert!(needs_no_escape(payload_b64) && needs_no_escape(stream_sid));
    buf.push_str(r#"{"event":"media","sequenceNumber":""#);
    push_u64(buf, seq);
    buf.push_str(match track {
        Track::Inbound => r#"","media":{"track":"inbound","chunk":""#,
        Track::Outbound => r#"","media":{"track":"outbound","chunk":""#,
    });
    push_u64(buf, chunk);
    buf.push_str(r#"","timestamp":""#);
    push_u64(buf, timestamp_ms);
    buf.push_str(r#"","payload":""#);
    buf.push_str(payload_b64);
    buf.push_str(r#""},"streamSid":""#);
    buf.push_str(stream_sid);
    buf.push_str(r#""}"#);
}

/// True when `s` goes into a JSON string as it is (no quote, backslash or control byte).
pub fn needs_no_escape(s: &str) -> bool {
    !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// A `dtmf` message; `track` is always `inbound_track`:
/// `{"event":"dtmf","streamSid":"MZ…","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}`.
pub fn dtmf(seq: u64, stream_sid: &str, digit: char) -> String {
    let mut out = String::with_capacity(120 + stream_sid.len());
    out.push_str(r#"{"event":"dtmf","streamSid":"#);
    push_str(&mut out, stream_sid);
    out.push_str(r#","sequenceNumber":"#);
    push_num_str(&mut out, seq);
    out.push_str(r#","dtmf":{"track":"inbound_track","digit":"#);
    let mut tmp = [0u8; 4];
    push_str(&mut out, digit.encode_utf8(&mut tmp));
    out.push_str("}}");
    out
}

/// A `mark` echo: `{"event":"mark","sequenceNumber":"4","streamSid":"MZ…","mark":{"name":"…"}}`.
pub fn mark(seq: u64, stream_sid: &str, name: &str) -> String {
    let mut out = String::with_capacity(80 + stream_sid.len() + name.len());
    out.push_str(r#"{"event":"mark","sequenceNumber":"#);
    push_num_str(&mut out, seq);
    out.push_str(r#","streamSid":"#);
    push_str(&mut out, stream_sid);
    out.push_str(r#","mark":{"name":"#);
    push_str(&mut out, name);
    out.push_str("}}");
    out
}

/// A `stop` message:
/// `{"event":"stop","sequenceNumber":"…","streamSid":"MZ…","stop":{"accountSid":"AC…","callSid":"CA…"}}`.
pub fn stop(seq: u64, ids: &StreamIds) -> String {
    let mut out = String::with_capacity(160);
    out.push_str(r#"{"event":"stop","sequenceNumber":"#);
    push_num_str(&mut out, seq);
    out.push_str(r#","streamSid":"#);
    push_str(&mut out, &ids.stream_sid);
    out.push_str(r#","stop":{"accountSid":"#);
    push_str(&mut out, &ids.account_sid);
    out.push_str(r#","callSid":"#);
    push_str(&mut out, &ids.call_sid);
    out.push_str("}}");
    out
}

/// App→Twilio audio: `{"event":"media","streamSid":"MZ…","media":{"payload":"…"}}`.
pub fn app_media(stream_sid: &str, payload_b64: &str) -> String {
    let mut out = String::with_capacity(64 + stream_sid.len() + payload_b64.len());
    out.push_str(r#"{"event":"media","streamSid":"#);
    push_str(&mut out, stream_sid);
    out.push_str(r#","media":{"payload":"#);
    push_str(&mut out, payload_b64);
    out.push_str("}}");
    out
}

/// App→Twilio mark: `{"event":"mark","streamSid":"MZ…","mark":{"name":"…"}}`.
pub fn app_mark(stream_sid: &str, name: &str) -> String {
    let mut out = String::with_capacity(64 + stream_sid.len() + name.len());
    out.push_str(r#"{"event":"mark","streamSid":"#);
    push_str(&mut out, stream_sid);
    out.push_str(r#","mark":{"name":"#);
    push_str(&mut out, name);
    out.push_str("}}");
    out
}

/// App→Twilio clear: `{"event":"clear","streamSid":"MZ…"}`.
pub fn app_clear(stream_sid: &str) -> String {
    let mut out = String::with_capacity(40 + stream_sid.len());
    out.push_str(r#"{"event":"clear","streamSid":"#);
    push_str(&mut out, stream_sid);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_media_is_byte_for_byte_the_escaping_builder() {
        let sid = "MZ0123456789abcdef0123456789abcdef";
        for (seq, track, chunk, ts, payload) in [
            (2, Track::Inbound, 1, 0, "/////w=="),
            (u64::MAX, Track::Outbound, 0, 7, ""),
            (1001, Track::Inbound, 1000, 19_980, "AAEC+/8="),
        ] {
            let (mut a, mut b) = (String::new(), String::new());
            write_media(&mut a, seq, track, chunk, ts, payload, sid);
            write_media_plain(&mut b, seq, track, chunk, ts, payload, sid);
            assert_eq!(a, b);
        }
        assert!(needs_no_escape(sid));
        assert!(!needs_no_escape("a\"b") && !needs_no_escape("a\\b") && !needs_no_escape("\n"));
    }
}
