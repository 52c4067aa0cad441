//! ITU-T G.711 mu-law companding, bit-exact with the classic Sun `g711.c`
//! (`linear2ulaw` with BIAS 0x84 and CLIP 32635, `ulaw2linear`).

/// The mu-law code for a zero sample (positive zero); what Twilio sends as silence.
pub const SILENCE: u8 = 0xFF;

/// Added to the magnitude before companding so that every segment starts on a
/// power of two; this is what makes the segment search a bit-length lookup.
const BIAS: i32 = 0x84;

/// Largest magnitude that still fits the top segment once BIAS is added
/// (32635 + 132 = 32767); anything larger saturates to the loudest code.
const CLIP: i32 = 32635;

/// Decoding is a pure function of 8 bits, so build the whole table at compile
/// time and make `decode` a single load.
const DECODE_TABLE: [i16; 256] = build_decode_table();

const fn build_decode_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = expand(code as u8);
        code += 1;
    }
    table
}

/// `ulaw2linear`: codes are stored bit-inverted, then sign (1 bit), exponent
/// (3 bits) and mantissa (4 bits). The decoded magnitude is the midpoint of the
/// code's quantisation interval.
const fn expand(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Compresses one 16-bit linear sample to a mu-law code (`linear2ulaw`).
///
/// Magnitudes above 32635 (including -32768) saturate to the loudest code
/// (0x80 positive, 0x00 negative). Small negative values (-1..=-3) map to
/// 0x7F, the "negative zero" code, exactly like the reference implementation.
pub fn encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    let (sign, magnitude) = if value < 0 {
        (0x80u8, (-value).min(CLIP))
    } else {
        (0x00u8, value.min(CLIP))
    };
    // Biased magnitude is in 132..=32767: its highest set bit (7..=14) gives
    // the segment, so no table search is needed.
    let biased = (magnitude + BIAS) as u32;
    let exponent = (31 - biased.leading_zeros()) - 7;
    let mantissa = ((biased >> (exponent + 3)) & 0x0F) as u8;
    !(sign | ((exponent as u8) << 4) | mantissa)
}

/// Expands one mu-law code to a 16-bit linear sample (`ulaw2linear`).
pub fn decode(code: u8) -> i16 {
    DECODE_TABLE[usize::from(code)]
}

/// Encodes `pcm` and appends the codes to `out` (existing contents are kept).
pub fn encode_slice(pcm: &[i16], out: &mut Vec<u8>) {
    out.reserve(pcm.len());
    out.extend(pcm.iter().map(|&s| encode(s)));
}

/// Decodes `codes` and appends the samples to `out` (existing contents are kept).
pub fn decode_slice(codes: &[u8], out: &mut Vec<i16>) {
    out.reserve(codes.len());
    out.extend(codes.iter().map(|&c| decode(c)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_zero() {
        assert_eq!(decode(SILENCE), 0);
        assert_eq!(encode(0), SILENCE);
    }

    #[test]
    fn slices_append() {
        let mut out = vec![1u8];
        encode_slice(&[0, i16::MAX, i16::MIN], &mut out);
        assert_eq!(out, [1, 0xFF, 0x80, 0x00]);
        let mut pcm = vec![7i16];
        decode_slice(&[0xFF, 0x80, 0x00], &mut pcm);
        assert_eq!(pcm, [7, 0, 32124, -32124]);
    }
}
