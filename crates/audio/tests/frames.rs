//! FrameSet framing/base64, the shared AudioCache, and the full round trip
//! WAV → 8 kHz → mu-law frames → WAV.

mod common;

use std::f64::consts::PI;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use dialtone_audio::frames::{self, FRAME_BYTES, FRAME_MS, SAMPLE_RATE, silence_b64};
use dialtone_audio::{AudioCache, AudioError, FrameSet, load_frames, mulaw, resample, wav};

#[test]
fn constants() {
    assert_eq!((SAMPLE_RATE, FRAME_MS, FRAME_BYTES), (8000, 20, 160));
    assert_eq!(SAMPLE_RATE as usize * FRAME_MS as usize / 1000, FRAME_BYTES);
}

#[test]
fn silence_b64_is_exact() {
    let expected = format!("{}/w==", "/".repeat(212));
    assert_eq!(silence_b64(), expected);
    assert_eq!(silence_b64().len(), 216);
    assert_eq!(STANDARD.decode(silence_b64()).unwrap(), vec![0xFF; 160]);
}

#[test]
fn last_frame_is_padded_with_silence() {
    let pcm: Vec<i16> = (0..161).map(|i| (i * 200 - 16000) as i16).collect();
    let set = FrameSet::from_pcm(&pcm);
    assert_eq!(set.len(), 2);
    assert!(!set.is_empty());
    assert_eq!(set.mulaw().len(), 320);
    let mut codes = Vec::new();
    mulaw::encode_slice(&pcm, &mut codes);
    assert_eq!(&set.frame(0)[..], &codes[..160]);
    assert_eq!(set.frame(1)[0], codes[160]);
    assert!(set.frame(1)[1..].iter().all(|&b| b == 0xFF));
    assert_eq!(&set.mulaw()[..161], &codes[..]);

    // Exactly one frame needs no padding frame.
    assert_eq!(FrameSet::from_pcm(&pcm[..160]).len(), 1);
    // from_mulaw pads the same way and agrees with from_pcm.
    assert_eq!(FrameSet::from_mulaw(&codes), set);
    let short = FrameSet::from_mulaw(&[0x00, 0x80, 0x7F]);
    assert_eq!(short.len(), 1);
    assert_eq!(&short.frame(0)[..3], &[0x00, 0x80, 0x7F]);
    assert!(short.frame(0)[3..].iter().all(|&b| b == 0xFF));
}

#[test]
fn base64_matches_each_frame() {
    let pcm: Vec<i16> = (0..8000)
        .map(|i| (8000.0 * (2.0 * PI * 440.0 * f64::from(i) / 8000.0).sin()) as i16)
        .collect();
    let set = FrameSet::from_pcm(&pcm);
    assert_eq!(set.len(), 50);
    for k in 0..set.len() {
        assert_eq!(set.b64(k), STANDARD.encode(set.frame(k)), "frame {k}");
        assert_eq!(set.b64(k).len(), 216);
        assert_eq!(&set.mulaw()[k * 160..(k + 1) * 160], &set.frame(k)[..]);
    }
    assert_ne!(set.b64(3), set.b64(4));
}

#[test]
fn silence_and_durations() {
    let set = FrameSet::silence(3);
    assert_eq!(set.len(), 3);
    assert_eq!(set.duration(), Duration::from_millis(60));
    for k in 0..3 {
        assert_eq!(set.frame(k), &[0xFF; 160]);
        assert_eq!(set.b64(k), silence_b64());
    }
    let empty = FrameSet::from_pcm(&[]);
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    assert_eq!(empty.duration(), Duration::ZERO);
    assert!(FrameSet::silence(0).is_empty());
    assert_eq!(
        FrameSet::from_pcm(&[0; 8001]).duration(),
        Duration::from_millis(1020)
    );
    assert_eq!(format!("{set:?}"), "FrameSet { frames: 3, duration: 60ms }");
}

#[test]
#[should_panic]
fn frame_out_of_range_panics() {
    let _ = FrameSet::silence(2).frame(2);
}

