//! Transcript sidecars beside real WAVs in a temp dir: `caller.json` gives the turns exactly,
//! `caller.txt` names the energy detector's turns, every way a sidecar can be wrong is a
//! [`CorpusError::Sidecar`] naming the file, and a WAV without one is unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::{AudioCache, FrameSet, wav};
use dialtone_corpus::caller::{CallerSource, resolve};
use dialtone_corpus::sidecar::{MAX_SIDECAR_BYTES, MAX_TEXT_CHARS, MAX_TURNS, SidecarError};
use dialtone_corpus::{CorpusError, Turn, from_frames, from_wav};

/// 400 ms silence, 1 s tone, 1 s silence, 600 ms tone, 300 ms silence: 3.3 s, whose energy
/// turns are 400–1400 and 2400–3000 ms.
fn two_turns() -> Vec<i16> {
    let tone = |ms: usize| (0..ms * 8).map(|i| if i % 20 < 10 { 6000i16 } else { -6000 });
    let zeros = |ms: usize| std::iter::repeat_n(0i16, ms * 8);
    zeros(400)
        .chain(tone(1000))
        .chain(zeros(1000))
        .chain(tone(600))
        .chain(zeros(300))
        .collect()
}

const ENERGY_TURNS: [(u32, u32); 2] = [(400, 1400), (2400, 3000)];

/// `dir/NAME.wav` holding [`two_turns`].
fn wav_in(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wav"));
    wav::write_8k(&path, &two_turns()).expect("write wav");
    path
}

fn turns(audio: &[Turn]) -> Vec<(u32, u32, &str)> {
    audio
        .iter()
        .map(|t| (t.start_ms, t.end_ms, t.text.as_str()))
        .collect()
}

/// The sidecar error `from_wav` gives for `wav`, after checking it names `sidecar`.
fn sidecar_error(wav: &Path, sidecar: &Path) -> (SidecarError, String) {
    let err = from_wav(wav, &AudioCache::new()).expect_err("the sidecar is refused");
    let message = err.to_string();
    match err {
        CorpusError::Sidecar { path, reason } => {
            assert_eq!(path, sidecar, "{message}");
            assert!(
                message.starts_with(&format!("{}: ", sidecar.display())),
                "{message}"
            );
            (reason, message)
        }
        other => panic!("expected a sidecar error, got {other:?}"),
    }
}

#[test]
fn a_json_sidecar_gives_its_turns_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    // Timing the detector would never find (not on 20 ms steps, one turn ending at the last
    // millisecond) and an empty text (words unknown) are all kept as written.
    std::fs::write(
        dir.path().join("caller.json"),
        r#"{"turns": [
            {"start_ms": 300, "end_ms": 1497, "text": "Hi, I'd like to check my order."},
            {"start_ms": 1497, "end_ms": 1800, "text": ""},
            {"start_ms": 2391, "end_ms": 3300, "text": "Thanks, that's all."}
        ]}"#,
    )
    .unwrap();
    let audio = from_wav(&wav, &AudioCache::new()).expect("loads");
    assert_eq!(audio.name, "caller");
    assert_eq!(
        turns(&audio.turns),
        [
            (300, 1497, "Hi, I'd like to check my order."),
            (1497, 1800, ""),
            (2391, 3300, "Thanks, that's all."),
        ]
    );
    assert_eq!(audio.frames.len(), 165);

    // No turns at all: a caller who never speaks.
    std::fs::write(dir.path().join("caller.json"), r#"{"turns": []}"#).unwrap();
    let audio = from_wav(&wav, &AudioCache::new()).expect("loads");
    assert!(audio.turns.is_empty());
}

