//! Steps 2–4: the stream's WebSocket opened with a signed upgrade (as the call engine does),
//! every captured `ws_out` sent byte for byte at its captured offset (or back to back with
//! `--fast`), the app's messages read concurrently, and the capture's close reproduced.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dialtone_net::{Net, SocketOptions, Tunnels, WsError};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{Message, protocol::CloseFrame};

use crate::ReplayError;
use crate::capture::CapturedStream;

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Same bound as the call engine: a write blocked this long means the app stopped reading.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(5);
/// `--fast`: how long to wait for an app message the capture shows before the next send.
/// After one such wait runs out the app is behind the capture: later sends wait at most
/// [`CATCH_UP`] each until it catches up (then full waits again), so a reply that comes a
/// few frames late lands where it would have in real time; after another `FAST_WAIT` of
/// such short waits the app has diverged, and later sends no longer wait.
pub(crate) const FAST_WAIT: Duration = Duration::from_secs(2);
/// `--fast`, app behind the capture: one frame's worth of real time per send.
const CATCH_UP: Duration = Duration::from_millis(20);
/// App messages kept beyond the captured count (the rest are only counted), so a runaway
/// app costs bounded memory.
pub(crate) const EXTRA_KEPT: usize = 10_000;

/// An app message received during the replay.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) offset_ms: f64,
    pub(crate) text: String,
    /// `ws_out` messages sent (or being sent) when it arrived.
    pub(crate) after_out: usize,
}

/// How the replayed stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The app sent a close frame.
    AppClosed(Option<u16>),
    /// The connection broke without a close frame.
    Dropped,
    /// A write blocked for [`WRITE_STALL`].
    Stalled,
    /// We closed it with this code, as the capture did; `None`: we dropped the connection
    /// without a close frame, as the capture's injected `drop` fault did.
    DialtoneClosed(Option<u16>),
    /// The capture ended by the app's doing, but this app kept the socket open through the
    /// grace period.
    KeptOpen,
}

/// The replayed stream.
#[derive(Debug)]
pub(crate) struct Run {
    /// `ws_out` messages sent (attempted, like the capture, which records before sending).
    pub(crate) sent: usize,
    pub(crate) received: Vec<Received>,
    /// Text messages beyond the kept bound.
    pub(crate) received_not_kept: u64,
    pub(crate) binary_frames: u64,
    pub(crate) end: End,
    /// `ws_out` messages sent when the end happened.
    pub(crate) end_after_out: usize,
}

/// What the reader has seen so far (shared with the relay replay).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Progress {
    pub(crate) received: usize,
    /// The app sent a message its protocol calls the end (a relay `end`), with the captured
    /// outgoing messages sent at that moment; never for a Media Stream.
    pub(crate) end_seen: Option<usize>,
    /// The app's close (`Some(code)`) or drop (`None`), with the captured outgoing messages
    /// sent at that moment.
    pub(crate) ended: Option<(Option<Option<u16>>, usize)>,
}

impl Progress {
    /// The app is done: it sent its end, closed or dropped the socket.
    pub(crate) fn done(&self) -> bool {
        self.end_seen.is_some() || self.ended.is_some()
    }
}

/// What the reader kept.
#[derive(Default)]
pub(crate) struct ReaderOut {
    pub(crate) received: Vec<Received>,
    pub(crate) not_kept: u64,
    pub(crate) binary: u64,
}

/// Options of the stream step.
pub(crate) struct StreamOpts<'a> {
    pub(crate) url: &'a str,
    pub(crate) net: &'a Net,
    pub(crate) tunnels: &'a Tunnels,
    pub(crate) auth_token: &'a str,
    pub(crate) fast: bool,
    pub(crate) grace: Duration,
}

