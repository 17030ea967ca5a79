//! The control room's watch on deadlines: every running deadline clock of the open tickets
//! with its risk (`GET /v1/deadlines`), and the jobs taken from crews in a period
//! (`GET /v1/reassignments`).

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{QueryOf, Who};
use super::reports::{SlaStageWire, parse_window};
use super::wire::{TicketStateWire, rfc3339};
use crate::domain::{DeclineReason, Timestamp};
use crate::service::{Action, Reassignment, RunningDeadline};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How a deadline stands, judged on this clock's own start and due: `warned` once it passed
/// a warning level, `breached` once its limit passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskWire {
    OnTime,
    Warned,
    Breached,
}

/// One running deadline clock of an open ticket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunningDeadlineOut {
    pub ticket_id: String,
    pub station_id: String,
    pub crew_id: Option<String>,
    pub state: TicketStateWire,
    pub stage: SlaStageWire,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub due: String,
    /// Until `due` from `now`; negative once passed.
    pub seconds_left: f64,
    /// The highest warning level this clock has passed, as a fraction of its limit.
    pub warned_level: Option<f64>,
    pub risk: RiskWire,
}

impl RunningDeadlineOut {
    fn new(d: &RunningDeadline, now: Timestamp) -> Self {
        let risk = if d.breached {
            RiskWire::Breached
        } else if d.warned.is_some() {
            RiskWire::Warned
        } else {
            RiskWire::OnTime
        };
        Self {
            ticket_id: d.ticket.to_string(),
            station_id: d.station.to_string(),
            crew_id: d.crew.as_ref().map(ToString::to_string),
            state: d.state.into(),
            stage: d.stage.into(),
            started_at: d.started_at.map(rfc3339),
            due: rfc3339(d.due),
            seconds_left: (d.due.as_millis() - now.as_millis()) as f64 / 1000.0,
            warned_level: d.warned.map(|level| level.fraction()),
            risk,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunningDeadlineList {
    /// The instant the clocks were judged at.
    #[schema(format = DateTime)]
    pub now: String,
    /// The soonest due first. A dispatched ticket runs two clocks (acknowledge and arrive).
    pub items: Vec<RunningDeadlineOut>,
}

/// The deadline clocks of every open ticket, the soonest due first.
#[utoipa::path(
    operation_id = "running_deadlines",
    get, path = "/v1/deadlines", tag = "reading",
    responses((status = 200, body = RunningDeadlineList), V1Errors),
    security(("bearer" = []))
)]
pub async fn running(
    State(app): State<AppState>,
    who: Who,
) -> Result<Json<RunningDeadlineList>, ApiError> {
    who.require(Action::ReadReports)?;
    let (deadlines, now) = app.dispatcher.running_deadlines().await?;
    let items = deadlines
        .iter()
        .map(|d| RunningDeadlineOut::new(d, now))
        .collect();
    Ok(Json(RunningDeadlineList {
        now: rfc3339(now),
        items,
    }))
}

/// Most reassignments listed in one answer by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReassignmentParams {
    /// Start of the period, inclusive (RFC 3339 with an offset); a day before `to` when
    /// absent.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End of the period, exclusive. Now when absent.
    #[param(format = DateTime)]
    to: Option<String>,
    /// Items listed, 1 to 500 (default 50); the counts cover the whole period.
    #[param(value_type = Option<usize>)]
    limit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReassignReasonWire {
    /// The crew rejected the job.
    Rejected,
    /// The crew did not acknowledge in time.
    AcknowledgeTimeout,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReassignmentOut {
    #[schema(format = DateTime)]
    pub at: String,
    pub ticket_id: String,
    pub station_id: String,
    /// The crew the job was taken from.
    pub crew_id: String,
    pub reason: ReassignReasonWire,
    /// What the crew said when it rejected the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl From<&Reassignment> for ReassignmentOut {
    fn from(r: &Reassignment) -> Self {
        let (reason, note) = match &r.reason {
            DeclineReason::Rejected { reason } => {
                (ReassignReasonWire::Rejected, Some(reason.clone()))
            }
            DeclineReason::AcknowledgeTimeout => (ReassignReasonWire::AcknowledgeTimeout, None),
        };
        Self {
            at: rfc3339(r.at),
            ticket_id: r.ticket.to_string(),
            station_id: r.station.to_string(),
            crew_id: r.crew.to_string(),
            reason,
            note,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReassignmentList {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    /// Every reassignment in the period.
    pub count: u64,
    pub rejected: u64,
    pub acknowledge_timeout: u64,
    /// The latest first, at most `limit`.
    pub items: Vec<ReassignmentOut>,
}

/// Jobs taken from a crew in a period, because it rejected them or missed the
/// acknowledgement deadline; each went to the next best crew or back to the queue.
#[utoipa::path(
    operation_id = "reassignments",
    get, path = "/v1/reassignments", tag = "reading",
    params(ReassignmentParams),
    responses((status = 200, body = ReassignmentList), V1Errors),
    security(("bearer" = []))
)]
pub async fn reassignments(
    State(app): State<AppState>,
    who: Who,
    QueryOf(params): QueryOf<ReassignmentParams>,
) -> Result<Json<ReassignmentList>, ApiError> {
    who.require(Action::ReadReports)?;
    let window = parse_window(&params.from, &params.to, app.dispatcher.now())?;
    let limit = super::extract::page_limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let found = app.dispatcher.reassignments(window).await?;
    let rejected = found
        .iter()
        .filter(|r| matches!(r.reason, DeclineReason::Rejected { .. }))
        .count() as u64;
    Ok(Json(ReassignmentList {
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        count: found.len() as u64,
        rejected,
        acknowledge_timeout: found.len() as u64 - rejected,
        items: found
            .iter()
            .take(limit)
            .map(ReassignmentOut::from)
            .collect(),
    }))
}
