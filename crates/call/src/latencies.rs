//! Latencies (µs) kept as a short list while there are few, then as an HDR histogram. A call
//! records a handful of webhook and mark round trips; each of thousands of concurrent calls
//! must not pay a histogram's counts array (20–30 KiB) for them, neither while it runs nor in
//! the report it hands to a load run.

use hdrhistogram::Histogram;

use crate::report::LatencySummary;

/// Values held as a list before they move into a histogram.
const FEW: usize = 128;

/// A latency record that costs memory by what it holds.
#[derive(Debug, Clone)]
pub struct Latencies {
    few: Vec<u64>,
    many: Option<Histogram<u64>>,
    /// Makes the histogram (its bounds and precision).
    make: fn() -> Histogram<u64>,
}

/// What a [`Latencies`] holds, for a reader that merges it into its own histograms.
#[derive(Debug, Clone, Copy)]
pub enum LatencyView<'a> {
    /// Each value, as recorded.
    Few(&'a [u64]),
    /// Too many to list: their histogram.
    Many(&'a Histogram<u64>),
}

impl Latencies {
    /// Empty; `make` builds the histogram once more than a few values are held.
    pub fn new(make: fn() -> Histogram<u64>) -> Self {
        Self {
            few: Vec::new(),
            many: None,
            make,
        }
    }

    /// Records one value (clamped into the histogram's range, as `saturating_record` does).
    pub fn record(&mut self, us: u64) {
        if let Some(h) = &mut self.many {
            h.saturating_record(us);
            return;
        }
        self.few.push(us);
        if self.few.len() > FEW {
            let mut h = (self.make)();
            for v in self.few.drain(..) {
                h.saturating_record(v);
            }
            self.few = Vec::new();
            self.many = Some(h);
        }
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.many
            .as_ref()
            .map_or(self.few.len() as u64, Histogram::len)
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What is held.
    pub fn view(&self) -> LatencyView<'_> {
        match &self.many {
            Some(h) => LatencyView::Many(h),
            None => LatencyView::Few(&self.few),
        }
    }

    /// Percentiles, as the histogram gives them (a few values get a short-lived one).
    pub fn summary(&self) -> LatencySummary {
        match &self.many {
            Some(h) => LatencySummary::from_us(h),
            None if self.few.is_empty() => LatencySummary::default(),
            None => LatencySummary::from_us(&self.histogram()),
        }
    }

    /// A copy of everything recorded, as a histogram.
    pub fn histogram(&self) -> Histogram<u64> {
        match &self.many {
            Some(h) => h.clone(),
            None => {
                let mut h = (self.make)();
                for &v in &self.few {
                    h.saturating_record(v);
                }
                h
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_and_many_values_give_the_same_histogram_and_summary() {
        let make = crate::report::new_lateness_histogram;
        for n in [0u64, 1, 128, 129, 5_000] {
            let mut s = Latencies::new(make);
            let mut h = make();
            for i in 0..n {
                s.record(i * 37 + 1);
                h.saturating_record(i * 37 + 1);
            }
            assert_eq!(s.len(), n);
            assert_eq!(s.histogram(), h);
            assert_eq!(s.summary(), LatencySummary::from_us(&h));
            let listed = match s.view() {
                LatencyView::Few(v) => v.len() as u64,
                LatencyView::Many(m) => m.len(),
            };
            assert_eq!(listed, n);
            assert_eq!(matches!(s.view(), LatencyView::Many(_)), n > FEW as u64);
        }
    }
}
