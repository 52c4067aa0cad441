//! `<Record>` as a call reports it (its steps on the timeline, what each recording kept and
//! why it ended), and the arithmetic behind it as pure functions of the caller's turns: where
//! the recording ends, which bytes of the caller's audio it holds, and the words said inside
//! it. The executor (`executor/record.rs`) only waits on the call's clock and sends requests.
//!
//! Positions are bytes of the caller's 8 kHz μ-law audio from its start (8 a millisecond), so
//! a recording is a slice of exactly what the caller said.

use serde::Serialize;

/// Bytes of 8 kHz μ-law a millisecond.
pub(crate) const PER_MS: u64 = 8;

/// Why a `<Record>` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordEnd {
    /// `timeout` seconds of silence after the caller's speech (or from the start, when it
    /// said nothing).
    Silence,
    /// The caller pressed a `finishOnKey` key.
    FinishKey,
    /// `maxLength` was reached.
    MaxLength,
    /// The caller hung up (or the call ended under it).
    Hangup,
    /// New TwiML from the REST API replaced the document.
    Redirected,
}

impl RecordEnd {
    /// In words, for the timeline and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Silence => "silence",
            Self::FinishKey => "finish key",
            Self::MaxLength => "maxLength",
            Self::Hangup => "hang-up",
            Self::Redirected => "REST redirect",
        }
    }
}

/// A `<Record>` step on a call's timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RecordEvent {
    /// Recording started (after the beep).
    Started {
        /// `RE…`.
        sid: String,
        /// `timeout`, s (0: no silence ends it).
        timeout_s: u32,
        /// `maxLength` in effect, s (capped by the call's own limit).
        max_length_s: u64,
        /// `finishOnKey`.
        finish_on_key: String,
    },
    /// Recording ended.
    Ended {
        /// `RE…`.
        sid: String,
        /// Why.
        why: RecordEnd,
        /// `Digits` of the action: the finish key, `hangup`, or empty.
        digits: String,
        /// `RecordingDuration`, s (0 when empty).
        duration_s: u64,
        /// Nothing was said: no recording is kept and no action is requested.
        empty: bool,
    },
    /// The transcription was queued to `transcribeCallback`.
    Transcription {
        /// `TR…`.
        sid: String,
        /// `completed` or `failed`.
        status: &'static str,
        /// Words in `TranscriptionText`.
        words: usize,
        /// Where it goes.
        url: String,
    },
}

impl RecordEvent {
    /// This step's column, level and words (see [`crate::EventText`]).
    pub(crate) fn text(&self) -> (&'static str, &'static str, String) {
        match self {
            Self::Started {
                sid,
                timeout_s,
                max_length_s,
                finish_on_key,
            } => (
                "record",
                "info",
                format!(
                    "recording {sid} started (silence timeout {}, finishOnKey {finish_on_key:?}, \
                     maxLength {max_length_s} s)",
                    if *timeout_s == 0 {
                        "off".to_string()
                    } else {
                        format!("{timeout_s} s")
                    }
                ),
            ),
            Self::Ended {
                sid,
                why,
                digits,
                duration_s,
                empty,
            } => {
                let key = if digits.is_empty() || digits == "hangup" {
                    String::new()
                } else {
                    format!(" {digits}")
                };
                if *empty {
                    (
                        "record",
                        "warn",
                        format!(
                            "recording {sid} ended by {}{key}: nothing was said, so no \
                             recording and no action (the next verb runs)",
                            why.as_str()
                        ),
                    )
                } else {
                    (
                        "record",
                        "ok",
                        format!(
                            "recording {sid} ended by {}{key}: {duration_s} s kept",
                            why.as_str()
                        ),
                    )
                }
            }
            Self::Transcription {
                sid,
                status,
                words,
                url,
            } => (
                "record",
                if *status == "completed" {
                    "info"
                } else {
                    "warn"
                },
                format!("transcription {sid} {status} ({words} words) sent to {url}"),
            ),
        }
    }
}

