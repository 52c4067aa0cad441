//! The agent's simulated speech: tokens become audio at a synthesis pace and `play`s their
//! audio's length, each stretch with its own message's rules (what input cuts it, whether
//! the next talk cycle stops it), played one after the other. It answers what the caller
//! has heard by a given instant, which is what an `interrupt` reports, and keeps what was
//! heard when, for the heard recording.
//!
//! Memory is bounded whatever the app sends: tokens that will play back to back in one
//! talk cycle under one rule are one stretch, what has played is folded away (only the
//! talk cycle playing keeps its text, the first [`TEXT_KEPT`] characters), and the heard
//! log merges touching stretches and keeps at most [`SPANS_KEPT`].

use std::collections::VecDeque;
use std::time::Duration;

/// Characters of a talk cycle's text kept for `utteranceUntilInterrupt` (10 000 characters
/// are almost 11 minutes of speech at 65 ms a character); what plays past them is counted,
/// not kept.
pub(super) const TEXT_KEPT: usize = 10_000;

/// Stretches of the heard log kept (touching ones merge): past it, what plays is not in the
/// recording. Each is at least a character of speech, so this is hours of choppy speech.
pub(super) const SPANS_KEPT: usize = 100_000;

/// A stretch's rules, from its own message (else the noun's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rules {
    /// Caller speech cuts it.
    pub(super) speech: bool,
    /// A caller digit cuts it.
    pub(super) dtmf: bool,
    /// The next talk cycle's first token or play stops it.
    pub(super) preemptible: bool,
}

/// What a stretch sounds like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "sound", rename_all = "snake_case")]
pub enum Sound {
    /// Synthesized speech.
    Voice,
    /// A `play`'s audio (its id), from its beginning, looping.
    Play {
        /// The play's id.
        id: u32,
    },
}

/// A stretch of what the caller heard, since the socket opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HeardSpan {
    /// Start.
    pub start: Duration,
    /// End.
    pub end: Duration,
    /// What it was.
    pub sound: Sound,
}

/// One stretch of queued speech.
#[derive(Debug, Clone)]
struct Segment {
    cycle: u64,
    rules: Rules,
    sound: Sound,
    /// It starts no sooner (arrival and synthesis latency; a play's fetch).
    ready: Duration,
    /// How long it lasts (`None`: a play whose audio is not in yet, which holds back what
    /// follows).
    len: Option<Duration>,
    /// Laid out from `ready`, `len` and what comes before it.
    start: Duration,
    end: Duration,
    /// Characters spoken over `len` (the kept `text` may be fewer).
    chars: u64,
    text: Kept,
}

/// What has played of the talk cycle playing.
#[derive(Debug, Default)]
struct Played {
    cycle: u64,
    began: Duration,
    text: Kept,
}

/// The agent's speech (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Speech {
    segments: VecDeque<Segment>,
    /// Nothing queued starts before this: the end of what has played, or the last cut.
    floor: Duration,
    /// The talk cycle heard last, as far as it played.
    played: Option<Played>,
    /// What was heard when (kept only when recording).
    record: bool,
    heard: Vec<HeardSpan>,
}

impl Speech {
    /// No speech; `record` keeps the heard log.
    pub(super) fn new(record: bool) -> Self {
        Speech {
            record,
            ..Speech::default()
        }
    }

    /// Queues `text` of talk cycle `cycle`, arriving at `now`, after what is queued: it
    /// starts no sooner than `latency` after it arrived and lasts `per_char` a character.
    /// Returns when it starts to be heard (`None` for an empty token, which is silent, or
    /// while a play before it is not in yet).
    pub(super) fn say(
        &mut self,
        now: Duration,
        cycle: u64,
        rules: Rules,
        text: &str,
        latency: Duration,
        per_char: Duration,
    ) -> Option<Duration> {
        let chars = text.chars().count() as u64;
        if chars == 0 {
            return None;
        }
        self.settle(now);
        let ready = now + latency;
        let len = per_char * chars as u32;
        // Back to back with the stretch before in any layout (it is ready before that one
        // can end): one stretch.
        if let Some(last) = self.segments.back_mut()
            && last.cycle == cycle
            && last.rules == rules
            && last.sound == Sound::Voice
            && let Some(l) = last.len
            && ready <= last.ready + l
        {
            let start = last.start.saturating_add(l);
            last.len = Some(l + len);
            last.end = last.end.saturating_add(len);
            last.chars += chars;
            last.text.push(text);
            return (start != Duration::MAX).then_some(start);
        }
        let mut kept = Kept::default();
        kept.push(text);
        self.segments.push_back(Segment {
            cycle,
            rules,
            sound: Sound::Voice,
            ready,
            len: Some(len),
            start: Duration::ZERO,
            end: Duration::ZERO,
            chars,
            text: kept,
        });
        self.layout();
        let start = self.segments.back().map_or(Duration::MAX, |s| s.start);
        (start != Duration::MAX).then_some(start)
    }

