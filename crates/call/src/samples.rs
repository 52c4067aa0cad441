//! Latencies (µs) kept as a short list while there are few, then as an HDR histogram. A call
//! records a handful of webhook and mark round trips; each of thousands of concurrent calls
//! must not pay a histogram's counts array (20–30 KiB) for them.

use hdrhistogram::Histogram;

/// Values held as a list before they move into a histogram.
const FEW: usize = 128;

/// A latency record that costs memory by what it holds.
#[derive(Debug, Clone)]
pub(crate) struct Samples {
    few: Vec<u64>,
    many: Option<Histogram<u64>>,
    /// Makes the histogram (its bounds and precision).
    make: fn() -> Histogram<u64>,
}

impl Samples {
    pub(crate) fn new(make: fn() -> Histogram<u64>) -> Self {
        Self {
            few: Vec::new(),
            many: None,
            make,
        }
    }

    /// Records one value (clamped into the histogram's range, as `saturating_record` does).
    pub(crate) fn record(&mut self, us: u64) {
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

    /// Everything recorded, as a histogram.
    pub(crate) fn into_histogram(self) -> Histogram<u64> {
        match self.many {
            Some(h) => h,
            None => {
                let mut h = (self.make)();
                for v in self.few {
                    h.saturating_record(v);
                }
                h
            }
        }
    }

    /// A copy of everything recorded, as a histogram.
    #[cfg(test)]
    pub(crate) fn histogram(&self) -> Histogram<u64> {
        self.clone().into_histogram()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_and_many_values_give_the_same_histogram() {
        let make = || Histogram::new_with_bounds(1, 60_000_000, 2).expect("bounds");
        for n in [0u64, 1, 128, 129, 5_000] {
            let mut s = Samples::new(make);
            let mut h = make();
            for i in 0..n {
                s.record(i * 37 + 1);
                h.saturating_record(i * 37 + 1);
            }
            assert_eq!(s.histogram(), h);
            assert_eq!(s.into_histogram(), h);
        }
    }
}
