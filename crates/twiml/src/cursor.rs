//! A thin pull cursor over quick-xml that enforces XML well-formedness (12100) and hands the
//! schema layer simplified, borrowed events with source lines attached.
//!
//! All 12100 checks live here, so draining the cursor after a schema error still finds a later
//! well-formedness error, which Twilio reports instead (it parses before it validates).

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::errors::{Error as XmlError, IllFormedError};
use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::error::TwimlError;

/// Most attributes one element may carry (more is 12100). Twilio documents about 25 at most
/// (`<Conference>`), so real TwiML is far below it. The cap keeps parsing linear: quick-xml
/// checks each attribute name against every earlier one of its element, which is quadratic in
/// the count (a 1 MB tag of attributes took seconds), and bounded by the cap it is a constant
/// per element.
pub const MAX_ATTRIBUTES: usize = 100;

/// One attribute: the name borrowed from the source, the value unescaped (borrowed when it
/// contained no references).
#[derive(Debug)]
pub(crate) struct Attr<'a> {
    /// Attribute name exactly as written (names are case-sensitive in TwiML).
    pub key: &'a str,
    /// Unescaped value.
    pub value: Cow<'a, str>,
}

/// A start tag (or a self-closed one, which is followed by a synthetic [`Ev::Close`]).
#[derive(Debug)]
pub(crate) struct Elem<'a> {
    /// Element name exactly as written.
    pub name: &'a str,
    /// 1-based line of the `<`.
    pub line: u32,
    /// Attributes in document order.
    pub attrs: Vec<Attr<'a>>,
}

/// Simplified XML events; comments, processing instructions and the declaration are dropped.
#[derive(Debug)]
pub(crate) enum Ev<'a> {
    /// A start tag.
    Open(Elem<'a>),
    /// The end of the most recently opened element.
    Close,
    /// A run of character data: text, CDATA content, or one resolved entity/char reference.
    Text(Cow<'a, str>),
    /// End of input after a complete `<Response>`.
    Eof,
}

/// Pull cursor over a whole document held in memory.
pub(crate) struct Cursor<'a> {
    src: &'a str,
    reader: Reader<&'a [u8]>,
    /// Names of the open elements; its length is the depth.
    open: Vec<&'a str>,
    root_seen: bool,
    /// A self-closed element was returned as `Open`; its `Close` is due next.
    pending_close: bool,
    /// Lines are counted incrementally: `line` is the line number at byte `counted_to`.
    counted_to: usize,
    line: u32,
}

impl<'a> Cursor<'a> {
    /// A cursor over `src` (a leading UTF-8 BOM must already be removed).
    pub(crate) fn new(src: &'a str) -> Self {
        let mut reader = Reader::from_str(src);
        let config = reader.config_mut();
        // Twilio's XML parser rejects `--` inside comments and mismatched end tags.
        config.check_comments = true;
        config.check_end_names = true;
        Self {
            src,
            reader,
            open: Vec::new(),
            root_seen: false,
            pending_close: false,
            counted_to: 0,
            line: 1,
        }
    }

