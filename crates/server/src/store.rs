//! The server's memory: calls (live and recent), hosted numbers and recordings. One mutex,
//! held only for short copies and updates, never across an `.await`. Finished calls beyond
//! `history` are forgotten oldest first, with their audio and recordings, so a long-running
//! server's memory stays bounded. The bound holds at every moment: it is applied whenever a
//! call is added and whenever one ends. Live calls are never forgotten (their callbacks and
//! REST updates need them) and do not count; they are bounded by the server's call limits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use dialtone_call::{CallHandle, HttpMethod, Redirect};
use dialtone_protocol::webhook::{CallStatus, Direction};

/// Most timeline lines kept per call (the rest are counted).
const TIMELINE_MAX: usize = 400;

/// One call leg as the REST API and the web page see it.
#[derive(Debug, Clone)]
pub(crate) struct CallRecord {
    pub(crate) sid: String,
    pub(crate) account_sid: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) direction: Direction,
    pub(crate) status: CallStatus,
    pub(crate) created: SystemTime,
    pub(crate) updated: SystemTime,
    pub(crate) started: Option<SystemTime>,
    pub(crate) ended: Option<SystemTime>,
    /// The hosted number this leg came in on (inbound legs) or was placed from.
    pub(crate) phone_number_sid: Option<String>,
    /// The other leg of a call between two parties dialtone simulates.
    pub(crate) peer_sid: Option<String>,
    /// The call whose `<Dial>` placed this leg.
    pub(crate) parent_call_sid: Option<String>,
    /// What the leg runs: its voice URL, or `(inline TwiML)`.
    pub(crate) source: String,
    pub(crate) control: Control,
    pub(crate) timeline: Vec<TimelineLine>,
    pub(crate) timeline_dropped: usize,
    /// Why the call ended, in words; failures follow.
    pub(crate) outcome: Option<String>,
    pub(crate) failures: Vec<String>,
    /// What each stream's caller heard and sent (μ-law), for the web page's players.
    pub(crate) audio: Vec<StreamClip>,
    pub(crate) recording_sids: Vec<String>,
}

impl CallRecord {
    /// A call leg created now, with nothing yet known about how it runs: no timeline, no
    /// outcome, no audio, not started. Its creators set what they know beyond that.
    pub(crate) fn new(
        sid: String,
        account_sid: String,
        (from, to): (String, String),
        direction: Direction,
        status: CallStatus,
        source: String,
    ) -> Self {
        let now = SystemTime::now();
        CallRecord {
            sid,
            account_sid,
            from,
            to,
            direction,
            status,
            created: now,
            updated: now,
            started: None,
            ended: None,
            phone_number_sid: None,
            peer_sid: None,
            parent_call_sid: None,
            source,
            control: Control::default(),
            timeline: Vec::new(),
            timeline_dropped: 0,
            outcome: None,
            failures: Vec::new(),
            audio: Vec::new(),
            recording_sids: Vec::new(),
        }
    }
}

/// How a live call is steered by REST updates.
#[derive(Debug, Clone, Default)]
pub(crate) struct Control {
    /// The engine's handle once the call runs.
    pub(crate) handle: Option<CallHandle>,
    /// Set by `Status=canceled|completed` before the call runs.
    pub(crate) cancel: Option<CallStatus>,
    /// `Url`/`Twiml` given while queued: used when the call is answered.
    pub(crate) pending: Option<Redirect>,
    /// False for the caller leg of a two-leg call, whose audio is fixed when it is answered.
    pub(crate) redirectable: bool,
    /// Wakes the call's task when a REST update cancels it while it waits `queued`.
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

/// One line of a call's timeline.
#[derive(Debug, Clone)]
pub(crate) struct TimelineLine {
    /// Milliseconds since the call was created.
    pub(crate) at_ms: u64,
    /// `info`, `ok`, `warn` or `fail`: how the page colours it.
    pub(crate) level: &'static str,
    pub(crate) text: String,
}

/// Audio of one stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamClip {
    pub(crate) stream_sid: String,
    pub(crate) heard: Arc<Vec<u8>>,
    pub(crate) sent: Arc<Vec<u8>>,
}

