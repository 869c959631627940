"""Embedding configurations side by side, one active.

Each configuration's vectors live in a table of their own (``artvec.embeddings_<hash>``, with
that configuration's vector sizes and its own indexes). ``artvec.embeddings`` is a plain view on
the active one's table, so the website's SQL never changes: PostgreSQL inlines the view, and the
plans use the table's HNSW and B-tree indexes as if the SQL named the table. Activating another
configuration re-points the view in one transaction (grants on the view carried over).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from . import tables
from .errors import ArtvecError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .embedding import EmbeddingConfig

ACTIVATION_LOCK = "artvec.activate"


@dataclass
class Configuration:
    """One row of artvec.models: an embedding configuration and where its vectors are."""
    config_id: str
    name: str
    config: dict
    dim: int
    style_dim: int
    colour_dim: int
    table_name: str | None
    active: bool
    created_at: datetime
    last_used_at: datetime
    activated_at: datetime | None
    missing: int | None
    counted_at: datetime | None

    @property
    def dims(self) -> dict[str, int]:
        """The vector columns' sizes; "copy" only where the configuration has a copy vector."""
        from .embedding import stored_copy_dim

        dims = {"embedding": self.dim, "style": self.style_dim, "colour": self.colour_dim}
        copy_dim = stored_copy_dim(self.config)
        return {**dims, tables.COPY_COLUMN: copy_dim} if copy_dim else dims

    @property
    def table(self) -> str:
        return tables.qualified(self.table_name)

    def embedding_config(self) -> "EmbeddingConfig":
        from .embedding import EmbeddingConfig

        return EmbeddingConfig.from_stored(self.config)


def read(connection: "Connection", *where) -> list[Configuration]:
    m = tables.models
    rows = connection.execute(select(*(m.c[name] for name in Configuration.__dataclass_fields__))
                              .where(*where).order_by(m.c.created_at, m.c.config_id)).mappings()
    return [Configuration(**row) for row in rows]


def active(connection: "Connection") -> Configuration | None:
    found = read(connection, tables.models.c.active)
    return found[0] if found else None


def find(connection: "Connection", config_id: str) -> Configuration | None:
    found = read(connection, tables.models.c.config_id == config_id)
    return found[0] if found else None


# ---- creating one ----------------------------------------------------------------------

def register(connection: "Connection", config: "EmbeddingConfig", id_type: str) -> Configuration:
    """Record ``config`` (or touch its last use) and make sure its table exists."""
    m = tables.models
    values = {"config_id": config.config_id, "name": config.name, "config": config.to_dict(),
              "style_dim": config.style_dim, "colour_dim": config.colour_dim, "dim": config.dim}
    connection.execute(insert(m).values(values).on_conflict_do_update(
        index_elements=[m.c.config_id], set_={"last_used_at": func.now()}))
    return ensure_table(connection, find(connection, config.config_id), id_type)


def ensure_table(connection: "Connection", configuration: Configuration, id_type: str) -> Configuration:
    if configuration.table_name is None:
        configuration.table_name = tables.table_name_for(configuration.config_id)
        connection.execute(update(tables.models).where(tables.models.c.config_id == configuration.config_id)
                           .values(table_name=configuration.table_name))
    create_table(connection, configuration.table_name, id_type, configuration.dims)
    return configuration


def create_table(connection: "Connection", table_name: str, id_type: str, dims: Mapping[str, int]) -> None:
    table = tables.configuration_table(table_name, id_type, dims)
    if connection.execute(text("select to_regclass(:name)"), {"name": tables.qualified(table_name)}).scalar():
        return
    table.create(connection)
    if tables.keeps_embedding_inline(dims["embedding"]):
        # The combined vector in the row, not in TOAST (pgvector's default): exact re-ranking of
        # filtered rows reads it 3-4x faster and is priced honestly by the planner (docs/sql.md).
        connection.execute(text(f"alter table {tables.qualified(table_name)} alter column embedding set storage plain"))


def id_type_of(connection: "Connection", relation: str = tables.qualified(tables.VIEW)) -> str | None:
    """The catalogue id type the store was made with (bigint, text, uuid), from ``relation``."""
    name = connection.execute(text("""
        select format_type(atttypid, atttypmod) from pg_attribute
        where attrelid = to_regclass(:relation) and attname = 'artwork_id'"""), {"relation": relation}).scalar()
    return {"bigint": "bigint", "text": "text", "uuid": "uuid"}.get(name)


