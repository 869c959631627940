"""Similarity search in plain SQL: HNSW indexes, database defaults, filtered queries, grants.

The queries keep the shape that pgvector can serve from an HNSW index:
``ORDER BY <column> <-> <query vector> LIMIT k`` with filters in ``WHERE``. pgvector
applies filters after the index scan; with ``hnsw.iterative_scan`` set for the whole
database (``configure_database``) the scan goes on until k rows pass the filter, so the
website's plain SQL needs no session settings.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from sqlalchemy import (Column, Float, MetaData, String, Table, bindparam, cast, column,
                        literal_column, not_, or_, select, table, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError

from .catalogue import quote_identifier, quote_qualified
from .errors import ArtvecError, ConfigError, first_line

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings

BY_COLUMN = {"both": "embedding", "style": "style", "colour": "colour"}
HNSW_MAX_VECTOR_DIMS = 2000      # beyond this, index (column::halfvec(d)) instead
ITERATIVE_SCAN = "relaxed_order"
MEBIBYTE = 1024 * 1024
Progress = Callable[[str], None]

metadata = MetaData(schema="artvec")
embeddings = Table(
    "embeddings", metadata,
    Column("artwork_id"), Column("config_id", String), Column("embedding"), Column("style"),
    Column("colour"), Column("image_location", String), Column("facets", JSONB),
)


class SearchError(ArtvecError):
    """A search that cannot run as asked (unknown artwork, bad option)."""


# ---- vectors and distances ---------------------------------------------------------

def vector_type(dims: int | None):
    """``vector(d)``, or ``halfvec(d)`` where d is too large for an HNSW index on vector."""
    from pgvector.sqlalchemy import HALFVEC, VECTOR

    return HALFVEC(dims) if dims and dims > HNSW_MAX_VECTOR_DIMS else VECTOR(dims)


def indexed_form(expression, dims: int | None):
    """The expression exactly as the HNSW index is built on it (cast to halfvec if large)."""
    if dims and dims > HNSW_MAX_VECTOR_DIMS:
        return cast(expression, vector_type(dims))
    return expression


def check_by(by: str) -> str:
    if by not in BY_COLUMN:
        raise SearchError(f"--by must be one of {', '.join(BY_COLUMN)}, not {by!r}")
    return BY_COLUMN[by]


# ---- filters -----------------------------------------------------------------------

def as_values(value: Any) -> list[str]:
    values = [value] if isinstance(value, (str, int, float)) else list(value)
    if not values:
        raise SearchError("a filter needs at least one value")
    return [str(item) for item in values]


def check_facet(name: str, facets: Iterable[str]) -> str:
    facets = list(facets)
    if name not in facets:
        known = ", ".join(facets) or "none configured (catalogue.facets)"
        raise ConfigError(f"unknown filter {name!r}; filters: {known}")
    quote_identifier(name, "facet")
    return name


def facet_expression(name: str, e, catalogue=None):
    """``e.facets->>'era'`` (literal key, so the B-tree expression index matches) or ``c.era::text``."""
    if catalogue is not None:
        return cast(catalogue.c[name], String)
    return e.c.facets.op("->>", return_type=String())(literal_column(f"'{name}'"))


def filter_clauses(filters: Mapping[str, Any] | None, excludes: Mapping[str, Any] | None,
                   facets: Iterable[str], e, catalogue=None) -> list:
    facets = list(facets)
    clauses = []
    for name, value in (filters or {}).items():
        expression = facet_expression(check_facet(name, facets), e, catalogue)
        values = as_values(value)
        clauses.append(expression == values[0] if len(values) == 1 else expression.in_(values))
    for name, value in (excludes or {}).items():
        expression = facet_expression(check_facet(name, facets), e, catalogue)
        clauses.append(or_(expression.is_(None), not_(expression.in_(as_values(value)))))
    return clauses


def parse_filters(pairs: Iterable[str]) -> dict[str, list[str]]:
    """``["era=1860s", "era=1870s", "artist=Monet"]`` -> ``{"era": [...], "artist": [...]}``."""
    parsed: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SearchError(f"filter {pair!r} must look like name=value")
        parsed.setdefault(name.strip(), []).append(value)
    return parsed


# ---- the Select helpers ------------------------------------------------------------

def catalogue_table(settings: "Settings", facets: Iterable[str]):
    name = settings.get("catalogue.table")
    if not name:
        raise ConfigError("filters through the catalogue need catalogue.table (not catalogue.query)")
    quote_qualified(name, "catalogue.table")
    schema, _, table_name = name.rpartition(".")
    id_column = settings.get("catalogue.id_column")
    quote_identifier(id_column, "catalogue.id_column")
    return table(table_name, column(id_column), *(column(f) for f in facets),
                 schema=schema or None).alias("c")


def settings_or_default(settings: "Settings | None") -> "Settings":
    if settings is not None:
        return settings
    from .config import Settings

    return Settings.load()


def nearest(e, distance, where: list, k: int, offset: int, max_distance: float | None,
            catalogue, id_column: str | None) -> "Select":
    source = e if catalogue is None else e.join(catalogue, catalogue.c[id_column] == e.c.artwork_id)
    statement = (select(e.c.artwork_id, distance.label("distance"), e.c.facets, e.c.image_location)
                 .select_from(source).where(*where)
                 .order_by(distance, e.c.artwork_id).limit(k).offset(offset or None))
    if max_distance is None:
        return statement
    hits = statement.cte("nearest").prefix_with("materialized")
    return (select(*hits.c).where(hits.c.distance <= bindparam("max_distance", max_distance))
            .order_by(hits.c.distance, hits.c.artwork_id))


def build(target, config_clause, extra_where: list, by: str, k: int, filters, excludes, offset: int,
          max_distance: float | None, through: str, settings: "Settings | None", dims: int | None):
    column_name = check_by(by)
    if through not in ("facets", "catalogue"):
        raise SearchError(f"filters go through 'facets' or 'catalogue', not {through!r}")
    if k < 1 or (offset or 0) < 0:
        raise SearchError("k must be at least 1 and offset not negative")
    e = embeddings.alias("e")
    catalogue = id_column = None
    facets: list[str] = []
    if filters or excludes or through == "catalogue":
        settings = settings_or_default(settings)
        facets = list(settings.get("catalogue.facets") or [])
    if through == "catalogue":
        catalogue = catalogue_table(settings, facets)
        id_column = settings.get("catalogue.id_column")
    distance = indexed_form(e.c[column_name], dims).op("<->", return_type=Float())(
        indexed_form(target(column_name), dims))
    where = [config_clause(e), *[clause(e) for clause in extra_where],
             *filter_clauses(filters, excludes, facets, e, catalogue)]
    return nearest(e, distance, where, k, offset, max_distance, catalogue, id_column)


def similar(artwork_id: Any, k: int = 12, by: str = "both", filters: Mapping[str, Any] | None = None,
            excludes: Mapping[str, Any] | None = None, *, offset: int = 0,
            max_distance: float | None = None, through: str = "facets",
            settings: "Settings | None" = None, dims: int | None = None) -> "Select":
    """The k artworks nearest to ``artwork_id`` (never itself), nearest first, ties by id.

    Columns: artwork_id, distance, facets, image_location. A backend can ``.join()`` its
    own tables on ``.selected_columns.artwork_id`` and add ``.where()`` clauses: they run
    inside the index scan, before the LIMIT. ``dims`` > 2000 selects the halfvec form.
    """
    q = embeddings.alias("q")
    key = bindparam("artwork_id", artwork_id)

    def target(column_name):
        return select(q.c[column_name]).where(q.c.artwork_id == key).scalar_subquery()

    same_config = lambda e: e.c.config_id == select(q.c.config_id).where(q.c.artwork_id == key).scalar_subquery()  # noqa: E731
    not_itself = lambda e: e.c.artwork_id != key  # noqa: E731
    return build(target, same_config, [not_itself], by, k, filters, excludes, offset, max_distance,
                 through, settings, dims)


def similar_to_vector(vector: Any, config_id: str, k: int = 12, by: str = "both",
                      filters: Mapping[str, Any] | None = None, excludes: Mapping[str, Any] | None = None,
                      *, offset: int = 0, max_distance: float | None = None, through: str = "facets",
                      settings: "Settings | None" = None, dims: int | None = None) -> "Select":
    """The k artworks nearest to a vector made by configuration ``config_id`` (e.g. an upload).

    ``vector`` is the part matching ``by``: the combined vector, or the style or colour part.
    """
    from pgvector.sqlalchemy import VECTOR

    if isinstance(vector, str):           # '[0.1,0.2,…]', pgvector's text form
        vector = json.loads(vector)
    value = bindparam("vector", vector, type_=VECTOR())

    def target(column_name):
        return value

    same_config = lambda e: e.c.config_id == bindparam("config_id", config_id)  # noqa: E731
    return build(target, same_config, [], by, k, filters, excludes, offset, max_distance, through,
                 settings, dims)


# ---- running a search ----------------------------------------------------------------

def column_dims(connection: "Connection") -> dict[str, int]:
    from .store import column_dimensions

    return column_dimensions(connection)


def search(settings: "Settings", artwork_id: Any = None, vector: Any = None, config_id: str | None = None,
           by: str = "both", filters: Mapping[str, Any] | None = None,
           excludes: Mapping[str, Any] | None = None, k: int = 12, offset: int = 0,
           max_distance: float | None = None, through: str = "facets",
           engine: "Engine | None" = None) -> list[dict[str, Any]]:
    """Run a search by artwork id or by vector; rows as dicts (artwork_id, distance, facets, ...)."""
    if (artwork_id is None) == (vector is None):
        raise SearchError("search by an artwork id or by a picture, not both or neither")
    from . import store

    owned = engine is None
    engine = engine or store.engine_for_schema(settings)
    try:
        with engine.connect() as connection:
            dims = column_dims(connection)[check_by(by)]
            if artwork_id is not None:
                artwork_id = known_artwork(connection, artwork_id)
                statement = similar(artwork_id, k, by, filters, excludes, offset=offset,
                                    max_distance=max_distance, through=through, settings=settings, dims=dims)
            else:
                if not config_id:
                    raise SearchError("a search by vector needs the config_id that made the vector")
                statement = similar_to_vector(vector, config_id, k, by, filters, excludes, offset=offset,
                                              max_distance=max_distance, through=through,
                                              settings=settings, dims=dims)
            rows = connection.execute(statement).mappings().all()
    except DBAPIError as error:
        raise SearchError(f"search failed: {first_line(error)}") from None
    finally:
        if owned:
            engine.dispose()
    return sorted((dict(row) for row in rows), key=lambda row: (row["distance"], str(row["artwork_id"])))


def known_artwork(connection: "Connection", artwork_id: Any) -> Any:
    """The stored id (typed as the column is), or a one-line error."""
    found = connection.execute(
        text("select artwork_id from artvec.embeddings where artwork_id::text = :artwork_id"),
        {"artwork_id": str(artwork_id)}).scalar()
    if found is None:
        raise SearchError(f"artwork {artwork_id} has no embedding in artvec.embeddings (run artvec sync?)")
    return found


# ---- indexes ---------------------------------------------------------------------------

def hnsw_indexes(dims: Mapping[str, int]) -> list[tuple[str, str, str]]:
    """(index name, indexed expression, operator class) for the three vector columns."""
    specs = []
    for column_name in ("embedding", "style", "colour"):
        d = dims[column_name]
        if d > HNSW_MAX_VECTOR_DIMS:
            specs.append((f"embeddings_{column_name}_hnsw", f"(({column_name})::halfvec({d}))", "halfvec_l2_ops"))
        else:
            specs.append((f"embeddings_{column_name}_hnsw", column_name, "vector_l2_ops"))
    return specs


def btree_indexes(facets: Iterable[str]) -> list[tuple[str, str]]:
    specs = [("embeddings_config_id", "config_id")]
    for facet in facets:
        quote_identifier(facet, "facet")
        specs.append((f"embeddings_facet_{facet}"[:63], f"(facets ->> '{facet}')"))
    return specs


def index_options(settings: "Settings") -> tuple[int, int]:
    m, ef_construction = int(settings.get("index.m")), int(settings.get("index.ef_construction"))
    if not 2 <= m <= 100 or not 4 <= ef_construction <= 1000 or ef_construction < 2 * m:
        raise ConfigError(f"index.m must be 2..100 and index.ef_construction 4..1000 and at least 2*m "
                          f"(got m={m}, ef_construction={ef_construction})")
    return m, ef_construction


def existing_indexes(connection: "Connection") -> dict[str, dict[str, Any]]:
    rows = connection.execute(text("""
        select c.relname, i.indisvalid, coalesce(c.reloptions, '{}')
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'artvec.embeddings'::regclass"""))
    return {name: {"valid": valid, "options": sorted(options)} for name, valid, options in rows}


def build_memory(connection: "Connection", dims: Mapping[str, int], m: int) -> int:
    """Bytes the largest HNSW graph needs in memory: rows x (vector + neighbour lists)."""
    rows = connection.execute(text("select count(*) from artvec.embeddings")).scalar() or 0
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


def create_indexes(settings: "Settings", rebuild: bool = False, progress: Progress = print,
                   maintenance_work_mem: str | None = None, engine: "Engine | None" = None) -> list[dict]:
    """HNSW indexes on embedding, style and colour, B-trees on config_id and each facet.

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
            dims = column_dims(connection)
            memory = choose_maintenance_work_mem(connection, build_memory(connection, dims, m),
                                                 maintenance_work_mem)
            connection.execute(text("select set_config('maintenance_work_mem', :v, false)"), {"v": memory})
            progress(f"maintenance_work_mem = {memory} for this build (the HNSW graph is built fastest "
                     "when it fits; pass --maintenance-work-mem to change)")
            pid = connection.execute(text("select pg_backend_pid()")).scalar()
            wanted = [f"ef_construction={ef_construction}", f"m={m}"]
            for name, expression, opclass in hnsw_indexes(dims):
                using = f"hnsw ({expression} {opclass}) with (m = {m}, ef_construction = {ef_construction})"
                report.append(ensure_index(connection, engine, pid, name, using, wanted, rebuild, progress))
            for name, expression in btree_indexes(facets):
                report.append(ensure_index(connection, engine, pid, name, f"btree ({expression})", [],
                                           rebuild, progress))
            connection.execute(text("analyze artvec.embeddings"))
        configure_database(engine, settings)
        progress(f"database defaults: hnsw.iterative_scan = {ITERATIVE_SCAN}, hnsw.ef_search = "
                 f"{settings.get('search.ef_search')}, hnsw.max_scan_tuples = {settings.get('search.max_scan_tuples')}")
    except DBAPIError as error:
        from .reconnect import is_connection_lost

        if is_connection_lost(error):      # the caller may retry: a re-run finishes what was cut off
            raise
        raise ArtvecError(f"index build failed: {first_line(error)}") from None
    finally:
        if owned:
            engine.dispose()
    return report