/// A hosted phone number (IncomingPhoneNumber).
#[derive(Debug, Clone)]
pub(crate) struct NumberRecord {
    pub(crate) sid: String,
    pub(crate) account_sid: String,
    pub(crate) phone_number: String,
    pub(crate) friendly_name: String,
    pub(crate) voice_url: Option<String>,
    pub(crate) voice_method: HttpMethod,
    pub(crate) voice_fallback_url: Option<String>,
    pub(crate) voice_fallback_method: HttpMethod,
    pub(crate) status_callback: Option<String>,
    pub(crate) status_callback_method: HttpMethod,
    /// The number's own tunnel mappings (from the config file; none for numbers created
    /// through the API); its app's requests use them before the shared table.
    pub(crate) tunnels: Arc<dialtone_call::Tunnels>,
    pub(crate) created: SystemTime,
    pub(crate) updated: SystemTime,
}

/// A call recording: both parties, 8 kHz.
#[derive(Debug, Clone)]
pub(crate) struct RecordingRecord {
    pub(crate) sid: String,
    pub(crate) account_sid: String,
    pub(crate) call_sid: String,
    pub(crate) created: SystemTime,
    pub(crate) started: SystemTime,
    /// 1 (mixed) or 2 (caller, callee): what `RecordingChannels` asked for.
    pub(crate) channels: u16,
    /// What made it (`source`): `OutboundAPI`, `DialVerb`.
    pub(crate) source: &'static str,
    /// This leg's party and the other party, as 16-bit PCM of equal length.
    pub(crate) pcm: Arc<(Vec<i16>, Vec<i16>)>,
}

impl RecordingRecord {
    /// Length in whole seconds, rounded up as Twilio bills.
    pub(crate) fn duration_secs(&self) -> u64 {
        (self.pcm.0.len() as u64).div_ceil(8000)
    }
}

#[derive(Default)]
struct Inner {
    calls: VecDeque<CallRecord>,
    /// How many of `calls` have ended.
    finished: usize,
    numbers: Vec<NumberRecord>,
    recordings: Vec<RecordingRecord>,
}

impl Inner {
    /// Forgets the finished calls (and their recordings) that ended first, beyond `history`:
    /// by end, not by creation, so a long call is not forgotten the moment it ends because
    /// shorter calls created after it ended earlier. One scan per forgotten call; a call's
    /// end forgets at most one.
    fn evict(&mut self, history: usize) {
        let excess = self.finished.saturating_sub(history);
        for _ in 0..excess {
            let first_ended = self
                .calls
                .iter()
                .enumerate()
                .filter(|(_, c)| c.status.is_terminal())
                .min_by_key(|(_, c)| c.ended.unwrap_or(SystemTime::UNIX_EPOCH))
                .map(|(i, _)| i);
            let Some(gone) = first_ended.and_then(|i| self.calls.remove(i)) else {
                break;
            };
            self.finished -= 1;
            self.recordings.retain(|r| r.call_sid != gone.sid);
        }
    }
}

/// Shared state of the server.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    history: usize,
    /// Bumped on every change: the web page reloads when it moves.
    version: AtomicU64,
}

impl Store {
    pub(crate) fn new(history: usize) -> Self {
        Self {
            inner: Mutex::default(),
            history,
            version: AtomicU64::new(0),
        }
    }

    /// Changes so far.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    fn lock_mut(&self) -> MutexGuard<'_, Inner> {
        self.version.fetch_add(1, Ordering::Relaxed);
        self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a call, forgetting the oldest finished calls beyond `history`.
    pub(crate) fn insert_call(&self, call: CallRecord) {
        let mut inner = self.lock_mut();
        inner.finished += usize::from(call.status.is_terminal());
        inner.calls.push_back(call);
        inner.evict(self.history);
    }

    /// A copy of one call.
    pub(crate) fn call(&self, sid: &str) -> Option<CallRecord> {
        self.lock().calls.iter().find(|c| c.sid == sid).cloned()
    }

