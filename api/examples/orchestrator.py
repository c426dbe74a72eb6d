#!/usr/bin/env python3
"""Drives three clawvm sandboxes through the control API (api/control.md), with nothing
but Python's standard library.

    api/examples/orchestrator.py [CLAWVM]      (default: $CLAWVM, else `clawvm` in PATH)

It starts three VMMs (`clawvm vmm --name NAME --api-sock DIR/NAME.sock`), configures each
(1 vCPU, 128 MiB), subscribes to its events, starts them and waits for `ready`. Then it
runs a different command in each with its output streamed back over the same connection
("attach"), printed line by line behind the sandbox's name, and one command per sandbox
without attach, whose status comes as an `exec.exit` event. Last it stops the three,
collects their `exit` events ("stopped", 143: a stop is a SIGTERM), waits for the VMM
processes (which exit with that status too), and prints a summary. Exit
status 0 only if every output, status and event was exactly as expected; 1 otherwise.

The small `Client` class is meant to be copied:

    c = Client("/run/user/1000/clawvm/box/api.sock")
    c.call("set_machine", {"vcpus": 1, "memory_mib": 256})   # -> result, or raises ApiError
    c.call("subscribe", {"events": ["ready", "exit"]})
    c.call("start")
    for name, params in c.events():                            # notifications, in order
        if name == "ready":
            break
    run = c.exec_attach(["sh", "-c", "echo hi; exit 3"])       # a connection of its own
    for stream, data in run:                                   # ("stdout"|"stderr", bytes)
        ...
    run.status                                                 # 3

Wire format: JSON-RPC 2.0, one object per line. An exec with "attach": true turns its
connection, after the reply line, into the exec frame protocol of api/exec.md: frames of
1 byte type, u32 little-endian length, payload.
"""

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# Exec frame types (api/exec.md, api/exec_proto.h).
FRAME_STDIN, FRAME_STDIN_EOF, FRAME_SIGNAL, FRAME_WINSIZE = 2, 3, 4, 5
FRAME_STARTED, FRAME_STDOUT, FRAME_STDERR, FRAME_EXIT, FRAME_ERROR = 16, 17, 18, 19, 20
FRAME_HEADER = struct.Struct("<BI")
FRAME_DATA_MAX = 64 * 1024


class ApiError(Exception):
    """An error reply: `code` (api/control.md's table) and `message`."""

    def __init__(self, code, message):
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


class ProtocolError(Exception):
    """The server said something that is not the protocol (or closed too early)."""


class _Stream:
    """A connected Unix socket read by lines (JSON-RPC) or by exact byte counts (frames);
    whatever was read past a line stays buffered for what comes next."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = bytearray()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def readline(self):
        """The next line without its newline, or None at the end of the stream."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                return line
            if not self._fill():
                if self.buf:
                    raise ProtocolError("connection closed inside a line")
                return None

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


class Client:
    """One control connection. call() returns a result or raises ApiError; events that
    arrive meanwhile (after subscribe) are kept for events(), in order."""

    def __init__(self, path, timeout=300.0):
        self.path = path
        self.timeout = timeout
        self.stream = _Stream(path, timeout)
        self.next_id = 1
        self.pending = []  # notifications read while waiting for a reply

    def close(self):
        self.stream.close()

    def _send(self, method, params):
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        self.next_id += 1
        self.stream.send(json.dumps(request).encode() + b"\n")
        return request["id"]

    def _read_message(self):
        line = self.stream.readline()
        if line is None:
            raise ProtocolError("the server closed the connection")
        try:
            msg = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"not JSON from the server: {line[:200]!r}: {e}") from None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            raise ProtocolError(f"not a JSON-RPC 2.0 message: {line[:200]!r}")
        return msg

    def _reply(self, want_id):
        while True:
            msg = self._read_message()
            if "method" in msg and "id" not in msg:
                self.pending.append((msg["method"], msg.get("params")))
                continue
            if msg.get("id") != want_id:
                raise ProtocolError(f"reply to id {msg.get('id')!r}, expected {want_id}")
            if "error" in msg:
                err = msg["error"]
                raise ApiError(err.get("code"), err.get("message"))
            if "result" not in msg:
                raise ProtocolError(f"a reply with neither result nor error: {msg!r}")
            return msg["result"]

    def call(self, method, params=None):
        """Sends one request and returns its result (a dict); raises ApiError."""
        return self._reply(self._send(method, params))

    def events(self):
        """Yields (name, params) for each notification, as they arrive; ends when the
        server closes the connection."""
        while True:
            while self.pending:
                yield self.pending.pop(0)
            line = self.stream.readline()
            if line is None:
                return
            msg = json.loads(line)
            if "method" in msg and "id" not in msg:
                yield msg["method"], msg.get("params")
            else:
                raise ProtocolError(f"a reply nobody asked for: {line[:200]!r}")

    def wait_event(self, name, match=None):
        """The params of the next event called `name` (for which match(params), if given,
        is true); other events are returned in `skipped` order by events() later."""
        skipped = []
        try:
            for ev, params in self.events():
                if ev == name and (match is None or match(params)):
                    return params
                skipped.append((ev, params))
            raise ProtocolError(f"connection closed before the {name} event")
        finally:
            self.pending[:0] = skipped

    def exec_attach(self, argv, stdin=b"", **params):
        """Runs argv in the sandbox over a new connection and returns an Attached run:
        iterate it for ("stdout"|"stderr", bytes); then .status is the exit status.
        stdin (bytes) is sent, then its end. Other exec params (env, cwd, uid, gid, tty,
        main) go as given."""
        return Attached(self.path, self.timeout, argv, stdin, params)


