"""A stack whose every backing service the tests can break: private Redis, a MySQL proxy,
a restartable SMTP server, a fast sweeper; plus a long input to interrupt."""

from __future__ import annotations

import pytest

from tests.support import media
from tests.support.client import login
from tests.support.proxy import Outage
from tests.support.servers import RedisServer, SMTPServer
from tests.support.stack import running_stack


@pytest.fixture(scope="session")
def services(tmp_path_factory, settings):
    redis_dir = tmp_path_factory.mktemp("redis")
    redis = RedisServer(str(redis_dir))
    redis.start()
    mysql = Outage(settings.mysql_host, settings.mysql_port).up()
    smtp = SMTPServer()
    smtp.start()
    yield redis, mysql, smtp
    smtp.stop()
    mysql.down()
    redis.stop()


@pytest.fixture(scope="session")
def stack(services, tmp_path_factory):
    redis, mysql, smtp = services
    env = {
        "REDIS_URL": redis.url(0),
        "CELERY_BROKER_URL": redis.url(1),
        "MYSQL_PORT": str(mysql.port),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "SWEEP_INTERVAL_SECONDS": "1",
        "SWEEP_AFTER_SECONDS": "4",
        "LEASE_SECONDS": "2",
        "NOTIFY_MAX_RETRIES": "3",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
    }
    with running_stack(tmp_path_factory.mktemp("faults"), env, beat=True) as running:
        running.blob_store = "directory"
        yield running


@pytest.fixture(scope="session")
def admin(stack):
    return login(stack, stack.settings.admin_email, stack.settings.admin_password)


@pytest.fixture(scope="session")
def user(stack, admin):
    created = admin.post(
        "/users", json={"name": "faulty", "email": "faulty@example.com", "password": "password-1"}
    )
    assert created.status_code == 201, created.text
    return login(stack, "faulty@example.com", "password-1")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fault-media")


@pytest.fixture(scope="session")
def long_input(media_dir):
    """Ten minutes of sound: a few seconds of ffmpeg work, long enough to interrupt."""
    return media.make_audio_only(media_dir, seconds=600, fmt="m4a")


@pytest.fixture(scope="session")
def silent_duration_input(media_dir):
    """Half an hour of sound in a WebM written to a pipe, as a browser's MediaRecorder does:
    no declared duration, so the conversion never reports a percentage."""
    return media.make_streamed_audio_webm(media_dir, seconds=1800)


@pytest.fixture(scope="session")
def clip(media_dir):
    return media.make_video(media_dir, seconds=2.0)
