//! `<Record>`: what the caller says after the beep, kept as a one-channel recording
//! (`RecordingSource=RecordVerb`) until `timeout` seconds of silence, a `finishOnKey` key,
//! `maxLength` or the caller's hang-up; then the `action` with `RecordingUrl`,
//! `RecordingSid`, `RecordingDuration` and `Digits`, the `recordingStatusCallback` events
//! and, when asked, the transcription to `transcribeCallback`.
//!
//! The caller's speech is its turns on the call's clock (`caller_speech.rs`), and the
//! recording is the slice of its audio they span, so it holds exactly what was said. Where
//! the recording ends is planned from the turns up front (`crate::record::plan`); the verb
//! then waits for that instant, or less if the caller hangs up.

use std::time::{Duration, SystemTime};

use dialtone_audio::FrameSet;
use dialtone_protocol::sid;
use dialtone_protocol::webhook::{API_VERSION, CallStatus};
use dialtone_twiml::{Node, Record};
use tokio::time::Instant;

use super::recording::bytes_between;
use super::recording_status::{Recording, StatusCallbacks, recording_sid};
use super::{Call, Next};
use crate::callbacks::Queue;
use crate::config::HttpMethod;
use crate::record::{
    self, Bounds, PER_MS, RecordAudio, RecordEnd, RecordEvent, RecordReport, Span,
};
use crate::recordings::{NewRecording, RecordingSource};
use crate::report::EventKind;

/// The beep before recording: Twilio's is a short tone; dialtone plays 500 ms of 1 kHz.
const BEEP: Duration = Duration::from_millis(500);
/// Where `<Record>` SIDs start among a seeded call's recordings (`<Dial record>`'s are
/// below).
const SID_RANGE: u64 = 4_000_000;
/// Where transcription SIDs start.
const TRANSCRIPTION_RANGE: u64 = 5_000_000;
/// The recording lengths `<Record transcribe>` transcribes, both ends excluded: Twilio's
/// "greater than 2 seconds and less than 120 seconds" (twilio.com/docs/api/errors/13617).
const TRANSCRIBABLE: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(120));
/// Twilio's warning for a recording out of that range: "Record: Recording length is out of
/// range for transcription".
const OUT_OF_RANGE: u16 = 13617;
/// `<Record>`s a call report lists (and, when recording, keeps the audio of): the first 20.
const RECORDS_KEPT: usize = 20;

/// The beep: 500 ms of a 1 kHz sine at about −12 dBFS.
pub(super) fn beep() -> FrameSet {
    FrameSet::from_pcm(&dialtone_audio::tones::sine(
        1000.0,
        8000.0,
        BEEP.as_millis() as usize,
    ))
}

/// What one `<Record>` took, once it ended.
struct Taken {
    sid: String,
    /// When recording started, on the wall clock (`RecordingStartTime`).
    wall: SystemTime,
    /// Why it ended and the `Digits` that say so.
    why: RecordEnd,
    digits: String,
    /// The caller's audio kept (trimmed when asked); `None` when nothing was said.
    audio: Option<Vec<u8>>,
    /// What was said inside it, as the ground truth has it (empty when unknown).
    words: String,
    /// The first turn inside it: tells utterances apart for the word-error model.
    first_turn: Option<usize>,
}

