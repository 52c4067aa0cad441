//! The run's report as data: the `summary.json` contract (`schema.json` beside this crate),
//! built from the tally's histograms and counters, and read back by `report merge`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::Stats;
use crate::plan::Shard;

/// Identifies the summary format; bumped on an incompatible change.
pub const SCHEMA: &str = "dialtone-load/1";

/// Everything a run reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// dialtone's version.
    pub dialtone_version: String,
    /// `call` (full call path) or `stream` (Media Streams only).
    pub mode: String,
    /// The webhook or stream URL.
    pub target: String,
    /// Wall-clock start, ms since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// Run length.
    pub elapsed_s: f64,
    /// Stopped early by Ctrl-C / SIGTERM.
    pub interrupted: bool,
    /// The shard slices this report covers (one, or several after a merge).
    pub shards: Vec<Shard>,
    /// What was asked for.
    pub workload: WorkloadInfo,
    /// Calls by stage.
    pub calls: CallCounts,
    /// Media frames.
    pub frames: FrameCounts,
    /// The conversation as callers had it (call mode): clears, split turns, talk-over.
    #[serde(default)]
    pub conversation: Conversation,
    /// ConversationRelay sessions (call mode): how they ended, their turns, tokens,
    /// interrupts and errors; absent when no call ran one.
    #[serde(default, skip_serializing_if = "RelayCounts::is_empty")]
    pub relay: RelayCounts,
    /// `<Dial>`s (call mode): transfers by outcome, conferences joined; absent when no
    /// call dialed.
    #[serde(default, skip_serializing_if = "DialCounts::is_empty")]
    pub dials: DialCounts,
    /// Finished calls by outcome class (`ok`, or failed step and Twilio code).
    pub outcomes: BTreeMap<String, u64>,
    /// Injected faults by kind (`--faults`); empty without faults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub faults: BTreeMap<String, u64>,
    /// The first few failed calls of each failed outcome class: which call, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub examples: BTreeMap<String, Vec<FailureExample>>,
    /// One entry per metric with samples, by metric name.
    pub metrics: BTreeMap<String, Stats>,
    /// One point per second of the run.
    pub series: Vec<SeriesPoint>,
    /// Whether dialtone itself limited the run.
    pub generator: Generator,
    /// `--threshold` verdicts.
    pub thresholds: Vec<ThresholdResult>,
}

/// How many failed calls per outcome class the summary names.
pub const EXAMPLES_PER_OUTCOME: usize = 3;

/// One failed call, named.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailureExample {
    /// Its call SID (to find it in a `--capture` file, or the app's logs).
    pub call_sid: String,
    /// Its first failure, in words.
    pub error: String,
}

/// The workload as configured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkloadInfo {
    /// Call count, when the run is bound by a count.
    pub calls: Option<u64>,
    /// Arrival window, when bound by a duration.
    pub duration_s: Option<f64>,
    /// Concurrency limit (all shards).
    pub concurrency: u64,
    /// Steady arrival rate, calls/s, when set.
    pub rate_per_s: Option<f64>,
    /// Ramp-up.
    pub ramp_s: f64,
    /// Seed.
    pub seed: u64,
    /// Stream mode: media seconds per stream.
    pub media_s: Option<f64>,
    /// Caller profiles and their weights.
    pub profiles: BTreeMap<String, u32>,
}

/// Calls by stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CallCounts {
    /// In this process's slice of the schedule (known up front for count-bound runs).
    pub scheduled: u64,
    /// Placed.
    pub started: u64,
    /// Finished (any outcome).
    pub finished: u64,
    /// Finished with outcome `ok`.
    pub succeeded: u64,
    /// Finished with a failure.
    pub failed: u64,
    /// Scheduled but never started (the run was interrupted).
    pub not_started: u64,
    /// Finished because the app hung them up through dialtone's REST API (counted in
    /// `succeeded` or `failed` as well, by their outcome).
    #[serde(default)]
    pub rest_hangups: u64,
}

