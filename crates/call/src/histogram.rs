//! How every latency histogram of the engine and of `load` is made: µs values from 1, with
//! one of two named precisions, so bounds and significant digits are chosen in one place.
//!
//! Two precisions, not one, because the histograms live at two scales. Per-call ones (a
//! stream's frame lateness, its mark round trips, a call's webhook round trips, all behind
//! [`crate::Latencies`], which makes them only past a hundred values) exist for each of
//! thousands of concurrent calls, and a call must stay within its memory budget: with a
//! fixed bound, 3 digits cost ~190 KB for 24 h against ~27 KB for 2. Per-run ones (the load
//! recorder's, one per metric per worker interval, and the run's merge) are few, and
//! their percentiles are the figures a load run reports, so they keep 3.

use hdrhistogram::Histogram;

/// Significant digits of a histogram that exists per call: 1 % relative error, and a counts
/// array small enough (a few to ~27 KB) to keep one for each of thousands of calls.
pub const PER_CALL_DIGITS: u8 = 2;

/// Significant digits of a histogram that exists once per run (or per worker interval):
/// 0.1 % relative error on the percentiles a load run reports.
pub const PER_RUN_DIGITS: u8 = 3;

/// Highest value a frame-lateness histogram holds exactly: 60 s in µs (a frame later than
/// that is long past any verdict's bound; larger values saturate).
pub const LATENESS_MAX_US: u64 = 60_000_000;

/// Highest value a mark or webhook round-trip histogram holds exactly: 24 h in µs (a mark
/// can be echoed as late as the call lasts).
pub const ROUND_TRIP_MAX_US: u64 = 24 * 3_600_000_000;

/// A histogram of µs values from 1 with `digits` significant digits (one of
/// [`PER_CALL_DIGITS`], [`PER_RUN_DIGITS`]). With `max_us` its counts array is allocated
/// for values up to it at once (larger values saturate); without, it starts small and
/// grows as larger values arrive (so an interval with small values is small to clone
/// and send).
pub fn new_us(max_us: Option<u64>, digits: u8) -> Histogram<u64> {
    match max_us {
        Some(max) => Histogram::new_with_bounds(1, max, digits),
        None => Histogram::new(digits),
    }
    .expect("1 µs up, 2 or 3 significant digits: valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_call_histograms_stay_small() {
        // The budget this choice is for: a per-call histogram at its largest bound.
        let h = new_us(Some(ROUND_TRIP_MAX_US), PER_CALL_DIGITS);
        assert!(
            h.distinct_values() * 8 < 32 * 1024,
            "{}",
            h.distinct_values()
        );
        let grown = new_us(None, PER_RUN_DIGITS);
        assert_eq!(grown.sigfig(), 3);
        assert_eq!(grown.low(), 1);
    }
}
