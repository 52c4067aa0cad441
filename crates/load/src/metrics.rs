//! The metric set: one HDR histogram per metric, in microseconds, recorded by each worker and
//! merged once by the tally (never averaged).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Declares the metric set in one table, so adding a metric is one line here (and one line
/// where its values are taken from a call's report, in [`crate::sample`]).
macro_rules! metrics {
    ($($variant:ident => $name:literal, $about:literal;)*) => {
        /// A measured quantity, recorded in µs into its own HDR histogram.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Metric {
            $(#[doc = $about] $variant,)*
        }

        impl Metric {
            /// Every metric, in report order.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// The metric's stable name (JSON keys, `.hlog` tags, `--threshold`).
            pub fn name(self) -> &'static str {
                match self { $(Metric::$variant => $name,)* }
            }

            /// What the metric measures, from → to.
            pub fn about(self) -> &'static str {
                match self { $(Metric::$variant => $about,)* }
            }
        }
    };
}

metrics! {
    Webhook => "webhook", "voice webhook round trip: request sent to TwiML read";
    WsConnect => "ws_connect", "Media Streams WebSocket upgrade: connect started to 101 received";
    FirstAudio => "first_audio", "time to first app audio: start sent to first app media received";
    MarkRoundTrip => "mark_rtt", "mark round trip: app mark received to our echo (its audio played)";
    FrameLateness => "frame_lateness", "frame lateness: each media frame's send against its due time start + 20 ms*k";
    TurnLatency => "turn_latency", "turn latency: the caller's true end of speech to the app's first reply audio";
    TurnHeard => "turn_heard", "heard latency: the caller's true end of speech to the reply starting to be heard";
    BargeIn => "barge_in", "barge-in reaction: the caller starts talking over the app to the app's clear";
    TalkOver => "talk_over", "talk-over per call: app audio heard while the caller spoke, outside barge-ins the app handled with clear";
    VadStart => "vad_start", "app milestone vad.speech_start: the caller's true start of speech to the app noticing it";
    VadEnd => "vad_end", "app milestone vad.speech_end: the caller's true end of speech to the app noticing it";
    Transcript => "transcript", "app milestone transcript.final: the caller's true end of speech to the app's final transcript";
    AppReply => "app_reply", "app milestone reply.first_audio: the caller's true end of speech to the app sending its reply";
    StartDelay => "start_delay", "call start delay: scheduled arrival to the call actually starting (queueing for a concurrency slot or a late generator)";
    SpeechAction => "speech_action", "speech <Gather>: the caller's true end of speech to the action request with its SpeechResult";
    RelayFirstToken => "relay_first_token", "ConversationRelay first token: the caller's true end of speech to the app's first text token of its answer";
    RelayLastToken => "relay_last_token", "ConversationRelay last token: the caller's true end of speech to the answer's token with last: true";
    RelayHeard => "relay_heard", "ConversationRelay heard: the caller's true end of speech to the answer starting to be heard (simulated synthesis)";
    RelayStop => "relay_stop", "ConversationRelay stop: an interrupt to the app's last token of the cut answer (0 when it sent none)";
    RelayTokens => "relay_tokens", "ConversationRelay tokens per answered turn (a count: recorded as 1 token = 1 ms, so its figures read as tokens)";
}

impl Metric {
    /// Looks a metric up by [`Metric::name`].
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// Whether the metric counts things rather than timing them ([`Metric::RelayTokens`]):
    /// its figures are not ms, so reports show it apart from the latency table.
    pub fn is_count(self) -> bool {
        self == Metric::RelayTokens
    }

    fn index(self) -> usize {
        Metric::ALL
            .iter()
            .position(|&m| m == self)
            .expect("every metric is in ALL")
    }
}

/// Highest value a histogram holds: one hour in µs (higher values saturate).
pub const MAX_US: u64 = 3_600_000_000;

/// A new histogram as every recorder uses them: values from 1 µs, 3 significant digits,
/// growing as larger values arrive (so an interval with small values stays small to clone and
/// send); values past [`MAX_US`] are clamped.
pub fn new_histogram() -> Histogram<u64> {
    use dialtone_call::histogram::{PER_RUN_DIGITS, new_us};
    new_us(None, PER_RUN_DIGITS)
}

/// One histogram per metric, allocated on first use. Workers own one each; the tally
/// merges them.
#[derive(Debug, Clone)]
pub struct Recorder {
    hists: Vec<Option<Histogram<u64>>>,
    empty: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// No histogram yet.
    pub fn new() -> Self {
        Self {
            hists: vec![None; Metric::ALL.len()],
            empty: new_histogram(),
        }
    }

