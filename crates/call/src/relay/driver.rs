//! The relay session's tokio driver: the signed upgrade, then the socket, the clock and the
//! call's end pumped into the sans-IO session until it ends.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_net::{Net, SocketOptions, Tunnels, WsError};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
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
    /// Where the caller's audio starts when not at the socket's opening (the answer, for a
    /// `serve` caller leg): what it says is heard from where it is by then.
    pub(crate) caller_epoch: Option<Instant>,
    /// A `play` fetch's bound (the webhooks').
    pub(crate) fetch_timeout: Duration,
    /// The most of one `play`'s audio read (the call's length, at most `<Play>`'s bound).
    pub(crate) play_max: Duration,
    /// The call's longest length: the heard track's bound.
    pub(crate) max_duration: Duration,
}

/// What a session that ran gives back: its report and, when recording, what the caller
/// heard (8 kHz μ-law from the socket's opening).
pub(crate) struct RelayRun {
    pub(crate) report: RelayReport,
    pub(crate) heard: Option<Vec<u8>>,
}

/// Most bytes of decoded `play` audio a session keeps (μ-law and base64, 376 bytes a frame:
/// about 27 minutes), once to reuse and once for the heard track: past it, a source is
/// fetched again each time it is played, and a play's sound on the heard track is the
/// simulated voice.
const FETCHED_BYTES: usize = 64 << 20;

/// `play` fetches under way at once (each may read up to `<Play>`'s bound): the rest wait.
const FETCHING_AT_ONCE: usize = 4;

/// The session's `play` fetches: at most [`FETCHING_AT_ONCE`] under way, each source's
/// audio kept to reuse and each play's for the heard track, within [`FETCHED_BYTES`] each.
struct Plays<'a> {
    running: FuturesUnordered<BoxFuture<'a, Fetched>>,
    waiting: VecDeque<(u32, String)>,
    fetched: HashMap<String, Arc<FrameSet>>,
    fetched_bytes: usize,
    /// Each play's audio, by id (when recording).
    heard: HashMap<u32, Arc<FrameSet>>,
    heard_bytes: usize,
    record: bool,
}

impl<'a> Plays<'a> {
    fn new(record: bool) -> Self {
        Plays {
            running: FuturesUnordered::new(),
            waiting: VecDeque::new(),
            fetched: HashMap::new(),
            fetched_bytes: 0,
            heard: HashMap::new(),
            heard_bytes: 0,
            record,
        }
    }

    /// Play `id` wants `url`: from what is kept, else fetched now or once a fetch ends.
    fn request(&mut self, link: &RelayLink<'a>, id: u32, url: String) {
        if let Some(audio) = self.fetched.get(&url) {
            let audio = Ok(Arc::clone(audio));
            self.running.push(async move { (id, url, audio) }.boxed());
        } else if self.running.len() < FETCHING_AT_ONCE {
            self.running.push(fetch_play(link, id, url));
        } else {
            self.waiting.push_back((id, url));
        }
    }

    /// A fetch ended: its play's id and the audio's length (or why not); the next waiting
    /// fetch starts.
    fn done(
        &mut self,
        link: &RelayLink<'a>,
        (id, url, audio): Fetched,
    ) -> (u32, Result<Duration, String>) {
        let once = audio.as_ref().map(|a| a.duration()).map_err(Clone::clone);
        if let Ok(a) = audio {
            let size = a.len() * 376;
            let reused = self.fetched.get(&url).is_some_and(|f| Arc::ptr_eq(f, &a));
            if self.record && (reused || self.heard_bytes + size <= FETCHED_BYTES) {
                self.heard_bytes += if reused { 0 } else { size };
                self.heard.insert(id, Arc::clone(&a));
            }
            if !reused && self.fetched_bytes + size <= FETCHED_BYTES {
                self.fetched_bytes += size;
                self.fetched.insert(url, a);
            }
        }
        // After keeping this audio, so a waiting play of the same source reuses it.
        if let Some((next, next_url)) = self.waiting.pop_front() {
            self.request(link, next, next_url);
        }
        (id, once)
    }
}

