#!/usr/bin/env python3
"""The control API server against hostile and many clients, without a guest.

Runs `clawvm vmm` (the sanitized build under the unit suite) and drives its socket in the
state `configured`, where no KVM is needed: every pre-boot method's validation, the error
codes and messages of api/control.md, malformed JSON, a 10 MiB line, 300 connections at
once (256 served, the rest refused with code 5), clients that vanish mid-line or never
read, a notification, `start` failing for want of a kernel file (code 3), then `stop`
ending the VMM with status 143 and its socket and sandbox directory gone. TAP output.
Usage: server_local.py CLAWVM
"""
import atexit
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

clawvm = sys.argv[1]
results = []


def check(name, cond, detail=""):
    results.append(cond)
    print(("ok" if cond else "not ok") + " - " + name + ("" if cond else "  # " + detail))
    sys.stdout.flush()


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)  # blocking: a full backlog waits, as a client would
        self.sock.settimeout(20)
        self.buf = b""
        self.next_id = 1

    def send_line(self, data):
        self.sock.sendall(data + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        req = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        self.next_id += 1
        if params is not None:
            req["params"] = params
        self.send_line(json.dumps(req).encode())
        while True:
            reply = self.line()
            if reply is None or "id" in reply:
                return reply

    def close(self):
        self.sock.close()


def error_of(reply):
    return (reply or {}).get("error", {})


work = tempfile.mkdtemp(prefix="clawvm-api-")
os.chmod(work, 0o700)
env = dict(os.environ, CLAWVM_RUNTIME_DIR=os.path.join(work, "run"))
# No kernel anywhere: `start` must fail cleanly (code 3), on any machine.
env["CLAWVM_KERNEL"] = os.path.join(work, "no-kernel")
sock_path = os.path.join(work, "api.sock")
vmm = subprocess.Popen([clawvm, "vmm", "--name", "apitest", "--api-sock", sock_path],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
atexit.register(lambda: vmm.poll() is None and vmm.kill())
for _ in range(200):
    if os.path.exists(sock_path):
        break
    time.sleep(0.05)
check("the API socket appears", os.path.exists(sock_path))
st = os.stat(sock_path)
check("the socket is mode 0600", stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode))
rundir = os.path.join(work, "run", "apitest")
check("the sandbox directory is mode 0700",
      stat.S_IMODE(os.stat(rundir).st_mode) == 0o700)
check("its api.sock links to the socket", os.readlink(os.path.join(rundir, "api.sock")) ==
      os.path.realpath(sock_path))

c = Client(sock_path)
d = c.call("describe")["result"]
check("describe: protocol 1, state configured, name, pid",
      d["protocol"] == 1 and d["state"] == "configured" and d["name"] == "apitest" and
      d["pid"] == vmm.pid, json.dumps(d))

# Validation, through the same setters as clawvm run's flags.
r = c.call("set_machine", {"memory_mib": 12})
check("memory_mib 12 refused with -32602 and the range",
      error_of(r).get("code") == -32602 and
      error_of(r).get("message", "").startswith("memory_mib must be between 64 and ") and
      error_of(r).get("message", "").endswith(", got 12"), json.dumps(r))
r = c.call("set_machine", {"vcpus": 33})
check("vcpus 33 refused", error_of(r).get("message") == "vcpus must be between 1 and 32, got 33",
      json.dumps(r))
r = c.call("set_machine", {"pids": 3})
check("pids 3 refused", error_of(r).get("message") == "pids must be between 16 and 65536, got 3",
      json.dumps(r))
r = c.call("set_machine", {"vcpus": 2, "memory_mib": 128, "pids": 40})
check("set_machine 2 vCPUs, 128 MiB, 40 tasks", r.get("result") == {}, json.dumps(r))
d = c.call("describe")["result"]
check("describe shows them", d["config"]["vcpus"] == 2 and d["config"]["memory_mib"] == 128
      and d["config"]["pids"] == 40)
r = c.call("add_share", {"host": "/nonexistent-dir", "guest": "/w"})
check("add_share of a missing directory refused", error_of(r).get("code") == -32602 and
      "No such file or directory" in error_of(r).get("message", ""), json.dumps(r))
r = c.call("add_share", {"host": work, "guest": "/proc/x"})
check("add_share under /proc refused", error_of(r).get("code") == -32602 and
      "/proc belongs to the guest kernel" in error_of(r).get("message", ""), json.dumps(r))
r = c.call("add_share", {"host": work, "guest": "/w/../etc"})
check("add_share with .. refused", error_of(r).get("code") == -32602, json.dumps(r))
r = c.call("add_share", {"host": work, "guest": "/w", "read_only": True})
check("add_share accepted", r.get("result") == {}, json.dumps(r))
r = c.call("set_exec_defaults", {"env": ["A=1", "B=2"], "uid": 1000, "cwd": "/tmp"})
check("set_exec_defaults accepted", r.get("result") == {}, json.dumps(r))
r = c.call("set_exec_defaults", {"env": ["=x"]})
check("env =x refused", error_of(r).get("code") == -32602, json.dumps(r))
r = c.call("set_vsock", {"cid": 2})
check("cid 2 refused", error_of(r).get("message") == "cid must be between 3 and 4294967294, got 2",
      json.dumps(r))
r = c.call("set_boot", {"kernel": "/nonexistent"})
check("a missing kernel file refused", error_of(r).get("code") == -32602 and
      "No such file or directory" in error_of(r).get("message", ""), json.dumps(r))
d = c.call("describe")["result"]
check("describe shows the share and the defaults",
      d["config"]["shares"][0]["guest"] == "/w" and d["config"]["shares"][0]["read_only"] and
      d["config"]["exec_defaults"]["env"] == ["A=1", "B=2"] and
      d["config"]["exec_defaults"]["uid"] == 1000, json.dumps(d))

# Wrong states.
for method, params in (("pause", None), ("resume", None), ("exec", {"argv": ["true"]}),
                       ("signal", {"signal": "TERM"})):
    r = c.call(method, params)
    check(method + " in state configured: code 1", error_of(r).get("code") == 1, json.dumps(r))

# Protocol errors.
c.send_line(b"this is not json")
r = c.line()
check("garbage: -32700, id null", error_of(r).get("code") == -32700 and r.get("id") is None,
      json.dumps(r))
c.send_line(b'[{"jsonrpc":"2.0","id":1,"method":"describe"}]')
check("a batch: -32600", error_of(c.line()).get("code") == -32600)
c.send_line(b'{"jsonrpc":"2.0","id":7,"method":"strat"}')
r = c.line()
check("unknown method: -32601, did you mean start", error_of(r).get("code") == -32601 and
      "start" in error_of(r).get("message", "") and r.get("id") == 7, json.dumps(r))
c.send_line(b'{"jsonrpc":"2.0","id":"s","method":"set_machine","params":{"vcpus":"2"}}')
r = c.line()
check("wrong type: -32602, string id echoed", error_of(r).get("code") == -32602 and
      r.get("id") == "s", json.dumps(r))
c.send_line(b'{"jsonrpc":"2.0","method":"describe"}')  # a notification: no answer
r = c.call("describe")
check("a notification gets no reply (the next reply is the next request's)",
      r.get("id") == c.next_id - 1 and "result" in r, json.dumps(r))

# A client that sends 20000 requests (over 1 MiB of them) before it reads a reply: each is
# answered in order, none taken for an over-long line (requests are not read ahead of
# their turn).
pipe = Client(sock_path)
n_pipe = 20000
sender = threading.Thread(target=lambda: pipe.sock.sendall(b"".join(
    b'{"jsonrpc":"2.0","id":%d,"method":"describe"}\n' % i for i in range(n_pipe))))
sender.start()
time.sleep(1)  # the server has a whole buffer of requests before the first read
ids = []
try:
    while len(ids) < n_pipe:
        r = pipe.line()
        if r is None or "result" not in r:
            break
        ids.append(r["id"])
except (OSError, ValueError) as e:
    r = str(e)
sender.join()
pipe.close()
check("20000 pipelined requests (1 MiB): all answered in order",
      ids == list(range(n_pipe)), "%d answered, then %s" % (len(ids), json.dumps(r)))

# A 10 MiB line: one error, then the connection is closed; the server goes on.
big = Client(sock_path)
try:
    big.sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"describe","params":{"x":"' +
                     b"a" * (10 * 1024 * 1024))
except (BrokenPipeError, ConnectionResetError):
    pass
r = None
try:
    r = big.line()
except (ConnectionResetError, OSError):
    pass
check("a 10 MiB line: -32600 request line over 1 MiB",
      error_of(r).get("code") == -32600 and "1 MiB" in error_of(r).get("message", ""),
      json.dumps(r))
try:
    closed = big.line() is None
except (ConnectionResetError, OSError):
    closed = True
check("... and the connection is closed", closed)

# Clients that vanish mid-line, or send and never read.
for _ in range(20):
    v = Client(sock_path)
    v.sock.sendall(b'{"jsonrpc":"2.0","id":1,"meth')
    v.close()
deaf = []
for _ in range(5):
    v = Client(sock_path)
    v.sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"describe"}\n' * 3000)
    deaf.append(v)

