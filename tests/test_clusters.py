"""Style groups against the real embedded PostgreSQL + pgvector: storage, later pictures joining
their nearest group, --refresh, the docs/sql.md cluster recipes verbatim, the map, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from artvec import clusters, db, store, tables
from artvec.config import Settings
from helpers import run_cli

REPO = Path(__file__).resolve().parent.parent
GROUPS = 4
PER_GROUP = 30
ARTISTS = ["Doré", "Crane", "Turner", "Seurat"]


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class Store:
    """Synthetic vectors at the configured sizes: GROUPS well-separated groups, one artist each."""

    def __init__(self, settings: Settings, url: str, folder: Path):
        self.settings, self.url, self.folder = settings, url, folder
        self.config = settings.embedding_config()
        rng = np.random.default_rng(5)
        self.style_centres = unit(rng.standard_normal((GROUPS, self.config.style_dim)))
        self.colour_centres = unit(rng.standard_normal((GROUPS, self.config.colour_dim)))
        self.rng = rng
        for group in range(GROUPS):
            Image.new("RGB", (32, 24), ["red", "green", "blue", "gray"][group]).save(folder / f"g{group}.png")

    def vectors(self, group: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        style = unit(self.style_centres[group] + 0.02 * self.rng.standard_normal((count, self.config.style_dim)))
        colour = unit(self.colour_centres[group] + 0.02 * self.rng.standard_normal((count, self.config.colour_dim)))
        return np.hstack([style, colour]), style, colour

    def add(self, first_id: int, group: int, count: int, era: str = "1860s") -> list[int]:
        import psycopg
        from pgvector.psycopg import register_vector
        from psycopg.types.json import Jsonb

        combined, style, colour = self.vectors(group, count)
        ids = list(range(first_id, first_id + count))
        with psycopg.connect(db.libpq_url(self.url)) as connection:
            register_vector(connection)
            table = tables.qualified(tables.table_name_for(self.config.config_id))  # the view takes no COPY
            with connection.cursor().copy(
                    f"copy {table} (artwork_id, config_id, embedding, style, colour, image_sha256, "
                    "image_location, facets) from stdin with (format binary)") as copy:
                copy.set_types(["int8", "text", "vector", "vector", "vector", "bytea", "text", "jsonb"])
                for index, artwork_id in enumerate(ids):
                    copy.write_row([artwork_id, self.config.config_id, combined[index], style[index], colour[index],
                                    b"\0" * 32, f"g{group}.png", Jsonb({"artist": ARTISTS[group], "era": era})])
        return ids

    def move(self, artwork_id: int, group: int) -> None:
        """Re-embed one picture as if its image changed to another group's manner."""
        import psycopg
        from pgvector.psycopg import register_vector

        combined, style, colour = self.vectors(group, 1)
        with psycopg.connect(db.libpq_url(self.url)) as connection:
            register_vector(connection)
            connection.execute("""update artvec.embeddings set embedding = %s, style = %s, colour = %s,
                                  updated_at = clock_timestamp() where artwork_id = %s""",
                               (combined[0], style[0], colour[0], artwork_id))


@pytest.fixture
def groups_store(env, settings, database_url, engine, tmp_path):
    settings.set("catalogue.facets", ["artist", "era"], "test")
    settings.set("catalogue.image_root", str(tmp_path), "test")
    store.init(settings)
    with engine.begin() as connection:
        store.register_model(connection, settings.embedding_config())
    synthetic = Store(settings, database_url, tmp_path)
    for group in range(GROUPS):
        synthetic.add(1 + group * PER_GROUP, group, PER_GROUP, era="1830s" if group < 2 else "1880s")
    env = {**env, "ARTVEC_CATALOGUE_FACETS": "artist,era", "ARTVEC_CATALOGUE_IMAGE_ROOT": str(tmp_path)}
    return synthetic, env


def truth(artwork_id: int) -> int:
    return (artwork_id - 1) // PER_GROUP


