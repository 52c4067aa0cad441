//! A captured ConversationRelay session replayed: the app's relay socket opened with a signed
//! upgrade (as the call engine opens it: the URL as written, through the same connect and
//! tunnels as a stream), every captured `relay_out` (`setup`, `prompt`, `dtmf`, `interrupt`,
//! `error`) sent byte for byte at its captured offset from `relay_open` (or, with `--fast`, as
//! soon as the app has sent what the capture shows before it), the app's messages read
//! concurrently, and the session ended as dialtone ends one: closed (1000) as soon as the app
//! sends `end`; else at the capture's close.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{Message, protocol::CloseFrame};

use crate::ReplayError;
use crate::capture::CapturedRelay;
use crate::stream::{
    EXTRA_KEPT, End, FAST_WAIT, Progress, Received, StreamOpts, WRITE_STALL, at_offset, connect,
    read_app,
};

/// The replayed relay session.
#[derive(Debug)]
pub(crate) struct RelayRun {
    /// `relay_out` messages sent.
    pub(crate) sent: usize,
    /// When each was sent, in ms after the socket opened.
    pub(crate) sent_at: Vec<f64>,
    pub(crate) received: Vec<Received>,
    pub(crate) received_not_kept: u64,
    pub(crate) binary_frames: u64,
    pub(crate) end: End,
    /// `relay_out` messages sent when the end happened.
    pub(crate) end_after_out: usize,
    /// The app sent `end` (dialtone then closed with 1000).
    pub(crate) app_sent_end: bool,
}

/// Connects and replays `cap`. An upgrade the app refuses comes back as `Ok(Err(status))`.
pub(crate) async fn replay(
    opts: &StreamOpts<'_>,
    cap: &CapturedRelay,
) -> Result<Result<RelayRun, u16>, ReplayError> {
    let ws = match connect(opts).await? {
        Ok(ws) => ws,
        Err(status) => return Ok(Err(status)),
    };
    let open = Instant::now();
    let (mut sink, source) = ws.split();
    let sent = Arc::new(AtomicUsize::new(0));
    let (progress_tx, mut progress) = watch::channel(Progress::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let keep = cap.socket.ins.len() + EXTRA_KEPT;
    let reader = tokio::spawn(read_app(
        source,
        open,
        keep,
        sent.clone(),
        progress_tx,
        stop_rx,
        |text| crate::relay_compare::message_type(text) == "end",
    ));

    let mut sent_at = Vec::with_capacity(cap.socket.outs.len());
    let mut end = None;
    for out in &cap.socket.outs {
        if opts.fast {
            wait_for(&mut progress, |p| p.received >= out.ins_before, FAST_WAIT).await;
        } else {
            tokio::select! {
                _ = sleep_until(at_offset(open, out.offset_ms)) => {}
                _ = app_done(&mut progress) => {}
            }
        }
        if progress.borrow().done() {
            break;
        }
        sent.fetch_add(1, Ordering::SeqCst);
        sent_at.push(open.elapsed().as_secs_f64() * 1e3);
        match timeout(
            WRITE_STALL,
            sink.send(Message::Text(out.text.as_str().into())),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                let _ = timeout(opts.grace, app_done(&mut progress)).await;
                if progress.borrow().ended.is_none() {
                    end = Some(End::Dropped);
                }
                break;
            }
            Err(_) => {
                end = Some(End::Stalled);
                break;
            }
        }
    }
    if end.is_none() && !progress.borrow().done() {
        wait_for_captured_close(opts, cap, open, &mut progress).await;
    }
    let p = *progress.borrow();
    let mut end_after_out = sent.load(Ordering::SeqCst);
    let end = match (end, p.ended, p.end_seen) {
        (Some(e), _, _) => e,
        // The app closed or dropped the socket first.
        (None, Some((how, at)), _) => {
            end_after_out = at;
            how.map_or(End::Dropped, End::AppClosed)
        }
        // The app sent `end`: dialtone closes, as the session does.
        (None, None, Some(at)) => {
            end_after_out = at;
            close(&mut sink, &mut progress, 1000).await;
            End::DialtoneClosed(Some(1000))
        }
        // Neither: the capture's own close, when it was dialtone's (the caller hung up, or
        // too many malformed messages); else the app kept the socket open.
        (None, None, None) => match cap.socket.close.as_ref() {
            Some(c) if c.by == "dialtone" => {
                let code = c.code.unwrap_or(1000);
                close(&mut sink, &mut progress, code).await;
                End::DialtoneClosed(Some(code))
            }
            None => {
                close(&mut sink, &mut progress, 1000).await;
                End::DialtoneClosed(Some(1000))
            }
            Some(_) => {
                close(&mut sink, &mut progress, 1000).await;
                End::KeptOpen
            }
        },
    };
    let _ = timeout(Duration::from_secs(1), sink.close()).await;
    let _ = stop_tx.send(());
    let out = reader.await.unwrap_or_default();
    let app_sent_end = progress.borrow().end_seen.is_some();
    Ok(Ok(RelayRun {
        sent: sent.load(Ordering::SeqCst),
        sent_at,
        received: out.received,
        received_not_kept: out.not_kept,
        binary_frames: out.binary,
        end,
        end_after_out,
        app_sent_end,
    }))
}