    /// Copies of the calls `keep` accepts, newest first.
    pub(crate) fn calls(&self, keep: impl Fn(&CallRecord) -> bool) -> Vec<CallRecord> {
        self.lock()
            .calls
            .iter()
            .rev()
            .filter(|c| keep(c))
            .cloned()
            .collect()
    }

    /// Changes one call under the lock; `None` if it is gone.
    pub(crate) fn update_call<R>(
        &self,
        sid: &str,
        f: impl FnOnce(&mut CallRecord) -> R,
    ) -> Option<R> {
        let mut inner = self.lock_mut();
        let call = inner.calls.iter_mut().find(|c| c.sid == sid)?;
        let was_finished = call.status.is_terminal();
        let r = f(call);
        call.updated = SystemTime::now();
        let now_finished = call.status.is_terminal();
        if now_finished != was_finished {
            if now_finished {
                inner.finished += 1;
            } else {
                inner.finished -= 1;
            }
            inner.evict(self.history);
        }
        Some(r)
    }

    /// Appends a timeline line to a call, stamped from the call's creation.
    pub(crate) fn log(&self, sid: &str, level: &'static str, text: String) {
        self.update_call(sid, |c| {
            let at_ms = SystemTime::now()
                .duration_since(c.created)
                .unwrap_or_default()
                .as_millis() as u64;
            if c.timeline.len() < TIMELINE_MAX {
                c.timeline.push(TimelineLine { at_ms, level, text });
            } else {
                c.timeline_dropped += 1;
            }
        });
    }

    /// Removes a finished call; `Err(())` if it is still live.
    pub(crate) fn delete_call(&self, sid: &str) -> Option<Result<(), ()>> {
        let mut inner = self.lock_mut();
        let i = inner.calls.iter().position(|c| c.sid == sid)?;
        if !inner.calls[i].status.is_terminal() {
            return Some(Err(()));
        }
        inner.calls.remove(i);
        inner.finished -= 1;
        inner.recordings.retain(|r| r.call_sid != sid);
        Some(Ok(()))
    }

    /// Calls not yet ended.
    pub(crate) fn live_handles(&self) -> Vec<(String, Control)> {
        self.lock()
            .calls
            .iter()
            .filter(|c| !c.status.is_terminal())
            .map(|c| (c.sid.clone(), c.control.clone()))
            .collect()
    }

    pub(crate) fn insert_number(&self, n: NumberRecord) {
        self.lock_mut().numbers.push(n);
    }

    pub(crate) fn numbers(&self) -> Vec<NumberRecord> {
        self.lock().numbers.clone()
    }

    /// The hosted number `phone`, whichever account owns it (a call from one account to
    /// another's number reaches it, as on Twilio).
    pub(crate) fn number_by_phone(&self, phone: &str) -> Option<NumberRecord> {
        self.lock()
            .numbers
            .iter()
            .find(|n| n.phone_number == phone)
            .cloned()
    }

    pub(crate) fn update_number<R>(
        &self,
        sid: &str,
        f: impl FnOnce(&mut NumberRecord) -> R,
    ) -> Option<R> {
        let mut inner = self.lock_mut();
        let n = inner.numbers.iter_mut().find(|n| n.sid == sid)?;
        let r = f(n);
        n.updated = SystemTime::now();
        Some(r)
    }

    pub(crate) fn delete_number(&self, sid: &str) -> bool {
        let mut inner = self.lock_mut();
        let before = inner.numbers.len();
        inner.numbers.retain(|n| n.sid != sid);
        inner.numbers.len() != before
    }

    /// Adds a recording and links it to its call; a call already forgotten (`history`)
    /// takes its recording with it.
    pub(crate) fn insert_recording(&self, r: RecordingRecord) {
        let mut inner = self.lock_mut();
        if let Some(c) = inner.calls.iter_mut().find(|c| c.sid == r.call_sid) {
            c.recording_sids.push(r.sid.clone());
            inner.recordings.push(r);
        }
    }

