"""The schema, driven through Alembic's Python API from the package (never a subprocess)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

    from .config import Settings

SCHEMA = "artvec"
ID_TYPES = {"bigint": "bigint", "text": "text", "uuid": "uuid"}
PACKAGE_ROOT = Path(__file__).resolve().parent


def migrations_dir() -> Path:
    """migrations/ beside the package (a checkout or editable install), else the copy in the package."""
    for candidate in (PACKAGE_ROOT.parent / "migrations", PACKAGE_ROOT / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise ConfigError(f"artvec's migrations folder is missing (looked beside {PACKAGE_ROOT})")


def schema_parameters(settings: "Settings") -> dict:
    """What the tables' column types depend on: the catalogue's id type and the vector sizes."""
    id_type = settings.get("catalogue.id_type")
    if id_type not in ID_TYPES:
        raise ConfigError(f"catalogue.id_type must be one of {', '.join(ID_TYPES)}, not {id_type!r}")
    embedding = settings.embedding_config()
    return {"id_type": ID_TYPES[id_type], "style_dim": embedding.style_dim,
            "colour_dim": embedding.colour_dim, "dim": embedding.dim}


def alembic_config(settings: "Settings", url: str) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["artvec_settings"] = settings
    return config


def upgrade(settings: "Settings", url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(settings, url), revision)


def downgrade(settings: "Settings", url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(settings, url), revision)


def current_revision(connection) -> str | None:
    from sqlalchemy import text

    exists = connection.execute(text("select to_regclass('artvec.alembic_version')")).scalar()
    if not exists:
        return None
    return connection.execute(text("select version_num from artvec.alembic_version")).scalar()


def ensure_vector_extension(connection, url_for_message: str) -> None:
    from sqlalchemy import text

    installed = connection.execute(
        text("select extversion from pg_extension where extname = 'vector'")).scalar()
    if installed:
        return
    available = connection.execute(
        text("select 1 from pg_available_extensions where name = 'vector'")).scalar()
    if not available:
        raise DatabaseError(
            f"the PostgreSQL server at {url_for_message} has no pgvector extension; install pgvector "
            "0.8+ on it or use the embedded database (see README, 'Database')")
    connection.execute(text("create extension if not exists vector"))
