//! What the simulated caller says: a WAV file, a corpus script with ground-truth turns, or
//! the built-in utterance. Shared by every subcommand that places calls (`call`, `load`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use dialtone_audio::{AudioCache, FrameSet};
use dialtone_corpus::Turn;
use dialtone_corpus::caller::{CallerSource, resolve};

/// Where the caller's audio comes from.
#[derive(Debug, Args, Clone)]
pub(crate) struct CallerArgs {
    /// WAV file the caller speaks (any common WAV shape); its turns come from a transcript
    /// sidecar beside it (`caller.json`: turns and words; `caller.txt`: a line of words per
    /// detected turn; see docs/call.md), else an energy detector finds them. `load` also
    /// takes a folder of WAVs (one picked per call). Default: a built-in caller utterance
    /// (`load --stream`: μ-law silence).
    #[arg(long, value_name = "PATH", conflicts_with = "script")]
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
    pub(crate) turns: Vec<Turn>,
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
        let source = CallerSource::from_flags(self.script.as_deref(), self.audio.as_deref());
        let mut audio = resolve(&source, self.corpus.as_deref(), cache)
            .with_context(|| format!("cannot use {}", source.describe()))?;
        if audio.len() != 1 {
            anyhow::bail!(
                "{}: a call speaks one WAV, this names {} (use `dialtone load` for a folder)",
                source.describe(),
                audio.len()
            );
        }
        let audio = audio.remove(0);
        Ok(Caller {
            name: audio.name,
            frames: audio.frames,
            turns: audio.turns,
            warnings: Vec::new(),
        })
    }
}
