//! `misbehave` on the wire: each fault as a caller sees it over a real socket (500, broken
//! TwiML, a refused upgrade, a dropped or unread stream, the duplicate-frame crash).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use dialtone_audio::frames;
use dialtone_bot::{BotConfig, DEFAULT_AUTH_TOKEN};
use dialtone_protocol::media::{self, StreamIds, Track};
use dialtone_protocol::signing;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

fn ids() -> StreamIds {
    StreamIds {
        account_sid: "AC00000000000000000000000000000000".into(),
        call_sid: CALL_SID.into(),
        stream_sid: "MZ0123456789abcdef0123456789abcdef".into(),
    }
}

async fn bot(spec: &str) -> common::Bot {
    common::start(BotConfig {
        misbehave: spec.parse().expect("valid spec"),
        ..BotConfig::default()
    })
    .await
}

/// A signed voice webhook POST: (status, body).
async fn webhook(addr: SocketAddr) -> (StatusCode, String) {
    let url = format!("http://{addr}/voice");
    let params: Vec<(String, String)> = [("CallSid", CALL_SID), ("From", "+15005550006")]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, &url, &params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let resp = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(signing::HEADER, sig)
        .body(body)
        .send()
        .await
        .expect("request");
    (resp.status(), resp.text().await.expect("body"))
}

/// A signed upgrade to `url`.
async fn connect(url: &str) -> Result<Ws, tungstenite::Error> {
    let mut req = url.into_client_request().expect("request");
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, url, &[]);
    req.headers_mut()
        .insert(signing::HEADER, sig.parse().expect("header value"));
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Connects to `/media` and sends `connected` + `start` like Twilio.
async fn open_stream(addr: SocketAddr) -> Ws {
    let mut ws = connect(&format!("ws://{addr}/media"))
        .await
        .expect("upgrade accepted");
    ws.send(Message::text(media::connected())).await.unwrap();
    ws.send(Message::text(media::start(
        1,
        &ids(),
        &[Track::Inbound],
        &[],
    )))
    .await
    .unwrap();
    ws
}

fn frame(seq: u64, chunk: u64) -> Message {
    let text = media::media(
        seq,
        Track::Inbound,
        chunk,
        (chunk - 1) * 20,
        frames::silence_b64(),
        &ids().stream_sid,
    );
    Message::text(text)
}

/// Reads until the connection ends; true when it ended with a close frame.
async fn ended_with_close(ws: &mut Ws) -> bool {
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return false,
            }
        }
    });
    end.await.expect("the bot ends the stream")
}

#[tokio::test]
async fn webhook_faults() {
    let b = bot("http500=1").await;
    let (status, body) = webhook(b.addr).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("misbehave http500"), "{body}");

    let b = bot("bad_twiml=1").await;
    let (status, body) = webhook(b.addr).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<Say>") && !body.contains("</Say>"), "{body}");
}

#[tokio::test]
async fn refuse_upgrade_marks_the_stream_url_and_refuses_it() {
    let b = bot("refuse_upgrade=1").await;
    let (status, body) = webhook(b.addr).await;
    assert_eq!(status, StatusCode::OK);
    let url = format!("ws://{}/media?misbehave=refuse_upgrade", b.addr);
    assert!(body.contains(&format!(r#"<Stream url="{url}">"#)), "{body}");
    match connect(&url).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected a 403, got {:?}", other.map(|_| "a WebSocket")),
    }
    // Only the marked URL is refused.
    open_stream(b.addr).await;
}

#[tokio::test]
async fn abrupt_close_drops_after_a_second_of_media() {
    let b = bot("abrupt_close=1").await;
    let mut ws = open_stream(b.addr).await;
    for k in 1..=50 {
        ws.send(frame(k + 1, k)).await.unwrap();
    }
    assert!(!ended_with_close(&mut ws).await);
}

#[tokio::test]
async fn a_duplicated_frame_crashes_the_stream_without_a_close_frame() {
    let b = bot("crash_on_duplicate").await;
    // In-order frames are fine…
    let mut ws = open_stream(b.addr).await;
    for k in 1..=20 {
        ws.send(frame(k + 1, k)).await.unwrap();
    }
    ws.send(Message::text(media::stop(22, &ids())))
        .await
        .unwrap();
    assert!(ended_with_close(&mut ws).await);
    // …a repeated one is a crash.
    let mut ws = open_stream(b.addr).await;
    for (seq, chunk) in [(2, 1), (3, 2), (3, 2), (4, 3)] {
        // The last send may already find the socket gone.
        let _ = ws.send(frame(seq, chunk)).await;
    }
    assert!(!ended_with_close(&mut ws).await);
}

#[tokio::test]
async fn never_read_stops_reading_after_start() {
    let b = bot("never_read=1").await;
    let mut ws = open_stream(b.addr).await;
    // Sent as fast as the socket takes them: the kernel buffers fill (a few MB on
    // loopback) and then a write blocks, because nobody reads.
    for k in 1..=200_000u64 {
        let sent = tokio::time::timeout(Duration::from_secs(1), ws.send(frame(k + 1, k))).await;
        if sent.is_err() {
            assert!(k > 10, "blocked after {k} frames");
            // Shutdown releases the held socket: dropped, like the process exiting.
            let _ = b.shutdown.send(());
            let served = tokio::time::timeout(Duration::from_secs(5), b.task).await;
            served.expect("serve returns").unwrap().unwrap();
            assert!(!ended_with_close(&mut ws).await);
            return;
        }
    }
    panic!("200,000 frames went through: the bot is reading");
}

/// Plays 1 s of loud tone then 1.5 s of silence (a caller turn the VAD answers), closes,
/// and returns how many `media` messages the bot sent back.
async fn media_back_after_a_turn(spec: &str) -> usize {
    let b = bot(spec).await;
    let mut ws = open_stream(b.addr).await;
    let pcm: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 / 8000.0 * 440.0 * std::f64::consts::TAU).sin() * 12000.0) as i16)
        .collect();
    let speech = dialtone_audio::FrameSet::from_pcm(&pcm);
    for k in 0..125u64 {
        let payload = if (k as usize) < speech.len() {
            speech.b64(k as usize)
        } else {
            frames::silence_b64()
        };
        let text = media::media(
            k + 2,
            Track::Inbound,
            k + 1,
            k * 20,
            payload,
            &ids().stream_sid,
        );
        ws.send(Message::text(text)).await.unwrap();
    }
    ws.send(Message::text(media::stop(127, &ids())))
        .await
        .unwrap();
    let mut back = 0;
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Text(t) if t.contains("\"event\":\"media\"") => back += 1,
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await;
    back
}

#[tokio::test]
async fn mute_reads_everything_and_never_answers() {
    assert!(
        media_back_after_a_turn("none").await > 0,
        "the bot answers a turn"
    );
    assert_eq!(media_back_after_a_turn("mute=1").await, 0);
}