# ---- activating one --------------------------------------------------------------------

def grants_on(connection: "Connection", relation: str) -> list[tuple[str, str]]:
    """(grantee, privilege) given on ``relation`` to roles other than its owner."""
    return [tuple(row) for row in connection.execute(text("""
        select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end, a.privilege_type
        from pg_class c, aclexplode(c.relacl) a
        where c.oid = to_regclass(:relation) and a.grantee <> c.relowner"""), {"relation": relation})]


def point_view(connection: "Connection", table_name: str, grants: list[tuple[str, str]] | None = None) -> None:
    """(Re)create the view ``artvec.embeddings`` on ``table_name``, keeping the grants made on it.

    The vector columns change type (their sizes) from one configuration to the next, which
    CREATE OR REPLACE VIEW cannot do: drop and create, inside the caller's transaction.
    """
    view = tables.qualified(tables.VIEW)
    grants = grants_on(connection, view) if grants is None else grants
    try:
        with connection.begin_nested():
            connection.execute(text(f"drop view if exists {view}"))
    except DBAPIError as error:
        raise ArtvecError(f"cannot re-point {view}: {first_line(error)} (drop or recreate the views "
                          "built on it around the switch)") from None
    connection.execute(text(f"create view {view} as select * from {tables.qualified(table_name)}"))
    connection.execute(text(f"comment on view {view} is 'the active embedding configuration (artvec activate)'"))
    for grantee, privilege in grants:
        connection.execute(text(f"grant {privilege} on {view} to {grantee}"))


def lock_configurations(connection: "Connection") -> None:
    """Until the transaction ends, no other session registers, activates or prunes a configuration."""
    connection.execute(text("select pg_advisory_xact_lock(hashtext(:key))"), {"key": ACTIVATION_LOCK})


def make_active(connection: "Connection", configuration: Configuration,
                grants: list[tuple[str, str]] | None = None) -> None:
    """Point the view at ``configuration``'s table and mark it active (the caller's transaction)."""
    lock_configurations(connection)
    m = tables.models
    connection.execute(update(m).where(m.c.active).values(active=False))
    connection.execute(update(m).where(m.c.config_id == configuration.config_id)
                       .values(active=True, activated_at=func.now()))
    point_view(connection, configuration.table_name, grants)
    configuration.active = True


# ---- how complete and how ready ----------------------------------------------------------

def count_rows(connection: "Connection", configuration: Configuration) -> int:
    if not table_exists(connection, configuration):
        return 0
    return connection.execute(text(f"select count(*) from {configuration.table}")).scalar()


def table_exists(connection: "Connection", configuration: Configuration) -> bool:
    return bool(configuration.table_name) and connection.execute(
        text("select to_regclass(:name) is not null"), {"name": configuration.table}).scalar()


def is_empty(connection: "Connection", configuration: Configuration) -> bool:
    return not table_exists(connection, configuration) or not connection.execute(
        text(f"select exists (select 1 from {configuration.table})")).scalar()


def missing_from(connection: "Connection", configuration: Configuration, ids: list) -> int:
    """How many of ``ids`` (the catalogue's) have neither a vector nor a failure under ``configuration``."""
    return connection.execute(text(f"""
        select count(*) from unnest(cast(:ids as {id_sql_type(connection, configuration)}[])) as i(id)
        where not exists (select 1 from {configuration.table} e where e.artwork_id = i.id)
          and not exists (select 1 from artvec.failures f where f.artwork_id = i.id)"""), {"ids": ids}).scalar()


def id_sql_type(connection: "Connection", configuration: Configuration) -> str:
    return id_type_of(connection, configuration.table) or "text"


def missing_against_active(connection: "Connection", configuration: Configuration) -> int:
    """Pictures the site shows now (the active table) that ``configuration`` has no vector for."""
    current = active(connection)
    if current is None or current.config_id == configuration.config_id:
        return 0
    return connection.execute(text(f"""
        select count(*) from {current.table} a
        where not exists (select 1 from {configuration.table} e where e.artwork_id = a.artwork_id)
          and not exists (select 1 from artvec.failures f where f.artwork_id = a.artwork_id)""")).scalar()


