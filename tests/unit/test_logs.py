"""LOG_FORMAT=json: one JSON object per line carrying the request, job and task context."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from core.observability import ContextFilter, JsonFormatter, TextFormatter, accept_request_id, bind


@pytest.fixture
def capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("vid2mp3.test.logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, handler, stream
    logger.removeHandler(handler)
    bind()


def test_json_lines_carry_the_context(capture):
    logger, handler, stream = capture
    handler.setFormatter(JsonFormatter())
    bind(request_id="req-1", job_id="a" * 32, task="convert.video_to_mp3")
    logger.info("job %s done\nsecond line", "a" * 32)
    bind()
    logger.warning("outside any request")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # a newline in a message or a traceback stays inside its object
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == f"job {'a' * 32} done\nsecond line"
    assert (first["request_id"], first["job_id"], first["task"]) == (
        "req-1",
        "a" * 32,
        "convert.video_to_mp3",
    )
    assert first["level"] == "INFO" and first["logger"] == "vid2mp3.test.logs"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["timestamp"])
    assert second["level"] == "WARNING"
    assert (second["request_id"], second["job_id"], second["task"]) == (None, None, None)
    assert "ValueError: boom" in third["exception"]


def test_text_lines_name_the_request_only_when_there_is_one(capture):
    logger, handler, stream = capture
    handler.setFormatter(TextFormatter())
    bind(request_id="req-2", job_id="b" * 32)
    logger.info("converted")
    bind()
    logger.info("idle")
    converted, idle = stream.getvalue().splitlines()
    assert converted.endswith(f"converted [request_id=req-2 job_id={'b' * 32}]")
    assert idle.endswith("vid2mp3.test.logs: idle")


@pytest.mark.parametrize("offered", ["abc", "A.b_c-1", "x" * 128])
def test_a_sane_client_request_id_is_kept(offered):
    assert accept_request_id(offered) == offered


@pytest.mark.parametrize("offered", [None, "", "x" * 129, "two words", "a;b", "é", "a\nb"])
def test_anything_else_gets_a_new_id(offered):
    generated = accept_request_id(offered)
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert generated != accept_request_id(offered)
