"""Search benchmark: latency, recall@10 and rows returned, unfiltered and filtered, at two store sizes.

    .venv/bin/python benchmarks/search.py                       # 25k and 100k rows, embedded server
    .venv/bin/python benchmarks/search.py --rows 5000 --queries 20   # a quick look
    .venv/bin/python benchmarks/search.py --database-url postgresql://...  # a server of your own

Each size gets a fresh database with artvec's schema at the real dimensionality, filled
with clustered random unit vectors (style and colour parts clustered independently),
facet ``era`` at 10 %, 1 % and 0.1 % selectivity (spread at random over the clusters,
the hard case for post-filtering) and a catalogue table in ``public`` for the join path.
Queries are "more like artwork X" through ``artvec.search.similar`` on connections with
no session settings: the database defaults set by ``artvec index`` do the work; two rows ask
"more like this" as artvec's own searches do, the query averaged with its ``search.expand`` nearest
(unfiltered: one index scan, the query's nearest pictures ranked again by their distance to the average;
era at 1 %: the neighbours' scan in ``artvec.expanded``, then the filtered search). Exact answers come from
the same statement with ``SET LOCAL enable_indexscan = off``; for "more like this", from the exact expansion
(every picture compared, twice).
The embedded server gets ``--shared-buffers`` (3GB) so that the indexes are served from
PostgreSQL's buffers, as on a tuned server; ``--shared-buffers ''`` keeps the 128MB default.
"""

from __future__ import annotations

import argparse
import atexit
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from artvec import db, search, store  # noqa: E402
from artvec.config import Settings  # noqa: E402

SELECTIVITIES = {"p10": 0.10, "p1": 0.01, "p01": 0.001}
TARGETS = {"unfiltered": (15.0, 0.95), "filtered": (50.0, 0.95)}


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, n: int, dims: int, clusters: int, spread: float,
              rank: int | None = None) -> np.ndarray:
    """Unit vectors around random centres. Noise of full rank (isotropic: every dimension varies,
    the adversarial case) or of ``rank`` dims per cluster (like real embeddings, whose variation
    within a style lies along far fewer directions than the vector has)."""
    centres = unit_rows(rng.standard_normal((clusters, dims)))
    labels = rng.integers(0, clusters, n)
    if rank is None:
        noise = rng.standard_normal((n, dims)).astype(np.float32) * (spread / math.sqrt(dims))
    else:
        bases = rng.standard_normal((clusters, rank, dims)).astype(np.float32) / math.sqrt(dims)
        weights = rng.standard_normal((n, rank)).astype(np.float32) * (spread / math.sqrt(rank))
        noise = np.einsum("nr,nrd->nd", weights, bases[labels])
    return unit_rows(centres[labels] + noise)


def era_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """p10 / p1 / p01 on 10 %, 1 %, 0.1 % of rows (exactly), the rest spread over other eras."""
    eras = np.array([f"e{i % 20}" for i in range(n)], dtype=object)
    order = rng.permutation(n)
    start = 0
    for name, share in SELECTIVITIES.items():
        count = max(1, round(n * share))
        eras[order[start:start + count]] = name
        start += count
    return eras


def load(url: str, settings: Settings, table: str, n: int, seed: int, rank: int | None = None) -> None:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    config = settings.embedding_config()
    rng = np.random.default_rng(seed)
    eras = era_values(rng, n)
    artists = rng.integers(0, 500, n)
    with psycopg.connect(db.libpq_url(url)) as connection:
        register_vector(connection)
        connection.execute("create table public.bench_catalogue (id bigint primary key, era text, artist text)")
        copy_sql = (f"copy {table} (artwork_id, config_id, embedding, style, colour, image_sha256, "
                    "image_location, facets) from stdin with (format binary)")
        chunk = 5000
        for begin in range(0, n, chunk):
            size = min(chunk, n - begin)
            style = clustered(rng, size, config.style_dim, 100, 0.8, rank)
            colour = clustered(rng, size, config.colour_dim, 60, 0.8, rank)
            combined = np.hstack([style * config.style_weight, colour * config.colour_weight])
            with connection.cursor().copy(copy_sql) as copy:
                copy.set_types(["int8", "text", "vector", "vector", "vector", "bytea", "text", "jsonb"])
                for i in range(size):
                    row_id = begin + i + 1
                    copy.write_row([row_id, config.config_id, combined[i], style[i], colour[i], b"\0" * 32,
                                    f"{row_id}.jpg", Jsonb({"era": eras[row_id - 1],
                                                            "artist": f"a{artists[row_id - 1]}"})])
            with connection.cursor().copy("copy public.bench_catalogue from stdin") as copy:
                for i in range(size):
                    row_id = begin + i + 1
                    copy.write_row([row_id, eras[row_id - 1], f"a{artists[row_id - 1]}"])
        connection.commit()
        connection.autocommit = True
        connection.execute(f"vacuum analyze {table}")
        connection.execute("vacuum analyze public.bench_catalogue")


