//! Issue 12 items 9 and 12: hostile apps on 127.0.0.1, written at the socket level so they
//! can lie. A `<Play>` of a 200 MB WAV (honest, chunked, or with a Content-Length of 10 GB)
//! is read only as far as the call can play it; what is not a WAV is refused from its first
//! bytes; a stream message over the size limit and a text frame that is not UTF-8 fail the
//! connection with Twilio's 31924 and the close code that says why. Memory is shown bounded
//! by what the app managed to send before dialtone stopped reading.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::call;
use dialtone_call::Failure;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Bytes of the hostile `<Play>` body: far more than any bound lets through.
const BIG: u64 = 200_000_000;
/// What the app may get onto the wire before dialtone stops reading: the bytes a short
/// call needs plus the kernel's socket buffers, well under what was offered.
const SENT_BOUND: u64 = 16 << 20;

#[derive(Clone, Copy, Debug)]
enum Body {
    /// An honest Content-Length.
    Honest,
    /// Transfer-Encoding: chunked.
    Chunked,
    /// Content-Length: 10 GB.
    Lying,
}

/// How much the app wrote onto the socket before it failed or finished.
#[derive(Clone, Default)]
struct Sent(Arc<AtomicU64>);

impl Sent {
    fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A 44-byte header of 44.1 kHz 16-bit stereo PCM declaring `data` bytes.
fn wav_header(data: u32) -> Vec<u8> {
    let mut h = b"RIFF".to_vec();
    h.extend_from_slice(&data.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&44_100u32.to_le_bytes());
    h.extend_from_slice(&(44_100u32 * 4).to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

/// Serves `/voice` (TwiML `<Play>/big.wav</Play>`) and `/big.wav`: `BIG` bytes starting with
/// `head`, framed as `body` says. Returns the base URL and the bytes sent for `/big.wav`.
async fn play_app(body: Body, head: Vec<u8>) -> (String, Sent) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sent = Sent::default();
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (head, counter) = (head.clone(), counter.clone());
            tokio::spawn(serve_one(tcp, body, head, counter));
        }
    });
    (base, sent)
}

async fn serve_one(mut tcp: TcpStream, body: Body, head: Vec<u8>, sent: Sent) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let request = String::from_utf8_lossy(&req).to_string();
    if request.starts_with("POST /voice") {
        let twiml = r#"<?xml version="1.0"?><Response><Play>/big.wav</Play></Response>"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{twiml}",
            twiml.len()
        );
        let _ = tcp.write_all(reply.as_bytes()).await;
        return;
    }
    let framing = match body {
        Body::Honest => format!("Content-Length: {BIG}"),
        Body::Chunked => "Transfer-Encoding: chunked".to_string(),
        Body::Lying => "Content-Length: 10000000000".to_string(),
    };
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: audio/x-wav\r\n{framing}\r\nConnection: close\r\n\r\n"
    );
    if tcp.write_all(reply.as_bytes()).await.is_err() {
        return;
    }
    let mut block = vec![0x11u8; 64 << 10];
    block[..head.len()].copy_from_slice(&head);
    let mut offered = 0u64;
    while offered < BIG {
        let piece: Vec<u8> = match body {
            Body::Chunked => {
                let mut p = format!("{:x}\r\n", block.len()).into_bytes();
                p.extend_from_slice(&block);
                p.extend_from_slice(b"\r\n");
                p
            }
            _ => block.clone(),
        };
        if tcp.write_all(&piece).await.is_err() {
            return;
        }
        sent.0.fetch_add(block.len() as u64, Ordering::SeqCst);
        offered += block.len() as u64;
        // Only the first block carries the header.
        block[..head.len()].fill(0x11);
    }
}

