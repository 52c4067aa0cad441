//! One call's Media Streams conversation, sans IO: text messages from Twilio go in,
//! text messages for Twilio come out. Time is the media `timestamp`, never the wall
//! clock, so a test (or a load generator sending faster than real time) gets the same
//! turns as a paced call.

use std::collections::VecDeque;
use std::sync::Arc;

use dialtone_audio::{FrameSet, mulaw};
use dialtone_protocol::media::{self, TwilioMessage};

use crate::VadConfig;
use crate::misbehave::{Behaviour, SPLIT_VAD_AFTER_MS, TALK_OVER_AFTER_MS};
use crate::vad::{Vad, VadEvent, rms_dbfs};

/// μ-law bytes per VAD frame: 20 ms at 8 kHz.
const FRAME_BYTES: usize = 160;
/// μ-law bytes per millisecond at 8 kHz.
const BYTES_PER_MS: usize = 8;
/// Replies whose mark is still awaited; beyond this the oldest is forgotten, so a peer
/// that never echoes marks cannot grow the state without bound.
const MAX_PENDING: usize = 16;

/// Whether the socket should stay open after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading.
    Continue,
    /// Twilio sent `stop`: the call is over.
    Stop,
}

/// Counters for the end-of-call log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// `media` messages processed.
    pub(crate) media: u64,
    /// Caller turns detected (= replies sent).
    pub(crate) turns: u32,
    /// `clear`s sent because the caller spoke over a reply.
    pub(crate) barge_ins: u32,
    /// Mark echoes received for replies the bot sent.
    pub(crate) marks_echoed: u32,
    /// Messages ignored: unparseable, binary, out of order or for another stream.
    pub(crate) ignored: u64,
}

/// Something the session detected or did that is worth a milestone record. The driver
/// stamps it with the wall clock: the session itself only knows media time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Milestone {
    /// The VAD opened a turn; `at_ms` is the media time of its first voiced frame.
    SpeechStart { at_ms: u64 },
    /// The VAD closed a turn; `at_ms` is the media time its trailing silence began.
    SpeechEnd { at_ms: u64 },
    /// A reply's media is in this message's output.
    ReplyQueued,
}

/// A reply sent whose `mark` has not come back yet, i.e. possibly still playing.
#[derive(Debug)]
struct Pending {
    mark: String,
    /// A `clear` was already sent after this reply; talking over it again needs none.
    cleared: bool,
}

/// The bot's side of one stream.
#[derive(Debug)]
pub(crate) struct Session {
    reply: Arc<FrameSet>,
    vad: Vad,
    /// `MZ…` from `start`; `None` until then (nothing can be sent without it).
    stream_sid: Option<String>,
    /// `CA…` from `start`, for logs.
    call_sid: String,
    pending: VecDeque<Pending>,
    /// Milestones since the driver last drained them (one message's worth).
    milestones: Vec<Milestone>,
    stats: Stats,
    /// A misbehaviour that changes the conversation (`split_vad`, `talk_over`), if any.
    quirk: Option<Behaviour>,
    /// The VAD's voiced level, for `split_vad`'s re-onset on a voiced frame.
    threshold_dbfs: f32,
    /// Media time at which the open turn's quirk acts (re-onset or early reply).
    quirk_at: Option<u64>,
}

impl Session {
    /// A session that answers each turn with `reply`.
    pub(crate) fn new(reply: Arc<FrameSet>, vad: &VadConfig) -> Self {
        Self {
            reply,
            vad: Vad::new(vad),
            stream_sid: None,
            call_sid: String::new(),
            pending: VecDeque::new(),
            milestones: Vec::new(),
            stats: Stats::default(),
            quirk: None,
            threshold_dbfs: vad.threshold_dbfs,
            quirk_at: None,
        }
    }

