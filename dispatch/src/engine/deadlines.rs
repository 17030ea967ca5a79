//! The SLA checkpoints of open tickets: which warnings, breaches and acknowledgement
//! timeouts are pending, the next one due, and which have fired.
//!
//! It is kept by `Engine::apply` alone (a stage's start event arms its checkpoints, its stop
//! event disarms them, an `sla_warning` / `sla_breached` event records one as fired), so
//! replaying the log rebuilds it exactly: after a restart, what fired before is not fired
//! again, and what came due while the service was down is due at once.

use crate::domain::{Checkpoint, CheckpointKind, SlaStage, TicketId, Timestamp};
use foldhash::{HashMap, HashSet};
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub(super) struct DeadlineBook {
    /// Every pending checkpoint, the next due first.
    due: BTreeSet<Checkpoint>,
    /// The same checkpoints by ticket, so a stop event finds its stage's few without a scan.
    by_ticket: HashMap<TicketId, Vec<Checkpoint>>,
    /// Warnings and breaches already recorded for an open ticket: never armed again, unless
    /// the stage restarts with a clock of its own (a re-dispatch's acknowledgement).
    fired: HashMap<TicketId, HashSet<(SlaStage, CheckpointKind)>>,
}

impl DeadlineBook {
    /// Arms a checkpoint, unless it is a warning or breach that has fired already. An armed
    /// checkpoint of the same ticket, stage and kind is replaced (a stage restarted).
    pub(super) fn arm(&mut self, checkpoint: Checkpoint) {
        if self.has_fired(&checkpoint.ticket, checkpoint.stage, checkpoint.kind) {
            return;
        }
        let armed = self.by_ticket.entry(checkpoint.ticket.clone()).or_default();
        if let Some(i) = armed
            .iter()
            .position(|c| c.stage == checkpoint.stage && c.kind == checkpoint.kind)
        {
            let old = armed.swap_remove(i);
            self.due.remove(&old);
        }
        armed.push(checkpoint.clone());
        self.due.insert(checkpoint);
    }

    /// Drops the pending checkpoints of `stage`: the stage stopped.
    pub(super) fn disarm(&mut self, ticket: &TicketId, stage: SlaStage) {
        let Some(armed) = self.by_ticket.get_mut(ticket) else {
            return;
        };
        armed.retain(|c| {
            let keep = c.stage != stage;
            if !keep {
                self.due.remove(c);
            }
            keep
        });
        if armed.is_empty() {
            self.by_ticket.remove(ticket);
        }
    }

    /// Drops one pending checkpoint, wherever it is.
    pub(super) fn remove(&mut self, checkpoint: &Checkpoint) {
        self.due.remove(checkpoint);
        if let Some(armed) = self.by_ticket.get_mut(&checkpoint.ticket) {
            armed.retain(|c| c != checkpoint);
            if armed.is_empty() {
                self.by_ticket.remove(&checkpoint.ticket);
            }
        }
    }

    /// Records that a warning or breach fired: it is disarmed and never armed again.
    pub(super) fn fired(&mut self, ticket: &TicketId, stage: SlaStage, kind: CheckpointKind) {
        if let Some(armed) = self.by_ticket.get(ticket)
            && let Some(c) = armed
                .iter()
                .find(|c| c.stage == stage && c.kind == kind)
                .cloned()
        {
            self.remove(&c);
        }
        self.fired
            .entry(ticket.clone())
            .or_default()
            .insert((stage, kind));
    }

    /// Forgets what fired for `stage` of `ticket`: the stage starts a new clock of its own
    /// (the acknowledgement, with each dispatch to another crew).
    pub(super) fn restart(&mut self, ticket: &TicketId, stage: SlaStage) {
        if let Some(fired) = self.fired.get_mut(ticket) {
            fired.retain(|(s, _)| *s != stage);
        }
    }

