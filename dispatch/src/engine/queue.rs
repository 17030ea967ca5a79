//! Tickets waiting for a crew, in the order they are served: emergencies first, then
//! important customers, then the earliest arrival deadline, then the earliest report. Beside
//! that order, each station's waiting tickets (the `station` policy serves a station from its
//! own) and where each ticket is, its area class and what skill it needs (the `batch`
//! policy's scan for the tickets near a free crew, and the `nearest` policy's for the tickets
//! a crew that came free may take, read them without a lookup per ticket).

use crate::domain::{AreaClass, Skill, Ticket, TicketId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// A waiting ticket's place in the queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueKey {
    not_emergency: bool,
    not_important: bool,
    /// Tickets with no arrival clock (customer-internal) come after every clocked one.
    arrive_by: Timestamp,
    reported_at: Timestamp,
    ticket: TicketId,
}

impl QueueKey {
    pub fn ticket(&self) -> &TicketId {
        &self.ticket
    }

    fn of(ticket: &Ticket) -> Self {
        Self {
            not_emergency: !ticket.served_as_emergency(),
            not_important: !ticket.served_as_important(),
            arrive_by: ticket
                .deadlines
                .arrive_by
                .unwrap_or(Timestamp::from_millis(i64::MAX)),
            reported_at: ticket.reported_at,
            ticket: ticket.id.clone(),
        }
    }
}

/// Where a waiting ticket is, as the engine's indexes know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spot {
    /// Dense index of the ticket's station, when the engine knows the station.
    pub station: Option<u32>,
    pub skill: Skill,
    /// The area class of the ticket's station: how far it may borrow a crew.
    pub class: AreaClass,
    /// The ticket's location in the pool's kilometre plane.
    pub at_km: [f64; 2],
}

#[derive(Debug, Clone, Default)]
pub struct DispatchQueue {
    keys: BTreeMap<QueueKey, Spot>,
    by_station: Vec<BTreeSet<QueueKey>>,
    /// The same tickets by report time, so the longest wait is known without a walk.
    by_report: BTreeSet<(Timestamp, TicketId)>,
}

impl DispatchQueue {
    pub fn insert(&mut self, ticket: &Ticket, spot: Spot) {
        let key = QueueKey::of(ticket);
        self.by_report
            .insert((ticket.reported_at, ticket.id.clone()));
        if let Some(station) = spot.station {
            let station = station as usize;
            if self.by_station.len() <= station {
                self.by_station.resize_with(station + 1, BTreeSet::new);
            }
            self.by_station[station].insert(key.clone());
        }
        if let Some(old) = self.keys.insert(key.clone(), spot)
            && old.station != spot.station
            && let Some(list) = old
                .station
                .and_then(|s| self.by_station.get_mut(s as usize))
        {
            list.remove(&key);
        }
    }

    /// The key is derived from the ticket's fields: a ticket whose precedence changes while
    /// it waits is taken out before and put back after.
    pub fn remove(&mut self, ticket: &Ticket) -> bool {
        self.take(ticket).is_some()
    }

    /// Removes a waiting ticket and answers where it was.
    pub fn take(&mut self, ticket: &Ticket) -> Option<Spot> {
        let key = QueueKey::of(ticket);
        let spot = self.keys.remove(&key)?;
        self.by_report
            .remove(&(ticket.reported_at, ticket.id.clone()));
        if let Some(list) = spot
            .station
            .and_then(|s| self.by_station.get_mut(s as usize))
        {
            list.remove(&key);
        }
        Some(spot)
    }

