"""``artvec sync``: keep the embeddings in step with the catalogue.

Read the catalogue and what the store holds, plan (new, changed, retry, delete), then embed the
plan batch by batch. Each batch is claimed with advisory locks (so several workers share the plan
without embedding a picture twice), re-checked, embedded, and written in one transaction.

When the configured embedding differs from the active one, a sync makes two passes: first it
keeps the active configuration current (new, changed, deleted pictures reach the site), then
it fills the configured one's table (the backfill, shared by workers like any sync). Once every
catalogue picture has a vector or a failure under it, its indexes are built and it becomes
active in one transaction (unless ``activate`` is off).
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

from sqlalchemy import text

from . import configurations, store, tables
from .catalogue import Catalogue, CatalogueRow
from .embedding import check_decode_workers
from .errors import first_line
from .images import ImageError
from .reconnect import LostDatabase, Retry, SyncConnection
from .sources import FetchError, SourceOptions, read_bytes, stamp

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings
    from .configurations import Configuration
    from .embedding import EmbeddingConfig

EXIT_WITH_FAILURES = 4


@dataclass
class Task:
    row: CatalogueRow
    stamp: str | None
    reason: str                    # new | changed | config (backfill of a new one) | retry | check
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
    decode_workers: int | None = None   # None: Embedder's choice for the device (artvec.embedding.default_decode_workers)
    activate: bool = True           # a finished backfill becomes active (sync --no-activate: stays pending)
    progress: Callable[[int, int, float], None] | None = None   # (done, total, seconds)
    say: Callable[[str], None] | None = None                    # messages (the index build of a switch)


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
    device: str | None = None       # where the model ran, and how many pictures were decoded at once (None: no
    decode_workers: int | None = None   # picture needed the model)
    dry_run: bool = False
    failures: list[str] = field(default_factory=list)
    active_config_id: str | None = None   # what artvec.embeddings shows at the end
    switch: dict | None = None            # the backfill of config_id: embedded, missing, activated

    @property
    def rate(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_WITH_FAILURES if self.failed else 0


def source_options(settings: "Settings") -> SourceOptions:
    return SourceOptions(image_root=settings.get("catalogue.image_root"), timeout=settings.get("sync.http_timeout"),
                         retries=settings.get("sync.http_retries"))


def needs_work(row: CatalogueRow, row_stamp: str | None, stored, failure, current_configs: set[str],
               options: SyncOptions, new_reason: str = "new") -> Task | None:
    """What, if anything, this catalogue row needs; stored/failure are the store's rows.

    A picture that failed (under a configuration this sync serves) is tried again only with
    --retry-failed or once its source changed.
    """
    version = (stored.updated_at if stored else None, failure.last_failed_at if failure else None)
    task = stored_task(row, row_stamp, stored, options, version, new_reason)
    if task is None or failure is None:
        return task
    failed_on_this_source = (failure.config_id in current_configs and failure.image_location == row.image
                             and failure.source_stamp == row_stamp
                             and not newer(row.updated_at, failure.source_updated_at))
    if failed_on_this_source and not options.retry_failed:
        return None
    task.reason = "retry"
    return task


def stored_task(row: CatalogueRow, row_stamp: str | None, stored, options: SyncOptions, version: tuple,
                new_reason: str) -> Task | None:
    if stored is None:
        return Task(row, row_stamp, new_reason, version)
    sha = bytes(stored.image_sha256)
    if (stored.image_location != row.image or newer(row.updated_at, stored.source_updated_at)
            or stored.source_stamp != row_stamp):
        return Task(row, row_stamp, "changed", version, sha)
    if options.full:
        return Task(row, row_stamp, "check", version, sha)
    return None


def newer(catalogue_time, stored_time) -> bool:
    return catalogue_time is not None and (stored_time is None or catalogue_time > stored_time)


def make_plan(rows: list[tuple[CatalogueRow, str | None]], state: dict, failures: dict, current_configs: set[str],
              options: SyncOptions, new_reason: str = "new") -> Plan:
    """rows: the catalogue's, with their source stamps; state: one configuration's table."""
    plan = Plan()
    seen = set()
    for row, row_stamp in rows:
        seen.add(row.artwork_id)
        stored, failure = state.get(row.artwork_id), failures.get(row.artwork_id)
        task = needs_work(row, row_stamp, stored, failure, current_configs, options, new_reason)
        if task is not None:
            plan.tasks.append(task)
        elif failure is not None:
            plan.failed_skipped += 1
        else:
            plan.unchanged += 1
        if task is None and stored is not None and stored.facets != row.facets:
            plan.facet_updates.append((row.artwork_id, row.facets))
    plan.deletes = [artwork_id for artwork_id in list(state) + list(failures) if artwork_id not in seen]
    plan.deletes = list(dict.fromkeys(plan.deletes))
    return plan


@dataclass
class Pass:
    """One configuration's part of a sync: the active one, or the one being switched to."""
    config: "EmbeddingConfig"
    configuration: "Configuration | None"      # None: not in the store yet (a dry run)
    plan: Plan = field(default_factory=Plan)


