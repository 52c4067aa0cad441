//! What the simulated caller says: a WAV file, a corpus script with ground-truth turns, or
//! the built-in utterance. Shared by every subcommand that places calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use dialtone_audio::{AudioCache, FrameSet};
use dialtone_call::TurnTruth;
use dialtone_corpus::{Corpus, Turn};

/// The caller's audio when neither `--audio` nor `--script` is given.
const DEFAULT_AUDIO: &[u8] = include_bytes!("../../../audio/hello.wav");

/// Where the caller's audio comes from.
#[derive(Debug, Args, Clone)]
pub(crate) struct CallerArgs {
    /// WAV file the caller speaks (any common WAV shape); its turns are found by an energy
    /// detector. Defaults to a built-in caller utterance.
    #[arg(long, value_name = "FILE.wav", conflicts_with = "script")]
    pub(crate) audio: Option<PathBuf>,
    /// Corpus entry the caller speaks, with exact ground-truth turns (e.g. `session`,
    /// `barge_in`; see audio/manifest.json).
    #[arg(long, value_name = "NAME")]
    pub(crate) script: Option<String>,
    /// Corpus directory (default: $DIALTONE_CORPUS or the repository's audio/).
    #[arg(long, value_name = "DIR")]
    pub(crate) corpus: Option<PathBuf>,
}

/// Caller audio ready for the engine.
pub(crate) struct Caller {
    pub(crate) name: String,
    pub(crate) frames: Arc<FrameSet>,
    pub(crate) turns: Vec<TurnTruth>,
    /// Audio cut at the call's maximum length, in words (for stderr and the report).
    pub(crate) warnings: Vec<String>,
}

impl CallerArgs {
    /// Loads the audio once (through `cache`, which reads no more of a file than its bound:
    /// the call's maximum length) with its turns; what the bound cut is named in `warnings`.
    pub(crate) fn resolve(&self, cache: &AudioCache) -> anyhow::Result<Caller> {
        let mut caller = self.load(cache)?;
        let what = |path: &std::path::Path| match (&self.script, &self.audio) {
            (Some(name), _) => format!("--script {name} ({})", path.display()),
            (None, Some(_)) => format!("--audio {}", path.display()),
            (None, None) => "the built-in caller audio".to_string(),
        };
        caller.warnings = cache
            .truncated()
            .into_iter()
            .map(|(path, cut)| {
                format!(
                    "{}: {cut} (a call lasts at most {:.1} s, --max-duration)",
                    what(&path),
                    cache.max().as_secs_f64()
                )
            })
            .collect();
        Ok(caller)
    }

    fn load(&self, cache: &AudioCache) -> anyhow::Result<Caller> {
        if let Some(name) = &self.script {
            let dir = self.corpus.clone().unwrap_or_else(Corpus::default_dir);
            let corpus = Corpus::open(&dir)
                .with_context(|| format!("cannot open the audio corpus in {}", dir.display()))?;
            let audio = corpus
                .load(name, cache)
                .with_context(|| format!("--script {name}"))?;
            return Ok(Caller {
                name: audio.name,
                frames: audio.frames,
                turns: truths(&audio.turns),
                warnings: Vec::new(),
            });
        }
        if let Some(path) = &self.audio {
            let audio = dialtone_corpus::from_wav(path, cache)
                .with_context(|| format!("cannot use --audio {}", path.display()))?;
            return Ok(Caller {
                name: audio.name,
                frames: audio.frames,
                turns: truths(&audio.turns),
                warnings: Vec::new(),
            });
        }
        // The built-in utterance is the corpus's `hello`: exact turns when the corpus is at
        // hand, energy-detected ones from the embedded copy otherwise.
        let dir = self.corpus.clone().unwrap_or_else(Corpus::default_dir);
        if let Ok(audio) = Corpus::open(&dir).and_then(|c| c.load("hello", cache)) {
            return Ok(Caller {
                name: audio.name,
                frames: audio.frames,
                turns: truths(&audio.turns),
                warnings: Vec::new(),
            });
        }
        let pcm = dialtone_audio::wav::load_8k_from_bytes(DEFAULT_AUDIO, "built-in hello.wav")
            .context("built-in caller audio")?;
        let audio =
            dialtone_corpus::from_frames("hello".into(), Arc::new(FrameSet::from_pcm(&pcm)));
        Ok(Caller {
            name: audio.name,
            frames: audio.frames,
            turns: truths(&audio.turns),
            warnings: Vec::new(),
        })
    }
}

fn truths(turns: &[Turn]) -> Vec<TurnTruth> {
    turns
        .iter()
        .map(|t| TurnTruth {
            start: Duration::from_millis(t.start_ms.into()),
            end: Duration::from_millis(t.end_ms.into()),
            text: t.text.clone(),
        })
        .collect()
}
