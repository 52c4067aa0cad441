//! `X-Twilio-Signature` checks shared by the webhook and the WebSocket upgrade: rebuild
//! the URL Twilio signed from the configured public URL, validate, and turn a failure
//! into the one 403 response both routes give.

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use dialtone_protocol::signing;

use crate::BotConfig;

/// Why a request was refused. Every variant answers the same 403 so a prober learns
/// nothing; the variant is only logged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejection {
    /// No `X-Twilio-Signature` header (or not valid UTF-8).
    #[error("missing X-Twilio-Signature")]
    Missing,
    /// The header does not match the URL and parameters.
    #[error("X-Twilio-Signature does not match {url}")]
    Mismatch {
        /// The URL the signature was checked against, for the log.
        url: String,
    },
    /// No `public_url` configured and no `Host` header to rebuild the URL from.
    #[error("no public_url configured and no Host header")]
    NoHost,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        tracing::warn!(reason = %self, "request refused");
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "invalid X-Twilio-Signature",
        )
            .into_response()
    }
}

/// The HTTP base URL without a trailing slash: `public_url`, or `http://{Host}`.
pub(crate) fn http_base(config: &BotConfig, headers: &HeaderMap) -> Result<String, Rejection> {
    if let Some(url) = &config.public_url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .ok_or(Rejection::NoHost)?;
    Ok(format!("http://{host}"))
}

/// The WebSocket twin of an HTTP base: `https://` → `wss://`, `http://` → `ws://`;
/// anything else (already `ws(s)://`) is kept.
pub(crate) fn ws_base(http_base: &str) -> String {
    let lower = http_base.get(..8).unwrap_or(http_base).to_ascii_lowercase();
    if lower.starts_with("https://") {
        format!("wss://{}", &http_base[8..])
    } else if lower.starts_with("http://") {
        format!("ws://{}", &http_base[7..])
    } else {
        http_base.to_owned()
    }
}

/// `base` + the request's path and query, the URL Twilio put on the wire and signed.
pub(crate) fn request_url(base: &str, uri: &Uri) -> String {
    match uri.query() {
        Some(q) => format!("{base}{}?{q}", uri.path()),
        None => format!("{base}{}", uri.path()),
    }
}

/// Validates the request's `X-Twilio-Signature` against `url` and `params`.
pub(crate) fn check(
    config: &BotConfig,
    headers: &HeaderMap,
    url: String,
    params: &[(String, String)],
) -> Result<(), Rejection> {
    let given = headers
        .get(signing::HEADER)
        .and_then(|h| h.to_str().ok())
        .ok_or(Rejection::Missing)?;
    if signing::validate(&config.auth_token, &url, params, given) {
        Ok(())
    } else {
        Err(Rejection::Mismatch { url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_base_maps_schemes() {
        assert_eq!(ws_base("https://bot.example.com"), "wss://bot.example.com");
        assert_eq!(ws_base("HTTP://127.0.0.1:8080/x"), "ws://127.0.0.1:8080/x");
        assert_eq!(ws_base("wss://already"), "wss://already");
        assert_eq!(ws_base("h"), "h");
    }

    #[test]
    fn base_prefers_public_url() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:9".parse().expect("header"));
        let mut config = BotConfig::default();
        assert_eq!(
            http_base(&config, &headers).expect("base"),
            "http://127.0.0.1:9"
        );
        config.public_url = Some("https://bot.example.com/".into());
        assert_eq!(
            http_base(&config, &headers).expect("base"),
            "https://bot.example.com"
        );
        config.public_url = None;
        assert!(matches!(
            http_base(&config, &HeaderMap::new()),
            Err(Rejection::NoHost)
        ));
    }

    #[test]
    fn request_url_keeps_query() {
        let uri: Uri = "/voice?From=%2B1&x=1".parse().expect("uri");
        assert_eq!(
            request_url("http://h", &uri),
            "http://h/voice?From=%2B1&x=1"
        );
    }
}