def configurations_to_sync(connection: "Connection", target: "EmbeddingConfig", id_type: str,
                           dry_run: bool) -> list[tuple["EmbeddingConfig", "Configuration | None"]]:
    """[active] or [active, target]: the configuration of an empty store is made active at once."""
    if not dry_run:       # workers starting together register and activate one at a time
        configurations.lock_configurations(connection)
    current = configurations.active(connection)
    if current is not None and current.config_id == target.config_id:
        found = current if dry_run else configurations.register(connection, target, id_type)
        return [(target, found)]
    if dry_run:
        found = configurations.find(connection, target.config_id)
        if current is None or configurations.is_empty(connection, current):
            return [(target, found)]
        return [(current.embedding_config(), current), (target, found)]
    registered = configurations.register(connection, target, configurations.id_type_of(connection) or id_type)
    if current is None or configurations.is_empty(connection, current):    # nothing the site could lose
        configurations.make_active(connection, registered)
        return [(target, registered)]
    return [(current.embedding_config(), current), (target, registered)]


def plan_passes(connection: "Connection", chosen: list, rows: list, options: SyncOptions) -> list[Pass]:
    failures = store.stored_failures(connection)
    current_configs = {config.config_id for config, _ in chosen}
    passes = []
    for number, (config, configuration) in enumerate(chosen):
        state = {} if configuration is None or not configurations.table_exists(connection, configuration) \
            else store.stored_state(connection, configuration.table)
        plan = make_plan(rows, state, failures, current_configs, options, "new" if number == 0 else "config")
        passes.append(Pass(config, configuration, plan))
    left = options.limit
    for one in passes:                    # --limit: the active configuration's work first
        if left is not None:
            one.plan.tasks = one.plan.tasks[:left]
            left -= len(one.plan.tasks)
    return passes


def sync(settings: "Settings", options: SyncOptions, engine: "Engine | None" = None) -> SyncReport:
    started = time.perf_counter()
    check_decode_workers(options.decode_workers, "sync.decode_workers")   # before any work, not when the model loads
    target = settings.embedding_config()
    catalogue = Catalogue.from_settings(settings)
    sources = source_options(settings)
    retry = Retry.from_settings(settings)
    owned = engine is None
    engine = engine or store.engine_for_schema(settings)
    try:
        chosen, rows, passes = retry.call(lambda: read_plan(engine, catalogue, sources, target, options))
        report = report_for(passes, target, options)
        if options.dry_run:
            report.seconds = time.perf_counter() - started
            return report
        run_passes(settings, Context(catalogue, sources, engine, retry, options, started), passes, rows, report)
        if len(passes) == 2:
            retry.call(lambda: finish_switch(settings, engine, passes[1].configuration, rows, options, report))
        else:
            retry.call(lambda: record_missing(engine, passes[0].configuration, rows))
    finally:
        if owned:
            engine.dispose()
    return report


