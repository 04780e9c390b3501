"""Where the server is, who the user is, and the token `vid2mp3 login` keeps."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vid2mp3_client.errors import ClientError

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_FILE = "token.json"


@dataclass(frozen=True)
class Config:
    """Read once from the environment (and `--url`)."""

    url: str
    email: str | None
    password: str | None
    config_dir: Path
    api_key: str | None = None  # VID2MP3_API_KEY: the way for scripts
    tus_min_bytes: int = 16 * 2**20  # files this large go over tus, in chunks
    tus_chunk_bytes: int = 8 * 2**20

    @classmethod
    def from_env(cls, environ: Mapping[str, str], url: str | None = None) -> Config:
        base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return cls(
            url=url or environ.get("VID2MP3_URL") or DEFAULT_URL,
            email=environ.get("VID2MP3_EMAIL") or None,
            password=environ.get("VID2MP3_PASSWORD") or None,
            api_key=(environ.get("VID2MP3_API_KEY") or "").strip() or None,
            config_dir=Path(base) / "vid2mp3",
            tus_min_bytes=_bytes(environ, "VID2MP3_TUS_MIN_BYTES", 16 * 2**20),
            tus_chunk_bytes=_bytes(environ, "VID2MP3_TUS_CHUNK_BYTES", 8 * 2**20),
        )

    def checked_url(self) -> str:
        """The base URL without a trailing slash; ClientError unless it is http(s)://host."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(
                f"the server URL {self.url!r} is not an http:// or https:// URL "
                "(set VID2MP3_URL or --url)"
            )
        try:
            _ = parts.port  # raises on a port that is not a number in range
        except ValueError:
            raise ClientError(f"the server URL {self.url!r} has an invalid port") from None
        return self.url.rstrip("/")


def _bytes(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ClientError(f"{name} must be a positive number of bytes, not {raw!r}")
    return int(raw)


class TokenStore:
    """One token or API key, for one server, in a file only its owner can read (mode 0600)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / TOKEN_FILE

    def save(self, url: str, email: str, token: str, expires_in: int) -> Path:
        return self._write(
            {
                "url": url,
                "email": email,
                "access_token": token,
                "expires_at": int(time.time()) + int(expires_in),
            }
        )

    def save_key(self, url: str, key: str, user: str, scopes: list[str]) -> Path:
        """An API key, which lasts until it is revoked (or its own expiry)."""
        return self._write({"url": url, "user": user, "scopes": scopes, "api_key": key})

    def _write(self, record: dict[str, Any]) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A new file created 0600 (never a wider mode, never through a symlink), then renamed
        # over the old one, so the token is never readable by others, not even for a moment.
        tmp = self.directory / f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.path

    def load(self) -> dict[str, Any] | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ClientError(f"cannot read {self.path}: {exc.strerror}") from None
        with os.fdopen(fd, encoding="utf-8") as src:
            try:
                record = json.load(src)
            except ValueError:
                return None
        if not isinstance(record, dict):
            return None
        return record if record.get("access_token") or record.get("api_key") else None

    def remove(self) -> bool:
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False
