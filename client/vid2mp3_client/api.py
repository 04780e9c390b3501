"""The vid2mp3 HTTP API as the command line uses it: one method per call, errors as ApiError."""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Self
from urllib.parse import quote, unquote

import httpx

from vid2mp3_client import __version__
from vid2mp3_client.config import Config, TokenStore
from vid2mp3_client.errors import ApiError, Cancelled, ClientError

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# An event stream sends at least a keepalive every 15 s: three missed ones mean it is gone.
EVENTS_TIMEOUT = httpx.Timeout(45.0, connect=10.0)
CHUNK = 256 * 1024
REFRESH_MARGIN_S = 60
NOT_LOGGED_IN = (
    "not logged in: run `vid2mp3 login` (or `vid2mp3 login --api-key`), or set VID2MP3_API_KEY"
)

Progress = Callable[[int], None]


class Api:
    """A session with one server; safe to share between threads."""

    def __init__(
        self, config: Config, store: TokenStore, transport: httpx.BaseTransport | None = None
    ):
        self.url = config.checked_url()
        self._config = config
        self._store = store
        self._from_env = bool(config.email and config.password)
        self._key_from_env = bool(config.api_key)
        self._stored_key = False
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._tus: bool | None = None
        self.http = httpx.Client(
            base_url=self.url,
            timeout=TIMEOUT,
            transport=transport,
            headers={"User-Agent": f"vid2mp3-cli/{__version__}"},
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- authentication -------------------------------------------------------------------

    def login(self, email: str, password: str) -> dict[str, Any]:
        """POST /login with HTTP Basic: {"access_token", "token_type", "expires_in"}."""
        response = self._send("POST", "/login", auth=(email, password))
        body = self._json(response)
        if not isinstance(body.get("access_token"), str):
            raise ClientError(f"{self.url}/login did not return a token")
        return body

    def validate_key(self, key: str) -> dict[str, Any]:
        """POST /validate with an API key: {"sub", "role", "scopes"}."""
        response = self._send("POST", "/validate", headers={"Authorization": f"Bearer {key}"})
        body = self._json(response)
        if not isinstance(body.get("scopes"), list):
            raise ClientError("that is not an API key (they look like v2m_<prefix>_<secret>)")
        return body

    def authenticate(self) -> str:
        """What to send as Bearer: VID2MP3_API_KEY; else a token from logging in with
        VID2MP3_EMAIL/PASSWORD; else the key or token `vid2mp3 login` saved."""
        with self._lock:
            if self._config.api_key:
                return self._config.api_key
            if self._token and time.time() < self._expires_at - REFRESH_MARGIN_S:
                return self._token
            if self._from_env:
                assert self._config.email and self._config.password
                try:
                    body = self.login(self._config.email, self._config.password)
                except ApiError as exc:
                    if exc.status != 401:
                        raise
                    raise ApiError(
                        401, f"{exc.message}: check VID2MP3_EMAIL and VID2MP3_PASSWORD", exc.code
                    ) from None
                self._token = body["access_token"]
                self._expires_at = time.time() + float(body.get("expires_in") or 300)
                return self._token
            record = self._store.load()
            if record is None:
                raise ClientError(NOT_LOGGED_IN)
            if record.get("url") != self.url:
                raise ClientError(
                    f"you are logged in to {record.get('url')}, not {self.url}: run `vid2mp3 login`"
                )
            if record.get("api_key"):
                self._stored_key = True
                self._token = str(record["api_key"])
                self._expires_at = float("inf")
                return self._token
            if time.time() >= float(record.get("expires_at") or 0):
                raise ClientError("your login has expired: run `vid2mp3 login`")
            self._token = record["access_token"]
            self._expires_at = float(record["expires_at"])
            return self._token

    def _auth_headers(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        return {**(headers or {}), "Authorization": f"Bearer {self.authenticate()}"}

    # --- transport ------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._transport_errors():
            return self.http.request(method, path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; the response whatever its status."""
        kwargs["headers"] = self._auth_headers(kwargs.get("headers"))
        response = self._send(method, path, **kwargs)
        self._check_unauthorized(response)
        return response

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        kwargs["headers"] = self._auth_headers(kwargs.get("headers"))
        with self._transport_errors(), self.http.stream(method, path, **kwargs) as response:
            if response.is_error:
                response.read()
                self._check_unauthorized(response)
            yield response

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise ClientError(
                f"cannot reach the vid2mp3 server at {self.url}: {_reason(exc)}"
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"the server at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"the connection to {self.url} failed: {_reason(exc)}") from None

    def _check_unauthorized(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            error = self._error(response)
            if self._key_from_env:
                hint = "check VID2MP3_API_KEY"
            elif self._from_env:
                hint = "check VID2MP3_EMAIL and VID2MP3_PASSWORD"
            elif self._stored_key:
                hint = "the saved API key no longer works: run `vid2mp3 login --api-key`"
            else:
                hint = "run `vid2mp3 login`"
            raise ApiError(401, f"{_message(response) or 'unauthorized'}: {hint}", error.code)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            raise self._error(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ClientError(
                f"{response.request.url} did not answer with JSON: is {self.url} a vid2mp3 server?"
            )
        return body

    def offers_tus(self) -> bool:
        """Whether the server takes tus 1.0.0 uploads at /uploads/ (asked once)."""
        if self._tus is None:
            try:
                response = self._send("OPTIONS", "/uploads/")
                versions = response.headers.get("Tus-Version", "").split(",")
                self._tus = response.status_code in (200, 204) and "1.0.0" in versions
            except ClientError:
                self._tus = False
        return self._tus

    def error_from(self, response: httpx.Response) -> ApiError:
        """The API's error answer as an ApiError (a 401 also says how to log in)."""
        return self._error(response)

    def _error(self, response: httpx.Response) -> ApiError:
        message = _message(response)
        code = None
        if message is None:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            message = (
                f"{response.reason_phrase or 'error'} from {response.request.url} "
                f"({kind}, not a vid2mp3 error: is {self.url} the right server?)"
            )
        else:
            code = response.json().get("code")
        return ApiError(response.status_code, message, code, response.headers.get("Retry-After"))

    # --- jobs -----------------------------------------------------------------------------

    def upload(
        self, path: Path, fields: dict[str, str], on_progress: Progress, stop: threading.Event
    ) -> dict[str, Any]:
        """The file as one multipart POST /upload (options as fields first), or, from
        VID2MP3_TUS_MIN_BYTES (16 MiB) when the server offers tus, resumable in chunks."""
        if path.stat().st_size >= self._config.tus_min_bytes and self.offers_tus():
            from vid2mp3_client.tus import Resumable

            return Resumable(self, self._config.tus_chunk_bytes).upload(
                path, fields, on_progress, stop
            )
        with open(path, "rb") as raw:
            reader = _ProgressReader(raw, on_progress, stop)
            response = self.request(
                "POST", "/upload", data=fields, files={"file": (path.name, reader)}
            )
        body = self._json(response)
        if not isinstance(body.get("job_id"), str):
            raise ClientError(f"{self.url}/upload did not return a job id")
        return body

    def import_url(self, url: str, fields: dict[str, str]) -> dict[str, Any]:
        """POST /jobs: the server fetches the video at url (its own queue), then converts it."""
        response = self.request("POST", "/jobs", json={"url": url, **fields})
        body = self._json(response)
        if not isinstance(body.get("job_id"), str):
            raise ClientError(f"{self.url}/jobs did not return a job id")
        return body

    def job(self, job_id: str, etag: str | None = None) -> tuple[dict[str, Any] | None, str | None]:
        """GET /jobs/<id>: (job, etag), or (None, etag) when the server says 304 Not Modified."""
        headers = {"If-None-Match": etag} if etag else {}
        response = self.request("GET", f"/jobs/{_segment(job_id)}", headers=headers)
        if response.status_code == 304:
            return None, etag
        return self._json(response), response.headers.get("ETag")

    @contextmanager
    def job_events(self, job_id: str) -> Iterator[EventStream]:
        """GET /jobs/<id>/events: the job's states as they come (Server-Sent Events), until the
        stream ends. ApiError when the server refuses it (503 when busy, 404 on a server
        without the route): the caller polls instead."""
        path = f"/jobs/{_segment(job_id)}/events"
        headers = {"Accept": "text/event-stream"}
        with self._stream("GET", path, headers=headers, timeout=EVENTS_TIMEOUT) as response:
            kind = response.headers.get("Content-Type", "")
            if response.is_error or not kind.startswith("text/event-stream"):
                response.read()
                raise self._error(response)
            yield EventStream(response)

    def jobs(self, page: int = 1, per_page: int = 20) -> dict[str, Any]:
        response = self.request("GET", "/jobs", params={"page": page, "per_page": per_page})
        return self._json(response)

    def delete(self, job_id: str) -> None:
        response = self.request("DELETE", f"/jobs/{_segment(job_id)}")
        if response.is_error:
            raise self._error(response)

    def cancel(self, job_id: str) -> str:
        """POST /jobs/<id>/cancel; where the server has no such route, DELETE the job.
        Says which."""
        response = self.request("POST", f"/jobs/{_segment(job_id)}/cancel")
        if response.status_code in (404, 405):
            self.delete(job_id)
            return "deleted"
        if response.is_error:
            raise self._error(response)
        return "cancelled"

    def link(self, job_id: str, expires_in: int) -> dict[str, Any]:
        """POST /jobs/<id>/links {"expires_in": seconds}: an expiring download link."""
        response = self.request(
            "POST", f"/jobs/{_segment(job_id)}/links", json={"expires_in": expires_in}
        )
        if response.status_code in (404, 405):
            self.job(job_id)  # a missing job says so; a present one means no such route
            raise ClientError(
                f"the server at {self.url} does not offer expiring links "
                f"(POST /jobs/<id>/links answered {response.status_code}); "
                f"`vid2mp3 download {job_id}` fetches the MP3 instead"
            )
        return self._json(response)

    def download(
        self,
        job_id: str,
        directory: Path,
        name: str | None,
        force: bool,
        on_start: Callable[[int | None], None],
        on_progress: Progress,
        stop: threading.Event,
    ) -> Path:
        """GET /jobs/<id>/audio (any format; a server older than formats has only /mp3) into
        directory/name (the server's file name when None)."""
        with self._output(job_id) as response:
            if response.is_error:
                raise self._error(response)
            target = directory / (name or _attachment_name(response, job_id))
            if target.exists() and not force:
                raise ClientError(f"{target} exists (use --force to overwrite)")
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            on_start(total)
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".vid2mp3-", suffix=".part")
            tmp = Path(tmp_name)
            try:
                received = 0
                with os.fdopen(fd, "wb") as out, self._transport_errors():
                    for chunk in response.iter_bytes(CHUNK):
                        if stop.is_set():
                            raise Cancelled()
                        out.write(chunk)
                        received += len(chunk)
                        on_progress(received)
                if total is not None and received != total:
                    raise ClientError(
                        f"the download of job {job_id} ended early ({received} of {total} bytes)"
                    )
                os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp made it 0600
                _place(tmp, target, force)
            finally:
                tmp.unlink(missing_ok=True)
        return target

    @contextmanager
    def _output(self, job_id: str) -> Iterator[httpx.Response]:
        """The job's output: /audio, else (404 from a server without it) /mp3. A server with
        S3_PRESIGNED_DOWNLOADS answers 302 to the bucket: followed (httpx drops the
        Authorization header when the redirect leaves the server's origin)."""
        path = f"/jobs/{_segment(job_id)}"
        with self._stream("GET", f"{path}/audio", follow_redirects=True) as response:
            if response.status_code != 404:
                yield response
                return
        with self._stream("GET", f"{path}/mp3", follow_redirects=True) as response:
            yield response


class _ProgressReader:
    """The upload's file, reporting how far httpx has read it; Ctrl-C stops it mid-body."""

    def __init__(self, raw: BinaryIO, on_progress: Progress, stop: threading.Event):
        self._raw = raw
        self._on_progress = on_progress
        self._stop = stop

    def fileno(self) -> int:
        return self._raw.fileno()

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        if self._stop.is_set():
            raise Cancelled()
        data = self._raw.read(size)
        self._on_progress(self._raw.tell())
        return data


def _place(tmp: Path, target: Path, force: bool) -> None:
    """Move the finished download into place; without force, never over an existing file."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # atomic: fails if the target appeared meanwhile
    except FileExistsError:
        raise ClientError(f"{target} exists (use --force to overwrite)") from None
    except OSError:  # a file system without hard links
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise ClientError(f"{target} exists (use --force to overwrite)") from None
        os.replace(tmp, target)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # at import, before any thread could create a file meanwhile


class EventStream:
    """An open event stream: iterate for the job's states; close() from any thread ends it."""

    def __init__(self, response: httpx.Response):
        self._response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return _event_data(self._response)

    def close(self) -> None:
        self._response.close()


def _event_data(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The `data` of each `status` and `progress` event of a Server-Sent Events response
    (comments and other events skipped; the format: HTML Living Standard, 9.2)."""
    data: list[str] = []
    event = "message"
    for line in response.iter_lines():
        if line == "":
            if data and event in ("status", "progress"):
                try:
                    value = json.loads("\n".join(data))
                except ValueError:
                    value = None
                if isinstance(value, dict):
                    yield value
            data, event = [], "message"
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value


def _segment(job_id: str) -> str:
    return quote(job_id, safe="")


def _message(response: httpx.Response) -> str | None:
    """The API's JSON error `message`, with its per-field messages when it has them."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return None
    details = []
    for location in (body.get("errors") or {}).values():
        if isinstance(location, dict):
            for field, problems in location.items():
                text = "; ".join(map(str, problems)) if isinstance(problems, list) else problems
                details.append(f"{field}: {text}")
    message: str = body["message"]
    return message + (f" ({', '.join(details)})" if details else "")


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return re.sub(r"^\[Errno -?\d+\] ", "", text)


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*UTF-8''([^;\s]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*"([^"]*)"', re.IGNORECASE)


# The extension of each output's Content-Type, as the server serves them.
EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/ogg": "opus",
    "audio/flac": "flac",
    "audio/wav": "wav",
}


def _attachment_name(response: httpx.Response, job_id: str) -> str:
    """The server's file name (RFC 6266), reduced to a safe base name ending in the extension
    of its Content-Type (.mp3 when unknown)."""
    header = response.headers.get("Content-Disposition", "")
    match = _FILENAME_STAR.search(header)
    name = unquote(match.group(1)) if match else None
    if name is None and (plain := _FILENAME.search(header)):
        name = plain.group(1)
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return safe_name(name, job_id, EXTENSIONS.get(kind, "mp3"))


def safe_name(name: str | None, job_id: str, extension: str = "mp3") -> str:
    base = re.sub(r"[\x00-\x1f/\\]", "_", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = base.strip().lstrip(".")
    if not base:
        base = f"{job_id}.{extension}"
    return base if base.lower().endswith(f".{extension}") else f"{base}.{extension}"
