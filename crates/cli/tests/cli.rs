//! The `dialtone` binary as a user runs it: exit codes, messages, JSON and recordings.

use std::process::Command;

fn dialtone() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialtone"))
}

#[test]
fn a_relay_record_of_an_unknown_shape_is_exit_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"t_ms":0.1,"call_sid":"CA1","kind":"http_request","purpose":"voice","method":"POST","url":"http://127.0.0.1:9/voice","signature":"x","body":""}"#,
            "\n",
            r#"{"t_ms":1,"call_sid":"CA1","kind":"relay_open","session_id":"VX1"}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = dialtone()
        .arg("replay")
        .arg(&path)
        .args(["--webhook", "http://127.0.0.1:9/voice"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("relay.jsonl:2: not a valid capture line: missing field `url`"),
        "{err}"
    );
}

#[test]
fn bad_wav_is_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wav");
    std::fs::write(&path, "these are notes, not audio").unwrap();
    let out = dialtone()
        .args(["call", "--audio"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.wav") && err.contains("not a WAV"),
        "{err}"
    );

    let out = dialtone()
        .args(["call", "--audio", "/nonexistent/caller.wav"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/caller.wav"));
}

/// `audio/hello.wav` copied to `dir/caller.wav`, for a transcript sidecar beside it.
fn hello_copy(dir: &std::path::Path) -> std::path::PathBuf {
    let hello = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audio/hello.wav");
    let wav = dir.join("caller.wav");
    std::fs::copy(hello, &wav).unwrap();
    wav
}

#[test]
fn a_bad_transcript_sidecar_is_exit_2_naming_it_wherever_a_wav_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let wav = hello_copy(dir.path());
    let json = dir.path().join("caller.json");
    std::fs::write(
        &json,
        r#"{"turns": [{"start_ms": 300, "end_ms": 3497, "text": "Hi."},
                      {"start_ms": 4997, "end_ms": 9000, "text": "Bye."}]}"#,
    )
    .unwrap();
    let scenario = dir.path().join("mix.toml");
    std::fs::write(
        &scenario,
        "[[call]]\nname = \"x\"\naudio = \"caller.wav\"\n",
    )
    .unwrap();
    let (wav, folder, scenario) = (
        wav.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        scenario.to_str().unwrap(),
    );
    let webhook = ["--webhook", "http://127.0.0.1:9/voice"];
    // (`load --stream` sends the audio alone and measures no turns: it reads no sidecar.)
    let runs: [&[&str]; 3] = [
        &["call", "--audio", wav],
        &["load", webhook[0], webhook[1], "--audio", folder],
        &["load", webhook[0], webhook[1], "--scenario", scenario],
    ];
    for args in runs {
        let out = dialtone().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let said = format!(
            "{}: turns[1] ends at 9000 ms, past the end of {wav} (6740 ms)",
            json.display()
        );
        assert!(err.contains(&said), "{args:?}: {err}");
    }
}

#[test]
fn a_json_sidecar_gives_the_call_its_turns_and_words() {
    let dir = tempfile::tempdir().unwrap();
    let wav = hello_copy(dir.path());
    std::fs::write(
        dir.path().join("caller.json"),
        r#"{"turns": [{"start_ms": 300, "end_ms": 3497, "text": "Where is my order?"},
                      {"start_ms": 4997, "end_ms": 6422, "text": "Thanks, that's all."}]}"#,
    )
    .unwrap();
    let out = dialtone()
        .args(["call", "--json", "--fast", "--audio"])
        .arg(&wav)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let turns = report["streams"][0]["turns"].as_array().unwrap();
    let texts: Vec<_> = turns.iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["Where is my order?", "Thanks, that's all."],
        "{turns:#?}"
    );
}