class Attached:
    """One exec with "attach": true (see Client.exec_attach)."""

    def __init__(self, path, timeout, argv, stdin, params):
        self.stream = _Stream(path, timeout)
        self.pid = None
        self.status = None
        self.error = None
        request = dict(params, argv=list(argv), attach=True)
        msg = {"jsonrpc": "2.0", "id": 1, "method": "exec", "params": request}
        self.stream.send(json.dumps(msg).encode() + b"\n")
        line = self.stream.readline()
        if line is None:
            self.stream.close()
            raise ProtocolError("the server closed the connection instead of replying to exec")
        reply = json.loads(line)
        if "error" in reply:
            self.stream.close()
            raise ApiError(reply["error"].get("code"), reply["error"].get("message"))
        self.id = reply["result"]["id"]
        # stdin in one go: small inputs only (a big one would need a writer thread, since
        # the guest stops reading stdin the command does not read).
        for off in range(0, len(stdin), FRAME_DATA_MAX):
            self._send_frame(FRAME_STDIN, stdin[off : off + FRAME_DATA_MAX])
        self._send_frame(FRAME_STDIN_EOF, b"")

    def _send_frame(self, ftype, payload):
        self.stream.send(FRAME_HEADER.pack(ftype, len(payload)) + payload)

    def signal(self, signo):
        """Sends a signal to the command's process group."""
        self._send_frame(FRAME_SIGNAL, struct.pack("<I", signo))

    def __iter__(self):
        try:
            while True:
                header = self.stream.read_exact(FRAME_HEADER.size)
                if header is None:
                    raise ProtocolError("the connection closed before EXIT")
                ftype, length = FRAME_HEADER.unpack(header)
                if length > FRAME_DATA_MAX:
                    raise ProtocolError(f"frame {ftype} of {length} bytes")
                payload = self.stream.read_exact(length)
                if payload is None:
                    raise ProtocolError("the connection closed inside a frame")
                if ftype == FRAME_STARTED and length == 4:
                    self.pid = struct.unpack("<I", payload)[0]
                elif ftype == FRAME_STDOUT:
                    yield "stdout", payload
                elif ftype == FRAME_STDERR:
                    yield "stderr", payload
                elif ftype == FRAME_EXIT and length == 4:
                    self.status = struct.unpack("<I", payload)[0]
                    return
                elif ftype == FRAME_ERROR:
                    self.error = payload.decode(errors="replace")
                    raise ProtocolError(f"exec failed: {self.error}")
                else:
                    raise ProtocolError(f"unexpected frame type {ftype} ({length} bytes)")
        finally:
            self.stream.close()


# --- the orchestration -------------------------------------------------------------------

# Per sandbox: the attached command, its stdin, and exactly what it must give; then the
# command run without attach and the status its exec.exit event must carry.
PLAN = [
    {
        "name": "alpha",
        "argv": ["sh", "-c", "seq 1 3; uname -s"],
        "stdin": b"",
        "stdout": b"1\n2\n3\nLinux\n",
        "stderr": b"",
        "status": 0,
        "detached": ["sh", "-c", "exit 10"],
        "detached_status": 10,
    },
    {
        "name": "beta",
        "argv": ["sh", "-c", "echo to stderr >&2; echo beta; exit 3"],
        "stdin": b"",
        "stdout": b"beta\n",
        "stderr": b"to stderr\n",
        "status": 3,
        "detached": ["sh", "-c", "exit 11"],
        "detached_status": 11,
    },
    {
        "name": "gamma",
        "argv": ["tr", "a-z", "A-Z"],
        "stdin": b"hello from the host\n",
        "stdout": b"HELLO FROM THE HOST\n",
        "stderr": b"",
        "status": 0,
        "detached": ["sh", "-c", "kill -TERM $$"],
        "detached_status": 143,
    },
]

print_lock = threading.Lock()


def say(text):
    with print_lock:
        print(text, flush=True)


