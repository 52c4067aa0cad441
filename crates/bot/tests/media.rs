//! `/media` over a real WebSocket: the upgrade's signature check, a two-turn call
//! from `audio/hello.wav` with marks echoed like Twilio does, barge-in, and shutdown.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dialtone_audio::{FrameSet, frames, wav};
use dialtone_bot::{BotConfig, DEFAULT_AUTH_TOKEN};
use dialtone_protocol::media::{self, AppMessage, StreamIds, Track};
use dialtone_protocol::signing;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const STREAM_SID: &str = "MZ0123456789abcdef0123456789abcdef";

async fn connect(addr: SocketAddr, signature: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut req = format!("ws://{addr}/media")
        .into_client_request()
        .expect("request");
    if let Some(sig) = signature {
        req.headers_mut()
            .insert(signing::HEADER, sig.parse().expect("header value"));
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Connects with a valid signature and sends `connected` + `start`, like Twilio.
async fn open_stream(addr: SocketAddr) -> Ws {
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, &format!("ws://{addr}/media"), &[]);
    let mut ws = connect(addr, Some(&sig))
        .await
        .expect("signed upgrade accepted");
    let ids = StreamIds {
        account_sid: "AC00000000000000000000000000000000".into(),
        call_sid: "CA0123456789abcdef0123456789abcdef".into(),
        stream_sid: STREAM_SID.into(),
    };
    let params = [("caller".to_owned(), "+15005550006".to_owned())];
    ws.send(Message::text(media::connected()))
        .await
        .expect("send");
    ws.send(Message::text(media::start(
        1,
        &ids,
        &[Track::Inbound],
        &params,
    )))
    .await
    .expect("send");
    ws
}

/// The caller side of a stream: frames go out as fast as the socket takes them, but
/// with the sequence numbers and timestamps of a real-time call (the bot's only clock).
struct Caller {
    ws: Ws,
    seq: u64,
    chunk: u64,
    /// Media timestamp of the next frame; Twilio's first inbound frame is not at 0.
    ts: u64,
}

impl Caller {
    async fn new(addr: SocketAddr) -> Self {
        Self {
            ws: open_stream(addr).await,
            seq: 2,
            chunk: 1,
            ts: 102,
        }
    }

    async fn send_frame(&mut self, payload_b64: &str) {
        let msg = media::media(
            self.seq,
            Track::Inbound,
            self.chunk,
            self.ts,
            payload_b64,
            STREAM_SID,
        );
        self.ws.send(Message::text(msg)).await.expect("send media");
        self.seq += 1;
        self.chunk += 1;
        self.ts += 20;
    }

    async fn send_audio(&mut self, audio: &FrameSet, frames: std::ops::Range<usize>) {
        for k in frames {
            self.send_frame(audio.b64(k)).await;
        }
    }

    async fn send_silence(&mut self, frames: usize) {
        for _ in 0..frames {
            self.send_frame(frames::silence_b64()).await;
        }
    }

    async fn echo_mark(&mut self, name: &str) {
        self.ws
            .send(Message::text(media::mark(self.seq, STREAM_SID, name)))
            .await
            .expect("send mark");
        self.seq += 1;
    }

    /// Next message from the bot, parsed as strictly as Twilio would.
    async fn recv(&mut self) -> AppMessage {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("bot answered within 10 s")
                .expect("stream open")
                .expect("websocket ok");
            match next {
                Message::Text(text) => {
                    return media::parse_app_message(text.as_str(), STREAM_SID)
                        .expect("valid app message");
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Reads one reply: its media messages up to its mark. Returns (media count, mark).
    async fn recv_reply(&mut self) -> (usize, String) {
        let mut media = 0;
        loop {
            match self.recv().await {
                AppMessage::Media { payload } => {
                    assert!(!payload.is_empty());
                    media += 1;
                }
                AppMessage::Mark { name } => return (media, name),
                AppMessage::Clear => panic!("unexpected clear after {media} media messages"),
            }
        }
    }
}

fn hello() -> FrameSet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audio/hello.wav");
    FrameSet::from_pcm(&wav::load_8k(&path).expect("audio/hello.wav loads"))
}

/// Index of the first frame of the 1.5 s pause between the two sentences: the first
/// run of at least 50 all-silent frames after some speech.
fn pause_start(audio: &FrameSet) -> usize {
    let silent = |k: usize| audio.frame(k).iter().all(|&c| c == 0xFF || c == 0x7F);
    let first_speech = (0..audio.len()).find(|&k| !silent(k)).expect("speech");
    (first_speech..audio.len())
        .find(|&k| k + 50 <= audio.len() && (k..k + 50).all(silent))
        .expect("a pause of 1 s or more")
}

#[tokio::test]
async fn turns_get_a_reply_and_a_mark() {
    let bot = common::start(BotConfig::default()).await;
    let reply_frames = BotConfig::default().reply_audio.len();
    let audio = hello();
    // 40 frames (800 ms) into the pause: past the 500 ms hangover, before sentence two.
    let split = pause_start(&audio) + 40;
    let mut caller = Caller::new(bot.addr).await;

    caller.send_audio(&audio, 0..split).await;
    assert_eq!(
        caller.recv_reply().await,
        (reply_frames, "reply-1".to_owned())
    );
    // Twilio echoes the mark once the reply has played; the pause leaves room for it.
    caller.echo_mark("reply-1").await;

    caller.send_audio(&audio, split..audio.len()).await;
    caller.send_silence(50).await;
    // No clear in between: reply-1 had finished before the caller spoke again.
    assert_eq!(
        caller.recv_reply().await,
        (reply_frames, "reply-2".to_owned())
    );
    caller.echo_mark("reply-2").await;

    caller
        .ws
        .send(Message::text(media::stop(
            caller.seq,
            &StreamIds {
                account_sid: "AC00000000000000000000000000000000".into(),
                call_sid: "CA0123456789abcdef0123456789abcdef".into(),
                stream_sid: STREAM_SID.into(),
            },
        )))
        .await
        .expect("send stop");
    // After stop the bot closes the socket (1000).
    let close = tokio::time::timeout(Duration::from_secs(10), caller.ws.next())
        .await
        .expect("closed in time");
    assert!(
        matches!(close, Some(Ok(Message::Close(_))) | None),
        "{close:?}"
    );
}

#[tokio::test]
async fn barge_in_sends_clear() {
    let bot = common::start(BotConfig::default()).await;
    let audio = hello();
    let split = pause_start(&audio) + 40;
    let mut caller = Caller::new(bot.addr).await;

    caller.send_audio(&audio, 0..split).await;
    let (_, mark) = caller.recv_reply().await;
    assert_eq!(mark, "reply-1");
    // The mark is not echoed: as far as the bot knows, reply-1 is still playing when
    // the caller starts the second sentence.
    caller.send_audio(&audio, split..audio.len()).await;
    caller.send_silence(50).await;
    assert_eq!(caller.recv().await, AppMessage::Clear);
    // Twilio echoes cleared marks; the conversation goes on with the next turn.
    caller.echo_mark("reply-1").await;
    assert_eq!(caller.recv_reply().await.1, "reply-2");
}

#[tokio::test]
async fn upgrade_without_valid_signature_is_refused() {
    let bot = common::start(BotConfig::default()).await;
    let wrong = signing::signature("another-token", &format!("ws://{}/media", bot.addr), &[]);
    for sig in [None, Some(wrong.as_str())] {
        match connect(bot.addr, sig).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
            Err(other) => panic!("expected HTTP 403, got {other}"),
            Ok(_) => panic!("upgrade accepted with signature {sig:?}"),
        }
    }
}

#[tokio::test]
async fn junk_is_ignored_and_shutdown_closes_streams() {
    let bot = common::start(BotConfig::default()).await;
    let mut caller = Caller::new(bot.addr).await;
    caller
        .ws
        .send(Message::text("{not json"))
        .await
        .expect("send");
    caller
        .ws
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    caller.send_silence(5).await;
    // Still alive: a short turn gets its reply.
    let tone: Vec<i16> = (0..8000)
        .map(|i| if i % 16 < 8 { 8000 } else { -8000 })
        .collect();
    let tone = FrameSet::from_pcm(&tone);
    caller.send_audio(&tone, 0..tone.len()).await;
    caller.send_silence(30).await;
    assert_eq!(caller.recv_reply().await.1, "reply-1");

    bot.shutdown.send(()).expect("bot running");
    let close = tokio::time::timeout(Duration::from_secs(10), caller.ws.next())
        .await
        .expect("closed in time");
    match close {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    bot.task.await.expect("join").expect("serve");
}
