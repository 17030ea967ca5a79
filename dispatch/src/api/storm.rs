//! Storm mode: supervisors read it and switch it. While it is on, waiting tickets are
//! assigned to free crews together (the `batch` policy) instead of one by one.

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{Body, Who};
use super::wire::{StormOut, StormRequest};
use crate::service::Action;
use axum::Json;
use axum::extract::State;

/// Whether storm mode is on, whether a supervisor pinned it, the policy in force and how
/// many tickets wait.
#[utoipa::path(
    operation_id = "storm_status",
    get, path = "/v1/storm", tag = "reading",
    responses((status = 200, body = StormOut), V1Errors),
    security(("bearer" = []))
)]
pub async fn status(State(app): State<AppState>, who: Who) -> Result<Json<StormOut>, ApiError> {
    who.require(Action::ReadReports)?;
    Ok(Json(app.dispatcher.storm().await?.into()))
}

/// Switches storm mode: `on` or `off` (kept so until switched again), or `automatic` (back to
/// the `[engine.storm]` queue thresholds). Recorded as a `storm_mode` event.
#[utoipa::path(
    operation_id = "storm_switch",
    post, path = "/v1/storm", tag = "reading",
    request_body = StormRequest,
    responses((status = 200, body = StormOut), V1Errors),
    security(("bearer" = []))
)]
pub async fn switch(
    State(app): State<AppState>,
    who: Who,
    body: Body,
) -> Result<Json<StormOut>, ApiError> {
    let principal = who.require(Action::SwitchStorm)?;
    let request = body.parse::<StormRequest>()?;
    let status = app
        .dispatcher
        .switch_storm(principal, request.mode.into())
        .await?;
    Ok(Json(status.into()))
}
