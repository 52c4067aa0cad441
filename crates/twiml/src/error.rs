//! Twilio's two TwiML failure classes: 12100 (not a parseable document) and 12200 (schema).

/// Why a TwiML document was refused, carrying the Twilio error code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwimlError {
    /// 12100 Document parse failure: not well-formed XML, root is not `<Response>`, unescaped
    /// `&`, empty body, text outside the root element...
    #[error("12100 document parse failure at line {line}, column {column}: {message}")]
    Parse {
        /// 1-based line where the XML reader failed.
        line: u32,
        /// 1-based column (in characters) where the XML reader failed.
        column: u32,
        /// What went wrong, in plain words.
        message: String,
    },
    /// 12200 Schema validation: unknown verb, bad nesting, bad or unknown attribute value,
    /// missing required attribute or text.
    #[error("12200 schema validation error at line {line}: <{element}>: {message}")]
    Schema {
        /// 1-based line of the offending element's start tag.
        line: u32,
        /// The offending element's name, as written.
        element: String,
        /// What went wrong, in plain words.
        message: String,
    },
}

impl TwimlError {
    /// The Twilio error code: 12100 for [`TwimlError::Parse`], 12200 for [`TwimlError::Schema`].
    pub fn code(&self) -> u16 {
        match self {
            TwimlError::Parse { .. } => 12100,
            TwimlError::Schema { .. } => 12200,
        }
    }

    /// The 1-based line the error refers to.
    pub fn line(&self) -> u32 {
        match self {
            TwimlError::Parse { line, .. } | TwimlError::Schema { line, .. } => *line,
        }
    }

    /// A 12100 error at byte offset `pos` of `src`; line and column are derived here because
    /// errors are rare and a scan of the prefix is cheaper than tracking columns on every event.
    pub(crate) fn parse_at(src: &str, pos: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_col(src, pos);
        TwimlError::Parse {
            line,
            column,
            message: message.into(),
        }
    }

    /// A 12200 error about `element` whose start tag is on `line`.
    pub(crate) fn schema(line: u32, element: &str, message: impl Into<String>) -> Self {
        TwimlError::Schema {
            line,
            element: element.to_owned(),
            message: message.into(),
        }
    }
}

/// 1-based (line, column) of byte offset `pos`; the column counts characters, not bytes.
pub(crate) fn line_col(src: &str, pos: usize) -> (u32, u32) {
    let mut pos = pos.min(src.len());
    // Offsets from the reader are always on char boundaries, but stay safe if one is not.
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &src[..pos];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (saturate(line), saturate(column))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let src = "ab\ncdé\nf";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 2), (1, 3));
        assert_eq!(line_col(src, 3), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(src, 7), (2, 4));
        assert_eq!(line_col(src, 8), (3, 1));
        assert_eq!(line_col(src, 99), (3, 2));
    }

    #[test]
    fn codes_and_lines() {
        let p = TwimlError::parse_at("a\nb", 2, "x");
        assert_eq!((p.code(), p.line()), (12100, 2));
        let s = TwimlError::schema(7, "Say", "y");
        assert_eq!((s.code(), s.line()), (12200, 7));
        assert_eq!(
            s.to_string(),
            "12200 schema validation error at line 7: <Say>: y"
        );
    }
}
