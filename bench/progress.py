"""A rich progress bar on stderr, driven by (responses so far, seconds elapsed) callbacks.

With --total the bar counts responses; with --duration it counts seconds. Disabled (a no-op) for
--json so that stdout and stderr stay machine-readable.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class Bar:
    def __init__(self, label: str, total: int | None, duration_s: float | None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.by_count = total is not None
        self.total = float(total if total is not None else (duration_s or 1.0))
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.label = label

    def __enter__(self) -> Bar:
        console = Console(stderr=True)
        # Only animate on a terminal: redirected, rich would leave a blank line per bar.
        if self.enabled and console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(), console=console, transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total, info="")
        return self

    def __call__(self, done: int, elapsed: float) -> None:
        if self._progress is None or self._task is None:
            return
        rate = done / elapsed if elapsed > 0 else 0.0
        completed = done if self.by_count else min(elapsed, self.total)
        self._progress.update(self._task, completed=completed, info=f"{done:,} ({rate:,.0f}/s)")

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.__exit__(et, ev, tb)
