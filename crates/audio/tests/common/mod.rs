//! Shared test helpers: signal generators, measurements and a hand-rolled
//! RIFF writer for WAV shapes hound cannot produce.

// Each test binary compiles this module but uses only some of the helpers.
#![allow(dead_code)]

use std::f64::consts::PI;

/// `amp * sin(2π f t)` sampled at `rate` for `secs` seconds.
pub(crate) fn sine(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f64> {
    let n = (secs * f64::from(rate)).round() as usize;
    (0..n)
        .map(|i| amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin())
        .collect()
}

/// Root mean square of any numeric samples.
pub(crate) fn rms<T: Copy + Into<f64>>(x: &[T]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| v.into().powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Frequency estimated from sign changes (two per period).
pub(crate) fn zero_crossing_hz<T: Copy + Into<f64>>(x: &[T], rate: u32) -> f64 {
    let crossings = x
        .windows(2)
        .filter(|w| (w[0].into() < 0.0) != (w[1].into() < 0.0))
        .count();
    crossings as f64 / 2.0 / (x.len() as f64 / f64::from(rate))
}

/// The middle of a signal, dropping `margin` samples at each end where the
/// resampler's zero padding makes a truncated sine deviate.
pub(crate) fn interior<T>(x: &[T], margin: usize) -> &[T] {
    &x[margin..x.len() - margin]
}

/// Pearson correlation coefficient.
pub(crate) fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    cov / (va * vb).sqrt()
}

/// A fmt chunk body: WAVEFORMAT fields plus `extra` (cbSize and beyond).
pub(crate) fn fmt_body(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    b.extend_from_slice(&block_align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b
}

/// A RIFF/WAVE file from (id, body) chunks, with pad bytes after odd bodies.
/// `size_override` replaces a chunk's declared size (to fake truncation etc.).
pub(crate) fn riff(chunks: &[(&[u8; 4], &[u8], Option<u32>)]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    for (id, data, size_override) in chunks {
        body.extend_from_slice(*id);
        let size = size_override.unwrap_or(data.len() as u32);
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&body);
    file
}

/// Writes `channels` interleaved with hound as integer PCM of `bits` bits,
/// from normalised [-1, 1] samples.
pub(crate) fn write_int_wav(path: &std::path::Path, rate: u32, bits: u16, channels: &[Vec<f64>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let full = f64::from(1u32 << (bits - 1));
    for i in 0..channels[0].len() {
        for ch in channels {
            let v = (ch[i] * full).round().clamp(-full, full - 1.0) as i32;
            if bits == 8 {
                w.write_sample(v as i8).unwrap();
            } else {
                w.write_sample(v).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// Same with 32-bit float samples.
pub(crate) fn write_float_wav(path: &std::path::Path, rate: u32, channels: &[Vec<f64>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..channels[0].len() {
        for ch in channels {
            w.write_sample(ch[i] as f32).unwrap();
        }
    }
    w.finalize().unwrap();
}
