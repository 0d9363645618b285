#!/usr/bin/env python3
"""A deliberately broken JSON-lines adapter: `broken.py MODE` breaks the protocol one way.

Every mode answers `start` well enough to get going, then misbehaves as its name says."""
import json
import os
import signal
import subprocess
import sys
import time

MODE = sys.argv[1]
HELLO = {"type": "hello", "protocol": 1, "adapter": "broken-" + MODE, "version": "0",
         "profile": "mobile", "capabilities": {"virtual_time": True, "settle": True}}


def out(raw):
    sys.stdout.buffer.write(raw if isinstance(raw, bytes) else raw.encode())
    sys.stdout.buffer.write(b"\n")
    sys.stdout.buffer.flush()


def send(message):
    out(json.dumps(message))


BODIES = {
    "list_conversations": {"conversations": []},
    "open_conversation": {"handle": "h-1"},
    "fetch_messages": {"messages": []},
    "send_message": {"index": 0},
    "read_attributes": {"attributes": {}},
    "get_count": {"count": None},
    "inspect": {"instance": "broken-1", "connection": "connected", "sync": "completed",
                "conversations": [], "handles": []},
}


def reply(request):
    """A reply of the right shape (not of the right content: this client does nothing)."""
    command = request["command"]
    body = BODIES.get(command, {})
    if command == "start":
        send({"type": "observation", "event": "client_created", "instance": "broken-1"})
        body = {"instance": "broken-1"}
    if command == "update_attributes":
        body = {"attributes": request["attributes"]}
    send({"type": "reply", "id": request["id"], "ok": body})


if MODE == "no-hello":
    time.sleep(60)
    sys.exit(0)
if MODE == "exit-before-hello":
    print("cannot find the SDK", file=sys.stderr, flush=True)
    sys.exit(4)
if MODE == "old-version":
    HELLO["protocol"] = 99
send(HELLO)
if MODE in ("orphan", "orphan-hang"):
    child = subprocess.Popen(["sleep", "300"])
    with open(sys.argv[2], "a") as f:
        f.write(f"{child.pid}\n")
if MODE == "ignores-termination":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if MODE == "deaf":
    # Answers `start`, then stops reading stdin and hangs: the harness's writes fill the pipe.
    request = json.loads(sys.stdin.readline())
    reply(request)
    time.sleep(60)
    sys.exit(0)

first = True
for line in sys.stdin:
    request = json.loads(line)
    print("got", request["command"], file=sys.stderr, flush=True)
    if first:
        first = False
        if MODE == "malformed":
            out("this is not json")
        elif MODE == "unknown-kind":
            send({"type": "status", "id": request["id"]})
        elif MODE == "unknown-id":
            send({"type": "reply", "id": 999, "ok": {}})
        elif MODE == "duplicate":
            reply(request)
            reply(request)
        elif MODE == "oversized":
            out("x" * (1024 * 1024 + 10))
        elif MODE == "invalid-utf8":
            out(b"\xff\xfe{}")
        elif MODE == "wrong-body":
            send({"type": "reply", "id": request["id"], "ok": {"conversations": 3}})
        elif MODE == "crash":
            sys.exit(3)
        elif MODE == "crash-holding-stdout":
            # A helper it started keeps stdout open after it dies.
            subprocess.Popen(["sleep", "30"])
            sys.exit(3)
        elif MODE in ("hang", "orphan-hang"):
            continue
        else:
            reply(request)
        continue
    if MODE in ("hang", "orphan-hang"):
        continue
    reply(request)

# stdin closed: the session is over.
if MODE == "after-close":
    send(HELLO)
if MODE in ("ignores-termination", "orphan"):
    time.sleep(60)
