//! The whole answered call on one timeline, as a call recording holds it: what the caller
//! heard (the app's `<Say>` and `<Play>`, its stream audio) and what the caller said, from
//! the answer to the end of the call.

use std::sync::Arc;

use dialtone_audio::FrameSet;
use dialtone_audio::mulaw::SILENCE;
use tokio::time::Instant;

use super::Call;
use crate::config::CallerAudioStart;

/// At most this many `<Say>`/`<Play>` spans are kept per call: a TwiML loop cannot grow the
/// list without bound (later spans are silence in the call's audio).
const MAX_PLAYED: usize = 10_000;

/// The audio of one answered call, μ-law 8 kHz, both tracks the same length: from the answer
/// to the end of the call.
#[derive(Debug, Clone, Default)]
pub struct CallAudio {
    /// What the caller heard: the app's `<Say>` (a 440 Hz tone as long as the words) and
    /// `<Play>` audio, each `<Connect>` stream's app audio where the stream ran, silence
    /// elsewhere (`<Pause>`, `<Gather>` waits, webhook round trips).
    pub heard: Vec<u8>,
    /// What the caller said: with [`CallerAudioStart::Answer`], the caller's audio from the
    /// answer on, whether or not a stream carried it; otherwise what each stream's inbound
    /// track carried, where the stream ran.
    pub said: Vec<u8>,
}

/// `frames` (looped) played to the caller from `from` to `to`.
pub(super) struct Played {
    frames: Arc<FrameSet>,
    from: Instant,
    to: Instant,
}

/// μ-law bytes (8 a millisecond) from `a` to `b` (none when `b` comes first).
pub(super) fn bytes_between(a: Instant, b: Instant) -> usize {
    (b.saturating_duration_since(a).as_micros() / 125) as usize
}

/// Copies `src` into `dst` from `at`, as far as `dst` reaches.
fn overlay(dst: &mut [u8], at: usize, src: &[u8]) {
    if at >= dst.len() {
        return;
    }
    let n = src.len().min(dst.len() - at);
    dst[at..at + n].copy_from_slice(&src[..n]);
}

impl Call<'_> {
    /// Keeps what a verb played to the caller from `from` until now (when recording).
    pub(super) fn note_played(&mut self, frames: Arc<FrameSet>, from: Instant) {
        self.note_played_span(frames, from, Instant::now());
    }

    /// Keeps what the caller heard from `from` to `to` (when recording): a dialed party.
    pub(super) fn note_played_span(&mut self, frames: Arc<FrameSet>, from: Instant, to: Instant) {
        if self.cfg.record && !self.cfg.fast && self.played.len() < MAX_PLAYED {
            self.played.push(Played { frames, from, to });
        }
    }

    /// Keeps what the caller said into a bridge from `at` (when recording).
    pub(super) fn note_said(&mut self, at: Instant, said: Vec<u8>) {
        if self.cfg.record && !self.cfg.fast && self.bridged_said.len() < MAX_PLAYED {
            self.bridged_said.push((at, said));
        }
    }

    /// The call's audio from the answer to `end`; `None` unless recording, or when the call
    /// was never answered, or in virtual time (streams and verbs keep no common clock there).
    pub(super) fn call_audio(&self, end: Instant) -> Option<CallAudio> {
        if !self.cfg.record || self.cfg.fast {
            return None;
        }
        let answered = self.answered_at?;
        let total = bytes_between(answered, end);
        let mut heard = vec![SILENCE; total];
        for p in &self.played {
            let src = p.frames.mulaw();
            if src.is_empty() {
                continue;
            }
            let at = bytes_between(answered, p.from);
            let n = bytes_between(p.from, p.to).min(total.saturating_sub(at));
            for (i, b) in heard.iter_mut().skip(at).take(n).enumerate() {
                *b = src[i % src.len()];
            }
        }
        let mut said = vec![SILENCE; total];
        if let Some(live) = &self.cfg.caller.live {
            // Its slots count from its first answer: a dialed leg joins them later.
            let all = live.said();
            let skip = live.epoch().map_or(0, |e| bytes_between(e, answered));
            overlay(&mut said, 0, &all[skip.min(all.len())..]);
        } else if self.cfg.caller.start == CallerAudioStart::Answer {
            overlay(&mut said, 0, self.cfg.caller.audio.mulaw());
        }
        for (a, (started, bidirectional)) in self.audio.iter().zip(&self.audio_spans) {
            let Some(started) = started else { continue };
            let at = bytes_between(answered, *started);
            // A `<Start>` fork cannot carry app audio; a `<Connect>` stream is the only thing
            // playing while it runs.
            if *bidirectional {
                overlay(&mut heard, at, &a.heard);
            }
            if self.cfg.caller.start == CallerAudioStart::StreamStart {
                overlay(&mut said, at, &a.sent);
            }
        }
        if self.cfg.caller.start == CallerAudioStart::StreamStart {
            for (at, s) in &self.bridged_said {
                overlay(&mut said, bytes_between(answered, *at), s);
            }
        }
        Some(CallAudio { heard, said })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_stays_inside() {
        let mut d = [0u8; 4];
        overlay(&mut d, 2, &[1, 2, 3]);
        assert_eq!(d, [0, 0, 1, 2]);
        overlay(&mut d, 9, &[7]);
        assert_eq!(d, [0, 0, 1, 2]);
    }
}
