#!/usr/bin/env node
// A convo-tck stdio adapter around the real, unmodified Twilio Conversations JS SDK
// (`@twilio/conversations` 3.0.1, pinned in package-lock.json).
//
// The harness writes one JSON request per line on stdin; this process answers `hello` first,
// then one reply per request and unsolicited observations on stdout, and exits when stdin
// closes. The adapter only translates: every behaviour the rules judge is the SDK's own (how it
// connects, reconnects, pages, caches counts, delivers events). The app-level glue an app has
// to write itself is here too, kept small: fetching tokens from the generator and handing them
// over on `tokenAboutToExpire` / `tokenExpired`, keeping the token in `storage_dir`, merging
// the subscribed list with the added/removed events, and handing out handles.
//
// The SDK is never patched. Two Node globals are wrapped (see README.md):
// - the timers and `Date`, by @sinonjs/fake-timers, so that the SDK's clock is the harness's
//   virtual clock (`advance_time`); a thin wrapper around the fake `setTimeout` notices timers
//   due now (the SDK dispatches every socket event through `setTimeout(f, 0)`) and fires them on
//   the next turn of the real event loop;
// - `WebSocket`: the SDK's twilsock channel uses `global.WebSocket` when there is one, else the
//   `ws` package. The adapter defines it as `ws`'s own class, recording each socket with the
//   instance that opened it, so that `kill` can cut the socket abruptly and `logout` can answer
//   once the socket is closed.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');

// ---------------------------------------------------------------- virtual time

// stdout is the protocol's: whatever the SDK logs through `console` (TWJS_SDK_LOG levels above
// warn use console.log) goes to stderr, which the kit journals as log lines (and scrubs).
for (const level of ['log', 'info', 'debug', 'trace']) {
  console[level] = (...parts) => process.stderr.write(`${require('node:util').format(...parts)}\n`);
}

