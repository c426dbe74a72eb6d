#!/usr/bin/env python3
"""A mock of the Anthropic Messages API that the real Claude Code CLI completes a task against:
the agent tests point `claude -p` at it and check that the file it asked for appears with the
exact content, that the key it saw is the one the broker injected, and that the tool ran.

The conversation, decided from each request alone (so retries and two agents at once work):
  - a request offering tools whose last message holds no tool_result: one assistant turn
    calling the Write tool with --write-path and --write-content;
  - a request whose last message holds a tool_result: a final text turn (--final-text, or a
    "mock: the tool call failed: ..." text when the result is an error), ending the task;
  - a request offering no tools (a side query): a short text turn.
Streamed as server-sent events when the request sets "stream": true, else one JSON message.
Every request, to any path, becomes one JSON line in LOG: method, path, host, the x-api-key,
authorization, anthropic-version and anthropic-beta headers, model, stream, the tool names
offered, what the mock answered, and the tool_result it was sent if any.

usage: mock_anthropic.py ADDR:PORT LOG (--cert CERT --key KEY | --plain-http)
                         [--write-path PATH] [--write-content TEXT] [--final-text TEXT]
                         [--port-file FILE] [--hold-file FILE]
  PORT 0 takes a free port, written to --port-file. Prints "ready" once listening.
  Python 3 standard library only.

Tested with Claude Code 2.1.197 (npm package @anthropic-ai/claude-code: its bin/claude.exe is
the native linux-x64 binary of the optional dependency @anthropic-ai/claude-code-linux-x64,
linked in place by its postinstall; built with Bun, it needs no Node.js to run). This works,
as a non-root user, with a fresh HOME, in the directory the file is written to (try-mock):
  cd WORK && env -i PATH=/usr/bin:/bin HOME=FRESH_HOME \
    ANTHROPIC_BASE_URL=https://127.0.0.1:PORT ANTHROPIC_API_KEY=sk-test-123 \
    NODE_EXTRA_CA_CERTS=ca.pem DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    claude -p "write hello" --permission-mode acceptEdits
  prints the final text, exits 0, about 2.5-4.5 s a run here. The permission flags in -p mode:
  --permission-mode acceptEdits   writes inside the working directory only
  --allowedTools Write            writes anywhere
  --dangerously-skip-permissions  writes anywhere; refused when run as root
  none of them                    the Write is refused; its error tool_result gets the
                                  "mock: the tool call failed: ..." text and claude still
                                  exits 0, so a test checks the file and the text too.
  Without NODE_EXTRA_CA_CERTS it checks the certificate after the handshake, closes, and
  retries for minutes (the mock says so on stderr for each such connection).
What 2.1.197 calls, all on ANTHROPIC_BASE_URL:
  HEAD /                        a connection warm-up at start-up; answered 200, empty
  POST /v1/messages?beta=true   each turn, "stream": true, tools Write and 23 others; after a
                                streamed request answered 404 it sends the same turn again
                                without "stream" (answered as one JSON message: tried too)
  GET /v1/models, POST /v1/messages/count_tokens: not called; answered in case a version does
  anything else: a 404 in the API's error format, logged
Headers: x-api-key (no authorization), anthropic-version 2023-06-01, anthropic-beta (a list
starting claude-code-20250219), model claude-opus-4-8 by default; the mock echoes the model.
Other hosts: none with the environment above (strace -f -e trace=network: no DNS query, no
connect but to the mock). Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 it resolves and
calls api.anthropic.com itself, whatever ANTHROPIC_BASE_URL says, with x-api-key (all but the registry):
POST /api/eval/sdk-..., GET /api/claude_cli/bootstrap, GET /api/claude_code_penguin_mode,
GET /mcp-registry/v0/servers, GET /api/claude_code/organizations/metrics_enabled,
POST /api/event_logging/v2/batch; and it asks the mock for a session title (a request with
no tools, answered "ok").
"""
import argparse
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import uuid

DEFAULT_CONTENT = "hello from the mock model\n"
DEFAULT_FINAL = "Done: the file is written."
WRITE_TOOL = "Write"


