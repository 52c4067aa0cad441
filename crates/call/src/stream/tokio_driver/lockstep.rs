//! Virtual time (`--fast`), in lockstep with the app. The rule: **the caller's clock moves on
//! only once the app has read everything sent (a WebSocket ping after each step, its pong
//! back) and its last message is [`QUIET`] old**. An app that answers as it reads (its reply
//! written before it reads on, as the reference bot does) has its answers in before its
//! pong, so they land at the same virtual instant, between the same frames, every run: two
//! seeded runs send the same bytes; a reply's messages that keep coming stay in one step.
//!
//! Cost: each step (a frame, a digit, a mark echo falling due) waits one round trip, and
//! [`QUIET`] more after app messages: a 19 s call against the reference bot takes about
//! 0.5–0.6 s. The quiet window does not follow every pong on purpose: that would slow each
//! step enough for an app on its own clock to keep up, and hide it.
//!
//! What it cannot make deterministic: an app that answers on its own clock (timers, paced
//! writers, work that outlasts [`QUIET`]), or from a writer task that sends after its reader
//! answered the ping; its answers land wherever the wall clock puts them. When the caller hangs up with turns unanswered, the caller waits on the wall clock
//! for replies still on their way; audio that comes then was paced by the app's own clock,
//! and the run fails ([`Failure::WallClockApp`]) rather than passing with those turns
//! silently unanswered.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use super::{Driver, Inbound, SendError};
use crate::report::{Failure, late_pace};
use crate::stream::CallerHangup;
use crate::stream::session::{End, Session, WRITE_STALL};

/// How long the app must have been quiet, after reading everything, before virtual time
/// moves on: longer than an app's own handling of a message, short beside a frame.
pub(crate) const QUIET: Duration = Duration::from_millis(2);
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

/// Virtual time's state: the clock, and the read barrier (one ping in flight at a time).
#[derive(Debug)]
pub(super) struct Lockstep {
    /// `start` has gone out.
    pub(super) started: bool,
    /// Virtual time since `start`, µs.
    pub(super) virt_us: u64,
    /// False once the app failed to answer a ping in time.
    on: bool,
    next_id: u64,
    /// The ping in flight and when waiting for it gives up (wall clock).
    awaiting: Option<(u64, Instant)>,
    /// `seq` when the last ping went out: anything sent since needs another.
    pinged_seq: u64,
    pongs: u64,
    /// The app's last message: time moves on once it is [`QUIET`] old.
    last_heard: Option<Instant>,
    /// After the caller's hang-up: when waiting for late audio began, and when the first
    /// and last of it came.
    late: Option<(Instant, Option<Instant>, Option<Instant>)>,
}

impl Default for Lockstep {
    fn default() -> Self {
        Self {
            started: false,
            virt_us: 0,
            on: true,
            next_id: 1,
            awaiting: None,
            pinged_seq: 0,
            pongs: 0,
            last_heard: None,
            late: None,
        }
    }
}

impl Lockstep {
    /// A pong came: the app has read everything sent before its ping. (The quiet window
    /// counts from the app's last message, not from the pong: waiting it out after every
    /// pong would slow each step enough for an app on its own clock to keep up, and hide it.)
    pub(super) fn on_pong(&mut self, id: Option<u64>) {
        if self.awaiting.is_some_and(|(want, _)| Some(want) == id) {
            self.awaiting = None;
            self.pongs += 1;
        }
    }

    /// The app sent something: time waits until it has been quiet.
    pub(super) fn on_app_message(&mut self) {
        self.last_heard = Some(Instant::now());
    }

    /// App audio came (the session counted it); after the hang-up its timing is evidence.
    pub(super) fn on_media(&mut self, s: &Session) {
        if let Some((_, first, last)) = &mut self.late
            && s.late().is_some()
        {
            let now = Instant::now();
            first.get_or_insert(now);
            *last = Some(now);
        }
    }
}

