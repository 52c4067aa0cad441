//! `<Record>` under `dialtone serve`: a hosted number's app records what the REST-created
//! caller leg says, and the recording is Twilio's Recordings resource: listed by call,
//! described as JSON, and served as a WAV of the caller alone.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use dialtone_protocol::webhook::form_encode;
use dialtone_server::ServerConfig;
use dialtone_server::config::{DEFAULT_ACCOUNT_SID as AC, DEFAULT_AUTH_TOKEN as TOKEN};
use serde_json::Value;
use tokio::sync::mpsc;

/// The hosted app: `<Record>` at `/voice`, hang up at `/after`; every action's parameters
/// go to `tx`.
async fn app(tx: mpsc::Sender<Vec<(String, String)>>) -> String {
    async fn handle(
        State(tx): State<mpsc::Sender<Vec<(String, String)>>>,
        uri: Uri,
        body: Bytes,
    ) -> ([(&'static str, &'static str); 1], &'static str) {
        let xml = match uri.path() {
            "/voice" => "<Response><Record action=\"/after\" timeout=\"1\"/></Response>",
            _ => {
                let _ = tx
                    .send(form_urlencoded::parse(&body).into_owned().collect())
                    .await;
                "<Response><Hangup/></Response>"
            }
        };
        ([("content-type", "text/xml")], xml)
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let router = axum::Router::new().fallback(handle).with_state(tx);
    tokio::spawn(async move { axum::serve(l, router).await });
    base
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> &'a str {
    p.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test]
async fn a_record_verb_recording_is_listed_by_call_and_served_as_a_wav() {
    let (tx, mut actions) = mpsc::channel(4);
    let app = app(tx).await;
    let mut config = ServerConfig {
        ring: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    config.host_number("+15005550001", &format!("{app}/voice"));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dialtone_server::run(l, config, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let base = format!("{api}/2010-04-01/Accounts/{AC}");

    // The caller leg: a second of silence (the beep plays meanwhile), six words (2.4 s),
    // then silence until it hangs up.
    let params = [
        ("To", "+15005550001"),
        ("From", "+15005550006"),
        (
            "Twiml",
            "<Response><Pause length=\"1\"/><Say>leave a message for the team</Say>\
             <Pause length=\"3\"/></Response>",
        ),
    ];
    let body = form_encode(
        &params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    let created = http
        .post(format!("{base}/Calls.json"))
        .basic_auth(AC, Some(TOKEN))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);

    let action = tokio::time::timeout(Duration::from_secs(30), actions.recv())
        .await
        .expect("the <Record> action in time")
        .unwrap();
    let call = param(&action, "CallSid").to_string();
    let sid = param(&action, "RecordingSid").to_string();
    assert!(sid.starts_with("RE"), "{action:?}");
    assert_eq!(param(&action, "Digits"), "");
    // The six words, trimmed of the silence around them: 2.4 s, 3 as Twilio rounds.
    assert_eq!(param(&action, "RecordingDuration"), "3");
    assert_eq!(
        param(&action, "RecordingUrl"),
        format!("{base}/Recordings/{sid}")
    );

    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .basic_auth(AC, Some(TOKEN))
                .send()
                .await
                .unwrap()
        }
    };
    let json = |bytes: Bytes| serde_json::from_slice::<Value>(&bytes).unwrap();
    let list = json(
        get(format!("{base}/Calls/{call}/Recordings.json"))
            .await
            .bytes()
            .await
            .unwrap(),
    );
    let recs = list["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{list}");
    let r = &recs[0];
    assert_eq!(r["sid"], sid.as_str());
    assert_eq!(r["call_sid"], call.as_str());
    assert_eq!(r["source"], "RecordVerb");
    assert_eq!(r["channels"], 1);
    assert_eq!(r["duration"], "3");
    assert_eq!(r["status"], "completed");
    let one = json(
        get(format!("{base}/Recordings/{sid}.json"))
            .await
            .bytes()
            .await
            .unwrap(),
    );
    assert_eq!(one["sid"], sid.as_str());

    let wav = get(format!("{base}/Recordings/{sid}.wav"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 1, "one channel");
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(samples.len(), 2400 * 8, "the caller's words, no more");
    let loud = samples.iter().filter(|s| s.abs() > 1000).count();
    assert!(loud > samples.len() / 4, "{loud} loud samples");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
