//! `<Gather>`: its prompts, then the caller's keys (`input="dtmf"`, from the caller's
//! queued digits) or words (`input="speech"`, from its turns on the call's clock: the
//! simulated recognizer returns the words the caller said, timed from the true end of its
//! speech, with seeded errors when asked). `input="dtmf speech"`: keys already queued win,
//! else speech.

use std::time::Duration;

use dialtone_twiml::{Gather, GatherInput, Verb};
use tokio::time::Instant;

use super::caller_speech::Spoken;
use super::{Call, Next};
use crate::callbacks::Queue;
use crate::live::LiveCaller;
use crate::report::EventKind;
use crate::speech::{self, WordErrors};

/// `maxSpeechTime` when not given (Twilio's default, seconds).
const MAX_SPEECH_SECS: u32 = 60;
/// Where a live caller's typed lines start among turn indices (the word-error model's salt).
const TYPED_INDEX: usize = 1 << 30;

/// Partial results one gather sends at most (a minute of speech at the default pace is 200).
const PARTIALS_MAX: usize = 1000;

/// One utterance the recognizer heard: the caller's turns close enough to be one.
struct Utterance {
    start: Instant,
    /// Where speech ended (or was cut by `maxSpeechTime`).
    end: Instant,
    /// Its turns, clipped to `end`.
    turns: Vec<Spoken>,
}

impl Utterance {
    /// The words said by `at`, as the recognizer hears them so far.
    fn words_by(&self, at: Instant) -> String {
        let mut out = Vec::new();
        for t in &self.turns {
            if at <= t.start {
                break;
            }
            let n = speech::words_at(
                t.text.split_whitespace().count(),
                t.end.saturating_duration_since(t.start),
                at.saturating_duration_since(t.start),
            );
            let words = speech::first_words(&t.text, n);
            if !words.is_empty() {
                out.push(words);
            }
        }
        out.join(" ")
    }
}

/// Keys one live `<Gather>` collects at most, when neither `numDigits` nor `finishOnKey`
/// ends it sooner (a keypad held down must not grow `Digits` for an hour).
const MAX_LIVE_DIGITS: usize = 256;

