"""Embedding configurations side by side, one active behind the view artvec.embeddings: switching
during normal service, `artvec configs / activate / prune`, and migration 0002 in place."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from artvec import configurations, db, migrate, store
from artvec.config import Settings
from artvec.errors import ConfigError
from artvec.sources import SourceOptions, stamp
from artvec.tables import table_name_for
from helpers import psql_path, run_cli
from test_sync import FAST, add_pictures, catalogue  # noqa: F401 - the fixture, shared

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
OTHER_SIZES = {"ARTVEC_EMBEDDING_COLOUR_BINS": "6",        # colour part 6³ = 216 dims instead of 512
               "ARTVEC_EMBEDDING_WHITENING": "none"}      # (the shipped basis fits only the default's layout)


def by_config(engine) -> dict[str, int]:
    """What the website sees: artvec.embeddings, counted by configuration."""
    with engine.connect() as connection:
        return dict(connection.execute(text(
            "select config_id, count(*) from artvec.embeddings group by config_id")).all())


def configs(env, cwd=None) -> dict[str, dict]:
    return {row["config_id"]: row for row in json.loads(run_cli("configs", "--json", env=env, cwd=cwd).stdout)}


def readme_walkthrough() -> list[str]:
    section = README.split("### Changing the embedding", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_demo_store_switches_to_other_sizes_without_the_site_noticing(private_home, env):
    """The README walkthrough: demo → other sizes → sync --limit 10 → the site's SQL still sees every
    picture under the old configuration, on its HNSW index → sync → new one active → prune."""
    steps = readme_walkthrough()
    assert steps[0] == "artvec demo" and steps[1].startswith("cd ") and "COLOUR_BINS=6" in steps[2]
    assert all(f"{key}={value}" in steps[2] for key, value in OTHER_SIZES.items())
    assert steps[3:5] == ["artvec sync --limit 10", "psql \"$(artvec db url)\" -c \"select config_id, count(*) "
                                                     "from artvec.embeddings group by config_id\""]
    assert steps[5:] == ["artvec sync", "artvec configs", "artvec prune"]

    demo_env = {key: value for key, value in env.items() if key != "ARTVEC_DATABASE_URL"}
    demo_env.update(ARTVEC_HOME=str(private_home), **FAST)
    run_cli("demo", env=demo_env)
    folder = private_home / "demo"                       # its artvec.toml names the demo catalogue
    url = run_cli("db", "url", env=demo_env).stdout.strip()
    engine = create_engine(db.sqlalchemy_url(url))
    (old,) = configs(demo_env, folder)
    assert by_config(engine) == {old: 40}

    switched = {**demo_env, **OTHER_SIZES}
    partial = run_cli("sync", "--limit", "10", env=switched, cwd=folder)
    assert "10 embedded" in partial.stdout and "30 to go" in partial.stdout
    listed = configs(switched, folder)
    new = next(config_id for config_id in listed if config_id != old)
    assert listed[old]["active"] and not listed[new]["active"]
    assert listed[new]["embedded"] == 10 and listed[new]["catalogue_size"] == 40
    assert listed[new]["dims"]["colour"] == 216 and listed[old]["dims"]["colour"] == 512

    counted = subprocess.run([str(psql_path()), url, "-At", "-F", "|", "-c",
                              "select config_id, count(*) from artvec.embeddings group by config_id"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert counted == [f"{old}|40"]                       # every picture, all under the old one
    readme_sql = re.search(r'psql "\$\(artvec db url\)" -c "\n(.*?)"\n```', README, re.S).group(1)
    with engine.connect() as connection:
        assert len(connection.execute(text(readme_sql)).all()) == 5
        # 40 rows: PostgreSQL rightly reads them all; without that choice the plan shows the index
        connection.execute(text("set enable_seqscan = off; set enable_sort = off"))
        plan = " ".join(connection.execute(text("explain " + readme_sql)).scalars())
    assert f"{table_name_for(old)}_embedding_hnsw" in plan

    finished = run_cli("sync", env=switched, cwd=folder)
    assert "30 embedded" in finished.stdout and f"{new} is active now" in finished.stdout
    listed = configs(switched, folder)
    assert listed[new]["active"] and listed[new]["indexes_ready"] and listed[new]["embedded"] == 40
    assert old in listed and not listed[old]["active"]
    assert by_config(engine) == {new: 40}
    with engine.connect() as connection:
        dims = dict(connection.execute(text("""
            select attname, atttypmod from pg_attribute
            where attrelid = 'artvec.embeddings'::regclass and attname = 'colour'""")).all())
    assert dims == {"colour": 216}
    similar = run_cli("similar", "3", "-k", "4", "--filter", "era=1880s", env=switched, cwd=folder)
    assert len(similar.stdout.splitlines()) == 5

    pruned = run_cli("prune", env=switched, cwd=folder)
    assert f"dropped {old}" in pruned.stdout
    assert set(configs(switched, folder)) == {new}
    with engine.connect() as connection:
        assert connection.execute(text("select to_regclass(:t)"), {"t": f"artvec.{table_name_for(old)}"}).scalar() is None
    engine.dispose()


def test_during_a_switch_the_active_configuration_stays_current(catalogue, engine, env):  # noqa: F811
    add_pictures(engine, catalogue, range(1, 5))
    run_cli("sync", env=env)
    (old,) = configs(env)
    switched = {**env, **OTHER_SIZES}
    run_cli("sync", "--limit", "1", env=switched)
    new = next(config_id for config_id in configs(switched) if config_id != old)

    dry = run_cli("sync", "--dry-run", env=switched)
    assert "would embed 3 config" in dry.stdout and len(json.loads(run_cli("configs", "--json", env=env).stdout)) == 2
    refused = run_cli("activate", new, env=switched, check=False)
    assert refused.returncode == 1 and "3 pictures of the active configuration have no vector" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    add_pictures(engine, catalogue, [7])
    with engine.begin() as connection:
        connection.execute(text("delete from public.artworks where id = 2"))
        connection.execute(text("update public.artworks set era = '1900s' where id = 3"))
    run_cli("sync", "--limit", "1", env=switched)         # the active configuration's work comes first
    with engine.connect() as connection:
        seen = dict(connection.execute(text("select artwork_id, facets->>'era' from artvec.embeddings")).all())
    assert set(seen) == {1, 3, 4, 7} and seen[3] == "1900s"
    assert by_config(engine) == {old: 4}

    done = run_cli("sync", "--no-activate", env=switched)
    assert "complete but pending" in done.stdout
    listed = configs(switched)
    assert listed[old]["active"] and listed[new]["embedded"] == 4 and listed[new]["indexes_ready"]
    assert by_config(engine) == {old: 4}
    with engine.begin() as connection:                    # a lost index: refused, unless --force
        connection.execute(text(f"drop index artvec.{table_name_for(new)}_style_hnsw"))
    unindexed = run_cli("activate", new, env=switched, check=False)
    assert unindexed.returncode == 1 and "HNSW indexes are not built" in unindexed.stderr
    assert f"{new} is active (was {old})" in run_cli("activate", new, "--force", env=switched).stdout
    assert by_config(engine) == {new: 4}
    unknown = run_cli("activate", "nope-123", env=switched, check=False)
    assert unknown.returncode == 1 and "not in the store" in unknown.stderr

    kept = run_cli("prune", "--keep", "1", env=switched)
    assert "nothing to prune" in kept.stdout and set(configs(switched)) == {old, new}
    assert f"dropped {old}" in run_cli("prune", env=switched).stdout


def test_the_widest_vector_kept_in_the_row_fits_beside_long_values(env, engine):
    """MAX_INLINE_DIMS: the combined vector stays in the row (storage plain), and a row whose id, path,
    stamp and facets are long and incompressible still fits a page; one dimension more goes to TOAST."""
    from sqlalchemy import insert

    from artvec import tables

    run_cli("init", env=env)
    widest = tables.MAX_INLINE_DIMS
    rng = np.random.default_rng(0)

    def noise(n: int) -> str:
        return "".join(map(chr, rng.integers(0x100, 0x2FFF, n)))

    def vector(n: int) -> str:
        return "[" + ",".join(f"{x:.7f}" for x in rng.normal(size=n)) + "]"

    with engine.begin() as connection:
        connection.execute(insert(tables.models).values(config_id="wide-0123456789ab", name="wide", config={},
                                                        style_dim=1360, colour_dim=512, dim=widest))
        for name, dim in (("embeddings_widest", widest), ("embeddings_wider", widest + 1)):
            configurations.create_table(connection, name, "text", {"embedding": dim, "style": 1360, "colour": 512})
        storage = dict(connection.execute(text("""
            select attrelid::regclass::text, attstorage from pg_attribute
            where attrelid in ('artvec.embeddings_widest'::regclass, 'artvec.embeddings_wider'::regclass)
              and attname = 'embedding'""")).all())
        assert storage == {"artvec.embeddings_widest": "p", "artvec.embeddings_wider": "e"}
        connection.execute(text("""
            insert into artvec.embeddings_widest (artwork_id, config_id, embedding, style, colour, image_sha256,
                                                  image_location, source_stamp, facets)
            values (:id, 'wide-0123456789ab', cast(:e as vector), cast(:s as vector), cast(:c as vector), :sha,
                    :location, :stamp, cast(:facets as jsonb))"""),
            {"id": noise(600), "e": vector(widest), "s": vector(1360), "c": vector(512), "sha": bytes(32),
             "location": noise(4000), "stamp": noise(500), "facets": json.dumps({f"facet{i}": noise(40) for i in range(100)})})
        assert connection.execute(text("select vector_dims(embedding) from artvec.embeddings_widest")).scalar() == widest


def test_dimension_mismatch_is_a_clear_error(engine, settings):
    store.init(settings)
    with engine.begin() as connection:
        current = configurations.active(connection)
        current.colour_dim = 100                   # what a configuration whose vectors changed size would say
        with pytest.raises(ConfigError, match=r"makes vectors of .* dims \(style \d+, colour 100, [^)]*\) but its table"):
            store.check_dimensions(connection, current)


# ---- migration 0002: the 0001 store upgraded in place ----------------------------------------------

def unit(size: int, seed: int) -> list[float]:
    vector = np.random.default_rng(seed).standard_normal(size)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()


def test_migration_upgrades_a_0001_store_in_place_without_re_embedding(catalogue, engine, env,  # noqa: F811
                                                                        database_url, monkeypatch):
    """A store made by 0001 (a table artvec.embeddings, an HNSW index, a grant to the site, and a
    few rows of an older configuration) keeps every vector; the sync then has nothing to embed
    (under a configuration of its day: one without a copy vector, which came later)."""
    monkeypatch.setenv("ARTVEC_EMBEDDING_COPY_VECTOR", "none")
    env = {**env, "ARTVEC_EMBEDDING_COPY_VECTOR": "none"}
    settings = Settings.load()
    migrate.downgrade(settings, database_url, "base")
    migrate.upgrade(settings, database_url, "0001")
    add_pictures(engine, catalogue, range(1, 4))
    config = settings.embedding_config()
    role = "site_" + uuid.uuid4().hex[:6]
    sources = SourceOptions(image_root=str(catalogue))
    with engine.begin() as connection:
        for config_id, dims in ((config.config_id, config), ("older-000000000000", config)):
            connection.execute(text("""
                insert into artvec.models (config_id, name, config, style_dim, colour_dim, dim)
                values (:id, 'x', cast(:config as jsonb), :s, :c, :d)"""),
                {"id": config_id, "config": json.dumps(config.to_dict()), "s": dims.style_dim,
                 "c": dims.colour_dim, "d": dims.dim})
        rows = [(artwork_id, config.config_id) for artwork_id in (1, 2, 3)] + [(9, "older-000000000000")]
        for artwork_id, config_id in rows:
            path = catalogue / f"{artwork_id}.png"
            data = path.read_bytes() if path.exists() else b""
            connection.execute(text("""
                insert into artvec.embeddings (artwork_id, config_id, embedding, style, colour, image_sha256,
                    image_location, source_stamp, source_updated_at, facets)
                select :id, :config_id, :embedding, :style, :colour, :sha, :location, :stamp, a.updated_at,
                       jsonb_build_object('era', a.era, 'artist', a.artist)
                from (select 1) one left join public.artworks a on a.id = :id"""),
                {"id": artwork_id, "config_id": config_id, "embedding": str(unit(config.dim, artwork_id)),
                 "style": str(unit(config.style_dim, artwork_id)), "colour": str(unit(config.colour_dim, artwork_id)),
                 "sha": hashlib.sha256(data).digest(), "location": f"{artwork_id}.png",
                 "stamp": stamp(f"{artwork_id}.png", sources)})
        connection.execute(text("create index embeddings_embedding_hnsw on artvec.embeddings "
                                "using hnsw (embedding vector_l2_ops)"))
        connection.execute(text(f'create role "{role}"'))
        connection.execute(text(f'grant usage on schema artvec to "{role}"'))
        connection.execute(text(f'grant select on artvec.embeddings to "{role}"'))
        before = dict(connection.execute(text("select artwork_id, embedding::text from artvec.embeddings")).all())

    migrate.upgrade(settings, database_url)
    main, older = table_name_for(config.config_id), table_name_for("older-000000000000")
    with engine.begin() as connection:
        assert configurations.active(connection).config_id == config.config_id
        after = dict(connection.execute(text("select artwork_id, embedding::text from artvec.embeddings")).all())
        assert after == {key: value for key, value in before.items() if key != 9}
        assert connection.execute(text(f"select artwork_id from artvec.{older}")).scalars().all() == [9]
        indexes = set(connection.execute(text(
            "select indexname from pg_indexes where schemaname = 'artvec' and tablename = :t"), {"t": main}).scalars())
        assert indexes == {f"{main}_pkey", f"{main}_embedding_hnsw"}
        connection.execute(text(f'set role "{role}"'))          # the site's grant moved to the view
        assert connection.execute(text("select count(*) from artvec.embeddings")).scalar() == 3
        connection.execute(text("reset role"))
        connection.execute(text(f'drop owned by "{role}"'))
        connection.execute(text(f'drop role "{role}"'))
    again = json.loads(run_cli("sync", "--json", env=env).stdout)
    assert again["embedded"] == 0 and again["unchanged"] == 3 and again["deleted"] == 0
    with engine.connect() as connection:
        assert dict(connection.execute(text("select artwork_id, embedding::text from artvec.embeddings")).all()) \
            == after



# ---- migration 0006: the copy vector's column -----------------------------------------------------

def copy_column_types(connection) -> dict[str, str | None]:
    """relation name -> the type of its ``copy`` column (None where it has none), for artvec's tables and view."""
    rows = connection.execute(text("""
        select c.relname, (select format_type(a.atttypid, a.atttypmod) from pg_attribute a
                           where a.attrelid = c.oid and a.attname = 'copy' and not a.attisdropped)
        from pg_class c where c.relnamespace = 'artvec'::regnamespace and c.relname like 'embeddings%'
          and c.relkind in ('r', 'v')"""))
    return dict(rows.all())


