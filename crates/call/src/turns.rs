//! Per-turn measurement from the caller's side: maps the ground truth of the caller's audio
//! (speech start/end offsets) onto the stream's clock through the real send time of the
//! frames that carry them, then times the app's reactions against it.
//!
//! Sans-IO: times are microseconds since the stream's `start`.
//!
//! Talk-over: app audio the caller *heard* (after playout) while speaking a turn, less the
//! part of a barge-in the app handled (the caller started over app audio and the app sent
//! `clear`: the overlap up to the clear is the barge-in's, timed by `clear_after_ms`).
//! Heard audio is followed as contiguous runs; a run is booked against the turns once it
//! can no longer change (a gap ended it, a `clear` cut it, or the stream ended), so a turn
//! boundary not yet placed lies after the run and nothing is stored per chunk.

use std::time::Duration;

use serde::Serialize;

use dialtone_corpus::Turn;

const FRAME_US: u64 = 20_000;

/// What happened around one caller turn.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TurnReport {
    /// Turn number, from 0.
    pub index: usize,
    /// What the caller said (from the corpus manifest; empty when unknown).
    pub text: String,
    /// True speech start, ms since the stream's start, as sent (frame send time + offset).
    pub start_ms: f64,
    /// True speech end, likewise.
    pub end_ms: f64,
    /// True start as Unix epoch ms (for matching app milestones).
    pub start_unix_ms: i64,
    /// True end as Unix epoch ms.
    pub end_unix_ms: i64,
    /// True end of speech → first app audio received after it (before the next turn);
    /// `reply_ms` in JSON.
    #[serde(rename = "reply_ms", serialize_with = "ser_opt_ms")]
    pub reply: Option<Duration>,
    /// True end of speech → when that reply starts to be heard (after audio already queued);
    /// `reply_heard_ms` in JSON.
    #[serde(rename = "reply_heard_ms", serialize_with = "ser_opt_ms")]
    pub reply_heard: Option<Duration>,
    /// The caller started this turn while app audio was still playing.
    pub barge_in: bool,
    /// For a barge-in: true speech start → the app's `clear`; `clear_after_ms` in JSON.
    #[serde(rename = "clear_after_ms", serialize_with = "ser_opt_ms")]
    pub clear_after: Option<Duration>,
    /// App milestones matched to this turn: (name, latency ms from the true start or end,
    /// text). Filled in by the caller of the engine.
    pub milestones: Vec<(String, f64, Option<String>)>,
    /// Word error rate of the app's `transcript.final` against the true text.
    pub wer: Option<f64>,
    /// App audio heard while the caller spoke this turn, outside a barge-in the app handled
    /// with `clear` (ms).
    pub talk_over_ms: f64,
    /// How many more times the app's VAD reported `vad.speech_start` inside this turn after
    /// its first onset (it split the turn). Filled in with the milestones.
    pub vad_splits: u32,
    /// Those re-onsets' latencies from the true start, ms.
    pub vad_reonsets_ms: Vec<f64>,
}

/// A measurement kept as a `Duration` (whole µs) written as ms, as `us / 1e3` always was.
use crate::report::ser_opt_ms;

#[derive(Debug, Clone)]
struct Track {
    truth: Turn,
    /// The truth's start and end, µs into the caller's audio (computed once: this is looked
    /// at for every frame).
    truth_start_us: u64,
    truth_end_us: u64,
    start_us: Option<u64>,
    end_us: Option<u64>,
    reply_us: Option<u64>,
    heard_us: Option<u64>,
    barge_in: bool,
    clear_us: Option<u64>,
    /// Heard app audio over this turn's speech, not part of a handled barge-in.
    talk_over_us: u64,
    /// Heard app audio over a barge-in turn before any `clear`: the barge-in's if the app
    /// clears, talk-over if it never does.
    barge_overlap_us: u64,
}

/// Follows the caller's turns through one stream.
#[derive(Debug, Default)]
pub struct TurnTracker {
    turns: Vec<Track>,
    /// Turns before this one have their start and end placed: frames skip them.
    placed: usize,
    /// The app audio run being heard, `[from, until)` µs; `until` may still be cut by a
    /// `clear`.
    heard: Option<(u64, u64)>,
}

