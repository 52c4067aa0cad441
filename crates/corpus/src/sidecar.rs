//! Transcript sidecars: the caller's words (and, in the `.json` form, their exact timing) for
//! a user's own WAV, read from a file with the same stem beside it. Without one, a WAV's turns
//! come from the energy detector with no words.
//!
//! - `caller.json`: `{"turns": [{"start_ms": 300, "end_ms": 3497, "text": "…"}, …]}`, the
//!   manifest's turn shape. These are the turns, exactly: the energy detector is not run.
//! - `caller.txt`: one line of text per turn the energy detector finds, in order; the timing
//!   is the detector's. Lines are trimmed and blank lines skipped, so a turn cannot be given
//!   empty text here (the `.json` form can).
//!
//! Both beside one WAV is an error rather than one silently winning: an edited file that has
//! no effect is worse than being told to delete one. Every error names the sidecar and what is
//! wrong, and is a [`CorpusError::Sidecar`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{CorpusError, Turn};

/// Largest sidecar read: a thousand turns of long sentences is well under this.
pub const MAX_SIDECAR_BYTES: u64 = 1 << 20;

/// Most turns a sidecar may give.
pub const MAX_TURNS: usize = 10_000;

/// Longest text of one turn, in characters (Unicode scalar values).
pub const MAX_TEXT_CHARS: usize = 10_000;

/// A sidecar found beside a WAV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sidecar {
    /// `STEM.json`: turns with timing and text.
    Json(PathBuf),
    /// `STEM.txt`: text only, one line per energy-detected turn.
    Txt(PathBuf),
}

/// What is wrong with a sidecar. The file is named by the [`CorpusError::Sidecar`] that
/// carries this.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The file could not be read (including text that is not UTF-8).
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    /// Over [`MAX_SIDECAR_BYTES`].
    #[error("over {MAX_SIDECAR_BYTES} bytes (1 MiB): too large for a transcript sidecar")]
    TooLarge,
    /// The `.json` form does not parse, or has a field it does not know.
    #[error("not a valid transcript sidecar: {0}")]
    Json(serde_json::Error),
    /// More than [`MAX_TURNS`] turns (or non-blank lines).
    #[error("{count} turns: at most {MAX_TURNS} are allowed")]
    TooManyTurns {
        /// How many the file gives.
        count: usize,
    },
    /// A turn's text is over [`MAX_TEXT_CHARS`].
    #[error("{turn}: text of {chars} characters: at most {MAX_TEXT_CHARS} are allowed")]
    TextTooLong {
        /// `turns[i]` or `line n`.
        turn: String,
        /// Its length in characters.
        chars: usize,
    },
    /// A turn does not end after it starts.
    #[error("turns[{index}]: start_ms {start_ms} is not before end_ms {end_ms}")]
    Backwards {
        /// Index in `turns`.
        index: usize,
        /// Its `start_ms`.
        start_ms: u32,
        /// Its `end_ms`.
        end_ms: u32,
    },
    /// A turn starts before the one before it ends (out of order, or overlapping).
    #[error(
        "turns[{index}] starts at {start_ms} ms, before turns[{}] ends at {previous_end_ms} ms: \
         turns must be in order and must not overlap",
        index - 1
    )]
    Overlap {
        /// Index in `turns` (at least 1).
        index: usize,
        /// Its `start_ms`.
        start_ms: u32,
        /// The previous turn's `end_ms`.
        previous_end_ms: u32,
    },
    /// A turn ends after the audio does.
    #[error("turns[{index}] ends at {end_ms} ms, past the end of {} ({audio_ms} ms)", wav.display())]
    PastEnd {
        /// Index in `turns`.
        index: usize,
        /// Its `end_ms`.
        end_ms: u32,
        /// The WAV.
        wav: PathBuf,
        /// The WAV's length in milliseconds (whole 20 ms frames, as the caller sends it).
        audio_ms: u64,
    },
    /// The `.txt` form's lines do not pair up with the energy detector's turns.
    #[error(
        "{} of text, but the energy detector found {} in {}; \
         give each turn's timing and text in {} instead",
        counted(*lines, "line"),
        counted(*detected, "turn"),
        wav.display(),
        json.display()
    )]
    CountMismatch {
        /// Non-blank lines in the file.
        lines: usize,
        /// Turns the detector found.
        detected: usize,
        /// The WAV.
        wav: PathBuf,
        /// Where the `.json` form would go.
        json: PathBuf,
    },
    /// Both forms sit beside the WAV.
    #[error("{} is also there: keep one transcript sidecar per WAV", other.display())]
    Both {
        /// The `.txt` form (the error names the `.json` one).
        other: PathBuf,
    },
}

/// `1 line`, `3 lines`.
fn counted(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `{"turns": [...]}`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    turns: Vec<JsonTurn>,
}

/// The manifest's turn shape, strictly: a misspelt field is an error, not a default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTurn {
    start_ms: u32,
    end_ms: u32,
    text: String,
}

