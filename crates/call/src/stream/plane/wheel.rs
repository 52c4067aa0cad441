//! The plane's timer: a wheel of 1 ms slots. A stream's deadline is a whole ms, so one
//! wake-up serves every stream due in that ms, and booking, moving or taking a deadline is
//! O(1) (a heap of thousands of streams costs a cache-missing `log n` per frame). Each slot is
//! an intrusive list threaded through one link per stream, so a stream holds at most one
//! booking, moving it leaves nothing stale behind, and the wheel's memory is fixed by the
//! number of streams, not by how deadlines happen to cluster. Deadlines past the horizon wait
//! in their slot until their turn comes round.

/// Slots: about a second of horizon.
const SLOTS: u64 = 1024;

/// No stream (the end of a list).
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    /// The booked ms; `None` when the stream is not on the wheel.
    at: Option<u64>,
    prev: u32,
    next: u32,
}

const UNBOOKED: Link = Link {
    at: None,
    prev: NIL,
    next: NIL,
};

pub(super) struct Wheel {
    /// Each slot's first stream.
    heads: Vec<u32>,
    /// Each slot's last stream (bookings keep their order within a slot).
    tails: Vec<u32>,
    /// One link per stream index.
    links: Vec<Link>,
    /// Streams booked.
    len: usize,
    /// The next ms to look at.
    cursor: u64,
}

impl Wheel {
    pub(super) fn new(now_ms: u64) -> Self {
        Self {
            heads: vec![NIL; SLOTS as usize],
            tails: vec![NIL; SLOTS as usize],
            links: Vec::new(),
            len: 0,
            cursor: now_ms,
        }
    }

    /// The ms stream `ci` is booked at.
    pub(super) fn booked(&self, ci: usize) -> Option<u64> {
        self.links.get(ci).and_then(|l| l.at)
    }

    /// Books stream `ci` at `at_ms`, replacing its booking (a time already past is taken at the
    /// next look; the same time again keeps its place).
    pub(super) fn set(&mut self, ci: usize, at_ms: u64) {
        debug_assert!(ci < NIL as usize, "stream indexes fit the links");
        let at = at_ms.max(self.cursor);
        if self.booked(ci) == Some(at) {
            return;
        }
        self.cancel(ci);
        if ci >= self.links.len() {
            self.links.resize(ci + 1, UNBOOKED);
        }
        let slot = (at % SLOTS) as usize;
        let tail = self.tails[slot];
        self.links[ci] = Link {
            at: Some(at),
            prev: tail,
            next: NIL,
        };
        match tail {
            NIL => self.heads[slot] = ci as u32,
            t => self.links[t as usize].next = ci as u32,
        }
        self.tails[slot] = ci as u32;
        self.len += 1;
    }

    /// Takes stream `ci` off the wheel.
    pub(super) fn cancel(&mut self, ci: usize) {
        let Some(&Link {
            at: Some(at),
            prev,
            next,
        }) = self.links.get(ci)
        else {
            return;
        };
        let slot = (at % SLOTS) as usize;
        match prev {
            NIL => self.heads[slot] = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => self.tails[slot] = prev,
            n => self.links[n as usize].prev = prev,
        }
        self.links[ci] = UNBOOKED;
        self.len -= 1;
    }

    /// Moves to `now_ms`: every stream due by then leaves the wheel and goes into `due`, in
    /// time order.
    pub(super) fn advance(&mut self, now_ms: u64, due: &mut Vec<usize>) {
        while self.cursor <= now_ms {
            let ms = self.cursor;
            let mut ci = self.heads[(ms % SLOTS) as usize];
            while ci != NIL {
                let link = self.links[ci as usize];
                if link.at.is_some_and(|at| at <= ms) {
                    self.cancel(ci as usize);
                    due.push(ci as usize);
                }
                ci = link.next;
            }
            self.cursor += 1;
        }
    }

    /// The next ms worth a look, when anything is booked.
    pub(super) fn next_ms(&self) -> Option<u64> {
        (self.len > 0).then_some(self.cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_come_due_in_order_across_the_horizon() {
        let mut w = Wheel::new(100);
        w.set(1, 105);
        w.set(2, 103);
        w.set(3, 100 + 3 * SLOTS + 5); // three turns of the wheel ahead
        w.set(4, 50); // already past: taken at the next look
        assert_eq!(
            w.booked(4),
            Some(100),
            "a past time is booked at the cursor"
        );
        w.set(4, 60); // the same clamped time: it keeps its one booking
        assert_eq!(w.booked(4), Some(100));
        let mut due = Vec::new();
        w.advance(104, &mut due);
        assert_eq!(due, [4, 2]);
        due.clear();
        w.advance(100 + 3 * SLOTS + 4, &mut due);
        assert_eq!(due, [1]);
        assert_eq!(w.next_ms(), Some(100 + 3 * SLOTS + 5));
        due.clear();
        w.advance(100 + 3 * SLOTS + 5, &mut due);
        assert_eq!(due, [3]);
        assert_eq!(w.next_ms(), None);
    }

    #[test]
    fn a_moved_or_cancelled_booking_leaves_nothing_behind() {
        let mut w = Wheel::new(0);
        // Three streams in one slot; the middle one moves, the first is cancelled.
        for ci in 0..3 {
            w.set(ci, 10);
        }
        w.set(1, 7);
        w.cancel(0);
        w.cancel(0); // twice is harmless
        assert_eq!(w.booked(0), None);
        assert_eq!(w.booked(1), Some(7));
        let mut due = Vec::new();
        w.advance(10, &mut due);
        assert_eq!(due, [1, 2]);
        assert_eq!(w.next_ms(), None);
        // Booked again, in the same slot and order as pushed.
        for ci in [2, 0, 1] {
            w.set(ci, 11 + SLOTS);
        }
        due.clear();
        w.advance(11 + SLOTS, &mut due);
        assert_eq!(due, [2, 0, 1]);
    }
}
