//! Twilio error and warning codes that dialtone reports (debugger alerts, fallback
//! `ErrorCode` parameters, REST error bodies), with Twilio's title for each.
//!
//! Titles are copied from Twilio's error pages (`twilio.com/docs/api/errors/{code}`) as
//! stored in the search corpora, except where an entry's comment says otherwise. Note
//! Twilio's own inconsistencies, kept verbatim: "Stream - Websocket - Protocol Error"
//! (lowercase s) and "Internal Failure" (capital F).

/// Whether Twilio logs a code as an error or a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Logged as ERROR.
    Error,
    /// Logged as WARNING.
    Warning,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The numeric code.
    pub code: u16,
    /// Twilio's title for it.
    pub title: &'static str,
    /// ERROR or WARNING, per the code's page.
    pub level: Level,
}

const fn e(code: u16, title: &'static str) -> ErrorCode {
    ErrorCode {
        code,
        title,
        level: Level::Error,
    }
}

const fn w(code: u16, title: &'static str) -> ErrorCode {
    ErrorCode {
        code,
        title,
        level: Level::Warning,
    }
}

/// Every code dialtone knows, sorted by code.
pub const CATALOGUE: &[ErrorCode] = &[
    // HTTP retrieval of TwiML (11xxx).
    e(11100, "Invalid URL format"),
    e(11200, "HTTP retrieval failure"),
    e(11202, "TCP connection refused"),
    // Title from Twilio's error index and a SignalWire copy of Twilio's list.
    e(11203, "HTTP communication total time out triggered"),
    e(11205, "HTTP connection failure"),
    e(11206, "HTTP protocol violation"),
    e(11210, "HTTP bad host name"),
    e(11215, "HTTP too many redirects"),
    // Twilio now documents 11217 for a 4xx/5xx webhook answer (11200 remains generic).
    e(11217, "HTTP error response code"),
    e(11220, "SSL/TLS Handshake Error"),
    e(11750, "TwiML response body too large"),
    // TwiML documents (12xxx).
    e(12100, "Document parse failure"),
    w(12200, "Schema validation warning"),
    e(12300, "Invalid Content-Type"),
    e(12400, "Internal Failure"),
    // Status callbacks.
    w(15003, "Call Progress: Warning Response to Callback URL"),
    // REST API (20xxx/21xxx).
    e(20003, "Permission Denied"),
    // Unverified: only an API example with message "Not Found" for 20404 was found.
    e(20404, "Not Found"),
    e(20429, "Too many requests"),
    // Page heading; the page body says "No 'To' number specified".
    e(21201, "No Called number specified"),
    e(21205, "Invalid URL"),
    e(21210, "'From' phone number not verified"),
    e(21211, "Invalid 'To' Phone Number"),
    // Unverified: by analogy with 21211; no copy of the 21212 page was found.
    e(21212, "Invalid 'From' Phone Number"),
    // Page heading; the page body says "'From' phone number is required".
    e(21213, "Caller phone number is required"),
    e(21220, "Invalid call state"),
    // Media Streams (319xx).
    e(31901, "Stream - WebSocket - Connection Timeout"),
    e(31902, "Stream - WebSocket - Connection Refused"),
    e(31903, "Stream - WebSocket - Connection Broken Pipe"),
    // From a Rust crate generated from Twilio's error list; no copy of the page itself.
    e(31904, "Stream - WebSocket - Host Unreachable"),
    e(31920, "Stream - WebSocket - Handshake Error"),
    e(31921, "Stream - WebSocket - Close Error"),
    e(31922, "Stream - WebSocket - URL Schema Not Supported"),
    e(31923, "Stream - WebSocket - Malformed URL"),
    e(31924, "Stream - Websocket - Protocol Error"),
    w(31930, "Stream - Media - Buffer Overflow"),
    w(31950, "Stream - Protocol - Malformed Message"),
    w(31951, "Stream - Protocol - Invalid Message"),
    // ConversationRelay (641xx).
    e(
        64102,
        "ConversationRelay: Unable to Connect to Websocket URL",
    ),
    e(64105, "ConversationRelay: Websocket ended"),
    e(64106, "ConversationRelay: Invalid argument"),
    e(64107, "ConversationRelay: Invalid Message Received"),
    e(64108, "ConversationRelay: RTP Timeout"),
    e(64114, "ConversationRelay: ASR provider connection error"),
];

/// Twilio's title for `code`, if dialtone knows the code.
pub fn title(code: u16) -> Option<&'static str> {
    lookup(code).map(|entry| entry.title)
}

/// Whether `code` is an error or a warning, if known.
pub fn level(code: u16) -> Option<Level> {
    lookup(code).map(|entry| entry.level)
}

/// The full catalogue entry for `code`.
pub fn lookup(code: u16) -> Option<&'static ErrorCode> {
    CATALOGUE
        .binary_search_by_key(&code, |entry| entry.code)
        .ok()
        .map(|i| &CATALOGUE[i])
}

/// `more_info` URL as Twilio puts it in REST error bodies:
/// `https://www.twilio.com/docs/errors/{code}`.
pub fn more_info(code: u16) -> String {
    format!("https://www.twilio.com/docs/errors/{code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_and_unique() {
        assert!(CATALOGUE.windows(2).all(|pair| pair[0].code < pair[1].code));
    }

    #[test]
    fn known_titles() {
        assert_eq!(title(11200), Some("HTTP retrieval failure"));
        assert_eq!(title(31951), Some("Stream - Protocol - Invalid Message"));
        assert_eq!(level(31951), Some(Level::Warning));
        assert_eq!(level(12100), Some(Level::Error));
        assert_eq!(title(1), None);
        assert_eq!(more_info(21220), "https://www.twilio.com/docs/errors/21220");
    }
}