def ensure_index(connection: "Connection", engine: "Engine", pid: int, name: str, using: str,
                 wanted_options: list[str], rebuild: bool, progress: Progress) -> dict:
    leftover = name[:59] + "_new"
    if leftover in existing_indexes(connection):          # a rebuild cut off before its swap
        progress(f"{leftover}: dropping what an interrupted rebuild left")
        connection.execute(text(f"drop index concurrently if exists artvec.{leftover}"))
    current = existing_indexes(connection).get(name)
    stale = current is not None and (not current["valid"] or
                                     (wanted_options and current["options"] != wanted_options))
    if current is not None and not (rebuild or stale):
        progress(f"{name}: exists")
        return {"index": name, "action": "kept", "seconds": 0.0, "size": index_size(connection, name)}
    started = time.perf_counter()
    if current is None:
        progress(f"{name}: building")
        run_with_progress(connection, engine, pid, name, f"create index if not exists {name} "
                          f"on artvec.embeddings using {using}", progress)
        action = "created"
    else:
        progress(f"{name}: rebuilding beside the old one, then swapping")
        swap_in_new(connection, engine, pid, name, using, progress)
        action = "rebuilt"
    seconds = time.perf_counter() - started
    size = index_size(connection, name)
    progress(f"{name}: {action} in {seconds:.1f} s, {size}")
    return {"index": name, "action": action, "seconds": round(seconds, 2), "size": size}


