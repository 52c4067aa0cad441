//! The session's edge cases, driven directly: no socket, no clock, no runtime.

use std::sync::Arc;
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_protocol::media::StreamIds;

use super::*;
use crate::faults::FaultSpec;

/// Collects what a session sends and tells.
#[derive(Default)]
struct Rec {
    texts: Vec<String>,
    events: Vec<EventKind>,
}

impl Wire for Rec {
    fn text(&mut self, text: &str) {
        self.texts.push(text.to_string());
    }
    fn event(&mut self, kind: EventKind) {
        self.events.push(kind);
    }
}

impl Rec {
    fn events_named(&self) -> Vec<String> {
        self.texts
            .iter()
            .map(|t| {
                let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
                v["event"].as_str().unwrap_or("?").to_string()
            })
            .collect()
    }
}

const SID: &str = "MZ00000000000000000000000000000001";
const MS: u64 = 1000;

fn cfg() -> SessionConfig {
    SessionConfig {
        url: "ws://127.0.0.1:1/media".into(),
        ids: StreamIds {
            account_sid: "AC00000000000000000000000000000000".into(),
            call_sid: "CA00000000000000000000000000000001".into(),
            stream_sid: SID.into(),
        },
        name: None,
        bidirectional: true,
        tracks: Tracks::Inbound,
        parameters: Vec::new(),
        caller_audio: Arc::new(FrameSet::silence(10)),
        caller_offset: 0,
        live: None,
        turns: Vec::new(),
        dtmf: Vec::new(),
        outbound: None,
        record: false,
        max_duration: Duration::from_secs(60),
        no_audio_timeout: None,
        faults: None,
        real_time: true,
        frames: None,
        histograms: true,
    }
}

fn started(cfg: SessionConfig) -> (Session, Rec) {
    let mut s = Session::new(cfg);
    let mut w = Rec::default();
    s.start(0.0, &mut w);
    (s, w)
}

fn app_media(ms: u64) -> String {
    // `ms` of μ-law silence, base64.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(vec![0xFFu8; (ms * 8) as usize]);
    dialtone_protocol::media::app_media(SID, &b64)
}

