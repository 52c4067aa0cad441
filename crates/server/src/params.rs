//! Form and query parameters as the official clients send them: form-encoded, arrays as
//! repeated keys (`StatusCallbackEvent=initiated&StatusCallbackEvent=ringing`), booleans
//! `true`/`false`.

use crate::error::ApiError;

/// Largest request body served; larger is 413/20413. Every parameter Twilio takes fits many
/// times over (the largest, `Twiml`, is 4000 characters: 36 KB percent-encoded at worst), and
/// the bound keeps the work a request can ask for small.
pub const MAX_BODY: usize = 64 * 1024;

/// Longest `Twiml` parameter, in characters: Twilio's limit, error 32018 "Twiml size
/// exceeded maximum allowed value of 4000 characters" (twilio.com/docs/api/errors/32018).
pub const MAX_TWIML: usize = 4000;

/// Decoded `name=value` pairs in their order, repeats kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(pub(crate) Vec<(String, String)>);

impl Params {
    /// Parses a form body or a query string.
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        Self(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// True when `name` was sent at all (even empty: `StatusCallback=` clears it).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// Every value of `name`; a single value may also hold several separated by spaces or
    /// commas, as some clients send `StatusCallbackEvent`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| {
                v.split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// `true`/`false` (any case); absent is `default`.
    pub(crate) fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(
                21218,
                format!("Invalid value for {name}: {v}"),
            )),
        }
    }

    /// `GET`/`POST` (any case), absent is POST; anything else is `code`.
    pub(crate) fn method(&self, name: &str) -> Result<dialtone_call::HttpMethod, ApiError> {
        match self.get(name) {
            None => Ok(dialtone_call::HttpMethod::Post),
            Some(m) => crate::config::parse_method(m).ok_or_else(|| {
                ApiError::invalid(21204, format!("{name} is not a valid HTTP method: {m}"))
            }),
        }
    }

    /// The `Twiml` parameter, checked: at most [`MAX_TWIML`] characters (32018), then a valid
    /// document (12100/12200). Parsing runs on a blocking thread, off the async runtime.
    pub(crate) async fn twiml(&self) -> Result<Option<String>, ApiError> {
        let Some(t) = self.get("Twiml") else {
            return Ok(None);
        };
        if t.chars().count() > MAX_TWIML {
            return Err(ApiError::invalid(
                32018,
                format!("Twiml size exceeded maximum allowed value of {MAX_TWIML} characters"),
            ));
        }
        let t = t.to_string();
        tokio::task::spawn_blocking(move || dialtone_twiml::parse(&t).map(|_| t))
            .await
            .map_err(|e| ApiError::Internal(format!("Twiml check: {e}")))?
            .map(Some)
            .map_err(|e| ApiError::invalid(e.code(), format!("Twiml is invalid: {e}")))
    }

    /// An optional URL parameter, checked (21205 otherwise).
    pub(crate) fn url(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(u) if crate::format::is_http_url(u) => Ok(Some(u.to_string())),
            Some(u) => Err(ApiError::invalid(
                21205,
                format!("{name} is not a valid URL: {u}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_spaced_arrays() {
        let p = Params::parse(
            b"StatusCallbackEvent=initiated&StatusCallbackEvent=ringing+answered&Record=true&X=",
        );
        assert_eq!(
            p.all("StatusCallbackEvent"),
            ["initiated", "ringing", "answered"]
        );
        assert!(p.bool("Record", false).unwrap());
        assert!(p.has("X") && p.get("X").is_none());
        assert!(p.url("X").unwrap().is_none());
        assert!(Params::parse(b"Url=nope").url("Url").is_err());
    }
}