/// Media frame counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FrameCounts {
    /// `media` messages sent.
    pub sent: u64,
    /// Stream mode: frames the schedule called for by the end (sent + overdue).
    pub expected: u64,
    /// App `media` messages received.
    pub app_media_received: u64,
    /// Stream mode: frames that found the socket full and waited in dialtone's buffer (the
    /// app, or the network, was not reading fast enough).
    pub backpressured: u64,
}

/// Turns shorter than this much talk-over are not counted as turns (or calls) with
/// talk-over: one 20 ms frame of overlap is below what a caller notices, and within the
/// placement of the turn boundaries. Their ms still add to the total.
pub const TALK_OVER_MIN_MS: f64 = 20.0;

/// What the calls' conversations had in them, beyond latencies: counts that add up across
/// calls and shards (a call's own counts have 0 or 1 in each `calls_with_*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Conversation {
    /// Caller turns measured (those with ground truth, or detected in the caller's audio).
    pub turns: u64,
    /// `clear` messages the app sent.
    pub clears: u64,
    /// Calls in which the app sent at least one `clear`.
    pub calls_with_clears: u64,
    /// Turns the app's VAD split: it reported `vad.speech_start` again inside them.
    pub split_turns: u64,
    /// Those extra `vad.speech_start`s.
    pub vad_splits: u64,
    /// Calls with at least one split turn.
    pub calls_with_split_turns: u64,
    /// App audio heard over the caller's speech, outside barge-ins the app handled, ms.
    pub talk_over_ms: f64,
    /// Turns with at least [`TALK_OVER_MIN_MS`] of talk-over.
    pub talk_over_turns: u64,
    /// Calls with at least one such turn.
    pub calls_with_talk_over: u64,
}

impl Conversation {
    /// Adds another call's (or shard's) counts.
    pub fn add(&mut self, o: &Conversation) {
        self.turns += o.turns;
        self.clears += o.clears;
        self.calls_with_clears += o.calls_with_clears;
        self.split_turns += o.split_turns;
        self.vad_splits += o.vad_splits;
        self.calls_with_split_turns += o.calls_with_split_turns;
        self.talk_over_ms = crate::metrics::round3(self.talk_over_ms + o.talk_over_ms);
        self.talk_over_turns += o.talk_over_turns;
        self.calls_with_talk_over += o.calls_with_talk_over;
    }

    /// One finished call's counts, from its streams.
    pub fn of_call(streams: &[dialtone_call::StreamReport]) -> Conversation {
        let mut c = Conversation::default();
        for s in streams {
            c.clears += s.clears;
            for t in &s.turns {
                c.turns += 1;
                c.vad_splits += u64::from(t.vad_splits);
                c.split_turns += u64::from(t.vad_splits > 0);
                c.talk_over_ms += t.talk_over_ms;
                c.talk_over_turns += u64::from(t.talk_over_ms >= TALK_OVER_MIN_MS);
            }
        }
        c.talk_over_ms = crate::metrics::round3(c.talk_over_ms);
        c.calls_with_clears = u64::from(c.clears > 0);
        c.calls_with_split_turns = u64::from(c.split_turns > 0);
        c.calls_with_talk_over = u64::from(c.talk_over_turns > 0);
        c
    }
}

/// What the calls' ConversationRelay sessions had in them, summed over calls and shards
/// (their latencies are the `relay_*` metrics).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RelayCounts {
    /// Sessions that ran (the socket opened).
    pub sessions: u64,
    /// Sessions the app ended (`end`).
    pub ended: u64,
    /// Sessions that ran until the caller hung up (or the call was ended from outside).
    pub completed: u64,
    /// Sessions that failed under the call (socket closed or broken, too many malformed
    /// messages).
    pub failed: u64,
    /// Caller turns whose final `prompt` went out.
    pub prompts: u64,
    /// Of those, turns the app answered (a first token).
    pub answered: u64,
    /// Answered turns whose answer never ended with `last: true`.
    pub unfinished: u64,
    /// Text tokens the app sent.
    pub tokens: u64,
    /// `interrupt`s sent (the caller spoke or keyed over the agent).
    pub interrupts: u64,
    /// Interrupts after which the app still sent tokens of the cut answer.
    pub interrupts_not_stopped: u64,
    /// `error`s sent for app messages Twilio could not use.
    pub errors_sent: u64,
}

