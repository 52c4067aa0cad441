//! Relay mode over real sockets: the webhook's `<Connect><ConversationRelay>`, the `/relay`
//! upgrade's signature check, and a conversation (prompt → streamed tokens ending in
//! `last: true`, partials ignored, an interrupt stopping an answer, a digit answered).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use dialtone_bot::{BotConfig, DEFAULT_AUTH_TOKEN, RelayMode};
use dialtone_protocol::relay::{FromApp, parse_app_message};
use dialtone_protocol::signing;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const THINK: Duration = Duration::from_millis(150);

async fn relay_bot(mode: RelayMode) -> common::Bot {
    common::start(BotConfig {
        relay: Some(mode),
        ..BotConfig::default()
    })
    .await
}

async fn connect(addr: SocketAddr, signature: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut req = format!("ws://{addr}/relay")
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

/// A signed upgrade, then `setup` as Twilio sends it.
async fn open(addr: SocketAddr) -> Ws {
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, &format!("ws://{addr}/relay"), &[]);
    let mut ws = connect(addr, Some(&sig)).await.expect("signed upgrade");
    let setup = serde_json::json!({
        "type": "setup", "sessionId": "VX0123456789abcdef0123456789abcdef",
        "accountSid": "AC00000000000000000000000000000000", "parentCallSid": "",
        "callSid": "CA0123456789abcdef0123456789abcdef", "from": "+15005550006",
        "to": "+15005550001", "forwardedFrom": "", "callType": "PSTN", "callerName": "",
        "direction": "inbound", "callStatus": "IN-PROGRESS", "customParameters": {}
    });
    ws.send(Message::text(setup.to_string()))
        .await
        .expect("send");
    ws
}

async fn prompt(ws: &mut Ws, words: &str, last: bool) {
    let p =
        serde_json::json!({"type": "prompt", "voicePrompt": words, "lang": "en-US", "last": last});
    ws.send(Message::text(p.to_string())).await.expect("send");
}

/// The next `text` token within `wait`, checked as Twilio checks it: (token, last).
async fn token(ws: &mut Ws, wait: Duration) -> Option<(String, bool)> {
    let next = tokio::time::timeout(wait, ws.next()).await.ok()??;
    let Ok(Message::Text(text)) = next else {
        panic!("expected a text message, got {next:?}");
    };
    match parse_app_message(text.as_str()) {
        Ok(FromApp::Text { token, last, .. }) => Some((token, last)),
        other => panic!("expected a valid text token, got {other:?} from {text}"),
    }
}

/// The tokens of one answer, up to its `last: true`.
async fn answer(ws: &mut Ws) -> Vec<String> {
    let mut tokens = Vec::new();
    loop {
        let (t, last) = token(ws, Duration::from_secs(2))
            .await
            .expect("the answer goes on until last: true");
        tokens.push(t);
        if last {
            return tokens;
        }
    }
}

#[tokio::test]
async fn the_webhook_connects_a_conversation_relay_to_relay() {
    let b = relay_bot(RelayMode::default()).await;
    let url = format!("http://{}/voice", b.addr);
    let params = vec![
        ("CallSid".to_owned(), "CA1".to_owned()),
        ("From".to_owned(), "+15005550006".to_owned()),
    ];
    let sig = signing::signature(DEFAULT_AUTH_TOKEN, &url, &params);
    let client = reqwest::Client::new();
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let post = |sig: String| {
        client
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header(signing::HEADER, sig)
            .body(form.clone())
            .send()
    };
    let body = post(sig)
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        body.contains(&format!(
            r#"<Connect><ConversationRelay url="ws://{}/relay" welcomeGreeting="Hello!"#,
            b.addr
        )),
        "{body}"
    );
    assert!(!body.contains("<Stream"), "{body}");
    // The webhook's signature is still checked.
    let refused = post("bad".into()).await.expect("request");
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn the_relay_upgrade_needs_a_valid_signature() {
    let b = relay_bot(RelayMode::default()).await;
    for sig in [None, Some("bm9wZQ=="), Some("")] {
        match connect(b.addr, sig).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403, "{sig:?}"),
            other => panic!(
                "{sig:?}: expected a 403, got {:?}",
                other.map(|_| "a socket")
            ),
        }
    }
    // Signed for another URL (the media stream's): refused too.
    let wrong = signing::signature(DEFAULT_AUTH_TOKEN, &format!("ws://{}/media", b.addr), &[]);
    assert!(connect(b.addr, Some(&wrong)).await.is_err());
    open(b.addr).await;
}

#[tokio::test]
async fn a_final_prompt_gets_tokens_after_thinking_ending_in_last() {
    let b = relay_bot(RelayMode::default()).await;
    let mut ws = open(b.addr).await;
    prompt(&mut ws, "Hi, can you", false).await;
    assert_eq!(
        token(&mut ws, THINK * 3).await,
        None,
        "a partial prompt is not answered"
    );
    let sent = Instant::now();
    prompt(&mut ws, "Hi, can you hear me?", true).await;
    let first = token(&mut ws, Duration::from_secs(2)).await.expect("first");
    let thought = sent.elapsed();
    assert!(
        thought >= THINK && thought < THINK + Duration::from_millis(150),
        "{thought:?}"
    );
    let mut tokens = vec![first.0];
    assert!(!first.1);
    tokens.extend(answer(&mut ws).await);
    assert!(tokens.len() >= 3, "{tokens:?}");
    assert_eq!(tokens.concat(), "You said: Hi, can you hear me?");

    // A digit is answered too.
    ws.send(Message::text(r#"{"type":"dtmf","digit":"7"}"#))
        .await
        .expect("send");
    assert_eq!(answer(&mut ws).await.concat(), "You pressed 7.");
}

#[tokio::test]
async fn an_interrupt_stops_the_answer_being_streamed() {
    // Slow tokens, so the interrupt lands mid-answer.
    let b = relay_bot(RelayMode {
        think: Duration::from_millis(50),
        token_gap: Duration::from_millis(300),
    })
    .await;
    let mut ws = open(b.addr).await;
    prompt(&mut ws, "one two three four five", true).await;
    let first = token(&mut ws, Duration::from_secs(2)).await.expect("first");
    assert_eq!(first, ("You ".to_owned(), false));
    let cut = serde_json::json!({"type": "interrupt", "utteranceUntilInterrupt": "You",
        "durationUntilInterruptMs": 120});
    ws.send(Message::text(cut.to_string())).await.expect("send");
    assert_eq!(
        token(&mut ws, Duration::from_millis(900)).await,
        None,
        "tokens after the interrupt"
    );
    // The next prompt is answered whole.
    prompt(&mut ws, "again", true).await;
    assert_eq!(answer(&mut ws).await.concat(), "You said: again");
}

#[tokio::test]
async fn an_oversized_message_ends_the_session() {
    let b = relay_bot(RelayMode::default()).await;
    let mut ws = open(b.addr).await;
    let huge = "x".repeat(dialtone_bot::relay::MAX_MESSAGE_BYTES + 1);
    let _ = ws.send(Message::text(huge)).await;
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    });
    ended.await.expect("the bot drops the session");
}

#[tokio::test]
async fn shutdown_closes_an_open_session_going_away() {
    let b = relay_bot(RelayMode::default()).await;
    let mut ws = open(b.addr).await;
    let _ = b.shutdown.send(());
    let close = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    });
    assert_eq!(close.await.expect("closed"), Some(1001));
    let served = tokio::time::timeout(Duration::from_secs(3), b.task).await;
    served
        .expect("serve returns")
        .expect("task")
        .expect("serve");
}