/// Speech-like test signal: a few harmonics with a syllable-rate envelope.
fn speechish(rate: u32, secs: f64) -> Vec<f64> {
    let n = (secs * f64::from(rate)) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let envelope = 0.5 * (1.0 - (2.0 * PI * 3.0 * t).cos()); // 3 "syllables"/s
            let f0 = 140.0 + 30.0 * (2.0 * PI * 0.7 * t).sin();
            let voice: f64 = [
                (1.0, 0.5),
                (2.0, 0.25),
                (5.0, 0.12),
                (13.0, 0.06),
                (21.0, 0.03),
            ]
            .iter()
            .map(|&(h, a)| a * (2.0 * PI * h * f0 * t).sin())
            .sum();
            0.8 * envelope * voice
        })
        .collect()
}

#[test]
fn wav_to_frames_to_wav_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("speech16k.wav");
    let signal = speechish(16000, 2.0);
    write_int_wav(&src, 16000, 16, &[signal]);

    let pcm = wav::load_8k(&src).unwrap();
    let set = load_frames(&src).unwrap();
    assert_eq!(set, FrameSet::from_pcm(&pcm));
    assert_eq!(set.len(), 16000usize.div_ceil(160));
    let mut decoded = Vec::new();
    mulaw::decode_slice(set.mulaw(), &mut decoded);
    decoded.truncate(pcm.len());

    let out = dir.path().join("back.wav");
    wav::write_8k(&out, &decoded).unwrap();
    let back: Vec<f64> = hound::WavReader::open(&out)
        .unwrap()
        .into_samples::<i16>()
        .map(|s| f64::from(s.unwrap()))
        .collect();

    // Reference: the file's own samples resampled directly.
    let file_samples: Vec<f32> = hound::WavReader::open(&src)
        .unwrap()
        .into_samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let reference: Vec<f64> = resample::to_8k(&file_samples, 16000)
        .iter()
        .map(|&x| f64::from(x) * 32768.0)
        .collect();
    assert_eq!(back.len(), reference.len());
    let r = pearson(&back, &reference);
    assert!(r > 0.99, "correlation {r}");
    // mu-law's ~38 dB SNR means far better than the bound in practice.
    assert!(r > 0.999, "correlation {r}");
}

#[test]
fn cache_shares_one_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompt.wav");
    write_int_wav(&path, 8000, 16, &[sine(440.0, 8000, 0.1, 0.3)]);
    let cache = AudioCache::new();
    let first = cache.get(&path).unwrap();
    assert_eq!(first.len(), 5);
    // Later edits are not seen: the file was decoded once.
    std::fs::write(&path, b"not a wav any more").unwrap();
    let second = cache.get(&path).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(*first, load_frames_of(&sine(440.0, 8000, 0.1, 0.3)));
    assert_eq!(format!("{cache:?}"), "AudioCache { entries: 1 }");

    // Concurrent first requests get the same Arc.
    let other = dir.path().join("other.wav");
    write_int_wav(&other, 44100, 16, &[sine(300.0, 44100, 1.0, 0.3)]);
    let cache = Arc::new(AudioCache::default());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (cache, other) = (Arc::clone(&cache), other.clone());
            std::thread::spawn(move || cache.get(&other).unwrap())
        })
        .collect();
    let sets: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(sets.iter().all(|s| Arc::ptr_eq(s, &sets[0])));
}

fn load_frames_of(signal: &[f64]) -> FrameSet {
    let pcm: Vec<i16> = signal
        .iter()
        .map(|&x| (x * 32768.0).round() as i16)
        .collect();
    FrameSet::from_pcm(&pcm)
}

#[test]
fn cache_does_not_remember_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.wav");
    let cache = AudioCache::new();
    let err = cache.get(&path).unwrap_err();
    assert!(matches!(err, AudioError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("later.wav"));
    assert_eq!(format!("{cache:?}"), "AudioCache { entries: 0 }");
    write_int_wav(&path, 8000, 16, &[vec![0.1; 400]]);
    assert_eq!(cache.get(&path).unwrap().len(), 3);
    let frames = frames::load_frames(&path).unwrap();
    assert_eq!(*cache.get(&path).unwrap(), frames);
}