def fresh_database(server_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(db.sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'drop database if exists "{name}" with (force)'))
        connection.execute(text(f'create database "{name}"'))
    engine.dispose()
    base, _, query = server_url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def run_queries(engine, settings: Settings, cases: dict, ids: list[int], k: int) -> list[dict]:
    results = []
    with engine.connect() as connection:
        for label, (filters, through, expand) in cases.items():
            latencies, recalls, returned = [], [], []
            plan = " ".join(search.explain(connection, search.similar(
                ids[0], k, filters=filters, through=through, settings=settings, expand=expand)))
            for artwork_id in ids:      # warm-up pass: a website's steady state has its index cached
                connection.execute(search.similar(artwork_id, k, filters=filters, through=through,
                                                  settings=settings, expand=expand)).all()
                connection.rollback()
            for artwork_id in ids:
                statement = search.similar(artwork_id, k, filters=filters, through=through, settings=settings,
                                           expand=expand)
                exact = exact_expanded(artwork_id, filters, expand, k) if expand else statement
                record(measure_one(connection, statement, k, exact), latencies, recalls, returned)
            results.append(summary(label, latencies, recalls, returned, plan))
    return results


def exact_expanded(artwork_id: int, filters: dict | None, expand: int, k: int):
    """The exact "more like this" answer, whatever form artvec's query takes (unfiltered it ranks the query's nearest
    pictures again): the query averaged with its ``expand`` nearest, then its k nearest that pass ``filters``."""
    from sqlalchemy import text

    era = "and e.facets->>'era' = :era" if filters else ""
    return text(f"""select e.artwork_id from artvec.embeddings e where e.artwork_id <> :id {era}
        order by e.embedding <-> (select artvec.expanded(embedding, :n, 'embedding', cast(artwork_id as text))
                                  from artvec.embeddings where artwork_id = :id), e.artwork_id
        limit :k""").bindparams(id=artwork_id, n=expand, k=k, **({"era": filters["era"]} if filters else {}))


def measure_one(connection, statement, k: int, exact_statement=None) -> tuple[float, float, int]:
    """(latency ms, recall@k against the exact answer, rows short of the exact answer)."""
    started = time.perf_counter()
    found = [row[0] for row in connection.execute(statement)]
    latency = (time.perf_counter() - started) * 1000
    connection.rollback()
    exact = exact_ids(connection, statement if exact_statement is None else exact_statement)
    return latency, len(set(found) & set(exact)) / max(1, min(k, len(exact))), len(exact) - len(found)


def record(measured: tuple, latencies: list, recalls: list, returned: list) -> None:
    for values, value in zip((latencies, recalls, returned), measured):
        values.append(value)


def exact_ids(connection, statement) -> list:
    from sqlalchemy import text

    with connection.begin():
        connection.execute(text("set local enable_indexscan = off"))
        return [row[0] for row in connection.execute(statement)]


def summary(label: str, latencies: list[float], recalls: list[float], missing: list[int], plan: str) -> dict:
    """``missing``: per query, rows the exact search returns (k, or all that match) minus rows returned."""
    ordered = sorted(latencies)
    kind = "hnsw" if "_hnsw" in plan else ("btree" if "_facet_" in plan else "seq")
    return {"query": label, "p50_ms": statistics.median(ordered),
            "p95_ms": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
            "recall@10": statistics.mean(recalls), "missing_max": max(missing), "plan": kind}


def query_cases() -> dict:
    """label -> (filters, through, expand): the plain search, filtered every way, and "more like this" as artvec
    searches it (the query averaged with its ``search.expand`` nearest first: two index scans)."""
    expand = Settings.load().get("search.expand")
    cases = {"unfiltered": (None, "facets", 0)}
    for name, share in SELECTIVITIES.items():
        cases[f"era {share:.1%} (facets)"] = ({"era": name}, "facets", 0)
    for name, share in SELECTIVITIES.items():
        cases[f"era {share:.1%} (join)"] = ({"era": name}, "catalogue", 0)
    cases[f"unfiltered, expanded ({expand})"] = (None, "facets", expand)
    cases[f"era 1.0% (facets), exp. ({expand})"] = ({"era": "p1"}, "facets", expand)
    cases["exclude artist (facets)"] = (None, "facets", 0)
    return cases