impl TurnTracker {
    /// Tracks these turns (offsets into the caller's audio, which starts at frame 0).
    pub fn new(truth: &[Turn]) -> Self {
        Self {
            turns: truth
                .iter()
                .map(|t| Track {
                    truth: t.clone(),
                    truth_start_us: u64::from(t.start_ms) * 1000,
                    truth_end_us: u64::from(t.end_ms) * 1000,
                    start_us: None,
                    end_us: None,
                    reply_us: None,
                    heard_us: None,
                    barge_in: false,
                    clear_us: None,
                    talk_over_us: 0,
                    barge_overlap_us: 0,
                })
                .collect(),
            placed: 0,
            heard: None,
        }
    }

    /// Caller frame `k` went out at `sent_us`; `app_audio_playing` says whether the caller was
    /// hearing app audio at that moment.
    pub fn on_frame_sent(&mut self, k: u64, sent_us: u64, app_audio_playing: bool) {
        let frame_start = k * FRAME_US;
        for t in &mut self.turns[self.placed..] {
            let (start, end) = (t.truth_start_us, t.truth_end_us);
            if start >= frame_start + FRAME_US {
                continue;
            }
            if t.start_us.is_none() && (frame_start..frame_start + FRAME_US).contains(&start) {
                t.start_us = Some(sent_us + (start - frame_start));
                t.barge_in = app_audio_playing;
            }
            if t.end_us.is_none() && (frame_start..frame_start + FRAME_US).contains(&end) {
                t.end_us = Some(sent_us + (end - frame_start));
            }
        }
        while self
            .turns
            .get(self.placed)
            .is_some_and(|t| t.end_us.is_some() || t.truth_end_us < frame_start)
        {
            self.placed += 1;
        }
    }

    /// App audio arrived at `now_us` and starts to be heard at `heard_us`.
    pub fn on_app_media(&mut self, now_us: u64, heard_us: u64) {
        for i in 0..self.turns.len() {
            let next_start = self.turns.get(i + 1).and_then(|n| n.start_us);
            let t = &mut self.turns[i];
            let Some(end) = t.end_us else { continue };
            if t.reply_us.is_some() || now_us < end {
                continue;
            }
            // A reply after the next turn began answers that turn, not this one.
            if next_start.is_some_and(|s| now_us >= s) {
                continue;
            }
            t.reply_us = Some(now_us);
            t.heard_us = Some(heard_us.max(now_us));
        }
    }

    /// App audio queued at some instant plays over `[from_us, until_us)` (from the playout:
    /// when it starts to be heard, and when the queue runs dry after it).
    pub fn on_app_heard(&mut self, from_us: u64, until_us: u64) {
        match self.heard {
            // Contiguous with the run being heard: it goes on.
            Some((a, b)) if from_us <= b => self.heard = Some((a, b.max(until_us))),
            prev => {
                // A gap: the previous run ended before now and can no longer change.
                if let Some((a, b)) = prev {
                    self.book_heard(a, b);
                }
                self.heard = Some((from_us, until_us));
            }
        }
    }

    /// The stream ended at `end_us`: audio queued past it was never heard.
    pub fn on_stream_end(&mut self, end_us: u64) {
        if let Some((a, b)) = self.heard.take() {
            self.book_heard(a, b.min(end_us));
        }
    }

    /// Books heard audio `[a, b)`, which lies before now, against the turns' speech. A turn
    /// whose start is not placed yet starts after now, so after `b`; one whose end is not
    /// placed yet ends after `b`.
    fn book_heard(&mut self, a: u64, b: u64) {
        for t in &mut self.turns {
            let Some(start) = t.start_us else { continue };
            let (lo, hi) = (a.max(start), b.min(t.end_us.unwrap_or(u64::MAX)));
            if hi <= lo {
                continue;
            }
            if t.barge_in && t.clear_us.is_none() {
                t.barge_overlap_us += hi - lo;
            } else {
                t.talk_over_us += hi - lo;
            }
        }
    }

