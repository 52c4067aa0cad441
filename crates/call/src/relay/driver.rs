//! The relay session's tokio driver: the signed upgrade, then the socket, the clock and the
//! call's end pumped into the sans-IO session until it ends.

use std::time::Duration;

use dialtone_net::{Net, SocketOptions, Tunnels, WsError};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::capture::RelayCapture;
use super::{RelayConfig, RelayEvent, RelayOutput, RelayReport, RelaySession};
use crate::report::EventKind;
// The upgrade may take as long as a Media Stream's.
use crate::stream::CONNECT_TIMEOUT;
use crate::timeline::Timeline;

/// Where the session runs and who signs its upgrade.
pub(crate) struct RelayLink<'a> {
    /// The transport.
    pub(crate) net: &'a Net,
    /// Public origins mapped to local ones.
    pub(crate) tunnels: &'a Tunnels,
    /// The relay URL, as resolved from the TwiML.
    pub(crate) url: &'a str,
    /// Signs the upgrade.
    pub(crate) auth_token: &'a str,
    /// The call's timeline, for the session's steps.
    pub(crate) timeline: &'a Timeline,
}

/// Opens the socket and runs the session until it ends or the call does (`end` set: the
/// caller hung up, the call's time ran out); its report (which says when it ended). `Err` when
/// the socket could not be opened.
pub(crate) async fn run(
    link: RelayLink<'_>,
    cfg: RelayConfig,
    mut end: watch::Receiver<Option<String>>,
) -> Result<RelayReport, String> {
    let headers = dialtone_net::upgrade_headers(link.auth_token, link.url);
    let cap = RelayCapture::new(link.timeline, &cfg.setup.session_id);
    let handshake = link
        .net
        .connect_ws(link.tunnels, link.url, &headers, SocketOptions::default());
    let (ws, _route) = match timeout(CONNECT_TIMEOUT, handshake).await {
        Err(_) => {
            let cause = format!(
                "no answer to the upgrade within {} s",
                CONNECT_TIMEOUT.as_secs()
            );
            cap.upgrade(link.url, &headers, None, Some(&cause));
            return Err(cause);
        }
        Ok(Err(WsError::Refused(status))) => {
            let cause = format!("the upgrade was refused with HTTP {status}");
            cap.upgrade(link.url, &headers, Some(status), Some(&cause));
            return Err(cause);
        }
        Ok(Err(e)) => {
            cap.upgrade(link.url, &headers, None, Some(&e.to_string()));
            return Err(e.to_string());
        }
        Ok(Ok(ws)) => ws,
    };
    cap.upgrade(link.url, &headers, Some(101), None);
    let (mut sink, mut stream) = ws.split();
    let opened = Instant::now();
    let mut session = RelaySession::new(cfg);
    link.timeline.emit(EventKind::Relay(RelayEvent::Connected {
        url: link.url.to_string(),
        session_id: session.session_id().to_string(),
    }));
    let mut out = Vec::new();
    session.open(&mut out);
    loop {
        let mut closing = false;
        let mut broken = false;
        for o in std::mem::take(&mut out) {
            match o {
                RelayOutput::Event(e) => {
                    link.timeline.emit(EventKind::Relay(e));
                }
                RelayOutput::Send(text) => {
                    cap.sent(&text);
                    broken = broken || sink.send(Message::text(text)).await.is_err();
                }
                RelayOutput::Close { code, reason } => {
                    closing = true;
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.clone().into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    cap.closed("dialtone", Some(code), &reason);
                }
            }
        }
        if broken && session.end().is_none() {
            cap.closed("dropped", None, "");
            session.on_closed(opened.elapsed(), &mut out);
            continue;
        }
        if closing || session.end().is_some() {
            break;
        }
        let deadline = session.poll_timeout().map(|d| opened + d);
        tokio::select! {
            message = stream.next() => {
                let now = opened.elapsed();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        cap.received(&text);
                        session.on_message(now, &text, &mut out);
                    }
                    // Not text: Twilio cannot identify it.
                    Some(Ok(Message::Binary(_))) => session.on_message(now, "(binary)", &mut out),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        cap.closed_by_app(frame.as_ref());
                        session.on_closed(now, &mut out);
                    }
                    Some(Err(_)) | None => {
                        cap.closed("dropped", None, "");
                        session.on_closed(now, &mut out);
                    }
                }
            }
            _ = sleep_until(deadline.unwrap_or_else(|| opened + Duration::from_secs(86_400))) => {
                session.on_timeout(opened.elapsed(), &mut out);
            }
            changed = end.changed() => {
                if changed.is_err() || end.borrow().is_some() {
                    session.hang_up(opened.elapsed(), &mut out);
                }
            }
        }
    }
    // The app gets a moment to close its side; the session's result does not wait on it.
    let _ = timeout(Duration::from_millis(200), sink.close()).await;
    Ok(session.report().clone())
}
