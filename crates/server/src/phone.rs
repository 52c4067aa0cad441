//! `GET /phone/ws`: the page's phone (the protocol is in docs/softphone.md). The browser
//! sends its microphone as 16-bit PCM at its own rate, its keys, mute and hang-up; dialtone
//! resamples the audio to 8 kHz μ-law into the call's live caller and sends back, every
//! 20 ms, what the caller hears, with the call's steps as they happen.
//!
//! The page is the only way in: the WebSocket needs the token the page was rendered with
//! (an HMAC of the account SID under its auth token: with web auth on, only a viewer who had
//! the account's credentials has it; `--no-web-auth` opens the page, and so the phone, to
//! whoever reaches the port) and an `Origin` that is the page's own on this machine's or the
//! public URL's host name, so another site open in the same browser, or one on a name that
//! resolves here, cannot place calls through it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dialtone_audio::resample::Streaming8k;
use dialtone_call::live::LiveCaller;
use dialtone_call::{CallEvent, EventKind, EventSink};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::Shared;
use crate::config::Account;
use crate::error::ApiError;
use crate::phone_call::{self, PHONE_MAX, PhoneCall};

/// Largest message the page may send: 32 KiB of PCM is 340 ms at 48 kHz, far above the
/// 20 ms batches it sends.
const MAX_MESSAGE: usize = 32 * 1024;
/// The first message (what to call) must come this soon.
const FIRST_MESSAGE: Duration = Duration::from_secs(10);
/// Steps queued for the page; a page too slow to read them loses the excess.
const STEPS_QUEUED: usize = 512;
/// A page that cannot take a message for this long is gone: the call is hung up.
const SEND_STALL: Duration = Duration::from_secs(2);
/// Microphone rates accepted (what `AudioContext.sampleRate` can be).
const RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// The WebSocket's path with its credentials, for the page of `viewer` (the first account
/// when the page is open to all); `None` without an account.
pub(crate) fn ws_path(shared: &Shared, viewer: Option<&Account>) -> Option<String> {
    let account = viewer.or_else(|| shared.config.accounts.first())?;
    let token: String = form_urlencoded::byte_serialize(token(account).as_bytes()).collect();
    Some(format!("/phone/ws?account={}&token={token}", account.sid))
}

fn token(account: &Account) -> String {
    dialtone_protocol::signing::signature(&account.auth_token, &token_text(account), &[])
}

fn token_text(account: &Account) -> String {
    format!("dialtone-phone:{}", account.sid)
}

#[derive(Deserialize)]
pub(crate) struct PhoneQuery {
    account: String,
    token: String,
}

/// The page's first message.
#[derive(Deserialize)]
struct CallRequest {
    event: String,
    to: Option<String>,
    url: Option<String>,
    from: Option<String>,
    rate: u32,
}

/// What the page sends during the call (text).
#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Control {
    Dtmf {
        digit: String,
    },
    /// What the caller says, typed (see `LiveCaller::say`).
    Say {
        text: String,
    },
    Mute {
        muted: bool,
    },
    Hangup,
}

fn forbidden(message: &str) -> ApiError {
    ApiError::Refused {
        status: StatusCode::FORBIDDEN,
        code: 20403,
        message: message.to_string(),
    }
}

/// `GET /phone/ws?account=…&token=…`.
pub(crate) async fn ws(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<PhoneQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let account = shared.account(&q.account).filter(|a| {
        dialtone_protocol::signing::validate(&a.auth_token, &token_text(a), &[], &q.token)
    });
    let Some(account) = account.cloned() else {
        return forbidden("the phone needs the token of the page it was opened from")
            .into_response();
    };
    if !same_origin(&headers, &shared.public_url) {
        return forbidden("the phone only answers its own page (Origin differs from Host)")
            .into_response();
    }
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(shared, account, socket))
}

/// The upgrade's `Origin` names the host it was sent to (a browser always sends it), and
/// that host is this machine or the server's public URL: a page on another name that
/// resolves here (DNS rebinding) is not the page.
fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    let (Some(host), Some(origin)) = (host, origin) else {
        return false;
    };
    let same = origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(host));
    let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
    let public = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    let ours = matches!(name, "127.0.0.1" | "localhost" | "[::1]")
        || public.is_some_and(|p| p.eq_ignore_ascii_case(name));
    same && ours
}

/// Sends one message; false when the page is gone or stopped reading (a send that cannot
/// complete within `SEND_STALL`).
async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_STALL, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

async fn send_json(socket: &mut WebSocket, value: serde_json::Value) -> bool {
    send(socket, Message::Text(value.to_string().into())).await
}

