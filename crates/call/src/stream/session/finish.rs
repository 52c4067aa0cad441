//! The end of one session: how it closed, the failures that follow from that, and its report.

use std::time::Duration;

use super::{End, Phase, Session, WRITE_STALL, Wire};
use crate::report::{EventKind, Failure, StreamReport};
use crate::stream::StreamOutcome;

impl Session {
    /// The report of a session that has ended (or never started). `connect` is how long the
    /// upgrade took; `wall` how long the stream ran on the wall clock (for the no-audio
    /// bound, which a stream too short to reach cannot be blamed for).
    pub(crate) fn finish(
        mut self,
        connect: Option<Duration>,
        wall: Duration,
        wire: &mut impl Wire,
    ) -> StreamOutcome {
        let (closed_by, close_code) = match self.phase.clone() {
            Phase::Idle => ("never_opened", None),
            // The driver ended the session before it ended itself: a stop.
            Phase::Streaming | Phase::HungUp => ("dialtone", Some(1000)),
            Phase::Ended(end) => self.closed(end, wire),
        };
        if self.phase != Phase::Idle {
            wire.event(EventKind::StreamClosed {
                stream_sid: self.ids.stream_sid.clone(),
                by: closed_by,
                code: close_code,
                frames_sent: self.frames_sent,
            });
            if !self.no_audio_checked
                && self.bidirectional
                && self.first_audio_us.is_none()
                && self.no_audio_timeout.is_some_and(|l| wall >= l)
            {
                self.failures.push(Failure::NoAudioBack {
                    url: self.url.clone(),
                    secs: self.no_audio_timeout.map_or(0, |l| l.as_secs()),
                });
            }
        }
        let end_us = self.ended_us;
        let lateness_us = self.lateness.take().map(|l| *l);
        let (marks, mark_stats, mark_round_trip_us) = self.marks.finish();
        self.turns.on_stream_end(end_us);
        let turns = self.turns.finish(self.wall0_unix_ms);
        let report = StreamReport {
            stream_sid: self.ids.stream_sid.clone(),
            name: self
                .name
                .take()
                .unwrap_or_else(|| self.ids.stream_sid.clone()),
            url: self.url.clone(),
            bidirectional: self.bidirectional,
            connect,
            frames_sent: self.frames_sent,
            dtmf_sent: self.dtmf_sent,
            lateness: lateness_us
                .as_ref()
                .map(crate::Latencies::summary)
                .unwrap_or_default(),
            media_received: self.media_received,
            audio_received_ms: self.playout.bytes_received() / 8,
            audio_cleared_ms: self.playout.bytes_dropped() / 8,
            underrun_ms: self.playout.underrun_ms(),
            time_to_first_audio: self.first_audio_us.map(Duration::from_micros),
            marks,
            mark_stats,
            clears: self.clears,
            invalid_messages: self.invalid,
            invalid_samples: self.invalid_samples,
            closed_by,
            close_code,
            duration_ms: end_us as f64 / 1e3,
            talk_over_ms: turns.iter().map(|t| t.talk_over_ms).sum(),
            turns,
            vad_splits: 0,
            faults: self.faults.is_some().then_some(self.fault_counts),
            lateness_us: lateness_us
                .unwrap_or_else(|| crate::Latencies::new(crate::report::new_lateness_histogram)),
            mark_round_trip_us,
        };
        StreamOutcome {
            heard: (self.phase != Phase::Idle)
                .then(|| self.playout.heard_mulaw(end_us))
                .flatten(),
            sent: self.sent.filter(|_| self.phase != Phase::Idle),
            started_at: None,
            report,
            failures: self.failures,
            warnings: self.warnings,
        }
    }

    /// Who closed, the close code, and the failure an end implies.
    fn closed(&mut self, end: End, wire: &mut impl Wire) -> (&'static str, Option<u16>) {
        let url = self.url.clone();
        let frames_sent = self.frames_sent;
        match end {
            End::Stopped => {
                wire.event(EventKind::StopSent {
                    stream_sid: self.ids.stream_sid.clone(),
                });
                ("dialtone", Some(1000))
            }
            End::AppClosed(code) => ("app", code),
            End::Stalled => {
                self.failures.push(Failure::StreamStalled {
                    url,
                    secs: WRITE_STALL.as_secs(),
                    frames_sent,
                });
                ("stalled", None)
            }
            End::Injected(code) => ("dialtone", code),
            End::Violation(v) => {
                // dialtone failed the connection, with the close code that says why.
                self.failures.push(Failure::StreamProtocol {
                    url,
                    cause: v.to_string(),
                    close_code: v.close_code(),
                    frames_sent,
                });
                ("dialtone", Some(v.close_code()))
            }
            End::Dropped => {
                self.failures
                    .push(Failure::StreamDropped { url, frames_sent });
                ("dropped", None)
            }
        }
    }
}
