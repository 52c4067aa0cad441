//! Real-time transcription (`<Start><Transcription>`), sans-IO: when the simulated
//! recognizer reports what it heard on each track, what each `statusCallbackUrl` request
//! carries, and what the call's report and timeline say. Time comes in as an argument; the
//! executor's task (`executor/transcription.rs`) owns the clock and the callbacks.
//!
//! An utterance (a caller turn, a `<Say>`) gives, under `partialResults`, a result every
//! `partial_every` from its start while its words grow, then its final result the
//! recognition delay after its end. Stopping cuts every utterance short: the recognizer
//! finalizes the words it heard, the rest are never said. `params`: the callbacks'
//! parameters; `report`: the timeline's steps and the report's entries.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::relay::SpeechModel;
use crate::speech::{WordErrors, first_words, recognize, words_at};

mod params;
mod report;

pub(crate) use params::{Ids, content_params, started_params, stopped_params};
pub use report::{FinalResult, TranscriptionEvent, TranscriptionReport};

/// Utterances one transcription keeps pending at once; past this they are dropped and
/// counted. Utterances join as they start ([`Schedule::later`], [`Schedule::repeat`]), so
/// only ones said or recognized at the same moment count against it.
pub(crate) const MAX_UTTERANCES: usize = 256;
/// Words of one utterance the recognizer hears; the rest are dropped (a `<Say>` may hold a
/// 64 KB document's worth of text).
pub(crate) const MAX_WORDS: usize = 200;
/// Final results a report lists per transcription (the rest are counted).
pub(crate) const RESULTS_KEPT: usize = 50;
/// Twilio's warning for a transcription event the app's callback URL did not accept
/// (twilio.com/docs/api/errors/94100, "Transcriptions: status callback response error").
pub const CALLBACK_FAILED: u32 = 94100;

/// Which side of the call an utterance is on, as `Track` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Side {
    /// The caller: `inbound_track`.
    #[serde(rename = "inbound_track")]
    Inbound,
    /// What the call plays to the caller (`<Say>`): `outbound_track`.
    #[serde(rename = "outbound_track")]
    Outbound,
}

impl Side {
    /// `inbound_track` or `outbound_track`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Inbound => "inbound_track",
            Side::Outbound => "outbound_track",
        }
    }
}

/// Something said on one track.
#[derive(Debug, Clone)]
pub(crate) struct Utterance {
    /// Its track.
    pub(crate) side: Side,
    /// Speech starts.
    pub(crate) start: Instant,
    /// Speech ends.
    pub(crate) end: Instant,
    /// The words as said.
    pub(crate) text: String,
    /// Tells utterances apart for the word-error model.
    pub(crate) salt: u64,
}

/// One result the recognizer reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recognition {
    /// When it is reported.
    pub(crate) at: Instant,
    /// Its track.
    pub(crate) side: Side,
    /// The words recognized so far.
    pub(crate) transcript: String,
    /// 0 to 1.
    pub(crate) confidence: f64,
    /// `Final`: the utterance is over; otherwise an interim (partial) result.
    pub(crate) is_final: bool,
    /// When its utterance's speech ended (for the final's latency).
    pub(crate) speech_end: Instant,
}

/// A `<Say>` playing `loops` times (0: until cut), each loop `once` long from `start`.
#[derive(Debug, Clone)]
pub(crate) struct Repeat {
    start: Instant,
    once: Duration,
    loops: u32,
    text: String,
    /// The first loop's salt; each later loop adds its index.
    salt: u64,
    /// Loops that have joined the schedule.
    next: u32,
}

impl Repeat {
    /// `text` said `loops` times (0: until cut), each `once` long from `start`.
    pub(crate) fn new(start: Instant, once: Duration, loops: u32, text: String, salt: u64) -> Self {
        Self {
            start,
            once,
            loops,
            text,
            salt,
            next: 0,
        }
    }

    /// When the next loop starts, if one is still to come.
    fn next_start(&self) -> Option<Instant> {
        let more = self.loops == 0 || self.next < self.loops;
        // A zero-length loop would repeat forever at one instant: it is said once.
        let more = more && !(self.once.is_zero() && self.next > 0);
        more.then(|| self.start.checked_add(self.once.checked_mul(self.next)?))
            .flatten()
    }
}

/// A pending result: which utterance, and how many of its words it carries.
#[derive(Debug, Clone, Copy)]
struct Entry {
    utterance: u64,
    words: usize,
    is_final: bool,
}

