"""``artvec map``: the collection laid out in 2D so that alike pictures sit together.

The layout is t-SNE over the same PCA projection the groups are made in (benchmarks/clusters.py
measures it against PCA's two first axes: t-SNE keeps far more of each picture's neighbours).
t-SNE is fitted on at most ``LAYOUT_SAMPLE`` pictures — a random sample plus each group's most
typical ones; every other picture is placed at the mean position of its three nearest sampled
pictures in the projection. Positions (0..1, y downwards) are stored in
``artvec.cluster_members.x/y``. The picture shows a dot for every picture in its group's colour
and, on a grid of cells, the most typical picture of each occupied cell as a framed thumbnail,
so 1,000 or 100,000 pictures stay readable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
from sqlalchemy import text

from .clusters import ClusterError, Scope, check_schema, ensure_run, fit_pca, make_scope, stream_vectors

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings

LAYOUT_SAMPLE = 3_000
TYPICAL_IN_SAMPLE = 10
CANVAS = 2_000
MARGIN = 90
THUMB_SIZES = (64, 160)         # thumbnails shrink from 160 px (a few dozen pictures) to 64 px
LABEL_FONT_SIZE = 28
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
           "#469990", "#800000", "#808000", "#000075", "#bfef45", "#fabed4", "#ffd8b1", "#aaffc3",
           "#dcbeff", "#a9a9a9", "#ffe119", "#000000"]
Say = Callable[[str], None]


def layout(reduced: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2D positions of the rows of a PCA projection, scaled to 0..1."""
    if method == "pca" or len(reduced) < 5:
        points = reduced[:, :2] if reduced.shape[1] >= 2 else np.c_[reduced[:, :1], np.zeros(len(reduced))]
    else:
        from sklearn.manifold import TSNE

        points = TSNE(n_components=2, perplexity=min(30.0, (len(reduced) - 1) / 3), init="pca",
                      random_state=seed).fit_transform(reduced)
    return scale_unit(np.asarray(points, dtype=np.float64))


def scale_unit(points: np.ndarray) -> np.ndarray:
    low, high = points.min(0), points.max(0)
    span = np.where(high - low > 0, high - low, 1.0)
    return (points - low) / span.max()


def members(connection: "Connection", run_id: int) -> dict[str, list]:
    rows = connection.execute(text("""
        select m.artwork_id, m.cluster, m.rank, e.image_location
        from artvec.cluster_members m join artvec.embeddings e on e.artwork_id = m.artwork_id
        where m.run_id = :run_id order by m.artwork_id"""), {"run_id": run_id}).all()
    return {"ids": [row[0] for row in rows], "cluster": [row[1] for row in rows],
            "rank": [row[2] for row in rows], "location": [row[3] for row in rows]}


def layout_sample(found: dict[str, list], seed: int) -> list:
    """A random sample of at most LAYOUT_SAMPLE pictures, always with each group's most typical ones."""
    ids = found["ids"]
    if len(ids) <= LAYOUT_SAMPLE:
        return list(ids)
    typical = {artwork_id for artwork_id, rank in zip(ids, found["rank"]) if rank <= TYPICAL_IN_SAMPLE}
    rest = [artwork_id for artwork_id in ids if artwork_id not in typical]
    rng = np.random.default_rng(seed)
    extra = rng.choice(len(rest), max(0, LAYOUT_SAMPLE - len(typical)), replace=False)
    return sorted(typical | {rest[index] for index in extra}, key=ids.index if len(ids) < 10_000 else None)


def positions(connection: "Connection", scope: Scope, sample_ids: list, all_ids: list, method: str,
              seed: int) -> dict[Any, tuple[float, float]]:
    from sklearn.neighbors import NearestNeighbors

    sampled_ids, sample = read_ids(connection, scope, sample_ids)
    pca = fit_pca(sample, seed)
    reduced = pca.transform(sample).astype(np.float32)
    placed = dict(zip(sampled_ids, map(tuple, layout(reduced, method, seed))))
    if len(placed) == len(all_ids):
        return placed
    sampled_points = np.array([placed[artwork_id] for artwork_id in sampled_ids])
    neighbours = NearestNeighbors(n_neighbors=min(3, len(sampled_ids))).fit(reduced)
    for chunk_ids, matrix in stream_vectors(connection, scope):
        todo = [index for index, artwork_id in enumerate(chunk_ids) if artwork_id not in placed]
        if not todo:
            continue
        _, nearest = neighbours.kneighbors(pca.transform(matrix[todo]))
        for index, around in zip(todo, nearest):
            placed[chunk_ids[index]] = tuple(sampled_points[around].mean(0))
    return placed


def read_ids(connection: "Connection", scope: Scope, ids: list) -> tuple[list, np.ndarray]:
    from .clusters import read_all

    return read_all(stream_vectors(connection, scope, ids=ids))


def store_positions(connection: "Connection", run_id: int, placed: dict, method: str) -> None:
    connection.execute(text("create temporary table map_positions (artwork_id text, x real, y real) on commit drop"))
    raw = connection.connection.driver_connection
    with raw.cursor().copy("copy map_positions (artwork_id, x, y) from stdin") as copy:
        for artwork_id, (x, y) in placed.items():
            copy.write_row((str(artwork_id), float(x), float(y)))
    connection.execute(text("""
        update artvec.cluster_members m set x = p.x, y = p.y
        from map_positions p where m.run_id = :run_id and m.artwork_id::text = p.artwork_id"""), {"run_id": run_id})
    connection.execute(text("""
        update artvec.cluster_runs
        set parameters = parameters || jsonb_build_object('map', jsonb_build_object('layout', cast(:layout as text), 'at', now()))
        where run_id = :run_id"""), {"run_id": run_id, "layout": method})


