//! `<Dial record>`: the bridge recorded from the answer (or from the start of ringing), one
//! channel mixed or two (the dialing call first, the dialed party second), kept by the
//! call's [`RecordingStore`](crate::recordings::RecordingStore). The `action` gets
//! `RecordingUrl`, `RecordingSid` and `RecordingDuration`; `recordingStatusCallback` gets
//! its `in-progress`, `completed` or `absent` events, signed and in order.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use dialtone_audio::FrameSet;
use dialtone_audio::mulaw::SILENCE;
use dialtone_protocol::sid;
use dialtone_protocol::webhook::rfc2822;
use dialtone_twiml::{Dial, DialRecording};
use tokio::time::Instant;

use super::Call;
use crate::callbacks::{Queue, Sender};
use crate::recordings::{NewRecording, RecordingSource};
use crate::webhook;

/// Bytes of 8 kHz μ-law from `a` to `b`.
fn bytes_between(a: Instant, b: Instant) -> usize {
    (b.saturating_duration_since(a).as_micros() / 125) as usize
}

/// One `<Dial>`'s recording while the dial runs.
pub(super) struct DialRecorder {
    sid: String,
    mode: DialRecording,
    account_sid: String,
    call_sid: String,
    /// The `recordingStatusCallback` queue and its wanted events.
    callbacks: Option<(Queue, Vec<String>)>,
    /// When recording started (wall clock with it, for `RecordingStartTime`).
    started: Mutex<Option<(Instant, SystemTime)>>,
}

/// How the dial went, as far as its recording needs.
pub(super) struct Recorded<'a> {
    /// When the dial began ringing.
    pub(super) began: Instant,
    /// When the party answered and when the bridge ended; `None` when nobody answered.
    pub(super) bridge: Option<(Instant, Instant)>,
    /// The end of the dial.
    pub(super) ended: Instant,
    /// What the caller heard while ringing (looped).
    pub(super) ringback: &'a FrameSet,
    /// What the party said into the bridge, from the answer.
    pub(super) heard: Option<&'a [u8]>,
    /// What the caller said into the bridge, from the answer.
    pub(super) said: Option<&'a [u8]>,
}

impl DialRecorder {
    /// The recorder `d` asks for, if any (none in virtual time, which keeps no common clock
    /// for the two parties: the call is warned).
    pub(super) fn new(call: &mut Call<'_>, d: &Dial, doc_url: &str) -> Option<Self> {
        let mode = d.recording()?;
        if call.cfg.fast {
            call.warn(
                0,
                "<Dial record> is not recorded in virtual time (--fast): no common clock".into(),
            );
            return None;
        }
        let sid = match call.cfg.seed {
            Some(seed) => sid::seeded(
                "RE",
                seed,
                3_000_000 + call.dials_placed.load(std::sync::atomic::Ordering::Relaxed),
            ),
            None => sid::random("RE"),
        };
        let callbacks = d
            .recording_status_callback
            .as_deref()
            .and_then(|u| webhook::resolve(doc_url, u).ok())
            .map(|url| {
                let sender = Sender {
                    url,
                    method: d.recording_status_callback_method.into(),
                    auth_token: call.cfg.auth_token.clone(),
                    net: call.engine.net.clone(),
                    tunnels: call.cfg.tunnels.clone(),
                    timeline: Some(call.timeline.clone()),
                };
                (
                    Queue::new("recording status callback", sender),
                    d.recording_status_callback_events.clone(),
                )
            });
        let r = Self {
            sid,
            mode,
            account_sid: call.info.account_sid.clone(),
            call_sid: call.info.call_sid.clone(),
            callbacks,
            started: Mutex::new(None),
        };
        if mode.from_ringing {
            r.start();
        }
        Some(r)
    }

    /// Recording starts now (at the ringing or the answer, as asked): `in-progress`.
    pub(super) fn start(&self) {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        if started.is_some() {
            return;
        }
        let at = (Instant::now(), SystemTime::now());
        *started = Some(at);
        self.callback("in-progress", at.1, Vec::new());
    }

    /// Whether the recording starts at the answer (not at the ringing).
    pub(super) fn starts_at_answer(&self) -> bool {
        !self.mode.from_ringing
    }

