//! dialtone's own CPU time and peak memory, read from `/proc/self` (Linux; `None` elsewhere),
//! so a report can say when the generator itself was the bottleneck.

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

/// Cores this process may use.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_cpu_and_memory_on_linux() {
        if cfg!(target_os = "linux") {
            let s = super::cpu_sample().expect("cpu");
            assert!(s.total_s() >= 0.0);
            assert!(super::max_rss_kib().unwrap() > 0);
        }
    }
}
