"""Style groups: clustering runs, their groups' centres, each picture's group and map position.

Plain tables, joinable with ``artvec.embeddings`` on ``artwork_id`` (no foreign key to it: a
picture deleted by the sync leaves its membership behind until the next ``artvec clusters``
removes it). Centres are ``vector`` without a fixed size: a run clusters the combined vector,
the style part or the colour part, each of its own size.

Revision ID: 0005_clusters
Revises: 0001
Create Date: 2026-11-30
"""
from alembic import op

from artvec.migrate import schema_parameters

revision = "0005_clusters"
down_revision = "0004_curation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    p = schema_parameters(op.get_context().config.attributes["artvec_settings"])
    op.execute("""
        create table artvec.cluster_runs (
            run_id      bigserial primary key,
            config_id   text not null,
            part        text not null check (part in ('embedding', 'style', 'colour')),
            filters     jsonb not null default '{}'::jsonb,
            k           integer not null,
            method      text not null,
            parameters  jsonb not null default '{}'::jsonb,
            pictures    integer not null,
            seconds     double precision,
            created_at  timestamptz not null default now()
        )""")
    op.execute("""
        create table artvec.clusters (
            run_id   bigint not null references artvec.cluster_runs (run_id) on delete cascade,
            cluster  integer not null,
            centre   vector not null,
            primary key (run_id, cluster)
        )""")
    op.execute(f"""
        create table artvec.cluster_members (
            run_id         bigint not null,
            artwork_id     {p['id_type']} not null,
            cluster        integer not null,
            distance       double precision not null,
            rank           integer,
            assigned_later boolean not null default false,
            assigned_at    timestamptz not null default now(),
            x              real,
            y              real,
            primary key (run_id, artwork_id),
            foreign key (run_id, cluster) references artvec.clusters (run_id, cluster) on delete cascade
        )""")
    op.execute("create index cluster_members_group on artvec.cluster_members (run_id, cluster, rank)")
    op.execute("create index cluster_members_artwork on artvec.cluster_members (artwork_id)")


def downgrade() -> None:
    for table in ("cluster_members", "clusters", "cluster_runs"):
        op.execute(f"drop table if exists artvec.{table}")