impl Call<'_> {
    pub(super) async fn gather(&mut self, g: &Gather, doc_url: &str) -> Next {
        let began = Instant::now();
        // A live caller's keys over the prompts count.
        let live_keys = self.cfg.caller.live.clone().map(|l| {
            let cursor = l.keys_pressed();
            (l, cursor)
        });
        let speech = g.input.contains(&GatherInput::Speech);
        if speech && g.barge_in {
            // A caller already talking (its audio runs from the answer or a stream) can
            // speak over the prompts; one that has not started waits for them.
            if let Some(t0) = self.caller_t0() {
                self.barge_in_at = self
                    .cfg
                    .caller
                    .turns
                    .iter()
                    .map(|t| t0 + t.start())
                    .find(|&at| at >= began);
            }
        }
        if let Some((live, cursor)) = &live_keys {
            let dtmf = g.input.contains(&GatherInput::Dtmf);
            if dtmf || (speech && g.barge_in) {
                self.key_barge = Some(super::LiveBarge {
                    live: live.clone(),
                    keys_before: dtmf.then_some(*cursor),
                    lines_from: (speech && g.barge_in).then_some(began),
                });
            }
        }
        let prompts = self.gather_prompts(g, doc_url).await;
        self.barge_in_at = None;
        self.key_barge = None;
        if let Some(next) = prompts {
            return next;
        }
        let dtmf = g.input.contains(&GatherInput::Dtmf);
        // Listening starts once the prompts are over.
        let listen = Instant::now();
        if let (Some((live, cursor)), true) = (live_keys, dtmf) {
            if speech {
                // "Press or say": whichever the caller does first.
                let deadline = listen + Duration::from_secs(g.timeout_secs.into());
                let typed = tokio::select! {
                    () = live.pressed_after(cursor) => None,
                    typed = self.typed_turn(&live, g, (began, listen), deadline) => Some(typed),
                };
                match typed {
                    None => {}
                    Some(Err(())) => return self.interrupted().await,
                    Some(Ok(turn)) if turn.is_empty() => {
                        return self
                            .keys_gathered(g, doc_url, String::new(), String::new())
                            .await;
                    }
                    // The line is there: the speech path takes it up at once.
                    Some(Ok(_)) => return self.gather_speech(g, doc_url, (began, listen)).await,
                }
            }
            return self.gather_live_keys(g, doc_url, live, cursor).await;
        }
        let keys_waiting = dtmf && !self.digits.is_empty();
        if speech && !keys_waiting {
            return self.gather_speech(g, doc_url, (began, listen)).await;
        }
        self.gather_digits(g, doc_url, dtmf).await
    }

    /// The nested `<Say>`, `<Play>` and `<Pause>`; `Some` when one ended the verb.
    async fn gather_prompts(&mut self, g: &Gather, doc_url: &str) -> Option<Next> {
        for child in &g.children {
            let next = match &child.verb {
                Verb::Say(s) => self.say(&s.text, s.loop_count).await,
                Verb::Play(p) => self.play(p, doc_url).await,
                Verb::Pause(p) => {
                    if self.wait(Duration::from_secs(p.length_secs.into())).await {
                        self.interrupted().await
                    } else {
                        Next::Continue
                    }
                }
                _ => Next::Continue,
            };
            if !matches!(next, Next::Continue) {
                return Some(next);
            }
            // A live caller's key stops the prompts, the ones after too.
            if self.key_barged() {
                break;
            }
        }
        None
    }

    /// Keys from the caller's queued digits, as Twilio collects them.
    async fn gather_digits(&mut self, g: &Gather, doc_url: &str, dtmf: bool) -> Next {
        let mut digits = String::new();
        let mut finished_on = String::new();
        if dtmf {
            while let Some(c) = self.digits.pop_front() {
                if !g.finish_on_key.is_empty() && g.finish_on_key.contains(c) {
                    finished_on.push(c);
                    break;
                }
                digits.push(c);
                if g.num_digits.is_some_and(|n| digits.len() >= n as usize) {
                    break;
                }
            }
        }
        let typed = digits.len() + finished_on.len();
        if typed > 0 {
            self.timeline.emit(EventKind::Dtmf {
                digits: format!("{digits}{finished_on}"),
            });
            // The caller keys one digit every 100 ms.
            if self.wait(Duration::from_millis(100 * typed as u64)).await {
                return self.interrupted().await;
            }
        }
        let complete =
            !finished_on.is_empty() || g.num_digits.is_some_and(|n| digits.len() >= n as usize);
        if !complete && self.wait(Duration::from_secs(g.timeout_secs.into())).await {
            return self.interrupted().await;
        }
        self.keys_gathered(g, doc_url, digits, finished_on).await
    }

    /// Keys from a live caller as it presses them: each within `timeout` of the one before
    /// (the first, of listening), until `finishOnKey` or `numDigits`.
    async fn gather_live_keys(
        &mut self,
        g: &Gather,
        doc_url: &str,
        live: std::sync::Arc<crate::live::LiveCaller>,
        mut cursor: usize,
    ) -> Next {
        let timeout = Duration::from_secs(g.timeout_secs.into());
        let (mut digits, mut finished_on) = (String::new(), String::new());
        loop {
            let (mut end, mut redirect) = (self.end.clone(), self.redirect.clone());
            // (The watch guards must not live across an await: the call's future is `Send`.)
            let key = tokio::select! {
                k = live.next_key(&mut cursor, Instant::now() + timeout) => Some(k),
                () = async { drop(end.wait_for(|r| r.is_some()).await) } => None,
                () = async { drop(redirect.wait_for(|r| r.is_some()).await) } => None,
            };
            let Some(key) = key else {
                return self.interrupted().await;
            };
            let Some(c) = key else { break };
            self.timeline.emit(EventKind::Dtmf {
                digits: c.to_string(),
            });
            if g.finish_on_key.contains(c) {
                finished_on.push(c);
                break;
            }
            digits.push(c);
            if g.num_digits.is_some_and(|n| digits.len() >= n as usize)
                || digits.len() >= MAX_LIVE_DIGITS
            {
                break;
            }
        }
        // (The caller hung up while keying: the call's end is already set.)
        if self.interrupt_pending() {
            return self.interrupted().await;
        }
        self.keys_gathered(g, doc_url, digits, finished_on).await
    }

    /// The keys a `<Gather>` collected: its action, or the next verb when there are none.
    async fn keys_gathered(
        &mut self,
        g: &Gather,
        doc_url: &str,
        digits: String,
        finished_on: String,
    ) -> Next {
        // The finish key alone is not input: Twilio only lets it end input that has digits.
        if digits.is_empty() && !g.action_on_empty_result {
            // No input: Twilio moves on to the next verb without a request.
            return Next::Continue;
        }
        let extra = vec![
            ("Digits".to_string(), digits),
            ("FinishedOnKey".to_string(), finished_on),
        ];
        self.follow(
            "action",
            doc_url,
            g.action.as_deref(),
            g.method.into(),
            extra,
        )
        .await
    }

    /// The caller's words: the first turn that starts within `timeout` of listening (or,
    /// with `bargeIn`, one already under way over the prompts), with the turns that follow
    /// it closer than the end-of-speech silence; the result comes that silence after the
    /// speech ends.
    async fn gather_speech(
        &mut self,
        g: &Gather,
        doc_url: &str,
        (began, listen): (Instant, Instant),
    ) -> Next {
        let timeout = Duration::from_secs(g.timeout_secs.into());
        let silence = self.end_of_speech(g);
        let typed = match self.cfg.caller.live.clone() {
            Some(live) => match self
                .typed_turn(&live, g, (began, listen), listen + timeout)
                .await
            {
                Ok(turn) => Some(turn),
                Err(()) => return self.interrupted().await,
            },
            None => None,
        };
        let Some(turns) = typed.or_else(|| self.caller_speech_after(listen)) else {
            self.warn(
                0,
                "<Gather input=\"speech\"> hears nothing in virtual time (--fast): the caller's \
                 words keep no clock there"
                    .into(),
            );
            return self.speech_empty(g, doc_url).await;
        };
        // With bargeIn, speech over the prompts counts (Twilio stops the prompt for it).
        let from = if g.barge_in { began } else { listen };
        let first = turns
            .iter()
            .position(|t| t.start >= from && t.start <= listen + timeout);
        let Some(first) = first else {
            if self.wait_until(listen + timeout).await {
                return self.interrupted().await;
            }
            return self.speech_empty(g, doc_url).await;
        };
        let max = Duration::from_secs(g.max_speech_time_secs.unwrap_or(MAX_SPEECH_SECS).into());
        let utterance = utterance(&turns[first..], silence, max);
        if utterance.turns.iter().all(|t| t.text.trim().is_empty()) {
            self.warn(
                0,
                "<Gather input=\"speech\">: the caller's words are unknown (no transcript: add \
                 a .json or .txt beside its WAV): heard as no input"
                    .into(),
            );
        }
        if self.send_partials(g, doc_url, &utterance).await {
            return self.interrupted().await;
        }
        if self.wait_until(utterance.end + silence).await {
            return self.interrupted().await;
        }
        let said = utterance.words_by(utterance.end);
        let salt = self.speech_salt(utterance.turns[0].index);
        let heard = speech::recognize(&said, self.cfg.word_errors.as_ref(), salt);
        if heard.text.is_empty() {
            // Nothing recognized (no known words, or all of them lost): no input, as Twilio
            // treats it.
            return self.speech_empty(g, doc_url).await;
        }
        let after_speech = Instant::now().saturating_duration_since(utterance.end);
        self.timeline.emit(EventKind::SpeechResult {
            text: heard.text.clone(),
            confidence: heard.confidence,
            after_speech,
        });
        if self.speech.len() < super::dial::DIALS_KEPT {
            self.speech.push(crate::report::SpeechReport {
                result: heard.text.clone(),
                confidence: heard.confidence,
                after_speech_ms: after_speech.as_secs_f64() * 1e3,
            });
        }
        let extra = vec![
            ("SpeechResult".to_string(), heard.text),
            ("Confidence".to_string(), format!("{:.8}", heard.confidence)),
        ];
        self.follow(
            "action",
            doc_url,
            g.action.as_deref(),
            g.method.into(),
            extra,
        )
        .await
    }

    /// No speech: the next verb, or the action with an empty result (`actionOnEmptyResult`).
    async fn speech_empty(&mut self, g: &Gather, doc_url: &str) -> Next {
        self.timeline.emit(EventKind::SpeechResult {
            text: String::new(),
            confidence: 0.0,
            after_speech: Duration::ZERO,
        });
        if !g.action_on_empty_result {
            return Next::Continue;
        }
        self.follow(
            "action",
            doc_url,
            g.action.as_deref(),
            g.method.into(),
            Vec::new(),
        )
        .await
    }

    /// Silence that ends speech: `speechTimeout` seconds, `auto` (the recognizer's own end
    /// pointing: the recognition delay), or, unset, `timeout`.
    fn end_of_speech(&self, g: &Gather) -> Duration {
        match g.speech_timeout.as_deref() {
            None => Duration::from_secs(g.timeout_secs.into()),
            Some("auto") => self.cfg.relay_speech.recognition_delay,
            Some(n) => n
                .trim()
                .trim_start_matches('+')
                .parse::<u64>()
                .map_or(self.cfg.relay_speech.recognition_delay, Duration::from_secs),
        }
    }

    /// A salt for the error model: the same utterance in the same call errs the same way.
    /// A live caller's words for a speech `<Gather>`: the first line it types from `listen`
    /// (from `began`, the prompts, with `bargeIn`) until `deadline`, said from the moment it
    /// came at `<Say>`'s pace; none typed, no turn. `Err` when the call was interrupted.
    async fn typed_turn(
        &mut self,
        live: &LiveCaller,
        g: &Gather,
        (began, listen): (Instant, Instant),
        deadline: Instant,
    ) -> Result<Vec<Spoken>, ()> {
        let from = if g.barge_in { began } else { listen };
        let line = tokio::select! {
            line = live.next_line(from, deadline) => line,
            interrupted = self.wait_until(deadline) => {
                if interrupted {
                    return Err(());
                }
                None
            }
        };
        Ok(line
            .map(|(at, text)| {
                let words = text.split_whitespace().count() as u64;
                let lasts = Duration::from_millis((words * super::SAY_MS_PER_WORD).max(500));
                Spoken {
                    // Apart from scripted turns' indices, for the word-error model.
                    index: TYPED_INDEX + at.saturating_duration_since(began).as_millis() as usize,
                    start: at,
                    end: at + lasts,
                    text,
                }
            })
            .into_iter()
            .collect())
    }

    fn speech_salt(&self, turn: usize) -> u64 {
        let seed = self.cfg.seed.unwrap_or(0);
        seed.wrapping_mul(1_000_003).wrapping_add(turn as u64)
    }

    /// `partialResultCallback`: the words heard so far, every `partial_every` while the
    /// caller speaks, signed and in order; true when the call was interrupted meanwhile.
    async fn send_partials(&mut self, g: &Gather, doc_url: &str, u: &Utterance) -> bool {
        let Some(url) = self.callback_url(
            "partialResultCallback",
            g.partial_result_callback.as_deref(),
            doc_url,
        ) else {
            return false;
        };
        let every = self.cfg.relay_speech.partial_every;
        if every.is_zero() {
            return false;
        }
        let queue = Queue::new(
            "partial result callback",
            self.callback_sender(url, g.partial_result_callback_method.into()),
        );
        let errors: Option<WordErrors> = self.cfg.word_errors;
        let salt = self.speech_salt(u.turns[0].index);
        let mut at = u.start + every;
        let mut said = String::new();
        let mut sequence = 0u32;
        let mut interrupted = false;
        while at < u.end && (sequence as usize) < PARTIALS_MAX {
            if self.wait_until(at).await {
                interrupted = true;
                break;
            }
            let now = u.words_by(at);
            if now != said && !now.is_empty() {
                said = now;
                let heard = speech::recognize(&said, errors.as_ref(), salt);
                let mut params = dialtone_protocol::webhook::voice_params(
                    &self.info,
                    dialtone_protocol::webhook::CallStatus::InProgress,
                );
                // As Twilio sends them: the growing hypothesis is all "unstable"; the stable
                // part comes back empty, with a high stability figure.
                params.extend([
                    ("SequenceNumber".to_string(), sequence.to_string()),
                    ("UnstableSpeechResult".to_string(), heard.text),
                    ("StableSpeechResult".to_string(), String::new()),
                    ("Stability".to_string(), "0.9".to_string()),
                ]);
                queue.push(format!("partial {sequence}"), params);
                sequence += 1;
            }
            at += every;
        }
        if let Some(task) = queue.finish() {
            self.leg_callbacks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
        }
        interrupted
    }
}

/// The utterance that starts with `turns[0]`: the turns after it that start less than
/// `silence` after the speech before them ends, cut at `max` from its start.
fn utterance(turns: &[Spoken], silence: Duration, max: Duration) -> Utterance {
    let start = turns[0].start;
    let cut = start + max;
    let mut kept: Vec<Spoken> = vec![turns[0].clone()];
    for t in &turns[1..] {
        let last = kept.last().map_or(start, |l| l.end);
        if t.start >= last + silence || t.start >= cut {
            break;
        }
        kept.push(t.clone());
    }
    let end = kept.last().map_or(start, |l| l.end).min(cut);
    Utterance {
        start,
        end,
        turns: kept,
    }
}
