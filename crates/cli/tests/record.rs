//! `dialtone call --record DIR` against an app that `<Record>`s the caller: the recording is
//! written beside the stream WAVs, and the JSON report lists it.

use std::process::Command;

/// An app on a loopback port: `<Record>` at `/voice`, hang up at `/after`.
fn app() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
                let xml = if uri.path() == "/voice" {
                    "<Response><Record action=\"/after\" timeout=\"1\"/></Response>"
                } else {
                    "<Response><Hangup/></Response>"
                };
                ([("content-type", "text/xml")], xml)
            });
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

#[test]
fn record_dir_holds_each_record_verb_recording_as_a_wav() {
    let addr = app();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dialtone"))
        .args(["call", "--json", "--tail", "0.5s", "--record"])
        .arg(dir.path())
        .arg("--webhook")
        .arg(format!("http://{addr}/voice"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rec = &report["recordings"][0];
    let sid = rec["sid"].as_str().expect("the <Record> in the report");
    assert!(sid.starts_with("RE"), "{rec}");
    assert_eq!(rec["ended_by"], "silence", "{rec}");
    assert_eq!(rec["empty"], false, "{rec}");
    let call = report["call_sid"].as_str().unwrap();
    let path = dir.path().join(format!("{call}-{sid}.wav"));
    let reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    let ms = f64::from(reader.duration()) / 8.0;
    assert_eq!(ms, rec["duration_ms"].as_f64().unwrap());
    assert!(ms > 500.0, "{ms} ms");
}
