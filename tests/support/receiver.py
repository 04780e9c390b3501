"""A webhook receiver on loopback for tests: records what it got, answers as told."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """`status` may be a list: the answers in turn, the last one repeated."""

    def __init__(self, status=204, delay=0.0, location=None):
        self.status, self.delay, self.location = status, delay, location
        self.received: list[tuple[dict, bytes]] = []
        self.times: list[float] = []  # time.time() of each arrival
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.times.append(time.time())
                time.sleep(receiver.delay)
                answers = (
                    receiver.status if isinstance(receiver.status, list) else [receiver.status]
                )
                self.send_response(answers[min(len(receiver.received), len(answers)) - 1])
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
