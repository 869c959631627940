"""HNSW and filter indexes on the store, and the database defaults that keep filtered searches
returning k rows (iterative scans) without any session ``SET``."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from . import configurations, tables
from .catalogue import quote_identifier
from .errors import ArtvecError, ConfigError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings
    from .configurations import Configuration

HNSW_MAX_VECTOR_DIMS = 2000      # beyond this, index (column::halfvec(d)) instead
ITERATIVE_SCAN = "relaxed_order"
MEBIBYTE = 1024 * 1024
Progress = Callable[[str], None]


def column_dims(connection: "Connection") -> dict[str, int]:
    """The vector sizes of the active configuration (what ``artvec.embeddings`` shows)."""
    from .store import column_dimensions

    return column_dimensions(connection)


def active_configuration(connection: "Connection") -> "Configuration":
    current = configurations.active(connection)
    if current is None:
        raise ArtvecError("no embedding configuration is active yet: run artvec sync first")
    return current


# ---- HNSW and B-tree indexes ---------------------------------------------------------------------------

def hnsw_indexes(table_name: str, dims: Mapping[str, int]) -> list[tuple[str, str, str]]:
    """(index name, indexed expression, operator class) for the vector columns (the copy vector's where the
    configuration has one)."""
    specs = []
    for column_name in tables.VECTOR_COLUMNS:
        d = dims.get(column_name)
        if not d:
            continue
        if d > HNSW_MAX_VECTOR_DIMS:
            specs.append((f"{table_name}_{column_name}_hnsw", f"(({column_name})::halfvec({d}))", "halfvec_l2_ops"))
        else:
            specs.append((f"{table_name}_{column_name}_hnsw", column_name, "vector_l2_ops"))
    return specs


def btree_indexes(table_name: str, facets: Iterable[str]) -> list[tuple[str, str]]:
    """One per facet; none on config_id (each configuration has a table of its own)."""
    specs = []
    for facet in facets:
        quote_identifier(facet, "facet")
        specs.append((f"{table_name}_facet_{facet}"[:63], f"(facets ->> '{facet}')"))
    return specs


def index_options(settings: "Settings") -> tuple[int, int]:
    m, ef_construction = int(settings.get("index.m")), int(settings.get("index.ef_construction"))
    if not 2 <= m <= 100 or not 4 <= ef_construction <= 1000 or ef_construction < 2 * m:
        raise ConfigError(f"index.m must be 2..100 and index.ef_construction 4..1000 and at least 2*m "
                          f"(got m={m}, ef_construction={ef_construction})")
    return m, ef_construction


def existing_indexes(connection: "Connection", table: str | None = None) -> dict[str, dict[str, Any]]:
    """The indexes of ``table`` (default: the active configuration's): name -> valid, options."""
    table = table or active_configuration(connection).table
    rows = connection.execute(text("""
        select c.relname, i.indisvalid, coalesce(c.reloptions, '{}')
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = to_regclass(:table)"""), {"table": table})
    return {name: {"valid": valid, "options": sorted(options)} for name, valid, options in rows}


def build_memory(connection: "Connection", table: str, dims: Mapping[str, int], m: int) -> int:
    """Bytes the largest HNSW graph needs in memory: rows x (vector + neighbour lists)."""
    rows = connection.execute(text(f"select count(*) from {table}")).scalar() or 0
    largest = max(d * (2 if d > HNSW_MAX_VECTOR_DIMS else 4) for d in dims.values())
    return int(rows * (largest + 8 + m * 2 * 3 * 16) * 1.25)


def choose_maintenance_work_mem(connection: "Connection", needed: int, requested: str | None) -> str:
    if requested:
        return requested
    current = connection.execute(
        text("select setting::bigint * 1024 from pg_settings where name = 'maintenance_work_mem'")).scalar()
    chosen = min(max(needed, current, 64 * MEBIBYTE), 2048 * MEBIBYTE - MEBIBYTE)
    return f"{chosen // MEBIBYTE}MB"


def watch_progress(url_engine: "Engine", pid: int, label: Callable[[], str], progress: Progress,
                   stop: threading.Event, every: float = 5.0) -> None:
    """Report pg_stat_progress_create_index of backend ``pid`` until ``stop`` is set."""
    with url_engine.connect() as connection:
        while not stop.wait(every):
            row = connection.execute(text("""
                select phase, tuples_done, blocks_done, blocks_total from pg_stat_progress_create_index
                where pid = :pid"""), {"pid": pid}).first()
            connection.rollback()
            if row:
                progress(f"  {label()}: {row.phase}{progress_detail(row)}")


def progress_detail(row) -> str:
    if row.blocks_total:
        return f", {100 * row.blocks_done // row.blocks_total}% of the table read"
    return f", {row.tuples_done:,} rows" if row.tuples_done else ""


def index(settings: "Settings", rebuild: bool = False, progress: Progress = print,
                   maintenance_work_mem: str | None = None, engine: "Engine | None" = None,
                   configuration: "Configuration | None" = None) -> list[dict]:
    """HNSW indexes on embedding, style and colour (and copy, where the configuration has a copy vector), a
    B-tree on each facet, on the table of ``configuration`` (default: the active one).

    Safe to run again: existing valid indexes with the configured parameters are kept;
    with ``rebuild`` (or when m/ef_construction changed, or a build was interrupted) a new
    index is built concurrently beside the old one and swapped in. Then the database
    defaults for iterative scans are set (``configure_database``).
    """
    from . import store

    owned = engine is None
    engine = engine or store.engine_for_schema(settings)
    m, ef_construction = index_options(settings)
    facets = list(settings.get("catalogue.facets") or [])
    report: list[dict] = []
    try:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            configuration = configuration or active_configuration(connection)
            table, dims = configuration.table, configuration.dims
            memory = choose_maintenance_work_mem(connection, build_memory(connection, table, dims, m),
                                                 maintenance_work_mem)
            connection.execute(text("select set_config('maintenance_work_mem', :v, false)"), {"v": memory})
            progress(f"maintenance_work_mem = {memory} for this build (the HNSW graph is built fastest "
                     "when it fits; pass --maintenance-work-mem to change)")
            pid = connection.execute(text("select pg_backend_pid()")).scalar()
            wanted = [f"ef_construction={ef_construction}", f"m={m}"]
            for name, expression, opclass in hnsw_indexes(configuration.table_name, dims):
                using = f"hnsw ({expression} {opclass}) with (m = {m}, ef_construction = {ef_construction})"
                report.append(ensure_index(connection, engine, pid, table, name, using, wanted, rebuild, progress))
            for name, expression in btree_indexes(configuration.table_name, facets):
                report.append(ensure_index(connection, engine, pid, table, name, f"btree ({expression})", [],
                                           rebuild, progress))
            connection.execute(text(f"analyze {table}"))
        configure_database(engine, settings)
        progress(f"database defaults: hnsw.iterative_scan = {ITERATIVE_SCAN}, hnsw.ef_search = "
                 f"{settings.get('search.ef_search')}, hnsw.max_scan_tuples = {settings.get('search.max_scan_tuples')}; "
                 f"more like this's neighbour scan: hnsw.ef_search = {settings.get('search.expand_ef_search')}")
    except DBAPIError as error:
        from .reconnect import is_connection_lost

        if is_connection_lost(error):      # the caller may retry: a re-run finishes what was cut off
            raise
        raise ArtvecError(f"index build failed: {first_line(error)}") from None
    finally:
        if owned:
            engine.dispose()
    return report


create_indexes = index      # the name before ``artvec index`` had a function of its own name


def ensure_index(connection: "Connection", engine: "Engine", pid: int, table: str, name: str, using: str,
                 wanted_options: list[str], rebuild: bool, progress: Progress) -> dict:
    leftover = name[:59] + "_new"
    if leftover in existing_indexes(connection, table):   # a rebuild cut off before its swap
        progress(f"{leftover}: dropping what an interrupted rebuild left")
        connection.execute(text(f"drop index concurrently if exists artvec.{leftover}"))
    current = existing_indexes(connection, table).get(name)
    stale = current is not None and (not current["valid"] or
                                     (wanted_options and current["options"] != wanted_options))
    if current is not None and not (rebuild or stale):
        progress(f"{name}: exists")
        return {"index": name, "action": "kept", "seconds": 0.0, "size": index_size(connection, name)}
    started = time.perf_counter()
    if current is None:
        progress(f"{name}: building")
        run_with_progress(connection, engine, pid, name, f"create index if not exists {name} "
                          f"on {table} using {using}", progress)
        action = "created"
    else:
        progress(f"{name}: rebuilding beside the old one, then swapping")
        swap_in_new(connection, engine, pid, table, name, using, progress)
        action = "rebuilt"
    seconds = time.perf_counter() - started
    size = index_size(connection, name)
    progress(f"{name}: {action} in {seconds:.1f} s, {size}")
    return {"index": name, "action": action, "seconds": round(seconds, 2), "size": size}


def swap_in_new(connection: "Connection", engine: "Engine", pid: int, table: str, name: str, using: str,
                progress: Progress) -> None:
    new_name = (name[:59] + "_new")
    connection.execute(text(f"drop index concurrently if exists artvec.{new_name}"))
    run_with_progress(connection, engine, pid, name, f"create index concurrently {new_name} "
                      f"on {table} using {using}", progress)
    connection.execute(text(f"begin; drop index if exists artvec.{name}; "
                            f"alter index artvec.{new_name} rename to {name}; commit"))


def run_with_progress(connection: "Connection", engine: "Engine", pid: int, name: str, sql: str,
                      progress: Progress) -> None:
    stop = threading.Event()
    watcher = threading.Thread(target=watch_progress, args=(engine, pid, lambda: name, progress, stop),
                               daemon=True)
    watcher.start()
    try:
        connection.execute(text(sql))
    finally:
        stop.set()
        watcher.join(timeout=10)


def index_size(connection: "Connection", name: str) -> str:
    return connection.execute(text("select pg_size_pretty(pg_relation_size(to_regclass(:name)))"),
                              {"name": f"artvec.{name}"}).scalar()


# ---- database defaults ------------------------------------------------------------

def database_defaults(settings: "Settings") -> dict[str, str]:
    ef_search, max_scan_tuples = int(settings.get("search.ef_search")), int(settings.get("search.max_scan_tuples"))
    if not 1 <= ef_search <= 1000 or max_scan_tuples < 1:
        raise ConfigError(f"search.ef_search must be 1..1000 and search.max_scan_tuples ≥ 1 "
                          f"(got {ef_search}, {max_scan_tuples})")
    return {"hnsw.iterative_scan": ITERATIVE_SCAN, "hnsw.ef_search": str(ef_search),
            "hnsw.max_scan_tuples": str(max_scan_tuples)}


def expand_ef_search(settings: "Settings") -> int:
    """``hnsw.ef_search`` of the scan for a query's nearest pictures ("more like this", ``artvec.expanded``)."""
    value = int(settings.get("search.expand_ef_search"))
    if not 1 <= value <= 1000:
        raise ConfigError(f"search.expand_ef_search must be 1..1000, not {value}")
    return value


#: The function "more like this" expands its query with (migration 0007), whose own ``SET`` clause holds its ef_search.
EXPANDED_FUNCTION = "artvec.expanded(vector, integer, text, text)"


def configure_database(engine: "Engine", settings: "Settings") -> dict[str, str]:
    """``ALTER DATABASE <current> SET`` the iterative-scan defaults every new session gets, and the ef_search of
    "more like this"'s neighbour scan (``ALTER FUNCTION artvec.expanded SET``)."""
    defaults = database_defaults(settings)
    expand_ef = expand_ef_search(settings)
    with engine.connect() as connection:
        name = connection.execute(text("select quote_ident(current_database())")).scalar()
        statements = [f"alter database {name} set {key} = '{value}'" for key, value in defaults.items()]
        statements.append(f"alter function {EXPANDED_FUNCTION} set hnsw.ef_search = '{expand_ef}'")
        try:
            for statement in statements:
                connection.execute(text(statement))
            connection.commit()
        except DBAPIError as error:
            raise ArtvecError(f"cannot set the database defaults ({first_line(error)}); "
                              f"ask the database owner to run: {'; '.join(statements)}") from None
    return {**defaults, f"{EXPANDED_FUNCTION}: hnsw.ef_search": str(expand_ef)}
