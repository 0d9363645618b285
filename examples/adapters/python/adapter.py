#!/usr/bin/env python3
"""A small chat client of the convo-tck mock backend, driven over the stdio adapter protocol.

It speaks JSON lines (docs/protocol.md): requests arrive on stdin, the `hello`, replies and
observations leave on stdout, one per line; stderr is the log. It is a client in its own right:
REST over the standard library's HTTP client (run in a thread pool), the event channel over
`websockets`, and all client state owned by one asyncio loop, so it needs no locks.

It claims the `mobile` profile and behaves as those SDKs document:
- operations on the client wait until the client has synchronized, operations on a conversation
  until that conversation has (or are refused when they never can);
- an attribute update completes only once the Updated event at (or past) the revision its
  request produced has arrived, and the value shown is always the backend's;
- snapshots are applied only when newer than what the client shows;
- the subscribed list is fetched page by page after the event channel is open, and merged with
  live events by sid; a conversation an event removed stays removed until it is added again;
- messages are fetched only when the app asks, and changes are reported only for fetched ones;
- its timers (Retry-After and backoff) run on a virtual clock moved by `advance_time`;
- `settle` pings the event channel, waits for the pong and for requests in flight, and repeats
  until a round passes with nothing new.
"""

import asyncio
import collections
import concurrent.futures
import heapq
import http.client
import itertools
import json
import os
import sys
import threading
import urllib.parse

import websockets
from websockets.asyncio.client import connect as ws_connect

PROTOCOL = 1
ADAPTER = "python-example"
VERSION = "0.1.0"
TOKEN_TTL_SECS = 4 * 3600  # hours, at most a day
PAGE_SIZE = 50
MAX_ATTEMPTS = 100
STDIN_LIMIT = 2 * 1024 * 1024


