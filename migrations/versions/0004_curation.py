"""Curation: duplicate decisions (same picture / different pictures / variant), and
``artvec.palette_vector(palette, bins)``, the colour part's vector of a palette.

Stands on 0001 only (its own table and function), so it merges beside other branches.

Revision ID: 0004_curation
Revises: 0001
Create Date: 2026-11-30
"""
from alembic import op

from artvec.migrate import schema_parameters

revision = "0004_curation"
down_revision = "0002_configs"
branch_labels = None
depends_on = None

# Mirrors artvec/palette.py (palette_vector) and artvec/embedding.py (colour_histogram): the
# weights land in the n³ RGB cubes their colours fall in (index ((r·n >> 8)·n + (g·n >> 8))·n + (b·n >> 8)),
# are divided by their sum and square-rooted (Hellinger), so the vector has unit norm like the
# stored colour parts. tests/test_palette.py checks both give the same vector.
PALETTE_VECTOR = r"""
create or replace function artvec.palette_vector(palette text, bins integer default 8)
returns vector
language plpgsql immutable strict parallel safe as $$
declare
    counts float8[];
    entry text;
    parts text[];
    weight float8;
    total float8 := 0;
    r int; g int; b int;
    cell int;
begin
    if bins < 1 or bins > 64 then
        raise exception 'palette_vector: bins must be 1..64, not %', bins;
    end if;
    counts := array_fill(0::float8, array[bins * bins * bins]);
    foreach entry in array regexp_split_to_array(btrim(palette), '\s*,\s*') loop
        parts := regexp_match(entry, '^#?([0-9a-fA-F]{6})(?::([0-9]+(\.[0-9]*)?|\.[0-9]+))?$');
        if parts is null then
            raise exception 'palette_vector: % is not #rrggbb or #rrggbb:weight', quote_literal(entry);
        end if;
        weight := coalesce(parts[2]::float8, 1);
        r := ('x' || substr(parts[1], 1, 2))::bit(8)::int;
        g := ('x' || substr(parts[1], 3, 2))::bit(8)::int;
        b := ('x' || substr(parts[1], 5, 2))::bit(8)::int;
        cell := (((r * bins) >> 8) * bins + ((g * bins) >> 8)) * bins + ((b * bins) >> 8);
        counts[cell + 1] := counts[cell + 1] + weight;
        total := total + weight;
    end loop;
    if total <= 0 then
        raise exception 'palette_vector: the weights must add up to more than 0';
    end if;
    return (select array_agg(sqrt(c / total) order by i) from unnest(counts) with ordinality as t(c, i))::vector;
end
$$"""


def upgrade() -> None:
    p = schema_parameters(op.get_context().config.attributes["artvec_settings"])
    # One row per decision, never updated: a role that may only INSERT here can record them.
    # The pictures' SHA-256 at decision time: once a picture's bytes change, the pair is new.
    op.execute(f"""
        create table artvec.duplicate_decisions (
            artwork_a   {p['id_type']} not null,
            artwork_b   {p['id_type']} not null,
            sha256_a    bytea not null,
            sha256_b    bytea not null,
            decision    text not null check (decision in ('same', 'different', 'variant')),
            decided_by  text not null default current_user,
            decided_at  timestamptz not null default now(),
            check (artwork_a <> artwork_b)
        )""")
    op.execute("create index duplicate_decisions_pair on artvec.duplicate_decisions (artwork_a, artwork_b)")
    op.execute(PALETTE_VECTOR)


def downgrade() -> None:
    op.execute("drop function if exists artvec.palette_vector(text, integer)")
    op.execute("drop table if exists artvec.duplicate_decisions")
