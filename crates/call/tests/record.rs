//! `<Record>` against a real app on a loopback port: what the caller says after the beep is
//! recorded byte for byte from its audio, ended by silence, a finish key, `maxLength` or its
//! hang-up; the action, the recording status callbacks and the transcription carry Twilio's
//! parameters, signed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Reply, Seen, TestApp, WsScript, param};
use dialtone_audio::FrameSet;
use dialtone_call::record::RecordEnd;
use dialtone_call::recordings::{NewRecording, RecordingStore};
use dialtone_call::speech::WordErrors;
use dialtone_call::{CallConfig, CallResult, DEFAULT_AUTH_TOKEN, Engine, EventKind, Turn};
use dialtone_protocol::signing;

/// Noise from a seed: audio no other part of the test can produce by chance.
fn noise(ms: u32, seed: u64) -> Vec<i16> {
    let mut x = seed;
    (0..ms * 8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 16000) as i16) - 8000
        })
        .collect()
}

/// The caller's turns: (start ms, end ms, words). Silence around them; 6 s in all.
const TURNS: [(u32, u32, &str); 3] = [
    (300, 1300, "hello there"),
    (2000, 2800, "please call me back"),
    (4300, 5300, "bye"),
];
const AUDIO_MS: u32 = 6000;

/// The caller: each turn distinct noise, silence between, with its ground truth.
fn caller() -> (Arc<FrameSet>, Vec<Turn>) {
    let mut pcm = vec![0i16; AUDIO_MS as usize * 8];
    let mut turns = Vec::new();
    for (i, (start, end, text)) in TURNS.iter().enumerate() {
        let n = noise(end - start, 11 + i as u64);
        pcm[*start as usize * 8..*end as usize * 8].copy_from_slice(&n);
        turns.push(Turn {
            start_ms: *start,
            end_ms: *end,
            text: (*text).into(),
        });
    }
    (Arc::new(FrameSet::from_pcm(&pcm)), turns)
}

/// The caller's μ-law from `a` ms to `b` ms.
fn said(a: u32, b: u32) -> Vec<u8> {
    caller().0.mulaw()[a as usize * 8..b as usize * 8].to_vec()
}

/// Keeps what it is given, as serve's Recordings resource would.
#[derive(Debug, Default)]
struct Kept(Mutex<Vec<NewRecording>>);

impl RecordingStore for Kept {
    fn keep(&self, rec: NewRecording) -> String {
        let url = format!("http://127.0.0.1:9/Recordings/{}", rec.sid);
        self.0.lock().unwrap().push(rec);
        url
    }
}

struct Run {
    result: CallResult,
    app: TestApp,
    kept: Arc<Kept>,
}

impl Run {
    fn requests(&self, path: &str) -> Vec<Seen> {
        self.app
            .http()
            .into_iter()
            .filter(|s| s.uri.split('?').next() == Some(path))
            .collect()
    }

    fn action(&self) -> Seen {
        let mut a = self.requests("/after");
        assert_eq!(a.len(), 1, "one action request");
        a.pop().unwrap()
    }

    fn recording(&self) -> NewRecording {
        let kept = self.kept.0.lock().unwrap();
        assert_eq!(kept.len(), 1, "one recording kept");
        kept[0].clone()
    }

    /// Every request to `path` is signed as Twilio signs.
    fn assert_signed(&self, path: &str) {
        for s in self.requests(path) {
            let sig = s.headers["x-twilio-signature"].to_str().unwrap();
            assert!(
                signing::validate(DEFAULT_AUTH_TOKEN, &self.app.url(path), &s.params, sig),
                "bad signature on {path}"
            );
        }
    }
}

