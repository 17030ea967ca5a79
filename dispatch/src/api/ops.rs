//! Operations endpoints, without a token: liveness, readiness, metrics and the OpenAPI
//! document.

use super::AppState;
use super::error::ApiError;
use super::wire::Status;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The process lives.
#[utoipa::path(
    operation_id = "healthz",get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The store answers and writes are accepted.
#[utoipa::path(
    operation_id = "readyz",get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = Status),
        (status = 503, description = "not_ready, with Retry-After", body = super::ErrorBody),
    ))]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Status>, ApiError> {
    if app.dispatcher.ready().await {
        Ok(Json(Status { status: "ready" }))
    } else {
        Err(ApiError::NotReady)
    }
}

/// Prometheus text format.
#[utoipa::path(
    operation_id = "metrics",get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    // Gauges are read from the engine at scrape time. A failed dispatcher still renders what
    // it has: /metrics is how an operator sees that it failed.
    if let Ok(gauges) = app.dispatcher.gauges() {
        crate::metrics::set_gauges(&gauges);
    }
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This document.
#[utoipa::path(
    operation_id = "openapi",get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json", body = Object)))]
pub async fn openapi(State(app): State<AppState>) -> Response {
    let mut response = app.openapi.as_str().to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
