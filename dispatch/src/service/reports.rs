//! The dispatcher's report reads: deadline compliance, reliability indices and estimated
//! restoration times, computed by the pure functions of [`crate::reports`] over the engine's
//! tickets under the lock (walks without copies), answered once what they saw is durable.

use super::{Dispatcher, ServiceError};
use crate::domain::{StationId, Ticket, TicketState, Timestamp};
use crate::reports::reliability::{self, Interruption};
use crate::reports::{
    EtrConfig, ReliabilityConfig, ReliabilityReport, RepairStats, SlaSummary, Window,
    estimate_restoration, summarize_sla,
};
use std::collections::HashMap;

impl Dispatcher {
    /// Deadline compliance of the tickets of `station` (or all) over `window`, as of now.
    /// Counted in place under the lock: a walk of comparisons is cheaper than copying every
    /// ticket ever reported out of it, which held every writer for the copy.
    pub async fn sla_summary(
        &self,
        window: Window,
        station: Option<&StationId>,
    ) -> Result<SlaSummary, ServiceError> {
        let (summary, horizon) = {
            let mut inner = self.lock()?;
            if let Some(id) = station {
                inner
                    .engine
                    .station(id)
                    .ok_or(ServiceError::NotFound("station"))?;
            }
            let now = inner.now(self.clock.as_ref());
            let summary = summarize_sla(
                inner
                    .engine
                    .tickets()
                    .filter(|t| station.is_none_or(|s| t.station == *s)),
                &inner.engine.config().sla,
                window,
                now,
            );
            (summary, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        Ok(summary)
    }

    /// Reliability indices of `station` (or the whole region) over `window`.
    pub async fn reliability(
        &self,
        window: Window,
        station: Option<&StationId>,
        config: &ReliabilityConfig,
    ) -> Result<ReliabilityReport, ServiceError> {
        let (interruptions, served, horizon) = {
            let inner = self.lock()?;
            let served: HashMap<StationId, u64> = match station {
                Some(id) => {
                    let found = inner
                        .engine
                        .station(id)
                        .ok_or(ServiceError::NotFound("station"))?;
                    HashMap::from([(found.id.clone(), found.customers)])
                }
                None => inner
                    .engine
                    .stations()
                    .iter()
                    .map(|s| (s.id.clone(), s.customers))
                    .collect(),
            };
            // Every ticket: an incident's repeat calls may come from across a station's
            // border, and its customers count under the station of the ticket whose crew
            // repairs it. `reliability` then keeps the stations asked about.
            let interruptions: Vec<Interruption> =
                reliability::interruptions_from_tickets(inner.engine.tickets(), config);
            (interruptions, served, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        Ok(reliability::reliability(
            &interruptions,
            &served,
            window,
            config,
        ))
    }

    /// How reports and estimates count, from the configuration.
    pub fn report_settings(&self) -> &crate::reports::ReportSettings {
        &self.options.reports
    }

    /// The ETR of each of `tickets` (same order), learned from every returned order. A merged
    /// ticket gets its incident's: the ticket whose crew repairs the fault.
    pub async fn restoration_estimates(
        &self,
        tickets: &[Ticket],
        config: &EtrConfig,
    ) -> Result<Vec<Option<Timestamp>>, ServiceError> {
        let mut inner = self.lock()?;
        let now = inner.now(self.clock.as_ref());
        // Learning walks every ticket: do it again only when an order was returned since.
        let returned = inner.returned_orders;
        let stats = match inner.repair_stats.take() {
            Some((at, stats)) if at == returned => stats,
            _ => RepairStats::learn(inner.engine.tickets(), config),
        };
        let estimates = tickets
            .iter()
            .map(|ticket| {
                let own = if ticket.state == TicketState::Merged {
                    inner
                        .engine
                        .incident(&ticket.incident)
                        .and_then(|incident| inner.engine.ticket(&incident.master))
                } else {
                    Some(ticket)
                };
                own.and_then(|t| estimate_restoration(t, &stats, now))
            })
            .collect();
        inner.repair_stats = Some((returned, stats));
        Ok(estimates)
    }
}
