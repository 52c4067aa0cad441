//! The relay conversation without I/O: what the bot sends for each ConversationRelay message
//! and when, under the call's fault (`misbehave`). The driver (`super`) feeds it the socket's
//! text messages and its clock, and carries out what it asks.
//!
//! One answer at a time: a final `prompt` (or a `dtmf`) starts an answer that replaces any
//! answer still being streamed (the bot answers the latest thing the caller said, as an app
//! cancelling its model's generation would); `interrupt` stops it. Memory is bounded: an
//! answer is at most [`MAX_ECHO_WORDS`] + 2 words of at most [`MAX_WORD_CHARS`] characters, and
//! a `token_flood` is generated while it is sent, never held.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;

use crate::RelayMode;
use crate::misbehave::{Behaviour, Misbehave};

/// Words of the caller's prompt an answer echoes.
pub(crate) const MAX_ECHO_WORDS: usize = 12;
/// Characters of one echoed word (longer ones are cut).
pub(crate) const MAX_WORD_CHARS: usize = 40;
/// Characters of a call SID kept from `setup`.
const MAX_SID_CHARS: usize = 64;
/// What a `slow_first_token` answer waits before its first token.
pub const SLOW_FIRST_TOKEN: Duration = Duration::from_secs(3);
/// Tokens of a `token_flood` answer.
pub const TOKEN_FLOOD: u32 = 20_000;
/// Tokens of the first answer a `close_mid_turn` socket sends before it closes.
pub const CLOSE_AFTER_TOKENS: u32 = 2;
/// What a `malformed` app sends after each answer's first token: an unidentified type, a
/// `text` without its required `token`, and something that is not JSON.
pub const MALFORMED_MESSAGES: [&str; 3] = [
    r#"{"type":"txet","token":"oops "}"#,
    r#"{"type":"text","last":false}"#,
    "this is not JSON",
];
/// Each token of a `token_flood` answer (its last one carries `last: true`).
pub(crate) const FLOOD_TOKEN: &str = "la ";

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    /// Send this text message.
    Send(String),
    /// Send a `token_flood`: this many `text` tokens as fast as the socket takes them, the last
    /// with `last: true`.
    Flood(u32),
    /// Close the socket (normal closure) without `end`: the `close_mid_turn` fault.
    Close,
}

/// What happened on the socket, for the end-of-session log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TalkStats {
    /// Final prompts received.
    pub(crate) prompts: u32,
    /// Answers started (prompts and digits).
    pub(crate) answers: u32,
    /// Tokens sent (a flood's included).
    pub(crate) tokens: u32,
    /// Interrupts received.
    pub(crate) interrupts: u32,
    /// Answers an interrupt stopped before their last token.
    pub(crate) cut: u32,
    /// `error` messages received (the bot's malformed messages, under `malformed`).
    pub(crate) errors: u32,
    /// Messages ignored: partial prompts, unknown or unreadable ones.
    pub(crate) ignored: u32,
}

/// An answer being streamed.
#[derive(Debug)]
struct Answer {
    /// Tokens still to send; the last one ends the answer.
    tokens: VecDeque<String>,
    /// When the next token is due.
    next_at: Duration,
    /// Tokens sent so far.
    sent: u32,
    /// Which answer of the session (1-based).
    nth: u32,
    /// A `token_flood`, sent all at once when due.
    flood: bool,
}

/// One relay session's conversation.
#[derive(Debug)]
pub(crate) struct Talk {
    mode: RelayMode,
    misbehave: Misbehave,
    call_sid: String,
    /// The call's relay fault, known from `setup`.
    fault: Option<Behaviour>,
    answer: Option<Answer>,
    flooded: bool,
    closed: bool,
    stats: TalkStats,
}

impl Talk {
    pub(crate) fn new(mode: RelayMode, misbehave: Misbehave) -> Self {
        Talk {
            mode,
            misbehave,
            call_sid: String::new(),
            fault: None,
            answer: None,
            flooded: false,
            closed: false,
            stats: TalkStats::default(),
        }
    }

    /// The call SID `setup` gave (empty before it).
    pub(crate) fn call_sid(&self) -> &str {
        &self.call_sid
    }

    /// The call's relay fault.
    pub(crate) fn fault(&self) -> Option<Behaviour> {
        self.fault
    }

    pub(crate) fn stats(&self) -> TalkStats {
        self.stats
    }

    /// When [`Talk::on_timeout`] is next due (`None`: nothing to send).
    pub(crate) fn next_at(&self) -> Option<Duration> {
        self.answer.as_ref().map(|a| a.next_at)
    }

