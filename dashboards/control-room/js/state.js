// What the page knows: stations and their service areas, crews, open tickets, the warnings
// and breaches recorded on each ticket's running deadlines, and today's figures. Lists load
// whole at (re)connection; each live event then replaces the ticket and crew it carries.

import { FINAL_STATES, serverNow } from './format.js';

// The SLA stages a ticket's clocks run in each state (see the service's
// reports/deadlines.rs): arrival runs from the report until the crew is on site.
export function runningStages(ticket) {
  const d = ticket.deadlines ?? {};
  const stages = [];
  const add = (stage, due) => {
    if (due) stages.push({ stage, due: Date.parse(due) });
  };
  switch (ticket.state) {
    case 'dispatched':
      add('acknowledge', d.acknowledge_by);
      add('arrive', d.arrive_by);
      break;
    case 'queued':
    case 'acknowledged':
    case 'en_route':
      add('arrive', d.arrive_by);
      break;
    case 'on_site':
      add('restore', d.restore_by);
      break;
    case 'restored':
      add('return', d.return_by);
      break;
    default:
      break;
  }
  return stages;
}

const RISK_RANK = { on_time: 0, warned: 1, breached: 2 };

export class State {
  constructor() {
    this.stations = new Map();
    this.areas = [];
    this.crews = new Map();
    this.tickets = new Map();
    // ticket id → Map(stage → { level, breached }): what sla_warning / sla_breached said.
    this.recorded = new Map();
    this.reassignments = { count: 0, rejected: 0, acknowledge_timeout: 0, items: [] };
    this.compliance = null;
    this.cells = null;
    this.loaded = false;
    this.version = 0;
  }

  setStations(stations, areas) {
    this.stations = new Map(stations.map((s) => [s.id, s]));
    this.areas = areas;
  }

  // A fresh snapshot: crews, open tickets and the running deadlines.
  replace(crews, tickets, deadlines) {
    this.crews = new Map(crews.map((c) => [c.id, c]));
    this.tickets = new Map(tickets.filter((t) => !FINAL_STATES.has(t.state)).map((t) => [t.id, t]));
    this.recorded = new Map();
    for (const d of deadlines) {
      if (d.warned_level != null) this.record(d.ticket_id, d.stage, { level: d.warned_level });
      if (d.risk === 'breached') this.record(d.ticket_id, d.stage, { breached: true });
    }
    this.loaded = true;
    this.version += 1;
  }

  record(ticketId, stage, { level, breached }) {
    let stages = this.recorded.get(ticketId);
    if (!stages) {
      stages = new Map();
      this.recorded.set(ticketId, stages);
    }
    const entry = stages.get(stage) ?? { level: null, breached: false };
    if (level != null) entry.level = Math.max(entry.level ?? 0, level);
    if (breached) entry.breached = true;
    stages.set(stage, entry);
  }

  // One event of the live feed; answers what it changed, for the page to refresh.
  apply(name, data) {
    const changed = { tickets: false, crews: false, reassignments: false, slaStop: false };
    const ticket = data.ticket;
    if (ticket) {
      if (FINAL_STATES.has(ticket.state)) {
        this.tickets.delete(ticket.id);
        this.recorded.delete(ticket.id);
      } else {
        this.tickets.set(ticket.id, ticket);
      }
      changed.tickets = true;
    }
    if (data.crew) {
      this.crews.set(data.crew.id, data.crew);
      changed.crews = true;
    }
    if (name === 'sla_warning' && data.ticket_id && data.stage) {
      this.record(data.ticket_id, data.stage, { level: data.level });
    } else if (name === 'sla_breached' && data.ticket_id && data.stage) {
      this.record(data.ticket_id, data.stage, { breached: true });
      changed.slaStop = true;
    } else if (name === 'declined') {
      // The acknowledgement clock restarts with the next dispatch: what the crew that
      // declined or missed it was warned of is not the next crew's.
      this.recorded.get(data.ticket_id)?.delete('acknowledge');
      const rejected = String(data.reason ?? '').startsWith('rejected');
      const r = this.reassignments;
      r.count += 1;
      if (rejected) r.rejected += 1;
      else r.acknowledge_timeout += 1;
      r.items.unshift({
        at: data.at,
        ticket_id: data.ticket_id,
        station_id: ticket?.station_id,
        crew_id: data.crew_id,
        reason: rejected ? 'rejected' : 'acknowledge_timeout',
      });
      r.items.length = Math.min(r.items.length, 20);
      changed.reassignments = true;
    }
    if (['acknowledged', 'arrived', 'restored', 'returned', 'cancelled', 'declined'].includes(name)) {
      changed.slaStop = true;
    }
    this.version += 1;
    return changed;
  }

  // on_time, warned or breached: the worst of the ticket's running clocks.
  risk(ticket, now = serverNow()) {
    let worst = 'on_time';
    const recorded = this.recorded.get(ticket.id);
    for (const { stage, due } of runningStages(ticket)) {
      const seen = recorded?.get(stage);
      let risk = 'on_time';
      if (due < now || seen?.breached) risk = 'breached';
      else if (seen?.level != null) risk = 'warned';
      if (RISK_RANK[risk] > RISK_RANK[worst]) worst = risk;
    }
    return worst;
  }

  // What a crew is doing, as the map shows it: an assigned crew is en route or on site
  // according to its job.
  crewView(crew) {
    if (crew.state !== 'assigned') return crew.state;
    const job = crew.ticket_id ? this.tickets.get(crew.ticket_id) : null;
    if (job?.state === 'en_route') return 'en_route';
    if (job?.state === 'on_site' || job?.state === 'restored') return 'on_site';
    return 'assigned';
  }

  // Running clocks not yet breached, the least time left first.
  nearingBreach(now = serverNow()) {
    const clocks = [];
    for (const ticket of this.tickets.values()) {
      const recorded = this.recorded.get(ticket.id);
      for (const { stage, due } of runningStages(ticket)) {
        if (due < now || recorded?.get(stage)?.breached) continue;
        clocks.push({ ticket, stage, due, warned: recorded?.get(stage)?.level != null });
      }
    }
    return clocks.sort((a, b) => a.due - b.due);
  }

  // Open tickets in each area (by station), for the load colouring.
  loadByStation() {
    const load = new Map();
    for (const t of this.tickets.values()) {
      if (t.state === 'returned') continue;
      load.set(t.station_id, (load.get(t.station_id) ?? 0) + 1);
    }
    return load;
  }

  crewsOnDutyByStation() {
    const crews = new Map();
    for (const c of this.crews.values()) {
      if (c.state === 'off_duty') continue;
      crews.set(c.station_id, (crews.get(c.station_id) ?? 0) + 1);
    }
    return crews;
  }
}