def swap_in_new(connection: "Connection", engine: "Engine", pid: int, name: str, using: str,
                progress: Progress) -> None:
    new_name = (name[:59] + "_new")
    connection.execute(text(f"drop index concurrently if exists artvec.{new_name}"))
    run_with_progress(connection, engine, pid, name, f"create index concurrently {new_name} "
                      f"on artvec.embeddings using {using}", progress)
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


# ---- database defaults and grants ------------------------------------------------------------

def database_defaults(settings: "Settings") -> dict[str, str]:
    ef_search, max_scan_tuples = int(settings.get("search.ef_search")), int(settings.get("search.max_scan_tuples"))
    if not 1 <= ef_search <= 1000 or max_scan_tuples < 1:
        raise ConfigError(f"search.ef_search must be 1..1000 and search.max_scan_tuples ≥ 1 "
                          f"(got {ef_search}, {max_scan_tuples})")
    return {"hnsw.iterative_scan": ITERATIVE_SCAN, "hnsw.ef_search": str(ef_search),
            "hnsw.max_scan_tuples": str(max_scan_tuples)}


def configure_database(engine: "Engine", settings: "Settings") -> dict[str, str]:
    """``ALTER DATABASE <current> SET`` the iterative-scan defaults every new session gets."""
    defaults = database_defaults(settings)
    with engine.connect() as connection:
        name = connection.execute(text("select quote_ident(current_database())")).scalar()
        try:
            for key, value in defaults.items():
                connection.execute(text(f"alter database {name} set {key} = '{value}'"))
            connection.commit()
        except DBAPIError as error:
            statements = "; ".join(f"ALTER DATABASE {name} SET {k} = '{v}'" for k, v in defaults.items())
            raise ArtvecError(f"cannot set the database defaults ({first_line(error)}); "
                              f"ask the database owner to run: {statements}") from None
    return defaults


