//! Sans-IO model of Twilio's playout buffer for a bidirectional stream: the app's audio queues
//! FIFO and plays at 8 bytes per ms; marks are echoed when the audio queued before them has
//! played; `clear` drops unplayed audio and echoes every pending mark at once.
//!
//! Time is an argument (microseconds since the stream's start), so the rules are unit-tested
//! without sockets or sleeps.

use std::collections::VecDeque;

/// μ-law at 8 kHz: one byte is 125 µs of audio.
const US_PER_BYTE: u64 = 125;
/// Silence between two pieces of app audio shorter than this is an underrun (the app fell
/// behind mid-reply); longer silence is a pause between replies.
const UNDERRUN_MAX_GAP_US: u64 = 500_000;
/// Marks a stream holds waiting for their audio to play; past this a mark is refused
/// (counted, never echoed). A voice app marks each reply or chunk: a minute of 20 ms chunks
/// queued ahead is 3,000 marks.
pub const MAX_PENDING_MARKS: usize = 10_000;
/// Bytes of mark names a stream holds waiting; past this a mark is refused.
pub const MAX_PENDING_MARK_BYTES: usize = 1 << 20;

/// A mark the app sent, waiting for the audio ahead of it to play out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMark {
    /// The mark's number on its stream, from 0 in the order the app sent them.
    pub id: u64,
    /// The mark's name, echoed verbatim.
    pub name: String,
    /// When the app's `mark` message arrived (µs since stream start).
    pub received_us: u64,
    /// When the audio queued before it finishes playing (µs since stream start).
    pub due_us: u64,
}

/// A mark echo the driver must send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkEcho {
    /// The mark's number on its stream (see [`PendingMark::id`]).
    pub id: u64,
    /// The mark's name.
    pub name: String,
    /// When the app sent it (µs since stream start).
    pub received_us: u64,
    /// True when echoed because of a `clear`, not because its audio played.
    pub cleared: bool,
}

/// A contiguous piece of app audio as the caller hears it.
#[derive(Debug, Clone)]
struct Segment {
    start_us: u64,
    bytes: Vec<u8>,
}

/// The playout queue of one bidirectional stream.
#[derive(Debug, Default)]
pub struct Playout {
    /// When the audio queued so far finishes playing.
    busy_until_us: u64,
    marks: VecDeque<PendingMark>,
    /// Bytes of the names in `marks`.
    pending_bytes: usize,
    /// Marks received so far (the next mark's id).
    marks_received: u64,
    /// Marks refused because too many were waiting.
    marks_refused: u64,
    /// What the caller hears, kept only when recording.
    segments: Option<Vec<Segment>>,
    /// Audio that would start to be heard at or after this (µs since stream start) is not
    /// recorded: the call is over by then, and an app sending hours of audio at once must
    /// not cost that much memory. `None`: no limit.
    record_until_us: Option<u64>,
    /// When the first app audio starts to be heard.
    first_heard_us: Option<u64>,
    bytes_received: u64,
    bytes_dropped: u64,
    underrun_us: u64,
    /// Silence right after a `clear` is the app's choice, not an underrun.
    after_clear: bool,
}

/// What became of a mark the app sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkPush {
    /// Nothing was buffered: echo it now.
    Echo(MarkEcho),
    /// It waits for the audio queued before it (see [`Playout::due_marks`]).
    Queued(u64),
    /// Too many marks were waiting ([`MAX_PENDING_MARKS`], [`MAX_PENDING_MARK_BYTES`]): it
    /// is counted and never echoed.
    Refused(u64),
}

impl MarkPush {
    /// The mark's number on its stream.
    pub fn id(&self) -> u64 {
        match self {
            MarkPush::Echo(e) => e.id,
            MarkPush::Queued(id) | MarkPush::Refused(id) => *id,
        }
    }
}

/// What a `clear` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearOutcome {
    /// Queued audio dropped without being heard, in ms.
    pub dropped_ms: u64,
    /// Every pending mark, echoed at once in queue order.
    pub echoes: Vec<MarkEcho>,
}

impl Playout {
    /// A queue that also keeps what the caller hears when `record` is set.
    pub fn new(record: bool) -> Self {
        Self {
            segments: record.then(Vec::new),
            ..Self::default()
        }
    }

    /// Records what the caller hears only up to `until_us` (µs since stream start): the
    /// longest the stream can last.
    pub fn record_until(mut self, until_us: u64) -> Self {
        self.record_until_us = Some(until_us);
        self
    }

