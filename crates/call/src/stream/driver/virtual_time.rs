//! Virtual time's contract with the app (`--fast`): the caller's clock moves on only once
//! the app has read what was sent (a WebSocket ping after each batch, its pong back), and
//! when the caller hangs up with turns unanswered it waits on the wall clock for replies
//! still on their way. Audio that comes then was paced by the app's own clock: the run
//! fails, rather than passing with those turns silently unanswered.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use super::super::{End, Inbound, SendError, StreamCtx, WRITE_STALL, WsSink, send_msg};
use super::Driver;
use crate::report::{EventKind, Failure, late_pace};

/// How long the first pong may take before the app is taken not to answer pings at all.
const FIRST_PONG: Duration = Duration::from_secs(1);
/// Once pongs have come, one this late means the app stopped reading; the barrier is
/// lifted and the writes find the stall as in real time.
const LATER_PONG: Duration = WRITE_STALL;
/// The wall-clock wait for pending replies at the caller's hang-up is its tail, within
/// these bounds: long enough for a real app's reply latency, short enough to stay fast.
const GRACE_MIN: Duration = Duration::from_secs(1);
const GRACE_MAX: Duration = Duration::from_secs(5);
/// Once late audio has come, how long to keep watching it (for its pace) before hanging up.
const LATE_SAMPLE: Duration = Duration::from_millis(500);
/// Late audio is the app's own clock at work when it comes at most this many times real-time
/// pace, or this long after the app had read everything. An app whose writer runs apart from
/// its reader can let a reply trail its pong by a scheduling hop; that comes as one burst at
/// once, and is neither.
const PACED_MAX: f64 = 2.0;
const DELAYED_MIN: Duration = Duration::from_millis(250);

/// The read barrier: one ping in flight at a time, after the caller sent something.
#[derive(Debug)]
pub(super) struct ReadBarrier {
    /// False once the app failed to answer a ping in time.
    on: bool,
    next_id: u64,
    /// The ping in flight and when waiting for it gives up (wall clock).
    awaiting: Option<(u64, Instant)>,
    /// `seq` when the last ping went out: anything sent since needs another.
    pinged_seq: u64,
    pongs: u64,
}

impl Default for ReadBarrier {
    fn default() -> Self {
        Self {
            on: true,
            next_id: 1,
            awaiting: None,
            pinged_seq: 0,
            pongs: 0,
        }
    }
}

/// App audio that came on the wall clock after the app had read everything.
#[derive(Debug)]
pub(super) struct LateAudio {
    /// When the app had read the caller's last message (its last pong).
    since: Instant,
    media: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl LateAudio {
    /// One app `media` message of `bytes` μ-law bytes arrived now.
    pub(super) fn on_media(&mut self, bytes: usize) {
        let now = Instant::now();
        self.media += 1;
        self.bytes += bytes as u64;
        self.first.get_or_insert(now);
        self.last = Some(now);
    }
}

impl Driver {
    /// Virtual time's wait: for the pong in flight (on the wall clock, the app's messages
    /// come in meanwhile), else a jump to `deadline` after letting the app's messages in.
    pub(super) async fn virtual_sleep(&mut self, t0: Instant, deadline: Instant) {
        if let Some((_, limit)) = self.barrier.awaiting {
            sleep_until(limit).await;
            self.pong_timed_out();
            return;
        }
        tokio::task::yield_now().await;
        self.virt_us = self.virt_us.max(super::super::us_since(t0, deadline));
    }

    /// A pong came: the app has read everything sent before its ping.
    pub(super) fn on_pong(&mut self, id: Option<u64>) {
        if self
            .barrier
            .awaiting
            .is_some_and(|(want, _)| Some(want) == id)
        {
            self.barrier.awaiting = None;
            self.barrier.pongs += 1;
        }
    }

    /// In virtual time, after the caller sent something: a ping, whose pong tells that the
    /// app read it. (An app's WebSocket layer answers a ping when it reads it, so a reply
    /// the app sends before reading on arrives before the pong.)
    pub(super) async fn ping_if_sent(&mut self, sink: &mut WsSink) -> Result<(), SendError> {
        let b = &mut self.barrier;
        if !self.fast || !b.on || b.awaiting.is_some() || b.pinged_seq == self.seq {
            return Ok(());
        }
        let id = b.next_id;
        b.next_id += 1;
        b.pinged_seq = self.seq;
        let limit = if b.pongs == 0 { FIRST_PONG } else { LATER_PONG };
        b.awaiting = Some((id, Instant::now() + limit));
        send_msg(sink, Message::Ping(id.to_be_bytes().to_vec().into())).await
    }

