"""gunicorn's own logs (start-up, workers, access): credentials redacted from access lines,
and JSON lines when LOG_FORMAT=json."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

from core.observability import REQUEST_ID_HEADER, ContextFilter, JsonFormatter, request_id_var

REDACTED = "[redacted]"
# Paths whose last segment is a bearer credential: a signed download link, an upload link.
_TOKEN_PATHS = re.compile(r"(/(?:links|guest)/)[^/?#\s\"]+")
# An API key wherever it shows (a query string, a Basic user name).
_API_KEY = re.compile(r"v2m_[^&/;\s\"]*")
_URL_ATOMS = ("r", "U", "q", "f", "u")
_HEADER_ATOMS = ("{authorization}i", "{cookie}i", "{http_authorization}e", "{http_cookie}e")


def redact(text: str) -> str:
    """A request line, path or query without the credentials it may carry."""
    return _API_KEY.sub(REDACTED, _TOKEN_PATHS.sub(r"\1" + REDACTED, text))


class RedactingLogger(Logger):
    """Access lines never hold a token, API key or Authorization header, whatever the format:
    the download links' and upload links' tokens, keys in a query string or sent as Basic
    credentials are replaced by [redacted]."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in _URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        for name in _HEADER_ATOMS:
            if name in atoms:
                atoms[name] = REDACTED
        return atoms


class JsonLogger(RedactingLogger):
    """gunicorn's error and access logs through the service's JSON formatter."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(JsonFormatter())
                handler.addFilter(ContextFilter())

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        """The access line carries the X-Request-ID the response went out with."""
        wanted = REQUEST_ID_HEADER.lower()
        request_id = next((value for name, value in resp.headers if name.lower() == wanted), None)
        token = request_id_var.set(request_id)
        try:
            super().access(resp, req, environ, request_time)
        finally:
            request_id_var.reset(token)
