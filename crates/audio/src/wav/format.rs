//! The fmt chunk of a WAV file and decoding its samples: every common integer depth, float
//! and mu-law, mixed down to mono and resampled to 8 kHz.

use crate::{mulaw, resample};

/// Lowest sample rate accepted (below it a header is corrupt, not audio).
pub(crate) const MIN_RATE: u32 = 1_000;
/// Highest sample rate accepted (768 kHz: the top of professional audio).
pub(crate) const MAX_RATE: u32 = 768_000;

/// How the samples in the data chunk are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// Little-endian integers (unsigned for 1-byte containers) with `valid`
    /// significant bits in a container of `bytes` bytes.
    Int { bytes: usize, valid: usize },
    /// IEEE float, 4 or 8 bytes.
    Float(usize),
    /// G.711 mu-law, one byte per sample.
    MuLaw,
}

/// The parts of the fmt chunk needed for decoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Format {
    encoding: Encoding,
    channels: usize,
    pub(crate) sample_rate: u32,
}

const FORMAT_PCM: u16 = 0x0001;
const FORMAT_FLOAT: u16 = 0x0003;
const FORMAT_MULAW: u16 = 0x0007;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Tail shared by every KSDATAFORMAT_SUBTYPE GUID; the first two bytes are the
/// classic format code (PCM = 1, float = 3, mu-law = 7...).
const KS_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Interprets a fmt chunk; the error is the `what` of an Unsupported error.
pub(crate) fn parse_fmt(chunk: &[u8]) -> Result<Format, String> {
    if chunk.len() < 16 {
        return Err(format!("fmt chunk of {} bytes", chunk.len()));
    }
    let u16_at = |i: usize| u16::from_le_bytes([chunk[i], chunk[i + 1]]);
    let mut tag = u16_at(0);
    let channels = usize::from(u16_at(2));
    let sample_rate = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
    let block_align = usize::from(u16_at(12));
    let bits = usize::from(u16_at(14));
    let mut valid = bits;
    if tag == FORMAT_EXTENSIBLE {
        if chunk.len() < 40 {
            return Err(format!("extensible fmt chunk of {} bytes", chunk.len()));
        }
        let guid = &chunk[24..40];
        if guid[2..] != KS_GUID_TAIL {
            let hex: String = guid.iter().map(|b| format!("{b:02x}")).collect();
            return Err(format!("extensible subformat {hex}"));
        }
        tag = u16_at(24);
        // 0 means "same as the container"; larger is nonsense, ignore it too.
        valid = match usize::from(u16_at(18)) {
            v if v == 0 || v > bits => bits,
            v => v,
        };
    }
    // Name a foreign codec first: its other fields follow different rules
    // (an mp3 "block" is 1 byte for any channel count) and would mislead.
    if !matches!(tag, FORMAT_PCM | FORMAT_FLOAT | FORMAT_MULAW) {
        return Err(format!("codec 0x{tag:04x} ({})", codec_name(tag)));
    }
    if channels == 0 {
        return Err("0 channels".into());
    }
    // Real audio lives between telephone-band and studio rates; anything else is a corrupt
    // header, and resampling from it would size filters and buffers by the absurd ratio
    // (found by fuzzing: a 1 GHz header asked for 18 GB).
    if !(MIN_RATE..=MAX_RATE).contains(&sample_rate) {
        return Err(format!(
            "sample rate {sample_rate} Hz (supported: {MIN_RATE}–{MAX_RATE} Hz)"
        ));
    }
    // The container is normally bits rounded up to bytes, but a wider block
    // (24-bit values in 4-byte containers, 12-bit in 2) is legal; `shift_for`
    // works out where the valid bits sit in it.
    let from_bits = bits.div_ceil(8);
    let container = match block_align.checked_div(channels) {
        Some(c) if block_align % channels == 0 && c >= from_bits => c,
        // Some writers leave block_align at 0; trust the bit depth then.
        _ if block_align == 0 => from_bits,
        _ => {
            return Err(format!(
                "{bits}-bit samples packed in {block_align}-byte blocks of {channels} channels"
            ));
        }
    };
    let encoding = match tag {
        FORMAT_PCM if valid > 0 && (1..=4).contains(&container) => Encoding::Int {
            bytes: container,
            valid: valid.min(container * 8),
        },
        FORMAT_PCM => return Err(format!("{bits}-bit integer samples")),
        FORMAT_FLOAT if matches!((bits, container), (32, 4) | (64, 8)) => {
            Encoding::Float(container)
        }
        FORMAT_FLOAT => return Err(format!("{bits}-bit float samples")),
        FORMAT_MULAW if container == 1 => Encoding::MuLaw,
        // Only mu-law with a wider container is left.
        _ => return Err(format!("{bits}-bit mu-law samples")),
    };
    Ok(Format {
        encoding,
        channels,
        sample_rate,
    })
}

