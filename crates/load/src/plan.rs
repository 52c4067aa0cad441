//! The workload as a deterministic schedule: which calls exist (index), when each is due,
//! which shard runs it, and what each caller does. The same flags and seed give the same
//! schedule on every run and every machine, so shards slice it without talking to each other.

use std::time::Duration;

use crate::LoadError;

/// Most calls one run places: 10 million (more than a day at 100 calls/s). The schedule is
/// lazy, so the bound is about run time and counters, not memory.
pub const MAX_CALLS: u64 = 10_000_000;
/// Most calls in progress at once: 100,000. Each holds at least one socket, and one machine
/// has about 28,000 ephemeral ports per app address (Linux's default range), so more than
/// this cannot be reached, only wasted on task and buffer memory.
pub const MAX_CONCURRENCY: usize = 100_000;
/// Slowest arrival rate: one call every ~17 minutes (0.001 calls/s).
pub const MIN_RATE: f64 = 0.001;
/// Fastest arrival rate: 100,000 calls/s, far past what one generator places.
pub const MAX_RATE: f64 = 100_000.0;
/// Latest due time a schedule yields (100 years): a due time from any rate and index fits
/// an `Instant` without overflow, and a run never gets that far.
pub const MAX_DUE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How many calls a run places.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extent {
    /// Exactly this many calls (across all shards).
    Calls(u64),
    /// Calls keep arriving until this much time has passed.
    Duration(Duration),
}

/// When calls arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// Open model: call *i* is due at a fixed time, calls/s rising linearly from 0 to
    /// `per_sec` over `ramp`, then steady. A call that finds every concurrency slot taken
    /// waits, and the wait is recorded (`start_delay`), so queueing is never hidden.
    Rate {
        /// Steady arrival rate, calls per second.
        per_sec: f64,
        /// Ramp-up time from 0 to `per_sec`.
        ramp: Duration,
    },
    /// With a call count: call *i* of *n* is due at `i × ramp / n` (starts spread evenly, as
    /// the bench workload does). With a duration: closed model, a new call starts whenever a
    /// concurrency slot frees, the first ones spread over `ramp`.
    Spread {
        /// Time over which the starts are spread.
        ramp: Duration,
    },
}

/// This process's slice of a sharded run: calls whose index ≡ `index` (mod `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 0-based shard number (a Kubernetes Indexed Job's completion index).
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = LoadError;

    /// Parses `I/N` with `0 ≤ I < N`.
    fn from_str(s: &str) -> Result<Self, LoadError> {
        let bad = || LoadError::Invalid(format!("--shard {s:?}: expected I/N with 0 <= I < N"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// True when call `index` belongs to this shard.
    pub fn owns(self, index: u64) -> bool {
        index % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of the indices `0..n` this shard owns.
    pub fn owned_below(self, n: u64) -> u64 {
        let i = u64::from(self.index);
        if n > i {
            (n - i - 1) / u64::from(self.count) + 1
        } else {
            0
        }
    }

    /// This shard's part of a total (e.g. concurrency), rounded up so no shard gets 0.
    pub fn part_of(self, total: usize) -> usize {
        total.div_ceil(self.count as usize).max(1)
    }
}

/// The whole workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// How many calls.
    pub extent: Extent,
    /// When they arrive.
    pub arrival: Arrival,
    /// Most calls in progress at once (across all shards).
    pub concurrency: usize,
    /// Seed for every per-call choice (caller, audio, scenario entry, SIDs).
    pub seed: u64,
    /// The slice this process runs.
    pub shard: Shard,
}

/// One call of the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// Global call index (the same in every shard).
    pub index: u64,
    /// When it is due, from the run's start; `None`: as soon as a concurrency slot frees.
    pub due: Option<Duration>,
}

impl Workload {
    /// Checks the numbers make sense together and are within their bounds ([`MAX_CALLS`],
    /// [`MAX_CONCURRENCY`], [`MIN_RATE`]..=[`MAX_RATE`]).
    pub fn validate(&self) -> Result<(), LoadError> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(LoadError::Invalid(format!(
                "--concurrency {} is out of range: 1 to {MAX_CONCURRENCY}",
                self.concurrency
            )));
        }
        if let Arrival::Rate { per_sec, .. } = self.arrival
            && !(MIN_RATE..=MAX_RATE).contains(&per_sec)
        {
            return Err(LoadError::Invalid(format!(
                "--rate {per_sec} is out of range: {MIN_RATE} to {MAX_RATE} calls per second"
            )));
        }
        if let Extent::Calls(n) = self.extent
            && !(1..=MAX_CALLS).contains(&n)
        {
            return Err(LoadError::Invalid(format!(
                "--calls {n} is out of range: 1 to {MAX_CALLS}"
            )));
        }
        Ok(())
    }

    /// How many calls of this shard are due: all of them for a count; for a duration with a
    /// rate, those due before its end (found by bisection, not by walking the schedule); `None`
    /// for a duration without a rate (closed model: it depends on how fast calls end).
    pub fn scheduled(&self) -> Option<u64> {
        let before = match (self.extent, self.arrival) {
            (Extent::Calls(n), _) => n,
            (Extent::Duration(d), Arrival::Rate { per_sec, ramp }) => {
                // rate_due is non-decreasing in the index: find the first index due at or
                // after `d`.
                let (mut lo, mut hi) = (0u64, 1u64);
                while hi < u64::MAX / 2 && rate_due(hi, per_sec, ramp) < d {
                    hi *= 2;
                }
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if rate_due(mid, per_sec, ramp) < d {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
            (Extent::Duration(_), Arrival::Spread { .. }) => return None,
        };
        Some(self.shard.owned_below(before))
    }

    /// The due time of call `index` under an open model, or `None` (closed model).
    pub fn due(&self, index: u64) -> Option<Duration> {
        match (self.arrival, self.extent) {
            (Arrival::Spread { ramp }, Extent::Calls(n)) => {
                Some(ramp.mul_f64(index as f64 / n as f64))
            }
            (Arrival::Spread { ramp }, Extent::Duration(_)) => {
                // The first `concurrency` calls are spread over the ramp; later ones wait for
                // a free slot.
                let c = self.concurrency as u64;
                (index < c).then(|| ramp.mul_f64(index as f64 / c as f64))
            }
            (Arrival::Rate { per_sec, ramp }, _) => Some(rate_due(index, per_sec, ramp)),
        }
    }

    /// This shard's calls in due order. For a duration-bound run the iterator is endless; the
    /// runner stops taking from it when the time is up.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        let limit = match self.extent {
            Extent::Calls(n) => n,
            Extent::Duration(_) => u64::MAX,
        };
        (0..limit)
            .filter(move |&i| self.shard.owns(i))
            .map(move |index| Slot {
                index,
                due: self.due(index),
            })
    }

    /// The end of arrivals for a duration-bound run.
    pub fn deadline(&self) -> Option<Duration> {
        match self.extent {
            Extent::Duration(d) => Some(d),
            Extent::Calls(_) => None,
        }
    }
}

