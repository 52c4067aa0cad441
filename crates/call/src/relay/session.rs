//! The session: the caller's turns and digits on their schedule, the app's messages as they
//! come, the end.

use std::collections::VecDeque;
use std::time::Duration;

use dialtone_corpus::Turn;
use dialtone_protocol::relay::{
    self, AppMessageError, FromApp, MALFORMED_CLOSE_CODE, MALFORMED_CLOSE_REASON, MALFORMED_LIMIT,
    Setup, ToApp,
};
use dialtone_twiml::{ConversationRelay, RelayInput};

use super::report::{
    PlayFailure, RelayEvent, RelayInterrupt, RelayReport, RelayTurn, SessionEnd, SessionStatus,
};
use super::speech::{HeardSpan, Rules, Speech};

/// `play` sources and `sendDigits` digits a report keeps (the rest are counted or cut).
const KEPT: usize = 100;

/// The language of the caller's words (corpus scripts are English), as a recognizer told
/// to detect it (`multi`) names it in `prompt`: the primary subtag.
const CALLER_LANGUAGE: &str = "en";

/// After a final prompt, while the answer before it is still open: a pause this long in
/// the app's tokens is the app starting its answer to the new prompt (an LLM's first token
/// takes longer; a streamed answer's tokens come faster). Shorter, the token still belongs
/// to the answer before.
pub(super) const STREAM_PAUSE: Duration = Duration::from_millis(100);

/// How long the caller waits for the app to say anything after its latest prompt before it
/// hangs up (its tail counts from the answer): an app slower than the tail is measured as
/// slow, not mistaken for a silent one.
pub const ANSWER_PATIENCE: Duration = Duration::from_secs(5);

/// How the simulated recognizer and synthesizer behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechModel {
    /// From the caller's true end of speech to its final `prompt`.
    pub recognition_delay: Duration,
    /// Between partial `prompt`s (under `partialPrompts`).
    pub partial_every: Duration,
    /// From a token's arrival to its first sound.
    pub synthesis_latency: Duration,
    /// Speech time per character (65 ms: about 150 words a minute).
    pub per_char: Duration,
}

impl Default for SpeechModel {
    fn default() -> Self {
        SpeechModel {
            recognition_delay: Duration::from_millis(500),
            partial_every: Duration::from_millis(300),
            synthesis_latency: Duration::from_millis(200),
            per_char: Duration::from_millis(65),
        }
    }
}

/// Everything a session needs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The noun, as the TwiML has it.
    pub noun: ConversationRelay,
    /// The call, for `setup`.
    pub setup: Setup,
    /// What the caller says, from the socket's opening.
    pub turns: Vec<Turn>,
    /// Digits the caller keys, from the socket's opening.
    pub digits: Vec<(Duration, char)>,
    /// The simulated recognizer and synthesizer.
    pub speech: SpeechModel,
    /// How long the caller stays once its turns are done and the agent is quiet.
    pub tail: Duration,
    /// Keep what the caller heard when ([`RelaySession::heard`]), for the recording.
    pub record: bool,
}

/// What the session asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayOutput {
    /// Send this text message.
    Send(String),
    /// A step for the call's timeline.
    Event(RelayEvent),
    /// Fetch play `id`'s audio from `url`, then call [`RelaySession::on_play_ready`].
    Fetch {
        /// The play (0, 1, …).
        id: u32,
        /// Its `source`.
        url: String,
    },
    /// Close the socket.
    Close {
        /// Close code.
        code: u16,
        /// Reason.
        reason: String,
    },
}

/// A `text` message's fields, as the session takes them.
#[derive(Debug, Clone, Copy)]
struct FromAppText<'a> {
    token: &'a str,
    last: bool,
    interruptible: Option<bool>,
    preemptible: Option<bool>,
}

/// Something the caller does at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallerStep {
    /// Turn `i` starts: over the agent's speech, it may interrupt.
    SpeechStart(usize),
    /// A partial prompt of turn `i`: its first `words` words.
    Partial(usize, usize),
    /// Turn `i`'s final prompt.
    Prompt(usize),
    /// A keyed digit.
    Digit(char),
}

/// A message's rules: its own `interruptible` and `preemptible`, else the noun's.
fn rules(cut: RelayInput, preemptible: bool) -> Rules {
    Rules {
        speech: cut.speech(),
        dtmf: cut.dtmf(),
        preemptible,
    }
}

