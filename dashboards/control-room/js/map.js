// The region map, drawn in SVG from the service's own data: service areas (coloured by open
// load), the fault heat map's H3 cells, stations, crews by state and open tickets by
// deadline risk. No tiles and no library: a local flat projection in kilometres, a view
// transform for pan and zoom, and markers kept at a constant size on screen.

import { DRAWN_STATES, categoryLabel, crewLabel, serverNow, stateLabel } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const KM_PER_DEGREE = 111.32;
// Station names appear once zoomed in this far past the whole-region view.
const LABEL_ZOOM = 2.2;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value != null) node.setAttribute(key, value);
  }
  return node;
}

function setTitle(node, text) {
  let title = node.querySelector(':scope > title');
  if (!title) {
    title = svg('title');
    node.prepend(title);
  }
  if (title.textContent !== text) title.textContent = text;
}

export class RegionMap {
  constructor(element, { onSelect }) {
    this.svg = element;
    this.onSelect = onSelect;
    this.view = { k: 1, x: 0, y: 0 };
    this.fitK = 1;
    this.bounds = null;
    this.heatVisible = true;
    this.selected = null;
    this.tickets = new Map();
    this.crews = new Map();
    this.links = new Map();
    this.stations = new Map();
    this.areas = new Map();

    this.world = svg('g', { class: 'world' });
    this.areaLayer = svg('g', { class: 'areas' });
    this.heatLayer = svg('g', { class: 'heat' });
    this.world.append(this.areaLayer, this.heatLayer);
    this.linkLayer = svg('g', { class: 'links' });
    this.stationLayer = svg('g', { class: 'stations' });
    this.ticketLayer = svg('g', { class: 'tickets' });
    this.crewLayer = svg('g', { class: 'crews' });
    // Tickets above crews: the fault is what the room watches; a crew on site sits beside it.
    this.svg.append(this.world, this.linkLayer, this.stationLayer, this.crewLayer, this.ticketLayer);
    this.bindGestures();
    new ResizeObserver(() => this.resized()).observe(this.svg);
  }

  project([lon, lat]) {
    const p = this.projection;
    return [(lon - p.lon0) * p.kx, -(lat - p.lat0) * KM_PER_DEGREE];
  }

  toScreen([wx, wy]) {
    return [wx * this.view.k + this.view.x, wy * this.view.k + this.view.y];
  }

  // The service areas (a GeoJSON FeatureCollection) fix the projection and the bounds.
  setRegion(areas, stations) {
    let minLon = Infinity;
    let maxLon = -Infinity;
    let minLat = Infinity;
    let maxLat = -Infinity;
    for (const f of areas.features) {
      for (const polygon of f.geometry.coordinates) {
        for (const [lon, lat] of polygon[0]) {
          minLon = Math.min(minLon, lon);
          maxLon = Math.max(maxLon, lon);
          minLat = Math.min(minLat, lat);
          maxLat = Math.max(maxLat, lat);
        }
      }
    }
    const lat0 = (minLat + maxLat) / 2;
    this.projection = {
      lon0: (minLon + maxLon) / 2,
      lat0,
      kx: KM_PER_DEGREE * Math.cos((lat0 * Math.PI) / 180),
    };
    const [x0, y1] = this.project([minLon, minLat]);
    const [x1, y0] = this.project([maxLon, maxLat]);
    this.bounds = { x0, y0, x1, y1 };

    this.areaLayer.replaceChildren();
    this.areas.clear();
    for (const f of areas.features) {
      const d = f.geometry.coordinates
        .map((polygon) => polygon.map((ring) => `M${ring.map((c) => this.project(c).map((v) => v.toFixed(3)).join(',')).join('L')}Z`).join(''))
        .join('');
      const path = svg('path', { d, class: 'area', 'data-station-id': f.id, 'vector-effect': 'non-scaling-stroke' });
      this.areaLayer.append(path);
      this.areas.set(f.id, { path, feature: f });
    }

    this.stationLayer.replaceChildren();
    this.stations.clear();
    for (const s of stations) {
      const g = svg('g', { class: 'station', 'data-station-id': s.id });
      g.append(svg('path', { d: 'M0,-7L6,4.5L-6,4.5Z' }));
      const label = svg('text', { x: 9, y: 4 });
      label.textContent = s.name;
      g.append(label);
      setTitle(g, `${s.name} · ${s.district} · ${s.area_class}`);
      g.world = this.project([s.location.lon, s.location.lat]);
      this.stationLayer.append(g);
      this.stations.set(s.id, g);
    }
    this.svg.dataset.areasDrawn = String(this.areas.size);
    this.fit();
  }

