//! Energy voice-activity detection, driven by the stream's own clock.
//!
//! The detector is pure: it is fed one frame at a time (its start time in stream
//! milliseconds, its length, and its loudness) and answers with at most one
//! [`VadEvent`]. It never reads wall time, so the same audio with the same media
//! `timestamp`s always yields the same turns, whether frames arrive paced in real
//! time or in one burst (as a load generator may send them).
//!
//! Decision rules, with the thresholds of [`VadConfig`]:
//! - a frame is *voiced* when its RMS level is at or above `threshold_dbfs`;
//! - speech *starts* once voiced frames have covered `min_speech_ms` without a single
//!   unvoiced frame in between (short clicks and pops never open a turn);
//! - speech *ends* once unvoiced frames have covered `hangover_ms` since the last
//!   voiced frame (pauses between words stay inside the turn).

use crate::VadConfig;

/// Level reported for digital silence, where the logarithm would be −∞. Far below
/// any sensible threshold, and finite so comparisons and logs stay simple.
pub const SILENCE_DBFS: f32 = -120.0;

/// Full scale of a 16-bit sample, the 0 dBFS reference.
const FULL_SCALE: f32 = 32768.0;

/// What a frame changed, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// The caller started speaking.
    SpeechStart {
        /// Stream time (ms) of the first voiced frame of the run that opened the turn.
        at_ms: u64,
    },
    /// The caller's turn ended: `hangover_ms` of non-speech followed their speech.
    SpeechEnd {
        /// Stream time (ms) where the trailing silence began, i.e. the end of speech.
        at_ms: u64,
        /// How long the turn lasted, from speech start to `at_ms`.
        speech_ms: u64,
    },
}

/// Where the detector is between frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No turn open. `voiced_since` is the start of the current run of voiced frames.
    Idle { voiced_since: Option<u64> },
    /// A turn is open since `started`; `silent_since` is the start of the current run
    /// of unvoiced frames inside it.
    Speaking {
        started: u64,
        silent_since: Option<u64>,
    },
}

/// Energy VAD for one call: a few words of state, no buffers.
#[derive(Debug, Clone)]
pub struct Vad {
    threshold_dbfs: f32,
    min_speech_ms: u64,
    hangover_ms: u64,
    state: State,
}

impl Vad {
    /// A detector with the given thresholds, starting in silence.
    pub fn new(config: &VadConfig) -> Self {
        Self {
            threshold_dbfs: config.threshold_dbfs,
            min_speech_ms: u64::from(config.min_speech_ms),
            hangover_ms: u64::from(config.hangover_ms),
            state: State::Idle { voiced_since: None },
        }
    }

