//! Twilio wire formats, pure (no IO): resource SIDs, the `X-Twilio-Signature`
//! algorithm, voice webhook parameters and their form encoding, Media Streams WebSocket
//! messages and ConversationRelay's messages in both directions, and Twilio's error/warning
//! catalogue; and the schema of dialtone's own capture of that traffic (`capture`).
//!
//! Everything here exists so that dialtone's traffic is indistinguishable from Twilio's
//! to a correct app; the facts each module relies on, and how sure they are, are noted
//! where they are used (see also `docs/twilio-protocol.md` in the shared docs).

pub mod capture;
pub mod dates;
pub mod errors;
pub mod media;
pub mod relay;
pub mod sid;
pub mod signing;
pub mod webhook;
