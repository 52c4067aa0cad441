//! The one way a caller's audio is found, for every command that places calls or streams:
//! a corpus entry by name (exact turns and words), a WAV, a folder of WAVs or a corpus folder
//! (turns from the manifest, from each WAV's transcript sidecar, or found by the energy
//! detector), or the built-in utterance.
//! Every file is read through the caller's [`AudioCache`], so its bound (the longest a call
//! can last) holds for all of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dialtone_audio::{AudioCache, FrameSet};

use crate::{CallerAudio, Corpus, CorpusError, Kind, MANIFEST, from_frames, from_wav};

/// The caller's audio when none is named: the corpus's `hello`, embedded so that the binary
/// works away from the repository.
const BUILTIN_HELLO: &[u8] = include_bytes!("../../../audio/hello.wav");

/// Where a caller's audio comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CallerSource {
    /// The built-in utterance: the corpus's `hello` with its exact turns when the corpus is at
    /// hand, else an embedded copy with energy-detected turns.
    #[default]
    Builtin,
    /// A corpus entry by name (`--script`), with its ground-truth turns.
    Script(String),
    /// A WAV file, a folder of WAVs (sorted by name, so choices are stable) or a corpus folder
    /// (one with a `manifest.json`: every entry with speech). Each WAV's transcript sidecar,
    /// if it has one, gives its turns ([`crate::sidecar`]).
    Path(PathBuf),
}

impl CallerSource {
    /// The source `--script NAME` and `--audio PATH` name (a script wins; neither: the
    /// built-in utterance).
    pub fn from_flags(script: Option<&str>, audio: Option<&Path>) -> CallerSource {
        match (script, audio) {
            (Some(name), _) => CallerSource::Script(name.to_owned()),
            (None, Some(path)) => CallerSource::Path(path.to_path_buf()),
            (None, None) => CallerSource::Builtin,
        }
    }

    /// The source as the user named it, for messages: `--script session`, `--audio a.wav`.
    pub fn describe(&self) -> String {
        match self {
            CallerSource::Builtin => "the built-in caller audio".to_owned(),
            CallerSource::Script(name) => format!("--script {name}"),
            CallerSource::Path(path) => format!("--audio {}", path.display()),
        }
    }
}

/// The caller audio `source` names, one or more (a folder gives one per file or entry), each
/// with its turns. `corpus` is the corpus folder for [`CallerSource::Script`] and the built-in
/// utterance (`None`: [`Corpus::default_dir`]).
pub fn resolve(
    source: &CallerSource,
    corpus: Option<&Path>,
    cache: &AudioCache,
) -> Result<Vec<CallerAudio>, CorpusError> {
    let corpus_dir = || corpus.map_or_else(Corpus::default_dir, Path::to_path_buf);
    match source {
        CallerSource::Script(name) => Ok(vec![Corpus::open(&corpus_dir())?.load(name, cache)?]),
        CallerSource::Path(path) if path.join(MANIFEST).is_file() => with_speech(path, cache),
        CallerSource::Path(path) if path.is_dir() => wav_folder(path, cache),
        CallerSource::Path(path) => Ok(vec![from_wav(path, cache)?]),
        CallerSource::Builtin => {
            if let Ok(audio) = Corpus::open(&corpus_dir()).and_then(|c| c.load("hello", cache)) {
                return Ok(vec![audio]);
            }
            Ok(vec![from_frames(
                "hello".into(),
                Arc::new(builtin_hello()?),
            )])
        }
    }
}

/// The embedded `hello` utterance: what a simulated far end says when nothing else is named.
pub fn builtin_hello() -> Result<FrameSet, CorpusError> {
    let pcm = dialtone_audio::wav::load_8k_from_bytes(BUILTIN_HELLO, "built-in hello.wav")?;
    Ok(FrameSet::from_pcm(&pcm))
}

/// Every entry of the corpus in `dir` that has speech.
fn with_speech(dir: &Path, cache: &AudioCache) -> Result<Vec<CallerAudio>, CorpusError> {
    let corpus = Corpus::open(dir)?;
    let out = corpus
        .entries()
        .iter()
        .filter(|e| e.kind != Kind::Noise)
        .map(|e| corpus.load(&e.name, cache))
        .collect::<Result<Vec<_>, _>>()?;
    if out.is_empty() {
        return Err(CorpusError::Folder {
            path: dir.to_path_buf(),
            reason: "no corpus entries with speech".into(),
        });
    }
    Ok(out)
}

/// Every `.wav` in `dir`, sorted by name.
fn wav_folder(dir: &Path, cache: &AudioCache) -> Result<Vec<CallerAudio>, CorpusError> {
    let folder = |reason: String| CorpusError::Folder {
        path: dir.to_path_buf(),
        reason,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| folder(format!("cannot read it: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(folder("no .wav files in this folder".into()));
    }
    // Each file's error names it.
    files.iter().map(|f| from_wav(f, cache)).collect()
}
