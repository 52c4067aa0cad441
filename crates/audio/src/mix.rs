//! A sans-IO conference mixer for simulated Twilio `<Conference>` rooms.
//!
//! The caller drives a [`Room`] with frame indices (one per 20 ms frame): it
//! joins and removes participants, pushes live audio, then calls
//! [`Room::tick`] once per frame and reads what each participant hears with
//! [`Room::heard`]. There are no clocks and no tasks, so a room is fully
//! deterministic given the same calls.
//!
//! Each listener hears the sum of every other audible participant, computed as
//! "everyone minus me" in the linear domain so a tick is O(n), then clipped to
//! 16 bits and mu-law encoded once. Because of that single re-encode, a lone
//! speaker's audio passes through byte for byte, except the negative-zero code
//! 0x7F, which comes out as 0xFF (both decode to 0).

use std::sync::Arc;

use crate::frames::{FRAME_BYTES, FrameSet};
use crate::mulaw;

/// Identifies a participant within a room (the engine maps call SIDs to these).
pub type ParticipantId = u64;

/// Twilio's `maxParticipants` ceiling for one conference.
pub const MAX_PARTICIPANTS: usize = 250;

/// Length of the join/leave beep in frames: 300 ms. Twilio's beep is roughly
/// half a second; a shorter tone is enough to be audible and detectable in
/// recordings while masking less of the speech around a join.
pub const BEEP_FRAMES: u64 = 15;

/// Default speaking threshold: frame RMS in 16-bit linear units (about
/// -36 dBFS), well above line noise and well below normal speech.
pub const SPEAKER_THRESHOLD_RMS: u16 = 500;

/// Default speaking hangover in frames: 400 ms of quiet ends a turn, so the
/// pauses between words do not toggle the speaker state.
pub const SPEAKER_HANGOVER_FRAMES: u64 = 20;

/// One frame of mu-law silence.
const SILENT_FRAME: [u8; FRAME_BYTES] = [mulaw::SILENCE; FRAME_BYTES];

/// Beep peak amplitude: about -12 dBFS, clearly audible without clipping when
/// mixed with speech at normal levels.
const BEEP_PEAK: i32 = 8192;

/// One period of a 1 kHz sine at 8 kHz is exactly 8 samples, so the beep is a
/// table lookup instead of floating-point math (sin(k·π/4) · BEEP_PEAK).
const BEEP_PERIOD: [i32; 8] = [0, 5793, BEEP_PEAK, 5793, 0, -5793, -BEEP_PEAK, -5793];

/// Fade in/out of the beep (5 ms) so it starts and ends without a click.
const BEEP_RAMP: usize = 40;

/// Total beep samples.
const BEEP_SAMPLES: usize = BEEP_FRAMES as usize * FRAME_BYTES;

/// Where a participant's voice comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Pre-encoded audio: at the join frame the participant plays
    /// `frames.frame(offset_frame)`, one frame per tick after that, then
    /// silence once the set runs out.
    Frames {
        /// The audio.
        frames: Arc<FrameSet>,
        /// Which of its frames plays at the join frame.
        offset_frame: usize,
    },
    /// Audio pushed by the engine with [`Room::push`] before each tick; a tick
    /// without a push is silence.
    Live,
}

/// A participant started or stopped speaking (for `statusCallbackEvent="speaker"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeakerEvent {
    /// Who.
    pub id: ParticipantId,
    /// True when speaking starts, false when it stops.
    pub speaking: bool,
    /// The tick's frame index.
    pub frame: u64,
}

/// Why a room operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// The room already has [`MAX_PARTICIPANTS`] participants at that frame.
    #[error("conference is full ({MAX_PARTICIPANTS} participants)")]
    Full,
    /// The participant is already in the room (a scheduled leave frees the id
    /// only once a tick reaches it).
    #[error("participant {0} is already in the conference")]
    AlreadyJoined(ParticipantId),
    /// No such participant in the room.
    #[error("participant {0} is not in the conference")]
    Unknown(ParticipantId),
    /// [`Room::push`] on a participant whose audio comes from a [`Source::Frames`].
    #[error("participant {0} does not have a live source")]
    NotLive(ParticipantId),
    /// A participant cannot coach itself.
    #[error("participant {0} cannot coach itself")]
    SelfCoaching(ParticipantId),
}

