#!/usr/bin/env node
// A convo-tck stdio adapter in Node: a small chat client of the kit's mock backend.
//
// The harness writes one JSON request per line on stdin; this process answers `hello` first,
// then one reply per request and unsolicited observations on stdout, and exits when stdin
// closes. The client is one state machine on Node's event loop: commands, REST results and
// event frames are handled one at a time, so nothing needs a lock. Its timers (Retry-After,
// backoff) run on a virtual clock moved only by `advance_time`.
//
// Behaviour (docs/protocol.md, `convo-tck rules`):
// - `start` answers once the token is fetched and the event socket is open, before the
//   subscribed list is fetched (LIST-1); the socket is open before the first page is asked
//   for, so no `conversation_added` is lost (LIST-2).
// - Synchronization is one lane of fetches, one at a time: every page of the list (following
//   `next_page_url`), the user, then each conversation's metadata and participants.
// - Pages and events are merged by sid; a removal leaves a tombstone that only an explicit add
//   clears; any event about an unknown conversation adds it (LIST-3, LIST-4).
// - Operations wait for synchronization (the client's, or the conversation's) or are refused
//   with `not_synchronized` when it failed (SYNC-1, SYNC-2); sync statuses only move forward
//   (SYNC-3).
// - An attribute update completes only once a snapshot at or past the revision its request
//   produced arrived; the value shown is the backend's; older snapshots are ignored
//   (UPD-1..3).
// - Messages are fetched only when the app asks; edits and removals are reported only for
//   fetched messages; every new message is reported (MSG-1, MSG-2).
// - `settle`: ping on the socket, wait for the pong and for every request in flight (sleeps on
//   the virtual clock count as quiet), repeat until a round passes with nothing new.
// - One client instance lives through outages and background spells (LIFE-1, LIFE-2, LIFE-5):
//   the event socket is probed with a heartbeat every 30 s of virtual time and given up when a
//   probe goes unechoed; a lost socket is replaced by the same instance after a seeded,
//   exponential backoff, resuming after the last event received (or the socket's welcome);
//   `background` closes the socket and makes no attempts until `foreground` reopens it.
// - A client is shut down only on `logout` or a login as another identity (LIFE-3): its handles
//   are released first (REL-1); afterwards nothing of it works (its handles and the commands
//   answer `client_shut_down`) and it never reaches the backend again (LIFE-4). `kill` drops the
//   client with no shutdown at all.
// - Tokens (TOKEN-1..6): asked for 4 hours; one the generator issued living under 3 minutes is
//   a `token_rejected` error (reply and observation), never fetched again. The token and its
//   expiry are kept in a file in `storage_dir` (nowhere else, never logged), used at a restart
//   while valid for more than 3 more minutes, cleared on logout. On `token_about_to_expire` a
//   new token is fetched and handed to the open channel (`update_token`); a token that expired
//   (the channel's `token_expired` or close 4410, a 401 on the handshake, asleep in the
//   background) is reported once and replaced before the same instance reconnects. Tokens
//   travel in the `X-Twilio-Token` header only.
// - Push (PUSH-1..4): every start with a device token registers it (`POST
//   /v1/Client/Registrations`) unless storage shows this identity registered this device token
//   already; a registration stored for another identity is removed first (`DELETE`, with a token
//   of that identity: the stored one while valid, else the generator's). `device_token_changed`
//   registers the new token and removes the old one. What was registered is stored beside the
//   token; the work is background activity, covered by `settle`.
// - Counts (COUNT-1..3): `get_count` is served from a per-(conversation, kind) cache for 5 s of
//   virtual time, fetched otherwise (one `Counts` request fills participants and messages); the
//   unread count is null while the user has no read horizon.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const WebSocket = require('ws');

const PROTOCOL = 1;
// The lifetime asked of the token generator: hours, at most a day (TOKEN-2).
const TOKEN_TTL_S = 4 * 3600;
// The service refuses tokens living under 3 minutes: such a token is an error, never fetched
// again in a loop (TOKEN-1).
const MIN_TOKEN_LIFETIME_S = 180;
// A token this close to its expiry (virtual ms) is not used for a new connection: the channel
// would warn at once. A stored token must outlive it to be used at start (TOKEN-5).
const TOKEN_MARGIN_MS = 180_000;
// The event channel's close code at the token's expiry.
const TOKEN_EXPIRED_CLOSE = 4410;
// The file in `start`'s `storage_dir` that keeps the token across a kill (the only place it is
// kept outside memory).
const STORAGE_FILE = 'node-adapter.json';
const PAGE_SIZE = 50;
const MAX_ATTEMPTS = 100;
// The event socket's liveness probe, and the reconnect backoff (virtual milliseconds).
const HEARTBEAT_EVERY_MS = 30_000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
const JITTER_SEED = 0x5eed;
// The commands this adapter implements (hello `capabilities.commands`): all of them.
const COMMANDS = [
  'start', 'logout', 'kill', 'background', 'foreground', 'list_conversations',
  'open_conversation', 'release', 'fetch_messages', 'send_message', 'update_attributes',
  'read_attributes', 'device_token_changed', 'get_count', 'advance_time', 'settle', 'inspect',
];
// Where the device is registered for push (the kit's route, not public v1), and the binding
// type this app registers with: FCM, in the browser.
const REGISTRATIONS = '/v1/Client/Registrations';
const BINDING_TYPE = 'fcm';
// How long a count read is served from the cache (virtual ms; hello `count_cache_lifetime_ms`).
const COUNT_CACHE_MS = 5000;

// ---------------------------------------------------------------- output

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

function observe(event, fields = {}) {
  send({ type: 'observation', event, ...fields });
}

function log(...parts) {
  // stderr is journaled: never put a token here.
  process.stderr.write(`[node-adapter] ${parts.join(' ')}\n`);
}

class CommandError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

// A reply that can be given once, now or later.
class Responder {
  constructor(id) {
    this.id = id;
    this.answered = false;
  }
  ok(body) {
    if (this.answered) return;
    this.answered = true;
    send({ type: 'reply', id: this.id, ok: body });
  }
  error(kind, message) {
    if (this.answered) return;
    this.answered = true;
    send({ type: 'reply', id: this.id, error: { kind, message: String(message) } });
  }
  fail(e) {
    if (e instanceof CommandError) this.error(e.kind, e.message);
    else this.error('internal', e && e.message ? e.message : String(e));
  }
  done() {
    this.ok({});
  }
}

// ---------------------------------------------------------------- virtual time and activity

// The client's clock: it moves only on `advance_time`.
const clock = {
  now: 0,
  timers: [], // { deadline, wake }
  // Resolves once the clock reached `now + ms`; `onWake` runs synchronously when it does.
  sleep(ms, onWake) {
    return new Promise((resolve) => {
      this.timers.push({ deadline: this.now + ms, wake: () => (onWake(), resolve()) });
    });
  },
  advance(ms) {
    this.now += ms;
    const due = this.timers.filter((t) => t.deadline <= this.now);
    this.timers = this.timers.filter((t) => t.deadline > this.now);
    due.sort((a, b) => a.deadline - b.deadline);
    for (const t of due) t.wake();
  },
};