def read_plan(engine: "Engine", catalogue: Catalogue, sources: SourceOptions, target: "EmbeddingConfig",
              options: SyncOptions) -> tuple[list, list, list[Pass]]:
    """The configurations this sync serves, the catalogue's rows with their stamps, one plan each."""
    with engine.begin() as connection:
        catalogue.validate(connection)
        chosen = configurations_to_sync(connection, target, catalogue.id_type, options.dry_run)
        for _, configuration in chosen:
            if configuration is not None:
                store.check_dimensions(connection, configuration)
    with engine.connect() as connection:
        rows = [(row, stamp(row.image, sources)) for row in catalogue.rows(connection)]
        return chosen, rows, plan_passes(connection, chosen, rows, options)


def record_missing(engine: "Engine", configuration: "Configuration", rows: list) -> None:
    with engine.begin() as connection:
        configurations.record_missing(connection, configuration, configurations.missing_from(
            connection, configuration, [row.artwork_id for row, _ in rows]))


def report_for(passes: list[Pass], target: "EmbeddingConfig", options: SyncOptions) -> SyncReport:
    planned: dict[str, int] = {}
    for one in passes:
        for reason, count in one.plan.counts().items():
            planned[reason] = planned.get(reason, 0) + count
    first = passes[0].plan
    report = SyncReport(target.config_id, planned, unchanged=first.unchanged, failed_skipped=first.failed_skipped,
                        dry_run=options.dry_run, active_config_id=passes[0].config.config_id)
    if options.dry_run:
        report.deleted = len(first.deletes)
    if len(passes) == 2:
        report.switch = {"config_id": target.config_id, "embedded": 0, "missing": None, "activated": False}
    return report


@dataclass
class Context:
    """What a sync run works with."""
    catalogue: Catalogue
    sources: SourceOptions
    engine: Any
    retry: Retry
    options: SyncOptions
    started: float

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)


def run_passes(settings: "Settings", context: Context, passes: list[Pass], rows: list, report: SyncReport) -> None:
    engine = context.engine

    def prepare() -> int:
        with engine.begin() as connection:
            store.mark_interrupted(connection)
            deleted = 0
            for number, one in enumerate(passes):
                removed = store.delete_artworks(connection, one.configuration.table, one.plan.deletes)
                deleted += removed if number == 0 else 0
                store.update_facets(connection, one.configuration.table, one.plan.facet_updates)
        return deleted

    report.deleted = context.retry.call(prepare)
    link = SyncConnection(context.url, context.catalogue.id_type, context.retry, passes[0].configuration.table)
    state = "failed"
    try:
        run_id = link.start_run(worker_name(), report.config_id, len(rows))
        for number, one in enumerate(passes):
            if one.plan.tasks:
                before = report.embedded
                link.use_table(one.configuration.table)
                Runner(settings, context, one.config, one.configuration.table, link, run_id, report).run(one.plan.tasks)
                if number == 1:
                    report.switch["embedded"] = report.embedded - before
        state = "finished"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
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