    pub(crate) fn recording(&self, sid: &str) -> Option<RecordingRecord> {
        self.lock()
            .recordings
            .iter()
            .find(|r| r.sid == sid)
            .cloned()
    }

    /// Recordings `keep` accepts, newest first.
    pub(crate) fn recordings(
        &self,
        keep: impl Fn(&RecordingRecord) -> bool,
    ) -> Vec<RecordingRecord> {
        self.lock()
            .recordings
            .iter()
            .rev()
            .filter(|r| keep(r))
            .cloned()
            .collect()
    }

    pub(crate) fn delete_recording(&self, sid: &str) -> bool {
        let mut inner = self.lock_mut();
        let before = inner.recordings.len();
        inner.recordings.retain(|r| r.sid != sid);
        let gone = inner.recordings.len() != before;
        for c in inner.calls.iter_mut() {
            c.recording_sids.retain(|s| s != sid);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(sid: usize) -> CallRecord {
        CallRecord::new(
            format!("CA{sid}"),
            "AC1".into(),
            ("+15005550006".into(), "+15551112222".into()),
            Direction::OutboundApi,
            CallStatus::Queued,
            String::new(),
        )
    }

    fn recording(call_sid: &str) -> RecordingRecord {
        RecordingRecord {
            source: "OutboundAPI",
            sid: format!("RE{call_sid}"),
            account_sid: "AC1".into(),
            call_sid: call_sid.into(),
            created: SystemTime::now(),
            started: SystemTime::now(),
            channels: 1,
            pcm: Arc::new((vec![0; 8], vec![0; 8])),
        }
    }

    #[test]
    fn history_holds_whenever_calls_end_not_only_on_insert() {
        // 40 calls live at once, then they end one by one with no insert in between (the
        // probe's 700 listed with history = 500).
        let store = Store::new(5);
        for i in 0..40 {
            store.insert_call(call(i));
        }
        assert_eq!(
            store.calls(|_| true).len(),
            40,
            "live calls are never forgotten"
        );
        for i in 0..40 {
            store.update_call(&format!("CA{i}"), |c| c.status = CallStatus::Completed);
            store.insert_recording(recording(&format!("CA{i}")));
            let all = store.calls(|_| true);
            let finished = all.iter().filter(|c| c.status.is_terminal()).count();
            assert_eq!(finished, (i + 1).min(5), "after {} ended", i + 1);
            assert_eq!(all.len() - finished, 39 - i, "the live ones stay");
            // Recordings go with their calls.
            assert!(store.recordings(|_| true).len() <= 5);
        }
        // The newest finished are the ones kept.
        let kept: Vec<String> = store.calls(|_| true).into_iter().map(|c| c.sid).collect();
        assert_eq!(kept, ["CA39", "CA38", "CA37", "CA36", "CA35"]);
        assert_eq!(store.delete_call("CA39"), Some(Ok(())));
        store.insert_call(call(40));
        store.update_call("CA40", |c| c.status = CallStatus::Canceled);
        assert_eq!(store.calls(|_| true).len(), 5);
    }

    #[test]
    fn a_long_call_is_not_forgotten_the_moment_it_ends() {
        // CA0 is created first and ends last, after 5 shorter calls: it is the newest end.
        let store = Store::new(5);
        let t0 = SystemTime::now();
        let end = |sid: &str, secs: u64| {
            store.update_call(sid, |c| {
                c.status = CallStatus::Completed;
                c.ended = Some(t0 + std::time::Duration::from_secs(secs));
            });
        };
        for i in 0..6 {
            store.insert_call(call(i));
        }
        for i in 1..6 {
            end(&format!("CA{i}"), i as u64);
        }
        end("CA0", 100);
        let kept: Vec<String> = store.calls(|_| true).into_iter().map(|c| c.sid).collect();
        assert!(kept.contains(&"CA0".to_string()), "{kept:?}");
        assert!(
            !kept.contains(&"CA1".to_string()),
            "the first to end goes: {kept:?}"
        );
    }
}
