"""A webhook receiver on loopback for tests: records what it got, answers as told."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.wait import scaled


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, tls: ssl.SSLContext | None):
        self.tls = tls
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        pass  # a client refusing the certificate, or hanging up mid-answer: what tests do

    def get_request(self):
        conn, peer = super().get_request()
        if self.tls is not None:  # the handshake runs in the handler's thread, on first read
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, peer


class Receiver:
    """`status` may be a list: the answers in turn, the last one repeated.

    `hold`: an Event each request waits on (at most `hold_timeout` s) before answering.
    `respond(handler)`: writes the whole answer itself (trickles, floods, broken HTTP).
    `host`/`port`: where to listen (any loopback address, IPv6 included); `tls`: a server
    SSLContext, making it an https receiver."""

    def __init__(
        self,
        status=204,
        delay=0.0,
        location=None,
        host="127.0.0.1",
        port=0,
        hold=None,
        hold_timeout=120.0,
        respond=None,
        tls=None,
    ):
        self.status, self.delay, self.location = status, delay, location
        self.hold, self.hold_timeout, self.respond = hold, hold_timeout, respond
        self.received: list[tuple[dict, bytes]] = []
        self.times: list[float] = []  # time.time() of each arrival
        self.paths: list[str] = []
        self.in_flight = 0
        self.peak = 0  # most requests in progress at once
        self.connections = 0  # TCP connections accepted, whatever came over them
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self):
                with receiver._lock:
                    receiver.connections += 1
                super().setup()

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.received.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    receiver.times.append(time.time())
                    receiver.paths.append(self.path)
                    receiver.in_flight += 1
                    receiver.peak = max(receiver.peak, receiver.in_flight)
                    count = len(receiver.received)
                try:
                    time.sleep(receiver.delay)
                    if receiver.hold is not None:
                        receiver.hold.wait(scaled(receiver.hold_timeout))
                    if receiver.respond is not None:
                        receiver.respond(self)
                        self.close_connection = True
                        return
                    answers = (
                        receiver.status if isinstance(receiver.status, list) else [receiver.status]
                    )
                    self.send_response(answers[min(count, len(answers)) - 1])
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender hung up: what some tests want
                    self.close_connection = True
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def log_message(self, *args):
                pass

        self.server = _Server((host, port), Handler, tls)
        self.port = self.server.server_port
        scheme = "https" if tls is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
