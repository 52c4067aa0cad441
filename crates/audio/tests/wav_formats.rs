//! WAV input matrix: every common rate × bit depth × channel layout must load
//! as 8 kHz mono with the test tone intact, plus hand-built shapes hound
//! cannot write (plain float/24-bit tags, mu-law, 64-bit float, odd chunks).

mod common;

use std::f64::consts::PI;
use std::path::Path;

use common::*;
use dialtone_audio::{mulaw, wav};

const RATES: [u32; 6] = [8000, 11025, 16000, 22050, 44100, 48000];
const SECS: f64 = 0.5;
const AMP: f64 = 0.5;
const FREQ: f64 = 440.0;
/// Output samples ignored at each end: the resampler's kernel reaches ~35
/// output samples, and the test tone starts and stops abruptly.
const MARGIN: usize = 64;

#[derive(Clone, Copy, Debug)]
enum Depth {
    Int(u16),
    Float,
}

fn write(path: &Path, rate: u32, depth: Depth, channels: &[Vec<f64>]) {
    match depth {
        Depth::Int(bits) => write_int_wav(path, rate, bits, channels),
        Depth::Float => write_float_wav(path, rate, channels),
    }
}

/// Checks a loaded tone sample by sample against the ideal 8 kHz tone of
/// amplitude `amp` (which also proves there is no delay), plus length, RMS
/// and zero-crossing frequency.
fn assert_tone(out: &[i16], amp: f64, tolerance: f64, what: &str) {
    let expected_len = (SECS * 8000.0) as i64;
    assert!(
        (out.len() as i64 - expected_len).abs() <= 2,
        "{what}: {} samples, expected ~{expected_len}",
        out.len()
    );
    let mut worst = 0.0f64;
    for (j, &y) in out
        .iter()
        .enumerate()
        .skip(MARGIN)
        .take(out.len() - 2 * MARGIN)
    {
        let ideal = amp * (2.0 * PI * FREQ * j as f64 / 8000.0).sin();
        worst = worst.max((f64::from(y) / 32768.0 - ideal).abs());
    }
    assert!(worst <= tolerance, "{what}: max deviation {worst}");
    let mid = interior(out, MARGIN);
    let level = rms(mid) / 32768.0;
    let want = amp / 2f64.sqrt();
    assert!(
        (level / want - 1.0).abs() < 0.02,
        "{what}: rms {level}, want {want}"
    );
    let hz = zero_crossing_hz(mid, 8000);
    assert!((hz - FREQ).abs() < FREQ * 0.02, "{what}: {hz} Hz");
}

#[test]
fn every_rate_depth_and_layout_loads_as_8k_mono() {
    let dir = tempfile::tempdir().unwrap();
    let depths = [
        Depth::Int(8),
        Depth::Int(16),
        Depth::Int(24),
        Depth::Int(32),
        Depth::Float,
    ];
    for rate in RATES {
        let tone = sine(FREQ, rate, SECS, AMP);
        for depth in depths {
            // 8-bit quantisation alone is up to 1/256 of full scale; 16 bits
            // and up only suffer the output's own half-LSB rounding.
            let tolerance = if matches!(depth, Depth::Int(8)) {
                6e-3
            } else {
                1e-4
            };
            for layout in [vec![tone.clone()], vec![tone.clone(), tone.clone()]] {
                let what = format!("{rate} Hz {depth:?} {}ch", layout.len());
                let path = dir
                    .path()
                    .join(format!("{rate}-{depth:?}-{}.wav", layout.len()));
                write(&path, rate, depth, &layout);
                let out = wav::load_8k(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_tone(&out, AMP, tolerance, &what);
            }
        }
    }
}

#[test]
fn stereo_and_multichannel_mix_down_by_averaging() {
    let dir = tempfile::tempdir().unwrap();
    let tone = sine(FREQ, 16000, SECS, AMP);
    let silence = vec![0.0; tone.len()];
    let inverted: Vec<f64> = tone.iter().map(|x| -x).collect();
    let cases = [
        ("left only", vec![tone.clone(), silence.clone()], AMP / 2.0),
        ("both", vec![tone.clone(), tone.clone()], AMP),
        // More than two channels makes hound write WAVE_FORMAT_EXTENSIBLE.
        (
            "four",
            vec![tone.clone(), tone.clone(), tone.clone(), inverted],
            AMP / 2.0,
        ),
        ("six", vec![tone.clone(); 6], AMP),
    ];
    for (what, layout, amp) in cases {
        let path = dir.path().join(format!("{what}.wav"));
        write_int_wav(&path, 16000, 16, &layout);
        let out = wav::load_8k(&path).unwrap();
        assert_tone(&out, amp, 1e-4, what);
    }
}

#[test]
fn eight_khz_sixteen_bit_mono_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exact.wav");
    let pcm: Vec<i16> = (0..8000)
        .map(|i| ((i * 7919) % 65536 - 32768) as i16)
        .collect();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for &s in &pcm {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    assert_eq!(wav::load_8k(&path).unwrap(), pcm);
}

fn pcm16(samples: &[f64]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&x| ((x * 32768.0).round() as i16).to_le_bytes())
        .collect()
}

