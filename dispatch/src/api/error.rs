//! The API's one error type and its one table to (status, code). Every error body is
//! `{"error": {"code", "message"}}`; 5xx messages are fixed texts that reveal nothing
//! internal (the cause is logged instead).

use crate::domain::TransitionError;
use crate::engine::EngineError;
use crate::service::ServiceError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client should wait before retrying a 503 or 429.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidField(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidHeader(String),
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("{0}")]
    WrongState(String),
    #[error("{0}")]
    CrewHasJob(String),
    #[error("{0}")]
    IncidentHasRepeats(String),
    #[error("the request body is over the 64 KiB limit")]
    PayloadTooLarge,
    #[error("{0}")]
    OutsideServiceArea(String),
    #[error("this Idempotency-Key was used with another request body")]
    IdempotencyConflict,
    #[error("the request body stopped arriving: send the request again")]
    RequestTimeout,
    #[error("too many requests under way: retry shortly")]
    RateLimited,
    #[error("the service cannot store changes right now: retry later")]
    StoreUnavailable,
    #[error(
        "the service could not confirm that the change was stored, and it may have been: \
         retry with the same Idempotency-Key, or read it back once the service is ready, \
         before sending it again"
    )]
    OutcomeUnknown,
    #[error("the service is not ready: its store does not answer or a write failed")]
    NotReady,
    #[error("the region's writing instance is changing over: retry shortly")]
    NoLeader,
    #[error("{0}")]
    BackupNotSupported(String),
    #[error("{0}: retry later")]
    BackupFailed(String),
    #[error("a backup is being written already: wait for it, then ask again if need be")]
    BackupUnderWay,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The table: every error's HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::InvalidField(_) => (StatusCode::BAD_REQUEST, "invalid_field"),
            ApiError::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::InvalidHeader(_) => (StatusCode::BAD_REQUEST, "invalid_header"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::WrongState(_) => (StatusCode::CONFLICT, "wrong_state"),
            ApiError::CrewHasJob(_) => (StatusCode::CONFLICT, "crew_has_job"),
            ApiError::IncidentHasRepeats(_) => (StatusCode::CONFLICT, "incident_has_repeats"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::OutsideServiceArea(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "outside_service_area")
            }
            ApiError::IdempotencyConflict => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_conflict")
            }
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::OutcomeUnknown => (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown"),
            ApiError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::NoLeader => (StatusCode::SERVICE_UNAVAILABLE, "no_leader"),
            ApiError::BackupNotSupported(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "backup_not_supported")
            }
            ApiError::BackupFailed(_) => (StatusCode::SERVICE_UNAVAILABLE, "backup_failed"),
            ApiError::BackupUnderWay => (StatusCode::CONFLICT, "backup_under_way"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The error body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code, e.g. `wrong_state`.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::StoreUnavailable
            | ApiError::OutcomeUnknown
            | ApiError::NotReady
            | ApiError::NoLeader
            | ApiError::BackupFailed(_)
            | ApiError::RateLimited => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NotFound(what) => ApiError::NotFound(format!("no such {what}")),
            ServiceError::Forbidden(why) => ApiError::Forbidden(why.to_owned()),
            ServiceError::IdempotencyConflict => ApiError::IdempotencyConflict,
            ServiceError::Unavailable => ApiError::StoreUnavailable,
            ServiceError::OutcomeUnknown => ApiError::OutcomeUnknown,
            ServiceError::NotLeader => ApiError::NoLeader,
            ServiceError::BackupNotSupported(why) => {
                ApiError::BackupNotSupported(format!("no backup: {why}"))
            }
            ServiceError::BackupFailed(why) => ApiError::BackupFailed(why),
            ServiceError::BackupUnderWay => ApiError::BackupUnderWay,
            ServiceError::Engine(error) => error.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let message = error.to_string();
        match error {
            EngineError::UnknownTicket(_) => ApiError::NotFound(message),
            EngineError::UnknownCrew(_) => ApiError::NotFound(message),
            EngineError::NotThisCrew => ApiError::Forbidden(message),
            EngineError::CrewHasJob(_) => ApiError::CrewHasJob(message),
            EngineError::IncidentHasRepeats { .. } => ApiError::IncidentHasRepeats(message),
            EngineError::OutsideServiceAreas(_) | EngineError::FixOutsideRegion { .. } => {
                ApiError::OutsideServiceArea(message)
            }
            EngineError::Transition(transition) => match transition {
                TransitionError::WrongState { .. } | TransitionError::NotDue => {
                    ApiError::WrongState(message)
                }
                TransitionError::NotAssignedCrew { .. }
                | TransitionError::ActorNotPermitted { .. } => ApiError::Forbidden(message),
            },
            // Ticket ids are fresh UUIDs: a duplicate is a bug, not the client's doing.
            EngineError::DuplicateTicket(id) => {
                tracing::error!(ticket.id = %id, "the engine refused a fresh ticket id as a duplicate");
                ApiError::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_say_nothing_internal_and_ask_to_retry() {
        let response = ApiError::StoreUnavailable.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert_eq!(ApiError::Internal.to_string(), "internal error");
    }

    #[test]
    fn codes_are_snake_case_and_unique_per_variant() {
        let all = [
            ApiError::MalformedJson(String::new()),
            ApiError::InvalidField(String::new()),
            ApiError::InvalidQuery(String::new()),
            ApiError::InvalidHeader(String::new()),
            ApiError::UnsupportedMediaType,
            ApiError::Unauthorized,
            ApiError::Forbidden(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::MethodNotAllowed,
            ApiError::WrongState(String::new()),
            ApiError::CrewHasJob(String::new()),
            ApiError::IncidentHasRepeats(String::new()),
            ApiError::PayloadTooLarge,
            ApiError::OutsideServiceArea(String::new()),
            ApiError::IdempotencyConflict,
            ApiError::RequestTimeout,
            ApiError::RateLimited,
            ApiError::StoreUnavailable,
            ApiError::OutcomeUnknown,
            ApiError::NotReady,
            ApiError::NoLeader,
            ApiError::BackupNotSupported(String::new()),
            ApiError::BackupFailed(String::new()),
            ApiError::BackupUnderWay,
            ApiError::Internal,
        ];
        let codes: std::collections::HashSet<_> =
            all.iter().map(|e| e.status_and_code().1).collect();
        assert_eq!(codes.len(), all.len());
        for code in codes {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
