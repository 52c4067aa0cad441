//! The session's wire on the plane: what it sends is framed and masked into the worker's
//! buffer; the rest goes to the stream's observer.

use super::super::{Observer, ws};
use crate::report::EventKind;
use crate::stream::session::Wire;

/// What a session writes goes into the worker's frame buffer, masked; the rest to the
/// stream's observer.
pub(super) struct MioWire<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) rng: &'a mut u32,
    pub(super) observer: &'a mut dyn Observer,
    pub(super) wants_text: bool,
    pub(super) frame_lateness: Option<&'a crate::config::FrameLateness>,
}

/// xorshift32: masks need not be secret here, only not constant.
pub(super) fn next_mask(rng: &mut u32) -> [u8; 4] {
    let mut x = *rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *rng = x;
    x.to_ne_bytes()
}

impl Wire for MioWire<'_> {
    fn text(&mut self, text: &str) {
        if self.wants_text {
            self.observer.sent(text);
        }
        let mask = next_mask(self.rng);
        ws::push_frame(self.out, ws::OP_TEXT, text.as_bytes(), mask);
    }
    fn event(&mut self, kind: EventKind) {
        self.observer.event(kind);
    }
    fn frame_sent(&mut self, lateness_us: u64) {
        match self.frame_lateness {
            Some(sink) => crate::stream::record_lateness(sink, lateness_us),
            None => self.observer.frame(lateness_us),
        }
    }
    fn app_media(&mut self, first_after_us: Option<u64>) {
        self.observer.app_media();
        if let Some(us) = first_after_us {
            self.observer.first_audio(us);
        }
    }
    fn mark_echoed(&mut self, round_trip_us: u64) {
        self.observer.mark_echoed(round_trip_us);
    }
}

/// A wire for sessions that never ran (their report only).
pub(crate) struct NoWire;

impl Wire for NoWire {
    fn text(&mut self, _text: &str) {}
    fn event(&mut self, _kind: EventKind) {}
}
