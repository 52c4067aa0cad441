//! The call's real-time transcriptions (`<Start><Transcription>`): each runs in the
//! background, like a `<Start><Stream>` fork, as a task that owns its
//! [`Schedule`](crate::transcription::Schedule) and sends its `statusCallbackUrl` events in
//! order through a [`Queue`]. The caller's turns feed the inbound track from the start; each
//! `<Say>` feeds the outbound track as it plays. `<Stop><Transcription name>` or the call's
//! end stops it, and the call reports once its callbacks are answered.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dialtone_protocol::sid;
use dialtone_twiml::{Track, Transcription};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::Call;
use crate::callbacks::Queue;
use crate::report::EventKind;
use crate::speech::words_at;
use crate::timeline::Timeline;
use crate::transcription::{
    CALLBACK_FAILED, FinalResult, Ids, RESULTS_KEPT, Recognition, Repeat, Schedule, Side,
    TranscriptionEvent, TranscriptionReport, Utterance, content_params, started_params,
    stopped_params,
};
use crate::webhook;

/// Transcriptions a call runs at once; more are skipped with a warning (as forks are: see
/// `MAX_FORKS`). Twilio documents no figure we found.
pub(super) const MAX_TRANSCRIPTIONS: usize = 4;
/// Results (partial and final) one transcription sends; past this they are counted, not
/// sent, so a long call with a chatty app cannot queue callbacks without end.
const MAX_RESULTS: u64 = 10_000;
/// Messages waiting for a transcription's task: one per `<Say>` (all its loops), cut or
/// stop (it drains them at once; a full channel means the task is gone or stuck, and the
/// `<Say>` is skipped).
const CHANNEL: usize = 64;
/// Salt offset of `<Say>` utterances, so they never share the caller turns' word errors.
const SAY_SALT: u64 = 1 << 32;

/// What the call tells a running transcription.
enum Msg {
    /// A `<Say>` plays on the outbound track, loop after loop.
    Say(Repeat),
    /// The `<Say>` playing was cut short at this instant.
    SayCut(Instant),
    /// Stop now; `by` says why.
    Stop(&'static str),
}

/// A transcription running on the call.
pub(super) struct Running {
    name: Option<String>,
    outbound: bool,
    tx: mpsc::Sender<Msg>,
    task: JoinHandle<(TranscriptionReport, Option<JoinHandle<()>>)>,
}

/// Everything the task needs, set up by the call.
struct Job {
    schedule: Schedule,
    ids: Ids,
    queue: Option<Queue>,
    timeline: Arc<Timeline>,
    rx: mpsc::Receiver<Msg>,
    report: TranscriptionReport,
    recognition_delay: Duration,
}

impl Call<'_> {
    /// `<Start><Transcription>`: starts it in the background and returns at once.
    pub(super) fn start_transcription(&mut self, t: &Transcription, doc_url: &str) {
        if self.transcriptions.len() >= MAX_TRANSCRIPTIONS {
            self.warn(
                0,
                format!(
                    "<Start><Transcription> skipped: {MAX_TRANSCRIPTIONS} transcriptions are already running on this call (stop one with <Stop><Transcription name>)"
                ),
            );
            return;
        }
        let index = self.transcriptions_started;
        self.transcriptions_started += 1;
        let sid = sid::seeded_or_random("GT", self.cfg.seed, index);
        let url = t.status_callback_url.as_deref().and_then(|cb| {
            webhook::resolve(doc_url, cb)
                .map_err(|e| {
                    self.timeline.emit(EventKind::Transcription(
                        TranscriptionEvent::CallbackFailed {
                            code: CALLBACK_FAILED,
                            message: format!("statusCallbackUrl: {e}"),
                        },
                    ));
                })
                .ok()
        });
        let queue = url.clone().map(|url| {
            Queue::with_warning(
                "transcription status callback",
                self.callback_sender(url, t.status_callback_method.into()),
                |message| {
                    EventKind::Transcription(TranscriptionEvent::CallbackFailed {
                        code: CALLBACK_FAILED,
                        message,
                    })
                },
            )
        });
        let mut schedule = Schedule::new(
            self.cfg.relay_speech,
            t.partial_results,
            self.cfg.word_errors,
        );
        let inbound = t.track != Track::Outbound;
        if self.cfg.fast {
            // Virtual time keeps no clock that the caller's words and the verbs share.
            self.warn(
                0,
                "<Transcription> recognizes nothing in virtual time (--fast): it starts and stops only"
                    .into(),
            );
        } else if inbound {
            self.caller_turns(&mut schedule);
        }
        let (tx, rx) = mpsc::channel(CHANNEL);
        let track = t.track.as_str();
        let job = Job {
            schedule,
            ids: Ids {
                account_sid: self.info.account_sid.clone(),
                call_sid: self.info.call_sid.clone(),
                sid: sid.clone(),
                language_code: t.language_code().to_owned(),
                provider_name: t.provider_name(),
                track,
                partial_results: t.partial_results,
            },
            queue,
            timeline: self.timeline.clone(),
            rx,
            report: TranscriptionReport {
                sid,
                name: t.name.clone(),
                track,
                status_callback_url: url,
                stopped_by: "call end",
                finals: Vec::new(),
                final_count: 0,
                partial_count: 0,
                dropped: 0,
            },
            recognition_delay: self.cfg.relay_speech.recognition_delay,
        };
        self.transcriptions.push(Running {
            name: t.name.clone(),
            outbound: t.track != Track::Inbound && !self.cfg.fast,
            tx,
            task: tokio::spawn(run(job)),
        });
    }