def record_missing(connection: "Connection", configuration: Configuration, missing: int) -> None:
    m = tables.models
    connection.execute(update(m).where(m.c.config_id == configuration.config_id)
                       .values(missing=missing, counted_at=func.now()))
    configuration.missing = missing


def hnsw_index_names(configuration: Configuration) -> list[str]:
    """Its HNSW indexes' names: one per vector column it fills (the copy vector's only where it has one)."""
    return [f"{configuration.table_name}_{column}_hnsw" for column in configuration.dims]


def indexes_ready(connection: "Connection", configuration: Configuration) -> bool:
    """Its HNSW indexes exist and are valid (not a build that was interrupted)."""
    if not configuration.table_name:
        return False
    names = hnsw_index_names(configuration)
    valid = connection.execute(text("""
        select count(*) from pg_index i join pg_class c on c.oid = i.indexrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = :schema and c.relname = any(:names) and i.indisvalid"""),
        {"schema": tables.SCHEMA, "names": names}).scalar()
    return valid == len(names)


# ---- the commands: configs, activate, prune ----------------------------------------------

def catalogue_size(connection: "Connection") -> int | None:
    """Catalogue rows the latest sync saw."""
    return connection.execute(select(tables.sync_runs.c.catalogue_size)
                              .where(tables.sync_runs.c.catalogue_size.is_not(None))
                              .order_by(tables.sync_runs.c.run_id.desc()).limit(1)).scalar()


def configs(engine: "Engine") -> list[dict[str, Any]]:
    """Every configuration: name, id, dims, pictures embedded / catalogue size, indexes ready,
    active, created, last used."""
    with engine.connect() as connection:
        size = catalogue_size(connection)
        return [{"config_id": c.config_id, "name": c.name, "dims": c.dims, "table": c.table_name,
                 "embedded": count_rows(connection, c), "catalogue_size": size,
                 "missing": c.missing, "indexes_ready": indexes_ready(connection, c), "active": c.active,
                 "created_at": c.created_at, "last_used_at": c.last_used_at, "activated_at": c.activated_at}
                for c in read(connection)]


def activate(engine: "Engine", config_id: str, force: bool = False) -> dict[str, Any]:
    """Make ``config_id`` the one ``artvec.embeddings`` shows, in one transaction. Refused, unless
    ``force``, when it lacks vectors for pictures the site shows now, or its HNSW indexes."""
    with engine.begin() as connection:
        lock_configurations(connection)
        configuration = find(connection, config_id)
        if configuration is None or not table_exists(connection, configuration):
            known = ", ".join(c.config_id for c in read(connection)) or "none"
            raise ArtvecError(f"configuration {config_id} is not in the store (configurations: {known})")
        previous = active(connection)
        if configuration.active:
            return {"config_id": config_id, "previous": config_id, "changed": False}
        missing = missing_against_active(connection, configuration)
        ready = indexes_ready(connection, configuration)
        if not force and (missing or not ready):
            problems = ([f"{missing} pictures of the active configuration have no vector in it"] if missing else []) \
                + ([] if ready else ["its HNSW indexes are not built"])
            raise ArtvecError(f"configuration {config_id} is not ready: {'; '.join(problems)} "
                              "(run artvec sync with it configured, or pass --force)")
        make_active(connection, configuration)
    return {"config_id": config_id, "previous": previous.config_id if previous else None, "changed": True,
            "missing": missing, "indexes_ready": ready}


def prune(engine: "Engine", keep: int = 0, spare: str | None = None) -> list[str]:
    """Drop the vectors (table and record) of inactive configurations, all but the ``keep`` most
    recently used; never the active one, nor ``spare`` (the configured one, maybe mid-switch)."""
    if keep < 0:
        raise ArtvecError("--keep must be 0 or more")
    with engine.begin() as connection:
        lock_configurations(connection)
        inactive = [c for c in read(connection, tables.models.c.active.is_(False)) if c.config_id != spare]
        inactive.sort(key=lambda c: c.last_used_at, reverse=True)
        dropped = inactive[keep:]
        for configuration in dropped:
            if configuration.table_name:
                connection.execute(text(f"drop table if exists {configuration.table}"))
            connection.execute(tables.models.delete().where(tables.models.c.config_id == configuration.config_id))
    return [configuration.config_id for configuration in dropped]