    /// Misbehaves as `b` from now on (only `split_vad` and `talk_over` act here).
    pub(crate) fn misbehave(&mut self, b: Behaviour) {
        self.quirk = Some(b);
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    /// Milestones produced by the last messages, oldest first; the driver drains them
    /// after each message, so this never holds more than one message's worth.
    pub(crate) fn drain_milestones(&mut self) -> std::vec::Drain<'_, Milestone> {
        self.milestones.drain(..)
    }

    /// The stream SID from `start` (`None` before it).
    pub(crate) fn stream_sid(&self) -> Option<&str> {
        self.stream_sid.as_deref()
    }

    /// The call SID from `start` (empty before it).
    pub(crate) fn call_sid(&self) -> &str {
        &self.call_sid
    }

    /// Handles one text frame from Twilio, appending what to send back to `out`.
    pub(crate) fn on_text(&mut self, text: &str, out: &mut Vec<String>) -> Flow {
        let msg = match media::parse_twilio_message(text) {
            Ok(msg) => msg,
            Err(violation) => {
                self.ignore(&violation.to_string());
                return Flow::Continue;
            }
        };
        match msg {
            TwilioMessage::Connected { protocol, version } => {
                tracing::debug!(protocol, version, "stream connected");
            }
            TwilioMessage::Start {
                stream_sid,
                call_sid,
                custom_parameters,
                ..
            } => {
                if self.stream_sid.is_some() {
                    self.ignore("second start");
                    return Flow::Continue;
                }
                let caller = custom_parameters
                    .iter()
                    .find(|(name, _)| name == "caller")
                    .map_or("", |(_, value)| value.as_str());
                tracing::info!(%stream_sid, %call_sid, caller, "stream started");
                self.stream_sid = Some(stream_sid);
                self.call_sid = call_sid;
            }
            TwilioMessage::Media {
                stream_sid,
                track,
                timestamp_ms,
                payload,
                ..
            } => {
                if !self.is_ours(&stream_sid) {
                    return Flow::Continue;
                }
                // Only the caller's audio counts; an outbound track would be our own voice.
                if track == "inbound" {
                    self.stats.media += 1;
                    self.on_audio(timestamp_ms, &payload, out);
                }
            }
            TwilioMessage::Mark {
                stream_sid, name, ..
            } => {
                if !self.is_ours(&stream_sid) {
                    return Flow::Continue;
                }
                match self.pending.iter().position(|p| p.mark == name) {
                    Some(i) => {
                        self.pending.remove(i);
                        self.stats.marks_echoed += 1;
                        tracing::debug!(call_sid = %self.call_sid, mark = %name, "reply finished");
                    }
                    None => {
                        tracing::debug!(call_sid = %self.call_sid, mark = %name, "unknown mark")
                    }
                }
            }
            TwilioMessage::Dtmf { digit, .. } => {
                tracing::debug!(call_sid = %self.call_sid, digit, "dtmf ignored");
            }
            TwilioMessage::Stop { .. } => return Flow::Stop,
        }
        Flow::Continue
    }

    /// Counts a binary frame (Twilio only sends text).
    pub(crate) fn on_binary(&mut self) {
        self.ignore("binary frame");
    }

    /// True when the message belongs to the started stream; counts it otherwise.
    fn is_ours(&mut self, stream_sid: &str) -> bool {
        match &self.stream_sid {
            Some(ours) if ours == stream_sid => true,
            Some(_) => {
                self.ignore("message for another stream");
                false
            }
            None => {
                self.ignore("message before start");
                false
            }
        }
    }

    fn ignore(&mut self, why: &str) {
        self.stats.ignored += 1;
        // One warning per call is enough to notice; the rest would flood the log.
        if self.stats.ignored == 1 {
            tracing::warn!(call_sid = %self.call_sid, why, "ignoring message");
        } else {
            tracing::debug!(call_sid = %self.call_sid, why, "ignoring message");
        }
    }

