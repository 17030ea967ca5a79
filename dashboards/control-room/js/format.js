// Formatting for people: times, durations, names of states and stages, and the masking that
// keeps a caller's phone number off the wall screen.

export const TICKET_STATES = [
  'queued', 'dispatched', 'acknowledged', 'en_route', 'on_site', 'restored', 'returned',
];

// Tickets the map draws: the fault is not yet repaired. Returned ones only wait for the
// callback, so they are counted but not drawn.
export const DRAWN_STATES = new Set(TICKET_STATES.slice(0, 6));

export const FINAL_STATES = new Set(['closed', 'cancelled', 'merged']);

// The service's clock as this browser reckons it. Deadlines are the service's: a wall PC
// whose clock runs three minutes fast would otherwise turn them red three minutes early.
let serverOffsetMs = 0;

export function serverNow() {
  return Date.now() + serverOffsetMs;
}

// `iso`: the service's time in an answer just received (`now` of /v1/deadlines).
export function learnServerTime(iso) {
  const at = Date.parse(iso);
  if (Number.isFinite(at)) serverOffsetMs = at - Date.now();
}

const STATE_LABELS = {
  queued: 'Queued',
  dispatched: 'Dispatched',
  acknowledged: 'Acknowledged',
  en_route: 'En route',
  on_site: 'On site',
  restored: 'Restored',
  returned: 'Order returned',
  closed: 'Closed',
  cancelled: 'Cancelled',
  merged: 'Merged',
};

export const CREW_VIEWS = ['available', 'assigned', 'en_route', 'on_site', 'off_duty', 'unresponsive'];

const CREW_LABELS = {
  available: 'Available',
  assigned: 'Assigned',
  en_route: 'En route',
  on_site: 'On site',
  off_duty: 'Off duty',
  unresponsive: 'Unresponsive',
};

const STAGE_LABELS = {
  acknowledge: 'Acknowledge',
  arrive: 'Arrive',
  restore: 'Restore',
  return: 'Return order',
};

const CATEGORY_LABELS = {
  no_power: 'No power',
  area_outage: 'Area outage',
  line_down: 'Line down',
  equipment_fire: 'Equipment fire',
  voltage_quality: 'Voltage quality',
  meter: 'Meter',
  customer_internal: 'Customer internal',
  other: 'Other',
};

export const stateLabel = (s) => STATE_LABELS[s] ?? s;
export const crewLabel = (s) => CREW_LABELS[s] ?? s;
export const stageLabel = (s) => STAGE_LABELS[s] ?? s;
export const categoryLabel = (c) => CATEGORY_LABELS[c] ?? c;

// 13800001234 → 138****1234. Whatever the format, at most the first three and the last four
// digits stay; short numbers keep only their last two.
export function maskPhone(phone) {
  const digits = String(phone ?? '').replace(/\D/g, '');
  if (digits.length === 0) return '';
  if (digits.length < 8) return '*'.repeat(Math.max(0, digits.length - 2)) + digits.slice(-2);
  return digits.slice(0, 3) + '*'.repeat(digits.length - 7) + digits.slice(-4);
}

// 李明 → 李*: the family name is enough to greet a caller back.
export function maskName(name) {
  const chars = Array.from(String(name ?? '').trim());
  if (chars.length === 0) return '—';
  return chars[0] + '*'.repeat(Math.max(1, chars.length - 1));
}

const pad = (n) => String(n).padStart(2, '0');

// Seconds as m:ss, or h:mm:ss past the hour; negative as −m:ss.
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  const sign = seconds < 0 ? '−' : '';
  let s = Math.floor(Math.abs(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h > 0 ? `${sign}${h}:${pad(m)}:${pad(s)}` : `${sign}${m}:${pad(s)}`;
}

// Local wall-clock time of an RFC 3339 instant.
export function clockTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export const shortId = (id) => (id ? String(id).slice(-6) : '—');

export function percent(value) {
  return value == null ? '—' : `${value >= 99.95 ? 100 : value.toFixed(1)}%`;
}

// Builds an element: el('div', {class: 'x', dataset: {a: 1}}, 'text', child…).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
