//! What a stream receives: the upgrade's answer, then the app's frames (text to the session,
//! pings answered, the close), and a socket that closed or broke under us.

use std::io::{ErrorKind, Read};

use dialtone_protocol::media::WsViolation;

use super::super::ws::{self, Upgrade};
use super::{KEEP_BUFFER, Loop, READ_BUF, READ_PAUSE, State, next_mask};
use crate::report::Failure;
use crate::stream::session::End;

impl Loop {
    pub(super) fn on_readable(&mut self, ci: usize) {
        // The read buffer is lent out while what was read is handled where it lies (nothing
        // reads again meanwhile: flushing, which may resume reading, runs on writable events).
        let mut rbuf = std::mem::take(&mut self.rbuf);
        if rbuf.is_empty() {
            rbuf = vec![0u8; READ_BUF];
        }
        self.read_all(ci, &mut rbuf);
        self.rbuf = rbuf;
    }

    fn read_all(&mut self, ci: usize, rbuf: &mut [u8]) {
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
            match sock.read(rbuf) {
                Ok(0) => return self.closed_under(ci),
                Ok(n) => self.on_bytes(ci, &rbuf[..n]),
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

    /// Handles `new` bytes after those the stream kept: the upgrade's answer, then whole
    /// frames. Only an incomplete frame is kept, so a burst (an app's whole reply at once)
    /// is parsed where it was read, never copied whole into each stream's buffer.
    pub(super) fn on_bytes(&mut self, ci: usize, new: &[u8]) {
        let c = &mut self.conns[ci];
        if c.rx.is_empty() && c.state != State::Upgrading {
            let used = self.on_frames(ci, new);
            let c = &mut self.conns[ci];
            if c.state != State::Done {
                c.rx.extend_from_slice(&new[used..]);
            }
            return;
        }
        c.rx.extend_from_slice(new);
        if c.state == State::Upgrading {
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
        let mut buf = std::mem::take(&mut self.conns[ci].rx);
        let used = self.on_frames(ci, &buf);
        let c = &mut self.conns[ci];
        if c.state == State::Done {
            return;
        }
        buf.drain(..used);
        // A kept frame that grew the buffer past a few KiB gives it back once handled.
        if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
            buf = Vec::new();
        }
        c.rx = buf;
    }

    /// Hands the whole frames at the start of `buf` to the stream (until it ends, or its
    /// writes back up); returns the bytes they took.
    fn on_frames(&mut self, ci: usize, buf: &[u8]) -> usize {
        let mut at = 0;
        while self.conns[ci].state != State::Done {
            let (opcode, fin, payload, used) = match ws::parse_frame(&buf[at..]) {
                Ok(Some((f, used))) => (f.opcode, f.fin, f.payload, used),
                Ok(None) => break,
                // Refused from the header: the payload is never buffered, and nothing
                // after it can be read as frames.
                Err(ws::TooLarge(size)) => {
                    let limit = ws::MAX_FRAME;
                    self.end_session(ci, End::Violation(WsViolation::TooLarge { size, limit }));
                    return buf.len();
                }
            };
            at += used;
            self.on_frame(ci, opcode, fin, &payload);
            if self.conns[ci].pending.len() > READ_PAUSE {
                self.conns[ci].read_paused = true;
                break;
            }
        }
        at
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
