//! Real calls over real sockets: `dialtone serve` on a loopback port, the reference voice app
//! as the hosted number's app, and a capture server receiving status callbacks, each checked
//! against `X-Twilio-Signature` the way Twilio's helper libraries check it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use dialtone_protocol::signing;
use dialtone_protocol::webhook::form_encode;
use dialtone_server::ServerConfig;
use dialtone_server::config::{DEFAULT_ACCOUNT_SID as AC, DEFAULT_AUTH_TOKEN as TOKEN};
use serde_json::Value;
use tokio::sync::mpsc;

/// A received callback: path and parameters, its signature already checked.
type Hit = (String, Vec<(String, String)>);

struct World {
    api: String,
    capture: String,
    hits: mpsc::Receiver<Hit>,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn bot() -> String {
    bot_with(dialtone_bot::BotConfig::default()).await
}

async fn bot_with(config: dialtone_bot::BotConfig) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(dialtone_bot::serve(l, config, std::future::pending()));
    format!("http://{addr}")
}

/// Serves `app` on a loopback port; returns `http://127.0.0.1:PORT`.
async fn serve_app(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    base
}

/// GETs `{api}/2010-04-01/Accounts/{AC}/{path}` with the account's credentials.
async fn rest_get(http: &reqwest::Client, api: &str, path: &str) -> Value {
    let bytes = http
        .get(format!("{api}/2010-04-01/Accounts/{AC}/{path}"))
        .basic_auth(AC, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

async fn capture(tx: mpsc::Sender<Hit>) -> String {
    async fn hit(
        State((tx, base)): State<(mpsc::Sender<Hit>, Arc<String>)>,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> &'static str {
        let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let url = format!("{base}{uri}");
        let sig = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            signing::validate(TOKEN, &url, &params, sig),
            "bad signature on {url}"
        );
        let _ = tx.send((uri.path().to_string(), params)).await;
        "ok"
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(hit)
        .with_state((tx, Arc::new(base.clone())));
    tokio::spawn(async move { axum::serve(l, app).await });
    base
}

async fn world() -> World {
    let bot = bot().await;
    let (tx, hits) = mpsc::channel(64);
    let capture = capture(tx).await;
    let mut config = ServerConfig {
        ring: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    config.host_number("+15005550001", &format!("{bot}/voice"));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dialtone_server::run(l, config, async {
        let _ = stopped.await;
    }));
    World {
        api,
        capture,
        hits,
        http: reqwest::Client::new(),
        stop: Some(stop),
        server,
    }
}

impl World {
    async fn post(&self, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let body = form_encode(
            &params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        );
        let resp = self
            .http
            .post(format!("{}/2010-04-01/Accounts/{AC}/{path}", self.api))
            .basic_auth(AC, Some(TOKEN))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> Value {
        rest_get(&self.http, &self.api, path).await
    }

    /// Callbacks until one on `path` carries `CallStatus=completed` (or 60 s pass).
    async fn callbacks_until_completed(&mut self) -> Vec<Hit> {
        let mut out = Vec::new();
        while let Ok(Some(h)) =
            tokio::time::timeout(Duration::from_secs(60), self.hits.recv()).await
        {
            let done =
                h.1.iter()
                    .any(|(k, v)| k == "CallStatus" && v == "completed");
            out.push(h);
            if done {
                break;
            }
        }
        out
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap().unwrap();
    }
}

fn param<'a>(h: &'a Hit, name: &str) -> &'a str {
    h.1.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test]
async fn two_leg_call_to_the_reference_app_completes_with_callbacks_and_recording() {
    let mut w = world().await;
    let cb = format!("{}/status", w.capture);
    let (status, created) = w
        .post(
            "Calls.json",
            &[
                ("To", "+15005550001"),
                ("From", "+15005550006"),
                ("Twiml", "<Response><Say>one two three four five six</Say><Pause length=\"3\"/></Response>"),
                ("Record", "true"),
                ("RecordingChannels", "dual"),
                ("StatusCallback", &cb),
                ("StatusCallbackEvent", "initiated"),
                ("StatusCallbackEvent", "ringing"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_string();
    let hits = w.callbacks_until_completed().await;
    let statuses: Vec<&str> = hits.iter().map(|h| param(h, "CallStatus")).collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let seq: Vec<&str> = hits.iter().map(|h| param(h, "SequenceNumber")).collect();
    assert_eq!(seq, ["0", "1", "2", "3"]);
    let last = hits.last().unwrap();
    assert_eq!(param(last, "CallSid"), sid);
    assert_eq!(param(last, "Direction"), "outbound-api");
    assert_eq!(param(last, "CallbackSource"), "call-progress-events");
    assert!(param(last, "Timestamp").ends_with("+0000"));
    assert!(param(last, "CallDuration").parse::<u64>().unwrap() >= 5);
    let rec_url = param(last, "RecordingUrl").to_string();
    assert!(rec_url.contains("/Recordings/RE"), "{rec_url}");

    let call = w.get(&format!("Calls/{sid}.json")).await;
    assert_eq!(call["status"], "completed");
    assert!(call["start_time"].is_string() && call["end_time"].is_string());
    // The app's inbound leg is a call of its own.
    let list = w.get("Calls.json?To=%2B15005550001").await;
    let dirs: Vec<&str> = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["inbound", "outbound-api"]);

    // The recording: two channels, the caller's buzz on the first, the bot's reply on the second.
    let wav = w
        .http
        .get(format!("{rec_url}.wav"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2);
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let energy = |ch: usize| {
        samples
            .iter()
            .skip(ch)
            .step_by(2)
            .map(|s| i64::from(*s).abs())
            .sum::<i64>()
    };
    assert!(energy(0) > 0, "caller channel is silent");
    assert!(
        energy(1) > 0,
        "the app's reply is missing from the recording"
    );
    let recs = w.get(&format!("Calls/{sid}/Recordings.json")).await;
    assert_eq!(recs["recordings"][0]["call_sid"], sid.as_str());
    w.stop().await;
}

#[tokio::test]
async fn live_hang_up_then_21220_and_stream_callbacks() {
    let mut w = world().await;
    let bot_ws = {
        // A second bot for the stream, addressed directly from inline TwiML.
        let b = bot().await;
        b.replacen("http://", "ws://", 1)
    };
    let twiml = format!(
        "<Response><Connect><Stream url=\"{bot_ws}/media\" statusCallback=\"{}/stream\"/></Connect></Response>",
        w.capture
    );
    let (status, created) = w
        .post(
            "Calls.json",
            &[
                ("To", "+15551112222"),
                ("From", "+15005550006"),
                ("Twiml", &twiml),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_string();
    let started = tokio::time::timeout(Duration::from_secs(20), w.hits.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.0, "/stream");
    assert_eq!(param(&started, "StreamEvent"), "stream-started");
    assert_eq!(param(&started, "CallSid"), sid);
    assert!(param(&started, "StreamSid").starts_with("MZ"));
    let (status, hung) = w
        .post(&format!("Calls/{sid}.json"), &[("Status", "completed")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(hung["status"], "completed");
    let stopped = tokio::time::timeout(Duration::from_secs(20), w.hits.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(param(&stopped, "StreamEvent"), "stream-stopped");
    let (status, err) = w
        .post(
            &format!("Calls/{sid}.json"),
            &[("Url", "http://127.0.0.1:9/x")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["code"], 21220);
    w.stop().await;
}

#[tokio::test]
async fn shutdown_hangs_up_live_calls_and_drains() {
    let mut w = world().await;
    let cb = format!("{}/status", w.capture);
    let (status, created) = w
        .post(
            "Calls.json",
            &[
                ("To", "+15005550001"),
                ("From", "+15005550006"),
                ("Twiml", "<Response><Pause length=\"60\"/></Response>"),
                ("StatusCallback", &cb),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let answered = tokio::time::timeout(Duration::from_secs(20), w.hits.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(param(&answered, "CallStatus"), "in-progress");
    let t = tokio::time::Instant::now();
    let _ = w.stop.take().unwrap().send(());
    let completed = tokio::time::timeout(Duration::from_secs(10), w.hits.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(param(&completed, "CallStatus"), "completed");
    (&mut w.server).await.unwrap().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        t.elapsed()
    );
}

/// Issue 12 (4b): a `<Redirect>` loop in `serve` ends as a failure after a bounded number of
/// requests, rather than looping (and growing) for the call's 4-hour time limit.
#[tokio::test]
async fn a_redirect_loop_ends_the_call_after_a_bounded_number_of_requests() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut w = world().await;
    let requests = Arc::new(AtomicU64::new(0));
    let seen = requests.clone();
    let app = axum::Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::Relaxed);
        async {
            (
                [("content-type", "text/xml")],
                "<Response><Redirect>/loop</Redirect></Response>",
            )
        }
    });
    let url = format!("{}/loop", serve_app(app).await);
    let (status, created) = w
        .post(
            "Calls.json",
            &[
                ("To", "+15551112222"),
                ("From", "+15005550006"),
                ("Url", &url),
                ("StatusCallback", &format!("{}/status", w.capture)),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let hits = w.callbacks_until_completed().await;
    let last = hits.last().expect("a terminal callback");
    assert_eq!(param(last, "CallStatus"), "completed", "{hits:?}");
    assert_eq!(
        requests.load(Ordering::Relaxed),
        u64::from(dialtone_call::LOOP_DOCUMENTS)
    );
    w.stop().await;
}

/// An app that sends a message over the 1 MiB limit gets its stream failed by dialtone, and
/// the stream's status callback says so: `stream-error` with Twilio's 31924, not
/// `stream-stopped`.
#[tokio::test]
async fn a_protocol_breach_is_a_stream_error_callback_with_31924() {
    let mut w = world().await;
    let bot_ws = bot_with(dialtone_bot::BotConfig {
        misbehave: "huge_frame=1".parse().unwrap(),
        ..dialtone_bot::BotConfig::default()
    })
    .await
    .replacen("http://", "ws://", 1);
    let twiml = format!(
        "<Response><Connect><Stream url=\"{bot_ws}/media\" statusCallback=\"{}/stream\"/></Connect></Response>",
        w.capture
    );
    let (status, created) = w
        .post(
            "Calls.json",
            &[
                ("To", "+15551112222"),
                ("From", "+15005550006"),
                ("Twiml", &twiml),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let mut events = Vec::new();
    while let Ok(Some(hit)) = tokio::time::timeout(Duration::from_secs(30), w.hits.recv()).await {
        if hit.0 == "/stream" {
            let event = param(&hit, "StreamEvent").to_string();
            let error = hit
                .1
                .iter()
                .find(|(k, _)| k == "StreamError")
                .map(|(_, v)| v.clone());
            events.push((event.clone(), error));
            if event != "stream-started" {
                break;
            }
        }
    }
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "stream-started");
    assert_eq!(events[1].0, "stream-error", "{events:?}");
    assert!(
        events[1].1.as_deref().is_some_and(|e| e.contains("31924")),
        "{events:?}"
    );
    w.stop().await;
}

/// A dialed party with a whisper is answered when it picks up, not when it is bridged: the
/// REST API shows its leg in-progress by the time its whisper URL is requested.
#[tokio::test]
async fn a_whispered_leg_is_in_progress_while_its_whisper_plays() {
    let w = world().await;
    let (seen_tx, mut seen) = mpsc::channel::<(String, String)>(1);
    let api = w.api.clone();
    let app = axum::Router::new()
        .route(
            "/start",
            axum::routing::post(|| async {
                (
                    [("content-type", "text/xml")],
                    "<Response><Dial><Number url=\"/whisper\">+15553334444</Number></Dial>\
                     </Response>",
                )
            }),
        )
        .route(
            "/whisper",
            axum::routing::post(move |body: Bytes| {
                let (seen_tx, api) = (seen_tx.clone(), api.clone());
                async move {
                    let params: Vec<(String, String)> =
                        form_urlencoded::parse(&body).into_owned().collect();
                    let sid = params
                        .iter()
                        .find(|(k, _)| k == "CallSid")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let leg =
                        rest_get(&reqwest::Client::new(), &api, &format!("Calls/{sid}.json")).await;
                    let status = leg["status"].as_str().unwrap_or_default().to_string();
                    let _ = seen_tx.send((sid, status)).await;
                    (
                        [("content-type", "text/xml")],
                        "<Response><Pause length=\"1\"/></Response>",
                    )
                }
            }),
        );
    let url = format!("{}/start", serve_app(app).await);
    let (status, created) = w
        .post(
            "Calls.json",
            &[
                ("To", "+15551112222"),
                ("From", "+15005550006"),
                ("Url", &url),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (leg, status) = tokio::time::timeout(Duration::from_secs(20), seen.recv())
        .await
        .expect("the whisper is requested")
        .unwrap();
    assert!(leg.starts_with("CA"), "{leg}");
    assert_eq!(status, "in-progress", "the leg {leg} during its whisper");
    w.stop().await;
}
