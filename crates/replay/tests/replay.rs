//! Replay against real apps on loopback ports: captures recorded by the call engine and
//! written by hand, a crash reproduced and a fix detected, `--fast` byte-exactness, bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{App, Mode, TOKEN, synth_capture};
use dialtone_replay::{ReplayError, ReplayOptions, replay};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn opts(file: &std::path::Path, app: &App) -> ReplayOptions {
    let mut o = ReplayOptions::new(file, app.voice_url(), TOKEN);
    o.grace = Duration::from_millis(500);
    o
}

/// The `ws_out` texts of a capture, in order.
fn ws_outs(capture: &str) -> Vec<String> {
    capture
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "ws_out")
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn engine_capture_replays_as_a_match() {
    let recorded_against = App::start(Mode::Fixed).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    let capture = Arc::new(dialtone_call::capture::Capture::new(Box::new(
        std::io::BufWriter::new(file),
    )));
    let pcm: Vec<i16> = (0..8 * 600)
        .map(|i| ((i as f64 / 8000.0 * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16)
        .collect();
    let mut cfg = dialtone_call::CallConfig::new(
        recorded_against.voice_url(),
        Arc::new(dialtone_audio::FrameSet::from_pcm(&pcm)),
    );
    cfg.auth_token = TOKEN.to_string();
    cfg.caller.tail = Duration::from_millis(300);
    cfg.no_audio_timeout = None;
    cfg.capture = Some(capture.clone());
    let result = dialtone_call::Engine::new().place_call(cfg, None).await;
    assert!(result.report.is_success(), "{:#?}", result.report.failures);
    capture.finish().unwrap();

    // Replayed against another instance of the same app, on another port.
    let app = App::start(Mode::Fixed).await;
    let report = replay(&opts(&path, &app)).await.unwrap();
    println!("{}", report.to_text());
    assert!(report.matches, "{}", report.to_text());
    assert!(report.reproduced);
    assert_eq!(report.exit_code(), 0);
    assert!(
        report.verdict.starts_with("REPRODUCED"),
        "{}",
        report.verdict
    );
    assert_eq!(report.close.replayed.by, "dialtone");
    assert!(report.stream.app_messages_captured >= 3);
    assert_eq!(
        report.stream.app_messages_matching,
        report.stream.app_messages_captured
    );
    assert!(report.timing.meaningful && report.timing.p95_ms.is_some());
    // Byte for byte what the engine sent.
    let captured = std::fs::read_to_string(&path).unwrap();
    assert_eq!(app.streams()[0], ws_outs(&captured));
}

#[tokio::test]
async fn an_injected_drop_is_replayed_as_a_drop() {
    // Recorded with `--faults drop=400ms`: dialtone let go of the socket without a close
    // frame. The replay must do the same, not close politely.
    let recorded_against = App::start(Mode::Fixed).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drop.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    let capture = Arc::new(dialtone_call::capture::Capture::new(Box::new(
        std::io::BufWriter::new(file),
    )));
    let mut cfg = dialtone_call::CallConfig::new(
        recorded_against.voice_url(),
        Arc::new(dialtone_audio::FrameSet::silence(50)),
    );
    cfg.auth_token = TOKEN.to_string();
    cfg.no_audio_timeout = None;
    cfg.capture = Some(capture.clone());
    cfg.faults = Some(Arc::new("drop=400ms".parse().unwrap()));
    let result = dialtone_call::Engine::new().place_call(cfg, None).await;
    assert_eq!(result.report.streams[0].close_code, None);
    capture.finish().unwrap();

    let app = App::start(Mode::Fixed).await;
    let mut o = opts(&path, &app);
    o.fast = true;
    let report = replay(&o).await.unwrap();
    assert!(report.reproduced, "{}", report.to_text());
    assert_eq!(report.close.replayed.by, "dialtone");
    assert_eq!(report.close.replayed.code, None);
    assert!(
        report.close.replayed.text.contains("no close frame"),
        "{}",
        report.to_text()
    );
}

#[tokio::test]
async fn crash_on_duplicate_frame_is_reproduced_and_a_fix_diverges() {
    let dir = tempfile::tempdir().unwrap();
    // Recorded against a buggy app that has since gone (port 9); frame 14 went out twice.
    let text = synth_capture("http://127.0.0.1:9", 30, Some(14), Mode::DropsOnDuplicate);
    let path = write(&dir, "crash.jsonl", &text);
    let dup_index = ws_outs(&text).len(); // connected, start, 15 frames, the duplicate
    assert_eq!(dup_index, 18);

    let buggy = App::start(Mode::DropsOnDuplicate).await;
    let report = replay(&opts(&path, &buggy)).await.unwrap();
    println!("{}", report.to_text());
    assert!(report.matches, "{}", report.to_text());
    assert!(report.reproduced);
    assert_eq!(report.close.replayed.by, "dropped");
    assert_eq!(report.close.replayed.after_ws_out, dup_index);
    assert_eq!(
        report.verdict,
        "REPRODUCED: the app dropped the socket (no close frame) after ws_out #18 \
         (media, sequenceNumber 16), as in the capture"
    );
    assert_eq!(report.exit_code(), 0);

    // --fast stops at the same message.
    let mut fast = opts(&path, &buggy);
    fast.fast = true;
    let report = replay(&fast).await.unwrap();
    assert!(report.reproduced, "{}", report.to_text());
    assert_eq!(report.close.replayed.after_ws_out, dup_index);
    assert!(!report.timing.meaningful);

    // The fixed app survives the duplicate: the replay says where it parts from the capture.
    let fixed = App::start(Mode::Fixed).await;
    let report = replay(&opts(&path, &fixed)).await.unwrap();
    println!("{}", report.to_text());
    assert!(!report.matches && !report.reproduced);
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.close.replayed.by, "kept_open");
    let first = report.first_divergence().unwrap();
    assert_eq!(first.kind, "close");
    assert_eq!(first.after_ws_out, Some(dup_index));
    assert!(
        report.verdict.starts_with(
            "NOT REPRODUCED: in the capture the app dropped the socket (no close frame) after \
             ws_out #18"
        ),
        "{}",
        report.verdict
    );
    // Everything up to the crash still matched.
    assert_eq!(report.stream.app_messages_matching, 3);
}

#[tokio::test]
async fn fast_sends_identical_bytes_and_a_minute_replays_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let text = synth_capture("http://127.0.0.1:9", 3000, None, Mode::Fixed);
    let path = write(&dir, "minute.jsonl", &text);
    let app = App::start(Mode::Fixed).await;
    let mut o = opts(&path, &app);
    o.fast = true;
    let started = tokio::time::Instant::now();
    let report = replay(&o).await.unwrap();
    let took = started.elapsed();
    assert!(report.matches, "{}", report.to_text());
    assert_eq!(report.stream.ws_out_sent, 3003);
    // A 60 s capture; --fast skips the idle time (generous bound for loaded CI hosts).
    assert!(took < Duration::from_secs(5), "took {took:?}");
    println!("60 s capture replayed with --fast in {took:?}");
    let received = &app.streams()[0];
    let sent = ws_outs(&text);
    assert_eq!(received.len(), sent.len());
    for (i, (a, b)) in received.iter().zip(&sent).enumerate() {
        assert!(a == b, "ws_out #{} differs", i + 1);
    }
}