/// One ConversationRelay session (see the module docs).
#[derive(Debug)]
pub struct RelaySession {
    cfg: RelayConfig,
    steps: VecDeque<(Duration, CallerStep)>,
    speech: Speech,
    /// The current talk cycle (0: the greeting).
    cycle: u64,
    /// A talk cycle has tokens and no `last: true` yet.
    cycle_open: bool,
    /// A final prompt came while a talk cycle was open (or a cut one was still being
    /// dropped) and its tokens were still coming: they go on belonging to it until its
    /// `last: true` or a [`STREAM_PAUSE`].
    stale: bool,
    /// When the app's latest token came.
    last_token_at: Option<Duration>,
    /// Each play's loops, by id.
    play_loops: Vec<u32>,
    /// What the caller heard when, once the session ended (when recording).
    heard: Vec<HeardSpan>,
    /// The turn the current talk cycle answers.
    cycle_turn: Option<usize>,
    /// The latest turn whose final prompt went out.
    prompted: Option<usize>,
    /// When it went out, while the app has sent nothing since (see [`ANSWER_PATIENCE`]).
    unanswered_since: Option<Duration>,
    /// Turns the caller spoke over the agent without cutting it.
    spoke_over: Vec<bool>,
    /// Tokens after an interrupt belong to the cut cycle until its `last` or the next prompt.
    dropping: Option<usize>,
    /// The recognizer's language (`prompt`'s `lang`). The synthesizer's does not change how
    /// the simulated speech sounds or lasts, so it is not kept.
    stt_language: String,
    unidentified_run: u32,
    /// The last thing that happened (a caller step or an app message).
    last_activity: Duration,
    report: RelayReport,
}

impl RelaySession {
    /// A session about to open.
    pub fn new(cfg: RelayConfig) -> Self {
        let steps = schedule(&cfg);
        let report = RelayReport {
            turns: cfg
                .turns
                .iter()
                .enumerate()
                .map(|(i, t)| RelayTurn {
                    index: i as u32 + 1,
                    text: t.text.clone(),
                    prompt_ms: None,
                    first_token_ms: None,
                    last_token_ms: None,
                    speech_ms: None,
                    tokens: 0,
                })
                .collect(),
            ..RelayReport::default()
        };
        RelaySession {
            spoke_over: vec![false; cfg.turns.len()],
            stt_language: cfg.noun.transcription_language().to_string(),
            steps,
            speech: Speech::new(cfg.record),
            play_loops: Vec::new(),
            heard: Vec::new(),
            cycle: 0,
            cycle_open: false,
            stale: false,
            last_token_at: None,
            cycle_turn: None,
            prompted: None,
            unanswered_since: None,
            dropping: None,
            unidentified_run: 0,
            last_activity: Duration::ZERO,
            report,
            cfg,
        }
    }

    /// The socket is open (time zero): `setup` goes out and the greeting starts.
    pub fn open(&mut self, out: &mut Vec<RelayOutput>) {
        out.push(send(&ToApp::Setup(Box::new(self.cfg.setup.clone()))));
        if let Some(greeting) = self.cfg.noun.welcome_greeting.clone() {
            let m = self.cfg.speech;
            let noun = &self.cfg.noun;
            let r = rules(noun.welcome_greeting_interruptible, noun.preemptible);
            self.speech.say(
                Duration::ZERO,
                0,
                r,
                &greeting,
                m.synthesis_latency,
                m.per_char,
            );
        }
    }