#[test]
fn a_txt_sidecar_names_the_energy_turns() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    // Blank lines are skipped, lines trimmed, CRLF and a byte order mark tolerated.
    std::fs::write(
        dir.path().join("caller.txt"),
        "\u{feff}\n  Hi, I'd like to check my order.  \r\n\r\n   \nThanks, that's all.\n\n",
    )
    .unwrap();
    let audio = from_wav(&wav, &AudioCache::new()).expect("loads");
    assert_eq!(
        turns(&audio.turns),
        [
            (400, 1400, "Hi, I'd like to check my order."),
            (2400, 3000, "Thanks, that's all."),
        ]
    );
}

#[test]
fn a_wav_without_a_sidecar_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    // Sidecars of other stems do not apply.
    std::fs::write(dir.path().join("other.json"), "not even JSON").unwrap();
    std::fs::write(dir.path().join("caller.wav.txt"), "one\ntwo\nthree").unwrap();
    let cache = AudioCache::new();
    let audio = from_wav(&wav, &cache).expect("loads");
    let want: Vec<_> = ENERGY_TURNS.iter().map(|&(s, e)| (s, e, "")).collect();
    assert_eq!(turns(&audio.turns), want);
    let plain = from_frames("caller".into(), Arc::new(FrameSet::from_pcm(&two_turns())));
    assert_eq!(audio.turns, plain.turns);
}

