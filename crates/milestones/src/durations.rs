//! Duration records (`transcription_job 1250 ms`) summarised per event name in HDR
//! histograms, and rendered as the table app teams already read: event, count, avg,
//! p50, p95, p99, max.

use std::collections::BTreeMap;
use std::io::{self, Write};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::milestone::Milestone;

/// Histogram resolution: values are recorded in microseconds.
const US_PER_MS: f64 = 1000.0;
/// Largest value a histogram holds exactly: one hour. Longer ones saturate there (the
/// exact maximum and average are kept on the side).
const MAX_US: u64 = 3_600_000_000;
/// Three significant figures: 0.1 % relative error on every percentile. The same choice as
/// `dialtone_call::histogram::PER_RUN_DIGITS` (one table per run), restated because this
/// crate sits beside the engine, not above it (the bot uses it and must not pull in the engine).
const SIGFIG: u8 = 3;

/// One event's summary, all figures in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Event name.
    pub event: String,
    /// Records with a duration.
    pub count: u64,
    /// Exact mean.
    pub avg_ms: f64,
    /// Median (histogram, 0.1 % precision).
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Exact maximum.
    pub max_ms: f64,
}

#[derive(Debug, Clone)]
struct Stat {
    hist: Histogram<u64>,
    sum_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

impl Stat {
    fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_US, SIGFIG)
                .expect("static histogram bounds are valid"),
            sum_ms: 0.0,
            min_ms: f64::INFINITY,
            max_ms: 0.0,
        }
    }
}

/// Per-event duration histograms, plus counts of the records that carry no duration.
#[derive(Debug, Clone, Default)]
pub struct DurationTable {
    stats: BTreeMap<String, Stat>,
    untimed: BTreeMap<String, u64>,
}

/// The JSON form of a [`DurationTable`].
#[derive(Serialize)]
struct TableJson<'a> {
    events: Vec<Row>,
    without_duration: &'a BTreeMap<String, u64>,
}

impl DurationTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `m` under its name: its duration into the histogram, or, when it has none,
    /// one to the event's count of records without a duration. Returns whether a
    /// duration was recorded.
    pub fn record(&mut self, m: &Milestone) -> bool {
        match m.duration_ms {
            Some(ms) => {
                self.record_ms(&m.name, ms);
                true
            }
            None => {
                *self.untimed.entry(m.name.clone()).or_default() += 1;
                false
            }
        }
    }

    /// Adds one value in milliseconds under `event` (e.g. a latency computed elsewhere).
    /// Negative or non-finite values are recorded as 0.
    pub fn record_ms(&mut self, event: &str, ms: f64) {
        let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
        let stat = match self.stats.get_mut(event) {
            Some(stat) => stat,
            None => self.stats.entry(event.to_owned()).or_insert_with(Stat::new),
        };
        // Sub-microsecond values land in the lowest bucket rather than being refused.
        stat.hist
            .saturating_record(((ms * US_PER_MS).round() as u64).max(1));
        stat.sum_ms += ms;
        stat.min_ms = stat.min_ms.min(ms);
        stat.max_ms = stat.max_ms.max(ms);
    }

    /// True when nothing at all was recorded.
    pub fn is_empty(&self) -> bool {
        self.stats.is_empty() && self.untimed.is_empty()
    }

    /// One row per event with durations, sorted by event name.
    pub fn rows(&self) -> Vec<Row> {
        self.stats
            .iter()
            .map(|(event, s)| {
                let count = s.hist.len();
                // A bucket's upper edge can exceed the exact extremes by its 0.1 %
                // width; no percentile lies outside them.
                let q = |q: f64| {
                    (s.hist.value_at_quantile(q) as f64 / US_PER_MS).clamp(s.min_ms, s.max_ms)
                };
                Row {
                    event: event.clone(),
                    count,
                    avg_ms: s.sum_ms / count as f64,
                    p50_ms: q(0.50),
                    p95_ms: q(0.95),
                    p99_ms: q(0.99),
                    max_ms: s.max_ms,
                }
            })
            .collect()
    }

    /// Events seen without a duration, with their counts, sorted by name.
    pub fn without_duration(&self) -> &BTreeMap<String, u64> {
        &self.untimed
    }

    /// The aligned text table (figures in ms, one decimal), then a line listing the
    /// events that carried no duration.
    pub fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|r| r.event.chars().count())
            .chain([5])
            .max()
            .unwrap_or(5);
        if !rows.is_empty() {
            writeln!(
                out,
                "{:<width$}  {:>7}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
                "event", "count", "avg ms", "p50 ms", "p95 ms", "p99 ms", "max ms"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{:<width$}  {:>7}  {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}",
                    r.event, r.count, r.avg_ms, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms
                )?;
            }
        }
        if !self.untimed.is_empty() {
            let list: Vec<String> = self
                .untimed
                .iter()
                .map(|(name, n)| format!("{name} ×{n}"))
                .collect();
            writeln!(out, "without a duration: {}", list.join(", "))?;
        }
        Ok(())
    }

    /// `{"events": [Row…], "without_duration": {name: count}}`, pretty-printed.
    pub fn render_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &self.to_json())?;
        writeln!(out)
    }

    /// The same as [`DurationTable::render_json`], as a value to embed in a larger report.
    pub fn to_json(&self) -> serde_json::Value {
        let table = TableJson {
            events: self.rows(),
            without_duration: &self.untimed,
        };
        serde_json::to_value(table).expect("rows serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, ms: f64) -> Milestone {
        Milestone {
            call_sid: String::new(),
            name: name.into(),
            ts_ms: None,
            duration_ms: Some(ms),
            text: None,
        }
    }

    #[test]
    fn percentiles_average_and_max() {
        let mut table = DurationTable::new();
        for ms in 1..=100 {
            assert!(table.record(&job("transcription_job", f64::from(ms) * 10.0)));
        }
        table.record(&job("llm.call", 1250.0));
        let untimed = Milestone {
            duration_ms: None,
            ts_ms: Some(1),
            ..job("vad.speech_end", 0.0)
        };
        assert!(!table.record(&untimed));
        let rows = table.rows();
        assert_eq!(rows[0].event, "llm.call");
        let r = &rows[1];
        assert_eq!((r.event.as_str(), r.count), ("transcription_job", 100));
        assert!((r.avg_ms - 505.0).abs() < 1e-9);
        // 0.1 % precision of the histogram.
        for (got, want) in [(r.p50_ms, 500.0), (r.p95_ms, 950.0), (r.p99_ms, 990.0)] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
        assert_eq!(r.max_ms, 1000.0);
        assert_eq!(table.without_duration()["vad.speech_end"], 1);
    }

    #[test]
    fn text_table_is_aligned() {
        let mut table = DurationTable::new();
        table.record(&job("transcription_job", 1250.0));
        table.record(&job("tts", 80.5));
        let mut out = Vec::new();
        table.render_text(&mut out).expect("render");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "event                count     avg ms     p50 ms     p95 ms     p99 ms     max ms"
        );
        assert_eq!(
            lines[1],
            "transcription_job        1     1250.0     1250.0     1250.0     1250.0     1250.0"
        );
        assert!(lines[2].starts_with("tts    "));
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
        let json = table.to_json();
        assert_eq!(json["events"][1]["event"], "tts");
        assert_eq!(json["events"][1]["max_ms"], 80.5);
    }
}
