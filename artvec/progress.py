"""Progress on long work: rich's live bar (rate, ETA) on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Called with (done, total, seconds) as work advances."""

    def __init__(self, label: str, stream=None, interval: float = 10.0):
        from rich.console import Console

        self.label = label
        self.console = Console(file=stream or sys.stderr)
        self.interval = interval
        self.last: float | None = None
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int, seconds: float) -> None:
        if self.console.is_terminal:
            self.show_bar(done, total)
        else:
            self.show_line(done, total, seconds)

    def show_bar(self, done: int, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TaskProgressColumn,
                                   TextColumn, TimeRemainingColumn)

        if self.bar is None:
            self.bar = Bar(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                           TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self.console)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total, rate="")
        speed = self.bar.tasks[0].speed
        self.bar.update(self.task, completed=done, total=total, rate=f"{speed:.1f}/s" if speed else "")
        if done >= total:
            self.bar.stop()
            self.bar = None

    def show_line(self, done: int, total: int, seconds: float) -> None:
        now = time.monotonic()
        if done < total and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        rate = done / seconds if seconds > 0 else 0.0
        eta = f"{(total - done) / rate:.0f} s" if rate > 0 else "?"
        self.console.print(f"{self.label}: {done}/{total}, {rate:.1f}/s, ETA {eta}", highlight=False)
