"""`make up` (scripts/devstack.py): it starts every process, Ctrl-C leaves none behind, and the
worker metrics URLs it prints serve its own workers, never another stack's."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from core.bootstrap import Container
from core.settings import Settings
from devtools.processes import ROOT, free_port, worker_names
from tests.support.config import service_env
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

# What `make up CONVERT_WORKERS=2` runs (see the Makefile's `up` target).
DEVSTACK = [sys.executable, "scripts/devstack.py", "--convert-workers", "2"]
SERVICES = 8  # api, two convert workers, notify, webhooks and fetch workers, beat, Flower


def sessions_alive(sessions: set[int]) -> list[str]:
    """The processes, zombies aside, still running in any of these sessions."""
    alive = []
    for proc in psutil.process_iter(["pid", "name", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) in sessions:
                alive.append(f"{proc.info['name']} ({proc.pid})")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


def api_ready(url: str, devstack: subprocess.Popen) -> bool:
    assert devstack.poll() is None, f"devstack exited with {devstack.returncode}"
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def devstack_env(tmp_path, **overrides) -> dict[str, str]:
    """Settings of a `make up` run of its own: throwaway names, free API and Flower ports."""
    run = uuid.uuid4().hex[:8]
    api_port = free_port()
    return service_env(
        **{
            "MYSQL_DATABASE": f"vid2mp3_up_{run}",
            "REDIS_PREFIX": f"vid2mp3-up-{run}:",
            "CELERY_KEY_PREFIX": f"vid2mp3-up-{run}:",
            "API_PORT": api_port,
            "FLOWER_PORT": free_port(),
            "FLOWER_BASIC_AUTH": "flower:flower-test-password",
            "DATA_DIR": tmp_path / "data",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "WEB_CONCURRENCY": 1,
            "MONGO_URI": "",
            "SMTP_URL": "",  # directory store and outbox, whatever a .env says
            **overrides,
        }
    )


def start_devstack(tmp_path, env, log) -> subprocess.Popen:
    """`make up CONVERT_WORKERS=2` with env laid over ours, writing to log."""
    inherited = {k: v for k, v in os.environ.items() if k not in env and k != "WORKER_METRICS_PORT"}
    return subprocess.Popen(
        [*DEVSTACK, "--env-file", str(tmp_path / ".env")],
        cwd=ROOT,
        env={**inherited, **env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_make_up_starts_everything_and_ctrl_c_stops_it_all(tmp_path):
    env = devstack_env(tmp_path, WORKER_METRICS_PORT=0)  # metrics: the tests below
    api_port, flower_port = int(env["API_PORT"]), int(env["FLOWER_PORT"])
    container = Container(Settings.from_env(env, dotenv_path=None))
    url = f"http://127.0.0.1:{api_port}"
    log = open(tmp_path / "devstack.log", "wb")
    devstack = start_devstack(tmp_path, env, log)
    sessions = {devstack.pid}
    try:
        wait_for(lambda: api_ready(url, devstack), timeout=90, what="the API to be ready")
        host = socket.gethostname()
        nodes = {f"convert@{host}", f"convert-2@{host}", f"notify@{host}", f"fetch@{host}"}
        wait_for(
            lambda: nodes <= worker_names(container.celery),
            timeout=90,
            what="every worker to answer a ping",
        )
        wait_for(lambda: _listening(flower_port), timeout=60, what="Flower")
        services = psutil.Process(devstack.pid).children()
        assert len(services) == SERVICES, [p.cmdline() for p in services]
        sessions |= {os.getsid(p.pid) for p in services}
        assert len(sessions) == SERVICES + 1  # each service in its own session
        assert len(sessions_alive(sessions)) > SERVICES  # gunicorn's and Celery's children too

        [notify] = [p for p in services if "workers.notify" in p.cmdline()]
        os.killpg(notify.pid, signal.SIGKILL)  # a crash: `make up` starts it again
        again = wait_for(
            lambda: _service(devstack, "workers.notify", other_than=notify.pid),
            timeout=30,
            what="the notify worker to be restarted",
        )
        sessions.add(os.getsid(again.pid))
        wait_for(
            lambda: f"notify@{host}" in worker_names(container.celery),
            timeout=90,
            what="the restarted notify worker to answer a ping",
        )

        os.killpg(devstack.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group

        assert devstack.wait(timeout=60) == 0
        wait_for(
            lambda: not sessions_alive(sessions),
            timeout=15,
            what=f"every process of `make up` to be gone ({len(sessions)} sessions)",
        )
        assert sessions_alive(sessions) == []
        assert not _listening(api_port) and not _listening(flower_port)
        assert not worker_names(container.celery)
    except BaseException:
        log.flush()
        print((tmp_path / "devstack.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        kill_devstack(devstack, sessions)  # leave nothing behind, whatever happened above
        log.close()
        from tests.support.config import cleanup

        cleanup(container)


# `make up`'s metrics ports before it picked free ones: 9808 and one more per worker.
OLD_METRICS_PORTS = range(9808, 9808 + 5)
WORKER_NODES = {  # process -> (queue, node name before @host)
    "worker-convert": ("convert", "convert"),
    "worker-convert-2": ("convert", "convert-2"),
    "worker-notify": ("notify", "notify"),
    "worker-webhooks": ("webhooks", "webhooks"),
    "worker-fetch": ("fetch", "fetch"),
}
OTHER_STACK = 'vid2mp3_worker_up{queue="convert",worker="another-stack"} 1.0\n'


class _OtherStackMetrics(BaseHTTPRequestHandler):
    def do_GET(self):
        body = OTHER_STACK.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def another_stack_on(ports) -> Iterator[list[int]]:
    """Another stack's worker metrics served on `ports`; yields those it could take (the rest
    are held by some other process already, which serves the test as well)."""
    servers = []
    for port in ports:
        try:
            servers.append(ThreadingHTTPServer(("127.0.0.1", port), _OtherStackMetrics))
        except OSError:
            continue
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [server.server_address[1] for server in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def banner_metrics(log_path) -> dict[str, str]:
    """worker -> URL, from `make up`'s "[devstack] worker-... metrics on URL" lines."""
    text = log_path.read_text(errors="replace")
    return dict(re.findall(r"^\[devstack\] (worker-\S+) metrics on (\S+)$", text, re.MULTILINE))