/// One page's call, from its first message to the end.
async fn session(shared: Arc<Shared>, account: Account, mut socket: WebSocket) {
    let request = match first_message(&mut socket).await {
        Ok(r) => r,
        Err(e) => {
            send_json(&mut socket, json!({"event": "error", "message": e})).await;
            return close(socket).await;
        }
    };
    let placed = start(&shared, &account, &request).await;
    let (call, steps, live) = match placed {
        Ok(p) => p,
        Err(e) => {
            send_json(&mut socket, json!({"event": "error", "message": e})).await;
            return close(socket).await;
        }
    };
    let (from, to) = shared
        .store
        .call(&call.sid)
        .map(|c| (c.from, c.to))
        .unwrap_or_default();
    let hello = json!({"event": "call", "callSid": call.sid, "from": from, "to": to});
    if send_json(&mut socket, hello).await
        && send_json(&mut socket, json!({"event": "status", "status": "ringing"})).await
    {
        if let Some(broken) = talk(&mut socket, call, steps, &live, request.rate).await {
            // Said once more if the socket still carries it; the close code names it too.
            let e = json!({"event": "error", "message": broken.why});
            send_json(&mut socket, e).await;
            return close_with(socket, broken.code, &broken.why).await;
        }
    } else {
        call.handle.hangup("the page's phone went away");
        live.hang_up();
    }
    close(socket).await;
}

/// Closes normally and reads until the page answers the close: dropping a socket the page
/// is still sending its microphone to would reset the connection, and a browser may then
/// lose the `end` it had not read yet.
async fn close(socket: WebSocket) {
    close_with(socket, 1000, "the call ended").await;
}

