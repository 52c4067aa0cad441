//! Every REST error the server answers with, turned into Twilio's JSON error body by one
//! `IntoResponse`: `{"code","message","more_info","status"}` — the legacy shape both
//! official SDKs parse into `TwilioRestException` / `RestException`. Internal causes never
//! reach the client: they ride in a response extension to [`twilio_errors`], which logs them.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dialtone_protocol::errors::more_info;
use serde_json::json;

/// A REST API error with Twilio's code and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong credentials, or an account SID in the path that is not theirs.
    #[error("authenticate")]
    Unauthorized,
    /// No such resource (20404); `path` is the request path.
    #[error("not found: {path}")]
    NotFound {
        /// The path that was requested.
        path: String,
    },
    /// A bad parameter (21xxx) or a request the resource's state refuses (21220).
    #[error("{code}: {message}")]
    Invalid {
        /// Twilio's code.
        code: u16,
        /// Twilio's message.
        message: String,
    },
    /// The method is not allowed on this resource (20004).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many calls queued (20429).
    #[error("too many requests")]
    TooManyRequests,
    /// A request refused before any handler: a body or URI too large, a malformed path or
    /// body, an unknown method (see [`twilio_errors`]).
    #[error("{status}: {message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// Twilio's code for it.
        code: u16,
        /// What was wrong.
        message: String,
    },
    /// A fault of the server's own; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with `code` and `message`.
    pub fn invalid(code: u16, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// HTTP status, Twilio code and message, as sent.
    fn parts(&self) -> (StatusCode, u16, String) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, 20003, "Authenticate".into()),
            Self::NotFound { path } => (
                StatusCode::NOT_FOUND,
                20404,
                format!("The requested resource {path} was not found"),
            ),
            Self::Invalid { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone()),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                20004,
                "Method not allowed".into(),
            ),
            Self::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                20429,
                "Too Many Requests".into(),
            ),
            Self::Refused {
                status,
                code,
                message,
            } => (*status, *code, message.clone()),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "An internal server error has occurred".into(),
            ),
        }
    }
}

/// The cause of a 500, handed from the response to [`twilio_errors`].
#[derive(Debug, Clone)]
struct InternalCause(String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let body = json!({
            "code": code,
            "message": message,
            "more_info": more_info(code),
            "status": status.as_u16(),
        });
        let mut resp = (status, Json(body)).into_response();
        match self {
            Self::Unauthorized => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Twilio API\""),
                );
            }
            Self::Internal(cause) => {
                resp.extensions_mut().insert(InternalCause(cause));
            }
            _ => {}
        }
        resp
    }
}

/// Longest request URI (path and query) served; longer is 414. Twilio's URIs are short (a
/// list's filters and paging); the bound keeps every 414 in Twilio's shape (hyper itself
/// answers an empty 414 past 64 KB).
pub const MAX_URI: usize = 8 * 1024;

/// Middleware, outermost: refuses over-long URIs, turns every error response that is not
/// already Twilio's JSON (axum's rejections: 400 bad path, 405, 413 body too large, 415…)
/// into it, logs the internal cause of every 500 and a debug line for other errors.
pub async fn twilio_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let resp = if uri_len > MAX_URI {
        ApiError::Refused {
            status: StatusCode::URI_TOO_LONG,
            // Twilio documents no code for 414; 20414 follows its 20403/20404/20413/20429.
            code: 20414,
            message: format!("URI too long: {uri_len} bytes, at most {MAX_URI}"),
        }
        .into_response()
    } else {
        reshape(next.run(req).await).await
    };
    if let Some(InternalCause(cause)) = resp.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, %cause, "internal error");
    } else if resp.status().is_client_error() {
        tracing::debug!(%method, %path, status = resp.status().as_u16(), "client error");
    }
    resp
}

/// An error response in another shape (axum's plain-text rejections, empty 405s) as Twilio's
/// JSON error with the same status; other responses unchanged.
async fn reshape(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (code, what) = match status.as_u16() {
        400 => (20001, "Bad request"),
        401 => (20003, "Authenticate"),
        403 => (20403, "Forbidden"),
        404 => (20404, "Not found"),
        405 => (20004, "Method not allowed"),
        // twilio.com/docs/api/errors/20413: Request Entity Too Large.
        413 => (20413, "Request Entity Too Large"),
        415 => (20415, "Unsupported media type"),
        429 => (20429, "Too Many Requests"),
        _ if status.is_server_error() => (20500, "An internal server error has occurred"),
        other => (20000 + other, "Request refused"),
    };
    // axum's rejection text says what was wrong ("Cannot parse `x` to a `u64`"); bounded.
    let detail = axum::body::to_bytes(resp.into_body(), 1024)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty());
    let message = match detail {
        Some(d) if status != StatusCode::UNAUTHORIZED => format!("{what}: {d}"),
        _ => what.to_string(),
    };
    ApiError::Refused {
        status,
        code,
        message,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (u16, serde_json::Value, bool) {
        let resp = e.into_response();
        let status = resp.status().as_u16();
        let has_cause = resp.extensions().get::<InternalCause>().is_some();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), has_cause)
    }

    #[tokio::test]
    async fn shapes_are_twilios() {
        let (status, v, _) = body(ApiError::Unauthorized).await;
        assert_eq!(status, 401);
        assert_eq!(
            v,
            json!({"code":20003,"message":"Authenticate",
                   "more_info":"https://www.twilio.com/docs/errors/20003","status":401})
        );
        let (status, v, _) = body(ApiError::invalid(
            21220,
            "Call is not in-progress. Cannot redirect.",
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(v["code"], 21220);
        // Never the RFC 9457 shape, which switches the SDKs to another exception type.
        assert!(v.get("type").is_none() && v.get("title").is_none());
    }

    #[tokio::test]
    async fn internal_causes_stay_inside() {
        let (status, v, has_cause) = body(ApiError::Internal("disk on fire".into())).await;
        assert_eq!(status, 500);
        assert!(has_cause);
        assert!(!v.to_string().contains("disk on fire"));
    }
}
