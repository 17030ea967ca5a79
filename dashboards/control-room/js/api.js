// The service's API as the page uses it: every call carries the supervisor's token, and a
// refused token is its own error so the page can ask for another.

import { TICKET_STATES } from './format.js';

export class AuthError extends Error {
  constructor(status) {
    super(status === 403 ? 'this token may not watch the control room (supervisor or admin)' : 'the token was refused');
    this.status = status;
  }
}

export class HttpError extends Error {
  constructor(status, message) {
    super(message || `the service answered ${status}`);
    this.status = status;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  headers() {
    return { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
  }

  async get(path) {
    const response = await fetch(path, { headers: this.headers(), cache: 'no-store' });
    if (response.status === 401 || response.status === 403) throw new AuthError(response.status);
    if (!response.ok) {
      let message = '';
      try {
        message = (await response.json())?.error?.message ?? '';
      } catch {
        // The status says enough.
      }
      throw new HttpError(response.status, message);
    }
    return response.json();
  }

  // Every ticket that is not closed, cancelled or merged, page by page.
  async openTickets() {
    const all = await Promise.all(TICKET_STATES.map((state) => this.ticketsIn(state)));
    return all.flat();
  }

  async ticketsIn(state) {
    const items = [];
    let cursor = null;
    // A page holds up to 500; the bound only stops a runaway loop.
    for (let page = 0; page < 1000; page += 1) {
      const query = new URLSearchParams({ state, limit: '500' });
      if (cursor) query.set('cursor', cursor);
      const body = await this.get(`/v1/tickets?${query}`);
      items.push(...body.items);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    return items;
  }

  // From local midnight until a minute from now: "today" as the control room means it.
  static today() {
    const from = new Date();
    from.setHours(0, 0, 0, 0);
    const to = new Date(Date.now() + 60_000);
    return new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  }

  slaToday() {
    return this.get(`/v1/sla/summary?${Api.today()}`);
  }

  reassignmentsToday() {
    const query = Api.today();
    query.set('limit', '20');
    return this.get(`/v1/reassignments?${query}`);
  }

  // Resolution 6 (cells about 7 km across): the scale at which the whole region reads.
  faultCellsToday() {
    const query = Api.today();
    query.set('resolution', '6');
    return this.get(`/v1/fault-cells?${query}`);
  }
}
