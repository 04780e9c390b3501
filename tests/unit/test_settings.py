import pytest

from core.settings import ConfigError, Settings

BASE = {
    "JWT_SECRET": "unit-test-jwt-secret-0123456789abcdef",
    "ADMIN_EMAIL": "admin@example.com",
    "ADMIN_PASSWORD": "correct horse battery",
}


@pytest.mark.parametrize("missing", ["JWT_SECRET", "ADMIN_EMAIL", "ADMIN_PASSWORD"])
def test_missing_secret_names_the_variable(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env, dotenv_path=None)


@pytest.mark.parametrize(
    "env,match",
    [
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"MYSQL_PORT": "abc"}, "MYSQL_PORT"),
        ({"OPEN_SIGNUP": "maybe"}, "OPEN_SIGNUP"),
        ({"API_PORT": "70000"}, "API_PORT"),
        ({"CONVERT_TIME_LIMIT": "10", "CONVERT_SOFT_TIME_LIMIT": "20"}, "CONVERT_TIME_LIMIT"),
        ({"FORWARDED_ALLOW_IPS": "proxy.internal"}, "FORWARDED_ALLOW_IPS"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1/8"}, "FORWARDED_ALLOW_IPS"),  # host bits, as gunicorn
        ({"TRUSTED_PROXIES": "1", "FORWARDED_ALLOW_IPS": " , "}, "FORWARDED_ALLOW_IPS"),
        ({"LOGIN_MAX_FAILURES_PER_ACCOUNT": "0"}, "LOGIN_MAX_FAILURES_PER_ACCOUNT"),
    ],
)
def test_malformed_values_are_named(env, match):
    with pytest.raises(ConfigError, match=match):
        Settings.from_env({**BASE, **env}, dotenv_path=None)


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "API_PORT=9000\nMYSQL_DATABASE=from_file\n" + "".join(f"{k}={v}\n" for k, v in BASE.items())
    )
    settings = Settings.from_env({"API_PORT": "9100"}, dotenv_path=dotenv)
    assert (settings.api_port, settings.mysql_database) == (9100, "from_file")


def test_defaults_and_overrides():
    settings = Settings.from_env(BASE, dotenv_path=None, overrides={"max_upload_mb": 5})
    assert settings.api_port == 8080 and settings.item_default_ttl == 365 * 24 * 3600
    assert settings.max_upload_bytes == 5 * 2**20 and not settings.open_signup
    assert settings.base_url == "http://127.0.0.1:8080"


def test_every_variable_is_documented():
    for entry in Settings.documented():
        assert entry["env"].isupper() and entry["doc"]


