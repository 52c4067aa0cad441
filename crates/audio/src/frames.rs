//! Twilio Media Streams framing: 8 kHz mu-law in 20 ms frames of 160 bytes,
//! with each frame's base64 payload computed once and shared across calls.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{AudioError, mulaw, wav};

/// Sample rate of call audio (Hz).
pub const SAMPLE_RATE: u32 = 8000;
/// Duration of one media frame (milliseconds).
pub const FRAME_MS: u32 = 20;
/// Bytes (= mu-law samples) per frame: 8000 Hz × 20 ms.
pub const FRAME_BYTES: usize = 160;

/// Length of the base64 text of one frame: 160 bytes → ceil(160 / 3) × 4.
const B64_LEN: usize = FRAME_BYTES.div_ceil(3) * 4;

/// base64 of 160 bytes of mu-law silence (0xFF): 212 '/' followed by "/w==".
pub fn silence_b64() -> &'static str {
    static SILENCE: OnceLock<String> = OnceLock::new();
    SILENCE.get_or_init(|| STANDARD.encode([mulaw::SILENCE; FRAME_BYTES]))
}

/// A whole utterance/file encoded once: mu-law 20 ms frames (last frame padded
/// with 0xFF) and each frame's base64, shared across calls via `Arc`.
///
/// Both encodings live in one contiguous buffer each (frame `k` is a fixed
/// stride into it), so a long file is two allocations, not thousands.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameSet {
    /// `len() * FRAME_BYTES` mu-law bytes.
    mulaw: Vec<u8>,
    /// `len() * B64_LEN` ASCII characters, frame `k` at `k * B64_LEN`.
    b64: String,
}

impl FrameSet {
    /// Mu-law encodes 8 kHz mono PCM and cuts it into frames.
    pub fn from_pcm(pcm_8k: &[i16]) -> FrameSet {
        let mut codes = Vec::with_capacity(pcm_8k.len().next_multiple_of(FRAME_BYTES));
        mulaw::encode_slice(pcm_8k, &mut codes);
        Self::from_padded(codes)
    }

    /// Cuts already-encoded 8 kHz mu-law into frames, padding the last frame
    /// with 0xFF (silence).
    pub fn from_mulaw(codes: &[u8]) -> FrameSet {
        Self::from_padded(codes.to_vec())
    }

    /// `frames` frames of mu-law silence.
    pub fn silence(frames: usize) -> FrameSet {
        Self::from_padded(vec![mulaw::SILENCE; frames * FRAME_BYTES])
    }

    fn from_padded(mut codes: Vec<u8>) -> FrameSet {
        codes.resize(codes.len().next_multiple_of(FRAME_BYTES), mulaw::SILENCE);
        let mut b64 = String::with_capacity(codes.len() / FRAME_BYTES * B64_LEN);
        for frame in codes.chunks_exact(FRAME_BYTES) {
            STANDARD.encode_string(frame, &mut b64);
        }
        debug_assert_eq!(b64.len(), codes.len() / FRAME_BYTES * B64_LEN);
        FrameSet { mulaw: codes, b64 }
    }

    /// Number of 20 ms frames.
    pub fn len(&self) -> usize {
        self.mulaw.len() / FRAME_BYTES
    }

    /// True when there are no frames at all.
    pub fn is_empty(&self) -> bool {
        self.mulaw.is_empty()
    }

    /// The mu-law bytes of frame `k`. Panics if `k >= len()`, like slice indexing.
    pub fn frame(&self, k: usize) -> &[u8; FRAME_BYTES] {
        let bytes = &self.mulaw[k * FRAME_BYTES..(k + 1) * FRAME_BYTES];
        bytes.try_into().expect("frame slice is FRAME_BYTES long")
    }

    /// Standard padded base64 of frame `k` (216 characters), precomputed.
    /// Panics if `k >= len()`.
    pub fn b64(&self, k: usize) -> &str {
        &self.b64[k * B64_LEN..(k + 1) * B64_LEN]
    }

    /// Playing time: `len()` × 20 ms.
    pub fn duration(&self) -> Duration {
        // u64 arithmetic: a usize frame count cannot overflow it in practice.
        Duration::from_millis(self.len() as u64 * u64::from(FRAME_MS))
    }

    /// All frames concatenated (`len() * 160` bytes).
    pub fn mulaw(&self) -> &[u8] {
        &self.mulaw
    }
}

impl std::fmt::Debug for FrameSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The payload can be megabytes; its size is what a log needs.
        f.debug_struct("FrameSet")
            .field("frames", &self.len())
            .field("duration", &self.duration())
            .finish()
    }
}

/// Load a WAV (path) and encode it once. Convenience: [`wav::load_8k`] +
/// [`FrameSet::from_pcm`].
pub fn load_frames(path: &Path) -> Result<FrameSet, AudioError> {
    Ok(FrameSet::from_pcm(&wav::load_8k(path)?))
}
