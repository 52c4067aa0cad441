//! WAV bytes served over HTTP (`encode_8k`, `encode_mulaw_8k`): byte for byte the canonical
//! 44-byte-header PCM file every player reads, built here by hand from the RIFF layout as
//! the reference, and read back by hound.

use dialtone_audio::{mulaw, wav};

/// The canonical layout: RIFF, a 16-byte `fmt ` chunk (PCM), `data`, samples interleaved.
fn reference(channels: &[&[i16]]) -> Vec<u8> {
    let n = channels.iter().map(|c| c.len()).max().unwrap_or(0);
    let ch = channels.len() as u16;
    let data_len = (n * usize::from(ch) * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&ch.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&(8000 * 2 * u32::from(ch)).to_le_bytes());
    out.extend_from_slice(&(2 * ch).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        for c in channels {
            out.extend_from_slice(&c.get(i).copied().unwrap_or(0).to_le_bytes());
        }
    }
    out
}

#[test]
fn mono_and_two_channels_match_the_canonical_layout() {
    let long: Vec<i16> = (0..70_000).map(|i| (i % 2000 - 1000) as i16).collect();
    for channels in [
        vec![&[1i16, -2, i16::MAX, i16::MIN][..]],
        vec![&[1, 2][..], &[3][..]],
        vec![&long[..], &long[..1000]],
        vec![&[][..]],
    ] {
        assert_eq!(wav::encode_8k(&channels).unwrap(), reference(&channels));
    }
}

#[test]
fn mulaw_is_decoded_then_written_and_reads_back() {
    let codes: Vec<u8> = (0..=255).collect();
    let bytes = wav::encode_mulaw_8k(&codes).unwrap();
    let pcm: Vec<i16> = codes.iter().map(|&c| mulaw::decode(c)).collect();
    assert_eq!(bytes, reference(&[&pcm]));
    let mut r = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(r.spec().sample_rate, 8000);
    let back: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(back, pcm);
}

#[test]
fn a_written_file_is_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.wav");
    let pcm = [5i16, -5, 300];
    wav::write_8k(&path, &pcm).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), reference(&[&pcm]));
}