    /// When the session next needs [`RelaySession::on_timeout`] (`None` once it ended, or
    /// while only a play's fetch is awaited).
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.report.end.is_some() {
            return None;
        }
        match self.steps.front() {
            Some((t, _)) => Some(*t),
            None => self.hangup_at(),
        }
    }

    /// Runs what is due at `now`.
    pub fn on_timeout(&mut self, now: Duration, out: &mut Vec<RelayOutput>) {
        if self.report.end.is_some() {
            return;
        }
        while let Some(&(t, step)) = self.steps.front() {
            if t > now {
                return;
            }
            self.steps.pop_front();
            self.last_activity = self.last_activity.max(t);
            self.caller_step(t, now, step, out);
        }
        if self.hangup_at().is_some_and(|h| now >= h) {
            self.close(now, SessionStatus::Completed, None, out);
        }
    }

    /// One message from the app.
    pub fn on_message(&mut self, now: Duration, text: &str, out: &mut Vec<RelayOutput>) {
        if self.report.end.is_some() {
            return;
        }
        self.last_activity = self.last_activity.max(now);
        let message = match relay::parse_app_message(text) {
            Ok(m) => m,
            Err(e) => return self.refuse(now, text, &e, out),
        };
        self.unanswered_since = None;
        self.unidentified_run = 0;
        match message {
            // A token's `lang` is its own; the session's language stays.
            FromApp::Text {
                token,
                last,
                interruptible,
                preemptible,
                ..
            } => {
                let text = FromAppText {
                    token: &token,
                    last,
                    interruptible,
                    preemptible,
                };
                self.token(now, &text, out);
            }
            FromApp::Play {
                source,
                loop_count,
                preemptible,
                interruptible,
            } => {
                self.report.play_requests += 1;
                // Past the first 100, or part of an answer cut by the caller: not heard.
                if self.report.plays.len() >= KEPT || self.dropping.is_some() {
                    return;
                }
                let id = self.report.plays.len() as u32;
                self.report.plays.push(source.clone());
                self.play_loops.push(loop_count.max(1));
                // A play outside a talk cycle is a cycle of its own: it stops what is
                // preemptible, and the next token's cycle may stop it.
                if !self.cycle_open {
                    self.speech.preempt(now);
                    self.cycle += 1;
                }
                let r = self.rules(interruptible, preemptible);
                self.speech.play(now, self.cycle, r, id);
                out.push(RelayOutput::Fetch { id, url: source });
            }
            FromApp::SendDigits { digits } => {
                let room = KEPT.saturating_sub(self.report.digits_sent.chars().count());
                self.report.digits_sent.extend(digits.chars().take(room));
            }
            FromApp::Language {
                transcription_language,
                ..
            } => {
                if let Some(l) = transcription_language {
                    self.stt_language = l;
                }
            }
            FromApp::End { handoff_data } => {
                self.close(now, SessionStatus::Ended, handoff_data, out);
            }
        }
    }

    /// Play `id`'s audio is in at `now` and lasts `audio` once (`Err`: why it could not be
    /// had; it is skipped, as Twilio skips a `<Play>` it cannot fetch).
    pub fn on_play_ready(
        &mut self,
        now: Duration,
        id: u32,
        audio: Result<Duration, String>,
        out: &mut Vec<RelayOutput>,
    ) {
        let Some(source) = self.report.plays.get(id as usize).cloned() else {
            return;
        };
        if self.report.end.is_some() {
            return;
        }
        self.last_activity = self.last_activity.max(now);
        match audio {
            Ok(once) => {
                let len = once * self.play_loops[id as usize];
                let start = self.speech.play_ready(now, id, Some(len));
                out.push(RelayOutput::Event(RelayEvent::Play {
                    source,
                    duration_ms: len.as_millis() as u64,
                    start_ms: start.map(ms),
                }));
                self.held_answer_heard();
            }
            Err(cause) => {
                self.speech.play_ready(now, id, None);
                self.held_answer_heard();
                out.push(RelayOutput::Event(RelayEvent::PlayFailed {
                    source: source.clone(),
                    cause: cause.clone(),
                }));
                if self.report.play_failures.len() < KEPT {
                    self.report
                        .play_failures
                        .push(PlayFailure { source, cause });
                }
            }
        }
    }

    /// An answer queued behind a play whose audio was awaited: when it is heard is known now.
    fn held_answer_heard(&mut self) {
        let Some(i) = self.cycle_turn else { return };
        if self.report.turns[i].speech_ms.is_some() {
            return;
        }
        if let Some(start) = self.speech.first_start(self.cycle) {
            let end = self.cfg.turns[i].end();
            self.report.turns[i].speech_ms = Some(ms(start.saturating_sub(end)));
        }
    }

    /// What the caller heard when (kept when recording; complete once the session ended).
    pub fn heard(&self) -> &[HeardSpan] {
        &self.heard
    }

    /// The call ends from outside the session (a REST hang-up, the call's maximum length):
    /// the session completes, as when the caller hangs up.
    pub fn hang_up(&mut self, now: Duration, out: &mut Vec<RelayOutput>) {
        if self.report.end.is_none() {
            self.close(now, SessionStatus::Completed, None, out);
        }
    }

    /// The socket closed under the session (the app closed it, or it broke).
    pub fn on_closed(&mut self, now: Duration, out: &mut Vec<RelayOutput>) {
        if self.report.end.is_none() {
            let error = (relay::WEBSOCKET_ENDED, "WebSocket ended".to_string());
            self.finish(now, SessionStatus::Failed, None, Some(error), out);
        }
    }

    /// `VX…`, as `setup` carries it.
    pub fn session_id(&self) -> &str {
        &self.cfg.setup.session_id
    }

    /// How it ended, once it has.
    pub fn end(&self) -> Option<&SessionEnd> {
        self.report.end.as_ref()
    }

    /// What it measured.
    pub fn report(&self) -> &RelayReport {
        &self.report
    }

    /// The caller hangs up once its turns are done, the agent is quiet and nothing happened
    /// for its tail, and not before [`ANSWER_PATIENCE`] after a prompt the app has not
    /// answered with anything yet.
    /// (`None` while a play's audio is awaited: its length is not known.)
    fn hangup_at(&self) -> Option<Duration> {
        let quiet = self.speech.ends().unwrap_or_default();
        let waiting = self
            .unanswered_since
            .map_or(Duration::ZERO, |p| p + ANSWER_PATIENCE);
        (quiet != Duration::MAX)
            .then(|| (self.last_activity.max(quiet) + self.cfg.tail).max(waiting))
    }

    /// A message's rules: its own `interruptible` and `preemptible`, else the noun's.
    fn rules(&self, interruptible: Option<bool>, preemptible: Option<bool>) -> Rules {
        let noun = &self.cfg.noun;
        let cut = match interruptible {
            Some(true) => RelayInput::Any,
            Some(false) => RelayInput::None,
            None => noun.interruptible,
        };
        rules(cut, preemptible.unwrap_or(noun.preemptible))
    }

    /// Caller step `step`, due at `t`, run at `now` (what is sent goes out now).
    fn caller_step(
        &mut self,
        t: Duration,
        now: Duration,
        step: CallerStep,
        out: &mut Vec<RelayOutput>,
    ) {
        let report_input = self.cfg.noun.report_input_during_agent_speech;
        match step {
            // The stretch of speech playing decides whether the input cuts it.
            CallerStep::SpeechStart(i) => {
                if let Some(playing) = self.speech.playing(t) {
                    if playing.speech {
                        self.interrupt(t, out);
                    } else {
                        self.spoke_over[i] = true;
                    }
                }
            }
            CallerStep::Partial(i, words) => {
                if self.spoke_over[i] && !report_input.speech() {
                    return;
                }
                let text = self.cfg.turns[i]
                    .text
                    .split_whitespace()
                    .take(words)
                    .collect::<Vec<_>>()
                    .join(" ");
                out.push(RelayOutput::Event(RelayEvent::Prompt {
                    turn: i as u32 + 1,
                    words: text.clone(),
                    last: false,
                }));
                out.push(self.prompt(text, false));
            }
            CallerStep::Prompt(i) => {
                if self.spoke_over[i] && !report_input.speech() {
                    return;
                }
                let words = self.cfg.turns[i].text.clone();
                out.push(RelayOutput::Event(RelayEvent::Prompt {
                    turn: i as u32 + 1,
                    words: words.clone(),
                    last: true,
                }));
                out.push(self.prompt(words, true));
                // When it really went out (a driver wakes a little after the deadline), so
                // the app's thinking reads as first token minus prompt.
                self.report.turns[i].prompt_ms =
                    Some(ms(now.saturating_sub(self.cfg.turns[i].end())));
                self.prompted = Some(i);
                self.unanswered_since = Some(now);
                // A new turn. The answer before, if still open, keeps the tokens the app
                // still sends for it (until its `last: true`, or a pause: see `token`),
                // unless the app had stopped sending it before this turn began (an app
                // that never says `last: true`): then the next token answers this turn.
                if self.cycle_open || self.dropping.is_some() {
                    let turn_start = self.cfg.turns[i].start();
                    if self.last_token_at.is_some_and(|at| at >= turn_start) {
                        self.stale = true;
                    } else {
                        self.dropping = None;
                        self.cycle_open = false;
                    }
                }
                self.speech.prune(t);
            }
            CallerStep::Digit(digit) => {
                if !self.cfg.noun.dtmf_detection {
                    return;
                }
                let playing = self.speech.playing(t);
                let speaking = playing.is_some();
                if playing.is_some_and(|r| r.dtmf) {
                    self.interrupt(t, out);
                } else if speaking && !report_input.dtmf() {
                    return;
                }
                out.push(send(&ToApp::Dtmf {
                    digit: digit.to_string(),
                }));
                // What the app sends next answers the digit, not a cut answer.
                if self.dropping.take().is_some() {
                    self.stale = false;
                }
            }
        }
    }

    fn prompt(&self, voice_prompt: String, last: bool) -> RelayOutput {
        send(&ToApp::Prompt {
            voice_prompt,
            lang: self.prompt_lang(),
            last,
        })
    }

    /// `prompt`'s `lang`: the recognizer's language; under `multi` (automatic detection)
    /// the detected language's primary subtag only (Twilio: `"en"`, not `"en-US"`). The
    /// caller's words (corpus scripts) are English.
    fn prompt_lang(&self) -> String {
        if self.stt_language.eq_ignore_ascii_case("multi") {
            CALLER_LANGUAGE.to_string()
        } else {
            self.stt_language.clone()
        }
    }

    /// The caller cuts the agent's speech at `t`.
    fn interrupt(&mut self, t: Duration, out: &mut Vec<RelayOutput>) {
        let (utterance, played) = self.speech.cut(t);
        out.push(send(&ToApp::Interrupt {
            utterance_until_interrupt: utterance.clone(),
            duration_until_interrupt_ms: played.as_millis() as u64,
        }));
        out.push(RelayOutput::Event(RelayEvent::Interrupt {
            utterance: utterance.clone(),
            played_ms: played.as_millis() as u64,
        }));
        self.report.interrupts.push(RelayInterrupt {
            at_ms: ms(t),
            utterance,
            duration_ms: played.as_millis() as u64,
            tokens_after: 0,
            stopped_after_ms: None,
        });
        if self.cycle_open {
            self.dropping = Some(self.report.interrupts.len() - 1);
            self.cycle_open = false;
        }
    }

    fn token(&mut self, now: Duration, token: &FromAppText, out: &mut Vec<RelayOutput>) {
        let FromAppText {
            token,
            last,
            interruptible,
            preemptible,
        } = *token;
        self.report.tokens += 1;
        let previous = self.last_token_at.replace(now);
        if self.stale && previous.is_none_or(|p| now.saturating_sub(p) >= STREAM_PAUSE) {
            // The app paused: its answer to the latest prompt starts.
            self.stale = false;
            self.dropping = None;
            self.cycle_open = false;
        }
        if last {
            self.stale = false;
        }
        if let Some(i) = self.dropping {
            let cut = &mut self.report.interrupts[i];
            cut.tokens_after += 1;
            cut.stopped_after_ms = Some(ms(now) - cut.at_ms);
            if last {
                self.dropping = None;
            }
            return;
        }
        if !self.cycle_open {
            self.start_cycle(now, out);
        }
        let m = self.cfg.speech;
        let r = self.rules(interruptible, preemptible);
        let heard = self
            .speech
            .say(now, self.cycle, r, token, m.synthesis_latency, m.per_char);
        if let Some(i) = self.cycle_turn {
            let end = self.cfg.turns[i].end();
            let turn = &mut self.report.turns[i];
            turn.tokens += 1;
            if let (Some(start), None) = (heard, turn.speech_ms) {
                turn.speech_ms = Some(ms(start.saturating_sub(end)));
            }
            if last {
                let after = ms(now.saturating_sub(end));
                turn.last_token_ms = Some(after);
                out.push(RelayOutput::Event(RelayEvent::LastToken {
                    turn: turn.index,
                    after_speech_ms: after,
                    tokens: turn.tokens,
                }));
            }
        }
        if last {
            self.cycle_open = false;
        }
    }

    /// A talk cycle's first token: what it answers, and what it does to speech still playing.
    fn start_cycle(&mut self, now: Duration, out: &mut Vec<RelayOutput>) {
        // Speech still playing or queued is stopped where it is preemptible (its own
        // message's `preemptible`); the rest plays on, the new cycle after it.
        self.speech.preempt(now);
        self.cycle += 1;
        self.cycle_open = true;
        // The answer to the latest prompt, unless that turn was answered already.
        self.cycle_turn = self
            .prompted
            .filter(|&i| self.report.turns[i].first_token_ms.is_none());
        if let Some(i) = self.cycle_turn {
            let after = ms(now.saturating_sub(self.cfg.turns[i].end()));
            self.report.turns[i].first_token_ms = Some(after);
            out.push(RelayOutput::Event(RelayEvent::FirstToken {
                turn: i as u32 + 1,
                after_speech_ms: after,
            }));
        }
    }

    /// An app message Twilio cannot use: an `error` back; too many unidentified in a row
    /// close the socket.
    fn refuse(
        &mut self,
        now: Duration,
        raw: &str,
        e: &AppMessageError,
        out: &mut Vec<RelayOutput>,
    ) {
        self.report.errors_sent += 1;
        out.push(RelayOutput::Event(RelayEvent::Error {
            message: raw.chars().take(200).collect(),
        }));
        out.push(send(&ToApp::invalid(raw)));
        if !e.unidentified() {
            self.unidentified_run = 0;
            return;
        }
        self.unidentified_run += 1;
        if self.unidentified_run >= MALFORMED_LIMIT {
            let error = (relay::WEBSOCKET_ENDED, MALFORMED_CLOSE_REASON.to_string());
            self.finish(now, SessionStatus::Failed, None, Some(error), out);
            out.push(RelayOutput::Close {
                code: MALFORMED_CLOSE_CODE,
                reason: MALFORMED_CLOSE_REASON.to_string(),
            });
        }
    }

    /// Ends the session cleanly and closes the socket (1000).
    fn close(
        &mut self,
        now: Duration,
        status: SessionStatus,
        handoff_data: Option<String>,
        out: &mut Vec<RelayOutput>,
    ) {
        self.finish(now, status, handoff_data, None, out);
        out.push(RelayOutput::Close {
            code: 1000,
            reason: String::new(),
        });
    }

    fn finish(
        &mut self,
        now: Duration,
        status: SessionStatus,
        handoff_data: Option<String>,
        error: Option<(u16, String)>,
        out: &mut Vec<RelayOutput>,
    ) {
        out.push(RelayOutput::Event(RelayEvent::Ended {
            status,
            handoff_data: handoff_data.clone(),
        }));
        self.heard = self.speech.finish(now);
        self.report.end = Some(SessionEnd {
            status,
            at_ms: ms(now),
            handoff_data,
            error,
        });
    }
}

