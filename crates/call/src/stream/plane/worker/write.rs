//! What a stream sends: written at once, or held (bounded) behind what a full socket has not
//! taken yet, and flushed when it can take more.

use std::io::{ErrorKind, Write};

use super::super::ws;
use super::{KEEP_BUFFER, Loop, MAX_PENDING, READ_PAUSE, next_mask};
use crate::stream::session::End;

impl Loop {
    pub(super) fn send_close(&mut self, ci: usize, code: u16) {
        let mask = next_mask(&mut self.conns[ci].rng);
        let mut frame = Vec::with_capacity(8);
        ws::push_close(&mut frame, code, mask);
        self.write(ci, &frame);
    }

    /// Writes now, or queues behind bytes a full socket left.
    pub(super) fn write(&mut self, ci: usize, bytes: &[u8]) {
        let now = self.now;
        let c = &mut self.conns[ci];
        let Some(sock) = c.sock.as_mut() else { return };
        if !c.pending.is_empty() {
            c.pending.extend_from_slice(bytes);
            if c.pending.len() > MAX_PENDING {
                self.end_session(ci, End::Stalled);
            }
            return;
        }
        let mut at = 0;
        while at < bytes.len() {
            match sock.write(&bytes[at..]) {
                Ok(0) => return self.closed_under(ci),
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return self.closed_under(ci),
            }
        }
        if at < bytes.len() {
            c.pending.extend_from_slice(&bytes[at..]);
            c.pending_since_us = now;
        }
    }

    pub(super) fn flush(&mut self, ci: usize) {
        let now = self.clock();
        let c = &mut self.conns[ci];
        let Some(sock) = c.sock.as_mut() else { return };
        let mut at = 0;
        while at < c.pending.len() {
            match sock.write(&c.pending[at..]) {
                Ok(0) => return self.closed_under(ci),
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return self.closed_under(ci),
            }
        }
        c.pending.drain(..at);
        if at > 0 {
            c.pending_since_us = now;
        }
        if c.pending.is_empty() && c.pending.capacity() > KEEP_BUFFER {
            c.pending = Vec::new();
        }
        if c.read_paused && c.pending.len() <= READ_PAUSE {
            // The socket took enough: read on, first what is already buffered.
            c.read_paused = false;
            self.on_bytes(ci, &[]);
            self.on_readable(ci);
        }
    }
}
