//! Over real sockets on 127.0.0.1: queued calls that end `canceled` (a REST cancel, or the
//! server shutting down) still send their terminal status callback to a real app; `/health`
//! answers while maximum-size requests are handled; a finished call's stream audio and
//! recording media are shown only to the credentials they should be.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use dialtone_server::config::FileConfig;
use dialtone_server::{MAX_BODY, ServerConfig};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

const AC1: &str = "AC11111111111111111111111111111111";
const AC2: &str = "AC22222222222222222222222222222222";

/// A status callback received: its path and `CallStatus`.
type Hit = (String, String);

/// The app: `/voice` answers TwiML that keeps the call up; anything else is a callback.
async fn app() -> (String, mpsc::UnboundedReceiver<Hit>) {
    async fn hit(
        State(tx): State<mpsc::UnboundedSender<Hit>>,
        uri: Uri,
        body: Bytes,
    ) -> ([(&'static str, &'static str); 1], &'static str) {
        let xml = [("content-type", "text/xml")];
        if uri.path() == "/voice" {
            return (xml, r#"<Response><Pause length="30"/></Response>"#);
        }
        let status = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "CallStatus")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let _ = tx.send((uri.path().to_string(), status));
        (xml, "<Response/>")
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let router = axum::Router::new().fallback(hit).with_state(tx);
    tokio::spawn(async move { axum::serve(l, router).await });
    (url, rx)
}

fn config(extra: &str) -> ServerConfig {
    let file: FileConfig = toml::from_str(&format!(
        r#"ring_ms = 10
        {extra}
        [[accounts]]
        sid = "{AC1}"
        auth_token = "token1"
        [[accounts]]
        sid = "{AC2}"
        auth_token = "token2"
        "#
    ))
    .unwrap();
    ServerConfig::from_file(file, std::path::Path::new(".")).unwrap()
}

struct Server {
    url: String,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(config: ServerConfig) -> Server {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(dialtone_server::run(l, config, async {
        let _ = stopped.await;
    }));
    Server {
        url,
        http: reqwest::Client::new(),
        stop,
        task,
    }
}

impl Server {
    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/2010-04-01/Accounts/{AC1}/{path}", self.url))
            .basic_auth(AC1, Some("token1"))
            .header("content-type", form(pairs).0)
            .body(form(pairs).1)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, json(r).await)
    }

    /// Creates a call to a number dialtone does not host, running `app`'s `/voice`.
    async fn call(&self, app: &str, callback: &str) -> String {
        let (status, v) = self
            .post(
                "Calls.json",
                &[
                    ("To", "+15551112222"),
                    ("From", "+15005550006"),
                    ("Url", &format!("{app}/voice")),
                    ("StatusCallback", callback),
                ],
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v["sid"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, who: Option<(&str, &str)>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some((user, pass)) = who {
            req = req.basic_auth(user, Some(pass));
        }
        req.send().await.unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A form body and its content type.
fn form(pairs: &[(&str, &str)]) -> (&'static str, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    ("application/x-www-form-urlencoded", body)
}

async fn json(r: reqwest::Response) -> Value {
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null)
}

/// Callbacks until `n` have arrived (or 20 s pass).
async fn hits(rx: &mut mpsc::UnboundedReceiver<Hit>, n: usize) -> Vec<Hit> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(h)) => out.push(h),
            _ => break,
        }
    }
    out
}