// Background work in flight, and how much of it only waits for virtual time; and the sockets
// still closing (whatever client they belonged to: the backend has not seen them go yet).
const activity = {
  inflight: 0,
  sleeping: 0,
  closing: new Set(),
  begin() {
    this.inflight += 1;
  },
  end() {
    this.inflight = Math.max(0, this.inflight - 1);
  },
  reset() {
    this.inflight = 0;
    this.sleeping = 0;
  },
  quiet() {
    return this.inflight === this.sleeping && this.closing.size === 0;
  },
  // Sleeps on the virtual clock, counted as quiet; `gen` guards against a reset in between.
  sleep(ms, gen) {
    const mine = gen === engine.generation;
    if (mine) this.sleeping += 1;
    schedule();
    return clock.sleep(ms, () => {
      // The clock moved: the task is busy again, before anything else looks.
      if (mine && gen === engine.generation) this.sleeping = Math.max(0, this.sleeping - 1);
    });
  },
};

// ---------------------------------------------------------------- the wire

function parseAttributes(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function revisionOf(headers) {
  const etag = headers.get('etag');
  if (!etag) return null;
  const n = Number.parseInt(etag.replace(/"/g, '').trim(), 10);
  return Number.isFinite(n) ? n : null;
}

// Whether a failed request never got its answer for a reason of the network (refused, reset,
// closed before the answer): worth trying again later.
function isTransportError(e) {
  const code = e && e.cause && e.cause.code;
  return [
    'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH',
    'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
  ].includes(code);
}

// REST access for one client instance: retries 503/429 after Retry-After (or a backoff) and
// transport failures (the network refused or cut the request) after a backoff, on virtual time.
class Rest {
  constructor(base, token, instance, gen, signal) {
    this.base = base.replace(/\/+$/, '');
    this.token = token;
    this.instance = instance;
    this.gen = gen;
    this.signal = signal; // aborted when the client ends: its requests in flight go with it
  }

  async call(method, path, form) {
    const url = /^https?:/.test(path) ? path : this.base + path;
    let backoff = 500;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // A client that was killed or logged out never talks to the backend again.
      if (this.gen !== engine.generation) throw new CommandError('client_shut_down', 'the client is gone');
      const headers = { 'X-Convo-Client': this.instance, 'X-Twilio-Token': this.token };
      let body;
      if (form) {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
        body = new URLSearchParams(form).toString();
      }
      let resp;
      let text;
      try {
        resp = await fetch(url, { method, headers, body, signal: this.signal });
        text = await resp.text();
      } catch (e) {
        if (!isTransportError(e)) throw new CommandError('backend', `${method} ${url}: ${e.message}`);
        // Unreachable, refused, or cut before the answer (a half-open network): the request
        // is tried again later, on virtual time; the client does not fail for it.
        await activity.sleep(backoff, this.gen);
        backoff = Math.min(backoff * 2, 30000);
        continue;
      }
      const revision = revisionOf(resp.headers);
      const retryAfter = Number.parseInt(resp.headers.get('retry-after') || '', 10);
      if (resp.ok) {
        // A bodiless answer (`204`) reads as `null`.
        if (text.trim() === '') return { body: null, revision };
        try {
          return { body: JSON.parse(text), revision };
        } catch (e) {
          throw new CommandError('backend', `${method} ${url}: malformed answer: ${e.message}`);
        }
      }
      if (resp.status === 503 || resp.status === 429) {
        await activity.sleep(Number.isFinite(retryAfter) ? retryAfter * 1000 : backoff, this.gen);
        backoff = Math.min(backoff * 2, 30000);
        continue;
      }
      const kind =
        resp.status === 401 ? 'token_rejected' : resp.status === 404 ? 'not_found' : 'backend';
      let message = '';
      try {
        message = JSON.parse(text).message || '';
      } catch {}
      throw new CommandError(kind, `${method} ${url}: ${resp.status}: ${message}`);
    }
    throw new CommandError('backend', `${method} ${url}: gave up after ${MAX_ATTEMPTS} attempts`);
  }
}

async function fetchToken(tokenUrl, identity, instance, signal) {
  let resp;
  try {
    resp = await fetch(tokenUrl, {
      signal,
      method: 'POST',
      headers: {
        'X-Convo-Client': instance,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ identity, ttl: String(TOKEN_TTL_S) }).toString(),
    });
  } catch (e) {
    throw new CommandError('backend', `token generator unreachable: ${e.message}`);
  }
  const text = await resp.text().catch(() => '');
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  if (resp.ok && json && typeof json.token === 'string') return json;
  throw new CommandError(
    'token_rejected',
    `token generator answered ${resp.status}: ${(json && json.message) || ''}`,
  );
}

// A token from the generator, with its expiry on the virtual clock. One living under three
// minutes never works with the service: a typed error, and the caller does not ask again.
async function obtainToken(tokenUrl, identity, instance, signal) {
  // Counted from the ask: the expiry errs early, never late.
  const asked = clock.now;
  const issued = await fetchToken(tokenUrl, identity, instance, signal);
  const ttl = typeof issued.ttl === 'number' ? issued.ttl : TOKEN_TTL_S;
  if (ttl < MIN_TOKEN_LIFETIME_S) {
    throw new CommandError(
      'token_rejected',
      `the token generator issued a token living ${ttl} s; the service refuses tokens living ` +
        'under 3 minutes, so the client cannot use it (not asking again)',
    );
  }
  return { token: issued.token, expiresAt: asked + ttl * 1000, fetched: true };
}

// ---------------------------------------------------------------- storage

// The app's persistent storage (`start`'s `storage_dir`, which survives a kill): the current
// token, its identity and its expiry (virtual ms), and the push registration last made from this
// device (identity and device token). A missing or unreadable file is empty storage.
const storage = {
  file(dir) {
    return typeof dir === 'string' && dir !== '' ? path.join(dir, STORAGE_FILE) : null;
  },
  load(dir) {
    const file = this.file(dir);
    if (!file) return {};
    try {
      const stored = JSON.parse(fs.readFileSync(file, 'utf8'));
      return stored && typeof stored === 'object' ? stored : {};
    } catch {
      return {};
    }
  },
  update(dir, change) {
    const file = this.file(dir);
    if (!file) return;
    const stored = this.load(dir);
    change(stored);
    try {
      const tmp = `${file}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(stored), { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch (e) {
      // An unwritable directory loses the change, as a full disk would (no token in the log).
      log('storage not writable:', e && e.code ? e.code : 'error');
    }
  },
  keepToken(dir, identity, credential) {
    this.update(dir, (s) => {
      s.token = { identity, token: credential.token, expires_at: credential.expiresAt };
    });
  },
  keepRegistration(dir, identity, deviceToken) {
    this.update(dir, (s) => {
      s.registration = { identity, device_token: deviceToken };
    });
  },
  clearToken(dir) {
    this.update(dir, (s) => {
      delete s.token;
    });
  },
  // The stored token of `identity`, if it is good for a new connection (valid for more than
  // the margin); an expired one is never presented.
  validToken(dir, identity) {
    const t = this.load(dir).token;
    if (!t || t.identity !== identity || typeof t.token !== 'string') return null;
    if (typeof t.expires_at !== 'number' || t.expires_at <= clock.now + TOKEN_MARGIN_MS) return null;
    return { token: t.token, expiresAt: t.expires_at, fetched: false };
  },
};

// The event channel's URL, resuming after event `since` when there is one.
function eventsUrlSince(eventsUrl, since) {
  if (since === null || since === undefined) return eventsUrl;
  const url = new URL(eventsUrl);
  url.searchParams.set('since', String(since));
  return url.toString();
}

// Event sockets still opening: a client that ends cuts them off.
const connecting = new Set();

// Opens event socket number `link`; resolves once it is open. Its frames and its close go to the
// engine, tagged with `link`, so the engine can tell the current socket from ones it let go.
function connectEvents(url, token, instance, link) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(url, {
      headers: { 'X-Convo-Client': instance, 'X-Twilio-Token': token },
      perMessageDeflate: false,
    });
    connecting.add(ws);
    ws.once('close', () => connecting.delete(ws));
    ws.on('open', () => {
      connecting.delete(ws);
      settled = true;
      resolve(ws);
    });
    ws.on('unexpected-response', (_req, res) => {
      settled = true;
      const kind = res.statusCode === 401 ? 'token_rejected' : 'backend';
      const e = new CommandError(kind, `event channel refused: HTTP ${res.statusCode}`);
      e.status = res.statusCode;
      reject(e);
      res.resume();
      ws.terminate();
    });
    ws.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(new CommandError('backend', `event channel refused: ${e.message}`));
      }
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let frame;
      try {
        frame = JSON.parse(data.toString('utf8'));
      } catch {
        return;
      }
      if (frame && typeof frame === 'object') engine.socketFrame(link, frame);
    });
    ws.on('close', (code) => {
      if (settled) engine.socketClosed(link, code);
    });
  });
}

// Closes `ws` with the close handshake; `then` runs once it is fully closed (the backend saw it
// go). Counted as activity meanwhile, so a settle never answers with a socket half closed.
// A socket known dead (it missed its heartbeat) is terminated instead: no handshake to wait for.
function closeSocket(ws, then = () => {}, { dead = false } = {}) {
  if (!ws || ws.readyState === WebSocket.CLOSED) return then();
  activity.closing.add(ws);
  ws.once('close', () => {
    activity.closing.delete(ws);
    then();
    schedule();
  });
  if (dead || ws.readyState === WebSocket.CONNECTING) ws.terminate();
  else if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  // (A socket already closing is only waited for.)
}

// A seeded generator of numbers in [0, 1) (mulberry32): the backoff jitter repeats run to run.
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const segment = (s) => encodeURIComponent(s);

// Registers the device token `address` for push, as `rest`'s identity (201 created, 200
// refreshed).
async function register(rest, address) {
  await rest.call('POST', REGISTRATIONS, [['Address', address], ['BindingType', BINDING_TYPE]]);
}

// Removes the binding of `rest`'s identity for the device token `address`; one already gone
// (404) is fine.
async function unregister(rest, address) {
  try {
    await rest.call('DELETE', `${REGISTRATIONS}/${segment(address)}`);
  } catch (e) {
    if (!(e instanceof CommandError && e.kind === 'not_found')) throw e;
  }
}

// ---------------------------------------------------------------- the client

let scheduled = false;
// Starts the next sync fetch and answers settles, after the current input was handled.
function schedule() {
  if (scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    engine.pump();
    engine.pollSettle();
  });
}

const engine = {
  generation: 0,
  instances: 0,
  session: null,
  pendingStart: null, // { instance, identity, restUrl, eventsUrl, link }
  earlyFrames: [],
  welcome: null, // the resume point the starting client's first socket announced
  settling: [], // { responder, nonce, epoch }
  epoch: 0,
  nonce: 0,
  links: 0, // event sockets numbered so far
  random: seededRandom(JITTER_SEED),
  handleOwners: new Map(), // handle -> the instance that issued it (ids are never reused)
  lifetime: new AbortController(), // the current client's: aborted when it ends

  // Runs `work` in the background, counted as activity; `then` handles its outcome if the
  // session that spawned it is still the current one.
  spawn(work, then) {
    activity.begin();
    const gen = this.generation;
    work(gen).then(
      (value) => this.finished(gen, then, { value }),
      (error) => this.finished(gen, then, { error }),
    );
  },

  finished(gen, then, result) {
    if (gen !== this.generation) return;
    this.epoch += 1;
    activity.end();
    try {
      then(result);
    } catch (e) {
      log('internal error:', e && e.stack ? e.stack : e);
    }
    schedule();
  },

  // ------------------------------------------------------------ commands

  command(req) {
    const r = new Responder(req.id);
    if (req.command !== 'settle') this.epoch += 1;
    try {
      switch (req.command) {
        case 'start':
          return this.start(r, req);
        case 'logout':
          // A user who logged out leaves no credential behind.
          if (this.session) storage.clearToken(this.session.storageDir);
          // Answered once the socket is closed: nothing published afterwards reaches it.
          return closeSocket(this.shutDown(), () => r.done());
        case 'kill':
          // The process dies: no shutdown, and its socket goes with it.
          return closeSocket(this.dropSession(), () => r.done());
        case 'background':
          return this.background(r);
        case 'foreground':
          this.foreground();
          return r.done();
        case 'update_attributes':
          return this.submit(r, { kind: 'update', target: req.target, attributes: req.attributes });
        case 'send_message':
          return this.submit(r, { kind: 'send', conversation: req.conversation, body: req.body });
        case 'read_attributes':
          return this.read(r, req.target);
        case 'list_conversations':
          if (!this.session) return r.error('client_shut_down', 'no client');
          return r.ok({ conversations: [...this.session.list] });
        case 'open_conversation':
          return this.open(r, req.conversation);
        case 'release':
          return this.release(r, req.handle);
        case 'fetch_messages': {
          const s = this.session;
          if (!s) return r.error('client_shut_down', 'no client');
          if (!s.conversations.has(req.conversation)) {
            return r.error('not_found', `conversation ${req.conversation} is unknown`);
          }
          return this.fetchMessages(r, req.conversation, req.count);
        }
        case 'device_token_changed':
          if (typeof req.device_token !== 'string' || req.device_token === '') {
            return r.error('invalid_command', 'device_token_changed needs a device_token');
          }
          this.deviceTokenChanged(req.device_token);
          return r.done();
        case 'get_count':
          return this.getCount(r, req.conversation, req.kind);
        case 'advance_time':
          clock.advance(Number(req.ms) || 0);
          return r.done();
        case 'settle':
          return this.beginSettle(r);
        case 'inspect':
          return r.ok(this.inspect());
        default:
          return r.error('unsupported', `the node adapter does not implement \`${req.command}\``);
      }
    } catch (e) {
      log('internal error:', e && e.stack ? e.stack : e);
      r.fail(e);
    } finally {
      schedule();
    }
  },

  inspect() {
    const s = this.session;
    if (!s) return { instance: null, connection: null, sync: null, conversations: [], handles: [] };
    return {
      instance: s.instance,
      connection: s.link.state === 'open' ? 'connected' : 'disconnected',
      sync: s.sync,
      conversations: [...s.conversations.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([sid, c]) => [sid, c.sync]),
      handles: [...s.handles.keys()].sort(),
    };
  },

  // ------------------------------------------------------------ lifecycle

  // Creates a client. A client of another identity is shut down first (a switch of login, with
  // its handles released); starting the same identity twice is refused.
  start(r, { identity, token_url, rest_url, events_url, storage_dir, device_token }) {
    if (this.pendingStart) return r.error('invalid_command', 'a client is already starting');
    if (![identity, token_url, rest_url, events_url].every((v) => typeof v === 'string')) {
      return r.error('invalid_command', 'start needs identity, token_url, rest_url, events_url');
    }
    if (this.session) {
      if (this.session.identity === identity) {
        return r.error('invalid_command', 'a client is already started for this identity; log out first');
      }
      closeSocket(this.shutDown());
    }
    this.generation += 1;
    this.lifetime = new AbortController();
    this.instances += 1;
    const instance = `node-${this.instances}`;
    const link = ++this.links;
    const storageDir = typeof storage_dir === 'string' ? storage_dir : null;
    const deviceToken = typeof device_token === 'string' && device_token !== '' ? device_token : null;
    this.pendingStart = {
      instance, identity, restUrl: rest_url, eventsUrl: events_url, tokenUrl: token_url, storageDir, link,
      deviceToken,
    };
    this.earlyFrames = [];
    this.welcome = null;
    // A valid token kept from an earlier run starts the client without waiting for the
    // generator (TOKEN-5); an expired one is never presented.
    const stored = storage.validToken(storageDir, identity);
    const signal = this.lifetime.signal;
    this.spawn(
      async (gen) => {
        let credential = stored || (await obtainToken(token_url, identity, instance, signal));
        let ws;
        try {
          ws = await connectEvents(events_url, credential.token, instance, link);
        } catch (e) {
          // The channel refused the stored token after all: the generator's turn.
          if (!(stored && e.status === 401) || gen !== this.generation) throw e;
          credential = await obtainToken(token_url, identity, instance, signal);
          ws = await connectEvents(events_url, credential.token, instance, link);
        }
        // Dropped before it was ready (a kill): its socket goes with it.
        if (gen !== this.generation) closeSocket(ws);
        return { credential, ws };
      },
      (result) => this.started(r, result),
    );
  },

  started(r, { value, error }) {
    const pending = this.pendingStart;
    this.pendingStart = null;
    if (!pending) {
      if (value) closeSocket(value.ws);
      return r.error('internal', 'the start was abandoned');
    }
    if (error) {
      // Reported as well as answered (a token living under 3 minutes: TOKEN-1).
      observe('error', { kind: error.kind || 'internal', message: error.message });
      return r.fail(error);
    }
    const { instance, identity, restUrl, eventsUrl, tokenUrl, storageDir, link, deviceToken } = pending;
    const { credential } = value;
    // What the app kept from its earlier runs, before this start changes it (the push
    // registration, and the previous identity's token).
    const kept = storage.load(storageDir);
    if (credential.fetched) storage.keepToken(storageDir, identity, credential);
    this.session = {
      instance,
      identity,
      eventsUrl,
      tokenUrl,
      storageDir,
      deviceToken, // the device's push token, as the OS last handed it
      counts: new Map(), // `${sid} ${kind}` -> { at (virtual ms), count }
      // The token in use: its expiry (virtual ms), a refresh in flight, its expiry reported.
      tokenExpires: credential.expiresAt,
      refreshing: false,
      expirySeen: false,
      rest: new Rest(restUrl, credential.token, instance, this.generation, this.lifetime.signal),
      // The event connection: which socket is current, and where the event log resumes.
      link: {
        id: link,
        ws: value.ws,
        state: 'open', // 'open' | 'reconnecting' | 'parked' (in the background)
        lastSeq: this.welcome, // the last event received, or the first socket's welcome
        failures: 0, // failed attempts in a row
        heartbeat: null, // the nonce of the probe not echoed yet
      },
      background: false,
      sync: 'started',
      listDone: false,
      user: { attributes: {}, revision: 0 },
      conversations: new Map(), // sid -> { sync, object: { attributes, revision } }
      waitingOps: [], // [responder, op]
      awaited: [], // { responder, target, revision }
      lane: [],
      laneBusy: false,
      list: [],
      tombstones: new Set(),
      fetched: new Map(), // sid -> Set(index)
      handles: new Map(), // handle -> sid
      nextHandle: 0,
    };
    this.welcome = null;
    observe('client_created', { instance });
    this.linked();
    observe('client_sync', { status: 'started' });
    for (const frame of this.earlyFrames.splice(0)) this.event(frame);
    r.ok({ instance });
    this.beginSync();
    this.registerOnStart(kept);
  },

  // Ends the client without a shutdown (the process died, or after one): its work is forgotten
  // and never reaches the backend again. Returns its socket, for the caller to close.
  dropSession() {
    const s = this.session;
    // Requests and sockets still on their way to the backend are cut off; work of the old
    // generation never reports back: forget it.
    this.lifetime.abort();
    for (const ws of connecting) closeSocket(ws);
    activity.reset();
    this.generation += 1;
    this.pendingStart = null;
    this.session = null;
    this.earlyFrames = [];
    this.welcome = null;
    this.forgetPings();
    return s ? s.link.ws : null;
  },

  // Logout (or a switch of login): fail what is pending, release every handle, report the
  // shutdown, drop the client. Returns its socket, for the caller to close.
  shutDown() {
    const s = this.session;
    if (!s) return this.dropSession();
    for (const [responder] of s.waitingOps) {
      responder.error('client_shut_down', 'the client was shut down');
    }
    for (const a of s.awaited) a.responder.error('client_shut_down', 'the client was shut down');
    s.waitingOps = [];
    s.awaited = [];
    // Every handle goes before the client does (REL-1).
    for (const handle of [...s.handles.keys()].sort()) observe('handle_released', { handle });
    s.handles.clear();
    observe('client_shut_down', { instance: s.instance });
    if (s.link.state === 'open') observe('connection_state', { state: 'disconnected' });
    return this.dropSession();
  },

  // The app went to the background: close the socket and make no attempts until it is back.
  // Answered once the socket is closed, so nothing published afterwards is written to it.
  background(r) {
    const s = this.session;
    if (!s) return r.done();
    s.background = true;
    const ws = s.link.state === 'open' ? s.link.ws : null;
    // Socket number 0 matches nothing: an attempt in flight or asleep is abandoned.
    Object.assign(s.link, { id: 0, ws: null, state: 'parked', heartbeat: null });
    this.forgetPings();
    if (ws) observe('connection_state', { state: 'disconnected' });
    closeSocket(ws, () => r.done());
  },

  // The app came back: open a socket at once (no backoff), resuming after the last event.
  foreground() {
    const s = this.session;
    if (!s) return;
    s.background = false;
    s.link.failures = 0;
    // A token that expired while the app slept is reported; the reconnect fetches a fresh one
    // for the same instance (TOKEN-4).
    this.noticeExpiry();
    if (s.link.state !== 'parked') return;
    observe('connection_state', { state: 'connecting' });
    this.reconnect(false);
  },

  // ------------------------------------------------------------ the token

  // The token in use expired while the client could not be told (asleep, disconnected, the
  // channel closed for it): say so once. The same instance goes on.
  noticeExpiry() {
    const s = this.session;
    if (!s || s.tokenExpires > clock.now || s.expirySeen) return;
    s.expirySeen = true;
    observe('token_expired');
  },

  // A token frame on the current socket (they carry no `seq`: not events of the log).
  tokenFrame(f) {
    const s = this.session;
    if (!s) return;
    switch (f.type) {
      case 'token_about_to_expire':
        observe('token_about_to_expire');
        this.refresh();
        return;
      case 'token_expired':
        // The socket closes next (4410); the reconnect fetches a token first.
        s.tokenExpires = Math.min(s.tokenExpires, clock.now);
        this.noticeExpiry();
        return;
      case 'token_rejected':
        observe('error', {
          kind: 'token_rejected',
          message: `the event channel refused the new token (${f.code}): ${f.message || ''}`,
        });
        return;
      default:
        // `token_updated`: the channel took the token the client adopted already.
        return;
    }
  },

  // Fetches a new token for the running instance (once at a time) and hands it to the open
  // channel (TOKEN-3).
  refresh() {
    const s = this.session;
    if (!s || s.refreshing) return;
    s.refreshing = true;
    const { tokenUrl, identity, instance } = s;
    const signal = this.lifetime.signal;
    this.spawn(
      () => obtainToken(tokenUrl, identity, instance, signal),
      ({ value, error }) => {
        const now = this.session;
        if (!now) return;
        now.refreshing = false;
        if (error) {
          observe('error', { kind: error.kind || 'internal', message: `token refresh failed: ${error.message}` });
          return;
        }
        const ws = now.link.state === 'open' ? now.link.ws : null;
        if (ws && ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: 'update_token', token: value.token }));
        }
        this.adopt(value);
      },
    );
  },

  // The running instance takes `credential` for REST and its next connections; kept in
  // storage; reported.
  adopt(credential) {
    const s = this.session;
    if (!s) return;
    s.rest.token = credential.token;
    s.tokenExpires = credential.expiresAt;
    s.expirySeen = false;
    if (credential.fetched) storage.keepToken(s.storageDir, s.identity, credential);
    observe('token_updated');
  },

  // ------------------------------------------------------------ the event connection

  // A socket is open for the client: the backoff starts over, the heartbeat starts.
  linked() {
    const s = this.session;
    s.link.failures = 0;
    s.link.heartbeat = null;
    observe('connection_state', { state: 'connected' });
    this.armHeartbeat(s.link.id);
  },

  armHeartbeat(link) {
    this.spawn(
      (gen) => activity.sleep(HEARTBEAT_EVERY_MS, gen),
      () => this.heartbeatDue(link),
    );
  },

  // Socket `link` is due a probe: send one, or give the socket up if the last one was never
  // echoed (it stays open but is silent: only this timer can tell).
  heartbeatDue(link) {
    const s = this.session;
    if (!s || s.link.id !== link || s.link.state !== 'open') return;
    if (s.link.heartbeat !== null) {
      log(`event socket ${link} missed its heartbeat: replacing it`);
      closeSocket(s.link.ws, undefined, { dead: true });
      return this.lostLink();
    }
    this.nonce += 1;
    s.link.heartbeat = this.nonce;
    s.link.ws.send(JSON.stringify({ type: 'heartbeat', nonce: this.nonce }));
    this.armHeartbeat(link);
  },

  // The current socket is gone (closed by the other side, or dead): replace it after a
  // backoff, unless the app is in the background.
  lostLink() {
    const s = this.session;
    Object.assign(s.link, { ws: null, state: 'reconnecting', heartbeat: null });
    // Pongs will never come on it: settles ping again on the next socket, or answer when quiet.
    this.forgetPings();
    observe('connection_state', { state: 'disconnected' });
    if (s.background) {
      s.link.state = 'parked';
      return;
    }
    observe('connection_state', { state: 'connecting' });
    this.reconnect(true);
  },

  // The wait before attempt number `failures` (failed attempts in a row, from 0):
  // min(1 s * 2^n, 60 s), stretched by a seeded jitter in [1, 1.5).
  backoff(failures) {
    const base = Math.min(BACKOFF_MIN_MS * 2 ** Math.min(failures, 16), BACKOFF_MAX_MS);
    return Math.round(base * (1 + this.random() / 2));
  },

  // Opens a new socket for the client, after the backoff when `wait` is set, resuming after the
  // last event received. The same instance, token and headers throughout.
  reconnect(wait) {
    const s = this.session;
    const delay = wait ? this.backoff(s.link.failures) : 0;
    const link = ++this.links;
    Object.assign(s.link, { id: link, ws: null, state: 'reconnecting', heartbeat: null });
    const current = (gen) => gen === this.generation && this.session && this.session.link.id === link;
    this.spawn(
      async (gen) => {
        if (delay > 0) await activity.sleep(delay, gen);
        // Abandoned while it waited (the app went to the background, the client ended).
        if (!current(gen)) return null;
        // A token that expired (or is about to) while the client was away is replaced first:
        // the same instance goes on with a fresh one (TOKEN-4).
        if (s.tokenExpires <= clock.now + TOKEN_MARGIN_MS) {
          const fresh = await obtainToken(s.tokenUrl, s.identity, s.instance, this.lifetime.signal);
          if (!current(gen)) return null;
          this.adopt(fresh);
        }
        const url = eventsUrlSince(s.eventsUrl, s.link.lastSeq);
        const ws = await connectEvents(url, s.rest.token, s.instance, link);
        if (!current(gen)) {
          closeSocket(ws);
          return null;
        }
        return ws;
      },
      (result) => this.reconnected(link, result),
    );
  },

  // Attempt `link` ended: the socket is the client's now, or the next attempt backs off more.
  reconnected(link, { value, error }) {
    const s = this.session;
    if (!s || s.link.id !== link || s.link.state !== 'reconnecting') {
      if (value) closeSocket(value);
      return;
    }
    if (error) {
      if (error.status === 401) {
        // The channel refused the token: report its expiry; the next attempt fetches one first.
        s.tokenExpires = Math.min(s.tokenExpires, clock.now);
        this.noticeExpiry();
      }
      s.link.failures += 1;
      return this.reconnect(true);
    }
    if (!value) return;
    s.link.ws = value;
    s.link.state = 'open';
    this.linked();
  },

  // ------------------------------------------------------------ socket input

  socketFrame(link, frame) {
    const pending = this.pendingStart ? this.pendingStart.link : null;
    const current = this.session ? this.session.link.id : null;
    if (link !== pending && link !== current) {
      // A socket the client let go of: a pong on it still ends a settle; the rest is stale.
      if (frame.type === 'pong') this.ponged(frame.nonce);
      return schedule();
    }
    const s = this.session;
    switch (frame.type) {
      case 'welcome':
        // Where this socket starts in the event log: the resume point of a client that has
        // received nothing yet.
        if (typeof frame.seq !== 'number') break;
        if (!s) this.welcome = frame.seq;
        else if (s.link.lastSeq === null || s.link.lastSeq < frame.seq) s.link.lastSeq = frame.seq;
        break;
      case 'pong':
        this.ponged(frame.nonce);
        break;
      case 'heartbeat':
        if (s && s.link.heartbeat === frame.nonce) s.link.heartbeat = null;
        break;
      case 'token_about_to_expire':
      case 'token_expired':
      case 'token_updated':
      case 'token_rejected':
        if (!s) break;
        this.epoch += 1;
        try {
          this.tokenFrame(frame);
        } catch (e) {
          log('internal error:', e && e.stack ? e.stack : e);
        }
        break;
      default:
        if (!s) {
          // The socket is up before the client is: keep what arrives until it is.
          this.earlyFrames.push(frame);
          break;
        }
        this.epoch += 1;
        try {
          this.event(frame);
        } catch (e) {
          log('internal error:', e && e.stack ? e.stack : e);
        }
    }
    schedule();
  },

  // An event frame: handled once, in log order (a replay overlapping what arrived is skipped).
  event(frame) {
    const link = this.session.link;
    if (typeof frame.seq === 'number') {
      if (link.lastSeq !== null && frame.seq <= link.lastSeq) return;
      link.lastSeq = frame.seq;
    }
    this.frame(frame);
  },

  socketClosed(link, code) {
    const s = this.session;
    if (!s || s.link.id !== link || s.link.state !== 'open') return;
    this.epoch += 1;
    if (code === TOKEN_EXPIRED_CLOSE) {
      // Closed at the token's expiry: the reconnect fetches a fresh token first.
      s.tokenExpires = Math.min(s.tokenExpires, clock.now);
      this.noticeExpiry();
    }
    this.lostLink();
    schedule();
  },

  // ------------------------------------------------------------ synchronization

  beginSync() {
    const s = this.session;
    this.enqueue({ kind: 'page', url: `/v1/Users/${segment(s.identity)}/Conversations?PageSize=${PAGE_SIZE}` });
    this.enqueue({ kind: 'user' });
  },

  enqueue(job, urgent = false) {
    const s = this.session;
    if (!s) return;
    if (urgent) s.lane.unshift(job);
    else s.lane.push(job);
  },

  // Starts the next synchronization fetch unless one is running.
  pump() {
    const s = this.session;
    if (!s || s.laneBusy || s.lane.length === 0) return;
    const job = s.lane.shift();
    s.laneBusy = true;
    const rest = s.rest;
    const done = (handler) => (result) => {
      if (this.session) this.session.laneBusy = false;
      handler(result);
    };
    switch (job.kind) {
      case 'page':
        return this.spawn(() => rest.call('GET', job.url), done((res) => this.listPage(res)));
      case 'user':
        return this.spawn(
          () => rest.call('GET', `/v1/Users/${segment(s.identity)}`),
          done((res) => this.userFetched(res)),
        );
      case 'metadata':
        return this.spawn(
          () => rest.call('GET', `/v1/Conversations/${job.sid}`),
          done((res) => this.metadata(job.sid, res)),
        );
      case 'participants':
        return this.spawn(
          () => rest.call('GET', `/v1/Conversations/${job.sid}/Participants`),
          done((res) => this.participants(job.sid, res)),
        );
    }
  },

  listPage({ value, error }) {
    const s = this.session;
    if (!s) return;
    if (error) {
      s.sync = 'failed';
      observe('client_sync', { status: 'failed' });
      observe('error', { kind: error.kind || 'internal', message: error.message });
      this.flushOps();
      return;
    }
    const page = value.body;
    for (const item of page.conversations || []) this.learn(item.conversation_sid, 'page');
    const next = page.meta && page.meta.next_page_url;
    if (next) {
      this.enqueue({ kind: 'page', url: next }, true);
    } else {
      s.listDone = true;
      this.advanceClientSync();
      this.flushOps();
    }
  },

  userFetched({ value, error }) {
    if (error) return observe('error', { kind: error.kind || 'internal', message: error.message });
    this.applySnapshot({ kind: 'user' }, parseAttributes(value.body.attributes), value.revision ?? 1, []);
    this.completeUpdates({ kind: 'user' });
  },

  metadata(sid, { value, error }) {
    if (error) return this.conversationFailed(sid, error);
    const target = { kind: 'conversation', sid };
    this.applySnapshot(target, parseAttributes(value.body.attributes), value.revision ?? 1, []);
    this.completeUpdates(target);
    this.setConversationSync(sid, 'metadata');
    if (this.session && this.session.conversations.has(sid)) {
      this.enqueue({ kind: 'participants', sid }, true);
    }
  },

  participants(sid, { error }) {
    if (error) return this.conversationFailed(sid, error);
    this.setConversationSync(sid, 'all');
    this.advanceClientSync();
    this.flushOps();
  },

  conversationFailed(sid, error) {
    this.setConversationSync(sid, 'failed');
    observe('error', { kind: error.kind || 'internal', message: error.message });
    this.advanceClientSync();
    this.flushOps();
  },

  setConversationSync(sid, status) {
    const c = this.session && this.session.conversations.get(sid);
    if (!c || c.sync === status) return;
    c.sync = status;
    observe('conversation_sync', { conversation: sid, status });
  },

  // Moves the client's sync status forward as far as the facts allow; never back.
  advanceClientSync() {
    const s = this.session;
    if (!s || !s.listDone || s.sync === 'completed' || s.sync === 'failed') return;
    if (s.sync === 'started') {
      s.sync = 'conversations_completed';
      observe('client_sync', { status: s.sync });
    }
    const all = [...s.conversations.values()].every((c) => c.sync === 'all' || c.sync === 'failed');
    if (all) {
      s.sync = 'completed';
      observe('client_sync', { status: s.sync });
    }
  },

  // ------------------------------------------------------------ the list

  // A conversation sid became known: list it once and synchronize it. A page cannot bring back
  // what an event removed; only an explicit add can.
  learn(sid, source) {
    const s = this.session;
    if (!s || typeof sid !== 'string') return;
    if (s.tombstones.has(sid)) {
      if (source !== 'added') return;
      s.tombstones.delete(sid);
    }
    if (s.conversations.has(sid)) return;
    s.list.push(sid);
    s.conversations.set(sid, { sync: 'identifier', object: { attributes: {}, revision: 0 } });
    observe('conversation_added', { conversation: sid });
    observe('conversation_sync', { conversation: sid, status: 'identifier' });
    this.enqueue({ kind: 'metadata', sid });
  },

  // An event said the conversation is gone: forget it, and remember that it is gone.
  forget(sid) {
    const s = this.session;
    if (!s) return;
    s.tombstones.add(sid);
    const known = s.conversations.delete(sid);
    s.list = s.list.filter((x) => x !== sid);
    s.fetched.delete(sid);
    s.lane = s.lane.filter((j) => j.sid !== sid);
    const dead = s.waitingOps.filter(([, op]) => opConversation(op) === sid);
    s.waitingOps = s.waitingOps.filter(([, op]) => opConversation(op) !== sid);
    for (const [responder] of dead) responder.error('not_found', `conversation ${sid} was removed`);
    if (known) observe('conversation_removed', { conversation: sid });
    this.advanceClientSync();
  },

  // ------------------------------------------------------------ events

  frame(f) {
    const s = this.session;
    if (!s) return;
    const sid = f.conversation_sid;
    const revision = typeof f.revision === 'number' ? f.revision : 0;
    const reasons = Array.isArray(f.reasons) ? f.reasons : [];
    switch (f.type) {
      case 'conversation_added':
        if (sid) this.learn(sid, 'added');
        return;
      case 'conversation_removed':
        if (sid) this.forget(sid);
        return;
      case 'conversation_updated': {
        if (!sid) return;
        // An update can overtake the add: it still means the user has the conversation.
        if (!s.conversations.has(sid)) this.learn(sid, 'event');
        const target = { kind: 'conversation', sid };
        const attrs = f.conversation ? parseAttributes(f.conversation.attributes) : null;
        this.applySnapshot(target, attrs, revision, reasons);
        this.completeUpdates(target);
        return;
      }
      case 'user_updated': {
        const attrs = f.user ? parseAttributes(f.user.attributes) : null;
        this.applySnapshot({ kind: 'user' }, attrs, revision, reasons);
        this.completeUpdates({ kind: 'user' });
        return;
      }
      case 'message_added':
        if (!sid || typeof f.index !== 'number') return;
        // A message in a conversation not seen yet still means the user has it.
        if (!s.conversations.has(sid)) this.learn(sid, 'event');
        observe('message_added', { conversation: sid, index: f.index });
        return;
      case 'message_updated':
      case 'message_removed': {
        if (!sid || typeof f.index !== 'number') return;
        const fetched = s.fetched.get(sid);
        const wasFetched = !!fetched && fetched.has(f.index);
        if (f.type === 'message_removed' && fetched) fetched.delete(f.index);
        if (wasFetched) observe(f.type, { conversation: sid, index: f.index });
        return;
      }
      default:
        return;
    }
  },

  // ------------------------------------------------------------ objects and updates

  object(target) {
    const s = this.session;
    if (!s || !target) return null;
    if (target.kind === 'user') return s.user;
    const c = s.conversations.get(target.sid);
    return c ? c.object : null;
  },

  read(r, target) {
    if (!this.session) return r.error('client_shut_down', 'no client');
    const o = this.object(target);
    if (!o) return r.error('not_found', `${describe(target)} is unknown to the client`);
    r.ok({ attributes: o.attributes });
  },

  // Applies a snapshot only when it is newer than what the client shows; reports whether it did.
  applySnapshot(target, attributes, revision, reasons) {
    const o = this.object(target);
    if (!o || !(revision > o.revision)) return false;
    o.attributes = attributes;
    o.revision = revision;
    if (reasons.length > 0) {
      if (target.kind === 'user') observe('user_updated', { attributes });
      else observe('conversation_updated', { conversation: target.sid, reasons, attributes });
    }
    return true;
  },

  // Completes every update of `target` whose revision the client has now seen, with the value
  // the backend announced (not the one written).
  completeUpdates(target) {
    const s = this.session;
    const o = this.object(target);
    if (!s || !o) return;
    const key = describe(target);
    const done = s.awaited.filter((a) => describe(a.target) === key && a.revision <= o.revision);
    s.awaited = s.awaited.filter((a) => !done.includes(a));
    for (const a of done) a.responder.ok({ attributes: o.attributes });
  },

  acked(r, target, { value, error }) {
    if (error) return r.fail(error);
    const s = this.session;
    if (!s) return r.error('client_shut_down', 'no client');
    const revision = value.revision || 0;
    if (revision === 0) {
      // No revision to wait for: the backend's answer is all there is.
      return r.ok({ attributes: parseAttributes(value.body.attributes) });
    }
    s.awaited.push({ responder: r, target, revision });
    this.completeUpdates(target);
  },

  // ------------------------------------------------------------ operations

  // Whether `op` may go to the backend now (true), later (false), or never (a CommandError).
  mayRun(op) {
    const s = this.session;
    if (!s) return new CommandError('client_shut_down', 'no client is started');
    const sid = opConversation(op);
    if (sid === null) {
      if (s.sync === 'failed') return new CommandError('not_synchronized', 'the client failed to synchronize');
      return s.sync === 'completed';
    }
    const c = s.conversations.get(sid);
    if (c) {
      if (c.sync === 'failed') {
        return new CommandError('not_synchronized', `conversation ${sid} failed to synchronize`);
      }
      return c.sync === 'all';
    }
    if (s.sync === 'completed') {
      return new CommandError('not_found', `conversation ${sid} is not in the user's list`);
    }
    if (s.sync === 'failed') return new CommandError('not_synchronized', 'the client failed to synchronize');
    return false;
  },

  submit(r, op) {
    if (op.kind === 'update' && !validTarget(op.target)) {
      return r.error('invalid_command', 'target must be {"kind":"user"} or {"kind":"conversation","sid":...}');
    }
    const may = this.mayRun(op);
    if (may instanceof CommandError) return r.fail(may);
    if (may) return this.execute(r, op);
    this.session.waitingOps.push([r, op]);
  },

  flushOps() {
    const s = this.session;
    if (!s) return;
    const waiting = s.waitingOps;
    s.waitingOps = [];
    for (const [r, op] of waiting) this.submit(r, op);
  },

  execute(r, op) {
    const s = this.session;
    const rest = s.rest;
    if (op.kind === 'update') {
      const path =
        op.target.kind === 'user'
          ? `/v1/Users/${segment(s.identity)}`
          : `/v1/Conversations/${op.target.sid}`;
      const form = { Attributes: JSON.stringify(op.attributes ?? null) };
      this.spawn(() => rest.call('POST', path, form), (res) => this.acked(r, op.target, res));
    } else {
      const path = `/v1/Conversations/${op.conversation}/Messages`;
      this.spawn(
        () => rest.call('POST', path, { Body: String(op.body ?? '') }),
        ({ value, error }) => (error ? r.fail(error) : r.ok({ index: value.body.index })),
      );
    }
  },

  // ------------------------------------------------------------ handles and messages

  open(r, sid) {
    const s = this.session;
    if (!s) return r.error('client_shut_down', 'no client');
    if (!s.conversations.has(sid)) return r.error('not_found', `conversation ${sid} is unknown`);
    s.nextHandle += 1;
    // Prefixed with the instance: a handle id is never reused by a later client.
    const handle = `${s.instance}/h-${s.nextHandle}`;
    s.handles.set(handle, sid);
    this.handleOwners.set(handle, s.instance);
    observe('handle_acquired', { handle });
    r.ok({ handle });
  },

  release(r, handle) {
    const s = this.session;
    const owner = this.handleOwners.get(handle);
    if (!s || (owner !== undefined && owner !== s.instance)) {
      return r.error('client_shut_down', `handle ${handle} belonged to a client that was shut down`);
    }
    if (s.handles.delete(handle)) {
      observe('handle_released', { handle });
      return r.done();
    }
    r.error('released_handle', `handle ${handle} is not live`);
  },

  // Fetches the newest `count` messages, only because the app asked.
  fetchMessages(r, sid, count) {
    const n = Math.min(Math.max(Number(count) || 1, 1), 100);
    const rest = this.session.rest;
    this.spawn(
      () => rest.call('GET', `/v1/Conversations/${sid}/Messages?Order=desc&PageSize=${n}`),
      ({ value, error }) => {
        if (error) return r.fail(error);
        const indices = (value.body.messages || []).map((m) => m.index);
        const s = this.session;
        if (s) {
          if (!s.fetched.has(sid)) s.fetched.set(sid, new Set());
          const set = s.fetched.get(sid);
          for (const i of indices) set.add(i);
        }
        r.ok({ messages: indices });
      },
    );
  },

  // ------------------------------------------------------------ push registration

  // The client was created; `kept` is what storage held before this start. Registers the device
  // unless the stored registration is this one (PUSH-1, PUSH-2); the previous identity's binding
  // of the device is removed first, with a token of that identity (PUSH-4), and so is this
  // identity's binding of a device token the OS has replaced since. Background work, so a
  // `settle` covers it; what was registered is stored for the next start.
  registerOnStart(kept) {
    const s = this.session;
    if (!s || !s.deviceToken) return;
    const current = { identity: s.identity, device_token: s.deviceToken };
    const stored = kept.registration;
    const previous =
      stored && typeof stored.identity === 'string' && typeof stored.device_token === 'string'
        ? stored
        : null;
    if (previous && previous.identity === current.identity && previous.device_token === current.device_token) {
      return; // registered already: nothing to write
    }
    const { rest, instance, tokenUrl, storageDir } = s;
    const signal = this.lifetime.signal;
    // A token of the previous identity: the stored one while it is that identity's and valid
    // for more than the margin, else the generator's (fetched in the task). This identity's
    // old device token is removed with the session's own token.
    let storedToken = null;
    if (previous && previous.identity !== current.identity) {
      const t = kept.token;
      if (
        t && t.identity === previous.identity && typeof t.token === 'string' &&
        typeof t.expires_at === 'number' && t.expires_at > clock.now + TOKEN_MARGIN_MS
      ) {
        storedToken = t.token;
      }
    }
    this.spawn(
      async () => {
        if (previous) {
          let as = rest;
          if (previous.identity !== current.identity) {
            const token =
              storedToken || (await obtainToken(tokenUrl, previous.identity, instance, signal)).token;
            as = new Rest(rest.base, token, instance, rest.gen, rest.signal);
          }
          await unregister(as, previous.device_token);
        }
        await register(rest, current.device_token);
      },
      ({ error }) => this.registered(storageDir, current, error),
    );
  },

  // `device_token_changed`: the running client registers the new device token and removes the
  // old one's binding (PUSH-3). Without a running client there is nothing to do: the next
  // `start` brings the new token (and registers it, the stored registration being another).
  deviceTokenChanged(deviceToken) {
    const s = this.session;
    if (!s) return;
    const old = s.deviceToken;
    s.deviceToken = deviceToken;
    if (old === deviceToken) return;
    const { rest, storageDir } = s;
    const current = { identity: s.identity, device_token: deviceToken };
    this.spawn(
      async () => {
        await register(rest, deviceToken);
        if (old) await unregister(rest, old);
      },
      ({ error }) => this.registered(storageDir, current, error),
    );
  },

  // A registration task ended: what it registered is kept for the next start.
  registered(storageDir, registration, error) {
    if (error) {
      observe('error', { kind: error.kind || 'internal', message: `push registration failed: ${error.message}` });
      return;
    }
    storage.keepRegistration(storageDir, registration.identity, registration.device_token);
  },

  // ------------------------------------------------------------ counts

  // `get_count`: served from the cache while the count is younger than the cache lifetime on
  // the virtual clock, fetched otherwise (COUNT-1, COUNT-2). One `Counts` fetch fills both the
  // participant and the message count; the unread count is the user's view of the
  // conversation, null while the user has no read horizon (COUNT-3).
  getCount(r, sid, kind) {
    const s = this.session;
    if (!s) return r.error('client_shut_down', 'no client');
    if (!['participants', 'messages', 'unread'].includes(kind)) {
      return r.error('invalid_command', 'kind must be participants, messages or unread');
    }
    if (!s.conversations.has(sid)) return r.error('not_found', `conversation ${sid} is unknown`);
    const cached = s.counts.get(`${sid} ${kind}`);
    if (cached && clock.now - cached.at < COUNT_CACHE_MS) return r.ok({ count: cached.count });
    const { rest, identity } = s;
    this.spawn(
      async () => {
        if (kind === 'unread') {
          const { body } = await rest.call(
            'GET', `/v1/Users/${segment(identity)}/Conversations/${segment(sid)}`,
          );
          const n = body && body.unread_messages_count;
          return { unread: typeof n === 'number' ? n : null };
        }
        const { body } = await rest.call('GET', `/v1/Conversations/${segment(sid)}/Counts`);
        const count = (n) => (typeof n === 'number' ? n : null);
        return {
          participants: count(body && body.participants_count),
          messages: count(body && body.messages_count),
        };
      },
      ({ value, error }) => {
        if (error) return r.fail(error);
        const now = this.session;
        if (now) {
          for (const [k, count] of Object.entries(value)) {
            now.counts.set(`${sid} ${k}`, { at: clock.now, count });
          }
        }
        r.ok({ count: value[kind] });
      },
    );
  },

  // ------------------------------------------------------------ settling

  ping() {
    const s = this.session;
    if (!s || s.link.state !== 'open' || s.link.ws.readyState !== WebSocket.OPEN) return null;
    this.nonce += 1;
    s.link.ws.send(JSON.stringify({ type: 'ping', nonce: this.nonce }));
    return this.nonce;
  },

  beginSettle(r) {
    this.settling.push({ responder: r, nonce: this.ping(), epoch: this.epoch });
  },

  ponged(nonce) {
    for (const w of this.settling) if (w.nonce === nonce) w.nonce = null;
  },

  // The socket the pings went out on is gone: their pongs will never come (the next round
  // pings again, on the next socket if there is one).
  forgetPings() {
    for (const w of this.settling) w.nonce = null;
  },

  // Answers every settle whose ping came back with nothing new happening and nothing but
  // virtual-time sleeps in flight; pings again for the others.
  pollSettle() {
    if (this.settling.length === 0 || !activity.quiet()) return;
    const waiting = this.settling;
    this.settling = [];
    for (const w of waiting) {
      if (w.nonce !== null) {
        this.settling.push(w);
      } else if (w.epoch === this.epoch) {
        w.responder.done();
      } else {
        w.epoch = this.epoch;
        w.nonce = this.ping();
        if (w.nonce === null) w.responder.done();
        else this.settling.push(w);
      }
    }
  },
};

