"""artvec's tables, described once: the store, the search builders and the migrations read them here.

Each embedding configuration has a table of its own, ``artvec.embeddings_<hash>``, whose vector
columns have that configuration's sizes. ``artvec.embeddings`` is a view on the active one's
table (see docs/sql.md, "Several configurations"): the website's SQL reads it and nothing else.
"""

from __future__ import annotations

import hashlib
import re
from typing import Mapping

from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Double, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, Table, Text, false, func, text)
from sqlalchemy.dialects.postgresql import JSONB, UUID

SCHEMA = "artvec"
VIEW = "embeddings"
ID_TYPES = {"bigint": BigInteger, "text": Text, "uuid": UUID}
#: the widest combined vector kept in the row (storage plain): 7,800 bytes, so the row still fits an
#: 8 kB heap page with every other column at its largest (long text ids, paths and facets go to TOAST;
#: measured: 1,985 dims still fit, 1,990 do not); tests/test_configurations.py inserts such a row
MAX_INLINE_DIMS = 1948
#: the copy vector (artvec.embedding's ``copy_vector``): null in the tables of configurations without one,
#: and last in every table, so tables made before it (given the column by migration 0006) keep their order
COPY_COLUMN = "copy"
VECTOR_COLUMNS = ("embedding", "style", "colour", COPY_COLUMN)

metadata = MetaData(schema=SCHEMA)

models = Table(
    "models", metadata,
    Column("config_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("config", JSONB, nullable=False),
    Column("style_dim", Integer, nullable=False),
    Column("colour_dim", Integer, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("table_name", Text, unique=True),       # its vectors: artvec.<table_name>
    Column("active", Boolean, nullable=False, server_default=false()),
    Column("activated_at", DateTime(timezone=True)),
    Column("missing", Integer),                    # catalogue pictures without vector or failure, last counted
    Column("counted_at", DateTime(timezone=True)),
)
Index("models_one_active", models.c.active, unique=True, postgresql_where=models.c.active)

failures = Table(
    "failures", metadata,
    Column("artwork_id", primary_key=True),        # typed as the catalogue's ids (see id_column)
    Column("config_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("image_location", Text, nullable=False),
    Column("source_stamp", Text),
    Column("source_updated_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("1")),
    Column("first_failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

sync_runs = Table(
    "sync_runs", metadata,
    Column("run_id", BigInteger, primary_key=True, autoincrement=True),
    Column("worker", Text, nullable=False),
    Column("config_id", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("state", Text, nullable=False, server_default=text("'running'")),
    Column("embedded", Integer, nullable=False, server_default=text("0")),
    Column("unchanged", Integer, nullable=False, server_default=text("0")),
    Column("deleted", Integer, nullable=False, server_default=text("0")),
    Column("failed", Integer, nullable=False, server_default=text("0")),
    Column("seconds", Double),
    Column("catalogue_size", Integer),             # catalogue rows this run saw
)


def id_column(id_type: str | None, **options) -> Column:
    """``artwork_id`` typed as the catalogue's ids (untyped when unknown, e.g. for the view)."""
    kind = ID_TYPES[id_type] if id_type else None
    return Column("artwork_id", kind, **options) if kind else Column("artwork_id", **options)


def embedding_columns(id_type: str | None, dims: Mapping[str, int] | None, references=None) -> list[Column]:
    """The columns of one configuration's table, in order (also the view's)."""
    dims = dims or {}
    return [
        id_column(id_type, primary_key=True),
        Column("config_id", Text, *([ForeignKey(references)] if references is not None else []), nullable=False),
        *(Column(name, VECTOR(dims.get(name)), nullable=False) for name in VECTOR_COLUMNS if name != COPY_COLUMN),
        Column("image_sha256", LargeBinary, nullable=False),
        Column("image_location", Text, nullable=False),
        Column("source_stamp", Text),
        Column("source_updated_at", DateTime(timezone=True)),
        Column("facets", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column(COPY_COLUMN, VECTOR(dims.get(COPY_COLUMN))),
    ]


def configuration_table(table_name: str, id_type: str | None = None,
                        dims: Mapping[str, int] | None = None) -> Table:
    """The table that holds one configuration's vectors (each call: a Table of its own)."""
    return Table(table_name, MetaData(schema=SCHEMA),
                 *embedding_columns(id_type, dims, references=models.c.config_id))


#: The view ``artvec.embeddings`` (the active configuration), as the search builders read it.
embeddings = Table(VIEW, MetaData(schema=SCHEMA), *embedding_columns(None, None))

#: The columns a sync writes, in COPY order.
WRITTEN_COLUMNS = tuple(column.name for column in embeddings.columns
                        if column.name not in ("created_at", "updated_at"))


def table_name_for(config_id: str) -> str:
    """``embeddings_<12 hex>``: the hash a config_id ends with (``gram-vgg19-1a2b…``), else one of it."""
    match = re.search(r"-([0-9a-f]{12})$", config_id)
    suffix = match.group(1) if match else hashlib.sha256(config_id.encode()).hexdigest()[:12]
    return f"{VIEW}_{suffix}"


def keeps_embedding_inline(dim: int) -> bool:
    """Whether the combined vector fits in the row beside the others (see docs/sql.md, storage)."""
    return dim <= MAX_INLINE_DIMS


def qualified(table_name: str) -> str:
    return f"{SCHEMA}.{table_name}"