#[test]
fn bad_json_sidecars_are_refused_naming_the_file_and_turn() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    let json = dir.path().join("caller.json");
    let turn = |s: u32, e: u32| format!(r#"{{"start_ms": {s}, "end_ms": {e}, "text": "x"}}"#);
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{"turns": [{}]}}"#, turn(900, 900)),
            "turns[0]: start_ms 900 is not before end_ms 900",
        ),
        (
            format!(r#"{{"turns": [{}, {}]}}"#, turn(2000, 2500), turn(300, 900)),
            "turns[1] starts at 300 ms, before turns[0] ends at 2500 ms: turns must be in order \
             and must not overlap",
        ),
        (
            format!(
                r#"{{"turns": [{}, {}]}}"#,
                turn(300, 1500),
                turn(1499, 2000)
            ),
            "turns[1] starts at 1499 ms, before turns[0] ends at 1500 ms",
        ),
        (
            format!(r#"{{"turns": [{}, {}]}}"#, turn(300, 900), turn(2400, 3301)),
            // Named below with the WAV's path.
            "turns[1] ends at 3301 ms, past the end of ",
        ),
        (
            r#"{"turns": [], "speaker": "me"}"#.into(),
            "not a valid transcript sidecar: unknown field `speaker`",
        ),
        (
            r#"{"turns": [{"start_ms": 1, "end_ms": 2, "text": "x", "confidence": 1}]}"#.into(),
            "unknown field `confidence`",
        ),
        (
            r#"{"turns": [{"start": 1, "end_ms": 2, "text": "x"}]}"#.into(),
            "unknown field `start`",
        ),
        (
            r#"{"turns": [{"start_ms": 1, "end_ms": 2}]}"#.into(),
            "missing field `text`",
        ),
        (
            r#"[{"start_ms": 1, "end_ms": 2, "text": "x"}]"#.into(),
            "not a valid transcript sidecar",
        ),
        (
            format!(
                r#"{{"turns": [{{"start_ms": 1, "end_ms": 2, "text": "{}"}}]}}"#,
                "é".repeat(MAX_TEXT_CHARS + 1)
            ),
            "turns[0]: text of 10001 characters: at most 10000 are allowed",
        ),
        (
            format!(
                r#"{{"turns": [{}]}}"#,
                vec![turn(1, 2); MAX_TURNS + 1].join(",")
            ),
            "10001 turns: at most 10000 are allowed",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&json, &text).unwrap();
        let (_, message) = sidecar_error(&wav, &json);
        assert!(message.contains(want), "{message}");
    }

    // Past the end names the WAV and its length too.
    std::fs::write(&json, format!(r#"{{"turns": [{}]}}"#, turn(2400, 4000))).unwrap();
    match sidecar_error(&wav, &json) {
        (
            SidecarError::PastEnd {
                index: 0,
                end_ms: 4000,
                wav: named,
                audio_ms: 3300,
            },
            message,
        ) => {
            assert_eq!(named, wav);
            assert!(
                message.contains(&format!("past the end of {} (3300 ms)", wav.display())),
                "{message}"
            );
        }
        other => panic!("expected PastEnd, got {other:?}"),
    }
    // At most 10 000 characters is fine (é is two bytes: characters are counted, not bytes).
    std::fs::write(
        &json,
        format!(
            r#"{{"turns": [{{"start_ms": 1, "end_ms": 2, "text": "{}"}}]}}"#,
            "é".repeat(MAX_TEXT_CHARS)
        ),
    )
    .unwrap();
    assert!(from_wav(&wav, &AudioCache::new()).is_ok());
}

#[test]
fn oversize_sidecars_are_refused_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    let json = dir.path().join("caller.json");
    // Valid JSON padded with whitespace to one byte over 1 MiB.
    let mut text = String::from(r#"{"turns": []}"#);
    text.push_str(&" ".repeat(MAX_SIDECAR_BYTES as usize + 1 - text.len()));
    std::fs::write(&json, &text).unwrap();
    let (reason, message) = sidecar_error(&wav, &json);
    assert!(matches!(reason, SidecarError::TooLarge), "{message}");
    assert!(
        message.contains("too large for a transcript sidecar"),
        "{message}"
    );
    // Exactly 1 MiB is read.
    text.pop();
    std::fs::write(&json, &text).unwrap();
    assert!(from_wav(&wav, &AudioCache::new()).is_ok());
    std::fs::remove_file(&json).unwrap();

    // An endless .txt stops at the bound too.
    let txt = dir.path().join("caller.txt");
    std::os::unix::fs::symlink("/dev/zero", &txt).unwrap();
    let (reason, message) = sidecar_error(&wav, &txt);
    assert!(matches!(reason, SidecarError::TooLarge), "{message}");
}

#[test]
fn bad_txt_sidecars_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    let txt = dir.path().join("caller.txt");

    std::fs::write(&txt, "one\ntwo\nthree\n").unwrap();
    let (reason, message) = sidecar_error(&wav, &txt);
    assert!(
        matches!(
            reason,
            SidecarError::CountMismatch {
                lines: 3,
                detected: 2,
                ..
            }
        ),
        "{message}"
    );
    let json = dir.path().join("caller.json");
    assert!(
        message.contains(&format!(
            "3 lines of text, but the energy detector found 2 turns in {}; give each turn's \
             timing and text in {} instead",
            wav.display(),
            json.display()
        )),
        "{message}"
    );
    // Too few lines is a mismatch too (a blank line is not a turn).
    std::fs::write(&txt, "one\n\n").unwrap();
    let (reason, message) = sidecar_error(&wav, &txt);
    assert!(
        matches!(
            reason,
            SidecarError::CountMismatch {
                lines: 1,
                detected: 2,
                ..
            }
        ),
        "{message}"
    );

    std::fs::write(&txt, format!("one\n\n{}\n", "x".repeat(MAX_TEXT_CHARS + 1))).unwrap();
    let (_, message) = sidecar_error(&wav, &txt);
    assert!(
        message.contains("line 3: text of 10001 characters"),
        "{message}"
    );

    std::fs::write(&txt, b"one\nt\xffo\n").unwrap();
    let (reason, message) = sidecar_error(&wav, &txt);
    assert!(matches!(reason, SidecarError::Read(_)), "{message}");

    std::fs::write(&txt, "line\n".repeat(MAX_TURNS + 1)).unwrap();
    let (_, message) = sidecar_error(&wav, &txt);
    assert!(message.contains("10001 turns"), "{message}");
}

#[test]
fn both_sidecars_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    let json = dir.path().join("caller.json");
    let txt = dir.path().join("caller.txt");
    std::fs::write(&json, r#"{"turns": []}"#).unwrap();
    std::fs::write(&txt, "one\ntwo\n").unwrap();
    let (reason, message) = sidecar_error(&wav, &json);
    assert!(matches!(reason, SidecarError::Both { other } if other == txt));
    assert!(
        message.contains(&format!(
            "{} is also there: keep one transcript sidecar per WAV",
            txt.display()
        )),
        "{message}"
    );
}

#[test]
fn every_wav_of_a_folder_takes_its_own_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        wav_in(dir.path(), name);
    }
    std::fs::write(
        dir.path().join("a.json"),
        r#"{"turns": [{"start_ms": 500, "end_ms": 900, "text": "Yes."}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("b.txt"), "First.\nSecond.\n").unwrap();
    let source = CallerSource::Path(dir.path().into());
    let audio = resolve(&source, None, &AudioCache::new()).expect("resolves");
    let got: Vec<_> = audio
        .iter()
        .map(|a| (a.name.as_str(), turns(&a.turns)))
        .collect();
    assert_eq!(
        got,
        [
            ("a", vec![(500, 900, "Yes.")]),
            ("b", vec![(400, 1400, "First."), (2400, 3000, "Second.")]),
            ("c", vec![(400, 1400, ""), (2400, 3000, "")]),
        ]
    );
    // One bad sidecar fails the folder, naming that sidecar; a single file the same way.
    std::fs::write(dir.path().join("c.txt"), "Only one line.\n").unwrap();
    let err = resolve(&source, None, &AudioCache::new()).expect_err("c.txt mismatches");
    let c_txt = dir.path().join("c.txt");
    assert!(
        matches!(&err, CorpusError::Sidecar { path, .. } if *path == c_txt),
        "{err}"
    );
    let single = CallerSource::Path(dir.path().join("c.wav"));
    let err = resolve(&single, None, &AudioCache::new()).expect_err("c.txt mismatches");
    assert!(err.to_string().starts_with(&c_txt.display().to_string()));
}