/// The sidecar paths for `wav`: the same path with `.json` and `.txt` for its extension.
pub fn paths(wav: &Path) -> (PathBuf, PathBuf) {
    (wav.with_extension("json"), wav.with_extension("txt"))
}

/// The sidecar beside `wav`, if there is one; both forms there is an error.
pub fn find(wav: &Path) -> Result<Option<Sidecar>, CorpusError> {
    let (json, txt) = paths(wav);
    match (json.exists(), txt.exists()) {
        (true, true) => Err(CorpusError::Sidecar {
            path: json,
            reason: SidecarError::Both { other: txt },
        }),
        (true, false) => Ok(Some(Sidecar::Json(json))),
        (false, true) => Ok(Some(Sidecar::Txt(txt))),
        (false, false) => Ok(None),
    }
}

/// The turns of a `.json` sidecar for `wav`, checked: in order, not overlapping, each ending
/// after it starts and by `audio_ms` (the WAV's length; `None` when it is unknown), text and
/// count within bounds.
pub fn read_json(path: &Path, wav: &Path, audio_ms: Option<u64>) -> Result<Vec<Turn>, CorpusError> {
    let fail = |reason| CorpusError::Sidecar {
        path: path.to_path_buf(),
        reason,
    };
    let text = read_bounded(path).map_err(fail)?;
    let file: JsonFile = serde_json::from_str(&text).map_err(|e| fail(SidecarError::Json(e)))?;
    check_json(file.turns, wav, audio_ms).map_err(fail)
}

fn check_json(
    turns: Vec<JsonTurn>,
    wav: &Path,
    audio_ms: Option<u64>,
) -> Result<Vec<Turn>, SidecarError> {
    if turns.len() > MAX_TURNS {
        return Err(SidecarError::TooManyTurns { count: turns.len() });
    }
    let mut previous_end_ms = 0;
    let mut out = Vec::with_capacity(turns.len());
    for (index, t) in turns.into_iter().enumerate() {
        check_text(&t.text, || format!("turns[{index}]"))?;
        if t.start_ms >= t.end_ms {
            return Err(SidecarError::Backwards {
                index,
                start_ms: t.start_ms,
                end_ms: t.end_ms,
            });
        }
        if index > 0 && t.start_ms < previous_end_ms {
            return Err(SidecarError::Overlap {
                index,
                start_ms: t.start_ms,
                previous_end_ms,
            });
        }
        if let Some(audio_ms) = audio_ms.filter(|&ms| u64::from(t.end_ms) > ms) {
            return Err(SidecarError::PastEnd {
                index,
                end_ms: t.end_ms,
                wav: wav.to_path_buf(),
                audio_ms,
            });
        }
        previous_end_ms = t.end_ms;
        out.push(Turn {
            start_ms: t.start_ms,
            end_ms: t.end_ms,
            text: t.text,
        });
    }
    Ok(out)
}

/// `detected` (the energy detector's turns for `wav`) with their text from the `.txt` sidecar
/// at `path`, one non-blank line per turn. `cut`: the WAV was read only in part (longer than
/// the call can last), so the detector saw only its first turns; they take the first lines
/// and the lines left over are not an error.
pub fn read_txt(
    path: &Path,
    wav: &Path,
    mut detected: Vec<Turn>,
    cut: bool,
) -> Result<Vec<Turn>, CorpusError> {
    let fail = |reason| CorpusError::Sidecar {
        path: path.to_path_buf(),
        reason,
    };
    let text = read_bounded(path).map_err(fail)?;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        check_text(line, || format!("line {}", n + 1)).map_err(fail)?;
        lines.push(line);
    }
    if lines.len() > MAX_TURNS {
        return Err(fail(SidecarError::TooManyTurns { count: lines.len() }));
    }
    let fits = lines.len() == detected.len() || (cut && lines.len() > detected.len());
    if !fits {
        return Err(fail(SidecarError::CountMismatch {
            lines: lines.len(),
            detected: detected.len(),
            wav: wav.to_path_buf(),
            json: paths(wav).0,
        }));
    }
    for (turn, line) in detected.iter_mut().zip(lines) {
        turn.text = line.to_owned();
    }
    Ok(detected)
}

fn check_text(text: &str, turn: impl FnOnce() -> String) -> Result<(), SidecarError> {
    // Bytes bound characters from above: count only when the bytes could be too many.
    if text.len() > MAX_TEXT_CHARS {
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(SidecarError::TextTooLong {
                turn: turn(),
                chars,
            });
        }
    }
    Ok(())
}

/// The file as text, refusing one over [`MAX_SIDECAR_BYTES`] (or `/dev/zero`) without reading
/// past the bound. A leading byte order mark (editors on Windows write one) is dropped.
fn read_bounded(path: &Path) -> Result<String, SidecarError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SIDECAR_BYTES + 1).read_to_end(&mut bytes))
        .map_err(SidecarError::Read)?;
    if bytes.len() as u64 > MAX_SIDECAR_BYTES {
        return Err(SidecarError::TooLarge);
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| SidecarError::Read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    match text.strip_prefix('\u{feff}') {
        Some(rest) => Ok(rest.to_owned()),
        None => Ok(text),
    }
}
