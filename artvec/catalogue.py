"""The library's catalogue as artvec reads it: a table, view or query giving id, image and facets.

artvec only ever reads the catalogue. Identifiers from the configuration are validated
and quoted; a configured query is run as a subquery, read-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .errors import ConfigError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .config import Settings

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
ID_TYPE_NAMES = {
    "bigint": {"int2", "int4", "int8", "smallint", "integer", "bigint"},
    "text": {"text", "varchar", "bpchar", "character varying", "name"},
    "uuid": {"uuid"},
}


def quote_identifier(name: str, what: str = "identifier") -> str:
    if not IDENTIFIER.match(name or ""):
        raise ConfigError(f"{what} {name!r} is not a valid SQL identifier (letters, digits, _; max 63)")
    return '"' + name + '"'


def quote_qualified(name: str, what: str = "table") -> str:
    parts = (name or "").split(".")
    if not 1 <= len(parts) <= 2:
        raise ConfigError(f"{what} {name!r} must be 'name' or 'schema.name'")
    return ".".join(quote_identifier(part, what) for part in parts)


@dataclass(frozen=True)
class CatalogueRow:
    artwork_id: Any
    image: str
    updated_at: datetime | None
    facets: dict[str, str | None]


@dataclass(frozen=True)
class Catalogue:
    source_sql: str          # a quoted table name, or "(query)"
    id_column: str
    image_column: str
    updated_at_column: str | None
    facets: tuple[str, ...]
    id_type: str
    image_root: str | None

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Catalogue":
        table, query = settings.get("catalogue.table"), settings.get("catalogue.query")
        if bool(table) == bool(query):
            raise ConfigError("set exactly one of catalogue.table or catalogue.query "
                              "(in artvec.toml [catalogue], ARTVEC_CATALOGUE_TABLE or --table)")
        source = quote_qualified(table, "catalogue.table") if table else f"({query.strip().rstrip(';')})"
        id_column, image_column = settings.get("catalogue.id_column"), settings.get("catalogue.image_column")
        updated = settings.get("catalogue.updated_at_column") or None
        facets = tuple(settings.get("catalogue.facets") or ())
        quote_identifier(id_column, "catalogue.id_column")
        quote_identifier(image_column, "catalogue.image_column")
        if updated:
            quote_identifier(updated, "catalogue.updated_at_column")
        for facet in facets:
            quote_identifier(facet, "catalogue facet")
        return cls(source, id_column, image_column, updated, facets, settings.get("catalogue.id_type"),
                   settings.get("catalogue.image_root"))

    def select_sql(self, limit_zero: bool = False) -> str:
        columns = [f"c.{quote_identifier(self.id_column)}", f"c.{quote_identifier(self.image_column)}"]
        columns.append(f"c.{quote_identifier(self.updated_at_column)}" if self.updated_at_column
                       else "null::timestamptz")
        columns += [f"c.{quote_identifier(facet)}::text" for facet in self.facets]
        sql = f"select {', '.join(columns)} from {self.source_sql} as c"
        return sql + (" limit 0" if limit_zero else " order by 1")

    def validate(self, connection: "Connection") -> None:
        """Fail early, in one line, on a missing table/column or an id of the wrong type."""
        try:
            with connection.begin_nested():
                result = connection.execute(text(self.select_sql(limit_zero=True)))
                id_type_oid = result.cursor.description[0].type_code
        except DBAPIError as error:
            raise ConfigError(f"catalogue {self.source_sql}: {first_line(error)}") from None
        type_name = connection.execute(text("select typname from pg_type where oid = :oid"),
                                       {"oid": id_type_oid}).scalar()
        if type_name not in ID_TYPE_NAMES[self.id_type]:
            raise ConfigError(f"catalogue id column {self.id_column!r} is {type_name}, but catalogue.id_type "
                              f"is {self.id_type}; set catalogue.id_type to match")

    def rows(self, connection: "Connection") -> Iterator[CatalogueRow]:
        result = connection.execution_options(stream_results=True, yield_per=5000).execute(
            text(self.select_sql()))
        for record in result:
            image = "" if record[1] is None else str(record[1])
            yield CatalogueRow(record[0], image, record[2], dict(zip(self.facets, record[3:])))
