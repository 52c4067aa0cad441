//! `<Dial record>`: the bridge recorded from the answer (or from the start of ringing), one
//! channel mixed or two (the dialing call first, the dialed party second), kept by the
//! call's [`RecordingStore`](crate::recordings::RecordingStore). The `action` gets
//! `RecordingUrl`, `RecordingSid` and `RecordingDuration`; `recordingStatusCallback` gets
//! its `in-progress`, `completed` or `absent` events, signed and in order
//! (`recording_status.rs`).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use dialtone_audio::FrameSet;
use dialtone_audio::mulaw::SILENCE;
use dialtone_twiml::{Dial, DialRecording};
use tokio::time::Instant;

use super::Call;
use super::recording::bytes_between;
use super::recording_status::{Recording, StatusCallbacks, recording_sid};
use crate::recordings::{NewRecording, RecordingSource};

/// Where `<Dial record>` SIDs start among a seeded call's recordings.
const SID_RANGE: u64 = 3_000_000;

/// One `<Dial>`'s recording while the dial runs.
pub(super) struct DialRecorder {
    sid: String,
    mode: DialRecording,
    account_sid: String,
    call_sid: String,
    /// Its `recordingStatusCallback` events.
    callbacks: StatusCallbacks,
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
        let sid = recording_sid(
            call,
            SID_RANGE,
            call.dials_placed.load(std::sync::atomic::Ordering::Relaxed),
        );
        let channels = if mode.dual { 2 } else { 1 };
        let callbacks = StatusCallbacks::new(
            call,
            d.recording_status_callback.as_deref(),
            d.recording_status_callback_method.into(),
            &d.recording_status_callback_events,
            doc_url,
            Recording {
                sid: &sid,
                source: RecordingSource::DialVerb,
                channels,
                track: Some("both"),
            },
        );
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
        self.callbacks.send("in-progress", at.1, Vec::new());
    }

    /// Whether the recording starts at the answer (not at the ringing).
    pub(super) fn starts_at_answer(&self) -> bool {
        !self.mode.from_ringing
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
                self.callbacks.absent(wall);
            } else {
                let duration = (rec.0.len() as u64).div_ceil(8000);
                let url = call.keep_recording(
                    NewRecording {
                        sid: self.sid.clone(),
                        account_sid: self.account_sid.clone(),
                        call_sid: self.call_sid.clone(),
                        source: RecordingSource::DialVerb,
                        started: wall,
                        channels: self.channels(),
                        first: rec.0,
                        second: rec.1,
                    },
                    "<Dial record>",
                );
                if let Some(url) = &url {
                    extra.push(("RecordingUrl".to_string(), url.clone()));
                }
                extra.push(("RecordingSid".to_string(), self.sid.clone()));
                extra.push(("RecordingDuration".to_string(), duration.to_string()));
                self.callbacks.completed(wall, duration, url.as_deref());
            }
        }
        call.await_before_report(self.callbacks.finish());
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