    fn slot(&mut self, metric: Metric) -> &mut Histogram<u64> {
        self.hists[metric.index()].get_or_insert_with(new_histogram)
    }

    /// Records one value in µs (clamped into the histogram's range, never failing).
    #[inline]
    pub fn record(&mut self, metric: Metric, us: u64) {
        let h = self.slot(metric);
        let v = us.clamp(1, MAX_US);
        // `record` grows the histogram; `saturating_record` would clamp to its current top.
        if h.record(v).is_err() {
            h.saturating_record(v);
        }
    }

    /// Adds what the engine recorded (a call's lateness, its round trips) to a metric. A few
    /// values go in as measured, at this recorder's precision; many come binned by the
    /// engine's histogram (2 significant digits) and are merged as such.
    pub fn add_latencies(&mut self, metric: Metric, l: &dialtone_call::Latencies) {
        match l.view() {
            dialtone_call::LatencyView::Few(values) => {
                for &us in values {
                    self.record(metric, us);
                }
            }
            dialtone_call::LatencyView::Many(h) => self.add_histogram(metric, h),
        }
    }

    /// Adds a whole histogram (e.g. a call's lateness) to a metric.
    pub fn add_histogram(&mut self, metric: Metric, h: &Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        let mine = self.slot(metric);
        if h.max() <= MAX_US && mine.add(h).is_ok() {
            return;
        }
        // Values past the range are clamped rather than lost.
        for v in h.iter_recorded() {
            let (value, n) = (v.value_iterated_to().clamp(1, MAX_US), v.count_at_value());
            if mine.record_n(value, n).is_err() {
                mine.saturating_record_n(value, n);
            }
        }
    }

    /// Merges another recorder into this one.
    pub fn merge(&mut self, other: &Recorder) {
        for m in Metric::ALL {
            if let Some(h) = &other.hists[m.index()] {
                self.add_histogram(*m, h);
            }
        }
    }

    /// The histogram of one metric (empty when nothing was recorded).
    pub fn get(&self, metric: Metric) -> &Histogram<u64> {
        self.hists[metric.index()].as_ref().unwrap_or(&self.empty)
    }

    /// Empties every histogram, keeping their memory.
    pub fn reset(&mut self) {
        for h in self.hists.iter_mut().flatten() {
            h.reset();
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hists.iter().flatten().all(|h| h.is_empty())
    }
}

/// Percentiles of one metric, in ms: the report's view of a histogram.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p99_9_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Stats {
    /// Summarises a histogram of µs.
    pub fn of(h: &Histogram<u64>) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Stats {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: round3(h.mean() / 1000.0),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p99_9_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Rounds to 3 decimals (µs resolution for ms figures), so JSON stays readable.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_merge_adds_counts() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(*m));
        }
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record(Metric::Webhook, 1000);
        b.record(Metric::Webhook, 3_941_069);
        b.record(Metric::FrameLateness, 0);
        a.merge(&b);
        assert_eq!(a.get(Metric::Webhook).len(), 2);
        assert_eq!(a.get(Metric::FrameLateness).len(), 1);
        let s = Stats::of(a.get(Metric::Webhook));
        assert_eq!(s.count, 2);
        assert!((s.max_ms - 3941.0).abs() < 5.0, "{s:?}");
    }

    #[test]
    fn engine_latencies_merge_whether_few_or_many() {
        for n in [0u64, 3, 128, 129, 1_000] {
            let mut l = dialtone_call::Latencies::new(dialtone_call::new_lateness_histogram);
            for i in 0..n {
                l.record(1_000 + i * 10);
            }
            let mut r = Recorder::new();
            r.add_latencies(Metric::MarkRoundTrip, &l);
            let h = r.get(Metric::MarkRoundTrip);
            assert_eq!(h.len(), n, "every value counted");
            if n > 0 {
                // 2 significant digits at worst: within 1 % of the true extremes.
                let (lo, hi) = (1_000.0, (1_000 + (n - 1) * 10) as f64);
                assert!(
                    (h.min() as f64 - lo).abs() <= lo * 0.01,
                    "{n}: min {}",
                    h.min()
                );
                assert!(
                    (h.max() as f64 - hi).abs() <= hi * 0.01,
                    "{n}: max {}",
                    h.max()
                );
            }
        }
    }

    #[test]
    fn foreign_histograms_merge() {
        let mut engine = dialtone_call::new_lateness_histogram();
        engine.record(1500).unwrap();
        engine.record(20_000_000).unwrap();
        let mut r = Recorder::new();
        r.add_histogram(Metric::FrameLateness, &engine);
        assert_eq!(r.get(Metric::FrameLateness).len(), 2);
    }
}