/// The results still to come, in time order.
#[derive(Debug)]
pub(crate) struct Schedule {
    model: SpeechModel,
    partials: bool,
    errors: Option<WordErrors>,
    /// Keyed by (due, insertion order), so equal instants keep their order.
    pending: BTreeMap<(Instant, u64), Entry>,
    /// Utterances with a result still pending.
    utterances: BTreeMap<u64, Utterance>,
    /// Utterances yet to start, by start: they join as they start.
    upcoming: VecDeque<Utterance>,
    /// The `<Say>` repeating on the outbound track.
    repeat: Option<Repeat>,
    next_id: u64,
    /// Results scheduled so far (orders equal instants).
    seq: u64,
    /// Utterances dropped past [`MAX_UTTERANCES`].
    pub(crate) dropped: u64,
}

impl Schedule {
    /// A recognizer timed by `model`, reporting partial results when `partials`.
    pub(crate) fn new(model: SpeechModel, partials: bool, errors: Option<WordErrors>) -> Self {
        Self {
            model,
            partials,
            errors,
            pending: BTreeMap::new(),
            utterances: BTreeMap::new(),
            upcoming: VecDeque::new(),
            repeat: None,
            next_id: 0,
            seq: 0,
            dropped: 0,
        }
    }

    /// Schedules `u`'s results; an utterance with no words gives none.
    pub(crate) fn add(&mut self, mut u: Utterance) {
        let words: Vec<&str> = u.text.split_whitespace().take(MAX_WORDS).collect();
        if words.is_empty() || u.end < u.start {
            return;
        }
        if self.utterances.len() >= MAX_UTTERANCES {
            self.dropped += 1;
            return;
        }
        let total = words.len();
        u.text = words.join(" ");
        let id = self.next_id;
        self.next_id += 1;
        let span = u.end - u.start;
        if self.partials && !self.model.partial_every.is_zero() {
            let mut t = u.start + self.model.partial_every;
            let mut said = 0;
            while t < u.end {
                let n = words_at(total, span, t - u.start);
                if n > said && n < total {
                    self.push(t, id, n, false);
                    said = n;
                }
                t += self.model.partial_every;
            }
        }
        self.push(u.end + self.model.recognition_delay, id, total, true);
        self.utterances.insert(id, u);
    }

    /// Schedules `u` once it starts (utterances given in start order): a caller with
    /// thousands of turns holds the recognizer one turn at a time.
    pub(crate) fn later(&mut self, u: Utterance) {
        self.upcoming.push_back(u);
    }

    /// Schedules each loop of `r` as it starts, replacing the `<Say>` repeating before.
    pub(crate) fn repeat(&mut self, r: Repeat) {
        self.repeat = Some(r);
    }

    /// Schedules the utterances that have started by `now`.
    fn start_due(&mut self, now: Instant) {
        while self.upcoming.front().is_some_and(|u| u.start <= now) {
            if let Some(u) = self.upcoming.pop_front() {
                self.add(u);
            }
        }
        while let Some(r) = self.repeat.as_mut() {
            let Some(start) = r.next_start().filter(|s| *s <= now) else {
                break;
            };
            let u = Utterance {
                side: Side::Outbound,
                start,
                end: start + r.once,
                text: r.text.clone(),
                salt: r.salt.wrapping_add(u64::from(r.next)),
            };
            r.next += 1;
            self.add(u);
        }
    }

    fn push(&mut self, at: Instant, utterance: u64, words: usize, is_final: bool) {
        self.seq += 1;
        self.pending.insert(
            (at, self.seq),
            Entry {
                utterance,
                words,
                is_final,
            },
        );
    }

