// The details drawer: a ticket or a crew picked on the map or in a panel, with the ticket's
// timeline. The caller's phone arrives in full from the API and is masked before it is put
// anywhere on the page.

import { categoryLabel, clockTime, crewLabel, duration, el, maskName, maskPhone, serverNow, shortId, stageLabel, stateLabel } from './format.js';
import { runningStages } from './state.js';

// The ticket's deadlines for the drawer, each with its seconds left while its clock runs and
// `null` once the clock stopped: an arrival met at minute 30 of 45 must not count down into
// "passed" at minute 46.
export function deadlineRows(ticket, now) {
  const running = new Set(runningStages(ticket).map((s) => `${s.stage}_by`));
  return Object.entries(ticket.deadlines ?? {})
    .filter(([, at]) => at)
    .map(([name, at]) => ({ name, at, left: running.has(name) ? (Date.parse(at) - now) / 1000 : null }));
}

const EVENT_LABELS = {
  reported: 'Reported',
  merged: 'Merged into an open incident',
  queued: 'Queued: no crew free',
  dispatched: 'Dispatched',
  declined: 'Taken from the crew',
  acknowledged: 'Acknowledged',
  departed: 'Departed',
  arrived: 'Arrived on site',
  restored: 'Power restored',
  returned: 'Work order returned',
  closed: 'Closed after callback',
  cancelled: 'Cancelled',
  sla_warning: 'Deadline warning',
  sla_breached: 'Deadline breached',
};

function row(label, ...value) {
  return el('div', { class: 'row' }, el('dt', {}, label), el('dd', {}, ...value));
}

export class Details {
  constructor(container, { api, state, stationName, onSelect }) {
    Object.assign(this, { container, api, state, stationName, onSelect });
    this.selection = null;
    this.detail = null;
    this.refetch = null;
  }

  async show(selection) {
    this.selection = selection;
    this.detail = null;
    if (!selection) {
      this.container.hidden = true;
      this.container.replaceChildren();
      return;
    }
    this.container.hidden = false;
    this.render();
    await this.fetch();
  }

  // The ticket shown, or the crew's job.
  ticketId() {
    if (!this.selection) return null;
    if (this.selection.kind === 'ticket') return this.selection.id;
    return this.state.crews.get(this.selection.id)?.ticket_id ?? null;
  }

  async fetch() {
    const selection = this.selection;
    const id = this.ticketId();
    if (!id) {
      this.detail = null;
      this.render();
      return;
    }
    try {
      const detail = await this.api.get(`/v1/tickets/${encodeURIComponent(id)}`);
      if (selection !== this.selection) return;
      // The full number never reaches the page.
      if (detail.caller) detail.caller = { name: maskName(detail.caller.name), phone: maskPhone(detail.caller.phone) };
      this.detail = detail;
    } catch (error) {
      if (selection !== this.selection) return;
      this.detail = { error: error.message };
    }
    this.render();
  }

  // A live event: refetch the timeline when it is about what is shown.
  eventFor(data) {
    if (!this.selection) return;
    const shown = this.ticketId();
    const ours = (shown && data.ticket_id === shown) || (this.selection.kind === 'crew' && data.crew?.id === this.selection.id);
    if (!ours) return;
    clearTimeout(this.refetch);
    this.refetch = setTimeout(() => this.fetch(), 400);
  }

  render() {
    if (!this.selection) return;
    const close = el('button', { class: 'close', title: 'Close', 'aria-label': 'Close', onclick: () => this.onSelect(null) }, '×');
    const parts = this.selection.kind === 'crew' ? this.crewParts() : this.ticketParts(this.detail, this.state.tickets.get(this.selection.id));
    this.container.replaceChildren(close, ...parts);
    this.container.dataset.kind = this.selection.kind;
    this.container.dataset.id = this.selection.id;
  }

