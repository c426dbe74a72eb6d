#!/usr/bin/env python3
"""The egress suite's upstreams, on the test host: a plain HTTP file server, the same over
HTTPS (a test CA's certificate), and a mock of a model API over HTTPS that records the
credential headers it is sent (to a file the guest cannot see) and answers with JSON.

usage: servers.py ADDR DIR CERT KEY HEADERS_LOG
  serves DIR on ADDR:8080 (HTTP) and ADDR:8443 (HTTPS); the mock on ADDR:9443 (HTTPS).
Prints "ready" once all three listen."""
import http.server
import json
import ssl
import sys
import threading

addr, root, cert, key, headers_log = sys.argv[1:6]


class Files(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=root, **kwargs)

    def log_message(self, *args):
        pass


class ModelAPI(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(headers_log, "a") as f:
            f.write(json.dumps({"path": self.path,
                                "x-api-key": self.headers.get("x-api-key"),
                                "authorization": self.headers.get("authorization"),
                                "host": self.headers.get("host"),
                                "body": body.decode("utf-8", "replace")}) + "\n")
        reply = json.dumps({"type": "message", "content": [{"type": "text", "text": "pong"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())


def serve(port, handler, tls):
    server = http.server.ThreadingHTTPServer((addr, port), handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


serve(8080, Files, False)
serve(8443, Files, True)
serve(9443, ModelAPI, True)
print("ready", flush=True)
threading.Event().wait()