/// Everything captured was sent and the app is not done: wait for it as long as the capture
/// did — real time: until the capture's close time; `--fast`: until the app has sent what
/// the capture holds before its close — plus `--grace` when the capture's session ended by the
/// app's doing (its `end`, close or drop).
async fn wait_for_captured_close(
    opts: &StreamOpts<'_>,
    cap: &CapturedRelay,
    open: Instant,
    progress: &mut watch::Receiver<Progress>,
) {
    let close = cap.socket.close.as_ref();
    let app_ended = close.is_none_or(|c| c.by != "dialtone") || captured_end(cap);
    let grace = if app_ended {
        opts.grace
    } else {
        Duration::ZERO
    };
    if opts.fast {
        let want = close.map_or(cap.socket.ins.len(), |c| c.ins_before);
        wait_for(progress, |p| p.received >= want, FAST_WAIT).await;
        if !progress.borrow().done() {
            let _ = timeout(grace, app_done(progress)).await;
        }
        return;
    }
    let at = at_offset(open, close.map_or(0.0, |c| c.offset_ms)).max(Instant::now());
    let until = at.checked_add(grace).unwrap_or(at);
    let _ = tokio::time::timeout_at(until, app_done(progress)).await;
}

/// The capture's app sent `end`.
pub(crate) fn captured_end(cap: &CapturedRelay) -> bool {
    cap.socket
        .ins
        .iter()
        .any(|i| crate::relay_compare::message_type(&i.text) == "end")
}

/// Sends our close frame and lets the app answer it.
async fn close(
    sink: &mut (impl SinkExt<Message> + Unpin),
    progress: &mut watch::Receiver<Progress>,
    code: u16,
) {
    let frame = CloseFrame {
        code: code.into(),
        reason: "".into(),
    };
    let _ = timeout(WRITE_STALL, sink.send(Message::Close(Some(frame)))).await;
    let _ = timeout(
        Duration::from_secs(1),
        progress.wait_for(|p| p.ended.is_some()),
    )
    .await;
}

/// Waits until `cond` holds or the app is done; false on timeout.
async fn wait_for(
    progress: &mut watch::Receiver<Progress>,
    cond: impl Fn(&Progress) -> bool,
    limit: Duration,
) -> bool {
    timeout(limit, progress.wait_for(|p| cond(p) || p.done()))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Resolves when the app sent `end`, closed or dropped the socket.
async fn app_done(progress: &mut watch::Receiver<Progress>) {
    if progress.wait_for(Progress::done).await.is_err() {
        std::future::pending::<()>().await;
    }
}
