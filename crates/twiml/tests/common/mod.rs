//! Helpers shared by the integration tests.
// Each test binary compiles this module and uses only some helpers; `pub` is needed across files.
#![allow(dead_code, unreachable_pub)]

use dialtone_twiml::{Document, TwimlError, Verb, parse};

/// Parse or panic with the error.
pub fn ok(xml: &str) -> Document {
    parse(xml).unwrap_or_else(|e| panic!("expected {xml:?} to parse, got {e}"))
}

/// The verbs of a document, without lines.
pub fn verbs(xml: &str) -> Vec<Verb> {
    ok(xml).verbs.into_iter().map(|n| n.verb).collect()
}

/// The single verb of `<Response>{body}</Response>`.
pub fn one(body: &str) -> Verb {
    let mut v = verbs(&format!("<Response>{body}</Response>"));
    assert_eq!(v.len(), 1, "expected one verb in {body:?}");
    v.remove(0)
}

/// Parse and expect failure.
pub fn err(xml: &str) -> TwimlError {
    match parse(xml) {
        Ok(doc) => panic!("expected {xml:?} to fail, got {doc:?}"),
        Err(e) => e,
    }
}

/// Expect a 12100 at (line, column) whose message contains `needle`.
pub fn parse_err(xml: &str, line: u32, column: u32, needle: &str) {
    match err(xml) {
        TwimlError::Parse {
            line: l,
            column: c,
            message,
        } => {
            assert_eq!((l, c), (line, column), "position for {xml:?}: {message}");
            assert!(
                message.contains(needle),
                "message {message:?} lacks {needle:?}"
            );
        }
        other => panic!("expected 12100 for {xml:?}, got {other}"),
    }
}

/// Expect a 12200 on `line` about `element` whose message contains `needle`.
pub fn schema_err(xml: &str, line: u32, element: &str, needle: &str) {
    match err(xml) {
        TwimlError::Schema {
            line: l,
            element: e,
            message,
        } => {
            assert_eq!(l, line, "line for {xml:?}: {message}");
            assert_eq!(e, element, "element for {xml:?}: {message}");
            assert!(
                message.contains(needle),
                "message {message:?} lacks {needle:?}"
            );
        }
        other => panic!("expected 12200 for {xml:?}, got {other}"),
    }
}

/// Schema error for `<Response>{body}</Response>` on line 1.
pub fn body_schema_err(body: &str, element: &str, needle: &str) {
    schema_err(&format!("<Response>{body}</Response>"), 1, element, needle);
}
