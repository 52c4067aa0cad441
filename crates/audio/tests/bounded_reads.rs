//! Issue 12 item 9: reads of audio from outside are bounded. What is not a WAV is refused
//! from its header, a declared data size longer than the file is refused before the body is
//! read, and no more audio is read than the caller's bound can use (and what was cut is
//! said).

mod common;

use std::time::Duration;

use common::*;
use dialtone_audio::{AudioCache, AudioError, Truncated, wav};

/// 16-bit PCM mono at `rate`, `secs` long, as a file.
fn long_wav(dir: &std::path::Path, rate: u32, secs: f64) -> std::path::PathBuf {
    let path = dir.join("long.wav");
    write_int_wav(&path, rate, 16, &[sine(440.0, rate, secs, 0.5)]);
    path
}

#[test]
fn dev_zero_is_not_a_wav() {
    // Before the fix this read /dev/zero to the end of memory.
    let err = wav::read_8k(std::path::Path::new("/dev/zero"), Duration::from_secs(60))
        .expect_err("/dev/zero is not a WAV");
    assert!(matches!(err, AudioError::NotRiff { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "/dev/zero is not a WAV file (no RIFF/WAVE header)"
    );
}

#[test]
fn a_wav_longer_than_the_bound_is_read_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = long_wav(dir.path(), 16_000, 30.0);
    let d = wav::read_8k(&path, Duration::from_secs(2)).unwrap();
    // 2 s at 8 kHz, and the cut said.
    assert_eq!(d.pcm.len(), 16_000);
    assert_eq!(
        d.truncated,
        Some(Truncated {
            kept: Duration::from_secs(2),
            total: Some(Duration::from_secs(30)),
        })
    );
    assert_eq!(
        d.truncated.unwrap().to_string(),
        "30.0 s long; only its first 2.0 s were read"
    );
    // The same samples as the whole file's first 2 s (the resampler's edge aside).
    let whole = wav::load_8k(&path).unwrap();
    assert_eq!(whole.len(), 240_000);
    assert_eq!(&d.pcm[..15_900], &whole[..15_900]);
    // A bound past the end reads it all, with nothing cut.
    let all = wav::read_8k(&path, Duration::from_secs(60)).unwrap();
    assert_eq!((all.pcm, all.truncated), (whole, None));
}

#[test]
fn the_cache_reads_under_its_bound_and_lists_what_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = long_wav(dir.path(), 8_000, 10.0);
    let short = dir.path().join("short.wav");
    write_int_wav(&short, 8_000, 16, &[sine(440.0, 8_000, 1.0, 0.5)]);
    let cache = AudioCache::with_max(Duration::from_secs(3));
    let (frames, cut) = cache.load(&path).unwrap();
    assert_eq!(frames.duration(), Duration::from_secs(3));
    assert_eq!(cut.map(|c| c.kept), Some(Duration::from_secs(3)));
    assert_eq!(
        cache.get(&short).unwrap().duration(),
        Duration::from_secs(1)
    );
    let listed = cache.truncated();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, path);
}

#[test]
fn a_declared_data_size_past_the_end_of_the_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liar.wav");
    // 1 GiB declared, 1 KiB present.
    let fmt = fmt_body(1, 1, 8000, 2, 16);
    let bytes = riff(&[
        (b"fmt ", &fmt, None),
        (b"data", &[0u8; 1024], Some(1 << 30)),
    ]);
    std::fs::write(&path, bytes).unwrap();
    let err = wav::read_8k(&path, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, AudioError::Truncated { .. }), "{err:?}");
}

#[test]
fn a_huge_fmt_chunk_is_refused_before_it_is_read() {
    let mut bytes = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = wav::decode_8k(&bytes, "fmt.wav", Duration::from_secs(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fmt.wav: unsupported WAV format: fmt chunk of 4294967295 bytes"
    );
}

#[test]
fn large_chunks_before_the_audio_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wav");
    let fmt = fmt_body(1, 1, 8000, 2, 16);
    let junk = vec![7u8; 3 << 20];
    let pcm: Vec<u8> = (0..8000i16).flat_map(|i| (i % 100).to_le_bytes()).collect();
    std::fs::write(
        &path,
        riff(&[
            (b"fmt ", &fmt, None),
            (b"JUNK", &junk, None),
            (b"data", &pcm, None),
        ]),
    )
    .unwrap();
    let d = wav::read_8k(&path, Duration::from_secs(60)).unwrap();
    assert_eq!(d.pcm.len(), 8000);
    assert_eq!(d.truncated, None);
}

