"""Progress on long work: a live line with rate and ETA on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    def __init__(self, label: str, stream=None, interval: float | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.live else 10.0)
        self.last = 0.0

    def __call__(self, done: int, total: int, seconds: float) -> None:
        now = time.monotonic()
        finished = done >= total
        if not finished and now - self.last < self.interval:
            return
        self.last = now
        rate = done / seconds if seconds > 0 else 0.0
        eta = format_seconds((total - done) / rate) if rate > 0 else "?"
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        line = f"{self.label} [{bar}] {done}/{total} {rate:.1f}/s ETA {eta}"
        if self.live:
            self.stream.write("\r" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
