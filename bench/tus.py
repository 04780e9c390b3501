"""Resumable uploads: API memory while a 1 GiB tus upload is cut off twice and resumed, and
tus throughput against a plain POST /upload of the same bytes."""

from __future__ import annotations

import base64
import http.client
import os
import time
from typing import Iterator

from bench import procs
from bench.client import ApiClient, ApiError
from bench.inputs import fake_mp4_chunks
from bench.report import Figure, Row, Section
from bench.stack import BenchStack, wait_for

SIZE = 1 << 30
WARM_UP_SIZE = 4 << 20
PATCH_SIZE = 256 << 20  # one PATCH per 256 MiB, as a client with a chunk size would send
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
RSS_GROWTH_LIMIT_MB = 50
THROUGHPUT_RATIO_LIMIT = 0.8


def _slice(total: int, start: int, stop: int) -> Iterator[bytes]:
    """Bytes [start, stop) of fake_mp4_chunks(total), lazily."""
    position = 0
    for chunk in fake_mp4_chunks(total):
        end = position + len(chunk)
        if end > start and position < stop:
            yield chunk[max(0, start - position) : min(len(chunk), stop - position)]
        position = end
        if position >= stop:
            return


def _headers(api: ApiClient, extra: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}", **TUS, **extra}


def create_upload(st: BenchStack, api: ApiClient, size: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=300)
    try:
        meta = f"filename {base64.b64encode(b'big.mp4').decode()}"
        conn.request(
            "POST",
            "/uploads/",
            headers=_headers(api, {"Upload-Length": str(size), "Upload-Metadata": meta}),
        )
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise ApiError(f"create: {response.status}")
        return "/" + response.headers["Location"].split("/", 3)[3]
    finally:
        conn.close()


def patch(
    st: BenchStack,
    api: ApiClient,
    path: str,
    size: int,
    offset: int,
    stop: int,
    cut_at: int | None = None,
) -> str | None:
    """PATCH bytes [offset, stop); with cut_at, close the socket after sending up to cut_at.
    Returns the job id when the upload is complete."""
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=300)
    try:
        conn.putrequest("PATCH", path)
        for name, value in _headers(
            api,
            {
                "Content-Type": OCTETS,
                "Upload-Offset": str(offset),
                "Content-Length": str(stop - offset),
            },
        ).items():
            conn.putheader(name, value)
        conn.endheaders()
        for chunk in _slice(size, offset, cut_at if cut_at is not None else stop):
            conn.send(chunk)
        if cut_at is not None:
            return None  # the finally closes the socket mid-body
        response = conn.getresponse()
        response.read()
        if response.status != 204:
            raise ApiError(f"PATCH: {response.status}")
        return response.headers.get("Vid2mp3-Job-Id")
    finally:
        conn.close()


def offset(api: ApiClient, path: str) -> int:
    conn = api.conn
    conn.request("HEAD", path, headers=_headers(api, {}))
    response = conn.getresponse()
    response.read()
    return int(response.headers["Upload-Offset"])


def resumable_upload(st: BenchStack, api: ApiClient, size: int, cuts: tuple[float, ...]) -> str:
    """Upload size bytes in PATCH_SIZE pieces, dropping the connection at each cut (a fraction
    of size) and resuming from the offset HEAD reports. Returns the job id."""
    path = create_upload(st, api, size)
    pending = sorted(int(size * cut) for cut in cuts)
    position = 0
    while True:
        stop = min(size, position + PATCH_SIZE)
        cut = next((c for c in pending if position < c < stop), None)
        if cut is not None:
            pending.remove(cut)
            patch(st, api, path, size, position, stop, cut_at=cut)
            position = wait_for(
                lambda cut=cut: (lambda o: o if o >= cut else None)(offset(api, path)),
                60,
                what="the server to keep what arrived",
            )
            continue
        job_id = patch(st, api, path, size, position, stop)
        position = stop
        if position >= size:
            if not job_id:
                raise ApiError("the last PATCH did not name a job")
            return job_id


def measure(st: BenchStack, reps: int, size: int = SIZE) -> Section:
    section = Section(f"Resumable (tus) upload of {size / 2**30:g} GiB")
    api = st.client()
    growth, tus_rates, plain_rates, kept = [], [], [], []
    jobs: list[str] = []
    try:
        # Warm-up, as the stack's first conversion is for POST /upload: the first tus requests
        # of each gunicorn worker import and connect what they use. Not measured.
        for _ in range(4):
            jobs.append(resumable_upload(st, api, WARM_UP_SIZE, (0.5,)))
        for job_id in jobs:
            api.delete_job(job_id)
        jobs.clear()
        for rep in range(reps):
            with procs.RssSampler([st.api_pid]) as rss:
                jobs.append(resumable_upload(st, api, size, (0.3, 0.6)))
            growth.append(rss.peak - rss.start)
            # Each timed upload starts with no dirty pages left by the one before it, and the
            # order alternates between repetitions.
            for kind in ("post", "tus") if rep % 2 == 0 else ("tus", "post"):
                os.sync()
                started = time.perf_counter()
                if kind == "post":
                    jobs.append(api.upload(fake_mp4_chunks(size), size, "big.mp4")["job_id"])
                else:
                    jobs.append(resumable_upload(st, api, size, ()))
                rate = size / (time.perf_counter() - started)
                (plain_rates if kind == "post" else tus_rates).append(rate)
            kept.append(api.job(jobs[0])["video_size"])  # the interrupted one
            for job_id in jobs:
                api.delete_job(job_id)
            jobs.clear()
    finally:
        for job_id in jobs:
            api.delete_job(job_id)
        api.close()
    g = Figure.of(growth)
    section.rows.append(
        Row(
            f"tus: API RSS growth, {size / 2**30:g} GiB upload cut off twice and resumed "
            "(directory store)",
            g.fmt("MB", 1, 1 / 2**20),
            f"< {RSS_GROWTH_LIMIT_MB} MB",
            g.high < RSS_GROWTH_LIMIT_MB * 2**20 and all(k == size for k in kept),
        )
    )
    t, p = Figure.of(tus_rates), Figure.of(plain_rates)
    ratio = t.median / p.median
    section.rows.append(
        Row(
            "tus: upload throughput vs plain POST /upload (same bytes)",
            f"tus {t.fmt('MB/s', 0, 1 / 2**20)}; POST {p.fmt('MB/s', 0, 1 / 2**20)}",
            f"{ratio:.2f}x >= {THROUGHPUT_RATIO_LIMIT}x",
            ratio >= THROUGHPUT_RATIO_LIMIT,
        )
    )
    section.details.append(
        f"- tus: PATCHes of {PATCH_SIZE >> 20} MiB over http.client; the memory run closes the "
        "socket mid-PATCH at 30% and 60%, then asks HEAD for the offset and continues from "
        "there (the job's video_size checks every byte arrived once). RSS = gunicorn master "
        "and workers, polled every 50 ms, after four small tus uploads warmed both workers. "
        "Throughput: an uninterrupted tus upload against "
        "POST /upload (multipart) of the same fake-MP4 bytes, each after os.sync() so neither "
        "pays for the other's dirty pages; both jobs then fail conversion, as expected. The "
        "directory store fsyncs at the end of every PATCH (what was acknowledged is on disk), "
        "so smaller PATCHes cost more fsyncs."
    )
    return section
