//! Process-wide cache of encoded audio files, so each file is decoded and
//! mu-law/base64 encoded once and then shared by every call that plays it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::AudioError;
use crate::frames::FrameSet;
use crate::wav::{self, Truncated};

/// A file's frames and whether the cache's bound cut it.
type Entry = (Arc<FrameSet>, Option<Truncated>);

/// One cache slot. It has its own lock so that loading a large file blocks
/// only callers that want that same file, not the whole cache.
type Slot = Arc<Mutex<Option<Entry>>>;

/// Cache so each file is decoded/encoded once per process and shared (`Arc`)
/// across concurrent calls.
///
/// Keys are paths exactly as given (no canonicalisation, which would cost a
/// syscall per lookup). Files are never re-read: edits on disk are not seen
/// until the process restarts. Failed loads are not cached, so a file that is
/// fixed or created later loads on the next `get`.
///
/// Every file is read under one bound ([`AudioCache::with_max`]): the longest a call using
/// it can last, so caller audio never costs more memory than the call can play. Files cut
/// by it are listed by [`AudioCache::truncated`].
pub struct AudioCache {
    slots: Mutex<HashMap<PathBuf, Slot>>,
    max: Duration,
}

impl Default for AudioCache {
    fn default() -> Self {
        Self::with_max(wav::MAX_DURATION)
    }
}

impl AudioCache {
    /// Creates an empty cache reading files whole, up to [`wav::MAX_DURATION`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty cache that reads at most `max` of each file (and never more than
    /// [`wav::MAX_DURATION`]).
    pub fn with_max(max: Duration) -> Self {
        Self {
            slots: Mutex::default(),
            max: max.min(wav::MAX_DURATION),
        }
    }

    /// The most audio read from each file.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Returns the frames for `path`, loading and encoding the file on first use.
    ///
    /// Concurrent first requests for the same path wait for a single load
    /// instead of decoding the file several times.
    pub fn get(&self, path: &Path) -> Result<Arc<FrameSet>, AudioError> {
        self.load(path).map(|(frames, _)| frames)
    }

    /// [`AudioCache::get`], with what the cache's bound cut from the file.
    pub fn load(&self, path: &Path) -> Result<(Arc<FrameSet>, Option<Truncated>), AudioError> {
        let slot = {
            // Poisoning only means another thread panicked while holding the
            // lock; the map itself is always consistent, so keep using it.
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(path.to_path_buf()).or_default())
        };
        let mut entry = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((frames, cut)) = entry.as_ref() {
            return Ok((Arc::clone(frames), *cut));
        }
        match wav::read_8k(path, self.max) {
            Ok(decoded) => {
                let frames = Arc::new(FrameSet::from_pcm(&decoded.pcm));
                *entry = Some((Arc::clone(&frames), decoded.truncated));
                Ok((frames, decoded.truncated))
            }
            Err(err) => {
                drop(entry);
                // Forget the empty slot so typo'd or missing paths do not pile
                // up; a racing loader keeps its own clone and still succeeds.
                let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
                if slots.get(path).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    slots.remove(path);
                }
                Err(err)
            }
        }
    }

    /// The files loaded so far that the cache's bound cut, by path, with what was cut: for
    /// a warning that names each.
    pub fn truncated(&self) -> Vec<(PathBuf, Truncated)> {
        let slots: Vec<(PathBuf, Slot)> = {
            let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots
                .iter()
                .map(|(p, s)| (p.clone(), Arc::clone(s)))
                .collect()
        };
        let mut out: Vec<(PathBuf, Truncated)> = slots
            .into_iter()
            .filter_map(|(path, slot)| {
                let entry = slot.lock().unwrap_or_else(PoisonError::into_inner);
                entry.as_ref().and_then(|(_, cut)| cut.map(|c| (path, c)))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl std::fmt::Debug for AudioCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Listing the frames would dump megabytes; the entry count is what is useful.
        let entries = self.slots.lock().map_or(0, |slots| slots.len());
        f.debug_struct("AudioCache")
            .field("entries", &entries)
            .finish()
    }
}
