//! What a stream receives: the upgrade's answer, then the app's frames (text to the session,
//! pings answered, the close), and a socket that closed or broke under us.

use std::io::{ErrorKind, Read};

use dialtone_protocol::media::WsViolation;

use super::super::ws::{self, Upgrade};
use super::{KEEP_BUFFER, Loop, READ_PAUSE, State, next_mask};
use crate::report::Failure;
use crate::stream::session::End;

impl Loop {
    pub(super) fn on_readable(&mut self, ci: usize) {
        loop {
            let c = &mut self.conns[ci];
            if c.state == State::Done {
                return;
            }
            if c.pending.len() > READ_PAUSE {
                c.read_paused = true;
                return;
            }
            let Some(sock) = c.sock.as_mut() else { return };
            match sock.read(&mut self.rbuf) {
                Ok(0) => return self.closed_under(ci),
                Ok(n) => {
                    c.rx.extend_from_slice(&self.rbuf[..n]);
                    self.on_bytes(ci);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.closed_under(ci),
            }
        }
    }

    /// The socket closed or broke under us.
    pub(super) fn closed_under(&mut self, ci: usize) {
        match self.conns[ci].state {
            State::Connecting | State::Upgrading => {
                self.fail_connect(ci, "the connection closed during the upgrade".into())
            }
            State::Closing => self.done(ci),
            _ => self.end_session(ci, End::Dropped),
        }
    }

    pub(super) fn on_bytes(&mut self, ci: usize) {
        if self.conns[ci].state == State::Upgrading {
            let c = &mut self.conns[ci];
            let accept = ws::accept_for(&c.key);
            match ws::parse_upgrade(&c.rx, &accept) {
                Upgrade::Incomplete if c.rx.len() < 16 << 10 => return,
                Upgrade::Incomplete => {
                    return self.fail_connect(ci, "the upgrade answer is too long".into());
                }
                Upgrade::Refused(status) => {
                    let url = c.cfg.as_ref().map(|s| s.url.clone()).unwrap_or_default();
                    c.failure = Some(match status {
                        Some(status) => Failure::StreamUpgradeRefused { url, status },
                        None => Failure::StreamConnect {
                            url,
                            cause: "the upgrade answer is not HTTP".into(),
                        },
                    });
                    return self.done(ci);
                }
                Upgrade::Accepted(used) => {
                    c.rx.drain(..used);
                    self.start(ci);
                }
            }
        }
        let mut at = 0;
        loop {
            let c = &mut self.conns[ci];
            if c.state == State::Done {
                return;
            }
            let (opcode, fin, payload, used) = match ws::parse_frame(&c.rx[at..]) {
                Ok(Some((f, used))) => (f.opcode, f.fin, f.payload.into_owned(), used),
                Ok(None) => break,
                // Refused from the header: the payload is never buffered.
                Err(ws::TooLarge(size)) => {
                    let limit = ws::MAX_FRAME;
                    return self
                        .end_session(ci, End::Violation(WsViolation::TooLarge { size, limit }));
                }
            };
            at += used;
            self.on_frame(ci, opcode, fin, &payload);
            if self.conns[ci].pending.len() > READ_PAUSE {
                self.conns[ci].read_paused = true;
                break;
            }
        }
        let c = &mut self.conns[ci];
        c.rx.drain(..at);
        // A burst (an app's whole reply at once) must not leave each of thousands of
        // streams holding its size: an emptied buffer past a few KiB is given back.
        if c.rx.is_empty() && c.rx.capacity() > KEEP_BUFFER {
            c.rx = Vec::new();
        }
    }

    pub(super) fn on_frame(&mut self, ci: usize, opcode: u8, fin: bool, payload: &[u8]) {
        match opcode {
            ws::OP_CLOSE => {
                if self.conns[ci].state == State::Closing {
                    return self.done(ci);
                }
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                // The app ended the stream: answer its close, as a client must.
                self.send_close(ci, 1000);
                self.end_session(ci, End::AppClosed(code));
            }
            ws::OP_PING => {
                let c = &mut self.conns[ci];
                let mask = next_mask(&mut c.rng);
                self.out.clear();
                ws::push_frame(&mut self.out, ws::OP_PONG, payload, mask);
                let bytes = std::mem::take(&mut self.out);
                self.write(ci, &bytes);
                self.out = bytes;
            }
            ws::OP_TEXT if fin => match std::str::from_utf8(payload) {
                Ok(text) => self.on_text(ci, text),
                Err(_) => self.end_session(ci, End::Violation(WsViolation::NotUtf8)),
            },
            ws::OP_BINARY if fin => self.with_session(ci, |s, _, w| s.on_binary(payload.len(), w)),
            _ => {}
        }
    }

    pub(super) fn on_text(&mut self, ci: usize, text: &str) {
        let c = &mut self.conns[ci];
        if c.wants_text
            && let Some(o) = c.observer.as_mut()
        {
            o.received(text);
        }
        self.with_session(ci, |s, now, w| s.on_text(now, text, w));
    }
}
