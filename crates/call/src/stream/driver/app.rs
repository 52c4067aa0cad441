//! What the app sends on the stream: its audio into the playout, `mark`s echoed when their
//! audio has played, `clear`, invalid messages counted, and the no-audio bound.

use std::time::Duration;

use dialtone_protocol::media::{self, AppMessage};
use tokio::time::Instant;

use super::super::{INVALID_SAMPLES, SendError, StreamCtx, WsSink, us_since};
use super::{Driver, EVENTS_SHOWN};
use crate::capture::Captured;
use crate::playout::{MAX_PENDING_MARK_BYTES, MAX_PENDING_MARKS, MarkPush};
use crate::report::{EventKind, Failure, InvalidMessage};

impl Driver {
    pub(super) async fn on_app_text(
        &mut self,
        text: &str,
        t0: Instant,
        ctx: &StreamCtx,
        sink: &mut WsSink,
    ) -> Result<(), SendError> {
        let now_us = us_since(t0, self.now(t0));
        self.timeline.capture(&Captured::WsIn {
            stream_sid: &self.ids.stream_sid,
            text,
        });
        // Lenient about extra fields: widely used apps add e.g. `media.track`, and Twilio plays
        // their audio.
        let msg = match media::parse_app_message_with(
            text,
            &self.ids.stream_sid,
            media::Strictness::Lenient,
        ) {
            Ok(m) => m,
            Err(v) => {
                self.invalid_message(ctx, v.to_string(), text.to_string());
                return Ok(());
            }
        };
        if !self.bidirectional {
            // Twilio: sending to a unidirectional stream is a protocol error (31924); the
            // message has no effect.
            self.invalid_message(
                ctx,
                "message sent on a unidirectional <Start> stream (31924)".into(),
                text.to_string(),
            );
            return Ok(());
        }
        match msg {
            AppMessage::Media { payload } => {
                self.media_received += 1;
                let heard_us = self.playout.push_media(now_us, &payload);
                match &mut self.late {
                    // After the caller's time, on the wall clock: evidence, not a reply.
                    Some(late) => late.on_media(payload.len()),
                    None => {
                        self.turns.on_app_media(now_us, heard_us);
                        self.turns
                            .on_app_heard(heard_us, self.playout.busy_until_us());
                    }
                }
                if self.first_audio_at.is_none() {
                    let after = Duration::from_micros(now_us);
                    self.first_audio_at = Some(after);
                    ctx.timeline.emit(EventKind::FirstAudioBack {
                        stream_sid: self.ids.stream_sid.clone(),
                        after_start: after,
                    });
                }
            }
            AppMessage::Mark { name } => {
                let id = self.playout.marks_received();
                self.marks.received(id, &name);
                match self.playout.push_mark(now_us, name) {
                    MarkPush::Echo(echo) => self.release_echo(sink, ctx, echo, now_us).await?,
                    MarkPush::Queued(_) => {}
                    MarkPush::Refused(_) => self.mark_refused(ctx),
                }
            }
            AppMessage::Clear => {
                self.clears += 1;
                let out = self.playout.clear(now_us);
                self.turns.on_clear(now_us);
                if self.clears <= EVENTS_SHOWN {
                    ctx.timeline.emit(EventKind::Clear {
                        stream_sid: self.ids.stream_sid.clone(),
                        dropped_ms: out.dropped_ms,
                        marks_echoed: out.echoes.len(),
                    });
                }
                for echo in out.echoes {
                    self.release_echo(sink, ctx, echo, now_us).await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn echo_mark(
        &mut self,
        sink: &mut WsSink,
        ctx: &StreamCtx,
        echo: crate::playout::MarkEcho,
        now_us: u64,
    ) -> Result<(), SendError> {
        let seq = self.next_seq();
        self.send_text(sink, media::mark(seq, &self.ids.stream_sid, &echo.name))
            .await?;
        let rtt = Duration::from_micros(now_us.saturating_sub(echo.received_us));
        self.marks.echoed(echo.id, rtt, echo.cleared);
        if self.echoes_shown < EVENTS_SHOWN {
            self.echoes_shown += 1;
            ctx.timeline.emit(EventKind::MarkEchoed {
                stream_sid: self.ids.stream_sid.clone(),
                name: echo.name,
                round_trip: rtt,
                cleared: echo.cleared,
            });
        }
        Ok(())
    }

    /// A mark refused because too many wait for their audio: counted, warned once.
    fn mark_refused(&mut self, ctx: &StreamCtx) {
        self.marks.refused();
        if self.playout.marks_refused() == 1 {
            let message = format!(
                "more than {MAX_PENDING_MARKS} marks (or {} KB of mark names) waiting for their \
                 audio on {}: further marks are counted, not echoed",
                MAX_PENDING_MARK_BYTES / 1024,
                self.ids.stream_sid
            );
            self.warnings.push((0, message.clone()));
            ctx.timeline.emit(EventKind::Warning { code: 0, message });
        }
    }

    pub(super) fn invalid_message(&mut self, ctx: &StreamCtx, reason: String, raw: String) {
        self.invalid += 1;
        let raw: String = raw.chars().take(200).collect();
        if self.invalid_samples.len() < INVALID_SAMPLES {
            self.invalid_samples.push(InvalidMessage {
                reason: reason.clone(),
                raw: raw.clone(),
            });
        }
        // Counted always, shown a few times: a misbehaving app must not grow the timeline.
        if self.invalid <= INVALID_SAMPLES as u64 {
            ctx.timeline.emit(EventKind::InvalidMessage {
                stream_sid: self.ids.stream_sid.clone(),
                reason,
                raw,
            });
        }
    }

    pub(super) fn check_no_audio(&mut self, ctx: &StreamCtx, t0: Instant) {
        let Some(limit) = ctx.no_audio_timeout else {
            return;
        };
        if self.no_audio_checked || !self.bidirectional {
            return;
        }
        if self.first_audio_at.is_some() {
            self.no_audio_checked = true;
        } else if t0.elapsed() >= limit {
            // Wall clock even in virtual time: a slow app is slow in real time.
            self.no_audio_checked = true;
            self.failures.push(Failure::NoAudioBack {
                url: self.url.clone(),
                secs: limit.as_secs(),
            });
        }
    }
}
