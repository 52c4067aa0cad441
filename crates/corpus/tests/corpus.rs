//! The committed corpus against its own manifest: every file loads with the length the
//! manifest gives, every turn boundary agrees with an energy detector, noise has no
//! speech, and the corpus has the shape the issue asks for.

use std::collections::HashSet;

use dialtone_audio::{AudioCache, wav};
use dialtone_corpus::{Corpus, CorpusError, Kind, energy, from_wav};

/// How far a detected boundary may be from the constructed one. The detector works in
/// 20 ms frames, so 20 ms is the resolution; the corpus meets it, the test allows twice.
const TOLERANCE_MS: i64 = 40;

fn corpus() -> Corpus {
    Corpus::open(&Corpus::default_dir()).expect("audio/manifest.json opens")
}

#[test]
fn every_file_loads_with_the_manifest_length() {
    let corpus = corpus();
    let cache = AudioCache::new();
    for entry in corpus.entries() {
        let pcm = wav::load_8k(&corpus.path(entry)).expect("wav loads");
        let file_ms = (pcm.len() as i64 * 1000 + 4000) / 8000;
        assert_eq!(file_ms, i64::from(entry.duration_ms), "{}", entry.name);
        let audio = corpus.load(&entry.name, &cache).expect("entry loads");
        assert_eq!(audio.name, entry.name);
        assert_eq!(audio.turns, entry.turns);
        assert_eq!(
            audio.frames.len(),
            (entry.duration_ms as usize).div_ceil(20),
            "{}",
            entry.name
        );
    }
}

#[test]
fn boundaries_match_the_energy_detector() {
    let corpus = corpus();
    let threshold = corpus.trim_dbfs().expect("the manifest records trim_dbfs");
    let mut worst = 0;
    for entry in corpus.entries() {
        let pcm = wav::load_8k(&corpus.path(entry)).expect("wav loads");
        let found = energy::segments(
            &pcm,
            threshold,
            energy::DEFAULT_MIN_SPEECH_MS,
            energy::DEFAULT_HANGOVER_MS,
        );
        let truth: Vec<(u32, u32)> = entry.turns.iter().map(|t| (t.start_ms, t.end_ms)).collect();
        assert_eq!(
            found.len(),
            truth.len(),
            "{}: {found:?} vs {truth:?}",
            entry.name
        );
        for (&(fs, fe), &(ts, te)) in found.iter().zip(&truth) {
            for (f, t) in [(fs, ts), (fe, te)] {
                let err = (i64::from(f) - i64::from(t)).abs();
                worst = worst.max(err);
                assert!(
                    err <= TOLERANCE_MS,
                    "{}: detected {found:?}, manifest {truth:?}",
                    entry.name
                );
            }
        }
    }
    assert!(worst <= TOLERANCE_MS);
}

/// At the reference bot's VAD level (−35 dBFS, 500 ms hangover) no turn splits and no
/// two turns merge: the corpus is usable as-is to count a bot's turns.
#[test]
fn turn_counts_hold_at_a_typical_vad_threshold() {
    let corpus = corpus();
    for entry in corpus.entries() {
        let pcm = wav::load_8k(&corpus.path(entry)).expect("wav loads");
        for threshold in [-35.0, energy::DEFAULT_THRESHOLD_DBFS] {
            let found = energy::segments(&pcm, threshold, 60, 500);
            assert_eq!(
                found.len(),
                entry.turns.len(),
                "{} at {threshold} dBFS: {found:?}",
                entry.name
            );
        }
    }
}

