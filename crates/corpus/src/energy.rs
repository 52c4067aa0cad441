//! A 20 ms RMS energy speech detector with hangover, for caller WAVs that have no
//! ground truth of their own (and to check the corpus's ground truth against).
//!
//! Rules, over consecutive 20 ms frames from the first sample:
//! - a frame is *voiced* when its RMS level is at or above `threshold_dbfs`;
//! - a segment *starts* at the first frame of a run of voiced frames that lasts at least
//!   `min_speech_ms` (shorter runs, such as clicks, are ignored);
//! - it *ends* at the end of its last voiced frame, once unvoiced frames have followed
//!   for `hangover_ms` (pauses between words stay inside the segment), or at the end of
//!   the input.
//!
//! Boundaries are therefore quantised to 20 ms; the corpus test shows they land within
//! 20 ms of the constructed ones.

/// Analysis frame length: one Media Streams frame.
pub const FRAME_MS: u32 = 20;

/// Samples per frame at 8 kHz.
const FRAME_SAMPLES: usize = 160;

/// Samples per millisecond at 8 kHz.
const SAMPLES_PER_MS: usize = 8;

/// Level reported for digital silence (where the logarithm would be −∞).
pub const SILENCE_DBFS: f32 = -120.0;

/// Threshold used for WAVs that are not in the corpus. −40 dBFS sits above the noise
/// floor of ordinary recordings and phone lines (−70…−50) and below speech (−30…−10),
/// at the price of missing the quietest consonant onsets (a soft *th* or *f*).
pub const DEFAULT_THRESHOLD_DBFS: f32 = -40.0;

/// Shortest voiced run that opens a segment: three frames, so a click never does.
pub const DEFAULT_MIN_SPEECH_MS: u32 = 60;

/// Unvoiced time that closes a segment: longer than pauses between words and phrases,
/// shorter than a turn-taking pause. The reference bot's VAD uses the same value.
pub const DEFAULT_HANGOVER_MS: u32 = 500;

/// RMS level of `samples` in dBFS (0 dBFS = full-scale square wave; a full-scale sine
/// is about −3 dBFS). Empty or all-zero input gives [`SILENCE_DBFS`].
pub fn rms_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    // f64: 160 squared full-scale samples overflow f32's exact integer range.
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if sum == 0.0 {
        return SILENCE_DBFS;
    }
    let rms = (sum / samples.len() as f64).sqrt();
    ((20.0 * (rms / 32768.0).log10()) as f32).max(SILENCE_DBFS)
}

/// Speech segments `(start_ms, end_ms)` of 8 kHz mono PCM, by the rules in the module
/// documentation. Segments are in order and do not overlap.
pub fn segments(
    pcm_8k: &[i16],
    threshold_dbfs: f32,
    min_speech_ms: u32,
    hangover_ms: u32,
) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    // While idle: where the current voiced run began.
    let mut run_start: Option<u32> = None;
    // While in a segment: its start and the end of its last voiced frame.
    let mut open: Option<(u32, u32)> = None;
    for (k, frame) in pcm_8k.chunks(FRAME_SAMPLES).enumerate() {
        // u32 milliseconds cover 49 days of audio; saturate rather than wrap beyond.
        let at = u32::try_from(k)
            .unwrap_or(u32::MAX)
            .saturating_mul(FRAME_MS);
        // The last frame may be short.
        let end = at.saturating_add((frame.len() / SAMPLES_PER_MS) as u32);
        let voiced = rms_dbfs(frame) >= threshold_dbfs;
        match open {
            None if voiced => {
                let since = *run_start.get_or_insert(at);
                if end - since >= min_speech_ms {
                    open = Some((since, end));
                    run_start = None;
                }
            }
            None => run_start = None,
            Some((start, _)) if voiced => open = Some((start, end)),
            Some((start, last)) => {
                if end - last >= hangover_ms {
                    out.push((start, last));
                    open = None;
                }
            }
        }
    }
    if let Some(segment) = open {
        out.push(segment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of a square wave at about −12 dBFS (loud) or of zeros.
    fn audio(parts: &[(u32, bool)]) -> Vec<i16> {
        parts
            .iter()
            .flat_map(|&(ms, loud)| {
                (0..ms as usize * SAMPLES_PER_MS).map(move |i| match (loud, i % 16 < 8) {
                    (false, _) => 0,
                    (true, true) => 8000,
                    (true, false) => -8000,
                })
            })
            .collect()
    }

    #[test]
    fn levels() {
        assert_eq!(rms_dbfs(&[]), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&[0; 160]), SILENCE_DBFS);
        let square: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 16384 } else { -16384 })
            .collect();
        assert!((rms_dbfs(&square) + 6.02).abs() < 0.01);
    }

    #[test]
    fn two_segments_with_a_short_pause_inside_the_first() {
        let pcm = audio(&[
            (300, false),
            (1000, true),
            (300, false), // shorter than the hangover: same segment
            (400, true),
            (800, false),
            (500, true),
            (200, false),
        ]);
        assert_eq!(
            segments(&pcm, DEFAULT_THRESHOLD_DBFS, 60, 500),
            [(300, 2000), (2800, 3300)]
        );
    }

    #[test]
    fn clicks_are_ignored_and_open_speech_is_closed_at_the_end() {
        let pcm = audio(&[(100, false), (40, true), (200, false), (400, true)]);
        assert_eq!(segments(&pcm, -40.0, 60, 500), [(340, 740)]);
        assert!(segments(&audio(&[(40, true), (500, false)]), -40.0, 60, 500).is_empty());
    }

    #[test]
    fn a_short_last_frame_counts_its_own_length() {
        let mut pcm = audio(&[(100, false), (200, true)]);
        pcm.extend(std::iter::repeat_n(8000, 40)); // 5 ms more of loud
        assert_eq!(segments(&pcm, -40.0, 60, 500), [(100, 305)]);
    }

    #[test]
    fn silence_and_empty_input_have_no_segments() {
        assert!(segments(&[], -40.0, 60, 500).is_empty());
        assert!(segments(&[0; 16000], -40.0, 60, 500).is_empty());
    }
}
