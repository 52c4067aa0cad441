//! What the caller heard of a relay session, as 8 kHz μ-law on the session's timeline:
//! silence, except where the agent's speech played (a voice-like buzz: a 120 Hz harmonic
//! tone under a syllable-rate envelope that never falls silent) and where a `play` played
//! (its audio, looping).

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::{FrameSet, mulaw};

use super::speech::{HeardSpan, Sound};

const RATE: f64 = 8000.0;
/// μ-law silence.
const SILENCE: u8 = 0xFF;

/// The heard track from the socket's opening to `until` (at most `max`): `spans` from the
/// session, each play's audio by id (a play whose audio is not at hand sounds as speech).
pub(crate) fn render(
    spans: &[HeardSpan],
    plays: &HashMap<u32, Arc<FrameSet>>,
    until: Duration,
    max: Duration,
) -> Vec<u8> {
    let n = samples(until.min(max));
    let mut out = vec![SILENCE; n];
    for span in spans {
        let (a, b) = (samples(span.start).min(n), samples(span.end).min(n));
        let audio = match span.sound {
            Sound::Play { id } => plays.get(&id).map(|f| f.mulaw()).filter(|m| !m.is_empty()),
            Sound::Voice => None,
        };
        for (k, o) in out[a..b].iter_mut().enumerate() {
            *o = match audio {
                Some(m) => m[k % m.len()],
                None => mulaw::encode(voice((a + k) as f64 / RATE)),
            };
        }
    }
    out
}

fn samples(d: Duration) -> usize {
    (d.as_secs_f64() * RATE) as usize
}

/// The simulated voice at `t` seconds: five harmonics of 120 Hz, their loudness rising and
/// falling four times a second between half and full.
fn voice(t: f64) -> i16 {
    let buzz: f64 = (1..=5)
        .map(|h| (2.0 * PI * 120.0 * f64::from(h) * t).sin() / f64::from(h))
        .sum();
    let envelope = 0.75 + 0.25 * (2.0 * PI * 4.0 * t).sin();
    (buzz * envelope * 5000.0) as i16
}