def finish_switch(settings: "Settings", engine: "Engine", target: "Configuration", rows: list,
                  options: SyncOptions, report: SyncReport) -> None:
    """Count what the new configuration still lacks; complete, build its indexes and activate it."""
    with engine.begin() as connection:
        missing = configurations.missing_from(connection, target, [row.artwork_id for row, _ in rows])
        configurations.record_missing(connection, target, missing)
    report.switch["missing"] = missing
    if missing:
        return
    from .indexes import create_indexes

    with engine.connect() as lock:
        # one worker builds and activates; the others find it done
        lock.execute(text("select pg_advisory_lock(hashtext(:key))"), {"key": "artvec.switch"})
        try:
            with engine.connect() as connection:
                if configurations.find(connection, target.config_id).active:
                    report.active_config_id = target.config_id
                    return
            create_indexes(settings, progress=options.say or (lambda line: None), engine=engine,
                           configuration=target)
            if not options.activate:
                return
            with engine.begin() as connection:
                configurations.make_active(connection, target)
            report.switch["activated"] = True
            report.active_config_id = target.config_id
        finally:
            lock.execute(text("select pg_advisory_unlock(hashtext(:key))"), {"key": "artvec.switch"})
            lock.commit()


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

    def __init__(self, settings, context: Context, config, table: str, link: SyncConnection, run_id: int,
                 report: SyncReport):
        self.config, self.table, self.catalogue, self.sources = config, table, context.catalogue, context.sources
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
        embedder = Embedder(self.config, device=self.options.device, decode_workers=self.options.decode_workers)
        self.report.device, self.report.decode_workers = str(embedder.device), embedder.decode_workers
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
                        batch.touched.append({"artwork_id": task.row.artwork_id, "image_location": task.row.image,
                                              "source_stamp": task.stamp, "source_updated_at": task.row.updated_at,
                                              "facets": task.row.facets})
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
            now = store.versions(connection, self.table, list(claimed)) if claimed else {}
        fresh = [task for task in tasks if task.row.artwork_id in claimed and now[task.row.artwork_id] == task.version]
        fresh_ids = {task.row.artwork_id for task in fresh}
        self.link.release([artwork_id for artwork_id in claimed if artwork_id not in fresh_ids])
        return fresh

    def record(self, batch: Batch, task: Task, sha: bytes, result) -> None:
        if isinstance(result, ImageError):
            batch.failures.append(self.failure_row(task, result))
        else:
            row = task.row
            batch.embedded.append({"artwork_id": row.artwork_id, "config_id": self.config.config_id,
                                   "embedding": result.combined, "style": result.style, "colour": result.colour,
                                   tables.COPY_COLUMN: result.copy,
                                   "image_sha256": sha, "image_location": row.image, "source_stamp": task.stamp,
                                   "source_updated_at": row.updated_at, "facets": row.facets})
        batch.pending -= 1
        self.flush_if_done(batch)

    def failure_row(self, task: Task, error: ImageError) -> tuple:
        reason = one_line(f"{error.kind}: {error.reason}")
        self.report.failures.append(f"{task.row.artwork_id} ({task.row.image or 'no image'}): {reason}")
        return {"artwork_id": task.row.artwork_id, "config_id": self.config.config_id, "reason": reason,
                "image_location": task.row.image, "source_stamp": task.stamp, "source_updated_at": task.row.updated_at}

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
        embedded, failed = self.counts_after(batch)
        self.link.writer.write(batch.embedded, batch.failures, batch.touched, new_ids,
                               {"run_id": self.run_id, "embedded": embedded, "failed": failed})

    def counts_after(self, batch: Batch) -> tuple[int, int]:
        """The run's (embedded, failed) once this batch is written: recorded in the batch's transaction."""
        return self.report.embedded + len(batch.embedded), self.report.failed + len(batch.failures)

    def keep_still_ours(self, batch: Batch) -> None:
        """After a reconnect: keep the pictures whose claims were taken back and that nobody wrote meanwhile."""
        held = [task for task in batch.tasks if task.row.artwork_id in self.link.held]
        kept = self.unchanged_since_planned(held, {task.row.artwork_id for task in held})
        keep = {task.row.artwork_id for task in kept}
        batch.tasks = [task for task in batch.tasks if task.row.artwork_id in keep]
        batch.embedded = [row for row in batch.embedded if row["artwork_id"] in keep]
        batch.failures = [row for row in batch.failures if row["artwork_id"] in keep]
        batch.touched = [row for row in batch.touched if row["artwork_id"] in keep]
        batch.same = [artwork_id for artwork_id in batch.same if artwork_id in keep]

    def advance(self, count: int) -> None:
        self.done += count
        if self.options.progress and count:
            self.options.progress(self.done, self.total, time.perf_counter() - self.started)


def failures(settings: "Settings", limit: int = 50, engine: "Engine | None" = None) -> list[dict]:
    owned = engine is None
    engine = engine or store.engine_for_schema(settings)
    with engine.connect() as connection:
        rows = store.list_failures(connection, limit)
    if owned:
        engine.dispose()
    return rows


def status(settings: "Settings", engine: "Engine | None" = None) -> dict:
    owned = engine is None
    engine = engine or store.engine_for_schema(settings)
    with engine.begin() as connection:
        store.mark_interrupted(connection)
        info = store.sync_status(connection)
        current = configurations.active(connection)
    if owned:
        engine.dispose()
    info["active_config"] = current.config_id if current else None
    info["configured"] = settings.embedding_config().config_id
    return info
