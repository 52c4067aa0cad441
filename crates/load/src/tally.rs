//! The one place results flow to: call samples (call mode) and worker intervals (stream mode)
//! are merged here into run totals, per-second series and the `.hlog` interval log. Nothing
//! here does IO or waits; the runners own the clock and call [`RunTally::tick`] once a second.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::metrics::{Metric, Recorder, Stats, round3};
use crate::proc_stats::{
    CpuSample, MachineSample, cpu_sample, load_avg, machine_sample, max_rss_kib,
};
use crate::sample::CallSample;
use crate::summary::{
    CallCounts, Conversation, DialCounts, EXAMPLES_PER_OUTCOME, FailureExample, FrameCounts,
    Generator, RelayCounts, SCHEMA, SeriesPoint, Summary, WorkloadInfo,
};
use crate::verdict::judge_generator;
use dialtone_call::Outcome;

/// One stream worker's second: what it recorded and counted since its last report.
#[derive(Debug, Clone, Default)]
pub struct WorkerInterval {
    /// Histograms recorded in the interval.
    pub rec: Recorder,
    /// Streams started (connect begun).
    pub started: u64,
    /// Streams finished.
    pub finished: u64,
    /// Finished streams by outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Finished streams, each by its index and outcome (the run's per-call record).
    pub calls: Vec<(u64, Outcome)>,
    /// Frames sent.
    pub frames: u64,
    /// Frames due by the end of the interval that were sent or are overdue.
    pub expected: u64,
    /// Frames that waited in dialtone's buffer because the socket was full.
    pub backpressured: u64,
    /// App media messages received.
    pub app_media: u64,
}

/// What a live progress line shows.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Calls in progress.
    pub active: u64,
    /// Calls started so far.
    pub started: u64,
    /// Calls finished so far.
    pub finished: u64,
    /// Calls failed so far.
    pub failed: u64,
    /// Calls started in the last second.
    pub calls_per_s: u64,
    /// Frames in the last second.
    pub frames_per_s: u64,
    /// Frame lateness so far.
    pub lateness: Stats,
}

/// Merges everything a run measures.
pub struct RunTally {
    started_wall: SystemTime,
    elapsed: Duration,
    total: Recorder,
    interval: Recorder,
    outcomes: BTreeMap<Outcome, u64>,
    faults: BTreeMap<String, u64>,
    examples: BTreeMap<Outcome, Vec<FailureExample>>,
    /// The first [`CALL_RECORDS`] calls to finish, by index, and how many more did.
    records: Vec<(u64, Outcome)>,
    records_omitted: u64,
    calls: CallCounts,
    frames: FrameCounts,
    conversation: Conversation,
    relay: RelayCounts,
    dials: DialCounts,
    cur: SeriesPoint,
    series: Vec<SeriesPoint>,
    hlog: Vec<u8>,
    serializer: V2DeflateSerializer,
    cpu_start: Option<CpuSample>,
    cpu_last: Option<CpuSample>,
    cpu_peak: Option<f64>,
    /// The whole machine's CPU at the last tick, and its cores.
    machine_last: Option<MachineSample>,
    load_avg_peak: Option<f64>,
}

impl Default for RunTally {
    fn default() -> Self {
        Self::new(SystemTime::now())
    }
}

impl RunTally {
    /// A tally for a run that starts now (`started_wall` stamps the `.hlog`).
    pub fn new(started_wall: SystemTime) -> Self {
        let mut hlog = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        // The header: start/base time and the legend standard tools expect. Interval
        // timestamps are then seconds since the base time.
        if let Ok(mut w) = IntervalLogWriterBuilder::new()
            .add_comment(
                "dialtone load: one tagged interval histogram per metric per second, values in µs",
            )
            .with_start_time(started_wall)
            .with_base_time(started_wall)
            .begin_log_with(&mut hlog, &mut serializer)
        {
            let _ = w.write_comment("");
        }
        hlog.extend_from_slice(
            b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        );
        let cpu = cpu_sample();
        Self {
            started_wall,
            elapsed: Duration::ZERO,
            total: Recorder::new(),
            interval: Recorder::new(),
            outcomes: BTreeMap::new(),
            faults: BTreeMap::new(),
            examples: BTreeMap::new(),
            records: Vec::new(),
            records_omitted: 0,
            calls: CallCounts::default(),
            frames: FrameCounts::default(),
            conversation: Conversation::default(),
            relay: RelayCounts::default(),
            dials: DialCounts::default(),
            cur: SeriesPoint::default(),
            series: Vec::new(),
            hlog,
            serializer,
            cpu_start: cpu,
            cpu_last: cpu,
            cpu_peak: None,
            machine_last: machine_sample(),
            load_avg_peak: None,
        }
    }

