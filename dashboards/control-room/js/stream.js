// The live feed, GET /v1/events, read with fetch: EventSource cannot send the token in a
// header, and a token in the URL would end up in logs. The Server-Sent Events framing is
// parsed here; after any drop the stream reconnects with backoff and the page reloads what it
// shows, because the feed has no replay.

import { AuthError } from './api.js';

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];

// Splits a text stream into SSE events: blocks of `field: value` lines ended by a blank line.
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.event = '';
    this.id = '';
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    let newline;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      // A CR that ends the chunk may be the first half of a CRLF: wait for the next one.
      if (this.buffer[newline] === '\r' && newline === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0 || this.event) {
        this.onEvent({ event: this.event || 'message', id: this.id, data: this.data.join('\n') });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return; // a keep-alive comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

// Keeps one stream open. `reload` is awaited after each (re)connection while events are
// held back, then the held events are applied in order: the lists are read after the
// stream opened, so every change after the lists' snapshot is among them or still to come.
export class LiveStream {
  constructor({ api, reload, onEvent, onStatus, onAuthError }) {
    Object.assign(this, { api, reload, onEvent, onStatus, onAuthError });
    this.controller = null;
  }

  start() {
    this.stop();
    this.controller = new AbortController();
    this.run(this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  async run(signal) {
    let failures = 0;
    while (!signal.aborted) {
      this.onStatus(failures === 0 ? 'connecting' : 'reconnecting');
      try {
        await this.session(signal, () => {
          failures = 0;
        });
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof AuthError) {
          this.onAuthError(error);
          return;
        }
        console.warn('live feed:', error);
      }
      if (signal.aborted) return;
      failures += 1;
      this.onStatus('reconnecting');
      const base = BACKOFF_MS[Math.min(failures - 1, BACKOFF_MS.length - 1)];
      await sleep(base * (0.75 + Math.random() * 0.5), signal);
    }
  }

  async session(signal, onLive) {
    const response = await fetch('/v1/events', {
      headers: { ...this.api.headers(), Accept: 'text/event-stream' },
      cache: 'no-store',
      signal,
    });
    if (response.status === 401 || response.status === 403) throw new AuthError(response.status);
    if (!response.ok || !response.body) throw new Error(`the event stream answered ${response.status}`);

    let held = [];
    let loading = true;
    const deliver = async (frame) => {
      if (frame.event === 'missed') {
        // Too far behind: what is shown may be stale. Reload, holding events meanwhile.
        loading = true;
        await this.reload();
        loading = false;
        const backlog = held;
        held = [];
        backlog.forEach((f) => this.onEvent(f));
        return;
      }
      if (loading) held.push(frame);
      else this.onEvent(frame);
    };
    const parser = new SseParser((frame) => {
      deliver(frame).catch((error) => console.warn('live feed reload:', error));
    });

    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        parser.push(value);
      }
    })();
    // Reading starts before the reload so that nothing committed meanwhile is lost.
    const reloaded = this.reload().then(() => {
      loading = false;
      const backlog = held;
      held = [];
      backlog.forEach((f) => this.onEvent(f));
      this.onStatus('live');
      onLive();
    });
    await Promise.all([reloaded, reading]);
    // The service ended the stream (a restart or shutdown): reconnect.
  }
}
