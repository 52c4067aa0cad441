//! One ConversationRelay session, sans-IO: Twilio's side of `<Connect><ConversationRelay>`
//! with no socket and no clock. The app's messages and the time go in; the messages to send,
//! the close, the next deadline and, at the end, the session's report come out. Time is a
//! `Duration` since the socket opened, on whatever clock the driver keeps.
//!
//! What Twilio's recognizer and synthesizer do is simulated from the caller's ground truth:
//! each caller turn (its words and its true start and end) becomes a `prompt` a recognition
//! delay after the true end of speech (growing partials first under `partialPrompts`); the
//! app's `text` tokens become speech at a synthesis pace, so the session knows what the
//! caller has heard at any instant, and a caller turn that starts over that speech is an
//! `interrupt` when `interruptible` lets it be one.
//!
//! - `speech`: the agent's speech (talk cycles, what has been heard by when);
//! - `session`: the session itself (caller turns, app messages, the end);
//! - `report`: what it measured;
//! - `heard`: what the caller heard, as audio (for `--record`);
//! - `driver`: the tokio driver (signed upgrade, socket, clock, the call's end).
//! - `capture`: the session's `relay_*` records under `--capture`.

mod capture;
pub(crate) mod driver;
mod heard;
mod report;
mod session;
mod speech;
#[cfg(test)]
mod tests;

pub use report::{
    PlayFailure, RelayEvent, RelayInterrupt, RelayReport, RelayTurn, SessionEnd, SessionStatus,
};
pub use session::{ANSWER_PATIENCE, RelayConfig, RelayOutput, RelaySession, SpeechModel};
pub use speech::{HeardSpan, Sound};
