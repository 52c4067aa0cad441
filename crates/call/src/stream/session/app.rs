//! What the app sends on the stream: its audio into the playout, `mark`s echoed when their
//! audio has played, `clear`, invalid messages counted, and the no-audio bound.

use std::time::Duration;

use dialtone_protocol::media::{self, AppMessage};

use super::{EVENTS_SHOWN, INVALID_SAMPLES, Phase, Session, Wire};
use crate::playout::{MAX_PENDING_MARK_BYTES, MAX_PENDING_MARKS, MarkEcho, MarkPush};
use crate::report::{EventKind, Failure, InvalidMessage};

impl Session {
    /// A text message from the app arrived at `now_us`.
    pub(crate) fn on_text(&mut self, now_us: u64, text: &str, wire: &mut impl Wire) {
        if !matches!(self.phase, Phase::Streaming | Phase::HungUp) {
            return;
        }
        // Lenient about extra fields: widely used apps add e.g. `media.track`, and Twilio plays
        // their audio.
        let msg = match media::parse_app_message_with(
            text,
            &self.ids.stream_sid,
            media::Strictness::Lenient,
        ) {
            Ok(m) => m,
            Err(v) => return self.invalid_message(wire, v.to_string(), text),
        };
        if !self.bidirectional {
            // Twilio: sending to a unidirectional stream is a protocol error (31924); the
            // message has no effect.
            return self.invalid_message(
                wire,
                "message sent on a unidirectional <Start> stream (31924)".into(),
                text,
            );
        }
        match msg {
            AppMessage::Media { payload } => self.on_media(now_us, &payload, wire),
            AppMessage::Mark { name } => {
                let id = self.playout.marks_received();
                self.marks.received(id, &name);
                match self.playout.push_mark(now_us, name) {
                    MarkPush::Echo(echo) => self.release_echo(wire, echo, now_us),
                    MarkPush::Queued(_) => {}
                    MarkPush::Refused(_) => self.mark_refused(wire),
                }
            }
            AppMessage::Clear => {
                self.clears += 1;
                let out = self.playout.clear(now_us);
                self.turns.on_clear(now_us);
                if self.clears <= EVENTS_SHOWN {
                    wire.event(EventKind::Clear {
                        stream_sid: self.ids.stream_sid.clone(),
                        dropped_ms: out.dropped_ms,
                        marks_echoed: out.echoes.len(),
                    });
                }
                for echo in out.echoes {
                    self.release_echo(wire, echo, now_us);
                }
            }
        }
    }

    /// A binary frame from the app: Media Streams is text only.
    pub(crate) fn on_binary(&mut self, len: usize, wire: &mut impl Wire) {
        if matches!(self.phase, Phase::Streaming | Phase::HungUp) {
            self.invalid_message(
                wire,
                media::Violation::BinaryFrame.to_string(),
                &format!("<binary frame, {len} bytes>"),
            );
        }
    }

    fn on_media(&mut self, now_us: u64, payload: &[u8], wire: &mut impl Wire) {
        self.media_received += 1;
        let heard_us = self.playout.push_media(now_us, payload);
        match &mut self.late {
            // After the caller's time, on the wall clock: evidence, not a reply.
            Some((media, bytes)) => {
                *media += 1;
                *bytes += payload.len() as u64;
            }
            None => {
                self.turns.on_app_media(now_us, heard_us);
                self.turns
                    .on_app_heard(heard_us, self.playout.busy_until_us());
            }
        }
        let first = self.first_audio_us.is_none().then_some(now_us);
        wire.app_media(first);
        if first.is_some() {
            self.first_audio_us = Some(now_us);
            wire.event(EventKind::FirstAudioBack {
                stream_sid: self.ids.stream_sid.clone(),
                after_start: Duration::from_micros(now_us),
            });
        }
    }

    /// App `media` messages received so far.
    pub(crate) fn media_received(&self) -> u64 {
        self.media_received
    }

    /// From now on app audio is counted as late (virtual time, after the caller's hang-up).
    pub(crate) fn watch_late(&mut self) {
        self.late = Some((0, 0));
    }

    /// Late app audio so far: (media messages, μ-law bytes).
    pub(crate) fn late(&self) -> Option<(u64, u64)> {
        self.late
    }

    /// Turns the caller finished with no reply yet, and how many it finished.
    pub(crate) fn unanswered(&self) -> (usize, usize) {
        self.turns.unanswered()
    }

    /// True for a `<Connect>` stream (the app may answer).
    pub(crate) fn bidirectional(&self) -> bool {
        self.bidirectional
    }

    /// The stream URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A warning for the call's report (also shown on the timeline).
    pub(crate) fn warn(&mut self, wire: &mut impl Wire, message: String) {
        self.warnings.push((0, message.clone()));
        wire.event(EventKind::Warning { code: 0, message });
    }

    /// A failure found by the driver (virtual time's wall-clock check).
    pub(crate) fn fail(&mut self, f: Failure) {
        self.failures.push(f);
    }

    pub(super) fn echo_mark(&mut self, wire: &mut impl Wire, echo: MarkEcho, now_us: u64) {
        self.seq += 1;
        wire.text(&media::mark(self.seq, &self.ids.stream_sid, &echo.name));
        let rtt = Duration::from_micros(now_us.saturating_sub(echo.received_us));
        wire.mark_echoed(rtt.as_micros() as u64);
        self.marks.echoed(echo.id, rtt, echo.cleared);
        if self.echoes_shown < EVENTS_SHOWN {
            self.echoes_shown += 1;
            wire.event(EventKind::MarkEchoed {
                stream_sid: self.ids.stream_sid.clone(),
                name: echo.name,
                round_trip: rtt,
                cleared: echo.cleared,
            });
        }
    }

    /// A mark refused because too many wait for their audio: counted, warned once.
    fn mark_refused(&mut self, wire: &mut impl Wire) {
        self.marks.refused();
        if self.playout.marks_refused() == 1 {
            let message = format!(
                "more than {MAX_PENDING_MARKS} marks (or {} KB of mark names) waiting for their \
                 audio on {}: further marks are counted, not echoed",
                MAX_PENDING_MARK_BYTES / 1024,
                self.ids.stream_sid
            );
            self.warn(wire, message);
        }
    }

    fn invalid_message(&mut self, wire: &mut impl Wire, reason: String, raw: &str) {
        self.invalid += 1;
        // Counted always, shown a few times: a misbehaving app must not grow the timeline.
        if self.invalid > INVALID_SAMPLES as u64 {
            return;
        }
        let raw: String = raw.chars().take(200).collect();
        self.invalid_samples.push(InvalidMessage {
            reason: reason.clone(),
            raw: raw.clone(),
        });
        wire.event(EventKind::InvalidMessage {
            stream_sid: self.ids.stream_sid.clone(),
            reason,
            raw,
        });
    }

    /// The no-audio bound: `elapsed` is how long the stream has run on the wall clock (even
    /// in virtual time: a slow app is slow in real time).
    pub(crate) fn check_no_audio(&mut self, elapsed: Duration) {
        let Some(limit) = self.no_audio_timeout else {
            return;
        };
        if self.no_audio_checked || !self.bidirectional {
            return;
        }
        if self.first_audio_us.is_some() {
            self.no_audio_checked = true;
        } else if elapsed >= limit {
            self.no_audio_checked = true;
            self.failures.push(Failure::NoAudioBack {
                url: self.url.clone(),
                secs: limit.as_secs(),
            });
        }
    }
}
