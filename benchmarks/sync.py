"""Sync benchmark: no-op sync over a large catalogue, bulk upsert rate, end-to-end vs bare embedding.

    python benchmarks/sync.py                      # embedded server in a temporary folder
    python benchmarks/sync.py --rows 100000 --pictures 32 --database-url postgresql://...

Prints a table. Targets: no-op sync over 100k rows < 15 s; upsert >= 5,000 rows/s of full-size
vectors; sync pictures/s / bare embedding pictures/s >= 0.85 (CPU), measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from artvec import db, store  # noqa: E402
from artvec.config import Settings  # noqa: E402
from artvec.sources import SourceOptions, stamp  # noqa: E402
from artvec.sync import SyncOptions, sync  # noqa: E402


def make_jpegs(folder: Path, count: int, size=(3000, 2000)) -> list[Path]:
    import skimage.data

    sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        base = Image.fromarray(sources[index % len(sources)]).resize(size, Image.BILINEAR)
        noisy = np.asarray(base, dtype=np.int16) + rng.integers(-12, 12, size=(size[1], size[0], 3))
        path = folder / f"p{index:05d}.jpg"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def prepare(engine, url: str, settings: Settings, rows: int, image: Path) -> None:
    """A catalogue of `rows` rows and a store already in step with it (as after a sync)."""
    config = settings.embedding_config()
    with engine.begin() as connection:
        connection.execute(text("drop table if exists public.bench_catalogue"))
        connection.execute(text("create table public.bench_catalogue (id bigint primary key, image text, era text)"))
        connection.execute(text("""insert into public.bench_catalogue
            select i, :image, (array['1860s','1880s','1900s'])[1 + i % 3] from generate_series(1, :rows) i"""),
            {"image": str(image), "rows": rows})
        table = store.register_model(connection, config).table
        connection.execute(text(f"truncate {table}, artvec.failures"))
    writer = store.BatchWriter(url, "bigint", table)
    rng = np.random.default_rng(1)
    image_stamp = stamp(str(image), SourceOptions())
    sha = bytes(32)
    for start in range(1, rows + 1, 5000):
        batch = []
        for artwork_id in range(start, min(start + 5000, rows + 1)):
            batch.append(row(artwork_id, config, rng, sha, str(image), image_stamp,
                             {"era": ["1860s", "1880s", "1900s"][artwork_id % 3]}))
        writer.write(batch, [], [])
    writer.close()


def row(artwork_id: int, config, rng, sha: bytes, image: str, image_stamp, facets: dict) -> dict:
    """One embedded row as the sync writes it (random vectors of the configuration's sizes)."""
    return {"artwork_id": artwork_id, "config_id": config.config_id,
            "embedding": rng.random(config.dim, dtype=np.float32),
            "style": rng.random(config.style_dim, dtype=np.float32),
            "colour": rng.random(config.colour_dim, dtype=np.float32),
            "copy": rng.random(config.copy_dim, dtype=np.float32) if config.copy_dim else None, "image_sha256": sha,
            "image_location": image, "source_stamp": image_stamp, "source_updated_at": None, "facets": facets}


def upsert_rates(url: str, settings: Settings, rows: int, batch: int = 500) -> tuple[float, float]:
    """Rows/s writing new rows (straight COPY), then rewriting the same rows (staging + upsert)."""
    config = settings.embedding_config()
    rng = np.random.default_rng(2)
    engine = db.connect(url)
    with engine.begin() as connection:
        table = store.register_model(connection, config).table
    engine.dispose()
    writer = store.BatchWriter(url, "bigint", table)
    payload = [row(10_000_000 + i, config, rng, bytes(32), "x.jpg", None, {"era": "1860s"}) for i in range(rows)]
    rates = []
    for new_ids in ({item["artwork_id"] for item in payload}, set()):
        started = time.perf_counter()
        for start in range(0, rows, batch):
            writer.write(payload[start:start + batch], [], [], new_ids)
        rates.append(rows / (time.perf_counter() - started))
    writer.connection.execute(f"delete from {table} where artwork_id >= 10000000")
    writer.connection.commit()
    writer.close()
    return rates[0], rates[1]


def end_to_end(engine, settings: Settings, pictures: list[Path]) -> tuple[float, float]:
    from artvec.embedding import Embedder

    with engine.begin() as connection:
        connection.execute(text("drop table if exists public.bench_pictures"))
        connection.execute(text("create table public.bench_pictures (id bigint primary key, image text)"))
        for index, path in enumerate(pictures):
            connection.execute(text("insert into public.bench_pictures values (:i, :p)"), {"i": index, "p": str(path)})
        table = store.register_model(connection, settings.embedding_config()).table
        connection.execute(text(f"truncate {table}, artvec.failures"))
    embedder = Embedder(settings.embedding_config())
    list(embedder.embed_stream(((p, p) for p in pictures[:4]), 8))        # warm-up
    started = time.perf_counter()
    results = list(embedder.embed_stream(((p, p) for p in pictures), 8))
    bare = len(results) / (time.perf_counter() - started)
    embedder.close()
    os.environ["ARTVEC_CATALOGUE_TABLE"] = "public.bench_pictures"
    report = sync(Settings.load(), SyncOptions(batch_size=8))
    assert report.embedded == len(pictures), report
    return bare, report.embedded / report.embed_seconds, report.embedded / report.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="catalogue rows for the no-op sync")
    parser.add_argument("--upsert-rows", type=int, default=10_000)
    parser.add_argument("--pictures", type=int, default=32, help="3000x2000 JPEGs for end-to-end")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="artvec-bench-"))
    os.environ["ARTVEC_HOME"] = str(work)
    if args.database_url:
        os.environ["ARTVEC_DATABASE_URL"] = args.database_url
    try:
        settings = Settings.load()
        store.init(settings)
        url = db.database_url(settings)
        engine = db.connect(url)
        pictures = make_jpegs(work, args.pictures)
        prepare(engine, url, settings, args.rows, pictures[0])
        os.environ.update(ARTVEC_CATALOGUE_TABLE="public.bench_catalogue", ARTVEC_CATALOGUE_FACETS="era")
        noop = []
        for _ in range(args.repeats):
            report = sync(Settings.load(), SyncOptions())
            assert report.embedded == 0 and report.unchanged == args.rows, report
            noop.append(report.seconds)
        rates = [upsert_rates(url, settings, args.upsert_rows) for _ in range(args.repeats)]
        os.environ["ARTVEC_CATALOGUE_FACETS"] = ""
        runs = [end_to_end(engine, Settings.load(), pictures) for _ in range(args.repeats)]
        bare = statistics.median(r[0] for r in runs)
        synced = statistics.median(r[1] for r in runs)
        wall = statistics.median(r[2] for r in runs)
        ratio = statistics.median(r[1] / r[0] for r in runs)
        config = settings.embedding_config()
        print(f"\nartvec sync benchmark ({args.repeats} repeats, medians; {os.cpu_count()} cores; "
              f"config {config.config_id}, {config.dim} dims)\n")
        print("| measure | value | target |\n|---|---|---|")
        print(f"| no-op sync over {args.rows:,} rows | {statistics.median(noop):.2f} s | < 15 s |")
        sizes = f"{config.dim}+{config.style_dim}+{config.colour_dim} dims"
        print(f"| bulk write of new rows ({sizes}, COPY) | {statistics.median(r[0] for r in rates):,.0f} rows/s "
              f"| >= 5,000 rows/s |")
        print(f"| bulk upsert over existing rows ({sizes}, staging + ON CONFLICT) "
              f"| {statistics.median(r[1] for r in rates):,.0f} rows/s | >= 5,000 rows/s |")
        print(f"| bare embedding, {args.pictures} JPEGs 3000x2000 | {bare:.2f} pictures/s | |")
        print(f"| end-to-end sync, same JPEGs, model ready to last write | {synced:.2f} pictures/s | |")
        print(f"| end-to-end sync, whole command incl. planning and model load | {wall:.2f} pictures/s | |")
        print(f"| sync / bare (per repeat, median) | {ratio:.3f} | >= 0.85 |")
        engine.dispose()
    finally:
        db.stop_embedded(work / db.EMBEDDED_DIR)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
