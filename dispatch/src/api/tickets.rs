//! Ticket endpoints: creation (with `Idempotency-Key`), reading, listing, and every step of
//! a ticket's life. Each handler checks the caller's role, parses, calls the dispatcher and
//! maps the answer.

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{Body, Id, QueryOf, Who};
use super::wire::{
    ArriveRequest, CancelRequest, CloseRequest, CreateTicketRequest, EmptyRequest, FirstReportOut,
    ReasonRequest, RestoreRequest, ReturnRequest, TicketDetail, TicketList, TicketOut,
    TicketStateWire, limits,
};
use crate::domain::{StationId, TicketCommand, TicketId, TicketState};
use crate::service::{Action, IdempotencyKey, TicketFilter, auth};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

/// The `Idempotency-Key` header with the digest of the request, canonicalised through its
/// wire type so that whitespace or key order do not make the same request look different.
fn idempotency_key(
    headers: &HeaderMap,
    request: &CreateTicketRequest,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= limits::IDEMPOTENCY_KEY
                && k.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::InvalidHeader(format!(
                "Idempotency-Key: 1 to {} printable ASCII characters without spaces",
                limits::IDEMPOTENCY_KEY
            ))
        })?;
    let canonical = serde_json::to_vec(request).map_err(|_| ApiError::Internal)?;
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_sha256: auth::sha256(&canonical),
    }))
}

/// Creates a ticket: finds the station, merges a repeat report, dispatches the best crew.
#[utoipa::path(
    operation_id = "create_ticket",
    post, path = "/v1/tickets", tag = "tickets",
    request_body = CreateTicketRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Retries with the same key and body return the same ticket (200)")),
    responses(
        (status = 201, description = "Created: dispatched, queued or merged", body = TicketOut),
        (status = 200, description = "A repeat of an earlier Idempotency-Key and body", body = TicketOut),
        (status = 422, description = "outside_service_area or idempotency_conflict", body = super::ErrorBody),
        V1Errors,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    who: Who,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = who.require(Action::CreateTicket)?;
    let request: CreateTicketRequest = body.parse()?;
    let report = request.to_report()?;
    let key = idempotency_key(&headers, &request)?;
    let created = app.dispatcher.create_ticket(principal, report, key).await?;
    let out = TicketOut::from(&created.ticket);
    if created.repeat {
        return Ok((StatusCode::OK, Json(out)).into_response());
    }
    let mut response = (StatusCode::CREATED, Json(out)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/tickets/{}", created.ticket.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only tickets in this state.
    #[param(value_type = Option<TicketStateWire>)]
    state: Option<String>,
    /// Only tickets of this station.
    station_id: Option<String>,
    /// Page size, 1 to 500; default 50.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An empty parameter (`?state=`) is the same as none.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ListParams {
    fn parse(&self) -> Result<(TicketFilter, Option<TicketId>, usize), ApiError> {
        let state = present(&self.state)
            .map(|s| {
                TicketState::ALL
                    .into_iter()
                    .find(|state| state.as_str() == s)
                    .ok_or_else(|| ApiError::InvalidQuery(format!("state: unknown state {s:?}")))
            })
            .transpose()?;
        let limit = super::extract::page_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let cursor = present(&self.cursor)
            .map(|c| {
                uuid::Uuid::parse_str(c)
                    .map(|_| TicketId::new(c))
                    .map_err(|_| {
                        ApiError::InvalidQuery("cursor: not a cursor this API gave".into())
                    })
            })
            .transpose()?;
        let station = present(&self.station_id).map(StationId::new);
        Ok((TicketFilter { state, station }, cursor, limit))
    }
}

/// Tickets in creation order, a page at a time.
#[utoipa::path(
    operation_id = "list_tickets",
    get, path = "/v1/tickets", tag = "tickets",
    params(ListParams),
    responses((status = 200, body = TicketList), V1Errors),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    who: Who,
    QueryOf(params): QueryOf<ListParams>,
) -> Result<Json<TicketList>, ApiError> {
    who.require(Action::ListTickets)?;
    let (filter, cursor, limit) = params.parse()?;
    let page = app
        .dispatcher
        .tickets(&filter, cursor.as_ref(), limit)
        .await?;
    Ok(Json(TicketList {
        items: page.items.iter().map(TicketOut::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One ticket with its timeline, oldest first. A crew reads only its own jobs.
#[utoipa::path(
    operation_id = "get_ticket",
    get, path = "/v1/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = TicketDetail), V1Errors),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
) -> Result<Json<TicketDetail>, ApiError> {
    let principal = who.require(Action::ReadTicket)?;
    let found = app.dispatcher.ticket(principal, &TicketId::new(id)).await?;
    let mut detail = TicketDetail::new(&found.ticket, Some(&found.timeline));
    detail.first_report = found.first_report.as_ref().map(FirstReportOut::from);
    detail.ticket.etr = super::reports::etrs(&app, std::slice::from_ref(&found.ticket))
        .await?
        .pop()
        .flatten();
    Ok(Json(detail))
}

async fn step(
    app: &AppState,
    who: &Who,
    action: Action,
    id: String,
    command: impl FnOnce() -> Result<TicketCommand, ApiError>,
) -> Result<Json<TicketOut>, ApiError> {
    let principal = who.require(action)?;
    let command = command()?;
    let ticket = app
        .dispatcher
        .ticket_step(principal, &TicketId::new(id), command)
        .await?;
    Ok(Json(TicketOut::from(&ticket)))
}

/// Cancels a ticket (before restoration), freeing its crew.
#[utoipa::path(
    operation_id = "cancel_ticket",
    post, path = "/v1/tickets/{id}/cancel", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = CancelRequest,
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state, or incident_has_repeats: open repeat reports wait on this ticket and `with_repeats` was not sent", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CancelTicket, id, || {
        body.parse::<CancelRequest>()?.command()
    })
    .await
}

/// Closes a returned ticket with the customer's callback (回访).
#[utoipa::path(
    operation_id = "close_ticket",
    post, path = "/v1/tickets/{id}/close", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = CloseRequest,
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn close(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CloseTicket, id, || {
        let callback = body.parse::<CloseRequest>()?.callback()?;
        Ok(TicketCommand::Close(callback))
    })
    .await
}