/// One `<Record>` in a call's report.
#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    /// `RecordingSid`.
    pub sid: String,
    /// Why it ended.
    pub ended_by: RecordEnd,
    /// `Digits` of the action: the finish key, `hangup`, or empty.
    pub digits: String,
    /// `RecordingDuration`, whole seconds rounded up (0 when empty).
    pub duration_s: u64,
    /// The recording's exact length, ms.
    pub duration_ms: f64,
    /// Nothing was said: nothing kept, no action requested.
    pub empty: bool,
    /// `RecordingUrl`, when a recording store kept it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `TranscriptionText`, when transcribed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcription: Option<String>,
}

/// A `<Record>` recording's audio, kept for the call's result when it records (`record`,
/// `dialtone call --record`).
#[derive(Debug, Clone)]
pub struct RecordAudio {
    /// `RecordingSid`.
    pub sid: String,
    /// The caller's 8 kHz μ-law, as kept (trimmed unless `trim="do-not-trim"`).
    pub audio: Vec<u8>,
}

/// A caller turn's speech, in bytes of its audio: `[start, end)`.
pub(crate) type Span = (u64, u64);

/// What bounds one recording, in bytes of the caller's audio.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Where recording starts.
    pub(crate) from: u64,
    /// Silence that ends it; 0: none does.
    pub(crate) timeout: u64,
    /// Its longest length.
    pub(crate) max: u64,
    /// The caller has a finish key to press once it has spoken.
    pub(crate) key: bool,
}

/// Where a recording ends (bytes of the caller's audio) and why, from the caller's turns in
/// order: silence counts from the start and from each turn's end, and a turn under way when
/// recording starts is speech. A caller with a finish key presses it as its speech ends (at
/// the first silence as long as the timeout, or after its last turn), instead of waiting the
/// silence out; with no speech it has nothing to finish and presses nothing. Whatever comes
/// first past `maxLength` is cut there.
pub(crate) fn plan(speech: &[Span], b: Bounds) -> (u64, RecordEnd) {
    let max_end = b.from.saturating_add(b.max);
    let mut cursor = b.from;
    let mut spoke = false;
    for &(start, end) in speech.iter().filter(|(_, end)| *end > b.from) {
        let start = start.max(b.from);
        if b.timeout > 0 && start - cursor >= b.timeout {
            break;
        }
        spoke = true;
        cursor = cursor.max(end);
    }
    let first = if spoke && b.key {
        Some((cursor, RecordEnd::FinishKey))
    } else if b.timeout > 0 {
        Some((cursor.saturating_add(b.timeout), RecordEnd::Silence))
    } else {
        None
    };
    match first {
        Some((end, why)) if end < max_end => (end, why),
        _ => (max_end, RecordEnd::MaxLength),
    }
}

/// Speech spans of audio heard as it comes (a live caller), by the rules of
/// `dialtone_corpus::energy` (−40 dBFS, three voiced frames open a span, 500 ms unvoiced
/// close it) fed one 20 ms frame at a time, so a long recording costs O(1) per frame.
#[derive(Debug, Default)]
pub(crate) struct LiveSpans {
    /// Closed spans, in bytes from the caller's slot 0.
    spans: Vec<Span>,
    /// The run of voiced frames under way: its first frame's start and its length.
    run: Option<(u64, u32)>,
    /// The open span: its start and its last voiced frame's end.
    open: Option<Span>,
    /// The next frame's start.
    at: u64,
}

/// Unvoiced frames that close a span (500 ms).
const HANGOVER_FRAMES: u64 = (dialtone_corpus::energy::DEFAULT_HANGOVER_MS / 20) as u64;
/// Voiced frames that open one (60 ms).
const MIN_SPEECH_FRAMES: u32 = dialtone_corpus::energy::DEFAULT_MIN_SPEECH_MS / 20;

impl LiveSpans {
    /// Spans from byte `at` of the caller's audio on.
    pub(crate) fn starting_at(at: u64) -> Self {
        Self {
            at,
            ..Self::default()
        }
    }