  resized() {
    if (!this.bounds) return;
    const { width, height } = this.svg.getBoundingClientRect();
    if (width === 0 || height === 0) return;
    if (!this.size) {
      this.fit();
      return;
    }
    // Keep the centre where it was.
    const cx = (this.size.width / 2 - this.view.x) / this.view.k;
    const cy = (this.size.height / 2 - this.view.y) / this.view.k;
    this.size = { width, height };
    this.view.x = width / 2 - cx * this.view.k;
    this.view.y = height / 2 - cy * this.view.k;
    this.applyView();
  }

  fit() {
    if (!this.bounds) return;
    const { width, height } = this.svg.getBoundingClientRect();
    if (width === 0 || height === 0) return;
    this.size = { width, height };
    const b = this.bounds;
    const k = Math.min(width / (b.x1 - b.x0), height / (b.y1 - b.y0)) * 0.94;
    this.fitK = k;
    this.view = {
      k,
      x: width / 2 - (k * (b.x0 + b.x1)) / 2,
      y: height / 2 - (k * (b.y0 + b.y1)) / 2,
    };
    this.applyView();
  }

  zoomAt(sx, sy, factor) {
    const k = Math.min(this.fitK * 60, Math.max(this.fitK * 0.6, this.view.k * factor));
    const f = k / this.view.k;
    this.view = { k, x: sx - (sx - this.view.x) * f, y: sy - (sy - this.view.y) * f };
    this.applyView();
  }

  zoomBy(factor) {
    const { width, height } = this.svg.getBoundingClientRect();
    this.zoomAt(width / 2, height / 2, factor);
  }

  applyView() {
    const { k, x, y } = this.view;
    this.world.setAttribute('transform', `matrix(${k},0,0,${k},${x},${y})`);
    this.svg.classList.toggle('zoomed', k / this.fitK >= LABEL_ZOOM);
    for (const group of [this.stations, this.tickets, this.crews]) {
      for (const node of group.values()) this.place(node);
    }
    for (const link of this.links.values()) this.placeLink(link);
  }

  place(node) {
    const [sx, sy] = this.toScreen(node.world);
    const [dx, dy] = node.offset ?? [0, 0];
    node.setAttribute('transform', `translate(${(sx + dx).toFixed(1)},${(sy + dy).toFixed(1)})`);
  }

  placeLink(link) {
    const [x1, y1] = this.toScreen(link.from);
    const [x2, y2] = this.toScreen(link.to);
    link.setAttribute('x1', x1.toFixed(1));
    link.setAttribute('y1', y1.toFixed(1));
    link.setAttribute('x2', x2.toFixed(1));
    link.setAttribute('y2', y2.toFixed(1));
  }

