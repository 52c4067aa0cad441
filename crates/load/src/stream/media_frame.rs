//! The `media` message written straight into a frame buffer: the JSON is the protocol crate's
//! `media` byte for byte (a test holds them equal), but with no escaping pass over the
//! payload and SID, which are base64 and hex and never need it. This is the per-frame work
//! of the hot path, so it only copies and formats three counters.

/// Appends `{"event":"media","sequenceNumber":"…","media":{"track":"inbound","chunk":"…",
/// "timestamp":"…","payload":"…"},"streamSid":"…"}` to `buf`. `payload_b64` and
/// `stream_sid` must need no JSON escaping (base64 and `MZ` + hex do not).
#[inline]
pub(crate) fn push_inbound_media(
    buf: &mut Vec<u8>,
    seq: u64,
    chunk: u64,
    timestamp_ms: u64,
    payload_b64: &str,
    stream_sid: &str,
) {
    debug_assert!(!payload_b64.contains(['"', '\\']) && !stream_sid.contains(['"', '\\']));
    buf.extend_from_slice(br#"{"event":"media","sequenceNumber":""#);
    push_u64(buf, seq);
    buf.extend_from_slice(br#"","media":{"track":"inbound","chunk":""#);
    push_u64(buf, chunk);
    buf.extend_from_slice(br#"","timestamp":""#);
    push_u64(buf, timestamp_ms);
    buf.extend_from_slice(br#"","payload":""#);
    buf.extend_from_slice(payload_b64.as_bytes());
    buf.extend_from_slice(br#""},"streamSid":""#);
    buf.extend_from_slice(stream_sid.as_bytes());
    buf.extend_from_slice(br#""}"#);
}

#[inline]
fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use dialtone_protocol::media::{Track, media};

    #[test]
    fn bytes_equal_the_protocol_builder() {
        let payload = dialtone_audio::frames::silence_b64();
        let sid = format!("MZ{:032x}", 77u64);
        for (seq, chunk, ts) in [
            (2, 1, 0),
            (10, 9, 160),
            (1001, 1000, 19_980),
            (u64::MAX, 0, 7),
        ] {
            let mut buf = Vec::new();
            super::push_inbound_media(&mut buf, seq, chunk, ts, payload, &sid);
            let expected = media(seq, Track::Inbound, chunk, ts, payload, &sid);
            assert_eq!(String::from_utf8(buf).unwrap(), expected);
        }
    }
}