/// A call whose first document is `twiml`, its caller saying [`TURNS`].
async fn record(twiml: &str, tweak: impl FnOnce(&mut CallConfig)) -> Run {
    let routes = vec![
        (
            "/after",
            Reply::Twiml("<Response><Redirect>/never</Redirect></Response>".into()),
        ),
        ("/rs", Reply::Twiml(String::new())),
        ("/tc", Reply::Twiml(String::new())),
        (
            "/next",
            Reply::Twiml("<Response><Hangup/></Response>".into()),
        ),
        (
            "/never",
            Reply::Twiml("<Response><Hangup/></Response>".into()),
        ),
    ];
    let app = TestApp::start(routes, WsScript::Silent).await;
    let (audio, turns) = caller();
    let mut cfg = CallConfig::new(app.url("/voice"), audio);
    cfg.twiml = Some(twiml.to_string());
    cfg.caller.turns = turns;
    cfg.caller.tail = Duration::from_millis(300);
    cfg.max_duration = Duration::from_secs(30);
    cfg.webhook_timeout = Duration::from_secs(3);
    cfg.no_audio_timeout = None;
    cfg.seed = Some(5);
    let kept = Arc::new(Kept::default());
    cfg.recordings = Some(kept.clone());
    tweak(&mut cfg);
    let result = Engine::new().place_call(cfg, None).await;
    Run { result, app, kept }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn silence_ends_it_and_the_recording_is_what_the_caller_said() {
    let run = record(
        "<Response><Record action=\"/after\" timeout=\"1\" recordingStatusCallback=\"/rs\" \
         recordingStatusCallbackEvent=\"in-progress completed absent\" \
         transcribeCallback=\"/tc\"/></Response>",
        |c| c.record = true,
    )
    .await;
    let r = &run.result;
    assert!(r.report.failures.is_empty(), "{:?}", r.report.failures);

    // The first two turns (700 ms apart) and nothing of the third (1.5 s of silence first),
    // trimmed to the speech: byte for byte the caller's audio.
    let rec = run.recording();
    assert_eq!(rec.first, said(300, 2800));
    assert!(rec.second.is_empty());
    assert_eq!(rec.channels, 1);
    assert_eq!(rec.source.as_str(), "RecordVerb");
    assert_eq!(rec.call_sid, r.report.call_sid);

    // The action: Twilio's parameters; Digits empty on a silence.
    let action = run.action();
    assert_eq!(action.method, "POST");
    assert_eq!(param(&action, "RecordingSid"), Some(rec.sid.as_str()));
    let url = format!("http://127.0.0.1:9/Recordings/{}", rec.sid);
    assert_eq!(param(&action, "RecordingUrl"), Some(url.as_str()));
    assert_eq!(param(&action, "RecordingDuration"), Some("3"));
    assert_eq!(param(&action, "Digits"), Some(""));
    assert_eq!(param(&action, "CallStatus"), Some("in-progress"));
    assert_eq!(param(&action, "CallSid"), Some(r.report.call_sid.as_str()));
    run.assert_signed("/after");
    // The action's TwiML runs: its <Redirect>.
    assert_eq!(run.requests("/never").len(), 1);

    // Status callbacks in order, each with the recording's fields.
    let cbs = run.requests("/rs");
    let statuses: Vec<&str> = cbs
        .iter()
        .map(|s| param(s, "RecordingStatus").unwrap())
        .collect();
    assert_eq!(statuses, ["in-progress", "completed"]);
    for cb in &cbs {
        assert_eq!(param(cb, "RecordingSid"), Some(rec.sid.as_str()));
        assert_eq!(param(cb, "RecordingSource"), Some("RecordVerb"));
        assert_eq!(param(cb, "RecordingChannels"), Some("1"));
        assert_eq!(param(cb, "CallSid"), Some(r.report.call_sid.as_str()));
        assert_eq!(
            param(cb, "AccountSid"),
            Some(dialtone_call::DEFAULT_ACCOUNT_SID)
        );
        assert!(param(cb, "RecordingStartTime").unwrap().ends_with("+0000"));
    }
    assert_eq!(param(&cbs[1], "RecordingDuration"), Some("3"));
    assert_eq!(param(&cbs[1], "RecordingUrl"), Some(url.as_str()));
    assert_eq!(param(&cbs[1], "ErrorCode"), Some("0"));
    run.assert_signed("/rs");

    // The transcription: the words of the turns inside the recording.
    let tc = run.requests("/tc");
    assert_eq!(tc.len(), 1);
    let t = &tc[0];
    assert_eq!(
        param(t, "TranscriptionText"),
        Some("hello there please call me back")
    );
    assert_eq!(param(t, "TranscriptionStatus"), Some("completed"));
    assert_eq!(param(t, "RecordingSid"), Some(rec.sid.as_str()));
    assert_eq!(param(t, "RecordingUrl"), Some(url.as_str()));
    let tr = param(t, "TranscriptionSid").unwrap();
    assert!(tr.starts_with("TR") && tr.len() == 34, "{tr}");
    assert_eq!(
        param(t, "TranscriptionUrl"),
        Some(format!("{url}/Transcriptions/{tr}").as_str())
    );
    assert_eq!(param(t, "CallSid"), Some(r.report.call_sid.as_str()));
    assert_eq!(param(t, "url"), Some(run.app.url("/tc").as_str()));
    run.assert_signed("/tc");

    // The report and the timeline say what happened.
    let report = &r.report.recordings[0];
    assert_eq!(report.sid, rec.sid);
    assert_eq!(report.ended_by, RecordEnd::Silence);
    assert_eq!((report.duration_s, report.duration_ms), (3, 2500.0));
    assert_eq!(
        report.transcription.as_deref(),
        Some("hello there please call me back")
    );
    let steps: Vec<String> = r
        .report
        .timeline
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Record(_)))
        .map(|e| e.kind.text().words)
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps[0].contains("started"), "{steps:?}");
    assert!(steps[1].contains("ended by silence: 3 s kept"), "{steps:?}");
    assert!(steps[2].contains("transcription TR"), "{steps:?}");

    // The caller heard the beep first (in the call's recording), then the caller's audio.
    let audio = r.call_audio.as_ref().expect("the call's audio");
    let beep = &audio.heard[..4000];
    let loud = beep
        .iter()
        .filter(|&&b| dialtone_audio::mulaw::decode(b).abs() > 4000)
        .count();
    assert!(loud > 1000, "the beep: {loud} loud samples of 4000");
    assert!(find(&audio.said, &said(300, 500)).is_some());
    assert_eq!(r.record_audio[0].audio, rec.first);
}

