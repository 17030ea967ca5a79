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
}

impl DispatchQueue {
    pub fn insert(&mut self, ticket: &Ticket) {
        self.keys.insert(QueueKey::of(ticket));
    }

    /// The key is derived from fields that do not change while a ticket waits.
    pub fn remove(&mut self, ticket: &Ticket) -> bool {
        self.keys.remove(&QueueKey::of(ticket))
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