impl RelayCounts {
    /// True when no session ran.
    pub fn is_empty(&self) -> bool {
        self.sessions == 0
    }

    /// Adds another call's (or shard's) counts.
    pub fn add(&mut self, o: &RelayCounts) {
        self.sessions += o.sessions;
        self.ended += o.ended;
        self.completed += o.completed;
        self.failed += o.failed;
        self.prompts += o.prompts;
        self.answered += o.answered;
        self.unfinished += o.unfinished;
        self.tokens += o.tokens;
        self.interrupts += o.interrupts;
        self.interrupts_not_stopped += o.interrupts_not_stopped;
        self.errors_sent += o.errors_sent;
    }

    /// One finished call's counts, from its sessions.
    pub fn of_call(sessions: &[dialtone_call::relay::RelayReport]) -> RelayCounts {
        use dialtone_call::relay::SessionStatus;
        let mut c = RelayCounts::default();
        for r in sessions {
            c.sessions += 1;
            match r.end.as_ref().map(|e| e.status) {
                Some(SessionStatus::Ended) => c.ended += 1,
                Some(SessionStatus::Failed) => c.failed += 1,
                Some(SessionStatus::Completed) | None => c.completed += 1,
            }
            for t in &r.turns {
                c.prompts += u64::from(t.prompt_ms.is_some());
                c.answered += u64::from(t.first_token_ms.is_some());
                c.unfinished += u64::from(t.first_token_ms.is_some() && t.last_token_ms.is_none());
            }
            c.tokens += u64::from(r.tokens);
            c.interrupts += r.interrupts.len() as u64;
            c.interrupts_not_stopped +=
                r.interrupts.iter().filter(|i| i.tokens_after > 0).count() as u64;
            c.errors_sent += u64::from(r.errors_sent);
        }
        c
    }
}

/// What the calls' `<Dial>`s came to, summed over calls and shards: transfers and their
/// outcomes (`DialCallStatus`), conferences joined.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DialCounts {
    /// `<Dial>`s that ran.
    pub dials: u64,
    /// Of those, answered and bridged to a number (`completed`).
    pub completed: u64,
    /// … to a number dialtone hosts (an app's call, not a simulated callee).
    pub to_apps: u64,
    /// `busy`.
    pub busy: u64,
    /// `no-answer`.
    pub no_answer: u64,
    /// `failed`.
    pub failed: u64,
    /// `canceled` (the caller hung up or the call was redirected before an answer).
    pub canceled: u64,
    /// Conferences joined (`answered`).
    pub conferences: u64,
}

impl DialCounts {
    /// True when no call dialed.
    pub fn is_empty(&self) -> bool {
        self.dials == 0
    }

    /// Adds another call's (or shard's) counts.
    pub fn add(&mut self, o: &DialCounts) {
        self.dials += o.dials;
        self.completed += o.completed;
        self.to_apps += o.to_apps;
        self.busy += o.busy;
        self.no_answer += o.no_answer;
        self.failed += o.failed;
        self.canceled += o.canceled;
        self.conferences += o.conferences;
    }

