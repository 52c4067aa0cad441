//! Broken and unsupported WAV files: each must fail with the right typed
//! error, and every message must name the file.

mod common;

use std::path::Path;

use common::*;
use dialtone_audio::{AudioError, load_frames, wav};

fn load_err(path: &Path) -> AudioError {
    let err = wav::load_8k(path).expect_err("load should fail");
    let name = path.file_name().unwrap().to_str().unwrap();
    let message = err.to_string();
    assert!(
        message.contains(name),
        "message {message:?} does not name {name}"
    );
    // load_frames reports the same failure.
    assert_eq!(load_frames(path).unwrap_err().to_string(), message);
    err
}

fn bytes_err(bytes: &[u8], name: &str) -> AudioError {
    let err = wav::load_8k_from_bytes(bytes, name).expect_err("load should fail");
    assert!(err.to_string().contains(name), "{err} does not name {name}");
    err
}

fn valid_wav(dir: &Path) -> Vec<u8> {
    let path = dir.join("valid.wav");
    write_int_wav(&path, 16000, 16, &[sine(440.0, 16000, 1.0, 0.5)]);
    std::fs::read(path).unwrap()
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = valid_wav(dir.path());
    let path = dir.path().join("half.wav");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&path);
    assert!(matches!(err, AudioError::Truncated { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is truncated (shorter than its WAV header declares)",
            path.display()
        )
    );

    // Cut inside the header: after the RIFF header, inside the fmt chunk,
    // and right after the fmt chunk (no data chunk at all).
    for cut in [12, 20, 36] {
        let err = bytes_err(&bytes[..cut], "cut.wav");
        assert!(
            matches!(err, AudioError::Truncated { .. }),
            "cut {cut}: {err:?}"
        );
    }
}

#[test]
fn unsupported_codec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.wav");
    // MPEG layer 3 in a RIFF container, as some tools produce.
    let mut fmt = fmt_body(0x0055, 2, 44100, 1, 0);
    fmt.extend_from_slice(&12u16.to_le_bytes());
    fmt.extend_from_slice(&[0; 12]);
    std::fs::write(
        &path,
        riff(&[(b"fmt ", &fmt, None), (b"data", &[0xFF; 417], None)]),
    )
    .unwrap();
    let err = load_err(&path);
    match &err {
        AudioError::Unsupported { what, .. } => assert_eq!(what, "codec 0x0055 (mp3)"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "{}: unsupported WAV format: codec 0x0055 (mp3)",
            path.display()
        )
    );
}

#[test]
fn other_unsupported_shapes() {
    let data = [0u8; 64];
    let mut unknown_guid = fmt_body(0xFFFE, 1, 8000, 2, 16);
    unknown_guid.extend_from_slice(&22u16.to_le_bytes());
    unknown_guid.extend_from_slice(&16u16.to_le_bytes());
    unknown_guid.extend_from_slice(&4u32.to_le_bytes());
    unknown_guid.extend_from_slice(&[0xAB; 16]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "alaw.wav",
            fmt_body(6, 1, 8000, 1, 8),
            "codec 0x0006 (a-law)",
        ),
        (
            "packed12.wav",
            fmt_body(1, 2, 8000, 3, 12),
            "12-bit samples packed in 3-byte blocks of 2 channels",
        ),
        (
            "int64.wav",
            fmt_body(1, 1, 8000, 8, 64),
            "64-bit integer samples",
        ),
        (
            "half.wav",
            fmt_body(3, 1, 8000, 2, 16),
            "16-bit float samples",
        ),
        ("nochan.wav", fmt_body(1, 0, 8000, 2, 16), "0 channels"),
        (
            "norate.wav",
            fmt_body(1, 1, 0, 2, 16),
            "sample rate 0 Hz (supported: 1000–768000 Hz)",
        ),
        (
            "guid.wav",
            unknown_guid,
            "extensible subformat abababababababababababababababab",
        ),
        ("short.wav", vec![1, 0, 1, 0], "fmt chunk of 4 bytes"),
    ];
    for (name, fmt, want) in cases {
        let file = riff(&[(b"fmt ", &fmt, None), (b"data", &data, None)]);
        match bytes_err(&file, name) {
            AudioError::Unsupported { what, path } => {
                assert_eq!((what.as_str(), path.as_str()), (want, name));
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Data before fmt, and big-endian RIFX.
    let file = riff(&[
        (b"data", &data, None),
        (b"fmt ", &fmt_body(1, 1, 8000, 2, 16), None),
    ]);
    assert!(matches!(
        bytes_err(&file, "order.wav"),
        AudioError::Unsupported { .. }
    ));
    let mut rifx = riff(&[
        (b"fmt ", &fmt_body(1, 1, 8000, 2, 16), None),
        (b"data", &data, None),
    ]);
    rifx[..4].copy_from_slice(b"RIFX");
    assert!(matches!(
        bytes_err(&rifx, "rifx.wav"),
        AudioError::Unsupported { .. }
    ));
}

#[test]
fn zero_length_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wav");
    std::fs::write(&path, b"").unwrap();
    let err = load_err(&path);
    assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
}

#[test]
fn header_without_samples_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.wav");
    write_int_wav(&path, 8000, 16, &[Vec::new()]);
    let err = load_err(&path);
    assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
    // Less than one whole frame is no samples either.
    let file = riff(&[
        (b"fmt ", &fmt_body(1, 2, 8000, 4, 16), None),
        (b"data", &[1, 2, 3], None),
    ]);
    assert!(matches!(
        bytes_err(&file, "partial.wav"),
        AudioError::Empty { .. }
    ));
}

#[test]
fn not_riff() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wav");
    std::fs::write(&path, "this is a text file, not audio\n").unwrap();
    let err = load_err(&path);
    assert!(matches!(err, AudioError::NotRiff { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{} is not a WAV file (no RIFF/WAVE header)", path.display())
    );
    // Shorter than a RIFF header, and RIFF but not WAVE (an AVI).
    assert!(matches!(
        bytes_err(b"RIFF", "tiny.wav"),
        AudioError::NotRiff { .. }
    ));
    assert!(matches!(
        bytes_err(b"RIFF\x04\0\0\0AVI ", "movie.wav"),
        AudioError::NotRiff { .. }
    ));
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.wav");
    let err = load_err(&path);
    match &err {
        AudioError::Io { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}: ", path.display()))
    );
}

#[test]
fn write_failure_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("out.wav");
    let err = wav::write_8k(&path, &[0; 10]).unwrap_err();
    assert!(matches!(err, AudioError::Write { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot write {}: ", path.display())),
        "{err}"
    );
}
