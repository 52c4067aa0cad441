//! Issue 12 item 9 at the command line: audio from outside is refused from its header (exit
//! 2 naming the file) on every command that reads it, and a WAV longer than the call is read
//! only as far as the call can last, with a warning that says so.

use std::process::Command;

fn dialtone() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialtone"))
}

/// `/dev/zero` used to be read until memory ran out (19.9 GB in 60 s).
#[test]
fn dev_zero_is_refused_with_exit_2_everywhere_audio_is_read() {
    let runs: [&[&str]; 4] = [
        &[
            "call",
            "--webhook",
            "http://127.0.0.1:9/voice",
            "--audio",
            "/dev/zero",
        ],
        &[
            "load",
            "--webhook",
            "http://127.0.0.1:9/voice",
            "--audio",
            "/dev/zero",
        ],
        &[
            "load",
            "--stream",
            "ws://127.0.0.1:9/s",
            "--audio",
            "/dev/zero",
        ],
        &[
            "replay",
            "/dev/zero",
            "--webhook",
            "http://127.0.0.1:9/voice",
        ],
    ];
    for args in runs {
        let out = dialtone().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("/dev/zero"), "{args:?}: {err}");
        let why = if args[0] == "replay" {
            "longer than 8 MiB"
        } else {
            "is not a WAV file (no RIFF/WAVE header)"
        };
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

#[test]
fn a_wav_longer_than_the_call_is_cut_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..8000 * 60 {
        w.write_sample(((i % 80) * 200 - 8000) as i16).unwrap();
    }
    w.finalize().unwrap();
    // The reference app answers; the call lasts 2 s, so 2 s of the minute are read.
    let out = dialtone()
        .args(["call", "--json", "--max-duration", "2s", "--audio"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let said = format!(
        "--audio {}: 60.0 s long; only its first 2.0 s were read (a call lasts at most 2.0 s, \
         --max-duration)",
        path.display()
    );
    assert!(err.contains(&format!("warning: {said}")), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("only its first 2.0 s were read"),
        "{warnings}"
    );
}
