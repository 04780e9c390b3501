import pytest

from core.settings import ConfigError, Settings

BASE = {"JWT_SECRET": "s" * 40, "ADMIN_EMAIL": "admin@example.com", "ADMIN_PASSWORD": "password1"}


@pytest.mark.parametrize("missing", ["JWT_SECRET", "ADMIN_EMAIL", "ADMIN_PASSWORD"])
def test_missing_secret_names_the_variable(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env, dotenv_path=None)


@pytest.mark.parametrize("env,match", [
    ({"JWT_SECRET": "short"}, "JWT_SECRET"), ({"MYSQL_PORT": "abc"}, "MYSQL_PORT"),
    ({"OPEN_SIGNUP": "maybe"}, "OPEN_SIGNUP"), ({"API_PORT": "70000"}, "API_PORT"),
    ({"CONVERT_TIME_LIMIT": "10", "CONVERT_SOFT_TIME_LIMIT": "20"}, "CONVERT_TIME_LIMIT")])
def test_malformed_values_are_named(env, match):
    with pytest.raises(ConfigError, match=match):
        Settings.from_env({**BASE, **env}, dotenv_path=None)


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("API_PORT=9000\nMYSQL_DATABASE=from_file\n" +
                      "".join(f"{k}={v}\n" for k, v in BASE.items()))
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
