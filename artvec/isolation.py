"""Work on one picture that may hang: daemon threads with a time limit per task.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so one
decoder stuck in a loop would keep the whole process alive. Here a task that runs past its time
limit is abandoned: its caller gets :class:`TimeoutError`, a fresh thread takes the stuck one's
place, and the stuck thread, a daemon, dies with the process.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

QUEUE_POLL = 0.05   # seconds between looks at a task that has not started yet


JOIN_WAIT = 0.5  # seconds shutdown waits for each worker to end


class DaemonPool:
    def __init__(self, workers: int, name: str):
        self.name = name
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        for _ in range(max(1, workers)):
            self.add_worker()

    def add_worker(self) -> None:
        thread = threading.Thread(target=self.work, name=f"{self.name}-{len(self.threads)}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def work(self) -> None:
        while True:
            item = self.tasks.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            future.started_at = time.monotonic()
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                future.set_exception(error)

    def submit(self, fn: Callable, *args: Any) -> Future:
        future: Future = Future()
        self.tasks.put((future, fn, args))
        return future

    def result(self, future: Future, limit: float | None) -> Any:
        """The task's result; TimeoutError once it has run ``limit`` seconds (time spent waiting in
        the queue does not count), and the task is abandoned: a new thread takes its thread's place."""
        if limit is None:
            return future.result()
        while True:
            started = getattr(future, "started_at", None)
            left = QUEUE_POLL if started is None else started + limit - time.monotonic()
            try:
                return future.result(timeout=max(0.0, left))
            except TimeoutError:
                if started is not None:
                    self.add_worker()
                    raise

    def shutdown(self) -> None:
        """Cancel what has not started; idle threads end, a stuck one is left to die with the process."""
        while True:
            try:
                item = self.tasks.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self.threads:
            self.tasks.put(None)
        for thread in self.threads:  # idle ones end at once; a stuck one is not waited for long
            thread.join(timeout=JOIN_WAIT)