    fn pong_timed_out(&mut self) {
        let b = &mut self.barrier;
        b.on = false;
        b.awaiting = None;
        let message = if b.pongs == 0 {
            format!(
                "the app does not answer WebSocket pings (none within {} s): --fast cannot wait \
                 for it to read each frame, so its replies are timed against frames it may not \
                 have read yet, and unanswered turns are not checked",
                FIRST_PONG.as_secs()
            )
        } else {
            format!(
                "the app stopped answering WebSocket pings (none within {} s): --fast no longer \
                 waits for it to read each frame",
                LATER_PONG.as_secs()
            )
        };
        self.warnings.push((0, message.clone()));
        self.timeline.emit(EventKind::Warning { code: 0, message });
    }

    /// Virtual time, the caller's hang-up: first the app reads everything (the last pong);
    /// then, if turns went unanswered, the caller waits on the wall clock (its tail, within
    /// bounds) for replies still on their way. App audio that comes then was paced by the
    /// app's own clock: [`Failure::WallClockApp`]. `Some(end)` when the stream ended
    /// meanwhile.
    pub(super) async fn settle(
        &mut self,
        sink: &mut WsSink,
        rx: &mut mpsc::Receiver<Inbound>,
        ctx: &mut StreamCtx,
        t0: Instant,
        tail: Duration,
    ) -> Option<End> {
        if let Err(e) = self.ping_if_sent(sink).await {
            return Some(self.send_failed(e, rx).await);
        }
        while let Some((_, limit)) = self.barrier.awaiting {
            if let Some(end) = self.settle_step(sink, rx, ctx, t0, limit).await {
                return end;
            }
        }
        let (unanswered, turns) = self.turns.unanswered();
        if !self.bidirectional || unanswered == 0 || !self.barrier.on {
            return None;
        }
        let since = Instant::now();
        self.late = Some(LateAudio {
            since,
            media: 0,
            bytes: 0,
            first: None,
            last: None,
        });
        let deadline = since + tail.clamp(GRACE_MIN, GRACE_MAX);
        loop {
            let first = self.late.as_ref().and_then(|l| l.first);
            let until = first.map_or(deadline, |f| deadline.min(f + LATE_SAMPLE));
            if Instant::now() >= until {
                break;
            }
            if let Some(end) = self.settle_step(sink, rx, ctx, t0, until).await {
                if end.is_some() {
                    return end;
                }
                break;
            }
        }
        let late = self.late.as_ref().expect("set above");
        let (Some(first), Some(last)) = (late.first, late.last) else {
            return None;
        };
        let ms = |d: Duration| d.as_millis() as u64;
        let (audio_ms, wall_ms, after) = (late.bytes / 8, ms(last - first), first - late.since);
        let paced = late_pace(late.media, audio_ms, wall_ms).is_some_and(|p| p <= PACED_MAX);
        if paced || after >= DELAYED_MIN {
            self.failures.push(Failure::WallClockApp {
                url: self.url.clone(),
                unanswered,
                turns,
                media: late.media,
                audio_ms,
                wall_ms,
                after_ms: ms(after),
            });
        }
        None
    }

    /// One wait of [`Driver::settle`], until `until` at most: `None` to go on, `Some(None)`
    /// when the call is stopping or the wait is over (for the grace), `Some(Some(end))` when
    /// the stream ended.
    async fn settle_step(
        &mut self,
        sink: &mut WsSink,
        rx: &mut mpsc::Receiver<Inbound>,
        ctx: &mut StreamCtx,
        t0: Instant,
        until: Instant,
    ) -> Option<Option<End>> {
        tokio::select! {
            biased;
            changed = ctx.stop.changed() => {
                (changed.is_err() || *ctx.stop.borrow()).then_some(None)
            }
            msg = rx.recv() => match msg {
                Some(Inbound::Text(text)) => match self.on_app_text(&text, t0, ctx, sink).await {
                    Ok(()) => None,
                    Err(e) => Some(Some(self.send_failed(e, rx).await)),
                },
                Some(Inbound::Pong(id)) => {
                    self.on_pong(id);
                    None
                }
                Some(Inbound::Binary(len)) => {
                    self.invalid_message(
                        ctx,
                        dialtone_protocol::media::Violation::BinaryFrame.to_string(),
                        format!("<binary frame, {len} bytes>"),
                    );
                    None
                }
                Some(Inbound::Closed(code)) => {
                    let _ = tokio::time::timeout(
                        WRITE_STALL,
                        futures_util::SinkExt::close(sink),
                    )
                    .await;
                    Some(Some(End::AppClosed(code)))
                }
                Some(Inbound::Dropped) | None => Some(Some(End::Dropped)),
                Some(Inbound::Violation(v)) => Some(Some(End::Violation(v))),
            },
            _ = sleep_until(until) => {
                if self.barrier.awaiting.is_some() {
                    self.pong_timed_out();
                    None
                } else {
                    Some(None)
                }
            }
        }
    }
}