    /// The next 20 ms frame (μ-law).
    pub(crate) fn push(&mut self, frame: &[u8]) {
        let start = self.at;
        let end = start + frame.len() as u64;
        self.at = end;
        let mut pcm = Vec::with_capacity(frame.len());
        dialtone_audio::mulaw::decode_slice(frame, &mut pcm);
        let voiced = dialtone_corpus::energy::rms_dbfs(&pcm)
            >= dialtone_corpus::energy::DEFAULT_THRESHOLD_DBFS;
        if !voiced {
            self.run = None;
            if let Some((a, b)) = self.open
                && end - b >= HANGOVER_FRAMES * 160
            {
                self.spans.push((a, b));
                self.open = None;
            }
            return;
        }
        let (run_start, n) = self.run.map_or((start, 1), |(s, n)| (s, n + 1));
        self.run = Some((run_start, n));
        match &mut self.open {
            Some((_, b)) => *b = end,
            None if n >= MIN_SPEECH_FRAMES => self.open = Some((run_start, end)),
            None => {}
        }
    }

    /// Every span so far, the open one ending at its last voiced frame.
    pub(crate) fn spans(&self) -> Vec<Span> {
        self.spans.iter().copied().chain(self.open).collect()
    }
}

/// The part of `[from, end)` a recording keeps: from the first speech to the last when
/// trimming (`trim-silence`), all of it otherwise; `None` when nothing was said in it (an
/// empty recording).
pub(crate) fn kept(speech: &[Span], from: u64, end: u64, trim: bool) -> Option<Span> {
    let mut inside = speech.iter().filter(|(s, e)| *e > from && *s < end);
    let first = inside.next()?;
    let last = inside.next_back().unwrap_or(first);
    Some(if trim {
        (first.0.max(from), last.1.min(end))
    } else {
        (from, end)
    })
}

/// `audio[a..b]`, silence where the audio has ended.
pub(crate) fn slice(audio: &[u8], (a, b): Span) -> Vec<u8> {
    let len = audio.len() as u64;
    let mut out = audio[a.min(len) as usize..b.min(len) as usize].to_vec();
    out.resize((b - a) as usize, dialtone_audio::mulaw::SILENCE);
    out
}