#[test]
fn bad_flags_are_exit_2_with_the_reason() {
    let out = dialtone()
        .args(["call", "--tail", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));

    let out = dialtone()
        .args(["call", "--webhook", "ftp://127.0.0.1/voice"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://"));

    let out = dialtone().args(["call", "--dtmf", "12x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Tunnel mappings and TLS trust, on every command that reaches apps.
    for cmd in ["call", "load", "replay", "serve"] {
        let out = dialtone()
            .args([
                cmd,
                "--tunnel",
                "https://bot.example.ts.net/voice=http://127.0.0.1:1",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not paths"), "{cmd}: {err}");
    }
    let out = dialtone()
        .args(["call", "--cacert", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cacert /nonexistent/ca.pem"), "{err}");
    let out = dialtone()
        .args(["load", "--stream", "wss://127.0.0.1:1/ws", "--calls", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plain WebSocket only"), "{err}");
    let out = dialtone()
        .args(["load", "--stream", "ws://127.0.0.1:1/ws", "--insecure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("do nothing with --stream"));
}

#[test]
fn unreachable_webhook_is_exit_1_naming_the_step() {
    // Port 1 (tcpmux) listens nowhere here; a freed ephemeral port could be taken again by
    // the call's own REST API or milestone endpoint, which answer 404.
    let out = dialtone()
        .args(["call", "--quiet", "--webhook"])
        .arg("http://127.0.0.1:1/voice")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED at webhook [11205]"), "{text}");
}

/// Issue 12: a `<Redirect>` loop is a failure, exit 1, named with its step and code, after
/// a bounded number of requests.
#[test]
fn redirect_loop_is_exit_1_as_twiml_loop() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let requests = Arc::new(AtomicU64::new(0));
    let seen = requests.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(move || {
                seen.fetch_add(1, Ordering::Relaxed);
                async {
                    (
                        [("content-type", "text/xml")],
                        "<Response><Redirect>/loop</Redirect></Response>",
                    )
                }
            });
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let out = dialtone()
        .args(["call", "--quiet", "--json", "--webhook"])
        .arg(format!("http://{addr}/loop"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failure = &report["failures"][0];
    assert_eq!(failure["kind"], "twiml_loop");
    assert_eq!(failure["documents"], 50);
    assert_eq!(report["webhooks"], 50);
    assert_eq!(requests.load(Ordering::Relaxed), 50);
}

#[test]
fn default_call_against_the_reference_app_completes_with_json_and_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dialtone()
        .args([
            "call",
            "--json",
            "--tail",
            "1s",
            "--record-sent",
            "--record",
        ])
        .arg(dir.path())
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
    assert_eq!(report["status"], "completed");
    let stream = &report["streams"][0];
    assert!(stream["media_received"].as_u64().unwrap() > 0);
    assert!(!stream["marks"].as_array().unwrap().is_empty());
    // What the caller heard and sent, as 8 kHz 16-bit mono WAV.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    for path in names {
        let reader = hound::WavReader::open(&path).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (8000, 1, 16)
        );
        // The stream lasted the caller's 6.7 s of audio plus the 1 s tail.
        let secs = reader.duration() as f64 / 8000.0;
        assert!((7.0..9.0).contains(&secs), "{path:?}: {secs} s");
    }
}

#[test]
fn barge_in_script_reports_turns_milestones_and_the_clear() {
    let out = dialtone()
        .args(["call", "--json", "--script", "barge_in", "--tail", "0.5s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let turns = report["streams"][0]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "{turns:#?}");
    // The caller talks over the app's first reply: the app clears, and says so in time.
    assert_eq!(turns[1]["barge_in"], true);
    let clear = turns[1]["clear_after_ms"].as_f64().unwrap();
    assert!((0.0..1000.0).contains(&clear), "{clear}");
    // Issue 11: the clears are counted, and a barge-in the app handled is not talk-over.
    let stream = &report["streams"][0];
    assert!(stream["clears"].as_u64().unwrap() >= 1, "{stream}");
    assert_eq!(stream["talk_over_ms"].as_f64(), Some(0.0), "{stream}");
    assert_eq!(stream["vad_splits"].as_u64(), Some(0), "{stream}");
    for t in turns {
        assert_eq!(t["talk_over_ms"].as_f64(), Some(0.0), "{t}");
        assert_eq!(t["vad_splits"].as_u64(), Some(0), "{t}");
        assert!(t["reply_ms"].as_f64().is_some(), "{t}");
        let names: Vec<_> = t["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m[0].as_str().unwrap().to_string())
            .collect();
        assert!(names.contains(&"vad.speech_end".to_string()), "{names:?}");
    }
}

#[test]
fn the_reference_app_answers_every_turn_in_virtual_time_as_in_real_time() {
    // It answers as it reads: with --fast every turn is answered, and nothing the caller
    // sends runs ahead of its reading (no replies pushed into the next turn, no clears).
    let out = dialtone()
        .args(["call", "--json", "--fast", "--script", "session"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["failures"].as_array().unwrap().len(), 0, "{stdout}");
    let stream = &report["streams"][0];
    let turns = stream["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 5, "{turns:#?}");
    for t in turns {
        let reply = t["reply_ms"].as_f64();
        // The app's VAD closes a turn after its hangover of silence, on the audio's time.
        assert!(reply.is_some_and(|ms| (300.0..1000.0).contains(&ms)), "{t}");
    }
    assert_eq!(stream["clears"], 0, "{stream}");
}

/// Runs `dialtone bot` with `bot_args`, calls it saying `answer_yes` and returns the call's
/// exit code and JSON report.
fn call_a_standalone_bot(bot_args: &[&str]) -> (Option<i32>, serde_json::Value) {
    use std::io::{BufRead, BufReader};
    let mut bot = dialtone()
        .args(["bot", "--listen", "127.0.0.1:0"])
        .args(bot_args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut reader = BufReader::new(bot.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    // Keep draining so the app's later output never meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let base = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    let out = dialtone()
        .args([
            "call",
            "--json",
            "--script",
            "answer_yes",
            "--tail",
            "0.5s",
            "--webhook",
        ])
        .arg(format!("{base}/voice"))
        .output()
        .unwrap();
    let _ = bot.kill();
    let _ = bot.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (out.status.code(), report)
}

#[test]
fn bot_runs_alone_and_a_call_against_it_completes() {
    let (code, report) = call_a_standalone_bot(&[]);
    assert_eq!(code, Some(0), "{report}");
    let turns = report["streams"][0]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0]["text"], "Yes.");
    assert!(turns[0]["reply_ms"].as_f64().is_some());
}

/// `dialtone bot --relay` is a ConversationRelay app, and its relay faults reach the report:
/// `close_mid_turn` closes the socket two tokens into the answer, a failed session (64105).
#[test]
fn bot_relay_closing_mid_turn_fails_the_call_with_64105() {
    let (code, report) = call_a_standalone_bot(&["--relay", "--misbehave", "close_mid_turn=1"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["status"], "failed");
    assert_eq!(report["failures"][0]["kind"], "relay_ended", "{report}");
    let relay = &report["relay"][0];
    assert_eq!(relay["end"]["status"], "failed", "{relay}");
    assert_eq!(relay["end"]["error"][0], 64105, "{relay}");
    let turn = &relay["turns"][0];
    assert!(turn["first_token_ms"].as_f64().is_some(), "{turn}");
    assert!(turn["last_token_ms"].is_null(), "{turn}");
    assert_eq!(turn["tokens"], 2, "{turn}");
}

/// `--embedded-app relay`: the reference app dialtone starts is a ConversationRelay app, and
/// the call's report has its session: every turn prompted and answered with timed tokens.
#[test]
fn call_with_the_embedded_relay_app_reports_its_session() {
    let out = dialtone()
        .args([
            "call",
            "--embedded-app",
            "relay",
            "--script",
            "question_pace",
            "--tail",
            "0.5s",
            "--tts-pace",
            "10ms",
            "--json",
        ])
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
    assert_eq!(report["status"], "completed");
    assert!(report["streams"].as_array().unwrap().is_empty());
    let relay = &report["relay"][0];
    assert_eq!(relay["end"]["status"], "completed", "{relay}");
    let turn = &relay["turns"][0];
    assert_eq!(turn["text"], "Am I speaking too fast?");
    // 500 ms of recognition, then the app's 150 ms of thinking.
    let first = turn["first_token_ms"].as_f64().unwrap();
    assert!((650.0..1000.0).contains(&first), "{turn}");
    assert!(turn["last_token_ms"].as_f64().unwrap() > first, "{turn}");
    assert_eq!(turn["tokens"], 7, "{turn}");
}

/// `--embedded-app` chooses the reference app: with `--webhook` (call, load) or `--stream`
/// (load) there is none, and saying it anyway is bad input.
#[test]
fn embedded_app_is_refused_where_no_reference_app_runs() {
    for args in [
        &[
            "call",
            "--webhook",
            "http://127.0.0.1:9/voice",
            "--embedded-app",
            "relay",
        ][..],
        &[
            "load",
            "--webhook",
            "http://127.0.0.1:9/voice",
            "--embedded-app",
            "stream",
        ],
    ] {
        let out = dialtone().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--embedded-app") && err.contains("--webhook"),
            "{args:?}: {err}"
        );
    }
    let out = dialtone()
        .args([
            "load",
            "--stream",
            "ws://127.0.0.1:9/media",
            "--embedded-app",
            "relay",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--embedded-app") && err.contains("--stream"),
        "{err}"
    );
}