    /// Runs the VAD over a payload cut into 20 ms frames (Twilio sends 160 bytes, but
    /// the protocol does not promise it), frame `k` dated `timestamp + 20·k`.
    fn on_audio(&mut self, timestamp_ms: u64, payload: &[u8], out: &mut Vec<String>) {
        for (k, frame) in payload.chunks(FRAME_BYTES).enumerate() {
            let at = timestamp_ms.saturating_add((k * FRAME_BYTES / BYTES_PER_MS) as u64);
            let duration = (frame.len() / BYTES_PER_MS) as u64;
            let level = rms_dbfs(frame.iter().map(|&c| mulaw::decode(c)));
            match self.vad.push(at, duration, level) {
                Some(VadEvent::SpeechStart { at_ms }) => self.on_speech_start(at_ms, out),
                Some(VadEvent::SpeechEnd { at_ms, speech_ms }) => {
                    self.on_turn_end(at_ms, speech_ms, out);
                }
                None => self.quirk_in_turn(at, level, out),
            }
        }
    }

    /// `split_vad`: the VAD fires again on a voiced frame of the open turn; `talk_over`: the
    /// reply goes out while the caller still speaks. Once per turn, at `quirk_at`.
    fn quirk_in_turn(&mut self, at: u64, level: f32, out: &mut Vec<String>) {
        if self.quirk_at.is_none_or(|due| at < due) || !self.vad.is_speaking() {
            return;
        }
        match self.quirk {
            Some(Behaviour::SplitVad) if level >= self.threshold_dbfs => {
                tracing::debug!(call_sid = %self.call_sid, at, "misbehave split_vad: re-onset");
                self.milestones.push(Milestone::SpeechStart { at_ms: at });
            }
            Some(Behaviour::TalkOver) => {
                tracing::debug!(call_sid = %self.call_sid, at, "misbehave talk_over: replying");
                self.reply(at, out);
            }
            _ => return,
        }
        self.quirk_at = None;
    }

    /// Barge-in: the caller talks while a reply may still be playing, so drop the rest.
    fn on_speech_start(&mut self, at_ms: u64, out: &mut Vec<String>) {
        tracing::debug!(call_sid = %self.call_sid, at_ms, "caller speaking");
        self.milestones.push(Milestone::SpeechStart { at_ms });
        self.quirk_at = match self.quirk {
            Some(Behaviour::SplitVad) => Some(at_ms + SPLIT_VAD_AFTER_MS),
            Some(Behaviour::TalkOver) => Some(at_ms + TALK_OVER_AFTER_MS),
            _ => None,
        };
        if !self.pending.iter().any(|p| !p.cleared) {
            return;
        }
        let Some(sid) = &self.stream_sid else { return };
        out.push(media::app_clear(sid));
        for p in &mut self.pending {
            p.cleared = true;
        }
        self.stats.barge_ins += 1;
        tracing::info!(call_sid = %self.call_sid, at_ms, "barge-in: clearing reply");
    }

    /// The caller finished a turn: queue the whole reply (Twilio buffers and paces it)
    /// and a mark to learn when it has played.
    fn on_turn_end(&mut self, at_ms: u64, speech_ms: u64, out: &mut Vec<String>) {
        if self.stream_sid.is_none() {
            return;
        }
        self.milestones.push(Milestone::SpeechEnd { at_ms });
        // `talk_over` answered this turn already unless it was too short to reach that point.
        let replied = self.quirk == Some(Behaviour::TalkOver) && self.quirk_at.is_none();
        self.quirk_at = None;
        tracing::info!(call_sid = %self.call_sid, at_ms, speech_ms, "turn ended");
        if !replied {
            self.reply(at_ms, out);
        }
    }

