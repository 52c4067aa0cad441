//! Per-frame cost of building a Twilio `media` message, dialtone's way (μ-law and base64
//! computed once per file, counters formatted into a reused buffer) against the baseline a
//! straightforward generator uses (encode, base64 and `serde_json` per frame).
//!
//! Run with: `cargo run --release -p dialtone-bench --bin frames`

#![allow(clippy::disallowed_types)] // a benchmark measures wall time with std's clock

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use dialtone_audio::{FrameSet, mulaw};
use dialtone_protocol::media::{self, Track};

const STREAM_SID: &str = "MZ0123456789abcdef0123456789abcdef";

fn main() {
    // 60 s of a speech-like signal at 8 kHz: 3000 frames.
    let pcm: Vec<i16> = (0..480_000)
        .map(|i| {
            let t = i as f64 / 8000.0;
            ((t * 220.0 * std::f64::consts::TAU).sin() * (t * 3.0).sin().abs() * 12000.0) as i16
        })
        .collect();
    let rounds = 20;

    // Baseline: per frame, μ-law encode, base64, and a serde_json document.
    let baseline = time(rounds, || {
        let mut bytes = 0usize;
        for (k, chunk) in pcm.chunks(160).enumerate() {
            let mut codes = Vec::with_capacity(160);
            mulaw::encode_slice(chunk, &mut codes);
            let payload = base64::engine::general_purpose::STANDARD.encode(&codes);
            let msg = serde_json::json!({
                "event": "media",
                "sequenceNumber": (k + 2).to_string(),
                "media": {"track": "inbound", "chunk": (k + 1).to_string(),
                          "timestamp": (k * 20).to_string(), "payload": payload},
                "streamSid": STREAM_SID,
            })
            .to_string();
            bytes += msg.len();
        }
        bytes
    });

    // dialtone: the file is encoded once (shared by every call); per frame only the
    // counters are formatted into a reused buffer.
    let frames = FrameSet::from_pcm(&pcm);
    let mut buf = String::with_capacity(512);
    let dialtone = time(rounds, || {
        let mut bytes = 0usize;
        for k in 0..frames.len() {
            buf.clear();
            let k64 = k as u64;
            media::write_media(
                &mut buf,
                k64 + 2,
                Track::Inbound,
                k64 + 1,
                k64 * 20,
                frames.b64(k),
                STREAM_SID,
            );
            bytes += buf.len();
        }
        bytes
    });

    let n = (pcm.len() / 160) as f64;
    let per = |secs: f64| secs / n * 1e9;
    println!(
        "media message build, {} frames x {rounds} rounds (best round)",
        n as u64
    );
    println!(
        "  baseline (encode + base64 + serde_json per frame): {:8.0} ns/frame",
        per(baseline)
    );
    println!(
        "  dialtone (pre-encoded frames, counters only):       {:8.0} ns/frame",
        per(dialtone)
    );
    println!("  ratio: dialtone is {:.1}x faster", baseline / dialtone);
}

/// Best of `rounds` runs, in seconds.
fn time(rounds: usize, mut f: impl FnMut() -> usize) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
