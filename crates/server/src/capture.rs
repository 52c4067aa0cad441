//! What a finished call leaves behind: each stream's audio for the web page's players, and
//! the recording of both parties.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dialtone_call::CallResult;
use dialtone_protocol::sid;

use dialtone_call::recordings::{NewRecording, RecordingStore};

use crate::Shared;
use crate::store::{CallRecord, RecordingRecord, StreamClip};

/// Each stream's audio, shared (not copied again) by the call's record.
pub(crate) fn clips(result: &CallResult) -> Vec<StreamClip> {
    result
        .audio
        .iter()
        .map(|a| StreamClip {
            stream_sid: a.stream_sid.clone(),
            heard: Arc::new(a.heard.clone()),
            sent: Arc::new(a.sent.clone()),
        })
        .collect()
}

/// Every stream's heard (or sent) audio, one after the other.
pub(crate) fn concat(clips: &[StreamClip], heard: bool) -> Vec<u8> {
    clips
        .iter()
        .flat_map(|c| if heard { c.heard.iter() } else { c.sent.iter() })
        .copied()
        .collect()
}

/// A recording of `call`: `own` is its party, `other` the far party (μ-law), normally the
/// whole answered call from the engine; silence as long as the answered call when neither
/// carries anything.
pub(crate) fn make_recording(
    call: &CallRecord,
    channels: u16,
    own: &[u8],
    other: &[u8],
) -> RecordingRecord {
    let decode = |b: &[u8]| -> Vec<i16> {
        b.iter()
            .map(|&c| dialtone_audio::mulaw::decode(c))
            .collect()
    };
    let (mut a, mut b) = (decode(own), decode(other));
    let n = a.len().max(b.len()).max(if a.is_empty() && b.is_empty() {
        let secs = match (call.started, call.ended) {
            (Some(s), Some(e)) => e
                .duration_since(s)
                .unwrap_or_default()
                .min(Duration::from_secs(600)),
            _ => Duration::ZERO,
        };
        secs.as_millis() as usize * 8
    } else {
        0
    });
    a.resize(n, 0);
    b.resize(n, 0);
    let now = SystemTime::now();
    RecordingRecord {
        sid: sid::random("RE"),
        account_sid: call.account_sid.clone(),
        call_sid: call.sid.clone(),
        created: now,
        started: call.started.unwrap_or(now),
        channels,
        source: "OutboundAPI",
        pcm: Arc::new((a, b)),
    }
}

/// Keeps the recordings calls make as they run (`<Dial record>`, `<Record>`) in the store,
/// served as Twilio's Recordings resource.
pub(crate) struct StoreRecordings(pub(crate) Arc<Shared>);

impl std::fmt::Debug for StoreRecordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreRecordings")
    }
}

impl RecordingStore for StoreRecordings {
    fn keep(&self, rec: NewRecording) -> String {
        let decode = |b: &[u8]| -> Vec<i16> {
            b.iter()
                .map(|&c| dialtone_audio::mulaw::decode(c))
                .collect()
        };
        let url = format!(
            "{}{}/Recordings/{}",
            self.0.public_url,
            crate::resources::account_path(&rec.account_sid),
            rec.sid
        );
        let (mut a, mut b) = (decode(&rec.first), decode(&rec.second));
        let n = a.len().max(b.len());
        a.resize(n, 0);
        b.resize(n, 0);
        self.0.store.insert_recording(RecordingRecord {
            sid: rec.sid,
            account_sid: rec.account_sid,
            call_sid: rec.call_sid,
            created: SystemTime::now(),
            started: rec.started,
            channels: rec.channels,
            source: rec.source.as_str(),
            pcm: Arc::new((a, b)),
        });
        url
    }
}
