//! The caller's hang-up, shared by a call's streams: claimed by the first stream to start
//! and run on its frame clock, so exactly the frames of the caller's time go out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// The caller hangs up `talk` after the first stream's start. The stream that claims it
/// ends the call on its own frame clock (real or virtual), so the frames before that moment,
/// and only those, go out: a seeded run sends the same frames every time.
#[derive(Clone)]
pub(crate) struct CallerHangup {
    pub(crate) talk: Duration,
    /// The part of `talk` after the caller's audio; in virtual time also a wall-clock
    /// bound on waiting for replies still on their way.
    pub(crate) tail: Duration,
    pub(crate) state: Arc<Mutex<HangupState>>,
    pub(crate) end: Arc<watch::Sender<Option<String>>>,
    pub(crate) reason: String,
}

/// Who holds the caller's hang-up.
#[derive(Debug, Default)]
pub(crate) struct HangupState {
    /// A stream has claimed it (and, in real time, keeps it even after it ended).
    claimed: bool,
    /// The claiming stream is still running it on its frame clock.
    running: bool,
    /// In virtual time, what is left of the caller's time for the next stream to run.
    left: Option<Duration>,
}

impl CallerHangup {
    /// For the first stream to ask (or, in virtual time, the next one after it ended
    /// early): how long after its start the caller hangs up.
    pub(crate) fn claim(&self) -> Option<Duration> {
        let mut st = self.state.lock().expect("hang-up lock");
        if st.claimed {
            return None;
        }
        st.claimed = true;
        st.running = true;
        Some(st.left.take().unwrap_or(self.talk))
    }

    /// The claiming stream ended before the hang-up. In real time the caller still hangs up
    /// at its wall-clock moment (the backstop timer, now without its grace); in virtual time
    /// there is no wall clock, so the time left passes to the next stream.
    pub(crate) fn release(&self, left_in_virtual_time: Option<Duration>) {
        let mut st = self.state.lock().expect("hang-up lock");
        st.running = false;
        if let Some(left) = left_in_virtual_time {
            st.claimed = false;
            st.left = Some(left);
        }
    }

    /// True while the claiming stream runs the hang-up itself.
    pub(crate) fn running(&self) -> bool {
        self.state.lock().expect("hang-up lock").running
    }

    /// Ends the call (the first reason wins).
    pub(crate) fn fire(&self) {
        self.end.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(self.reason.clone());
            true
        });
    }
}
