"""Similarity search in plain SQL: the queries (index building and database defaults are in
``artvec.indexes``, grants in ``artvec.grants``).

The queries keep the shape that pgvector can serve from an HNSW index:
``ORDER BY <column> <-> <query vector> LIMIT k`` with filters in ``WHERE``. pgvector
applies filters after the index scan; with ``hnsw.iterative_scan`` set for the whole
database (``configure_database``) the scan goes on until k rows pass the filter, so the
website's plain SQL needs no session settings.

"More like this" expands its query (``expand`` = n, ``search.expand``: 2): the query vector averaged with its n
nearest pictures — average query expansion (Chum et al. 2007), which finds more of a hand's pictures on every
benchmark set (docs/embedding.md, *More like this: the query expanded*). Unfiltered, that is one index scan: the
query's nearest pictures (``candidates_for``), the average of the query and the first n, and those pictures ranked
again by their distance to it. Under a filter, the function ``artvec.expanded`` (migration 0007) finds the n
neighbours (unfiltered: they are the picture's own) by an index scan at ``search.expand_ef_search``, and the
filtered search runs with the average. Never for the copy vector, whose one answer is a copy.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sqlalchemy import (Float, Integer, String, bindparam, cast, column, func, literal_column, not_, null, or_, select,
                        table, union_all)
from sqlalchemy.exc import DBAPIError

from . import configurations, tables
from .catalogue import quote_identifier, quote_qualified
from .errors import ArtvecError, ConfigError, first_line
from .grants import grant_read  # noqa: F401 - importable from here as before the split
from .indexes import (HNSW_MAX_VECTOR_DIMS, ITERATIVE_SCAN, column_dims, configure_database,  # noqa: F401
                      create_indexes, database_defaults, existing_indexes)
from .metrics import EXPAND_CANDIDATES, candidates_for  # noqa: F401 - the search and its figures rank alike

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings
    from .embedding import EmbeddingConfig

#: ``--by`` -> the column compared; "copy": the copy vector, made to find copies of one picture (rescans,
#: crops, greyscale copies), not pictures alike in style
BY_COLUMN = {"both": "embedding", "style": "style", "colour": "colour", "copy": tables.COPY_COLUMN}
embeddings = tables.embeddings        # the view: the active configuration


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


def distance_to(e, column_name: str, target, dims: int | None):
    """``e.<column> <-> target``, both in the form the HNSW index is built on."""
    return indexed_form(e.c[column_name], dims).op("<->", return_type=Float())(indexed_form(target, dims))


def expanded(target, column_name: str, n: int, exclude=None):
    """The query vector ``target`` averaged with its ``n`` nearest pictures (never ``exclude``, an artwork id), as
    one scalar subquery, evaluated once: ``(SELECT artvec.expanded(target, n, '<column>', exclude))``. The function
    (migration 0007) scans the index for them at ``search.expand_ef_search``, cheaper than the search's own."""
    from pgvector.sqlalchemy import VECTOR

    exclude = null() if exclude is None else cast(exclude, String())
    call = func.artvec.expanded(target, bindparam("expand", n, type_=Integer()),
                                bindparam("expand_part", column_name, type_=String()), exclude, type_=VECTOR())
    return select(call).scalar_subquery()


def check_expand(expand: int, by: str) -> int:
    """How many neighbours a query of ``by`` is averaged with: none for the copy vector (copies of one picture)."""
    if not 0 <= expand <= MAX_EXPAND:
        raise SearchError(f"expand must be 0..{MAX_EXPAND} (neighbours averaged into the query), not {expand}")
    return 0 if by == "copy" else expand


#: the most neighbours a query may be averaged with (beyond a few the query drifts from its picture)
MAX_EXPAND = 20


def check_by(by: str) -> str:
    if by not in BY_COLUMN:
        raise SearchError(f"--by must be one of {', '.join(BY_COLUMN)}, not {by!r}")
    return BY_COLUMN[by]


