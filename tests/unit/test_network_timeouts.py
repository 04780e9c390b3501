"""Every client of a network service has a deadline, from its own setting: a silent peer
(packets dropped, no reset) is an outage after that long, never a hang."""

from __future__ import annotations

import socket

import celeryconfig
from core.adapters.redis.client import redis_client
from core.adapters.stores.gridfs import mongo_client_factory
from core.bootstrap import Container
from core.settings import Settings
from tests.support.config import service_env


def settings(**env: str) -> Settings:
    return Settings.from_env(service_env(**env), dotenv_path=None)


def test_the_broker_connection_times_out_keeps_alive_and_reconnects_forever():
    config = celeryconfig.celery_config(
        settings(BROKER_TIMEOUT_SECONDS="7", BROKER_HEARTBEAT_SECONDS="4")
    )
    transport = config["broker_transport_options"]
    assert transport["socket_timeout"] == transport["socket_connect_timeout"] == 7
    assert transport["socket_keepalive"] is True
    assert transport["health_check_interval"] == 4
    tcp = transport["socket_keepalive_options"]
    assert tcp[socket.TCP_USER_TIMEOUT] == 7000  # unacknowledged data: dropped after 7 s
    assert tcp[socket.TCP_KEEPIDLE] == 4 and tcp[socket.TCP_KEEPCNT] == 3
    assert config["broker_heartbeat"] == 4 and config["broker_connection_timeout"] == 7
    assert config["broker_connection_max_retries"] is None


def test_redis_commands_have_a_deadline_and_a_health_check():
    client = redis_client("redis://198.18.0.9:6379/0", timeout=1.5, health_check_seconds=9)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 1.5
    assert kwargs["socket_keepalive"] is True and kwargs["health_check_interval"] == 9


def test_the_container_passes_each_setting_to_its_client(tmp_path):
    built = Container(
        settings(
            REDIS_TIMEOUT_SECONDS="0.7",
            MYSQL_CONNECT_TIMEOUT_SECONDS="4",
            MYSQL_READ_TIMEOUT_SECONDS="6",
            MYSQL_WRITE_TIMEOUT_SECONDS="7",
            SMTP_URL="smtp://198.18.0.9:25",
            SMTP_TIMEOUT_SECONDS="12",
            DATA_DIR=str(tmp_path),
        )
    )
    assert built.redis.connection_pool.connection_kwargs["socket_timeout"] == 0.7
    config = {**built.db._config, **built.db._timeouts}  # what every pooled connect() gets
    assert (config["connect_timeout"], config["read_timeout"], config["write_timeout"]) == (
        4,
        6,
        7,
    )
    assert built.mailer.timeout == 12


def test_gridfs_never_waits_forever_on_a_socket():
    client = mongo_client_factory("mongodb://198.18.0.9:27017/", timeout=2, socket_timeout=20)()
    try:
        options = client.options.pool_options
        assert options.socket_timeout == 20 and options.connect_timeout == 2
        assert client.options.server_selection_timeout == 2
    finally:
        client.close()