def grant_read(engine: "Engine", role: str) -> list[str]:
    """Read-only access to artvec's schema for ``role`` (e.g. the website's), now and for new tables."""
    quoted = quote_identifier(role, "role")
    statements = [f"grant usage on schema artvec to {quoted}",
                  f"grant select on all tables in schema artvec to {quoted}",
                  f"alter default privileges in schema artvec grant select on tables to {quoted}"]
    with engine.connect() as connection:
        if not connection.execute(text("select 1 from pg_roles where rolname = :role"), {"role": role}).scalar():
            raise ArtvecError(f"role {role!r} does not exist in this server (create it first)")
        try:
            for statement in statements:
                connection.execute(text(statement))
            connection.commit()
        except DBAPIError as error:
            raise ArtvecError(f"grant failed: {first_line(error)}") from None
    return statements


def explain(connection: "Connection", statement: "Select", analyze: bool = False) -> list[str]:
    """The plan PostgreSQL picks for ``statement`` (to check that the HNSW index is used)."""
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    prefix = "explain (analyze, buffers off) " if analyze else "explain "
    return list(connection.exec_driver_sql(prefix + str(compiled), compiled.params).scalars())


# ---- what the CLI shows ---------------------------------------------------------------------

def embed_picture(settings: "Settings", path: str, by: str) -> tuple[Any, str]:
    """The part of ``path``'s embedding that ``by`` compares, and the config_id that made it."""
    from .embedding import Embedder

    config = settings.embedding_config()
    if not Path(path).is_file():
        raise SearchError(f"picture {path} does not exist")
    with Embedder(config, device=settings.get("sync.device")) as embedder:
        result = embedder.embed_paths([path])[0]
    if isinstance(result, Exception):
        raise SearchError(f"cannot embed {path}: {result}")
    part = {"both": result.combined, "style": result.style, "colour": result.colour}[by]
    return part, config.config_id