def measure(server_url: str, n: int, args) -> dict:
    url = fresh_database(server_url, f"artvec_bench_{n}_{uuid.uuid4().hex[:6]}")
    overrides = {"database.url": url, "catalogue.table": "public.bench_catalogue",
                 "catalogue.facets": ["era", "artist"], "index.m": args.m,
                 "index.ef_construction": args.ef_construction, "search.ef_search": args.ef_search,
                 "search.max_scan_tuples": args.max_scan_tuples}
    settings = Settings.load(overrides={key: value for key, value in overrides.items() if value is not None})
    store.init(settings)
    engine = db.connect(url)
    with engine.begin() as connection:
        configuration = store.register_model(connection, settings.embedding_config())
    started = time.perf_counter()
    load(url, settings, configuration.table, n, args.seed, args.noise_rank)
    print(f"[{n:,} rows] loaded in {time.perf_counter() - started:.1f} s", flush=True)
    built = search.create_indexes(settings, progress=lambda line: print(f"[{n:,} rows] {line}", flush=True),
                                  engine=engine)
    engine.dispose()
    engine = db.connect(url)              # new sessions: they get the database defaults
    rng = np.random.default_rng(args.seed + 1)
    ids = [int(i) for i in rng.integers(1, n + 1, args.queries)]
    cases = query_cases()
    results = run_queries(engine, settings, {k: v for k, v in cases.items() if not k.startswith("exclude")},
                          ids, args.k)
    results += run_excludes(engine, settings, ids, args.k)
    sizes = index_sizes(engine, configuration.table)
    engine.dispose()
    if not args.keep:
        drop_database(server_url, url)
    return {"rows": n, "results": results, "build": built, "sizes": sizes}


def run_excludes(engine, settings, ids, k) -> list[dict]:
    latencies, recalls, returned = [], [], []
    with engine.connect() as connection:
        plan = ""
        for artwork_id in ids:
            artist = connection.exec_driver_sql(
                "select facets->>'artist' from artvec.embeddings where artwork_id = %(id)s", {"id": artwork_id}).scalar()
            statement = search.similar(artwork_id, k, excludes={"artist": artist}, settings=settings)
            plan = plan or " ".join(search.explain(connection, statement))
            record(measure_one(connection, statement, k), latencies, recalls, returned)
    return [summary("excluding its artist", latencies, recalls, returned, plan)]


def index_sizes(engine, table: str) -> dict[str, int]:
    """Index sizes by kind (the configuration's table prefix left out) and the table's."""
    prefix = table.rpartition(".")[2] + "_"
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("""
            select c.relname, pg_relation_size(c.oid) from pg_index i join pg_class c on c.oid = i.indexrelid
            where i.indrelid = to_regclass(%(table)s)""", {"table": table}).all()
        size = connection.exec_driver_sql("select pg_total_relation_size(%(t)s) - pg_indexes_size(%(t)s)",
                                          {"t": table}).scalar()
    return {**{"embeddings_" + name.removeprefix(prefix): size for name, size in rows}, "table (with TOAST)": size}


def drop_database(server_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text

    name = url.partition("?")[0].rsplit("/", 1)[1]
    engine = create_engine(db.sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'drop database if exists "{name}" with (force)'))
    engine.dispose()


def print_results(measured: dict, k: int) -> None:
    print(f"\n## {measured['rows']:,} rows, k = {k}\n")
    print(f"| {'query':<26} | plan  | p50 ms | p95 ms | recall@10 | rows short | target |")
    print(f"|{'-' * 28}|-------|--------|--------|-----------|------------|--------|")
    for row in measured["results"]:
        limit_ms, limit_recall = TARGETS["unfiltered" if row["query"].startswith("unfiltered") else "filtered"]
        ok = row["p95_ms"] <= limit_ms and row["recall@10"] >= limit_recall and row["missing_max"] == 0
        print(f"| {row['query']:<26} | {row['plan']:<5} | {row['p50_ms']:6.2f} | {row['p95_ms']:6.2f} | "
              f"{row['recall@10']:9.3f} | {row['missing_max']:>10} | {'ok' if ok else 'MISS':<6} |")
    print("\n| index | build s | size MB |\n|---|---|---|")
    seconds = {"embeddings_" + item["index"].split("_", 2)[2]: item["seconds"] for item in measured["build"]}
    for name, size in measured["sizes"].items():
        print(f"| {name} | {seconds.get(name, 0.0):.1f} | {size / 1e6:.1f} |")