// Repeatable randomness: the SDK draws its reconnect jitter (retryPolicy randomness) from
// Math.random; a seeded generator (mulberry32; TWJS_SEED, default 1) makes the same run take
// the same backoff timeline every time, as the kit's virtual time expects.
let randomState = Number(process.env.TWJS_SEED || 1) >>> 0;
Math.random = () => {
  randomState = (randomState + 0x6d2b79f5) >>> 0;
  let t = randomState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// Kept before the fakes go in: the adapter's own plumbing runs on real event-loop turns.
const realSetImmediate = setImmediate;
const FakeTimers = require('@sinonjs/fake-timers');

// The SDK's clock. Only these are faked: setImmediate, process.nextTick, queueMicrotask and
// Node's own I/O timers stay real (they are event-loop plumbing, not delays).
const clock = FakeTimers.install({
  // The kit's virtual epoch (2026-01-01T00:00:00Z): the same dates in every run.
  now: Date.UTC(2026, 0, 1),
  toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  loopLimit: 100_000,
});

// A timer set for at most this many ms is fired early by `settle` when nothing else is left to
// do, without moving the clock (see README.md, "Time"): Sync batches its subscription requests
// on a 100-120 ms timer, which would otherwise wait for the harness to advance time. Longer
// timers (reconnect backoff, request timeouts, retries, caches) only fire on `advance_time`.
// 0 = only timers due at the current time ever fire during a settle.
const SETTLE_EARLY_MS = envNumber('TWJS_SETTLE_EARLY_MS', 150);

function envNumber(name, fallback) {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v >= 0 ? v : fallback;
}

function eachTimer() {
  return clock.timers instanceof Map ? [...clock.timers.values()] : Object.values(clock.timers || {});
}

const time = {
  pumping: false,
  pumpQueued: false,
  // The earliest timer of the SDK's clock, or null.
  nextDue() {
    let next = null;
    for (const t of eachTimer()) if (next === null || t.callAt < next) next = t.callAt;
    return next;
  },
  hasDue() {
    const next = this.nextDue();
    return next !== null && next <= clock.now;
  },
  // The earliest zero-delay timer, if any. fake-timers schedules a zero-delay timer created
  // while it is firing timers 1 ms later (as browsers clamp nested timers), so a chain of the
  // SDK's `setTimeout(f, 0)` would move its clock a millisecond a link.
  nextZeroTimer() {
    let next = null;
    for (const t of eachTimer()) if (!t.delay && !t.interval && (next === null || t.callAt < next.callAt)) next = t;
    return next;
  },
  nextZero() {
    const t = this.nextZeroTimer();
    return t === null ? null : t.callAt;
  },
  busyNow() {
    return this.hasDue() || this.nextZero() !== null;
  },
  // Runs `work` with the clock to itself.
  async exclusive(work) {
    while (this.pumping) await turns(1);
    this.pumping = true;
    try {
      return await work();
    } finally {
      this.pumping = false;
    }
  },
  // Runs one timer now, ahead of its time, without moving the clock: it is taken off the
  // clock and its function called, so every other timer keeps its time and `Date.now()` never
  // jumps (ticking ahead and setting the clock back would shift every pending timer).
  async fireEarly(timer) {
    clock.clearTimeout(timer.id);
    try {
      timer.func.apply(null, timer.args || []);
    } catch (e) {
      log('a timer of the SDK threw:', e && e.stack ? e.stack : e);
    }
    await turns(1);
  },
  // Fires every timer due now, and the zero-delay ones, until none is left.
  async fireNow() {
    for (;;) {
      if (this.hasDue()) {
        await clock.tickAsync(0);
        continue;
      }
      const zero = this.nextZeroTimer();
      if (zero === null) return;
      await this.fireEarly(zero);
    }
  },
  pumpSoon() {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    realSetImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  },
  async pump() {
    if (this.pumping) return;
    await this.exclusive(() => this.fireNow());
  },
  async advance(ms) {
    await this.exclusive(async () => {
      await clock.tickAsync(ms);
      await this.fireNow();
    });
  },
  // Fires the earliest short timer (set for at most SETTLE_EARLY_MS, not an interval) early,
  // unless a longer timer would come due first: returns whether it did.
  async early() {
    if (SETTLE_EARLY_MS <= 0) return false;
    const timers = eachTimer();
    let first = null;
    for (const t of timers) {
      if (!t.interval && t.delay <= SETTLE_EARLY_MS && (first === null || t.callAt < first.callAt)) first = t;
    }
    if (first === null || first.callAt <= clock.now) return false;
    // Never ahead of a longer timer that is due first: time order among the SDK's timers holds.
    if (timers.some((t) => t.callAt <= first.callAt && (t.interval || t.delay > SETTLE_EARLY_MS))) return false;
    if (process.env.TWJS_DEBUG_TIME) log(`firing a timer ${first.callAt - clock.now} ms early`);
    await this.exclusive(async () => {
      await this.fireEarly(first);
      await this.fireNow();
    });
    return true;
  },
};

// Timers the SDK sets for "now" run without waiting for a settle or an advance.
{
  const fakeSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = function setTimeout(fn, ms, ...args) {
    const t = fakeSetTimeout(fn, ms, ...args);
    if (!(Number(ms) > 0)) time.pumpSoon();
    return t;
  };
}

function turns(n) {
  return new Promise((resolve) => {
    const step = (left) => (left <= 0 ? resolve() : realSetImmediate(() => step(left - 1)));
    step(n);
  });
}

// ---------------------------------------------------------------- the SDK's WebSocket

// The SDK's own copy of `ws` (a dependency of twilsock), wrapped so that sockets are known.
const WsWebSocket = require(require.resolve('ws', { paths: [path.dirname(require.resolve('twilsock'))] }));
const sockets = new Map(); // WebSocket -> instance id that opened it
const deadInstances = new Set(); // killed instances (a dead process): they never connect again

class TrackedWebSocket extends WsWebSocket {
  constructor(url, ...rest) {
    const instance = new URL(url).searchParams.get('client');
    if (deadInstances.has(instance)) {
      // An ended instance must never reach the backend again: fail before any connection.
      throw new Error(`instance ${instance} has ended`);
    }
    super(url, ...rest);
    this.sentFrames = 0;
    sockets.set(this, instance);
    this.on('close', () => {
      sockets.delete(this);
      engine.socketClosed();
    });
    this.on('error', () => {});
  }
}
// Frames the SDK wrote on an open socket: the settle barrier waits until the backend read them.
TrackedWebSocket.prototype.send = function send(data, ...rest) {
  if (this.readyState === 1) this.sentFrames += 1;
  return WsWebSocket.prototype.send.call(this, data, ...rest);
};
globalThis.WebSocket = TrackedWebSocket;

function framesSent(instance) {
  return socketsOf(instance)
    .filter((ws) => ws.readyState === 1)
    .reduce((n, ws) => n + ws.sentFrames, 0);
}

function socketsOf(instance) {
  return [...sockets].filter(([, i]) => i === instance).map(([ws]) => ws);
}

// Loaded only now: everything it creates sees the fake clock and the tracked WebSocket.
const { Client } = require('@twilio/conversations');
const SDK_VERSION = require('@twilio/conversations/package.json').version;

// ---------------------------------------------------------------- output

const PROTOCOL = 2;
const TOKEN_TTL_S = 4 * 3600; // asked of the generator: hours, at most a day (TOKEN-2)
const TOKEN_MARGIN_MS = 180_000; // a stored token must outlive this to be used at start (TOKEN-5)
const STORAGE_FILE = 'twilio-js-adapter.json';
// The SDK's Network cache: `http_cache_interval` (seconds) x 100 ms; the SDK's default PT5S.
const COUNT_CACHE_MS = 500;
// list_conversations gives up (error `backend`) after this many pages in a row with nothing new.
const STALE_PAGES = 20;
// The push registrar (ERS) the SDK's Notifications client writes to over twilsock. Any host:
// the backend routes only the path (/v1/registrations). The SDK's default is
// https://ers.us1.twilio.com/v1/registrations.
const ERS_URL = 'http://ers.convo-tck.invalid/v1/registrations';
// The push technology of a device token: FCM, the one a browser has (the SDK accepts 'fcm' and
// 'apn').
const PUSH_CHANNEL = 'fcm';
const COMMANDS = [
  'start', 'logout', 'kill', 'list_conversations', 'open_conversation', 'release',
  'fetch_messages', 'send_message', 'update_attributes', 'read_attributes', 'get_count',
  'advance_time', 'settle', 'inspect', 'device_token_changed',
];

let closedInput = false;
function send(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
}
function observe(event, fields = {}) {
  send({ type: 'observation', event, ...fields });
}
const WAITS_FOR_EVENT = process.env.TWJS_UPDATE_WAITS_FOR_EVENT === '1';

function log(...parts) {
  // stderr is journaled: never put a token here.
  process.stderr.write(`[twilio-js-adapter] ${parts.join(' ')}\n`);
}

class CommandError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

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
    else this.error(sdkErrorKind(e), describeError(e));
  }
}

