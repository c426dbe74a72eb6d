#!/usr/bin/env python3
"""Runs Claude Code in a clawvm sandbox through the control API (api/control.md): what
`clawvm run --agent claude -v WORKSPACE:/workspace -- ARG...` does, step by step, for an
orchestrator that drives sandboxes itself. Python's standard library only; the Client
class comes from orchestrator.py beside this file.

    api/examples/agent.py [--clawvm PATH] [--workspace DIR] [--api-host HOST[:PORT]]
                          [--allow SPEC]... [--ca-file FILE] [--audit-log FILE]
                          [--name NAME] -- ARG...

  1. the claude image's root, from `clawvm image ls --json` (clawvm image build claude);
  2. `clawvm vmm --name NAME --api-sock SOCK`, as root with --jail-user set to the
     workspace's owner, so that what the agent writes there is that user's;
  3. set_machine (1024 MiB), set_boot (the image as the root), add_share (the workspace at
     /workspace), set_exec_defaults (the image's agent user 1000:1000, /workspace, HOME and
     Claude Code's settings), set_egress (the model API as a secret read from the host's
     ANTHROPIC_API_KEY: the key never enters the sandbox; nothing else allowed but --allow);
  4. subscribe, start, wait for `ready`; exec `claude ARG...` attached, its output printed
     as it comes; then stop, and wait for the `exit` event and the VMM.
Exit status: claude's, or 1 if the sandbox could not run it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ beside the examples
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchestrator import ApiError, ProtocolError, wait_for_socket  # noqa: E402

CLAUDE_ENV = [
    "HOME=/home/agent",
    # Without it Claude Code calls its vendor's API host itself, whatever
    # ANTHROPIC_BASE_URL says (tests/agent/mock_anthropic.py).
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    "DISABLE_TELEMETRY=1",
    "DISABLE_ERROR_REPORTING=1",
    "DISABLE_AUTOUPDATER=1",
]


def image_root(clawvm):
    out = subprocess.run([clawvm, "image", "ls", "--json"], capture_output=True, text=True,
                         check=True).stdout
    for image in json.loads(out):
        if image["image"] == "claude" and image["current"]:
            return image["root"]
    raise SystemExit("agent.py: no claude image: run clawvm image build claude")


def main():
    parser = argparse.ArgumentParser(description="Claude Code in a clawvm sandbox, through the API.")
    parser.add_argument("--clawvm", default=os.environ.get("CLAWVM", "clawvm"))
    parser.add_argument("--workspace", default=".")
    parser.add_argument("--api-host", default="api.anthropic.com",
                        help="the model API's HOST[:PORT] (default api.anthropic.com)")
    parser.add_argument("--allow", action="append", default=[])
    parser.add_argument("--ca-file")
    parser.add_argument("--audit-log")
    parser.add_argument("--name", default=f"agent-{os.getpid()}")
    parser.add_argument("args", nargs="*", help="claude's arguments (after --)")
    opts = parser.parse_args()
    workspace = os.path.abspath(opts.workspace)

    root = image_root(opts.clawvm)
    vmm = [opts.clawvm, "vmm", "--name", opts.name]
    st = os.stat(workspace)
    if os.geteuid() == 0 and st.st_uid != 0:
        vmm += ["--jail-user", f"{st.st_uid}:{st.st_gid}"]
    tmp = tempfile.mkdtemp(prefix="clawvm-agent-")
    sock = os.path.join(tmp, "api.sock")
    proc = subprocess.Popen(vmm + ["--api-sock", sock])
    status = 1
    try:
        c = wait_for_socket(sock, proc, 30)
        if c is None:
            raise SystemExit("agent.py: the VMM did not start")
        c.call("set_machine", {"memory_mib": 1024})
        c.call("set_boot", {"rootfs": root})
        c.call("add_share", {"host": workspace, "guest": "/workspace"})
        c.call("set_exec_defaults", {"env": CLAUDE_ENV, "uid": 1000, "gid": 1000,
                                     "cwd": "/workspace"})
        egress = {"allow": opts.allow,
                  "secrets": [f"ANTHROPIC=env:ANTHROPIC_API_KEY@{opts.api_host}"]}
        if opts.ca_file:
            egress["ca_file"] = os.path.abspath(opts.ca_file)
        if opts.audit_log:
            egress["audit_log"] = os.path.abspath(opts.audit_log)
        c.call("set_egress", egress)
        c.call("subscribe", {"events": ["ready", "exit"]})
        c.call("start")
        c.wait_event("ready")
        run = c.exec_attach(["claude"] + opts.args)
        for stream, data in run:
            (sys.stdout if stream == "stdout" else sys.stderr).buffer.write(data)
            (sys.stdout if stream == "stdout" else sys.stderr).flush()
        status = run.status
        c.call("stop", {"timeout_ms": 5000})
        c.wait_event("exit")
    except (ApiError, ProtocolError, OSError) as e:
        print(f"agent.py: {e}", file=sys.stderr)
        proc.terminate()
    finally:
        proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
