"""Real receivers on loopback for Apprise: an HTTP endpoint for json:// and an
SMTP server (aiosmtpd) for mailto://. They record what arrives and can fail."""
from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


class JsonReceiver:
    def __init__(self):
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.failures_left = 0  # answer 500 to this many requests
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    if receiver.failures_left > 0:
                        receiver.failures_left -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    payload = json.loads(body)
                    payload["path"] = self.path
                    receiver.received.append(payload)
                    receiver.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["path"] == path]

    def close(self):
        self.server.shutdown()


class SmtpReceiver:
    def __init__(self):
        self.messages: list = []
        self.rejecting = False  # answer 554 to every message
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if receiver.rejecting:
                    return "554 Transaction failed"
                message = message_from_bytes(envelope.content, policy=email_policy)
                receiver.messages.append((envelope.rcpt_tos, message))
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def texts(self) -> list[tuple[list[str], str, str]]:
        out = []
        for rcpts, message in self.messages:
            part = message.get_body(preferencelist=("plain", "html"))
            out.append((rcpts, str(message["subject"]), part.get_content() if part else ""))
        return out

    def close(self):
        try:
            self.controller.stop()
        except AssertionError:  # already stopped by the test
            pass


def apprise_yaml(json_port: int, smtp_port: int, secret: str) -> str:
    return f"""\
version: 1
urls:
  - json://relay:{secret}@127.0.0.1:{json_port}/ice:
      - tag: ice
  - mailto://127.0.0.1:{smtp_port}?from=custody@jail.example&to=desk@jail.example&secure=no:
      - tag: release-desk
  - json://127.0.0.1:{json_port}/supervisors:
      - tag: supervisors
  - json://127.0.0.1:{json_port}/sheriff:
      - tag: sheriff
  - json://127.0.0.1:{json_port}/wso:
      - tag: wso
  - json://127.0.0.1:{json_port}/records:
      - tag: records
"""
