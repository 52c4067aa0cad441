//! Attribute validation: every documented attribute of an element is accepted, anything else is
//! a 12200 (Twilio's schema rejects "misspelled or unknown attributes"), and typed getters turn
//! values into numbers, booleans and methods with plain-words errors.

use crate::cursor::Elem;
use crate::error::TwimlError;
use crate::model::Method;

/// The validated attributes of one element.
pub(crate) struct Attrs<'e, 'a> {
    elem: &'e Elem<'a>,
}

impl<'e, 'a> Attrs<'e, 'a> {
    /// Check `elem`'s attribute names against `allowed` and every `method`/`*Method` value.
    ///
    /// Namespace declarations (`xmlns`, `xmlns:*`) are always allowed: they are XML plumbing,
    /// not TwiML attributes.
    pub(crate) fn check(elem: &'e Elem<'a>, allowed: &[&str]) -> Result<Self, TwimlError> {
        let attrs = Self { elem };
        for attr in &elem.attrs {
            let key = attr.key;
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            if !allowed.contains(&key) {
                let hint = allowed
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(key))
                    .map(|a| format!(" (attribute names are case-sensitive: did you mean {a}?)"))
                    .unwrap_or_default();
                return Err(attrs.err(format!("unknown attribute {key} on <{}>{hint}", elem.name)));
            }
            // Every TwiML method attribute takes GET or POST; checking them all here covers
            // the ones the model does not keep (waitMethod, amdStatusCallbackMethod...).
            if key == "method" || key.ends_with("Method") {
                attrs.parse_method(key, &attr.value)?;
            }
        }
        Ok(attrs)
    }

    /// Attributes already checked when their document was parsed, read again for a typed view.
    pub(crate) fn checked(elem: &'e Elem<'a>) -> Self {
        Self { elem }
    }

    /// The raw (unescaped) value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.elem
            .attrs
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_ref())
    }

    /// `key` as an owned string.
    pub(crate) fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    /// A 12200 error about this element.
    pub(crate) fn err(&self, message: impl Into<String>) -> TwimlError {
        TwimlError::schema(self.elem.line, self.elem.name, message)
    }

    /// `key` as GET/POST (case-insensitive), defaulting to POST.
    pub(crate) fn method(&self, key: &str) -> Result<Method, TwimlError> {
        match self.get(key) {
            None => Ok(Method::Post),
            Some(v) => self.parse_method(key, v),
        }
    }

    fn parse_method(&self, key: &str, value: &str) -> Result<Method, TwimlError> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("GET") {
            Ok(Method::Get)
        } else if v.eq_ignore_ascii_case("POST") {
            Ok(Method::Post)
        } else {
            Err(self.err(format!("attribute {key}=\"{value}\" is not GET or POST")))
        }
    }

    /// `key` as a whole number of at least `min`, or `default` when absent.
    pub(crate) fn uint(&self, key: &str, default: u32, min: u32) -> Result<u32, TwimlError> {
        Ok(self.opt_uint(key, min)?.unwrap_or(default))
    }

    /// `key` as a whole number of at least `min`, if present.
    pub(crate) fn opt_uint(&self, key: &str, min: u32) -> Result<Option<u32>, TwimlError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        // XML Schema integer types allow surrounding whitespace, so Twilio's validator does too.
        let trimmed = value.trim();
        let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(format!("attribute {key}=\"{value}\" is not a whole number")));
        }
        let n = digits
            .parse::<u32>()
            .map_err(|_| self.err(format!("attribute {key}=\"{value}\" is too large")))?;
        if n < min {
            return Err(self.err(format!(
                "attribute {key}=\"{value}\" must be at least {min}"
            )));
        }
        Ok(Some(n))
    }

    /// `key` as `true`/`false` (case-insensitive; XML Schema's `1`/`0` too), or `default`.
    pub(crate) fn boolean(&self, key: &str, default: bool) -> Result<bool, TwimlError> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        let v = value.trim();
        if v.eq_ignore_ascii_case("true") || v == "1" {
            Ok(true)
        } else if v.eq_ignore_ascii_case("false") || v == "0" {
            Ok(false)
        } else {
            Err(self.err(format!("attribute {key}=\"{value}\" is not true or false")))
        }
    }

    /// `key` restricted to one of `choices` (exact match), if present.
    pub(crate) fn choice(&self, key: &str, choices: &[&str]) -> Result<Option<String>, TwimlError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        if choices.contains(&value) {
            Ok(Some(value.to_owned()))
        } else {
            Err(self.err(format!(
                "attribute {key}=\"{value}\" must be one of {}",
                choices.join(", ")
            )))
        }
    }

    /// `key` as space-separated words, each one of `choices` (exact match), deduplicated in the
    /// order written; `default` when absent or blank.
    pub(crate) fn words(
        &self,
        key: &str,
        choices: &[&str],
        default: &[&str],
    ) -> Result<Vec<String>, TwimlError> {
        let Some(value) = self.get(key).filter(|v| !v.trim().is_empty()) else {
            return Ok(default.iter().map(|&w| w.to_owned()).collect());
        };
        let mut words: Vec<String> = Vec::new();
        for word in value.split_whitespace() {
            if !choices.contains(&word) {
                return Err(self.err(format!(
                    "attribute {key}=\"{value}\": {word} is not one of {}",
                    choices.join(", ")
                )));
            }
            if !words.iter().any(|w| w == word) {
                words.push(word.to_owned());
            }
        }
        Ok(words)
    }

    /// `key` whose every character is one of `keys` (so `""` passes), at most `max_len` long;
    /// `default` when absent.
    pub(crate) fn keys(
        &self,
        key: &str,
        default: &str,
        keys: &str,
        max_len: Option<usize>,
    ) -> Result<String, TwimlError> {
        let Some(value) = self.get(key) else {
            return Ok(default.to_owned());
        };
        let bad_char = value.chars().find(|c| !keys.contains(*c));
        let too_long = max_len.is_some_and(|max| value.chars().count() > max);
        if let Some(c) = bad_char {
            return Err(self.err(format!(
                "attribute {key}=\"{value}\" contains '{c}'; allowed keys are {keys}"
            )));
        }
        if too_long {
            return Err(self.err(format!("attribute {key}=\"{value}\" must be a single key")));
        }
        Ok(value.to_owned())
    }
}