#[test]
fn a_zero_bound_is_a_cut_not_an_empty_file() {
    // Nothing more fits (a caller leg already full, `--seconds 0`): a good file gives no
    // audio and says it was cut, instead of "has no audio".
    let dir = tempfile::tempdir().unwrap();
    let path = long_wav(dir.path(), 8000, 1.0);
    let d = wav::read_8k(&path, Duration::ZERO).unwrap();
    assert!(d.pcm.is_empty());
    assert_eq!(d.truncated.map(|t| t.kept), Some(Duration::ZERO));
}

#[test]
fn unknown_length_audio_cut_in_a_fetched_head_is_reported() {
    // What the bounded `<Play>` fetch hands over for a streamed WAV: the header, the audio
    // the bound needs, and one byte more (its probe), so the cut is seen.
    let fmt = fmt_body(1, 1, 8000, 2, 16);
    let pcm = vec![0x10u8; 8000 * 2 * 5];
    let bytes = riff(&[(b"fmt ", &fmt, None), (b"data", &pcm, Some(u32::MAX))]);
    let header = wav::scan_header(&bytes, "live.wav").unwrap().unwrap();
    let need = (header.data_start() + header.data_to_read(Duration::from_secs(2)) + 1) as usize;
    let d = wav::decode_head_8k(&bytes[..need], "live.wav", Duration::from_secs(2)).unwrap();
    assert_eq!(d.pcm.len(), 16_000);
    assert!(d.truncated.is_some(), "the cut is reported");
}

#[test]
fn unknown_length_audio_is_cut_at_the_bound() {
    let fmt = fmt_body(1, 1, 8000, 2, 16);
    let pcm = vec![0x10u8; 8000 * 2 * 5];
    // The streaming writers' placeholder: the data runs to the end of the file.
    let bytes = riff(&[(b"fmt ", &fmt, None), (b"data", &pcm, Some(u32::MAX))]);
    let d = wav::decode_8k(&bytes, "live.wav", Duration::from_secs(2)).unwrap();
    assert_eq!(d.pcm.len(), 16_000);
    assert_eq!(
        d.truncated,
        Some(Truncated {
            kept: Duration::from_secs(2),
            total: Some(Duration::from_secs(5)),
        })
    );
}

#[test]
fn whole_file_reads_refuse_more_than_the_most_read() {
    // Only the header: 4 GiB of 48 kHz stereo declared. A whole-file read would need more
    // than MAX_DATA_BYTES; the bound is worked out from the header alone.
    let fmt = fmt_body(1, 2, 48_000, 4, 16);
    let bytes = riff(&[(b"fmt ", &fmt, None), (b"data", &[], Some(u32::MAX - 1))]);
    let header = wav::scan_header(&bytes, "big.wav").unwrap().unwrap();
    assert_eq!(header.data_len(), Some(u64::from(u32::MAX - 1)));
    assert_eq!(header.data_to_read(wav::MAX_DURATION), wav::MAX_DATA_BYTES);
    // Five minutes of it is what a 5-minute call reads.
    assert_eq!(
        header.data_to_read(Duration::from_secs(300)),
        300 * 48_000 * 4
    );
}

#[test]
fn scan_header_waits_for_the_audio_and_refuses_non_wavs_early() {
    let fmt = fmt_body(1, 1, 8000, 2, 16);
    let bytes = riff(&[
        (b"fmt ", &fmt, None),
        (b"LIST", &[1u8; 100], None),
        (b"data", &[0u8; 800], None),
    ]);
    let start = bytes.len() as u64 - 800;
    for cut in 0..start as usize {
        assert!(
            wav::scan_header(&bytes[..cut], "s.wav").unwrap().is_none(),
            "cut {cut}"
        );
    }
    let h = wav::scan_header(&bytes[..start as usize], "s.wav")
        .unwrap()
        .unwrap();
    assert_eq!((h.data_start(), h.data_len()), (start, Some(800)));
    // The first bytes of something else are refused at once.
    let err = wav::scan_header(b"<html><body>404 not found", "page.wav").unwrap_err();
    assert!(matches!(err, AudioError::NotRiff { .. }), "{err:?}");
    // A download stopped at what a 20 ms bound needs decodes without the rest.
    let need = (start + h.data_to_read(Duration::from_millis(20))) as usize;
    let d = wav::decode_head_8k(&bytes[..need], "s.wav", Duration::from_millis(20)).unwrap();
    assert_eq!(d.pcm.len(), 160);
    assert_eq!(
        d.truncated.map(|t| t.total),
        Some(Some(Duration::from_millis(50)))
    );
}