/// A WAV longer than the call is read only in part; its sidecar still describes the whole
/// file, so turns past the part read are not errors.
#[test]
fn a_cut_wav_checks_its_sidecar_against_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let wav = wav_in(dir.path(), "caller");
    let cache = || AudioCache::with_max(Duration::from_secs(2));
    std::fs::write(
        dir.path().join("caller.json"),
        r#"{"turns": [{"start_ms": 400, "end_ms": 1400, "text": "One."},
                      {"start_ms": 2400, "end_ms": 3300, "text": "Two."}]}"#,
    )
    .unwrap();
    let audio = from_wav(&wav, &cache()).expect("loads");
    assert_eq!(audio.frames.len(), 100);
    assert_eq!(audio.turns.len(), 2);
    std::fs::write(
        dir.path().join("caller.json"),
        r#"{"turns": [{"start_ms": 2400, "end_ms": 3301, "text": "Two."}]}"#,
    )
    .unwrap();
    let err = from_wav(&wav, &cache()).expect_err("past the file's end");
    assert!(err.to_string().contains("(3300 ms)"), "{err}");
    std::fs::remove_file(dir.path().join("caller.json")).unwrap();

    // The detector sees one turn in the first 2 s; it takes the first line.
    std::fs::write(dir.path().join("caller.txt"), "One.\nTwo.\n").unwrap();
    let audio = from_wav(&wav, &cache()).expect("loads");
    assert_eq!(turns(&audio.turns), [(400, 1400, "One.")]);
    // Fewer lines than the turns it did see is still a mismatch.
    let dir = tempfile::tempdir().unwrap();
    let pcm: Vec<i16> = two_turns().into_iter().chain(two_turns()).collect();
    let long = dir.path().join("long.wav");
    wav::write_8k(&long, &pcm).unwrap();
    std::fs::write(dir.path().join("long.txt"), "One.\n").unwrap();
    let err = from_wav(&long, &AudioCache::with_max(Duration::from_secs(4))).expect_err("short");
    assert!(
        err.to_string()
            .contains("1 line of text, but the energy detector found 3 turns"),
        "{err}"
    );
}
