"""`make up` writes .env with generated secrets: private from the first byte, never via a link."""

import importlib.util
import stat
import sys
from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def devstack(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "devstack_under_test", ROOT / "scripts" / "devstack.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ENV_FILE", tmp_path / ".env")
    return module


def test_env_file_is_created_private_with_secrets_the_settings_accept(devstack, tmp_path, capsys):
    devstack.write_env_file()
    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    settings = Settings.from_env({}, dotenv_path=env_file)
    assert len(settings.jwt_secret) >= 32 and settings.flower_basic_auth.startswith("admin:")
    assert settings.admin_password in capsys.readouterr().out


def test_a_dangling_link_is_never_followed(devstack, tmp_path):
    target = tmp_path / "elsewhere" / "stolen"
    target.parent.mkdir()
    (tmp_path / ".env").symlink_to(target)
    devstack.write_env_file()
    assert not target.exists()


def test_an_existing_env_file_is_kept(devstack, tmp_path):
    (tmp_path / ".env").write_text("JWT_SECRET=mine\n")
    devstack.write_env_file()
    assert (tmp_path / ".env").read_text() == "JWT_SECRET=mine\n"