#[test]
fn hand_built_shapes_hound_does_not_write() {
    let rate = 16000;
    let tone = sine(FREQ, rate, SECS, AMP);
    let float32: Vec<u8> = tone
        .iter()
        .flat_map(|&x| (x as f32).to_le_bytes())
        .collect();
    let float64: Vec<u8> = tone.iter().flat_map(|&x| x.to_le_bytes()).collect();
    let int24: Vec<u8> = tone
        .iter()
        .flat_map(|&x| {
            let v = (x * 8_388_608.0).round() as i32;
            v.to_le_bytes()[..3].to_vec()
        })
        .collect();
    // 24 valid bits left-justified in 4-byte containers (low byte zero).
    let int24_in_32: Vec<u8> = tone
        .iter()
        .flat_map(|&x| (((x * 8_388_608.0).round() as i32) << 8).to_le_bytes())
        .collect();
    // Same with dither noise in the padding byte, which must not be
    // mistaken for right-justified samples.
    let dithered: Vec<u8> = tone
        .iter()
        .enumerate()
        .flat_map(|(i, &x)| {
            let v = (((x * 8_388_608.0).round() as i32) << 8) | ((i as i32 * 37) & 0xFF);
            v.to_le_bytes()
        })
        .collect();
    // 12-bit samples left-justified in 16-bit containers (low nibble zero).
    let int12: Vec<u8> = tone
        .iter()
        .flat_map(|&x| (((x * 2048.0).round() as i16) << 4).to_le_bytes())
        .collect();
    let mut extensible_24_in_32 = fmt_body(0xFFFE, 1, rate, 4, 32);
    extensible_24_in_32.extend_from_slice(&22u16.to_le_bytes());
    extensible_24_in_32.extend_from_slice(&24u16.to_le_bytes()); // valid bits
    extensible_24_in_32.extend_from_slice(&4u32.to_le_bytes()); // channel mask
    extensible_24_in_32.extend_from_slice(&[
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B,
        0x71,
    ]);
    let mut float_ex = fmt_body(3, 1, rate, 4, 32);
    float_ex.extend_from_slice(&0u16.to_le_bytes()); // WAVEFORMATEX with cbSize 0

    let cases: Vec<(&str, Vec<u8>, Vec<u8>, f64)> = vec![
        (
            "float32 tag 3",
            fmt_body(3, 1, rate, 4, 32),
            float32.clone(),
            1e-4,
        ),
        ("float32 waveformatex", float_ex, float32, 1e-4),
        ("float64", fmt_body(3, 1, rate, 8, 64), float64, 1e-4),
        ("pcm24 tag 1", fmt_body(1, 1, rate, 3, 24), int24, 1e-4),
        (
            "24 in 32 extensible",
            extensible_24_in_32.clone(),
            int24_in_32,
            1e-4,
        ),
        ("24 in 32 dithered", extensible_24_in_32, dithered, 1e-4),
        ("12 in 16", fmt_body(1, 1, rate, 2, 12), int12, 5e-4),
    ];
    for (what, fmt, data, tolerance) in cases {
        let file = riff(&[(b"fmt ", &fmt, None), (b"data", &data, None)]);
        let out = wav::load_8k_from_bytes(&file, what).unwrap_or_else(|e| panic!("{e}"));
        assert_tone(&out, AMP, tolerance, what);
    }
}