    /// Queues play `id` of talk cycle `cycle`, asked for at `now`: its length is known once
    /// its audio is in ([`Speech::play_ready`]); until then it holds back what follows.
    pub(super) fn play(&mut self, now: Duration, cycle: u64, rules: Rules, id: u32) {
        self.settle(now);
        self.segments.push_back(Segment {
            cycle,
            rules,
            sound: Sound::Play { id },
            ready: now,
            len: None,
            start: Duration::ZERO,
            end: Duration::ZERO,
            chars: 0,
            text: Kept::default(),
        });
        self.layout();
    }

    /// Play `id`'s audio is in at `now` and lasts `len` (`None`: it could not be had, and
    /// nothing plays). Returns when it starts to be heard (`None` when it is no longer
    /// queued: cut, stopped, failed, or held back by another play).
    pub(super) fn play_ready(
        &mut self,
        now: Duration,
        id: u32,
        len: Option<Duration>,
    ) -> Option<Duration> {
        let i = self
            .segments
            .iter()
            .position(|s| s.sound == Sound::Play { id } && s.len.is_none())?;
        match len {
            Some(len) if !len.is_zero() => {
                let s = &mut self.segments[i];
                s.ready = s.ready.max(now);
                s.len = Some(len);
            }
            _ => {
                self.segments.remove(i);
            }
        }
        self.layout();
        self.segments
            .get(i)
            .filter(|s| s.sound == Sound::Play { id })
            .map(|s| s.start)
            .filter(|&s| s != Duration::MAX)
    }

    /// When talk cycle `cycle`'s first queued stretch starts to be heard (`None`: nothing of
    /// it queued, or held back by a play not in yet).
    pub(super) fn first_start(&self, cycle: u64) -> Option<Duration> {
        self.segments
            .iter()
            .find(|s| s.cycle == cycle && s.chars > 0)
            .map(|s| s.start)
            .filter(|&s| s != Duration::MAX)
    }

    /// The rules of the stretch sounding at `now` (`None`: silence; a pause between two
    /// tokens is not speech).
    pub(super) fn playing(&self, now: Duration) -> Option<Rules> {
        self.segments
            .iter()
            .take_while(|s| s.start <= now)
            .find(|s| now < s.end && s.len.is_some())
            .map(|s| s.rules)
    }

    /// A new talk cycle starts at `now`: what is preemptible stops (cut there if it plays,
    /// dropped if it waits); the rest plays on, the new cycle after it.
    pub(super) fn preempt(&mut self, now: Duration) {
        self.settle(now);
        let mut kept = VecDeque::with_capacity(self.segments.len());
        for mut s in std::mem::take(&mut self.segments) {
            if !s.rules.preemptible {
                kept.push_back(s);
            } else if s.start < now && s.len.is_some() {
                // Playing: heard as far as `now`.
                self.truncate(&mut s, now);
                self.fold(s);
                self.floor = self.floor.max(now);
            }
        }
        self.segments = kept;
        self.layout();
    }

    /// Stretches queued (each merges the tokens that play back to back).
    #[cfg(test)]
    pub(super) fn stretches(&self) -> usize {
        self.segments.len()
    }

    /// Forgets what has played by `now`.
    pub(super) fn prune(&mut self, now: Duration) {
        self.settle(now);
    }

