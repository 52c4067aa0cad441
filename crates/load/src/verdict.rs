//! Whether the generator limited a run, and who did if not dialtone: its own CPU saturated
//! ("dialtone saturated"), other work keeping the machine busy while dialtone's CPU was low
//! ("machine busy"), or — in call mode — an app slow to read its socket. The classification
//! is a pure function of the per-second figures, so every case is unit-tested.

use crate::metrics::{Metric, Recorder, round3};
use crate::summary::{Generator, SeriesPoint};

/// Seconds in which dialtone used at least this share of all its cores count as saturated.
pub const SATURATED_SHARE: f64 = 0.9;
/// Seconds in which the whole machine was at least this busy (% of all its cores) …
pub const MACHINE_BUSY_PCT: f64 = 85.0;
/// … and dialtone's own CPU was at most this share of that busy time count as the machine
/// being busy with other work.
pub const OWN_SHARE_OF_BUSY: f64 = 0.5;

/// What limited the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing: the figures are the app's.
    None,
    /// dialtone's own CPU was near its cores' capacity.
    DialtoneSaturated,
    /// Frames were late while the machine was busy with other work and dialtone's own CPU
    /// was low: the machine, not dialtone, fell behind.
    MachineBusy,
    /// `--stream` frames were late with neither dialtone's CPU nor the machine busy: its
    /// sends never block, so this is dialtone's own scheduling.
    DialtoneLate,
    /// Call-mode frames were late with neither dialtone's CPU nor the machine busy: a send
    /// completes only when the app's socket takes it, so the app was slow to read.
    AppBackpressure,
}

impl Cause {
    /// The summary's `verdict` word.
    pub fn verdict(self) -> &'static str {
        match self {
            Cause::None => "ok",
            Cause::DialtoneSaturated | Cause::DialtoneLate => "bottleneck",
            Cause::MachineBusy => "machine_busy",
            Cause::AppBackpressure => "app_backpressure",
        }
    }

    /// The summary's `cause` word (empty when nothing limited the run).
    pub fn name(self) -> &'static str {
        match self {
            Cause::None => "",
            Cause::DialtoneSaturated => "dialtone_saturated",
            Cause::MachineBusy => "machine_busy",
            Cause::DialtoneLate => "dialtone_late",
            Cause::AppBackpressure => "app_backpressure",
        }
    }

    /// How bad, to combine shards: the worst cause wins.
    fn rank(self) -> u8 {
        match self {
            Cause::None => 0,
            Cause::AppBackpressure => 1,
            Cause::MachineBusy => 2,
            Cause::DialtoneLate => 3,
            Cause::DialtoneSaturated => 4,
        }
    }

    /// The cause a summary's `verdict` and `cause` name (`None` for unknown words).
    pub fn from_names(verdict: &str, cause: &str) -> Cause {
        [
            Cause::DialtoneSaturated,
            Cause::MachineBusy,
            Cause::DialtoneLate,
            Cause::AppBackpressure,
        ]
        .into_iter()
        .find(|c| c.name() == cause)
        // Summaries from before `cause` existed said only `bottleneck`.
        .unwrap_or(if verdict == "bottleneck" {
            Cause::DialtoneLate
        } else {
            Cause::None
        })
    }

    /// The worse of two causes.
    pub fn worst(self, other: Cause) -> Cause {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// One second's CPU figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSecond {
    /// dialtone's CPU, % of one core.
    pub own_pct: f64,
    /// The machine's busy time, % of all its cores (0–100), when known.
    pub machine_pct: Option<f64>,
}

/// The classification and the counts behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classified {
    /// Who limited the run.
    pub cause: Cause,
    /// Seconds with dialtone's CPU measured.
    pub seconds: usize,
    /// Of those, seconds with dialtone at ≥ [`SATURATED_SHARE`] of its cores.
    pub saturated: usize,
    /// Seconds with the machine ≥ [`MACHINE_BUSY_PCT`] busy, mostly with other work.
    pub machine_busy: usize,
}

