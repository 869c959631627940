"""``artvec sync``: keep the embeddings in step with the catalogue.

One pass: read the catalogue and what the store holds, plan (new, changed, re-embed for a new
configuration, retry, delete), then embed the plan batch by batch. Each batch is claimed with
advisory locks (so several workers share the plan without embedding a picture twice),
re-checked, embedded, and written in one transaction.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import db, store
from .catalogue import Catalogue, CatalogueRow
from .errors import first_line
from .images import ImageError
from .reconnect import LostDatabase, Retry, SyncConnection
from .sources import FetchError, SourceOptions, read_bytes, stamp

if TYPE_CHECKING:
    from .config import Settings

EXIT_WITH_FAILURES = 4


@dataclass
class Task:
    row: CatalogueRow
    stamp: str | None
    reason: str                    # new | changed | config | retry | check
    version: tuple = (None, None)  # (embedded at, failed at) when planned: a claim re-checks it
    stored_sha: bytes | None = None


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    deletes: list = field(default_factory=list)
    facet_updates: list[tuple[Any, dict]] = field(default_factory=list)
    unchanged: int = 0
    failed_skipped: int = 0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task.reason] = counts.get(task.reason, 0) + 1
        return counts


@dataclass
class SyncOptions:
    limit: int | None = None
    dry_run: bool = False
    full: bool = False
    retry_failed: bool = False
    batch_size: int = 32
    device: str = "cpu"
    progress: Callable[[int, int, float], None] | None = None   # (done, total, seconds)


@dataclass
class SyncReport:
    config_id: str
    planned: dict[str, int]
    embedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    failed_skipped: int = 0
    left_to_others: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0      # from the model being ready to the last batch written
    dry_run: bool = False
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_WITH_FAILURES if self.failed else 0


def source_options(settings: "Settings") -> SourceOptions:
    return SourceOptions(image_root=settings.get("catalogue.image_root"), timeout=settings.get("sync.http_timeout"),
                         retries=settings.get("sync.http_retries"))


def needs_work(row: CatalogueRow, row_stamp: str | None, stored: tuple | None, failure: tuple | None,
               config_id: str, options: SyncOptions) -> Task | None:
    """What, if anything, this catalogue row needs; stored/failure are the store's tuples.

    A picture that failed is tried again only with --retry-failed or once its source changed.
    """
    version = (stored[6] if stored else None, failure[4] if failure else None)
    task = stored_task(row, row_stamp, stored, config_id, options, version)
    if task is None or failure is None:
        return task
    failed_on_this_source = (failure[0] == config_id and failure[1] == row.image and failure[2] == row_stamp
                             and not newer(row.updated_at, failure[3]))
    if failed_on_this_source and not options.retry_failed:
        return None
    task.reason = "retry"
    return task


def stored_task(row: CatalogueRow, row_stamp: str | None, stored: tuple | None, config_id: str,
                options: SyncOptions, version: tuple) -> Task | None:
    if stored is None:
        return Task(row, row_stamp, "new", version)
    stored_config, location, stored_stamp, stored_updated, _facets, sha, _ = stored
    if stored_config != config_id:
        return Task(row, row_stamp, "config", version)
    if location != row.image or newer(row.updated_at, stored_updated) or stored_stamp != row_stamp:
        return Task(row, row_stamp, "changed", version, bytes(sha))
    if options.full:
        return Task(row, row_stamp, "check", version, bytes(sha))
    return None


def newer(catalogue_time, stored_time) -> bool:
    return catalogue_time is not None and (stored_time is None or catalogue_time > stored_time)


def make_plan(rows: Iterator[CatalogueRow], state: dict, failures: dict, config_id: str,
              options: SyncOptions, sources: SourceOptions) -> Plan:
    plan = Plan()
    seen = set()
    for row in rows:
        seen.add(row.artwork_id)
        stored, failure = state.get(row.artwork_id), failures.get(row.artwork_id)
        task = needs_work(row, stamp(row.image, sources), stored, failure, config_id, options)
        if task is not None:
            plan.tasks.append(task)
        elif failure is not None:
            plan.failed_skipped += 1
        else:
            plan.unchanged += 1
        if task is None and stored is not None and stored[4] != row.facets:
            plan.facet_updates.append((row.artwork_id, row.facets))
    plan.deletes = [artwork_id for artwork_id in list(state) + list(failures) if artwork_id not in seen]
    plan.deletes = list(dict.fromkeys(plan.deletes))
    if options.limit is not None:
        plan.tasks = plan.tasks[:options.limit]
    return plan


def sync(settings: "Settings", options: SyncOptions) -> SyncReport:
    started = time.perf_counter()
    config = settings.embedding_config()
    catalogue = Catalogue.from_settings(settings)
    sources = source_options(settings)
    retry = Retry.from_settings(settings)
    url = db.database_url(settings)
    engine = store.engine_for_schema(settings)
    try:
        plan = retry.call(lambda: read_plan(engine, catalogue, config, options, sources))
        report = SyncReport(config.config_id, plan.counts(), unchanged=plan.unchanged,
                            failed_skipped=plan.failed_skipped, dry_run=options.dry_run)
        if options.dry_run:
            report.deleted = len(plan.deletes)
        else:
            run_plan(settings, plan, report, Context(config, catalogue, sources, url, engine, retry, options, started))
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - started
    return report


def read_plan(engine, catalogue: Catalogue, config, options: SyncOptions, sources: SourceOptions) -> Plan:
    with engine.connect() as connection:
        store.check_dimensions(connection, config)
        catalogue.validate(connection)
        return make_plan(catalogue.rows(connection), store.stored_state(connection),
                         store.stored_failures(connection), config.config_id, options, sources)


@dataclass
class Context:
    """What a sync run works with."""
    config: Any
    catalogue: Catalogue
    sources: SourceOptions
    url: str
    engine: Any
    retry: Retry
    options: SyncOptions
    started: float


def run_plan(settings: "Settings", plan: Plan, report: SyncReport, context: Context) -> None:
    engine, config = context.engine, context.config

    def prepare() -> int:
        with engine.begin() as connection:
            store.mark_interrupted(connection)
            store.register_model(connection, config)
            deleted = store.delete_artworks(connection, plan.deletes)
            store.update_facets(connection, plan.facet_updates)
        return deleted

    report.deleted = context.retry.call(prepare)
    link = SyncConnection(context.url, context.catalogue.id_type, context.retry)
    state = "failed"
    try:
        run_id = link.start_run(worker_name(), config.config_id)
        if plan.tasks:
            Runner(settings, context, link, run_id, report).run(plan.tasks)
        state = "finished"
    finally:
        report.seconds = time.perf_counter() - context.started
        finish = partial(finish_run, engine, link.run_id, state, report)
        try:
            if link.run_id is not None:
                # a run that failed is not held up by a database that is away: the next run marks it
                context.retry.call(finish) if state == "finished" else Retry(retries=0).call(finish)
        except LostDatabase:
            if state == "finished":
                raise
        finally:
            link.close()


def finish_run(engine, run_id: int, state: str, report: SyncReport) -> None:
    with engine.begin() as connection:
        store.finish_run(connection, run_id, state, {"embedded": report.embedded, "unchanged": report.unchanged,
                                                     "deleted": report.deleted, "failed": report.failed},
                         report.seconds)


def one_line(reason: str, limit: int = 1000) -> str:
    """A failure reason as PostgreSQL text can hold it (no NUL), on one line, of bounded length."""
    reason = " ".join(reason.replace("\x00", "\\0").split())
    return reason if len(reason) <= limit else reason[:limit - 1] + "…"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Batch:
    tasks: list[Task]
    embedded: list[tuple] = field(default_factory=list)
    failures: list[tuple] = field(default_factory=list)
    touched: list[tuple] = field(default_factory=list)
    same: list = field(default_factory=list)     # ids whose bytes did not change
    pending: int = 0
    generated: bool = False
    generation: int = 0      # the connection's generation its claims were made in


class Runner:
    """Streams the plan through the embedder; DB writes and image reads overlap the model."""

    def __init__(self, settings, context: Context, link: SyncConnection, run_id: int, report: SyncReport):
        self.config, self.catalogue, self.sources = context.config, context.catalogue, context.sources
        self.engine, self.options, self.link = context.engine, context.options, link
        self.run_id, self.report = run_id, report
        self.readers = ThreadPoolExecutor(max(1, settings.get("sync.http_concurrency")), "artvec-read")
        self.decode_timeout = settings.get("sync.decode_timeout")
        self.done = 0
        self.total = 0
        self.started = time.perf_counter()

    def run(self, tasks: list[Task]) -> None:
        from .embedding import Embedder

        self.total = len(tasks)
        embedder = Embedder(self.config, device=self.options.device)
        embedder.decode_timeout = self.decode_timeout
        warnings.filterwarnings("ignore", module="PIL")   # a bad picture's warning is not the run's news
        started = time.perf_counter()
        try:
            for (batch, task, sha), result in embedder.embed_stream(self.items(tasks), self.options.batch_size):
                self.record(batch, task, sha, result)
            self.report.embed_seconds = time.perf_counter() - started
        finally:
            embedder.close()
            self.readers.shutdown(wait=False, cancel_futures=True)

    def items(self, tasks: list[Task]) -> Iterator[tuple[tuple, bytes]]:
        size = self.options.batch_size
        for start in range(0, len(tasks), size):
            batch = self.claim(tasks[start:start + size])
            reads = self.readers.map(self.read, batch.tasks)
            for task, (data, error) in zip(batch.tasks, reads):
                if error is not None:
                    batch.failures.append(self.failure_row(task, error))
                    continue
                sha = hashlib.sha256(data).digest()
                if task.stored_sha == sha:          # same bytes: record the new stamp, don't re-embed
                    batch.same.append(task.row.artwork_id)
                    if task.reason != "check":
                        batch.touched.append((task.row.artwork_id, task.row.image, task.stamp,
                                              task.row.updated_at, task.row.facets))
                    continue
                batch.pending += 1
                yield (batch, task, sha), data
            batch.generated = True
            self.flush_if_done(batch)

    def read(self, task: Task) -> tuple[bytes | None, ImageError | None]:
        try:
            return read_bytes(task.row.image, self.sources), None
        except ImageError as error:
            return None, error
        except Exception as error:  # noqa: BLE001 - whatever one picture does, it is its own failure
            return None, FetchError(task.row.image, f"cannot read ({type(error).__name__}: {first_line(error)})")

    def claim(self, tasks: list[Task]) -> Batch:
        """Lock the batch's pictures, and keep those nobody has written since our plan was made."""
        def step() -> tuple[list[Task], int]:
            generation = self.link.generation
            claimed = self.link.claim([task.row.artwork_id for task in tasks])
            return self.unchanged_since_planned(tasks, claimed), generation

        fresh, generation = self.link.call(step)
        self.report.left_to_others += len(tasks) - len(fresh)
        self.advance(len(tasks) - len(fresh))
        return Batch(fresh, generation=generation)

    def unchanged_since_planned(self, tasks: list[Task], claimed: set) -> list[Task]:
        """Of the claimed tasks, those nobody wrote since the plan; the claims on the rest are let go."""
        with self.engine.connect() as connection:
            now = store.versions(connection, list(claimed)) if claimed else {}
        fresh = [task for task in tasks if task.row.artwork_id in claimed and now[task.row.artwork_id] == task.version]
        fresh_ids = {task.row.artwork_id for task in fresh}
        self.link.release([artwork_id for artwork_id in claimed if artwork_id not in fresh_ids])
        return fresh

    def record(self, batch: Batch, task: Task, sha: bytes, result) -> None:
        if isinstance(result, ImageError):
            batch.failures.append(self.failure_row(task, result))
        else:
            row = task.row
            batch.embedded.append((row.artwork_id, self.config.config_id, result.combined, result.style,
                                   result.colour, sha, row.image, task.stamp, row.updated_at, row.facets))
        batch.pending -= 1
        self.flush_if_done(batch)

    def failure_row(self, task: Task, error: ImageError) -> tuple:
        reason = one_line(f"{error.kind}: {error.reason}")
        self.report.failures.append(f"{task.row.artwork_id} ({task.row.image or 'no image'}): {reason}")
        return (task.row.artwork_id, self.config.config_id, reason, task.row.image, task.stamp, task.row.updated_at)

    def flush_if_done(self, batch: Batch) -> None:
        if not batch.generated or batch.pending:
            return
        planned = len(batch.tasks)
        self.link.call(lambda: self.write(batch))
        self.link.release([task.row.artwork_id for task in batch.tasks])
        self.report.embedded += len(batch.embedded)
        self.report.failed += len(batch.failures)
        self.report.unchanged += len(batch.same)
        self.report.left_to_others += planned - len(batch.tasks)
        self.advance(planned)
        batch.tasks = []

    def write(self, batch: Batch) -> None:
        if batch.generation != self.link.generation:      # the connection was lost since the claim
            if (batch.embedded or batch.failures) and self.link.run_counts() == self.counts_after(batch):
                return                                     # our commit went through; its answer was lost
            self.keep_still_ours(batch)
            batch.generation = self.link.generation
        new_ids = {task.row.artwork_id for task in batch.tasks if task.version[0] is None}
        self.link.writer.write(batch.embedded, batch.failures, batch.touched, new_ids,
                               (self.run_id, *self.counts_after(batch)))

    def counts_after(self, batch: Batch) -> tuple[int, int]:
        """The run's (embedded, failed) once this batch is written: recorded in the batch's transaction."""
        return self.report.embedded + len(batch.embedded), self.report.failed + len(batch.failures)

    def keep_still_ours(self, batch: Batch) -> None:
        """After a reconnect: keep the pictures whose claims were taken back and that nobody wrote meanwhile."""
        held = [task for task in batch.tasks if task.row.artwork_id in self.link.held]
        kept = self.unchanged_since_planned(held, {task.row.artwork_id for task in held})
        keep = {task.row.artwork_id for task in kept}
        batch.tasks = [task for task in batch.tasks if task.row.artwork_id in keep]
        batch.embedded = [row for row in batch.embedded if row[0] in keep]
        batch.failures = [row for row in batch.failures if row[0] in keep]
        batch.touched = [row for row in batch.touched if row[0] in keep]
        batch.same = [artwork_id for artwork_id in batch.same if artwork_id in keep]

    def advance(self, count: int) -> None:
        self.done += count
        if self.options.progress and count:
            self.options.progress(self.done, self.total, time.perf_counter() - self.started)


def failures(settings: "Settings", limit: int = 50) -> list[dict]:
    engine = store.engine_for_schema(settings)
    with engine.connect() as connection:
        rows = store.list_failures(connection, limit)
    engine.dispose()
    return rows


def status(settings: "Settings") -> dict:
    engine = store.engine_for_schema(settings)
    with engine.begin() as connection:
        store.mark_interrupted(connection)
        info = store.sync_status(connection)
    engine.dispose()
    info["active_config"] = settings.embedding_config().config_id
    return info

