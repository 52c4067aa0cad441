//! G.711 mu-law against independently written references: the segment formula
//! for decoding, the Sun `g711.c` segment-search encoder, and error bounds.

use dialtone_audio::mulaw::{self, SILENCE, decode, encode};

/// Decoding straight from the G.711 definition: the code is stored inverted;
/// magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84.
fn g711_decode(code: u8) -> i32 {
    let u = !code;
    let exponent = u32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 { -magnitude } else { magnitude }
}

/// The original Sun `linear2ulaw`: bias, then a linear search of the segment
/// end table, no explicit clip (segment 8 means "saturate").
fn sun_linear2ulaw(pcm: i32) -> u8 {
    const SEG_END: [i32; 8] = [0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF];
    let (value, mask) = if pcm < 0 {
        (0x84 - pcm, 0x7F)
    } else {
        (pcm + 0x84, 0xFF)
    };
    match SEG_END.iter().position(|&end| value <= end) {
        None => 0x7F ^ mask,
        Some(seg) => ((seg << 4) as u8 | ((value >> (seg + 3)) & 0x0F) as u8) ^ mask,
    }
}

/// Exponent (segment) of a code, 0..=7.
fn segment(code: u8) -> u32 {
    u32::from(((!code) >> 4) & 0x07)
}

#[test]
fn decode_matches_g711_formula_for_all_codes() {
    for code in 0..=255u8 {
        assert_eq!(
            i32::from(decode(code)),
            g711_decode(code),
            "code {code:#04x}"
        );
    }
}

#[test]
fn decode_spot_values_from_g711_table() {
    let expected: [(u8, i16); 16] = [
        (0x00, -32124),
        (0x01, -31100),
        (0x0F, -16764),
        (0x10, -15996),
        (0x1F, -8316),
        (0x20, -7932),
        (0x70, -120),
        (0x7E, -8),
        (0x7F, 0),
        (0x80, 32124),
        (0x81, 31100),
        (0x8F, 16764),
        (0xF0, 120),
        (0xFE, 8),
        (0xFF, 0),
        (0xEF, 132),
    ];
    for (code, value) in expected {
        assert_eq!(decode(code), value, "code {code:#04x}");
    }
    assert_eq!(SILENCE, 0xFF);
}

#[test]
fn decode_is_odd_symmetric_and_monotonic() {
    for code in 0..=0x7Fu8 {
        assert_eq!(decode(code), -decode(code | 0x80), "code {code:#04x}");
    }
    // Positive codes 0x80..=0xFF run from loudest to zero.
    for code in 0x80..0xFFu8 {
        assert!(decode(code) > decode(code + 1), "code {code:#04x}");
    }
}

#[test]
fn encode_matches_sun_g711_for_every_sample() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(encode(x), sun_linear2ulaw(i32::from(x)), "sample {x}");
    }
}

#[test]
fn encode_inverts_decode_except_negative_zero() {
    for code in 0..=255u8 {
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(encode(decode(code)), expected, "code {code:#04x}");
    }
}

#[test]
fn encode_segment_boundaries() {
    // Segment e starts where the biased magnitude reaches 2^(e+7): 124, 380, ... 16252.
    for e in 1..8u32 {
        let start = (1i32 << (e + 7)) - 0x84;
        let below = encode(start as i16 - 1);
        let at = encode(start as i16);
        assert_eq!(
            (segment(below), !below & 0x0F),
            (e - 1, 0x0F),
            "below seg {e}"
        );
        assert_eq!((segment(at), !at & 0x0F), (e, 0), "at seg {e}");
        // Same for the negative side, with the sign bit clear in the code.
        assert_eq!(encode(-(start as i16)), at & 0x7F, "negative seg {e}");
    }
    // Mantissa steps of 8 inside segment 0: 0..=3 -> 0xFF, 4..=11 -> 0xFE.
    assert_eq!(encode(3), 0xFF);
    assert_eq!(encode(4), 0xFE);
    assert_eq!(encode(11), 0xFE);
    assert_eq!(encode(12), 0xFD);
    assert_eq!(encode(-1), 0x7F);
    assert_eq!(encode(-4), 0x7E);
}

#[test]
fn encode_clips_at_full_scale() {
    assert_eq!(encode(32635), 0x80);
    assert_eq!(encode(32767), 0x80);
    assert_eq!(encode(-32635), 0x00);
    assert_eq!(encode(-32767), 0x00);
    assert_eq!(encode(i16::MIN), 0x00);
    // Just below the clip the top code still applies (its interval is 31744..=32767 biased).
    assert_eq!(encode(31612), 0x80);
    assert_eq!(encode(31611), 0x81);
}

#[test]
fn round_trip_error_is_within_half_a_step() {
    let mut max_err = 0;
    let mut worst_in_segment = [0i32; 8];
    for x in i16::MIN..=i16::MAX {
        let code = encode(x);
        let y = decode(code);
        let err = (i32::from(y) - i32::from(x)).abs();
        max_err = max_err.max(err);
        let magnitude = i32::from(x).abs();
        if magnitude <= 32635 {
            // Decoding returns the midpoint of an interval 2^(e+3) wide.
            let bound = 1 << (segment(code) + 2);
            assert!(err <= bound, "x {x} -> {y}: error {err} > {bound}");
            let e = segment(code) as usize;
            worst_in_segment[e] = worst_in_segment[e].max(err);
        } else {
            // Clipped: saturates to the loudest code of the right sign.
            assert_eq!(y, if x > 0 { 32124 } else { -32124 }, "x {x}");
        }
        // The sign is never flipped (zero aside).
        assert!(i32::from(y) * i32::from(x) >= 0, "x {x} -> {y}");
    }
    // The per-segment bound is tight.
    for (e, &worst) in worst_in_segment.iter().enumerate() {
        assert_eq!(worst, 1 << (e + 2), "segment {e}");
    }
    // Overall worst case is clipping of -32768 to -32124.
    assert_eq!(max_err, 644);
}

#[test]
fn slices_match_scalar_functions() {
    let pcm: Vec<i16> = (-300..300).map(|i| (i * 109) as i16).collect();
    let mut codes = Vec::new();
    mulaw::encode_slice(&pcm, &mut codes);
    assert_eq!(codes, pcm.iter().map(|&x| encode(x)).collect::<Vec<_>>());
    let mut back = Vec::new();
    mulaw::decode_slice(&codes, &mut back);
    assert_eq!(back, codes.iter().map(|&c| decode(c)).collect::<Vec<_>>());
}
