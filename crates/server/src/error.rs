//! Every REST error the server answers with, turned into Twilio's JSON error body by one
//! `IntoResponse`: `{"code","message","more_info","status"}` — the legacy shape both
//! official SDKs parse into `TwilioRestException` / `RestException`. Internal causes never
//! reach the client: they ride in a response extension to [`log_errors`], which logs them.

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
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "An internal server error has occurred".into(),
            ),
        }
    }
}

/// The cause of a 500, handed from the response to [`log_errors`].
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

/// Middleware: logs the internal cause of every 500 and a debug line for other errors.
pub async fn log_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    if let Some(InternalCause(cause)) = resp.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, %cause, "internal error");
    } else if resp.status().is_client_error() {
        tracing::debug!(%method, %path, status = resp.status().as_u16(), "client error");
    }
    resp
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
