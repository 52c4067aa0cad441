//! What a stream reports about the app's marks: every one counted, round trips in an HDR
//! histogram, and a sample of the records (the first and the last few). Each update is O(1),
//! so an app sending hundreds of thousands of marks costs neither quadratic time nor memory.

use std::time::Duration;

use hdrhistogram::Histogram;

use serde::Serialize;

use crate::report::{LatencySummary, MarkRecord};
use crate::retention::HeadTail;

/// Mark records kept from the start of a stream.
pub const MARK_SAMPLE_HEAD: usize = 50;
/// Mark records kept from the end of a stream.
pub const MARK_SAMPLE_TAIL: usize = 50;
/// A sampled mark's name is cut to this many characters (the echo itself is verbatim).
const NAME_CHARS: usize = 200;

/// The mark round-trip histogram every stream records into (and a call's webhook round
/// trips): per-call precision, up to [`crate::histogram::ROUND_TRIP_MAX_US`].
pub fn new_mark_histogram() -> Histogram<u64> {
    use crate::histogram::{PER_CALL_DIGITS, ROUND_TRIP_MAX_US, new_us};
    new_us(Some(ROUND_TRIP_MAX_US), PER_CALL_DIGITS)
}

/// Counts of a stream's marks and their round trips; the report's `marks` is only a sample.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MarkStats {
    /// Marks the app sent.
    pub received: u64,
    /// Marks echoed (because their audio played, or by a `clear`).
    pub echoed: u64,
    /// Of those, echoed by a `clear`.
    pub cleared: u64,
    /// Marks refused because too many were waiting for their audio (never echoed).
    pub refused: u64,
    /// Marks never echoed: refused, lost to `--faults`, or still waiting when the stream
    /// ended.
    pub unanswered: u64,
    /// Marks left out of the `marks` sample (between its first and last records).
    pub omitted: u64,
    /// Round trips of every echoed mark (app `mark` → echo).
    pub round_trip: LatencySummary,
}

/// The marks of one stream, by their number (0, 1, … in the order the app sent them).
#[derive(Debug)]
pub(crate) struct MarkLog {
    records: HeadTail<MarkRecord>,
    echoed: u64,
    cleared: u64,
    refused: u64,
    round_trip_us: crate::Latencies,
}

impl Default for MarkLog {
    fn default() -> Self {
        Self {
            records: HeadTail::new(MARK_SAMPLE_HEAD, MARK_SAMPLE_TAIL),
            echoed: 0,
            cleared: 0,
            refused: 0,
            round_trip_us: crate::Latencies::new(new_mark_histogram),
        }
    }
}

impl MarkLog {
    /// Mark number `id` arrived (ids come in order, one per mark).
    pub(crate) fn received(&mut self, id: u64, name: &str) {
        debug_assert_eq!(id, self.records.total(), "marks are numbered in order");
        self.records.push(MarkRecord {
            name: name.chars().take(NAME_CHARS).collect(),
            round_trip_ms: None,
            cleared: false,
        });
    }

    /// Mark `id` was refused: too many marks were waiting for their audio.
    pub(crate) fn refused(&mut self) {
        self.refused += 1;
    }

    /// Mark `id` was echoed `rtt` after it arrived (because of a `clear` when `cleared`).
    pub(crate) fn echoed(&mut self, id: u64, rtt: Duration, cleared: bool) {
        self.echoed += 1;
        if cleared {
            self.cleared += 1;
        }
        self.round_trip_us.record((rtt.as_micros() as u64).max(1));
        if let Some(rec) = self.records.get_mut(id) {
            rec.round_trip_ms = Some(rtt.as_secs_f64() * 1e3);
            rec.cleared = cleared;
        }
    }

    /// The sample, the counts, and every round trip (µs).
    pub(crate) fn finish(self) -> (Vec<MarkRecord>, MarkStats, crate::Latencies) {
        let received = self.records.total();
        let (sample, omitted) = self.records.into_parts();
        let round_trip_us = self.round_trip_us;
        let stats = MarkStats {
            received,
            echoed: self.echoed,
            cleared: self.cleared,
            refused: self.refused,
            unanswered: received.saturating_sub(self.echoed),
            omitted,
            round_trip: round_trip_us.summary(),
        };
        (sample, stats, round_trip_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_marks_keep_a_bounded_sample_and_exact_counts() {
        let mut log = MarkLog::default();
        let n = 200_000u64;
        for id in 0..n {
            log.received(id, &format!("m{id}"));
            match id % 4 {
                0 => log.echoed(id, Duration::from_millis(20), false),
                1 => log.echoed(id, Duration::from_millis(5), true),
                2 => {}
                _ => log.refused(),
            }
        }
        let (sample, stats, hist) = log.finish();
        assert_eq!(sample.len(), MARK_SAMPLE_HEAD + MARK_SAMPLE_TAIL);
        assert_eq!(sample[0].name, "m0");
        assert_eq!(sample[MARK_SAMPLE_HEAD].name, format!("m{}", n - 50));
        assert_eq!(sample.last().unwrap().name, format!("m{}", n - 1));
        assert_eq!(sample[0].round_trip_ms, Some(20.0));
        assert!(sample[1].cleared);
        assert_eq!(sample[2].round_trip_ms, None);
        assert_eq!(stats.received, n);
        assert_eq!(stats.echoed, n / 2);
        assert_eq!(stats.cleared, n / 4);
        assert_eq!(stats.refused, n / 4);
        assert_eq!(stats.unanswered, n / 2);
        assert_eq!(stats.omitted, n - 100);
        assert_eq!(stats.round_trip.count, n / 2);
        assert_eq!(hist.len(), n / 2);
        assert!((stats.round_trip.max_ms - 20.0).abs() < 0.2);
    }

    #[test]
    fn a_sampled_name_is_cut() {
        let mut log = MarkLog::default();
        log.received(0, &"x".repeat(10_000));
        let (sample, _, _) = log.finish();
        assert_eq!(sample[0].name.len(), NAME_CHARS);
    }
}
