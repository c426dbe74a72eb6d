#!/usr/bin/env python3
"""Raw control-socket clients for tests/api/run (api/control.md). Each subcommand prints
what it saw in a fixed form, so that the shell test compares its output exactly.

  probe.py wait SOCK SECONDS [PID]      until describe answers with the guest ready (exit 1 if
                                        not, or once process PID is gone)
  probe.py call SOCK METHOD [PARAMS]    one request: prints `result JSON` or `error CODE MESSAGE`
  probe.py stop SOCK TIMEOUT_MS         subscribes, sends stop, prints `exit REASON STATUS`
                                        (and on stderr the milliseconds it took)
  probe.py hostile SOCK NAME [STATE]    garbage, a 10 MiB line, 200 concurrent describes,
                                        clients that vanish or never read
"""

import json
import os
import select
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../api/examples"))
from orchestrator import ApiError, Client, ProtocolError  # noqa: E402


def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def cmd_wait(sock, seconds, pid=None):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if pid and not os.path.exists(f"/proc/{pid}"):
            print(f"{sock}: process {pid} ended before its sandbox was ready", file=sys.stderr)
            return 1
        try:
            c = Client(sock, timeout=10)
            try:
                d = c.call("describe")
                if d.get("state") == "running" and d.get("ready_ms") is not None:
                    return 0
            finally:
                c.close()
        except (OSError, ApiError, ProtocolError, ValueError):
            pass
        time.sleep(0.1)
    print(f"{sock}: no running, ready sandbox within {seconds} s", file=sys.stderr)
    return 1


def cmd_call(sock, method, params=None):
    c = Client(sock, timeout=60)
    try:
        result = c.call(method, json.loads(params) if params else None)
        print("result " + compact(result))
    except ApiError as e:
        print(f"error {e.code} {e.message}")
    finally:
        c.close()
    return 0


def cmd_stop(sock, timeout_ms):
    c = Client(sock, timeout=60)
    c.call("subscribe", {"events": ["exit"]})
    start = time.monotonic()
    c.call("stop", {"timeout_ms": int(timeout_ms)})
    try:
        ev = c.wait_event("exit")
        print(f"exit {ev.get('reason')} {ev.get('status')}")
    except ProtocolError:
        print("closed before an exit event")
    print(f"{(time.monotonic() - start) * 1000:.0f} ms from stop to exit", file=sys.stderr)
    c.close()
    return 0


# --- hostile ------------------------------------------------------------------------------


def raw(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)  # blocking: a full listen backlog makes it wait, as for any client
    s.settimeout(60)
    return s


def read_line(s, buf):
    """One line from s (buf: bytearray of what was read past earlier lines); None at EOF."""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk
    nl = buf.index(b"\n")
    line = bytes(buf[:nl])
    del buf[: nl + 1]
    return json.loads(line)


def error_of(reply):
    err = reply.get("error") or {}
    return f"{err.get('code')} {err.get('message')}"


def describe_ok(reply, name, want_id, state="running"):
    r = reply.get("result") or {}
    return (reply.get("jsonrpc") == "2.0" and reply.get("id") == want_id and r.get("protocol") == 1
            and r.get("name") == name and r.get("state") == state and isinstance(r.get("pid"), int))


