"""gunicorn's own logs (start-up, workers, access) as JSON lines when LOG_FORMAT=json."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from core.observability import REQUEST_ID_HEADER, ContextFilter, JsonFormatter, request_id_var


class JsonLogger(Logger):
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
