//! What one finished call contributes to a run: its outcome class and its measurements, taken
//! from the engine's `CallReport` (never the report itself: the tally keeps histograms and
//! counters, not one record per call).

use dialtone_call::{CallReport, Latencies, Outcome};

use crate::metrics::Metric;
use crate::summary::{Conversation, DialCounts, RelayCounts};

/// One finished call, reduced to what the tally records.
#[derive(Debug)]
pub struct CallSample {
    /// The call's index in the run's schedule.
    pub index: u64,
    /// `ok`, or the failure class: the failed step and Twilio's code (`stream_connect 31920`).
    pub outcome: Outcome,
    /// Scalar measurements in µs.
    pub values: Vec<(Metric, u64)>,
    /// Every frame's lateness, per stream, when the call kept its own (the engine's record).
    pub lateness: Vec<Latencies>,
    /// Other latencies recorded by the engine (TwiML round trips, mark round trips): a call
    /// may have hundreds of thousands of values, so they may come binned, not one by one.
    pub histograms: Vec<(Metric, Latencies)>,
    /// Media frames sent on all streams.
    pub frames_sent: u64,
    /// App media messages received.
    pub media_received: u64,
    /// Clears, split turns and talk-over in the call.
    pub conversation: Conversation,
    /// Its ConversationRelay sessions' counts.
    pub relay: RelayCounts,
    /// Its `<Dial>`s' outcomes.
    pub dials: DialCounts,
    /// Injected faults by kind (`--faults`), summed over the call's streams.
    pub faults: Vec<(String, u64)>,
    /// A failed call's SID and first failure, in words (for the summary's examples, and
    /// to find the call in a `--capture` for `dialtone replay --call-sid`).
    pub failure: Option<(String, String)>,
    /// The app hung the call up through dialtone's REST API.
    pub rest_hangup: bool,
}

/// The metric an app milestone (reported to dialtone's events endpoint) is recorded under.
fn milestone_metric(name: &str) -> Option<Metric> {
    match name {
        "vad.speech_start" => Some(Metric::VadStart),
        "vad.speech_end" => Some(Metric::VadEnd),
        "transcript.final" => Some(Metric::Transcript),
        "reply.first_audio" => Some(Metric::AppReply),
        _ => None,
    }
}

fn us(ms: f64) -> u64 {
    (ms * 1000.0).round().max(0.0) as u64
}

impl CallSample {
    /// A call that counts only as its outcome, with no measurements yet (a cut or panicked
    /// call's are added from its event sink by [`crate::inflight`]).
    pub fn outcome_only(index: u64, outcome: Outcome) -> CallSample {
        CallSample {
            index,
            outcome,
            values: Vec::new(),
            lateness: Vec::new(),
            histograms: Vec::new(),
            frames_sent: 0,
            media_received: 0,
            conversation: Conversation::default(),
            relay: RelayCounts::default(),
            dials: DialCounts::default(),
            faults: Vec::new(),
            failure: None,
            rest_hangup: false,
        }
    }