def hostile(sock, name, state="running"):
    out = []
    # Garbage on one connection, which must go on answering afterwards.
    s = raw(sock)
    buf = bytearray()
    for what, line in [
        ("not JSON", b"garbage"),
        ("not UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}'),
        ("an unterminated object", b'{"jsonrpc":"2.0","id":1,'),
        ("a batch", b'[{"jsonrpc":"2.0","id":1,"method":"describe"}]'),
        ("no jsonrpc member", b'{"id":1,"method":"describe"}'),
        ("unknown method", b'{"jsonrpc":"2.0","id":2,"method":"strat"}'),
        ("params not an object", b'{"jsonrpc":"2.0","id":3,"method":"stop","params":[1]}'),
    ]:
        s.sendall(line + b"\n")
        reply = read_line(s, buf)
        # Parse errors' messages come from the JSON parser: their code only.
        text = "closed" if reply is None else error_of(reply)
        if what != "unknown method" and reply is not None:
            text = text.split(" ")[0]
        out.append(f"{what}: {text}")
        if reply is None:
            s = raw(sock)
            buf = bytearray()
    s.sendall(b'{"jsonrpc":"2.0","id":"after","method":"describe"}\n')
    reply = read_line(s, buf)
    out.append("the same connection afterwards: " + ("describe ok" if reply and describe_ok(reply, name, "after", state) else repr(reply)))
    s.close()

    # A 10 MiB line: an error reply, then the VMM closes the connection.
    s = raw(sock)
    big = b'{"jsonrpc":"2.0","id":1,"method":"describe","params":{"x":"' + b"a" * (10 << 20) + b'"}}\n'
    try:
        s.sendall(big)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    buf = bytearray()
    lines = []
    try:
        while True:
            reply = read_line(s, buf)
            if reply is None:
                break
            lines.append(error_of(reply))
        ending = "then closed"
    except ConnectionResetError:
        ending = "then closed"  # closed with our request's rest unread: a reset, after the reply
    except socket.timeout:
        ending = "then still open after 60 s"
    out.append(f"10 MiB line: {' | '.join(lines) or 'no reply'}, {ending}")
    s.close()

    # 200 well-formed clients at once, among clients that connect and vanish mid-request
    # and clients that send requests and never read.
    results = [None] * 200
    start = threading.Barrier(200 + 24)

    def describer(i):
        try:
            start.wait(60)
            c = raw(sock)
            c.sendall(compact({"jsonrpc": "2.0", "id": i, "method": "describe"}).encode() + b"\n")
            reply = read_line(c, bytearray())
            results[i] = describe_ok(reply, name, i, state) if reply else "closed"
            c.close()
        except Exception as e:  # noqa: BLE001 (reported, not raised: the thread's result)
            results[i] = f"{type(e).__name__}: {e}"

    def vanisher(i):
        try:
            start.wait(60)
            c = raw(sock)
            c.sendall(b'{"jsonrpc":"2.0","id":1,"method":"desc' if i % 2 else b'{"jsonrpc":"2.0","id":1,"method":"describe"}\n')
            c.close()
        except Exception:  # noqa: BLE001 (a vanishing client may fail any way it likes)
            pass

    # Clients that never read: each sends describe requests, whole lines only, and reads
    # nothing, until the VMM drops it (a write fails: EPIPE or a reset) once it has read
    # nothing of its replies for 10 s; 60 s at most. They run while the 200 others are
    # served.
    dropped = [None] * 16

    def non_reader(n):
        request = b'{"jsonrpc":"2.0","id":1,"method":"describe"}\n' * 64
        try:
            c = raw(sock)
        except OSError as e:
            dropped[n] = f"connect: {e}"
            return
        c.setblocking(False)
        pending = request
        sent = 0
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                try:
                    k = c.send(pending)
                    sent += k
                    pending = pending[k:] or request
                except BlockingIOError:
                    select.select([], [c], [], 1)  # until the VMM reads again, no spinning
            # Not dropped: say what the VMM had answered (an error among its replies?).
            c.setblocking(True)
            c.settimeout(2)
            got = bytearray()
            try:
                while len(got) < 64 << 20:
                    chunk = c.recv(1 << 20)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
            replies = bytes(got).split(b"\n")[:-1]
            errors = [line for line in replies if b'"error"' in line]
            dropped[n] = (f"not dropped after 60 s; it took {sent} bytes of requests, its "
                          f"{len(replies)} replies hold {len(errors)} errors {errors[:1]}")
        except (BrokenPipeError, ConnectionResetError):
            dropped[n] = True
        finally:
            c.close()

    readers = [threading.Thread(target=non_reader, args=(n,)) for n in range(16)]
    for t in readers:
        t.start()
    threads = [threading.Thread(target=describer, args=(i,)) for i in range(200)]
    threads += [threading.Thread(target=vanisher, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    good = sum(1 for r in results if r is True)
    out.append(f"200 concurrent describe: {good} correct")
    if good != 200:
        bad = [r for r in results if r is not True]
        print(f"wrong or missing describe replies, e.g. {bad[:3]!r}", file=sys.stderr)
    for t in readers:
        t.join()
    for n, r in enumerate(dropped):
        if r is not True:
            print(f"never-reading client {n}: {r}", file=sys.stderr)
    dropped = dropped.count(True)
    out.append(f"16 clients that never read: {dropped} dropped")
    s = raw(sock)
    s.sendall(b'{"jsonrpc":"2.0","id":7,"method":"describe"}\n')
    reply = read_line(s, bytearray())
    out.append("describe afterwards: " + ("ok" if reply and describe_ok(reply, name, 7, state) else repr(reply)))
    s.close()
    print("\n".join(out))
    return 0


def main(argv):
    commands = {"wait": cmd_wait, "call": cmd_call, "stop": cmd_stop, "hostile": hostile}
    if len(argv) < 3 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return commands[argv[1]](*argv[2:])
    except (OSError, ApiError, ProtocolError, ValueError) as e:
        print(f"probe.py {argv[1]}: {type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