    /// Calls in this process's slice (count-bound runs).
    pub fn set_scheduled(&mut self, n: u64) {
        self.calls.scheduled = n;
    }

    /// A call was placed.
    pub fn call_started(&mut self, start_delay_us: Option<u64>) {
        self.calls.started += 1;
        self.cur.started += 1;
        if let Some(us) = start_delay_us {
            self.interval.record(Metric::StartDelay, us);
        }
    }

    /// Frame lateness recorded by full calls' streams since the last call of this.
    pub fn add_lateness(&mut self, h: &Histogram<u64>) {
        self.interval.add_histogram(Metric::FrameLateness, h);
    }

    /// A full call finished.
    pub fn add_call(&mut self, s: CallSample) {
        for (m, us) in &s.values {
            self.interval.record(*m, *us);
        }
        for l in &s.lateness {
            self.interval.add_latencies(Metric::FrameLateness, l);
        }
        for (m, l) in &s.histograms {
            self.interval.add_latencies(*m, l);
        }
        self.frames.sent += s.frames_sent;
        self.frames.app_media_received += s.media_received;
        self.conversation.add(&s.conversation);
        self.relay.add(&s.relay);
        self.dials.add(&s.dials);
        for (k, n) in s.faults {
            *self.faults.entry(k).or_default() += n;
        }
        if let Some((call_sid, error)) = s.failure {
            let list = self.examples.entry(s.outcome).or_default();
            if list.len() < EXAMPLES_PER_OUTCOME {
                list.push(FailureExample { call_sid, error });
            }
        }
        if s.rest_hangup {
            self.calls.rest_hangups += 1;
        }
        self.finish_one(s.outcome, 1);
        self.record(s.index, s.outcome);
    }

    fn finish_one(&mut self, outcome: Outcome, n: u64) {
        self.calls.finished += n;
        self.cur.finished += n;
        if outcome.is_ok() {
            self.calls.succeeded += n;
        } else {
            self.calls.failed += n;
            self.cur.errors += n;
        }
        *self.outcomes.entry(outcome).or_default() += n;
    }

    /// Keeps call `index`'s outcome for the per-call record, bounded.
    fn record(&mut self, index: u64, outcome: Outcome) {
        if self.records.len() < CALL_RECORDS {
            self.records.push((index, outcome));
        } else {
            self.records_omitted += 1;
        }
    }

    /// A stream worker's interval.
    pub fn add_interval(&mut self, w: &WorkerInterval) {
        self.interval.merge(&w.rec);
        self.calls.started += w.started;
        self.cur.started += w.started;
        for (k, n) in &w.outcomes {
            self.finish_one(*k, *n);
        }
        for &(index, outcome) in &w.calls {
            self.record(index, outcome);
        }
        self.frames.sent += w.frames;
        self.frames.expected += w.expected;
        self.frames.backpressured += w.backpressured;
        self.frames.app_media_received += w.app_media;
        self.cur.frames += w.frames;
    }

