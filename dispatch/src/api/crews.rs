//! The crew's side (its jobs, position and duty) and the reading endpoints for supervisors
//! and admins (stations, crews with state and last position).

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{Body, Id, Who};
use super::wire::{
    CrewList, CrewOut, DutyRequest, JobList, PositionRequest, StationList, StationOut, TicketDetail,
};
use crate::domain::CrewId;
use crate::service::{Action, Principal};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// The crew's current job (a crew holds one at a time; waiting tickets have no crew yet).
#[utoipa::path(
    operation_id = "crew_jobs",
    get, path = "/v1/crews/{id}/jobs", tag = "crews",
    params(("id" = String, Path, description = "Crew id")),
    responses((status = 200, body = JobList), V1Errors),
    security(("bearer" = []))
)]
pub async fn jobs(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
) -> Result<Json<JobList>, ApiError> {
    let principal = who.require(Action::ReadCrewJobs)?;
    let jobs = app
        .dispatcher
        .crew_jobs(principal, &CrewId::new(id))
        .await?;
    let etrs = super::reports::etrs(&app, &jobs).await?;
    let items = jobs
        .iter()
        .zip(etrs)
        .map(|(t, etr)| {
            let mut detail = TicketDetail::new(t, None);
            detail.ticket.etr = etr;
            // Admins look after crews and tokens; they may not read tickets, so not who
            // called either.
            if matches!(principal, Principal::Admin) {
                detail.caller = detail.caller.masked();
            }
            detail
        })
        .collect();
    Ok(Json(JobList { items }))
}

/// The crew's position. Answered once the store has it, not once it is on disk: a lost ping
/// is replaced by the next one.
#[utoipa::path(
    operation_id = "crew_position",
    post, path = "/v1/crews/{id}/position", tag = "crews",
    params(("id" = String, Path, description = "Crew id")),
    request_body = PositionRequest,
    responses(
        (status = 204, description = "Recorded"),
        (status = 422, description = "outside_service_area: the fix is far outside the region (a GPS fault); the crew stays where it was", body = super::ErrorBody),
        V1Errors
    ),
    security(("bearer" = []))
)]
pub async fn position(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let principal = who.require(Action::ReportForCrew)?;
    let request: PositionRequest = body.parse()?;
    let location = request.location()?;
    let fix_at = request.fix_at()?;
    app.dispatcher
        .crew_position(principal, &CrewId::new(id), location, fix_at)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The crew comes on or goes off duty. Going off duty with a job is refused (409).
#[utoipa::path(
    operation_id = "crew_duty",
    post, path = "/v1/crews/{id}/duty", tag = "crews",
    params(("id" = String, Path, description = "Crew id")),
    request_body = DutyRequest,
    responses(
        (status = 204, description = "Recorded"),
        (status = 409, description = "crew_has_job", body = super::ErrorBody),
        V1Errors,
    ),
    security(("bearer" = []))
)]
pub async fn duty(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let principal = who.require(Action::ReportForCrew)?;
    let request: DutyRequest = body.parse()?;
    app.dispatcher
        .crew_duty(principal, &CrewId::new(id), request.on_duty)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every crew with its state and last position.
#[utoipa::path(
    operation_id = "list_crews",
    get, path = "/v1/crews", tag = "reading",
    responses((status = 200, body = CrewList), V1Errors),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<AppState>, who: Who) -> Result<Json<CrewList>, ApiError> {
    who.require(Action::ListCrews)?;
    let crews = app.dispatcher.crews().await?;
    Ok(Json(CrewList {
        items: crews.iter().map(CrewOut::from).collect(),
    }))
}

/// Every supply station.
#[utoipa::path(
    operation_id = "list_stations",
    get, path = "/v1/stations", tag = "reading",
    responses((status = 200, body = StationList), V1Errors),
    security(("bearer" = []))
)]
pub async fn stations(
    State(app): State<AppState>,
    who: Who,
) -> Result<Json<StationList>, ApiError> {
    who.require(Action::ListStations)?;
    let stations = app.dispatcher.stations().await?;
    Ok(Json(StationList {
        items: stations.iter().map(StationOut::from).collect(),
    }))
}