/// Connects and replays `cap`. An upgrade the app refuses with an HTTP status comes back as
/// `Ok(Err(status))`: that is the app answering differently, not bad input.
pub(crate) async fn replay(
    opts: &StreamOpts<'_>,
    cap: &CapturedStream,
) -> Result<Result<Run, u16>, ReplayError> {
    let ws = match connect(opts).await? {
        Ok(ws) => ws,
        Err(status) => return Ok(Err(status)),
    };
    let open = Instant::now();
    let (mut sink, source) = ws.split();
    let sent = Arc::new(AtomicUsize::new(0));
    let (progress_tx, mut progress) = watch::channel(Progress::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let keep = cap.ins.len() + EXTRA_KEPT;
    let reader = tokio::spawn(read_app(
        source,
        open,
        keep,
        sent.clone(),
        progress_tx,
        stop_rx,
        |_| false,
    ));

    let mut end = send_captured(opts, cap, open, &mut sink, &mut progress, &sent).await;
    if end.is_none() && progress.borrow().ended.is_none() {
        end = finish(opts, cap, open, &mut sink, &mut progress).await;
    }
    let mut end_after_out = sent.load(Ordering::SeqCst);
    let end = match (end, progress.borrow().ended) {
        (Some(e), _) => e,
        // The app's own close or drop came first: that is the end, where the reader saw it.
        (None, Some((how, at))) => {
            end_after_out = at;
            how.map_or(End::Dropped, End::AppClosed)
        }
        (None, None) => End::Dropped,
    };
    // Complete (or start) the close handshake before letting go of the socket, unless the
    // capture's end was a dropped connection.
    if end != End::DialtoneClosed(None) {
        let _ = timeout(Duration::from_secs(1), sink.close()).await;
    }
    let _ = stop_tx.send(());
    let out = reader.await.unwrap_or_default();
    Ok(Ok(Run {
        sent: sent.load(Ordering::SeqCst),
        received: out.received,
        received_not_kept: out.not_kept,
        binary_frames: out.binary,
        end,
        end_after_out,
    }))
}

/// Opens the stream's WebSocket with the upgrade signed as Twilio signs it. A refused
/// upgrade is `Ok(Err(status))`; no answer or no connection is the error.
pub(crate) async fn connect(
    opts: &StreamOpts<'_>,
) -> Result<Result<dialtone_net::Ws, u16>, ReplayError> {
    let connect_err = |cause: String| ReplayError::StreamUnreachable {
        url: opts.url.to_string(),
        cause,
    };
    // Signed as Twilio signs the upgrade: the stream URL, no parameters.
    let headers = dialtone_net::upgrade_headers(opts.auth_token, opts.url);
    // No Nagle (set by the connect): `--fast` waits on the app's answers, and a delayed
    // small write would add tens of milliseconds to every one of those round trips.
    let connect = opts
        .net
        .connect_ws(opts.tunnels, opts.url, &headers, SocketOptions::default());
    match timeout(CONNECT_TIMEOUT, connect).await {
        Err(_) => Err(connect_err(format!(
            "no answer to the upgrade within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(WsError::Refused(status))) => Ok(Err(status)),
        Ok(Err(e)) => Err(connect_err(e.to_string())),
        Ok(Ok((ws, _route))) => Ok(Ok(ws)),
    }
}

/// The reader task: keeps the app's text messages (up to `keep`) with the count of captured
/// outgoing messages sent at their arrival, reports progress (the first message `is_end`
/// calls the end, the app's close or drop), and returns what it read once `stop` fires.
pub(crate) async fn read_app<S, E>(
    mut source: S,
    open: Instant,
    keep: usize,
    sent: Arc<AtomicUsize>,
    progress_tx: watch::Sender<Progress>,
    mut stop_rx: oneshot::Receiver<()>,
    is_end: fn(&str) -> bool,
) -> ReaderOut
where
    S: futures_util::Stream<Item = Result<Message, E>> + Unpin,
{
    let mut out = ReaderOut::default();
    let end = loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stop_rx => return out,
            m = source.next() => m,
        };
        match msg {
            Some(Ok(Message::Text(t))) => {
                let at = sent.load(Ordering::SeqCst);
                let is_end = is_end(t.as_str());
                if out.received.len() < keep {
                    out.received.push(Received {
                        offset_ms: open.elapsed().as_secs_f64() * 1e3,
                        text: t.as_str().to_owned(),
                        after_out: at,
                    });
                } else {
                    out.not_kept += 1;
                }
                progress_tx.send_modify(|p| {
                    p.received += 1;
                    if is_end && p.end_seen.is_none() {
                        p.end_seen = Some(at);
                    }
                });
            }
            Some(Ok(Message::Binary(_))) => out.binary += 1,
            Some(Ok(Message::Close(frame))) => break Some(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    let at = sent.load(Ordering::SeqCst);
    progress_tx.send_modify(|p| p.ended = Some((end, at)));
    // Stay alive until told, so the sender's watch never sees a closed channel.
    let _ = stop_rx.await;
    out
}

/// Sends every captured `ws_out` at its captured offset (with `--fast`, once the app has
/// answered what the capture shows before it), counting each in `sent`. Stops early when
/// the app ends the stream; `Some` when a write found the socket dropped or stalled.
async fn send_captured(
    opts: &StreamOpts<'_>,
    cap: &CapturedStream,
    open: Instant,
    sink: &mut (impl SinkExt<Message> + Unpin),
    progress: &mut watch::Receiver<Progress>,
    sent: &AtomicUsize,
) -> Option<End> {
    let mut waits = opts.fast;
    // Short waits spent while the app is behind the capture (`None`: it is not).
    let mut behind: Option<Duration> = None;
    for out in &cap.outs {
        if opts.fast {
            if waits {
                let limit = behind.map_or(FAST_WAIT, |_| CATCH_UP);
                if wait_received(progress, out.ins_before, limit).await {
                    behind = None;
                } else {
                    let spent = behind.map_or(Duration::ZERO, |d| d + CATCH_UP);
                    behind = Some(spent);
                    waits = spent < FAST_WAIT;
                }
            }
        } else {
            let due = at_offset(open, out.offset_ms);
            tokio::select! {
                _ = sleep_until(due) => {}
                _ = app_ended(progress) => {}
            }
        }
        if progress.borrow().ended.is_some() {
            break;
        }
        sent.fetch_add(1, Ordering::SeqCst);
        match timeout(
            WRITE_STALL,
            sink.send(Message::Text(out.text.as_str().into())),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                // The socket is gone: the reader tells a close frame from a drop.
                let _ = timeout(opts.grace, app_ended(progress)).await;
                if progress.borrow().ended.is_none() {
                    return Some(End::Dropped);
                }
                break;
            }
            Err(_) => return Some(End::Stalled),
        }
    }
    None
}

/// Everything captured was sent and the app is still connected: reproduce the capture's
/// close. `None` when the app closed or dropped the socket first (the reader has the verdict).
async fn finish(
    opts: &StreamOpts<'_>,
    cap: &CapturedStream,
    open: Instant,
    sink: &mut (impl SinkExt<Message> + Unpin),
    progress: &mut watch::Receiver<Progress>,
) -> Option<End> {
    let close = cap.close.as_ref();
    if close.is_none_or(|c| c.by == "dialtone") {
        if opts.fast {
            let want = close.map_or(cap.ins.len(), |c| c.ins_before);
            wait_received(progress, want, FAST_WAIT).await;
        }
        if progress.borrow().ended.is_some() {
            return None;
        }
        if close.is_some_and(|c| c.code.is_none()) {
            // The capture's injected `drop`: the caller lets go of the socket, no close frame.
            return Some(End::DialtoneClosed(None));
        }
        // An incomplete capture (no ws_close) ends as a normal call would.
        let code = close.and_then(|c| c.code).unwrap_or(1000);
        let frame = CloseFrame {
            code: code.into(),
            reason: "".into(),
        };
        let _ = timeout(WRITE_STALL, sink.send(Message::Close(Some(frame)))).await;
        // Let the app answer the close, as the engine does, so its last messages arrive.
        let _ = timeout(Duration::from_secs(1), app_ended(progress)).await;
        return Some(End::DialtoneClosed(Some(code)));
    }
    // The app closed, dropped or stalled the capture's socket: wait until the capture's
    // close time (real time only) plus a grace for this app to do the same.
    let captured_at = if opts.fast {
        Instant::now()
    } else {
        let offset = close.map_or(0.0, |c| c.offset_ms.max(0.0));
        at_offset(open, offset).max(Instant::now())
    };
    let until = captured_at.checked_add(opts.grace).unwrap_or(captured_at);
    let _ = tokio::time::timeout_at(until, app_ended(progress)).await;
    if progress.borrow().ended.is_some() {
        None
    } else {
        Some(End::KeptOpen)
    }
}

/// Waits until the app has sent `n` messages or ended; false on timeout.
async fn wait_received(
    progress: &mut watch::Receiver<Progress>,
    n: usize,
    limit: Duration,
) -> bool {
    timeout(
        limit,
        progress.wait_for(|p| p.received >= n || p.ended.is_some()),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// Resolves when the app has closed or dropped the socket.
async fn app_ended(progress: &mut watch::Receiver<Progress>) {
    if progress.wait_for(|p| p.ended.is_some()).await.is_err() {
        // The reader is gone without a verdict; never resolve rather than spin.
        std::future::pending::<()>().await;
    }
}

/// `open` plus a capture offset in ms, clamped: the capture reader bounds offsets, and this
/// never panics whatever it is given (negative or NaN: `open`; too far: a year on).
pub(crate) fn at_offset(open: Instant, offset_ms: f64) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let d = Duration::try_from_secs_f64(offset_ms.max(0.0) / 1e3).map_or(FAR, |d| d.min(FAR));
    open.checked_add(d).unwrap_or(open)
}
