"""Several embedding configurations side by side, one active, behind the view artvec.embeddings.

In place, without re-embedding: the table artvec.embeddings becomes the table of the
configuration most of its rows belong to (renamed, indexes and all) and the active one;
rows of any other configuration move to tables of their own; artvec.embeddings is then a
view on the active table. An empty store gets the configured embedding's table.

Revision ID: 0002_configs
Revises: 0001
Create Date: 2026-11-30
"""
from alembic import op
from sqlalchemy import Column, text

from artvec import configurations, tables

revision = "0002_configs"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_MODEL_COLUMNS = ("table_name", "active", "activated_at", "missing", "counted_at")
OLD_TABLE = "artvec.embeddings"


def copy_of(column) -> Column:
    return Column(column.name, column.type, nullable=column.nullable, server_default=column.server_default)


def upgrade() -> None:
    connection = op.get_bind()
    for name in NEW_MODEL_COLUMNS:
        op.add_column("models", copy_of(tables.models.c[name]), schema=tables.SCHEMA)
    op.create_unique_constraint("models_table_name_key", "models", ["table_name"], schema=tables.SCHEMA)
    for index in tables.models.indexes:
        index.create(connection)
    op.add_column("sync_runs", copy_of(tables.sync_runs.c.catalogue_size), schema=tables.SCHEMA)

    id_type = configurations.id_type_of(connection, OLD_TABLE)
    grants = configurations.grants_on(connection, OLD_TABLE)      # the website's, carried to the view
    counts = connection.execute(text(f"""
        select e.config_id, count(*) from {OLD_TABLE} e join artvec.models m using (config_id)
        group by e.config_id, m.last_used_at order by 2 desc, m.last_used_at desc""")).all()
    if not counts:
        op.execute(f"drop table {OLD_TABLE}")
        settings = op.get_context().config.attributes["artvec_settings"]
        current = configurations.register(connection, settings.embedding_config(), id_type)
    else:
        for config_id, _ in counts[1:]:
            move_rows(connection, configurations.find(connection, config_id), id_type)
        current = configurations.find(connection, counts[0][0])
        current.table_name = tables.table_name_for(current.config_id)
        op.execute("drop index if exists artvec.embeddings_config_id")   # one configuration per table now
        op.execute(f"alter table {OLD_TABLE} rename to {current.table_name}")
        rename_indexes(connection, current.table_name, "embeddings_", current.table_name + "_")
        connection.execute(tables.models.update().where(tables.models.c.config_id == current.config_id)
                           .values(table_name=current.table_name))
    configurations.make_active(connection, current, grants)


def move_rows(connection, configuration, id_type: str) -> None:
    """Rows of a configuration that was not the main one: into a table of its own."""
    configuration = configurations.ensure_table(connection, configuration, id_type)
    connection.execute(text(f"insert into {configuration.table} select * from {OLD_TABLE} where config_id = :id"),
                       {"id": configuration.config_id})
    connection.execute(text(f"delete from {OLD_TABLE} where config_id = :id"), {"id": configuration.config_id})


def rename_indexes(connection, table_name: str, old_prefix: str, new_prefix: str) -> None:
    names = connection.execute(text("""
        select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = to_regclass(:table) and c.relname like :pattern"""),
        {"table": tables.qualified(table_name), "pattern": old_prefix.replace("_", r"\_") + "%"}).scalars().all()
    for name in names:
        new_name = (new_prefix + name[len(old_prefix):])[:63]
        op.execute(f'alter index {tables.SCHEMA}."{name}" rename to "{new_name}"')


def downgrade() -> None:
    connection = op.get_bind()
    current = configurations.active(connection)
    op.execute(f"drop view if exists {OLD_TABLE}")
    for configuration in configurations.read(connection):
        if configuration.table_name and configuration.config_id != current.config_id:
            op.execute(f"drop table if exists {configuration.table}")
    op.execute(f"alter table {current.table} rename to embeddings")
    rename_indexes(connection, "embeddings", current.table_name + "_", "embeddings_")
    op.execute(f"create index if not exists embeddings_config_id on {OLD_TABLE} (config_id)")
    op.drop_column("sync_runs", "catalogue_size", schema=tables.SCHEMA)
    op.execute("drop index if exists artvec.models_one_active")
    op.drop_constraint("models_table_name_key", "models", schema=tables.SCHEMA)
    for name in NEW_MODEL_COLUMNS:
        op.drop_column("models", name, schema=tables.SCHEMA)