/// Classifies a run from whether its frames were late (p99 past the bound), the cores
/// dialtone may use, the machine's cores, and each second's CPU. A condition holds when it
/// held in at least a fifth of the measured seconds: a moment's spike is not a verdict.
pub fn classify(
    stream_mode: bool,
    late: bool,
    cores: u32,
    machine_cores: u32,
    seconds: &[CpuSecond],
) -> Classified {
    let cap = 100.0 * f64::from(cores.max(1)) * SATURATED_SHARE;
    let saturated = seconds.iter().filter(|s| s.own_pct >= cap).count();
    let machine_busy = seconds
        .iter()
        .filter(|s| {
            s.machine_pct.is_some_and(|m| {
                // dialtone's own share of the whole machine, % of all its cores.
                let own = s.own_pct / f64::from(machine_cores.max(1));
                m >= MACHINE_BUSY_PCT && own <= m * OWN_SHARE_OF_BUSY
            })
        })
        .count();
    let held = |n: usize| n > 0 && n * 5 >= seconds.len();
    let cause = if held(saturated) {
        Cause::DialtoneSaturated
    } else if late && held(machine_busy) {
        Cause::MachineBusy
    } else if late && stream_mode {
        Cause::DialtoneLate
    } else if late {
        Cause::AppBackpressure
    } else {
        Cause::None
    };
    Classified {
        cause,
        seconds: seconds.len(),
        saturated,
        machine_busy,
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = v.fold((0u32, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| round3(sum / f64::from(n)))
}

/// Fills in `g`'s verdict, cause, reasons and CPU figures from the run's lateness and
/// per-second CPU. Whatever the cause, the figures name dialtone's own CPU and the machine's,
/// so a reader can check the verdict.
pub(crate) fn judge_generator(
    g: &mut Generator,
    totals: &Recorder,
    series: &[SeriesPoint],
    mode: &str,
) {
    let lat = totals.get(Metric::FrameLateness);
    let p99 = (!lat.is_empty()).then(|| lat.value_at_quantile(0.99) as f64 / 1000.0);
    let late = p99.is_some_and(|p| p > g.lateness_bound_ms);
    let seconds: Vec<CpuSecond> = series
        .iter()
        .filter_map(|p| {
            p.cpu_pct.map(|own_pct| CpuSecond {
                own_pct,
                machine_pct: p.machine_cpu_pct,
            })
        })
        .collect();
    let machine_cores = g.machine_cores.unwrap_or(g.cores);
    let c = classify(mode == "stream", late, g.cores, machine_cores, &seconds);
    g.cpu_mean_pct = mean(seconds.iter().map(|s| s.own_pct));
    g.machine_cpu_mean_pct = mean(seconds.iter().filter_map(|s| s.machine_pct));
    g.machine_cpu_peak_pct = seconds
        .iter()
        .filter_map(|s| s.machine_pct)
        .reduce(f64::max)
        .map(round3);
    let own = match g.cpu_mean_pct {
        Some(m) => format!("{m:.1}% of one core (mean), {} cores", g.cores),
        None => "not measured".into(),
    };
    let machine = match g.machine_cpu_mean_pct {
        Some(m) => format!("{m:.1}% busy (mean) of {machine_cores} cores"),
        None => "not measured".into(),
    };
    let p99 = p99.unwrap_or(0.0);
    let bound = g.lateness_bound_ms;
    let reason = match c.cause {
        Cause::None => None,
        Cause::DialtoneSaturated => Some(format!(
            "dialtone saturated: its CPU was at ≥ {:.0}% of its {} cores in {} of {} seconds \
             (dialtone {own}; machine {machine})",
            SATURATED_SHARE * 100.0,
            g.cores,
            c.saturated,
            c.seconds
        )),
        Cause::MachineBusy => Some(format!(
            "machine busy: other work kept the machine ≥ {MACHINE_BUSY_PCT:.0}% busy in {} of {} \
             seconds while dialtone's own CPU was low (dialtone {own}; machine {machine}); frame \
             lateness p99 {p99:.1} ms past the {bound:.1} ms bound is the machine's, not \
             dialtone's: rerun on a quieter machine",
            c.machine_busy, c.seconds
        )),
        Cause::DialtoneLate => Some(format!(
            "dialtone's own frame lateness p99 {p99:.1} ms is past the {bound:.1} ms bound: it \
             could not keep the 20 ms schedule (its sends are non-blocking, so this is dialtone, \
             not the app; dialtone {own}; machine {machine})"
        )),
        Cause::AppBackpressure => Some(format!(
            "frame lateness p99 {p99:.1} ms is past the {bound:.1} ms bound while neither \
             dialtone nor the machine was busy (dialtone {own}; machine {machine}): a call's \
             send completes only when the app's socket takes it, so the app was slow to read"
        )),
    };
    g.reasons.extend(reason);
    g.cause = c.cause.name().to_string();
    g.verdict = c.cause.verdict().to_string();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(own: f64, machine: Option<f64>, n: usize) -> Vec<CpuSecond> {
        vec![
            CpuSecond {
                own_pct: own,
                machine_pct: machine,
            };
            n
        ]
    }

    #[test]
    fn dialtone_saturated_is_told_from_machine_busy() {
        // Issue 11's trial: frames late, dialtone at 3% of one core, the machine at 97%.
        let busy = secs(3.0, Some(97.0), 10);
        let c = classify(false, true, 2, 2, &busy);
        assert_eq!(c.cause, Cause::MachineBusy);
        assert_eq!(c.cause.verdict(), "machine_busy");
        assert_eq!((c.seconds, c.saturated, c.machine_busy), (10, 0, 10));
        // dialtone itself at 190% of its 2 cores: saturated, busy machine or not.
        let own = secs(190.0, Some(99.0), 10);
        let c = classify(false, true, 2, 2, &own);
        assert_eq!(c.cause, Cause::DialtoneSaturated);
        assert_eq!(c.cause.verdict(), "bottleneck");
        // A busy machine that dialtone is most of (150% of 2 cores = 75% of the machine)
        // is not "other work".
        let mostly_own = secs(150.0, Some(90.0), 10);
        assert_eq!(
            classify(true, true, 2, 2, &mostly_own).cause,
            Cause::DialtoneLate
        );
    }

    #[test]
    fn lateness_without_a_busy_cpu_is_the_app_in_call_mode_and_dialtone_in_stream_mode() {
        let quiet = secs(3.0, Some(20.0), 10);
        assert_eq!(
            classify(false, true, 2, 2, &quiet).cause,
            Cause::AppBackpressure
        );
        assert_eq!(
            classify(true, true, 2, 2, &quiet).cause,
            Cause::DialtoneLate
        );
        assert_eq!(classify(false, false, 2, 2, &quiet).cause, Cause::None);
        // A busy machine without late frames: dialtone kept up, the figures stand.
        let busy = secs(3.0, Some(97.0), 10);
        assert_eq!(classify(false, false, 2, 2, &busy).cause, Cause::None);
        // Without /proc/stat figures a late run cannot be put on the machine.
        let unknown = secs(3.0, None, 10);
        assert_eq!(
            classify(true, true, 2, 2, &unknown).cause,
            Cause::DialtoneLate
        );
    }

    #[test]
    fn a_condition_must_hold_in_a_fifth_of_the_seconds() {
        let mut s = secs(3.0, Some(30.0), 8);
        s.extend(secs(3.0, Some(99.0), 1));
        assert_eq!(
            classify(false, true, 2, 2, &s).cause,
            Cause::AppBackpressure
        );
        s.extend(secs(3.0, Some(99.0), 1));
        assert_eq!(classify(false, true, 2, 2, &s).cause, Cause::MachineBusy);
        assert_eq!(
            classify(false, true, 2, 2, &[]).cause,
            Cause::AppBackpressure
        );
    }

    #[test]
    fn causes_round_trip_through_their_names_and_combine_by_severity() {
        for c in [
            Cause::None,
            Cause::DialtoneSaturated,
            Cause::MachineBusy,
            Cause::DialtoneLate,
            Cause::AppBackpressure,
        ] {
            assert_eq!(Cause::from_names(c.verdict(), c.name()), c);
        }
        assert_eq!(Cause::from_names("bottleneck", ""), Cause::DialtoneLate);
        assert_eq!(
            Cause::MachineBusy.worst(Cause::DialtoneSaturated),
            Cause::DialtoneSaturated
        );
        assert_eq!(Cause::MachineBusy.worst(Cause::None), Cause::MachineBusy);
    }
}