#[tokio::test]
async fn a_finish_key_ends_it_as_the_caller_stops_talking() {
    let run = record(
        "<Response><Record action=\"/after\" timeout=\"2\" finishOnKey=\"#\"/></Response>",
        |c| c.caller.gather_digits = "#".into(),
    )
    .await;
    // Gaps under 2 s: all three turns, then the key at once (no 2 s wait).
    let rec = run.recording();
    assert_eq!(rec.first, said(300, 5300));
    let action = run.action();
    assert_eq!(param(&action, "Digits"), Some("#"));
    assert_eq!(param(&action, "RecordingDuration"), Some("5"));
    let report = &run.result.report.recordings[0];
    assert_eq!(report.ended_by, RecordEnd::FinishKey);
    // The key came as the last turn ended, 5.3 s into the recording.
    let when = |pick: &dyn Fn(&EventKind) -> bool| {
        run.result
            .report
            .timeline
            .iter()
            .find(|e| pick(&e.kind))
            .expect("on the timeline")
            .at
    };
    let started = when(&|k| matches!(k, EventKind::Record(_)));
    let key = when(&|k| matches!(k, EventKind::Dtmf { digits } if digits == "#"));
    let after = (key - started).as_secs_f64();
    assert!(
        (5.25..5.8).contains(&after),
        "key {after} s into the recording"
    );

    // A key that is not a finish key is not pressed: silence ends it.
    let run = record(
        "<Response><Record action=\"/after\" timeout=\"1\" finishOnKey=\"*\"/></Response>",
        |c| c.caller.gather_digits = "#".into(),
    )
    .await;
    assert_eq!(param(&run.action(), "Digits"), Some(""));
    assert_eq!(run.recording().first, said(300, 2800));
}

#[tokio::test]
async fn max_length_cuts_it_mid_turn_and_do_not_trim_keeps_the_silence() {
    let run = record(
        "<Response><Record action=\"/after\" maxLength=\"1\" trim=\"do-not-trim\"/></Response>",
        |_| {},
    )
    .await;
    // One second from the beep's end, silence and all.
    let rec = run.recording();
    assert_eq!(rec.first, said(0, 1000));
    let action = run.action();
    assert_eq!(param(&action, "RecordingDuration"), Some("1"));
    assert_eq!(param(&action, "Digits"), Some(""));
    assert_eq!(
        run.result.report.recordings[0].ended_by,
        RecordEnd::MaxLength
    );

    // Trimmed, the same cut starts at the speech.
    let run = record(
        "<Response><Record action=\"/after\" maxLength=\"1\"/></Response>",
        |_| {},
    )
    .await;
    assert_eq!(run.recording().first, said(300, 1000));
}

