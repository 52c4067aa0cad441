//! The caller audio corpus (`audio/` in the repository): its manifest of ground-truth
//! turns, loading an entry into 20 ms μ-law frames ready to stream, and an energy
//! detector that finds the turns of WAVs that are not in the corpus.
//!
//! # Layout
//! - [`Corpus`]: `manifest.json` parsed and checked; [`Corpus::load`] gives a
//!   [`CallerAudio`] (frames plus turns) through a shared [`AudioCache`].
//! - [`from_wav`]: a [`CallerAudio`] for any WAV, turns from its [`sidecar`] transcript
//!   (`caller.json` or `caller.txt` beside `caller.wav`) or found by [`energy::segments`].
//! - [`sidecar`]: the transcript sidecar formats and their checks.
//! - [`energy`]: the 20 ms RMS detector with hangover.
//! - [`caller::resolve`]: the one way every command finds its caller's audio (a corpus
//!   entry, a WAV, a folder, or the built-in utterance).
//!
//! Ground truth is by construction (see `audio/README.md`): turn boundaries are where
//! clips were cut and placed, in milliseconds from the start of the file.

pub mod caller;
pub mod energy;
pub mod sidecar;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::{AudioCache, AudioError, FrameSet, frames, mulaw};
use serde::{Deserialize, Serialize};

/// Environment variable that points [`Corpus::default_dir`] at another corpus.
pub const CORPUS_ENV: &str = "DIALTONE_CORPUS";

/// File name of the manifest inside a corpus directory.
pub const MANIFEST: &str = "manifest.json";

/// One stretch of caller speech, in milliseconds from the start of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// First millisecond of speech.
    pub start_ms: u32,
    /// End of speech (exclusive).
    pub end_ms: u32,
    /// The exact words spoken; empty when unknown (turns found by [`energy`]).
    pub text: String,
}

impl Turn {
    /// Speech start, from the start of the audio.
    pub fn start(&self) -> Duration {
        Duration::from_millis(self.start_ms.into())
    }

    /// Speech end, from the start of the audio.
    pub fn end(&self) -> Duration {
        Duration::from_millis(self.end_ms.into())
    }
}

/// What a corpus file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One caller line between short silences.
    Utterance,
    /// A multi-turn call: lines separated by known silences.
    Script,
    /// No speech at all (silence, line noise); no turns.
    Noise,
}

/// One file of the corpus and its ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique name, e.g. `answer_yes`.
    pub name: String,
    /// Path relative to the corpus directory, e.g. `utterances/answer_yes.wav`.
    pub file: String,
    /// What the file holds.
    pub kind: Kind,
    /// Length of the file in milliseconds.
    pub duration_ms: u32,
    /// Speech turns in order; empty for [`Kind::Noise`].
    pub turns: Vec<Turn>,
    /// The espeak-ng voice, e.g. `en-us+f3`; `None` for noise.
    pub voice: Option<String>,
    /// Speaking rate in words per minute; `None` for noise.
    #[serde(default)]
    pub rate_wpm: Option<u32>,
}

/// `manifest.json` as stored.
#[derive(Debug, Deserialize)]
struct Manifest {
    /// Sample rate of every file; only 8000 is produced today.
    sample_rate: u32,
    /// Level at which clip edges were cut (dBFS), when the generator says so.
    #[serde(default)]
    trim_dbfs: Option<f32>,
    entries: Vec<Entry>,
}

/// Why the corpus or a file could not be used. Each message names the file or entry.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The manifest could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The manifest is not the JSON this crate expects.
    #[error("{path} is not a valid corpus manifest: {source}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// Where and why parsing failed.
        source: serde_json::Error,
    },
    /// The manifest parsed but contradicts itself (duplicate names, turns out of order).
    #[error("corpus entry {name}: {reason}")]
    Invalid {
        /// The offending entry (or the manifest's path for manifest-wide problems).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A folder of caller audio that cannot be used as one.
    #[error("{path}: {reason}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No entry has that name.
    #[error("no corpus entry named {0:?}")]
    Unknown(String),
    /// The audio file could not be loaded.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// A WAV's transcript sidecar cannot be used.
    #[error("{}: {reason}", path.display())]
    Sidecar {
        /// The sidecar (`caller.json` or `caller.txt`).
        path: PathBuf,
        /// What is wrong.
        reason: sidecar::SidecarError,
    },
    /// The audio file's length disagrees with the manifest: the files were regenerated
    /// without the manifest, or the other way round.
    #[error("corpus entry {name}: the manifest says {manifest_ms} ms, the audio is {audio_ms} ms")]
    Duration {
        /// The entry.
        name: String,
        /// `duration_ms` from the manifest.
        manifest_ms: u32,
        /// The file's length as loaded (whole 20 ms frames).
        audio_ms: u64,
    },
}

