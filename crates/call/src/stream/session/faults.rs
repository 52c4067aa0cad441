//! Injected faults on the wire (`--faults`): a frame's fate (lost, corrupted, swapped,
//! duplicated), the injected end (`drop`, `close`), and late or lost mark echoes.

use super::{End, Session, Wire};
use crate::faults::{Corrupt, FrameFate};
use crate::playout::{MAX_PENDING_MARKS, MarkEcho};
use crate::report::EventKind;

impl Session {
    /// Sends frame k's message as its fate says: lost, corrupted, held back for a swap, or
    /// sent twice; counted.
    pub(super) fn send_faulty(
        &mut self,
        wire: &mut impl Wire,
        text: &str,
        fate: FrameFate,
        k: u64,
    ) {
        if fate.lost {
            self.fault_counts.lost += 1;
            return;
        }
        let mut text = text.to_string();
        if let (Some(how), Some(faults)) = (fate.corrupt, &self.faults) {
            text = faults.corrupt(how, &text, &self.ids.stream_sid, k);
            let c = &mut self.fault_counts;
            match how {
                Corrupt::BadJson => c.bad_json += 1,
                Corrupt::BadBase64 => c.bad_base64 += 1,
                Corrupt::WrongSid => c.wrong_sid += 1,
            }
        }
        if fate.swapped {
            self.fault_counts.reordered += 1;
            self.swapped.push(text);
            return;
        }
        if fate.duplicated {
            self.fault_counts.duplicated += 1;
            self.send_wire(wire, &text);
        }
        self.send_wire(wire, &text);
    }

    /// Sends a faulty frame's message, counted.
    pub(super) fn send_wire(&mut self, wire: &mut impl Wire, text: &str) {
        wire.text(text);
        self.frames_sent += 1;
    }

    /// When an injected `drop` or `close` ends the stream, µs from its start.
    pub(super) fn injected_end_at(&self) -> Option<u64> {
        let spec = self.faults.as_ref()?.spec();
        let at = match (spec.drop_at, spec.close_at) {
            (Some(d), Some((c, _))) => d.min(c),
            (Some(d), None) => d,
            (None, Some((c, _))) => c,
            (None, None) => return None,
        };
        Some(at.as_micros() as u64)
    }

    /// Ends the stream the injected way: the TCP connection dropped (no `stop`, no close
    /// frame), or a close frame with the configured code (no `stop`).
    pub(super) fn inject_end(&mut self, wire: &mut impl Wire, now_us: u64) {
        let Some(spec) = self.faults.as_ref().map(|f| f.spec()) else {
            return;
        };
        let close = match (spec.drop_at, spec.close_at) {
            (Some(d), Some((c, code))) if c < d => Some(code),
            (None, Some((_, code))) => Some(code),
            _ => None,
        };
        wire.event(EventKind::Fault {
            what: match close {
                Some(code) => format!("close frame {code} sent without stop"),
                None => "TCP connection dropped without stop or close frame".into(),
            },
        });
        self.fault_counts.ended = Some(match close {
            Some(code) => format!("close {code}"),
            None => "drop".to_string(),
        });
        self.end(End::Injected(close), now_us);
    }

    /// An echo the playout released: sent now, later, or never, as the mark faults say.
    pub(super) fn release_echo(&mut self, wire: &mut impl Wire, echo: MarkEcho, now_us: u64) {
        let n = self.echoes;
        self.echoes += 1;
        match self.faults.as_ref().map(|f| f.mark(n)) {
            None => self.echo_mark(wire, echo, now_us),
            Some(None) => self.fault_counts.marks_dropped += 1,
            // Held-back echoes are bounded as pending marks are: past that, no delay.
            Some(Some(delay))
                if delay.is_zero() || self.delayed_echoes.len() >= MAX_PENDING_MARKS =>
            {
                self.echo_mark(wire, echo, now_us)
            }
            Some(Some(delay)) => {
                self.fault_counts.marks_delayed += 1;
                let due = now_us + delay.as_micros() as u64;
                self.delayed_echoes.push_back((due, echo));
            }
        }
    }
}