  crewParts() {
    const crew = this.state.crews.get(this.selection.id);
    if (!crew) return [el('h3', {}, this.selection.id), el('p', { class: 'empty' }, 'Unknown crew')];
    const view = this.state.crewView(crew);
    const parts = [
      el('h3', {}, el('span', { class: `chip crew-chip ${view}` }, crewLabel(view)), ' ', crew.id),
      el(
        'dl',
        {},
        row('Station', this.stationName(crew.station_id)),
        row('Skills', crew.skills.join(', ').toUpperCase()),
        row('Last position', clockTime(crew.position_at), ` (${crew.position.lat.toFixed(4)}, ${crew.position.lon.toFixed(4)})`),
        row(
          'Job',
          crew.ticket_id
            ? el('a', { href: '#', onclick: (e) => (e.preventDefault(), this.onSelect({ kind: 'ticket', id: crew.ticket_id })) }, `#${shortId(crew.ticket_id)}`)
            : 'none',
        ),
      ),
    ];
    if (crew.ticket_id) parts.push(el('h4', {}, 'Its job'), ...this.ticketParts(this.detail, this.state.tickets.get(crew.ticket_id), true));
    return parts;
  }

  ticketParts(detail, live, nested = false) {
    const t = live ?? detail;
    if (!t) {
      if (detail?.error) return [el('p', { class: 'empty' }, detail.error)];
      return [el('p', { class: 'empty' }, 'Loading…')];
    }
    const now = serverNow();
    const risk = live ? this.state.risk(live, now) : null;
    const deadlines = deadlineRows(t, now).map(({ name, at, left }) => {
      const label = `${name.replace('_by', '').replace('acknowledge', 'ack')} by ${clockTime(at)}`;
      if (left === null) return el('li', { class: 'stopped' }, label, el('span', { class: 'left' }, ' stopped'));
      return el('li', { class: left < 0 ? 'passed' : '' }, label, el('span', { class: 'left' }, ` ${duration(left)}`));
    });
    const parts = [];
    if (!nested) {
      parts.push(
        el(
          'h3',
          {},
          el('span', { class: `chip state-chip` }, stateLabel(t.state)),
          ' ',
          risk ? el('span', { class: `chip risk-chip ${risk}` }, risk.replace('_', ' ')) : '',
          ' ',
          `#${shortId(t.id)}`,
        ),
      );
    }
    parts.push(
      el(
        'dl',
        {},
        row('Fault', categoryLabel(t.category), t.priority === 'emergency' ? el('span', { class: 'chip emergency' }, 'emergency') : '', t.important_customer ? el('span', { class: 'chip important' }, 'important customer') : ''),
        row('Station', this.stationName(t.station_id)),
        row(
          'Crew',
          t.crew_id && !nested ? el('a', { href: '#', onclick: (e) => (e.preventDefault(), this.onSelect({ kind: 'crew', id: t.crew_id })) }, t.crew_id) : (t.crew_id ?? 'none yet'),
          t.eta_minutes != null ? ` · ETA ${t.eta_minutes} min at dispatch` : '',
        ),
        row('Address', t.address),
        detail?.caller ? row('Caller', `${detail.caller.name} · ${detail.caller.phone}`) : '',
        row('Reported', clockTime(t.reported_at)),
        deadlines.length ? row('Deadlines', el('ul', { class: 'deadlines' }, deadlines)) : '',
        detail?.etr ? row('Power back by', clockTime(detail.etr)) : '',
        detail?.description ? row('Said', detail.description) : '',
      ),
    );
    if (detail?.timeline) {
      parts.push(
        el(
          'ol',
          { class: 'timeline' },
          detail.timeline.map((entry) =>
            el(
              'li',
              { class: `ev ${entry.event}` },
              el('time', {}, clockTime(entry.at)),
              el(
                'span',
                { class: 'what' },
                EVENT_LABELS[entry.event] ?? entry.event,
                entry.stage ? ` · ${stageLabel(entry.stage)}` : '',
                entry.level != null ? ` ${Math.round(entry.level * 100)}%` : '',
                entry.reason ? ` · ${entry.reason}` : '',
              ),
              el('span', { class: 'actor' }, entry.actor),
            ),
          ),
        ),
      );
    }
    return parts;
  }
}