def parse_args():
    parser = argparse.ArgumentParser(description="A mock of the Anthropic Messages API.")
    parser.add_argument("listen", help="ADDR:PORT to listen on (PORT 0: a free port)")
    parser.add_argument("log", help="file to append one JSON line per request to")
    parser.add_argument("--cert", help="PEM certificate chain for HTTPS")
    parser.add_argument("--key", help="PEM private key for HTTPS")
    parser.add_argument("--plain-http", action="store_true",
                        help="serve plain HTTP instead (local debugging)")
    parser.add_argument("--write-path", default="/workspace/hello.txt",
                        help="the file the tool call writes (absolute)")
    parser.add_argument("--write-content", default=DEFAULT_CONTENT,
                        help="what the tool call writes into it, exactly")
    parser.add_argument("--final-text", default=DEFAULT_FINAL,
                        help="the text of the last turn, which claude -p prints")
    parser.add_argument("--port-file", help="write the port listened on to this file")
    parser.add_argument("--hold-file",
                        help="answer a tool-call turn only once this file exists (at most "
                             "300 s): keeps agents busy while a test looks at them")
    args = parser.parse_args()
    if args.plain_http == bool(args.cert and args.key):
        parser.error("give either --cert and --key, or --plain-http")
    addr, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit():
        parser.error(f"listen address `{args.listen}` is not ADDR:PORT")
    args.addr, args.port = addr.strip("[]"), int(port)
    return args


def new_id(prefix):
    return prefix + uuid.uuid4().hex[:24]


def text_of(content):
    """The text inside a tool_result's content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def last_tool_result(body):
    """The last tool_result block of the request's last message, or None."""
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1], dict):
        return None
    content = messages[-1].get("content")
    if not isinstance(content, list):
        return None
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return results[-1] if results else None


def last_text(body):
    """The text of the request's last message, to tell side queries apart in the log."""
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1], dict):
        return ""
    return text_of(messages[-1].get("content"))


def plan_turn(body, config):
    """What to answer a /v1/messages request: (kind, content blocks, stop reason, result)."""
    tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
    result = last_tool_result(body)
    if result is not None:
        if result.get("is_error"):
            text = "mock: the tool call failed: " + text_of(result.get("content"))
            return "final_error", [{"type": "text", "text": text}], "end_turn", result
        return "final", [{"type": "text", "text": config.final_text}], "end_turn", result
    if not tools:
        return "side", [{"type": "text", "text": "ok"}], "end_turn", None
    if WRITE_TOOL not in tools:
        text = f"mock: no {WRITE_TOOL} tool among the tools offered"
        return "no_tool", [{"type": "text", "text": text}], "end_turn", None
    call = {"type": "tool_use", "id": new_id("toolu_"), "name": WRITE_TOOL,
            "input": {"file_path": config.write_path, "content": config.write_content}}
    intro = {"type": "text", "text": f"I'll write {config.write_path}."}
    return "tool_use", [intro, call], "tool_use", None