    /// Next event, or the 12100 error that stops parsing.
    pub(crate) fn next(&mut self) -> Result<Ev<'a>, TwimlError> {
        if self.pending_close {
            self.pending_close = false;
            self.open.pop();
            return Ok(Ev::Close);
        }
        loop {
            let pos = self.position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(err) => return Err(self.xml_error(&err)),
            };
            match event {
                Event::Start(e) => return self.open_element(&e, pos, false),
                Event::Empty(e) => return self.open_element(&e, pos, true),
                Event::End(_) => {
                    // quick-xml has already checked the name against its own stack.
                    self.open.pop();
                    return Ok(Ev::Close);
                }
                Event::Text(t) => {
                    let text = t
                        .xml10_content()
                        .map_err(|e| self.parse_err(pos, format!("invalid text: {e}")))?;
                    if let Some(ev) = self.text(text, pos)? {
                        return Ok(ev);
                    }
                }
                Event::CData(c) => {
                    let text = c
                        .xml10_content()
                        .map_err(|e| self.parse_err(pos, format!("invalid CDATA: {e}")))?;
                    if let Some(ev) = self.text(text, pos)? {
                        return Ok(ev);
                    }
                }
                Event::GeneralRef(r) => {
                    let text = self.resolve_ref(&r, pos)?;
                    if let Some(ev) = self.text(Cow::Owned(text), pos)? {
                        return Ok(ev);
                    }
                }
                Event::Decl(_) | Event::DocType(_) if !self.open.is_empty() || self.root_seen => {
                    return Err(self.parse_err(
                        pos,
                        "an XML declaration or DOCTYPE is only allowed before <Response>",
                    ));
                }
                Event::Decl(_) | Event::DocType(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return self.eof(pos),
            }
        }
    }

    /// Consume events up to and including the `Close` of the element just opened, ignoring
    /// content (well-formedness is still checked).
    pub(crate) fn skip_element(&mut self) -> Result<(), TwimlError> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next()? {
                Ev::Open(_) => depth += 1,
                Ev::Close => depth -= 1,
                Ev::Text(_) => {}
                Ev::Eof => break,
            }
        }
        Ok(())
    }

    /// Read to the end of input; returns the first 12100 error found, if any.
    pub(crate) fn drain(&mut self) -> Option<TwimlError> {
        loop {
            match self.next() {
                Ok(Ev::Eof) => return None,
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
    }

    /// Byte offset where the next event starts.
    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    /// Line number of byte `pos`; positions only move forward, so counting is amortised O(n).
    fn line_at(&mut self, pos: usize) -> u32 {
        let pos = pos.min(self.src.len());
        if pos > self.counted_to {
            let newlines = self.src.as_bytes()[self.counted_to..pos]
                .iter()
                .filter(|&&b| b == b'\n');
            self.line = self
                .line
                .saturating_add(u32::try_from(newlines.count()).unwrap_or(u32::MAX));
            self.counted_to = pos;
        }
        self.line
    }

    fn parse_err(&self, pos: usize, message: impl Into<String>) -> TwimlError {
        TwimlError::parse_at(self.src, pos, message)
    }

    /// Byte offset of `part` inside `src`; `part` must be a slice of `src`, which holds for
    /// everything quick-xml borrows from a `Reader::from_str` input.
    fn offset_of(&self, part: &[u8]) -> usize {
        let offset = (part.as_ptr() as usize).wrapping_sub(self.src.as_ptr() as usize);
        debug_assert!(
            offset <= self.src.len(),
            "slice not borrowed from the source"
        );
        offset.min(self.src.len())
    }

    /// Re-borrow `part` (a slice of the source) with the source's lifetime.
    fn source_str(&self, part: &[u8]) -> &'a str {
        let start = self.offset_of(part);
        self.src.get(start..start + part.len()).unwrap_or("")
    }

    fn open_element(
        &mut self,
        e: &BytesStart<'_>,
        pos: usize,
        empty: bool,
    ) -> Result<Ev<'a>, TwimlError> {
        let name = self.source_str(e.name().as_ref());
        if self.open.is_empty() {
            if self.root_seen {
                return Err(self.parse_err(
                    pos,
                    format!("only one root element is allowed, found <{name}> after </Response>"),
                ));
            }
            if name != "Response" {
                return Err(self.parse_err(
                    pos,
                    format!("root element must be <Response>, found <{name}>"),
                ));
            }
            self.root_seen = true;
        }
        let attrs = self.attributes(e, name, pos)?;
        let line = self.line_at(pos);
        self.open.push(name);
        self.pending_close = empty;
        Ok(Ev::Open(Elem { name, line, attrs }))
    }

    fn attributes(
        &self,
        e: &BytesStart<'_>,
        name: &str,
        tag_pos: usize,
    ) -> Result<Vec<Attr<'a>>, TwimlError> {
        let mut attrs = Vec::new();
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.attr_error(&err, tag_pos))?;
            let key = self.source_str(attr.key.as_ref());
            // Stop at the first attribute over the cap: nothing after it is read.
            if attrs.len() == MAX_ATTRIBUTES {
                return Err(self.parse_err(
                    self.offset_of(attr.key.as_ref()),
                    format!("<{name}> has more than {MAX_ATTRIBUTES} attributes"),
                ));
            }
            let raw = self.source_str(&attr.value);
            let value_pos = self.offset_of(&attr.value);
            if let Some(i) = raw.find('<') {
                return Err(self.parse_err(
                    value_pos + i,
                    format!("'<' is not allowed in the value of attribute {key} (write &lt;)"),
                ));
            }
            let value = if raw.contains('&') {
                let unescaped = quick_xml::escape::unescape(raw)
                    .map_err(|err| self.escape_error(&err, value_pos))?;
                Cow::Owned(unescaped.into_owned())
            } else {
                Cow::Borrowed(raw)
            };
            attrs.push(Attr { key, value });
        }
        Ok(attrs)
    }

    fn attr_error(&self, err: &AttrError, tag_pos: usize) -> TwimlError {
        // AttrError positions are relative to the tag content, which starts after the `<`.
        let (rel, message) = match err {
            AttrError::ExpectedEq(p) => (*p, "attribute name must be followed by '='".to_owned()),
            AttrError::ExpectedValue(p) => {
                (*p, "'=' must be followed by a quoted value".to_owned())
            }
            AttrError::UnquotedValue(p) => (*p, "attribute values must be quoted".to_owned()),
            AttrError::ExpectedQuote(p, q) => (
                *p,
                format!("attribute value is missing its closing {}", char::from(*q)),
            ),
            AttrError::Duplicated(p, _) => (*p, "duplicate attribute".to_owned()),
        };
        self.parse_err(tag_pos + 1 + rel, message)
    }

    fn escape_error(&self, err: &EscapeError, base: usize) -> TwimlError {
        match err {
            EscapeError::UnterminatedEntity(range) => self.parse_err(
                base + range.start,
                "unescaped '&' (write &amp; for a literal ampersand)",
            ),
            EscapeError::UnrecognizedEntity(range, name) => self.parse_err(
                base + range.start.saturating_sub(1),
                format!("undefined entity &{name}; (write &amp; for a literal ampersand)"),
            ),
            EscapeError::InvalidCharRef(e) => {
                self.parse_err(base, format!("invalid character reference: {e}"))
            }
        }
    }

    /// Resolve `&name;` / `&#N;` in text; only XML's five predefined entities exist in TwiML.
    fn resolve_ref(&self, r: &BytesRef<'_>, pos: usize) -> Result<String, TwimlError> {
        match r.resolve_char_ref() {
            Ok(Some(c)) => return Ok(c.to_string()),
            Ok(None) => {}
            Err(e) => return Err(self.parse_err(pos, format!("invalid character reference: {e}"))),
        }
        let name = self.source_str(r);
        let text = match name {
            "lt" => "<",
            "gt" => ">",
            "amp" => "&",
            "apos" => "'",
            "quot" => "\"",
            _ => {
                return Err(self.parse_err(
                    pos,
                    format!("undefined entity &{name}; (write &amp; for a literal ampersand)"),
                ));
            }
        };
        Ok(text.to_owned())
    }

    /// Character data: inside an element it is an event; outside only whitespace may appear.
    fn text(&self, text: Cow<'a, str>, pos: usize) -> Result<Option<Ev<'a>>, TwimlError> {
        if !self.open.is_empty() {
            return Ok(Some(Ev::Text(text)));
        }
        match text.find(|c: char| !c.is_whitespace()) {
            None => Ok(None),
            Some(i) => Err(self.parse_err(
                pos + i,
                "text is not allowed outside the <Response> element",
            )),
        }
    }

    fn eof(&self, pos: usize) -> Result<Ev<'a>, TwimlError> {
        if let Some(name) = self.open.last() {
            return Err(self.parse_err(
                pos,
                format!("unexpected end of document: <{name}> is not closed"),
            ));
        }
        if !self.root_seen {
            return Err(self.parse_err(pos, "empty document: expected a <Response> element"));
        }
        Ok(Ev::Eof)
    }

    fn xml_error(&self, err: &XmlError) -> TwimlError {
        let pos = usize::try_from(self.reader.error_position()).unwrap_or(usize::MAX);
        let message = match err {
            XmlError::IllFormed(IllFormedError::UnclosedReference) => {
                "unescaped '&' (write &amp; for a literal ampersand)".to_owned()
            }
            XmlError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
                format!("mismatched end tag: expected </{expected}>, found </{found}>")
            }
            XmlError::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
                format!("end tag </{name}> has no matching start tag")
            }
            other => other.to_string(),
        };
        self.parse_err(pos, message)
    }
}