    /// When the next result is due or the next utterance starts.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.pending.keys().next().map(|(at, _)| *at),
            self.upcoming.front().map(|u| u.start),
            self.repeat.as_ref().and_then(Repeat::next_start),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The results due by `now`, in order.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Recognition> {
        self.start_due(now);
        let mut out = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, _), e) = entry.remove_entry();
            if let Some(r) = self.result(at, e) {
                out.push(r);
            }
        }
        out
    }

    fn result(&mut self, at: Instant, e: Entry) -> Option<Recognition> {
        let u = if e.is_final {
            self.utterances.remove(&e.utterance)?
        } else {
            self.utterances.get(&e.utterance)?.clone()
        };
        let r = recognize(&first_words(&u.text, e.words), self.errors.as_ref(), u.salt);
        Some(Recognition {
            at,
            side: u.side,
            transcript: r.text,
            confidence: r.confidence,
            is_final: e.is_final,
            speech_end: u.end,
        })
    }

    /// Cuts the utterances (of `side`, or all) still being said or recognized at `at`:
    /// their pending results go, and each that had words by `at` gets its final at
    /// `final_at` with those words (the recognizer finalizes what it heard). Those yet to
    /// start by `at` are never said.
    pub(crate) fn cut(&mut self, at: Instant, side: Option<Side>, final_at: Instant) {
        self.start_due(at);
        self.upcoming.retain(|u| side.is_some_and(|s| s != u.side));
        if side != Some(Side::Inbound) {
            self.repeat = None;
        }
        let cut: Vec<u64> = self
            .utterances
            .iter()
            .filter(|(_, u)| side.is_none_or(|s| s == u.side))
            .map(|(id, _)| *id)
            .collect();
        self.pending.retain(|_, e| !cut.contains(&e.utterance));
        for id in cut {
            let Some(mut u) = self.utterances.remove(&id) else {
                continue;
            };
            let total = u.text.split_whitespace().count();
            let heard = if at >= u.end {
                total
            } else if at <= u.start {
                0
            } else {
                words_at(total, u.end - u.start, at - u.start)
            };
            if heard == 0 {
                continue;
            }
            u.end = u.end.min(at);
            self.utterances.insert(id, u);
            self.push(final_at, id, heard, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> SpeechModel {
        SpeechModel {
            recognition_delay: Duration::from_millis(500),
            partial_every: Duration::from_millis(300),
            ..SpeechModel::default()
        }
    }

    fn utterance(t0: Instant, side: Side, from_ms: u64, to_ms: u64, text: &str) -> Utterance {
        Utterance {
            side,
            start: t0 + Duration::from_millis(from_ms),
            end: t0 + Duration::from_millis(to_ms),
            text: text.into(),
            salt: from_ms,
        }
    }

    fn all(s: &mut Schedule, t0: Instant) -> Vec<(u64, Side, String, bool)> {
        s.due(t0 + Duration::from_secs(3600))
            .into_iter()
            .map(|r| {
                let ms = (r.at - t0).as_millis() as u64;
                (ms, r.side, r.transcript, r.is_final)
            })
            .collect()
    }

    #[test]
    fn a_final_after_the_recognition_delay_and_partials_that_grow() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), true, None);
        s.add(utterance(
            t0,
            Side::Inbound,
            1000,
            2200,
            "one two three four",
        ));
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_millis(1300)));
        assert_eq!(
            all(&mut s, t0),
            vec![
                (1300, Side::Inbound, "one".into(), false),
                (1600, Side::Inbound, "one two".into(), false),
                (1900, Side::Inbound, "one two three".into(), false),
                (2700, Side::Inbound, "one two three four".into(), true),
            ]
        );
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn without_partials_only_finals_in_time_order_across_tracks() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), false, None);
        s.add(utterance(t0, Side::Outbound, 0, 1000, "hello there"));
        s.add(utterance(t0, Side::Inbound, 200, 700, "hi"));
        s.add(utterance(t0, Side::Inbound, 5000, 5000, "   "));
        assert_eq!(
            all(&mut s, t0),
            vec![
                (1200, Side::Inbound, "hi".into(), true),
                (1500, Side::Outbound, "hello there".into(), true),
            ]
        );
    }

    #[test]
    fn due_returns_only_what_is_due() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), false, None);
        s.add(utterance(t0, Side::Inbound, 0, 100, "a"));
        s.add(utterance(t0, Side::Inbound, 1000, 1100, "b"));
        assert!(s.due(t0 + Duration::from_millis(599)).is_empty());
        assert_eq!(s.due(t0 + Duration::from_millis(600)).len(), 1);
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_millis(1600)));
    }

    #[test]
    fn a_cut_finalizes_what_was_heard() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), true, None);
        s.add(utterance(t0, Side::Outbound, 0, 2000, "a b c d"));
        s.add(utterance(t0, Side::Inbound, 0, 400, "x"));
        s.add(utterance(t0, Side::Inbound, 3000, 4000, "later words"));
        let now = t0 + Duration::from_millis(1000);
        assert_eq!(s.due(now).len(), 3, "two partials of a b c d, x's final");
        // Stopped at 1 s: half of a-b-c-d was said; the later turn never was.
        s.cut(now, None, now);
        assert_eq!(
            all(&mut s, t0),
            vec![(1000, Side::Outbound, "a b".into(), true)]
        );
    }

    #[test]
    fn a_cut_of_one_side_leaves_the_other() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), false, None);
        s.add(utterance(t0, Side::Outbound, 0, 2000, "a b c d"));
        s.add(utterance(t0, Side::Inbound, 0, 2000, "x y"));
        let at = t0 + Duration::from_millis(1500);
        s.cut(at, Some(Side::Outbound), at + Duration::from_millis(500));
        assert_eq!(
            all(&mut s, t0),
            vec![
                (2000, Side::Outbound, "a b c".into(), true),
                (2500, Side::Inbound, "x y".into(), true),
            ]
        );
    }

    #[test]
    fn bounded_in_utterances_and_words() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), false, None);
        for i in 0..MAX_UTTERANCES as u64 + 5 {
            s.add(utterance(t0, Side::Outbound, i, i + 10, "w"));
        }
        assert_eq!(s.dropped, 5);
        let mut s = Schedule::new(model(), false, None);
        s.add(utterance(t0, Side::Inbound, 0, 10, &"w ".repeat(1000)));
        let r = all(&mut s, t0);
        assert_eq!(r[0].2.split_whitespace().count(), MAX_WORDS);
    }

    /// Runs `s` deadline by deadline up to `until_ms`, as the task does.
    fn run_until(s: &mut Schedule, t0: Instant, until_ms: u64) -> Vec<Recognition> {
        let until = t0 + Duration::from_millis(until_ms);
        let mut out = Vec::new();
        while let Some(at) = s.next_deadline().filter(|at| *at <= until) {
            out.extend(s.due(at));
        }
        out
    }

    #[test]
    fn every_turn_of_a_long_caller_is_recognized() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), true, None);
        let turns = 3 * MAX_UTTERANCES as u64;
        for i in 0..turns {
            s.later(utterance(
                t0,
                Side::Inbound,
                i * 1000,
                i * 1000 + 800,
                "a b c d",
            ));
        }
        let r = run_until(&mut s, t0, turns * 1000 + 1000);
        assert_eq!(r.iter().filter(|r| r.is_final).count() as u64, turns);
        assert_eq!(s.dropped, 0);
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn a_say_looping_until_cut_is_heard_every_loop_and_stops_at_the_cut() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), false, None);
        s.repeat(Repeat::new(
            t0,
            Duration::from_millis(1000),
            0,
            "a b".into(),
            7,
        ));
        // Loop 600 ends at 600 s, its final comes the recognition delay later.
        let r = run_until(&mut s, t0, 600_500);
        assert_eq!(r.len(), 600, "one final per loop");
        assert!(
            r.iter()
                .all(|r| r.transcript == "a b" && r.side == Side::Outbound)
        );
        assert_eq!(s.dropped, 0);
        // Cut half way through loop 601: its first word is finalized, nothing follows.
        let at = t0 + Duration::from_millis(600_500);
        s.cut(at, Some(Side::Outbound), at);
        let cut = s.due(at);
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].transcript, "a");
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn a_say_of_n_loops_stops_after_n_and_a_stop_drops_turns_not_started() {
        let t0 = Instant::now();
        let mut s = Schedule::new(model(), false, None);
        s.repeat(Repeat::new(
            t0,
            Duration::from_millis(500),
            3,
            "x".into(),
            0,
        ));
        s.later(utterance(t0, Side::Inbound, 10_000, 11_000, "later"));
        assert_eq!(run_until(&mut s, t0, 9_000).len(), 3);
        let now = t0 + Duration::from_millis(9_000);
        s.cut(now, None, now);
        assert!(s.due(t0 + Duration::from_secs(60)).is_empty());
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn word_errors_are_seeded() {
        let t0 = Instant::now();
        let errors = Some(WordErrors { rate: 1.0, seed: 3 });
        let mut s = Schedule::new(model(), false, errors);
        s.add(utterance(t0, Side::Inbound, 0, 100, "alpha bravo"));
        let r = s.due(t0 + Duration::from_secs(1));
        assert!(!r[0].transcript.contains("alpha"), "{:?}", r[0]);
        assert!(r[0].confidence < crate::speech::EXACT_CONFIDENCE);
    }
}