#[tokio::test]
async fn fast_tells_a_reply_that_came_frames_later_from_a_content_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let text = synth_capture("http://127.0.0.1:9", 13, None, Mode::Fixed);
    // The app answers the 10th frame (ws_out #12) with its payload and a mark. Move that
    // answer to after the 7th frame (ws_out #9): in this capture the app answered 3 frames
    // sooner than it does now, with the same messages.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mark = lines.iter().position(|l| l.contains("echo-10")).unwrap();
    let answer: Vec<String> = lines.drain(mark - 1..=mark).collect();
    assert!(answer.iter().all(|l| l.contains(r#""kind":"ws_in""#)));
    let ninth_out = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(r#""kind":"ws_out""#))
        .nth(8)
        .unwrap()
        .0;
    lines.splice(ninth_out + 1..ninth_out + 1, answer);
    let path = write(&dir, "earlier.jsonl", &(lines.join("\n") + "\n"));

    let app = App::start(Mode::Fixed).await;
    let mut o = opts(&path, &app);
    o.fast = true;
    let report = replay(&o).await.unwrap();
    println!("{}", report.to_text());
    assert!(!report.matches, "{}", report.to_text());
    assert_eq!(report.exit_code(), 1);
    assert!(report.reproduced, "the stream still ends as captured");
    assert_eq!(report.stream.app_messages_matching, 3, "same content");
    assert_eq!(report.divergences.len(), 1, "{:#?}", report.divergences);
    let d = report.first_divergence().unwrap();
    assert_eq!((d.kind, d.app_message), ("timing", Some(2)));
    assert!(
        d.description
            .contains("frames later than in the capture; content matches"),
        "{}",
        d.description
    );
    // Waiting on a late app falls back to a frame of real time per send, so the reply lands
    // where it would in real time (a loaded host may let it slip a frame further).
    let frames: u32 = d.description
        ["timing divergence: same messages, the app's reply came ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3..=5).contains(&frames), "{}", d.description);
    assert!(
        report
            .verdict
            .contains("the app's answers match in content but not in timing"),
        "{}",
        report.verdict
    );

    // In real time the same shift is timing drift, not a divergence of its own.
    o.fast = false;
    let report = replay(&o).await.unwrap();
    assert!(report.divergences.iter().all(|d| d.kind != "timing"));
}

#[tokio::test]
async fn payload_differences_are_exact_by_default_and_ignorable() {
    let dir = tempfile::tempdir().unwrap();
    let text = synth_capture("http://127.0.0.1:9", 25, None, Mode::Fixed);
    // The app's first echoed audio, as if its audio were not deterministic.
    let mut altered = Vec::new();
    let mut done = false;
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if !done && v["kind"] == "ws_in" && v["text"].as_str().unwrap().contains("\"media\"") {
            let mut m: serde_json::Value =
                serde_json::from_str(v["text"].as_str().unwrap()).unwrap();
            m["media"]["payload"] = "AAAA".into();
            v["text"] = m.to_string().into();
            done = true;
        }
        altered.push(v.to_string());
    }
    let path = write(&dir, "payload.jsonl", &(altered.join("\n") + "\n"));
    let app = App::start(Mode::Fixed).await;
    let mut o = opts(&path, &app);
    o.fast = true;
    let report = replay(&o).await.unwrap();
    assert!(!report.matches);
    assert!(report.reproduced, "the stream still ends as captured");
    let first = report.first_divergence().unwrap();
    assert_eq!((first.kind, first.app_message), ("app_message", Some(2)));
    assert!(first.captured.as_deref().unwrap().contains("AAAA"));

    o.ignore_payloads = true;
    let report = replay(&o).await.unwrap();
    assert!(report.matches, "{}", report.to_text());
}

#[tokio::test]
async fn malformed_line_is_named_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let good = synth_capture("http://127.0.0.1:9", 3, None, Mode::Fixed);
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(
        2,
        r#"{"t_ms":5,"call_sid":"CA1","kind":"ws_out","stream_sid":"MZ1"}"#,
    );
    let path = write(&dir, "bad.jsonl", &lines.join("\n"));
    let app = App::start(Mode::Fixed).await;
    let err = replay(&opts(&path, &app)).await.unwrap_err();
    assert!(
        matches!(err, ReplayError::InvalidLine { line: 3, .. }),
        "{err:?}"
    );
    let words = err.to_string();
    assert!(words.contains("bad.jsonl:3:"), "{words}");
    assert!(words.contains("text"), "names the missing field: {words}");

    let path = write(&dir, "garbage.jsonl", "not json\n");
    let err = replay(&opts(&path, &app)).await.unwrap_err();
    assert!(err.to_string().contains("garbage.jsonl:1:"), "{err}");

    // A finite but huge t_ms is refused up front, not a panic converting it to a Duration.
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    let at = lines.iter().position(|l| l.contains("\"ws_out\"")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&lines[at]).unwrap();
    v["t_ms"] = serde_json::json!(1e300);
    lines[at] = v.to_string();
    let path = write(&dir, "huge.jsonl", &lines.join("\n"));
    let err = replay(&opts(&path, &app)).await.unwrap_err();
    assert!(
        matches!(err, ReplayError::InvalidLine { line, .. } if line == at + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("t_ms"), "{err}");
}

#[tokio::test]
async fn bad_input_gives_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(Mode::Fixed).await;
    let text = synth_capture("http://127.0.0.1:9", 3, None, Mode::Fixed);
    let path = write(&dir, "ok.jsonl", &text);

    let err = replay(&opts(&dir.path().join("missing.jsonl"), &app))
        .await
        .unwrap_err();
    assert!(matches!(err, ReplayError::Io { .. }), "{err:?}");

    let mut o = opts(&path, &app);
    o.webhook = "ftp://127.0.0.1:1/voice".into();
    let err = replay(&o).await.unwrap_err();
    assert!(matches!(err, ReplayError::BadUrl { .. }), "{err:?}");

    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    o.webhook = format!("http://127.0.0.1:{port}/voice");
    let err = replay(&o).await.unwrap_err();
    assert!(
        matches!(err, ReplayError::WebhookUnreachable { .. }),
        "{err:?}"
    );

    let mut o = opts(&path, &app);
    o.call_sid = Some("CAnope".into());
    let err = replay(&o).await.unwrap_err();
    assert!(err.to_string().contains("no call CAnope"), "{err}");

    let no_stream: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    let path = write(&dir, "nostream.jsonl", &no_stream);
    let err = replay(&opts(&path, &app)).await.unwrap_err();
    assert!(matches!(err, ReplayError::NoStream { .. }), "{err:?}");
}

#[tokio::test]
async fn a_wss_capture_behind_a_tunnel_replays_through_the_tunnel() {
    // Recorded as Twilio sees the deployed app: https:// webhook, wss:// stream, both on
    // the public origin, mapped to the app's local port.
    let public = "https://bot.example.test";
    let recorded_against = App::start(Mode::Fixed).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    let capture = Arc::new(dialtone_call::capture::Capture::new(Box::new(
        std::io::BufWriter::new(file),
    )));
    let mut cfg = dialtone_call::CallConfig::new(
        format!("{public}/voice"),
        Arc::new(dialtone_audio::FrameSet::silence(25)),
    );
    cfg.auth_token = TOKEN.to_string();
    cfg.caller.tail = Duration::from_millis(300);
    cfg.no_audio_timeout = None;
    cfg.capture = Some(capture.clone());
    cfg.tunnels = Arc::new(dialtone_call::Tunnels::new(vec![
        format!("{public}={}", recorded_against.base)
            .parse()
            .unwrap(),
    ]));
    let result = dialtone_call::Engine::new().place_call(cfg, None).await;
    assert!(result.report.is_success(), "{:#?}", result.report.failures);
    capture.finish().unwrap();
    let captured = std::fs::read_to_string(&path).unwrap();
    assert!(captured.contains("wss://bot.example.test/media"));

    // Replayed through a tunnel to another instance: same public URLs, another port.
    let app = App::start(Mode::Fixed).await;
    let mut o = ReplayOptions::new(&path, format!("{public}/voice"), TOKEN);
    o.grace = Duration::from_millis(500);
    o.tunnels =
        dialtone_call::Tunnels::new(vec![format!("{public}={}", app.base).parse().unwrap()]);
    let report = replay(&o).await.unwrap();
    assert!(report.reproduced, "{}", report.to_text());
    assert_eq!(app.streams()[0], ws_outs(&captured));
}

/// Issue 12 item 9: a capture is read line by line under a bound, so a file without line
/// breaks (here `/dev/zero`, which used to be read until memory ran out) is refused.
#[test]
fn a_capture_without_line_breaks_is_refused_at_the_line_bound() {
    let err = dialtone_replay::capture::read(std::path::Path::new("/dev/zero"), None)
        .expect_err("not a capture");
    assert!(
        matches!(err, ReplayError::InvalidLine { line: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "/dev/zero:1: not a valid capture line: longer than 8 MiB (the longest a capture line \
         can be)"
    );
}