function opConversation(op) {
  if (op.kind === 'send') return op.conversation;
  return op.target && op.target.kind === 'conversation' ? op.target.sid : null;
}

function validTarget(t) {
  return !!t && (t.kind === 'user' || (t.kind === 'conversation' && typeof t.sid === 'string'));
}

function describe(target) {
  return target && target.kind === 'conversation' ? `conversation ${target.sid}` : 'user';
}

// ---------------------------------------------------------------- main

// A bug here must show up in the journal, not kill the session.
process.on('uncaughtException', (e) => log('internal error:', e && e.stack ? e.stack : e));
process.on('unhandledRejection', (e) => log('internal error:', e && e.stack ? e.stack : e));
// The harness went away: nothing left to answer.
process.stdout.on('error', () => process.exit(0));

send({
  type: 'hello',
  protocol: PROTOCOL,
  adapter: 'node-example',
  version: require('./package.json').version,
  profile: 'js',
  capabilities: {
    virtual_time: true,
    settle: true,
    count_cache_lifetime_ms: COUNT_CACHE_MS,
    features: ['messages'],
    commands: COMMANDS,
  },
});

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  if (line.trim() === '') return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    log('malformed request line:', e.message);
    return;
  }
  if (typeof req !== 'object' || req === null || typeof req.id !== 'number') {
    log('request without an id');
    return;
  }
  engine.command(req);
});
input.on('close', () => {
  const ws = engine.dropSession();
  if (ws) ws.terminate();
  process.exit(0);
});