# 300 at once: 256 connections served (one is `c`), the rest refused with code 5.
many, refused = [], 0
for _ in range(300):
    m = Client(sock_path)
    many.append(m)
served = 0
for m in many:
    try:
        r = m.call("describe")
    except (ConnectionResetError, OSError):
        # Refused: the error line came before the close that broke our send.
        try:
            r = m.line()
        except (ConnectionResetError, OSError, ValueError):
            r = None
    if r and r.get("result", {}).get("name") == "apitest":
        served += 1
    elif r and error_of(r).get("code") == 5:
        refused += 1
for m in many:
    m.close()
# The deaf clients hold their slots until they are dropped (a full output buffer): count
# what the others got.
check("300 more clients: each served or refused with code 5 (%d served, %d refused)" %
      (served, refused), served + refused == 300 and served >= 200 and refused >= 44,
      "%d + %d" % (served, refused))
for v in deaf:
    v.close()
r = c.call("describe")
check("the first client is still served after all that", r.get("result", {}).get("state") ==
      "configured", json.dumps(r))

# start without a kernel: code 3, still configured.
r = c.call("start")
check("start without a kernel: code 3 naming the file",
      error_of(r).get("code") == 3 and "no-kernel" in error_of(r).get("message", ""),
      json.dumps(r))
check("still configured", c.call("describe")["result"]["state"] == "configured")

# Events: subscribe, then stop: exit with reason stopped, 143; the VMM exits 143.
r = c.call("subscribe", {"events": ["exit"]})
check("subscribe", r.get("result") == {}, json.dumps(r))
r = c.call("stop")
check("stop in state configured", r.get("result") == {}, json.dumps(r))
ev = c.line()
check("exit event: stopped, 143", ev and ev.get("method") == "exit" and
      ev["params"]["reason"] == "stopped" and ev["params"]["status"] == 143, json.dumps(ev))
c.close()
try:
    status = vmm.wait(timeout=20)
except subprocess.TimeoutExpired:
    vmm.kill()
    status = None
err = vmm.stderr.read().decode(errors="replace")
check("the VMM exits 143", status == 143, "status %s, stderr %s" % (status, err))
check("no sanitizer report", "Sanitizer" not in err and "runtime error" not in err, err)
check("socket and sandbox directory removed",
      not os.path.exists(sock_path) and not os.path.exists(rundir))

failed = results.count(False)
print("%d passed, %d failed" % (len(results) - failed, failed))
sys.exit(1 if failed else 0)
