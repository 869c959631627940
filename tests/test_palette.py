"""Search by palette: the Python and SQL palette vectors agree, the docs/sql.md recipe runs verbatim
and agrees with `artvec similar --colours`, on pictures synced by the real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from artvec import store
from artvec.config import Settings
from artvec.embedding import colour_histogram
from artvec.palette import PaletteError, palette_vector
from artvec.sync import SyncOptions, sync
from helpers import run_cli
from test_search import recipes

BROWN, WHEAT, NAVY = (0x8B, 0x45, 0x13), (0xF5, 0xDE, 0xB3), (0x1B, 0x2A, 0x6B)
PICTURES = {   # id: (colour of the top share, share, colour of the rest)
    1: (BROWN, 0.6, WHEAT), 2: (NAVY, 1.0, NAVY), 3: (WHEAT, 0.9, NAVY), 4: (BROWN, 0.2, NAVY),
    5: ((200, 30, 30), 0.5, (30, 160, 60)), 6: (BROWN, 1.0, BROWN),
}


def block_picture(top, share, rest, size=96) -> Image.Image:
    pixels = np.empty((size, size, 3), np.uint8)
    cut = round(size * share)
    pixels[:cut], pixels[cut:] = top, rest
    return Image.fromarray(pixels)


@pytest.fixture
def palette_store(env, engine, tmp_path, monkeypatch):
    root = tmp_path / "images"
    root.mkdir()
    with engine.begin() as connection:
        connection.execute(text("create table public.artworks (id bigint primary key, image text, era text)"))
        for artwork_id, (top, share, rest) in PICTURES.items():
            block_picture(top, share, rest).save(root / f"{artwork_id}.png")
            connection.execute(text("insert into public.artworks values (:i, :p, :e)"),
                               {"i": artwork_id, "p": f"{artwork_id}.png", "e": "old" if artwork_id % 2 else "new"})
    env.update(ARTVEC_EMBEDDING_IMAGE_SIZE="64", ARTVEC_CATALOGUE_TABLE="public.artworks",
               ARTVEC_CATALOGUE_FACETS="era", ARTVEC_CATALOGUE_IMAGE_ROOT=str(root))
    for key, value in env.items():   # for Settings.load() in this process; undone after the test
        if key.startswith("ARTVEC_"):
            monkeypatch.setenv(key, value)
    settings = Settings.load()
    store.init(settings)
    report = sync(settings, SyncOptions(batch_size=8))
    assert report.embedded == len(PICTURES)
    return settings


def test_python_and_sql_palette_vectors_agree(env, engine):
    run_cli("init", env=env)
    cases = [("#8b4513:60,#f5deb3:40", 8), ("#8B4513:3, #f5deb3:2", 8), ("000000,ffffff,#7f7f7f:.5", 4),
             ("#ff0000:1.5", 1), ("#010203:0,#fefdfc:2", 16)]
    with engine.connect() as connection:
        for palette, bins in cases:
            stored = connection.execute(text("select artvec.palette_vector(:p, :b)::text"),
                                        {"p": palette, "b": bins}).scalar()
            assert np.allclose(json.loads(stored), palette_vector(palette, bins), atol=1e-6), (palette, bins)
    assert np.allclose(palette_vector("#8b4513:60,#f5deb3:40", 8), palette_vector("#8b4513:3,#f5deb3:2", 8))


def test_a_palette_is_the_histogram_of_a_picture_in_those_proportions():
    picture = np.asarray(block_picture(BROWN, 0.6, WHEAT, size=100))
    assert np.allclose(palette_vector("#8b4513:60,#f5deb3:40", 8), colour_histogram(picture, 8), atol=1e-6)
    assert np.linalg.norm(palette_vector("#123456:7,#abcdef:1", 8)) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("palette, message", [("", "at least one colour"), ("#12345", "is not #rrggbb"),
                                              ("#123456:-1", "is not #rrggbb"), ("#123456:0", "more than 0"),
                                              ("red", "is not #rrggbb")])
def test_bad_palettes_are_refused(palette, message):
    with pytest.raises(PaletteError, match=message):
        palette_vector(palette, 8)


def test_sql_palette_function_refuses_bad_input(env, engine):
    run_cli("init", env=env)
    with engine.connect() as connection:
        for palette, bins in (("#zzzzzz", 8), ("#123456:0", 8), ("#123456", 0)):
            with pytest.raises(Exception, match="palette_vector"):
                connection.execute(text("select artvec.palette_vector(:p, :b)"), {"p": palette, "b": bins})
            connection.rollback()


def test_palette_recipe_runs_verbatim_and_matches_the_cli(palette_store, env, engine):
    config_id = palette_store.embedding_config().config_id
    params = {"palette": "#8b4513:60,#f5deb3:40", "config_id": config_id, "k": 4}
    with engine.connect() as connection:
        rows = connection.execute(text(recipes()["by-palette"]), params).all()
    assert rows[0].artwork_id == 1 and rows[0].distance < 0.2 < rows[1].distance   # the brown-and-wheat picture
    assert [row.distance for row in rows] == sorted(row.distance for row in rows) and len(rows) == 4
    cli = json.loads(run_cli("similar", "--colours", params["palette"], "-k", "4", "--json", env=env).stdout)
    assert [row["artwork_id"] for row in cli] == [row.artwork_id for row in rows]
    assert [row["distance"] for row in cli] == pytest.approx([row.distance for row in rows], abs=1e-5)
    only_new = json.loads(run_cli("similar", "--colours", "#8b4513", "--filter", "era=new", "--json",
                                  env=env).stdout)
    assert [row["artwork_id"] for row in only_new][:1] == [6] and all(r["artwork_id"] % 2 == 0 for r in only_new)


def test_palette_recipe_can_use_the_colour_index(palette_store, env, engine):
    run_cli("index", env=env)
    config_id = palette_store.embedding_config().config_id
    with engine.connect() as connection:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):   # a small table: show the
            connection.execute(text(f"set {setting} = off"))                   # index can serve the query
        plan = connection.execute(text("explain " + recipes()["by-palette"]),
                                  {"palette": "#8b4513", "config_id": config_id, "k": 3}).scalars().all()
    assert "_colour_hnsw" in " ".join(plan)


def test_palette_cli_errors_are_one_line(palette_store, env):
    for args, message in ((["similar", "--colours", "#8b4513:x"], "is not #rrggbb"),
                          (["similar", "3", "--colours", "#8b4513"], "give no artwork ID"),
                          (["similar", "--colours", "#8b4513", "--filter", "nope=1"], "unknown filter")):
        result = run_cli(*args, env=env, check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
