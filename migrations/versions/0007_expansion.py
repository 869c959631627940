"""``artvec.expanded(q, n, part, exclude)``: "more like this"'s query, the vector q averaged with its n nearest
pictures, found by an HNSW scan of their own at a smaller ``hnsw.ef_search`` than the search's.

A query is expanded by a scan that needs only its 2 nearest pictures. Inside one statement it would run at the
session's ef_search (64), reading as many index pages as the search itself; a function's own ``SET`` clause is
the one way to give a part of a statement a setting of its own. ``artvec index`` sets it to ``search.expand_ef_search``
again (``alter function ... set``).

Revision ID: 0007_expansion
Revises: 0006_copies
Create Date: 2026-12-05
"""
from alembic import op

from artvec.indexes import EXPANDED_FUNCTION, expand_ef_search

revision = "0007_expansion"
down_revision = "0006_copies"
branch_labels = None
depends_on = None

#: the columns a query may be expanded in (the copy vector never is: its one answer is a copy)
PARTS = ("embedding", "style", "colour")


def neighbours_average(column: str, order_by: str) -> str:
    return (f"select avg(v) from (select q as v union all (select x.{column} from artvec.embeddings x "
            f"where x.artwork_id::text is distinct from exclude order by {order_by}, x.artwork_id limit n)) as s")


def function_sql(ef_search: int) -> str:
    # One static query per part (PL/pgSQL keeps its plan); vectors over 2,000 dims are indexed as halfvec, so their
    # query must take that form: dynamic, the part checked against PARTS and the size an integer.
    static = "\n".join(f"    if part = '{part}' then\n        return ({neighbours_average(part, f'x.{part} <-> q')});\n"
                       f"    end if;" for part in PARTS)
    halfvec = neighbours_average("%1$I", "x.%1$I::halfvec(%2$s) <-> $1::halfvec(%2$s)")
    halfvec = halfvec.replace("q as v", "$1 as v").replace("exclude", "$3").replace("limit n", "limit $2")
    return f"""
create or replace function artvec.expanded(q vector, n integer default 2, part text default 'embedding',
                                           exclude text default null)
returns vector
language plpgsql stable parallel safe
set hnsw.ef_search = {int(ef_search)} as $$
declare
    result vector;
begin
    if n is null or n < 0 or n > 20 then
        raise exception 'artvec.expanded: n must be 0..20 (neighbours averaged into the query), not %', n;
    end if;
    if part is null or part not in ({", ".join(f"'{p}'" for p in PARTS)}) then
        raise exception 'artvec.expanded: part must be one of {", ".join(PARTS)}, not %', quote_nullable(part);
    end if;
    if q is null or n = 0 then
        return q;
    end if;
    if vector_dims(q) > 2000 then
        execute format('{halfvec}', part, vector_dims(q)) into result using q, n, exclude;
        return result;
    end if;
{static}
end
$$"""


def upgrade() -> None:
    settings = op.get_context().config.attributes["artvec_settings"]
    op.execute(function_sql(expand_ef_search(settings)))


def downgrade() -> None:
    op.execute(f"drop function if exists {EXPANDED_FUNCTION}")
