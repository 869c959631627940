"""The progress of a sync: rich's bar on a terminal, plain lines in a log."""

from __future__ import annotations

import io

from rich.console import Console

from artvec.progress import Progress


def test_progress_prints_plain_lines_off_a_terminal():
    stream = io.StringIO()
    progress = Progress("sync", stream=stream, interval=3600)
    for done in range(1, 5):
        progress(done, 4, done * 0.5)
    lines = stream.getvalue().splitlines()
    assert lines == ["sync: 1/4, 2.0/s, ETA 2 s", "sync: 4/4, 2.0/s, ETA 0 s"]


def test_progress_draws_rich_bar_on_a_terminal():
    stream = io.StringIO()
    progress = Progress("sync", stream=stream)
    progress.console = Console(file=stream, force_terminal=True, width=100)
    for done in range(1, 5):
        progress(done, 4, done * 0.5)
    out = stream.getvalue()
    assert "sync" in out and "4/4" in out and "━" in out       # rich's bar, finished
