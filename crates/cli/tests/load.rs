//! Black-box tests of `dialtone load`, `report merge` and `demo` through the built binary:
//! exit codes, threshold failures named, Ctrl-C still writing results, and 4 shard processes
//! whose merge equals a single run.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use futures_util::StreamExt;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dialtone");

/// A WebSocket server on a loopback port that reads every stream to its end; returns its URL.
fn sink() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/stream", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                });
            }
        });
    });
    url
}

fn dialtone(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// The run's stdout, after checking it exited 0 (both streams shown when it did not).
fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_failing_threshold_exits_1_and_is_named() {
    let url = sink();
    let out = dialtone(&[
        "load",
        "--stream",
        &url,
        "--streams",
        "3",
        "--seconds",
        "0.2",
        "--progress",
        "off",
        "--threshold",
        "frame_lateness max < 0.001ms",
        "--threshold",
        "ws_connect p99 < 10s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("threshold failed: frame_lateness max < 0.001ms"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ws_connect p99"),
        "a passing threshold is not reported as failed"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED  frame_lateness max < 0.001ms"),
        "{stdout}"
    );

    let ok = dialtone(&[
        "load",
        "--stream",
        &url,
        "--streams",
        "2",
        "--seconds",
        "0.1",
        "--progress",
        "off",
        "--threshold",
        "ws_connect p99 < 10s",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn bad_input_exits_2() {
    let out = dialtone(&[
        "load",
        "--stream",
        "ws://127.0.0.1:9/x",
        "--threshold",
        "latency p95 < 1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown metric"));
    let out = dialtone(&["load", "--stream", "ws://127.0.0.1:9/x", "--shard", "4/4"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn four_shards_merge_to_a_single_runs_counts() {
    let url = sink();
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--streams",
        "14",
        "--seconds",
        "0.3",
        "--ramp",
        "0.3s",
        "--seed",
        "5",
        "--progress",
        "off",
        "--quiet",
    ];
    let single = dir.path().join("single");
    let mut args = vec!["load", "--stream", &url, "--out", single.to_str().unwrap()];
    args.extend(common);
    assert!(dialtone(&args).status.success());

    let shard_dirs: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("shard-{i}")))
        .collect();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let shard = format!("{i}/4");
            let mut args = vec![
                "load",
                "--stream",
                &url,
                "--shard",
                &shard,
                "--out",
                shard_dirs[i].to_str().unwrap(),
            ];
            args.extend(common);
            Command::new(BIN)
                .args(&args)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let merged = dir.path().join("merged");
    let mut args = vec!["report", "merge", "--out", merged.to_str().unwrap()];
    let shard_strs: Vec<String> = shard_dirs.iter().map(|d| d.display().to_string()).collect();
    args.extend(shard_strs.iter().map(String::as_str));
    let out = dialtone(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (one, all) = (summary(&single), summary(&merged));
    assert_eq!(all["shards"].as_array().unwrap().len(), 4);
    for key in ["scheduled", "started", "finished", "succeeded", "failed"] {
        assert_eq!(all["calls"][key], one["calls"][key], "calls.{key}");
    }
    assert_eq!(one["calls"]["succeeded"], 14);
    assert_eq!(all["frames"]["sent"], one["frames"]["sent"]);
    assert_eq!(all["outcomes"], one["outcomes"]);
    for m in ["frame_lateness", "ws_connect"] {
        assert_eq!(
            all["metrics"][m]["count"], one["metrics"][m]["count"],
            "{m}"
        );
    }
    assert!(merged.join("histograms.hlog").exists() && merged.join("report.html").exists());
}

#[test]
fn interrupt_stops_cleanly_and_writes_results() {
    let url = sink();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let child = Command::new(BIN)
        .args([
            "load",
            "--stream",
            &url,
            "--streams",
            "5",
            "--seconds",
            "60",
            "--progress",
            "plain",
            "--out",
        ])
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two seconds in, the streams are running; then Ctrl-C.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopping"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out_dir);
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["calls"]["finished"], 5);
    assert!(s["frames"]["sent"].as_u64().unwrap() > 0);
}

#[test]
fn demo_runs_full_calls_against_the_reference_app() {
    let out = dialtone(&["demo", "--calls", "3"]);
    let stdout = succeeded(&out);
    assert!(
        stdout.contains("3 started, 3 finished: 3 ok, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("turn_latency"), "{stdout}");
}

/// `load --script` speaks a corpus entry with its ground-truth turns, as `call --script` does:
/// two calls of `rapid` (4 turns in the manifest) measure 8 turns against the reference app.
/// An unknown entry, or `--script` with `--audio`, is bad input.
#[test]
fn load_script_speaks_a_corpus_entry_with_its_turns() {
    let corpus = dialtone_corpus::Corpus::open(&dialtone_corpus::Corpus::default_dir()).unwrap();
    let turns = corpus.get("rapid").unwrap().turns.len() as u64;
    assert!(turns > 1);
    let out = dialtone(&[
        "load",
        "--calls",
        "2",
        "--concurrency",
        "2",
        "--script",
        "rapid",
        "--tail",
        "0.5s",
        "--json",
    ]);
    let stdout = succeeded(&out);
    let s: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(s["conversation"]["turns"], 2 * turns, "{stdout}");

    let out = dialtone(&["load", "--calls", "1", "--script", "no_such_entry"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no corpus entry named \"no_such_entry\""),
        "{err}"
    );
    let out = dialtone(&["load", "--script", "rapid", "--audio", "audio/hello.wav"]);
    assert_eq!(out.status.code(), Some(2));
}