    /// True while a turn is open (speech started and has not ended yet).
    pub fn is_speaking(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// Feeds one frame that starts at stream time `at_ms`, lasts `duration_ms`, and has
    /// RMS level `level_dbfs` (see [`rms_dbfs`]).
    ///
    /// Durations are measured between frame start times and the end of the current
    /// frame, so a gap in the timestamps (lost packets) counts as elapsed time, as it
    /// would for a listener. Timestamps that go backwards are treated as no time
    /// passing rather than as an error.
    pub fn push(&mut self, at_ms: u64, duration_ms: u64, level_dbfs: f32) -> Option<VadEvent> {
        let voiced = level_dbfs >= self.threshold_dbfs;
        let end = at_ms.saturating_add(duration_ms);
        match self.state {
            State::Idle { voiced_since } => {
                if !voiced {
                    self.state = State::Idle { voiced_since: None };
                    return None;
                }
                let since = voiced_since.unwrap_or(at_ms);
                if end.saturating_sub(since) >= self.min_speech_ms {
                    self.state = State::Speaking {
                        started: since,
                        silent_since: None,
                    };
                    Some(VadEvent::SpeechStart { at_ms: since })
                } else {
                    self.state = State::Idle {
                        voiced_since: Some(since),
                    };
                    None
                }
            }
            State::Speaking {
                started,
                silent_since,
            } => {
                if voiced {
                    self.state = State::Speaking {
                        started,
                        silent_since: None,
                    };
                    return None;
                }
                let since = silent_since.unwrap_or(at_ms);
                if end.saturating_sub(since) >= self.hangover_ms {
                    self.state = State::Idle { voiced_since: None };
                    Some(VadEvent::SpeechEnd {
                        at_ms: since,
                        speech_ms: since.saturating_sub(started),
                    })
                } else {
                    self.state = State::Speaking {
                        started,
                        silent_since: Some(since),
                    };
                    None
                }
            }
        }
    }
}

/// RMS level of `samples` in dBFS (0 dBFS = a full-scale square wave; a full-scale
/// sine is about −3 dBFS). Empty or all-zero input gives [`SILENCE_DBFS`].
pub fn rms_dbfs(samples: impl IntoIterator<Item = i16>) -> f32 {
    let (mut sum, mut n) = (0.0f64, 0u32);
    for s in samples {
        let x = f64::from(s);
        sum += x * x;
        n += 1;
    }
    if n == 0 || sum == 0.0 {
        return SILENCE_DBFS;
    }
    // f64 accumulation: 160 squared samples can reach ~1.7e11, beyond f32's exact range.
    let rms = (sum / f64::from(n)).sqrt() as f32;
    (20.0 * (rms / FULL_SCALE).log10()).max(SILENCE_DBFS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: f32 = -10.0;
    const QUIET: f32 = -60.0;

    fn vad() -> Vad {
        Vad::new(&VadConfig {
            threshold_dbfs: -35.0,
            min_speech_ms: 100,
            hangover_ms: 500,
        })
    }

    /// Feeds `frames` 20 ms frames at `level` starting at `*t`, advancing `*t`, and
    /// returns the events with the index of the frame that produced them.
    fn feed(v: &mut Vad, t: &mut u64, frames: usize, level: f32) -> Vec<(usize, VadEvent)> {
        let mut out = Vec::new();
        for i in 0..frames {
            if let Some(e) = v.push(*t, 20, level) {
                out.push((i, e));
            }
            *t += 20;
        }
        out
    }

    #[test]
    fn speech_starts_after_min_speech() {
        let mut v = vad();
        let mut t = 102;
        assert!(feed(&mut v, &mut t, 10, QUIET).is_empty());
        let events = feed(&mut v, &mut t, 10, LOUD);
        // Five 20 ms frames make 100 ms: the fifth frame (index 4) opens the turn, and
        // the turn is dated from the first voiced frame.
        assert_eq!(events, vec![(4, VadEvent::SpeechStart { at_ms: 302 })]);
        assert!(v.is_speaking());
    }

    #[test]
    fn short_bursts_do_not_open_a_turn() {
        let mut v = vad();
        let mut t = 0;
        for _ in 0..20 {
            // 80 ms of noise then one quiet frame: never 100 ms in a row.
            assert!(feed(&mut v, &mut t, 4, LOUD).is_empty());
            assert!(feed(&mut v, &mut t, 1, QUIET).is_empty());
        }
        assert!(!v.is_speaking());
    }

    #[test]
    fn turn_ends_only_after_hangover() {
        let mut v = vad();
        let mut t = 0;
        assert_eq!(feed(&mut v, &mut t, 50, LOUD).len(), 1);
        // A 400 ms pause (shorter than the 500 ms hangover) keeps the turn open.
        assert!(feed(&mut v, &mut t, 20, QUIET).is_empty());
        assert!(v.is_speaking());
        assert!(feed(&mut v, &mut t, 10, LOUD).is_empty());
        // Speech ran 0..1600 ms with the pause inside; silence from 1600 ms ends it at
        // the 25th quiet frame (25 × 20 ms = 500 ms).
        let events = feed(&mut v, &mut t, 40, QUIET);
        assert_eq!(
            events,
            vec![(
                24,
                VadEvent::SpeechEnd {
                    at_ms: 1600,
                    speech_ms: 1600
                }
            )]
        );
        assert!(!v.is_speaking());
    }

    #[test]
    fn a_second_turn_follows_the_first() {
        let mut v = vad();
        let mut t = 0;
        feed(&mut v, &mut t, 20, LOUD);
        feed(&mut v, &mut t, 30, QUIET);
        let events = feed(&mut v, &mut t, 10, LOUD);
        assert_eq!(events, vec![(4, VadEvent::SpeechStart { at_ms: 1000 })]);
    }

    #[test]
    fn timestamp_gaps_count_as_time() {
        let mut v = vad();
        assert!(v.push(0, 20, LOUD).is_none());
        // The next voiced frame is 200 ms later (lost packets in between).
        assert_eq!(
            v.push(200, 20, LOUD),
            Some(VadEvent::SpeechStart { at_ms: 0 })
        );
        assert!(v.push(220, 20, QUIET).is_none());
        assert_eq!(
            v.push(800, 20, QUIET),
            Some(VadEvent::SpeechEnd {
                at_ms: 220,
                speech_ms: 220
            })
        );
    }

    #[test]
    fn backwards_timestamps_do_not_panic() {
        let mut v = vad();
        assert!(v.push(1000, 20, LOUD).is_none());
        assert!(v.push(10, 20, LOUD).is_none());
        assert!(v.push(0, 0, QUIET).is_none());
    }

    #[test]
    fn rms_levels() {
        assert_eq!(rms_dbfs([]), SILENCE_DBFS);
        assert_eq!(rms_dbfs([0i16; 160]), SILENCE_DBFS);
        let square = rms_dbfs((0..160).map(|i| if i % 2 == 0 { 16384i16 } else { -16384 }));
        assert!((square - -6.02).abs() < 0.01, "{square}");
        let sine =
            rms_dbfs((0..160).map(|i| {
                (32767.0 * (f32::from(i as u8) * 0.25 * std::f32::consts::PI).sin()) as i16
            }));
        assert!((sine - -3.01).abs() < 0.05, "{sine}");
    }
}