# ---- drawing -------------------------------------------------------------------------------------

def colour_of(cluster: int) -> str:
    return PALETTE[(cluster - 1) % len(PALETTE)]


def canvas_point(x: float, y: float, extent: float) -> tuple[int, int]:
    inner = CANVAS - 2 * MARGIN
    return int(MARGIN + x / extent * inner), int(MARGIN + y / extent * inner)


def thumbnail_size(pictures: int) -> int:
    return int(np.clip(0.6 * CANVAS / np.sqrt(max(pictures, 1)), *THUMB_SIZES))


def thumbnail_choices(found: dict[str, list], placed: dict, extent: float, cell_size: int) -> dict[tuple[int, int], int]:
    """Grid cell -> index of the most typical picture in it (lowest rank, then id order)."""
    chosen: dict[tuple[int, int], int] = {}
    for index, artwork_id in enumerate(found["ids"]):
        px, py = canvas_point(*placed[artwork_id], extent)
        cell = (px // cell_size, py // cell_size)
        best = chosen.get(cell)
        if best is None or (found["rank"][index] or 1 << 30) < (found["rank"][best] or 1 << 30):
            chosen[cell] = index
    return chosen


def draw_map(found: dict[str, list], placed: dict, image_root: str | None, out: Path) -> int:
    from PIL import Image, ImageDraw

    from .sheet import open_picture, resolve_location

    extent = max(max(max(point) for point in placed.values()), 1e-9)
    image = Image.new("RGB", (CANVAS, CANVAS), "white")
    draw = ImageDraw.Draw(image)
    for artwork_id, cluster in zip(found["ids"], found["cluster"]):
        px, py = canvas_point(*placed[artwork_id], extent)
        draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour_of(cluster))
    size = thumbnail_size(len(found["ids"]))
    chosen = thumbnail_choices(found, placed, extent, size + 8)
    for index in chosen.values():
        picture = open_picture(resolve_location(found["location"][index], image_root))
        px, py = canvas_point(*placed[found["ids"][index]], extent)
        box = (px - size // 2 - 4, py - size // 2 - 4, px + size // 2 + 4, py + size // 2 + 4)
        draw.rectangle(box, fill=colour_of(found["cluster"][index]))
        if picture is not None:
            picture.thumbnail((size, size))
            image.paste(picture, (px - picture.width // 2, py - picture.height // 2))
    draw_labels(draw, found, placed, extent)
    try:
        image.save(out, format="PNG")
    except OSError as error:
        raise ClusterError(f"cannot write the map {out}: {error.strerror or error}") from None
    return len(chosen)


def draw_labels(draw, found: dict[str, list], placed: dict, extent: float) -> None:
    from PIL import ImageFont

    font = ImageFont.load_default(size=LABEL_FONT_SIZE)
    by_group: dict[int, list] = {}
    for artwork_id, cluster in zip(found["ids"], found["cluster"]):
        by_group.setdefault(cluster, []).append(placed[artwork_id])
    for cluster, points in sorted(by_group.items()):
        px, py = canvas_point(*np.median(np.array(points), 0), extent)
        label = f" group {cluster} ({len(points)}) "
        left, top, right, bottom = draw.textbbox((px, py), label, anchor="mm", font=font)
        draw.rectangle((left - 4, top - 4, right + 4, bottom + 4), fill="white", outline=colour_of(cluster), width=4)
        draw.text((px, py), label, fill="black", anchor="mm", font=font)


def build_map(settings: "Settings", out: Path, by: str = "both", filters: Mapping[str, Any] | None = None,
              method: str = "tsne", seed: int = 0, say: Say = lambda message: None,
              engine: "Engine | None" = None) -> dict:
    """Lay out the scope's current clustering run (made now if there is none), store the positions,
    draw the map at ``out``."""
    from . import store

    if method not in ("tsne", "pca"):
        raise ClusterError(f"the map's layout is tsne or pca, not {method!r}")
    out = Path(out)
    if not out.parent.is_dir():
        raise ClusterError(f"cannot write the map {out}: folder {out.parent} does not exist")
    with store.engine_in_use(settings, engine) as engine:
        with engine.begin() as connection:
            check_schema(connection)
            scope = make_scope(connection, settings, by, filters)
            run_id, _, _ = ensure_run(connection, scope, say=say)
            found = members(connection, run_id)
            started = time.perf_counter()
            placed = positions(connection, scope, layout_sample(found, seed), found["ids"], method, seed)
            store_positions(connection, run_id, placed, method)
            say(f"map: {len(placed)} pictures laid out by {method} in {time.perf_counter() - started:.1f} s")
        thumbnails = draw_map(found, placed, settings.get("catalogue.image_root"), out)
    return {"run_id": run_id, "pictures": len(placed), "thumbnails": thumbnails,
            "groups": len(set(found["cluster"])), "layout": method, "out": str(out)}
