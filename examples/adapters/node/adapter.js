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
'use strict';

const readline = require('node:readline');
const WebSocket = require('ws');

const PROTOCOL = 1;
const TOKEN_TTL_S = 4 * 3600;
const PAGE_SIZE = 50;
const MAX_ATTEMPTS = 100;

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

// Background work in flight, and how much of it only waits for virtual time.
const activity = {
  inflight: 0,
  sleeping: 0,
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
    return this.inflight === this.sleeping;
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

function isConnectError(e) {
  const code = e && e.cause && e.cause.code;
  return ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'].includes(code);
}

// REST access for one client instance: retries 503/429 after Retry-After (or a backoff) and
// unreachable answers after a backoff, on virtual time.
class Rest {
  constructor(base, token, instance, gen) {
    this.base = base.replace(/\/+$/, '');
    this.token = token;
    this.instance = instance;
    this.gen = gen;
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
      try {
        resp = await fetch(url, { method, headers, body });
      } catch (e) {
        await activity.sleep(backoff, this.gen);
        backoff = Math.min(backoff * 2, 30000);
        if (isConnectError(e)) continue;
        throw new CommandError('backend', `${method} ${url}: ${e.message}`);
      }
      const revision = revisionOf(resp.headers);
      const retryAfter = Number.parseInt(resp.headers.get('retry-after') || '', 10);
      const text = await resp.text().catch(() => '');
      if (resp.ok) {
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

async function fetchToken(tokenUrl, identity, instance) {
  let resp;
  try {
    resp = await fetch(tokenUrl, {
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
  if (resp.ok && json && typeof json.token === 'string') return json.token;
  throw new CommandError(
    'token_rejected',
    `token generator answered ${resp.status}: ${(json && json.message) || ''}`,
  );
}

// Opens the event socket; resolves once it is open. Frames and the close go to the engine.
function connectEvents(eventsUrl, token, instance, gen) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(eventsUrl, {
      headers: { 'X-Convo-Client': instance, 'X-Twilio-Token': token },
      perMessageDeflate: false,
    });
    ws.on('open', () => {
      settled = true;
      resolve(ws);
    });
    ws.on('unexpected-response', (_req, res) => {
      settled = true;
      const kind = res.statusCode === 401 ? 'token_rejected' : 'backend';
      reject(new CommandError(kind, `event channel refused: HTTP ${res.statusCode}`));
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
      engine.socketFrame(gen, frame);
    });
    ws.on('close', () => {
      if (settled) engine.socketClosed(gen);
    });
  });
}

const segment = (s) => encodeURIComponent(s);

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
  pendingStart: null,
  earlyFrames: [],
  settling: [], // { responder, nonce, epoch }
  epoch: 0,
  nonce: 0,

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
          this.shutDown();
          return r.done();
        case 'kill':
          this.dropSession();
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
      connection: s.connected ? 'connected' : 'disconnected',
      sync: s.sync,
      conversations: [...s.conversations.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([sid, c]) => [sid, c.sync]),
      handles: [...s.handles.keys()].sort(),
    };
  },

  // ------------------------------------------------------------ lifecycle

  start(r, { identity, token_url, rest_url, events_url }) {
    if (this.session || this.pendingStart) {
      return r.error('invalid_command', 'a client is already started; log out first');
    }
    if (![identity, token_url, rest_url, events_url].every((v) => typeof v === 'string')) {
      return r.error('invalid_command', 'start needs identity, token_url, rest_url, events_url');
    }
    this.generation += 1;
    this.instances += 1;
    const instance = `node-${this.instances}`;
    this.pendingStart = { instance, identity, restUrl: rest_url };
    this.spawn(
      async (gen) => {
        const token = await fetchToken(token_url, identity, instance);
        const ws = await connectEvents(events_url, token, instance, gen);
        return { token, ws };
      },
      (result) => this.started(r, result),
    );
  },

  started(r, { value, error }) {
    const pending = this.pendingStart;
    this.pendingStart = null;
    if (!pending) {
      if (value) value.ws.close();
      return r.error('internal', 'the start was abandoned');
    }
    if (error) return r.fail(error);
    const { instance, identity, restUrl } = pending;
    this.session = {
      instance,
      identity,
      rest: new Rest(restUrl, value.token, instance, this.generation),
      ws: value.ws,
      connected: true,
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
    observe('client_created', { instance });
    observe('connection_state', { state: 'connected' });
    observe('client_sync', { status: 'started' });
    for (const frame of this.earlyFrames.splice(0)) this.frame(frame);
    r.ok({ instance });
    this.beginSync();
  },

  // The process died: no shutdown, nothing answered, storage (none here) survives.
  dropSession() {
    if (this.session && this.session.ws) this.session.ws.terminate();
    // Work of the old generation never reports back: forget it.
    activity.reset();
    this.generation += 1;
    this.pendingStart = null;
    this.session = null;
    this.earlyFrames = [];
  },

  shutDown() {
    const s = this.session;
    if (!s) return;
    for (const [responder] of s.waitingOps) {
      responder.error('client_shut_down', 'the client was shut down');
    }
    for (const a of s.awaited) a.responder.error('client_shut_down', 'the client was shut down');
    observe('client_shut_down', { instance: s.instance });
    this.dropSession();
  },

  // ------------------------------------------------------------ socket input

  socketFrame(gen, frame) {
    if (gen !== this.generation) return;
    if (frame.type === 'pong') {
      this.ponged(frame.nonce);
    } else if (!this.session && this.pendingStart) {
      // The socket is up before the client is: keep what arrives until it is.
      this.earlyFrames.push(frame);
    } else {
      this.epoch += 1;
      try {
        this.frame(frame);
      } catch (e) {
        log('internal error:', e && e.stack ? e.stack : e);
      }
    }
    schedule();
  },

  socketClosed(gen) {
    if (gen !== this.generation) return;
    this.epoch += 1;
    const s = this.session;
    if (s && s.connected) {
      s.connected = false;
      observe('connection_state', { state: 'disconnected' });
    }
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
    const handle = `h-${s.nextHandle}`;
    s.handles.set(handle, sid);
    observe('handle_acquired', { handle });
    r.ok({ handle });
  },

  release(r, handle) {
    const s = this.session;
    if (s && s.handles.delete(handle)) {
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

  // ------------------------------------------------------------ settling

  ping() {
    const s = this.session;
    if (!s || !s.connected || s.ws.readyState !== WebSocket.OPEN) return null;
    this.nonce += 1;
    s.ws.send(JSON.stringify({ type: 'ping', nonce: this.nonce }));
    return this.nonce;
  },

  beginSettle(r) {
    this.settling.push({ responder: r, nonce: this.ping(), epoch: this.epoch });
  },

  ponged(nonce) {
    for (const w of this.settling) if (w.nonce === nonce) w.nonce = null;
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
  capabilities: { virtual_time: true, settle: true, features: ['messages'] },
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
  engine.dropSession();
  process.exit(0);
});
