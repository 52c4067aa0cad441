//! Milestone reporting over real sockets: the bot, configured with `events_url`, is
//! called with a five-turn corpus script over a real WebSocket, and a real axum server
//! captures what it POSTs. Every record follows the schema (`dialtone-milestones` parses
//! it), names the call, dates each detection by the wall clock after the audio that
//! caused it was sent, and the VAD's media times land near the corpus ground truth.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use dialtone_audio::{AudioCache, frames};
use dialtone_bot::{BotConfig, DEFAULT_AUTH_TOKEN};
use dialtone_corpus::Corpus;
use dialtone_milestones::{Milestone, parse_body};
use dialtone_protocol::media::{self, StreamIds, Track};
use dialtone_protocol::signing;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CALL_SID: &str = "CA00000000000000000000000000000e7e";
const STREAM_SID: &str = "MZ00000000000000000000000000000e7e";
/// Media time of the first inbound frame (Twilio's does not start at 0).
const FIRST_TS: u64 = 102;

type Bodies = Arc<Mutex<Vec<String>>>;

/// An events endpoint that keeps every body it is sent.
async fn start_sink() -> (SocketAddr, Bodies) {
    async fn events(State(bodies): State<Bodies>, body: String) -> StatusCode {
        bodies.lock().expect("lock").push(body);
        StatusCode::NO_CONTENT
    }
    let bodies = Bodies::default();
    let app = Router::new()
        .route("/events", post(events))
        .with_state(Arc::clone(&bodies));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, bodies)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

#[tokio::test]
async fn bot_posts_its_real_vad_and_reply_milestones() {
    let (sink, bodies) = start_sink().await;
    let bot = common::start(BotConfig {
        events_url: Some(format!("http://{sink}/events")),
        ..BotConfig::default()
    })
    .await;
    let corpus = Corpus::open(&Corpus::default_dir()).expect("corpus");
    let audio = corpus
        .load("session", &AudioCache::new())
        .expect("session script");

    let url = format!("ws://{}/media", bot.addr);
    let mut req = url.as_str().into_client_request().expect("request");
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, &url, &[]);
    req.headers_mut()
        .insert(signing::HEADER, sig.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let (mut tx, mut rx) = ws.split();
    // Read (and drop) the bot's replies so its writes never back up.
    let reader = tokio::spawn(async move {
        let mut replies = 0;
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(text) = msg
                && text.contains("\"event\":\"mark\"")
            {
                replies += 1;
            }
        }
        replies
    });

    let ids = StreamIds {
        account_sid: "AC00000000000000000000000000000000".into(),
        call_sid: CALL_SID.into(),
        stream_sid: STREAM_SID.into(),
    };
    let began = now_ms();
    tx.send(Message::text(media::connected()))
        .await
        .expect("send");
    tx.send(Message::text(media::start(1, &ids, &[Track::Inbound], &[])))
        .await
        .expect("send");
    // As fast as the socket takes them, with real-time media timestamps (the bot's
    // clock); when each frame was handed to the socket is kept to check causality.
    let total = audio.frames.len() + 40; // 800 ms of silence closes the last turn
    let mut sent_at = Vec::with_capacity(total);
    for k in 0..total {
        let payload = if k < audio.frames.len() {
            audio.frames.b64(k)
        } else {
            frames::silence_b64()
        };
        let seq = k as u64 + 2;
        let ts = FIRST_TS + 20 * k as u64;
        let msg = media::media(seq, Track::Inbound, k as u64 + 1, ts, payload, STREAM_SID);
        // Stamped before the send: the bot may handle the frame before `send` returns.
        sent_at.push(now_ms());
        tx.send(Message::text(msg)).await.expect("send media");
    }
    tx.send(Message::text(media::stop(total as u64 + 2, &ids)))
        .await
        .expect("send stop");
    let replies = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("bot closed the stream")
        .expect("reader");
    assert_eq!(replies, audio.turns.len());

    // Five turns: a start, an end and a reply each.
    let want = 3 * audio.turns.len();
    let mut records: Vec<Milestone> = Vec::new();
    for _ in 0..100 {
        let captured = bodies.lock().expect("lock").clone();
        records.clear();
        for body in &captured {
            let (good, bad) = parse_body(body);
            assert!(bad.is_empty(), "{bad:?} in {body}");
            records.extend(good);
        }
        if records.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended = now_ms();
    assert_eq!(records.len(), want, "{records:?}");
    records.sort_by_key(|m| m.ts_ms);

    // The raw bodies carry the media time of each VAD event, for checking below.
    let stream_ms: Vec<(String, u64)> = bodies
        .lock()
        .expect("lock")
        .iter()
        .flat_map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).expect("json");
            match v {
                serde_json::Value::Array(items) => items,
                one => vec![one],
            }
        })
        .filter_map(|v| {
            let at = v.get("stream_ms")?.as_u64()?;
            Some((v["name"].as_str()?.to_owned(), at))
        })
        .collect();

    for m in &records {
        assert_eq!(m.call_sid, CALL_SID);
        assert!(m.duration_ms.is_none() && m.text.is_none(), "{m:?}");
        let ts = m.ts_ms.expect("every record has a ts");
        assert!((began..=ended).contains(&ts), "{m:?}");
    }
    for name in ["vad.speech_start", "vad.speech_end", "reply.first_audio"] {
        let n = records.iter().filter(|m| m.name == name).count();
        assert_eq!(n, audio.turns.len(), "{name}");
    }

    // The VAD's media times sit near the truth (its −35 dBFS threshold and 20 ms frames
    // make it up to ~130 ms late on soft onsets and early on fading ends).
    let starts: Vec<u64> = stream_ms
        .iter()
        .filter(|(n, _)| n == "vad.speech_start")
        .map(|&(_, at)| at)
        .collect();
    let ends: Vec<u64> = stream_ms
        .iter()
        .filter(|(n, _)| n == "vad.speech_end")
        .map(|&(_, at)| at)
        .collect();
    let ends_ts: Vec<i64> = records
        .iter()
        .filter(|m| m.name == "vad.speech_end")
        .filter_map(|m| m.ts_ms)
        .collect();
    assert_eq!((starts.len(), ends.len()), (5, 5));
    for (k, turn) in audio.turns.iter().enumerate() {
        let near = |got: u64, truth: u32| got.abs_diff(FIRST_TS + u64::from(truth)) <= 150;
        assert!(
            near(starts[k], turn.start_ms),
            "start {} vs {turn:?}",
            starts[k]
        );
        assert!(near(ends[k], turn.end_ms), "end {} vs {turn:?}", ends[k]);
        // Causality: the end was detected (and stamped) no earlier than the frame that
        // completed the 500 ms hangover was sent.
        let closing_frame = ((ends[k] + 500 - 20 - FIRST_TS) / 20) as usize;
        assert!(
            ends_ts[k] >= sent_at[closing_frame],
            "turn {k}: end stamped {} before its audio was sent at {}",
            ends_ts[k],
            sent_at[closing_frame]
        );
    }
    // Each reply's first audio went out after the end of speech that caused it.
    let replies_ts: Vec<i64> = records
        .iter()
        .filter(|m| m.name == "reply.first_audio")
        .filter_map(|m| m.ts_ms)
        .collect();
    for (end, reply) in ends_ts.iter().zip(&replies_ts) {
        assert!(reply >= end);
    }

    bot.shutdown.send(()).expect("bot running");
    bot.task.await.expect("join").expect("serve");
}
