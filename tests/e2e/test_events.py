"""Live job events (GET /jobs/<id>/events) and long-poll on a real evstack: gunicorn, the convert
worker and the sweeper, with Redis reached through a forwarder the tests can cut."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support import media
from tests.support.client import login
from tests.support.proxy import Outage
from tests.support.sse import events, open_stream
from tests.support.stack import running_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def redis_link(settings):
    host, _, port = settings.redis_url.removeprefix("redis://").partition("/")[0].partition(":")
    link = Outage(host, int(port or 6379)).up()
    yield link
    link.down()


@pytest.fixture(scope="module")
def evstack(tmp_path_factory, redis_link, settings):
    db = settings.redis_url.rsplit("/", 1)[-1]
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_link.port}/{db}",
        "EVENTS_MAX_STREAMS": "230",
        "EVENTS_MAX_STREAMS_PER_USER": "210",
        "EVENTS_KEEPALIVE_SECONDS": "2",
        "EVENTS_TICKET_SECONDS": "3",
        "EVENTS_SEND_TIMEOUT_SECONDS": "3",
        "SWEEP_INTERVAL_SECONDS": "1",
        "SWEEP_AFTER_SECONDS": "120",
        "LEASE_SECONDS": "3",
    }
    with running_stack(tmp_path_factory.mktemp("events"), env, beat=True) as running:
        yield running


@pytest.fixture(scope="module")
def admin(evstack):
    return login(evstack, evstack.settings.admin_email, evstack.settings.admin_password)


def new_user(evstack, admin):
    name = f"ev{uuid.uuid4().hex[:8]}"
    created = admin.post(
        "/users", json={"name": name, "email": f"{name}@example.com", "password": "password-1"}
    )
    assert created.status_code == 201, created.text
    client = login(evstack, f"{name}@example.com", "password-1")
    client.user_id = created.json()["id"]
    return client


@pytest.fixture(scope="module")
def user(evstack, admin):
    return new_user(evstack, admin)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def long_clip(media_dir):
    return media.make_video(media_dir, seconds=20.0)


@pytest.fixture(scope="module")
def long_sound(media_dir):
    """Ten minutes of sound: a few seconds of ffmpeg work, long enough to interrupt."""
    return media.make_audio_only(media_dir, seconds=600, fmt="m4a")


# Written after the job ends, without a new status: the source's removal, the email.
LATER = ("updated_at", "notified_at", "notify_error")


def final(job: dict) -> dict:
    return {key: value for key, value in job.items() if key not in LATER}


def upload(client, path) -> str:
    with open(path, "rb") as fh:
        response = client.post("/upload", files={"file": (os.path.basename(path), fh)})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def auth(client) -> dict[str, str]:
    return {"Authorization": client.session.headers["Authorization"]}


def follow(evstack, client, job_id, headers=None, until=None, deadline=90.0):
    """Every frame of the job's stream until it ends (or `until` says stop); fails past the
    deadline (keepalives would otherwise keep a stream that never ends open forever)."""
    import time

    seen = []
    give_up = time.monotonic() + deadline
    with open_stream(evstack.url(f"/jobs/{job_id}/events"), headers or auth(client)) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for frame in events(response):
            seen.append(frame)
            assert time.monotonic() < give_up, f"the stream did not end: {seen[-5:]}"
            if until is not None and until(frame):
                break
    return seen


def test_a_stream_follows_a_job_to_its_end(evstack, user, long_sound):
    job_id = upload(user, long_sound)
    frames = follow(evstack, user, job_id)
    named = [f for f in frames if f.event]
    assert named[0].event == "status" and named[0].data["id"] == job_id
    statuses = [f.data["status"] for f in named if f.event == "status"]
    assert statuses[-1] == "done" and "converting" in statuses
    # The last event is the job as GET /jobs/<id> answers it.
    assert final(named[-1].data) == final(user.get(f"/jobs/{job_id}").json())
    ids = [int(f.id) for f in named]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    progress = [f for f in named if f.event == "progress"]
    assert len(progress) >= 2, "no progress events for ten minutes of sound"
    percents = [f.data["progress"] for f in progress]
    assert percents == sorted(percents)
    gaps = [b.received - a.received for a, b in zip(progress, progress[1:])]
    assert all(gap > 0.35 for gap in gaps), gaps  # at most every 0.5 s (arrival jitter aside)


def test_another_users_job_is_404_and_no_token_401(evstack, admin, user, long_clip):
    job_id = upload(user, long_clip)
    other = new_user(evstack, admin)
    with open_stream(evstack.url(f"/jobs/{job_id}/events"), auth(other)) as response:
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    with open_stream(evstack.url(f"/jobs/{job_id}/events")) as response:
        assert response.status_code == 401
    assert other.post(f"/jobs/{job_id}/events/ticket").status_code == 404


def test_a_ticket_opens_one_jobs_stream_without_the_token(evstack, user, long_clip):
    job_id, other_job = upload(user, long_clip), upload(user, long_clip)
    link = user.post(f"/jobs/{job_id}/events/ticket")
    assert link.status_code == 200
    url = link.json()["url"]
    assert user.session.headers["Authorization"].split()[1] not in url
    with open_stream(evstack.url(url)) as response:
        assert response.status_code == 200
        first = next(f for f in events(response) if f.event)
        assert first.data["id"] == job_id
    forged = url.replace(job_id, other_job)
    with open_stream(evstack.url(forged)) as response:
        assert response.status_code == 401
    wait_for(
        lambda: open_stream(evstack.url(url)).status_code == 401,
        timeout=10,
        interval=0.5,
        what="the ticket to expire",
    )


def test_a_reconnect_with_last_event_id_gets_the_current_state_and_the_rest(
    evstack, user, long_clip
):
    job_id = upload(user, long_clip)
    first = follow(evstack, user, job_id, until=lambda f: f.event == "progress")
    last_id = [f for f in first if f.id][-1].id
    rest = follow(evstack, user, job_id, headers={**auth(user), "Last-Event-ID": last_id})
    named = [f for f in rest if f.event]
    assert named[0].event == "status" and int(named[0].id) >= int(last_id)
    assert named[0].data["status"] in ("converting", "done")
    assert named[-1].data["status"] == "done"


def queued_job(evstack, client) -> str:
    """A queued job no worker is told about (the sweeper leaves it for SWEEP_AFTER_SECONDS)."""
    from core.domain.jobs import Job, JobStatus

    job = Job(
        id=uuid.uuid4().hex,
        owner_id=int(client.user_id),
        status=JobStatus.QUEUED,
        video_fid="f" * 32,
        video_filename="still.mp4",
        video_size=1,
    )
    evstack.container.job_repo.add(job)
    return job.id


def test_keepalive_comments_while_nothing_changes_then_the_end(evstack, user):
    job_id = queued_job(evstack, user)
    with open_stream(evstack.url(f"/jobs/{job_id}/events"), auth(user)) as response:
        frames = events(response)
        first = next(frames)
        assert first.event == "status" and first.data["status"] == "queued"
        comments = [next(frames), next(frames)]
        assert [c.comment for c in comments] == ["keepalive", "keepalive"]
        assert user.post(f"/jobs/{job_id}/cancel").status_code == 200
        rest = list(frames)
    assert [f.data["status"] for f in rest if f.event] == ["cancelled"]


def test_a_worker_killed_mid_job_the_stream_ends_with_the_real_outcome(evstack, user, long_sound):
    import signal

    import psutil

    job_id = upload(user, long_sound)

    def ffmpeg():
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "ffmpeg" in (proc.info["name"] or "") and f"job-{job_id}-" in cmdline:
                return proc
        return None

    killed = []

    def kill_once(frame):
        if frame.event == "progress" and not killed:
            proc = wait_for(ffmpeg, timeout=30, interval=0.02, what="the job's ffmpeg")
            os.kill(proc.parent().pid, signal.SIGKILL)  # the process running the task
            killed.append(proc)
        return False

    frames = follow(evstack, user, job_id, until=kill_once)
    assert killed
    named = [f for f in frames if f.event]
    assert named[-1].data["status"] == "done" and named[-1].data["attempts"] >= 2
    assert final(named[-1].data) == final(user.get(f"/jobs/{job_id}").json())


def api_workers(evstack):
    import psutil

    return psutil.Process(evstack.processes["api"].pid).children()


def test_redis_cut_mid_stream_loses_no_change_and_leaks_nothing(
    evstack, user, long_clip, redis_link
):
    threads_before = sum(p.num_threads() for p in api_workers(evstack))
    job_id = upload(user, long_clip)
    seen = []

    def cut_after_first(frame):
        seen.append(frame)
        if len([f for f in seen if f.event]) == 1:
            redis_link.down()  # every connection through it dies, the pub/sub ones too
        return False

    try:
        frames = follow(evstack, user, job_id, until=cut_after_first)
    finally:
        redis_link.up()
    named = [f for f in frames if f.event]
    assert named[-1].data["status"] == "done"
    assert final(named[-1].data) == final(user.get(f"/jobs/{job_id}").json())
    # Nothing left behind: the streams' threads are back in the pool, and each API process
    # holds at most one pub/sub connection (plus its few pooled ones) through the link.
    wait_for(
        lambda: sum(p.num_threads() for p in api_workers(evstack)) <= threads_before + 2,
        timeout=10,
        what="the API's threads to settle",
    )
    for worker in api_workers(evstack):
        to_redis = [
            c for c in worker.net_connections("tcp") if c.raddr and c.raddr.port == redis_link.port
        ]
        assert len(to_redis) <= 4, to_redis


def test_200_open_streams_while_uploads_and_polls_answer(evstack, admin, user, media_dir):
    import socket
    import time

    clip = media.make_video(media_dir, seconds=2.0)

    def timed_poll(job_id):
        began = time.monotonic()
        assert user.get(f"/jobs/{job_id}").status_code == 200
        return time.monotonic() - began

    def timed_upload():
        began = time.monotonic()
        upload(user, clip)
        return time.monotonic() - began

    job_id = queued_job(evstack, user)
    usual_poll = sorted(timed_poll(job_id) for _ in range(10))[8]
    usual_upload = max(timed_upload() for _ in range(2))
    streams = []
    token = user.session.headers["Authorization"]
    host, port = "127.0.0.1", int(evstack.base_url.rsplit(":", 1)[1])
    try:
        for _ in range(200):
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(
                f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            streams.append(sock)
        for sock in streams:
            head = b""
            while b"event: status" not in head:
                chunk = sock.recv(65536)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
        polls = sorted(timed_poll(job_id) for _ in range(10))[8]
        uploads = max(timed_upload() for _ in range(2))
        assert polls <= max(3 * usual_poll, usual_poll + 0.5), (polls, usual_poll)
        assert uploads <= max(3 * usual_upload, usual_upload + 2.0), (uploads, usual_upload)
        assert user.post(f"/jobs/{job_id}/cancel").status_code == 200
        for sock in streams:  # all 200 hear the end
            tail = b""
            while b"cancelled" not in tail:
                chunk = sock.recv(65536)
                assert chunk, tail
                tail += chunk
    finally:
        for sock in streams:
            sock.close()


def test_a_client_that_never_reads_is_cut_off_with_bounded_memory(evstack, user):
    """A reader that stops reading while events pour in: the API buffers a bounded amount,
    then closes the stream (its send times out) and frees its thread."""
    import socket
    from datetime import datetime, timedelta, timezone

    import psutil

    job_id = queued_job(evstack, user)
    port = int(evstack.base_url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {user.session.headers['Authorization']}\r\n\r\n".encode()
    )
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    mine = sock.getsockname()[1]

    def serving():
        return [
            worker
            for worker in api_workers(evstack)
            for c in worker.net_connections("tcp")
            if c.laddr
            and c.laddr.port == port
            and c.raddr
            and c.raddr.port == mine
            and c.status == psutil.CONN_ESTABLISHED
        ]

    server = serving()[0]
    rss_before = server.memory_info().rss
    job = user.get(f"/jobs/{job_id}").json()
    start = datetime.now(timezone.utc)
    padding = "x" * 100_000
    try:
        for i in range(400):  # 40 MB of status changes, none of them read
            stamp = (start + timedelta(milliseconds=i + 1)).isoformat()
            state = {
                **job,
                "status": ("converting", "queued")[i % 2],
                "updated_at": stamp,
                "notes": [padding],
            }
            evstack.container.job_events.publish(job_id, {"kind": "status", "job": state})
        wait_for(lambda: not serving(), timeout=30, what="the API to cut the stream off")
        assert server.memory_info().rss - rss_before < 40 * 2**20
    finally:
        sock.close()


def test_a_stopping_worker_ends_its_streams_at_once(evstack, user):
    """SIGTERM (a deploy, a scale-down): the worker's open streams end now, their clients
    reconnect to another worker, instead of holding the stop for graceful_timeout (30 s)."""
    import signal
    import time

    import psutil

    job_id = queued_job(evstack, user)
    port = int(evstack.base_url.rsplit(":", 1)[1])
    with open_stream(evstack.url(f"/jobs/{job_id}/events"), auth(user)) as response:
        frames = events(response)
        assert next(frames).data["status"] == "queued"
        mine = response.raw._connection.sock.getsockname()[1]
        serving = [
            worker
            for worker in api_workers(evstack)
            for c in worker.net_connections("tcp")
            if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == mine
        ]
        assert len(serving) == 1
        began = time.monotonic()
        serving[0].send_signal(signal.SIGTERM)
        rest = list(frames)  # the stream ends
        assert time.monotonic() - began < 10
        assert all(f.event is None for f in rest), rest  # no made-up status on the way out
    psutil.wait_procs(serving, timeout=10)
    assert not serving[0].is_running()
    # The client reconnects (here: again) and finds the job where it was.
    again = follow(evstack, user, job_id, until=lambda f: f.event == "status")
    assert again[-1].data["status"] == "queued"
    assert user.post(f"/jobs/{job_id}/cancel").status_code == 200
