//! Form and query parameters as the official clients send them: form-encoded, arrays as
//! repeated keys (`StatusCallbackEvent=initiated&StatusCallbackEvent=ringing`), booleans
//! `true`/`false`.

use crate::error::ApiError;

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
