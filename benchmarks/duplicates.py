"""Duplicate-finding benchmark: `artvec duplicates` over a synthetic store of 100,000 rows.

    .venv/bin/python benchmarks/duplicates.py                  # 100,000 rows, embedded server
    .venv/bin/python benchmarks/duplicates.py --rows 10000     # a quick look

The store is benchmarks/search.py's (clustered random unit vectors at the real dimensions,
facets era and artist), plus planted duplicates: 1 % of the pictures get a copy with the same
SHA-256 and vectors (an exact duplicate), 1 % a near copy whose vectors are moved by a random
distance between 0.02 and 0.9 × the threshold (a rescan / re-encode), each part renormalised.
Only the combined HNSW index is built (artvec's m and ef_construction), as `artvec index` does. The
configuration is the default without its copy vector (``copy_vector = "none"``), so pairs are found by the
combined vector (1,902 dims): the default's copy vector, 512 dims, makes shorter distance computations.
Prints the time of the whole `find_duplicates` run (neighbour scan on 2 connections, exact
duplicates, grouping), the recall of the planted pairs and how many groups hold anything else.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from artvec import db, duplicates, indexes, store, tables  # noqa: E402
from artvec.config import Settings  # noqa: E402
from search import drop_database, fresh_database, load, server_for, unit_rows  # noqa: E402  (benchmarks/search.py)

SHARE = 0.01


def plant(url: str, settings: Settings, n: int, threshold: float, seed: int) -> dict[int, int]:
    """Exact and near copies of 1 % + 1 % of the rows; returns copy id -> original id."""
    import psycopg
    from pgvector.psycopg import register_vector

    config = settings.embedding_config()
    table = tables.qualified(tables.table_name_for(config.config_id))  # the view artvec.embeddings takes no COPY
    rng = np.random.default_rng(seed)
    originals = rng.choice(np.arange(1, n + 1), size=2 * round(n * SHARE), replace=False)
    planted = {}
    with psycopg.connect(db.libpq_url(url)) as connection:
        register_vector(connection)
        rows = connection.execute("select artwork_id, style, colour, facets from artvec.embeddings "
                                  "where artwork_id = any(%s)", [originals.tolist()]).fetchall()
        copy_sql = (f"copy {table} (artwork_id, config_id, embedding, style, colour, image_sha256, "
                    "image_location, facets) from stdin with (format binary)")
        with connection.cursor().copy(copy_sql) as copy:
            copy.set_types(["int8", "text", "vector", "vector", "vector", "bytea", "text", "jsonb"])
            for index, (artwork_id, style, colour, facets) in enumerate(rows):
                copy_id = n + index + 1
                exact = index % 2 == 0
                style, colour = style.to_numpy().astype(np.float32), colour.to_numpy().astype(np.float32)
                if not exact:
                    style, colour = nudge(rng, style, colour, rng.uniform(0.02, 0.9 * threshold))
                combined = np.hstack([style * config.style_weight, colour * config.colour_weight])
                sha = bytes(32) if exact else rng.bytes(32)
                from psycopg.types.json import Jsonb

                copy.write_row([copy_id, config.config_id, combined, style, colour, sha, f"{copy_id}.jpg",
                                Jsonb(facets)])
                planted[copy_id] = artwork_id
        # the exact copies share their original's SHA-256 (the synthetic rows all have zeros)
        connection.execute("update artvec.embeddings set image_sha256 = sha256(artwork_id::text::bytea) "
                           "where artwork_id <= %s", [n])
        for copy_id, original in planted.items():
            if (copy_id - n - 1) % 2 == 0:
                connection.execute("update artvec.embeddings set image_sha256 = sha256(%s::text::bytea) "
                                   "where artwork_id = %s", [str(original), copy_id])
        connection.commit()
        connection.autocommit = True
        connection.execute(f"vacuum analyze {table}")
    return planted


def nudge(rng, style: np.ndarray, colour: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Both parts moved so the combined vector ends about ``distance`` away."""
    moved = []
    for part in (style, colour):
        direction = unit_rows(rng.standard_normal((1, part.size)))[0]
        moved.append(unit_rows((part + direction * distance / np.sqrt(2))[None, :])[0])
    return moved[0], moved[1]


def build_index(settings: Settings, engine) -> float:
    from sqlalchemy import text

    m, ef_construction = indexes.index_options(settings)
    table = tables.qualified(tables.table_name_for(settings.embedding_config().config_id))
    started = time.perf_counter()
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text("set maintenance_work_mem = '2000MB'"))
        connection.execute(text(f"create index embeddings_embedding_hnsw on {table} using hnsw "
                                f"(embedding vector_l2_ops) with (m = {m}, ef_construction = {ef_construction})"))
    indexes.configure_database(engine, settings)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="find_duplicates runs (median reported)")
    parser.add_argument("--workers", type=int, default=2, help="connections for the neighbour scan")
    parser.add_argument("--database-url")
    parser.add_argument("--home")
    parser.add_argument("--shared-buffers", default="3GB")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    server_url = server_for(args)
    url = fresh_database(server_url, f"artvec_dups_{args.rows}_{uuid.uuid4().hex[:6]}")
    settings = Settings.load(overrides={"database.url": url, "catalogue.facets": ["era", "artist"],
                                        "embedding.copy_vector": "none"})
    store.init(settings)
    engine = db.connect(url)
    with engine.begin() as connection:
        configuration = store.register_model(connection, settings.embedding_config())
    started = time.perf_counter()
    load(url, settings, configuration.table, args.rows, args.seed)
    planted = plant(url, settings, args.rows, duplicates.DEFAULT_THRESHOLD, args.seed)
    print(f"loaded {args.rows:,} rows + {len(planted):,} planted copies in {time.perf_counter() - started:.0f} s",
          flush=True)
    build = build_index(settings, engine)
    print(f"HNSW index on embedding built in {build:.0f} s", flush=True)
    engine.dispose()
    timings, report = [], None
    for _ in range(args.runs):
        engine = db.connect(url)
        report = duplicates.find_duplicates(settings, workers=args.workers, engine=engine)
        engine.dispose()
        timings.append(report.seconds)
        print(f"  run: {report.seconds:.1f} s, {len(report.groups)} groups", flush=True)
    group_of = {m["artwork_id"]: g.number for g in report.groups for m in g.members}
    found = sum(1 for copy, original in planted.items() if group_of.get(copy) and group_of.get(copy) == group_of.get(original))
    planted_ids = set(planted) | set(planted.values())
    other = sum(1 for g in report.groups if any(m["artwork_id"] not in planted_ids for m in g.members))
    pictures = args.rows + len(planted)
    print("\n| pictures | threshold | workers | find_duplicates median s | recall of planted pairs | groups | groups with unplanted pictures |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {pictures:,} | {report.threshold} | {args.workers} | {statistics.median(timings):.1f} | "
          f"{found / len(planted):.4f} | {len(report.groups):,} | {other} |")
    if not args.keep:
        drop_database(server_url, url)


if __name__ == "__main__":
    main()