def find_similar(settings: "Settings", artwork_id: str | None = None, image: str | None = None,
                 by: str = "both", filters: Mapping[str, Any] | None = None,
                 excludes: Mapping[str, Any] | None = None, k: int = 12,
                 through: str = "facets") -> dict[str, Any]:
    """``search`` for the CLI: by id or by a picture file; the query's own picture location too."""
    check_by(by)
    if (artwork_id is None) == (image is None):
        raise SearchError("give an artwork ID or --image PATH (one of them)")
    if image is not None:
        vector, config_id = embed_picture(settings, image, by)
        rows = search(settings, vector=vector, config_id=config_id, by=by, filters=filters,
                      excludes=excludes, k=k, through=through)
        return {"query": str(image), "query_location": str(Path(image).resolve()), "rows": rows}
    rows = search(settings, artwork_id=artwork_id, by=by, filters=filters, excludes=excludes, k=k,
                  through=through)
    return {"query": str(artwork_id), "query_location": query_location(settings, artwork_id), "rows": rows}


def query_location(settings: "Settings", artwork_id: Any) -> str | None:
    from . import store

    engine = store.engine_for_schema(settings)
    try:
        with engine.connect() as connection:
            return connection.execute(text(
                "select image_location from artvec.embeddings where artwork_id::text = :artwork_id"),
                {"artwork_id": str(artwork_id)}).scalar()
    finally:
        engine.dispose()
