"""Progress bars on a terminal (rich); nothing at all when the output is not one."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.text import Text


class _DetailColumn(ProgressColumn):
    """Bytes done of total and the rate while transferring; a note otherwise."""

    def render(self, task: Task) -> Text:
        if task.fields.get("bytes"):
            done = decimal(int(task.completed))
            total = decimal(int(task.total)) if task.total is not None else "?"
            rate = f"{decimal(int(task.speed))}/s" if task.speed else ""
            return Text(f"{done}/{total} {rate}".rstrip(), style="progress.download")
        return Text(str(task.fields.get("note", "")), style="progress.elapsed")


class Bars:
    """One row per file; a no-op unless `enabled`."""

    def __init__(self, console: Console, enabled: bool):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            _DetailColumn(),
            console=console,
            transient=False,
            refresh_per_second=8,
            disable=not enabled,
        )

    def __enter__(self) -> Self:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            self._progress.stop()

    def row(self, label: str) -> Row:
        return Row(self._progress, label, self.enabled)


class Row:
    """A file's row: its upload, its conversion, then its download."""

    def __init__(self, progress: Progress, label: str, enabled: bool):
        self._progress = progress
        self._label = label
        self._enabled = enabled
        self._task: TaskID | None = None

    def _phase(self, verb: str, total: float | None, **fields: Any) -> None:
        if not self._enabled:
            return
        description = f"{verb:<10} {self._label}"
        if self._task is None:
            self._task = self._progress.add_task(description, total=total, **fields)
        else:
            self._progress.reset(self._task, total=total, description=description, **fields)

    def upload(self, size: int) -> None:
        self._phase("upload", size, bytes=True, note="")

    def convert(self) -> None:
        self._phase("convert", 100, bytes=False, note="queued")

    def download(self, size: int | None) -> None:
        self._phase("download", size, bytes=True, note="")

    def update(self, completed: float, note: str | None = None) -> None:
        if self._enabled and self._task is not None:
            extra: dict[str, Any] = {} if note is None else {"note": note}
            self._progress.update(self._task, completed=completed, **extra)

    def finish(self, verb: str, note: str) -> None:
        if not self._enabled:
            return
        if self._task is None:
            self._phase(verb, 1)
        assert self._task is not None
        self._progress.update(
            self._task, description=f"{verb:<10} {self._label}", bytes=False, note=note
        )
