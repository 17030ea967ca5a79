//! The pure domain core: tickets, incidents, crews, stations, deadlines and the events that
//! record every change. Nothing here does I/O or reads a clock: callers hand in `now`.

mod crew;
mod event;
mod fault;
mod ids;
mod location;
mod sla;
mod station;
mod ticket;
mod time;

pub use crew::{Crew, CrewStatus, SkillSet};
pub use event::{Actor, Event, EventKind, StormReason};
pub use fault::{
    Callback, FaultCategory, FaultClass, MergeGroup, OutageCause, Ownership, Priority,
    WorkOrderReturn,
};
pub use geo_data::format::{AreaClass, Skill};
pub use ids::{CrewId, IncidentId, StationId, TicketId};
pub use location::{LatLon, LocationError};
pub use sla::{
    Checkpoint, CheckpointKind, Deadlines, LimitOverrides, SlaPolicy, SlaPolicyError, SlaStage,
    StageWarnings, WarnLevel, WarnLevels, WarnLevelsError,
};
pub use station::Station;
pub use ticket::{
    Caller, DeclineReason, FaultReport, Precedence, Ticket, TicketCommand, TicketState,
    TransitionError,
};
pub use time::Timestamp;