impl Call<'_> {
    pub(super) async fn record(&mut self, node: &Node, r: &Record, doc_url: &str) -> Next {
        self.verb_event(
            node,
            format!(
                "timeout {} s, finishOnKey {:?}, maxLength {} s",
                r.timeout_secs, r.finish_on_key, r.max_length_secs
            ),
        );
        if self.cfg.fast {
            self.warn(
                0,
                "<Record> skipped in virtual time (--fast): the caller's speech keeps no \
                 clock the verbs share"
                    .into(),
            );
            return Next::Continue;
        }
        if r.play_beep {
            let beep = self.engine.beep.clone();
            let from = Instant::now();
            self.outbound.set(Some(beep.clone()));
            let ended = self.wait(BEEP).await;
            self.outbound.set(None);
            self.note_played(beep, from);
            if ended {
                return self.interrupted().await;
            }
        }
        let index = self.records_made;
        self.records_made += 1;
        let sid = recording_sid(self, SID_RANGE, index);
        let callbacks = StatusCallbacks::new(
            self,
            r.recording_status_callback.as_deref(),
            r.recording_status_callback_method.into(),
            &r.recording_status_callback_events,
            doc_url,
            Recording {
                sid: &sid,
                source: RecordingSource::RecordVerb,
                channels: 1,
                track: None,
            },
        );
        let Some(taken) = self.take(r, sid, &callbacks).await else {
            // The caller's speech has no clock (warned): nothing was recorded or sent.
            return Next::Continue;
        };
        self.finish_record(r, doc_url, taken, callbacks, index)
            .await
    }

    /// Records from now until the planned end or the caller's hang-up; `None` when the
    /// caller's speech has no clock (warned).
    async fn take(
        &mut self,
        r: &Record,
        sid: String,
        callbacks: &StatusCallbacks,
    ) -> Option<Taken> {
        if let Some(live) = self.cfg.caller.live.clone() {
            return self.take_live(r, sid, callbacks, &live).await;
        }
        let from = Instant::now();
        let spoken = self.caller_speech_after(from);
        let (Some(spoken), Some(t0)) = (spoken, self.caller_t0()) else {
            self.warn(
                0,
                "<Record> skipped: the caller's speech has no clock here".into(),
            );
            return None;
        };
        let turns = &self.cfg.caller.turns;
        let at = |ms: u32| u64::from(ms) * PER_MS;
        let speech: Vec<(Span, usize)> = spoken
            .iter()
            .map(|s| {
                (
                    (at(turns[s.index].start_ms), at(turns[s.index].end_ms)),
                    s.index,
                )
            })
            .collect();
        let spans: Vec<Span> = speech.iter().map(|(s, _)| *s).collect();
        let max_s = self.max_length_s(r);
        let key = self
            .digits
            .front()
            .is_some_and(|c| r.finish_on_key.contains(*c));
        let start = bytes_between(t0, from) as u64;
        let (planned, mut why) = record::plan(
            &spans,
            Bounds {
                from: start,
                timeout: u64::from(r.timeout_secs) * 1000 * PER_MS,
                max: max_s * 1000 * PER_MS,
                key,
            },
        );
        let wall = self.record_started(r, &sid, max_s, callbacks);
        let deadline = t0 + Duration::from_micros(planned * 125);
        let mut end = planned;
        if self
            .wait(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            end = planned.min(bytes_between(t0, Instant::now()) as u64);
            why = if self.ended().is_some() {
                RecordEnd::Hangup
            } else {
                RecordEnd::Redirected
            };
        }
        let digits = match why {
            RecordEnd::FinishKey => {
                let key = self
                    .digits
                    .pop_front()
                    .map(String::from)
                    .unwrap_or_default();
                self.timeline.emit(EventKind::Dtmf {
                    digits: key.clone(),
                });
                key
            }
            RecordEnd::Hangup => "hangup".to_string(),
            _ => String::new(),
        };
        let audio = self.cfg.caller.audio.clone();
        if self.cfg.record {
            // The call's own recording hears the caller here too, stream or not.
            self.note_said(from, record::slice(audio.mulaw(), (start, end)));
        }
        let kept = record::kept(&spans, start, end, r.trims_silence());
        let with_text: Vec<(Span, &dialtone_corpus::Turn)> = speech
            .iter()
            .map(|(span, i)| (*span, &self.cfg.caller.turns[*i]))
            .collect();
        Some(Taken {
            sid,
            wall,
            why,
            digits,
            audio: kept.map(|span| record::slice(audio.mulaw(), span)),
            words: kept.map_or_else(String::new, |span| record::words_in(&with_text, span)),
            first_turn: kept.and_then(|(a, b)| {
                speech
                    .iter()
                    .find(|((s, e), _)| *e > a && *s < b)
                    .map(|(_, i)| *i)
            }),
        })
    }

    /// `maxLength`: a recording never outlasts the call's own limit (4 hours by default).
    fn max_length_s(&self, r: &Record) -> u64 {
        u64::from(r.max_length_secs)
            .min(self.cfg.max_duration.as_secs())
            .max(1)
    }

    /// Recording starts now: its `in-progress` callback and timeline step; the wall clock
    /// of it (`RecordingStartTime`).
    fn record_started(
        &self,
        r: &Record,
        sid: &str,
        max_s: u64,
        callbacks: &StatusCallbacks,
    ) -> SystemTime {
        let wall = SystemTime::now();
        callbacks.send("in-progress", wall, Vec::new());
        self.timeline.emit(EventKind::Record(RecordEvent::Started {
            sid: sid.to_string(),
            timeout_s: r.timeout_secs,
            max_length_s: max_s,
            finish_on_key: r.finish_on_key.clone(),
        }));
        wall
    }

    /// Records a live caller: its speech is found as it comes (`record::LiveSpans`), and the
    /// recording ends where [`record::plan`] says once that instant has passed, at a
    /// `finishOnKey` key, or at a hang-up. Its words are unknown.
    async fn take_live(
        &mut self,
        r: &Record,
        sid: String,
        callbacks: &StatusCallbacks,
        live: &crate::live::LiveCaller,
    ) -> Option<Taken> {
        let from = Instant::now();
        let Some(t0) = live.epoch() else {
            self.warn(0, "<Record> skipped: the call is not answered".into());
            return None;
        };
        live.tick(from);
        let start = bytes_between(t0, from) as u64;
        let max_s = self.max_length_s(r);
        let bounds = Bounds {
            from: start,
            timeout: u64::from(r.timeout_secs) * 1000 * PER_MS,
            max: max_s * 1000 * PER_MS,
            key: false,
        };
        let wall = self.record_started(r, &sid, max_s, callbacks);
        let mut speech = record::LiveSpans::starting_at(start);
        let mut heard_to = start;
        let mut keys = live.keys_pressed();
        let (end, why, digits) = loop {
            let interrupted = self.wait(Duration::from_millis(100)).await;
            let now = Instant::now();
            live.tick(now);
            let now_b = bytes_between(t0, now) as u64;
            if interrupted {
                let why = if self.ended().is_some() {
                    RecordEnd::Hangup
                } else {
                    RecordEnd::Redirected
                };
                let digits = if why == RecordEnd::Hangup {
                    "hangup"
                } else {
                    ""
                };
                break (now_b, why, digits.to_string());
            }
            if let Some(k) = live
                .keys_after(&mut keys)
                .into_iter()
                .find(|k| r.finish_on_key.contains(*k))
            {
                self.timeline.emit(EventKind::Dtmf {
                    digits: k.to_string(),
                });
                break (now_b, RecordEnd::FinishKey, k.to_string());
            }
            // Whole frames decided so far.
            let to = now_b / 160 * 160;
            for frame in live.said_between(heard_to, to).chunks(160) {
                speech.push(frame);
            }
            heard_to = heard_to.max(to);
            let (planned, why) = record::plan(&speech.spans(), bounds);
            if planned <= now_b {
                break (planned, why, String::new());
            }
        };
        let kept = record::kept(&speech.spans(), start, end, r.trims_silence());
        Some(Taken {
            sid,
            wall,
            why,
            digits,
            audio: kept.map(|(a, b)| live.said_between(a, b)),
            words: String::new(),
            first_turn: None,
        })
    }

    /// Keeps what was taken, sends its callbacks, and goes on as Twilio does: the `action`
    /// (requested even after a hang-up, its TwiML then not run), or the next verb when
    /// nothing was said, or a REST redirect's TwiML.
    async fn finish_record(
        &mut self,
        r: &Record,
        doc_url: &str,
        taken: Taken,
        callbacks: StatusCallbacks,
        index: u64,
    ) -> Next {
        let Taken {
            sid,
            wall,
            why,
            digits,
            audio,
            words,
            first_turn,
        } = taken;
        let bytes = audio.as_ref().map_or(0, Vec::len) as u64;
        let duration_s = bytes.div_ceil(1000 * PER_MS);
        let empty = audio.is_none();
        self.timeline.emit(EventKind::Record(RecordEvent::Ended {
            sid: sid.clone(),
            why,
            digits: digits.clone(),
            duration_s,
            empty,
        }));
        let mut url = None;
        let mut transcription = None;
        match audio {
            None => {
                callbacks.absent(wall);
                self.await_before_report(callbacks.finish());
            }
            Some(audio) => {
                if self.cfg.record && self.record_audio.len() < RECORDS_KEPT {
                    self.record_audio.push(RecordAudio {
                        sid: sid.clone(),
                        audio: audio.clone(),
                    });
                }
                url = self.keep_recording(
                    NewRecording {
                        sid: sid.clone(),
                        account_sid: self.info.account_sid.clone(),
                        call_sid: self.info.call_sid.clone(),
                        source: RecordingSource::RecordVerb,
                        started: wall,
                        channels: 1,
                        first: audio,
                        second: Vec::new(),
                    },
                    "<Record>",
                );
                callbacks.completed(wall, duration_s, url.as_deref());
                let status_sent = callbacks.finish();
                if r.transcribes() {
                    let text = self.transcribe(
                        r,
                        doc_url,
                        (&sid, url.as_deref(), Duration::from_millis(bytes / PER_MS)),
                        (words, first_turn, index),
                        status_sent,
                    );
                    transcription = Some(text);
                } else {
                    self.await_before_report(status_sent);
                }
            }
        }
        if self.records.len() < RECORDS_KEPT {
            self.records.push(RecordReport {
                sid: sid.clone(),
                ended_by: why,
                digits: digits.clone(),
                duration_s,
                duration_ms: bytes as f64 / PER_MS as f64,
                empty,
                url: url.clone(),
                transcription,
            });
        }
        if why == RecordEnd::Redirected {
            // A REST redirect replaced the document: its TwiML runs, not the action.
            return self.interrupted().await;
        }
        let caller_gone = self.ended();
        if empty {
            // Twilio: "if Twilio receives an empty recording, it will not make a request to
            // the action URL"; the document goes on (or the call is over).
            return match caller_gone {
                Some(reason) => Next::End {
                    status: self.final_status(),
                    reason,
                },
                None => Next::Continue,
            };
        }
        let mut extra = Vec::new();
        extra.extend(url.map(|u| ("RecordingUrl".to_string(), u)));
        extra.push(("RecordingSid".to_string(), sid));
        extra.push(("RecordingDuration".to_string(), duration_s.to_string()));
        extra.push(("Digits".to_string(), digits));
        let status = if caller_gone.is_some() {
            CallStatus::Completed
        } else {
            CallStatus::InProgress
        };
        let next = self
            .follow_with(
                "action",
                doc_url,
                r.action.as_deref(),
                r.method.into(),
                status,
                extra,
            )
            .await;
        match caller_gone {
            // The action tells the app how the recording went (`Digits=hangup`); the caller
            // is gone, so its TwiML is not run.
            Some(reason) => Next::End {
                status: self.final_status(),
                reason,
            },
            None => next,
        }
    }

    /// The transcription of a kept recording: the words said inside it, through the
    /// simulated recognizer (with the call's word errors), POSTed signed to
    /// `transcribeCallback` after the recording's status callbacks (`status_sent`). Returns
    /// `TranscriptionText`.
    ///
    /// Parameters follow two captured Twilio transcription callbacks: the call's
    /// (`AccountSid`, `ApiVersion`, `CallSid`, `CallStatus`, `Called`, `Caller`,
    /// `Direction`, `From`, `To`), the recording's (`RecordingSid`, `RecordingUrl`), the
    /// transcription's (`TranscriptionSid`, `TranscriptionText`, `TranscriptionStatus`,
    /// `TranscriptionUrl`, `TranscriptionType=fast`) and `url`, the callback's own URL.
    /// `TranscriptionStatus` is `failed` when the caller's words are unknown (turns found
    /// by energy, with no text): dialtone cannot know what was said.
    fn transcribe(
        &mut self,
        r: &Record,
        doc_url: &str,
        (recording_sid, recording_url, length): (&str, Option<&str>, Duration),
        (words, first_turn, index): (String, Option<usize>, u64),
        status_sent: Option<tokio::task::JoinHandle<()>>,
    ) -> String {
        let in_range = length > TRANSCRIBABLE.0 && length < TRANSCRIBABLE.1;
        if !in_range {
            self.warn(
                OUT_OF_RANGE,
                format!(
                    "<Record transcribe>: a recording of {:.1} s is not transcribed: transcription takes recordings longer than {} s and shorter than {} s",
                    length.as_secs_f64(),
                    TRANSCRIBABLE.0.as_secs(),
                    TRANSCRIBABLE.1.as_secs()
                ),
            );
        }
        let words = if in_range { words } else { String::new() };
        let known = !words.is_empty();
        let salt = first_turn.map_or(u64::MAX, |i| i as u64);
        let text = crate::speech::recognize(&words, self.cfg.word_errors.as_ref(), salt).text;
        let status = if known { "completed" } else { "failed" };
        let target = self.callback_url(
            "transcribeCallback",
            r.transcribe_callback.as_deref(),
            doc_url,
        );
        let Some(target) = target else {
            // transcribe="true" alone: the text is made (and reported), nobody is told.
            self.await_before_report(status_sent);
            return text;
        };
        let tr_sid = sid::seeded_or_random("TR", self.cfg.seed, TRANSCRIPTION_RANGE + index);
        let transcription_url = recording_url
            .map(|u| format!("{u}/Transcriptions/{tr_sid}"))
            .unwrap_or_default();
        let call_status = if self.ended().is_some() {
            CallStatus::Completed
        } else {
            CallStatus::InProgress
        };
        let info = &self.info;
        let params: Vec<(String, String)> = [
            ("AccountSid", info.account_sid.as_str()),
            ("ApiVersion", API_VERSION),
            ("CallSid", info.call_sid.as_str()),
            ("CallStatus", call_status.as_str()),
            ("Called", info.to.as_str()),
            ("Caller", info.from.as_str()),
            ("Direction", info.direction.as_str()),
            ("From", info.from.as_str()),
            ("RecordingSid", recording_sid),
            ("RecordingUrl", recording_url.unwrap_or_default()),
            ("To", info.to.as_str()),
            ("TranscriptionSid", tr_sid.as_str()),
            ("TranscriptionStatus", status),
            ("TranscriptionText", text.as_str()),
            ("TranscriptionType", "fast"),
            ("TranscriptionUrl", transcription_url.as_str()),
            ("url", target.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        self.timeline
            .emit(EventKind::Record(RecordEvent::Transcription {
                sid: tr_sid,
                status,
                words: text.split_whitespace().count(),
                url: target.clone(),
            }));
        // transcribeCallback takes no method: Twilio POSTs it.
        let sender = self.callback_sender(target, HttpMethod::Post);
        let task = tokio::spawn(async move {
            // After the recording's `completed`, as on Twilio, where transcribing takes a
            // while.
            if let Some(t) = status_sent {
                let _ = t.await;
            }
            let queue = Queue::new("transcribe callback", sender);
            queue.push(status.to_string(), params);
            if let Some(t) = queue.finish() {
                let _ = t.await;
            }
        });
        self.await_before_report(Some(task));
        text
    }
}