/// The assigned crew accepts the job (接单).
#[utoipa::path(
    operation_id = "acknowledge_ticket",
    post, path = "/v1/tickets/{id}/ack", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body(content = Option<EmptyRequest>, description = "No body, or {}"),
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn acknowledge(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CrewStep, id, || {
        body.parse_or_default::<EmptyRequest>()?;
        Ok(TicketCommand::Acknowledge)
    })
    .await
}

/// The assigned crew turns the job down: it goes to the next best crew.
#[utoipa::path(
    operation_id = "reject_ticket",
    post, path = "/v1/tickets/{id}/reject", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = ReasonRequest,
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn reject(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CrewStep, id, || {
        let reason = body.parse::<ReasonRequest>()?.reason()?;
        Ok(TicketCommand::Reject { reason })
    })
    .await
}

/// The crew sets off (出发).
#[utoipa::path(
    operation_id = "depart_ticket",
    post, path = "/v1/tickets/{id}/depart", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body(content = Option<EmptyRequest>, description = "No body, or {}"),
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn depart(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CrewStep, id, || {
        body.parse_or_default::<EmptyRequest>()?;
        Ok(TicketCommand::Depart)
    })
    .await
}

/// The crew is on site (到达).
#[utoipa::path(
    operation_id = "arrive_ticket",
    post, path = "/v1/tickets/{id}/arrive", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body(content = Option<ArriveRequest>, description = "The crew's location, optional"),
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn arrive(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CrewStep, id, || {
        let request = body.parse_or_default::<ArriveRequest>()?;
        let location = request
            .location
            .map(|l| l.to_wgs84("location"))
            .transpose()?;
        Ok(TicketCommand::Arrive { location })
    })
    .await
}

/// Power is back (恢复送电).
#[utoipa::path(
    operation_id = "restore_ticket",
    post, path = "/v1/tickets/{id}/restore", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body(content = Option<RestoreRequest>, description = "The cause, optional"),
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn restore(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CrewStep, id, || {
        let cause = body.parse_or_default::<RestoreRequest>()?.cause()?;
        Ok(TicketCommand::Restore { cause })
    })
    .await
}

/// The crew returns the work order (回单): fault class, cause and ownership are required.
#[utoipa::path(
    operation_id = "return_ticket",
    post, path = "/v1/tickets/{id}/return", tag = "tickets",
    params(("id" = String, Path, description = "Ticket id")),
    request_body = ReturnRequest,
    responses((status = 200, body = TicketOut), (status = 409, description = "wrong_state", body = super::ErrorBody), V1Errors),
    security(("bearer" = []))
)]
pub async fn return_order(
    State(app): State<AppState>,
    who: Who,
    Id(id): Id,
    body: Body,
) -> Result<Json<TicketOut>, ApiError> {
    step(&app, &who, Action::CrewStep, id, || {
        let order = body.parse::<ReturnRequest>()?.order()?;
        Ok(TicketCommand::Return(order))
    })
    .await
}
