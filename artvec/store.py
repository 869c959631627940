"""What artvec keeps in schema ``artvec`` (tables described in ``artvec.tables``): the store's statements."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, text, update

from . import configurations, db, migrate, tables
from .errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings
    from .configurations import Configuration
    from .embedding import EmbeddingConfig


def init(settings: "Settings", engine: "Engine | None" = None) -> dict[str, Any]:
    """Bring the database to the newest schema; safe to run again."""
    url = db.database_url(settings)
    owned = engine is None
    engine = engine or db.connect(url)
    migrate.upgrade(settings, url)
    with engine.connect() as connection:
        revision = migrate.current_revision(connection)
        current = configurations.active(connection)
        if current is not None:
            check_dimensions(connection, current)
    if owned:
        engine.dispose()
    return {"revision": revision, "url": db.mask_url(db.libpq_url(url)),
            "active": current.config_id if current else None}


def column_dimensions(connection: "Connection", relation: str = tables.qualified(tables.VIEW)) -> dict[str, int]:
    """The sizes of the vector columns of ``relation`` (the view: the active configuration's)."""
    rows = connection.execute(text("""
        select a.attname, a.atttypmod
        from pg_attribute a
        where a.attrelid = to_regclass(:relation)
          and a.attname = any(:columns) and not a.attisdropped
          and a.atttypmod > 0
    """), {"relation": relation, "columns": list(tables.VECTOR_COLUMNS)})
    return {name: typmod for name, typmod in rows}


def check_dimensions(connection: "Connection", configuration: "Configuration") -> None:
    """A configuration's table must hold vectors of the sizes the configuration makes."""
    have = column_dimensions(connection, configuration.table)
    want = configuration.dims
    if have and have != want:
        raise ConfigError(
            f"the embedding configuration {configuration.config_id} makes vectors of {want['embedding']} dims "
            f"({sizes(want)}) but its table {configuration.table} holds {have['embedding']} ({sizes(have)}); the "
            "vectors were computed differently: run artvec prune (after activating another configuration) and sync again")


def sizes(dims: dict[str, int]) -> str:
    """'style 1360, colour 512, copy 512' ('no copy vector' where there is none)."""
    copy = f"copy {dims['copy']}" if dims.get("copy") else "no copy vector"
    return f"style {dims['style']}, colour {dims['colour']}, {copy}"


def engine_for_schema(settings: "Settings") -> "Engine":
    """An engine on a database whose artvec schema is initialised; a clear error otherwise."""
    engine = db.engine_for(settings)
    with engine.connect() as connection:
        if migrate.current_revision(connection) is None:
            raise ConfigError("artvec's schema is not in this database yet: run `artvec init` first")
    return engine


@contextmanager
def engine_in_use(settings: "Settings", engine: "Engine | None" = None):
    """``engine`` when the caller passes one (the command's), else one of its own, disposed after."""
    if engine is not None:
        yield engine
        return
    own = engine_for_schema(settings)
    try:
        yield own
    finally:
        own.dispose()


def db_status(settings: "Settings", engine: "Engine | None" = None) -> dict[str, Any]:
    url = db.database_url(settings)
    owned = engine is None
    engine = engine or db.connect(url)
    info: dict[str, Any] = {
        "database": db.mask_url(db.libpq_url(url)),
        "embedded": db.is_embedded(settings),
    }
    if db.is_embedded(settings):
        info["data_dir"] = str(db.embedded_data_dir(settings))
    with engine.connect() as connection:
        info["server"] = connection.execute(text("show server_version")).scalar()
        info["pgvector"] = connection.execute(
            text("select extversion from pg_extension where extname = 'vector'")).scalar()
        info["schema_revision"] = migrate.current_revision(connection)
        if info["schema_revision"]:
            current = configurations.active(connection)
            info["active_config"] = current.config_id if current else "-"
            info["embeddings"] = connection.execute(text("select count(*) from artvec.embeddings")).scalar()
            info["failures"] = connection.execute(text("select count(*) from artvec.failures")).scalar()
            info["configs"] = ", ".join(c.config_id for c in configurations.read(connection)) or "-"
            info["size"] = connection.execute(text("""
                select pg_size_pretty(coalesce(sum(pg_total_relation_size(c.oid)), 0))
                from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = 'artvec' and c.relkind = 'r'""")).scalar()
    if owned:
        engine.dispose()
    return info


def register_model(connection: "Connection", config: "EmbeddingConfig", id_type: str = "bigint") -> "Configuration":
    """Record an embedding configuration and create its table (see configurations.register)."""
    return configurations.register(connection, config, id_type)


# --- sync: what the store holds, and batched writes -------------------------------------------

COPY_TYPES = {"bigint": "int8", "text": "text", "uuid": "uuid"}


def stored_state(connection: "Connection", table: str) -> dict[Any, Any]:
    """artwork_id -> row (image_location, source_stamp, source_updated_at, facets, image_sha256,
    updated_at) of one configuration's table."""
    t = tables.configuration_table(table.rpartition(".")[2])
    rows = connection.execute(select(t.c.artwork_id, t.c.image_location, t.c.source_stamp, t.c.source_updated_at,
                                     t.c.facets, t.c.image_sha256, t.c.updated_at))
    return {row.artwork_id: row for row in rows}


def stored_failures(connection: "Connection") -> dict[Any, Any]:
    """artwork_id -> row (config_id, image_location, source_stamp, source_updated_at, last_failed_at)."""
    f = tables.failures
    rows = connection.execute(select(f.c.artwork_id, f.c.config_id, f.c.image_location, f.c.source_stamp,
                                     f.c.source_updated_at, f.c.last_failed_at))
    return {row.artwork_id: row for row in rows}


def delete_artworks(connection: "Connection", table: str, ids: list) -> int:
    deleted = 0
    for start in range(0, len(ids), 10000):
        chunk = ids[start:start + 10000]
        deleted += connection.execute(text(f"delete from {table} where artwork_id = any(:ids)"),
                                      {"ids": chunk}).rowcount
        connection.execute(text("delete from artvec.failures where artwork_id = any(:ids)"), {"ids": chunk})
    return deleted


def update_facets(connection: "Connection", table: str, rows: list[tuple[Any, dict]]) -> None:
    if rows:
        connection.execute(text(f"""
            update {table} set facets = cast(:facets as jsonb), updated_at = now()
            where artwork_id = :artwork_id"""),
            [{"artwork_id": artwork_id, "facets": json.dumps(facets)} for artwork_id, facets in rows])


def versions(connection: "Connection", table: str, ids: list) -> dict[Any, tuple]:
    """artwork_id -> (embedding updated_at, failure last_failed_at): what a claim re-checks."""
    rows = connection.execute(text(f"""
        select i.id, e.updated_at, f.last_failed_at
        from unnest(:ids) as i(id)
        left join {table} e on e.artwork_id = i.id
        left join artvec.failures f on f.artwork_id = i.id"""), {"ids": ids})
    return {row.id: (row.updated_at, row.last_failed_at) for row in rows}


def start_run(connection: "Connection", worker: str, config_id: str, catalogue_size: int | None = None) -> int:
    runs = tables.sync_runs
    return connection.execute(insert(runs).values(worker=worker, config_id=config_id, catalogue_size=catalogue_size)
                              .returning(runs.c.run_id)).scalar_one()


def finish_run(connection: "Connection", run_id: int, state: str, counts: dict[str, int], seconds: float) -> None:
    runs = tables.sync_runs
    connection.execute(update(runs).where(runs.c.run_id == run_id)
                       .values(finished_at=func.now(), state=state, seconds=seconds, **counts))


class BatchWriter:
    """Writes one batch per transaction through a raw psycopg connection: binary COPY into a
    temporary staging table, then one INSERT ... ON CONFLICT, into one configuration's table.
    A killed process loses at most the batch in flight, and no reader ever sees half a batch."""

    def __init__(self, url: str, id_type: str, table: str = tables.qualified(tables.VIEW), connection=None):
        """connection: an autocommit psycopg connection to share (another table's writer's), else a new one."""
        import psycopg
        from pgvector.psycopg import register_vector

        self.table = table
        self.stage = "artvec_stage_" + table.rpartition(".")[2]
        # autocommit: each write is its own explicit transaction, and Claims can share the session
        self.connection = connection or psycopg.connect(db.libpq_url(url), autocommit=True)
        register_vector(self.connection)
        types = {"artwork_id": COPY_TYPES[id_type], **{name: "vector" for name in tables.VECTOR_COLUMNS},
                 "image_sha256": "bytea", "source_updated_at": "timestamptz", "facets": "jsonb"}
        self.copy_types = [types.get(name, "text") for name in tables.WRITTEN_COLUMNS]
        with self.connection.transaction():
            self.connection.execute(f"""
                create temporary table if not exists {self.stage}
                (like {table} including defaults) on commit delete rows""")

    def close(self) -> None:
        self.connection.close()

    def copy_rows(self, table: str, rows: list[dict]) -> None:
        from psycopg.types.json import Jsonb

        columns = ", ".join(tables.WRITTEN_COLUMNS)
        with self.connection.cursor().copy(f"copy {table} ({columns}) from stdin with (format binary)") as copy:
            copy.set_types(self.copy_types)
            for row in rows:
                copy.write_row([Jsonb(row[name]) if name == "facets" else row[name]
                                for name in tables.WRITTEN_COLUMNS])

    def write(self, embedded: list[dict], failures: list[dict], touched: list[dict], new_ids: set = frozenset(),
              progress: dict | None = None) -> None:
        """embedded: rows keyed by tables.WRITTEN_COLUMNS; failures: artwork_id, config_id, reason,
        image_location, source_stamp, source_updated_at; touched: artwork_id, image_location,
        source_stamp, source_updated_at, facets. Rows whose id is in new_ids (known absent, and
        claimed) are copied straight into the table; the rest go through the staging table and an
        upsert. progress: run_id, embedded, failed so far, recorded in the same transaction for
        `artvec status` to show a running sync."""
        from psycopg.types.json import Jsonb

        inserts = [row for row in embedded if row["artwork_id"] in new_ids]
        upserts = [row for row in embedded if row["artwork_id"] not in new_ids]
        with self.connection.transaction():
            if inserts:
                self.copy_rows(self.table, inserts)
            if upserts:
                self.copy_rows(self.stage, upserts)
                columns = ", ".join(tables.WRITTEN_COLUMNS)
                updates = ", ".join(f"{c} = excluded.{c}" for c in tables.WRITTEN_COLUMNS if c != "artwork_id")
                self.connection.execute(f"""
                    insert into {self.table} ({columns}) select {columns} from {self.stage}
                    on conflict (artwork_id) do update set {updates}, updated_at = now()""")
            if embedded:
                self.connection.execute("delete from artvec.failures where artwork_id = any(%s)",
                                        ([row["artwork_id"] for row in embedded],))
            if failures:
                with self.connection.cursor() as cursor:
                    cursor.executemany("""
                        insert into artvec.failures (artwork_id, config_id, reason, image_location,
                                                     source_stamp, source_updated_at)
                        values (%(artwork_id)s, %(config_id)s, %(reason)s, %(image_location)s,
                                %(source_stamp)s, %(source_updated_at)s)
                        on conflict (artwork_id) do update set config_id = excluded.config_id,
                            reason = excluded.reason, image_location = excluded.image_location,
                            source_stamp = excluded.source_stamp,
                            source_updated_at = excluded.source_updated_at,
                            attempts = artvec.failures.attempts + 1, last_failed_at = now()""", failures)
            if touched:
                with self.connection.cursor() as cursor:
                    cursor.executemany(f"""
                        update {self.table} set image_location = %(image_location)s,
                               source_stamp = %(source_stamp)s, source_updated_at = %(source_updated_at)s,
                               facets = %(facets)s, updated_at = now()
                        where artwork_id = %(artwork_id)s""",
                        [{**row, "facets": Jsonb(row["facets"])} for row in touched])
            if progress:
                self.connection.execute("""
                    update artvec.sync_runs set embedded = %(embedded)s, failed = %(failed)s,
                           state = 'running', finished_at = null
                    where run_id = %(run_id)s""", progress)


class Claims:
    """Which worker embeds which picture into which configuration's table: session-level advisory
    locks on a connection of the worker's own. They vanish the moment a worker dies or its
    connection drops, so a killed worker never strands its pictures, and re-running resumes at once."""

    def __init__(self, url: str, table: str = tables.qualified(tables.VIEW), connection=None):
        """connection: an autocommit psycopg connection to share (the BatchWriter's), else a new one."""
        import psycopg

        self.connection = connection or psycopg.connect(db.libpq_url(url), autocommit=True)
        # one lock space per table, apart from the site's locks: "artv" + the table's name
        self.namespace = self.connection.execute("select hashtext(%s)", ("artv:" + table,)).fetchone()[0]

    def claim(self, ids: list) -> set:
        rows = self.connection.execute("""
            select id from unnest(%s) as i(id)
            where pg_try_advisory_lock(%s, hashtext(id::text))""", (ids, self.namespace)).fetchall()
        return {row[0] for row in rows}

    def release(self, ids: list) -> None:
        if ids:
            self.connection.execute("select pg_advisory_unlock(%s, hashtext(id::text)) from unnest(%s) as i(id)",
                                    (self.namespace, ids))

    def close(self) -> None:
        self.connection.close()


# --- sync runs whose worker is gone --------------------------------------------------------------
# A running sync holds a session advisory lock keyed by its run id on its own connection; the lock
# vanishes with the worker (kill -9, lost connection), so a `running` row without it is interrupted.

RUN_LOCKS = 0x61727472  # "artr"


def start_locked_run(pg_connection, worker: str, config_id: str, catalogue_size: int | None = None) -> int:
    """Insert the run and take its lock in one transaction: nobody sees the row without the lock."""
    with pg_connection.transaction():
        run_id = pg_connection.execute("insert into artvec.sync_runs (worker, config_id, catalogue_size) "
                                       "values (%s, %s, %s) returning run_id",
                                       (worker, config_id, catalogue_size)).fetchone()[0]
        lock_run(pg_connection, run_id)
    return run_id


def lock_run(pg_connection, run_id: int) -> None:
    pg_connection.execute("select pg_advisory_lock(%s, (%s %% 2147483647)::int)", (RUN_LOCKS, run_id))


def run_counts(pg_connection, run_id: int) -> tuple[int, int]:
    """(embedded, failed) as the run last recorded them."""
    return tuple(pg_connection.execute("select embedded, failed from artvec.sync_runs where run_id = %s",
                                       (run_id,)).fetchone())


def mark_interrupted(connection: "Connection") -> int:
    """Runs left `running` by a worker that is gone become `interrupted`; how many."""
    return connection.execute(text("""
        update artvec.sync_runs r set state = 'interrupted', finished_at = now()
        where r.state = 'running' and not exists (
            select 1 from pg_locks l
            where l.locktype = 'advisory' and l.granted and l.objsubid = 2
              and l.database = (select oid from pg_database where datname = current_database())
              and l.classid = cast(:namespace as oid) and l.objid = cast(r.run_id % 2147483647 as oid))"""),
        {"namespace": RUN_LOCKS}).rowcount


def list_failures(connection: "Connection", limit: int) -> list[dict]:
    f = tables.failures
    rows = connection.execute(select(f.c.artwork_id, f.c.image_location, f.c.reason, f.c.attempts,
                                     f.c.first_failed_at, f.c.last_failed_at, f.c.config_id)
                              .order_by(f.c.last_failed_at.desc(), f.c.artwork_id).limit(limit))
    return [dict(row._mapping) for row in rows]


def sync_status(connection: "Connection") -> dict:
    by_config = [{"config_id": c.config_id, "count": configurations.count_rows(connection, c), "active": c.active}
                 for c in configurations.read(connection)]
    runs = tables.sync_runs
    last = connection.execute(select(*(c for c in runs.c if c.name != "catalogue_size"))
                              .order_by(runs.c.run_id.desc()).limit(1)).first()
    reasons = connection.execute(text("""
        select regexp_replace(reason, ':.*$', '') as reason, count(*) as count
        from artvec.failures group by 1 order by 2 desc limit 5"""))
    return {
        "by_config": sorted(by_config, key=lambda row: (not row["active"], -row["count"])),
        "failed": connection.execute(text("select count(*) from artvec.failures")).scalar(),
        "last_sync": dict(last._mapping) if last else None,
        "top_reasons": [dict(row._mapping) for row in reasons],
    }


def facet_names(connection: "Connection") -> list[str]:
    """The facets the sync copied beside the vectors (for a CLI run without catalogue settings)."""
    return list(connection.execute(text(
        "select distinct jsonb_object_keys(facets) from artvec.embeddings order by 1")).scalars())