#[test]
fn frames_go_out_in_schedule_order_however_late_the_driver_wakes() {
    let (mut s, mut w) = started(cfg());
    assert_eq!(w.events_named(), ["connected", "start"]);
    assert_eq!(s.poll_timeout(), Some(0));
    // Woken 65 ms late: frames 0, 1, 2, 3 go out at once, in order, each late.
    s.handle_timeout(65 * MS, &mut w);
    let media: Vec<_> = w.texts[2..].iter().collect();
    assert_eq!(media.len(), 4);
    for (i, t) in media.iter().enumerate() {
        assert!(
            t.contains(&format!(r#""sequenceNumber":"{}""#, i + 2)),
            "{t}"
        );
        assert!(t.contains(&format!(r#""chunk":"{}""#, i + 1)), "{t}");
        assert!(t.contains(&format!(r#""timestamp":"{}""#, i * 20)), "{t}");
    }
    assert_eq!(s.poll_timeout(), Some(80 * MS));
    let lateness = s.lateness.as_ref().unwrap().histogram();
    assert_eq!(lateness.len(), 4);
    // Frame 0 was 65 ms late (to the histogram's 1 % precision).
    assert!((64_000..=66_000).contains(&lateness.max()));
}

#[test]
fn a_mark_is_echoed_when_its_audio_has_played_and_clear_echoes_the_rest() {
    let (mut s, mut w) = started(cfg());
    s.handle_timeout(0, &mut w);
    s.on_text(10 * MS, &app_media(100), &mut w);
    s.on_text(
        10 * MS,
        &dialtone_protocol::media::app_mark(SID, "a"),
        &mut w,
    );
    s.on_text(
        10 * MS,
        &dialtone_protocol::media::app_mark(SID, "b"),
        &mut w,
    );
    // Audio from 10 to 110 ms: mark a falls due at 110 ms, not before.
    assert_eq!(s.poll_timeout(), Some(20 * MS));
    s.handle_timeout(100 * MS, &mut w);
    assert!(!w.events_named().contains(&"mark".to_string()));
    assert_eq!(s.poll_timeout(), Some(110 * MS));
    s.handle_timeout(110 * MS, &mut w);
    let marks: Vec<_> = w.texts.iter().filter(|t| t.contains(r#""mark""#)).collect();
    assert_eq!(marks.len(), 2, "both marks waited for the same audio");
    // A clear echoes a pending mark at once.
    s.on_text(120 * MS, &app_media(100), &mut w);
    s.on_text(
        120 * MS,
        &dialtone_protocol::media::app_mark(SID, "c"),
        &mut w,
    );
    s.on_text(130 * MS, &dialtone_protocol::media::app_clear(SID), &mut w);
    assert!(w.texts.last().unwrap().contains(r#""name":"c""#));
}

#[test]
fn the_caller_hangs_up_after_exactly_its_frames_then_stops() {
    let (mut s, mut w) = started(cfg());
    s.set_hangup(Duration::from_millis(100));
    // Woken very late: still only the frames before the hang-up go out.
    s.handle_timeout(500 * MS, &mut w);
    assert_eq!(s.phase(), Phase::HungUp);
    assert_eq!(w.texts.len(), 2 + 5);
    assert!(s.stop(500 * MS, &mut w), "the stop is the caller's hang-up");
    assert_eq!(w.events_named().last().unwrap(), "stop");
    assert_eq!(s.phase(), Phase::Ended(End::Stopped));
    let o = s.finish(None, Duration::from_millis(500), &mut w);
    assert_eq!(o.report.frames_sent, 5);
    assert_eq!(o.report.closed_by, "dialtone");
}

#[test]
fn frames_asked_for_then_stop() {
    let mut c = cfg();
    c.frames = Some(3);
    let (mut s, mut w) = started(c);
    s.handle_timeout(1000 * MS, &mut w);
    assert_eq!(
        w.events_named(),
        ["connected", "start", "media", "media", "media", "stop"]
    );
    assert_eq!(s.phase(), Phase::Ended(End::Stopped));
}

#[test]
fn an_injected_drop_ends_without_stop() {
    let mut c = cfg();
    let spec: FaultSpec = "drop=50ms".parse().expect("spec");
    c.faults = Some(spec.for_stream(1, 0));
    let (mut s, mut w) = started(c);
    s.handle_timeout(40 * MS, &mut w);
    assert_eq!(s.poll_timeout(), Some(50 * MS));
    s.handle_timeout(60 * MS, &mut w);
    assert_eq!(s.phase(), Phase::Ended(End::Injected(None)));
    assert!(!w.events_named().contains(&"stop".to_string()));
    assert_eq!(End::Injected(None).close_code(), None);
}

#[test]
fn a_unidirectional_stream_counts_app_messages_as_invalid() {
    let mut c = cfg();
    c.bidirectional = false;
    let (mut s, mut w) = started(c);
    s.on_text(0, &app_media(20), &mut w);
    let o = s.finish(None, Duration::ZERO, &mut w);
    assert_eq!(o.report.invalid_messages, 1);
    assert_eq!(o.report.media_received, 0);
}

#[test]
fn the_same_faults_send_the_same_bytes() {
    let run = || {
        let mut c = cfg();
        let spec: FaultSpec = "jitter=20ms,dup=0.1,reorder=0.1,loss=0.05"
            .parse()
            .expect("spec");
        c.faults = Some(spec.for_stream(7, 0));
        c.real_time = false;
        let (mut s, mut w) = started(c);
        let mut now = 0;
        while now < 2_000 * MS {
            s.handle_timeout(now, &mut w);
            now = s.poll_timeout().expect("streaming");
        }
        w.texts
    };
    let (a, b) = (run(), run());
    assert!(a.len() > 90);
    assert_eq!(a, b);
}

#[test]
fn a_stream_never_started_reports_never_opened() {
    let s = Session::new(cfg());
    let o = s.finish(None, Duration::ZERO, &mut Rec::default());
    assert_eq!(o.report.closed_by, "never_opened");
    assert!(o.heard.is_none());
}