def part_dims(connection: "Connection", by: str) -> int:
    """The size of the active configuration's column that ``by`` compares; a clear error where it has no copy vector."""
    column = check_by(by)
    dims = column_dims(connection).get(column)
    if dims is None:
        raise SearchError(f"--by {by}: the active configuration has no copy vector (its copy_vector is none); "
                          "search --by both, style or colour, or sync and activate one that has (the default has)")
    return dims


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
    return within(statement, max_distance)


def within(statement: "Select", max_distance: float | None) -> "Select":
    """``statement``'s rows no farther than ``max_distance`` (after its LIMIT, so the index scan stays as it is)."""
    if max_distance is None:
        return statement
    hits = statement.cte("nearest").prefix_with("materialized")
    return (select(*hits.c).where(hits.c.distance <= bindparam("max_distance", max_distance))
            .order_by(hits.c.distance, hits.c.artwork_id))


def reranked(e, query, where: list, column_name: str, n: int, k: int, offset: int, max_distance: float | None,
             dims: int | None) -> "Select":
    """Unfiltered "more like this" in one index scan: the query's nearest pictures (``candidates_for(k, offset)``),
    the query averaged with the first ``n`` of them, and those pictures ranked by their distance to that average."""
    from pgvector.sqlalchemy import VECTOR

    near = distance_to(e, column_name, query, dims)
    candidates = (select(e.c.artwork_id, e.c[column_name].label("v"), near.label("d"), e.c.facets, e.c.image_location)
                  .where(*where).order_by(near, e.c.artwork_id).limit(candidates_for(k, offset))
                  .cte("candidates").prefix_with("materialized"))
    first = select(candidates.c.v).order_by(candidates.c.d, candidates.c.artwork_id).limit(n)
    vectors = union_all(select(query.label("v")), first).subquery("query_and_nearest")
    average = select(func.avg(vectors.c.v, type_=VECTOR())).scalar_subquery()
    distance = candidates.c.v.op("<->", return_type=Float())(average)
    statement = (select(candidates.c.artwork_id, distance.label("distance"), candidates.c.facets,
                        candidates.c.image_location)
                 .order_by(distance, candidates.c.artwork_id).limit(k).offset(offset or None))
    return within(statement, max_distance)


def build(target, config_clause, extra_where: list, by: str, k: int, filters, excludes, offset: int,
          max_distance: float | None, through: str, settings: "Settings | None", dims: int | None,
          expand: int = 0, itself=None):
    column_name = check_by(by)
    expand = check_expand(expand, by)
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
    query = target(column_name)
    where = [config_clause(e), *[clause(e) for clause in extra_where],
             *filter_clauses(filters, excludes, facets, e, catalogue)]
    if expand and catalogue is None and not (filters or excludes):
        return reranked(e, query, where, column_name, expand, k, offset, max_distance, dims)
    if expand:        # under a filter: the query's own neighbours (unfiltered) first, then the filtered search
        query = expanded(query, column_name, expand, itself)
    return nearest(e, distance_to(e, column_name, query, dims), where, k, offset, max_distance, catalogue, id_column)