def membership(engine, run_id: int) -> dict[int, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(text("""
            select artwork_id, cluster, distance, rank, assigned_later from artvec.cluster_members
            where run_id = :run_id"""), {"run_id": run_id}).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_groups_are_found_and_stored_joinable(groups_store, settings, engine):
    found = clusters.clusters(settings)
    run = found["run"]
    assert run["k"] == GROUPS and run["parameters"]["k_chosen_by"] == "silhouette"
    assert run["config_id"] == settings.embedding_config().config_id and run["by"] == "both"
    assert set(map(int, run["parameters"]["silhouette"])) >= set(range(2, 11))
    members = membership(engine, run["run_id"])
    assert len(members) == GROUPS * PER_GROUP
    ids = sorted(members)
    assert clusters.agreement([truth(i) for i in ids], [members[i][0] for i in ids])["ari"] == 1.0
    with engine.connect() as connection:
        # the stored distance is the full-space distance to the stored centre
        worst = connection.execute(text("""
            select max(abs(m.distance - (e.embedding <-> c.centre)))
            from artvec.cluster_members m
            join artvec.embeddings e on e.artwork_id = m.artwork_id
            join artvec.clusters c on c.run_id = m.run_id and c.cluster = m.cluster""")).scalar()
        assert worst < 1e-3
        # and no other centre is nearer
        wrong = connection.execute(text("""
            select count(*) from artvec.cluster_members m
            join artvec.embeddings e on e.artwork_id = m.artwork_id
            join artvec.clusters c on c.run_id = m.run_id and c.cluster <> m.cluster
            where (e.embedding <-> c.centre) < m.distance - 1e-4""")).scalar()
        assert wrong == 0
        ranks = connection.execute(text("""
            select cluster, array_agg(rank order by distance, artwork_id) from artvec.cluster_members group by 1""")).all()
    for _, ordered in ranks:
        assert ordered == list(range(1, len(ordered) + 1))
    for entry in found["groups"]:
        assert entry["size"] == PER_GROUP and len(entry["typical"]) == 5
        assert [row["rank"] for row in entry["typical"]] == [1, 2, 3, 4, 5]
        assert entry["facets"]["artist"][0][1] == PER_GROUP          # one artist per group

    with engine.connect() as connection:
        stored = clusters.nmi_against_facet(connection, "artist")
    assert stored["nmi"] == pytest.approx(1.0) and stored["pictures"] == GROUPS * PER_GROUP
    again = clusters.clusters(settings)
    assert again["run"]["run_id"] == run["run_id"] and not again["made_now"]


def test_later_pictures_join_their_nearest_group_without_reclustering(groups_store, settings, engine):
    synthetic, _ = groups_store
    first = clusters.clusters(settings)
    run_id = first["run"]["run_id"]
    before = membership(engine, run_id)
    group_of = {truth(i): before[i][0] for i in before}
    with engine.connect() as connection:
        centres_before = connection.execute(text("select cluster, centre::text from artvec.clusters order by 1")).all()

    new_ids = synthetic.add(1000, 2, 3) + synthetic.add(2000, 0, 2)
    synthetic.move(5, 3)                                  # was group 0, now looks like group 3
    with engine.begin() as connection:
        connection.execute(text("delete from artvec.embeddings where artwork_id = 40"))

    second = clusters.clusters(settings)
    assert second["run"]["run_id"] == run_id and not second["made_now"]
    assert second["assigned"] == 6 and second["removed"] == 2        # 5 new + the moved one; moved + deleted
    after = membership(engine, run_id)
    assert 40 not in after and len(after) == GROUPS * PER_GROUP - 1 + 5
    assert [after[i][0] for i in new_ids] == [group_of[2]] * 3 + [group_of[0]] * 2
    assert after[5][0] == group_of[3] and after[5][3] is True
    assert all(after[i][3] for i in new_ids) and not any(after[i][3] for i in (1, 2, 100))
    with engine.connect() as connection:
        assert connection.execute(text("select cluster, centre::text from artvec.clusters order by 1")).all() == centres_before
        ranks = connection.execute(text("""
            select array_agg(rank order by distance, artwork_id) from artvec.cluster_members group by cluster""")).scalars()
        assert all(ordered == list(range(1, len(ordered) + 1)) for ordered in ranks)

    refreshed = clusters.clusters(settings, refresh=True)
    assert refreshed["made_now"] and refreshed["run"]["run_id"] > run_id
    with engine.connect() as connection:
        assert connection.execute(text("select array_agg(run_id) from artvec.cluster_runs")).scalar() == \
            [refreshed["run"]["run_id"]]
        assert connection.execute(text("select count(*) from artvec.cluster_members where assigned_later")).scalar() == 0


def test_by_part_filters_and_k(groups_store, settings, engine):
    by_style = clusters.clusters(settings, by="style", k=2)
    assert by_style["run"]["k"] == 2 and by_style["run"]["by"] == "style"
    assert by_style["run"]["parameters"]["k_chosen_by"] == "given"
    one_era = clusters.clusters(settings, filters={"era": ["1830s"]})
    assert one_era["run"]["pictures"] == 2 * PER_GROUP and one_era["run"]["k"] == 2
    assert one_era["run"]["filters"] == {"era": ["1830s"]}
    with engine.connect() as connection:
        parts = connection.execute(text("select part, k from artvec.cluster_runs order by run_id")).all()
        assert [tuple(row) for row in parts] == [("style", 2), ("embedding", 2)]
        style_width = connection.execute(text("""
            select vector_dims(centre) from artvec.clusters c join artvec.cluster_runs r using (run_id)
            where r.part = 'style' limit 1""")).scalar()
    assert style_width == settings.embedding_config().style_dim


# ---- the recipes of docs/sql.md, verbatim --------------------------------------------------

def cluster_recipes() -> dict[str, str]:
    blocks = re.findall(r"```sql\n(.*?)```", (REPO / "docs" / "sql.md").read_text(), re.S)
    named = {re.match(r"-- recipe: ([\w-]+)\n", block).group(1): block for block in blocks}
    return {name: block for name, block in named.items() if name.startswith("clusters-")}


def test_cluster_recipes_run_verbatim(groups_store, settings, engine, tmp_path):
    assert set(cluster_recipes()) == {"clusters-same-group", "clusters-typical", "clusters-by-artist",
                                      "clusters-by-era", "clusters-map"}
    from artvec import maps

    maps.build_map(settings, tmp_path / "map.png")
    recipes = cluster_recipes()
    with engine.connect() as connection:
        same = connection.execute(text(recipes["clusters-same-group"]), {"artwork_id": 33, "k": 10}).all()
        assert len(same) == 10 and all(truth(row.artwork_id) == truth(33) and row.artwork_id != 33 for row in same)
        assert [row.distance for row in same] == sorted(row.distance for row in same)
        exact = connection.execute(text("""
            select artwork_id from artvec.embeddings where artwork_id between 31 and 60 and artwork_id <> 33
            order by embedding <-> (select embedding from artvec.embeddings where artwork_id = 33) limit 10""")).scalars()
        assert [row.artwork_id for row in same] == list(exact)

        typical = connection.execute(text(recipes["clusters-typical"]), {"per_group": 3}).all()
        assert len(typical) == 3 * GROUPS and {row.rank for row in typical} == {1, 2, 3}

        by_artist = connection.execute(text(recipes["clusters-by-artist"])).all()
        assert sorted(row.artist for row in by_artist) == sorted(ARTISTS)
        assert all(row.pictures == PER_GROUP for row in by_artist)

        by_era = connection.execute(text(recipes["clusters-by-era"])).all()
        assert len(by_era) == GROUPS and {row.era for row in by_era} == {"1830s", "1880s"}

        placed = connection.execute(text(recipes["clusters-map"])).all()
    assert len(placed) == GROUPS * PER_GROUP
    assert all(0 <= row.x <= 1 and 0 <= row.y <= 1 for row in placed)
    centres = {}
    for row in placed:
        centres.setdefault(row.cluster, []).append((row.x, row.y))
    spread = max(np.ptp(np.array(points), 0).max() for points in centres.values())
    middles = np.array([np.mean(points, 0) for points in centres.values()])
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(middles) for b in middles[i + 1:]]
    assert min(gaps) > spread                                     # each group is a separate island on the map
    with Image.open(tmp_path / "map.png") as picture:
        assert picture.format == "PNG" and picture.width >= 1000