/// Per-participant state, including its reusable per-tick buffers.
struct Member {
    id: ParticipantId,
    source: MemberSource,
    /// First frame the participant is present.
    from: u64,
    /// First frame it is gone, once it has been asked to leave.
    until: Option<u64>,
    muted: bool,
    held: bool,
    /// Whom it coaches: then only that participant hears it.
    coaching: Option<ParticipantId>,
    /// Present at the last tick (so `heard` is meaningful).
    present: bool,
    /// Its contribution at the last tick, linear; valid when `voiced`.
    lin: [i16; FRAME_BYTES],
    /// It contributed audio at the last tick (present, unmuted, not held, with a frame).
    voiced: bool,
    /// Coaches' audio for this participant; valid when `has_extra`.
    extra: [i32; FRAME_BYTES],
    has_extra: bool,
    /// What it heard at the last tick.
    heard: [u8; FRAME_BYTES],
    speaking: bool,
    /// Last frame above the threshold, for the hangover.
    last_loud: u64,
}

enum MemberSource {
    Frames {
        frames: Arc<FrameSet>,
        offset: usize,
    },
    Live {
        frame: [u8; FRAME_BYTES],
        pushed: bool,
    },
}

impl Member {
    fn gone_by(&self, frame: u64) -> bool {
        self.until.is_some_and(|until| until <= frame)
    }
}

impl MemberSource {
    /// The participant's own audio at `frame`, for a stint that began at
    /// `from` (it must be present then).
    fn voice_at(&self, from: u64, frame: u64) -> Option<&[u8; FRAME_BYTES]> {
        match self {
            MemberSource::Frames { frames, offset } => usize::try_from(frame - from)
                .ok()
                .and_then(|k| k.checked_add(*offset))
                .filter(|&k| k < frames.len())
                .map(|k| frames.frame(k)),
            MemberSource::Live { frame, pushed } => pushed.then_some(frame),
        }
    }
}

/// One conference room: the participants, queued beeps and the mix buffers.
///
/// Participants are kept sorted by id, so lookups are a binary search and
/// speaker events come out in id order.
pub struct Room {
    members: Vec<Member>,
    /// Sum of every contribution heard by all, for the current tick.
    total: [i32; FRAME_BYTES],
    /// Start frames of queued or playing beeps, distinct.
    beeps: Vec<u64>,
    /// Beep samples for the current tick; valid when `beeping`.
    beep: [i32; FRAME_BYTES],
    beeping: bool,
    events: Vec<SpeakerEvent>,
    /// Squared RMS threshold times the frame length, so no square root is needed.
    loud_energy: u64,
    hangover: u64,
}

impl Default for Room {
    fn default() -> Self {
        Self::with_speaker_detection(SPEAKER_THRESHOLD_RMS, SPEAKER_HANGOVER_FRAMES)
    }
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The buffers are kilobytes of samples; who is in the room is what a log needs.
        f.debug_struct("Room")
            .field(
                "participants",
                &self.members.iter().map(|m| m.id).collect::<Vec<_>>(),
            )
            .field("beeps", &self.beeps)
            .finish_non_exhaustive()
    }
}

impl Room {
    /// An empty room with the default speaker detection
    /// ([`SPEAKER_THRESHOLD_RMS`], [`SPEAKER_HANGOVER_FRAMES`]).
    pub fn new() -> Room {
        Room::default()
    }

    /// An empty room whose speaker detection starts on a frame with RMS above
    /// `threshold_rms` and stops after `hangover_frames` frames at or below it.
    pub fn with_speaker_detection(threshold_rms: u16, hangover_frames: u64) -> Room {
        Room {
            members: Vec::new(),
            total: [0; FRAME_BYTES],
            beeps: Vec::new(),
            beep: [0; FRAME_BYTES],
            beeping: false,
            events: Vec::new(),
            loud_energy: u64::from(threshold_rms).pow(2) * FRAME_BYTES as u64,
            hangover: hangover_frames,
        }
    }

    /// Adds a participant, present from `at_frame` on.
    pub fn join(
        &mut self,
        id: ParticipantId,
        source: Source,
        at_frame: u64,
    ) -> Result<(), RoomError> {
        let Err(slot) = self.index(id) else {
            return Err(RoomError::AlreadyJoined(id));
        };
        // Those already leaving by `at_frame` no longer take a seat.
        let seated = self.members.iter().filter(|m| !m.gone_by(at_frame)).count();
        if seated >= MAX_PARTICIPANTS {
            return Err(RoomError::Full);
        }
        let source = match source {
            Source::Frames {
                frames,
                offset_frame,
            } => MemberSource::Frames {
                frames,
                offset: offset_frame,
            },
            Source::Live => MemberSource::Live {
                frame: SILENT_FRAME,
                pushed: false,
            },
        };
        self.members.insert(
            slot,
            Member {
                id,
                source,
                from: at_frame,
                until: None,
                muted: false,
                held: false,
                coaching: None,
                present: false,
                lin: [0; FRAME_BYTES],
                voiced: false,
                extra: [0; FRAME_BYTES],
                has_extra: false,
                heard: SILENT_FRAME,
                speaking: false,
                last_loud: 0,
            },
        );
        // A tick emits at most one event per member: reserving here keeps tick allocation-free.
        self.events
            .reserve(self.members.len().saturating_sub(self.events.len()));
        Ok(())
    }