/// The caller's steps in time order: each turn's start, its partials (under
/// `partialPrompts`), its final prompt; the digits.
fn schedule(cfg: &RelayConfig) -> VecDeque<(Duration, CallerStep)> {
    let mut steps = Vec::new();
    for (i, turn) in cfg.turns.iter().enumerate() {
        steps.push((turn.start(), CallerStep::SpeechStart(i)));
        if turn.text.trim().is_empty() {
            // No words, nothing to recognize (a turn found by energy alone).
            continue;
        }
        let words = turn.text.split_whitespace().count();
        let span = turn.end().saturating_sub(turn.start());
        if cfg.noun.partial_prompts && !cfg.speech.partial_every.is_zero() {
            let mut t = turn.start() + cfg.speech.partial_every;
            let mut said = 0;
            while t < turn.end() {
                let share = (t - turn.start()).as_secs_f64() / span.as_secs_f64();
                let n = ((words as f64 * share).ceil() as usize).min(words);
                if n > said {
                    steps.push((t, CallerStep::Partial(i, n)));
                    said = n;
                }
                t += cfg.speech.partial_every;
            }
        }
        steps.push((
            turn.end() + cfg.speech.recognition_delay,
            CallerStep::Prompt(i),
        ));
    }
    steps.extend(cfg.digits.iter().map(|&(t, d)| (t, CallerStep::Digit(d))));
    // Stable: at one instant, a turn's start comes before its prompt, as listed.
    steps.sort_by_key(|(t, _)| *t);
    steps.into()
}

fn send(message: &ToApp) -> RelayOutput {
    RelayOutput::Send(message.to_json())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