#[tokio::test]
async fn a_hang_up_still_requests_the_action_and_runs_none_of_its_twiml() {
    let run = record(
        "<Response><Record action=\"/after\" timeout=\"0\" recordingStatusCallback=\"/rs\"/>\
         </Response>",
        |_| {},
    )
    .await;
    let r = &run.result;
    // No silence ends it: the caller talks to the end of its audio and hangs up 300 ms later.
    assert_eq!(run.recording().first, said(300, 5300));
    let action = run.action();
    assert_eq!(param(&action, "Digits"), Some("hangup"));
    assert_eq!(param(&action, "CallStatus"), Some("completed"));
    assert_eq!(param(&action, "RecordingDuration"), Some("5"));
    assert!(run.requests("/never").is_empty(), "the action's TwiML ran");
    assert_eq!(r.report.status.as_str(), "completed");
    assert!(
        r.report.end_reason.contains("caller hung up"),
        "{}",
        r.report.end_reason
    );
    assert_eq!(r.report.recordings[0].ended_by, RecordEnd::Hangup);
    // Only `completed` by default; it still goes out after the hang-up.
    let cbs = run.requests("/rs");
    assert_eq!(cbs.len(), 1);
    assert_eq!(param(&cbs[0], "RecordingStatus"), Some("completed"));
}

#[tokio::test]
async fn nothing_said_means_no_recording_no_action_and_the_next_verb() {
    let run = record(
        "<Response><Record action=\"/after\" timeout=\"1\" recordingStatusCallback=\"/rs\" \
         recordingStatusCallbackEvent=\"completed absent\"/><Redirect>/next</Redirect>\
         </Response>",
        |c| {
            c.caller.audio = Arc::new(FrameSet::silence(300));
            c.caller.turns.clear();
        },
    )
    .await;
    assert!(
        run.requests("/after").is_empty(),
        "no action for an empty recording"
    );
    assert_eq!(run.requests("/next").len(), 1, "the next verb runs");
    assert!(run.kept.0.lock().unwrap().is_empty());
    let cbs = run.requests("/rs");
    assert_eq!(cbs.len(), 1);
    assert_eq!(param(&cbs[0], "RecordingStatus"), Some("absent"));
    assert_eq!(param(&cbs[0], "ErrorCode"), Some("16102"));
    let report = &run.result.report.recordings[0];
    assert!(report.empty && report.duration_s == 0);
    assert_eq!(report.ended_by, RecordEnd::Silence);
}

#[tokio::test]
async fn word_errors_change_the_transcription_the_same_way_every_time() {
    let twiml = "<Response><Record action=\"/after\" timeout=\"1\" transcribe=\"true\" \
                 transcribeCallback=\"/tc\"/></Response>";
    let errors = WordErrors {
        rate: 0.5,
        seed: 42,
    };
    let mut texts = Vec::new();
    for _ in 0..2 {
        let run = record(twiml, |c| c.word_errors = Some(errors)).await;
        let tc = run.requests("/tc");
        assert_eq!(tc.len(), 1);
        texts.push(param(&tc[0], "TranscriptionText").unwrap().to_string());
    }
    assert_ne!(texts[0], "hello there please call me back");
    assert_eq!(texts[0], texts[1], "the same seed, the same errors");
}

#[tokio::test]
async fn a_recording_of_two_seconds_or_less_is_not_transcribed_13617() {
    // maxLength cuts the first turn at 1 s: Twilio transcribes only recordings longer than
    // 2 s (and shorter than 120 s); the recording itself is kept as ever.
    let run = record(
        "<Response><Record action=\"/after\" maxLength=\"1\" transcribe=\"true\" \
         transcribeCallback=\"/tc\"/></Response>",
        |_| {},
    )
    .await;
    let r = &run.result;
    let kept = run.recording().first.len();
    assert!(kept > 0 && kept <= 8000, "{kept} bytes");
    assert_eq!(param(&run.action(), "RecordingDuration"), Some("1"));
    let tc = run.requests("/tc");
    assert_eq!(tc.len(), 1, "the app still hears of it");
    assert_eq!(param(&tc[0], "TranscriptionStatus"), Some("failed"));
    assert_eq!(param(&tc[0], "TranscriptionText"), Some(""));
    run.assert_signed("/tc");
    let warned: Vec<_> = r
        .report
        .warnings
        .iter()
        .filter(|(c, _)| *c == 13617)
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", r.report.warnings);
    let said = format!("{:.1} s is not transcribed", kept as f64 / 8000.0);
    assert!(warned[0].1.contains(&said), "{warned:?}");
}
