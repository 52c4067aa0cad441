//! The workload as a deterministic schedule: which calls exist (index), when each is due,
//! which shard runs it, and what each caller does. The same flags and seed give the same
//! schedule on every run and every machine, so shards slice it without talking to each other.

use std::time::Duration;

use crate::LoadError;

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
    /// Checks the numbers make sense together.
    pub fn validate(&self) -> Result<(), LoadError> {
        if self.concurrency == 0 {
            return Err(LoadError::Invalid(
                "--concurrency must be at least 1".into(),
            ));
        }
        if let Arrival::Rate { per_sec, .. } = self.arrival
            && !(per_sec.is_finite() && per_sec > 0.0)
        {
            return Err(LoadError::Invalid(
                "--rate must be a positive number".into(),
            ));
        }
        if let Extent::Calls(0) = self.extent {
            return Err(LoadError::Invalid("--calls must be at least 1".into()));
        }
        Ok(())
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
    Duration::from_secs_f64(secs)
}

/// SplitMix64 of (seed, index, salt), shared with the fault schedules so every seeded
/// choice of a run is reproducible and independent of scheduling order.
pub use dialtone_call::faults::mix;

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