/// Names for the codecs people most often put in a .wav by accident, so the
/// error says what to convert from.
fn codec_name(tag: u16) -> &'static str {
    match tag {
        0x0002 => "ms adpcm",
        0x0006 => "a-law",
        0x0011 => "ima adpcm",
        0x0031 => "gsm 6.10",
        0x0050 => "mpeg",
        0x0055 => "mp3",
        0x0160..=0x0163 => "wma",
        0x00FF | 0x1600 | 0x1610 => "aac",
        0x674F..=0x6751 => "vorbis",
        0xF1AC => "flac",
        _ => "unknown",
    }
}

impl Format {
    /// Bytes of one sample frame (every channel's sample).
    pub(crate) fn block(&self) -> usize {
        let width = match self.encoding {
            Encoding::Int { bytes, .. } => bytes,
            Encoding::Float(bytes) => bytes,
            Encoding::MuLaw => 1,
        };
        width * self.channels
    }

    /// Decodes data-chunk bytes to 8 kHz mono i16; a trailing partial frame is ignored.
    /// Owned bytes are freed once mixed down, before resampling allocates.
    pub(crate) fn decode(&self, data: std::borrow::Cow<'_, [u8]>) -> Vec<i16> {
        let mono = self.mix_down(&data);
        drop(data);
        let resampled = resample::to_8k(&mono, self.sample_rate);
        drop(mono);
        // Scale by 32768 (not 32767) so 16-bit and mu-law input at 8 kHz
        // round-trips bit-exactly; the clamp catches +1.0 and resampler overshoot.
        resampled
            .iter()
            .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect()
    }

    /// Decodes every complete frame to f32 in [-1, 1], averaging the channels.
    /// A trailing partial frame (a malformed but readable file) is ignored.
    fn mix_down(&self, data: &[u8]) -> Vec<f32> {
        match self.encoding {
            // 8-bit WAV is the one unsigned format: 128 is zero.
            Encoding::Int { bytes: 1, .. } => {
                self.mix(data, 1, |b| (f32::from(b[0]) - 128.0) / 128.0)
            }
            Encoding::Int { bytes, valid } => {
                // Move the significant bits to the top of an i32: that both
                // sign-extends and normalises every depth to one scale.
                let shift = shift_for(data, bytes, valid);
                self.mix(data, bytes, move |b| {
                    let mut raw = [0u8; 4];
                    raw[..bytes].copy_from_slice(&b[..bytes]);
                    (u32::from_le_bytes(raw) << shift) as i32 as f32 / 2_147_483_648.0
                })
            }
            Encoding::Float(4) => self.mix(data, 4, |b| {
                finite(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }),
            Encoding::Float(_) => self.mix(data, 8, |b| {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&b[..8]);
                finite(f64::from_le_bytes(raw) as f32)
            }),
            Encoding::MuLaw => self.mix(data, 1, |b| f32::from(mulaw::decode(b[0])) / 32768.0),
        }
    }

    /// Generic over the sample reader so each encoding gets its own tight,
    /// inlined loop.
    fn mix(&self, data: &[u8], width: usize, read: impl Fn(&[u8]) -> f32) -> Vec<f32> {
        let block = width * self.channels;
        if self.channels == 1 {
            return data.chunks_exact(block).map(read).collect();
        }
        let scale = 1.0 / self.channels as f32;
        data.chunks_exact(block)
            .map(|frame| frame.chunks_exact(width).map(&read).sum::<f32>() * scale)
            .collect()
    }
}

/// Left shift that puts a sample's significant bits at the top of a u32.
///
/// The WAV spec stores `valid` bits left-justified in the container (low bits
/// zero), but some writers (hound among them, for 24-in-32) right-justify and
/// sign-extend instead. The data tells them apart: right-justified samples use
/// the low "padding" bits while their top bits are only ever a sign
/// extension (all zeros or all ones). Anything else, including left-justified
/// files with dither in the padding, is read the spec's way.
fn shift_for(data: &[u8], bytes: usize, valid: usize) -> u32 {
    let container_bits = 8 * bytes;
    let left_justified = 32 - container_bits as u32;
    if valid >= container_bits {
        return left_justified;
    }
    let pad_mask = (1u32 << (container_bits - valid)) - 1;
    let extension = (u32::MAX >> (32 - container_bits)) >> valid;
    let (mut padding_used, mut top_is_extension) = (false, true);
    for b in data.chunks_exact(bytes) {
        let mut raw = [0u8; 4];
        raw[..bytes].copy_from_slice(b);
        let raw = u32::from_le_bytes(raw);
        padding_used |= raw & pad_mask != 0;
        let top = raw >> valid;
        top_is_extension &= top == 0 || top == extension;
    }
    if padding_used && top_is_extension {
        32 - valid as u32
    } else {
        left_justified
    }
}

/// NaN or infinite samples (corrupt float files) become silence instead of
/// poisoning the resampler's output around them.
fn finite(x: f32) -> f32 {
    if x.is_finite() { x } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names() {
        assert_eq!(codec_name(0x0055), "mp3");
        assert_eq!(codec_name(0x1234), "unknown");
    }

    #[test]
    fn short_fmt_is_unsupported() {
        assert_eq!(
            parse_fmt(&[1, 0, 1, 0]).unwrap_err(),
            "fmt chunk of 4 bytes"
        );
    }
}
