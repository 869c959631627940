"""Similarity search against the real embedded PostgreSQL + pgvector: indexes, database defaults,
filters, the SQL recipes of docs/sql.md run verbatim, the Select helper, and the CLI."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import BigInteger, Column, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Session

from artvec import db, search, store
from artvec.config import Settings, env_name
from artvec.errors import ArtvecError, ConfigError
from helpers import database_on, run_cli

REPO = Path(__file__).resolve().parent.parent
ROWS = 3000
RARE = 15                      # era 'rare': 0.5 % of the rows
TWINS = (9001, 9002, 9003, 9004)   # identical vectors: ties
LONERS = 15                    # school 'studio': 0.5 %; every other picture is 'academy'
QUERY_ID = 7
# The module's store is small (3,004 rows). With the combined vector stored in the row
# (migration 0001), PostgreSQL prices a scan of so few rows below an HNSW search at
# artvec's default ef_search and answers unfiltered queries exactly, which is right for a
# small store but would hide the index from these tests. A small ef_search, set for the
# database by `artvec index` like any other value, keeps the planner on the index here,
# as artvec's defaults do from about 5,000 rows on (docs/sql.md).
SMALL_STORE = {"search.ef_search": 40, "index.m": 16, "index.ef_construction": 64}


class Base(DeclarativeBase):
    pass


class Artwork(Base):
    """The website's own catalogue model, as a backend would define it."""

    __tablename__ = "catalogue"
    __table_args__ = {"schema": "public"}
    id = Column(BigInteger, primary_key=True)
    title = Column(String)
    era = Column(String)
    artist = Column(String)
    image = Column(String)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def era_of(i: int) -> str:
    return "rare" if i % (ROWS // RARE) == 0 else f"e{i % 10}"


def school_of(i: int) -> str:
    return "studio" if i % (ROWS // LONERS) == 1 else "academy"


def fill(url: str, settings: Settings, image_root: Path, table: str) -> None:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    config = settings.embedding_config()
    rng = np.random.default_rng(3)
    centres = unit(rng.standard_normal((20, config.dim)))
    vectors = unit(centres[rng.integers(0, 20, ROWS)] + 0.05 * rng.standard_normal((ROWS, config.dim)))
    ids = list(range(1, ROWS + 1)) + list(TWINS)
    vectors = np.vstack([vectors, np.repeat(vectors[QUERY_ID - 1:QUERY_ID] * 0.9 + vectors[:1] * 0.1, 4, 0)])
    make_pictures(image_root)
    with psycopg.connect(db.libpq_url(url)) as connection:
        register_vector(connection)
        connection.execute("create table public.catalogue (id bigint primary key, title text, era text, "
                           "artist text, image text)")
        with connection.cursor().copy(
                f"copy {table} (artwork_id, config_id, embedding, style, colour, image_sha256, "
                "image_location, facets) from stdin with (format binary)") as copy:
            copy.set_types(["int8", "text", "vector", "vector", "vector", "bytea", "text", "jsonb"])
            for i, vector in zip(ids, vectors):
                facets = {"era": era_of(i), "artist": f"a{i % 7}", "school": school_of(i)}
                copy.write_row([i, config.config_id, vector, vector[:config.style_dim],
                                vector[config.style_dim:], b"\0" * 32, f"p{i % 3}.png", Jsonb(facets)])
        with connection.cursor().copy("copy public.catalogue from stdin") as copy:
            for i in ids:
                copy.write_row([i, f"title {i}", era_of(i), f"a{i % 7}", f"p{i % 3}.png"])
        connection.execute(f"analyze {table}")
        connection.execute("analyze public.catalogue")


def make_pictures(root: Path) -> None:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (64, 48), colour).save(root / f"p{i}.png")


@pytest.fixture(scope="module")
def searchable(server_url, artvec_home, tmp_path_factory):
    """One database for the module: schema, 3,004 vectors at the real size, catalogue, indexes."""
    name = "s_" + uuid.uuid4().hex[:12]
    admin = create_engine(db.sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    url = database_on(server_url, name)
    folder = tmp_path_factory.mktemp("search")
    env = {**os.environ, "ARTVEC_DATABASE_URL": url, "ARTVEC_HOME": str(artvec_home),
           "ARTVEC_CATALOGUE_TABLE": "public.catalogue", "ARTVEC_CATALOGUE_FACETS": "era,artist",
           "ARTVEC_CATALOGUE_IMAGE_ROOT": str(folder / "pictures"),
           **{env_name(key): str(value) for key, value in SMALL_STORE.items()}}
    settings = Settings.load(cwd=folder, overrides={
        "database.url": url, "catalogue.table": "public.catalogue", "catalogue.facets": ["era", "artist"],
        "catalogue.image_root": str(folder / "pictures"), **SMALL_STORE})
    store.init(settings)
    engine = db.connect(url)
    with engine.begin() as connection:
        configuration = store.register_model(connection, settings.embedding_config())
    fill(url, settings, folder / "pictures", configuration.table)
    search.create_indexes(settings, progress=lambda line: None, engine=engine)
    engine.dispose()
    yield {"url": url, "settings": settings, "env": env, "folder": folder, "table": configuration.table_name}
    with admin.connect() as connection:
        connection.execute(text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


@pytest.fixture
def fresh(searchable):
    """A new engine: its sessions start after artvec index, with only the database defaults."""
    engine = db.connect(searchable["url"])
    yield engine
    engine.dispose()


def recipes() -> dict[str, str]:
    document = (REPO / "docs" / "sql.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", document, flags=re.S)
    named = {}
    for block in blocks:
        match = re.match(r"-- recipe: ([\w-]+)\n", block)
        assert match, f"every sql block in docs/sql.md starts with '-- recipe: name':\n{block}"
        named[match.group(1)] = block
    return named


def run_recipe(connection, name: str, **params):
    return connection.execute(text(recipes()[name]), params).all()


def ids(rows) -> list:
    return [row[0] for row in rows]


# ---- database defaults, k rows under filters --------------------------------------------------

def test_database_defaults_apply_to_new_sessions(fresh):
    with fresh.connect() as connection:
        assert connection.execute(text("show hnsw.iterative_scan")).scalar() == "relaxed_order"
        assert connection.execute(text("show hnsw.ef_search")).scalar() == str(SMALL_STORE["search.ef_search"])
        assert connection.execute(text("show hnsw.max_scan_tuples")).scalar() == "100000"


def test_combined_vector_is_stored_in_the_row_and_the_parts_in_toast(fresh):
    with fresh.connect() as connection:
        storage = dict(connection.execute(text("""
            select attname, attstorage from pg_attribute
            where attrelid = (select ('artvec.' || table_name)::regclass from artvec.models where active)
              and attname in ('embedding', 'style', 'colour')""")).all())
    assert storage == {"embedding": "p", "style": "e", "colour": "e"}


def test_selective_filter_on_the_hnsw_index_returns_k_rows_without_session_settings(searchable, fresh):
    """A facet without statistics (no B-tree: added after `artvec index`) leaves the planner on
    the HNSW index; only 0.5 % of the pictures pass the filter. The database default makes
    the scan iterate: k rows. The same query with iterative scans switched off comes back short."""
    settings = Settings.load(overrides={**searchable["settings"].values,
                                        "catalogue.facets": ["era", "artist", "school"]})
    statement = search.similar(QUERY_ID, k=12, excludes={"school": "academy"}, settings=settings)
    with fresh.connect() as connection:
        assert "_embedding_hnsw" in " ".join(search.explain(connection, statement))
        rows = connection.execute(statement).all()
    assert len(rows) == 12
    assert all(school_of(row.artwork_id) == "studio" for row in rows)
    with fresh.connect() as connection:
        connection.execute(text("set hnsw.iterative_scan = off"))   # the control, not the test
        assert len(connection.execute(statement).all()) < 12


@pytest.mark.parametrize("through", ["facets", "catalogue"])
def test_selective_era_filter_returns_k_rows_exactly(searchable, fresh, through):
    rows = search.search(searchable["settings"], artwork_id=QUERY_ID, filters={"era": "rare"}, k=12,
                         through=through, engine=fresh, expand=0)
    assert len(rows) == 12
    assert all(era_of(row["artwork_id"]) == "rare" for row in rows)
    assert [row["artwork_id"] for row in rows] == exact(fresh, QUERY_ID, lambda i: era_of(i) == "rare", 12)


def exact(engine, artwork_id, keep, k) -> list:
    """The k nearest ids that pass ``keep``, computed without any index."""
    with engine.connect() as connection:
        rows = connection.execute(text("""
            select e.artwork_id, e.embedding <-> q.embedding as distance
            from artvec.embeddings e, artvec.embeddings q
            where q.artwork_id = :id and e.artwork_id <> :id"""), {"id": artwork_id}).all()
    kept = sorted((row for row in rows if keep(row.artwork_id)), key=lambda row: (row.distance, row.artwork_id))
    return [row.artwork_id for row in kept[:k]]


@pytest.mark.parametrize("through", ["facets", "catalogue"])
def test_excluding_filter(searchable, fresh, through):
    rows = search.search(searchable["settings"], artwork_id=QUERY_ID, excludes={"artist": ["a0", "a1"]},
                         k=20, through=through, engine=fresh)
    assert len(rows) == 20 and not {row["facets"]["artist"] for row in rows} & {"a0", "a1"}


def test_the_query_artwork_is_never_its_own_neighbour(searchable, fresh):
    for by in ("both", "style", "colour"):
        rows = search.search(searchable["settings"], artwork_id=QUERY_ID, by=by, k=50, engine=fresh)
        assert QUERY_ID not in [row["artwork_id"] for row in rows] and len(rows) == 50


def test_ties_come_in_artwork_id_order_every_time(searchable, fresh):
    first = search.search(searchable["settings"], artwork_id=TWINS[2], k=5, engine=fresh)
    assert [row["artwork_id"] for row in first[:3]] == [9001, 9002, 9004]
    assert first[0]["distance"] == first[1]["distance"] == first[2]["distance"] == 0
    for _ in range(3):
        assert search.search(searchable["settings"], artwork_id=TWINS[2], k=5, engine=fresh) == first


def test_search_by_vector_keeps_to_its_configuration(searchable, fresh):
    with fresh.connect() as connection:
        config_id, vector = connection.execute(text(
            "select config_id, embedding::text from artvec.embeddings where artwork_id = :id"), {"id": QUERY_ID}).one()
    rows = search.search(searchable["settings"], vector=vector, config_id=config_id, k=3, engine=fresh, expand=0)
    assert rows[0]["artwork_id"] == QUERY_ID and rows[0]["distance"] == pytest.approx(0, abs=1e-6)
    assert search.search(searchable["settings"], vector=vector, config_id="other-config", engine=fresh) == []


# ---- no injection, clear errors -------------------------------------------------------------

@pytest.mark.parametrize("name", ["era; drop table artvec.embeddings", "era' or '1'='1", "school", ""])
def test_unknown_or_hostile_filter_names_are_refused(searchable, name):
    with pytest.raises(ConfigError, match="unknown filter"):
        search.similar(QUERY_ID, filters={name: "x"}, settings=searchable["settings"])


@pytest.mark.parametrize("through", ["facets", "catalogue"])
def test_filter_values_are_bound_parameters(searchable, fresh, through):
    hostile = "x' or 1=1 --"
    assert search.search(searchable["settings"], artwork_id=QUERY_ID, filters={"era": hostile},
                         through=through, engine=fresh) == []
    rows = search.search(searchable["settings"], artwork_id=QUERY_ID, excludes={"era": hostile}, k=5,
                         through=through, engine=fresh)
    assert len(rows) == 5
    with fresh.connect() as connection:
        assert connection.execute(text("select count(*) from artvec.embeddings")).scalar() == ROWS + len(TWINS)


def test_look_ups_by_id_use_the_primary_key(searchable, fresh):
    """`artvec similar ID` finds the query row through the typed primary key, not by reading
    every row (``artwork_id::text = :id`` reads the whole table: the control)."""
    with fresh.connect() as connection:
        key = search.artwork_key(connection, str(QUERY_ID))
        plan = " ".join(search.explain(connection, search.artwork_row(key, "image_location")))
        control = " ".join(connection.execute(text(
            "explain select image_location from artvec.embeddings where artwork_id::text = :id"),
            {"id": str(QUERY_ID)}).scalars())
    assert key == QUERY_ID and f"{searchable['table']}_pkey" in plan and "Seq Scan" not in plan
    assert "Seq Scan" in control
    with fresh.connect() as connection, pytest.raises(ArtvecError, match="is not a bigint"):
        search.artwork_key(connection, "seven")


def test_unknown_artwork_and_bad_options_are_one_line_errors(searchable, fresh):
    with pytest.raises(ArtvecError, match="no embedding"):
        search.search(searchable["settings"], artwork_id=123456789, engine=fresh)
    with pytest.raises(ArtvecError, match="--by"):
        search.similar(QUERY_ID, by="texture")
    with pytest.raises(ArtvecError, match="name=value"):
        search.parse_filters(["era"])


# ---- the recipes of docs/sql.md, verbatim --------------------------------------------------

def test_every_recipe_is_tested():
    searched = {name for name in recipes() if not name.startswith("clusters-")}   # those: test_clusters.py
    assert searched == {"more-like-artwork", "more-like-artwork-expanded", "more-like-artwork-expanded-within-era",
                        "within-era", "by-artist", "excluding-artist", "by-style", "by-colour", "within-distance", "next-page", "uploaded-picture",
                        "joined-catalogue", "explain", "by-palette", "copies"}
    # by-palette: tests/test_palette.py; copies: tests/test_duplicates.py (real copies, real copy vectors)


def test_recipes_run_verbatim(searchable, fresh):
    base = {"artwork_id": QUERY_ID, "k": 12}
    with fresh.connect() as connection:
        more = run_recipe(connection, "more-like-artwork", **base)
        assert len(more) == 12 and QUERY_ID not in ids(more)
        assert [row.distance for row in more] == sorted(row.distance for row in more)
        era = run_recipe(connection, "within-era", era="rare", **base)
        assert len(era) == 12 and all(era_of(i) == "rare" for i in ids(era))
        artist = run_recipe(connection, "by-artist", artist="a3", **base)
        assert len(artist) == 12 and all(i % 7 == 3 for i in ids(artist))
        excluding = run_recipe(connection, "excluding-artist", artist="a3", **base)
        assert len(excluding) == 12 and all(i % 7 != 3 for i in ids(excluding))
        style = run_recipe(connection, "by-style", **base)
        colour = run_recipe(connection, "by-colour", **base)
        assert len(style) == len(colour) == 12 and QUERY_ID not in ids(style) + ids(colour)
        by_style = search.search(searchable["settings"], artwork_id=QUERY_ID, by="style", engine=fresh, expand=0)
        assert ids(style) == [row["artwork_id"] for row in by_style]
        threshold = (more[4].distance + more[5].distance) / 2
        close = run_recipe(connection, "within-distance", max_distance=threshold, **base)
        assert ids(close) == ids(more)[:5]
        page_two = run_recipe(connection, "next-page", page_offset=12, **base)
        both_pages = run_recipe(connection, "next-page", page_offset=0, **{**base, "k": 24})
        assert ids(page_two) == ids(both_pages)[12:] and not set(ids(page_two)) & set(ids(more))
        config_id, vector = connection.execute(text(
            "select config_id, embedding::text from artvec.embeddings where artwork_id = :id"),
            {"id": QUERY_ID}).one()
        upload = run_recipe(connection, "uploaded-picture", vector=vector, config_id=config_id, k=13)
        assert ids(upload) == [QUERY_ID] + ids(more)
        joined = run_recipe(connection, "joined-catalogue", era="rare", **base)
        assert ids(joined) == ids(era) and joined[0].title == f"title {joined[0].artwork_id}"
        plan = " ".join(row[0] for row in run_recipe(connection, "explain", **base))
    assert re.search(r"Index Scan using embeddings_[0-9a-f]{12}_embedding_hnsw", plan)


def test_style_and_colour_recipes_use_their_own_indexes(fresh):
    with fresh.connect() as connection:
        for name, index in (("by-style", "_style_hnsw"), ("by-colour", "_colour_hnsw")):
            plan = connection.execute(text("explain " + recipes()[name]), {"artwork_id": QUERY_ID, "k": 12})
            assert index in " ".join(row[0] for row in plan)


# ---- the Select helper with a backend's ORM model ------------------------------------------

def test_similar_select_joins_with_a_backend_model(searchable, fresh):
    statement = search.similar(QUERY_ID, k=12, settings=searchable["settings"])
    hits = statement.selected_columns
    statement = (statement.join(Artwork, Artwork.id == hits.artwork_id)
                 .where(Artwork.era == "rare").add_columns(Artwork.title))
    with Session(fresh) as session:
        rows = session.execute(statement).all()
    assert len(rows) == 12 and all(era_of(row.artwork_id) == "rare" for row in rows)
    assert all(row.title == f"title {row.artwork_id}" for row in rows)
    assert [row.distance for row in rows] == sorted(row.distance for row in rows)

    nearest = search.similar(QUERY_ID, k=5, by="colour").subquery()
    with Session(fresh) as session:
        artworks = session.execute(select(Artwork, nearest.c.distance)
                                   .join(nearest, nearest.c.artwork_id == Artwork.id)
                                   .order_by(nearest.c.distance, Artwork.id)).all()
    assert len(artworks) == 5 and all(isinstance(artwork, Artwork) for artwork, _ in artworks)


def test_unfiltered_select_stays_on_the_hnsw_index(fresh):
    with fresh.connect() as connection:
        for by, index in (("both", "embedding"), ("style", "style"), ("colour", "colour")):
            plan = " ".join(search.explain(connection, search.similar(QUERY_ID, by=by)))
            assert f"_{index}_hnsw" in plan


# ---- indexes, grants, CLI ------------------------------------------------------------------

def test_index_command_is_safe_to_run_again_and_rebuilds(searchable, fresh):
    table = searchable["table"]
    again = run_cli("index", env=searchable["env"], cwd=searchable["folder"])
    assert f"{table}_embedding_hnsw: exists" in again.stdout and "maintenance_work_mem" in again.stdout
    rebuilt = run_cli("index", "--rebuild", env=searchable["env"], cwd=searchable["folder"])
    assert f"{table}_embedding_hnsw: rebuilt" in rebuilt.stdout
    with fresh.connect() as connection:
        indexes = search.existing_indexes(connection)
    assert {f"{table}_embedding_hnsw", f"{table}_style_hnsw", f"{table}_colour_hnsw", f"{table}_copy_hnsw",
            f"{table}_facet_era", f"{table}_facet_artist", f"{table}_pkey"} == set(indexes)
    assert all(info["valid"] for info in indexes.values())
    assert indexes[f"{table}_embedding_hnsw"]["options"] == [
        f"ef_construction={SMALL_STORE['index.ef_construction']}", f"m={SMALL_STORE['index.m']}"]
    assert not any(name.endswith("_new") for name in indexes)


def test_similar_command_table_json_and_filters(searchable):
    env, cwd = searchable["env"], searchable["folder"]
    table = run_cli("similar", str(QUERY_ID), "--filter", "era=rare", "-k", "5", env=env, cwd=cwd)
    lines = table.stdout.strip().splitlines()
    assert lines[0].split() == ["id", "distance", "era", "artist"] and len(lines) == 6
    assert all(line.split()[2] == "rare" for line in lines[1:])
    as_json = json.loads(run_cli("similar", str(QUERY_ID), "--by", "style", "--exclude", "artist=a0",
                                 "--json", "-k", "4", env=env, cwd=cwd).stdout)
    assert len(as_json) == 4 and all(row["facets"]["artist"] != "a0" for row in as_json)
    joined = json.loads(run_cli("similar", str(QUERY_ID), "--filter", "era=rare", "--through", "catalogue",
                                "--json", "-k", "5", env=env, cwd=cwd).stdout)
    assert [row["artwork_id"] for row in joined] == [int(line.split()[0]) for line in lines[1:]]


# ---- more like this: the query expanded ----------------------------------------------------

def stored(fresh, column: str = "embedding") -> tuple[np.ndarray, np.ndarray]:
    with fresh.connect() as connection:
        rows = connection.execute(text(f"select artwork_id, {column}::text from artvec.embeddings "
                                       "order by artwork_id")).all()
    return np.array([row[0] for row in rows]), np.array([json.loads(row[1]) for row in rows])


def expanded_by_hand(ids: np.ndarray, x: np.ndarray, query: np.ndarray, n: int, k: int,
                     itself: int | None = None, keep=lambda i: True) -> tuple[list, np.ndarray]:
    """The ids and distances "more like this" must give: ``query`` averaged with its n nearest pictures (ties by id;
    never ``itself``), then its k nearest pictures that pass ``keep`` (never ``itself``)."""
    def nearest(q: np.ndarray, count: int, passing=lambda i: True) -> tuple[np.ndarray, np.ndarray]:
        d = np.linalg.norm(x - q, axis=1)
        d[(ids == itself) | ~np.array([passing(i) for i in ids])] = np.inf
        order = np.lexsort((ids, d))[:count]
        return order, d[order]

    neighbours, _ = nearest(query, n)
    order, distances = nearest((query + x[neighbours].sum(0)) / (n + 1), k, keep)
    return list(ids[order]), distances


@pytest.mark.parametrize("by,column", [("both", "embedding"), ("style", "style")])
def test_more_like_this_averages_the_query_with_its_nearest_pictures(searchable, fresh, by, column):
    ids, x = stored(fresh, column)
    query = x[ids == QUERY_ID][0]
    expected, distances = expanded_by_hand(ids, x, query, 2, 12, itself=QUERY_ID)
    rows = search.search(searchable["settings"], artwork_id=QUERY_ID, by=by, k=12, engine=fresh)   # search.expand: 2
    assert [row["artwork_id"] for row in rows] == expected
    assert np.allclose([row["distance"] for row in rows], distances, atol=1e-4)
    plain = search.search(searchable["settings"], artwork_id=QUERY_ID, by=by, k=12, engine=fresh, expand=0)
    assert [row["artwork_id"] for row in plain] == expanded_by_hand(ids, x, query, 0, 12, itself=QUERY_ID)[0]
    assert [row["distance"] for row in plain] != [row["distance"] for row in rows]
    config_id = searchable["settings"].embedding_config().config_id
    upload = search.search(searchable["settings"], vector=query.tolist(), config_id=config_id, by=by, k=12, engine=fresh)
    expected, distances = expanded_by_hand(ids, x, query, 2, 12)   # an upload: the picture itself may be among them
    assert [row["artwork_id"] for row in upload] == expected
    assert np.allclose([row["distance"] for row in upload], distances, atol=1e-4)


def hnsw_scans(connection, statement, params=None) -> int:
    """Scans of the combined vector's HNSW index while ``statement`` runs, those inside functions too (this
    transaction's own counts)."""
    count = text("select coalesce(sum(pg_stat_get_xact_numscans(indexrelid)), 0) from pg_stat_user_indexes "
                 "where schemaname = 'artvec' "
                 "and indexrelname like '%\\_embedding\\_hnsw'")
    connection.rollback()
    with connection.begin():
        before = connection.execute(count).scalar()
        connection.execute(statement, params or {}).all()
        return connection.execute(count).scalar() - before


def test_more_like_this_is_one_index_scan_unfiltered_and_two_under_a_filter(searchable, fresh):
    """Unfiltered, the answer is ranked among the query's nearest pictures (one scan); under a filter the query's
    own neighbours are found first (inside artvec.expanded, on the HNSW index), then the filtered search (a rare
    era: on its B-tree, as plainly), k rows."""
    filtered = search.similar(QUERY_ID, expand=2, filters={"era": "rare"}, settings=searchable["settings"])
    with fresh.connect() as connection:
        plan = " ".join(search.explain(connection, search.similar(QUERY_ID, expand=2)))
        assert len(re.findall(r"Index Scan using embeddings_[0-9a-f]{12}_embedding_hnsw", plan)) == 1
        assert hnsw_scans(connection, search.similar(QUERY_ID, expand=2)) == 1
        assert hnsw_scans(connection, search.similar(QUERY_ID, expand=0)) == 1
        assert hnsw_scans(connection, filtered) == 1
        assert hnsw_scans(connection, search.similar(QUERY_ID, expand=0, filters={"era": "rare"},
                                                     settings=searchable["settings"])) == 0
        assert hnsw_scans(connection, text(recipes()["more-like-artwork-expanded"]), {"artwork_id": QUERY_ID, "k": 12}) == 1
        assert hnsw_scans(connection, text(recipes()["more-like-artwork-expanded-within-era"]),
                          {"artwork_id": QUERY_ID, "era": "rare", "k": 12}) == 1
    rows = search.search(searchable["settings"], artwork_id=QUERY_ID, filters={"era": "rare"}, k=12, engine=fresh)
    assert len(rows) == 12 and all(era_of(row["artwork_id"]) == "rare" for row in rows)
    ids, x = stored(fresh)   # the two neighbours are the picture's own, whatever the filter
    expected, _ = expanded_by_hand(ids, x, x[ids == QUERY_ID][0], 2, 12, QUERY_ID, lambda i: era_of(i) == "rare")
    assert [row["artwork_id"] for row in rows] == expected


def test_more_like_this_ranks_enough_candidates_for_a_long_page(searchable, fresh):
    """The candidates grow with k + offset (3 ×): page 3 of 30 is the exact expanded answer's."""
    ids, x = stored(fresh)
    expected, distances = expanded_by_hand(ids, x, x[ids == QUERY_ID][0], 2, 90, itself=QUERY_ID)
    assert search.candidates_for(30, 60) == 270 and search.candidates_for(12, 0) == search.EXPAND_CANDIDATES
    rows = search.search(searchable["settings"], artwork_id=QUERY_ID, k=30, offset=60, engine=fresh)
    assert [row["artwork_id"] for row in rows] == expected[60:]
    assert np.allclose([row["distance"] for row in rows], distances[60:], atol=1e-4)


def test_the_neighbour_scan_has_its_own_ef_search_kept_by_artvec_index(searchable, fresh):
    """The function's SET clause holds search.expand_ef_search (not the database's ef_search), and `artvec index`
    sets it again when the setting changes; out of range is a one-line error."""
    def function_settings() -> list:
        with fresh.connect() as connection:
            return connection.execute(text("select proconfig from pg_proc where oid = "
                                           "'artvec.expanded(vector, integer, text, text)'::regprocedure")).scalar()

    assert function_settings() == ["hnsw.ef_search=32"]
    env, cwd = searchable["env"], searchable["folder"]
    try:
        changed = run_cli("index", env={**env, "ARTVEC_SEARCH_EXPAND_EF_SEARCH": "12"}, cwd=cwd)
        assert "neighbour scan: hnsw.ef_search = 12" in changed.stdout + changed.stderr
        assert function_settings() == ["hnsw.ef_search=12"]
        with fresh.connect() as connection:      # the session's own ef_search is untouched by the call
            connection.execute(search.similar(QUERY_ID, expand=2)).all()
            assert connection.execute(text("show hnsw.ef_search")).scalar() == str(SMALL_STORE["search.ef_search"])
        bad = run_cli("index", env={**env, "ARTVEC_SEARCH_EXPAND_EF_SEARCH": "0"}, cwd=cwd, check=False)
        assert bad.returncode != 0 and "search.expand_ef_search must be 1..1000, not 0" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    finally:
        run_cli("index", env=env, cwd=cwd)
    assert function_settings() == ["hnsw.ef_search=32"]


def test_the_expanded_function_checks_its_arguments(fresh):
    with fresh.connect() as connection:
        q = connection.execute(text("select embedding::text from artvec.embeddings where artwork_id = :id"),
                               {"id": QUERY_ID}).scalar()
        same = connection.execute(text("select artvec.expanded(cast(:q as vector), 0)::text = cast(:q as vector)::text"),
                                  {"q": q}).scalar()
        assert same                               # n = 0: the query itself
        for call, message in (("artvec.expanded(cast(:q as vector), 21)", "n must be 0..20"),
                              ("artvec.expanded(cast(:q as vector), 2, 'copy')", "part must be one of embedding, style, colour")):
            with pytest.raises(Exception, match=message):
                connection.execute(text(f"select {call}"), {"q": q}).scalar()
            connection.rollback()


def test_the_expanded_recipes_are_what_artvec_searches(searchable, fresh):
    with fresh.connect() as connection:
        recipe = run_recipe(connection, "more-like-artwork-expanded", artwork_id=QUERY_ID, k=12)
        within_era = run_recipe(connection, "more-like-artwork-expanded-within-era", artwork_id=QUERY_ID, era="rare", k=12)
    for found, filters in ((recipe, None), (within_era, {"era": "rare"})):
        rows = search.search(searchable["settings"], artwork_id=QUERY_ID, filters=filters, k=12, engine=fresh)
        assert ids(found) == [row["artwork_id"] for row in rows]
        assert np.allclose([row.distance for row in found], [row["distance"] for row in rows], atol=1e-6)


def test_copies_and_palettes_are_never_expanded_and_expand_is_bounded(searchable, fresh):
    assert search.check_expand(2, "copy") == 0 and search.check_expand(2, "colour") == 2
    with pytest.raises(ArtvecError, match="expand must be 0..20"):
        search.search(searchable["settings"], artwork_id=QUERY_ID, engine=fresh, expand=21)
    env, cwd = searchable["env"], searchable["folder"]
    plain = json.loads(run_cli("similar", str(QUERY_ID), "--expand", "0", "--json", "-k", "5", env=env, cwd=cwd).stdout)
    default = json.loads(run_cli("similar", str(QUERY_ID), "--json", "-k", "5", env=env, cwd=cwd).stdout)
    plain_env = json.loads(run_cli("similar", str(QUERY_ID), "--json", "-k", "5", env={**env, "ARTVEC_SEARCH_EXPAND": "0"},
                                   cwd=cwd).stdout)
    assert plain == plain_env and [row["distance"] for row in plain] != [row["distance"] for row in default]
    bad = run_cli("similar", str(QUERY_ID), "--expand", "-1", env=env, cwd=cwd, check=False)
    assert bad.returncode != 0 and "expand must be 0..20" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_similar_command_one_line_errors(searchable):
    env, cwd = searchable["env"], searchable["folder"]
    for args, message in ((["similar", "7", "--filter", "era; drop table x=1"], "unknown filter"),
                          (["similar", "7", "--filter", "nonsense"], "name=value"),
                          (["similar", "99999999"], "no embedding"),
                          (["similar"], "give an artwork ID or --image"),
                          (["similar", "7", "--by", "shape"], "--by")):
        result = run_cli(*args, env=env, cwd=cwd, check=False)
        assert result.returncode != 0 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_similar_command_writes_a_contact_sheet(searchable):
    from PIL import Image

    out = searchable["folder"] / "sheet.png"
    run_cli("similar", str(QUERY_ID), "-k", "7", "--sheet", str(out), env=searchable["env"],
            cwd=searchable["folder"])
    sheet = Image.open(out)
    assert sheet.size == (5 * 220, 2 * (220 + 34))
    assert sheet.convert("RGB").getpixel((110, 110)) != (255, 255, 255)   # the query picture is drawn


def test_grant_read_gives_a_role_select_only(searchable, fresh):
    role = "web_" + uuid.uuid4().hex[:6]
    with fresh.connect() as connection:
        connection.execute(text(f'create role "{role}" login'))
        connection.commit()
    run_cli("grant-read", role, env=searchable["env"], cwd=searchable["folder"])
    with fresh.connect() as connection:
        connection.execute(text(f'set role "{role}"'))
        assert len(run_recipe(connection, "more-like-artwork", artwork_id=QUERY_ID, k=3)) == 3
        with pytest.raises(Exception, match="permission denied"):
            connection.execute(text("delete from artvec.embeddings"))
        connection.rollback()
    bad = run_cli("grant-read", "nobody; drop schema artvec", env=searchable["env"], cwd=searchable["folder"],
                  check=False)
    assert bad.returncode != 0 and "not a valid SQL identifier" in bad.stderr
    missing = run_cli("grant-read", "no_such_role", env=searchable["env"], cwd=searchable["folder"], check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_similar_command_by_uploaded_picture(searchable):
    picture = searchable["folder"] / "pictures" / "p1.png"
    rows = json.loads(run_cli("similar", "--image", str(picture), "--by", "colour", "-k", "3", "--json",
                              env=searchable["env"], cwd=searchable["folder"]).stdout)
    assert len(rows) == 3 and [row["distance"] for row in rows] == sorted(row["distance"] for row in rows)
