"""Target 3: API memory while a 1 GiB file goes up and comes down; download vs reading the store."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from bench import procs
from bench.inputs import fake_mp4_chunks
from bench.report import Figure, Row, Section
from bench.stack import BenchStack
from core.domain.files import MP3S
from core.domain.jobs import Job, JobStatus

SIZE = 1 << 30
CHUNK = 256 * 1024  # what the API reads per chunk (api/jobs.py _read_range)
RSS_GROWTH_LIMIT_MB = 50
THROUGHPUT_RATIO_LIMIT = 0.7


def place_mp3(st: BenchStack, size: int) -> tuple[str, str]:
    """A finished job whose 'MP3' is `size` bytes in the directory store: (job id, file path).

    No conversion makes a 1 GiB MP3, so the bench writes the blob with the store's own writer
    and a job row marked done, as the convert worker would."""
    container = st.container
    owner = container.user_repo.get_by_email(st.settings.admin_email)
    store = container.blob_store
    with store.writer(MP3S, "big.mp3", "audio/mpeg", {"owner_id": owner.id}) as writer:
        for chunk in fake_mp4_chunks(size, 4 << 20):
            writer.write(chunk)
    job_id = uuid.uuid4().hex
    container.job_repo.add(
        Job(
            id=job_id,
            owner_id=owner.id,
            status=JobStatus.QUEUED,
            video_fid=writer.fid,
            video_filename="big.mp4",
            video_size=size,
        )
    )
    container.job_repo.update(
        job_id,
        {"status": JobStatus.DONE, "mp3_fid": writer.fid, "mp3_size": size, "progress": 100.0},
    )
    return job_id, os.path.join(store.root, MP3S, writer.fid)


def evict(path: str) -> None:
    """Drop this one file from the page cache (it is fsynced), so the next read hits the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def loopback_ceiling(path: str) -> float:
    """Bytes/s of the same file over a bare loopback TCP socket: sendfile(2) -> recv_into."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def send() -> None:
            peer, _ = server.accept()
            with peer, open(path, "rb") as fh:
                peer.sendfile(fh)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        buffer = memoryview(bytearray(CHUNK))
        received = 0
        started = time.perf_counter()
        with socket.create_connection(server.getsockname()) as sock:
            while n := sock.recv_into(buffer):
                received += n
        seconds = time.perf_counter() - started
        sender.join(10)
    return received / seconds


def read_store(path: str) -> float:
    """Seconds to read the stored file in CHUNK-sized reads into one buffer."""
    buffer = memoryview(bytearray(CHUNK))
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        while fh.readinto(buffer):
            pass
    return time.perf_counter() - started


def measure(st: BenchStack, reps: int) -> Section:
    section = Section("Streaming a 1 GiB file (target 3)")
    api = st.client()
    growth, uploads, ceiling = [], [], []
    rates: dict[str, list[float]] = {
        "warm http": [],
        "warm store": [],
        "cold http": [],
        "cold store": [],
    }
    placed: list[str] = []
    try:
        for _ in range(reps):
            with procs.RssSampler([st.api_pid]) as rss:
                started = time.perf_counter()
                accepted = api.upload(fake_mp4_chunks(SIZE), SIZE, "big.mp4")
                uploads.append(SIZE / (time.perf_counter() - started))
                placed.append(accepted["job_id"])
                job_id, path = place_mp3(st, SIZE)
                placed.append(job_id)
                for cache in ("warm", "cold"):
                    if cache == "warm":
                        read_store(path)  # into the page cache, for both sides
                    else:
                        evict(path)
                    rates[f"{cache} store"].append(SIZE / read_store(path))
                    if cache == "cold":
                        evict(path)
                    size, seconds = api.download(f"/jobs/{job_id}/mp3", CHUNK)
                    if size != SIZE:
                        raise RuntimeError(f"downloaded {size} bytes of {SIZE}")
                    rates[f"{cache} http"].append(SIZE / seconds)
            growth.append(rss.peak - rss.start)
            read_store(path)
            ceiling.append(loopback_ceiling(path))
            for done in placed:
                api.delete_job(done)
            placed.clear()
    finally:
        for leftover in placed:
            api.delete_job(leftover)
        api.close()
    g = Figure.of(growth)
    section.rows.append(
        Row(
            "3. API RSS growth, 1 GiB upload then download (directory store)",
            g.fmt("MB", 1, 1 / 2**20),
            f"< {RSS_GROWTH_LIMIT_MB} MB",
            g.high < RSS_GROWTH_LIMIT_MB * 2**20,
        )
    )
    for cache, how in (
        ("warm", "file in the page cache"),
        ("cold", "file evicted before each read"),
    ):
        h, d = Figure.of(rates[f"{cache} http"]), Figure.of(rates[f"{cache} store"])
        ratio = h.median / d.median
        section.rows.append(
            Row(
                f"3. download throughput, loopback vs reading the stored file ({how})",
                f"HTTP {h.fmt('MB/s', 0, 1 / 2**20)}; store read {d.fmt('MB/s', 0, 1 / 2**20)}",
                f"{ratio:.2f}x >= {THROUGHPUT_RATIO_LIMIT}x",
                ratio >= THROUGHPUT_RATIO_LIMIT,
            )
        )
    ceiling_rate = Figure.of(ceiling)
    warm_store = Figure.of(rates["warm store"]).median
    section.details.append(
        f"- The machine's own ceiling for the warm case: the same file over a bare loopback "
        f"TCP socket (sendfile(2) on one end, {CHUNK // 1024} KiB recv_into on the other, no "
        f"HTTP, no Python per chunk) moves {ceiling_rate.fmt('MB/s', 0, 1 / 2**20)}, "
        f"{ceiling_rate.median / warm_store:.2f}x of the warm store read."
    )
    section.details.append(
        f"- RSS = sum over the gunicorn master and workers, polled every 50 ms from before the "
        f"upload to after the download. The upload streams {SIZE} bytes (an MP4 'ftyp' head "
        f"that passes the sniffer, then filler) from a generator over http.client with a "
        f"Content-Length; its job then fails conversion, as expected. Upload rate "
        f"{Figure.of(uploads).fmt('MB/s', 0, 1 / 2**20)}."
    )
    section.details.append(
        "- Download: a 1 GiB blob written with the directory store's own writer plus a job row "
        "marked done (no conversion makes a 1 GiB MP3), fetched with GET /jobs/<id>/mp3 into a "
        f"reused {CHUNK // 1024} KiB buffer; the store read is the same file read with "
        f"{CHUNK // 1024} KiB readinto calls. Warm: both read the file from the page cache "
        f"(read once before). Cold: the file is dropped from the page cache "
        f"(posix_fadvise DONTNEED on that file only) before each of the two reads."
    )
    return section