/// Arrival time of call `i` when the rate rises linearly from 0 to `r` over `ramp` `T`:
/// calls by time `t` are `r t² / 2T` during the ramp and `rT/2 + r(t − T)` after it; this
/// inverts that count.
fn rate_due(i: u64, r: f64, ramp: Duration) -> Duration {
    let t_ramp = ramp.as_secs_f64();
    let i = i as f64;
    let in_ramp = r * t_ramp / 2.0;
    let secs = if t_ramp > 0.0 && i < in_ramp {
        (2.0 * i * t_ramp / r).sqrt()
    } else {
        t_ramp + (i - in_ramp.min(i)) / r
    };
    // Clamped, never a panic: a NaN or a time past MAX_DUE (a huge index at a slow rate)
    // becomes MAX_DUE.
    Duration::try_from_secs_f64(secs.max(0.0)).map_or(MAX_DUE, |d| d.min(MAX_DUE))
}

/// SplitMix64 of (seed, index, salt), shared with the fault schedules so every seeded
/// choice of a run is reproducible and independent of scheduling order.
pub use dialtone_call::faults::mix;

/// The `CallSid` of call (or bare stream) `index` of a run seeded with `seed`: both load paths
/// name their calls with it, so a seeded app that picks its behaviour by `CallSid` treats
/// call `index` alike on either path.
pub fn call_sid(seed: u64, index: u64) -> String {
    dialtone_protocol::sid::seeded("CA", seed, index)
}