/// [`close`] with `code` and `reason` (cut to the 123 bytes a close frame holds).
async fn close_with(mut socket: WebSocket, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let bye = axum::extract::ws::CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    if !send(&mut socket, Message::Close(Some(bye))).await {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

/// Reads the page's `call` message.
async fn first_message(socket: &mut WebSocket) -> Result<CallRequest, String> {
    let msg = tokio::time::timeout(FIRST_MESSAGE, socket.recv())
        .await
        .map_err(|_| format!("no call request within {} s", FIRST_MESSAGE.as_secs()))?;
    let Some(Ok(Message::Text(text))) = msg else {
        return Err("the first message must be the call request (text)".into());
    };
    let req: CallRequest =
        serde_json::from_str(&text).map_err(|e| format!("bad call request: {e}"))?;
    if req.event != "call" {
        return Err(format!(
            "the first message must be a call, not {:?}",
            req.event
        ));
    }
    if !RATES.contains(&req.rate) {
        return Err(format!(
            "rate {} Hz is out of range ({} to {} Hz)",
            req.rate,
            RATES.start(),
            RATES.end()
        ));
    }
    Ok(req)
}

type Placed = (PhoneCall, mpsc::Receiver<String>, Arc<LiveCaller>);

/// Places the call the page asked for, its steps going to the returned queue.
async fn start(
    shared: &Arc<Shared>,
    account: &Account,
    req: &CallRequest,
) -> Result<Placed, String> {
    let dialed = phone_call::dial(
        shared,
        account,
        req.to.as_deref(),
        req.url.as_deref(),
        req.from.as_deref(),
    )?;
    let permit = shared.permits.clone().try_acquire_owned().map_err(|_| {
        format!(
            "{} calls are running, the most this server runs at once",
            shared.config.max_concurrent_calls
        )
    })?;
    let live = LiveCaller::new(PHONE_MAX);
    let (tx, rx) = mpsc::channel(STEPS_QUEUED);
    let events: EventSink = Arc::new(move |e: &CallEvent| {
        for msg in messages(e) {
            // A page this far behind loses steps; the call's card on the page has them all.
            let _ = tx.try_send(msg);
        }
    });
    let call = phone_call::place(shared, dialed, live.clone(), events, permit).await?;
    Ok((call, rx, live))
}

/// What the page is told of an event: the step, and the status when it changes.
fn messages(e: &CallEvent) -> Vec<String> {
    let t = e.kind.text();
    let mut out = vec![
        json!({"event": "step", "at": e.at.as_secs_f64(), "kind": t.step, "level": t.level,
               "text": t.words})
        .to_string(),
    ];
    if matches!(e.kind, EventKind::Answered) {
        out.push(json!({"event": "status", "status": "in-progress"}).to_string());
    }
    out
}

/// The call: the page's audio and controls in, steps and what the caller hears out, until
/// the call ends.
async fn talk(
    socket: &mut WebSocket,
    call: PhoneCall,
    mut steps: mpsc::Receiver<String>,
    live: &LiveCaller,
    rate: u32,
) -> Option<Broken> {
    let mut resampler = Streaming8k::new(rate);
    let mut broken = None;
    let (mut pcm, mut resampled, mut mulaw) = (Vec::new(), Vec::new(), Vec::new());
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    clock.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut page_open = true;
    let PhoneCall {
        handle, mut done, ..
    } = call;
    // The call's end first: a <Gather> woken by the live caller's hang-up finds it set.
    let hang_up = |why: &str| {
        handle.hangup(why.to_string());
        live.hang_up();
    };
    let (status, reason) = loop {
        tokio::select! {
            msg = socket.recv(), if page_open => match msg {
                // A page sending faster than real time fills the buffer: past it the audio
                // would be dropped anyway, so it is not resampled (a core's worth otherwise).
                Some(Ok(Message::Binary(_))) if live.buffer_full() => {}
                Some(Ok(Message::Binary(b))) => {
                    pcm.clear();
                    pcm.extend(
                        b.chunks_exact(2)
                            .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0),
                    );
                    resampled.clear();
                    resampler.push(&pcm, &mut resampled);
                    mulaw.clear();
                    mulaw.extend(resampled.iter().map(|&x| {
                        dialtone_audio::mulaw::encode((x.clamp(-1.0, 1.0) * 32767.0) as i16)
                    }));
                    live.push_audio(&mulaw);
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::Dtmf { digit }) => match key(&digit) {
                        Some(c) => live.key(c),
                        None => {
                            let shown: String = digit.chars().take(8).collect();
                            let e = json!({"event": "error", "message":
                                format!("{shown:?} is not a key (0-9, *, #)")});
                            if !send_json(socket, e).await {
                                page_open = false;
                                hang_up("the page's phone went away");
                            }
                        }
                    },
                    Ok(Control::Say { text }) => live.say(&text),
                    Ok(Control::Mute { muted }) => live.set_muted(muted),
                    Ok(Control::Hangup) => hang_up("the caller hung up (the page's phone)"),
                    Err(e) => {
                        let e = json!({"event": "error", "message": format!("bad message: {e}")});
                        if !send_json(socket, e).await {
                            page_open = false;
                            hang_up("the page's phone went away");
                        }
                    }
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let b = Broken::from(e);
                    page_open = false;
                    hang_up(&format!("the page's phone broke the WebSocket protocol: {}", b.why));
                    broken = Some(b);
                }
                None => {
                    page_open = false;
                    hang_up("the page's phone went away");
                }
            },
            Some(step) = steps.recv() => {
                if page_open && !send(socket, Message::Text(step.into())).await {
                    page_open = false;
                    hang_up("the page's phone went away");
                }
            }
            _ = clock.tick() => {
                if live.epoch().is_none() || !page_open {
                    continue;
                }
                live.tick(Instant::now());
                for frame in live.take_heard() {
                    let mut bytes = Vec::with_capacity(2 * frame.len());
                    for &c in &frame {
                        bytes.extend_from_slice(&dialtone_audio::mulaw::decode(c).to_le_bytes());
                    }
                    if !send(socket, Message::Binary(bytes.into())).await {
                        page_open = false;
                        hang_up("the page's phone went away");
                        break;
                    }
                }
            }
            r = &mut done => break r.unwrap_or_else(|e| {
                (dialtone_protocol::webhook::CallStatus::Failed, format!("the call's task failed: {e}"))
            }),
        }
    };
    if broken.is_some() {
        return broken;
    }
    // Steps the call emitted last go before its end.
    while let Ok(step) = steps.try_recv() {
        if !page_open || !send(socket, Message::Text(step.into())).await {
            return None;
        }
    }
    if page_open {
        let j = live.stats();
        let end = json!({"event": "end", "status": status.as_str(), "reason": reason,
            "jitter": {"slots": j.slots, "underruns": j.underruns, "droppedMs": j.dropped_bytes / 8}});
        send_json(socket, end).await;
    }
    None
}

/// How the page broke the WebSocket protocol, and the close code that says so.
struct Broken {
    code: u16,
    why: String,
}

impl From<axum::Error> for Broken {
    fn from(e: axum::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as WsError;
        let inner = e.into_inner();
        // RFC 6455 §7.4.1: 1009 too big to process, 1007 not UTF-8 text, 1002 the rest.
        let code = match inner.downcast_ref::<WsError>() {
            Some(WsError::Capacity(_)) => 1009,
            Some(WsError::Utf8(_)) => 1007,
            _ => 1002,
        };
        Self {
            code,
            why: inner.to_string(),
        }
    }
}

/// A keypad key: 0-9, * or # (what a phone keys and Media Streams carry).
fn key(digit: &str) -> Option<char> {
    let mut chars = digit.chars();
    let c = chars.next()?;
    (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#')).then_some(c)
}
