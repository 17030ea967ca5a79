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

// A stream that sends nothing, not even the service's keep-alive comments (every 15 s), for
// this long is taken for dead: a proxy or NAT may drop a connection without closing it.
const SILENCE_MS = 45000;

// Thrown to end a session whose watcher fell too far behind: start over at once.
class Missed extends Error {}

// Keeps one stream open. `reload` is awaited after each (re)connection while events are
// held back, then the held events are applied in order: the lists are read after the
// stream opened, so every change after the lists' snapshot is among them or still to come.
// Anything that breaks that (a `missed` event, a failed reload, silence) ends the session,
// closes its connection, and starts a new one: one stream and one reload at a time.
export class LiveStream {
  constructor({ api, reload, onEvent, onStatus, onAuthError, silenceMs = SILENCE_MS }) {
    Object.assign(this, { api, reload, onEvent, onStatus, onAuthError, silenceMs });
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
        if (error instanceof Missed) {
          // Not a fault of the connection: reconnect and reload now.
          this.onStatus('reconnecting');
          continue;
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
    // The session's own controller: ending it closes this connection, whatever ended it.
    const session = new AbortController();
    const end = (reason) => session.abort(reason);
    const onStop = () => end(new Error('stopped'));
    signal.addEventListener('abort', onStop);
    let lastHeard = Date.now();
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard > this.silenceMs) end(new Error('the event stream went silent'));
    }, Math.min(5000, this.silenceMs));
    try {
      const response = await fetch('/v1/events', {
        headers: { ...this.api.headers(), Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: session.signal,
      });
      if (response.status === 401 || response.status === 403) throw new AuthError(response.status);
      if (!response.ok || !response.body) throw new Error(`the event stream answered ${response.status}`);

      let held = [];
      let loading = true;
      const parser = new SseParser((frame) => {
        if (frame.event === 'missed') {
          // Too far behind: what is shown may be stale. Start over with a new stream.
          end(new Missed(`missed ${frame.data} events`));
          return;
        }
        if (loading) held.push(frame);
        else this.onEvent(frame);
      });

      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const ended = new Promise((_, reject) => {
        session.signal.addEventListener('abort', () => reject(session.signal.reason));
      });
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          lastHeard = Date.now();
          parser.push(value);
        }
      })();
      // Reading starts before the reload so that nothing committed meanwhile is lost.
      const reloaded = this.reload().then(() => {
        if (session.signal.aborted) return;
        loading = false;
        const backlog = held;
        held = [];
        backlog.forEach((f) => this.onEvent(f));
        this.onStatus('live');
        onLive();
      });
      // Whichever of these loses the race below settles later, unheard.
      for (const settling of [ended, reading, reloaded]) settling.catch(() => {});
      // A session ends when the service ends the stream (a restart or shutdown), or when a
      // reload, a read or the session itself fails; then reconnect.
      await Promise.race([Promise.all([reloaded, reading]), ended]);
    } finally {
      clearInterval(watchdog);
      signal.removeEventListener('abort', onStop);
      session.abort();
    }
  }
}