    /// Reduces finished call `index` (its start delay is recorded when it starts). Taking
    /// `report` by value lets the lateness histograms move instead of being copied.
    pub fn from_report(index: u64, report: CallReport) -> CallSample {
        let outcome = Outcome::of_call(&report);
        let rest_hangup = report.end_reason.starts_with(dialtone_call::REST_HANGUP);
        let failure = (!outcome.is_ok()).then(|| {
            let what = report
                .failures
                .first()
                .map_or_else(|| report.end_reason.clone(), ToString::to_string);
            (report.call_sid.clone(), what)
        });
        let mut values = Vec::new();
        let mut histograms = vec![(Metric::Webhook, report.webhook_us)];
        let conversation = Conversation::of_call(&report.streams);
        if conversation.turns > 0 {
            // Every call with turns, talk-over or not: its p50 says how common it is.
            values.push((Metric::TalkOver, us(conversation.talk_over_ms)));
        }
        let relay = RelayCounts::of_call(&report.relay);
        let dials = DialCounts::of_call(&report.dials);
        relay_values(&report.relay, &mut values);
        values.extend(
            report
                .speech
                .iter()
                .map(|s| (Metric::SpeechAction, us(s.after_speech_ms))),
        );
        let mut lateness = Vec::with_capacity(report.streams.len());
        let (mut frames_sent, mut media_received) = (0, 0);
        let mut faults = Vec::new();
        if report.faults.armed {
            faults.push(("calls with faults".to_string(), 1));
        }
        if report.faults.webhook_abandoned {
            faults.push(("webhooks abandoned".to_string(), 1));
        }
        for s in report.streams {
            if let Some(f) = &s.faults {
                faults.extend(fault_kinds(f));
            }
            let whole_us = |d: std::time::Duration| d.as_micros() as u64;
            values.extend(s.connect.map(|d| (Metric::WsConnect, whole_us(d))));
            values.extend(
                s.time_to_first_audio
                    .map(|d| (Metric::FirstAudio, whole_us(d))),
            );
            histograms.push((Metric::MarkRoundTrip, s.mark_round_trip_us));
            for t in &s.turns {
                values.extend(t.reply.map(|d| (Metric::TurnLatency, whole_us(d))));
                values.extend(t.reply_heard.map(|d| (Metric::TurnHeard, whole_us(d))));
                values.extend(t.clear_after.map(|d| (Metric::BargeIn, whole_us(d))));
                for (name, ms, _) in &t.milestones {
                    values.extend(milestone_metric(name).map(|m| (m, us(*ms))));
                }
            }
            frames_sent += s.frames_sent;
            media_received += s.media_received;
            if !s.lateness_us.is_empty() {
                lateness.push(s.lateness_us);
            }
        }
        CallSample {
            index,
            outcome,
            values,
            lateness,
            histograms,
            frames_sent,
            media_received,
            conversation,
            relay,
            dials,
            faults,
            failure,
            rest_hangup,
        }
    }
}

/// A call's ConversationRelay latencies: per turn from the caller's true end of speech, per
/// interrupt how soon the app stopped.
fn relay_values(sessions: &[dialtone_call::relay::RelayReport], values: &mut Vec<(Metric, u64)>) {
    for r in sessions {
        for t in &r.turns {
            values.extend(t.first_token_ms.map(|ms| (Metric::RelayFirstToken, us(ms))));
            values.extend(t.last_token_ms.map(|ms| (Metric::RelayLastToken, us(ms))));
            values.extend(t.speech_ms.map(|ms| (Metric::RelayHeard, us(ms))));
            if t.first_token_ms.is_some() {
                // A count, recorded as 1 token = 1 ms (see Metric::RelayTokens).
                values.push((Metric::RelayTokens, u64::from(t.tokens) * 1000));
            }
        }
        for i in &r.interrupts {
            values.push((Metric::RelayStop, us(i.stopped_after_ms.unwrap_or(0.0))));
        }
    }
}

/// A stream's fault counts as (kind, count) pairs, the ones that happened: the summary's
/// `faults` keys.
fn fault_kinds(f: &dialtone_call::faults::FaultCounts) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = [
        ("frames delayed", f.delayed),
        ("frames paused", f.paused),
        ("frames lost", f.lost),
        ("frames duplicated", f.duplicated),
        ("frames reordered", f.reordered),
        ("sequence gaps", f.seq_gaps),
        ("bad json", f.bad_json),
        ("bad base64", f.bad_base64),
        ("wrong streamSid", f.wrong_sid),
        ("mark echoes delayed", f.marks_delayed),
        ("mark echoes dropped", f.marks_dropped),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    if let Some(end) = &f.ended {
        out.push((format!("streams ended by {end}"), 1));
    }
    out
}