#[test]
fn right_justified_24_in_32_from_hound_loads_at_full_scale() {
    // hound stores 24-bit samples in 4-byte containers right-justified and
    // sign-extended, against the spec; the loader must detect that.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("24in32.wav");
    let spec = hound::WavSpecEx {
        spec: hound::WavSpec {
            channels: 2,
            sample_rate: 48000,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        },
        bytes_per_sample: 4,
    };
    let file = std::fs::File::create(&path).unwrap();
    let mut w = hound::WavWriter::new_with_spec_ex(std::io::BufWriter::new(file), spec).unwrap();
    for x in sine(FREQ, 48000, SECS, AMP) {
        let v = (x * 8_388_608.0).round() as i32;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
    assert_tone(&wav::load_8k(&path).unwrap(), AMP, 1e-4, "hound 24 in 32");
}

#[test]
fn mulaw_wav_decodes_with_g711() {
    let codes: Vec<u8> = (0..4000u32).map(|i| (i * 37 % 256) as u8).collect();
    let expected: Vec<i16> = codes.iter().map(|&c| mulaw::decode(c)).collect();
    let mut ext = fmt_body(0xFFFE, 1, 8000, 1, 8);
    ext.extend_from_slice(&22u16.to_le_bytes());
    ext.extend_from_slice(&8u16.to_le_bytes());
    ext.extend_from_slice(&4u32.to_le_bytes());
    ext.extend_from_slice(&[
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B,
        0x71,
    ]);
    // Tag 7 as Twilio-style tools write it: WAVEFORMATEX plus a fact chunk.
    let mut plain = fmt_body(7, 1, 8000, 1, 8);
    plain.extend_from_slice(&0u16.to_le_bytes());
    let fact = (codes.len() as u32).to_le_bytes();
    for (what, fmt) in [("tag 7", plain), ("extensible mu-law", ext)] {
        let file = riff(&[
            (b"fmt ", &fmt, None),
            (b"fact", &fact, None),
            (b"data", &codes, None),
        ]);
        assert_eq!(
            wav::load_8k_from_bytes(&file, what).unwrap(),
            expected,
            "{what}"
        );
    }
    // Stereo mu-law at another rate goes through the normal mix/resample path.
    let tone: Vec<u8> = sine(FREQ, 16000, SECS, AMP)
        .iter()
        .flat_map(|&x| {
            let c = mulaw::encode((x * 32768.0) as i16);
            [c, c]
        })
        .collect();
    let file = riff(&[
        (b"fmt ", &fmt_body(7, 2, 16000, 2, 8), None),
        (b"data", &tone, None),
    ]);
    // mu-law quantisation at this level is ~1/64 of the amplitude.
    assert_tone(
        &wav::load_8k_from_bytes(&file, "stereo").unwrap(),
        AMP,
        0.02,
        "stereo mu-law",
    );
}

#[test]
fn odd_chunks_padding_and_streaming_lengths() {
    let pcm = pcm16(&sine(FREQ, 8000, SECS, AMP));
    let fmt = fmt_body(1, 1, 8000, 2, 16);
    let expected = wav::load_8k_from_bytes(
        &riff(&[(b"fmt ", &fmt, None), (b"data", &pcm, None)]),
        "plain",
    )
    .unwrap();
    assert_tone(&expected, AMP, 1e-4, "plain");
    let cases = [
        // An odd-sized metadata chunk is followed by a pad byte.
        (
            "odd LIST first",
            riff(&[
                (b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00", None),
                (b"fmt ", &fmt, None),
                (b"data", &pcm, None),
            ]),
        ),
        // Chunks after the data chunk are ignored.
        (
            "trailing chunk",
            riff(&[
                (b"fmt ", &fmt, None),
                (b"data", &pcm, None),
                (b"id3 ", b"garbage", None),
            ]),
        ),
        // Streaming writers leave the data size at 0xFFFFFFFF.
        (
            "unknown data length",
            riff(&[(b"fmt ", &fmt, None), (b"data", &pcm, Some(u32::MAX))]),
        ),
    ];
    for (what, file) in cases {
        assert_eq!(
            wav::load_8k_from_bytes(&file, what).unwrap(),
            expected,
            "{what}"
        );
    }
    // A trailing half sample (odd data length) is dropped, not an error.
    let mut odd = pcm.clone();
    odd.push(0x12);
    let file = riff(&[(b"fmt ", &fmt, None), (b"data", &odd, None)]);
    assert_eq!(
        wav::load_8k_from_bytes(&file, "odd data").unwrap(),
        expected
    );
}

#[test]
fn write_8k_round_trips_through_hound_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    let pcm: Vec<i16> = (0..1234).map(|i| (i * 53 - 30000) as i16).collect();
    wav::write_8k(&path, &pcm).unwrap();
    let reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (
            spec.channels,
            spec.sample_rate,
            spec.bits_per_sample,
            spec.sample_format
        ),
        (1, 8000, 16, hound::SampleFormat::Int)
    );
    let back: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
    assert_eq!(back, pcm);
    assert_eq!(wav::load_8k(&path).unwrap(), pcm);
}