    /// When the waiting ticket reported earliest was reported: the caller who has waited
    /// longest.
    pub fn oldest_report(&self) -> Option<Timestamp> {
        self.by_report.first().map(|(at, _)| *at)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Waiting tickets after `key` (from the head when `None`), in serving order, with their
    /// places: a walk that can resume where it stopped.
    pub fn after(&self, key: Option<&QueueKey>) -> impl Iterator<Item = &QueueKey> {
        use std::ops::Bound;
        let start = key.map_or(Bound::Unbounded, Bound::Excluded);
        self.keys.range((start, Bound::Unbounded)).map(|(k, _)| k)
    }

    /// Waiting tickets after `key` (from the head when `None`) with their places, in serving
    /// order.
    pub fn waiting_after(
        &self,
        key: Option<&QueueKey>,
    ) -> impl Iterator<Item = (&QueueKey, &Spot)> {
        use std::ops::Bound;
        let start = key.map_or(Bound::Unbounded, Bound::Excluded);
        self.keys.range((start, Bound::Unbounded))
    }

    /// The waiting tickets of one station after `key`, in serving order.
    pub fn of_station(
        &self,
        station: u32,
        key: Option<&QueueKey>,
    ) -> impl Iterator<Item = &QueueKey> {
        use std::ops::Bound;
        let start = key.map_or(Bound::Unbounded, Bound::Excluded);
        self.by_station
            .get(station as usize)
            .into_iter()
            .flat_map(move |keys| keys.range((start, Bound::Unbounded)))
    }

    /// Whether any ticket of `station` waits.
    pub fn has_waiting_at(&self, station: u32) -> bool {
        self.by_station
            .get(station as usize)
            .is_some_and(|keys| !keys.is_empty())
    }

    /// Waiting tickets with their places, in serving order.
    pub fn waiting(&self) -> impl Iterator<Item = (&QueueKey, &Spot)> {
        self.keys.iter()
    }

    /// Waiting tickets in serving order.
    pub fn iter(&self) -> impl Iterator<Item = &TicketId> {
        self.keys.keys().map(|key| &key.ticket)
    }

    pub fn contains(&self, ticket: &Ticket) -> bool {
        self.keys.contains_key(&QueueKey::of(ticket))
    }

    /// The station lists hold exactly the waiting tickets that have a station: for audits.
    pub fn consistent(&self) -> bool {
        let listed: usize = self.by_station.iter().map(BTreeSet::len).sum();
        let with_station = self.keys.values().filter(|s| s.station.is_some()).count();
        listed == with_station
            && self.by_station.iter().enumerate().all(|(station, keys)| {
                keys.iter().all(|key| {
                    self.keys
                        .get(key)
                        .is_some_and(|spot| spot.station == Some(station as u32))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AreaClass, Caller, FaultCategory, FaultReport, IncidentId, LatLon, Priority, StationId,
    };

    fn ticket(id: &str, reported_minute: i64, priority: Priority) -> Ticket {
        let report = FaultReport {
            caller: Caller {
                name: "李明".into(),
                phone: "13800001234".into(),
            },
            location: LatLon::new(23.0, 114.0).expect("a valid point"),
            address: String::new(),
            category: FaultCategory::NoPower,
            priority,
            important_customer: false,
            description: String::new(),
        };
        let at = Timestamp::from_millis(reported_minute * 60_000);
        Ticket::new(
            TicketId::new(id),
            IncidentId::new(format!("I-{id}")),
            StationId::new("S1"),
            AreaClass::Urban,
            report,
            at,
            Some(at.plus_minutes(45)),
        )
    }

    #[test]
    fn the_longest_wait_is_the_earliest_report_whatever_the_serving_order() {
        let mut queue = DispatchQueue::default();
        // The later report is an emergency: served first, but not the longest wait.
        let early = ticket("T-early", 10, Priority::Normal);
        let late = ticket("T-late", 20, Priority::Emergency);
        let spot = Spot {
            station: Some(0),
            skill: early.report.category.required_skill(),
            class: early.area_class,
            at_km: [0.0, 0.0],
        };
        queue.insert(&early, spot);
        queue.insert(&late, spot);
        assert_eq!(queue.iter().next(), Some(&late.id));
        assert_eq!(queue.oldest_report(), Some(early.reported_at));
        assert!(queue.remove(&early));
        assert_eq!(queue.oldest_report(), Some(late.reported_at));
        assert!(queue.remove(&late));
        assert_eq!(queue.oldest_report(), None);
    }
}