    /// When the queued speech ends (`None` when nothing is queued; `Duration::MAX` while a
    /// play's audio is not in).
    pub(super) fn ends(&self) -> Option<Duration> {
        self.segments.back().map(|s| s.end)
    }

    /// Cuts the speech at `now`: what the caller had heard of the talk cycle playing (each
    /// stretch's share by the time it played) and for how long it had played, from its
    /// first sound. Everything queued is dropped.
    pub(super) fn cut(&mut self, now: Duration) -> (String, Duration) {
        self.settle(now);
        let mut heard = String::new();
        let mut began = now;
        let playing = self
            .segments
            .iter()
            .position(|s| s.start <= now && now < s.end && s.len.is_some());
        if let Some(i) = playing {
            let mut s = self.segments.remove(i).expect("found");
            if let Some(p) = self.played.as_ref().filter(|p| p.cycle == s.cycle) {
                heard.push_str(&p.text.text);
                began = p.began;
            } else {
                began = s.start;
            }
            self.truncate(&mut s, now);
            heard.push_str(&s.text.text);
            self.fold(s);
        }
        self.segments.clear();
        self.played = None;
        self.floor = self.floor.max(now);
        (heard, now.saturating_sub(began))
    }

    /// The session ends at `now`: what plays is cut there. The heard log.
    pub(super) fn finish(&mut self, now: Duration) -> Vec<HeardSpan> {
        self.cut(now);
        std::mem::take(&mut self.heard)
    }

    /// Folds what has played by `now`.
    fn settle(&mut self, now: Duration) {
        while let Some(s) = self.segments.front() {
            if s.len.is_none() || s.end > now {
                break;
            }
            let s = self.segments.pop_front().expect("front");
            self.floor = self.floor.max(s.end);
            self.fold(s);
        }
    }

    /// A stretch that has played (as far as its `end`): its text joins its talk cycle's,
    /// its span the heard log.
    fn fold(&mut self, s: Segment) {
        match &mut self.played {
            Some(p) if p.cycle == s.cycle => p.text.push(&s.text.text),
            _ => {
                self.played = Some(Played {
                    cycle: s.cycle,
                    began: s.start,
                    text: s.text,
                })
            }
        }
        if !self.record || s.end <= s.start {
            return;
        }
        let room = self.heard.len() < SPANS_KEPT;
        match self.heard.last_mut() {
            Some(h) if h.sound == s.sound && s.sound == Sound::Voice && h.end == s.start => {
                h.end = s.end;
            }
            _ if room => self.heard.push(HeardSpan {
                start: s.start,
                end: s.end,
                sound: s.sound,
            }),
            _ => {}
        }
    }

    /// Ends a playing stretch at `now`: its characters by then.
    fn truncate(&self, s: &mut Segment, now: Duration) {
        let Some(len) = s.len else { return };
        let played = now.saturating_sub(s.start).min(len);
        let n = if len.is_zero() {
            s.chars
        } else {
            (u128::from(s.chars) * played.as_nanos() / len.as_nanos()) as u64
        };
        s.text.take(n as usize);
        s.chars = n;
        s.len = Some(played);
        s.end = s.start + played;
    }

    /// Lays the queue out one after the other from the floor, each no sooner than it is
    /// ready; a play not yet in holds back what follows (`Duration::MAX`).
    fn layout(&mut self) {
        let mut cursor = self.floor;
        for s in &mut self.segments {
            s.start = cursor.max(s.ready);
            s.end = match s.len {
                Some(l) => s.start.saturating_add(l),
                None => Duration::MAX,
            };
            cursor = s.end;
        }
    }
}

/// Text kept up to [`TEXT_KEPT`] characters.
#[derive(Debug, Clone, Default)]
struct Kept {
    text: String,
    chars: usize,
}

impl Kept {
    fn push(&mut self, text: &str) {
        if self.chars < TEXT_KEPT {
            let before = self.text.len();
            self.text.extend(text.chars().take(TEXT_KEPT - self.chars));
            self.chars += self.text[before..].chars().count();
        }
    }

    /// The first `n` characters.
    fn take(&mut self, n: usize) {
        if n < self.chars {
            self.text = self.text.chars().take(n).collect();
            self.chars = n;
        }
    }
}
