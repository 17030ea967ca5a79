//! What travels over HTTP: request and response types, separate from the domain's so the
//! wire can stay stable while the domain changes, with `deny_unknown_fields` on every
//! request and the checks (lengths, ranges, datums) that turn a request into domain values.

use super::error::ApiError;
use crate::datum::{self, Datum};
use crate::domain::{
    Actor, AreaClass, Callback, Caller, Crew, CrewStatus, DeclineReason, Event, EventKind,
    FaultCategory, FaultClass, FaultReport, LatLon, OutageCause, Ownership, Priority, Skill,
    Station, Ticket, TicketCommand, TicketState, Timestamp, WorkOrderReturn,
};
use crate::engine::{DispatchPolicy, StormSwitch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest accepted strings, in characters.
pub mod limits {
    pub const NAME: usize = 100;
    pub const PHONE: usize = 32;
    pub const ADDRESS: usize = 500;
    pub const DESCRIPTION: usize = 2000;
    pub const REASON: usize = 500;
    pub const CAUSE: usize = 500;
    pub const RESOLUTION: usize = 2000;
    pub const NOTE: usize = 2000;
    pub const ID: usize = 100;
    pub const IDEMPOTENCY_KEY: usize = 255;
}

/// A wire enum mirroring a domain enum, converted both ways by exhaustive matches so the two
/// cannot drift apart silently.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident <=> $domain:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => $domain::$variant),+ }
            }
        }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                match value { $($domain::$variant => $name::$variant),+ }
            }
        }
    };
}

wire_enum!(
    /// The symptom at intake.
    CategoryWire <=> FaultCategory {
        NoPower, AreaOutage, LineDown, EquipmentFire, VoltageQuality, Meter, CustomerInternal, Other,
    }
);
wire_enum!(
    /// `line_down` and `equipment_fire` are always `emergency`.
    PriorityWire <=> Priority { Emergency, Normal }
);
wire_enum!(FaultClassWire <=> FaultClass {
    HighVoltage, LowVoltage, PowerQuality, CustomerInternal, NonElectrical, Metering,
});
wire_enum!(OwnershipWire <=> Ownership { Utility, Customer });
wire_enum!(
    /// Why supply was lost, as reliability statistics class it: `fault` (the utility's
    /// network), `planned` work, `external` influence, `supply_limit` (load shed).
    OutageCauseWire <=> OutageCause { Fault, Planned, External, SupplyLimit }
);
wire_enum!(
    /// A ticket's state, in the order of the work; also `cancelled` and `merged`.
    TicketStateWire <=> TicketState {
        Queued, Dispatched, Acknowledged, EnRoute, OnSite, Restored, Returned, Closed, Cancelled,
        Merged,
    }
);
wire_enum!(AreaClassWire <=> AreaClass { Urban, Rural, Remote });
wire_enum!(SkillWire <=> Skill { Lv, Hv, Meter });
wire_enum!(
    /// How free crews are given to tickets now.
    PolicyWire <=> DispatchPolicy { Nearest, Station, Batch }
);
wire_enum!(
    /// `on` / `off`: switch storm mode and keep it so; `automatic`: hand it back to the
    /// configured queue thresholds.
    StormModeWire <=> StormSwitch { On, Off, Automatic }
);
wire_enum!(
    /// `wgs84` (the default), `gcj02` (Amap, Tencent, WeChat) or `bd09` (Baidu).
    DatumWire <=> Datum { Wgs84, Gcj02, Bd09 }
);

fn field(name: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidField(format!("{name}: {message}"))
}

