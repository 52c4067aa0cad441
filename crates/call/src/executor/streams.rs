//! The call's Media Streams: opening them, blocking in `<Connect>`, stopping `<Start>` forks.

use dialtone_protocol::media::StreamIds;
use dialtone_protocol::sid;
use dialtone_twiml::Track;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Call, StreamAudio};
use crate::config::CallerAudioStart;
use crate::report::{EventKind, Failure};
use crate::stream::{self, CallerHangup, StreamCtx, StreamOutcome, StreamSpec, StreamTask, Tracks};

/// How long after the caller's planned hang-up the backstop timer fires.
const HANGUP_BACKSTOP: std::time::Duration = std::time::Duration::from_millis(200);
use crate::webhook;

impl Call<'_> {
    pub(super) fn start_stream(
        &mut self,
        s: &dialtone_twiml::Stream,
        doc_url: &str,
        bidirectional: bool,
    ) -> Result<StreamTask, Failure> {
        let url =
            webhook::resolve_stream(doc_url, &s.url).map_err(|cause| Failure::StreamConnect {
                url: s.url.clone(),
                cause,
            })?;
        let tracks = if bidirectional {
            Tracks::Inbound
        } else {
            match s.track {
                Track::Inbound => Tracks::Inbound,
                Track::Outbound => Tracks::Outbound,
                Track::Both => Tracks::Both,
            }
        };
        let (started_tx, started_rx) = oneshot::channel();
        let index = self.streams_opened;
        self.streams_opened += 1;
        let spec = StreamSpec {
            url,
            name: s.name.clone(),
            status_callback: s
                .status_callback
                .as_deref()
                .and_then(|cb| webhook::resolve(doc_url, cb).ok()),
            status_callback_method: s.status_callback_method.into(),
            bidirectional,
            tracks,
            parameters: s.parameters.clone(),
            ids: StreamIds {
                account_sid: self.info.account_sid.clone(),
                call_sid: self.info.call_sid.clone(),
                stream_sid: sid::seeded_or_random("MZ", self.cfg.seed, index),
            },
        };
        let hangup = self.caller_hangup();
        let talk = hangup.talk;
        // A live caller's slots count from its own first answer, which a dialed leg's is not.
        let live_epoch = self.cfg.caller.live.as_ref().and_then(|l| l.epoch());
        let caller_epoch = live_epoch.or(self.caller_epoch());
        let ctx = StreamCtx {
            auth_token: self.cfg.auth_token.clone(),
            caller_audio: self.cfg.caller.audio.clone(),
            caller_epoch,
            live: self.cfg.caller.live.clone(),
            turns: if matches!(tracks, Tracks::Outbound) {
                Vec::new()
            } else {
                self.cfg.caller.turns.clone()
            },
            dtmf: if bidirectional {
                self.cfg.caller.stream_dtmf.clone()
            } else {
                Vec::new()
            },
            outbound: self.outbound.clone(),
            record: self.cfg.record,
            max_duration: self.cfg.max_duration,
            no_audio_timeout: self.cfg.no_audio_timeout,
            timeline: self.timeline.clone(),
            started: Some(started_tx),
            hangup: Some(hangup.clone()),
            faults: self.faults.as_ref().map(|f| f.for_stream(self.seed, index)),
            fast: self.cfg.fast,
            net: self.engine.net.clone(),
            tunnels: self.cfg.tunnels.clone(),
            frame_lateness: self.cfg.frame_lateness.clone(),
        };
        if !self.cfg.fast && caller_epoch.is_none() {
            // The caller talks from the first stream's start and hangs up once its audio
            // and the tail are over (audio anchored at the answer has its backstop armed at
            // the answer instead). In virtual time only the streams' clock counts.
            let caller_started = self.caller_started.clone();
            tokio::spawn(async move {
                let Ok(at) = started_rx.await else { return };
                let _ = caller_started.set(at);
                backstop(hangup, at + talk).await;
            });
        }
        Ok(stream::spawn_stream(self.engine.plane(), spec, ctx))
    }

    /// The caller's hang-up: `talk` (its audio and the tail) after its audio starts.
    pub(super) fn caller_hangup(&self) -> CallerHangup {
        let (audio, tail) = (self.cfg.caller.audio.duration(), self.cfg.caller.tail);
        if self.cfg.caller.live.is_some() {
            // A live caller hangs up when it says so; the call's own limit stays.
            return CallerHangup {
                talk: self.cfg.max_duration,
                tail: std::time::Duration::ZERO,
                state: self.caller_hangup.clone(),
                end: self.end_tx.clone(),
                reason: "the caller's time ran out".into(),
            };
        }
        CallerHangup {
            talk: audio + tail,
            tail,
            state: self.caller_hangup.clone(),
            end: self.end_tx.clone(),
            reason: format!(
                "caller hung up ({:.1} s of audio + {:.1} s tail)",
                audio.as_secs_f64(),
                tail.as_secs_f64()
            ),
        }
    }

    /// Where the caller's audio starts when not at each stream's start: the answer, in
    /// real time only.
    pub(super) fn caller_epoch(&self) -> Option<Instant> {
        (self.cfg.caller.start == CallerAudioStart::Answer && !self.cfg.fast)
            .then_some(self.answered_at)
            .flatten()
    }

    /// The call is answered: when the caller's audio is anchored here, its hang-up is armed
    /// now, stream or not.
    pub(super) fn answered(&mut self) {
        if self.answered_at.is_some() {
            return;
        }
        self.timeline.emit(EventKind::Answered);
        self.answered_since(Instant::now());
    }

    /// The call was answered at `at` (its [`EventKind::Answered`] already on the timeline:
    /// a bridge under `answerOnBridge` announces it when the party answers).
    pub(super) fn answered_since(&mut self, at: Instant) {
        if self.answered_at.is_some() {
            return;
        }
        self.answered_at = Some(at);
        if let Some(live) = &self.cfg.caller.live {
            live.answered(at);
        }
        if self.caller_epoch().is_some() {
            let hangup = self.caller_hangup();
            let at = at + hangup.talk;
            self.answer_backstop = Some(tokio::spawn(backstop(hangup, at)));
        }
    }

    /// The caller starts talking now if it has not yet (no stream has carried its audio):
    /// into a conference, it hangs up once its audio and the tail are over, as it would
    /// after a stream's start.
    pub(super) fn caller_talks_from_now(&mut self) {
        if self.cfg.fast || self.caller_t0().is_some() || self.answer_backstop.is_some() {
            return;
        }
        let now = Instant::now();
        let _ = self.caller_started.set(now);
        let hangup = self.caller_hangup();
        let at = now + hangup.talk;
        self.answer_backstop = Some(tokio::spawn(backstop(hangup, at)));
    }

    /// Blocks in `<Connect>` until the app closes the stream or the call ends, then records
    /// how it went. (Recorded here, not returned: an outcome held across the caller's next
    /// await would sit in every call's future for its whole life.)
    pub(super) async fn await_connect(&mut self, mut stream: StreamTask) {
        let mut end = self.end.clone();
        let mut redirect = self.redirect.clone();
        tokio::select! {
            r = &mut stream => return self.settle_stream(r),
            _ = end.wait_for(|r| r.is_some()) => {}
            _ = redirect.wait_for(|r| r.is_some()) => {}
        }
        stream.stop();
        let r = stream.await;
        self.settle_stream(r);
    }

    /// Records a stream's outcome. A stream dialtone lost (its task panicked, its plane
    /// worker died) is a dialtone bug: say so instead of losing it silently.
    fn settle_stream(&mut self, r: Result<StreamOutcome, String>) {
        match r {
            Ok(o) => self.record_stream(o),
            Err(e) => self.warn(0, format!("internal error: {e}")),
        }
    }

    pub(super) fn record_stream(&mut self, o: StreamOutcome) {
        if !o.report.bidirectional && o.report.closed_by == "app" {
            self.warn(
                31921,
                format!(
                    "the app closed the <Start> stream {}; the call goes on",
                    o.report.name
                ),
            );
        }
        if o.report.bidirectional && o.report.duration_ms >= 20.0 {
            // A <Connect> stream that ran at least a frame's time advanced the call.
            self.idle_documents = 0;
        }
        self.failures.extend(o.failures);
        self.warnings.extend(o.warnings);
        if let (Some(heard), Some(sent)) = (o.heard, o.sent) {
            self.audio.push(StreamAudio {
                stream_sid: o.report.stream_sid.clone(),
                heard,
                sent,
            });
            self.audio_spans
                .push((o.started_at, o.report.bidirectional));
        }
        self.streams.push(o.report);
    }

    /// Stops forks by name, or all of them; waits for each to send `stop` and close.
    pub(super) async fn stop_forks(&mut self, name: Option<&str>) {
        let (stopping, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.forks)
            .into_iter()
            .partition(|(n, _)| name.is_none_or(|want| n == want));
        self.forks = kept;
        for (_, fork) in stopping {
            fork.stop();
            let r = fork.await;
            self.settle_stream(r);
        }
    }
}

/// The caller hangs up at `at`. The stream that claims the hang-up ends the call on its own
/// frame clock, so exactly the frames before that moment go out; this timer is the backstop
/// for when no stream runs it (none open, a stopped fork, an app that closed): then it fires
/// on time, else a little later, so it never races the stream's own.
async fn backstop(hangup: CallerHangup, at: Instant) {
    tokio::time::sleep_until(at).await;
    if hangup.running() {
        tokio::time::sleep(HANGUP_BACKSTOP).await;
    }
    hangup.fire();
}