def similar(artwork_id: Any, k: int = 12, by: str = "both", filters: Mapping[str, Any] | None = None,
            excludes: Mapping[str, Any] | None = None, *, offset: int = 0,
            max_distance: float | None = None, through: str = "facets",
            settings: "Settings | None" = None, dims: int | None = None, expand: int = 0) -> "Select":
    """The k artworks nearest to ``artwork_id`` (never itself), nearest first, ties by id.

    Columns: artwork_id, distance, facets, image_location. A backend can ``.join()`` its
    own tables on ``.selected_columns.artwork_id`` and add ``.where()`` clauses: they run
    inside the index scan, before the LIMIT. ``dims`` > 2000 selects the halfvec form.
    ``expand`` = n: the query is the artwork's vector averaged with its n nearest others (the
    filters apply to the answers, not to them); distances are to that average. Unfiltered, the answer is ranked
    among the artwork's ``candidates_for(k, offset)`` nearest pictures (one index scan): a backend's own
    ``.where()`` would cut into those, so pass ``filters``/``excludes`` (or ``expand=0``) to filter.
    """
    q = embeddings.alias("q")
    key = bindparam("artwork_id", artwork_id)

    def target(column_name):
        return select(q.c[column_name]).where(q.c.artwork_id == key).scalar_subquery()

    same_config = lambda e: e.c.config_id == select(q.c.config_id).where(q.c.artwork_id == key).scalar_subquery()  # noqa: E731
    not_itself = lambda e: e.c.artwork_id != key  # noqa: E731
    return build(target, same_config, [not_itself], by, k, filters, excludes, offset, max_distance,
                 through, settings, dims, expand, itself=key)


def similar_to_vector(vector: Any, config_id: str, k: int = 12, by: str = "both",
                      filters: Mapping[str, Any] | None = None, excludes: Mapping[str, Any] | None = None,
                      *, offset: int = 0, max_distance: float | None = None, through: str = "facets",
                      settings: "Settings | None" = None, dims: int | None = None, expand: int = 0) -> "Select":
    """The k artworks nearest to a vector made by configuration ``config_id`` (e.g. an upload).

    ``vector`` is the part matching ``by``: the combined vector, or the style or colour part.
    ``expand`` = n: the vector averaged with its n nearest pictures first, as in ``similar``.
    """
    from pgvector.sqlalchemy import VECTOR

    if isinstance(vector, str):           # '[0.1,0.2,…]', pgvector's text form
        vector = json.loads(vector)
    value = bindparam("vector", vector, type_=VECTOR())

    def target(column_name):
        return value

    same_config = lambda e: e.c.config_id == bindparam("config_id", config_id)  # noqa: E731
    return build(target, same_config, [], by, k, filters, excludes, offset, max_distance, through,
                 settings, dims, expand)


# ---- running a search ----------------------------------------------------------------

def search(settings: "Settings", artwork_id: Any = None, vector: Any = None, config_id: str | None = None,
           by: str = "both", filters: Mapping[str, Any] | None = None,
           excludes: Mapping[str, Any] | None = None, k: int = 12, offset: int = 0,
           max_distance: float | None = None, through: str = "facets",
           engine: "Engine | None" = None, expand: int | None = None) -> list[dict[str, Any]]:
    """Run a search by artwork id or by vector; rows as dicts (artwork_id, distance, facets, ...). ``expand``:
    neighbours averaged into the query (None: ``search.expand``; never for the copy vector)."""
    if (artwork_id is None) == (vector is None):
        raise SearchError("search by an artwork id or by a picture, not both or neither")
    expand = check_expand(settings.get("search.expand") if expand is None else expand, by)
    from . import store

    owned = engine is None
    engine = engine or store.engine_for_schema(settings)
    try:
        with engine.connect() as connection:
            dims = part_dims(connection, by)
            if artwork_id is not None:
                artwork_id = known_artwork(connection, artwork_id)
                statement = similar(artwork_id, k, by, filters, excludes, offset=offset, max_distance=max_distance,
                                    through=through, settings=settings, dims=dims, expand=expand)
            else:
                if not config_id:
                    raise SearchError("a search by vector needs the config_id that made the vector")
                statement = similar_to_vector(vector, config_id, k, by, filters, excludes, offset=offset,
                                              max_distance=max_distance, through=through,
                                              settings=settings, dims=dims, expand=expand)
            rows = connection.execute(statement).mappings().all()
    except DBAPIError as error:
        raise SearchError(f"search failed: {first_line(error)}") from None
    finally:
        if owned:
            engine.dispose()
    return sorted((dict(row) for row in rows), key=lambda row: (row["distance"], str(row["artwork_id"])))