/// Picks an index in `0..weights.len()` with probability proportional to its weight.
pub fn pick_weighted(weights: &[u32], roll: u64) -> usize {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return 0;
    }
    let mut r = roll % total;
    for (i, &w) in weights.iter().enumerate() {
        if r < u64::from(w) {
            return i;
        }
        r -= u64::from(w);
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(extent: Extent, arrival: Arrival, shard: Shard) -> Workload {
        Workload {
            extent,
            arrival,
            concurrency: 10,
            seed: 7,
            shard,
        }
    }

    #[test]
    fn shards_partition_the_schedule() {
        let ramp = Duration::from_secs(5);
        let all: Vec<Slot> = work(
            Extent::Calls(103),
            Arrival::Spread { ramp },
            Shard::default(),
        )
        .slots()
        .collect();
        let mut union = Vec::new();
        for i in 0..4 {
            let w = work(
                Extent::Calls(103),
                Arrival::Spread { ramp },
                Shard { index: i, count: 4 },
            );
            union.extend(w.slots());
        }
        union.sort_by_key(|s| s.index);
        assert_eq!(union, all);
        assert_eq!(all.len(), 103);
        assert_eq!(all[1].due, Some(ramp.mul_f64(1.0 / 103.0)));
    }

    #[test]
    fn rate_ramp_is_monotonic_and_reaches_the_rate() {
        let ramp = Duration::from_secs(10);
        let w = work(
            Extent::Calls(1000),
            Arrival::Rate {
                per_sec: 20.0,
                ramp,
            },
            Shard::default(),
        );
        let dues: Vec<f64> = w.slots().map(|s| s.due.unwrap().as_secs_f64()).collect();
        assert!(dues.windows(2).all(|p| p[0] <= p[1]));
        // 100 calls arrive during the 10 s ramp; then 20/s.
        assert!((dues[100] - 10.0).abs() < 1e-6);
        assert!((dues[120] - 11.0).abs() < 1e-6);
    }

    #[test]
    fn scheduled_counts_equal_walking_the_schedule() {
        for (extent, arrival) in [
            (
                Extent::Calls(103),
                Arrival::Spread {
                    ramp: Duration::ZERO,
                },
            ),
            (
                Extent::Duration(Duration::from_secs(30)),
                Arrival::Rate {
                    per_sec: 7.5,
                    ramp: Duration::from_secs(10),
                },
            ),
            (
                Extent::Duration(Duration::from_millis(2500)),
                Arrival::Rate {
                    per_sec: 3.0,
                    ramp: Duration::ZERO,
                },
            ),
        ] {
            for count in 1..=4 {
                for index in 0..count {
                    let w = work(extent, arrival, Shard { index, count });
                    let walked = match extent {
                        Extent::Calls(_) => w.slots().count(),
                        Extent::Duration(d) => w
                            .slots()
                            .take_while(|s| s.due.is_some_and(|t| t < d))
                            .count(),
                    };
                    assert_eq!(
                        w.scheduled(),
                        Some(walked as u64),
                        "{extent:?} {index}/{count}"
                    );
                }
            }
        }
        // The largest bounded run is counted at once, not walked.
        let w = work(
            Extent::Duration(Duration::from_secs(7 * 24 * 3600)),
            Arrival::Rate {
                per_sec: MAX_RATE,
                ramp: Duration::ZERO,
            },
            Shard::default(),
        );
        let n = w.scheduled().unwrap();
        assert!(n.abs_diff(60_480_000_000) <= 1, "{n}");
    }

    #[test]
    fn bounds_are_checked_and_due_times_never_overflow() {
        let ok = work(
            Extent::Calls(10),
            Arrival::Spread {
                ramp: Duration::ZERO,
            },
            Shard::default(),
        );
        assert!(ok.validate().is_ok());
        let mut w = ok.clone();
        w.concurrency = MAX_CONCURRENCY + 1;
        assert!(
            w.validate()
                .unwrap_err()
                .to_string()
                .contains("--concurrency")
        );
        let w = work(Extent::Calls(MAX_CALLS + 1), ok.arrival, Shard::default());
        assert!(w.validate().unwrap_err().to_string().contains("--calls"));
        for per_sec in [0.0, 1e-9, MAX_RATE * 2.0, f64::NAN, f64::INFINITY] {
            let w = work(
                Extent::Calls(10),
                Arrival::Rate {
                    per_sec,
                    ramp: Duration::ZERO,
                },
                Shard::default(),
            );
            assert!(
                w.validate().unwrap_err().to_string().contains("--rate"),
                "{per_sec}"
            );
        }
        // What validate rejects still yields a due time, never a panic.
        assert_eq!(rate_due(u64::MAX, 1e-300, Duration::ZERO), MAX_DUE);
        assert!(rate_due(5, f64::NAN, Duration::ZERO) <= MAX_DUE);
    }

    #[test]
    fn shard_parsing() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        assert!("4/4".parse::<Shard>().is_err());
        assert!("1".parse::<Shard>().is_err());
        assert_eq!(Shard { index: 0, count: 4 }.part_of(10), 3);
    }

    #[test]
    fn weighted_pick_and_mix_are_stable() {
        assert_eq!(mix(1, 2, 3), mix(1, 2, 3));
        assert_ne!(mix(1, 2, 3), mix(1, 3, 3));
        let w = [1, 0, 3];
        let counts = (0..4000).fold([0; 3], |mut c, i| {
            c[pick_weighted(&w, mix(9, i, 0))] += 1;
            c
        });
        assert_eq!(counts[1], 0);
        assert!(counts[2] > 2 * counts[0]);
    }
}
