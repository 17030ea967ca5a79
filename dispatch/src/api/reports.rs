//! The report endpoints for supervisors and admins: `GET /v1/sla/summary` (deadline
//! compliance per stage and area class) and `GET /v1/reliability` (SAIFI, SAIDI, CAIDI,
//! customer-hours, RS). Their definitions are in [`crate::reports`]; this module parses the
//! window, calls the dispatcher and shapes the answer.

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{QueryOf, Who};
use super::wire::{AreaClassWire, parse_rfc3339, rfc3339};
use crate::domain::{OutageCause, SlaStage, StationId, Timestamp};
use crate::reports::Window;
use crate::reports::sla::StageCounts;
use crate::service::Action;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Start of the period, inclusive (RFC 3339 with an offset); a day before `to` when
    /// absent.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End of the period, exclusive; after `from`. Now when absent.
    #[param(format = DateTime)]
    to: Option<String>,
    /// Only this station; the whole region when absent.
    station_id: Option<String>,
}

/// A report's parsed query.
struct Query {
    window: Window,
    station: Option<StationId>,
}

/// How far back a window reaches when the query does not say where it starts.
const DEFAULT_WINDOW_MS: i64 = 24 * 3_600_000;

/// The `[from, to)` of a query, RFC 3339 with an offset, `from` first. Either may be left
/// out: `to` is then `now`, and `from` a day before `to` (a supervisor's "the last 24 h").
pub(super) fn parse_window(
    from: &Option<String>,
    to: &Option<String>,
    now: Timestamp,
) -> Result<Window, ApiError> {
    let time = |name: &str, value: &Option<String>| -> Result<Option<Timestamp>, ApiError> {
        let Some(text) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        parse_rfc3339(name, text).map(Some).map_err(|_| {
            ApiError::InvalidQuery(format!(
                "{name}: must be an RFC 3339 time with an offset, e.g. 2025-06-01T00:00:00Z"
            ))
        })
    };
    let to = time("to", to)?.unwrap_or(now);
    let from = time("from", from)?.unwrap_or_else(|| {
        Timestamp::from_millis(to.as_millis().saturating_sub(DEFAULT_WINDOW_MS))
    });
    Window::new(from, to).map_err(|e| ApiError::InvalidQuery(format!("from, to: {e}")))
}

impl ReportParams {
    fn parse(&self, now: Timestamp) -> Result<Query, ApiError> {
        let window = parse_window(&self.from, &self.to, now)?;
        let station = self
            .station_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(StationId::new);
        Ok(Query { window, station })
    }
}

/// An SLA stage: its clock's start and stop.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaStageWire {
    /// Dispatch → acknowledged.
    Acknowledge,
    /// Report → on site (no clock for customer-internal faults).
    Arrive,
    /// On site → power restored.
    Restore,
    /// Restored → work order returned.
    Return,
}

impl From<SlaStage> for SlaStageWire {
    fn from(stage: SlaStage) -> Self {
        match stage {
            SlaStage::Acknowledge => SlaStageWire::Acknowledge,
            SlaStage::Arrive => SlaStageWire::Arrive,
            SlaStage::Restore => SlaStageWire::Restore,
            SlaStage::Return => SlaStageWire::Return,
        }
    }
}

/// Counts of one stage (or one stage in one area class).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageCountsOut {
    /// `met + breached`.
    pub count: u64,
    /// Completed within the limit.
    pub met: u64,
    /// Completed over the limit, or still open with the deadline passed (in the window).
    pub breached: u64,
    /// Of `breached`: still open.
    pub open_breached: u64,
    /// `met / count × 100`; null when nothing counted.
    pub compliance_percent: Option<f64>,
    /// Of the completed stages; null when none completed.
    pub p50_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
}