def wait_for_socket(path, proc, seconds):
    """A Client on path once the VMM listens there; None if the VMM ended or time ran out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            return Client(path)
        except OSError:
            time.sleep(0.05)
    return None


def stream_attached(box, results):
    """Runs the sandbox's attached command, printing its output behind its name."""
    got = {"stdout": bytearray(), "stderr": bytearray()}
    partial = {"stdout": b"", "stderr": b""}
    try:
        run = box["client"].exec_attach(box["argv"], stdin=box["stdin"])
        for stream, data in run:
            got[stream] += data
            lines = (partial[stream] + data).split(b"\n")
            partial[stream] = lines.pop()
            mark = "|" if stream == "stdout" else "!"
            for line in lines:
                say(f"{box['label']:>5} {mark} {line.decode(errors='replace')}")
        for stream, rest in partial.items():
            if rest:
                say(f"{box['label']:>5} {'|' if stream == 'stdout' else '!'} {rest.decode(errors='replace')}")
        results[box["name"]] = (bytes(got["stdout"]), bytes(got["stderr"]), run.status, None)
    except (OSError, ApiError, ProtocolError, ValueError, KeyError) as e:
        results[box["name"]] = (bytes(got["stdout"]), bytes(got["stderr"]), None, str(e))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clawvm", nargs="?", default=os.environ.get("CLAWVM") or "clawvm")
    parser.add_argument("--memory", type=int, default=128, help="guest MiB (default 128)")
    args = parser.parse_args()
    clawvm = shutil.which(args.clawvm) or args.clawvm

    failures = []

    def expect(what, got, want):
        if got == want:
            say(f"ok: {what}")
        else:
            failures.append(what)
            say(f"FAILED: {what}: got {got!r}, want {want!r}")

    work = tempfile.mkdtemp(prefix="clawvm-orchestrator.")
    tag = f"orch{os.getpid()}"
    boxes = []
    try:
        for plan in PLAN:
            box = dict(plan)
            box["label"] = plan["name"]
            box["name"] = f"{tag}-{plan['name']}"
            box["sock"] = os.path.join(work, f"{plan['name']}.sock")
            box["log"] = open(os.path.join(work, f"{plan['name']}.log"), "wb")
            box["proc"] = subprocess.Popen(
                [clawvm, "vmm", "--name", box["name"], "--api-sock", box["sock"]],
                stdin=subprocess.DEVNULL, stdout=box["log"], stderr=subprocess.STDOUT)
            boxes.append(box)

        for box in boxes:
            box["client"] = wait_for_socket(box["sock"], box["proc"], 60)
            if box["client"] is None:
                raise ProtocolError(f"{box['name']}: the VMM did not listen on {box['sock']}")
            c = box["client"]
            c.call("set_machine", {"vcpus": 1, "memory_mib": args.memory})
            c.call("subscribe", {"events": ["ready", "exec.exit", "exit", "error"]})
            c.call("start")
            box["started"] = time.monotonic()
        for box in boxes:
            ready = box["client"].wait_event("ready")
            say(f"{box['name']}: ready after {ready.get('ms')} ms")
            expect(f"{box['name']}: describe says running",
                   box["client"].call("describe").get("state"), "running")

        # The attached commands, all three at once.
        results = {}
        threads = [threading.Thread(target=stream_attached, args=(box, results)) for box in boxes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for box in boxes:
            out, err, status, error = results[box["name"]]
            expect(f"{box['name']}: attached {box['argv']!r} gives no error", error, None)
            expect(f"{box['name']}: stdout", out, box["stdout"])
            expect(f"{box['name']}: stderr", err, box["stderr"])
            expect(f"{box['name']}: exit status", status, box["status"])

        # One exec each without attach: the status arrives as an exec.exit event.
        for box in boxes:
            box["detached_id"] = box["client"].call("exec", {"argv": box["detached"]})["id"]
        for box in boxes:
            ev = box["client"].wait_event("exec.exit", lambda p, i=box["detached_id"]: p.get("id") == i)
            expect(f"{box['name']}: exec.exit of {box['detached']!r}", ev.get("status"), box["detached_status"])

        for box in boxes:
            box["client"].call("stop", {"timeout_ms": 5000})
        for box in boxes:
            ev = box["client"].wait_event("exit")
            # Stopped as by SIGTERM: 128 + 15.
            expect(f"{box['name']}: exit event", (ev.get("reason"), ev.get("status")), ("stopped", 143))
            box["client"].close()
        for box in boxes:
            try:
                code = box["proc"].wait(timeout=30)
            except subprocess.TimeoutExpired:
                code = "still running 30 s after its exit event"
            expect(f"{box['name']}: the VMM process exits with the sandbox's status", code, 143)
    except (OSError, ApiError, ProtocolError, ValueError, KeyError) as e:
        failures.append(str(e))
        say(f"FAILED: {type(e).__name__}: {e}")
    finally:
        for box in boxes:
            if box["proc"].poll() is None:
                box["proc"].kill()
                box["proc"].wait()
            box["log"].close()
        if failures:
            for box in boxes:
                with open(box["log"].name, "rb") as log:
                    text = log.read().decode(errors="replace").strip()
                if text:
                    print(f"{box['name']}'s VMM said:\n{text}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    if failures:
        say(f"summary: {len(failures)} failed: " + "; ".join(failures))
        return 1
    say(f"summary: {len(boxes)} sandboxes, every output, status and event as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