    /// The participant is gone from `at_frame` on (ticks at earlier frames still
    /// include it). Its id can be joined again once a tick has reached `at_frame`.
    pub fn leave(&mut self, id: ParticipantId, at_frame: u64) -> Result<(), RoomError> {
        self.member_mut(id)?.until = Some(at_frame);
        Ok(())
    }

    /// A muted participant still hears the room but is not heard.
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) -> Result<(), RoomError> {
        self.member_mut(id)?.muted = muted;
        Ok(())
    }

    /// A held participant neither hears the room nor is heard; [`Room::heard`]
    /// gives it silence, in place of which the engine plays hold music.
    pub fn set_hold(&mut self, id: ParticipantId, held: bool) -> Result<(), RoomError> {
        self.member_mut(id)?.held = held;
        Ok(())
    }

    /// Makes `id` a coach of `target` (heard only by `target`, hearing
    /// everyone but other coaches), or an ordinary participant again with
    /// `None`. If `target` leaves, the coach is heard by no one.
    pub fn set_coaching(
        &mut self,
        id: ParticipantId,
        target: Option<ParticipantId>,
    ) -> Result<(), RoomError> {
        if let Some(target) = target {
            if target == id {
                return Err(RoomError::SelfCoaching(id));
            }
            self.index(target).map_err(|_| RoomError::Unknown(target))?;
        }
        self.member_mut(id)?.coaching = target;
        Ok(())
    }

    /// Supplies a live participant's audio for the next tick (a later push
    /// before that tick replaces it).
    pub fn push(&mut self, id: ParticipantId, frame: &[u8; FRAME_BYTES]) -> Result<(), RoomError> {
        match &mut self.member_mut(id)?.source {
            MemberSource::Live {
                frame: slot,
                pushed,
            } => {
                *slot = *frame;
                *pushed = true;
                Ok(())
            }
            MemberSource::Frames { .. } => Err(RoomError::NotLive(id)),
        }
    }

    /// Queues a beep ([`BEEP_FRAMES`] of 1 kHz) heard by every present, not
    /// held participant from `at_frame` on. Beeps queued for the same frame
    /// play once; overlapping ones add up.
    pub fn beep(&mut self, at_frame: u64) {
        if !self.beeps.contains(&at_frame) {
            self.beeps.push(at_frame);
        }
    }

    /// Mixes frame `frame` (call with increasing frames, once each) and returns
    /// the speaker events it produced. Afterwards [`Room::heard`] gives each
    /// present participant's audio. Allocates nothing.
    pub fn tick(&mut self, frame: u64) -> &[SpeakerEvent] {
        self.events.clear();
        self.depart(frame);
        self.contribute(frame);
        self.mix_beeps(frame);
        self.add_coaches();
        for m in &mut self.members {
            if !m.present || m.held {
                m.heard = SILENT_FRAME;
                continue;
            }
            let own = m.voiced && m.coaching.is_none();
            for i in 0..FRAME_BYTES {
                let mut sum = self.total[i];
                if own {
                    sum -= i32::from(m.lin[i]);
                }
                if m.has_extra {
                    sum += m.extra[i];
                }
                if self.beeping {
                    sum += self.beep[i];
                }
                let clipped = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                m.heard[i] = mulaw::encode(clipped);
            }
        }
        &self.events
    }

    /// What `id` heard at the last tick; `None` if it was not present then.
    pub fn heard(&self, id: ParticipantId) -> Option<&[u8; FRAME_BYTES]> {
        let m = &self.members[self.index(id).ok()?];
        m.present.then_some(&m.heard)
    }

    /// Every participant present at the last tick with what it heard, in id order.
    pub fn heard_all(&self) -> impl Iterator<Item = (ParticipantId, &[u8; FRAME_BYTES])> {
        self.members
            .iter()
            .filter(|m| m.present)
            .map(|m| (m.id, &m.heard))
    }

    /// Whether `id` is in the room (joined, possibly not yet present or about to leave).
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.index(id).is_ok()
    }

    /// Participants in the room, counting those joining or leaving at a later frame.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when no one is in the room.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn index(&self, id: ParticipantId) -> Result<usize, usize> {
        self.members.binary_search_by_key(&id, |m| m.id)
    }

    fn member_mut(&mut self, id: ParticipantId) -> Result<&mut Member, RoomError> {
        let i = self.index(id).map_err(|_| RoomError::Unknown(id))?;
        Ok(&mut self.members[i])
    }

    /// Drops participants whose leave frame has come, ending their turn first
    /// so a consumer's speaker state never stays stuck on.
    fn depart(&mut self, frame: u64) {
        for m in &self.members {
            if m.gone_by(frame) && m.speaking {
                self.events.push(SpeakerEvent {
                    id: m.id,
                    speaking: false,
                    frame,
                });
            }
        }
        self.members.retain(|m| !m.gone_by(frame));
    }

    /// Decodes each participant's frame, adds those heard by all to `total`
    /// and updates speaker state.
    fn contribute(&mut self, frame: u64) {
        self.total = [0; FRAME_BYTES];
        for m in &mut self.members {
            m.present = m.from <= frame;
            m.voiced = false;
            m.has_extra = false;
            if m.present
                && !m.muted
                && !m.held
                && let Some(codes) = m.source.voice_at(m.from, frame)
            {
                for (lin, &code) in m.lin.iter_mut().zip(codes) {
                    *lin = mulaw::decode(code);
                }
                m.voiced = true;
            }
            // A push is for one tick only.
            if let MemberSource::Live { pushed, .. } = &mut m.source {
                *pushed = false;
            }
            if !m.present {
                continue;
            }
            if m.voiced && m.coaching.is_none() {
                for (total, &lin) in self.total.iter_mut().zip(&m.lin) {
                    *total += i32::from(lin);
                }
            }
            let energy: u64 = if m.voiced {
                m.lin
                    .iter()
                    .map(|&s| (i64::from(s) * i64::from(s)) as u64)
                    .sum()
            } else {
                0
            };
            if energy > self.loud_energy {
                m.last_loud = frame;
                if !m.speaking {
                    m.speaking = true;
                    self.events.push(SpeakerEvent {
                        id: m.id,
                        speaking: true,
                        frame,
                    });
                }
            } else if m.speaking && frame.saturating_sub(m.last_loud) >= self.hangover {
                m.speaking = false;
                self.events.push(SpeakerEvent {
                    id: m.id,
                    speaking: false,
                    frame,
                });
            }
        }
    }

    /// Fills `beep` with the samples of every beep sounding at `frame` and
    /// forgets finished ones.
    fn mix_beeps(&mut self, frame: u64) {
        self.beeps
            .retain(|&start| start.saturating_add(BEEP_FRAMES) > frame);
        self.beeping = false;
        self.beep = [0; FRAME_BYTES];
        for &start in &self.beeps {
            if start > frame {
                continue;
            }
            self.beeping = true;
            // < BEEP_FRAMES, checked by the retain above.
            let base = (frame - start) as usize * FRAME_BYTES;
            for (i, out) in self.beep.iter_mut().enumerate() {
                *out += beep_sample(base + i);
            }
        }
    }

    /// Adds each sounding coach's audio to the one participant it coaches.
    fn add_coaches(&mut self) {
        for c in 0..self.members.len() {
            let coach = &self.members[c];
            let Some(target) = coach.coaching.filter(|_| coach.voiced) else {
                continue;
            };
            let lin = coach.lin;
            let Ok(t) = self.index(target) else {
                continue;
            };
            let target = &mut self.members[t];
            if !target.has_extra {
                target.extra = [0; FRAME_BYTES];
                target.has_extra = true;
            }
            for (extra, &s) in target.extra.iter_mut().zip(&lin) {
                *extra += i32::from(s);
            }
        }
    }

    #[cfg(test)]
    fn capacities(&self) -> (usize, usize, usize) {
        (
            self.members.capacity(),
            self.beeps.capacity(),
            self.events.capacity(),
        )
    }
}

