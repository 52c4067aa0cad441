//! The agent's simulated speech: tokens become audio at a synthesis pace, in talk cycles
//! (the tokens up to `last: true`). It answers what the caller has heard by a given instant,
//! which is what an `interrupt` reports.

use std::time::Duration;

/// One token's stretch of speech.
#[derive(Debug, Clone)]
struct Segment {
    start: Duration,
    end: Duration,
    text: String,
}

/// The talk cycle being spoken (or queued to be).
#[derive(Debug, Default)]
pub(super) struct Speech {
    segments: Vec<Segment>,
    /// When the queued speech ends: the next token starts no earlier.
    cursor: Duration,
}

impl Speech {
    /// Queues `text`, arriving at `now`, after what is queued: it starts no sooner than
    /// `latency` after it arrived and lasts `per_char` a character. Returns when it starts
    /// to be heard (`None` for an empty token, which is silent).
    pub(super) fn push(
        &mut self,
        now: Duration,
        text: &str,
        latency: Duration,
        per_char: Duration,
    ) -> Option<Duration> {
        let chars = text.chars().count() as u32;
        if chars == 0 {
            return None;
        }
        let start = self.cursor.max(now + latency);
        let end = start + per_char * chars;
        self.segments.push(Segment {
            start,
            end,
            text: text.to_string(),
        });
        self.cursor = end;
        Some(start)
    }

    /// Whether speech is playing at `now` (a silence between two tokens is not speech).
    pub(super) fn speaking(&self, now: Duration) -> bool {
        self.segments.iter().any(|s| s.start <= now && now < s.end)
    }

    /// Forgets the speech heard by `now`: what a new turn's answer is not part of.
    pub(super) fn prune(&mut self, now: Duration) {
        self.segments.retain(|s| s.end > now);
    }

    /// When the queued speech ends (`None` when nothing is queued).
    pub(super) fn ends(&self) -> Option<Duration> {
        (!self.segments.is_empty()).then_some(self.cursor)
    }

    /// Cuts the speech at `now`: what was heard (the text, each token's share by the time it
    /// played) and for how long since it began.
    pub(super) fn cut(&mut self, now: Duration) -> (String, Duration) {
        let began = self.segments.first().map_or(now, |s| s.start);
        let mut heard = String::new();
        for s in &self.segments {
            if now >= s.end {
                heard.push_str(&s.text);
            } else if now > s.start {
                let share = (now - s.start).as_secs_f64() / (s.end - s.start).as_secs_f64();
                let n = (s.text.chars().count() as f64 * share).floor() as usize;
                heard.extend(s.text.chars().take(n));
            }
        }
        self.clear(now);
        (heard, now.saturating_sub(began))
    }

    /// Forgets the cycle; the next one starts no sooner than `now`.
    pub(super) fn clear(&mut self, now: Duration) {
        self.segments.clear();
        self.cursor = now;
    }
}
