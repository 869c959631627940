"""artvec's tables in schema ``artvec``: every SQL statement the store runs lives here."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from . import db, migrate
from .errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings
    from .embedding import EmbeddingConfig


def init(settings: "Settings") -> dict[str, Any]:
    """Bring the database to the newest schema; safe to run again."""
    url = db.database_url(settings)
    engine = db.connect(url)
    migrate.upgrade(settings, url)
    with engine.connect() as connection:
        check_dimensions(connection, settings.embedding_config())
        revision = migrate.current_revision(connection)
    engine.dispose()
    return {"revision": revision, "url": db.mask_url(db.libpq_url(url))}


def column_dimensions(connection: "Connection") -> dict[str, int]:
    rows = connection.execute(text("""
        select a.attname, a.atttypmod
        from pg_attribute a
        where a.attrelid = 'artvec.embeddings'::regclass
          and a.attname in ('embedding', 'style', 'colour') and not a.attisdropped
    """))
    return {name: typmod for name, typmod in rows}


def check_dimensions(connection: "Connection", config: "EmbeddingConfig") -> None:
    """Vectors of the configured sizes must fit the columns the schema was made with."""
    have = column_dimensions(connection)
    want = {"embedding": config.dim, "style": config.style_dim, "colour": config.colour_dim}
    if have and have != want:
        raise ConfigError(
            f"the embedding configuration {config.config_id} makes vectors of {want['dim']} dims "
            f"(style {want['style']}, colour {want['colour']}) but the store's columns hold "
            f"{have['embedding']} (style {have['style']}, colour {have['colour']}); keep the old sizes, "
            "or drop artvec's schema (alembic downgrade base) and run artvec init again")


def engine_for_schema(settings: "Settings") -> "Engine":
    """An engine on a database whose artvec schema is initialised; a clear error otherwise."""
    engine = db.engine_for(settings)
    with engine.connect() as connection:
        if migrate.current_revision(connection) is None:
            raise ConfigError("artvec's schema is not in this database yet: run `artvec init` first")
    return engine


def db_status(settings: "Settings") -> dict[str, Any]:
    url = db.database_url(settings)
    engine = db.connect(url)
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
            info["embeddings"] = connection.execute(text("select count(*) from artvec.embeddings")).scalar()
            info["failures"] = connection.execute(text("select count(*) from artvec.failures")).scalar()
            info["models"] = ", ".join(connection.execute(
                text("select config_id from artvec.models order by created_at")).scalars()) or "-"
            info["size"] = connection.execute(text("""
                select pg_size_pretty(coalesce(sum(pg_total_relation_size(c.oid)), 0))
                from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = 'artvec' and c.relkind = 'r'""")).scalar()
    engine.dispose()
    return info


def register_model(connection: "Connection", config: "EmbeddingConfig") -> None:
    connection.execute(text("""
        insert into artvec.models (config_id, name, config, style_dim, colour_dim, dim)
        values (:config_id, :name, cast(:config as jsonb), :style_dim, :colour_dim, :dim)
        on conflict (config_id) do update set last_used_at = now()
    """), {"config_id": config.config_id, "name": config.name, "config": json.dumps(config.to_dict()),
           "style_dim": config.style_dim, "colour_dim": config.colour_dim, "dim": config.dim})


# --- sync: what the store holds, and batched writes -------------------------------------------

EMBEDDING_COLUMNS = ("artwork_id", "config_id", "embedding", "style", "colour", "image_sha256",
                     "image_location", "source_stamp", "source_updated_at", "facets")
COPY_TYPES = {"bigint": "int8", "text": "text", "uuid": "uuid"}


def stored_state(connection: "Connection") -> dict[Any, tuple]:
    """artwork_id -> (config_id, image_location, source_stamp, source_updated_at, facets, image_sha256, updated_at)."""
    rows = connection.execute(text("""
        select artwork_id, config_id, image_location, source_stamp, source_updated_at, facets,
               image_sha256, updated_at
        from artvec.embeddings"""))
    return {row[0]: tuple(row[1:]) for row in rows}


def stored_failures(connection: "Connection") -> dict[Any, tuple]:
    """artwork_id -> (config_id, image_location, source_stamp, source_updated_at, last_failed_at)."""
    rows = connection.execute(text("""
        select artwork_id, config_id, image_location, source_stamp, source_updated_at, last_failed_at
        from artvec.failures"""))
    return {row[0]: tuple(row[1:]) for row in rows}


def delete_artworks(connection: "Connection", ids: list) -> int:
    deleted = 0
    for start in range(0, len(ids), 10000):
        chunk = ids[start:start + 10000]
        deleted += connection.execute(text("delete from artvec.embeddings where artwork_id = any(:ids)"),
                                      {"ids": chunk}).rowcount
        connection.execute(text("delete from artvec.failures where artwork_id = any(:ids)"), {"ids": chunk})
    return deleted


def update_facets(connection: "Connection", rows: list[tuple[Any, dict]]) -> None:
    if rows:
        connection.execute(text("""
            update artvec.embeddings set facets = cast(:facets as jsonb), updated_at = now()
            where artwork_id = :artwork_id"""),
            [{"artwork_id": artwork_id, "facets": json.dumps(facets)} for artwork_id, facets in rows])


def versions(connection: "Connection", ids: list) -> dict[Any, tuple]:
    """artwork_id -> (embedding updated_at, failure last_failed_at): what a claim re-checks."""
    rows = connection.execute(text("""
        select i.id, e.updated_at, f.last_failed_at
        from unnest(:ids) as i(id)
        left join artvec.embeddings e on e.artwork_id = i.id
        left join artvec.failures f on f.artwork_id = i.id"""), {"ids": ids})
    return {row[0]: (row[1], row[2]) for row in rows}


def start_run(connection: "Connection", worker: str, config_id: str) -> int:
    return connection.execute(text("""
        insert into artvec.sync_runs (worker, config_id) values (:worker, :config_id) returning run_id"""),
        {"worker": worker, "config_id": config_id}).scalar_one()


def finish_run(connection: "Connection", run_id: int, state: str, counts: dict[str, int], seconds: float) -> None:
    connection.execute(text("""
        update artvec.sync_runs set finished_at = now(), state = :state, embedded = :embedded,
               unchanged = :unchanged, deleted = :deleted, failed = :failed, seconds = :seconds
        where run_id = :run_id"""), {"run_id": run_id, "state": state, "seconds": seconds, **counts})


class BatchWriter:
    """Writes one batch per transaction through a raw psycopg connection: binary COPY into a
    temporary staging table, then one INSERT ... ON CONFLICT. A killed process loses at most
    the batch in flight, and no reader ever sees half a batch."""

    def __init__(self, url: str, id_type: str):
        import psycopg
        from pgvector.psycopg import register_vector

        # autocommit: each write is its own explicit transaction, and Claims can share the session
        self.connection = psycopg.connect(db.libpq_url(url), autocommit=True)
        register_vector(self.connection)
        self.copy_types = [COPY_TYPES[id_type], "text", "vector", "vector", "vector", "bytea", "text", "text",
                           "timestamptz", "jsonb"]
        with self.connection.transaction():
            self.connection.execute("""
                create temporary table if not exists artvec_stage
                (like artvec.embeddings including defaults) on commit delete rows""")

    def close(self) -> None:
        self.connection.close()

    def copy_rows(self, table: str, rows: list[tuple]) -> None:
        from psycopg.types.json import Jsonb

        columns = ", ".join(EMBEDDING_COLUMNS)
        with self.connection.cursor().copy(f"copy {table} ({columns}) from stdin with (format binary)") as copy:
            copy.set_types(self.copy_types)
            for row in rows:
                copy.write_row((*row[:9], Jsonb(row[9])))

    def write(self, embedded: list[tuple], failures: list[tuple], touched: list[tuple], new_ids: set = frozenset(),
              progress: tuple[int, int, int] | None = None) -> None:
        """embedded: rows in EMBEDDING_COLUMNS order; failures: (id, config_id, reason, location,
        stamp, updated_at); touched: (id, location, stamp, updated_at, facets). Rows whose id is in
        new_ids (known absent, and claimed) are copied straight into the table; the rest go
        through the staging table and an upsert. progress: (run_id, embedded, failed) so far, recorded
        in the same transaction for `artvec status` to show a running sync."""
        from psycopg.types.json import Jsonb

        inserts = [row for row in embedded if row[0] in new_ids]
        upserts = [row for row in embedded if row[0] not in new_ids]
        with self.connection.transaction():
            if inserts:
                self.copy_rows("artvec.embeddings", inserts)
            if upserts:
                self.copy_rows("artvec_stage", upserts)
                columns = ", ".join(EMBEDDING_COLUMNS)
                updates = ", ".join(f"{c} = excluded.{c}" for c in EMBEDDING_COLUMNS[1:])
                self.connection.execute(f"""
                    insert into artvec.embeddings ({columns}) select {columns} from artvec_stage
                    on conflict (artwork_id) do update set {updates}, updated_at = now()""")
            if embedded:
                self.connection.execute("delete from artvec.failures where artwork_id = any(%s)",
                                        ([row[0] for row in embedded],))
            if failures:
                with self.connection.cursor() as cursor:
                    cursor.executemany("""
                        insert into artvec.failures (artwork_id, config_id, reason, image_location,
                                                     source_stamp, source_updated_at)
                        values (%s, %s, %s, %s, %s, %s)
                        on conflict (artwork_id) do update set config_id = excluded.config_id,
                            reason = excluded.reason, image_location = excluded.image_location,
                            source_stamp = excluded.source_stamp,
                            source_updated_at = excluded.source_updated_at,
                            attempts = artvec.failures.attempts + 1, last_failed_at = now()""", failures)
            if touched:
                with self.connection.cursor() as cursor:
                    cursor.executemany("""
                        update artvec.embeddings set image_location = %s, source_stamp = %s,
                               source_updated_at = %s, facets = %s, updated_at = now()
                        where artwork_id = %s""",
                        [(location, stamp, updated, Jsonb(facets), artwork_id)
                         for artwork_id, location, stamp, updated, facets in touched])
            if progress:
                self.connection.execute("""
                    update artvec.sync_runs set embedded = %s, failed = %s, state = 'running', finished_at = null
                    where run_id = %s""", (progress[1], progress[2], progress[0]))


class Claims:
    """Which worker embeds which picture: session-level advisory locks on a connection of the
    worker's own. They vanish the moment a worker dies or its connection drops, so a killed
    worker never strands its pictures, and re-running resumes at once."""

    NAMESPACE = 0x61727476  # "artv": keeps artvec's locks apart from the site's

    def __init__(self, url: str, connection=None):
        """connection: an autocommit psycopg connection to share (the BatchWriter's), else a new one."""
        import psycopg

        self.connection = connection or psycopg.connect(db.libpq_url(url), autocommit=True)

    def claim(self, ids: list) -> set:
        rows = self.connection.execute("""
            select id from unnest(%s) as i(id)
            where pg_try_advisory_lock(%s, hashtext(id::text))""", (ids, self.NAMESPACE)).fetchall()
        return {row[0] for row in rows}

    def release(self, ids: list) -> None:
        if ids:
            self.connection.execute("select pg_advisory_unlock(%s, hashtext(id::text)) from unnest(%s) as i(id)",
                                    (self.NAMESPACE, ids))

    def close(self) -> None:
        self.connection.close()


# --- sync runs whose worker is gone --------------------------------------------------------------
# A running sync holds a session advisory lock keyed by its run id on its own connection; the lock
# vanishes with the worker (kill -9, lost connection), so a `running` row without it is interrupted.

RUN_LOCKS = 0x61727472  # "artr"


def start_locked_run(pg_connection, worker: str, config_id: str) -> int:
    """Insert the run and take its lock in one transaction: nobody sees the row without the lock."""
    with pg_connection.transaction():
        run_id = pg_connection.execute("insert into artvec.sync_runs (worker, config_id) values (%s, %s) "
                                       "returning run_id", (worker, config_id)).fetchone()[0]
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
    rows = connection.execute(text("""
        select artwork_id, image_location, reason, attempts, first_failed_at, last_failed_at, config_id
        from artvec.failures order by last_failed_at desc, artwork_id limit :limit"""), {"limit": limit})
    return [dict(row._mapping) for row in rows]


def sync_status(connection: "Connection") -> dict:
    by_config = connection.execute(text("""
        select config_id, count(*) as count from artvec.embeddings group by config_id order by 2 desc"""))
    last = connection.execute(text("""
        select run_id, worker, config_id, started_at, finished_at, state, embedded, unchanged, deleted, failed, seconds
        from artvec.sync_runs order by run_id desc limit 1""")).first()
    reasons = connection.execute(text("""
        select regexp_replace(reason, ':.*$', '') as reason, count(*) as count
        from artvec.failures group by 1 order by 2 desc limit 5"""))
    return {
        "by_config": [dict(row._mapping) for row in by_config],
        "failed": connection.execute(text("select count(*) from artvec.failures")).scalar(),
        "last_sync": dict(last._mapping) if last else None,
        "top_reasons": [dict(row._mapping) for row in reasons],
    }


def facet_names(connection: "Connection") -> list[str]:
    """The facets the sync copied beside the vectors (for a CLI run without catalogue settings)."""
    return list(connection.execute(text(
        "select distinct jsonb_object_keys(facets) from artvec.embeddings order by 1")).scalars())
