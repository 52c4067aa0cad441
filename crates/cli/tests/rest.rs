//! The REST API of `dialtone call` and `dialtone load`, as an app uses it: when its stream
//! starts, the app lists its calls and hangs its own call up with a real HTTP POST (Basic
//! auth) to the address dialtone printed. The hang-up is a clean end (exit 0), shows on the
//! timeline, and is counted in the load summary.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dialtone");
const AC: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "rest-test-token";

/// What the app saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// dialtone's REST base URL, read from its banner.
    rest: Option<String>,
    /// Per stream: (call SID, its status in `Calls.json` when the stream started, the
    /// hang-up's HTTP status and the call's status in the answer).
    hangups: Vec<(String, Option<String>, u16, String)>,
}

type Shared = Arc<Mutex<Seen>>;

/// A voice app on a loopback port whose stream handler, on `start`, lists the account's
/// calls and hangs its own call up through dialtone's REST API. Returns its voice URL.
fn app(seen: Shared) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let twiml = format!(
                "<Response><Connect><Stream url=\"ws://{addr}/media\"/></Connect></Response>"
            );
            let router = axum::Router::new()
                .route(
                    "/voice",
                    post(move || async move { ([("content-type", "text/xml")], twiml) }),
                )
                .route("/media", get(media))
                .with_state(seen);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    format!("http://{addr}/voice")
}

async fn media(ws: WebSocketUpgrade, State(seen): State<Shared>) -> impl IntoResponse {
    ws.on_upgrade(move |socket| stream(socket, seen))
}

async fn stream(mut socket: WebSocket, seen: Shared) {
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        if v["event"] == "start" {
            let sid = v["start"]["callSid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            tokio::spawn(hang_up(sid, seen.clone()));
        }
    }
}

/// What the official helpers' `calls(sid).update(status='completed')` sends, preceded by a
/// list of the account's calls.
async fn hang_up(sid: String, seen: Shared) {
    let mut rest = None;
    for _ in 0..100 {
        rest = seen.lock().unwrap().rest.clone();
        if rest.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let base = format!(
        "{}/2010-04-01/Accounts/{AC}",
        rest.expect("dialtone's REST banner")
    );
    let http = reqwest::Client::new();
    let list = http
        .get(format!("{base}/Calls.json"))
        .basic_auth(AC, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let list: Value = serde_json::from_slice(&list).unwrap();
    let listed = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sid"] == sid.as_str())
        .map(|c| c["status"].as_str().unwrap().to_string());
    let resp = http
        .post(format!("{base}/Calls/{sid}.json"))
        .basic_auth(AC, Some(TOKEN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Status=completed")
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let status = body["status"].as_str().unwrap_or_default().to_string();
    seen.lock()
        .unwrap()
        .hangups
        .push((sid, listed, code, status));
}

/// Runs dialtone with `args`; the REST banner (on `banner_on`'s stream) is handed to the app.
/// Returns (exit code, stdout, stderr).
fn run(args: &[&str], seen: &Shared, banner_on_stderr: bool) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--account-sid", AC, "--auth-token", TOKEN])
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let watch = |pipe: Box<dyn Read + Send>, watching: bool| {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(pipe).lines() {
                let line = line.unwrap();
                if watching && let Some(rest) = line.strip_prefix("REST API: ") {
                    let url = rest.split_whitespace().next().unwrap().to_string();
                    seen.lock().unwrap().rest = Some(url);
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        })
    };
    let out = watch(Box::new(out), !banner_on_stderr);
    let err = watch(Box::new(err), banner_on_stderr);
    let code = child.wait().unwrap().code();
    (code, out.join().unwrap(), err.join().unwrap())
}

#[test]
fn call_hung_up_by_the_app_through_the_rest_api_is_a_clean_end() {
    let seen = Shared::default();
    let url = app(seen.clone());
    let (code, stdout, stderr) = run(&["call", "--webhook", &url], &seen, false);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("REST API: http://127.0.0.1:"),
        "the REST line is printed at start: {stdout}"
    );
    let hangups = std::mem::take(&mut seen.lock().unwrap().hangups);
    assert_eq!(hangups.len(), 1, "{stdout}");
    let (sid, listed, code, status) = &hangups[0];
    assert_eq!(listed.as_deref(), Some("in-progress"), "listed while live");
    assert_eq!((*code, status.as_str()), (200, "completed"));
    // The live timeline and the summary name the REST hang-up.
    let ended = "call     completed: hung up through the REST API (Status=completed)";
    assert!(stdout.contains(ended), "{stdout}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with(&format!("call {sid}  completed")))
        .unwrap_or_else(|| panic!("no summary line for {sid}: {stdout}"));
    assert!(
        summary.ends_with("hung up through the REST API (Status=completed)"),
        "{summary}"
    );
    assert!(stdout.contains("\nOK\n"), "{stdout}");

    // The same in the JSON report, whose stdout stays pure JSON (the banner goes to stderr).
    seen.lock().unwrap().rest = None;
    let (code, stdout, stderr) = run(&["call", "--json", "--webhook", &url], &seen, true);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("REST API: http://127.0.0.1:"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(
        report["end_reason"],
        "hung up through the REST API (Status=completed)"
    );
    let last = report["timeline"].as_array().unwrap().last().unwrap();
    assert_eq!(last["event"], "ended");
    assert_eq!(
        last["reason"],
        "hung up through the REST API (Status=completed)"
    );
    assert!(report["failures"].as_array().unwrap().is_empty());
}

#[test]
fn load_counts_the_calls_the_app_hung_up_through_the_rest_api() {
    let seen = Shared::default();
    let url = app(seen.clone());
    let (code, stdout, stderr) = run(
        &[
            "load",
            "--webhook",
            &url,
            "--calls",
            "3",
            "--concurrency",
            "3",
            "--progress",
            "off",
            "--json",
        ],
        &seen,
        true,
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["outcomes"]["ok"], 3, "{summary:#}");
    assert_eq!(summary["calls"]["rest_hangups"], 3, "{summary:#}");
    let hangups = &seen.lock().unwrap().hangups;
    assert_eq!(hangups.len(), 3);
    for (sid, listed, code, status) in hangups {
        assert_eq!(listed.as_deref(), Some("in-progress"), "{sid}");
        assert_eq!((*code, status.as_str()), (200, "completed"), "{sid}");
    }
}

#[test]
fn rest_listen_on_a_port_in_use_is_exit_2_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args([
            "call",
            "--webhook",
            "http://127.0.0.1:9/voice",
            "--rest-listen",
        ])
        .arg(&addr)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen for the REST API on {addr}")),
        "{err}"
    );

    // The lean --stream mode places no calls, so it has no REST API to put anywhere.
    let out = Command::new(BIN)
        .args(["load", "--stream", "ws://127.0.0.1:9/s", "--rest-listen"])
        .arg(&addr)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
