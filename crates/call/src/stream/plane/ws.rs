//! The little of RFC 6455 a Media Streams client needs on the hot path, written so that a
//! frame costs one copy into a reused buffer: the upgrade request and its answer check,
//! masked client frames, and a parser for the server's (unmasked) frames.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dialtone_protocol::media::MAX_APP_MESSAGE;
use sha1::{Digest, Sha1};

/// Text frame opcode.
pub(crate) const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub(crate) const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub(crate) const OP_CLOSE: u8 = 0x8;
/// Ping opcode.
pub(crate) const OP_PING: u8 = 0x9;
/// Pong opcode.
pub(crate) const OP_PONG: u8 = 0xA;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Key` for a 16-byte nonce.
pub(crate) fn key(nonce: [u8; 16]) -> String {
    STANDARD.encode(nonce)
}

/// The `Sec-WebSocket-Accept` a server must answer `key` with.
pub(crate) fn accept_for(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    STANDARD.encode(h.finalize())
}

/// The upgrade request, signed as Twilio signs stream upgrades. `head` holds the `Host`
/// line (and a tunnel's forwarding headers), each ending in CRLF.
pub(crate) fn upgrade_request(path: &str, head: &str, key: &str, signature: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\n{head}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         X-Twilio-Signature: {signature}\r\nUser-Agent: Twilio.TmeWs/1.0\r\n\r\n"
    )
    .into_bytes()
}

/// What the upgrade answer said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// Not all of the head has arrived.
    Incomplete,
    /// `101` with the right accept key; `usize` bytes of head were consumed.
    Accepted(usize),
    /// Refused or malformed, with the HTTP status when there was one.
    Refused(Option<u16>),
}

/// Checks the server's answer to the upgrade.
pub(crate) fn parse_upgrade(buf: &[u8], expected_accept: &str) -> Upgrade {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Upgrade::Incomplete;
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Upgrade::Refused(None);
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok());
    if status != Some(101) {
        return Upgrade::Refused(status);
    }
    let accepted = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-accept")
                && value.trim() == expected_accept
        })
    });
    if accepted {
        Upgrade::Accepted(end + 4)
    } else {
        Upgrade::Refused(Some(101))
    }
}

/// Appends one masked client frame (`FIN` set) carrying `payload` to `out`.
#[inline]
pub(crate) fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-byte key, 8 bytes at a time.
#[inline]
pub(crate) fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let m = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes((&*c).try_into().expect("8-byte chunk")) ^ m;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so the key's phase is 0 again.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A close frame with status `code` (1000 for a normal close).
pub(crate) fn push_close(out: &mut Vec<u8>, code: u16, mask: [u8; 4]) {
    push_frame(out, OP_CLOSE, &code.to_be_bytes(), mask);
}

/// One complete frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// Opcode.
    pub(crate) opcode: u8,
    /// FIN bit.
    pub(crate) fin: bool,
    /// Unmasked payload.
    pub(crate) payload: std::borrow::Cow<'a, [u8]>,
}

/// Largest server frame accepted: the same limit as the full-call engine's, so the read
/// buffer of a stream holds at most one such frame (see [`MAX_APP_MESSAGE`]).
pub(crate) const MAX_FRAME: usize = MAX_APP_MESSAGE;

/// A frame whose header declares more than [`MAX_FRAME`] bytes (the declared length):
/// refused from its header, before its payload is read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) u64);

/// Parses one frame from the front of `buf`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((frame, consumed)))`, or `Err` for a frame over [`MAX_FRAME`].
pub(crate) fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, TooLarge> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME as u64 {
        return Err(TooLarge(len));
    }
    let len = len as usize;
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < at + len {
        return Ok(None);
    }
    let raw = &buf[at..at + len];
    let payload = match mask {
        None => std::borrow::Cow::Borrowed(raw),
        Some(m) => {
            std::borrow::Cow::Owned(raw.iter().enumerate().map(|(i, b)| b ^ m[i & 3]).collect())
        }
    };
    Ok(Some((
        Frame {
            opcode,
            fin,
            payload,
        },
        at + len,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrade_answers() {
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc\r\n\r\nxx";
        assert_eq!(parse_upgrade(ok, "abc"), Upgrade::Accepted(ok.len() - 2));
        assert_eq!(parse_upgrade(&ok[..20], "abc"), Upgrade::Incomplete);
        assert_eq!(parse_upgrade(ok, "abd"), Upgrade::Refused(Some(101)));
        assert_eq!(
            parse_upgrade(b"HTTP/1.1 403 Forbidden\r\n\r\n", "abc"),
            Upgrade::Refused(Some(403))
        );
    }

    #[test]
    fn frames_round_trip_through_the_parser() {
        for len in [0usize, 5, 125, 126, 380, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            push_frame(&mut out, OP_TEXT, &payload, [1, 2, 3, 4]);
            let (f, used) = parse_frame(&out).unwrap().unwrap();
            assert_eq!(used, out.len());
            assert_eq!(f.opcode, OP_TEXT);
            assert!(f.fin);
            assert_eq!(&*f.payload, &payload[..]);
            assert_eq!(parse_frame(&out[..out.len() - 1]).unwrap(), None);
        }
        let server = [0x81, 0x02, b'h', b'i'];
        let (f, _) = parse_frame(&server).unwrap().unwrap();
        assert_eq!(&*f.payload, b"hi");
    }
}
