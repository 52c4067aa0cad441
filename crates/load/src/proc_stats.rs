//! dialtone's own CPU time and peak memory, read from `/proc/self`, and the whole machine's
//! CPU and load from `/proc/stat` and `/proc/loadavg` (Linux; `None` elsewhere), so a report
//! can tell dialtone saturating its cores from other work keeping the machine busy.

/// CPU time used by this process so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    /// User time, seconds.
    pub user_s: f64,
    /// System time, seconds.
    pub sys_s: f64,
}

impl CpuSample {
    /// User + system.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// Linux reports CPU time in clock ticks of 1/100 s on every common architecture (`USER_HZ`).
const TICKS_PER_S: f64 = 100.0;

/// Reads `/proc/self/stat` (fields 14 and 15: utime, stime).
pub fn cpu_sample() -> Option<CpuSample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after its ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some(CpuSample {
        user_s: utime / TICKS_PER_S,
        sys_s: stime / TICKS_PER_S,
    })
}

/// Peak resident memory (`VmHWM`), KiB.
pub fn max_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// Current resident memory (`VmRSS`), KiB.
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The whole machine's CPU time so far (all cores), from `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineSample {
    /// Ticks spent on anything but idle and I/O wait (user, nice, system, irq, softirq,
    /// steal: time a hypervisor gave to others counts as busy too).
    pub busy: u64,
    /// All ticks.
    pub total: u64,
    /// CPUs listed (`cpuN` lines).
    pub cores: u32,
}

impl MachineSample {
    /// The machine's busy share of all its cores since `earlier`, in % (0–100); `None` when
    /// no tick passed.
    pub fn busy_pct_since(&self, earlier: &MachineSample) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|&t| t > 0)?;
        let busy = self.busy.saturating_sub(earlier.busy).min(total);
        Some(100.0 * busy as f64 / total as f64)
    }
}

/// Parses `/proc/stat`: the aggregate `cpu` line (`user nice system idle iowait irq softirq
/// steal …`; the guest fields are already in `user`) and the count of `cpuN` lines.
pub fn parse_proc_stat(text: &str) -> Option<MachineSample> {
    let mut lines = text.lines();
    let first = lines.next()?;
    let mut fields = first.strip_prefix("cpu ")?.split_whitespace();
    let mut ticks = [0u64; 8];
    for (i, t) in ticks.iter_mut().enumerate() {
        // Kernels before 2.6.11 had no steal field: the missing ones are 0.
        match fields.next() {
            Some(f) => *t = f.parse().ok()?,
            None if i >= 4 => break,
            None => return None,
        }
    }
    let total: u64 = ticks.iter().sum();
    let idle = ticks[3] + ticks[4];
    let cores = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u32;
    Some(MachineSample {
        busy: total - idle,
        total,
        cores,
    })
}

/// Reads `/proc/stat`.
pub fn machine_sample() -> Option<MachineSample> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Parses `/proc/loadavg`: the 1-minute load average (runnable and uninterruptible tasks).
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Reads the 1-minute load average from `/proc/loadavg`.
pub fn load_avg() -> Option<f64> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// Cores this process may use.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory_on_linux() {
        if cfg!(target_os = "linux") {
            let s = super::cpu_sample().expect("cpu");
            assert!(s.total_s() >= 0.0);
            assert!(super::max_rss_kib().unwrap() > 0);
        }
    }

    #[test]
    fn proc_stat_and_loadavg_parse() {
        let stat = "cpu  100 5 50 800 40 3 2 10 7 0\ncpu0 50 2 25 400 20 1 1 5 0 0\n\
                    cpu1 50 3 25 400 20 2 1 5 0 0\nintr 12345 0\nctxt 99\ncpus_allowed 3\n";
        let m = parse_proc_stat(stat).unwrap();
        // Guest (7) is inside user already; idle + iowait = 840.
        assert_eq!(m.total, 1010);
        assert_eq!(m.busy, 170);
        assert_eq!(m.cores, 2);
        let later = MachineSample {
            busy: 170 + 150,
            total: 1010 + 200,
            cores: 2,
        };
        assert_eq!(later.busy_pct_since(&m), Some(75.0));
        assert_eq!(m.busy_pct_since(&m), None);
        assert!(parse_proc_stat("intr 1\n").is_none());
        assert!(parse_proc_stat("cpu  1 2 x 4 5\n").is_none());
        // An old kernel without iowait/irq/softirq/steal still parses.
        assert_eq!(parse_proc_stat("cpu 1 2 3 4\n").unwrap().busy, 6);
        assert_eq!(parse_loadavg("3.27 1.02 0.50 4/612 12345\n"), Some(3.27));
        assert_eq!(parse_loadavg(""), None);
    }

    /// The real files: this test's own spinning shows up as machine busy time.
    #[test]
    fn real_proc_shows_this_process_spinning() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let a = machine_sample().expect("/proc/stat");
        assert!(a.cores >= 1 && a.busy <= a.total, "{a:?}");
        let own = cpu_sample().expect("own cpu");
        // Spin until this process has used 0.3 s of CPU (not wall time: on a busy machine
        // the scheduler decides how much of a wall-clock stretch we get), bounded.
        let t = std::time::SystemTime::now();
        let mut x = 0u64;
        let mut spun = 0.0;
        while spun < 0.3 && t.elapsed().unwrap_or_default() < std::time::Duration::from_secs(30) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            spun = cpu_sample().unwrap().total_s() - own.total_s();
        }
        let b = machine_sample().expect("/proc/stat");
        // ~30 ticks of our own; the machine counts at least most of them as busy.
        assert!(spun >= 0.2, "own cpu {spun}");
        assert!(b.busy - a.busy >= 15, "{a:?} → {b:?}");
        let pct = b.busy_pct_since(&a).unwrap();
        assert!(pct > 0.0 && pct <= 100.0, "{pct}");
        assert!(load_avg().expect("/proc/loadavg") >= 0.0);
    }
}