/// A `play`'s audio, fetched and decoded as `<Play>`'s is.
type Fetched = (u32, String, Result<Arc<FrameSet>, String>);

/// Fetches play `id` from `url` through the call's tunnels.
fn fetch_play<'a>(link: &RelayLink<'a>, id: u32, url: String) -> BoxFuture<'a, Fetched> {
    let (net, tunnels) = (link.net, link.tunnels);
    let (timeout, max) = (link.fetch_timeout, link.play_max);
    async move {
        let audio = match url::Url::parse(&url) {
            Ok(parsed) => crate::fetch::fetch_audio(net, tunnels, parsed, timeout, max)
                .await
                .map(|a| Arc::new(FrameSet::from_pcm(&a.pcm))),
            Err(e) => Err(format!("not a URL: {e}")),
        };
        (id, url, audio)
    }
    .boxed()
}

/// Opens the socket and runs the session until it ends or the call does (`end` set: the
/// caller hung up, the call's time ran out); its report (which says when it ended). `Err` when
/// the socket could not be opened.
pub(crate) async fn run(
    link: RelayLink<'_>,
    cfg: RelayConfig,
    mut end: watch::Receiver<Option<String>>,
) -> Result<RelayRun, String> {
    let record = cfg.record;
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
        // Through a tunnel, the cause names where the mapping led (as a Media Stream's).
        Ok(Err(e)) => {
            cap.upgrade(link.url, &headers, None, Some(&e.to_string()));
            let via = url::Url::parse(link.url)
                .ok()
                .and_then(|u| link.tunnels.route(&u).via());
            return Err(match via {
                Some(v) => format!("{e} (connecting via the tunnel to {v})"),
                None => e.to_string(),
            });
        }
        Ok(Ok(ws)) => ws,
    };
    cap.upgrade(link.url, &headers, Some(101), None);
    let (mut sink, mut stream) = ws.split();
    let opened = Instant::now();
    let mut cfg = cfg;
    if let Some(epoch) = link.caller_epoch {
        heard_from(&mut cfg, opened.saturating_duration_since(epoch));
    }
    let mut session = RelaySession::new(cfg);
    link.timeline.emit(EventKind::Relay(RelayEvent::Connected {
        url: link.url.to_string(),
        session_id: session.session_id().to_string(),
    }));
    let mut out = Vec::new();
    session.open(&mut out);
    let mut plays = Plays::new(record);
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
                RelayOutput::Fetch { id, url } => plays.request(&link, id, url),
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
            Some(done) = plays.running.next(), if !plays.running.is_empty() => {
                let (id, once) = plays.done(&link, done);
                session.on_play_ready(opened.elapsed(), id, once, &mut out);
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
    let report = session.report().clone();
    let heard = record.then(|| {
        let until = report
            .end
            .as_ref()
            .map_or(opened.elapsed(), |e| Duration::from_secs_f64(e.at_ms / 1e3));
        super::heard::render(session.heard(), &plays.heard, until, link.max_duration)
    });
    Ok(RelayRun { report, heard })
}

/// Moves the caller's turns and digits to the socket's clock when its audio started `before`
/// the socket opened: a turn over by then was not heard (dropped), one under way is heard
/// from the opening, as a recognizer joining late would.
fn heard_from(cfg: &mut RelayConfig, before: Duration) {
    let off = before.as_millis().min(u128::from(u32::MAX)) as u32;
    cfg.turns.retain(|t| t.end_ms > off);
    for t in &mut cfg.turns {
        t.start_ms = t.start_ms.saturating_sub(off);
        t.end_ms -= off;
    }
    cfg.digits.retain(|(t, _)| *t >= before);
    for (t, _) in &mut cfg.digits {
        *t -= before;
    }
}
