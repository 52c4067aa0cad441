//! Per-turn measurement from the caller's side: maps the ground truth of the caller's audio
//! (speech start/end offsets) onto the stream's clock through the real send time of the
//! frames that carry them, then times the app's reactions against it.
//!
//! Sans-IO: times are microseconds since the stream's `start`.

use serde::Serialize;

use crate::config::TurnTruth;

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
    /// True end of speech → first app audio received after it (before the next turn).
    pub reply_ms: Option<f64>,
    /// True end of speech → when that reply starts to be heard (after audio already queued).
    pub reply_heard_ms: Option<f64>,
    /// The caller started this turn while app audio was still playing.
    pub barge_in: bool,
    /// For a barge-in: true speech start → the app's `clear`.
    pub clear_after_ms: Option<f64>,
    /// App milestones matched to this turn: (name, latency ms from the true start or end,
    /// text). Filled in by the caller of the engine.
    pub milestones: Vec<(String, f64, Option<String>)>,
    /// Word error rate of the app's `transcript.final` against the true text.
    pub wer: Option<f64>,
}

#[derive(Debug, Clone)]
struct Track {
    truth: TurnTruth,
    start_us: Option<u64>,
    end_us: Option<u64>,
    reply_us: Option<u64>,
    heard_us: Option<u64>,
    barge_in: bool,
    clear_us: Option<u64>,
}

/// Follows the caller's turns through one stream.
#[derive(Debug, Default)]
pub struct TurnTracker {
    turns: Vec<Track>,
}

impl TurnTracker {
    /// Tracks these turns (offsets into the caller's audio, which starts at frame 0).
    pub fn new(truth: &[TurnTruth]) -> Self {
        Self {
            turns: truth
                .iter()
                .map(|t| Track {
                    truth: t.clone(),
                    start_us: None,
                    end_us: None,
                    reply_us: None,
                    heard_us: None,
                    barge_in: false,
                    clear_us: None,
                })
                .collect(),
        }
    }

    /// Caller frame `k` went out at `sent_us`; `app_audio_playing` says whether the caller was
    /// hearing app audio at that moment.
    pub fn on_frame_sent(&mut self, k: u64, sent_us: u64, app_audio_playing: bool) {
        let frame_start = k * FRAME_US;
        for t in &mut self.turns {
            let start = t.truth.start.as_micros() as u64;
            let end = t.truth.end.as_micros() as u64;
            if t.start_us.is_none() && (frame_start..frame_start + FRAME_US).contains(&start) {
                t.start_us = Some(sent_us + (start - frame_start));
                t.barge_in = app_audio_playing;
            }
            if t.end_us.is_none() && (frame_start..frame_start + FRAME_US).contains(&end) {
                t.end_us = Some(sent_us + (end - frame_start));
            }
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

    /// The app sent `clear` at `now_us`.
    pub fn on_clear(&mut self, now_us: u64) {
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
        self.turns
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
                    reply_ms: t.reply_us.map(|r| ms(r - end)),
                    reply_heard_ms: t.heard_us.map(|h| ms(h - end)),
                    barge_in: t.barge_in,
                    clear_after_ms: t.clear_us.map(|c| ms(c - start)),
                    milestones: Vec::new(),
                    wer: None,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn truth(start_ms: u64, end_ms: u64) -> TurnTruth {
        TurnTruth {
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
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
        assert_eq!(r[0].reply_ms, Some(500.0));
        assert_eq!(r[0].reply_heard_ms, Some(550.0));
        assert_eq!(r[1].reply_ms, Some(500.0));
    }

    #[test]
    fn unanswered_turn_is_not_credited_with_a_later_reply() {
        let mut tr = TurnTracker::new(&[truth(0, 400), truth(1000, 1400)]);
        for k in 0..100u64 {
            tr.on_frame_sent(k, k * 20_000, false);
        }
        tr.on_app_media(1_600_000, 1_600_000);
        let r = tr.finish(0.0);
        assert_eq!(r[0].reply_ms, None);
        assert_eq!(r[1].reply_ms, Some(200.0));
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
        assert_eq!(r.clear_after_ms, Some(250.0));
    }
}
