"""`vid2mp3 convert`: upload, wait, download for each file, N at a time; Ctrl-C cancels."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from vid2mp3_client.api import Api, EventStream
from vid2mp3_client.errors import ApiError, Cancelled, ClientError
from vid2mp3_client.progress import Bars, Row

POLL_FIRST_S = 0.2
POLL_MAX_S = 1.0
RUNNING = {"fetching", "queued", "converting"}
WAIT_TICK_S = 0.2


@dataclass
class Outcome:
    """What became of one input file."""

    source: str
    output: str | None = None
    job_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.output is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "ok": self.ok,
            "job_id": self.job_id,
            "output": self.output,
            "error": self.error,
        }


@dataclass
class Batch:
    """The jobs this run started on the server, and which of them are finished with."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    open_jobs: dict[str, str] = field(default_factory=dict)  # job id -> source file

    def started(self, job_id: str, source: str) -> None:
        with self.lock:
            self.open_jobs[job_id] = source

    def settled(self, job_id: str) -> None:
        with self.lock:
            self.open_jobs.pop(job_id, None)

    def unsettled(self) -> dict[str, str]:
        with self.lock:
            return dict(self.open_jobs)


class Converter:
    def __init__(self, api: Api, bars: Bars, out_dir: Path, fields: dict[str, str], force: bool):
        self.api = api
        self.bars = bars
        self.out_dir = out_dir
        self.fields = fields
        self.force = force
        self.stop = threading.Event()
        self.batch = Batch()
        self.follow_events = True  # False: poll only (`--poll`)
        self.lock = threading.Lock()
        self.streams: set[EventStream] = set()

    def run(self, sources: list[str], parallel: int) -> list[Outcome]:
        """Convert every file; KeyboardInterrupt after cancelling the unfinished jobs."""
        outcomes = [Outcome(source) for source in sources]
        targets = self._targets(outcomes)
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="convert")
        try:
            with _ctrl_c_noted() as pressed:
                pending = {
                    pool.submit(self._one, outcome, target)
                    for outcome, target in zip(outcomes, targets)
                }
                while pending and not pressed:  # short waits: Ctrl-C is seen within a tick
                    _, pending = wait(pending, timeout=WAIT_TICK_S)
                if pressed:
                    raise KeyboardInterrupt
        except BaseException:
            # Ctrl-C (or anything else) wherever it lands, even between two submits: tell
            # every worker thread to stop before waiting for them, or a job left queued on
            # the server would keep its thread polling forever.
            self.stop.set()
            with self.lock:
                open_streams = list(self.streams)
            for stream in open_streams:  # a thread blocked reading one wakes up now
                stream.close()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return outcomes

    def cancel_unsettled(self) -> list[tuple[str, str, str]]:
        """Cancel (or delete) every job started here and not finished: (job, file, result)."""
        results = []
        for job_id, source in self.batch.unsettled().items():
            try:
                how = self.api.cancel(job_id)
            except ClientError as exc:
                how = f"not cancelled: {exc}"
            results.append((job_id, source, how))
        return results

    def _targets(self, outcomes: list[Outcome]) -> list[Path | None]:
        seen: dict[Path, str] = {}
        targets: list[Path | None] = []
        for outcome in outcomes:
            # the format's name is its file's extension
            extension = self.fields.get("format") or "mp3"
            target = self.out_dir / f"{_stem(outcome.source)}.{extension}"
            if target in seen:
                outcome.error = f"{target} would also be written for {seen[target]}"
                targets.append(None)
                continue
            seen[target] = outcome.source
            targets.append(target)
        return targets

    def _one(self, outcome: Outcome, target: Path | None) -> None:
        if target is None:
            return
        row = self.bars.row(
            _stem(outcome.source) if is_url(outcome.source) else Path(outcome.source).name
        )
        try:
            outcome.output = str(self._convert(outcome, target, row))
            row.finish("done", str(target))
        except Cancelled:
            outcome.error = "interrupted"  # its job stays unsettled: the caller cancels it
            row.finish("stopped", "")
            return
        except ClientError as exc:
            outcome.error = str(exc)
            row.finish("failed", str(exc))
        if outcome.job_id:
            self.batch.settled(outcome.job_id)

    def _convert(self, outcome: Outcome, target: Path, row: Row) -> Path:
        url = is_url(outcome.source)
        source = Path(outcome.source)
        if not url and not source.is_file():
            raise ClientError("no such file" if not source.exists() else "not a regular file")
        if target.exists() and not self.force:
            raise ClientError(f"{target} exists (use --force to overwrite)")
        self._check_stop()
        if url:
            accepted = self.api.import_url(outcome.source, self.fields)
        else:
            accepted = self._upload(source, row)
        return self._finish(outcome, accepted, target, row)

    def _upload(self, source: Path, row: Row) -> dict[str, Any]:
        row.upload(source.stat().st_size)
        return self.api.upload(source, self.fields, row.update, self.stop)

    def _finish(self, outcome: Outcome, accepted: dict[str, Any], target: Path, row: Row) -> Path:
        outcome.job_id = accepted["job_id"]
        self.batch.started(outcome.job_id, outcome.source)
        self._check_stop()
        job = self._wait(outcome.job_id, row)
        if job.get("status") != "done":
            reason = job.get("error") or f"the job ended {job.get('status')}"
            raise ClientError(f"conversion failed: {reason} (job {outcome.job_id})")
        return self.api.download(
            outcome.job_id,
            target.parent,
            target.name,
            self.force,
            row.download,
            row.update,
            self.stop,
        )

    def _wait(self, job_id: str, row: Row) -> dict[str, Any]:
        """Follow the job's events until it leaves queued/converting; when the server refuses
        the stream (busy, or too old to have one) or it breaks off, poll instead."""
        row.convert()
        if self.follow_events:
            job = self._follow(job_id, row)
            if job is not None:
                return job
        return self._poll(job_id, row)

    def _follow(self, job_id: str, row: Row) -> dict[str, Any] | None:
        """The job once it ended, from its event stream; None to fall back to polling."""
        try:
            with self.api.job_events(job_id) as stream:
                with self.lock:
                    self.streams.add(stream)
                try:
                    for job in stream:
                        status = str(job.get("status"))
                        row.update(float(job.get("progress") or 0), note=status)
                        if status not in RUNNING:
                            return job
                        self._check_stop()
                finally:
                    with self.lock:
                        self.streams.discard(stream)
        except ApiError as exc:
            if exc.status == 401:
                raise
            return None  # refused (503 busy, 404 no such route): poll
        except ClientError:
            self._check_stop()
            return None  # the stream broke off: polling picks up from the current state
        except (httpx.HTTPError, httpx.StreamError):
            self._check_stop()  # closed by Ctrl-C, or the connection dropped
            return None
        self._check_stop()
        return None

    def _poll(self, job_id: str, row: Row) -> dict[str, Any]:
        """Poll the job until it leaves queued/converting, with If-None-Match when it has an
        ETag."""
        job: dict[str, Any] | None = None
        etag = None
        interval = POLL_FIRST_S
        while True:
            try:
                fresh, etag = self.api.job(job_id, etag)
            except ApiError as exc:
                if exc.status not in (429, 503):
                    raise
                fresh = None  # busy or briefly unavailable: ask again later
                interval = max(interval, float(exc.retry_after or POLL_MAX_S))
            if fresh is not None:
                job = fresh
                status = str(job.get("status"))
                row.update(float(job.get("progress") or 0), note=status)
                if status not in RUNNING:
                    return job
            if self.stop.wait(interval):
                raise Cancelled()
            interval = min(interval * 1.5, max(POLL_MAX_S, interval))

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Cancelled()


def is_url(source: str) -> bool:
    """`vid2mp3 convert https://...`: the server fetches it (POST /jobs), nothing is uploaded."""
    return source.startswith(("http://", "https://"))


def _stem(source: str) -> str:
    """The output's name: a file's stem, or the last segment of a URL's path."""
    if not is_url(source):
        return Path(source).stem
    name = unquote(urlsplit(source).path).rsplit("/", 1)[-1]
    return PurePosixPath(name).stem or "import"


@contextmanager
def _ctrl_c_noted() -> Iterator[list[bool]]:
    """Within the block, Ctrl-C (SIGINT) only appends True to the list it yields.

    Python raises KeyboardInterrupt wherever the main thread is, and inside the executor's
    wait() that can be between a future's lock acquired and released: the worker thread then
    blocks for ever finishing that future, and the pool's shutdown with it (a Ctrl-C that never
    exits, seen on a busy machine). So the handler only notes the key, and run() raises
    KeyboardInterrupt itself between two waits. Outside the main thread, nothing changes."""
    pressed: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(True))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)
