//! Injected faults on the wire (`--faults`): a frame's fate (lost, corrupted, swapped,
//! duplicated), the injected end (`drop`, `close`), and late or lost mark echoes.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::super::{End, Inbound, SendError, StreamCtx, WsSink, close_and_wait};
use super::Driver;
use crate::faults::{Corrupt, FrameFate};
use crate::report::EventKind;

impl Driver {
    /// Sends the message in `buf` as frame k's fate says: lost, corrupted, held back for a
    /// swap, or sent twice; captured and counted.
    pub(super) async fn send_faulty(
        &mut self,
        sink: &mut WsSink,
        fate: FrameFate,
        k: u64,
    ) -> Result<(), SendError> {
        if fate.lost {
            self.fault_counts.lost += 1;
            return Ok(());
        }
        let mut text = self.buf.clone();
        if let (Some(how), Some(faults)) = (fate.corrupt, &self.faults) {
            text = faults.corrupt(how, &text, &self.ids.stream_sid, k);
            let c = &mut self.fault_counts;
            match how {
                Corrupt::BadJson => c.bad_json += 1,
                Corrupt::BadBase64 => c.bad_base64 += 1,
                Corrupt::WrongSid => c.wrong_sid += 1,
            }
        }
        if fate.swapped {
            self.fault_counts.reordered += 1;
            self.swapped.push(text);
            return Ok(());
        }
        if fate.duplicated {
            self.fault_counts.duplicated += 1;
            self.send_wire(sink, text.clone()).await?;
        }
        self.send_wire(sink, text).await
    }

    /// Sends a faulty frame's message, captured, counted.
    pub(super) async fn send_wire(
        &mut self,
        sink: &mut WsSink,
        text: String,
    ) -> Result<(), SendError> {
        self.send_text(sink, text).await?;
        self.frames_sent += 1;
        Ok(())
    }

    /// Frame k never goes out in the main loop: its slot is at or past the caller's hang-up
    /// (which flushes the frames before it), or it is scheduled at or past an injected end.
    /// Decided on the schedule, so the frames sent never depend on how late the driver woke.
    pub(super) fn past_end(&mut self, t0: Instant, k: u64) -> bool {
        let slot = Duration::from_micros(k * 20_000);
        if self
            .hangup
            .as_ref()
            .is_some_and(|(_, after)| slot >= *after)
        {
            return true;
        }
        match self.injected_end_at() {
            Some(at) => self.frame_at(t0, k) >= t0 + at,
            None => false,
        }
    }

    /// When an injected `drop` or `close` ends the stream, from its start.
    pub(super) fn injected_end_at(&self) -> Option<Duration> {
        let spec = self.faults.as_ref()?.spec();
        match (spec.drop_at, spec.close_at) {
            (Some(d), Some((c, _))) => Some(d.min(c)),
            (Some(d), None) => Some(d),
            (None, Some((c, _))) => Some(c),
            (None, None) => None,
        }
    }

    /// Ends the stream the injected way: the TCP connection dropped (no `stop`, no close
    /// frame), or a close frame with the configured code (no `stop`).
    pub(super) async fn inject_end(
        &mut self,
        sink: &mut WsSink,
        rx: &mut mpsc::Receiver<Inbound>,
        ctx: &StreamCtx,
    ) -> End {
        let spec = self.faults.as_ref().expect("faults armed").spec();
        let close = match (spec.drop_at, spec.close_at) {
            (Some(d), Some((c, code))) if c < d => Some(code),
            (None, Some((_, code))) => Some(code),
            _ => None,
        };
        let what = match close {
            Some(code) => format!("close {code}"),
            None => "drop".to_string(),
        };
        ctx.timeline.emit(EventKind::Fault {
            what: match close {
                Some(code) => format!("close frame {code} sent without stop"),
                None => "TCP connection dropped without stop or close frame".into(),
            },
        });
        self.fault_counts.ended = Some(what);
        if let Some(code) = close {
            close_and_wait(sink, rx, CloseCode::from(code)).await;
        }
        // Dropping the halves (on return) closes the socket without a close frame.
        End::Injected(close)
    }

    /// An echo the playout released: sent now, later, or never, as the mark faults say.
    pub(super) async fn release_echo(
        &mut self,
        sink: &mut WsSink,
        ctx: &StreamCtx,
        echo: crate::playout::MarkEcho,
        now_us: u64,
    ) -> Result<(), SendError> {
        let n = self.echoes;
        self.echoes += 1;
        match self.faults.as_ref().map(|f| f.mark(n)) {
            None => self.echo_mark(sink, ctx, echo, now_us).await,
            Some(None) => {
                self.fault_counts.marks_dropped += 1;
                Ok(())
            }
            // Held-back echoes are bounded as pending marks are: past that, no delay.
            Some(Some(delay))
                if delay.is_zero()
                    || self.delayed_echoes.len() >= crate::playout::MAX_PENDING_MARKS =>
            {
                self.echo_mark(sink, ctx, echo, now_us).await
            }
            Some(Some(delay)) => {
                self.fault_counts.marks_delayed += 1;
                let due = now_us + delay.as_micros() as u64;
                self.delayed_echoes.push_back((due, echo));
                Ok(())
            }
        }
    }
}
