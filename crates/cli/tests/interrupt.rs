//! Issue 12, item 6: a `dialtone load` stopped by SIGINT while its calls are mid-flight keeps
//! every sample measured before the cut (each answered webhook, each WebSocket upgrade), writes
//! its results, and exits 130 (interrupted), not 0.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dialtone");

/// What the app saw.
#[derive(Default)]
struct Seen {
    /// Voice webhooks answered.
    webhooks: AtomicUsize,
    /// Stream upgrades answered with 101.
    upgrades: AtomicUsize,
    /// Stream upgrades left unanswered on purpose.
    stuck: AtomicUsize,
}

/// A voice app on a loopback port: every call gets `<Connect><Stream>`; every third call's
/// stream URL never answers its upgrade, the others are accepted and then never answered
/// (the caller stays on the line). Returns its voice URL.
fn app(seen: Arc<Seen>) -> String {
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
            let voice = move |State(seen): State<Arc<Seen>>| async move {
                let n = seen.webhooks.fetch_add(1, Ordering::SeqCst);
                let path = if n % 3 == 2 { "stuck" } else { "media" };
                let twiml = format!(
                    "<Response><Connect><Stream url=\"ws://{addr}/{path}\"/></Connect></Response>"
                );
                ([("content-type", "text/xml")], twiml)
            };
            let router = axum::Router::new()
                .route("/voice", post(voice))
                .route("/media", get(media))
                .route("/stuck", get(stuck))
                .with_state(seen);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    format!("http://{addr}/voice")
}

async fn media(ws: WebSocketUpgrade, State(seen): State<Arc<Seen>>) -> impl IntoResponse {
    ws.on_upgrade(move |mut socket| async move {
        seen.upgrades.fetch_add(1, Ordering::SeqCst);
        while let Some(Ok(_)) = socket.recv().await {}
    })
}

async fn stuck(State(seen): State<Arc<Seen>>) {
    seen.stuck.fetch_add(1, Ordering::SeqCst);
    std::future::pending::<()>().await
}

#[test]
fn sigint_mid_flight_keeps_every_measured_sample_and_exits_130() {
    let seen = Arc::new(Seen::default());
    let url = app(seen.clone());
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let calls = 9;
    let mut child = Command::new(BIN)
        .args([
            "load",
            "--webhook",
            &url,
            "--calls",
            "9",
            "--concurrency",
            "9",
        ])
        .args(["--tail", "60s", "--no-audio-timeout", "0", "--drain", "1s"])
        .args(["--progress", "off", "--out"])
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until every call is mid-flight: webhook answered, upgrade answered or stuck.
    let mid_flight = || seen.upgrades.load(Ordering::SeqCst) + seen.stuck.load(Ordering::SeqCst);
    for _ in 0..1500 {
        if mid_flight() == calls {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mid_flight(), calls, "the calls never got going");
    // The 101s reach dialtone a moment after the app sent them.
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopping"), "{stderr}");

    let s: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["calls"]["started"], calls);
    assert_eq!(s["calls"]["finished"], calls);
    assert_eq!(s["outcomes"]["interrupted"], calls, "{}", s["outcomes"]);
    let webhooks = seen.webhooks.load(Ordering::SeqCst);
    let upgrades = seen.upgrades.load(Ordering::SeqCst);
    assert_eq!((webhooks, upgrades), (9, 6));
    assert_eq!(
        s["metrics"]["webhook"]["count"], webhooks,
        "{}",
        s["metrics"]
    );
    assert_eq!(
        s["metrics"]["ws_connect"]["count"], upgrades,
        "{}",
        s["metrics"]
    );
    // The interval log holds them too, and the HTML report is written.
    let hlog = std::fs::read_to_string(out_dir.join("histograms.hlog")).unwrap();
    assert!(hlog.contains("Tag=webhook,") && hlog.contains("Tag=ws_connect,"));
    assert!(out_dir.join("report.html").is_file());
}
