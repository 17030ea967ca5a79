// The control room: signs in with a supervisor token (kept for this browser session only),
// draws the region, loads the lists and keeps them current from the live feed.

import { Api, AuthError } from './api.js';
import { Details } from './details.js';
import { RegionMap } from './map.js';
import { renderCompliance, renderCrews, renderHeader, renderHotSpots, renderNearing, renderQueue, renderReassignments, renderStates } from './panels.js';
import { State } from './state.js';
import { LiveStream } from './stream.js';
import { clockTime, learnServerTime, serverNow } from './format.js';

const TOKEN_KEY = 'dispatch.control-room.token';
// Figures that cost the service a scan: refreshed at most this often from events, and on
// this period anyway so "today" moves on.
const FIGURES_MIN_GAP_MS = 5_000;
const FIGURES_PERIOD_MS = 30_000;

const state = new State();
let api = null;
let stream = null;
let details = null;
let timers = [];

const stationName = (id) => state.stations.get(id)?.name ?? id ?? '—';

const map = new RegionMap(document.getElementById('map'), { onSelect: select });

function select(selection) {
  map.select(selection);
  details?.show(selection);
}

// A token in the URL fragment (never sent to the server) signs in and is then removed
// from the address bar, so it is neither bookmarked nor shown over a shoulder.
function tokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  try {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  } catch {
    // A mangled fragment: the sign-in form asks instead.
  }
  history.replaceState(null, '', location.pathname + location.search);
}

function setStatus(status) {
  document.body.dataset.stream = status;
  const label = { connecting: 'connecting…', reconnecting: 'reconnecting…', live: 'live', signed_out: 'signed out', error: 'cannot reach the service' }[status] ?? status;
  document.getElementById('stream-status').textContent = label;
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  const now = serverNow();
  map.update(state, stationName);
  const figures = renderHeader(state, now);
  renderStates(state);
  renderQueue(state, now, figures);
  renderNearing(state, now, { stationName, onSelect: select });
  renderCrews(state);
  renderReassignments(state, { stationName, onSelect: select });
  document.getElementById('clock').textContent = clockTime(new Date(now).toISOString());
  if (state.loaded) document.body.dataset.loaded = 'true';
}

// Compliance, reassignments and the heat map: read again after the events that change them,
// but not more often than every few seconds.
let figuresAt = 0;
let figuresTimer = null;
function refreshFigures(now = false) {
  const wait = now ? 0 : Math.max(0, figuresAt + FIGURES_MIN_GAP_MS - Date.now());
  if (figuresTimer && !now) return;
  clearTimeout(figuresTimer);
  figuresTimer = setTimeout(async () => {
    figuresTimer = null;
    figuresAt = Date.now();
    const [sla, reassignments, cells] = await Promise.allSettled([api.slaToday(), api.reassignmentsToday(), api.faultCellsToday()]);
    if (sla.status === 'fulfilled') {
      state.compliance = sla.value;
      renderCompliance(state);
    }
    if (reassignments.status === 'fulfilled') {
      state.reassignments = reassignments.value;
      renderReassignments(state, { stationName, onSelect: select });
    }
    if (cells.status === 'fulfilled') {
      state.cells = cells.value;
      map.setCells(cells.value);
      renderHotSpots(state);
    }
    for (const failed of [sla, reassignments, cells].filter((r) => r.status === 'rejected')) {
      if (failed.reason instanceof AuthError) return signIn(failed.reason.message);
    }
  }, wait);
}

async function reload() {
  const [crews, tickets, deadlines] = await Promise.all([api.get('/v1/crews'), api.openTickets(), api.get('/v1/deadlines')]);
  learnServerTime(deadlines.now);
  state.replace(crews.items, tickets, deadlines.items);
  scheduleRender();
  refreshFigures(true);
  if (details?.selection) details.fetch();
}

function onEvent(frame) {
  let data;
  try {
    data = JSON.parse(frame.data);
  } catch {
    return;
  }
  const changed = state.apply(frame.event, data);
  if (changed.slaStop || changed.reassignments || frame.event === 'reported') refreshFigures();
  details?.eventFor(data);
  scheduleRender();
}

function stop() {
  stream?.stop();
  stream = null;
  timers.forEach(clearInterval);
  timers = [];
}

function signIn(message) {
  stop();
  sessionStorage.removeItem(TOKEN_KEY);
  setStatus('signed_out');
  const dialog = document.getElementById('signin');
  document.getElementById('signin-message').textContent = message ?? '';
  if (!dialog.open) dialog.showModal();
  document.getElementById('signin-token').focus();
}

async function start(token) {
  stop();
  api = new Api(token);
  let stations;
  let areas;
  try {
    [stations, areas] = await Promise.all([api.get('/v1/stations'), api.get('/v1/service-areas')]);
  } catch (error) {
    if (error instanceof AuthError) return signIn(error.message);
    setStatus('error');
    timers.push(setTimeout(() => start(token), 5000));
    return;
  }
  state.setStations(stations.items, areas);
  map.setRegion(areas, stations.items);
  details = new Details(document.getElementById('details'), { api, state, stationName, onSelect: select });
  stream = new LiveStream({
    api,
    reload,
    onEvent,
    onStatus: setStatus,
    onAuthError: (error) => signIn(error.message),
  });
  stream.start();
  // Time passes without events: deadlines run out and waits grow.
  timers.push(setInterval(scheduleRender, 1000));
  timers.push(setInterval(() => details?.render(), 1000));
  timers.push(setInterval(() => refreshFigures(), FIGURES_PERIOD_MS));
}

function bindControls() {
  document.getElementById('zoom-in').addEventListener('click', () => map.zoomBy(1.6));
  document.getElementById('zoom-out').addEventListener('click', () => map.zoomBy(1 / 1.6));
  document.getElementById('zoom-fit').addEventListener('click', () => map.fit());
  const heat = document.getElementById('toggle-heat');
  heat.addEventListener('click', () => {
    const on = heat.getAttribute('aria-pressed') !== 'true';
    heat.setAttribute('aria-pressed', String(on));
    map.setHeatVisible(on);
  });
  document.getElementById('signout').addEventListener('click', () => signIn('Signed out.'));
  document.getElementById('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('signin-token');
    const token = input.value.trim();
    if (!token) return;
    input.value = '';
    sessionStorage.setItem(TOKEN_KEY, token);
    document.getElementById('signin').close();
    start(token);
  });
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLInputElement) return;
    if (e.key === 'Escape') select(null);
    if (e.key === '+' || e.key === '=') map.zoomBy(1.6);
    if (e.key === '-') map.zoomBy(1 / 1.6);
    if (e.key === '0') map.fit();
  });
}

bindControls();
tokenFromFragment();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else signIn('');