impl From<&StageCounts> for StageCountsOut {
    fn from(c: &StageCounts) -> Self {
        Self {
            count: c.count,
            met: c.met,
            breached: c.breached,
            open_breached: c.open_breached,
            compliance_percent: c.compliance_percent(),
            p50_minutes: c.p50_minutes(),
            p90_minutes: c.p90_minutes(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AreaClassCountsOut {
    pub area_class: AreaClassWire,
    #[serde(flatten)]
    pub counts: StageCountsOut,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageOut {
    pub stage: SlaStageWire,
    #[serde(flatten)]
    pub counts: StageCountsOut,
    /// Urban, rural, remote.
    pub by_area_class: Vec<AreaClassCountsOut>,
}

/// The period average of arrival minutes in one area class: the published commitment is
/// worded as an average.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArrivalAverageOut {
    pub area_class: AreaClassWire,
    /// Arrivals completed in the period.
    pub arrivals: u64,
    /// Null when there were none.
    pub average_minutes: Option<f64>,
    /// The per-ticket arrival limit of the class, for comparison.
    pub limit_minutes: u32,
}

/// Deadline compliance over `[from, to)`. A completed stage counts in the period holding its
/// stop time; an open one counts as breached in the period holding its passed deadline, and
/// not at all while within its limit. Merged and cancelled tickets are left out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaSummaryOut {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    /// Null for the whole region.
    pub station_id: Option<String>,
    /// acknowledge, arrive, restore, return.
    pub stages: Vec<StageOut>,
    pub arrival_average: Vec<ArrivalAverageOut>,
}

/// Counted interruptions per outage cause.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InterruptionsByCause {
    pub fault: u64,
    pub planned: u64,
    pub external: u64,
    pub supply_limit: u64,
}

impl From<[(OutageCause, u64); 4]> for InterruptionsByCause {
    fn from(counts: [(OutageCause, u64); 4]) -> Self {
        let mut out = Self {
            fault: 0,
            planned: 0,
            external: 0,
            supply_limit: 0,
        };
        for (cause, count) in counts {
            *match cause {
                OutageCause::Fault => &mut out.fault,
                OutageCause::Planned => &mut out.planned,
                OutageCause::External => &mut out.external,
                OutageCause::SupplyLimit => &mut out.supply_limit,
            } += count;
        }
        out
    }
}

/// Reliability indices over `[from, to)` from the incidents restored in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReliabilityOut {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub station_id: Option<String>,
    /// Σ N_i / N_T: interruptions per customer served. Null when no customers are served.
    pub saifi: Option<f64>,
    /// Σ r_i N_i / N_T, minutes per customer served.
    pub saidi_minutes: Option<f64>,
    /// SAIDI / SAIFI, minutes per interrupted customer; null when nobody was interrupted.
    pub caidi_minutes: Option<f64>,
    /// 时户数: Σ r_i N_i in hours.
    pub customer_hours_interrupted: f64,
    /// RS-1: 1 − customer-hours interrupted / (customers served × hours in the period).
    pub rs: Option<f64>,
    /// RS-2 (DL/T 836.1): RS leaving out interruptions whose order gave an `external` cause.
    pub rs_excluding_external: Option<f64>,
    /// RS-3: RS leaving out load shed for a shortage of supply (`supply_limit`).
    pub rs_excluding_supply_limit: Option<f64>,
    /// Interruptions counted in the period per cause the returned orders gave (`fault`
    /// until returned).
    pub interruptions_by_cause: InterruptionsByCause,
    /// N_T.
    pub customers_served: u64,
    /// Σ N_i, a customer counted once in overlapping interruptions.
    pub customers_interrupted: u64,
    pub customer_minutes_interrupted: f64,
    pub period_hours: f64,
    pub sustained_interruptions: u64,
    /// Under the momentary limit (5 min by default): not in SAIFI / SAIDI.
    pub momentary_interruptions: u64,
    /// Restored in the period but the customer's own fault: not in the indices.
    pub excluded_customer_side: u64,
}

fn station_out(station: &Option<StationId>) -> Option<String> {
    station.as_ref().map(ToString::to_string)
}

/// Deadline compliance per stage and area class, with the period's average arrival.
#[utoipa::path(
    operation_id = "sla_summary",
    get, path = "/v1/sla/summary", tag = "reading",
    params(ReportParams),
    responses((status = 200, body = SlaSummaryOut), V1Errors),
    security(("bearer" = []))
)]
pub async fn sla_summary(
    State(app): State<AppState>,
    who: Who,
    QueryOf(params): QueryOf<ReportParams>,
) -> Result<Json<SlaSummaryOut>, ApiError> {
    who.require(Action::ReadReports)?;
    let query = params.parse(app.dispatcher.now())?;
    let summary = app
        .dispatcher
        .sla_summary(query.window, query.station.as_ref())
        .await?;
    let stages = summary
        .stages
        .iter()
        .map(|s| StageOut {
            stage: s.stage.into(),
            counts: (&s.all).into(),
            by_area_class: s
                .by_area_class
                .iter()
                .map(|(class, counts)| AreaClassCountsOut {
                    area_class: (*class).into(),
                    counts: counts.into(),
                })
                .collect(),
        })
        .collect();
    let arrival_average = summary
        .arrival_average
        .iter()
        .map(|a| ArrivalAverageOut {
            area_class: a.area_class.into(),
            arrivals: a.arrivals,
            average_minutes: a.average_minutes,
            limit_minutes: a.limit_minutes,
        })
        .collect();
    Ok(Json(SlaSummaryOut {
        from: rfc3339(query.window.from),
        to: rfc3339(query.window.to),
        station_id: station_out(&query.station),
        stages,
        arrival_average,
    }))
}