def usage(output_tokens):
    return {"input_tokens": 10, "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def message(model, blocks, stop_reason):
    return {"id": new_id("msg_"), "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage(20)}


def chunks(text, size):
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def stream_events(model, blocks, stop_reason):
    """The server-sent events of one assistant message, in the API's order."""
    start = message(model, [], None)
    start["usage"] = usage(1)
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            empty = {"type": "text", "text": ""}
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": empty}
            for piece in chunks(block["text"], 16):
                yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "text_delta", "text": piece}}
        else:
            empty = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": empty}
            for piece in chunks(json.dumps(block["input"]), 24):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                            "usage": {"output_tokens": 20}}
    yield "message_stop", {"type": "message_stop"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection's thread ends after this
    config = None
    log_lock = threading.Lock()

    def log_message(self, *args):
        pass

    def handle(self):
        self.requests_served = 0
        super().handle()
        if self.requests_served == 0 and isinstance(self.connection, ssl.SSLSocket):
            # Node and Bun check the certificate after the handshake and then just close.
            print(f"mock_anthropic: a TLS connection from {self.client_address[0]} closed "
                  "before any request (did the client refuse the certificate?)",
                  file=sys.stderr, flush=True)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.log_lock, open(self.config.log, "a", encoding="utf-8") as log:
            log.write(line)

    def base_entry(self, body):
        tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        return {"time": round(time.time(), 3), "method": self.command, "path": self.path,
                "host": self.headers.get("Host"),
                "x-api-key": self.headers.get("x-api-key"),
                "authorization": self.headers.get("Authorization"),
                "anthropic-version": self.headers.get("anthropic-version"),
                "anthropic-beta": self.headers.get("anthropic-beta"),
                "user-agent": self.headers.get("User-Agent"),
                "model": body.get("model"), "stream": body.get("stream") is True,
                "tools": tools}

    def send_json(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", new_id("req_"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error_json(self, status, kind, text):
        self.send_json(status, {"type": "error", "error": {"type": kind, "message": text}})

    def send_stream(self, model, blocks, stop_reason):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", new_id("req_"))
        self.end_headers()
        for event, data in stream_events(model, blocks, stop_reason):
            frame = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def handle_any(self):
        self.requests_served += 1
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        entry = self.base_entry(body if isinstance(body, dict) else {})
        path = self.path.split("?", 1)[0].rstrip("/")
        if self.command == "POST" and path == "/v1/messages" and not isinstance(body, dict):
            entry["answer"] = "bad_json"
            self.record(entry)
            self.send_error_json(400, "invalid_request_error", "the body is not a JSON object")
        elif self.command == "POST" and path == "/v1/messages":
            self.answer_messages(body, entry)
        elif self.command == "POST" and path == "/v1/messages/count_tokens":
            entry["answer"] = "count_tokens"
            self.record(entry)
            self.send_json(200, {"input_tokens": max(1, len(raw) // 4)})
        elif self.command == "GET" and path == "/v1/models":
            entry["answer"] = "models"
            self.record(entry)
            model = {"type": "model", "id": "claude-opus-4-8", "display_name": "Mock",
                     "created_at": "2026-01-01T00:00:00Z"}
            self.send_json(200, {"data": [model], "has_more": False,
                                 "first_id": model["id"], "last_id": model["id"]})
        elif self.command == "HEAD" and path == "":
            entry["answer"] = "probe"
            self.record(entry)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            entry["answer"] = "not_found"
            self.record(entry)
            self.send_error_json(404, "not_found_error", f"mock: no {self.command} {path}")

    def answer_messages(self, body, entry):
        kind, blocks, stop_reason, result = plan_turn(body, self.config)
        entry["answer"] = kind
        if result is not None:
            entry["tool_result"] = {"tool_use_id": result.get("tool_use_id"),
                                    "is_error": bool(result.get("is_error")),
                                    "content": text_of(result.get("content"))[:2000]}
        if kind == "side":
            entry["max_tokens"] = body.get("max_tokens")
            entry["prompt"] = last_text(body)[:300]
        if kind == "tool_use":
            entry["tool_use"] = {"name": blocks[-1]["name"], "input": blocks[-1]["input"]}
        self.record(entry)
        if kind == "tool_use" and self.config.hold_file:
            for _ in range(3000):
                if os.path.exists(self.config.hold_file):
                    break
                time.sleep(0.1)
        model = body.get("model") or "claude-opus-4-8"
        if body.get("stream") is True:
            self.send_stream(model, blocks, stop_reason)
        else:
            self.send_json(200, message(model, blocks, stop_reason))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    tls = None

    def __init__(self, addr, port):
        if ":" in addr:
            self.address_family = socket.AF_INET6
        super().__init__((addr, port), Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread: a client that stalls
        # in it holds up no one else.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as err:
                print(f"mock_anthropic: TLS handshake with {client_address[0]}: {err}",
                      file=sys.stderr, flush=True)
                return
        super().finish_request(request, client_address)


def main():
    config = parse_args()
    Handler.config = config
    server = Server(config.addr, config.port)
    if not config.plain_http:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(config.cert, config.key)
        tls.set_alpn_protocols(["http/1.1"])
        server.tls = tls
    port = server.server_address[1]
    if config.port_file:
        with open(config.port_file + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(config.port_file + ".tmp", config.port_file)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
