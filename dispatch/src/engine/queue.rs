//! Tickets waiting for a crew, in the order they are served: emergencies first, then
//! important customers, then the earliest arrival deadline, then the earliest report.

use crate::domain::{Priority, Ticket, TicketId, Timestamp};
use std::collections::BTreeSet;

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
            not_emergency: ticket.priority != Priority::Emergency,
            not_important: !ticket.report.important_customer,
            arrive_by: ticket
                .deadlines
                .arrive_by
                .unwrap_or(Timestamp::from_millis(i64::MAX)),
            reported_at: ticket.reported_at,
            ticket: ticket.id.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DispatchQueue {
    keys: BTreeSet<QueueKey>,
    /// The same tickets by report time, so the longest wait is known without a walk.
    by_report: BTreeSet<(Timestamp, TicketId)>,
}

impl DispatchQueue {
    pub fn insert(&mut self, ticket: &Ticket) {
        self.keys.insert(QueueKey::of(ticket));
        self.by_report
            .insert((ticket.reported_at, ticket.id.clone()));
    }

    /// The key is derived from fields that do not change while a ticket waits.
    pub fn remove(&mut self, ticket: &Ticket) -> bool {
        self.by_report
            .remove(&(ticket.reported_at, ticket.id.clone()));
        self.keys.remove(&QueueKey::of(ticket))
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
        self.keys.range((start, Bound::Unbounded))
    }

    /// Waiting tickets in serving order.
    pub fn iter(&self) -> impl Iterator<Item = &TicketId> {
        self.keys.iter().map(|key| &key.ticket)
    }

    pub fn contains(&self, ticket: &Ticket) -> bool {
        self.keys.contains(&QueueKey::of(ticket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AreaClass, Caller, FaultCategory, FaultReport, IncidentId, LatLon, StationId,
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
        queue.insert(&early);
        queue.insert(&late);
        assert_eq!(queue.iter().next(), Some(&late.id));
        assert_eq!(queue.oldest_report(), Some(early.reported_at));
        assert!(queue.remove(&early));
        assert_eq!(queue.oldest_report(), Some(late.reported_at));
        assert!(queue.remove(&late));
        assert_eq!(queue.oldest_report(), None);
    }
}