    /// The app sent `clear` at `now_us`.
    pub fn on_clear(&mut self, now_us: u64) {
        // The run heard so far ends here; book it before the clear settles any barge-in.
        if let Some((a, b)) = self.heard.take() {
            self.book_heard(a, b.min(now_us));
        }
        for t in &mut self.turns {
            if t.barge_in && t.clear_us.is_none() && t.start_us.is_some_and(|s| now_us >= s) {
                t.clear_us = Some(now_us);
            }
        }
    }

    /// Turns the caller finished on this stream, and how many of them got no app audio
    /// after their end (before the next one began) so far.
    pub fn unanswered(&self) -> (usize, usize) {
        let ended = self.turns.iter().filter(|t| t.end_us.is_some());
        let finished = ended.clone().count();
        (ended.filter(|t| t.reply_us.is_none()).count(), finished)
    }

    /// The turns as reported; `wall0_unix_ms` is the Unix time of the stream's start.
    pub fn finish(&self, wall0_unix_ms: f64) -> Vec<TurnReport> {
        let ms = |us: u64| us as f64 / 1e3;
        let mut reports: Vec<TurnReport> = self
            .turns
            .iter()
            .enumerate()
            .filter_map(|(index, t)| {
                let start = t.start_us?;
                let end = t.end_us.unwrap_or(start);
                Some(TurnReport {
                    index,
                    text: t.truth.text.clone(),
                    start_ms: ms(start),
                    end_ms: ms(end),
                    start_unix_ms: (wall0_unix_ms + ms(start)).round() as i64,
                    end_unix_ms: (wall0_unix_ms + ms(end)).round() as i64,
                    reply: t.reply_us.map(|r| Duration::from_micros(r - end)),
                    reply_heard: t.heard_us.map(|h| Duration::from_micros(h - end)),
                    barge_in: t.barge_in,
                    clear_after: t.clear_us.map(|c| Duration::from_micros(c - start)),
                    milestones: Vec::new(),
                    wer: None,
                    // An unanswered barge-in: the app talked over the caller after all.
                    talk_over_ms: ms(t.talk_over_us
                        + if t.clear_us.is_none() {
                            t.barge_overlap_us
                        } else {
                            0
                        }),
                    vad_splits: 0,
                    vad_reonsets_ms: Vec::new(),
                })
            })
            .collect();
        // Reports wait (all of a load's calls that end together) for the load's tally.
        reports.shrink_to_fit();
        reports
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn truth(start_ms: u32, end_ms: u32) -> Turn {
        Turn {
            start_ms,
            end_ms,
            text: "t".into(),
        }
    }

    #[test]
    fn truth_maps_through_real_send_times() {
        let mut tr = TurnTracker::new(&[truth(105, 530)]);
        for k in 0..40u64 {
            // Each frame 2 ms late.
            tr.on_frame_sent(k, k * 20_000 + 2_000, false);
        }
        let r = &tr.finish(1_000_000.0)[0];
        assert_eq!(r.start_ms, 107.0); // frame 5 sent at 102 ms + 5 ms into it
        assert_eq!(r.end_ms, 532.0);
        assert_eq!(r.start_unix_ms, 1_000_107);
        assert!(!r.barge_in);
    }

    #[test]
    fn reply_belongs_to_the_turn_it_follows() {
        let mut tr = TurnTracker::new(&[truth(0, 400), truth(1000, 1400)]);
        for k in 0..100u64 {
            tr.on_frame_sent(k, k * 20_000, false);
        }
        tr.on_app_media(300_000, 300_000); // during turn 0: not a reply
        tr.on_app_media(900_000, 950_000); // reply to turn 0
        tr.on_app_media(1_900_000, 1_900_000); // reply to turn 1
        let r = tr.finish(0.0);
        assert_eq!(r[0].reply, Some(Duration::from_millis(500)));
        assert_eq!(r[0].reply_heard, Some(Duration::from_millis(550)));
        assert_eq!(r[1].reply, Some(Duration::from_millis(500)));
    }

    #[test]
    fn unanswered_turn_is_not_credited_with_a_later_reply() {
        let mut tr = TurnTracker::new(&[truth(0, 400), truth(1000, 1400)]);
        for k in 0..100u64 {
            tr.on_frame_sent(k, k * 20_000, false);
        }
        tr.on_app_media(1_600_000, 1_600_000);
        let r = tr.finish(0.0);
        assert_eq!(r[0].reply, None);
        assert_eq!(r[1].reply, Some(Duration::from_millis(200)));
    }

    #[test]
    fn unanswered_counts_finished_turns_without_a_reply() {
        let mut tr = TurnTracker::new(&[truth(0, 400), truth(1000, 1400), truth(3000, 3400)]);
        for k in 0..100u64 {
            tr.on_frame_sent(k, k * 20_000, false);
        }
        assert_eq!(
            tr.unanswered(),
            (2, 2),
            "the third turn has not been spoken yet"
        );
        tr.on_app_media(1_600_000, 1_600_000);
        assert_eq!(tr.unanswered(), (1, 2));
    }

    #[test]
    fn barge_in_and_clear_reaction() {
        let mut tr = TurnTracker::new(&[truth(200, 600)]);
        for k in 0..40u64 {
            tr.on_frame_sent(k, k * 20_000, true);
        }
        tr.on_clear(450_000);
        let r = &tr.finish(0.0)[0];
        assert!(r.barge_in);
        assert_eq!(r.clear_after, Some(Duration::from_millis(250)));
    }

    /// Sends frames 0..n at their due times; `playing(k)` says whether app audio was heard.
    fn frames(tr: &mut TurnTracker, n: u64, playing: impl Fn(u64) -> bool) {
        for k in 0..n {
            tr.on_frame_sent(k, k * 20_000, playing(k));
        }
    }

    #[test]
    fn a_reply_started_while_the_caller_speaks_is_talk_over() {
        // Caller speaks 200–1200 ms; the app's 600 ms reply is heard from 500 ms on, plus a
        // second run 1100–1500 ms after a gap, of which 100 ms overlap the speech.
        let mut tr = TurnTracker::new(&[truth(200, 1200)]);
        frames(&mut tr, 80, |_| false);
        tr.on_app_heard(500_000, 1_100_000);
        tr.on_app_heard(1_100_000, 1_100_000); // an empty chunk changes nothing
        tr.on_app_heard(1_150_000, 1_500_000);
        tr.on_stream_end(3_000_000);
        let r = &tr.finish(0.0)[0];
        assert!(!r.barge_in);
        assert_eq!(r.talk_over_ms, 600.0 + 50.0);
    }

    #[test]
    fn a_handled_barge_in_is_not_talk_over_but_audio_after_the_clear_is() {
        // App audio 0–2000 ms; the caller barges in at 500 ms, speaks until 1500 ms; the app
        // clears at 700 ms, then starts talking again at 1100 ms (400 ms of it over speech).
        let mut tr = TurnTracker::new(&[truth(500, 1500)]);
        tr.on_app_heard(0, 2_000_000);
        frames(&mut tr, 100, |k| k * 20 < 700);
        tr.on_clear(700_000);
        tr.on_app_heard(1_100_000, 1_600_000);
        tr.on_stream_end(5_000_000);
        let r = &tr.finish(0.0)[0];
        assert!(r.barge_in);
        assert_eq!(r.clear_after, Some(Duration::from_millis(200)));
        assert_eq!(r.talk_over_ms, 400.0);
    }

    #[test]
    fn a_barge_in_never_cleared_is_talk_over_until_the_audio_runs_out() {
        let mut tr = TurnTracker::new(&[truth(500, 1500)]);
        tr.on_app_heard(0, 1_200_000);
        frames(&mut tr, 100, |k| k * 20 < 1200);
        tr.on_stream_end(2_000_000);
        let r = &tr.finish(0.0)[0];
        assert!(r.barge_in);
        assert_eq!(r.clear_after, None);
        assert_eq!(r.talk_over_ms, 700.0);
    }

    #[test]
    fn audio_queued_past_the_end_of_the_stream_was_never_heard() {
        let mut tr = TurnTracker::new(&[truth(0, 10_000)]);
        frames(&mut tr, 50, |_| false);
        tr.on_app_heard(100_000, 9_000_000);
        tr.on_stream_end(1_000_000); // the caller hung up at 1 s
        assert_eq!(tr.finish(0.0)[0].talk_over_ms, 900.0);
    }
}