@pytest.mark.parametrize(
    "env,match",
    [
        ({"JWT_SECRET": ""}, "JWT_SECRET is required"),
        ({"JWT_SECRET": "REPLACE_ME"}, "JWT_SECRET still holds a placeholder"),
        ({"JWT_SECRET": "a" * 40}, "JWT_SECRET is too weak"),
        ({"JWT_SECRET": "abababababababababababababababababab"}, "JWT_SECRET is too weak"),
        ({"ADMIN_PASSWORD": "REPLACE_ME"}, "ADMIN_PASSWORD still holds a placeholder"),
        ({"ADMIN_PASSWORD": "password1234"}, "ADMIN_PASSWORD is too weak"),
        ({"ADMIN_PASSWORD": "short-pw"}, "ADMIN_PASSWORD must be at least 12"),
        ({"MYSQL_PASSWORD": "REPLACE_ME"}, "MYSQL_PASSWORD still holds a placeholder"),
        ({"MYSQL_HOST": "mysql"}, "MYSQL_PASSWORD is empty"),
        ({"SMTP_URL": "smtp://REPLACE_ME_USER:REPLACE_ME_PASSWORD@mail:587"}, "SMTP_URL"),
        ({"MONGO_URI": "mongodb://REPLACE_ME_MONGO_ROOT_USERNAME:x@mongodb"}, "MONGO_URI"),
        ({"REDIS_URL": "redis://:REPLACE_ME_REDIS_PASSWORD@redis:6379/0"}, "REDIS_URL"),
        ({"FLOWER_BASIC_AUTH": "admin:"}, "FLOWER_BASIC_AUTH is required"),
        ({"FLOWER_BASIC_AUTH": "admin:admin"}, "FLOWER_BASIC_AUTH must be at least 12"),
        ({"FLOWER_BASIC_AUTH": "REPLACE_ME_USER:REPLACE_ME"}, "FLOWER_BASIC_AUTH still holds"),
        ({"UPLOAD_RATE_LIMIT": "lots"}, "UPLOAD_RATE_LIMIT"),
        ({"WEBHOOK_REDELIVER_RATE_LIMIT": "often"}, "WEBHOOK_REDELIVER_RATE_LIMIT must be a rate"),
        ({"WEBHOOK_TIMEOUT_SECONDS": "600"}, "WEBHOOK_TIMEOUT_SECONDS must be at most 60"),
        ({"WEBHOOK_TIMEOUT_SECONDS": "0"}, "WEBHOOK_TIMEOUT_SECONDS must be positive"),
        ({"WEBHOOK_OWNER_CONCURRENCY": "0"}, "WEBHOOK_OWNER_CONCURRENCY must be positive"),
        ({"WEBHOOK_ENDPOINT_CONCURRENCY": "-1"}, "WEBHOOK_ENDPOINT_CONCURRENCY must be positive"),
        ({"SWEEP_INTERVAL_SECONDS": "1m"}, "SWEEP_INTERVAL_SECONDS must be a number"),
        ({"MAX_DURATION_SECONDS": "0"}, "MAX_DURATION_SECONDS must be positive"),
        # the rules beside each field in core/settings.py, each with its whole line
        ({"LINK_TTL_SECONDS": "59"}, "LINK_TTL_SECONDS must be between 60 and 604800"),
        ({"FFMPEG_MEMORY_MB": "255"}, "FFMPEG_MEMORY_MB must be at least 256"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES must be 0 or more"),
        ({"API_PORT": "0"}, "API_PORT must be a TCP port"),
        ({"WORKER_METRICS_PORT": "65536"}, "WORKER_METRICS_PORT must be 0 (off) or a TCP port"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ({"LOG_FORMAT": "JSON"}, "LOG_FORMAT must be text or json"),
        ({"REDIS_URL": "http://redis:6379"}, "REDIS_URL must be a redis:// URL"),
        ({"ADMIN_EMAIL": "admin"}, "ADMIN_EMAIL must be an email address"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters when set"),
        ({"UPLOAD_EXPIRES_SECONDS": "0"}, "UPLOAD_EXPIRES_SECONDS must be positive"),
        # the S3 store: one blob store at a time, and names S3 accepts
        (
            {"S3_BUCKET": "media", "MONGO_URI": "mongodb://127.0.0.1:27017/"},
            "S3_BUCKET and MONGO_URI are both set",
        ),
        ({"S3_BUCKET": "My_Bucket"}, "S3_BUCKET must be an S3 bucket name"),
        ({"S3_PREFIX": "../x"}, "S3_PREFIX must end with /"),
        ({"S3_ADDRESSING_STYLE": "dns"}, "S3_ADDRESSING_STYLE must be path or virtual"),
        ({"S3_ENDPOINT_URL": "seaweed:8333"}, "S3_ENDPOINT_URL must be an http:// or https://"),
        ({"S3_PRESIGNED_DOWNLOADS": "true"}, "S3_PRESIGNED_DOWNLOADS needs S3_BUCKET"),
        ({"S3_PRESIGN_SECONDS": "0"}, "S3_PRESIGN_SECONDS must be between 1 and 604800"),
    ],
)
def test_secrets_and_ceilings_refuse_unsafe_values(env, match):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({**BASE, **env}, dotenv_path=None)
    assert match in str(refused.value)


def test_values_within_the_rules_start():
    settings = Settings.from_env(
        {**BASE, "LOG_LEVEL": "debug", "LINK_TTL_SECONDS": "60", "WORKER_METRICS_PORT": "0"},
        dotenv_path=None,
    )
    assert (settings.log_level, settings.link_ttl_seconds) == ("debug", 60)


def test_every_value_of_the_example_files_is_refused_where_it_is_a_secret():
    """The placeholders of .env.example and secrets.example.yaml never start a process."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    example = (root / "k8s/base/secrets.example.yaml").read_text()
    for name, value in re.findall(r"^\s+([A-Z_]+): (.+)$", example, re.M):
        if name in {f["env"] for f in Settings.documented()}:
            with pytest.raises(ConfigError, match=name):
                Settings.from_env({**BASE, name: value}, dotenv_path=None)


def test_a_strong_configuration_starts():
    settings = Settings.from_env(
        {
            **BASE,
            "MYSQL_HOST": "mysql",
            "MYSQL_PASSWORD": "x9-Tq!pLm2#",
            "FLOWER_BASIC_AUTH": "ops:Vq8-ZtP3-kLm",
        },
        dotenv_path=None,
    )
    assert settings.mysql_host == "mysql"


def test_proxy_networks_read_like_gunicorns():
    read = Settings.from_env(
        {**BASE, "FORWARDED_ALLOW_IPS": "127.0.0.1, 10.0.0.0/8,::1"}, dotenv_path=None
    )
    assert [str(n) for n in read.proxy_networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    anyone = Settings.from_env({**BASE, "FORWARDED_ALLOW_IPS": "*"}, dotenv_path=None)
    assert anyone.proxy_networks is None


@pytest.mark.parametrize(
    "items,broker",
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0", "redis://localhost:6379"),
        ("redis://:pw@redis:6379/0", "redis://:other@redis/0"),
        ("redis://redis:6379/2", "redis://redis:6379/02"),
        ("redis://redis:6379?db=3", "redis://REDIS:6379/3"),
    ],
)
def test_the_broker_must_not_share_the_items_database(items, broker):
    """Users' items fill REDIS_URL; the broker's queues need their own database or server."""
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        Settings.from_env(
            {**BASE, "REDIS_URL": items, "CELERY_BROKER_URL": broker}, dotenv_path=None
        )


@pytest.mark.parametrize(
    "items,broker",
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1"),
        ("redis://redis:6379/0", "redis://broker:6379/0"),
        ("redis://redis:6379/0", "redis://redis:6380/0"),
        ("redis://redis:6379/0", "amqp://guest@rabbit//"),
    ],
)
def test_a_broker_of_its_own_is_accepted(items, broker):
    settings = Settings.from_env(
        {**BASE, "REDIS_URL": items, "CELERY_BROKER_URL": broker}, dotenv_path=None
    )
    assert settings.celery_broker_url == broker
