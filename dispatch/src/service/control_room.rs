//! The dispatcher's reads for the control room: each station's service area for the map, the
//! deadline clocks of open tickets with the warnings and breaches recorded on them, the
//! reassignments of a period, and the fault heat map. Like the reports, each takes what it
//! needs under the engine's lock and does the rest after releasing it.

use super::{Dispatcher, ServiceError};
use crate::domain::{
    CrewId, DeclineReason, EventKind, SlaStage, Station, StationId, Ticket, TicketId, TicketState,
    Timestamp, WarnLevel,
};
use crate::reports::Window;
use crate::reports::deadlines::running_stages;
use crate::reports::heat::{FaultCell, fault_cells};
use geo::MultiPolygon;

/// A station and the area it serves (WGS84, as loaded from the region).
#[derive(Debug, Clone)]
pub struct ServiceArea {
    pub station: Station,
    pub area: MultiPolygon<f64>,
}

/// One deadline clock of an open ticket, with what has been recorded against it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningDeadline {
    pub ticket: TicketId,
    pub station: StationId,
    pub crew: Option<CrewId>,
    pub state: TicketState,
    pub stage: SlaStage,
    pub started_at: Option<Timestamp>,
    pub due: Timestamp,
    /// The highest warning level this clock has passed (the driver records each as an
    /// `sla_warning` when it runs).
    pub warned: Option<WarnLevel>,
    /// The deadline has passed.
    pub breached: bool,
}

/// A job taken from a crew: it rejected it or let the acknowledgement deadline pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Reassignment {
    pub at: Timestamp,
    pub ticket: TicketId,
    pub station: StationId,
    pub crew: CrewId,
    pub reason: DeclineReason,
}

impl Dispatcher {
    /// Every station with its service area. They never change while the service runs.
    pub async fn service_areas(&self) -> Result<Vec<ServiceArea>, ServiceError> {
        let inner = self.lock()?;
        Ok(inner
            .engine
            .service_areas()
            .into_iter()
            .map(|(station, area)| ServiceArea {
                station: station.clone(),
                area,
            })
            .collect())
    }

    /// The deadline clocks of every open ticket, the soonest due first, and the instant they
    /// were judged at.
    pub async fn running_deadlines(
        &self,
    ) -> Result<(Vec<RunningDeadline>, Timestamp), ServiceError> {
        let (mut running, now, horizon) = {
            let mut inner = self.lock()?;
            let now = inner.now(self.clock.as_ref());
            let policy = inner.engine.config().sla;
            let engine = &inner.engine;
            let mut running = Vec::new();
            for ticket in engine.tickets().filter(|t| !t.state.is_final()) {
                for clock in running_stages(ticket) {
                    let (warned, breached) = clock.reached(now, policy.warn_levels(clock.stage));
                    running.push(RunningDeadline {
                        ticket: ticket.id.clone(),
                        station: ticket.station.clone(),
                        crew: ticket.crew.clone(),
                        state: ticket.state,
                        stage: clock.stage,
                        started_at: clock.started_at,
                        due: clock.due,
                        warned,
                        breached,
                    });
                }
            }
            (running, now, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        running.sort_by(|a, b| a.due.cmp(&b.due).then_with(|| a.ticket.cmp(&b.ticket)));
        Ok((running, now))
    }

    /// Reports made within `window`, counted per H3 cell (see [`crate::reports::heat`]).
    pub async fn fault_cells(
        &self,
        window: Window,
        resolution: h3o::Resolution,
    ) -> Result<Vec<FaultCell>, ServiceError> {
        let (tickets, horizon) = {
            let inner = self.lock()?;
            let tickets: Vec<Ticket> = inner
                .engine
                .tickets()
                .filter(|t| window.contains(t.reported_at))
                .cloned()
                .collect();
            (tickets, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        Ok(fault_cells(&tickets, window, resolution))
    }

    /// Jobs taken from a crew within `window`, the latest first. The ticket keeps only who
    /// declined, so when and why come from the timelines of the tickets that can hold one.
    pub async fn reassignments(&self, window: Window) -> Result<Vec<Reassignment>, ServiceError> {
        let (candidates, horizon) = {
            let inner = self.lock()?;
            // A job is declined before the acknowledgement that finally holds, so a ticket
            // acknowledged before the window has no reassignment in it.
            let candidates: Vec<(TicketId, StationId)> = inner
                .engine
                .tickets()
                .filter(|t| {
                    t.reassigned()
                        && t.reported_at < window.to
                        && t.acknowledged_at.is_none_or(|at| at >= window.from)
                })
                .map(|t| (t.id.clone(), t.station.clone()))
                .collect();
            (candidates, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        let mut found = Vec::new();
        for (ticket, station) in candidates {
            let timeline =
                tokio::time::timeout(self.options.write_timeout, self.store.timeline(&ticket))
                    .await
                    .map_err(|_| ServiceError::Unavailable)?
                    .map_err(|error| {
                        tracing::warn!(ticket.id = %ticket, %error, "reading a timeline failed");
                        ServiceError::Unavailable
                    })?;
            for event in timeline {
                if let EventKind::Declined { crew, reason, .. } = event.kind
                    && window.contains(event.at)
                {
                    found.push(Reassignment {
                        at: event.at,
                        ticket: ticket.clone(),
                        station: station.clone(),
                        crew,
                        reason,
                    });
                }
            }
        }
        found.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.ticket.cmp(&b.ticket)));
        Ok(found)
    }
}
