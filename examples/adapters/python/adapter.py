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
  until a round passes with nothing new;
- one client instance lives through outages and background spells: the event socket is probed
  with a heartbeat every 30 s of virtual time and given up when a probe goes unechoed; a lost
  socket is replaced by the same instance after a seeded, exponential backoff, resuming after
  the last event received (or the socket's welcome); `background` closes the socket and makes no
  attempts until `foreground` reopens it; REST calls the network refused or cut are retried;
- a client is shut down only on `logout` or a login as another identity, its handles released
  first; afterwards nothing of it works (its handles and the client commands answer
  `client_shut_down`) and it never reaches the backend again; `kill` drops it with no shutdown.
- tokens are asked for 4 hours; one the generator issued living under 3 minutes is a
  `token_rejected` error (reply and observation), never fetched again; the token and its expiry
  are kept in a file in `storage_dir` (nowhere else, never logged), used at a restart while valid
  for more than 3 more minutes, cleared on logout; on `token_about_to_expire` a new token is
  fetched and handed to the open channel (`update_token`); a token that expired (the channel's
  `token_expired` or close 4410, a 401 on the handshake, asleep in the background) is reported
  once and replaced before the same instance reconnects; tokens travel in headers only.
- push: every start with a device token registers it (`POST /v1/Client/Registrations`) unless
  storage shows this identity registered this device token already; a registration stored for
  another identity is removed first (`DELETE`, with a token of that identity: the stored one
  while valid, else the generator's); `device_token_changed` registers the new token and removes
  the old one; what was registered is stored beside the token; the work is background activity,
  covered by `settle`.
- counts: `get_count` is served from a per-(conversation, kind) cache for 5 s of virtual time and
  fetched otherwise (one `Counts` request fills participants and messages); the unread count is
  null while the user has no read horizon.
"""

import asyncio
import collections
import concurrent.futures
import heapq
import http.client
import itertools
import json
import os
import random
import sys
import threading
import urllib.parse

import websockets
from websockets.asyncio.client import connect as ws_connect

PROTOCOL = 1
ADAPTER = "python-example"
VERSION = "0.1.0"
TOKEN_TTL_SECS = 4 * 3600  # hours, at most a day (TOKEN-2)
# The service refuses tokens living under 3 minutes: such a token is an error, never fetched again
# in a loop (TOKEN-1).
MIN_TOKEN_LIFETIME_SECS = 180
# A token this close to its expiry (virtual ms) is not used for a new connection (the channel would
# warn at once); a stored token must outlive it to be used at start (TOKEN-5).
TOKEN_MARGIN_MS = 180_000
# The event channel's close code at the token's expiry.
TOKEN_EXPIRED_CLOSE = 4410
# The file in `start`'s `storage_dir` that keeps the token across a kill (the only place it is
# kept outside memory).
STORAGE_FILE = "python-adapter.json"
PAGE_SIZE = 50
MAX_ATTEMPTS = 100
STDIN_LIMIT = 2 * 1024 * 1024
# The event socket's liveness probe, and the reconnect backoff (virtual milliseconds).
HEARTBEAT_EVERY_MS = 30_000
BACKOFF_MIN_MS = 1_000
BACKOFF_MAX_MS = 60_000
JITTER_SEED = 0x5EED
# The commands this adapter implements (hello `capabilities.commands`): all of them.
COMMANDS = [
    "start", "logout", "kill", "background", "foreground", "list_conversations",
    "open_conversation", "release", "fetch_messages", "send_message", "update_attributes",
    "read_attributes", "device_token_changed", "get_count", "advance_time", "settle", "inspect",
]
# Where the device is registered for push (the kit's route, not public v1), and the binding type
# this app registers with: APNs, on a phone.
REGISTRATIONS = "/v1/Client/Registrations"
BINDING_TYPE = "apn"
# How long a count read is served from the cache (virtual ms; hello `count_cache_lifetime_ms`).
COUNT_CACHE_MS = 5_000
COUNT_KINDS = ("participants", "messages", "unread")


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
    def __init__(self, kind, message, status=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status  # the HTTP status that refused the request, if one did


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
    """Background work in flight, and which of it only waits for virtual time; and the event
    sockets still closing (whatever client they belonged to: the backend has not seen them go)."""

    def __init__(self, on_sleep):
        self.inflight = 0
        self.sleeping = {}  # one token per sleeper -> its deadline
        self.closing = set()  # tasks closing a socket
        self._on_sleep = on_sleep

    def begin(self):
        self.inflight += 1

    def end(self):
        self.inflight = max(0, self.inflight - 1)

    def reset(self):
        self.inflight = 0
        self.sleeping = {}

    def is_quiet(self, now):
        asleep = sum(1 for d in self.sleeping.values() if d > now)
        return self.inflight == asleep and not self.closing

    async def sleep(self, clock, ms):
        """Sleeps on the virtual clock, counted as quiet."""
        deadline = clock.now + ms
        token = object()  # two sleepers may share a deadline: each forgets only its own
        self.sleeping[token] = deadline
        self._on_sleep()
        try:
            await clock.sleep_until(deadline)
        finally:
            self.sleeping.pop(token, None)


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


# A request that never got its answer for a reason of the network (refused, reset, closed before
# the answer, timed out): worth trying again later.
TRANSPORT_ERRORS = (OSError, http.client.BadStatusLine, http.client.IncompleteRead)


class Rest:
    """REST access for one client instance, retrying gated answers and transport failures on
    virtual time."""

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
            except TRANSPORT_ERRORS as e:
                # Unreachable, refused, or cut before the answer (a half-open network): the
                # request is tried again later, on virtual time; the client does not fail for it.
                log(f"{method} {urllib.parse.urlsplit(url).path}: {type(e).__name__}; retrying")
                await self.activity.sleep(self.clock, backoff)
                backoff = min(backoff * 2, 30_000)
                continue
            except http.client.HTTPException as e:
                raise CommandError("backend", f"{method} {url}: {e}") from None
            etag = resp_headers.get("etag", "").strip('"')
            revision = int(etag) if etag.isdigit() else None
            if 200 <= status < 300:
                if not data.strip():
                    return None, revision  # a bodiless answer (`204`)
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


async def register(rest, address):
    """Registers the device token `address` for push, as `rest`'s identity (201 created, 200
    refreshed)."""
    await rest.call("POST", REGISTRATIONS, [("Address", address), ("BindingType", BINDING_TYPE)])


async def unregister(rest, address):
    """Removes the binding of `rest`'s identity for the device token `address`; one already gone
    (404) is fine."""
    try:
        await rest.call("DELETE", f"{REGISTRATIONS}/{segment(address)}")
    except CommandError as e:
        if e.kind != "not_found":
            raise


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
        return issued
    raise CommandError(
        "token_rejected", f"token generator answered {status}: {_error_message(data)}"
    )


class Credential:
    """A token and when it expires (virtual ms); `fetched` when it came from the generator."""

    def __init__(self, token, expires_at, fetched):
        self.token = token
        self.expires_at = expires_at
        self.fetched = fetched


async def obtain_token(clock, token_url, identity, instance):
    """A token from the generator, with its expiry on the virtual clock. One living under three
    minutes never works with the service: a typed error, and the caller does not ask again."""
    asked = clock.now  # counted from the ask: the expiry errs early, never late
    issued = await fetch_token(token_url, identity, instance)
    ttl = issued.get("ttl")
    if not isinstance(ttl, int):
        ttl = TOKEN_TTL_SECS
    if ttl < MIN_TOKEN_LIFETIME_SECS:
        raise CommandError(
            "token_rejected",
            f"the token generator issued a token living {ttl} s; the service refuses tokens "
            "living under 3 minutes, so the client cannot use it (not asking again)",
        )
    return Credential(issued["token"], asked + ttl * 1000, True)


class Storage:
    """The app's persistent storage (`start`'s `storage_dir`, which survives a kill): the current
    token, its identity and its expiry (virtual ms), and the push registration last made from
    this device (identity and device token). A missing or unreadable file is empty."""

    def __init__(self, directory):
        self.file = os.path.join(directory, STORAGE_FILE) if directory else None

    def load(self):
        if self.file is None:
            return {}
        try:
            with open(self.file, encoding="utf-8") as f:
                stored = json.load(f)
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) else {}

    def update(self, change):
        if self.file is None:
            return
        stored = self.load()
        change(stored)
        tmp = self.file + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(stored, f)
            os.replace(tmp, self.file)
        except OSError as e:
            # An unwritable directory loses the change, as a full disk would (no token logged).
            log(f"storage not writable: {type(e).__name__}")

    def keep_token(self, identity, credential):
        def change(stored):
            stored["token"] = {"identity": identity, "token": credential.token,
                               "expires_at": credential.expires_at}
        self.update(change)

    def keep_registration(self, identity, device_token):
        def change(stored):
            stored["registration"] = {"identity": identity, "device_token": device_token}
        self.update(change)

    def clear_token(self):
        self.update(lambda stored: stored.pop("token", None))

    def valid_token(self, identity, now):
        """The stored token of `identity`, if it is good for a new connection (valid for more
        than the margin); an expired one is never presented."""
        t = self.load().get("token")
        if not isinstance(t, dict) or t.get("identity") != identity:
            return None
        token, expires_at = t.get("token"), t.get("expires_at")
        if not isinstance(token, str) or not isinstance(expires_at, (int, float)):
            return None
        if expires_at <= now + TOKEN_MARGIN_MS:
            return None
        return Credential(token, expires_at, False)


def events_url_since(events_url, since):
    """The event channel's URL, resuming after event `since` when there is one."""
    if since is None:
        return events_url
    separator = "&" if urllib.parse.urlsplit(events_url).query else "?"
    return f"{events_url}{separator}since={since}"


