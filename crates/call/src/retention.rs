//! Bounded retention for what an app can make a call repeat without limit (timeline events,
//! marks, streams, warnings, failures): the first items and the most recent ones are kept,
//! the rest only counted, so one call's memory and report stay bounded whatever the app does.

use std::collections::VecDeque;

/// Below this many items, the head grows by one item at a time.
const EXACT_UP_TO: usize = 4;

/// Keeps the first `head` items and the last `tail` items pushed; what falls between is
/// counted. Items are numbered from 0 in push order; every operation is O(1).
#[derive(Debug, Clone)]
pub(crate) struct HeadTail<T> {
    head: Vec<T>,
    tail: VecDeque<T>,
    head_cap: usize,
    tail_cap: usize,
    /// Items pushed so far.
    total: u64,
}

impl<T> HeadTail<T> {
    /// Keeps at most `head` + `tail` items.
    pub(crate) fn new(head: usize, tail: usize) -> Self {
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap: head,
            tail_cap: tail,
            total: 0,
        }
    }

    /// Appends an item (numbered [`HeadTail::total`] before the push).
    pub(crate) fn push(&mut self, item: T) {
        self.total += 1;
        if self.head.len() < self.head_cap {
            if self.head.len() == self.head.capacity() && self.head.len() < EXACT_UP_TO {
                // Most calls keep one or two of a thing (a stream's report, a warning):
                // grown one at a time, not to four at once.
                self.head.reserve_exact(1);
            }
            self.head.push(item);
        } else if self.tail_cap > 0 {
            if self.tail.len() == self.tail_cap {
                self.tail.pop_front();
            }
            self.tail.push_back(item);
        }
    }

    /// Item number `n`, if it is still kept.
    pub(crate) fn get_mut(&mut self, n: u64) -> Option<&mut T> {
        if n < self.head.len() as u64 {
            return self.head.get_mut(n as usize);
        }
        // The tail holds the items numbered total - tail.len() .. total.
        let first_in_tail = self.total - self.tail.len() as u64;
        if n < first_in_tail {
            return None;
        }
        self.tail.get_mut((n - first_in_tail) as usize)
    }

    /// Items pushed so far, kept or not.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Items pushed but no longer kept.
    pub(crate) fn omitted(&self) -> u64 {
        self.total - (self.head.len() + self.tail.len()) as u64
    }

    /// The kept items in push order, and how many were left out between head and tail.
    pub(crate) fn into_parts(self) -> (Vec<T>, u64) {
        let omitted = self.omitted();
        let mut items = self.head;
        items.extend(self.tail);
        (items, omitted)
    }
}

impl<T> Extend<T> for HeadTail<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_counts_the_gap() {
        let mut h = HeadTail::new(3, 2);
        for i in 0..10u32 {
            assert_eq!(h.total(), u64::from(i));
            h.push(i);
        }
        assert_eq!(h.total(), 10);
        assert_eq!(h.omitted(), 5);
        assert_eq!(h.get_mut(1).copied(), Some(1));
        assert_eq!(h.get_mut(4), None, "fell between head and tail");
        assert_eq!(h.get_mut(8).copied(), Some(8));
        assert_eq!(h.get_mut(9).copied(), Some(9));
        assert_eq!(h.get_mut(10), None);
        assert_eq!(h.into_parts(), (vec![0, 1, 2, 8, 9], 5));
    }

    #[test]
    fn short_lists_are_kept_whole() {
        let mut h = HeadTail::new(3, 2);
        for i in 0..4u32 {
            h.push(i);
        }
        assert_eq!(h.get_mut(3).copied(), Some(3));
        assert_eq!(h.omitted(), 0);
        assert_eq!(h.into_parts(), (vec![0, 1, 2, 3], 0));
    }

    #[test]
    fn memory_is_bounded_by_the_caps() {
        let mut h = HeadTail::new(4, 4);
        for i in 0..100_000u32 {
            h.push(i);
        }
        // The data structure, not a timing, shows the bound: never more than head + tail.
        assert_eq!(h.head.len() + h.tail.len(), 8);
        assert!(h.tail.capacity() < 64);
        assert_eq!(h.omitted(), 100_000 - 8);
    }
}
