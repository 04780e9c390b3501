"""The fetch task's time limits follow IMPORT_TIMEOUT_SECONDS, not the conversion's."""

from __future__ import annotations

import celeryconfig
from core.settings import Settings
from tests.support.config import service_env


def test_a_fetch_may_use_its_whole_deadline_and_is_not_handed_out_twice_meanwhile():
    settings = Settings.from_env(
        service_env(DATA_DIR="/tmp", IMPORT_TIMEOUT_SECONDS="7200", CONVERT_TIME_LIMIT="1900"),
        dotenv_path=None,
    )
    config = celeryconfig.celery_config(settings)
    limits = config["task_annotations"][celeryconfig.FETCH_TASK]
    assert 7200 < limits["soft_time_limit"] < limits["time_limit"]
    assert config["task_time_limit"] == 1900  # conversions keep theirs
    assert config["broker_transport_options"]["visibility_timeout"] > limits["time_limit"]
    assert config["task_routes"]["fetch.*"]["queue"] == celeryconfig.FETCH_QUEUE == "fetch"