#[tokio::test]
async fn queued_calls_canceled_through_rest_send_their_callbacks() {
    for queued in [1, 50] {
        let (app, mut rx) = app().await;
        let s = serve(config("max_concurrent_calls = 1")).await;
        // The one permit is held by a call that stays up; the rest wait `queued`.
        s.call(&app, &format!("{app}/running")).await;
        let mut sids = Vec::new();
        for i in 0..queued {
            sids.push(s.call(&app, &format!("{app}/cb/{i}")).await);
        }
        for sid in &sids {
            let (status, v) = s
                .post(&format!("Calls/{sid}.json"), &[("Status", "canceled")])
                .await;
            assert_eq!((status, v["status"].as_str()), (200, Some("canceled")));
        }
        // At once, not when a permit frees (the running call lasts 30 s).
        let got = hits(&mut rx, queued).await;
        assert_eq!(got.len(), queued, "{got:?}");
        for i in 0..queued {
            let path = format!("/cb/{i}");
            assert!(
                got.iter().any(|(p, st)| *p == path && st == "canceled"),
                "no canceled callback on {path}: {got:?}"
            );
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn shutdown_cancels_queued_calls_with_their_callbacks() {
    for queued in [1, 50] {
        let (app, mut rx) = app().await;
        let s = serve(config("max_concurrent_calls = 1")).await;
        s.call(&app, &format!("{app}/running")).await;
        for i in 0..queued {
            s.call(&app, &format!("{app}/cb/{i}")).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.stop().await;
        // Every call, queued or running, reported its end before the server stopped.
        let got = hits(&mut rx, queued + 1).await;
        assert_eq!(got.len(), queued + 1, "{got:?}");
        let canceled = got
            .iter()
            .filter(|(p, st)| p.starts_with("/cb/") && st == "canceled");
        assert_eq!(canceled.count(), queued, "{got:?}");
        assert!(got.iter().any(|(p, _)| p == "/running"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_maximum_size_requests_are_handled() {
    let s = serve(config("")).await;
    // The probe's request: a Twiml of ~120,000 attributes in 1.9 MB (seconds of quadratic
    // parsing on the async threads before), and requests at the largest body accepted.
    let attrs: String = (0..120_000).map(|i| format!(" a{i}=\"\"")).collect();
    let huge = format!("<Response><Say{attrs}>x</Say></Response>");
    let huge = huge[..huge.len().min(1_900_000)].to_string();
    let mut at_limit = "<Response><Say".to_string();
    while at_limit.len() < MAX_BODY / 3 - 40 {
        at_limit.push_str(&format!(" a{}=\"\"", at_limit.len()));
    }
    at_limit.push_str(">x</Say></Response>");
    let mut tasks = Vec::new();
    for twiml in [&huge, &huge, &huge, &at_limit, &at_limit, &at_limit] {
        let (http, url, twiml) = (s.http.clone(), s.url.clone(), twiml.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{url}/2010-04-01/Accounts/{AC1}/Calls.json"))
                .basic_auth(AC1, Some("token1"))
                .header(
                    "content-type",
                    form(&[
                        ("To", "+15551112222"),
                        ("From", "+15005550006"),
                        ("Twiml", &twiml),
                    ])
                    .0,
                )
                .body(
                    form(&[
                        ("To", "+15551112222"),
                        ("From", "+15005550006"),
                        ("Twiml", &twiml),
                    ])
                    .1,
                )
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v = json(r).await;
            (status, v["code"].as_u64())
        }));
    }
    while tasks.iter().any(|t| !t.is_finished()) {
        let health = tokio::time::timeout(
            Duration::from_secs(2),
            s.http.get(format!("{}/health", s.url)).send(),
        )
        .await;
        assert!(
            health.is_ok_and(|r| r.is_ok_and(|r| r.status() == 200)),
            "/health stalled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        let refused = t.await.unwrap();
        assert!(
            refused == (413, Some(20413)) || refused == (400, Some(32018)),
            "{refused:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn stream_audio_and_enforced_media_auth_follow_the_account() {
    let bot = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bot_url = format!("http://{}/voice", bot.local_addr().unwrap());
    tokio::spawn(dialtone_bot::serve(
        bot,
        dialtone_bot::BotConfig {
            auth_token: "token1".into(),
            ..dialtone_bot::BotConfig::default()
        },
        std::future::pending(),
    ));
    let s = serve(config(&format!(
        "enforce_http_auth_on_media_urls = true\n\
         [[numbers]]\nphone_number = \"+15005550001\"\nvoice_url = \"{bot_url}\""
    )))
    .await;
    let (status, v) = s
        .post(
            "Calls.json",
            &[
                ("To", "+15005550001"),
                ("From", "+15005550006"),
                ("Twiml", "<Response><Say>one two three four five six</Say><Pause length=\"3\"/></Response>"),
                ("Record", "true"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let sid = v["sid"].as_str().unwrap().to_string();
    let one = format!("/2010-04-01/Accounts/{AC1}/Calls/{sid}.json");
    let mut call = Value::Null;
    for _ in 0..300 {
        call = json(s.get(&one, Some((AC1, "token1"))).await).await;
        if call["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call["status"], "completed", "{call}");
    let audio = format!("/calls/{sid}/streams/0/heard.wav");
    let mine = s.get(&audio, Some((AC1, "token1"))).await;
    assert_eq!(mine.status(), 200);
    assert!(mine.bytes().await.unwrap().starts_with(b"RIFF"));
    assert_eq!(s.get(&audio, Some((AC2, "token2"))).await.status(), 404);
    assert_eq!(s.get(&audio, None).await.status(), 401);
    let recs_path = format!("/2010-04-01/Accounts/{AC1}/Calls/{sid}/Recordings.json");
    let recs = json(s.get(&recs_path, Some((AC1, "token1"))).await).await;
    let media = recs["recordings"][0]["media_url"].as_str().unwrap();
    let path = &media[s.url.len()..];
    let anon = s.get(path, None).await;
    assert_eq!(anon.status(), 401);
    assert!(anon.headers().contains_key("www-authenticate"));
    assert_eq!(s.get(path, Some((AC2, "token2"))).await.status(), 401);
    let ok = s.get(path, Some((AC1, "token1"))).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.bytes().await.unwrap().starts_with(b"RIFF"));
    s.stop().await;
}
