"""The copy vector: a column ``copy`` at the end of every configuration's table (and so of the view).

Configurations with a copy vector (artvec.embedding's ``copy_vector``) have it typed (``vector(512)``);
the others get it untyped and null, so that the website's SQL may name
``copy`` whichever configuration is active. No vector is recomputed here: a sync fills the column under
a configuration that has one.

Revision ID: 0006_copies
Revises: 0005_clusters
Create Date: 2026-12-01
"""
from alembic import op

from artvec import configurations, tables

revision = "0006_copies"
down_revision = "0005_clusters"
branch_labels = None
depends_on = None


def configuration_tables(connection) -> list[tuple[str, int]]:
    """(table, the copy vector's size or 0) of every configuration with a table."""
    return [(c.table, c.dims.get(tables.COPY_COLUMN, 0)) for c in configurations.read(connection) if c.table_name]


def repoint_view(connection, grants=None) -> None:
    """``select *`` was expanded when the view was made: made again, it has the tables' columns as they are now
    (and the grants made on it: those of the view now, or ``grants``)."""
    current = configurations.active(connection)
    if current is not None and current.table_name:
        configurations.point_view(connection, current.table_name, grants)


def upgrade() -> None:
    connection = op.get_bind()
    for table, dims in configuration_tables(connection):
        kind = f"vector({int(dims)})" if dims else "vector"
        op.execute(f"alter table {table} add column if not exists {tables.COPY_COLUMN} {kind}")
    repoint_view(connection)


def downgrade() -> None:
    connection = op.get_bind()
    view = tables.qualified(tables.VIEW)
    grants = configurations.grants_on(connection, view)
    op.execute(f"drop view if exists {view}")    # it depends on every column of its table
    for table, _ in configuration_tables(connection):
        op.execute(f"alter table {table} drop column if exists {tables.COPY_COLUMN}")
    repoint_view(connection, grants)