    /// The caller's turns from now on, onto the inbound track as each starts (the words
    /// of a turn under way are the ones still to be said).
    fn caller_turns(&mut self, schedule: &mut Schedule) {
        let now = Instant::now();
        let Some(turns) = self.caller_speech_after(now) else {
            return;
        };
        for turn in turns {
            let mut text = turn.text;
            let mut start = turn.start;
            if start < now {
                let total = text.split_whitespace().count();
                let said = words_at(total, turn.end - start, now - start);
                text = text
                    .split_whitespace()
                    .skip(said)
                    .collect::<Vec<_>>()
                    .join(" ");
                start = now;
            }
            schedule.later(Utterance {
                side: Side::Inbound,
                start,
                end: turn.end,
                text,
                salt: turn.index as u64,
            });
        }
    }

    /// A `<Say>` starts playing `text` now for `once` per loop, `loops` times: the
    /// transcriptions listening to the outbound track hear it.
    pub(super) fn transcribe_say(&mut self, text: &str, once: Duration, loops: u32) {
        if !self.transcriptions.iter().any(|t| t.outbound) {
            return;
        }
        let start = Instant::now();
        let says = self.says_transcribed;
        self.says_transcribed += 1;
        // loop="0" repeats until the call ends: each loop joins the schedule as it starts.
        let salt = SAY_SALT.wrapping_add(says << 20);
        let mut full = 0;
        for t in self.transcriptions.iter().filter(|t| t.outbound) {
            let repeat = Repeat::new(start, once, loops, text.to_owned(), salt);
            if t.tx.try_send(Msg::Say(repeat)).is_err() {
                full += 1;
            }
        }
        if full > 0 {
            self.warn(
                0,
                "a transcription is not keeping up: a <Say> went untranscribed".into(),
            );
        }
    }

    /// The `<Say>` playing stopped at `at` (the call ended or was redirected).
    pub(super) fn say_cut(&self, at: Instant) {
        for t in self.transcriptions.iter().filter(|t| t.outbound) {
            let _ = t.tx.try_send(Msg::SayCut(at));
        }
    }

