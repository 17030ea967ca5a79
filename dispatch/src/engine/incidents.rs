//! Open incidents, so that a repeat report of a fault already being handled is merged into it
//! instead of sending a second crew. An incident is open from its first report until its
//! ticket's power is restored (or the ticket is cancelled).

use crate::domain::{IncidentId, LatLon, MergeGroup, TicketId, Timestamp};
use crate::geo::PointIndex;
use foldhash::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: IncidentId,
    /// The ticket whose crew repairs the fault.
    pub master: TicketId,
    pub location: LatLon,
    pub group: MergeGroup,
    pub opened_at: Timestamp,
    pub last_report_at: Timestamp,
    /// Reports about this fault, the first included (致电次数).
    pub reports: u32,
    /// The merged repeat reports not cancelled since, oldest first: the customers who wait
    /// on the master's crew (子单).
    pub repeats: Vec<TicketId>,
    slot: u32,
    at_km: [f64; 2],
}

#[derive(Debug, Clone, Default)]
pub struct IncidentBook {
    open: HashMap<IncidentId, Incident>,
    by_slot: HashMap<u32, IncidentId>,
    index: PointIndex<u32>,
    next_slot: u32,
}

impl IncidentBook {
    pub fn open(
        &mut self,
        id: IncidentId,
        master: TicketId,
        location: LatLon,
        at_km: [f64; 2],
        group: MergeGroup,
        at: Timestamp,
    ) {
        if self.open.contains_key(&id) {
            return;
        }
        let slot = self.next_slot;
        self.next_slot = self.next_slot.wrapping_add(1);
        self.index.insert(slot, at_km);
        self.by_slot.insert(slot, id.clone());
        self.open.insert(
            id.clone(),
            Incident {
                id,
                master,
                location,
                group,
                opened_at: at,
                last_report_at: at,
                reports: 1,
                repeats: Vec::new(),
                slot,
                at_km,
            },
        );
    }

    pub fn record_repeat(&mut self, id: &IncidentId, ticket: &TicketId, at: Timestamp) {
        if let Some(incident) = self.open.get_mut(id) {
            incident.reports += 1;
            incident.last_report_at = incident.last_report_at.max(at);
            incident.repeats.push(ticket.clone());
        }
    }

    /// A repeat report was cancelled: its customer no longer waits on this incident. The
    /// call still counts in `reports`.
    pub fn drop_repeat(&mut self, id: &IncidentId, ticket: &TicketId) {
        if let Some(incident) = self.open.get_mut(id) {
            incident.repeats.retain(|t| t != ticket);
        }
    }

    pub fn close(&mut self, id: &IncidentId) {
        if let Some(incident) = self.open.remove(id) {
            self.index.remove(incident.slot, incident.at_km);
            self.by_slot.remove(&incident.slot);
        }
    }

    pub fn get(&self, id: &IncidentId) -> Option<&Incident> {
        self.open.get(id)
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// The nearest open incident a report of `group` may join ([`MergeGroup::may_join`])
    /// within `radius_km` of `at` whose latest report is no older than `window_start`. Ties
    /// go to the older incident.
    pub fn find_repeat_of(
        &self,
        at: LatLon,
        at_km: [f64; 2],
        group: MergeGroup,
        radius_km: f64,
        window_start: Timestamp,
    ) -> Option<&Incident> {
        self.index
            .within(at_km, radius_km * 1.02)
            .filter_map(|slot| self.by_slot.get(&slot).and_then(|id| self.open.get(id)))
            .filter(|incident| {
                group.may_join(incident.group) && incident.last_report_at >= window_start
            })
            .map(|incident| (at.haversine_km(incident.location), incident))
            .filter(|(km, _)| *km <= radius_km)
            .min_by(|a, b| {
                a.0.total_cmp(&b.0)
                    .then(a.1.opened_at.cmp(&b.1.opened_at))
                    .then(a.1.id.cmp(&b.1.id))
            })
            .map(|(_, incident)| incident)
    }
}
