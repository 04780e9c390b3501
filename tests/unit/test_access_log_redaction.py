"""gunicorn's access lines never carry an API key, an Authorization header or a link token."""

from __future__ import annotations

import base64
import datetime
import logging

import pytest
from gunicorn.config import Config

from api.gunicorn_logging import JsonLogger, RedactingLogger

KEY = "v2m_0123456789ab_" + "S" * 43
FORMAT = (
    '%(h)s %(u)s "%(r)s" %(s)s "%(f)s" path=%(U)s query=%(q)s '
    "auth=%({authorization}i)s env=%({http_authorization}e)s"
)


class _Response:
    status = "200 OK"
    sent = 10
    headers = [("X-Request-ID", "r1")]


class _Request:
    def __init__(self, headers):
        self.headers = list(headers.items())


def access_line(logger_class, path: str, query: str = "", headers=None) -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", FORMAT)
    logger = logger_class(cfg)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger.access_log.handlers = [Keep()]
    headers = headers or {}
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path + (f"?{query}" if query else ""),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": headers.get("REFERER", "-"),
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    logger.access(_Response(), _Request(headers), environ, datetime.timedelta(seconds=1))
    return lines[0]


@pytest.mark.parametrize("logger_class", [RedactingLogger, JsonLogger])
@pytest.mark.parametrize(
    "path,query,headers",
    [
        ("/jobs", "", {"AUTHORIZATION": f"Bearer {KEY}"}),
        ("/jobs", f"api_key={KEY}&page=2", {}),
        ("/jobs", "", {"AUTHORIZATION": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}),
        ("/links/eyJzZWNyZXQiOiJ0b2tlbiJ9.abc.def", "", {}),
        ("/guest/SECRETtokenSECRET", "", {"REFERER": "https://x/guest/SECRETtokenSECRET"}),
    ],
)
def test_the_access_line_redacts_credentials(logger_class, path, query, headers):
    line = access_line(logger_class, path, query, headers)
    assert "SSSS" not in line and "SECRET" not in line and "eyJ" not in line
    assert "[redacted]" in line
    assert " 200 " in line  # the rest of the line is still there


def test_an_ordinary_request_line_is_untouched():
    line = access_line(RedactingLogger, "/jobs/abc", "page=2")
    assert '"GET /jobs/abc?page=2 HTTP/1.1"' in line and "path=/jobs/abc query=page=2" in line
