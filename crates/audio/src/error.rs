//! The crate's error type. Every variant carries the file name so a failing
//! `<Play>` or configured prompt can be traced to the offending file.

/// Why an audio file could not be read or written. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened or read from disk.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file (path or name) that failed.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The bytes do not start with a `RIFF....WAVE` header.
    #[error("{path} is not a WAV file (no RIFF/WAVE header)")]
    NotRiff {
        /// The offending file.
        path: String,
    },
    /// The file ends before its chunks (or the audio data) do, e.g. an
    /// interrupted download or copy.
    #[error("{path} is truncated (shorter than its WAV header declares)")]
    Truncated {
        /// The offending file.
        path: String,
    },
    /// A well-formed WAV file in an encoding this crate does not decode.
    #[error("{path}: unsupported WAV format: {what}")]
    Unsupported {
        /// The offending file.
        path: String,
        /// What is unsupported, e.g. `codec 0x0055 (mp3)`.
        what: String,
    },
    /// The file (or its data chunk) holds no audio at all, including 0-byte files.
    #[error("{path} has no audio samples")]
    Empty {
        /// The offending file.
        path: String,
    },
    /// The file holds more audio than a whole-file read takes ([`crate::wav::MAX_DURATION`],
    /// [`crate::wav::MAX_DATA_BYTES`]); [`crate::wav::read_8k`] reads a bounded part.
    #[error(
        "{path} holds more audio than dialtone reads (4 hours, 256 MiB of samples): it is {what}"
    )]
    TooLong {
        /// The offending file.
        path: String,
        /// How long it is and what was read.
        what: String,
    },
    /// Writing an output WAV file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file being written.
        path: String,
        /// What went wrong.
        message: String,
    },
}