def project(small: dict, large: dict, target: int = 1_000_000) -> None:
    """Fit a·n^b through the two sizes (build time, p95) and a line (sizes); extrapolate."""
    def power(y0: float, y1: float) -> float:
        if y0 <= 0 or y1 <= 0:
            return y1 * target / large["rows"]
        b = math.log(y1 / y0) / math.log(large["rows"] / small["rows"])
        return y1 * (target / large["rows"]) ** b

    print(f"\n## projected to {target:,} rows (power law through {small['rows']:,} and {large['rows']:,})\n")
    build_small = sum(item["seconds"] for item in small["build"])
    build_large = sum(item["seconds"] for item in large["build"])
    print(f"- index build (all indexes, this machine): {power(build_small, build_large) / 60:.1f} min")
    total_small, total_large = sum(small["sizes"].values()), sum(large["sizes"].values())
    per_row = (total_large - total_small) / (large["rows"] - small["rows"])
    print(f"- table + indexes: {(total_large + per_row * (target - large['rows'])) / 1e9:.1f} GB "
          f"(HNSW on embedding alone: {large['sizes'].get('embeddings_embedding_hnsw', 0) * target / large['rows'] / 1e9:.1f} GB)")
    for row_small, row_large in zip(small["results"], large["results"]):
        print(f"- {row_large['query']}: p95 ≈ {power(row_small['p95_ms'], row_large['p95_ms']):.1f} ms")


def server_for(args) -> str:
    if args.database_url:
        return args.database_url
    home = Path(args.home or tempfile.mkdtemp(prefix="avb-", dir="/tmp"))
    os.environ["ARTVEC_HOME"] = str(home)
    url = db.start_embedded(home / db.EMBEDDED_DIR)
    if not args.home:
        stop_on_exit(home, remove=not getattr(args, "keep", False))
    if args.shared_buffers:
        url = with_shared_buffers(url, home / db.EMBEDDED_DIR, args.shared_buffers)
    return url


def stop_on_exit(home: Path, remove: bool) -> None:
    """When the benchmark ends, stop the embedded server it started in the temporary ``home`` (it would run on,
    holding its memory), and remove the folder unless its databases are kept."""
    def stop() -> None:
        db.stop_embedded(home / db.EMBEDDED_DIR)
        if remove:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept: the embedded server's data in {home} (ARTVEC_HOME={home} artvec db url)", flush=True)

    atexit.register(stop)


def with_shared_buffers(url: str, data_dir: Path, size: str) -> str:
    """Give the embedded server ``size`` of shared_buffers (PostgreSQL's default is 128 MB), restarted.

    An HNSW scan touches a few thousand index pages; when the index does not fit in
    shared_buffers every one is a buffer miss copied from the OS cache, 3-5x slower.
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(db.sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        current = connection.execute(text("select pg_size_bytes(current_setting('shared_buffers'))")).scalar()
        wanted = connection.execute(text("select pg_size_bytes(:size)"), {"size": size}).scalar()
        if current != wanted:
            connection.execute(text(f"alter system set shared_buffers = '{int(wanted) // 1024}kB'"))
    engine.dispose()
    if current != wanted:
        db.pg_ctl(data_dir, "restart")   # keeps the server's command line: the URL stays
    print(f"embedded server: shared_buffers = {size}", flush=True)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="25000,100000", help="store sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=50, help="queries per case")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--m", type=int, help="HNSW m (default: artvec's)")
    parser.add_argument("--ef-construction", type=int, help="HNSW ef_construction (default: artvec's)")
    parser.add_argument("--ef-search", type=int, help="hnsw.ef_search (default: artvec's)")
    parser.add_argument("--max-scan-tuples", type=int, help="hnsw.max_scan_tuples (default: artvec's)")
    parser.add_argument("--database-url", help="a server of your own (a database is created on it per size)")
    parser.add_argument("--home", help="ARTVEC_HOME for the embedded server (default: a new temp folder)")
    parser.add_argument("--shared-buffers", default="3GB",
                        help="shared_buffers for the embedded server (default 3GB: the 100k store's HNSW "
                             "indexes and table fit; '' keeps PostgreSQL's 128MB)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise-rank", type=int, default=None,
                        help="within-cluster variation along this many directions (default: all: isotropic)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = parser.parse_args()
    server_url = server_for(args)
    measured = []
    for n in args.rows.split(","):
        measured.append(measure(server_url, int(n), args))
        print_results(measured[-1], args.k)
    if len(measured) >= 2:
        project(measured[0], measured[-1])


if __name__ == "__main__":
    main()
