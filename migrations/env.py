"""Alembic environment: the same database and schema parameters as the artvec CLI."""

from alembic import context
from sqlalchemy import create_engine, pool, text

from artvec import db
from artvec.config import Settings
from artvec.migrate import SCHEMA, ensure_vector_extension

config = context.config
settings = config.attributes.get("artvec_settings")
if settings is None:
    settings = Settings.load()
    config.attributes["artvec_settings"] = settings
url = config.get_main_option("sqlalchemy.url") or db.database_url(settings)


def run_migrations_online() -> None:
    engine = create_engine(db.sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Several workers may run `artvec init` at once: one migrates, the others wait.
        connection.execute(text("select pg_advisory_lock(hashtext('artvec.migrate'))"))
        ensure_vector_extension(connection, db.mask_url(url))
        connection.execute(text(f"create schema if not exists {SCHEMA}"))
        connection.commit()
        context.configure(connection=connection, version_table_schema=SCHEMA,
                          transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("artvec's migrations run online only: the vector sizes come from the database")
run_migrations_online()