impl Driver<'_> {
    /// Virtual time's wait: for the pong in flight, then for the app to be quiet (on the wall
    /// clock; the app's messages come in meanwhile), then a jump to `deadline`.
    pub(super) async fn virtual_wait(&mut self, deadline: Option<u64>) {
        if let Some((_, limit)) = self.lockstep.awaiting {
            sleep_until(limit).await;
            self.pong_timed_out();
            return;
        }
        if self.lockstep.on
            && let Some(heard) = self.lockstep.last_heard
            && heard.elapsed() < QUIET
        {
            sleep_until(heard + QUIET).await;
            return;
        }
        tokio::task::yield_now().await;
        match deadline {
            Some(us) => self.lockstep.virt_us = self.lockstep.virt_us.max(us),
            // Nothing is due until the call stops: wait for it (or the app).
            None => std::future::pending().await,
        }
    }

    /// After the session sent something: a ping, whose pong tells that the app read it. (An
    /// app's WebSocket layer answers a ping when it reads it, so a reply the app sends before
    /// reading on arrives before the pong.)
    pub(super) async fn ping_if_sent(&mut self, s: &Session) -> Result<(), SendError> {
        let b = &mut self.lockstep;
        if !b.on || b.awaiting.is_some() || b.pinged_seq == s.seq() {
            return Ok(());
        }
        let id = b.next_id;
        b.next_id += 1;
        b.pinged_seq = s.seq();
        let limit = if b.pongs == 0 { FIRST_PONG } else { LATER_PONG };
        b.awaiting = Some((id, Instant::now() + limit));
        self.send_msg(Message::Ping(id.to_be_bytes().to_vec().into()))
            .await
    }

    fn pong_timed_out(&mut self) {
        let b = &mut self.lockstep;
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
        self.pending_warning = Some(message);
    }

    /// Virtual time, the caller's hang-up: first the app reads everything (the last pong);
    /// then, if turns went unanswered, the caller waits on the wall clock (its tail, within
    /// bounds) for replies still on their way. App audio that comes then was paced by the
    /// app's own clock: [`Failure::WallClockApp`]. `Some(end)` when the stream ended
    /// meanwhile.
    pub(super) async fn settle(
        &mut self,
        s: &mut Session,
        stop: &mut watch::Receiver<bool>,
        rx: &mut mpsc::Receiver<Inbound>,
        hangup: &Option<CallerHangup>,
    ) -> Option<End> {
        if let Err(e) = self.ping_if_sent(s).await {
            return Some(Self::send_failed(e, rx).await);
        }
        while let Some((_, limit)) = self.lockstep.awaiting {
            if let Some(end) = self.settle_step(s, stop, rx, limit).await {
                return end;
            }
        }
        let (unanswered, turns) = s.unanswered();
        if !s.bidirectional() || unanswered == 0 || !self.lockstep.on {
            return None;
        }
        let since = Instant::now();
        s.watch_late();
        self.lockstep.late = Some((since, None, None));
        let tail = hangup.as_ref().map_or(GRACE_MIN, |h| h.tail);
        let deadline = since + tail.clamp(GRACE_MIN, GRACE_MAX);
        loop {
            let first = self.lockstep.late.and_then(|l| l.1);
            let until = first.map_or(deadline, |f| deadline.min(f + LATE_SAMPLE));
            if Instant::now() >= until {
                break;
            }
            if let Some(end) = self.settle_step(s, stop, rx, until).await {
                if end.is_some() {
                    return end;
                }
                break;
            }
        }
        let (Some((media, bytes)), Some((since, Some(first), Some(last)))) =
            (s.late(), self.lockstep.late)
        else {
            return None;
        };
        let ms = |d: Duration| d.as_millis() as u64;
        let (audio_ms, wall_ms, after) = (bytes / 8, ms(last - first), first - since);
        let paced = late_pace(media, audio_ms, wall_ms).is_some_and(|p| p <= PACED_MAX);
        if paced || after >= DELAYED_MIN {
            s.fail(Failure::WallClockApp {
                url: s.url().to_string(),
                unanswered,
                turns,
                media,
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
        s: &mut Session,
        stop: &mut watch::Receiver<bool>,
        rx: &mut mpsc::Receiver<Inbound>,
        until: Instant,
    ) -> Option<Option<End>> {
        tokio::select! {
            biased;
            changed = stop.changed() => {
                (changed.is_err() || *stop.borrow()).then_some(None)
            }
            msg = rx.recv() => {
                let end = self.on_inbound(s, msg).await;
                self.warn_pending(s);
                if let Some(end) = end {
                    return Some(Some(end));
                }
                if let Err(e) = self.flush().await {
                    return Some(Some(Self::send_failed(e, rx).await));
                }
                None
            }
            _ = sleep_until(until) => {
                if self.lockstep.awaiting.is_some() {
                    self.pong_timed_out();
                    self.warn_pending(s);
                    None
                } else {
                    Some(None)
                }
            }
        }
    }

    /// Moves a warning found while waiting into the session's report.
    pub(super) fn warn_pending(&mut self, s: &mut Session) {
        if let Some(message) = self.pending_warning.take() {
            s.warn(&mut self.outbox(), message);
        }
    }
}
