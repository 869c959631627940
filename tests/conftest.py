"""Shared fixtures: one real embedded PostgreSQL + pgvector for the session, a fresh database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from artvec import db
from artvec.config import Settings
from helpers import database_on

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def artvec_home():
    """A private folder for the session's embedded server. Not under pytest's tmp_path: pytest
    prunes old tmp folders, which would pull the data from under a concurrent session's server."""
    home = Path(tempfile.mkdtemp(prefix="artvec-test-"))
    yield home
    db.stop_embedded(home / db.EMBEDDED_DIR)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(artvec_home) -> str:
    """URL of the session's embedded server (its maintenance database)."""
    return db.start_embedded(artvec_home / db.EMBEDDED_DIR)


@pytest.fixture
def private_home():
    """An artvec home of the test's own; any embedded server started in it is stopped afterwards."""
    home = Path(tempfile.mkdtemp(prefix="artvec-home-"))
    yield home
    db.stop_embedded(home / db.EMBEDDED_DIR)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def database_url(server_url) -> str:
    """A fresh, empty database on the embedded server for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(db.sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    yield database_on(server_url, name)
    with engine.connect() as connection:
        connection.execute(text(f'drop database if exists "{name}" with (force)'))
    engine.dispose()


@pytest.fixture
def env(database_url, artvec_home, tmp_path, monkeypatch) -> dict:
    """Environment for running artvec against the test's database, from a neutral folder."""
    monkeypatch.chdir(tmp_path)
    values = {"ARTVEC_DATABASE_URL": database_url, "ARTVEC_HOME": str(artvec_home)}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


@pytest.fixture
def settings(env) -> Settings:
    return Settings.load()


@pytest.fixture
def engine(database_url):
    engine = create_engine(db.sqlalchemy_url(database_url))
    yield engine
    engine.dispose()
