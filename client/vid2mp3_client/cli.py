"""The `vid2mp3` command: parse arguments, run one command, exit 0, 1 (failed) or 2 (usage)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from vid2mp3_client import __version__
from vid2mp3_client.api import Api
from vid2mp3_client.config import DEFAULT_URL, Config, TokenStore
from vid2mp3_client.convert import Converter
from vid2mp3_client.errors import ClientError
from vid2mp3_client.options import (
    UPLOAD_OPTIONS,
    UploadOption,
    add_upload_options,
    parse_duration,
    positive_int,
    upload_fields,
)
from vid2mp3_client.progress import Bars

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Context:
    """What every command gets: settings, the token store, the streams."""

    def __init__(
        self,
        args: argparse.Namespace,
        config: Config,
        stdout: TextIO = sys.stdout,
        stderr: TextIO = sys.stderr,
    ):
        self.args = args
        self.config = config
        self.store = TokenStore(config.config_dir)
        self.stdout = stdout
        self.stderr = stderr
        self.console = Console(file=stderr, soft_wrap=True, highlight=False)

    def api(self) -> Api:
        return Api(self.config, self.store)

    def bars(self) -> Bars:
        return Bars(self.console, enabled=self.console.is_terminal)

    def say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    def fail(self, text: str) -> None:
        print(f"vid2mp3: {one_line(text)}", file=self.stderr, flush=True)

    def emit_json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, ensure_ascii=False), file=self.stdout, flush=True)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- commands ---------------------------------------------------------------------------


def cmd_login(ctx: Context) -> int:
    url = ctx.config.checked_url()
    if ctx.args.api_key:
        return _login_with_key(ctx, url)
    email = ctx.args.email or ctx.config.email or _prompt(ctx, "Email: ")
    password = ctx.config.password if email == ctx.config.email else None
    if password is None:
        password = _prompt(ctx, "Password: ", secret=True)
    if not email or not password:
        raise ClientError("an email and a password are needed to log in")
    with ctx.api() as api:
        body = api.login(email, password)
    path = ctx.store.save(url, email, body["access_token"], int(body.get("expires_in") or 0))
    if ctx.args.json:
        ctx.emit_json(
            {
                "url": url,
                "email": email,
                "token_file": str(path),
                "expires_in": body.get("expires_in"),
            }
        )
    else:
        ctx.say(f"logged in to {url} as {email}; the token is in {path}")
    return EXIT_OK


def _login_with_key(ctx: Context, url: str) -> int:
    """Check an API key (VID2MP3_API_KEY, else a hidden prompt) and keep it, mode 0600."""
    key = ctx.config.api_key or _prompt(ctx, "API key: ", secret=True)
    if not key:
        raise ClientError("an API key is needed: make one with POST /api-keys")
    with ctx.api() as api:
        claims = api.validate_key(key)
    scopes = [str(scope) for scope in claims["scopes"]]
    path = ctx.store.save_key(url, key, str(claims.get("sub")), scopes)
    if ctx.args.json:
        ctx.emit_json(
            {"url": url, "user": claims.get("sub"), "scopes": scopes, "key_file": str(path)}
        )
    else:
        ctx.say(
            f"API key for user {claims.get('sub')} ({', '.join(scopes)}) on {url} saved in {path}"
        )
    return EXIT_OK


def _prompt(ctx: Context, label: str, secret: bool = False) -> str:
    if sys.stdin.isatty():
        return (getpass.getpass(label) if secret else input(label)).strip()
    # Not a terminal (a script feeding stdin): read a line, echo nothing back.
    print(label, end="", file=ctx.stderr, flush=True)
    return sys.stdin.readline().rstrip("\r\n").strip()


def cmd_logout(ctx: Context) -> int:
    removed = ctx.store.remove()
    if ctx.args.json:
        ctx.emit_json({"logged_out": removed, "token_file": str(ctx.store.path)})
    else:
        ctx.say(f"removed {ctx.store.path}" if removed else "not logged in")
    return EXIT_OK


def cmd_convert(ctx: Context) -> int:
    args = ctx.args
    with ctx.api() as api:
        api.authenticate()  # a missing or wrong login fails once, before any upload
        bars = ctx.bars()
        converter = Converter(api, bars, Path(args.output), upload_fields(args), args.force)
        converter.follow_events = not args.poll
        try:
            with bars:
                outcomes = converter.run(args.files, args.parallel)
        except KeyboardInterrupt:
            ctx.fail("interrupted: cancelling the jobs started on the server")
            for job_id, source, how in converter.cancel_unsettled():
                ctx.fail(f"{source}: job {job_id} {how}")
            return EXIT_INTERRUPTED
    if args.json:
        ctx.emit_json([outcome.as_json() for outcome in outcomes])
    for outcome in outcomes:
        if outcome.ok:
            if not args.json:
                ctx.say(str(outcome.output))
        else:
            ctx.fail(f"{outcome.source}: {outcome.error}")
    return EXIT_OK if all(outcome.ok for outcome in outcomes) else EXIT_FAILED


JOB_COLUMNS = ("id", "status", "progress", "filename", "created_at")


def cmd_jobs(ctx: Context) -> int:
    with ctx.api() as api:
        page = api.jobs(ctx.args.page, ctx.args.per_page)
    if ctx.args.json:
        ctx.emit_json(page)
        return EXIT_OK
    items = page.get("items") or []
    if not items:
        ctx.say("no jobs")
        return EXIT_OK
    rows = [["ID", "STATUS", "PROGRESS", "FILE", "CREATED"]]
    for job in items:
        rows.append(
            [
                str(job.get("id")),
                str(job.get("status")),
                f"{float(job.get('progress') or 0):.0f}%",
                str(job.get("filename") or ""),
                str(job.get("created_at") or ""),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        ctx.say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    total = page.get("total", len(items))
    ctx.say(f"page {page.get('page', 1)}, {len(items)} of {total} jobs")
    return EXIT_OK


STATUS_FIELDS = (
    "id",
    "status",
    "progress",
    "error",
    "filename",
    "format",
    "bitrate",
    "video_size",
    "mp3_size",
    "duration_s",
    "created_at",
    "finished_at",
)


def cmd_status(ctx: Context) -> int:
    with ctx.api() as api:
        job, _ = api.job(ctx.args.job_id)
    assert job is not None
    if ctx.args.json:
        ctx.emit_json(job)
        return EXIT_OK
    for name in STATUS_FIELDS:
        if job.get(name) is not None:
            value = f"{job[name]:.0f}%" if name == "progress" else job[name]
            ctx.say(f"{name + ':':<13}{value}")
    return EXIT_OK


def cmd_download(ctx: Context) -> int:
    args = ctx.args
    with ctx.api() as api, ctx.bars() as bars:
        row = bars.row(args.job_id)
        path = api.download(
            args.job_id,
            Path(args.output),
            None,
            args.force,
            row.download,
            row.update,
            threading.Event(),
        )
        row.finish("done", str(path))
    if args.json:
        ctx.emit_json({"job_id": args.job_id, "output": str(path), "bytes": path.stat().st_size})
    else:
        ctx.say(str(path))
    return EXIT_OK


def cmd_cancel(ctx: Context) -> int:
    with ctx.api() as api:
        how = api.cancel(ctx.args.job_id)
    if ctx.args.json:
        ctx.emit_json({"job_id": ctx.args.job_id, "result": how})
    elif how == "cancelled":
        ctx.say(f"cancelled job {ctx.args.job_id}")
    else:
        ctx.say(
            f"deleted job {ctx.args.job_id} (this server cannot cancel a job: "
            "it was deleted with its files)"
        )
    return EXIT_OK


def cmd_rm(ctx: Context) -> int:
    with ctx.api() as api:
        api.delete(ctx.args.job_id)
    if ctx.args.json:
        ctx.emit_json({"job_id": ctx.args.job_id, "deleted": True})
    else:
        ctx.say(f"deleted job {ctx.args.job_id}")
    return EXIT_OK


def cmd_link(ctx: Context) -> int:
    with ctx.api() as api:
        body = api.link(ctx.args.job_id, ctx.args.expires)
        base = api.url
    if ctx.args.json:
        ctx.emit_json(body)
        return EXIT_OK
    url = next(
        (body[key] for key in ("url", "link", "href") if isinstance(body.get(key), str)), None
    )
    if url is None:
        ctx.emit_json(body)
    else:
        ctx.say(base + url if url.startswith("/") else url)
    return EXIT_OK


# --- arguments --------------------------------------------------------------------------


def build_parser(options: tuple[UploadOption, ...] = UPLOAD_OPTIONS) -> argparse.ArgumentParser:
    """The command line; `options` are the upload's flags (the API's, as shipped)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("--url", help=f"the server (default: $VID2MP3_URL or {DEFAULT_URL})")

    parser = argparse.ArgumentParser(
        prog="vid2mp3",
        description="Convert videos to MP3 with a vid2mp3 server.",
        epilog="Configuration: VID2MP3_URL; for scripts VID2MP3_API_KEY or `vid2mp3 login "
        "--api-key`; for people `vid2mp3 login` (key or token kept in "
        "$XDG_CONFIG_HOME/vid2mp3/, mode 0600). VID2MP3_EMAIL and VID2MP3_PASSWORD still work. "
        "Exit status: 0 done, 1 failed, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"vid2mp3 {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[Context], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    login = command("login", cmd_login, "log in (prompts for the password) and keep the token")
    login.add_argument("--email", help="default: $VID2MP3_EMAIL, else a prompt")
    login.add_argument(
        "--api-key",
        action="store_true",
        help="keep an API key instead (from $VID2MP3_API_KEY, else a hidden prompt): "
        "the way for scripts",
    )
    command("logout", cmd_logout, "forget the saved token")

    convert = command(
        "convert", cmd_convert, "convert videos to MP3s (or M4A, Opus, FLAC, WAV: --format)"
    )
    convert.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="videos to convert: files, or http(s) URLs the server fetches itself",
    )
    convert.add_argument(
        "-o",
        "--output",
        default=".",
        metavar="DIR",
        help="where to write <name>.mp3, or .m4a, .opus, .flac, .wav as --format says "
        "(default: the current directory)",
    )
    convert.add_argument(
        "--parallel",
        type=positive_int,
        default=2,
        metavar="N",
        help="files converted at once (default: 2)",
    )
    convert.add_argument("--force", action="store_true", help="overwrite existing files")
    convert.add_argument(
        "--poll",
        action="store_true",
        help="poll each job instead of following its live events",
    )
    add_upload_options(convert, options)

    jobs = command("jobs", cmd_jobs, "list your jobs, newest first")
    jobs.add_argument("--page", type=positive_int, default=1)
    jobs.add_argument("--per-page", type=positive_int, default=20)

    command("status", cmd_status, "show a job").add_argument("job_id", metavar="ID")

    download = command("download", cmd_download, "download a job's output (MP3, M4A, ...)")
    download.add_argument("job_id", metavar="ID")
    download.add_argument("-o", "--output", default=".", metavar="DIR")
    download.add_argument("--force", action="store_true", help="overwrite an existing file")

    command("cancel", cmd_cancel, "cancel a job").add_argument("job_id", metavar="ID")
    command("rm", cmd_rm, "delete a job with its files").add_argument("job_id", metavar="ID")

    link = command("link", cmd_link, "make an expiring download link")
    link.add_argument("job_id", metavar="ID")
    link.add_argument(
        "--expires",
        type=parse_duration,
        default=3600,
        metavar="DURATION",
        help="how long the link works: 90s, 15m, 1h, 7d (default: 1h)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2
    try:
        config = Config.from_env(os.environ, args.url)
    except ClientError as exc:
        parser.error(str(exc))  # a bad setting is a usage error: exit 2
    ctx = Context(args, config)
    try:
        handler: Callable[[Context], int] = args.handler
        return handler(ctx)
    except ClientError as exc:
        ctx.fail(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        ctx.fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