function describeError(e) {
  if (!e) return 'unknown error';
  const parts = [e.message || String(e)];
  if (e.status) parts.push(`status ${e.status}`);
  if (e.code) parts.push(`code ${e.code}`);
  return parts.join(', ');
}

// The SDK's errors carry the backend's HTTP status (TwilsockUpstreamError, SyncError).
function sdkErrorKind(e) {
  if (!e) return 'internal';
  if (e.code === 20104 || e.code === 20157 || e.errorCode === 20104) return 'token_rejected';
  if (e.status === 404 || e.code === 50350 || e.code === 54100 || e.code === 50300) return 'not_found';
  if (typeof e.status === 'number' && e.status >= 400) return 'backend';
  return 'internal';
}

// ---------------------------------------------------------------- tokens and storage

async function fetchToken(tokenUrl, identity, instance) {
  engine.io += 1;
  try {
    return await requestToken(tokenUrl, identity, instance);
  } finally {
    engine.io -= 1;
    engine.activity += 1;
  }
}

async function requestToken(tokenUrl, identity, instance) {
  const body = new URLSearchParams({ identity, ttl: String(TOKEN_TTL_S) }).toString();
  const { status, text } = await httpRequest(tokenUrl, {
    method: 'POST',
    headers: {
      'X-Convo-Client': instance,
      'Content-Type': 'application/x-www-form-urlencoded',
      'Content-Length': Buffer.byteLength(body),
    },
    body,
  }).catch((e) => {
    throw new CommandError('backend', `token generator unreachable: ${e.message}`);
  });
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  if (status === 200 && json && typeof json.token === 'string') {
    const ttl = typeof json.ttl === 'number' ? json.ttl : TOKEN_TTL_S;
    return { token: json.token, expiresAt: Date.now() + ttl * 1000, ttl };
  }
  throw new CommandError('token_rejected', `token generator answered ${status}: ${(json && json.message) || ''}`);
}

