//! A full call's stream on the plane: the job handed over, and the observer that carries
//! the plane's news back to the call (timeline, capture, the caller's hang-up, the outcome).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::plane::{Job, Observer, Plane, StopHandle, Target};
use super::{CallerHangup, StreamCtx, StreamOutcome, StreamSpec};
use crate::capture::Captured;
use crate::report::EventKind;
use crate::timeline::Timeline;

struct CallObserver {
    timeline: Arc<Timeline>,
    /// `--capture` is on (checked once: the timeline is cold memory on the plane's thread).
    capturing: bool,
    stream_sid: String,
    url: String,
    hangup: Option<CallerHangup>,
    /// The hang-up this stream claimed, and whether it fired.
    claimed: Option<(CallerHangup, bool)>,
    started: Option<oneshot::Sender<Instant>>,
    /// Boxed: the channel holds its value inline, for the stream's whole life.
    done: Option<oneshot::Sender<Box<StreamOutcome>>>,
}

impl Observer for CallObserver {
    fn connected(&mut self, elapsed: Duration) {
        self.timeline.capture(&Captured::WsOpen {
            stream_sid: &self.stream_sid,
            url: &self.url,
        });
        self.timeline.emit(EventKind::StreamConnected {
            stream_sid: self.stream_sid.clone(),
            elapsed,
        });
    }

    fn started(&mut self, t0: Instant) -> Option<Duration> {
        let h = self.hangup.take()?;
        let after = h.claim()?;
        self.claimed = Some((h, false));
        if let Some(started) = self.started.take() {
            let _ = started.send(t0);
        }
        Some(after)
    }

    fn wants_text(&self) -> bool {
        self.capturing
    }

    fn sent(&mut self, text: &str) {
        self.timeline.capture(&Captured::WsOut {
            stream_sid: &self.stream_sid,
            text,
        });
    }

    fn received(&mut self, text: &str) {
        self.timeline.capture(&Captured::WsIn {
            stream_sid: &self.stream_sid,
            text,
        });
    }

    fn event(&mut self, kind: EventKind) {
        self.timeline.emit(kind);
    }

    fn hung_up(&mut self) {
        if let Some((h, fired)) = &mut self.claimed {
            h.fire();
            *fired = true;
        }
    }

    fn finished(mut self: Box<Self>, outcome: StreamOutcome, _interrupted: bool) {
        if let Some((h, false)) = self.claimed.take() {
            // Ended before the caller hung up: the backstop hangs up on the wall clock.
            h.release(None);
        }
        self.timeline.capture(&Captured::WsClose {
            stream_sid: &self.stream_sid,
            by: outcome.report.closed_by,
            code: outcome.report.close_code,
        });
        if let Some(done) = self.done.take() {
            let _ = done.send(Box::new(outcome));
        }
    }
}

/// Where the stream connects when the plane can carry it: plain WebSocket, in real time.
/// (Virtual time, an injected slow reader and TLS are the tokio driver's.)
pub(crate) fn target(spec: &StreamSpec, ctx: &StreamCtx) -> Option<Target> {
    if ctx.fast
        || ctx
            .faults
            .as_ref()
            .is_some_and(|f| f.spec().slow_read.is_some())
    {
        return None;
    }
    Target::resolve(&spec.url, &ctx.tunnels, &ctx.auth_token).ok()
}

/// Runs the stream on the plane: its outcome comes on the receiver.
pub(crate) fn run(
    plane: &Plane,
    target: Target,
    spec: StreamSpec,
    mut ctx: StreamCtx,
) -> (oneshot::Receiver<Box<StreamOutcome>>, StopHandle) {
    let via = url::Url::parse(&spec.url)
        .ok()
        .and_then(|u| ctx.tunnels.route(&u).via());
    ctx.timeline.emit(EventKind::StreamConnecting {
        url: spec.url.clone(),
        via,
        bidirectional: spec.bidirectional,
        stream_sid: spec.ids.stream_sid.clone(),
        name: spec.name.clone(),
        status_callback: spec.status_callback.clone(),
        status_callback_method: spec.status_callback_method.as_str(),
    });
    let (done_tx, done_rx) = oneshot::channel();
    let observer = CallObserver {
        timeline: ctx.timeline.clone(),
        capturing: ctx.timeline.capturing(),
        stream_sid: spec.ids.stream_sid.clone(),
        url: spec.url.clone(),
        hangup: ctx.hangup.take(),
        claimed: None,
        started: ctx.started.take(),
        done: Some(done_tx),
    };
    let seed = crate::faults::mix(
        spec.ids
            .stream_sid
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b)),
        0,
        3,
    );
    let stop = plane.submit(Job {
        target: Arc::new(target),
        session: spec.session(&ctx, 0),
        caller_epoch: ctx.caller_epoch,
        connect_at: None,
        seed,
        stop: Arc::new(AtomicBool::new(false)),
        observer: Box::new(observer),
        frame_lateness: ctx.frame_lateness.clone(),
    });
    (done_rx, stop)
}