#[test]
fn corpus_has_the_promised_shape() {
    let corpus = corpus();
    let entries = corpus.entries();
    let count = |kind| entries.iter().filter(|e| e.kind == kind).count();
    assert!((15..=30).contains(&count(Kind::Utterance)));
    assert!(count(Kind::Script) >= 4);
    assert!(count(Kind::Noise) >= 2);
    let voices: HashSet<_> = entries.iter().filter_map(|e| e.voice.as_deref()).collect();
    assert!(voices.len() >= 3, "{voices:?}");
    let rates: HashSet<_> = entries.iter().filter_map(|e| e.rate_wpm).collect();
    assert!(rates.len() >= 3, "{rates:?}");
    // A very short "yes" and a long rambling turn.
    let yes = corpus.get("answer_yes").expect("answer_yes");
    assert_eq!(yes.turns[0].text, "Yes.");
    assert!(yes.turns[0].end_ms - yes.turns[0].start_ms < 600);
    let longest = entries
        .iter()
        .flat_map(|e| &e.turns)
        .map(|t| t.end_ms - t.start_ms)
        .max();
    assert!(longest > Some(10_000));
    // hello.wav, which the CLI embeds, has its two turns.
    let hello = corpus.get("hello").expect("hello");
    assert_eq!(hello.file, "hello.wav");
    assert_eq!(hello.turns.len(), 2);
    assert_eq!(hello.turns[1].text, "Thanks, that's all.");
    // Multi-turn scripts really are multi-turn; noise is silent.
    for entry in entries {
        match entry.kind {
            Kind::Script => assert!(entry.turns.len() >= 2, "{}", entry.name),
            Kind::Utterance => assert_eq!(entry.turns.len(), 1, "{}", entry.name),
            Kind::Noise => assert!(entry.voice.is_none() && entry.turns.is_empty()),
        }
    }
    let bytes: u64 = entries
        .iter()
        .map(|e| std::fs::metadata(corpus.path(e)).expect("file").len())
        .sum();
    assert!(bytes < 10 * 1024 * 1024, "{bytes} bytes");
}

#[test]
fn from_wav_finds_the_turns_of_any_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("caller.wav");
    // 400 ms silence, 1 s tone, 1 s silence, 600 ms tone, 300 ms silence.
    let tone = |ms: usize| (0..ms * 8).map(|i| if i % 20 < 10 { 6000i16 } else { -6000 });
    let zeros = |ms: usize| std::iter::repeat_n(0i16, ms * 8);
    let pcm: Vec<i16> = zeros(400)
        .chain(tone(1000))
        .chain(zeros(1000))
        .chain(tone(600))
        .chain(zeros(300))
        .collect();
    wav::write_8k(&path, &pcm).expect("write wav");
    let cache = AudioCache::new();
    let audio = from_wav(&path, &cache).expect("loads");
    assert_eq!(audio.name, "caller");
    let turns: Vec<_> = audio
        .turns
        .iter()
        .map(|t| (t.start_ms, t.end_ms, t.text.as_str()))
        .collect();
    assert_eq!(turns, [(400, 1400, ""), (2400, 3000, "")]);
    assert_eq!(audio.frames.len(), 165);

    // On hello.wav the defaults find both turns, close to the truth.
    let corpus = corpus();
    let hello = corpus.get("hello").expect("hello");
    let found = from_wav(&corpus.path(hello), &cache).expect("hello loads");
    assert_eq!(found.turns.len(), 2);
    for (f, t) in found.turns.iter().zip(&hello.turns) {
        assert!((i64::from(f.start_ms) - i64::from(t.start_ms)).abs() <= 100);
        assert!((i64::from(f.end_ms) - i64::from(t.end_ms)).abs() <= 100);
    }
}

#[test]
fn unknown_names_and_stale_manifests_are_errors() {
    let corpus = corpus();
    let cache = AudioCache::new();
    assert!(matches!(
        corpus.load("no_such_entry", &cache),
        Err(CorpusError::Unknown(_))
    ));
    // A copy of the corpus whose manifest disagrees with a file's length.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = corpus.path(corpus.get("answer_yes").expect("answer_yes"));
    std::fs::copy(&src, dir.path().join("yes.wav")).expect("copy");
    let manifest = r#"{"sample_rate": 8000, "entries": [{"name": "yes", "file": "yes.wav",
        "kind": "utterance", "duration_ms": 2000, "voice": "en-us",
        "turns": [{"start_ms": 300, "end_ms": 720, "text": "Yes."}]}]}"#;
    std::fs::write(dir.path().join("manifest.json"), manifest).expect("write");
    let stale = Corpus::open(dir.path()).expect("opens");
    match stale.load("yes", &cache) {
        Err(CorpusError::Duration {
            manifest_ms: 2000,
            audio_ms: 1040,
            ..
        }) => {}
        other => panic!("expected a duration mismatch, got {other:?}"),
    }
    // A missing file is the audio crate's error, naming the file.
    std::fs::remove_file(dir.path().join("yes.wav")).expect("rm");
    let err = stale.load("yes", &AudioCache::new()).expect_err("missing");
    assert!(err.to_string().contains("yes.wav"), "{err}");
}

#[test]
fn an_endless_manifest_is_refused_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("manifest.json")).unwrap();
    let e = Corpus::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a corpus manifest"), "{e}");
}
