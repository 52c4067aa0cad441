//! TwiML voice documents: parse with quick-xml into typed verbs, validate them the way Twilio
//! does (12100 parse failures, 12200 schema errors), and serialize them back.
//!
//! ```
//! let doc = dialtone_twiml::parse(r#"<Response><Say loop="2">Hi &amp; bye</Say></Response>"#)?;
//! assert_eq!(doc.verbs[0].verb.name(), "Say");
//! assert_eq!(dialtone_twiml::parse(&doc.to_xml())?, doc);
//! # Ok::<(), dialtone_twiml::TwimlError>(())
//! ```
//!
//! # Layout
//! - `model`: the typed document ([`Document`], [`Node`], [`Verb`] and one struct per verb).
//! - `error`: [`TwimlError`] and byte-offset → line/column mapping.
//! - `cursor`: quick-xml pull reader; every well-formedness (12100) check lives here.
//! - `attrs`: attribute allow-lists and typed value parsing (12200).
//! - `verbs` / `nouns` / `relay` / `transcription`: the schema layer, one function per
//!   element (`relay`: `<ConversationRelay>`, `transcription`: `<Transcription>`, each with
//!   its model).
//! - `write`: [`Document::to_xml`].
//!
//! # Twilio behaviour choices
//! - Unknown attributes are 12200 (Twilio's 12200 page lists "misspelled or unknown attributes"),
//!   but every attribute Twilio documents for a verb or noun is accepted, even if not simulated.
//! - Verb-specific Twilio warnings (e.g. 13910 for a bad `<Pause length>`) are reported as 12200.
//! - Text directly inside an element-only verb (`<Response>`, `<Gather>`...) is 12200, because
//!   the XML is well-formed; text before or after `<Response>` is 12100.
//! - `<Stream url>` may be `ws://` as well as `wss://` (local testing), or relative.
//! - Unsimulated verbs ([`Verb::Unsupported`]) and nouns (`ConnectTarget::Other`...) are
//!   recognised by name; their attributes and content are not validated.
//! - `<Dial>` nouns keep their attributes as written; the values behind their typed views
//!   ([`DialNoun::conference_options`]...) are validated at parse time, so the views never fail.
//! - An element with more than [`MAX_ATTRIBUTES`] attributes is 12100: the bound keeps
//!   parsing linear in the document's length, whatever the document.

mod attrs;
mod cursor;
mod error;
mod model;
mod nouns;
mod relay;
mod transcription;
mod verbs;
mod write;

pub use cursor::MAX_ATTRIBUTES;
pub use error::TwimlError;
pub use model::{
    Beep, ConferenceOptions, Connect, ConnectTarget, Dial, DialNoun, DialRecording, Document,
    Enqueue, Gather, GatherInput, Method, Node, NounKind, NumberOptions, Pause, Play, QueueOptions,
    Record, Redirect, Reject, RejectReason, Say, Start, StartTarget, Stop, Stream, Task, Track,
    Verb,
};
pub use relay::{ConversationRelay, DEFAULT_LANGUAGE, RelayInput, RelayLanguage};
pub use transcription::{DEFAULT_LANGUAGE_CODE, Transcription};

/// Parse and validate a TwiML voice document.
///
/// Accepts what real apps send: with or without the XML declaration, a leading BOM, any
/// whitespace and comments, CDATA and character/entity references. A document that is not
/// well-formed (or whose root is not `<Response>`) is a [`TwimlError::Parse`] (12100); a
/// well-formed one that breaks TwiML's schema is a [`TwimlError::Schema`] (12200). Like Twilio,
/// which parses before it validates, a well-formedness error anywhere wins over a schema error.
pub fn parse(xml: &str) -> Result<Document, TwimlError> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut cur = cursor::Cursor::new(xml);
    match verbs::document(&mut cur) {
        Ok(doc) => Ok(doc),
        Err(schema @ TwimlError::Schema { .. }) => Err(cur.drain().unwrap_or(schema)),
        Err(parse) => Err(parse),
    }
}