#[tokio::test]
async fn a_huge_play_is_read_only_as_far_as_the_call_can_play_it() {
    for body in [Body::Honest, Body::Chunked, Body::Lying] {
        let (base, sent) = play_app(body, wav_header((BIG - 44) as u32)).await;
        let res = call(&format!("{base}/voice"), 200, |c| {
            c.max_duration = Duration::from_secs(2);
        })
        .await;
        assert!(
            res.report.failures.is_empty(),
            "{body:?}: {:?}",
            res.report.failures
        );
        let cut: Vec<&String> = res
            .report
            .warnings
            .iter()
            .map(|(_, w)| w)
            .filter(|w| w.starts_with("<Play> /big.wav"))
            .collect();
        assert_eq!(cut.len(), 1, "{body:?}: {:?}", res.report.warnings);
        assert!(
            cut[0].contains("1133.8 s long; only its first 2.0 s were read"),
            "{body:?}: {}",
            cut[0]
        );
        let sent = sent.get();
        assert!(sent < SENT_BOUND, "{body:?}: the app got {sent} bytes out");
    }
}

#[tokio::test]
async fn a_play_that_is_not_a_wav_is_refused_from_its_first_bytes() {
    let page = b"<html><body>".repeat(100);
    let (base, sent) = play_app(Body::Chunked, page).await;
    let res = call(&format!("{base}/voice"), 200, |_| {}).await;
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 11200, "{f:?}");
    match f {
        Failure::PlayFailed { cause, .. } => {
            assert!(
                cause.ends_with("is not a WAV file (no RIFF/WAVE header)"),
                "{cause}"
            );
        }
        other => panic!("{other:?}"),
    }
    let sent = sent.get();
    assert!(sent < SENT_BOUND, "the app got {sent} bytes out");
}

/// What the hostile stream app does after `start`.
#[derive(Clone, Copy, Debug)]
enum Junk {
    /// One text frame declaring `n` bytes, then as much of it as the socket takes.
    Huge(u64),
    /// A short text frame that is not UTF-8.
    NotUtf8,
}

/// A voice app whose `<Connect><Stream>` app misbehaves as `junk` says. Returns the voice
/// URL, the bytes of junk sent and the stream app's task, which ends with the close code of
/// the close frame dialtone sent it (when it could read one).
async fn stream_app(junk: Junk) -> (String, Sent, JoinHandle<Option<u16>>) {
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}/media", ws.local_addr().unwrap());
    let sent = Sent::default();
    let counter = sent.clone();
    let task = tokio::spawn(async move {
        let (tcp, _) = ws.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        // `connected`, then `start`.
        for _ in 0..2 {
            ws.next().await;
        }
        match junk {
            Junk::Huge(n) => {
                let mut head = vec![0x81, 127];
                head.extend_from_slice(&n.to_be_bytes());
                let raw = ws.get_mut();
                if raw.write_all(&head).await.is_err() {
                    return None;
                }
                let block = vec![b'x'; 64 << 10];
                let mut offered = 0;
                while offered < n {
                    if raw.write_all(&block).await.is_err() {
                        break;
                    }
                    counter.0.fetch_add(block.len() as u64, Ordering::SeqCst);
                    offered += block.len() as u64;
                }
                None
            }
            Junk::NotUtf8 => {
                let payload = b"{\"event\":\"mark\",\"mark\":{\"name\":\"\xff\xfe\"}}";
                let mut frame = vec![0x81, payload.len() as u8];
                frame.extend_from_slice(payload);
                ws.get_mut().write_all(&frame).await.unwrap();
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Close(f) = m {
                        return f.map(|f| u16::from(f.code));
                    }
                }
                None
            }
        }
    });
    let app = common::TestApp::start(
        vec![(
            "/voice",
            common::Reply::Twiml(format!(
                r#"<Response><Connect><Stream url="{ws_url}"/></Connect></Response>"#
            )),
        )],
        common::WsScript::Silent,
    )
    .await;
    (app.url("/voice"), sent, task)
}

