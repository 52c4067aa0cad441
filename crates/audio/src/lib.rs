//! Audio for simulated calls: load WAV files of any common shape as 8 kHz mono,
//! G.711 mu-law companding, and Twilio Media Streams framing (20 ms / 160 bytes).
//!
//! The typical path is [`AudioCache::get`] (or [`load_frames`]): a WAV file is
//! read ([`wav::load_8k`]), mixed down to mono, band-limited and resampled to
//! 8 kHz ([`resample::to_8k`]), mu-law encoded and cut into 20 ms frames whose
//! base64 is computed once ([`FrameSet`]). The result is shared through an
//! `Arc` so thousands of concurrent calls playing the same prompt cost one
//! decode and no per-frame allocation.
//!
//! [`mix::Room`] mixes several calls' audio like a Twilio `<Conference>`.

mod cache;
mod error;
pub mod frames;
pub mod mix;
pub mod mulaw;
pub mod resample;
pub mod tones;
pub mod wav;

pub use cache::AudioCache;
pub use error::AudioError;
pub use frames::{FrameSet, load_frames};
pub use mix::{MAX_PARTICIPANTS, ParticipantId, Room, RoomError, Source, SpeakerEvent};
pub use wav::{Decoded, Truncated};
