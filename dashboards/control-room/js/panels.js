// The side panels and the header figures: open tickets by state, the queue, the deadlines
// nearest to a breach, compliance today, crews by state, reassignments and fault hot spots.
// Each render replaces a panel's body from the state; they are small.

import { CREW_VIEWS, TICKET_STATES, clockTime, crewLabel, duration, el, percent, shortId, stageLabel, stateLabel } from './format.js';

const NEARING_SHOWN = 6;
const STAGES = ['acknowledge', 'arrive', 'restore', 'return'];
const CLASSES = ['urban', 'rural', 'remote'];

function setText(id, text) {
  const node = document.getElementById(id);
  if (node && node.textContent !== text) node.textContent = text;
}

function body(panelId) {
  return document.querySelector(`#${panelId} .panel-body`);
}

export function renderHeader(state, now) {
  let open = 0;
  let breached = 0;
  let queued = 0;
  let oldest = null;
  for (const t of state.tickets.values()) {
    open += 1;
    if (state.risk(t, now) === 'breached') breached += 1;
    if (t.state === 'queued') {
      queued += 1;
      const at = Date.parse(t.reported_at);
      if (oldest == null || at < oldest) oldest = at;
    }
  }
  let free = 0;
  let onDuty = 0;
  for (const c of state.crews.values()) {
    if (c.state !== 'off_duty') onDuty += 1;
    if (c.state === 'available') free += 1;
  }
  setText('kpi-open', String(open));
  setText('kpi-queued', String(queued));
  setText('kpi-oldest', oldest == null ? '—' : duration((now - oldest) / 1000));
  setText('kpi-breached', String(breached));
  setText('kpi-crews', `${free} / ${onDuty}`);
  document.getElementById('kpi-breached')?.closest('.kpi')?.classList.toggle('alarm', breached > 0);
  document.getElementById('kpi-queued')?.closest('.kpi')?.classList.toggle('warn', queued > 0);
  return { open, queued, oldest };
}

export function renderStates(state) {
  const counts = Object.fromEntries(TICKET_STATES.map((s) => [s, 0]));
  for (const t of state.tickets.values()) counts[t.state] = (counts[t.state] ?? 0) + 1;
  const most = Math.max(1, ...Object.values(counts));
  body('panel-states').replaceChildren(
    ...TICKET_STATES.map((s) => {
      // Through the CSSOM: the page's policy refuses inline style attributes.
      const fill = el('span', { class: 'bar-fill' });
      fill.style.width = `${(100 * counts[s]) / most}%`;
      return el(
        'div',
        { class: `bar-row state-${s}`, dataset: { state: s, count: counts[s] } },
        el('span', { class: 'bar-label' }, stateLabel(s)),
        el('span', { class: 'bar-track' }, fill),
        el('span', { class: 'bar-count' }, String(counts[s])),
      );
    }),
  );
}

export function renderQueue(state, now, figures) {
  const emergencies = [...state.tickets.values()].filter((t) => t.state === 'queued' && t.priority === 'emergency').length;
  body('panel-queue').replaceChildren(
    el(
      'div',
      { class: 'queue-figures' },
      el('div', { class: 'big', dataset: { queued: figures.queued } }, String(figures.queued), el('small', {}, 'waiting')),
      el('div', { class: 'big' }, figures.oldest == null ? '—' : duration((now - figures.oldest) / 1000), el('small', {}, 'oldest wait')),
      el('div', { class: `big${emergencies > 0 ? ' alarm' : ''}` }, String(emergencies), el('small', {}, 'emergencies')),
    ),
  );
}

export function renderNearing(state, now, { stationName, onSelect }) {
  const clocks = state.nearingBreach(now).slice(0, NEARING_SHOWN);
  const list = clocks.map(({ ticket, stage, due, warned }) => {
    const left = (due - now) / 1000;
    return el(
      'li',
      {
        class: `clock ${warned ? 'warned' : 'on_time'}`,
        dataset: { ticketId: ticket.id },
        tabindex: '0',
        onclick: () => onSelect({ kind: 'ticket', id: ticket.id }),
      },
      el('span', { class: 'left' }, duration(left)),
      el('span', { class: 'what' }, `${stageLabel(stage)} · ${stationName(ticket.station_id)}`),
      el('span', { class: 'who' }, ticket.crew_id ?? 'no crew', ' · #', shortId(ticket.id)),
    );
  });
  body('panel-risk').replaceChildren(list.length ? el('ol', { class: 'clocks' }, list) : el('p', { class: 'empty' }, 'No deadline running'));
}