    pub(super) fn has_fired(
        &self,
        ticket: &TicketId,
        stage: SlaStage,
        kind: CheckpointKind,
    ) -> bool {
        self.fired
            .get(ticket)
            .is_some_and(|f| f.contains(&(stage, kind)))
    }

    /// Forgets a finished ticket: nothing of it can come due any more.
    pub(super) fn close(&mut self, ticket: &TicketId) {
        if let Some(armed) = self.by_ticket.remove(ticket) {
            for c in &armed {
                self.due.remove(c);
            }
        }
        self.fired.remove(ticket);
    }

    pub(super) fn next(&self) -> Option<&Checkpoint> {
        self.due.first()
    }

    /// The earliest checkpoint passed by `now`, if any: strictly before it, as a step at the
    /// very instant of its deadline meets it. Firing at that instant would record a breach
    /// that a step in the same millisecond then meets: both in the timeline and the metrics.
    pub(super) fn first_due(&self, now: Timestamp) -> Option<Checkpoint> {
        self.due.first().filter(|c| c.at.passed_by(now)).cloned()
    }

    pub(super) fn pending(&self, ticket: &TicketId) -> &[Checkpoint] {
        self.by_ticket.get(ticket).map_or(&[], Vec::as_slice)
    }

    pub(super) fn len(&self) -> usize {
        self.due.len()
    }

    /// The two indexes agree: for `Engine::audit`.
    pub(super) fn consistent(&self) -> bool {
        self.by_ticket.values().map(Vec::len).sum::<usize>() == self.due.len()
            && self
                .by_ticket
                .values()
                .flatten()
                .all(|c| self.due.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WarnLevel;

    fn checkpoint(at: i64, ticket: &str, stage: SlaStage, kind: CheckpointKind) -> Checkpoint {
        Checkpoint {
            at: Timestamp::from_millis(at),
            ticket: TicketId::new(ticket),
            stage,
            kind,
        }
    }

    #[test]
    fn the_next_due_comes_first_and_a_stop_disarms_only_its_stage() {
        let mut book = DeadlineBook::default();
        let half = CheckpointKind::Warning(WarnLevel::from_fraction(0.5).unwrap());
        book.arm(checkpoint(30, "T1", SlaStage::Arrive, half));
        book.arm(checkpoint(
            60,
            "T1",
            SlaStage::Arrive,
            CheckpointKind::Breach,
        ));
        book.arm(checkpoint(
            10,
            "T1",
            SlaStage::Acknowledge,
            CheckpointKind::Breach,
        ));
        book.arm(checkpoint(20, "T2", SlaStage::Arrive, half));
        assert_eq!(book.next().map(|c| c.at.as_millis()), Some(10));
        book.disarm(&TicketId::new("T1"), SlaStage::Acknowledge);
        assert_eq!(book.next().map(|c| c.at.as_millis()), Some(20));
        assert_eq!(book.first_due(Timestamp::from_millis(19)), None);
        book.disarm(&TicketId::new("T1"), SlaStage::Arrive);
        assert_eq!(book.len(), 1);
        assert!(book.consistent());
    }

    #[test]
    fn a_fired_checkpoint_is_never_armed_again() {
        let mut book = DeadlineBook::default();
        let t1 = TicketId::new("T1");
        book.arm(checkpoint(
            10,
            "T1",
            SlaStage::Acknowledge,
            CheckpointKind::Breach,
        ));
        book.fired(&t1, SlaStage::Acknowledge, CheckpointKind::Breach);
        assert_eq!(book.next(), None);
        book.arm(checkpoint(
            99,
            "T1",
            SlaStage::Acknowledge,
            CheckpointKind::Breach,
        ));
        assert_eq!(book.next(), None);
        // Timeouts are per dispatch, not once per ticket.
        book.arm(checkpoint(
            99,
            "T1",
            SlaStage::Acknowledge,
            CheckpointKind::AcknowledgeTimeout,
        ));
        assert_eq!(book.len(), 1);
        book.close(&t1);
        assert_eq!(book.len(), 0);
        assert!(book.consistent());
    }
}