    /// Closes the current second at `elapsed` since the start: one series point, one set of
    /// `.hlog` intervals. `active` is the number of calls in progress; `frames` overrides the
    /// second's frame count (call mode estimates it from open streams).
    pub fn tick(&mut self, elapsed: Duration, active: u64, frames: Option<u64>) -> &SeriesPoint {
        let start = self.elapsed;
        let len = elapsed.saturating_sub(start);
        self.elapsed = elapsed;
        let lat = self.interval.get(Metric::FrameLateness);
        let ms = |q: f64| {
            if lat.is_empty() {
                0.0
            } else {
                round3(lat.value_at_quantile(q) as f64 / 1000.0)
            }
        };
        let now_cpu = cpu_sample();
        let cpu_pct = match (self.cpu_last, now_cpu) {
            // Over a few ms (a run's last partial second) CPU time is too coarse to mean
            // anything: it could read 200 %.
            (Some(a), Some(b)) if len >= Duration::from_millis(200) => Some(round3(
                100.0 * (b.total_s() - a.total_s()) / len.as_secs_f64(),
            )),
            _ => None,
        };
        self.cpu_last = now_cpu;
        let now_machine = machine_sample();
        let machine_cpu_pct = match (self.machine_last, now_machine) {
            (Some(a), Some(b)) if len >= Duration::from_millis(200) => {
                b.busy_pct_since(&a).map(round3)
            }
            _ => None,
        };
        // Keep the earlier sample over a too-short second, so the next one covers it.
        if machine_cpu_pct.is_some() || self.machine_last.is_none() {
            self.machine_last = now_machine;
        }
        if let Some(l) = load_avg() {
            self.load_avg_peak = Some(self.load_avg_peak.map_or(l, |p: f64| p.max(l)));
        }
        if let Some(c) = cpu_pct {
            self.cpu_peak = Some(self.cpu_peak.map_or(c, |p: f64| p.max(c)));
        }
        let mut point = std::mem::take(&mut self.cur);
        point.t_s = elapsed.as_secs_f64().round() as u32;
        point.active_calls = active;
        point.lateness_p50_ms = ms(0.5);
        point.lateness_p99_ms = ms(0.99);
        point.cpu_pct = cpu_pct;
        point.machine_cpu_pct = machine_cpu_pct;
        if let Some(f) = frames {
            point.frames = f;
        }
        self.write_intervals(start, len);
        self.total.merge(&self.interval);
        self.interval.reset();
        self.series.push(point);
        self.series.last().expect("just pushed")
    }

    fn write_intervals(&mut self, start: Duration, len: Duration) {
        let Ok(mut w) =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.hlog, &mut self.serializer)
        else {
            return;
        };
        for m in Metric::ALL {
            let h = self.interval.get(*m);
            if h.is_empty() {
                continue;
            }
            let tag = Tag::new(m.name());
            if let Err(e) = w.write_histogram(h, start, len, tag) {
                tracing::warn!("cannot serialise the {} interval: {e}", m.name());
            }
        }
    }

    /// The live view.
    pub fn progress(&self) -> Progress {
        let last = self.series.last().cloned().unwrap_or_default();
        let mut lat = self.total.get(Metric::FrameLateness).clone();
        lat.add(self.interval.get(Metric::FrameLateness)).ok();
        Progress {
            elapsed_s: self.elapsed.as_secs_f64(),
            active: last.active_calls,
            started: self.calls.started,
            finished: self.calls.finished,
            failed: self.calls.failed,
            calls_per_s: last.started,
            frames_per_s: last.frames,
            lateness: Stats::of(&lat),
        }
    }

    /// Ends the run: the summary (without thresholds), the run's total histograms and the
    /// `.hlog` text. Call [`RunTally::tick`] first so the last partial second is in.
    pub fn finish(mut self, run: RunInfo) -> Finished {
        if !self.interval.is_empty() {
            let t = self.elapsed + Duration::from_millis(1);
            self.tick(t, 0, None);
        }
        self.calls.not_started = self.calls.scheduled.saturating_sub(self.calls.started);
        let cpu_end = cpu_sample();
        let (user, sys) = match (self.cpu_start, cpu_end) {
            (Some(a), Some(b)) => (Some(b.user_s - a.user_s), Some(b.sys_s - a.sys_s)),
            _ => (None, None),
        };
        let per_frame = |s: Option<f64>| {
            s.filter(|_| self.frames.sent > 0)
                .map(|s| round3(s * 1e6 / self.frames.sent as f64))
        };
        let mut generator = Generator {
            verdict: String::new(),
            cause: String::new(),
            reasons: Vec::new(),
            lateness_bound_ms: run.lateness_bound.as_secs_f64() * 1000.0,
            cores: run.cores,
            cpu_peak_pct: self.cpu_peak,
            cpu_user_s: user.map(round3),
            cpu_sys_s: sys.map(round3),
            user_us_per_frame: per_frame(user),
            sys_us_per_frame: per_frame(sys),
            max_rss_kib: max_rss_kib(),
            cpu_mean_pct: None,
            machine_cores: self.machine_last.map(|m| m.cores).filter(|&c| c > 0),
            machine_cpu_mean_pct: None,
            machine_cpu_peak_pct: None,
            load_avg_peak: self.load_avg_peak,
        };
        judge_generator(&mut generator, &self.total, &self.series, &run.mode);
        let metrics = Metric::ALL
            .iter()
            .filter(|m| !self.total.get(**m).is_empty())
            .map(|m| (m.name().to_string(), Stats::of(self.total.get(*m))))
            .collect();
        let summary = Summary {
            schema: SCHEMA.to_string(),
            dialtone_version: env!("CARGO_PKG_VERSION").to_string(),
            mode: run.mode,
            target: run.target,
            started_at_unix_ms: self
                .started_wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            elapsed_s: round3(self.elapsed.as_secs_f64()),
            interrupted: run.interrupted,
            shards: vec![run.shard],
            workload: run.workload,
            calls: self.calls,
            frames: self.frames,
            conversation: self.conversation,
            relay: self.relay,
            dials: self.dials,
            // Rendered here, once: the summary (and shard files merged later) key by text.
            outcomes: self
                .outcomes
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            faults: self.faults,
            examples: self
                .examples
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            metrics,
            series: self.series,
            generator,
            thresholds: Vec::new(),
        };
        let seed = summary.workload.seed;
        let mut records = self.records;
        records.sort_unstable_by_key(|&(index, _)| index);
        let calls = CallRecords {
            calls: records
                .into_iter()
                .map(|(index, outcome)| CallRecord {
                    index,
                    call_sid: crate::plan::call_sid(seed, index),
                    outcome,
                })
                .collect(),
            omitted: self.records_omitted,
        };
        Finished {
            summary,
            totals: self.total,
            hlog: self.hlog,
            calls: Some(calls),
        }
    }
}