function complianceCell(counts) {
  if (!counts || counts.count === 0) return el('td', { class: 'none' }, '—');
  const p = counts.compliance_percent;
  const level = p >= 95 ? 'good' : p >= 85 ? 'fair' : 'poor';
  return el('td', { class: level, title: `${counts.met} met, ${counts.breached} breached` }, percent(p), el('small', {}, String(counts.count)));
}

export function renderCompliance(state) {
  const summary = state.compliance;
  if (!summary) {
    body('panel-compliance').replaceChildren(el('p', { class: 'empty' }, 'Loading…'));
    return;
  }
  const byStage = new Map(summary.stages.map((s) => [s.stage, s]));
  const rows = STAGES.map((stage) => {
    const s = byStage.get(stage);
    const byClass = new Map((s?.by_area_class ?? []).map((c) => [c.area_class, c]));
    return el('tr', { dataset: { stage } }, el('th', {}, stageLabel(stage)), complianceCell(s), ...CLASSES.map((c) => complianceCell(byClass.get(c))));
  });
  body('panel-compliance').replaceChildren(
    el(
      'table',
      { class: 'compliance' },
      el('thead', {}, el('tr', {}, el('th', {}, ''), el('th', {}, 'All'), ...CLASSES.map((c) => el('th', {}, c[0].toUpperCase() + c.slice(1))))),
      el('tbody', {}, rows),
    ),
  );
}

export function renderCrews(state) {
  const counts = Object.fromEntries(CREW_VIEWS.map((v) => [v, 0]));
  for (const c of state.crews.values()) {
    const view = state.crewView(c);
    counts[view] = (counts[view] ?? 0) + 1;
  }
  body('panel-crews').replaceChildren(
    el(
      'ul',
      { class: 'crew-counts' },
      CREW_VIEWS.map((v) =>
        el('li', { class: `crew-count ${v}`, dataset: { view: v, count: counts[v] } }, el('span', { class: 'swatch' }), el('span', { class: 'n' }, String(counts[v])), el('span', { class: 'label' }, crewLabel(v))),
      ),
    ),
  );
}

export function renderReassignments(state, { stationName, onSelect }) {
  const r = state.reassignments;
  const items = r.items.slice(0, 4).map((item) =>
    el(
      'li',
      { dataset: { ticketId: item.ticket_id }, onclick: () => onSelect({ kind: 'ticket', id: item.ticket_id }) },
      el('span', { class: 'time' }, clockTime(item.at)),
      el('span', { class: `reason ${item.reason}` }, item.reason === 'rejected' ? 'rejected' : 'no ack'),
      el('span', { class: 'who' }, `${item.crew_id} · ${stationName(item.station_id)}`),
    ),
  );
  body('panel-reassign').replaceChildren(
    el(
      'div',
      { class: 'reassign-figures', dataset: { count: r.count } },
      el('div', { class: 'big' }, String(r.count), el('small', {}, 'today')),
      el('div', { class: 'big' }, String(r.rejected), el('small', {}, 'rejected')),
      el('div', { class: 'big' }, String(r.acknowledge_timeout), el('small', {}, 'no ack in time')),
    ),
    items.length ? el('ul', { class: 'reassign-list' }, items) : el('p', { class: 'empty' }, 'None today'),
  );
}

// The hottest cells of the heat map, named by the nearest station.
export function renderHotSpots(state) {
  const features = state.cells?.features ?? [];
  const stations = [...state.stations.values()];
  const near = (lon, lat) => {
    let best = null;
    let bestD = Infinity;
    for (const s of stations) {
      const d = (s.location.lon - lon) ** 2 + (s.location.lat - lat) ** 2;
      if (d < bestD) {
        bestD = d;
        best = s;
      }
    }
    return best?.name ?? '—';
  };
  const total = features.reduce((n, f) => n + f.properties.reports, 0);
  const rows = features.slice(0, 4).map((f) => {
    const ring = f.geometry.coordinates[0];
    const lon = ring.reduce((a, c) => a + c[0], 0) / ring.length;
    const lat = ring.reduce((a, c) => a + c[1], 0) / ring.length;
    return el('li', {}, el('span', { class: 'n' }, String(f.properties.reports)), el('span', { class: 'label' }, near(lon, lat)), el('span', { class: 'open' }, `${f.properties.open} open`));
  });
  body('panel-heat').replaceChildren(
    el('p', { class: 'note' }, `${total} reports today, ${features.length} H3 cells`),
    rows.length ? el('ol', { class: 'hot-spots' }, rows) : el('p', { class: 'empty' }, 'No reports today'),
  );
}
