"""`artvec evaluate` on large stores: the command's wall time and peak memory at several store sizes.

    .venv/bin/python benchmarks/evaluate.py                          # 25k and 100k rows, embedded server
    .venv/bin/python benchmarks/evaluate.py --rows 5000 --label era  # a quick look, the large-label case
    .venv/bin/python benchmarks/evaluate.py --database-url postgresql://...   # a server of your own
    .venv/bin/python benchmarks/evaluate.py --against                # also a second configuration, --against it

Each size gets a fresh database with artvec's schema at the real dimensionality, filled with random
unit vectors clustered by artist (500 artists, about n/500 pictures each, each with its own centres in
the style and colour parts) and the facets ``artist`` and ``era`` (20 eras of about 4.5 % of the rows
each and three small ones, spread at random: the large-label case). Then
``artvec evaluate --label LABEL --duplicates 0 --json`` runs as a child process, as a user runs it;
its wall time and its peak resident memory (the child's own ``ru_maxrss``) are what is measured, and
its figures are printed so that runs of two versions can be compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import math
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from artvec import db, store  # noqa: E402
from artvec.config import Settings  # noqa: E402
from search import drop_database, era_values, fresh_database, server_for, unit_rows  # noqa: E402

ARTISTS = 500
AGAINST_BASIS = "clipart-v4"   # --against: only its config_id matters here


def around(rng: np.random.Generator, centres: np.ndarray, spread: float) -> np.ndarray:
    """Unit vectors near ``centres`` (one row each), with isotropic noise of norm about ``spread``."""
    noise = rng.standard_normal(centres.shape).astype(np.float32) * (spread / math.sqrt(centres.shape[1]))
    return unit_rows(centres + noise)


def load(url: str, config, table: str, n: int, seed: int, spread: float) -> None:
    """n rows of ``config`` whose parts cluster by artist (so that the figures are neither 0 nor 1), with both
    facets. Two configurations loaded with the same seed hold the same pictures, with the same noise scaled by
    their ``spread``."""
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    rng = np.random.default_rng(seed)
    eras = era_values(rng, n)
    artists = rng.integers(0, ARTISTS, n)
    style_centres = unit_rows(rng.standard_normal((ARTISTS, config.style_dim)))
    colour_centres = unit_rows(rng.standard_normal((ARTISTS, config.colour_dim)))
    copy_sql = (f"copy {table} (artwork_id, config_id, embedding, style, colour, image_sha256, image_location, "
                "facets) from stdin with (format binary)")
    with psycopg.connect(db.libpq_url(url)) as connection:
        register_vector(connection)
        for begin in range(0, n, 5000):
            rows = np.arange(begin, min(begin + 5000, n))
            style = around(rng, style_centres[artists[rows]], spread)
            colour = around(rng, colour_centres[artists[rows]], spread)
            combined = np.hstack([style * config.style_weight, colour * config.colour_weight])
            with connection.cursor().copy(copy_sql) as copy:
                copy.set_types(["int8", "text", "vector", "vector", "vector", "bytea", "text", "jsonb"])
                for i, row in enumerate(rows):
                    copy.write_row([int(row) + 1, config.config_id, combined[i], style[i], colour[i], b"\0" * 32,
                                    f"{row + 1}.jpg", Jsonb({"era": eras[row], "artist": f"a{artists[row]}"})])
        connection.commit()


def artvec_command() -> list[str]:
    beside = Path(sys.executable).with_name("artvec")
    found = str(beside) if beside.exists() else shutil.which("artvec")
    if found is None:
        raise SystemExit("the artvec command is not installed (pip install -e .)")
    return [found]


def run_child(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one child process, reaped with ``wait4`` for its own usage."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {err.read().strip()[-500:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def measure(server_url: str, n: int, args) -> dict:
    url = fresh_database(server_url, f"artvec_bench_eval_{n}_{uuid.uuid4().hex[:6]}")
    settings = Settings.load(overrides={"database.url": url})
    store.init(settings)
    config = settings.embedding_config()
    configs = [(config, args.spread)]
    if args.against:        # a second configuration of the same pictures, a little tighter by artist
        configs.append((dataclasses.replace(config, whitening=AGAINST_BASIS), args.spread * 0.9))
    engine = db.connect(url)
    with engine.begin() as connection:
        tables = [store.register_model(connection, c).table for c, _ in configs]
    engine.dispose()
    started = time.perf_counter()
    for (c, spread), table in zip(configs, tables):
        load(url, c, table, n, args.seed, spread)
    print(f"[{n:,} rows] loaded in {time.perf_counter() - started:.1f} s", flush=True)
    command = [*artvec_command(), "--database-url", url, "evaluate", "--label", args.label, "--duplicates", "0",
               "--sample", str(args.sample), "--json"]
    if args.against:
        command += ["--against", configs[1][0].config_id]
    wall, peak, out = run_child(command)
    report = json.loads(out)
    if not args.keep:
        drop_database(server_url, url)
    return {"rows": n, "wall": wall, "peak": peak, "overall": report["overall"], "queries": report["queries"],
            "against": report.get("against")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="25000,100000", help="store sizes, comma-separated")
    parser.add_argument("--label", default="artist", choices=["artist", "era"])
    parser.add_argument("--sample", type=int, default=2000, help="queries (artvec evaluate --sample)")
    parser.add_argument("--database-url", help="a server of your own (a database is created on it per size)")
    parser.add_argument("--home", help="ARTVEC_HOME for the embedded server (default: a new temp folder)")
    parser.add_argument("--shared-buffers", default="", help="shared_buffers for the embedded server ('' keeps 128MB)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--spread", type=float, default=4.0, help="noise about each artist's centre (norm)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--against", action="store_true",
                        help=f"a second configuration of the same pictures (basis {AGAINST_BASIS}, a little tighter "
                             "by artist) and evaluate --against it: both sets of vectors in memory")
    args = parser.parse_args()
    server_url = server_for(args)
    rows = []
    for n in args.rows.split(","):
        rows.append(measure(server_url, int(n), args))
        r = rows[-1]
        print(f"[{r['rows']:,} rows] evaluate --label {args.label}: {r['wall']:.1f} s, peak {r['peak']:,.0f} MiB; "
              f"{json.dumps(r['overall'])}", flush=True)
    print(f"\n{'rows':>10} {'queries':>8} {'wall s':>8} {'peak MiB':>9}   figures (--label {args.label})")
    for r in rows:
        o = r["overall"]
        figures = f"P@10 {o['p@10']:.4f}  mAP@R {o['map@r']:.4f}  NN {o['nn']:.4f}"
        if r["against"]:
            diff = r["against"]["figures"]["map@r"]
            figures += f"  against: mAP@R {diff['difference']:+.4f} ± {diff['interval']:.4f}"
        print(f"{r['rows']:>10,} {r['queries']:>8,} {r['wall']:>8.1f} {r['peak']:>9,.0f}   {figures}")


if __name__ == "__main__":
    main()