    /// Stops transcriptions by name, or all of them, and waits for each to send
    /// `transcription-stopped` (its callbacks are awaited before the call reports).
    pub(super) async fn stop_transcriptions(&mut self, name: Option<&str>, by: &'static str) {
        let (stopping, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.transcriptions)
            .into_iter()
            .partition(|t| name.is_none_or(|want| t.name.as_deref() == Some(want)));
        self.transcriptions = kept;
        for t in stopping {
            // A full channel still ends the task: dropping the sender closes it.
            let _ = t.tx.try_send(Msg::Stop(by));
            drop(t.tx);
            match t.task.await {
                Ok((report, callbacks)) => {
                    if let Some(c) = callbacks {
                        self.leg_callbacks
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(c);
                    }
                    // A call that starts and stops them in a loop keeps the first ones.
                    if self.transcription_reports.len() < super::STREAMS_KEPT {
                        self.transcription_reports.push(report);
                    }
                }
                Err(e) => self.warn(0, format!("internal error: transcription task: {e}")),
            }
        }
    }
}

/// One transcription, from `transcription-started` to `transcription-stopped`.
async fn run(mut job: Job) -> (TranscriptionReport, Option<JoinHandle<()>>) {
    let mut sequence = 0u64;
    job.timeline
        .emit(EventKind::Transcription(TranscriptionEvent::Started {
            sid: job.ids.sid.clone(),
            name: job.report.name.clone(),
            track: job.ids.track,
        }));
    sequence += 1;
    if let Some(q) = &job.queue {
        let params = started_params(&job.ids, sequence, SystemTime::now());
        q.push("transcription-started".into(), params);
    }
    let by = loop {
        let deadline = job.schedule.next_deadline();
        let msg = tokio::select! {
            m = job.rx.recv() => m,
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let due = job.schedule.due(Instant::now());
                deliver(&mut job, &mut sequence, due);
                continue;
            }
        };
        match msg {
            Some(Msg::Say(repeat)) => job.schedule.repeat(repeat),
            Some(Msg::SayCut(at)) => {
                job.schedule
                    .cut(at, Some(Side::Outbound), at + job.recognition_delay);
            }
            Some(Msg::Stop(by)) => break by,
            // The call is gone without a word: it ended.
            None => break "call end",
        }
    };
    let now = Instant::now();
    job.schedule.cut(now, None, now);
    let due = job.schedule.due(now);
    deliver(&mut job, &mut sequence, due);
    job.report.stopped_by = by;
    job.report.dropped += job.schedule.dropped;
    job.timeline
        .emit(EventKind::Transcription(TranscriptionEvent::Stopped {
            sid: job.ids.sid.clone(),
            by,
            finals: job.report.final_count,
            partials: job.report.partial_count,
        }));
    sequence += 1;
    let callbacks = job.queue.take().and_then(|q| {
        q.push(
            "transcription-stopped".into(),
            stopped_params(&job.ids, sequence, SystemTime::now()),
        );
        q.finish()
    });
    (job.report, callbacks)
}

/// Sends `results` (in order) as `transcription-content` events and notes them.
fn deliver(job: &mut Job, sequence: &mut u64, results: Vec<Recognition>) {
    for r in results {
        if job.report.final_count + job.report.partial_count >= MAX_RESULTS {
            job.report.dropped += 1;
            continue;
        }
        if r.is_final {
            job.report.final_count += 1;
            let at = job
                .timeline
                .emit(EventKind::Transcription(TranscriptionEvent::Final {
                    sid: job.ids.sid.clone(),
                    track: r.side,
                    transcript: r.transcript.clone(),
                    confidence: r.confidence,
                    after_speech_ms: r.at.saturating_duration_since(r.speech_end).as_secs_f64()
                        * 1e3,
                }));
            if job.report.finals.len() < RESULTS_KEPT {
                job.report.finals.push(FinalResult {
                    at_ms: at.as_secs_f64() * 1e3,
                    track: r.side,
                    transcript: r.transcript.clone(),
                    confidence: r.confidence,
                });
            }
        } else {
            job.report.partial_count += 1;
        }
        *sequence += 1;
        if let Some(q) = &job.queue {
            let what = if r.is_final { "final" } else { "partial" };
            q.push(
                format!("transcription-content ({what})"),
                content_params(&job.ids, *sequence, SystemTime::now(), &r),
            );
        }
    }
}
