//! Where the caller's audio starts: at each stream's start (`call`, `load`: unchanged) or at
//! the answer (a two-leg `serve` call), against a real app that greets with `<Say>` before
//! its `<Connect><Stream>`.

mod common;

use common::{Reply, TestApp, WsScript, call};
use dialtone_call::{CallResult, CallerAudioStart, Turn};

/// Three words: 1.2 s of `<Say>` before the stream opens.
const GREETING_MS: f64 = 1200.0;
const AUDIO_MS: u32 = 3000;
const TAIL_MS: f64 = 300.0;

async fn greet_then_stream(start: CallerAudioStart) -> CallResult {
    let app = TestApp::start(
        vec![(
            "/voice",
            Reply::Twiml(
                r#"<Response><Say>one two three</Say><Connect><Stream url="{ws}/media"/></Connect></Response>"#
                    .into(),
            ),
        )],
        WsScript::Silent,
    )
    .await;
    call(&app.url("/voice"), AUDIO_MS, |cfg| {
        cfg.caller.start = start;
        cfg.caller.turns = vec![turn(500, 900), turn(2000, 2500)];
        cfg.record = true;
    })
    .await
}

fn turn(start_ms: u32, end_ms: u32) -> Turn {
    Turn {
        start_ms,
        end_ms,
        text: String::new(),
    }
}

/// Frames that carry sound (mean |sample| over 500).
fn loud_frames(mulaw: &[u8]) -> usize {
    mulaw
        .chunks(160)
        .filter(|f| {
            f.iter()
                .map(|&c| i64::from(dialtone_audio::mulaw::decode(c)).abs())
                .sum::<i64>()
                / f.len() as i64
                > 500
        })
        .count()
}

#[tokio::test]
async fn audio_from_the_stream_start_is_the_default() {
    let res = greet_then_stream(CallerAudioStart::default()).await;
    let s = &res.report.streams[0];
    assert!(res.report.end_reason.contains("caller hung up"));
    // All of the audio and the tail go out on the stream; both turns are heard.
    let expected = (f64::from(AUDIO_MS) + TAIL_MS) / 20.0;
    assert!(
        (s.frames_sent as f64 - expected).abs() <= 2.0,
        "{} frames",
        s.frames_sent
    );
    let starts: Vec<f64> = s.turns.iter().map(|t| t.start_ms).collect();
    assert_eq!(s.turns.len(), 2, "{starts:?}");
    assert!((starts[0] - 500.0).abs() < 60.0, "{starts:?}");
}

#[tokio::test]
async fn audio_from_the_answer_joins_the_stream_mid_way() {
    let res = greet_then_stream(CallerAudioStart::Answer).await;
    let r = &res.report;
    assert!(r.is_success(), "{:#?}", r.failures);
    assert!(r.end_reason.contains("caller hung up"), "{}", r.end_reason);
    let s = &r.streams[0];
    // The greeting's 1.2 s of the caller's audio went by before the stream opened.
    let expected = (f64::from(AUDIO_MS) + TAIL_MS - GREETING_MS) / 20.0;
    assert!(
        (s.frames_sent as f64 - expected).abs() <= 3.0,
        "{} frames, expected {expected}",
        s.frames_sent
    );
    // The first turn was said during the greeting: not on the stream. The second is shifted
    // by the greeting.
    assert_eq!(s.turns.len(), 1, "{:?}", s.turns);
    assert_eq!(s.turns[0].index, 1);
    let shifted = 2000.0 - GREETING_MS;
    assert!(
        (s.turns[0].start_ms - shifted).abs() < 80.0,
        "turn starts at {} ms of the stream, expected {shifted}",
        s.turns[0].start_ms
    );

    // The whole call's audio: the greeting's tone heard, the caller's tone said from the
    // answer to its end, both as long as the answered call.
    let a = res.call_audio.as_ref().expect("recorded");
    assert_eq!(a.heard.len(), a.said.len());
    let call_ms = a.heard.len() as f64 / 8.0;
    assert!(
        (call_ms - (f64::from(AUDIO_MS) + TAIL_MS)).abs() < 150.0,
        "{call_ms} ms"
    );
    let greeting = loud_frames(&a.heard[..(GREETING_MS as usize - 100) * 8]);
    assert!(
        greeting >= 50,
        "{greeting} loud frames of <Say> in the greeting"
    );
    assert_eq!(loud_frames(&a.heard[(GREETING_MS as usize + 200) * 8..]), 0);
    let said = loud_frames(&a.said) as f64;
    assert!(
        (said - f64::from(AUDIO_MS) / 20.0).abs() <= 2.0,
        "{said} loud frames said"
    );
}
