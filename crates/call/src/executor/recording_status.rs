//! What every recording a call makes shares (`<Dial record>`, `<Record>`): its SID, its
//! `recordingStatusCallback` events (signed, in order, awaited before the call reports) and
//! its keeping in the call's recording store.
//!
//! Parameters follow a captured `<Record>` callback from Twilio (`RecordingSource`,
//! `RecordingSid`, `RecordingUrl`, `RecordingStatus`, `RecordingChannels`, `ErrorCode=0`,
//! `CallSid`, `RecordingStartTime`, `AccountSid`, `RecordingDuration`); `absent` carries
//! Twilio's 16102 ("Recording is silent"), as its support article on recording status
//! callbacks says.

use std::time::SystemTime;

use dialtone_protocol::sid;
use dialtone_protocol::webhook::rfc2822;
use tokio::task::JoinHandle;

use super::Call;
use crate::callbacks::{Queue, Sender};
use crate::config::HttpMethod;
use crate::recordings::{NewRecording, RecordingSource};

/// Twilio's error for a recording that was silent and not kept.
const SILENT: &str = "16102";

/// A recording's SID: seeded from the call's seed (`range` tells the kinds of recording
/// apart, `index` the recordings of one kind) so reruns name them alike, random otherwise.
pub(super) fn recording_sid(call: &Call<'_>, range: u64, index: u64) -> String {
    sid::seeded_or_random("RE", call.cfg.seed, range + index)
}

/// Where a recording's status callbacks go and what each carries.
pub(super) struct StatusCallbacks {
    /// The queue to `recordingStatusCallback` and the events asked for; `None` without one.
    queue: Option<(Queue, Vec<String>)>,
    /// Parameters every event carries.
    fixed: Vec<(String, String)>,
}

/// What a recording is, for its callbacks.
pub(super) struct Recording<'a> {
    /// `RE…`.
    pub(super) sid: &'a str,
    /// What made it.
    pub(super) source: RecordingSource,
    /// `RecordingChannels`.
    pub(super) channels: u16,
    /// `RecordingTrack`, where Twilio sends one (`<Dial record>`: `both`).
    pub(super) track: Option<&'static str>,
}

impl StatusCallbacks {
    /// Callbacks to `url` (resolved against `doc_url`; none when absent or unresolvable)
    /// for `events`.
    pub(super) fn new(
        call: &Call<'_>,
        url: Option<&str>,
        method: HttpMethod,
        events: &[String],
        doc_url: &str,
        rec: Recording<'_>,
    ) -> Self {
        let queue = call
            .callback_url("recordingStatusCallback", url, doc_url)
            .map(|url| {
                let sender = call.callback_sender(url, method);
                (
                    Queue::new("recording status callback", sender),
                    events.to_vec(),
                )
            });
        let mut fixed = vec![
            ("AccountSid".to_string(), call.info.account_sid.clone()),
            ("CallSid".to_string(), call.info.call_sid.clone()),
            ("RecordingSid".to_string(), rec.sid.to_string()),
            ("RecordingChannels".to_string(), rec.channels.to_string()),
            (
                "RecordingSource".to_string(),
                rec.source.as_str().to_string(),
            ),
        ];
        if let Some(track) = rec.track {
            fixed.push(("RecordingTrack".to_string(), track.to_string()));
        }
        Self { queue, fixed }
    }

    /// Queues `status` if it was asked for: the recording started at `started`.
    pub(super) fn send(&self, status: &str, started: SystemTime, extra: Vec<(String, String)>) {
        let Some((queue, events)) = &self.queue else {
            return;
        };
        if !events.iter().any(|e| e == status) {
            return;
        }
        let mut params = self.fixed.clone();
        params.push(("RecordingStatus".to_string(), status.to_string()));
        params.push(("RecordingStartTime".to_string(), rfc2822(started)));
        params.extend(extra);
        queue.push(status.to_string(), params);
    }

    /// `completed`: the recording is kept at `url` (when a store kept it), `secs` long.
    pub(super) fn completed(&self, started: SystemTime, secs: u64, url: Option<&str>) {
        let mut extra = vec![
            ("RecordingDuration".to_string(), secs.to_string()),
            ("ErrorCode".to_string(), "0".to_string()),
        ];
        extra.extend(url.map(|u| ("RecordingUrl".to_string(), u.to_string())));
        self.send("completed", started, extra);
    }

    /// `absent`: nothing was recorded (silence), so nothing is kept.
    pub(super) fn absent(&self, started: SystemTime) {
        self.send(
            "absent",
            started,
            vec![("ErrorCode".to_string(), SILENT.to_string())],
        );
    }

    /// Closes the queue; the task ends once its last callback is answered.
    pub(super) fn finish(self) -> Option<JoinHandle<()>> {
        self.queue.and_then(|(q, _)| q.finish())
    }
}

/// Recordings one call keeps in the store; past this each is warned about and not kept, so
/// a `<Redirect>` loop around `<Record>` or `<Dial record>` cannot grow memory without end.
/// Twilio documents no limit; no call we know of makes this many.
pub(super) const RECORDINGS_PER_CALL: usize = 100;

impl Call<'_> {
    /// Sends callbacks to `url` as this call's: signed with its token, through its network
    /// and tunnels, failures warned on its timeline.
    pub(super) fn callback_sender(&self, url: String, method: HttpMethod) -> Sender {
        Sender {
            url,
            method,
            auth_token: self.cfg.auth_token.clone(),
            net: self.engine.net.clone(),
            tunnels: self.cfg.tunnels.clone(),
            timeline: Some(self.timeline.clone()),
        }
    }

    /// Keeps `rec` in the call's recording store and returns its `RecordingUrl`; without a
    /// store, or past [`RECORDINGS_PER_CALL`], warns (`what` names the verb) and returns
    /// `None`.
    pub(super) fn keep_recording(&mut self, rec: NewRecording, what: &str) -> Option<String> {
        let sid = rec.sid.clone();
        let Some(store) = self.cfg.recordings.as_ref() else {
            self.warn(
                0,
                format!("{what}: recording {sid} is not kept (no recording store)"),
            );
            return None;
        };
        if self.recordings_kept >= RECORDINGS_PER_CALL {
            self.warn(
                0,
                format!(
                    "{what}: recording {sid} is not kept: this call already made {RECORDINGS_PER_CALL} recordings"
                ),
            );
            return None;
        }
        self.recordings_kept += 1;
        Some(store.keep(rec))
    }

    /// Has the call report only after `task` (callbacks still on their way) has ended.
    pub(super) fn await_before_report(&self, task: Option<JoinHandle<()>>) {
        if let Some(task) = task {
            self.leg_callbacks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
        }
    }
}
