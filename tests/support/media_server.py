"""A web server of the test's own on loopback for imports by URL: it serves a file and
misbehaves on request (redirects, trickles, lies about lengths, never ends, 404, HTML)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        pass  # a fetcher that hangs up mid-body: what the tests want


class MediaServer:
    """Paths: `/video.mp4` (the file, with Content-Length), `/chunked.mp4` (the file, chunked),
    `/endless` (a chunked body that never ends, starting like an MP4), `/trickle` (one byte a
    second), `/lying` (Content-Length `claim` while sending the whole file), `/short` (claims
    more than it sends, then closes), `/missing` (404), `/page.html` (an HTML page),
    `/redirect?to=URL` (302 there), `/hops/N` (N redirects in a row to /video.mp4),
    `/slow.mp4` (the file at `rate` bytes a second)."""

    def __init__(self, video: str | Path, host: str = "127.0.0.1", port: int = 0, rate: int = 0):
        self.video = Path(video).read_bytes()
        self.rate = rate
        self.requests: list[str] = []
        self.claim = 1024
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with server._lock:
                    server.requests.append(self.path)
                parts = urlsplit(self.path)
                path = parts.path
                try:
                    if path == "/video.mp4" or path.endswith("/video.mp4"):
                        self._send(200, server.video, "video/mp4")
                    elif path == "/chunked.mp4":
                        self._chunked(
                            [
                                server.video[i : i + 65536]
                                for i in range(0, len(server.video), 65536)
                            ]
                        )
                    elif path == "/endless":
                        self._chunked(
                            itertools.chain([server.video[:65536]], itertools.repeat(b"\0" * 65536))
                        )
                    elif path == "/trickle":
                        self.send_response(200)
                        self.send_header("Content-Type", "video/mp4")
                        self.send_header("Content-Length", str(len(server.video)))
                        self.end_headers()
                        for byte in server.video:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(1.0)
                    elif path == "/lying":
                        self.send_response(200)
                        self.send_header("Content-Type", "video/mp4")
                        self.send_header("Content-Length", str(server.claim))
                        self.end_headers()
                        self.wfile.write(server.video)
                        self.close_connection = True
                    elif path == "/short":
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(server.video) * 2))
                        self.end_headers()
                        self.wfile.write(server.video)
                        self.close_connection = True
                    elif path == "/slow.mp4":
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(server.video)))
                        self.end_headers()
                        step = max(1, server.rate // 10)
                        for i in range(0, len(server.video), step):
                            self.wfile.write(server.video[i : i + step])
                            self.wfile.flush()
                            time.sleep(0.1)
                    elif path == "/missing":
                        self._send(404, b"not here", "text/plain")
                    elif path == "/page.html":
                        page = (
                            b"<!doctype html><html><body>"
                            + b"<p>not a video</p>" * 400
                            + b"</body></html>"
                        )
                        self._send(200, page, "text/html")
                    elif path == "/redirect":
                        target = parse_qs(parts.query)["to"][0]
                        self._redirect(target)
                    elif path.startswith("/hops/"):
                        left = int(path.rsplit("/", 1)[1])
                        self._redirect(f"/hops/{left - 1}" if left > 1 else "/video.mp4")
                    else:
                        self._send(404, b"unknown", "text/plain")
                except OSError:
                    self.close_connection = True

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location):
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _chunked(self, pieces):
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in pieces:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args):
                pass

        self.server = _Server((host, port), Handler)
        self.host = host
        self.port = self.server.server_port
        shown = f"[{host}]" if ":" in host else host
        self.base = f"http://{shown}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "MediaServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
