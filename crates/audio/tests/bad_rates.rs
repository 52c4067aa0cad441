//! Corrupt sample rates in WAV headers are refused before any resampling work (regression:
//! a fuzzed header claiming ~1 GHz made the reader ask for 18 GB).

use dialtone_audio::{AudioError, wav};

fn header(rate: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36u32 + 64).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate.wrapping_mul(2)).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&64u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 64]);
    b
}

#[test]
fn absurd_rates_are_unsupported_naming_the_file() {
    for rate in [0, 1, 999, 1_048_838_216] {
        match wav::load_8k_from_bytes(&header(rate), "odd.wav") {
            Err(AudioError::Unsupported { path, what }) => {
                assert_eq!(path, "odd.wav");
                assert!(what.contains("sample rate"), "{what}");
            }
            other => panic!("rate {rate}: {other:?}"),
        }
    }
    for rate in [1_000, 8_000, 768_000] {
        assert!(
            wav::load_8k_from_bytes(&header(rate), "ok.wav").is_ok(),
            "rate {rate}"
        );
    }
}

#[test]
fn the_fuzzer_found_header_is_refused_quickly() {
    let found: [u8; 48] = [
        0x52, 0x49, 0x46, 0x46, 0x42, 0xa4, 0x01, 0x10, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74,
        0x20, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x48, 0x00, 0x84, 0x3e, 0x00, 0x3e,
        0x00, 0x00, 0x02, 0x00, 0x10, 0x00, 0x64, 0x61, 0x74, 0x61, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x00, 0x26,
    ];
    assert!(matches!(
        wav::load_8k_from_bytes(&found, "fuzz.wav"),
        Err(AudioError::Unsupported { .. })
    ));
}
