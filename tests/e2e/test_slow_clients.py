"""Slow and stalled request bodies against the real gunicorn (gthread, one worker of four
threads), over raw sockets: one user holds at most QUOTA_CONCURRENT_UPLOADS threads with
uploads, a body that stops (or trickles) is cut off with 408 after BODY_TIMEOUT_SECONDS,
and meanwhile everyone else, and the health check, is answered."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from tests.support import media
from tests.support.client import login
from tests.support.stack import running_api
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

BODY_TIMEOUT = 6
SETTINGS = {
    "WEB_CONCURRENCY": "1",
    "API_THREADS": "4",
    "QUOTA_CONCURRENT_UPLOADS": "2",
    "BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    "BODY_MIN_RATE": "1000",
    "UPLOAD_RATE_LIMIT": "1000/hour",
}
BOUNDARY = "b0undary"
PREAMBLE = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api(tmp_path_factory.mktemp("slow-clients"), SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def users(api):
    admin = login(api, api.settings.admin_email, api.settings.admin_password)
    tokens = {}
    for name in ("mallory", "bob"):
        email = f"{name}@example.com"
        created = admin.post(
            "/users", json={"name": name, "email": email, "password": "password-1"}
        )
        assert created.status_code == 201, created.text
        tokens[name] = login(api, email, "password-1").session.headers["Authorization"]
    return tokens


def send_head(api, method: str, path: str, headers: dict[str, str], body: bytes) -> socket.socket:
    """A request whose headers and first body bytes are sent, and nothing after them."""
    sock = socket.create_connection(("127.0.0.1", api.settings.api_port), timeout=10)
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return sock


def stalled_upload(api, token: str) -> socket.socket:
    headers = {
        "Authorization": token,
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(10 * 2**20),
    }
    return send_head(api, "POST", "/upload", headers, PREAMBLE + b"\0" * 2048)


def status_of(sock: socket.socket, timeout: float) -> int | None:
    """The status the server answered on sock within timeout, or None."""
    sock.settimeout(timeout)
    received = b""
    try:
        while b"\r\n" not in received:
            chunk = sock.recv(1024)
            if not chunk:
                break
            received += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        sock.close()
    return int(received.split()[1]) if received.startswith(b"HTTP/1.1 ") else None


def upload_slots_held(api) -> int:
    """The QUOTA_CONCURRENT_UPLOADS slots held now, as Redis counts them (one user uploads)."""
    redis = api.container.redis
    pattern = f"{api.settings.redis_prefix}slots:uploads:*"
    return sum(redis.zcard(key) for key in redis.scan_iter(match=pattern))


def served(api, path: str, timeout: float, headers: dict[str, str] | None = None) -> int:
    return requests.get(api.url(path), headers=headers or {}, timeout=timeout).status_code


def test_one_users_stalled_uploads_leave_threads_for_everyone(api, users, tmp_path):
    """The reported attack: a dozen uploads that send 2 KB and then nothing."""
    socks = [stalled_upload(api, users["mallory"]) for _ in range(12)]
    # long before the stalled bodies time out, the others are served
    assert served(api, "/healthz", timeout=BODY_TIMEOUT / 2) == 200
    assert served(api, "/jobs", BODY_TIMEOUT / 2, {"Authorization": users["bob"]}) == 200
    started = time.monotonic()
    statuses = sorted(status_of(sock, timeout=BODY_TIMEOUT * 4) for sock in socks)
    # all but two were refused at once; those two were cut off when their body stalled
    assert statuses == [408, 408] + [429] * 10, statuses
    assert time.monotonic() - started < BODY_TIMEOUT * 3
    # the cut-off uploads gave their threads and their upload slots back
    clip = media.make_video(tmp_path, seconds=1.0)
    with open(clip, "rb") as fh:
        accepted = requests.post(
            api.url("/upload"),
            headers={"Authorization": users["mallory"]},
            files={"file": ("clip.mp4", fh)},
            timeout=30,
        )
    assert accepted.status_code == 202, accepted.text


def test_refused_uploads_say_which_limit(api, users):
    socks = [stalled_upload(api, users["mallory"]) for _ in range(3)]
    try:
        # the next upload comes once two of them hold both slots, not before (a busy machine
        # may let it overtake one of them)
        wait_for(lambda: upload_slots_held(api) == 2, BODY_TIMEOUT / 2, what="both slots held")
        refused = send_head(
            api,
            "POST",
            "/upload",
            {
                "Authorization": users["mallory"],
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": "10",
                "Connection": "close",
            },
            b"0123456789",
        )
        refused.settimeout(BODY_TIMEOUT)
        answer = b""
        while chunk := refused.recv(4096):
            answer += chunk
        refused.close()
        assert answer.startswith(b"HTTP/1.1 429 "), answer[:200]
        assert b'"limit":"QUOTA_CONCURRENT_UPLOADS"' in answer.replace(b" ", b"")
        assert b"Retry-After: " in answer
    finally:
        for sock in socks:
            status_of(sock, timeout=BODY_TIMEOUT * 4)


def test_resumable_patches_share_the_same_cap(api, users):
    tus = {"Authorization": users["mallory"], "Tus-Resumable": "1.0.0"}
    locations = []
    for _ in range(3):
        created = requests.post(
            api.url("/uploads/"), headers={**tus, "Upload-Length": str(2**20)}, timeout=10
        )
        assert created.status_code == 201, created.text
        locations.append(created.headers["Location"].split("/", 3)[3])
    socks = [
        send_head(
            api,
            "PATCH",
            "/" + location,
            {
                **tus,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(2**20),
            },
            b"\0" * 2048,
        )
        for location in locations
    ]
    assert served(api, "/healthz", timeout=BODY_TIMEOUT / 2) == 200
    statuses = sorted(status_of(sock, timeout=BODY_TIMEOUT * 4) for sock in socks)
    assert statuses == [408, 408, 429], statuses
    # what arrived before the stall was kept: the client resumes from there
    head = requests.head(api.url("/" + locations[0]), headers=tus, timeout=10)
    assert int(head.headers["Upload-Offset"]) in (0, 2048)


def test_a_trickling_body_is_cut_off(api, users):
    """One byte every quarter second never stalls for BODY_TIMEOUT_SECONDS, but stays far
    under BODY_MIN_RATE: it is cut off instead of holding a thread for days."""
    sock = stalled_upload(api, users["mallory"])
    sock.settimeout(0.25)
    started = time.monotonic()
    answer = b""
    while time.monotonic() - started < 90 and not answer:
        try:
            sock.sendall(b"\0")
            answer = sock.recv(1024)
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]


def test_anonymous_stalled_bodies_are_released(api):
    """Bodies are read before the token is checked on JSON routes: anyone can stall one.
    They hold a thread for BODY_TIMEOUT_SECONDS at most, then answer 408."""
    body = b'{"name": "x", "email": "x@example.com", "password": "'
    socks = [
        send_head(
            api,
            "POST",
            "/users",
            {"Content-Type": "application/json", "Content-Length": "500"},
            body,
        )
        for _ in range(6)
    ]
    started = time.monotonic()
    assert served(api, "/healthz", timeout=BODY_TIMEOUT * 3) == 200
    assert time.monotonic() - started < BODY_TIMEOUT * 3
    statuses = [status_of(sock, timeout=BODY_TIMEOUT * 4) for sock in socks]
    assert statuses == [408] * 6, statuses