    /// One finished call's counts, from its dials.
    pub fn of_call(dials: &[dialtone_call::dial::DialReport]) -> DialCounts {
        use dialtone_call::dial::DialStatus as S;
        let mut c = DialCounts::default();
        for d in dials {
            c.dials += 1;
            match d.status {
                S::Completed => c.completed += 1,
                S::Answered => c.conferences += 1,
                S::Busy => c.busy += 1,
                S::NoAnswer => c.no_answer += 1,
                S::Failed => c.failed += 1,
                S::Canceled => c.canceled += 1,
            }
            c.to_apps += u64::from(d.app.is_some());
        }
        c
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesPoint {
    /// Seconds since the start (end of the interval).
    pub t_s: u32,
    /// Calls in progress at the end of the second.
    pub active_calls: u64,
    /// Calls started in the second.
    pub started: u64,
    /// Calls finished in the second.
    pub finished: u64,
    /// Calls that finished with a failure in the second.
    pub errors: u64,
    /// Media frames sent in the second (call mode: open streams × 50, the engine's pace).
    pub frames: u64,
    /// Frame lateness p50 in the second.
    pub lateness_p50_ms: f64,
    /// Frame lateness p99 in the second.
    pub lateness_p99_ms: f64,
    /// dialtone's CPU in the second, % of one core.
    pub cpu_pct: Option<f64>,
    /// The whole machine's busy CPU in the second, % of all its cores (0–100; `/proc/stat`).
    #[serde(default)]
    pub machine_cpu_pct: Option<f64>,
}

/// Whether the generator, not the app, was the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Generator {
    /// `ok`; `bottleneck` (dialtone saturated, or its own frames late); `machine_busy`
    /// (other work kept the machine busy while dialtone's CPU was low); `app_backpressure`
    /// (call mode: frames late with neither busy, so the app was slow to read).
    pub verdict: String,
    /// Which cause: `dialtone_saturated`, `dialtone_late`, `machine_busy`,
    /// `app_backpressure`, or empty when ok.
    #[serde(default)]
    pub cause: String,
    /// Why, in words, with dialtone's and the machine's CPU (empty when ok).
    pub reasons: Vec<String>,
    /// Frame lateness above which dialtone counts itself late.
    pub lateness_bound_ms: f64,
    /// Cores available to dialtone.
    pub cores: u32,
    /// Peak CPU over any second, % of one core.
    pub cpu_peak_pct: Option<f64>,
    /// User CPU time.
    pub cpu_user_s: Option<f64>,
    /// System CPU time.
    pub cpu_sys_s: Option<f64>,
    /// User CPU per frame sent, µs.
    pub user_us_per_frame: Option<f64>,
    /// System CPU per frame sent, µs.
    pub sys_us_per_frame: Option<f64>,
    /// Peak resident memory, KiB.
    pub max_rss_kib: Option<u64>,
    /// dialtone's mean CPU over the measured seconds, % of one core.
    #[serde(default)]
    pub cpu_mean_pct: Option<f64>,
    /// The machine's CPUs (`/proc/stat`), which may be more than dialtone's `cores`.
    #[serde(default)]
    pub machine_cores: Option<u32>,
    /// The machine's mean busy CPU, % of all its cores.
    #[serde(default)]
    pub machine_cpu_mean_pct: Option<f64>,
    /// The machine's busiest second, % of all its cores.
    #[serde(default)]
    pub machine_cpu_peak_pct: Option<f64>,
    /// Highest 1-minute load average seen (`/proc/loadavg`), to compare with the cores.
    #[serde(default)]
    pub load_avg_peak: Option<f64>,
}

/// One `--threshold` and its verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    /// The expression as given.
    pub expr: String,
    /// Passed.
    pub passed: bool,
    /// The measured value, in the expression's unit.
    pub actual: Option<f64>,
    /// Why it failed, in words.
    pub detail: String,
}

impl Summary {
    /// True when the generator kept up.
    pub fn generator_ok(&self) -> bool {
        self.generator.verdict == "ok"
    }
}

#[cfg(test)]
mod tests {
    use dialtone_call::relay::{RelayInterrupt, RelayReport, RelayTurn, SessionEnd, SessionStatus};