def log(text):
    """A log line on stderr (the harness journals it). Never log a token."""
    try:
        sys.stderr.write(f"{ADAPTER}: {text}\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


def emit(message):
    """Writes one protocol message to stdout as one line, flushed."""
    try:
        sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        os._exit(0)


def observe(event, **fields):
    emit({"type": "observation", "event": event, **fields})


def parse_attributes(text):
    """The JSON value an `attributes` string encodes (null when it is not JSON)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def segment(text):
    """`text` percent-encoded as one URL path segment."""
    return urllib.parse.quote(text, safe="")


class CommandError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


class Responder:
    """The one answer a request gets."""

    def __init__(self, request_id):
        self.id = request_id
        self.answered = False

    def ok(self, body=None):
        if not self.answered:
            self.answered = True
            emit({"type": "reply", "id": self.id, "ok": {} if body is None else body})

    def error(self, kind, message):
        if not self.answered:
            self.answered = True
            emit({"type": "reply", "id": self.id, "error": {"kind": kind, "message": message}})

    def fail(self, err):
        self.error(err.kind, err.message)


# ---------------------------------------------------------------------------------------------
# Time and activity


class VirtualClock:
    """Milliseconds that move only on `advance_time`; sleepers wake when an advance reaches them."""

    def __init__(self):
        self.now = 0
        self._sleepers = []
        self._seq = itertools.count()

    def advance(self, ms):
        self.now += ms
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def sleep_until(self, deadline):
        if deadline <= self.now:
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        await fut


class Activity:
    """Background work in flight, and which of it only waits for virtual time."""

    def __init__(self, on_sleep):
        self.inflight = 0
        self.sleeping = []
        self._on_sleep = on_sleep

    def begin(self):
        self.inflight += 1

    def end(self):
        self.inflight = max(0, self.inflight - 1)

    def reset(self):
        self.inflight = 0
        self.sleeping = []

    def is_quiet(self, now):
        return self.inflight == sum(1 for d in self.sleeping if d > now)

    async def sleep(self, clock, ms):
        """Sleeps on the virtual clock, counted as quiet."""
        deadline = clock.now + ms
        self.sleeping.append(deadline)
        self._on_sleep()
        try:
            await clock.sleep_until(deadline)
        finally:
            if deadline in self.sleeping:
                self.sleeping.remove(deadline)


# ---------------------------------------------------------------------------------------------
# HTTP: the standard library's client in a thread pool, one keep-alive connection per thread

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="http")
_LOCAL = threading.local()


def _http_blocking(method, url, headers, body):
    parts = urllib.parse.urlsplit(url)
    key = (parts.hostname, parts.port or 80)
    conns = getattr(_LOCAL, "conns", None)
    if conns is None:
        conns = _LOCAL.conns = {}
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    while True:
        conn = conns.get(key)
        reused = conn is not None
        if conn is None:
            conn = conns[key] = http.client.HTTPConnection(key[0], key[1], timeout=60)
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            conn.close()
            conns.pop(key, None)
            if reused:
                continue  # the server closed an idle connection: try once on a fresh one
            raise
        except Exception:
            conn.close()
            conns.pop(key, None)
            raise
        response_headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            conn.close()
            conns.pop(key, None)
        return resp.status, response_headers, data


async def http_request(method, url, headers, form=None):
    body = None
    headers = dict(headers)
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, _http_blocking, method, url, headers, body)


def _error_message(data):
    try:
        return str(json.loads(data).get("message", ""))
    except (ValueError, AttributeError):
        return ""


class Rest:
    """REST access for one client instance, retrying gated answers on virtual time."""

    def __init__(self, base, token, instance, clock, activity):
        self.base = base.rstrip("/")
        self.token = token
        self.instance = instance
        self.clock = clock
        self.activity = activity

    async def call(self, method, path, form=None):
        """Returns (decoded body, revision from ETag or None)."""
        url = path if path.startswith("http") else self.base + path
        backoff = 500
        for _ in range(MAX_ATTEMPTS):
            headers = {"X-Convo-Client": self.instance, "X-Twilio-Token": self.token}
            try:
                status, resp_headers, data = await http_request(method, url, headers, form)
            except ConnectionRefusedError:
                await self.activity.sleep(self.clock, backoff)
                backoff = min(backoff * 2, 30_000)
                continue
            except (OSError, http.client.HTTPException) as e:
                await self.activity.sleep(self.clock, backoff)
                raise CommandError("backend", f"{method} {url}: {e}") from None
            etag = resp_headers.get("etag", "").strip('"')
            revision = int(etag) if etag.isdigit() else None
            if 200 <= status < 300:
                try:
                    return json.loads(data), revision
                except ValueError as e:
                    raise CommandError("backend", f"{method} {url}: malformed answer: {e}") from None
            if status in (503, 429):
                retry_after = resp_headers.get("retry-after", "")
                wait = int(retry_after) * 1000 if retry_after.isdigit() else backoff
                await self.activity.sleep(self.clock, wait)
                backoff = min(backoff * 2, 30_000)
                continue
            kind = {401: "token_rejected", 404: "not_found"}.get(status, "backend")
            raise CommandError(kind, f"{method} {url}: {status}: {_error_message(data)}")
        raise CommandError("backend", f"{method} {url}: gave up after {MAX_ATTEMPTS} attempts")


async def fetch_token(token_url, identity, instance):
    """Asks the app's token generator for a token."""
    form = [("identity", identity), ("ttl", str(TOKEN_TTL_SECS))]
    try:
        status, _, data = await http_request(
            "POST", token_url, {"X-Convo-Client": instance}, form
        )
    except (OSError, http.client.HTTPException) as e:
        raise CommandError("backend", f"token generator unreachable: {e}") from None
    try:
        issued = json.loads(data)
    except ValueError:
        issued = None
    if 200 <= status < 300 and isinstance(issued, dict) and isinstance(issued.get("token"), str):
        return issued["token"]
    raise CommandError(
        "token_rejected", f"token generator answered {status}: {_error_message(data)}"
    )


async def connect_events(events_url, token, instance):
    """Opens the event channel; the token travels in a header, never in the URL."""
    try:
        return await ws_connect(
            events_url,
            additional_headers={"X-Convo-Client": instance, "X-Twilio-Token": token},
            proxy=None,
            compression=None,
            ping_interval=None,
            open_timeout=60,
            max_queue=None,
        )
    except websockets.exceptions.InvalidStatus as e:
        kind = "token_rejected" if e.response.status_code == 401 else "backend"
        raise CommandError(kind, f"event channel refused: {e.response.status_code}") from None
    except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as e:
        raise CommandError("backend", f"event channel refused: {e}") from None


# ---------------------------------------------------------------------------------------------
# Client state


class Obj:
    """An object's attributes as the client shows them, and the revision they came with."""

    def __init__(self):
        self.attributes = {}
        self.revision = 0


class Conversation:
    def __init__(self):
        self.sync = "identifier"
        self.obj = Obj()


class Session:
    """Everything one client instance holds."""

    def __init__(self, instance, identity, rest, ws):
        self.instance = instance
        self.identity = identity
        self.rest = rest
        self.ws = ws
        self.reader = None
        self.connected = True
        self.sync = "started"
        self.list_done = False
        self.user = Obj()
        self.conversations = {}  # sid -> Conversation
        self.waiting_ops = []  # (responder, op)
        self.awaited = []  # updates acknowledged, waiting for their Updated event
        self.lane = collections.deque()  # synchronization fetches, one at a time
        self.lane_busy = False
        self.list = []  # the app's list, in the order the client learned it
        self.tombstones = set()  # removed by an event: a page cannot bring them back
        self.fetched = {}  # sid -> set of message indices the app fetched
        self.handles = {}  # handle -> sid
        self.next_handle = 0


def op_conversation(op):
    if op["kind"] == "update":
        target = op["target"]
        return target.get("sid") if target.get("kind") == "conversation" else None
    return op["conversation"]


def same_target(a, b):
    return a.get("kind") == b.get("kind") and a.get("sid") == b.get("sid")


class Engine:
    def __init__(self):
        self.clock = VirtualClock()
        self.activity = Activity(self._nudged)
        self.generation = 0
        self.instances = 0
        self.session = None
        self.pending_start = None
        self.tasks = set()
        self.sends = set()  # pings on their way out
        self.settling = []  # [responder, nonce or None, epoch]
        self.epoch = 0
        self.nonce = 0
        self._nudge_scheduled = False

    # -- plumbing ------------------------------------------------------------------------------

    def _nudged(self):
        """A task went to sleep on the clock: quiescence may have changed."""
        if not self._nudge_scheduled:
            self._nudge_scheduled = True

            def run():
                self._nudge_scheduled = False
                self.step()

            asyncio.get_running_loop().call_soon(run)

    def step(self):
        """After every input: start the next sync fetch, answer settles that may be answered."""
        self.pump()
        self.poll_settle()

    def spawn(self, work, handler, responder=None):
        """Runs `work` in the background, counted as activity; `handler(result, error)` gets
        its outcome on the loop, unless the session it belonged to is gone."""
        self.activity.begin()
        generation = self.generation

        async def run():
            try:
                try:
                    result, error = await work, None
                except CommandError as e:
                    result, error = None, e
                except Exception as e:  # noqa: BLE001 - any failure is the command's
                    result, error = None, CommandError("internal", f"{type(e).__name__}: {e}")
            except asyncio.CancelledError:
                if responder is not None:
                    responder.error("internal", "the client was dropped before answering")
                raise
            self.epoch += 1
            if generation != self.generation:
                if responder is not None:
                    responder.error("internal", "the client was dropped before answering")
                return
            self.activity.end()
            handler(result, error)
            self.step()

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- commands ------------------------------------------------------------------------------

    def command(self, request):
        rid = request.get("id")
        if not isinstance(rid, int):
            log(f"a request without an id: {str(request)[:200]}")
            return
        r = Responder(rid)
        name = request.get("command")
        if name != "settle":
            self.epoch += 1
        try:
            self.dispatch(r, name, request)
        except (KeyError, TypeError, ValueError) as e:
            r.error("invalid_command", f"`{name}`: {type(e).__name__}: {e}")
        self.step()

    def dispatch(self, r, name, q):
        s = self.session
        if name == "start":
            self.start(r, q["identity"], q["token_url"], q["rest_url"], q["events_url"])
        elif name == "logout":
            self.shut_down()
            r.ok()
        elif name == "kill":
            self.drop_session()
            r.ok()
        elif name == "update_attributes":
            target = q["target"]
            if target.get("kind") not in ("user", "conversation"):
                raise ValueError("target must be a user or a conversation")
            self.submit(r, {"kind": "update", "target": target, "attributes": q["attributes"]})
        elif name == "send_message":
            self.submit(r, {"kind": "send", "conversation": q["conversation"], "body": q["body"]})
        elif name == "read_attributes":
            self.read(r, q["target"])
        elif name == "list_conversations":
            if s is None:
                return r.error("client_shut_down", "no client")
            r.ok({"conversations": list(s.list)})
        elif name == "open_conversation":
            self.open(r, q["conversation"])
        elif name == "release":
            self.release(r, q["handle"])
        elif name == "fetch_messages":
            sid, count = q["conversation"], int(q["count"])
            if s is None:
                return r.error("client_shut_down", "no client")
            if sid not in s.conversations:
                return r.error("not_found", f"conversation {sid} is unknown")
            self.fetch_messages(r, sid, count)
        elif name == "advance_time":
            self.clock.advance(int(q["ms"]))
            r.ok()
        elif name == "settle":
            self.begin_settle(r)
        elif name == "inspect":
            r.ok(self.inspect())
        else:
            r.error("unsupported", f"this adapter does not implement `{name}`")

    def inspect(self):
        s = self.session
        if s is None:
            return {"instance": None, "connection": None, "sync": None,
                    "conversations": [], "handles": []}
        return {
            "instance": s.instance,
            "connection": "connected" if s.connected else "disconnected",
            "sync": s.sync,
            "conversations": [[sid, s.conversations[sid].sync] for sid in sorted(s.conversations)],
            "handles": sorted(s.handles),
        }

    # -- session lifecycle ---------------------------------------------------------------------

    def start(self, r, identity, token_url, rest_url, events_url):
        if self.session is not None or self.pending_start is not None:
            return r.error("invalid_command", "a client is already started; log out first")
        self.generation += 1
        self.instances += 1
        instance = f"py-{self.instances}"
        self.pending_start = (instance, identity, rest_url)

        async def work():
            token = await fetch_token(token_url, identity, instance)
            ws = await connect_events(events_url, token, instance)
            return token, ws

        self.spawn(work(), lambda res, err: self.started(r, res, err), responder=r)

    def started(self, r, result, error):
        pending, self.pending_start = self.pending_start, None
        if pending is None:
            if result is not None:
                asyncio.ensure_future(result[1].close())
            return r.error("internal", "the start was abandoned")
        if error is not None:
            return r.fail(error)
        instance, identity, rest_url = pending
        token, ws = result
        rest = Rest(rest_url, token, instance, self.clock, self.activity)
        s = self.session = Session(instance, identity, rest, ws)
        observe("client_created", instance=instance)
        observe("connection_state", state="connected")
        observe("client_sync", status="started")
        # The listener is attached before the list is requested.
        s.reader = asyncio.get_running_loop().create_task(self.read_events(s))
        # Client creation completes before the list is fetched.
        r.ok({"instance": instance})
        self.begin_sync()

    def drop_session(self):
        """Ends the session without a shutdown (the process died)."""
        s = self.session
        for task in list(self.tasks):
            task.cancel()
        self.activity.reset()
        self.generation += 1
        self.pending_start = None
        self.session = None
        if s is not None:
            if s.reader is not None:
                s.reader.cancel()
            asyncio.ensure_future(s.ws.close())

    def shut_down(self):
        """Logout: fail what is pending, release everything, shut the client down."""
        s = self.session
        if s is None:
            return
        for responder, _ in s.waiting_ops:
            responder.error("client_shut_down", "the client was shut down")
        for awaited in s.awaited:
            awaited["responder"].error("client_shut_down", "the client was shut down")
        s.waiting_ops, s.awaited = [], []
        observe("client_shut_down", instance=s.instance)
        self.drop_session()

    # -- the event channel ---------------------------------------------------------------------

    async def read_events(self, s):
        try:
            async for text in s.ws:
                if self.session is not s:
                    return
                if not isinstance(text, str):
                    continue
                try:
                    frame = json.loads(text)
                except ValueError:
                    log("an event frame that is not JSON was ignored")
                    continue
                if not isinstance(frame, dict):
                    continue
                if frame.get("type") == "pong":
                    self.ponged(frame.get("nonce"))
                else:
                    self.epoch += 1
                    self.frame(frame)
                self.step()
        except websockets.exceptions.ConnectionClosed:
            pass
        if self.session is s:
            self.epoch += 1
            s.connected = False
            observe("connection_state", state="disconnected")
            self.step()

    def frame(self, f):
        kind = f.get("type")
        sid = f.get("conversation_sid")
        revision = f.get("revision") or 0
        reasons = f.get("reasons") or []
        if isinstance(f.get("user"), dict):
            attributes = parse_attributes(f["user"].get("attributes"))
        elif isinstance(f.get("conversation"), dict):
            attributes = parse_attributes(f["conversation"].get("attributes"))
        else:
            attributes = None
        s = self.session
        if s is None:
            return
        if kind == "conversation_added" and sid:
            self.learn_conversation(sid, "added")
        elif kind == "conversation_removed" and sid:
            self.forget_conversation(sid)
        elif kind == "conversation_updated" and sid:
            if sid not in s.conversations:
                # An update can overtake the add: it still means the user has the conversation.
                self.learn_conversation(sid, "event")
            target = {"kind": "conversation", "sid": sid}
            self.apply_snapshot(target, attributes, revision, reasons)
            self.complete_updates(target)
        elif kind == "user_updated":
            target = {"kind": "user"}
            self.apply_snapshot(target, attributes, revision, reasons)
            self.complete_updates(target)
        elif kind == "message_added" and sid:
            index = f.get("index")
            if index is None:
                return
            if sid not in s.conversations:
                # A message in a conversation not seen yet still means the user has it.
                self.learn_conversation(sid, "event")
            observe("message_added", conversation=sid, index=index)
        elif kind in ("message_updated", "message_removed") and sid:
            index = f.get("index")
            if index is None:
                return
            self.message_changed(kind, sid, index)

    # -- settling ------------------------------------------------------------------------------

    def ping(self):
        s = self.session
        if s is None or not s.connected:
            return None
        self.nonce += 1
        text = json.dumps({"type": "ping", "nonce": self.nonce})

        async def send():
            try:
                await s.ws.send(text)
            except websockets.exceptions.ConnectionClosed:
                pass

        task = asyncio.get_running_loop().create_task(send())
        self.sends.add(task)
        task.add_done_callback(self.sends.discard)
        return self.nonce

    def begin_settle(self, r):
        self.settling.append([r, self.ping(), self.epoch])

    def ponged(self, nonce):
        for w in self.settling:
            if w[1] == nonce:
                w[1] = None

    def poll_settle(self):
        """Answers every settle whose last ping came back with nothing new happening and
        nothing but virtual-time sleeps in flight; pings again for the others."""
        if not self.settling or not self.activity.is_quiet(self.clock.now):
            return
        waiting, self.settling = self.settling, []
        for w in waiting:
            if w[1] is not None:
                self.settling.append(w)
            elif w[2] == self.epoch:
                w[0].ok()
            else:
                w[2] = self.epoch
                w[1] = self.ping()
                if w[1] is None:
                    w[0].ok()
                else:
                    self.settling.append(w)

    # -- synchronization -----------------------------------------------------------------------

    def begin_sync(self):
        s = self.session
        self.enqueue(("page", f"/v1/Users/{segment(s.identity)}/Conversations?PageSize={PAGE_SIZE}"))
        self.enqueue(("user",))

    def enqueue(self, job, urgent=False):
        s = self.session
        if s is None:
            return
        if urgent:
            s.lane.appendleft(job)
        else:
            s.lane.append(job)

    def pump(self):
        """Starts the next synchronization fetch unless one is running."""
        s = self.session
        if s is None or s.lane_busy or not s.lane:
            return
        job = s.lane.popleft()
        s.lane_busy = True
        rest = s.rest

        def done(handler):
            def handle(result, error):
                if self.session is not None:
                    self.session.lane_busy = False
                handler(result, error)
            return handle

        kind = job[0]
        if kind == "page":
            self.spawn(rest.call("GET", job[1]), done(self.list_page))
        elif kind == "user":
            self.spawn(rest.call("GET", f"/v1/Users/{segment(s.identity)}"), done(self.user_fetched))
        elif kind == "metadata":
            sid = job[1]
            self.spawn(rest.call("GET", f"/v1/Conversations/{sid}"),
                       done(lambda res, err: self.metadata(sid, res, err)))
        elif kind == "participants":
            sid = job[1]
            self.spawn(rest.call("GET", f"/v1/Conversations/{sid}/Participants"),
                       done(lambda res, err: self.participants(sid, res, err)))

    def list_page(self, result, error):
        s = self.session
        if s is None:
            return
        if error is not None:
            s.sync = "failed"
            observe("client_sync", status="failed")
            observe("error", kind=error.kind, message=error.message)
            return
        body, _ = result
        for item in body.get("conversations") or []:
            sid = item.get("conversation_sid")
            if sid:
                self.learn_conversation(sid, "page")
        next_url = (body.get("meta") or {}).get("next_page_url")
        if next_url:
            self.enqueue(("page", next_url), urgent=True)
        else:
            s.list_done = True
            self.advance_client_sync()
            self.flush_ops()

    def metadata(self, sid, result, error):
        if error is not None:
            return self.conversation_failed(sid, error)
        body, revision = result
        target = {"kind": "conversation", "sid": sid}
        self.apply_snapshot(target, parse_attributes(body.get("attributes")), revision or 1, [])
        self.set_conversation_sync(sid, "metadata")
        self.enqueue(("participants", sid), urgent=True)

    def participants(self, sid, result, error):
        if error is not None:
            return self.conversation_failed(sid, error)
        self.set_conversation_sync(sid, "all")
        self.advance_client_sync()
        self.flush_ops()

    def user_fetched(self, result, error):
        if error is not None:
            return observe("error", kind=error.kind, message=error.message)
        body, revision = result
        self.apply_snapshot({"kind": "user"}, parse_attributes(body.get("attributes")),
                            revision or 1, [])

    def conversation_failed(self, sid, error):
        self.set_conversation_sync(sid, "failed")
        observe("error", kind=error.kind, message=error.message)

    def set_conversation_sync(self, sid, status):
        s = self.session
        c = s.conversations.get(sid) if s else None
        if c is None or c.sync == status:
            return
        c.sync = status
        observe("conversation_sync", conversation=sid, status=status)

    def advance_client_sync(self):
        """Moves the client's sync status forward as far as the facts allow, never back."""
        s = self.session
        if s is None or not s.list_done or s.sync in ("completed", "failed"):
            return
        if s.sync == "started":
            s.sync = "conversations_completed"
            observe("client_sync", status=s.sync)
        if all(c.sync in ("all", "failed") for c in s.conversations.values()):
            s.sync = "completed"
            observe("client_sync", status=s.sync)

    # -- the list --------------------------------------------------------------------------------

    def learn_conversation(self, sid, source):
        """A sid became known: list it once and synchronize it. Pages and other events cannot
        bring back what an event removed; an explicit add can."""
        s = self.session
        if s is None:
            return
        if sid in s.tombstones:
            if source != "added":
                return
            s.tombstones.discard(sid)
        if sid in s.conversations:
            return
        s.list.append(sid)
        s.conversations[sid] = Conversation()
        observe("conversation_added", conversation=sid)
        observe("conversation_sync", conversation=sid, status="identifier")
        self.enqueue(("metadata", sid))

    def forget_conversation(self, sid):
        s = self.session
        if s is None:
            return
        s.tombstones.add(sid)
        known = s.conversations.pop(sid, None) is not None
        s.list = [x for x in s.list if x != sid]
        s.fetched.pop(sid, None)
        self.drop_ops_on(sid)
        if known:
            observe("conversation_removed", conversation=sid)

    # -- objects and updates ---------------------------------------------------------------------

    def object(self, target):
        s = self.session
        if s is None:
            return None
        if target.get("kind") == "user":
            return s.user
        c = s.conversations.get(target.get("sid"))
        return c.obj if c else None

    def read(self, r, target):
        o = self.object(target)
        if o is not None:
            return r.ok({"attributes": o.attributes})
        if self.session is None:
            return r.error("client_shut_down", "no client")
        r.error("not_found", "the target is unknown to the client")

    def apply_snapshot(self, target, attributes, revision, reasons):
        """Applies a snapshot only when it is newer than what the client shows."""
        o = self.object(target)
        if o is None or revision <= o.revision:
            return False
        o.attributes = attributes
        o.revision = revision
        if reasons:
            if target.get("kind") == "user":
                observe("user_updated", attributes=attributes)
            else:
                observe("conversation_updated", conversation=target["sid"],
                        reasons=list(reasons), attributes=attributes)
        return True

    def acked(self, r, target, result, error):
        if error is not None:
            return r.fail(error)
        body, revision = result
        if not revision:
            return r.ok({"attributes": parse_attributes(body.get("attributes"))})
        s = self.session
        if s is None:
            return r.error("client_shut_down", "no client")
        s.awaited.append({"responder": r, "target": target, "revision": revision})
        self.complete_updates(target)

    def complete_updates(self, target):
        """Completes every update of `target` whose revision the client has now seen, with the
        value the backend announced."""
        o = self.object(target)
        s = self.session
        if o is None or s is None:
            return
        done = [a for a in s.awaited if same_target(a["target"], target) and a["revision"] <= o.revision]
        if not done:
            return
        s.awaited = [a for a in s.awaited if a not in done]
        for a in done:
            a["responder"].ok({"attributes": o.attributes})

    # -- operations that wait for synchronization ------------------------------------------------

    def may_run(self, op):
        """True to run now, False to wait; raises CommandError when it never can."""
        s = self.session
        if s is None:
            raise CommandError("client_shut_down", "no client is started")
        sid = op_conversation(op)
        if sid is None:
            if s.sync == "failed":
                raise CommandError("not_synchronized", "the client failed to synchronize")
            return s.sync == "completed"
        c = s.conversations.get(sid)
        if c is not None:
            if c.sync == "failed":
                raise CommandError("not_synchronized", f"conversation {sid} failed to synchronize")
            return c.sync == "all"
        if s.sync == "completed":
            raise CommandError("not_found", f"conversation {sid} is not in the user's list")
        if s.sync == "failed":
            raise CommandError("not_synchronized", "the client failed to synchronize")
        return False

    def submit(self, r, op):
        try:
            ready = self.may_run(op)
        except CommandError as e:
            return r.fail(e)
        if ready:
            self.execute(r, op)
        else:
            self.session.waiting_ops.append((r, op))

    def flush_ops(self):
        s = self.session
        if s is None:
            return
        waiting, s.waiting_ops = s.waiting_ops, []
        for r, op in waiting:
            self.submit(r, op)

    def drop_ops_on(self, sid):
        s = self.session
        if s is None:
            return
        dead = [(r, op) for r, op in s.waiting_ops if op_conversation(op) == sid]
        s.waiting_ops = [(r, op) for r, op in s.waiting_ops if op_conversation(op) != sid]
        for r, _ in dead:
            r.error("not_found", f"conversation {sid} was removed")

    def execute(self, r, op):
        s = self.session
        rest = s.rest
        if op["kind"] == "update":
            target = op["target"]
            if target.get("kind") == "user":
                path = f"/v1/Users/{segment(s.identity)}"
            else:
                path = f"/v1/Conversations/{target['sid']}"
            form = [("Attributes", json.dumps(op["attributes"], separators=(",", ":")))]
            self.spawn(rest.call("POST", path, form),
                       lambda res, err: self.acked(r, target, res, err), responder=r)
        else:
            path = f"/v1/Conversations/{op['conversation']}/Messages"

            def sent(res, err):
                if err is not None:
                    return r.fail(err)
                r.ok({"index": res[0]["index"]})

            self.spawn(rest.call("POST", path, [("Body", op["body"])]), sent, responder=r)

    # -- handles and messages --------------------------------------------------------------------

    def open(self, r, sid):
        s = self.session
        if s is None:
            return r.error("client_shut_down", "no client")
        if sid not in s.conversations:
            return r.error("not_found", f"conversation {sid} is unknown")
        s.next_handle += 1
        handle = f"h-{s.next_handle}"
        s.handles[handle] = sid
        observe("handle_acquired", handle=handle)
        r.ok({"handle": handle})

    def release(self, r, handle):
        s = self.session
        if s is not None and handle in s.handles:
            del s.handles[handle]
            observe("handle_released", handle=handle)
            return r.ok()
        r.error("released_handle", f"handle {handle} is not live")

    def fetch_messages(self, r, sid, count):
        """Fetches the newest `count` messages: only ever because the app asked."""
        s = self.session
        path = f"/v1/Conversations/{sid}/Messages?Order=desc&PageSize={min(max(count, 1), 100)}"

        def fetched(res, err):
            if err is not None:
                return r.fail(err)
            indices = [m["index"] for m in res[0].get("messages") or []]
            if self.session is not None:
                self.session.fetched.setdefault(sid, set()).update(indices)
            r.ok({"messages": indices})

        self.spawn(s.rest.call("GET", path), fetched, responder=r)

    def message_changed(self, kind, sid, index):
        """Another participant edited or removed a message: reported if the app fetched it."""
        s = self.session
        fetched = s.fetched.get(sid, set())
        was_fetched = index in fetched
        if kind == "message_removed":
            fetched.discard(index)
        if was_fetched:
            observe(kind, conversation=sid, index=index)


# ---------------------------------------------------------------------------------------------


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STDIN_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit({
        "type": "hello",
        "protocol": PROTOCOL,
        "adapter": ADAPTER,
        "version": VERSION,
        "profile": "mobile",
        "capabilities": {"virtual_time": True, "settle": True, "features": ["messages"]},
    })
    engine = Engine()
    while True:
        try:
            line = await reader.readline()
        except ValueError:
            log("a request line over the size limit was dropped")
            continue
        if not line:
            break  # stdin closed: the harness is done with us
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
        except ValueError:
            log("a request line that is not JSON was ignored")
            continue
        if isinstance(request, dict):
            engine.command(request)
    engine.drop_session()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    # Threads blocked in HTTP calls must not hold the exit.
    sys.stdout.flush()
    os._exit(0)