async def connect_events(url, token, instance):
    """Opens the event channel; the token travels in a header, never in the URL."""
    try:
        return await ws_connect(
            url,
            additional_headers={"X-Convo-Client": instance, "X-Twilio-Token": token},
            proxy=None,
            compression=None,
            ping_interval=None,
            open_timeout=60,
            max_queue=None,
        )
    except websockets.exceptions.InvalidStatus as e:
        code = e.response.status_code
        kind = "token_rejected" if code == 401 else "backend"
        raise CommandError(kind, f"event channel refused: {code}", status=code) from None
    except (OSError, EOFError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as e:
        raise CommandError("backend", f"event channel refused: {type(e).__name__}: {e}") from None


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


class Link:
    """A client's event connection: which socket is current, and where the event log resumes."""

    def __init__(self, number, ws):
        self.id = number  # the current socket's number (0 matches none: attempts are abandoned)
        self.ws = ws
        self.state = "open"  # "open" | "reconnecting" | "parked" (in the background)
        self.last_seq = None  # the last event received, or the first socket's welcome
        self.failures = 0  # failed attempts in a row
        self.heartbeat = None  # the nonce of the probe not echoed yet


class Session:
    """Everything one client instance holds."""

    def __init__(self, instance, identity, rest, events_url, link, token_url, storage, expires):
        self.instance = instance
        self.identity = identity
        self.rest = rest
        self.events_url = events_url
        self.link = link
        self.token_url = token_url
        self.storage = storage
        self.token_expires = expires  # the token in use expires then (virtual ms)
        self.refreshing = False  # a refresh is in flight
        self.expiry_seen = False  # the token's expiry was reported
        self.background = False
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
        self.device_token = None  # the device's push token, as the OS last handed it
        self.counts = {}  # (sid, kind) -> (fetched at, virtual ms; count or None)


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
        self.sends = set()  # pings and heartbeats on their way out
        self.readers = set()  # one task reading each open socket
        self.settling = []  # [responder, nonce or None, epoch]
        self.epoch = 0
        self.nonce = 0
        self.links = 0  # event sockets numbered so far
        self.random = random.Random(JITTER_SEED)  # the backoff jitter repeats run to run
        self.handle_owners = {}  # handle -> the instance that issued it (ids are never reused)
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
            self.start(r, q["identity"], q["token_url"], q["rest_url"], q["events_url"],
                       q.get("storage_dir"), q.get("device_token"))
        elif name == "logout":
            # A user who logged out leaves no credential behind.
            if s is not None:
                s.storage.clear_token()
            # Answered once the socket is closed: nothing published afterwards reaches it.
            self.close_socket(self.shut_down(), r.ok)
        elif name == "kill":
            # The process dies: no shutdown, and its socket goes with it.
            self.close_socket(self.drop_session(), r.ok)
        elif name == "background":
            self.background(r)
        elif name == "foreground":
            self.foreground()
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
        elif name == "device_token_changed":
            device_token = q["device_token"]
            if not isinstance(device_token, str) or not device_token:
                raise ValueError("device_token must be a non-empty string")
            self.device_token_changed(device_token)
            r.ok()
        elif name == "get_count":
            self.get_count(r, q["conversation"], q["kind"])
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
            "connection": "connected" if s.link.state == "open" else "disconnected",
            "sync": s.sync,
            "conversations": [[sid, s.conversations[sid].sync] for sid in sorted(s.conversations)],
            "handles": sorted(s.handles),
        }

    # -- session lifecycle ---------------------------------------------------------------------

    def start(self, r, identity, token_url, rest_url, events_url, storage_dir=None,
              device_token=None):
        """Creates a client. A client of another identity is shut down first (a switch of
        login, with its handles released); starting the same identity twice is refused."""
        if self.pending_start is not None:
            return r.error("invalid_command", "a client is already starting")
        if self.session is not None:
            if self.session.identity == identity:
                return r.error("invalid_command",
                               "a client is already started for this identity; log out first")
            self.close_socket(self.shut_down())
        self.generation += 1
        self.instances += 1
        instance = f"py-{self.instances}"
        self.links += 1
        storage = Storage(storage_dir if isinstance(storage_dir, str) else None)
        device_token = device_token if isinstance(device_token, str) and device_token else None
        self.pending_start = (instance, identity, rest_url, events_url, self.links, token_url,
                              storage, device_token)
        # A valid token kept from an earlier run starts the client without waiting for the
        # generator (TOKEN-5); an expired one is never presented.
        stored = storage.valid_token(identity, self.clock.now)
        clock = self.clock

        async def work():
            credential = stored or await obtain_token(clock, token_url, identity, instance)
            try:
                ws = await connect_events(events_url, credential.token, instance)
            except CommandError as e:
                if stored is None or e.status != 401:
                    raise
                # The channel refused the stored token after all: the generator's turn.
                credential = await obtain_token(clock, token_url, identity, instance)
                ws = await connect_events(events_url, credential.token, instance)
            return credential, ws

        self.spawn(work(), lambda res, err: self.started(r, res, err), responder=r)

    def started(self, r, result, error):
        pending, self.pending_start = self.pending_start, None
        if pending is None:
            if result is not None:
                self.close_socket(result[1])
            return r.error("internal", "the start was abandoned")
        if error is not None:
            # Reported as well as answered (a token living under 3 minutes: TOKEN-1).
            observe("error", kind=error.kind, message=error.message)
            return r.fail(error)
        instance, identity, rest_url, events_url, number, token_url, storage, device = pending
        credential, ws = result
        # What the app kept from its earlier runs, before this start changes it (the push
        # registration, and the previous identity's token).
        kept = storage.load()
        if credential.fetched:
            storage.keep_token(identity, credential)
        rest = Rest(rest_url, credential.token, instance, self.clock, self.activity)
        self.session = Session(instance, identity, rest, events_url, Link(number, ws), token_url,
                               storage, credential.expires_at)
        self.session.device_token = device
        observe("client_created", instance=instance)
        # The listener is attached before the list is requested; its first frame is the
        # socket's welcome.
        self.listen(number, ws)
        self.linked()
        observe("client_sync", status="started")
        # Client creation completes before the list is fetched.
        r.ok({"instance": instance})
        self.begin_sync()
        self.register_on_start(kept)

    def drop_session(self):
        """Ends the client without a shutdown (the process died, or after one): its work is
        cancelled and never reaches the backend again. Returns its socket, for the caller to
        close."""
        s = self.session
        for task in list(self.tasks):
            task.cancel()
        self.activity.reset()
        self.generation += 1
        self.pending_start = None
        self.session = None
        self.forget_pings()
        return s.link.ws if s is not None else None

    def shut_down(self):
        """Logout (or a switch of login): fail what is pending, release every handle, report
        the shutdown, drop the client. Returns its socket, for the caller to close."""
        s = self.session
        if s is None:
            return self.drop_session()
        for responder, _ in s.waiting_ops:
            responder.error("client_shut_down", "the client was shut down")
        for awaited in s.awaited:
            awaited["responder"].error("client_shut_down", "the client was shut down")
        s.waiting_ops, s.awaited = [], []
        # Every handle goes before the client does.
        for handle in sorted(s.handles):
            observe("handle_released", handle=handle)
        s.handles.clear()
        observe("client_shut_down", instance=s.instance)
        if s.link.state == "open":
            observe("connection_state", state="disconnected")
        return self.drop_session()

    def background(self, r):
        """The app went to the background: close the socket and make no attempts until it is
        back. Answered once the socket is closed, so nothing published afterwards is written to
        it."""
        s = self.session
        if s is None:
            return r.ok()
        s.background = True
        link = s.link
        ws = link.ws if link.state == "open" else None
        # Socket number 0 matches nothing: an attempt in flight or asleep is abandoned.
        link.id, link.ws, link.state, link.heartbeat = 0, None, "parked", None
        self.forget_pings()
        if ws is not None:
            observe("connection_state", state="disconnected")
        self.close_socket(ws, r.ok)

    def foreground(self):
        """The app came back: open a socket at once (no backoff), resuming after the last
        event."""
        s = self.session
        if s is None:
            return
        s.background = False
        s.link.failures = 0
        # A token that expired while the app slept is reported; the reconnect fetches a fresh
        # one for the same instance (TOKEN-4).
        self.notice_expiry()
        if s.link.state == "parked":
            observe("connection_state", state="connecting")
            self.reconnect(wait=False)

    # -- the token -----------------------------------------------------------------------------

    def notice_expiry(self):
        """The token in use expired while the client could not be told (asleep, disconnected,
        the channel closed for it): say so once. The same instance goes on."""
        s = self.session
        if s is None or s.token_expires > self.clock.now or s.expiry_seen:
            return
        s.expiry_seen = True
        observe("token_expired")

    def token_frame(self, f):
        """A token frame on the current socket (they carry no `seq`: not events of the log)."""
        s = self.session
        kind = f.get("type")
        if kind == "token_about_to_expire":
            observe("token_about_to_expire")
            self.refresh()
        elif kind == "token_expired":
            # The socket closes next (4410); the reconnect fetches a token first.
            s.token_expires = min(s.token_expires, self.clock.now)
            self.notice_expiry()
        elif kind == "token_rejected":
            observe("error", kind="token_rejected",
                    message=f"the event channel refused the new token ({f.get('code')}): "
                            f"{f.get('message', '')}")
        # `token_updated`: the channel took the token the client adopted already.

    def refresh(self):
        """Fetches a new token for the running instance (once at a time) and hands it to the
        open channel (TOKEN-3)."""
        s = self.session
        if s is None or s.refreshing:
            return
        s.refreshing = True

        def refreshed(credential, error):
            now = self.session
            if now is None:
                return
            now.refreshing = False
            if error is not None:
                observe("error", kind=error.kind, message=f"token refresh failed: {error.message}")
                return
            if now.link.state == "open" and now.link.ws is not None:
                self.send_frame(now.link.ws, {"type": "update_token", "token": credential.token})
            self.adopt(credential)

        self.spawn(obtain_token(self.clock, s.token_url, s.identity, s.instance), refreshed)

    def adopt(self, credential):
        """The running instance takes `credential` for REST and its next connections; kept in
        storage; reported."""
        s = self.session
        if s is None:
            return
        s.rest.token = credential.token
        s.token_expires = credential.expires_at
        s.expiry_seen = False
        if credential.fetched:
            s.storage.keep_token(s.identity, credential)
        observe("token_updated")

    # -- the event connection ------------------------------------------------------------------

    def close_socket(self, ws, then=None, dead=False):
        """Closes `ws` with the close handshake (at once, when it is known dead); `then()` runs
        once it is closed (the backend saw it go). Counted as activity meanwhile, so a settle
        never answers with a socket half closed."""
        if ws is None:
            if then is not None:
                then()
            return

        async def close():
            try:
                if dead:
                    ws.transport.abort()
                else:
                    await ws.close()
                await ws.wait_closed()
            except Exception as e:  # noqa: BLE001 - closed is closed
                log(f"closing an event socket: {type(e).__name__}: {e}")
            finally:
                self.activity.closing.discard(task)
                if then is not None:
                    then()
                self.step()

        task = asyncio.get_running_loop().create_task(close())
        self.activity.closing.add(task)

    def listen(self, number, ws):
        """Reads socket `number` until it closes; its frames go to the engine tagged with its
        number, so the engine can tell the current socket from ones it let go of."""
        task = asyncio.get_running_loop().create_task(self.read_events(number, ws))
        self.readers.add(task)
        task.add_done_callback(self.readers.discard)

    def send_frame(self, ws, message):
        """Writes `message` on `ws` (a ping or a heartbeat); a closed socket just drops it."""
        text = json.dumps(message, separators=(",", ":"))

        async def send():
            try:
                await ws.send(text)
            except websockets.exceptions.ConnectionClosed:
                pass

        task = asyncio.get_running_loop().create_task(send())
        self.sends.add(task)
        task.add_done_callback(self.sends.discard)

    def linked(self):
        """A socket is open for the client: the backoff starts over, the heartbeat starts."""
        link = self.session.link
        link.failures = 0
        link.heartbeat = None
        observe("connection_state", state="connected")
        self.arm_heartbeat(link.id)

    def arm_heartbeat(self, number):
        self.spawn(self.activity.sleep(self.clock, HEARTBEAT_EVERY_MS),
                   lambda _res, _err: self.heartbeat_due(number))

    def heartbeat_due(self, number):
        """Socket `number` is due a probe: send one, or give the socket up if the last one was
        never echoed (it stays open but is silent: only this timer can tell)."""
        s = self.session
        if s is None or s.link.id != number or s.link.state != "open":
            return
        if s.link.heartbeat is not None:
            log(f"event socket {number} missed its heartbeat: replacing it")
            self.close_socket(s.link.ws, dead=True)
            return self.lost_link()
        self.nonce += 1
        s.link.heartbeat = self.nonce
        self.send_frame(s.link.ws, {"type": "heartbeat", "nonce": self.nonce})
        self.arm_heartbeat(number)

    def lost_link(self):
        """The current socket is gone (closed by the other side, or dead): replace it after a
        backoff, unless the app is in the background."""
        s = self.session
        link = s.link
        link.ws, link.state, link.heartbeat = None, "reconnecting", None
        # Pongs will never come on it: settles ping again on the next socket, or answer when
        # quiet.
        self.forget_pings()
        observe("connection_state", state="disconnected")
        if s.background:
            link.state = "parked"
            return
        observe("connection_state", state="connecting")
        self.reconnect(wait=True)

    def backoff(self, failures):
        """The wait before attempt number `failures` (failed attempts in a row, from 0):
        min(1 s * 2^n, 60 s), stretched by a seeded jitter in [1, 1.5)."""
        base = min(BACKOFF_MIN_MS * 2 ** min(failures, 16), BACKOFF_MAX_MS)
        return round(base * (1 + self.random.random() / 2))

    def reconnect(self, wait):
        """Opens a new socket for the client, after the backoff when `wait` is set, resuming
        after the last event received. The same instance, token and headers throughout."""
        s = self.session
        link = s.link
        delay = self.backoff(link.failures) if wait else 0
        self.links += 1
        number = self.links
        link.id, link.ws, link.state, link.heartbeat = number, None, "reconnecting", None

        def current():
            return self.session is s and link.id == number

        async def attempt():
            if delay:
                await self.activity.sleep(self.clock, delay)
            if not current():
                return None  # abandoned while it waited (the app went to the background)
            # A token that expired (or is about to) while the client was away is replaced
            # first: the same instance goes on with a fresh one (TOKEN-4).
            if s.token_expires <= self.clock.now + TOKEN_MARGIN_MS:
                fresh = await obtain_token(self.clock, s.token_url, s.identity, s.instance)
                if not current():
                    return None
                self.adopt(fresh)
            url = events_url_since(s.events_url, link.last_seq)
            ws = await connect_events(url, s.rest.token, s.instance)
            if not current():
                self.close_socket(ws)
                return None
            return ws

        self.spawn(attempt(), lambda ws, err: self.reconnected(number, ws, err))

    def reconnected(self, number, ws, error):
        """Attempt `number` ended: the socket is the client's now, or the next attempt backs
        off more."""
        s = self.session
        if s is None or s.link.id != number or s.link.state != "reconnecting":
            self.close_socket(ws)
            return
        if error is not None:
            if error.status == 401:
                # The channel refused the token: report its expiry; the next attempt fetches
                # one first.
                s.token_expires = min(s.token_expires, self.clock.now)
                self.notice_expiry()
            s.link.failures += 1
            return self.reconnect(wait=True)
        if ws is None:
            return
        s.link.ws, s.link.state = ws, "open"
        self.listen(number, ws)
        self.linked()

    # -- socket input ---------------------------------------------------------------------------

    async def read_events(self, number, ws):
        try:
            async for text in ws:
                if not isinstance(text, str):
                    continue
                try:
                    frame = json.loads(text)
                except ValueError:
                    log("an event frame that is not JSON was ignored")
                    continue
                if isinstance(frame, dict):
                    self.socket_frame(number, frame)
        except websockets.exceptions.ConnectionClosed:
            pass
        self.socket_closed(number, ws.close_code)

    def socket_frame(self, number, frame):
        s = self.session
        kind = frame.get("type")
        if s is None or s.link.id != number:
            # A socket the client let go of: a pong on it still ends a settle; the rest is stale.
            if kind == "pong":
                self.ponged(frame.get("nonce"))
                self.step()
            return
        if kind == "welcome":
            # Where this socket starts in the event log: the resume point of a client that has
            # received nothing yet.
            seq = frame.get("seq")
            if isinstance(seq, int) and (s.link.last_seq is None or seq > s.link.last_seq):
                s.link.last_seq = seq
        elif kind == "pong":
            self.ponged(frame.get("nonce"))
        elif kind == "heartbeat":
            if frame.get("nonce") == s.link.heartbeat:
                s.link.heartbeat = None
        elif kind in ("token_about_to_expire", "token_expired", "token_updated", "token_rejected"):
            self.epoch += 1
            self.token_frame(frame)
        else:
            self.epoch += 1
            self.event(frame)
        self.step()

    def event(self, frame):
        """An event frame: handled once, in log order (a replay overlapping what arrived is
        skipped)."""
        link = self.session.link
        seq = frame.get("seq")
        if isinstance(seq, int):
            if link.last_seq is not None and seq <= link.last_seq:
                return
            link.last_seq = seq
        self.frame(frame)

    def socket_closed(self, number, code=None):
        s = self.session
        if s is None or s.link.id != number or s.link.state != "open":
            return
        self.epoch += 1
        if code == TOKEN_EXPIRED_CLOSE:
            # Closed at the token's expiry: the reconnect fetches a fresh token first.
            s.token_expires = min(s.token_expires, self.clock.now)
            self.notice_expiry()
        self.lost_link()
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
        if s is None or s.link.state != "open":
            return None
        self.nonce += 1
        self.send_frame(s.link.ws, {"type": "ping", "nonce": self.nonce})
        return self.nonce

    def begin_settle(self, r):
        self.settling.append([r, self.ping(), self.epoch])

    def ponged(self, nonce):
        for w in self.settling:
            if w[1] == nonce:
                w[1] = None

    def forget_pings(self):
        """The socket the pings went out on is gone: their pongs will never come (the next
        round pings again, on the next socket if there is one)."""
        for w in self.settling:
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
        # Prefixed with the instance: a handle id is never reused by a later client.
        handle = f"{s.instance}/h-{s.next_handle}"
        s.handles[handle] = sid
        self.handle_owners[handle] = s.instance
        observe("handle_acquired", handle=handle)
        r.ok({"handle": handle})

    def release(self, r, handle):
        s = self.session
        owner = self.handle_owners.get(handle)
        if s is None or (owner is not None and owner != s.instance):
            return r.error("client_shut_down",
                           f"handle {handle} belonged to a client that was shut down")
        if handle in s.handles:
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

    # -- push registration -----------------------------------------------------------------------

    def register_on_start(self, kept):
        """The client was created; `kept` is what storage held before this start. Registers the
        device unless the stored registration is this one (PUSH-1, PUSH-2); the previous
        identity's binding of the device is removed first, with a token of that identity
        (PUSH-4), and so is this identity's binding of a device token the OS has replaced since.
        Background work, so a `settle` covers it; what was registered is stored."""
        s = self.session
        if s is None or s.device_token is None:
            return
        current = (s.identity, s.device_token)
        previous = kept.get("registration")
        if not (isinstance(previous, dict) and isinstance(previous.get("identity"), str)
                and isinstance(previous.get("device_token"), str)):
            previous = None
        else:
            previous = (previous["identity"], previous["device_token"])
        if previous == current:
            return  # registered already: nothing to write
        rest, clock, activity = s.rest, self.clock, self.activity
        token_url, instance = s.token_url, s.instance
        # A token of the previous identity: the stored one while it is that identity's and valid
        # for more than the margin, else the generator's (fetched in the task). This identity's
        # old device token is removed with the session's own token.
        stored_token = None
        if previous is not None and previous[0] != current[0]:
            t = kept.get("token")
            if (isinstance(t, dict) and t.get("identity") == previous[0]
                    and isinstance(t.get("token"), str)
                    and isinstance(t.get("expires_at"), (int, float))
                    and t["expires_at"] > clock.now + TOKEN_MARGIN_MS):
                stored_token = t["token"]

        async def work():
            if previous is not None:
                as_previous = rest
                if previous[0] != current[0]:
                    token = stored_token
                    if token is None:
                        credential = await obtain_token(clock, token_url, previous[0], instance)
                        token = credential.token
                    as_previous = Rest(rest.base, token, instance, clock, activity)
                await unregister(as_previous, previous[1])
            await register(rest, current[1])

        self.spawn(work(), lambda _res, err: self.registered(s.storage, current, err))

    def device_token_changed(self, device_token):
        """The running client registers the new device token and removes the old one's binding
        (PUSH-3). Without a running client there is nothing to do: the next `start` brings the
        new token (and registers it, the stored registration being another)."""
        s = self.session
        if s is None:
            return
        old, s.device_token = s.device_token, device_token
        if old == device_token:
            return
        rest = s.rest
        current = (s.identity, device_token)

        async def work():
            await register(rest, device_token)
            if old is not None:
                await unregister(rest, old)

        self.spawn(work(), lambda _res, err: self.registered(s.storage, current, err))

    def registered(self, storage, registration, error):
        """A registration task ended: what it registered is kept for the next start."""
        if error is not None:
            observe("error", kind=error.kind, message=f"push registration failed: {error.message}")
            return
        storage.keep_registration(*registration)

    # -- counts ----------------------------------------------------------------------------------

    def get_count(self, r, sid, kind):
        """Served from the cache while the count is younger than the cache lifetime on the
        virtual clock, fetched otherwise (COUNT-1, COUNT-2). One `Counts` fetch fills both the
        participant and the message count; the unread count is the user's view of the
        conversation, null while the user has no read horizon (COUNT-3)."""
        s = self.session
        if s is None:
            return r.error("client_shut_down", "no client")
        if kind not in COUNT_KINDS:
            return r.error("invalid_command", "kind must be participants, messages or unread")
        if sid not in s.conversations:
            return r.error("not_found", f"conversation {sid} is unknown")
        cached = s.counts.get((sid, kind))
        if cached is not None and self.clock.now - cached[0] < COUNT_CACHE_MS:
            return r.ok({"count": cached[1]})
        rest, identity = s.rest, s.identity

        def number(n):
            return n if isinstance(n, int) and not isinstance(n, bool) else None

        async def work():
            if kind == "unread":
                body, _ = await rest.call(
                    "GET", f"/v1/Users/{segment(identity)}/Conversations/{segment(sid)}")
                return {"unread": number((body or {}).get("unread_messages_count"))}
            body, _ = await rest.call("GET", f"/v1/Conversations/{segment(sid)}/Counts")
            body = body or {}
            return {"participants": number(body.get("participants_count")),
                    "messages": number(body.get("messages_count"))}

        def counted(res, err):
            if err is not None:
                return r.fail(err)
            if self.session is not None:
                for k, count in res.items():
                    self.session.counts[(sid, k)] = (self.clock.now, count)
            r.ok({"count": res[kind]})

        self.spawn(work(), counted, responder=r)

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
        "capabilities": {
            "virtual_time": True,
            "settle": True,
            "count_cache_lifetime_ms": COUNT_CACHE_MS,
            "features": ["messages"],
            "commands": COMMANDS,
        },
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