fn protocol_failure(res: &dialtone_call::CallResult) -> (String, u16) {
    let f = &res.report.failures[0];
    assert_eq!(f.code(), 31924, "{f:?}");
    assert_eq!(f.step(), "stream");
    match f {
        Failure::StreamProtocol {
            cause, close_code, ..
        } => (cause.clone(), *close_code),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_message_over_the_size_limit_fails_the_stream_with_31924() {
    // 64 MB declared: the old engine's 16 MiB frame limit called this a "31903 drop"; a
    // 10 MB message it read whole.
    let (url, sent, _) = stream_app(Junk::Huge(64 << 20)).await;
    let res = call(&url, 2000, |_| {}).await;
    let (cause, code) = protocol_failure(&res);
    assert_eq!(
        cause,
        "the app sent a message of 67108864 bytes, over the 1048576-byte limit"
    );
    assert_eq!(code, 1009);
    let stream = &res.report.streams[0];
    assert_eq!(
        (stream.closed_by, stream.close_code),
        ("dialtone", Some(1009))
    );
    // dialtone refused the frame from its header: the payload was never read.
    let sent = sent.get();
    assert!(sent < SENT_BOUND, "the app got {sent} bytes out");
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_fails_the_stream_with_31924() {
    let (url, _, app) = stream_app(Junk::NotUtf8).await;
    let res = call(&url, 2000, |_| {}).await;
    let (cause, code) = protocol_failure(&res);
    assert_eq!(cause, "the app sent a text message that is not valid UTF-8");
    assert_eq!(code, 1007);
    assert_eq!(res.report.streams[0].closed_by, "dialtone");
    // The app was told why, in the close frame.
    assert_eq!(app.await.unwrap(), Some(1007));
}

/// An unmasked server text frame carrying `text`.
fn text_frame(text: &str) -> Vec<u8> {
    let len = text.len();
    let mut f = vec![0x81];
    match len {
        0..=125 => f.push(len as u8),
        126..=65535 => {
            f.push(126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            f.push(127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(text.as_bytes());
    f
}

fn media(stream_sid: &str, audio: &[u8]) -> String {
    format!(
        r#"{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{}"}}}}"#,
        common::base64_of(audio)
    )
}

#[tokio::test]
async fn frames_cut_anywhere_by_the_socket_are_all_read() {
    // A well-behaved app whose bytes arrive as TCP cuts them: a burst of frames in one write
    // ending mid-frame, a frame dribbled a byte at a time, a frame larger than one read,
    // then a mark. Every message must be read, once, with nothing failed.
    const SMALL: usize = 40;
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}/media", ws.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = ws.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let _connected = ws.next().await;
        let Some(Ok(Message::Text(start))) = ws.next().await else {
            return;
        };
        let start: serde_json::Value = serde_json::from_str(&start).unwrap();
        let sid = start["streamSid"].as_str().unwrap().to_string();
        let mut bytes = Vec::new();
        for _ in 0..SMALL {
            bytes.extend(text_frame(&media(&sid, &[0xFF; 160])));
        }
        // 100,000 bytes of audio: a frame of ~133 KB, over the plane's 64 KiB read.
        bytes.extend(text_frame(&media(&sid, &vec![0xFF; 100_000])));
        bytes.extend(text_frame(&format!(
            r#"{{"event":"mark","streamSid":"{sid}","mark":{{"name":"end"}}}}"#
        )));
        let raw = ws.get_mut();
        let cut = bytes.len() / 7 + 3;
        raw.write_all(&bytes[..cut]).await.unwrap();
        raw.flush().await.unwrap();
        for b in &bytes[cut..cut + 60] {
            raw.write_all(std::slice::from_ref(b)).await.unwrap();
            raw.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        raw.write_all(&bytes[cut + 60..]).await.unwrap();
        raw.flush().await.unwrap();
        // Read on (mark echoes, `stop`) until dialtone closes.
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(_) = m {
                break;
            }
        }
    });
    let app = common::TestApp::start(
        vec![(
            "/voice",
            common::Reply::Twiml(format!(
                r#"<Response><Connect><Stream url="{ws_url}"/></Connect></Response>"#
            )),
        )],
        common::WsScript::Silent,
    )
    .await;
    let res = call(&app.url("/voice"), 1000, |_| {}).await;
    assert!(res.report.failures.is_empty(), "{:?}", res.report.failures);
    let s = &res.report.streams[0];
    assert_eq!(s.media_received, SMALL as u64 + 1);
    assert_eq!(s.audio_received_ms, (SMALL as u64 * 160 + 100_000) / 8);
    assert_eq!(s.mark_stats.received, 1);
}
