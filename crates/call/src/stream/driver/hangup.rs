//! The caller's time on a stream: where the stream joins the caller's audio (at its start,
//! or mid-audio when the audio is anchored at the answer), and the caller's hang-up, claimed
//! by the first stream to start and run on its frame clock, so exactly the frames of the
//! caller's time go out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::super::{End, Inbound, StreamCtx, WsSink};
use super::Driver;

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
    pub(super) fn claim(&self) -> Option<Duration> {
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
    pub(super) fn release(&self, left_in_virtual_time: Option<Duration>) {
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

impl Driver {
    /// Joins the caller's audio where it is at `t0` when it is anchored at the answer: the
    /// frames (and the digits keyed) before are gone, as they are for a stream Twilio opens
    /// mid-call.
    pub(super) fn anchor_caller(&mut self, t0: Instant, ctx: &mut StreamCtx) {
        let Some(epoch) = ctx.caller_epoch else {
            return;
        };
        self.caller_offset = (t0.saturating_duration_since(epoch).as_micros() / 20_000) as u64;
        let skipped = self.caller_offset_duration();
        ctx.dtmf = ctx
            .dtmf
            .iter()
            .filter(|(at, _)| *at >= skipped)
            .map(|(at, c)| (*at - skipped, *c))
            .collect();
    }

    /// How much of the caller's audio went by before this stream started.
    pub(super) fn caller_offset_duration(&self) -> Duration {
        Duration::from_micros(self.caller_offset * 20_000)
    }

    /// This stream runs the caller's hang-up and its moment has come.
    pub(super) fn hangup_due(&self, t0: Instant) -> bool {
        self.hangup
            .as_ref()
            .is_some_and(|(_, after)| self.now(t0) >= t0 + *after)
    }

    /// The caller hangs up: every frame of its time goes out (however late faults made
    /// them), the call is ended, the stream stopped.
    pub(super) async fn hang_up(
        &mut self,
        sink: &mut WsSink,
        rx: &mut mpsc::Receiver<Inbound>,
        ctx: &mut StreamCtx,
        t0: Instant,
        mut k: u64,
    ) -> End {
        let Some((h, after)) = self.hangup.take() else {
            return self.stop(sink, rx).await;
        };
        while Duration::from_micros(k * 20_000) < after {
            if let Err(e) = self.send_scheduled_frame(sink, ctx, t0, k).await {
                return self.send_failed(e, rx).await;
            }
            k += 1;
        }
        // In virtual time the tail passed at once: wait for the app to read everything,
        // and on the wall clock for replies still on their way.
        if self.fast
            && let Some(end) = self.settle(sink, rx, ctx, t0, h.tail).await
        {
            h.fire();
            return end;
        }
        h.fire();
        self.stop(sink, rx).await
    }

    /// The claiming stream ended before the caller hung up: hand the hang-up back.
    pub(in crate::stream) fn release_hangup(&mut self) {
        if let Some((h, after)) = self.hangup.take() {
            let left = self
                .fast
                .then(|| after.saturating_sub(Duration::from_micros(self.virt_us)));
            h.release(left);
        }
    }
}