    /// One message from Twilio, at `now` since the socket opened.
    pub(crate) fn on_message(&mut self, now: Duration, text: &str) {
        if self.closed {
            return;
        }
        let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
            self.stats.ignored += 1;
            return;
        };
        let string = |key: &str| msg.get(key).and_then(Value::as_str).unwrap_or("");
        match string("type") {
            "setup" if self.call_sid.is_empty() => {
                self.call_sid = string("callSid").chars().take(MAX_SID_CHARS).collect();
                self.fault = self
                    .misbehave
                    .for_call(&self.call_sid)
                    .filter(|b| b.relay_only());
                if let Some(b) = self.fault {
                    tracing::info!(call_sid = %self.call_sid, misbehaviour = %b, "misbehaving on this relay session");
                }
            }
            "prompt" if msg.get("last") == Some(&Value::Bool(true)) => {
                self.stats.prompts += 1;
                let words = echo(string("voicePrompt"));
                self.start_answer(now, words);
            }
            "dtmf" => {
                let digit: String = string("digit").chars().take(1).collect();
                let answer = format!("{digit}.");
                self.start_answer(now, tokens(&["You ", "pressed ", &answer]));
            }
            "interrupt" => {
                self.stats.interrupts += 1;
                if self.answer.take().is_some() {
                    self.stats.cut += 1;
                }
            }
            "error" => self.stats.errors += 1,
            _ => self.stats.ignored += 1,
        }
    }

    /// Sends what is due at `now`.
    pub(crate) fn on_timeout(&mut self, now: Duration, out: &mut Vec<Out>) {
        while let Some(answer) = self.answer.as_mut() {
            if answer.next_at > now || self.closed {
                return;
            }
            if answer.flood {
                self.answer = None;
                self.stats.tokens += TOKEN_FLOOD;
                out.push(Out::Flood(TOKEN_FLOOD));
                return;
            }
            let Some(token) = answer.tokens.pop_front() else {
                self.answer = None;
                return;
            };
            answer.sent += 1;
            self.stats.tokens += 1;
            let done = answer.tokens.is_empty();
            let last = done && self.fault != Some(Behaviour::NeverLast);
            out.push(Out::Send(text_message(&token, last)));
            if self.fault == Some(Behaviour::Malformed) && answer.sent == 1 {
                out.extend(
                    MALFORMED_MESSAGES
                        .iter()
                        .map(|m| Out::Send((*m).to_owned())),
                );
            }
            if self.fault == Some(Behaviour::CloseMidTurn)
                && answer.nth == 1
                && answer.sent == CLOSE_AFTER_TOKENS
            {
                self.closed = true;
                self.answer = None;
                out.push(Out::Close);
                return;
            }
            if done {
                self.answer = None;
            } else {
                answer.next_at += self.mode.token_gap;
            }
        }
    }

    /// A new answer, replacing any still streaming.
    fn start_answer(&mut self, now: Duration, tokens: VecDeque<String>) {
        self.stats.answers += 1;
        let flood = self.fault == Some(Behaviour::TokenFlood) && !self.flooded;
        self.flooded |= flood;
        let think = if self.fault == Some(Behaviour::SlowFirstToken) {
            SLOW_FIRST_TOKEN
        } else {
            self.mode.think
        };
        self.answer = Some(Answer {
            tokens,
            next_at: now + think,
            sent: 0,
            nth: self.stats.answers,
            flood,
        });
    }
}

/// `text` with `token` and `last`.
pub(crate) fn text_message(token: &str, last: bool) -> String {
    serde_json::json!({"type": "text", "token": token, "last": last}).to_string()
}

/// The answer to a prompt: "You said: " and its first [`MAX_ECHO_WORDS`] words, one token a
/// word, spaces kept (Twilio joins tokens as they come).
fn echo(prompt: &str) -> VecDeque<String> {
    let words: Vec<String> = prompt
        .split_whitespace()
        .take(MAX_ECHO_WORDS)
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect();
    if words.is_empty() {
        return tokens(&["Sorry, ", "I ", "did ", "not ", "catch ", "that."]);
    }
    let n = words.len();
    ["You ".to_owned(), "said: ".to_owned()]
        .into_iter()
        .chain(
            words
                .into_iter()
                .enumerate()
                .map(|(i, w)| if i + 1 < n { w + " " } else { w }),
        )
        .collect()
}

/// Fixed words as tokens.
fn tokens(words: &[&str]) -> VecDeque<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[cfg(test)]
mod tests;