# ---- the CLI -------------------------------------------------------------------------------

def test_cli_clusters_json_sheets_and_errors(groups_store, tmp_path):
    _, env = groups_store
    listed = json.loads(run_cli("clusters", "--json", "--typical", "2", "--sheet", str(tmp_path / "sheets"),
                                env=env).stdout)
    assert listed["run"]["k"] == GROUPS and len(listed["groups"]) == GROUPS
    assert all(len(entry["typical"]) == 2 for entry in listed["groups"])
    sheets = sorted((tmp_path / "sheets").glob("group-*.png"))
    assert len(sheets) == GROUPS
    with Image.open(sheets[0]) as picture:
        assert picture.format == "PNG" and picture.width >= 400

    shown = run_cli("clusters", "--k", "3", env=env).stdout.splitlines()
    assert shown[0].startswith("3 groups of 120 pictures") and len(shown) == 4

    for args, message in [(("--by", "shape"), "--by must be one of both, style, colour"),
                          (("--filter", "school=x"), "unknown filter 'school'"),
                          (("--k", "0"), "--k must be between 1 and the number of pictures (120)"),
                          (("--filter", "era=1990s"), "clustering needs at least 2 pictures")]:
        result = run_cli("clusters", *args, env=env, check=False)
        assert result.returncode != 0 and "Traceback" not in result.stderr, args
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), (args, result.stderr)


def test_a_sample_is_read_from_the_active_configuration_table(groups_store, settings, engine):
    """Large stores are sampled (TABLESAMPLE), which the view artvec.embeddings does not take."""
    with engine.connect() as connection:
        scope = clusters.make_scope(connection, settings, "both", None)
        sampled = [ids for ids, _ in clusters.stream_vectors(connection, scope, sample_percent=100.0)]
        everything = [ids for ids, _ in clusters.stream_vectors(connection, scope)]
    assert sorted(i for chunk in sampled for i in chunk) == sorted(i for chunk in everything for i in chunk)
    assert sum(len(chunk) for chunk in everything) == GROUPS * PER_GROUP
