"""`python -m core.migrate`: bring the database to this build's schema, once per deploy.

Applies the pending files of `migrations/` in order under a named lock, then creates the admin
account if it is missing. `--check` changes nothing and exits 1 listing what is pending.
`make migrate`, `make up`, the compose service `migrate` and the Kubernetes Job `migrate` run
it; the API and the workers only check the version at start.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from core.settings import ConfigError, Settings

if TYPE_CHECKING:
    from core.bootstrap import Container

EXIT_OK, EXIT_FAILED = 0, 1


def _say(line: str) -> None:
    print(line, flush=True)


def _fail(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(
    settings: Settings,
    check: bool = False,
    wait_seconds: float = 0.0,
    migrations_dir: Path | None = None,
    say: Callable[[str], None] = _say,
    fail: Callable[[str], None] = _fail,
) -> int:
    """Migrate (or, with check, report) the database of `settings`; the exit status."""
    from core.bootstrap import Container
    from core.domain.errors import Unavailable
    from core.ports.schema import MigrationError, behind_message

    deadline = time.monotonic() + wait_seconds
    while True:
        container = Container(settings)
        try:
            runner = container.migrator(migrations_dir)
            required = runner.required
            if check:
                plan = runner.status()
                if plan.is_current:
                    say(f"schema is at {plan.current}: nothing pending")
                    return EXIT_OK
                if time.monotonic() >= deadline:
                    for line in plan.changed:
                        fail(line)
                    pending = ", ".join(plan.describe_pending()) or "none"
                    behind = behind_message(plan.current, required)
                    fail(f"{behind or f'schema is at {plan.current}'}; pending: {pending}")
                    return EXIT_FAILED
            else:
                # The admin account is written by this build's code, which needs this build's
                # schema: a --migrations-dir that stops short of it (a test comparing old
                # schemas) leaves it out.
                admin_fits = required >= container.required_schema()
                admin = partial(_ensure_admin, container, settings, say) if admin_fits else None
                plan = runner.apply(say, then=admin)
                if plan.unknown:
                    say(
                        "the database has versions this build does not ship "
                        f"({', '.join(map(str, plan.unknown))}): a newer build migrated it"
                    )
                say(f"schema is at {plan.current}")
                return EXIT_OK
        except MigrationError as exc:
            fail(str(exc))
            return EXIT_FAILED
        except Unavailable:
            if time.monotonic() >= deadline:
                fail(f"MySQL at {settings.mysql_host}:{settings.mysql_port} is not reachable")
                return EXIT_FAILED
        finally:
            container.close()
        time.sleep(1)


def _ensure_admin(container: Container, settings: Settings, say: Callable[[str], None]) -> None:
    """The admin account of ADMIN_EMAIL, created if missing (processes no longer do it)."""
    if container.user_repo.get_by_email(settings.admin_email) is None:
        container.users.ensure_admin(settings.admin_email, settings.admin_password)
        say(f"created the admin account {settings.admin_email}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.migrate",
        description="Apply the pending schema migrations (migrations/NNNN_name.sql) in order, "
        "under a named lock, and create the admin account if it is missing.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing: exit 0 when the schema is current, else 1 listing what is pending",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for MySQL to answer (with --check: and for the migration to "
        "finish); default 0",
    )
    parser.add_argument(
        "--migrations-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="apply the NNNN_name.sql files of DIR instead of the ones this build ships "
        "(tests; trying a new file on a scratch database)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")
        return EXIT_FAILED
    from core.observability import configure_logging

    configure_logging(settings)
    return run(settings, args.check, max(0.0, args.wait), args.migrations_dir)


if __name__ == "__main__":
    sys.exit(main())