/// The words said inside `[a, b)`: each turn's words spread evenly over it (as
/// [`crate::speech::words_by`] times them), a turn cut by either edge giving only the words
/// said inside.
pub(crate) fn words_in(turns: &[(Span, &dialtone_corpus::Turn)], (a, b): Span) -> String {
    let mut out: Vec<&str> = Vec::new();
    for ((start, end), turn) in turns {
        if *end <= a || *start >= b {
            continue;
        }
        let ms = |at: u64| ((at - start) / PER_MS).min(u64::from(u32::MAX)) as u32;
        let from = if a > *start {
            crate::speech::words_by(turn, ms(a))
        } else {
            0
        };
        let words: Vec<&str> = turn.text.split_whitespace().collect();
        let to = if b < *end {
            crate::speech::words_by(turn, ms(b))
        } else {
            words.len()
        };
        out.extend(&words[from.min(to)..to]);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 8000;

    fn bounds(from: u64, timeout: u64, max: u64, key: bool) -> Bounds {
        Bounds {
            from,
            timeout: timeout * S,
            max: max * S,
            key,
        }
    }

    #[test]
    fn live_spans_are_the_energy_detectors_segments_frame_by_frame() {
        // Silence, speech with a short pause inside, a 40 ms click, speech, silence.
        let mut pcm: Vec<i16> = Vec::new();
        for (ms, loud) in [
            (500, false),
            (1000, true),
            (300, false),
            (400, true),
            (1000, false),
            (40, true),
            (1000, false),
            (600, true),
            (1000, false),
        ] {
            pcm.extend((0..ms * 8).map(|i| {
                if loud {
                    (6000.0 * (i as f64 * 0.3).sin()) as i16
                } else {
                    0
                }
            }));
        }
        let reference: Vec<Span> = dialtone_corpus::energy::segments(
            &pcm,
            dialtone_corpus::energy::DEFAULT_THRESHOLD_DBFS,
            dialtone_corpus::energy::DEFAULT_MIN_SPEECH_MS,
            dialtone_corpus::energy::DEFAULT_HANGOVER_MS,
        )
        .into_iter()
        .map(|(a, b)| (u64::from(a) * PER_MS + 800, u64::from(b) * PER_MS + 800))
        .collect();
        assert_eq!(reference.len(), 2, "{reference:?}");
        let mut mulaw = Vec::new();
        dialtone_audio::mulaw::encode_slice(&pcm, &mut mulaw);
        let mut live = LiveSpans::starting_at(800);
        for frame in mulaw.chunks(160) {
            live.push(frame);
        }
        assert_eq!(live.spans(), reference);
    }

    #[test]
    fn silence_after_the_last_turn_ends_it() {
        // Turns 1-2 s and 3-4 s; gaps under the 2 s timeout.
        let speech = [(S, 2 * S), (3 * S, 4 * S)];
        assert_eq!(
            plan(&speech, bounds(0, 2, 60, false)),
            (6 * S, RecordEnd::Silence)
        );
        // A gap as long as the timeout ends it before the next turn...
        assert_eq!(
            plan(&[(S / 2, 2 * S), (3 * S, 4 * S)], bounds(0, 1, 60, false)),
            (3 * S, RecordEnd::Silence)
        );
        // ...and so does silence as long before any speech.
        assert_eq!(
            plan(&speech, bounds(0, 1, 60, true)),
            (S, RecordEnd::Silence)
        );
        // Nothing said: the timeout from the start.
        assert_eq!(
            plan(&[], bounds(S, 5, 60, true)),
            (6 * S, RecordEnd::Silence)
        );
    }

    #[test]
    fn the_key_maxlength_and_no_timeout() {
        let speech = [(S, 2 * S), (3 * S, 4 * S)];
        assert_eq!(
            plan(&speech, bounds(0, 2, 60, true)),
            (4 * S, RecordEnd::FinishKey)
        );
        assert_eq!(
            plan(&speech, bounds(0, 2, 3, false)),
            (3 * S, RecordEnd::MaxLength)
        );
        // Cut mid-turn by maxLength: the caller meant to talk on, then press its key.
        assert_eq!(
            plan(&speech, bounds(0, 5, 3, true)),
            (3 * S, RecordEnd::MaxLength)
        );
        assert_eq!(
            plan(&speech, bounds(0, 0, 10, false)),
            (10 * S, RecordEnd::MaxLength)
        );
        // A turn under way at the start is speech.
        assert_eq!(
            plan(&[(0, 3 * S)], bounds(S, 1, 60, false)),
            (4 * S, RecordEnd::Silence)
        );
        // Turns already over are not.
        assert_eq!(
            plan(&[(0, S)], bounds(2 * S, 1, 60, true)),
            (3 * S, RecordEnd::Silence)
        );
    }

    #[test]
    fn kept_trims_to_the_speech_and_is_none_when_silent() {
        let speech = [(S, 2 * S), (3 * S, 4 * S), (9 * S, 10 * S)];
        assert_eq!(kept(&speech, 0, 6 * S, true), Some((S, 4 * S)));
        assert_eq!(kept(&speech, 0, 6 * S, false), Some((0, 6 * S)));
        assert_eq!(
            kept(&speech, S + S / 2, 3 * S + 1, true),
            Some((S + S / 2, 3 * S + 1))
        );
        assert_eq!(kept(&speech, 4 * S, 9 * S, true), None);
        assert_eq!(slice(&[1, 2, 3], (1, 5)), [2, 3, 0xFF, 0xFF]);
    }

    #[test]
    fn words_inside_the_span() {
        let t = dialtone_corpus::Turn {
            start_ms: 1000,
            end_ms: 3000,
            text: "one two three four".into(),
        };
        let u = dialtone_corpus::Turn {
            start_ms: 4000,
            end_ms: 5000,
            text: "five".into(),
        };
        let turns = [((S, 3 * S), &t), ((4 * S, 5 * S), &u)];
        assert_eq!(words_in(&turns, (0, 6 * S)), "one two three four five");
        // Half of the first turn: two of its four words.
        assert_eq!(words_in(&turns, (0, 2 * S)), "one two");
        assert_eq!(words_in(&turns, (2 * S, 6 * S)), "three four five");
        assert_eq!(words_in(&turns, (5 * S, 6 * S)), "");
    }
}