def artwork_key(connection: "Connection", artwork_id: Any) -> Any:
    """``artwork_id`` as the store's ids are typed (bigint, text or uuid), so that a look-up
    uses the primary key; a one-line error for an id that cannot be one."""
    id_type = configurations.id_type_of(connection) or "text"
    try:
        if id_type == "bigint":
            return int(str(artwork_id))
        if id_type == "uuid":
            return uuid.UUID(str(artwork_id))
    except ValueError:
        raise SearchError(f"artwork id {artwork_id!r} is not a {id_type}, as the store's ids are") from None
    return str(artwork_id)


def artwork_row(artwork_id: Any, *columns: str) -> "Select":
    """One artwork's row of ``artvec.embeddings``, by its primary key."""
    e = embeddings
    return select(*(e.c[name] for name in columns)).where(e.c.artwork_id == bindparam("artwork_id", artwork_id))


def known_artwork(connection: "Connection", artwork_id: Any) -> Any:
    """The stored id (typed as the column is), or a one-line error."""
    key = artwork_key(connection, artwork_id)
    found = connection.execute(artwork_row(key, "artwork_id")).scalar()
    if found is None:
        raise SearchError(f"artwork {artwork_id} has no embedding in artvec.embeddings (run artvec sync?)")
    return found


def explain(connection: "Connection", statement: "Select", analyze: bool = False) -> list[str]:
    """The plan PostgreSQL picks for ``statement`` (to check that the HNSW index is used)."""
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    prefix = "explain (analyze, buffers off) " if analyze else "explain "
    return list(connection.exec_driver_sql(prefix + str(compiled), compiled.params).scalars())


# ---- what the CLI shows ---------------------------------------------------------------------

def embed_picture(settings: "Settings", config: "EmbeddingConfig", path: str, by: str) -> Any:
    """The part of ``path``'s embedding (by ``config``) that ``by`` compares."""
    from .embedding import Embedder

    if not Path(path).is_file():
        raise SearchError(f"picture {path} does not exist")
    with Embedder(config, device=settings.get("sync.device")) as embedder:
        result = embedder.embed_paths([path])[0]
    if isinstance(result, Exception):
        raise SearchError(f"cannot embed {path}: {result}")
    return result.part(by)


def find_similar(engine: "Engine", settings: "Settings", artwork_id: str | None = None, image: str | None = None,
                 by: str = "both", filters: Mapping[str, Any] | None = None,
                 excludes: Mapping[str, Any] | None = None, k: int = 12,
                 through: str = "facets", expand: int | None = None) -> dict[str, Any]:
    """``search`` for the CLI: by id or by a picture file (embedded by the active configuration,
    the one the site shows); the query's own picture location too."""
    check_by(by)
    if (artwork_id is None) == (image is None):
        raise SearchError("give an artwork ID or --image PATH (one of them)")
    if image is not None:
        with engine.connect() as connection:
            current = configurations.active(connection)
        if current is None:
            raise SearchError("no embedding configuration is active yet: run artvec sync first")
        vector = embed_picture(settings, current.embedding_config(), image, by)
        rows = search(settings, vector=vector, config_id=current.config_id, by=by, filters=filters,
                      excludes=excludes, k=k, through=through, engine=engine, expand=expand)
        return {"query": str(image), "query_location": str(Path(image).resolve()), "rows": rows}
    rows = search(settings, artwork_id=artwork_id, by=by, filters=filters, excludes=excludes, k=k,
                  through=through, engine=engine, expand=expand)
    return {"query": str(artwork_id), "query_location": query_location(engine, artwork_id), "rows": rows}


def query_location(engine: "Engine", artwork_id: Any) -> str | None:
    """Where the picture of ``artwork_id`` is (as the sync stored it)."""
    with engine.connect() as connection:
        key = artwork_key(connection, artwork_id)
        return connection.execute(artwork_row(key, "image_location")).scalar()
