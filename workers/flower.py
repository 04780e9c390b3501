"""Flower, the task dashboard, never without HTTP basic auth: `python -m workers.flower`."""

import sys

from core.bootstrap import Container
from core.settings import ConfigError, Settings, check_flower_auth

try:
    settings = Settings.from_env()
    check_flower_auth(settings.flower_basic_auth)
except ConfigError as exc:
    sys.exit(f"configuration error: {exc}")
app = Container(settings).celery

if __name__ == "__main__":
    app.start(
        [
            "flower",
            f"--port={settings.flower_port}",
            f"--basic-auth={settings.flower_basic_auth}",
            *sys.argv[1:],
        ]
    )