// Plain HTTP on Node's own sockets (not `fetch`, whose timers would be the fake ones).
function httpRequest(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// The app's persistent storage: the current token of an identity and its expiry (virtual ms).
const storage = {
  file(dir) {
    return typeof dir === 'string' && dir !== '' ? path.join(dir, STORAGE_FILE) : null;
  },
  load(dir) {
    const file = this.file(dir);
    if (!file) return {};
    try {
      const v = JSON.parse(fs.readFileSync(file, 'utf8'));
      return v && typeof v === 'object' ? v : {};
    } catch {
      return {};
    }
  },
  update(dir, change) {
    const file = this.file(dir);
    if (!file) return;
    const v = this.load(dir);
    change(v);
    try {
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(v), { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
    } catch (e) {
      log('storage not writable:', e && e.code ? e.code : 'error');
    }
  },
  keep(dir, identity, credential) {
    this.update(dir, (v) => {
      v.token = { identity, token: credential.token, expires_at: credential.expiresAt };
    });
  },
  clear(dir) {
    this.update(dir, (v) => delete v.token);
  },
  // The device's push registration as the app last made it: { identity, device_token,
  // channel }. Kept across logouts and kills: it describes the device, not a session.
  push(dir) {
    const p = this.load(dir).push;
    return p && typeof p.identity === 'string' && typeof p.device_token === 'string' ? p : null;
  },
  keepPush(dir, push) {
    this.update(dir, (v) => {
      v.push = push;
    });
  },
  valid(dir, identity) {
    const t = this.load(dir).token;
    if (!t || t.identity !== identity || typeof t.token !== 'string') return null;
    if (typeof t.expires_at !== 'number' || t.expires_at <= Date.now() + TOKEN_MARGIN_MS) return null;
    return { token: t.token, expiresAt: t.expires_at, stored: true };
  },
};

// ---------------------------------------------------------------- URLs

function twilsockUrlOf(req) {
  if (typeof req.twilsock_url === 'string' && req.twilsock_url !== '') return req.twilsock_url;
  const u = new URL(req.events_url);
  u.pathname = u.pathname.replace(/\/v1\/events$/, '/v3/wsconnect');
  u.search = '';
  return u.toString();
}

function withClient(url, instance) {
  return `${url}${url.includes('?') ? '&' : '?'}client=${encodeURIComponent(instance)}`;
}

function barrierUrlOf(twilsockUrl, instance) {
  const u = new URL(twilsockUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = '/v3/kit/settle';
  u.search = `?client=${encodeURIComponent(instance)}`;
  return u.toString();
}

const CONNECTION_STATES = {
  connecting: 'connecting',
  connected: 'connected',
  disconnected: 'disconnected',
  denied: 'denied',
};

const REASONS = {
  attributes: 'attributes',
  friendlyName: 'friendly_name',
  uniqueName: 'unique_name',
  dateUpdated: 'date_updated',
  dateCreated: 'date_created',
  createdBy: 'created_by',
  lastMessage: 'last_message',
  lastReadMessageIndex: 'last_read_message_index',
  notificationLevel: 'notification_level',
  state: 'state',
  status: 'status',
  online: 'online',
  notifiable: 'notifiable',
};

function reasonsOf(list) {
  return (list || []).map((r) => REASONS[r] || r);
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---------------------------------------------------------------- the engine

const engine = {
  instances: 0,
  handles: 0,
  session: null, // the current client, see start()
  handleOwners: new Map(), // handle -> instance (ids are never reused)
  inflight: new Set(), // the adapter's SDK calls not settled yet
  io: 0, // the adapter's own requests to the token generator in flight
  barrierBusy: 0, // barrier answers in a row that were not 200
  activity: 0, // bumped on every SDK event, to tell a quiet round from a busy one
  closeWaiters: [],

  // Runs an SDK call, counted for settle.
  track(promise) {
    const p = Promise.resolve(promise);
    this.inflight.add(p);
    const done = () => {
      this.inflight.delete(p);
      this.activity += 1;
    };
    p.then(done, done);
    return p;
  },

  current(instanceCheck = true) {
    const s = this.session;
    if (!s || s.ended) throw new CommandError('client_shut_down', 'no client');
    if (instanceCheck && !s.client) throw new CommandError('client_shut_down', 'the client is still starting');
    return s;
  },

  async command(req) {
    const r = new Responder(req.id);
    try {
      switch (req.command) {
        case 'start':
          return await this.start(r, req);
        case 'logout':
          return await this.logout(r);
        case 'kill':
          return await this.kill(r);
        case 'list_conversations':
          return r.ok({ conversations: await this.listConversations() });
        case 'open_conversation':
          return r.ok({ handle: await this.open(req.conversation) });
        case 'release':
          return this.release(r, req.handle);
        case 'fetch_messages':
          return r.ok({ messages: await this.fetchMessages(req.conversation, req.count) });
        case 'send_message':
          return r.ok({ index: await this.sendMessage(req.conversation, req.body) });
        case 'update_attributes':
          return r.ok({ attributes: await this.update(req.target, req.attributes) });
        case 'read_attributes':
          return r.ok({ attributes: this.read(req.target) });
        case 'get_count':
          return r.ok({ count: await this.count(req.conversation, req.kind) });
        case 'advance_time':
          await time.advance(Math.max(0, Number(req.ms) || 0));
          return r.ok({});
        case 'settle':
          await this.settle();
          return r.ok({});
        case 'inspect':
          return r.ok(this.inspect());
        case 'device_token_changed':
          return this.deviceTokenChanged(r, req.device_token);
        default:
          return r.error('unsupported', `the twilio-js adapter does not implement \`${req.command}\``);
      }
    } catch (e) {
      if (!(e instanceof CommandError)) log('command', req.command, 'failed:', describeError(e));
      r.fail(e);
    }
  },

  // ------------------------------------------------------------ lifecycle

  async start(r, req) {
    const { identity, token_url: tokenUrl } = req;
    if (![identity, tokenUrl, req.rest_url, req.events_url].every((v) => typeof v === 'string')) {
      return r.error('invalid_command', 'start needs identity, token_url, rest_url, events_url');
    }
    if (this.session && !this.session.ended) {
      if (this.session.identity === identity) {
        return r.error('invalid_command', 'a client is already started for this identity; log out first');
      }
      // A switch of login: the previous user logs out first.
      await this.shutDown(this.session);
    }
    this.instances += 1;
    const instance = `twjs-${this.instances}`;
    const twilsockUrl = twilsockUrlOf(req);
    const s = {
      instance,
      identity,
      tokenUrl,
      storageDir: typeof req.storage_dir === 'string' ? req.storage_dir : null,
      twilsockUrl,
      barrierUrl: barrierUrlOf(twilsockUrl, instance),
      client: null,
      ended: false,
      connection: null,
      everConnected: false,
      tokenWorked: false, // the token in use was accepted by the backend
      refreshing: null,
      known: new Map(), // sid -> Conversation, from conversationAdded (until conversationRemoved)
      order: [], // sids in the order the app learnt them
      removed: new Set(),
      handles: new Map(), // handle -> sid
      attributeEvents: new Map(), // target key -> count of attribute updates seen
      attributeWaiters: [],
      push: Promise.resolve(), // the SDK's push registration calls, one after the other
      deviceToken: null,
    };
    this.session = s;

    let credential = storage.valid(s.storageDir, identity);
    if (!credential) {
      try {
        credential = await this.track(fetchToken(tokenUrl, identity, instance));
      } catch (e) {
        s.ended = true;
        observe('error', { kind: e.kind || 'internal', message: e.message });
        return r.fail(e);
      }
      storage.keep(s.storageDir, identity, credential);
    }
    if (s.ended) return r.error('client_shut_down', 'the client was ended while starting');
    s.token = credential.token;
    s.usedStored = !!credential.stored;

    const client = new Client(credential.token, {
      logLevel: process.env.TWJS_SDK_LOG || 'silent',
      twilsock: { uri: withClient(twilsockUrl, instance) },
      // Handed through to the SDK's Notifications client (its `options.notifications.ersUrl`).
      notifications: { ersUrl: ERS_URL },
      apiUri: req.rest_url,
      cdsUri: req.rest_url,
      // Reconnect backoff: the SDK's defaults (1 s .. 2 min, 20% jitter), stated explicitly.
      retryPolicy: { min: 1000, max: 120000, randomness: 0.2 },
    });
    s.client = client;
    observe('client_created', { instance });
    this.listen(s);
    this.registerPushOnStart(s, typeof req.device_token === 'string' && req.device_token !== '' ? req.device_token : null);

    await new Promise((resolve) => {
      s.startWaiter = (outcome) => {
        s.startWaiter = null;
        if (outcome.ok) r.ok({ instance });
        else r.error(outcome.kind, outcome.message);
        resolve();
      };
      if (s.ended) s.startWaiter({ ok: false, kind: 'client_shut_down', message: 'ended while starting' });
    });
  },

  // Forwards what the SDK reports, as long as its client is the current one.
  listen(s) {
    const c = s.client;
    const live = (f) => (...args) => {
      this.activity += 1;
      if (s.ended || this.session !== s) return;
      try {
        f(...args);
      } catch (e) {
        log('internal error:', e && e.stack ? e.stack : e);
      }
    };
    c.on('connectionStateChanged', live((state) => {
      const mapped = CONNECTION_STATES[state];
      if (state === 'connected') {
        s.everConnected = true;
        s.tokenWorked = true;
      }
      if (mapped && mapped !== s.connection) {
        s.connection = mapped;
        observe('connection_state', { state: mapped });
      }
      if (state === 'denied' && s.startWaiter && s.usedStored && !s.retriedStored) {
        // The stored token was refused after all: the generator's turn, once.
        s.retriedStored = true;
        this.refreshToken(s);
      } else if (state === 'denied' && s.startWaiter) {
        observe('error', { kind: 'token_rejected', message: 'the backend refused the token' });
        s.startWaiter({ ok: false, kind: 'token_rejected', message: 'the backend refused the token (denied)' });
      }
    }));
    // The SDK's own client state (`initialized`, `failed`) has no observation in the protocol
    // (the JS SDK reports no sync status): it is logged, so traces show when it fired.
    c.on('stateChanged', live((state) => {
      log(`sdk: client stateChanged ${state}`);
      // Client creation completes when the SDK says the client is initialized (its
      // Configuration and user are loaded; the subscribed list is fetched after): LIST-1 is
      // judged on this moment.
      if (state === 'initialized' && s.startWaiter) s.startWaiter({ ok: true });
    }));
    c.on('connectionError', live((e) => {
      const kind = e && (e.errorCode === 20104 || e.errorCode === 20157) ? 'token_rejected' : 'backend';
      observe('error', { kind, message: `connectionError: ${e && e.message}${e && e.terminal ? ' (terminal)' : ''}` });
    }));
    c.on('initFailed', live(({ error } = {}) => {
      observe('error', { kind: 'internal', message: `initFailed: ${error && error.message}` });
    }));
    c.on('tokenAboutToExpire', live(() => {
      observe('token_about_to_expire');
      this.refreshToken(s);
    }));
    c.on('tokenExpired', live(() => {
      observe('token_expired');
      if (!s.everConnected) return; // refused at start: handled with `denied` above
      // An app replaces a token that worked; one that never did is not asked for again.
      if (s.tokenWorked) this.refreshToken(s);
    }));
    c.on('conversationAdded', live((conv) => {
      const sid = conv.sid;
      s.removed.delete(sid);
      s.known.set(sid, conv);
      if (!s.order.includes(sid)) s.order.push(sid);
      // Every emission is reported (LIST-3 judges the SDK's events, not an adapter's filter).
      observe('conversation_added', { conversation: sid });
    }));
    c.on('conversationRemoved', live((conv) => {
      const sid = conv.sid;
      s.known.delete(sid);
      s.removed.add(sid);
      s.order = s.order.filter((x) => x !== sid);
      observe('conversation_removed', { conversation: sid });
    }));
    c.on('conversationUpdated', live(({ conversation, updateReasons }) => {
      const sid = conversation.sid;
      if (!s.known.has(sid) && !s.removed.has(sid)) s.known.set(sid, conversation);
      observe('conversation_updated', {
        conversation: sid,
        reasons: reasonsOf(updateReasons),
        attributes: conversation.attributes,
      });
      if ((updateReasons || []).includes('attributes')) this.attributesChanged(s, `conversation ${sid}`, conversation.attributes);
    }));
    c.on('userUpdated', live(({ user, updateReasons }) => {
      if (user.identity !== s.identity) return;
      observe('user_updated', { attributes: user.attributes });
      if ((updateReasons || []).includes('attributes')) this.attributesChanged(s, 'user', user.attributes);
    }));
    c.on('messageAdded', live((m) => observe('message_added', { conversation: m.conversation.sid, index: m.index })));
    c.on('messageUpdated', live(({ message }) => {
      observe('message_updated', { conversation: message.conversation.sid, index: message.index });
    }));
    c.on('messageRemoved', live((m) => observe('message_removed', { conversation: m.conversation.sid, index: m.index })));
  },

  // What an app does on tokenAboutToExpire / tokenExpired: a new token from the generator,
  // handed to the client. After the backend closed the socket for an expired token (twilsock
  // `close` 410) the SDK sits in `disconnecting` until its 3 s DISCONNECTING_TIMEOUT, and an
  // updateToken() made then is dropped by its state machine (an invalid transition: the promise
  // never settles); so the token is handed over once the state is `disconnected` or `denied`.
  refreshToken(s) {
    if (s.refreshing) return;
    s.refreshing = (async () => {
      try {
        const credential = await fetchToken(s.tokenUrl, s.identity, s.instance);
        if (s.ended) return;
        storage.keep(s.storageDir, s.identity, credential);
        while (!s.ended && s.client.connectionState === 'disconnecting') {
          await new Promise((resolve) => s.client.once('connectionStateChanged', resolve));
        }
        if (s.ended) return;
        s.tokenWorked = false;
        await this.track(s.client.updateToken(credential.token));
        s.token = credential.token;
        s.tokenWorked = true; // the backend took it (twilsock's `update` or `init` answered 200)
        if (!s.ended && this.session === s) observe('token_updated');
      } catch (e) {
        if (!s.ended) {
          log('token refresh failed:', describeError(e));
          observe('error', { kind: e.kind || sdkErrorKind(e), message: `token refresh failed: ${describeError(e)}` });
        }
      } finally {
        s.refreshing = null;
      }
    })();
  },

  async logout(r) {
    const s = this.current(false);
    storage.clear(s.storageDir);
    await this.shutDown(s);
    r.ok({});
  },

  // Handles first, then the client's shutdown, then its socket closed.
  async shutDown(s) {
    for (const handle of [...s.handles.keys()].sort()) observe('handle_released', { handle });
    s.handles.clear();
    this.failWaiters(s, 'client_shut_down', 'the client was shut down');
    if (s.client) {
      let finished = false;
      this.track(s.client.shutdown())
        .catch((e) => log('shutdown:', describeError(e)))
        .finally(() => (finished = true));
      // shutdown() resolves once its `close` went out (it never does for a client that never
      // initialized): a bounded number of real turns, never a wait on time.
      await this.turnsUntil(() => finished, 2000);
    }
    observe('client_shut_down', { instance: s.instance });
    this.end(s);
    await this.turnsUntil(() => socketsOf(s.instance).length === 0, 2000);
    for (const ws of socketsOf(s.instance)) ws.terminate();
    await this.untilClosed(s);
  },

  // Lets the event loop (and the SDK's timers due now) run until `done()` or `max` rounds.
  async turnsUntil(done, max) {
    for (let i = 0; i < max && !done(); i++) {
      await time.pump();
      await turns(2);
    }
  },

  async kill(r) {
    const s = this.current(false);
    // The process dies: its socket goes without a goodbye, nothing is reported.
    this.end(s);
    // A dead process cannot reach the network again: its instance is kept off it.
    deadInstances.add(s.instance);
    for (const ws of socketsOf(s.instance)) ws.terminate();
    await this.untilClosed(s);
    r.ok({});
  },

  end(s) {
    s.ended = true;
    if (s.startWaiter) s.startWaiter({ ok: false, kind: 'client_shut_down', message: 'the client ended while starting' });
    this.failWaiters(s, 'client_shut_down', 'the client was shut down');
    if (s.client) s.client.removeAllListeners();
    for (const handle of s.handles.keys()) this.handleOwners.set(handle, s.instance);
    s.handles.clear();
  },

  // Until the instance's sockets are closed here, and the backend let go of them too (its
  // barrier with `closed=1`): a `close` seen here can reach the backend only a moment later, and
  // the harness may move time on as soon as the reply is out.
  async untilClosed(s) {
    await new Promise((resolve) => {
      const check = () => {
        if (socketsOf(s.instance).length === 0) return resolve();
        this.closeWaiters.push(check);
      };
      check();
    });
    try {
      const { status, text } = await httpRequest(`${s.barrierUrl}&closed=1`);
      if (status !== 200) log(`the backend still holds a socket of ${s.instance}: ${status} ${text}`);
    } catch (e) {
      // The port is down (an outage): nothing of ours is open there.
    }
  },

  socketClosed() {
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
  },

  // ------------------------------------------------------------ push

  // Runs `step` (an SDK push call) after the previous ones: the SDK's Notifications connector
  // refuses a second commit while one is in progress ("One registration attempt is already in
  // progress"). Tracked, so a settle waits for it; a failure is an `error` observation.
  pushStep(s, what, step) {
    s.push = s.push.then(async () => {
      if (s.ended) return;
      try {
        await this.track(step());
      } catch (e) {
        if (!s.ended) {
          log(`push ${what} failed:`, describeError(e));
          observe('error', { kind: sdkErrorKind(e), message: `push ${what} failed: ${describeError(e)}` });
        }
        throw e;
      }
    });
    s.push.catch(() => {});
    this.track(s.push.catch(() => {}));
    return s.push;
  },

  // What an app does at start with the device token the OS gave it: hands it to the SDK
  // (`setPushRegistrationId`, which waits for the client's initialization and then writes the
  // registration). Relaunched as another identity than the one that registered this device, it
  // first asks the SDK to clear the device's registrations (`removePushRegistrations`, "removes
  // all registrations" of that device token), so the new user does not get the previous one's
  // pushes. The SDK keeps no registration state across clients: every new client registers.
  registerPushOnStart(s, deviceToken) {
    const previous = storage.push(s.storageDir);
    if (previous && previous.identity !== s.identity) {
      this.pushStep(s, 'removal of the previous identity\'s registration', () =>
        s.client.removePushRegistrations(previous.channel || PUSH_CHANNEL, previous.device_token),
      ).then(
        () => {
          const now = storage.push(s.storageDir);
          if (now && now.identity === previous.identity && now.device_token === previous.device_token) {
            storage.update(s.storageDir, (v) => delete v.push);
          }
        },
        () => {},
      );
    }
    if (deviceToken) this.setPushToken(s, deviceToken);
  },

  setPushToken(s, deviceToken) {
    s.deviceToken = deviceToken;
    return this.pushStep(s, 'registration', () => s.client.setPushRegistrationId(PUSH_CHANNEL, deviceToken)).then(
      () => {
        if (!s.ended) storage.keepPush(s.storageDir, { identity: s.identity, device_token: deviceToken, channel: PUSH_CHANNEL });
      },
      () => {},
    );
  },

  // The OS's new device token, handed to the running client: the SDK removes its registration
  // of the old one and registers the new one. Answered once handed over (an app's token
  // callback does not wait for the registrar); a settle waits for the writes.
  deviceTokenChanged(r, deviceToken) {
    if (typeof deviceToken !== 'string' || deviceToken === '') {
      return r.error('invalid_command', 'device_token_changed needs a device_token');
    }
    const s = this.current();
    this.setPushToken(s, deviceToken);
    return r.ok({});
  },

  // ------------------------------------------------------------ conversations

  // The app's merged list: the SDK's paginator to the end, merged with the added/removed
  // events; a conversation appears once.
  async listConversations() {
    const s = this.current();
    const sids = [];
    let page = await this.track(s.client.getSubscribedConversations());
    let stale = 0; // pages in a row that brought no conversation not seen before
    for (let n = 1; ; n++) {
      const fresh = page.items.filter((c) => !sids.includes(c.sid));
      for (const c of page.items) sids.push(c.sid);
      if (!page.hasNextPage) break;
      stale = fresh.length === 0 ? stale + 1 : 0;
      if (stale >= STALE_PAGES) {
        // The SDK's paginator would go on for ever (each page served, none new): say so rather
        // than never answer. Seen when the map's pages are not in key order (see README.md).
        throw new CommandError('backend', `the SDK's paginator of the subscribed conversations went round in circles: ` +
          `${STALE_PAGES} pages in a row (pages ${n - STALE_PAGES + 1}..${n}) brought no new conversation and still announced a next page ` +
          `(last page: ${page.items.map((c) => c.sid).join(' ')})`);
      }
      page = await this.track(page.nextPage());
    }
    if (s.ended) throw new CommandError('client_shut_down', 'the client was shut down');
    const out = [];
    for (const sid of [...sids, ...s.order]) {
      if (!out.includes(sid) && !(s.removed.has(sid) && !s.known.has(sid))) out.push(sid);
    }
    return out;
  },

  async conversation(s, sid) {
    const known = s.known.get(sid);
    if (known) return known;
    try {
      return await this.track(s.client.getConversationBySid(sid));
    } catch (e) {
      if (sdkErrorKind(e) === 'internal' && /not found|forbidden/i.test(e.message || '')) {
        throw new CommandError('not_found', `conversation ${sid}: ${describeError(e)}`);
      }
      throw e;
    }
  },

  async open(sid) {
    const s = this.current();
    await this.conversation(s, sid);
    if (s.ended) throw new CommandError('client_shut_down', 'the client was shut down');
    this.handles += 1;
    const handle = `h-${this.handles}`;
    s.handles.set(handle, sid);
    this.handleOwners.set(handle, s.instance);
    observe('handle_acquired', { handle });
    return handle;
  },

  release(r, handle) {
    const s = this.session;
    if (s && !s.ended && s.handles.has(handle)) {
      s.handles.delete(handle);
      observe('handle_released', { handle });
      return r.ok({});
    }
    const owner = this.handleOwners.get(handle);
    if (!s || s.ended || (owner && owner !== s.instance)) return r.error('client_shut_down', 'the handle belongs to an ended client');
    if (owner) return r.error('released_handle', `handle ${handle} was released`);
    return r.error('not_found', `no handle ${handle}`);
  },

  async fetchMessages(sid, count) {
    const s = this.current();
    const conv = await this.conversation(s, sid);
    const page = await this.track(conv.getMessages(Math.max(1, Number(count) || 1)));
    return page.items.map((m) => m.index);
  },

  async sendMessage(sid, body) {
    const s = this.current();
    const conv = await this.conversation(s, sid);
    return await this.track(conv.sendMessage(String(body)));
  },

  // ------------------------------------------------------------ attributes

  targetKey(target) {
    if (target && target.kind === 'user') return 'user';
    if (target && target.kind === 'conversation' && typeof target.sid === 'string') return `conversation ${target.sid}`;
    throw new CommandError('invalid_command', 'target must be {"kind":"user"} or {"kind":"conversation","sid":...}');
  },

  attributesChanged(s, key, value) {
    s.attributeEvents.set(key, (s.attributeEvents.get(key) || 0) + 1);
    const waiting = s.attributeWaiters;
    s.attributeWaiters = [];
    for (const w of waiting) {
      if (w.key === key && w.acked) w.resolve(value);
      else if (w.key === key) {
        w.seen = value;
        s.attributeWaiters.push(w);
      } else s.attributeWaiters.push(w);
    }
  },

  failWaiters(s, kind, message) {
    const waiting = s.attributeWaiters;
    s.attributeWaiters = [];
    for (const w of waiting) w.reject(new CommandError(kind, message));
  },

  // The SDK resolves updateAttributes on the REST acknowledgement, before the value is applied.
  // A thin adapter answers when the SDK's call resolves, with what the SDK shows then: that is
  // what an app sees (UPD-1, a mobile-profile rule, is reported on it). With
  // TWJS_UPDATE_WAITS_FOR_EVENT=1 the reply waits for the Updated event (conversationUpdated /
  // userUpdated with the reason `attributes`) that follows, and answers the value it carried:
  // what an app has to add on top of the SDK to follow UPD-1.
  async update(target, attributes) {
    const key = this.targetKey(target);
    const s = this.current();
    const object = key === 'user' ? s.client.user : await this.conversation(s, target.sid);
    if (!WAITS_FOR_EVENT) {
      await this.track(object.updateAttributes(attributes));
      return object.attributes;
    }
    if (sameJson(object.attributes, attributes)) {
      // Nothing will change, so the SDK will announce nothing: the write's ack is all there is.
      await this.track(object.updateAttributes(attributes));
      return object.attributes;
    }
    const waiter = { key, acked: false, seen: undefined };
    const applied = new Promise((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    s.attributeWaiters.push(waiter);
    try {
      await this.track(object.updateAttributes(attributes));
    } catch (e) {
      s.attributeWaiters = s.attributeWaiters.filter((w) => w !== waiter);
      throw e;
    }
    waiter.acked = true;
    if (waiter.seen !== undefined) {
      s.attributeWaiters = s.attributeWaiters.filter((w) => w !== waiter);
      return waiter.seen;
    }
    return await applied;
  },

  read(target) {
    const key = this.targetKey(target);
    const s = this.current();
    if (key === 'user') return s.client.user.attributes;
    const conv = s.known.get(target.sid);
    if (!conv) throw new CommandError('not_found', `the client does not hold conversation ${target.sid}`);
    return conv.attributes;
  },

  async count(sid, kind) {
    const s = this.current();
    const conv = await this.conversation(s, sid);
    switch (kind) {
      case 'participants':
        return await this.track(conv.getParticipantsCount());
      case 'messages':
        return await this.track(conv.getMessagesCount());
      case 'unread': {
        const n = await this.track(conv.getUnreadMessagesCount());
        return typeof n === 'number' ? n : null;
      }
      default:
        throw new CommandError('invalid_command', `unknown count kind ${kind}`);
    }
  },

  // ------------------------------------------------------------ settle and inspect

  async barrier() {
    const s = this.session;
    if (!s || s.ended || !s.client) return null;
    try {
      const { status, text } = await httpRequest(`${s.barrierUrl}&sent=${framesSent(s.instance)}`);
      if (status !== 200) {
        // Something is still outstanding at the backend (unread frames, unacknowledged
        // notifications): not quiet.
        this.barrierBusy += 1;
        return `busy ${status} ${this.barrierBusy}`;
      }
      this.barrierBusy = 0;
      const v = JSON.parse(text);
      return `${v.requests}/${v.notifications}`;
    } catch (e) {
      return `unreachable ${e.code || e.message}`;
    }
  },

  // Quiet = two rounds in a row in which the SDK's clock had nothing due, the backend's barrier
  // totals, the SDK's event count and the sockets did not move, and nothing is in flight. A
  // call or a socket handshake still pending after many unchanged rounds waits on virtual time
  // (a queued request, a backoff) or on a backend that does not answer: settled too. The
  // adapter's own requests to the token generator always finish first.
  async settle() {
    let previous = null;
    let unchanged = 0;
    for (let round = 0; round < 1000; round++) {
      await time.pump();
      await turns(3);
      if (time.busyNow()) continue;
      if (await time.early()) continue;
      const totals = await this.barrier();
      await turns(3);
      await time.pump();
      if (time.busyNow() || this.io > 0) {
        previous = null;
        continue;
      }
      // A barrier that stayed busy for its whole bound twice in a row, with nothing else moving,
      // is reported and given up on (the backend holds something the SDK will not answer).
      if (this.barrierBusy >= 2) log(`settle: the backend's barrier stayed busy (${totals})`);
      const waiting = this.inflight.size + this.socketsBusy() + (this.barrierBusy > 0 && this.barrierBusy < 2 ? 1 : 0);
      const signature = `${totals} ${this.activity} ${this.inflight.size} ${this.socketStates()} ${clock.now}`;
      if (signature === previous) {
        unchanged += 1;
        if (waiting === 0 || unchanged >= 20) return;
      } else {
        unchanged = 0;
      }
      previous = signature;
    }
    log('settle: still busy after 1000 rounds; answering anyway');
  },

  socketStates() {
    return [...sockets.keys()].map((ws) => ws.readyState).join('');
  },

  // Sockets opening or closing.
  socketsBusy() {
    return [...sockets.keys()].filter((ws) => ws.readyState !== 1).length;
  },

  inspect() {
    const s = this.session;
    if (!s || s.ended) return { instance: null, connection: null, sync: null, conversations: [], handles: [] };
    return {
      instance: s.instance,
      connection: s.connection,
      sync: null,
      conversations: [...s.known.keys()].sort().map((sid) => [sid, 'all']),
      handles: [...s.handles.keys()].sort(),
    };
  },
};

// ---------------------------------------------------------------- main

process.on('uncaughtException', (e) => log('internal error:', e && e.stack ? e.stack : e));
process.on('unhandledRejection', (e) => log('unhandled rejection:', e && e.stack ? e.stack : e));
process.stdout.on('error', () => process.exit(0));

send({
  type: 'hello',
  protocol: PROTOCOL,
  adapter: 'twilio-conversations-js',
  version: `${require('./package.json').version}+sdk.${SDK_VERSION}`,
  profile: 'js',
  capabilities: {
    virtual_time: true,
    settle: true,
    count_cache_lifetime_ms: COUNT_CACHE_MS,
    features: ['messages', 'push'],
    commands: COMMANDS,
  },
});

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  if (closedInput || line.trim() === '') return;
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
  closedInput = true;
  for (const ws of sockets.keys()) ws.terminate();
  process.exit(0);
});
