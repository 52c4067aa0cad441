//! What a stream receives: the upgrade answer, then the app's frames — `media` into the
//! playout model, `mark` echoed when its audio has played, `clear`, pings and the close — and
//! a dropped socket, classified.

use std::io::{ErrorKind, Read};

use dialtone_call::Outcome;
use dialtone_call::playout::{MarkEcho, MarkPush, Playout};
use dialtone_protocol::media::{self, AppMessage, WsViolation};

use super::super::ws::{self, Upgrade};
use super::{
    Conn, Out, Shared, State, done, fail, nonce, send_close, send_close_code, send_text, started,
    write_bytes,
};
use crate::metrics::Metric;

pub(super) fn on_readable(
    c: &mut Conn,
    out: &mut Out,
    shared: &Shared,
    rbuf: &mut [u8],
    wheel: &mut [Vec<u32>],
    ci: usize,
) {
    loop {
        if c.state == State::Done {
            return;
        }
        let Some(sock) = c.sock.as_mut() else { return };
        match sock.read(rbuf) {
            Ok(0) => {
                return match c.state {
                    State::Closing => done(c, out, shared, None),
                    State::Connecting | State::Upgrading => {
                        fail(c, out, shared, Outcome::StreamConnect)
                    }
                    _ => fail(c, out, shared, Outcome::StreamDropped),
                };
            }
            Ok(n) => {
                c.rx.extend_from_slice(&rbuf[..n]);
                on_bytes(c, out, shared, wheel, ci);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                let class = match c.state {
                    State::Connecting | State::Upgrading => Outcome::StreamConnect,
                    State::Closing => return done(c, out, shared, None),
                    _ => Outcome::StreamDropped,
                };
                return fail(c, out, shared, class);
            }
        }
    }
}

fn on_bytes(c: &mut Conn, out: &mut Out, shared: &Shared, wheel: &mut [Vec<u32>], ci: usize) {
    if c.state == State::Upgrading {
        let accept = ws::accept_for(&ws::key(nonce(shared, c.index)));
        match ws::parse_upgrade(&c.rx, &accept) {
            Upgrade::Incomplete if c.rx.len() < 16 << 10 => return,
            Upgrade::Incomplete | Upgrade::Refused(_) => {
                return fail(c, out, shared, Outcome::StreamConnect);
            }
            Upgrade::Accepted(used) => {
                c.rx.drain(..used);
                started(c, out, shared, wheel, ci);
            }
        }
    }
    let mut at = 0;
    loop {
        let (opcode, fin, payload_range, used) = match ws::parse_frame(&c.rx[at..]) {
            Ok(Some((f, used))) => {
                let text = match f.payload {
                    std::borrow::Cow::Borrowed(p) => {
                        let start = p.as_ptr() as usize - c.rx[at..].as_ptr() as usize;
                        Some((at + start, at + start + p.len()))
                    }
                    // Masked server frames are a protocol error; their content is ignored.
                    std::borrow::Cow::Owned(_) => None,
                };
                (f.opcode, f.fin, text, used)
            }
            Ok(None) => break,
            // Refused from the header: the payload is never buffered.
            Err(ws::TooLarge(size)) => {
                let limit = ws::MAX_FRAME;
                return violated(c, out, shared, &WsViolation::TooLarge { size, limit });
            }
        };
        at += used;
        let payload = payload_range.map(|(a, b)| c.rx[a..b].to_vec());
        on_frame(c, out, shared, opcode, fin, payload.as_deref());
        if c.state == State::Done {
            return;
        }
    }
    c.rx.drain(..at);
    if c.rx.capacity() > 64 << 10 && c.rx.is_empty() {
        c.rx = Vec::new();
    }
}

fn on_frame(
    c: &mut Conn,
    out: &mut Out,
    shared: &Shared,
    opcode: u8,
    fin: bool,
    payload: Option<&[u8]>,
) {
    match opcode {
        ws::OP_CLOSE => {
            if c.state == State::Closing {
                done(c, out, shared, None);
            } else {
                // The app ended the stream: answer the close, as a client must.
                send_close(c, out, shared);
                done(c, out, shared, Some(Outcome::ClosedByApp));
            }
        }
        ws::OP_PING => {
            let mask = c.mask();
            out.frame.clear();
            ws::push_frame(
                &mut out.frame,
                ws::OP_PONG,
                payload.unwrap_or_default(),
                mask,
            );
            let bytes = std::mem::take(&mut out.frame);
            write_bytes(c, out, shared, &bytes, false);
            out.frame = bytes;
        }
        ws::OP_TEXT if fin => {
            // A masked server frame's content is ignored (see `on_bytes`).
            let Some(payload) = payload else { return };
            match std::str::from_utf8(payload) {
                Ok(text) => on_app_message(c, out, shared, text),
                Err(_) => violated(c, out, shared, &WsViolation::NotUtf8),
            }
        }
        ws::OP_BINARY | ws::OP_TEXT | ws::OP_PONG | 0 => {}
        _ => {}
    }
}

/// The app broke the protocol: fail the connection with the close code that says why.
fn violated(c: &mut Conn, out: &mut Out, shared: &Shared, v: &WsViolation) {
    tracing::debug!("stream {}: {v}", c.index);
    send_close_code(c, out, shared, v.close_code());
    fail(c, out, shared, Outcome::StreamProtocol);
}

fn on_app_message(c: &mut Conn, out: &mut Out, shared: &Shared, text: &str) {
    if c.state != State::Streaming {
        return;
    }
    let now = shared.now_us();
    let rel = c.now_rel(now);
    let Ok(msg) =
        media::parse_app_message_with(text, &c.ids.stream_sid, media::Strictness::Lenient)
    else {
        return;
    };
    let playout = c
        .playout
        .get_or_insert_with(|| Box::new(Playout::new(false)));
    let echoes = match msg {
        AppMessage::Media { payload } => {
            if playout.bytes_received() == 0 {
                out.stats.rec.record(Metric::FirstAudio, rel);
            }
            out.stats.app_media += 1;
            playout.push_media(rel, &payload);
            Vec::new()
        }
        // O(1) per mark; past the playout's bound a mark is refused (never echoed).
        AppMessage::Mark { name } => match playout.push_mark(rel, name) {
            MarkPush::Echo(e) => vec![e],
            MarkPush::Queued(_) | MarkPush::Refused(_) => Vec::new(),
        },
        AppMessage::Clear => playout.clear(rel).echoes,
    };
    send_echoes(c, out, shared, echoes, rel);
}

pub(super) fn send_echoes(
    c: &mut Conn,
    out: &mut Out,
    shared: &Shared,
    echoes: Vec<MarkEcho>,
    rel: u64,
) {
    for e in echoes {
        out.stats
            .rec
            .record(Metric::MarkRoundTrip, rel.saturating_sub(e.received_us));
        let text = media::mark(c.seq, &c.ids.stream_sid, &e.name);
        c.seq += 1;
        send_text(c, out, shared, &text);
    }
}