/// A finished run.
pub struct Finished {
    /// The report.
    pub summary: Summary,
    /// Whole-run histograms, per metric.
    pub totals: Recorder,
    /// The interval log text.
    pub hlog: Vec<u8>,
    /// Every call's outcome, by index (the first [`CALL_RECORDS`] to finish); `None` for
    /// results merged from shards (`report merge`), which keep theirs in their own folders.
    pub calls: Option<CallRecords>,
}

/// Most calls the per-call record keeps (`calls.jsonl`): 100,000 lines of ~90 bytes; the
/// summary counts every call.
pub const CALL_RECORDS: usize = 100_000;

/// One finished call (or bare stream) of a run, as `calls.jsonl` writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Its index in the run's schedule.
    pub index: u64,
    /// Its `CallSid` (both paths derive it from the seed and the index).
    pub call_sid: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// The calls of a run, by index, bounded.
#[derive(Debug, Clone, Default)]
pub struct CallRecords {
    /// The first [`CALL_RECORDS`] calls to finish, sorted by index.
    pub calls: Vec<CallRecord>,
    /// Calls that finished after those and are left out.
    pub omitted: u64,
}

/// What the tally cannot know by itself.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `call` or `stream`.
    pub mode: String,
    /// URL.
    pub target: String,
    /// The slice run.
    pub shard: crate::plan::Shard,
    /// The workload as configured.
    pub workload: WorkloadInfo,
    /// Stopped early.
    pub interrupted: bool,
    /// Own lateness above this means dialtone was late.
    pub lateness_bound: Duration,
    /// Cores available.
    pub cores: u32,
}

/// Sums histograms per metric from `.hlog` text (all intervals, every tag this build
/// knows); also returns per-second lateness intervals for series.
pub fn read_hlog(text: &[u8]) -> Result<HlogTotals, crate::LoadError> {
    use base64::Engine as _;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let mut totals = Recorder::new();
    let mut lateness_by_second: BTreeMap<u32, Histogram<u64>> = BTreeMap::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(text) {
        let entry =
            entry.map_err(|e| crate::LoadError::Input(format!("unreadable .hlog: {e:?}")))?;
        let LogEntry::Interval(ih) = entry else {
            continue;
        };
        let Some(metric) = ih.tag().and_then(|t| Metric::from_name(t.as_str())) else {
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(ih.encoded_histogram())
            .map_err(|e| crate::LoadError::Input(format!("bad histogram in .hlog: {e}")))?;
        let h: Histogram<u64> = de
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| crate::LoadError::Input(format!("bad histogram in .hlog: {e:?}")))?;
        totals.add_histogram(metric, &h);
        if metric == Metric::FrameLateness {
            let sec = (ih.start_timestamp() + ih.duration()).as_secs_f64().round() as u32;
            lateness_by_second
                .entry(sec)
                .or_insert_with(crate::metrics::new_histogram)
                .add(&h)
                .ok();
        }
    }
    Ok(HlogTotals {
        totals,
        lateness_by_second,
    })
}

/// What an `.hlog` holds, summed.
pub struct HlogTotals {
    /// Per metric, all intervals added.
    pub totals: Recorder,
    /// Frame lateness per second (interval end, rounded).
    pub lateness_by_second: BTreeMap<u32, Histogram<u64>>,
}
