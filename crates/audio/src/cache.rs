//! Process-wide cache of encoded audio files, so each file is decoded and
//! mu-law/base64 encoded once and then shared by every call that plays it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::AudioError;
use crate::frames::{FrameSet, load_frames};

/// One cache slot. It has its own lock so that loading a large file blocks
/// only callers that want that same file, not the whole cache.
type Slot = Arc<Mutex<Option<Arc<FrameSet>>>>;

/// Cache so each file is decoded/encoded once per process and shared (`Arc`)
/// across concurrent calls.
///
/// Keys are paths exactly as given (no canonicalisation, which would cost a
/// syscall per lookup). Files are never re-read: edits on disk are not seen
/// until the process restarts. Failed loads are not cached, so a file that is
/// fixed or created later loads on the next `get`.
#[derive(Default)]
pub struct AudioCache {
    slots: Mutex<HashMap<PathBuf, Slot>>,
}

impl AudioCache {
    /// Creates an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the frames for `path`, loading and encoding the file on first use.
    ///
    /// Concurrent first requests for the same path wait for a single load
    /// instead of decoding the file several times.
    pub fn get(&self, path: &Path) -> Result<Arc<FrameSet>, AudioError> {
        let slot = {
            // Poisoning only means another thread panicked while holding the
            // lock; the map itself is always consistent, so keep using it.
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(path.to_path_buf()).or_default())
        };
        let mut entry = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(frames) = entry.as_ref() {
            return Ok(Arc::clone(frames));
        }
        match load_frames(path) {
            Ok(frames) => {
                let frames = Arc::new(frames);
                *entry = Some(Arc::clone(&frames));
                Ok(frames)
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