    /// Queues the whole reply (Twilio buffers and paces it) and a mark to learn when it has
    /// played.
    fn reply(&mut self, at_ms: u64, out: &mut Vec<String>) {
        let Some(sid) = &self.stream_sid else { return };
        self.stats.turns += 1;
        let mark = format!("reply-{}", self.stats.turns);
        tracing::info!(call_sid = %self.call_sid, at_ms, %mark, "replying");
        out.reserve(self.reply.len() + 1);
        for k in 0..self.reply.len() {
            out.push(media::app_media(sid, self.reply.b64(k)));
        }
        out.push(media::app_mark(sid, &mark));
        self.milestones.push(Milestone::ReplyQueued);
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Pending {
            mark,
            cleared: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_protocol::media::{StreamIds, Track};

    const SID: &str = "MZ00000000000000000000000000000001";

    fn ids() -> StreamIds {
        StreamIds {
            account_sid: "AC00000000000000000000000000000000".into(),
            call_sid: "CA00000000000000000000000000000001".into(),
            stream_sid: SID.into(),
        }
    }

    /// A session after `connected` + `start`, and the next sequence number.
    fn started() -> (Session, u64) {
        let mut s = Session::new(Arc::new(FrameSet::silence(3)), &VadConfig::default());
        let mut out = Vec::new();
        assert_eq!(s.on_text(&media::connected(), &mut out), Flow::Continue);
        let start = media::start(
            1,
            &ids(),
            &[Track::Inbound],
            &[("caller".into(), "+1".into())],
        );
        assert_eq!(s.on_text(&start, &mut out), Flow::Continue);
        assert!(out.is_empty());
        (s, 2)
    }

    /// Feeds `frames` 20 ms frames of a tone (`loud`) or silence; returns what was sent.
    fn feed(
        s: &mut Session,
        seq: &mut u64,
        ts: &mut u64,
        frames: usize,
        loud: bool,
    ) -> Vec<String> {
        let pcm: Vec<i16> = (0..160)
            .map(|i| {
                if loud && i % 8 < 4 {
                    6000
                } else if loud {
                    -6000
                } else {
                    0
                }
            })
            .collect();
        let set = FrameSet::from_pcm(&pcm);
        let mut out = Vec::new();
        for _ in 0..frames {
            let msg = media::media(*seq, Track::Inbound, *seq, *ts, set.b64(0), SID);
            assert_eq!(s.on_text(&msg, &mut out), Flow::Continue);
            *seq += 1;
            *ts += 20;
        }
        out
    }

    fn events(out: &[String]) -> Vec<String> {
        out.iter()
            .map(
                |m| match media::parse_app_message(m, SID).expect("valid app message") {
                    media::AppMessage::Media { .. } => "media".to_owned(),
                    media::AppMessage::Mark { name } => format!("mark:{name}"),
                    media::AppMessage::Clear => "clear".to_owned(),
                },
            )
            .collect()
    }

    #[test]
    fn turn_gets_reply_then_mark_and_barge_in_clears() {
        let (mut s, mut seq) = started();
        let mut ts = 102;
        assert!(feed(&mut s, &mut seq, &mut ts, 25, true).is_empty());
        let sent = feed(&mut s, &mut seq, &mut ts, 30, false);
        assert_eq!(events(&sent), ["media", "media", "media", "mark:reply-1"]);
        // Talking over the reply clears it, once.
        let sent = feed(&mut s, &mut seq, &mut ts, 20, true);
        assert_eq!(events(&sent), ["clear"]);
        let sent = feed(&mut s, &mut seq, &mut ts, 30, false);
        assert_eq!(
            events(&sent).last().map(String::as_str),
            Some("mark:reply-2")
        );
        // The echo of reply-2 means nothing is playing: speaking again sends no clear…
        let echo = media::mark(seq, SID, "reply-2");
        s.on_text(&echo, &mut Vec::new());
        let echo = media::mark(seq + 1, SID, "reply-1");
        s.on_text(&echo, &mut Vec::new());
        seq += 2;
        assert!(feed(&mut s, &mut seq, &mut ts, 20, true).is_empty());
        let stats = s.stats();
        assert_eq!(
            (
                stats.turns,
                stats.barge_ins,
                stats.marks_echoed,
                stats.ignored
            ),
            (2, 1, 2, 0)
        );
    }

    #[test]
    fn milestones_follow_the_vad_and_the_reply() {
        let (mut s, mut seq) = started();
        let mut ts = 102;
        feed(&mut s, &mut seq, &mut ts, 25, true);
        let got: Vec<Milestone> = s.drain_milestones().collect();
        assert_eq!(got, [Milestone::SpeechStart { at_ms: 102 }]);
        feed(&mut s, &mut seq, &mut ts, 30, false);
        let got: Vec<Milestone> = s.drain_milestones().collect();
        // Speech ran 102..602; the turn closes 500 ms later, and the reply goes out.
        assert_eq!(
            got,
            [Milestone::SpeechEnd { at_ms: 602 }, Milestone::ReplyQueued]
        );
        assert_eq!(s.drain_milestones().count(), 0);
    }

    #[test]
    fn junk_is_counted_not_fatal() {
        let mut s = Session::new(Arc::new(FrameSet::silence(1)), &VadConfig::default());
        let mut out = Vec::new();
        // Media before start, garbage, and a binary frame.
        let early = media::media(
            2,
            Track::Inbound,
            1,
            0,
            dialtone_audio::frames::silence_b64(),
            SID,
        );
        assert_eq!(s.on_text(&early, &mut out), Flow::Continue);
        assert_eq!(s.on_text("{not json", &mut out), Flow::Continue);
        assert_eq!(s.on_text(r#"{"event":"media"}"#, &mut out), Flow::Continue);
        s.on_binary();
        assert!(out.is_empty());
        assert_eq!(s.stats().ignored, 4);
    }

    #[test]
    fn stop_ends_the_session() {
        let (mut s, seq) = started();
        assert_eq!(
            s.on_text(&media::stop(seq, &ids()), &mut Vec::new()),
            Flow::Stop
        );
    }

    #[test]
    fn split_vad_reports_a_second_onset_inside_a_long_turn_only() {
        let (mut s, mut seq) = started();
        s.misbehave(Behaviour::SplitVad);
        let mut ts = 102;
        // 1.5 s of speech, then silence: one re-onset 700 ms after the onset, one reply.
        assert!(feed(&mut s, &mut seq, &mut ts, 75, true).is_empty());
        let sent = feed(&mut s, &mut seq, &mut ts, 30, false);
        assert_eq!(
            events(&sent).last().map(String::as_str),
            Some("mark:reply-1")
        );
        let got: Vec<Milestone> = s.drain_milestones().collect();
        assert_eq!(
            got[..2],
            [
                Milestone::SpeechStart { at_ms: 102 },
                Milestone::SpeechStart { at_ms: 802 }
            ]
        );
        // A turn shorter than 700 ms is not split.
        feed(&mut s, &mut seq, &mut ts, 25, true);
        feed(&mut s, &mut seq, &mut ts, 30, false);
        let onsets = s
            .drain_milestones()
            .filter(|m| matches!(m, Milestone::SpeechStart { .. }))
            .count();
        assert_eq!(onsets, 1);
    }

    #[test]
    fn talk_over_replies_while_the_caller_still_speaks() {
        let (mut s, mut seq) = started();
        s.misbehave(Behaviour::TalkOver);
        let mut ts = 102;
        // The reply goes out 300 ms after the onset, mid-turn, and not again at its end.
        assert!(feed(&mut s, &mut seq, &mut ts, 15, true).is_empty());
        let sent = feed(&mut s, &mut seq, &mut ts, 60, true);
        assert_eq!(events(&sent), ["media", "media", "media", "mark:reply-1"]);
        assert!(feed(&mut s, &mut seq, &mut ts, 30, false).is_empty());
        // A turn too short to reach that point is answered at its end.
        feed(&mut s, &mut seq, &mut ts, 10, true);
        let sent = feed(&mut s, &mut seq, &mut ts, 30, false);
        assert_eq!(
            events(&sent).last().map(String::as_str),
            Some("mark:reply-2")
        );
    }
}
