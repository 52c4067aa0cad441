//! The end of one stream: how it closed, the failures that follow from that, and its report.

use tokio::time::Instant;

use super::super::{End, StreamCtx, StreamOutcome, WRITE_STALL, us_since};
use super::Driver;
use crate::capture::Captured;
use crate::report::{EventKind, Failure, LatencySummary, StreamReport};

impl Driver {
    pub(in crate::stream) fn finish(
        mut self,
        mut report: StreamReport,
        end: End,
        ctx: &StreamCtx,
    ) -> StreamOutcome {
        let ended = self.ended_at.unwrap_or_else(Instant::now);
        let t0 = self.t0.unwrap_or(ended);
        let end_us = if self.fast {
            self.virt_us
        } else {
            us_since(t0, ended)
        };
        match end {
            End::Stopped => {
                report.closed_by = "dialtone";
                report.close_code = Some(1000);
                ctx.timeline.emit(EventKind::StopSent {
                    stream_sid: self.ids.stream_sid.clone(),
                });
            }
            End::AppClosed(code) => {
                report.closed_by = "app";
                report.close_code = code;
            }
            End::Stalled => {
                report.closed_by = "stalled";
                self.failures.push(Failure::StreamStalled {
                    url: self.url.clone(),
                    secs: WRITE_STALL.as_secs(),
                    frames_sent: self.frames_sent,
                });
            }
            End::Injected(code) => {
                report.closed_by = "dialtone";
                report.close_code = code;
            }
            End::Violation(v) => {
                // dialtone failed the connection, with the close code that says why.
                report.closed_by = "dialtone";
                report.close_code = Some(v.close_code());
                self.failures.push(Failure::StreamProtocol {
                    url: self.url.clone(),
                    cause: v.to_string(),
                    close_code: v.close_code(),
                    frames_sent: self.frames_sent,
                });
            }
            End::Dropped => {
                report.closed_by = "dropped";
                self.failures.push(Failure::StreamDropped {
                    url: self.url.clone(),
                    frames_sent: self.frames_sent,
                });
            }
        }
        ctx.timeline.capture(&Captured::WsClose {
            stream_sid: &self.ids.stream_sid,
            by: report.closed_by,
            code: report.close_code,
        });
        ctx.timeline.emit(EventKind::StreamClosed {
            stream_sid: self.ids.stream_sid.clone(),
            by: report.closed_by,
            code: report.close_code,
            frames_sent: self.frames_sent,
        });
        // A stream too short to reach the bound cannot be blamed for silence.
        if !self.no_audio_checked
            && self.bidirectional
            && self.first_audio_at.is_none()
            && ctx
                .no_audio_timeout
                .is_some_and(|l| ended.saturating_duration_since(t0) >= l)
        {
            self.failures.push(Failure::NoAudioBack {
                url: self.url.clone(),
                secs: ctx.no_audio_timeout.map_or(0, |l| l.as_secs()),
            });
        }
        report.frames_sent = self.frames_sent;
        report.dtmf_sent = self.dtmf_sent;
        report.lateness = LatencySummary::from_us(&self.lateness);
        report.lateness_us = self.lateness;
        report.media_received = self.media_received;
        report.audio_received_ms = self.playout.bytes_received() / 8;
        report.audio_cleared_ms = self.playout.bytes_dropped() / 8;
        report.underrun_ms = self.playout.underrun_ms();
        report.time_to_first_audio_ms = self.first_audio_at.map(|d| d.as_secs_f64() * 1e3);
        let (marks, mark_stats, mark_round_trip_us) = self.marks.finish();
        report.marks = marks;
        report.mark_stats = mark_stats;
        report.mark_round_trip_us = mark_round_trip_us;
        report.clears = self.clears;
        report.invalid_messages = self.invalid;
        report.invalid_samples = self.invalid_samples;
        report.duration_ms = end_us as f64 / 1e3;
        if self.faults.is_some() {
            report.faults = Some(std::mem::take(&mut self.fault_counts));
        }
        self.turns.on_stream_end(end_us);
        report.turns = self.turns.finish(self.wall0_unix_ms);
        report.talk_over_ms = report.turns.iter().map(|t| t.talk_over_ms).sum();
        StreamOutcome {
            heard: self.playout.heard_mulaw(end_us),
            sent: self.sent,
            started_at: self.t0,
            report,
            failures: self.failures,
            warnings: self.warnings,
        }
    }
}
