"""artvec's schema: models, embeddings, failures, sync runs.

The column types depend on the configuration (the catalogue's id type and the
embedding's vector sizes), so they are read from the settings Alembic was given.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from alembic import op

from artvec.migrate import schema_parameters

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

INLINE_VECTOR_BYTES = 7400   # what fits in an 8 kB heap page beside the row's other columns


def upgrade() -> None:
    p = schema_parameters(op.get_context().config.attributes["artvec_settings"])
    op.execute("""
        create table artvec.models (
            config_id   text primary key,
            name        text not null,
            config      jsonb not null,
            style_dim   integer not null,
            colour_dim  integer not null,
            dim         integer not null,
            created_at  timestamptz not null default now(),
            last_used_at timestamptz not null default now()
        )""")
    op.execute(f"""
        create table artvec.embeddings (
            artwork_id        {p['id_type']} primary key,
            config_id         text not null references artvec.models (config_id),
            embedding         vector({p['dim']}) not null,
            style             vector({p['style_dim']}) not null,
            colour            vector({p['colour_dim']}) not null,
            image_sha256      bytea not null,
            image_location    text not null,
            source_stamp      text,
            source_updated_at timestamptz,
            facets            jsonb not null default '{{}}'::jsonb,
            created_at        timestamptz not null default now(),
            updated_at        timestamptz not null default now()
        )""")
    if p["dim"] * 4 + 8 <= INLINE_VECTOR_BYTES:
        # Keep the combined vector in the row, not in TOAST (pgvector's default storage):
        # exact re-ranking of filtered rows (B-tree on a facet, then sort by distance) reads it
        # 3-4x faster, and PostgreSQL then prices such filtered reads honestly, so a broad
        # filter (10 % of the store) stays on the HNSW index. See docs/sql.md.
        op.execute("alter table artvec.embeddings alter column embedding set storage plain")
    op.execute("create index embeddings_config_id on artvec.embeddings (config_id)")
    op.execute(f"""
        create table artvec.failures (
            artwork_id        {p['id_type']} primary key,
            config_id         text not null,
            reason            text not null,
            image_location    text not null,
            source_stamp      text,
            source_updated_at timestamptz,
            attempts          integer not null default 1,
            first_failed_at   timestamptz not null default now(),
            last_failed_at    timestamptz not null default now()
        )""")
    op.execute("""
        create table artvec.sync_runs (
            run_id       bigserial primary key,
            worker       text not null,
            config_id    text not null,
            started_at   timestamptz not null default now(),
            finished_at  timestamptz,
            state        text not null default 'running',
            embedded     integer not null default 0,
            unchanged    integer not null default 0,
            deleted      integer not null default 0,
            failed       integer not null default 0,
            seconds      double precision
        )""")


def downgrade() -> None:
    for table in ("sync_runs", "failures", "embeddings", "models"):
        op.execute(f"drop table if exists artvec.{table}")