    fn callback(&self, status: &str, started: SystemTime, extra: Vec<(String, String)>) {
        let Some((queue, events)) = &self.callbacks else {
            return;
        };
        if !events.iter().any(|e| e == status) {
            return;
        }
        let mut params = vec![
            ("AccountSid".to_string(), self.account_sid.clone()),
            ("CallSid".to_string(), self.call_sid.clone()),
            ("RecordingSid".to_string(), self.sid.clone()),
            ("RecordingStatus".to_string(), status.to_string()),
            ("RecordingChannels".to_string(), self.channels().to_string()),
            ("RecordingStartTime".to_string(), rfc2822(started)),
            (
                "RecordingSource".to_string(),
                RecordingSource::DialVerb.as_str().to_string(),
            ),
            ("RecordingTrack".to_string(), "both".to_string()),
        ];
        params.extend(extra);
        queue.push(status.to_string(), params);
    }

    fn channels(&self) -> u16 {
        if self.mode.dual { 2 } else { 1 }
    }

    /// The dial ended: the recording is made and kept; returns the `action`'s
    /// `Recording*` parameters (none when nothing was recorded).
    pub(super) fn finish(self, call: &mut Call<'_>, r: &Recorded<'_>) -> Vec<(String, String)> {
        let started = *self.started.lock().unwrap_or_else(|p| p.into_inner());
        let mut extra = Vec::new();
        if let Some((from, wall)) = started {
            let rec = self.audio(from, r);
            let silent = rec
                .0
                .iter()
                .chain(&rec.1)
                .all(|&b| b == SILENCE || b == 0x7F);
            if silent {
                self.callback(
                    "absent",
                    wall,
                    vec![("ErrorCode".to_string(), "0".to_string())],
                );
            } else {
                let duration = (rec.0.len() as u64).div_ceil(8000);
                let url = call.cfg.recordings.as_ref().map(|store| {
                    store.keep(NewRecording {
                        sid: self.sid.clone(),
                        account_sid: self.account_sid.clone(),
                        call_sid: self.call_sid.clone(),
                        source: RecordingSource::DialVerb,
                        started: wall,
                        channels: self.channels(),
                        first: rec.0,
                        second: rec.1,
                    })
                });
                match &url {
                    Some(url) => extra.push(("RecordingUrl".to_string(), url.clone())),
                    None => call.warn(
                        0,
                        format!(
                            "<Dial record>: recording {} is not kept (no recording store)",
                            self.sid
                        ),
                    ),
                }
                extra.push(("RecordingSid".to_string(), self.sid.clone()));
                extra.push(("RecordingDuration".to_string(), duration.to_string()));
                let mut done = vec![("RecordingDuration".to_string(), duration.to_string())];
                done.extend(url.map(|u| ("RecordingUrl".to_string(), u)));
                self.callback("completed", wall, done);
            }
        }
        if let Some(task) = self.callbacks.and_then(|(q, _)| q.finish()) {
            call.leg_callbacks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
        }
        extra
    }

    /// The two tracks from `from` to the end of the bridge (or of the dial): the caller
    /// (silent while ringing) and the party (the ringback until the answer).
    fn audio(&self, from: Instant, r: &Recorded<'_>) -> (Vec<u8>, Vec<u8>) {
        let end = r.bridge.map_or(r.ended, |(_, end)| end);
        let total = bytes_between(from, end);
        let mut caller = vec![SILENCE; total];
        let mut party = vec![SILENCE; total];
        let answer = r.bridge.map_or(total, |(at, _)| bytes_between(from, at));
        let tone = r.ringback.mulaw();
        if !tone.is_empty() {
            let ring_from = bytes_between(from, r.began.max(from));
            for (i, b) in party[ring_from.min(answer)..answer].iter_mut().enumerate() {
                *b = tone[i % tone.len()];
            }
        }
        for (track, src) in [(&mut caller, r.said), (&mut party, r.heard)] {
            let Some(src) = src else { continue };
            let room = total.saturating_sub(answer);
            let n = src.len().min(room);
            track[answer..answer + n].copy_from_slice(&src[..n]);
        }
        (caller, party)
    }
}

/// The ringback of `d`'s `ringTone` (North America's by default).
pub(super) fn ringback(d: &Dial) -> Arc<FrameSet> {
    Arc::new(dialtone_audio::tones::ringback_cycle(
        d.ring_tone.as_deref().unwrap_or("us"),
    ))
}