/// A string of at most `max` characters.
fn bounded(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(field(name, format_args!("at most {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(field(name, "control characters are not allowed"));
    }
    Ok(())
}

/// A non-blank string of at most `max` characters.
fn required(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(field(name, "must not be empty"));
    }
    bounded(name, value, max)
}

fn optional(name: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    value.as_deref().map_or(Ok(()), |v| bounded(name, v, max))
}

/// RFC 3339 in UTC with milliseconds (the domain's precision), always three digits so
/// that times sort as strings: `2025-06-01T08:30:00.000Z`.
pub fn rfc3339(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at.as_millis())
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

pub fn parse_rfc3339(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    text.parse::<jiff::Timestamp>()
        .map(|t| Timestamp::from_millis(t.as_millisecond()))
        .map_err(|_| {
            field(
                name,
                "must be an RFC 3339 time with an offset, e.g. 2025-06-01T08:30:00Z",
            )
        })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationIn {
    /// Decimal degrees.
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datum: Option<DatumWire>,
}

/// Checks the range in the client's datum, converts to WGS84 and checks again.
fn location(name: &str, lat: f64, lon: f64, datum: Option<DatumWire>) -> Result<LatLon, ApiError> {
    LatLon::new(lat, lon).map_err(|e| field(name, e))?;
    let (lat, lon) = datum::to_wgs84(datum.map(Datum::from).unwrap_or_default(), lat, lon);
    LatLon::new(lat, lon).map_err(|e| field(name, e))
}

impl LocationIn {
    pub fn to_wgs84(&self, name: &str) -> Result<LatLon, ApiError> {
        location(name, self.lat, self.lon, self.datum)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerIn {
    /// May be empty for an anonymous caller.
    pub name: String,
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketRequest {
    pub caller: CallerIn,
    pub location: LocationIn,
    pub address: String,
    pub category: CategoryWire,
    /// Default `normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<PriorityWire>,
    /// Hospitals, water pumping, data centres: served first among equals. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub important_customer: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CreateTicketRequest {
    pub fn to_report(&self) -> Result<FaultReport, ApiError> {
        bounded("caller.name", &self.caller.name, limits::NAME)?;
        required("caller.phone", &self.caller.phone, limits::PHONE)?;
        let phone_ok = self.caller.phone.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, '-' | ' ' | '(' | ')') || (i == 0 && c == '+')
        });
        if !phone_ok {
            return Err(field(
                "caller.phone",
                "digits, spaces, '-', '(', ')' and a leading '+' only",
            ));
        }
        required("address", &self.address, limits::ADDRESS)?;
        optional("description", &self.description, limits::DESCRIPTION)?;
        Ok(FaultReport {
            caller: Caller {
                name: self.caller.name.trim().to_owned(),
                phone: self.caller.phone.trim().to_owned(),
            },
            location: self.location.to_wgs84("location")?,
            address: self.address.trim().to_owned(),
            category: self.category.into(),
            priority: self.priority.map_or(Priority::Normal, Priority::from),
            important_customer: self.important_customer.unwrap_or(false),
            description: self.description.clone().unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
}

impl ReasonRequest {
    pub fn reason(self) -> Result<String, ApiError> {
        required("reason", &self.reason, limits::REASON)?;
        Ok(self.reason)
    }
}

/// A cancellation: why, and whether the repeat reports merged into the ticket go with it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
    /// Cancel the repeat reports merged into this ticket's incident too (default false).
    /// Without it, cancelling the first report of a fault that open repeats wait on is
    /// refused with 409 `incident_has_repeats`.
    #[serde(default)]
    pub with_repeats: bool,
}

impl CancelRequest {
    pub fn command(self) -> Result<TicketCommand, ApiError> {
        required("reason", &self.reason, limits::REASON)?;
        Ok(TicketCommand::Cancel {
            reason: self.reason,
            with_repeats: self.with_repeats,
        })
    }
}

/// Steps that carry nothing (`ack`, `depart`): no body, or `{}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArriveRequest {
    /// Where the crew is; the ticket's location when left out.
    pub location: Option<LocationIn>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub cause: Option<String>,
}

impl RestoreRequest {
    pub fn cause(self) -> Result<Option<String>, ApiError> {
        optional("cause", &self.cause, limits::CAUSE)?;
        Ok(self.cause)
    }
}

/// The work order's return (回单): it cannot be returned without fault class, cause and
/// ownership.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    pub fault_class: FaultClassWire,
    pub cause: String,
    pub ownership: OwnershipWire,
    pub resolution: Option<String>,
    /// `fault` when absent: what a repair job usually is.
    pub outage_cause: Option<OutageCauseWire>,
}

impl ReturnRequest {
    pub fn order(self) -> Result<WorkOrderReturn, ApiError> {
        required("cause", &self.cause, limits::CAUSE)?;
        optional("resolution", &self.resolution, limits::RESOLUTION)?;
        Ok(WorkOrderReturn {
            fault_class: self.fault_class.into(),
            cause: self.cause,
            ownership: self.ownership.into(),
            resolution: self.resolution,
            outage_cause: self.outage_cause.map(Into::into).unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackWire {
    pub satisfied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    pub callback: CallbackWire,
}

impl CloseRequest {
    pub fn callback(self) -> Result<Callback, ApiError> {
        optional("callback.note", &self.callback.note, limits::NOTE)?;
        Ok(Callback {
            satisfied: self.callback.satisfied,
            note: self.callback.note,
        })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionRequest {
    pub lat: f64,
    pub lon: f64,
    /// When the fix was taken (RFC 3339). A fix no newer than the last one is ignored.
    pub at: Option<String>,
    pub datum: Option<DatumWire>,
}

impl PositionRequest {
    pub fn location(&self) -> Result<LatLon, ApiError> {
        location("position", self.lat, self.lon, self.datum)
    }

    pub fn fix_at(&self) -> Result<Option<Timestamp>, ApiError> {
        self.at
            .as_deref()
            .map(|a| parse_rfc3339("at", a))
            .transpose()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyRequest {
    pub on_duty: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrewTokenRequest {
    pub crew_id: String,
}

impl CrewTokenRequest {
    pub fn crew_id(self) -> Result<String, ApiError> {
        required("crew_id", &self.crew_id, limits::ID)?;
        Ok(self.crew_id)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CrewTokenResponse {
    /// The bearer token; shown once, only its digest is kept.
    pub token: String,
    pub crew_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevokedCrewTokens {
    pub crew_id: String,
    /// How many minted tokens were withdrawn (0 when the crew had none).
    pub revoked: usize,
}

/// An online backup of the embedded store, written and synced.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupOut {
    /// The backup's file on the service's machine: a store file to put in place of
    /// `dispatch.redb` (service stopped) to restore it.
    pub file: String,
    /// Events it holds: every event committed when the backup began.
    pub events: u64,
    pub bytes: u64,
    pub taken_at: String,
    /// Older backups removed after this one, beyond `[store] backups_keep`.
    pub removed: Vec<String>,
}

impl From<&crate::store::Backup> for BackupOut {
    fn from(b: &crate::store::Backup) -> Self {
        let shown = |path: &std::path::PathBuf| path.display().to_string();
        Self {
            file: shown(&b.path),
            events: b.events,
            bytes: b.bytes,
            taken_at: rfc3339(b.taken_at),
            removed: b.removed.iter().map(shown).collect(),
        }
    }
}

// ---- Responses ----

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LocationOut {
    /// WGS84 decimal degrees.
    pub lat: f64,
    pub lon: f64,
}

impl From<LatLon> for LocationOut {
    fn from(p: LatLon) -> Self {
        Self {
            lat: p.lat(),
            lon: p.lon(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadlinesOut {
    /// While a crew has the job and has not acknowledged it.
    #[schema(format = DateTime)]
    pub acknowledge_by: Option<String>,
    /// None for customer-internal faults, which have no arrival commitment.
    #[schema(format = DateTime)]
    pub arrive_by: Option<String>,
    /// Power back by then: set when the crew arrives.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub restore_by: Option<String>,
    /// The work order returned by then: set when power is restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub return_by: Option<String>,
}

/// A ticket as creation and listings show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketOut {
    pub id: String,
    pub state: TicketStateWire,
    pub station_id: String,
    pub crew_id: Option<String>,
    /// The fault this report is about; a merged ticket names the open incident it repeats.
    pub incident_id: String,
    /// Estimated travel minutes of the assigned crew at dispatch.
    pub eta_minutes: Option<f64>,
    pub deadlines: DeadlinesOut,
    pub category: CategoryWire,
    /// The effective priority (hazards are always emergencies).
    pub priority: PriorityWire,
    pub important_customer: bool,
    #[schema(format = DateTime)]
    pub reported_at: String,
    pub location: LocationOut,
    pub address: String,
    /// Estimated restoration time, for telling callers; on a single ticket's reads, when
    /// a crew is on the way or on site.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub etr: Option<String>,
}

impl From<&Ticket> for TicketOut {
    fn from(t: &Ticket) -> Self {
        Self {
            id: t.id.to_string(),
            state: t.state.into(),
            station_id: t.station.to_string(),
            crew_id: t.crew.as_ref().map(ToString::to_string),
            incident_id: t.incident.to_string(),
            eta_minutes: t.eta_minutes.map(|m| (m * 10.0).round() / 10.0),
            deadlines: DeadlinesOut {
                acknowledge_by: t.deadlines.acknowledge_by.map(rfc3339),
                arrive_by: t.deadlines.arrive_by.map(rfc3339),
                restore_by: t.deadlines.restore_by.map(rfc3339),
                return_by: t.deadlines.return_by.map(rfc3339),
            },
            category: t.report.category.into(),
            priority: t.priority.into(),
            important_customer: t.report.important_customer,
            reported_at: rfc3339(t.reported_at),
            location: t.report.location.into(),
            address: t.report.address.clone(),
            etr: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallerOut {
    pub name: String,
    pub phone: String,
}

impl CallerOut {
    /// The caller as a reader who may not read tickets sees them (an admin looking at a
    /// crew's job): the family name and the phone's first three and last four digits, as the
    /// control room masks them.
    pub fn masked(&self) -> Self {
        let mut name = self.name.trim().chars();
        let name = match name.next() {
            Some(first) => {
                let rest = name.count().max(1);
                std::iter::once(first)
                    .chain(std::iter::repeat_n('*', rest))
                    .collect()
            }
            None => String::new(),
        };
        let digits: Vec<char> = self.phone.chars().filter(char::is_ascii_digit).collect();
        let n = digits.len();
        let phone = if n >= 8 {
            let hidden = std::iter::repeat_n('*', n - 7);
            digits[..3]
                .iter()
                .copied()
                .chain(hidden)
                .chain(digits[n - 4..].iter().copied())
                .collect()
        } else {
            let shown = n.min(2);
            std::iter::repeat_n('*', n - shown)
                .chain(digits[n - shown..].iter().copied())
                .collect()
        };
        Self { name, phone }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkOrderOut {
    pub fault_class: FaultClassWire,
    pub cause: String,
    pub ownership: OwnershipWire,
    pub resolution: Option<String>,
    pub outage_cause: OutageCauseWire,
}

/// One step of a ticket's life.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    #[schema(format = DateTime)]
    pub at: String,
    /// `reported`, `merged`, `queued`, `dispatched`, `declined`, `acknowledged`, `departed`,
    /// `arrived`, `restored`, `returned`, `closed`, `cancelled`, `sla_warning` or
    /// `sla_breached`.
    pub event: String,
    /// `system`, `agent`, `supervisor` or `crew:<crew id>`.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crew_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_minutes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On `sla_warning` and `sla_breached`: `acknowledge`, `arrive`, `restore` or `return`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// On `sla_warning`: the fraction of the stage's limit that has run, e.g. 0.8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
}

fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::System => "system".into(),
        Actor::Agent => "agent".into(),
        Actor::Supervisor => "supervisor".into(),
        Actor::Crew(crew) => format!("crew:{crew}"),
    }
}

impl From<&Event> for TimelineEntry {
    fn from(event: &Event) -> Self {
        let mut entry = TimelineEntry {
            at: rfc3339(event.at),
            event: event.kind.name().to_owned(),
            actor: actor_name(&event.actor),
            crew_id: None,
            incident_id: None,
            eta_minutes: None,
            reason: None,
            stage: None,
            level: None,
        };
        match &event.kind {
            EventKind::Reported { incident, .. } | EventKind::Merged { incident, .. } => {
                entry.incident_id = Some(incident.to_string());
            }
            EventKind::Dispatched {
                crew, eta_minutes, ..
            } => {
                entry.crew_id = Some(crew.to_string());
                entry.eta_minutes = Some((eta_minutes * 10.0).round() / 10.0);
            }
            EventKind::Declined { crew, reason, .. } => {
                entry.crew_id = Some(crew.to_string());
                entry.reason = Some(match reason {
                    DeclineReason::Rejected { reason } => format!("rejected: {reason}"),
                    DeclineReason::AcknowledgeTimeout => "acknowledge_timeout".into(),
                });
            }
            EventKind::Acknowledged { crew, .. }
            | EventKind::Departed { crew, .. }
            | EventKind::Arrived { crew, .. }
            | EventKind::Restored { crew, .. }
            | EventKind::Returned { crew, .. } => entry.crew_id = Some(crew.to_string()),
            EventKind::Cancelled { crew, reason, .. } => {
                entry.crew_id = crew.as_ref().map(ToString::to_string);
                entry.reason = Some(reason.clone());
            }
            EventKind::SlaWarning { stage, level, .. } => {
                entry.stage = Some(stage.as_str().to_owned());
                entry.level = Some(level.fraction());
            }
            EventKind::SlaBreached { stage, .. } => entry.stage = Some(stage.as_str().to_owned()),
            EventKind::Queued { .. }
            | EventKind::Closed { .. }
            | EventKind::CrewDuty { .. }
            | EventKind::CrewPosition { .. }
            | EventKind::StormMode { .. } => {}
        }
        entry
    }
}

/// A ticket with everything known about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: TicketOut,
    pub caller: CallerOut,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_order: Option<WorkOrderOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Oldest first. Left out of a crew's job list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
    /// A repeat report's first report of the same fault (主单), as it stands now: what to
    /// tell a caller who rings back. Single-ticket reads of tickets merged at intake (kept
    /// if the repeat is cancelled later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_report: Option<FirstReportOut>,
}

/// How the repair of a repeat's fault stands: its first report's crew and progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FirstReportOut {
    pub ticket_id: String,
    pub state: TicketStateWire,
    pub crew_id: Option<String>,
    /// When its crew reached the site.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub arrived_at: Option<String>,
    /// When power was restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub restored_at: Option<String>,
}

impl From<&Ticket> for FirstReportOut {
    fn from(t: &Ticket) -> Self {
        Self {
            ticket_id: t.id.to_string(),
            state: t.state.into(),
            crew_id: t.crew.as_ref().map(ToString::to_string),
            arrived_at: t.arrived_at.map(rfc3339),
            restored_at: t.restored_at.map(rfc3339),
        }
    }
}

impl TicketDetail {
    pub fn new(ticket: &Ticket, timeline: Option<&[Event]>) -> Self {
        Self {
            ticket: ticket.into(),
            caller: CallerOut {
                name: ticket.report.caller.name.clone(),
                phone: ticket.report.caller.phone.clone(),
            },
            description: ticket.report.description.clone(),
            work_order: ticket.order.as_ref().map(|o| WorkOrderOut {
                fault_class: o.fault_class.into(),
                cause: o.cause.clone(),
                ownership: o.ownership.into(),
                resolution: o.resolution.clone(),
                outage_cause: o.outage_cause.into(),
            }),
            callback: ticket.callback.as_ref().map(|c| CallbackWire {
                satisfied: c.satisfied,
                note: c.note.clone(),
            }),
            cancel_reason: ticket.cancel_reason.clone(),
            timeline: timeline.map(|events| events.iter().map(TimelineEntry::from).collect()),
            first_report: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketList {
    pub items: Vec<TicketOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobList {
    pub items: Vec<TicketDetail>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StationOut {
    pub id: String,
    pub name: String,
    pub area_class: AreaClassWire,
    pub customers: u64,
    pub district: String,
    pub location: LocationOut,
}

impl From<&Station> for StationOut {
    fn from(s: &Station) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
            area_class: s.area_class.into(),
            customers: s.customers,
            district: s.district.clone(),
            location: s.location.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StationList {
    pub items: Vec<StationOut>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CrewStateWire {
    OffDuty,
    /// On duty and free.
    Available,
    /// Holds a job (`ticket_id`).
    Assigned,
    /// Missed an acknowledgement; back in the pool at its next position or duty report.
    Unresponsive,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CrewOut {
    pub id: String,
    pub station_id: String,
    pub skills: Vec<SkillWire>,
    pub state: CrewStateWire,
    pub ticket_id: Option<String>,
    /// The last known position.
    pub position: LocationOut,
    /// When this service learned it.
    #[schema(format = DateTime)]
    pub position_at: Option<String>,
    /// When the crew's phone says it took that fix (its `at`, by the phone's clock), if it
    /// sent one: a fix buffered while out of signal shows its age here.
    #[schema(format = DateTime)]
    pub position_fix_at: Option<String>,
}

impl From<&Crew> for CrewOut {
    fn from(c: &Crew) -> Self {
        let (state, ticket_id) = match &c.status {
            CrewStatus::OffDuty => (CrewStateWire::OffDuty, None),
            CrewStatus::Available => (CrewStateWire::Available, None),
            CrewStatus::Assigned(ticket) => (CrewStateWire::Assigned, Some(ticket.to_string())),
            CrewStatus::Unresponsive => (CrewStateWire::Unresponsive, None),
        };
        Self {
            id: c.id.to_string(),
            station_id: c.station.to_string(),
            skills: c.skills.iter().map(SkillWire::from).collect(),
            state,
            ticket_id,
            position: c.position.into(),
            position_at: c.position_at.map(rfc3339),
            position_fix_at: c.position_fix_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CrewList {
    pub items: Vec<CrewOut>,
}

/// One event of `/v1/events`: the timeline entry, and the ticket and crew it touched as they
/// stand after it. No phone numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveEventOut {
    /// Increases by one per event; a gap means events passed while no one watched.
    pub seq: u64,
    #[serde(flatten)]
    pub entry: TimelineEntry,
    pub ticket_id: Option<String>,
    pub ticket: Option<TicketOut>,
    pub crew: Option<CrewOut>,
}

impl From<&crate::service::LiveEvent> for LiveEventOut {
    fn from(live: &crate::service::LiveEvent) -> Self {
        Self {
            seq: live.seq,
            entry: TimelineEntry::from(&live.event),
            ticket_id: live.event.kind.ticket().map(ToString::to_string),
            ticket: live.ticket.as_ref().map(TicketOut::from),
            crew: live.crew.as_ref().map(CrewOut::from),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_caller_keeps_the_family_name_and_the_phones_ends() {
        let masked = |name: &str, phone: &str| {
            let c = CallerOut {
                name: name.into(),
                phone: phone.into(),
            }
            .masked();
            (c.name, c.phone)
        };
        // As the control room's maskPhone and maskName do.
        assert_eq!(
            masked("李明", "13800001234"),
            ("李*".into(), "138****1234".into())
        );
        assert_eq!(
            masked("Li", "+86 138-0000-1234"),
            ("L*".into(), "861******1234".into())
        );
        assert_eq!(masked("欧阳", "12345"), ("欧*".into(), "***45".into()));
        assert_eq!(masked("", ""), (String::new(), String::new()));
        assert_eq!(masked("王", "1"), ("王*".into(), "1".into()));
    }

    fn request() -> CreateTicketRequest {
        serde_json::from_value(serde_json::json!({
            "caller": {"name": "Li", "phone": "+86 138-0000-0000"},
            "location": {"lat": 23.08, "lon": 114.40},
            "address": "1 Road",
            "category": "line_down",
        }))
        .unwrap()
    }

    #[test]
    fn a_minimal_request_gets_the_documented_defaults() {
        let report = request().to_report().unwrap();
        assert_eq!(report.priority, Priority::Normal);
        assert!(!report.important_customer);
        assert_eq!(report.description, "");
        assert_eq!(report.category, FaultCategory::LineDown);
    }

    #[test]
    fn limits_and_ranges_are_enforced_with_the_field_named() {
        let mut r = request();
        r.address = "x".repeat(limits::ADDRESS + 1);
        assert!(
            matches!(r.to_report(), Err(ApiError::InvalidField(m)) if m.starts_with("address"))
        );
        let mut r = request();
        r.caller.phone = "call me".into();
        assert!(
            matches!(r.to_report(), Err(ApiError::InvalidField(m)) if m.starts_with("caller.phone"))
        );
        let mut r = request();
        r.location.lat = 91.0;
        assert!(
            matches!(r.to_report(), Err(ApiError::InvalidField(m)) if m.starts_with("location"))
        );
        let mut r = request();
        r.location.lon = f64::NAN;
        assert!(r.to_report().is_err());
    }

    #[test]
    fn gcj02_locations_arrive_in_wgs84() {
        let mut r = request();
        let (glat, glon) = datum::wgs84_to_gcj02(23.08, 114.40);
        r.location = LocationIn {
            lat: glat,
            lon: glon,
            datum: Some(DatumWire::Gcj02),
        };
        let p = r.to_report().unwrap().location;
        assert!((p.lat() - 23.08).abs() < 1e-7 && (p.lon() - 114.40).abs() < 1e-7);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(Timestamp::from_millis(1_700_000_000_000)),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            parse_rfc3339("at", "2023-11-15T06:13:20+08:00").unwrap(),
            Timestamp::from_millis(1_700_000_000_000)
        );
        assert!(parse_rfc3339("at", "yesterday").is_err());
    }
}

/// A supervisor's storm-mode switch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StormRequest {
    pub mode: StormModeWire,
}

/// Storm mode now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StormOut {
    /// While on, waiting tickets are assigned to free crews together every
    /// `[engine.batch] interval_seconds`.
    pub on: bool,
    /// Set by a supervisor's switch: the queue thresholds leave it alone until `automatic`.
    pub pinned: bool,
    pub policy: PolicyWire,
    pub queued: usize,
}

impl From<crate::service::StormStatus> for StormOut {
    fn from(s: crate::service::StormStatus) -> Self {
        Self {
            on: s.on,
            pinned: s.pinned,
            policy: s.policy.into(),
            queued: s.queued,
        }
    }
}