/// Caller audio ready to stream: the encoded frames and where the speech is in them.
#[derive(Debug, Clone)]
pub struct CallerAudio {
    /// Corpus entry name, or the file stem for [`from_wav`].
    pub name: String,
    /// 20 ms μ-law frames, shared through the cache.
    pub frames: Arc<FrameSet>,
    /// Speech turns, in milliseconds from the first frame.
    pub turns: Vec<Turn>,
}

/// A corpus directory with its parsed, checked manifest.
#[derive(Debug, Clone)]
pub struct Corpus {
    dir: PathBuf,
    trim_dbfs: Option<f32>,
    entries: Vec<Entry>,
}

/// Largest manifest read: the bundled one is a few kB; a folder of hours of speech, a few MB.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Reads the manifest as text, refusing one over [`MAX_MANIFEST_BYTES`] (or `/dev/zero`)
/// without reading past the bound.
fn read_manifest(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(std::io::Error::other(format!(
            "over {MAX_MANIFEST_BYTES} bytes: not a corpus manifest"
        )));
    }
    Ok(text)
}

impl Corpus {
    /// Reads and checks `dir/manifest.json`. The WAVs are read only by [`Corpus::load`].
    pub fn open(dir: &Path) -> Result<Corpus, CorpusError> {
        let path = dir.join(MANIFEST);
        let text = read_manifest(&path).map_err(|source| CorpusError::Read {
            path: path.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| CorpusError::Manifest { path, source })?;
        if manifest.sample_rate != frames::SAMPLE_RATE {
            return Err(CorpusError::Invalid {
                name: MANIFEST.to_owned(),
                reason: format!("sample_rate {} (expected 8000)", manifest.sample_rate),
            });
        }
        let mut names = HashSet::new();
        for entry in &manifest.entries {
            if !names.insert(entry.name.as_str()) {
                return Err(invalid(entry, "duplicate name".to_owned()));
            }
            check_entry(entry)?;
        }
        Ok(Corpus {
            dir: dir.to_path_buf(),
            trim_dbfs: manifest.trim_dbfs,
            entries: manifest.entries,
        })
    }

    /// `$DIALTONE_CORPUS` when set and not empty, else the repository's `audio/`
    /// directory as located at compile time.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os(CORPUS_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audio"),
        }
    }

    /// The corpus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Level (dBFS) at which the generator cut clip edges, if the manifest records it:
    /// an energy detector at this threshold should agree with every boundary.
    pub fn trim_dbfs(&self) -> Option<f32> {
        self.trim_dbfs
    }

    /// Every entry, in manifest order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Full path of an entry's file.
    pub fn path(&self, entry: &Entry) -> PathBuf {
        self.dir.join(&entry.file)
    }

    /// Loads entry `name` through `cache` (each file is decoded once per process) and
    /// checks its length against the manifest.
    pub fn load(&self, name: &str, cache: &AudioCache) -> Result<CallerAudio, CorpusError> {
        let entry = self
            .get(name)
            .ok_or_else(|| CorpusError::Unknown(name.to_owned()))?;
        let (frames, cut) = cache.load(&self.path(entry))?;
        let audio_ms = frames.duration().as_millis() as u64;
        // Frames pad the last 20 ms, so the loaded length is the manifest's rounded up
        // to a frame (the manifest rounds to the millisecond, hence the 1 ms of slack).
        // Audio the cache's bound cut (longer than the call can last) is checked by the
        // length its header declares.
        let manifest_ms = u64::from(entry.duration_ms);
        let file_ms = cut
            .and_then(|c| c.total)
            .map_or(audio_ms, |t| t.as_millis() as u64);
        if file_ms + 1 < manifest_ms || file_ms >= manifest_ms + u64::from(energy::FRAME_MS) {
            return Err(CorpusError::Duration {
                name: entry.name.clone(),
                manifest_ms: entry.duration_ms,
                audio_ms: file_ms,
            });
        }
        Ok(CallerAudio {
            name: entry.name.clone(),
            frames,
            turns: entry.turns.clone(),
        })
    }
}