/// SAIFI, SAIDI, CAIDI, customer-hours interrupted and the reliability rate RS.
#[utoipa::path(
    operation_id = "reliability",
    get, path = "/v1/reliability", tag = "reading",
    params(ReportParams),
    responses((status = 200, body = ReliabilityOut), V1Errors),
    security(("bearer" = []))
)]
pub async fn reliability(
    State(app): State<AppState>,
    who: Who,
    QueryOf(params): QueryOf<ReportParams>,
) -> Result<Json<ReliabilityOut>, ApiError> {
    who.require(Action::ReadReports)?;
    let query = params.parse(app.dispatcher.now())?;
    let settings = app.dispatcher.report_settings();
    let r = app
        .dispatcher
        .reliability(query.window, query.station.as_ref(), &settings.reliability)
        .await?;
    Ok(Json(ReliabilityOut {
        from: rfc3339(query.window.from),
        to: rfc3339(query.window.to),
        station_id: station_out(&query.station),
        // Unrounded: a region's SAIFI over a day is of the order of 1e-5, which any fixed
        // number of decimals would flatten.
        saifi: r.saifi,
        saidi_minutes: r.saidi_minutes,
        caidi_minutes: r.caidi_minutes,
        customer_hours_interrupted: r.customer_hours_interrupted,
        rs: r.rs,
        rs_excluding_external: r.rs_excluding_external,
        rs_excluding_supply_limit: r.rs_excluding_supply_limit,
        interruptions_by_cause: r.by_cause.into(),
        customers_served: r.customers_served,
        customers_interrupted: r.customers_interrupted,
        customer_minutes_interrupted: r.customer_minutes_interrupted,
        period_hours: r.period_hours,
        sustained_interruptions: r.sustained_interruptions,
        momentary_interruptions: r.momentary_interruptions,
        excluded_customer_side: r.excluded_customer_side,
    }))
}

/// The ETRs of tickets about to be shown (same order), RFC 3339.
pub async fn etrs(
    app: &AppState,
    tickets: &[crate::domain::Ticket],
) -> Result<Vec<Option<String>>, ApiError> {
    let settings = app.dispatcher.report_settings();
    let estimates = app
        .dispatcher
        .restoration_estimates(tickets, &settings.etr)
        .await?;
    Ok(estimates.into_iter().map(|e| e.map(rfc3339)).collect())
}