    use super::RelayCounts;

    fn turn(index: u32, first: Option<f64>, last: Option<f64>, tokens: u32) -> RelayTurn {
        RelayTurn {
            index,
            text: "words".into(),
            prompt_ms: Some(500.0),
            first_token_ms: first,
            last_token_ms: last,
            speech_ms: first.map(|f| f + 200.0),
            tokens,
        }
    }

    fn ended(status: SessionStatus) -> Option<SessionEnd> {
        Some(SessionEnd {
            status,
            at_ms: 1000.0,
            handoff_data: None,
            error: None,
        })
    }

    #[test]
    fn relay_counts_say_how_sessions_ended_and_which_answers_never_finished() {
        let interrupt = |tokens_after| RelayInterrupt {
            at_ms: 900.0,
            utterance: "Sure".into(),
            duration_ms: 300,
            tokens_after,
            stopped_after_ms: None,
        };
        let a = RelayReport {
            turns: vec![
                turn(1, Some(650.0), Some(750.0), 5),
                turn(2, Some(650.0), None, 3),
                RelayTurn {
                    prompt_ms: None,
                    ..turn(3, None, None, 0)
                },
            ],
            interrupts: vec![interrupt(0), interrupt(2)],
            tokens: 10,
            errors_sent: 1,
            end: ended(SessionStatus::Ended),
            ..RelayReport::default()
        };
        let b = RelayReport {
            end: ended(SessionStatus::Failed),
            ..RelayReport::default()
        };
        // Still running when the call ended: counted as completed.
        let c = RelayReport::default();
        let mut counts = RelayCounts::of_call(&[a, b]);
        counts.add(&RelayCounts::of_call(&[c]));
        assert_eq!(
            counts,
            RelayCounts {
                sessions: 3,
                ended: 1,
                completed: 1,
                failed: 1,
                prompts: 2,
                answered: 2,
                unfinished: 1,
                tokens: 10,
                interrupts: 2,
                interrupts_not_stopped: 1,
                errors_sent: 1,
            }
        );
        assert!(RelayCounts::default().is_empty() && !counts.is_empty());
    }
}

#[cfg(test)]
mod dial_tests {
    use super::DialCounts;
    use dialtone_call::dial::{DialReport, DialStatus};

    fn dial(status: DialStatus) -> DialReport {
        DialReport {
            to: vec!["+15550001111".into()],
            status,
            leg_sid: None,
            answered_by: None,
            answer_ms: None,
            duration_ms: 0.0,
            ended_by: String::new(),
            app: None,
        }
    }

    #[tokio::test]
    async fn dial_counts_sort_outcomes_and_add_across_calls() {
        // A hosted app's call report: any real one (here, an app that cannot be reached).
        let cfg = dialtone_call::CallConfig::new(
            "http://127.0.0.1:1/voice",
            std::sync::Arc::new(dialtone_audio::FrameSet::from_mulaw(&[0xFF; 160])),
        );
        let app = dialtone_call::Engine::new()
            .place_call(cfg, None)
            .await
            .report;
        let mut hosted = dial(DialStatus::Completed);
        hosted.app = Some(Box::new(app));
        let a = DialCounts::of_call(&[
            hosted,
            dial(DialStatus::Completed),
            dial(DialStatus::Busy),
            dial(DialStatus::Answered),
        ]);
        let b = DialCounts::of_call(&[
            dial(DialStatus::NoAnswer),
            dial(DialStatus::Failed),
            dial(DialStatus::Canceled),
        ]);
        let mut sum = a.clone();
        sum.add(&b);
        assert_eq!(
            sum,
            DialCounts {
                dials: 7,
                completed: 2,
                to_apps: 1,
                busy: 1,
                no_answer: 1,
                failed: 1,
                canceled: 1,
                conferences: 1,
            }
        );
        assert!(DialCounts::of_call(&[]).is_empty());
    }
}