    /// Appends app audio (μ-law bytes) received at `now_us`; returns when it starts to be heard.
    pub fn push_media(&mut self, now_us: u64, bytes: &[u8]) -> u64 {
        let start = if self.busy_until_us < now_us {
            // The buffer ran dry before this audio arrived: the caller heard silence meanwhile.
            // Only short gaps count: a longer one is a pause between replies, not a stall.
            let gap = now_us - self.busy_until_us;
            if self.first_heard_us.is_some() && !self.after_clear && gap < UNDERRUN_MAX_GAP_US {
                self.underrun_us += gap;
            }
            now_us
        } else {
            self.busy_until_us
        };
        self.busy_until_us = start + bytes.len() as u64 * US_PER_BYTE;
        self.after_clear = false;
        self.bytes_received += bytes.len() as u64;
        self.first_heard_us.get_or_insert(start);
        // Only what can still be heard before the recording's horizon is kept.
        let room = self
            .record_until_us
            .map_or(u64::MAX, |end| end.saturating_sub(start) / US_PER_BYTE);
        let bytes = &bytes[..bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        if let Some(segments) = self.segments.as_mut().filter(|_| !bytes.is_empty()) {
            match segments.last_mut() {
                Some(last) if last.start_us + last.bytes.len() as u64 * US_PER_BYTE == start => {
                    last.bytes.extend_from_slice(bytes)
                }
                _ => segments.push(Segment {
                    start_us: start,
                    bytes: bytes.to_vec(),
                }),
            }
        }
        start
    }

    /// Queues a mark received at `now_us`. With nothing buffered the echo is immediate;
    /// otherwise it waits for [`Playout::due_marks`], or is refused when too many wait.
    pub fn push_mark(&mut self, now_us: u64, name: String) -> MarkPush {
        let id = self.marks_received;
        self.marks_received += 1;
        if self.busy_until_us <= now_us && self.marks.is_empty() {
            return MarkPush::Echo(MarkEcho {
                id,
                name,
                received_us: now_us,
                cleared: false,
            });
        }
        if self.marks.len() >= MAX_PENDING_MARKS
            || self.pending_bytes + name.len() > MAX_PENDING_MARK_BYTES
        {
            self.marks_refused += 1;
            return MarkPush::Refused(id);
        }
        let due_us = self.busy_until_us.max(now_us);
        self.pending_bytes += name.len();
        self.marks.push_back(PendingMark {
            id,
            name,
            received_us: now_us,
            due_us,
        });
        MarkPush::Queued(id)
    }

    /// Marks whose audio has played by `now_us`, in queue order.
    pub fn due_marks(&mut self, now_us: u64) -> Vec<MarkEcho> {
        let mut out = Vec::new();
        while self.marks.front().is_some_and(|m| m.due_us <= now_us) {
            let m = self.marks.pop_front().expect("front checked");
            self.pending_bytes -= m.name.len();
            out.push(MarkEcho {
                id: m.id,
                name: m.name,
                received_us: m.received_us,
                cleared: false,
            });
        }
        out
    }

    /// Drops all unplayed audio at `now_us` and echoes every pending mark, as Twilio does.
    pub fn clear(&mut self, now_us: u64) -> ClearOutcome {
        let dropped_us = self.busy_until_us.saturating_sub(now_us);
        self.bytes_dropped += dropped_us / US_PER_BYTE;
        self.busy_until_us = self.busy_until_us.min(now_us);
        self.after_clear = true;
        if let Some(segments) = &mut self.segments {
            segments.retain_mut(|s| {
                if s.start_us >= now_us {
                    return false;
                }
                let heard = ((now_us - s.start_us) / US_PER_BYTE) as usize;
                s.bytes.truncate(heard);
                true
            });
        }
        self.pending_bytes = 0;
        let echoes = self
            .marks
            .drain(..)
            .map(|m| MarkEcho {
                id: m.id,
                name: m.name,
                received_us: m.received_us,
                cleared: true,
            })
            .collect();
        ClearOutcome {
            dropped_ms: dropped_us / 1000,
            echoes,
        }
    }

    /// The next instant a mark falls due, if any.
    pub fn next_deadline_us(&self) -> Option<u64> {
        self.marks.front().map(|m| m.due_us)
    }

    /// Marks still waiting (e.g. when the call ends before their audio played).
    pub fn pending_marks(&self) -> impl Iterator<Item = &PendingMark> {
        self.marks.iter()
    }

    /// Marks the app sent so far.
    pub fn marks_received(&self) -> u64 {
        self.marks_received
    }

    /// Marks refused because too many were waiting for their audio.
    pub fn marks_refused(&self) -> u64 {
        self.marks_refused
    }

    /// When the first app audio was (or will be) heard, µs since stream start.
    pub fn first_heard_us(&self) -> Option<u64> {
        self.first_heard_us
    }

    /// When the audio queued so far finishes playing.
    pub fn busy_until_us(&self) -> u64 {
        self.busy_until_us
    }

    /// Total μ-law bytes the app sent.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// μ-law bytes dropped by `clear` before being heard.
    pub fn bytes_dropped(&self) -> u64 {
        self.bytes_dropped
    }

    /// Silence heard between app audio chunks because the app sent too late (ms).
    pub fn underrun_ms(&self) -> u64 {
        self.underrun_us / 1000
    }

    /// What the caller heard in the 20 ms from `from_us` (μ-law; silence where nothing
    /// played), read once they are over (a `clear` after them cannot change them). Silence
    /// unless recording.
    pub fn heard_frame(&self, from_us: u64) -> [u8; 160] {
        let mut out = [0xFFu8; 160];
        let Some(segments) = &self.segments else {
            return out;
        };
        let until_us = from_us + 160 * US_PER_BYTE;
        // Segments are in time order; the few that overlap the frame are at the end.
        for s in segments.iter().rev() {
            let end_us = s.start_us + s.bytes.len() as u64 * US_PER_BYTE;
            if end_us <= from_us {
                break;
            }
            if s.start_us >= until_us {
                continue;
            }
            let lo = s.start_us.max(from_us);
            let hi = end_us.min(until_us);
            let src = ((lo - s.start_us) / US_PER_BYTE) as usize;
            let dst = ((lo - from_us) / US_PER_BYTE) as usize;
            let n = ((hi - lo) / US_PER_BYTE) as usize;
            out[dst..dst + n].copy_from_slice(&s.bytes[src..src + n]);
        }
        out
    }

    /// What the caller heard up to `end_us`, as μ-law on a continuous timeline starting at
    /// the stream's start (silence where nothing played). `None` unless recording.
    pub fn heard_mulaw(&self, end_us: u64) -> Option<Vec<u8>> {
        let segments = self.segments.as_ref()?;
        let total = (end_us / US_PER_BYTE) as usize;
        let mut out = vec![0xFFu8; total];
        for s in segments {
            let at = (s.start_us / US_PER_BYTE) as usize;
            if at >= total {
                break;
            }
            let n = s.bytes.len().min(total - at);
            out[at..at + n].copy_from_slice(&s.bytes[..n]);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    #[test]
    fn the_frame_heard_is_the_playout_after_a_clear() {
        let mut p = Playout::new(true);
        // 40 ms at 10 ms, then a clear at 30 ms: 10..30 ms was heard, the rest is gone.
        p.push_media(10 * MS, &[0x11; 320]);
        let first = p.heard_frame(0);
        assert_eq!(&first[..80], &[0xFF; 80]);
        assert_eq!(&first[80..], &[0x11; 80]);
        p.clear(30 * MS);
        let second = p.heard_frame(20 * MS);
        assert_eq!(&second[..80], &[0x11; 80]);
        assert_eq!(&second[80..], &[0xFF; 80]);
        assert_eq!(p.heard_frame(40 * MS), [0xFF; 160]);
        assert_eq!(Playout::new(false).heard_frame(0), [0xFF; 160]);
    }

    #[test]
    fn a_recording_keeps_nothing_past_its_horizon() {
        // Recording up to 1 s; the app sends an hour of audio at once (in 100 ms pieces).
        let mut p = Playout::new(true).record_until(1000 * MS);
        for _ in 0..36_000 {
            p.push_media(0, &[0x11u8; 800]);
        }
        let kept: usize = p
            .segments
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| s.bytes.len())
            .sum();
        assert_eq!(kept, 8000, "1 s of μ-law, not an hour");
        // Play-out time still counts the whole hour: marks wait behind it as on Twilio.
        assert_eq!(p.busy_until_us, 3600 * 1000 * MS);
        let heard = p.heard_mulaw(2000 * MS).unwrap();
        assert!(heard[..8000].iter().all(|&b| b == 0x11));
        assert!(heard[8000..].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn mark_with_nothing_buffered_is_echoed_at_once() {
        let mut p = Playout::new(false);
        let MarkPush::Echo(echo) = p.push_mark(5 * MS, "m".into()) else {
            panic!("immediate")
        };
        assert_eq!(echo.name, "m");
        assert!(!echo.cleared);
    }

    #[test]
    fn mark_waits_for_audio_queued_before_it() {
        let mut p = Playout::new(false);
        // 800 bytes = 100 ms of audio received at t=0.
        p.push_media(0, &[0u8; 800]);
        assert!(matches!(
            p.push_mark(10 * MS, "a".into()),
            MarkPush::Queued(_)
        ));
        p.push_media(20 * MS, &[0u8; 400]); // +50 ms, after mark a
        assert!(matches!(
            p.push_mark(20 * MS, "b".into()),
            MarkPush::Queued(_)
        ));
        assert_eq!(p.next_deadline_us(), Some(100 * MS));
        assert!(p.due_marks(99 * MS).is_empty());
        let due = p.due_marks(100 * MS);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].name, "a");
        assert_eq!(p.next_deadline_us(), Some(150 * MS));
        let due = p.due_marks(200 * MS);
        assert_eq!(due[0].name, "b");
        assert!(p.next_deadline_us().is_none());
    }

    #[test]
    fn marks_echo_in_order_even_back_to_back() {
        let mut p = Playout::new(false);
        p.push_media(0, &[0u8; 80]);
        for n in ["1", "2", "3"] {
            assert!(matches!(p.push_mark(0, n.into()), MarkPush::Queued(_)));
        }
        let names: Vec<_> = p.due_marks(10 * MS).into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["1", "2", "3"]);
    }

    #[test]
    fn mark_behind_pending_mark_is_not_echoed_early() {
        let mut p = Playout::new(false);
        p.push_media(0, &[0u8; 800]);
        assert!(matches!(p.push_mark(0, "a".into()), MarkPush::Queued(_)));
        // Audio has not played out, but even at a later time with busy_until in the past the
        // second mark must queue behind the first rather than jump ahead.
        assert!(matches!(p.push_mark(0, "b".into()), MarkPush::Queued(_)));
        let names: Vec<_> = p.due_marks(100 * MS).into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn clear_drops_audio_and_echoes_pending_marks() {
        let mut p = Playout::new(true);
        p.push_media(0, &[1u8; 8000]); // 1 s
        p.push_mark(0, "x".into());
        p.push_mark(0, "y".into());
        let out = p.clear(250 * MS);
        assert_eq!(out.dropped_ms, 750);
        assert_eq!(out.echoes.len(), 2);
        assert!(out.echoes.iter().all(|e| e.cleared));
        assert_eq!(out.echoes[0].name, "x");
        assert_eq!(p.busy_until_us(), 250 * MS);
        let heard = p.heard_mulaw(500 * MS).unwrap();
        assert_eq!(heard.len(), 4000);
        assert!(heard[..2000].iter().all(|&b| b == 1));
        assert!(heard[2000..].iter().all(|&b| b == 0xFF));
        // After a clear, new audio plays immediately.
        assert_eq!(p.push_media(300 * MS, &[2u8; 80]), 300 * MS);
    }

    #[test]
    fn underrun_is_counted_and_heard_as_silence() {
        let mut p = Playout::new(true);
        p.push_media(0, &[3u8; 160]); // 0..20 ms
        p.push_media(50 * MS, &[4u8; 160]); // 50..70 ms: 30 ms gap
        assert_eq!(p.underrun_ms(), 30);
        let heard = p.heard_mulaw(80 * MS).unwrap();
        assert!(heard[..160].iter().all(|&b| b == 3));
        assert!(heard[160..400].iter().all(|&b| b == 0xFF));
        assert!(heard[400..560].iter().all(|&b| b == 4));
        assert_eq!(p.first_heard_us(), Some(0));
    }

    #[test]
    fn pending_marks_are_bounded_and_refusals_counted() {
        let mut p = Playout::new(false);
        p.push_media(0, &[0u8; 8000]); // 1 s queued: every mark waits
        for i in 0..MAX_PENDING_MARKS as u64 + 5 {
            let r = p.push_mark(0, "m".into());
            assert_eq!(r.id(), i);
            if i < MAX_PENDING_MARKS as u64 {
                assert!(matches!(r, MarkPush::Queued(_)));
            } else {
                assert_eq!(r, MarkPush::Refused(i));
            }
        }
        assert_eq!(p.pending_marks().count(), MAX_PENDING_MARKS);
        assert_eq!(p.marks_received(), MAX_PENDING_MARKS as u64 + 5);
        assert_eq!(p.marks_refused(), 5);
        // Once played out, room is made again.
        assert_eq!(p.due_marks(1000 * MS).len(), MAX_PENDING_MARKS);
        p.push_media(1000 * MS, &[0u8; 80]);
        assert!(matches!(
            p.push_mark(1000 * MS, "n".into()),
            MarkPush::Queued(_)
        ));
    }

    #[test]
    fn pending_mark_names_are_bounded_in_bytes() {
        let mut p = Playout::new(false);
        p.push_media(0, &[0u8; 8000]);
        let big = "x".repeat(MAX_PENDING_MARK_BYTES / 2);
        assert!(matches!(p.push_mark(0, big.clone()), MarkPush::Queued(0)));
        assert!(matches!(p.push_mark(0, big.clone()), MarkPush::Queued(1)));
        assert_eq!(p.push_mark(0, "y".into()), MarkPush::Refused(2));
        // A clear echoes them all and frees the room.
        assert_eq!(p.clear(10 * MS).echoes.len(), 2);
        p.push_media(10 * MS, &[0u8; 80]);
        assert!(matches!(p.push_mark(10 * MS, big), MarkPush::Queued(3)));
    }
}