/// Caller audio for a WAV that is not in the corpus: frames through `cache`; turns from its
/// transcript [`sidecar`] when it has one (`STEM.json`: exactly those turns; `STEM.txt`: the
/// words of the turns [`from_frames`] finds), else found by [`energy::segments`] with text
/// empty. A sidecar that cannot be used is an error naming it.
pub fn from_wav(path: &Path, cache: &AudioCache) -> Result<CallerAudio, CorpusError> {
    let (frames, cut) = cache.load(path)?;
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    match sidecar::find(path)? {
        None => Ok(from_frames(name, frames)),
        Some(sidecar::Sidecar::Json(json)) => {
            // The file's length, not the part the cache kept: the sidecar describes the file.
            // A cut file whose header gives no length cannot be checked against it.
            let audio_ms = match cut {
                None => Some(frames.duration().as_millis() as u64),
                Some(cut) => cut.total.map(|t| t.as_millis() as u64),
            };
            let turns = sidecar::read_json(&json, path, audio_ms)?;
            Ok(CallerAudio {
                name,
                frames,
                turns,
            })
        }
        Some(sidecar::Sidecar::Txt(txt)) => {
            let mut audio = from_frames(name, frames);
            audio.turns = sidecar::read_txt(&txt, path, audio.turns, cut.is_some())?;
            Ok(audio)
        }
    }
}

/// Caller audio for frames with no manifest: turns found by [`energy::segments`] with its
/// defaults on the μ-law itself (what the app hears), text empty.
pub fn from_frames(name: String, frames: Arc<dialtone_audio::FrameSet>) -> CallerAudio {
    let mut pcm = Vec::with_capacity(frames.mulaw().len());
    mulaw::decode_slice(frames.mulaw(), &mut pcm);
    let turns = energy::segments(
        &pcm,
        energy::DEFAULT_THRESHOLD_DBFS,
        energy::DEFAULT_MIN_SPEECH_MS,
        energy::DEFAULT_HANGOVER_MS,
    )
    .into_iter()
    .map(|(start_ms, end_ms)| Turn {
        start_ms,
        end_ms,
        text: String::new(),
    })
    .collect();
    CallerAudio {
        name,
        frames,
        turns,
    }
}

fn invalid(entry: &Entry, reason: String) -> CorpusError {
    CorpusError::Invalid {
        name: entry.name.clone(),
        reason,
    }
}

/// Turns must be non-empty, in order, inside the file; noise has none.
fn check_entry(entry: &Entry) -> Result<(), CorpusError> {
    if entry.kind == Kind::Noise && !entry.turns.is_empty() {
        return Err(invalid(entry, "a noise entry has turns".to_owned()));
    }
    let mut previous_end = 0;
    for (i, turn) in entry.turns.iter().enumerate() {
        if turn.start_ms >= turn.end_ms {
            return Err(invalid(entry, format!("turn {i} ends before it starts")));
        }
        if turn.start_ms < previous_end {
            return Err(invalid(entry, format!("turn {i} overlaps the one before")));
        }
        if turn.end_ms > entry.duration_ms {
            return Err(invalid(entry, format!("turn {i} ends after the file")));
        }
        previous_end = turn.end_ms;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_manifest(dir: &Path, entries: &str) {
        std::fs::write(
            dir.join(MANIFEST),
            format!(r#"{{"sample_rate": 8000, "entries": [{entries}]}}"#),
        )
        .expect("write manifest");
    }

    #[test]
    fn inconsistent_manifests_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            (
                r#"{"name":"a","file":"a.wav","kind":"script","duration_ms":1000,"voice":null,
                   "turns":[{"start_ms":500,"end_ms":400,"text":"x"}]}"#,
                "ends before it starts",
            ),
            (
                r#"{"name":"a","file":"a.wav","kind":"script","duration_ms":1000,"voice":null,
                   "turns":[{"start_ms":0,"end_ms":400,"text":"x"},{"start_ms":300,"end_ms":600,"text":"y"}]}"#,
                "overlaps",
            ),
            (
                r#"{"name":"a","file":"a.wav","kind":"noise","duration_ms":1000,"voice":null,
                   "turns":[{"start_ms":0,"end_ms":400,"text":"x"}]}"#,
                "noise entry has turns",
            ),
            (
                r#"{"name":"a","file":"a.wav","kind":"noise","duration_ms":1,"voice":null,"turns":[]},
                   {"name":"a","file":"b.wav","kind":"noise","duration_ms":1,"voice":null,"turns":[]}"#,
                "duplicate",
            ),
        ];
        for (entries, want) in cases {
            write_manifest(dir.path(), entries);
            let err = Corpus::open(dir.path()).expect_err(want).to_string();
            assert!(err.contains(want), "{err}");
        }
        write_manifest(dir.path(), "{\"name\": 3}");
        assert!(matches!(
            Corpus::open(dir.path()),
            Err(CorpusError::Manifest { .. })
        ));
    }

    #[test]
    fn missing_manifest_names_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Corpus::open(dir.path()).expect_err("no manifest");
        assert!(err.to_string().contains(MANIFEST), "{err}");
    }
}