def test_migration_0006_gives_every_table_a_copy_column_and_the_view_keeps_its_grant(engine, settings, env,
                                                                                     database_url):
    """Tables made before the copy vector (0006 undone) get the column: typed where the configuration has a
    copy vector, untyped and empty where it has none; the view is made again with it, the site's grant kept;
    `similar --by copy` under a configuration without one is a one-line error."""
    import dataclasses

    store.init(settings)
    with_copy = settings.embedding_config()
    without = dataclasses.replace(with_copy, copy_vector="none")
    role = "site_" + uuid.uuid4().hex[:6]
    with engine.begin() as connection:
        older = configurations.register(connection, without, "bigint")
        configurations.make_active(connection, older)
        connection.execute(text(f'create role "{role}"'))
        connection.execute(text(f'grant usage on schema artvec to "{role}"'))
        connection.execute(text(f'grant select on artvec.embeddings to "{role}"'))
    newer = table_name_for(with_copy.config_id)
    migrate.downgrade(settings, database_url, "0005_clusters")
    with engine.connect() as connection:
        assert set(copy_column_types(connection).values()) == {None}
    migrate.upgrade(settings, database_url)
    with engine.begin() as connection:
        types = copy_column_types(connection)
        assert types == {newer: "vector(512)", older.table_name: "vector", "embeddings": "vector"}
        for configuration in configurations.read(connection):
            store.check_dimensions(connection, configuration)
        connection.execute(text(f'set role "{role}"'))
        assert connection.execute(text("select count(copy) from artvec.embeddings")).scalar() == 0
        connection.execute(text("reset role"))
        connection.execute(text(f'drop owned by "{role}"'))
        connection.execute(text(f'drop role "{role}"'))
    # a configuration without a copy vector is ready with its three HNSW indexes (none is asked of its null column)
    from artvec import indexes

    with engine.connect() as connection:
        older = configurations.find(connection, without.config_id)
        assert configurations.hnsw_index_names(older) == [f"{older.table_name}_{c}_hnsw" for c in ("embedding", "style", "colour")]
        assert not configurations.indexes_ready(connection, older)
    indexes.index(settings, progress=lambda line: None, engine=engine, configuration=older)
    with engine.connect() as connection:
        assert configurations.indexes_ready(connection, older)
        newer_configuration = configurations.find(connection, with_copy.config_id)
        assert f"{newer}_copy_hnsw" in configurations.hnsw_index_names(newer_configuration)
    env = {**env, "ARTVEC_EMBEDDING_COPY_VECTOR": "none"}
    listed = run_cli("configs", env=env).stdout
    assert "1902/1390/512+512" in listed and re.search(rf"{without.config_id} +1902/1390/512 ", listed)
    result = run_cli("similar", "1", "--by", "copy", env=env, check=False)
    assert result.returncode != 0 and "has no copy vector" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