  bindGestures() {
    let drag = null;
    this.svg.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const box = this.svg.getBoundingClientRect();
        this.zoomAt(e.clientX - box.left, e.clientY - box.top, Math.exp(-e.deltaY * 0.0015));
      },
      { passive: false },
    );
    this.svg.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      drag = { id: e.pointerId, x: e.clientX, y: e.clientY, vx: this.view.x, vy: this.view.y, moved: false };
    });
    this.svg.addEventListener('pointermove', (e) => {
      if (!drag || drag.id !== e.pointerId) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) this.svg.setPointerCapture(e.pointerId);
      drag.moved = true;
      this.svg.classList.add('panning');
      this.view.x = drag.vx + dx;
      this.view.y = drag.vy + dy;
      this.applyView();
    });
    const end = (e) => {
      if (!drag || drag.id !== e.pointerId) return;
      const clicked = !drag.moved;
      drag = null;
      this.svg.classList.remove('panning');
      if (clicked && e.type === 'pointerup') this.clicked(e.target);
    };
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
    this.svg.addEventListener('dblclick', (e) => {
      const box = this.svg.getBoundingClientRect();
      this.zoomAt(e.clientX - box.left, e.clientY - box.top, 2);
    });
  }

  clicked(target) {
    const ticket = target.closest?.('[data-ticket-id]');
    if (ticket) return this.onSelect({ kind: 'ticket', id: ticket.dataset.ticketId });
    const crew = target.closest?.('[data-crew-id]');
    if (crew) return this.onSelect({ kind: 'crew', id: crew.dataset.crewId });
    return this.onSelect(null);
  }

  select(selection) {
    this.selected = selection;
    for (const [id, node] of this.tickets) node.classList.toggle('selected', selection?.kind === 'ticket' && selection.id === id);
    for (const [id, node] of this.crews) node.classList.toggle('selected', selection?.kind === 'crew' && selection.id === id);
  }

  setHeatVisible(visible) {
    this.heatVisible = visible;
    this.heatLayer.style.display = visible ? '' : 'none';
  }

  // The fault heat map: cells as hexagons, more opaque where more faults were reported.
  setCells(collection) {
    if (!this.projection) return;
    this.heatLayer.replaceChildren();
    const features = collection?.features ?? [];
    const most = Math.max(1, ...features.map((f) => f.properties.reports));
    for (const f of features) {
      const ring = f.geometry.coordinates[0].map((c) => this.project(c).map((v) => v.toFixed(3)).join(','));
      const share = f.properties.reports / most;
      const cell = svg('path', {
        d: `M${ring.join('L')}Z`,
        class: 'cell',
        'fill-opacity': (0.18 + 0.62 * share).toFixed(2),
        'vector-effect': 'non-scaling-stroke',
        'data-reports': f.properties.reports,
      });
      setTitle(cell, `${f.properties.reports} reports today (${f.properties.open} open)`);
      this.heatLayer.append(cell);
    }
    this.svg.dataset.cellsDrawn = String(features.length);
  }

  // Redraws tickets, crews, links and area colours from the state, keyed by id so only what
  // changed is touched.
  update(state, stationName) {
    if (!this.projection) return;
    const now = serverNow();

    const load = state.loadByStation();
    const onDuty = state.crewsOnDutyByStation();
    for (const [id, { path, feature }] of this.areas) {
      const open = load.get(id) ?? 0;
      const crews = onDuty.get(id) ?? 0;
      const ratio = open / Math.max(1, crews);
      const level = open === 0 ? 0 : ratio <= 0.5 ? 1 : ratio <= 1 ? 2 : 3;
      path.setAttribute('class', `area load-${level}`);
      path.dataset.open = String(open);
      setTitle(path, `${feature.properties.name}: ${open} open · ${crews} crews on duty`);
    }

    const seen = new Set();
    for (const t of state.tickets.values()) {
      if (!DRAWN_STATES.has(t.state)) continue;
      seen.add(t.id);
      let node = this.tickets.get(t.id);
      if (!node) {
        node = svg('g', { class: 'ticket', 'data-ticket-id': t.id });
        node.shape = svg('circle', { r: 7 });
        node.append(node.shape);
        this.ticketLayer.append(node);
        this.tickets.set(t.id, node);
      }
      const risk = state.risk(t, now);
      const emergency = t.priority === 'emergency';
      node.dataset.state = t.state;
      node.dataset.risk = risk;
      node.setAttribute('class', `ticket ${risk}${t.state === 'queued' ? ' queued' : ''}${emergency ? ' emergency' : ''}${this.isSelected('ticket', t.id) ? ' selected' : ''}`);
      node.shape.setAttribute('r', emergency ? 9.5 : 7);
      setTitle(node, `${stateLabel(t.state)} · ${categoryLabel(t.category)} · ${stationName(t.station_id)} · ${risk.replace('_', ' ')}`);
      node.world = this.project([t.location.lon, t.location.lat]);
      this.place(node);
    }
    for (const [id, node] of this.tickets) {
      if (!seen.has(id)) {
        node.remove();
        this.tickets.delete(id);
      }
    }

    const crewsSeen = new Set();
    const linksSeen = new Set();
    for (const c of state.crews.values()) {
      crewsSeen.add(c.id);
      let node = this.crews.get(c.id);
      if (!node) {
        node = svg('g', { class: 'crew', 'data-crew-id': c.id });
        node.append(svg('rect', { x: -5.5, y: -5.5, width: 11, height: 11, rx: 2 }));
        this.crewLayer.append(node);
        this.crews.set(c.id, node);
      }
      const view = state.crewView(c);
      node.dataset.crewState = c.state;
      node.dataset.view = view;
      node.setAttribute('class', `crew ${view}${this.isSelected('crew', c.id) ? ' selected' : ''}`);
      setTitle(node, `${c.id} · ${crewLabel(view)}`);
      node.world = this.project([c.position.lon, c.position.lat]);
      // On site the crew stands on its ticket's spot: drawn beside it so both show.
      node.offset = view === 'on_site' ? [9, -9] : null;
      this.place(node);

      const job = c.ticket_id ? state.tickets.get(c.ticket_id) : null;
      if (job && ['dispatched', 'acknowledged', 'en_route'].includes(job.state)) {
        linksSeen.add(c.id);
        let link = this.links.get(c.id);
        if (!link) {
          link = svg('line', { class: 'link' });
          this.linkLayer.append(link);
          this.links.set(c.id, link);
        }
        link.setAttribute('class', `link ${job.state}`);
        link.from = node.world;
        link.to = this.project([job.location.lon, job.location.lat]);
        this.placeLink(link);
      }
    }
    for (const [id, node] of this.crews) {
      if (!crewsSeen.has(id)) {
        node.remove();
        this.crews.delete(id);
      }
    }
    for (const [id, link] of this.links) {
      if (!linksSeen.has(id)) {
        link.remove();
        this.links.delete(id);
      }
    }
    this.svg.dataset.ticketsDrawn = String(this.tickets.size);
    this.svg.dataset.crewsDrawn = String(this.crews.size);
  }

  isSelected(kind, id) {
    return this.selected?.kind === kind && this.selected.id === id;
  }
}
