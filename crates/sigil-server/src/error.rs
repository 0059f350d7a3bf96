//! One JSON error shape for every failure: `{"error": {"code", "message"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sigil_core::wire::{ErrorBody, ErrorDetail};
use sigil_store::StoreError;

/// An error answered to the client. A 5xx says "internal error" and the cause goes to the log.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// A stable code.
    pub code: &'static str,
    /// A message for people, never a value.
    pub message: String,
    /// Seconds to wait (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 500: the cause is logged, the client sees "internal error".
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// 503: the database is unreachable.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage unavailable",
        )
    }
}

/// A store failure reaches a client as the domain layer words it (one mapping, in `service`).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        crate::service::ServerError::from(e).into()
    }
}

/// The REST face's rendering of the domain layer's errors.
impl From<crate::service::ServerError> for ApiError {
    fn from(e: crate::service::ServerError) -> Self {
        use crate::service::ServerError as E;
        // 5xx causes were logged where they arose; the client sees no cause
        match e {
            E::NotFound(m) => ApiError::not_found(m),
            E::Forbidden(m) => ApiError::forbidden(m),
            E::Conflict(m) => ApiError::conflict(m),
            E::Invalid(m) => ApiError::invalid(m),
            E::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "value_too_large", m),
            E::RateLimited {
                message,
                retry_after,
            } => {
                let mut a = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
                a.retry_after = Some(retry_after);
                a
            }
            E::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage unavailable",
            ),
            e @ E::StorageFull(_) => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                e.to_string(),
            ),
            E::Internal(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