def listening_ports(sessions: set[int]) -> set[int]:
    """The TCP ports the processes of these sessions listen on."""
    ports = set()
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) in sessions:
                ports |= {c.laddr.port for c in proc.net_connections("tcp") if c.status == "LISTEN"}
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return ports


def scrape(url: str) -> str | None:
    try:
        response = requests.get(url, timeout=5)
    except requests.RequestException:
        return None
    return response.text if response.status_code == 200 else None


def test_make_up_beside_another_stack_serves_its_own_metrics(tmp_path):
    env = devstack_env(tmp_path)  # WORKER_METRICS_PORT unset, as in a fresh checkout
    container = Container(Settings.from_env(env, dotenv_path=None))
    url = f"http://127.0.0.1:{env['API_PORT']}"
    log_path = tmp_path / "devstack.log"
    log = open(log_path, "wb")
    with another_stack_on(OLD_METRICS_PORTS):
        devstack = start_devstack(tmp_path, env, log)
        sessions = {devstack.pid}
        try:
            wait_for(lambda: api_ready(url, devstack), timeout=90, what="the API to be ready")
            banner = banner_metrics(log_path)
            assert set(banner) == set(WORKER_NODES), banner
            host = socket.gethostname()
            for name, metrics_url in banner.items():
                port = urlsplit(metrics_url).port
                assert port not in OLD_METRICS_PORTS, banner
                body = wait_for(
                    lambda: scrape(metrics_url),  # noqa: B023 (called at once)
                    timeout=90,
                    what=f"{name} to serve {metrics_url}",
                )
                queue, node = WORKER_NODES[name]
                assert "another-stack" not in body
                assert f'vid2mp3_worker_up{{queue="{queue}",worker="{node}@{host}"}} 1.0' in body
            sessions |= {os.getsid(p.pid) for p in psutil.Process(devstack.pid).children()}
            ports = {urlsplit(u).port for u in banner.values()}
            assert ports <= listening_ports(sessions)  # served by this stack, nobody else
            log.flush()
            output = log_path.read_text(errors="replace")
            assert "Traceback" not in output and "Address already in use" not in output
            assert "exited with" not in output  # no worker stopped and was restarted
            os.killpg(devstack.pid, signal.SIGINT)
            assert devstack.wait(timeout=60) == 0
        except BaseException:
            log.flush()
            print(log_path.read_text(errors="replace")[-6000:])
            raise
        finally:
            kill_devstack(devstack, sessions)
            log.close()
            from tests.support.config import cleanup

            cleanup(container)


def test_make_up_with_a_taken_metrics_port_says_which_and_how_to_choose(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = devstack_env(tmp_path, WORKER_METRICS_PORT=port)
        log_path = tmp_path / "devstack.log"
        with open(log_path, "wb") as log:
            devstack = start_devstack(tmp_path, env, log)
            try:
                code = devstack.wait(timeout=60)
            finally:
                if devstack.poll() is None:
                    kill_devstack(devstack)
                    from tests.support.config import cleanup

                    cleanup(Container(Settings.from_env(env, dotenv_path=None)))
    output = log_path.read_text(errors="replace")
    assert code == 1, output
    assert f"WORKER_METRICS_PORT={port} gives the 5 workers ports" in output, output
    assert f"listens on {port} (worker-convert)" in output, output
    assert "Leave WORKER_METRICS_PORT unset to let `make up` pick free ports" in output, output
    assert "Traceback" not in output and "[devstack] started" not in output, output


def kill_devstack(devstack: subprocess.Popen, sessions: set[int] = frozenset()) -> None:
    """SIGKILL the devstack and every session it or `sessions` hold, whatever happened."""
    try:
        sessions = set(sessions) | {devstack.pid}
        sessions |= {os.getsid(p.pid) for p in psutil.Process(devstack.pid).children()}
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass
    for session in sessions:
        try:
            os.killpg(session, signal.SIGKILL)
        except ProcessLookupError:
            pass
    devstack.wait()


def _service(devstack: subprocess.Popen, module: str, other_than: int) -> psutil.Process | None:
    for child in psutil.Process(devstack.pid).children():
        try:
            if module in child.cmdline() and child.pid != other_than:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
