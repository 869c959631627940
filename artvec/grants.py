"""Read-only access to artvec's schema for the website's database role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .catalogue import quote_identifier
from .errors import ArtvecError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


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
