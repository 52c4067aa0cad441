//! The plane's timer: a wheel of 1 ms slots. A stream's deadline is a whole ms, so one
//! wake-up serves every stream due in that ms, and booking or taking a deadline is O(1)
//! (a heap of thousands of streams costs a cache-missing `log n` per frame). Deadlines
//! past the wheel's horizon wait in their slot until their turn comes round.

/// Slots: about a second of horizon.
const SLOTS: u64 = 1024;

pub(super) struct Wheel {
    slots: Vec<Vec<(u64, usize)>>,
    /// Entries booked (stale ones included).
    len: usize,
    /// The next ms to look at.
    cursor: u64,
}

impl Wheel {
    pub(super) fn new(now_ms: u64) -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            len: 0,
            cursor: now_ms,
        }
    }

    /// Books stream `ci` at `at_ms` (a time already past is taken at the next look).
    pub(super) fn push(&mut self, at_ms: u64, ci: usize) {
        let at = at_ms.max(self.cursor);
        self.slots[(at % SLOTS) as usize].push((at, ci));
        self.len += 1;
    }

    /// Moves to `now_ms`: every booking due by then goes into `due`, in time order.
    pub(super) fn advance(&mut self, now_ms: u64, due: &mut Vec<(u64, usize)>) {
        while self.cursor <= now_ms {
            let ms = self.cursor;
            let slot = &mut self.slots[(ms % SLOTS) as usize];
            if !slot.is_empty() {
                let before = due.len();
                slot.retain(|&(at, ci)| {
                    let now = at <= ms;
                    if now {
                        due.push((at, ci));
                    }
                    !now
                });
                self.len -= due.len() - before;
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
        w.push(105, 1);
        w.push(103, 2);
        w.push(100 + 3 * SLOTS + 5, 3); // three turns of the wheel ahead
        w.push(50, 4); // already past: taken at the next look
        let mut due = Vec::new();
        w.advance(104, &mut due);
        assert_eq!(due, [(100, 4), (103, 2)]);
        due.clear();
        w.advance(100 + 3 * SLOTS + 4, &mut due);
        assert_eq!(due, [(105, 1)]);
        assert_eq!(w.next_ms(), Some(100 + 3 * SLOTS + 5));
        due.clear();
        w.advance(100 + 3 * SLOTS + 5, &mut due);
        assert_eq!(due, [(100 + 3 * SLOTS + 5, 3)]);
        assert_eq!(w.next_ms(), None);
    }
}