/// Sample `n` of the beep: the 1 kHz table under a linear fade at both ends.
fn beep_sample(n: usize) -> i32 {
    let edge = n.min(BEEP_SAMPLES - 1 - n);
    let tone = BEEP_PERIOD[n % BEEP_PERIOD.len()];
    if edge < BEEP_RAMP {
        tone * edge as i32 / BEEP_RAMP as i32
    } else {
        tone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sine at `hz` and peak `amp`, `frames` frames long.
    fn tone(hz: f64, amp: f64, frames: usize) -> Arc<FrameSet> {
        let pcm: Vec<i16> = (0..frames * FRAME_BYTES)
            .map(|n| {
                let t = n as f64 / 8000.0;
                (amp * (2.0 * std::f64::consts::PI * hz * t).sin()).round() as i16
            })
            .collect();
        Arc::new(FrameSet::from_pcm(&pcm))
    }

    /// A constant-level frame (mu-law of `sample`).
    fn dc(sample: i16, frames: usize) -> Arc<FrameSet> {
        Arc::new(FrameSet::from_pcm(&vec![sample; frames * FRAME_BYTES]))
    }

    fn frames(set: &Arc<FrameSet>) -> Source {
        Source::Frames {
            frames: Arc::clone(set),
            offset_frame: 0,
        }
    }

    /// Negative zero is the one code the single re-encode changes.
    fn normalised(frame: &[u8; FRAME_BYTES]) -> [u8; FRAME_BYTES] {
        frame.map(|c| if c == 0x7F { mulaw::SILENCE } else { c })
    }

    /// The reference mix: decode, sum (plus the beep from sample `beep_at`), clip, encode.
    fn mix_of(parts: &[&[u8; FRAME_BYTES]], beep_at: Option<usize>) -> [u8; FRAME_BYTES] {
        std::array::from_fn(|i| {
            let mut sum: i32 = parts.iter().map(|p| i32::from(mulaw::decode(p[i]))).sum();
            if let Some(at) = beep_at {
                sum += beep_sample(at + i);
            }
            mulaw::encode(sum.clamp(-32768, 32767) as i16)
        })
    }

    fn decoded(frame: &[u8; FRAME_BYTES]) -> Vec<i32> {
        frame.iter().map(|&c| i32::from(mulaw::decode(c))).collect()
    }

    #[test]
    fn every_code_but_negative_zero_survives_a_reencode() {
        for code in 0..=255u8 {
            let back = mulaw::encode(mulaw::decode(code));
            if code == 0x7F {
                assert_eq!(back, mulaw::SILENCE);
            } else {
                assert_eq!(back, code, "code {code:#04x}");
            }
        }
    }

    #[test]
    fn two_participants_hear_exactly_each_other() {
        let a = tone(440.0, 6000.0, 10);
        let b = tone(700.0, 3000.0, 10);
        let mut room = Room::new();
        room.join(1, frames(&a), 0).unwrap();
        room.join(2, frames(&b), 0).unwrap();
        for k in 0..10 {
            room.tick(k);
            assert_eq!(room.heard(1).unwrap(), &normalised(b.frame(k as usize)));
            assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(k as usize)));
        }
        // Only one of them speaking: the other hears it, the speaker hears silence.
        let mut room = Room::new();
        room.join(1, frames(&a), 0).unwrap();
        room.join(2, Source::Live, 0).unwrap();
        room.tick(0);
        assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(0)));
        assert_eq!(room.heard(1).unwrap(), &SILENT_FRAME);
    }

    #[test]
    fn alone_hears_silence() {
        let a = tone(440.0, 6000.0, 3);
        let mut room = Room::new();
        room.join(1, frames(&a), 0).unwrap();
        room.tick(0);
        assert_eq!(room.heard(1).unwrap(), &SILENT_FRAME);
        assert_eq!(room.heard_all().count(), 1);
    }

    #[test]
    fn three_hear_the_sum_of_the_other_two() {
        let sets = [
            tone(300.0, 5000.0, 4),
            tone(450.0, 7000.0, 4),
            tone(1100.0, 2000.0, 4),
        ];
        let mut room = Room::new();
        for (id, set) in sets.iter().enumerate() {
            room.join(id as u64, frames(set), 0).unwrap();
        }
        for k in 0..4 {
            room.tick(k);
            for me in 0..3 {
                let heard = room.heard(me as u64).unwrap();
                let others: Vec<_> = (0..3).filter(|&o| o != me).collect();
                let expect: Vec<i32> = (0..FRAME_BYTES)
                    .map(|i| {
                        others
                            .iter()
                            .map(|&o| i32::from(mulaw::decode(sets[o].frame(k as usize)[i])))
                            .sum()
                    })
                    .collect();
                for (i, (&got, &want)) in decoded(heard).iter().zip(&expect).enumerate() {
                    // Half a mu-law step at that level is at most (|x| + 132) / 32.
                    let slack = (want.abs() + 132) / 32 + 1;
                    assert!(
                        (got - want).abs() <= slack,
                        "listener {me} frame {k} sample {i}: {got} vs {want}"
                    );
                    assert_eq!(heard[i], mulaw::encode(want as i16));
                }
            }
        }
    }

    #[test]
    fn muted_is_not_heard_but_hears() {
        let a = tone(440.0, 6000.0, 5);
        let b = tone(700.0, 3000.0, 5);
        let mut room = Room::new();
        room.join(1, frames(&a), 0).unwrap();
        room.join(2, frames(&b), 0).unwrap();
        room.set_muted(1, true).unwrap();
        room.tick(0);
        assert_eq!(room.heard(2).unwrap(), &SILENT_FRAME);
        assert_eq!(room.heard(1).unwrap(), &normalised(b.frame(0)));
        room.set_muted(1, false).unwrap();
        room.tick(1);
        assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(1)));
    }

    #[test]
    fn held_neither_hears_nor_is_heard() {
        let sets = [
            tone(440.0, 6000.0, 5),
            tone(700.0, 3000.0, 5),
            tone(900.0, 3000.0, 5),
        ];
        let mut room = Room::new();
        for (id, set) in sets.iter().enumerate() {
            room.join(id as u64, frames(set), 0).unwrap();
        }
        room.set_hold(0, true).unwrap();
        room.beep(0);
        room.tick(0);
        // Not even the beep reaches a held participant.
        assert_eq!(room.heard(0).unwrap(), &SILENT_FRAME);
        assert_eq!(
            room.heard(1).unwrap(),
            &mix_of(&[sets[2].frame(0)], Some(0))
        );
        assert_eq!(
            room.heard(2).unwrap(),
            &mix_of(&[sets[1].frame(0)], Some(0))
        );
        room.set_hold(0, false).unwrap();
        room.tick(1);
        let beep = Some(FRAME_BYTES);
        assert_eq!(
            room.heard(0).unwrap(),
            &mix_of(&[sets[1].frame(1), sets[2].frame(1)], beep)
        );
        assert_eq!(
            room.heard(1).unwrap(),
            &mix_of(&[sets[0].frame(1), sets[2].frame(1)], beep)
        );
    }

    #[test]
    fn unheld_is_heard_again() {
        let a = tone(440.0, 6000.0, 5);
        let mut room = Room::new();
        room.join(1, frames(&a), 0).unwrap();
        room.join(2, Source::Live, 0).unwrap();
        room.set_hold(1, true).unwrap();
        room.tick(0);
        assert_eq!(room.heard(2).unwrap(), &SILENT_FRAME);
        room.set_hold(1, false).unwrap();
        room.tick(1);
        assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(1)));
    }

    #[test]
    fn leave_takes_effect_at_its_frame() {
        let a = tone(440.0, 6000.0, 10);
        let mut room = Room::new();
        room.join(1, frames(&a), 0).unwrap();
        room.join(2, Source::Live, 0).unwrap();
        room.leave(1, 3).unwrap();
        room.tick(2);
        assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(2)));
        assert_eq!(
            room.join(1, Source::Live, 3),
            Err(RoomError::AlreadyJoined(1))
        );
        room.tick(3);
        assert_eq!(room.heard(1), None);
        assert!(!room.contains(1));
        assert_eq!(room.heard(2).unwrap(), &SILENT_FRAME);
        assert_eq!(room.leave(1, 4), Err(RoomError::Unknown(1)));
        // The id is free again; the new stint starts its source over.
        room.join(1, frames(&a), 4).unwrap();
        room.tick(4);
        assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(0)));
    }

    #[test]
    fn frames_source_starts_at_its_offset_and_ends_in_silence() {
        let a = tone(440.0, 6000.0, 6);
        let mut room = Room::new();
        room.join(
            1,
            Source::Frames {
                frames: Arc::clone(&a),
                offset_frame: 3,
            },
            10,
        )
        .unwrap();
        room.join(2, Source::Live, 0).unwrap();
        room.tick(9);
        assert_eq!(room.heard(1), None, "not present before its join frame");
        assert_eq!(room.heard(2).unwrap(), &SILENT_FRAME);
        for (frame, k) in [(10, 3), (11, 4), (12, 5)] {
            room.tick(frame);
            assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(k)));
        }
        room.tick(13);
        assert_eq!(room.heard(2).unwrap(), &SILENT_FRAME);
        // An offset past the end is silence from the start.
        room.join(
            3,
            Source::Frames {
                frames: Arc::clone(&a),
                offset_frame: usize::MAX,
            },
            14,
        )
        .unwrap();
        room.tick(14);
        assert_eq!(room.heard(2).unwrap(), &SILENT_FRAME);
    }

    #[test]
    fn live_source_is_silent_without_a_push() {
        let a = tone(440.0, 6000.0, 3);
        let b = tone(800.0, 6000.0, 3);
        let mut room = Room::new();
        room.join(1, Source::Live, 0).unwrap();
        room.join(
            2,
            Source::Frames {
                frames: Arc::clone(&b),
                offset_frame: 0,
            },
            0,
        )
        .unwrap();
        room.push(1, a.frame(0)).unwrap();
        room.tick(0);
        assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(0)));
        room.tick(1);
        assert_eq!(room.heard(2).unwrap(), &SILENT_FRAME);
        // The last push before a tick wins.
        room.push(1, a.frame(0)).unwrap();
        room.push(1, a.frame(2)).unwrap();
        room.tick(2);
        assert_eq!(room.heard(2).unwrap(), &normalised(a.frame(2)));
        assert_eq!(room.push(2, a.frame(0)), Err(RoomError::NotLive(2)));
        assert_eq!(room.push(9, a.frame(0)), Err(RoomError::Unknown(9)));
    }

    #[test]
    fn loud_sums_clip_instead_of_wrapping() {
        let loud = dc(30000, 2);
        let quiet = dc(-30000, 2);
        let mut room = Room::new();
        room.join(1, frames(&loud), 0).unwrap();
        room.join(2, frames(&loud), 0).unwrap();
        room.join(3, frames(&quiet), 0).unwrap();
        room.join(4, frames(&quiet), 0).unwrap();
        room.join(5, Source::Live, 0).unwrap();
        room.leave(3, 1).unwrap();
        room.leave(4, 1).unwrap();
        room.tick(0);
        // Everyone cancels out for 5.
        assert_eq!(room.heard(5).unwrap(), &SILENT_FRAME);
        room.tick(1);
        // 1 and 2 alone: 5 hears 60000, clipped to the loudest positive code.
        assert_eq!(room.heard(5).unwrap(), &[0x80; FRAME_BYTES]);
        let mut room = Room::new();
        room.join(1, frames(&quiet), 0).unwrap();
        room.join(2, frames(&quiet), 0).unwrap();
        room.join(3, Source::Live, 0).unwrap();
        room.tick(0);
        assert_eq!(room.heard(3).unwrap(), &[0x00; FRAME_BYTES]);
    }

    #[test]
    fn beep_plays_for_everyone_for_its_length() {
        let mut room = Room::new();
        room.join(1, Source::Live, 0).unwrap();
        room.join(2, Source::Live, 0).unwrap();
        room.beep(5);
        room.beep(5);
        room.tick(4);
        assert_eq!(room.heard(1).unwrap(), &SILENT_FRAME);
        for k in 0..BEEP_FRAMES {
            room.tick(5 + k);
            let want = mix_of(&[], Some(k as usize * FRAME_BYTES));
            for id in [1, 2] {
                assert_eq!(room.heard(id).unwrap(), &want);
            }
        }
        room.tick(5 + BEEP_FRAMES);
        assert_eq!(room.heard(1).unwrap(), &SILENT_FRAME);
        assert!(room.beeps.is_empty());
    }

    #[test]
    fn beep_shape() {
        // Starts and ends at zero (faded), reaches the peak in between.
        assert_eq!(beep_sample(0), 0);
        assert_eq!(beep_sample(BEEP_SAMPLES - 1), 0);
        let peak = (0..BEEP_SAMPLES).map(beep_sample).max().unwrap();
        assert_eq!(peak, BEEP_PEAK);
        // 1 kHz: 1000 positive peaks per second of audio.
        let peaks = (0..BEEP_SAMPLES).filter(|&n| n % 8 == 2).count();
        assert_eq!(peaks, BEEP_SAMPLES / 8);
        assert_eq!(BEEP_SAMPLES, 2400);
    }

    #[test]
    fn speaker_events_have_hangover() {
        let loud = tone(300.0, 8000.0, 1);
        let mut room = Room::new();
        room.join(1, Source::Live, 0).unwrap();
        room.join(2, Source::Live, 0).unwrap();
        let mut events = Vec::new();
        // Loud 0..5, a 10-frame pause (shorter than the hangover), loud 15..20, then quiet.
        for frame in 0..100u64 {
            if frame < 5 || (15..20).contains(&frame) {
                room.push(1, loud.frame(0)).unwrap();
            }
            events.extend_from_slice(room.tick(frame));
        }
        assert_eq!(
            events,
            [
                SpeakerEvent {
                    id: 1,
                    speaking: true,
                    frame: 0
                },
                SpeakerEvent {
                    id: 1,
                    speaking: false,
                    frame: 19 + SPEAKER_HANGOVER_FRAMES
                },
            ]
        );
    }

    #[test]
    fn quiet_or_muted_audio_is_not_speech_and_leaving_ends_a_turn() {
        let whisper = tone(300.0, 300.0, 1);
        let loud = tone(300.0, 8000.0, 1);
        let mut room = Room::new();
        room.join(1, Source::Live, 0).unwrap();
        room.join(2, Source::Live, 0).unwrap();
        room.push(1, whisper.frame(0)).unwrap();
        assert!(room.tick(0).is_empty());
        room.set_muted(2, true).unwrap();
        room.push(2, loud.frame(0)).unwrap();
        assert!(room.tick(1).is_empty());
        room.set_muted(2, false).unwrap();
        room.push(2, loud.frame(0)).unwrap();
        assert_eq!(
            room.tick(2),
            [SpeakerEvent {
                id: 2,
                speaking: true,
                frame: 2
            }]
        );
        room.leave(2, 3).unwrap();
        assert_eq!(
            room.tick(3),
            [SpeakerEvent {
                id: 2,
                speaking: false,
                frame: 3
            }]
        );
    }

    #[test]
    fn custom_speaker_detection() {
        let quiet = tone(300.0, 300.0, 1);
        let mut room = Room::with_speaker_detection(100, 2);
        room.join(1, Source::Live, 0).unwrap();
        room.push(1, quiet.frame(0)).unwrap();
        assert_eq!(room.tick(0).len(), 1);
        assert!(room.tick(1).is_empty());
        assert_eq!(
            room.tick(2),
            [SpeakerEvent {
                id: 1,
                speaking: false,
                frame: 2
            }]
        );
    }

    #[test]
    fn at_most_250_participants() {
        let mut room = Room::new();
        for id in 0..MAX_PARTICIPANTS as u64 {
            room.join(id, Source::Live, 0).unwrap();
        }
        assert_eq!(room.join(1000, Source::Live, 0), Err(RoomError::Full));
        assert_eq!(
            room.join(0, Source::Live, 0),
            Err(RoomError::AlreadyJoined(0))
        );
        room.leave(7, 5).unwrap();
        // Still seated at frame 4, gone at frame 5.
        assert_eq!(room.join(1000, Source::Live, 4), Err(RoomError::Full));
        room.join(1000, Source::Live, 5).unwrap();
        room.tick(5);
        assert_eq!(room.heard_all().count(), MAX_PARTICIPANTS);
        assert_eq!(room.len(), MAX_PARTICIPANTS);
    }

    #[test]
    fn coach_is_heard_only_by_its_target() {
        let coach = tone(440.0, 4000.0, 2);
        let agent = tone(700.0, 4000.0, 2);
        let mut room = Room::new();
        room.join(1, frames(&agent), 0).unwrap();
        room.join(2, Source::Live, 0).unwrap(); // customer
        room.join(3, frames(&coach), 0).unwrap();
        assert_eq!(
            room.set_coaching(3, Some(3)),
            Err(RoomError::SelfCoaching(3))
        );
        assert_eq!(room.set_coaching(3, Some(9)), Err(RoomError::Unknown(9)));
        room.set_coaching(3, Some(1)).unwrap();
        room.tick(0);
        assert_eq!(room.heard(1).unwrap(), &normalised(coach.frame(0)));
        assert_eq!(room.heard(2).unwrap(), &normalised(agent.frame(0)));
        assert_eq!(room.heard(3).unwrap(), &normalised(agent.frame(0)));
        room.set_coaching(3, None).unwrap();
        room.tick(1);
        assert_eq!(
            room.heard(2).unwrap(),
            &mix_of(&[coach.frame(1), agent.frame(1)], None)
        );
    }

    #[test]
    fn steady_state_tick_does_not_grow_anything() {
        let loud = tone(300.0, 8000.0, 1);
        let mut room = Room::new();
        for id in 0..40 {
            room.join(id, Source::Live, 0).unwrap();
        }
        room.set_coaching(39, Some(0)).unwrap();
        room.beep(0);
        // Every participant starts speaking on the same tick: the most events a tick makes.
        let before = room.capacities();
        for frame in 0..200u64 {
            for id in 0..40 {
                if frame % 50 < 10 {
                    room.push(id, loud.frame(0)).unwrap();
                }
            }
            let events = room.tick(frame).len();
            assert!(events <= 40);
            assert_eq!(room.capacities(), before, "frame {frame}");
        }
    }

    #[test]
    fn unknown_participants_are_errors() {
        let mut room = Room::new();
        assert_eq!(room.set_muted(1, true), Err(RoomError::Unknown(1)));
        assert_eq!(room.set_hold(1, true), Err(RoomError::Unknown(1)));
        assert_eq!(room.set_coaching(1, None), Err(RoomError::Unknown(1)));
        assert_eq!(room.heard(1), None);
        assert!(room.is_empty());
    }
}
