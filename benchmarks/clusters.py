"""Style groups: quality against true labels, the map's layout, and time and memory at 100,000 vectors.

    .venv/bin/python benchmarks/clusters.py                   # quality + layout + 100k store
    .venv/bin/python benchmarks/clusters.py --rows 0          # quality and layout only
    .venv/bin/python benchmarks/clusters.py --rows 25000      # a quicker scale run

(1) Quality: for every labelled set of ``labelled_sets()`` (the card decks' face cards, label =
    deck family, when the decks are installed — see benchmarks/cards.py; the scikit-image style set
    of benchmarks/sets.py — 10 pictures × 7 stylisations, label = stylisation — and the demo's
    40 pictures, label = manner), each feature — artvec's combined vector, its style part, its
    colour part alone, a content CNN feature (VGG-19 relu5_4 average-pooled) — is grouped by
    artvec's method (PCA + k-means, k by silhouette: ``artvec.clusters.group``) and by
    alternatives (the same with the true k; HDBSCAN; Ward agglomerative with the true k).
    Adjusted Rand index and NMI against the labels; then artvec's grouping of the combined vector and
    of colour alone under 10 seeds (mean ARI, its range, the k found); then how k is chosen: silhouette against
    Calinski-Harabasz and a GMM's BIC. Add a set by returning one more ``LabelledSet`` from
    ``labelled_sets()``.
(2) Layout: t-SNE vs the first two PCA axes, trustworthiness (k = 5) and how often a picture's
    5 nearest on the map share its label.
(3) Scale: the search benchmark's synthetic store (benchmarks/search.py ``load``) at ``--rows``
    vectors on a fresh embedded server; ``artvec clusters`` and ``artvec map`` run as commands
    (subprocesses, 2 threads each), wall time and peak resident memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from artvec import clusters  # noqa: E402


@dataclass
class LabelledSet:
    name: str
    features: dict[str, np.ndarray]      # feature name -> N × D
    labels: list


def embed_features(images: list, embedder, deep) -> dict[str, np.ndarray]:
    """artvec's combined vector, its colour part, and a content CNN feature (``deep``: an Embedder
    whose network reaches relu5_4) for PIL images."""
    import torch

    vectors = embedder.embed_images(images)
    content = []
    with torch.inference_mode():
        for start in range(0, len(images), 8):
            batch = np.stack([deep._prepare(image)[0] for image in images[start:start + 8]])
            content.append(deep.feature_maps(batch, extra_layers=["relu5_4"])["relu5_4"].mean((2, 3)).numpy())
    content = np.concatenate(content)
    return {"artvec (combined)": np.stack([v.combined for v in vectors]),
            "style part only": np.stack([v.style for v in vectors]),
            "colour only": np.stack([v.colour for v in vectors]),
            "content CNN (relu5_4)": content / np.linalg.norm(content, axis=1, keepdims=True)}


def style_set() -> tuple[list, list]:
    import sets

    stylised, _, _ = sets.stylised_items()
    return [item.image for item in stylised], [item.label for item in stylised]


def card_set() -> tuple[list, list]:
    """The face cards (J, Q, K) of the 16 card decks, labelled by deck family (benchmarks/cards.py)."""
    import cards
    import sets

    if cards.missing_tools():
        return [], []
    items = [c for c in sets.card_items() if c.key.split("/")[1].split("_")[0] in ("jack", "queen", "king")]
    return [item.load() for item in items], [item.label for item in items]


def demo_set() -> tuple[list, list]:
    from artvec import demo_pictures

    rows = demo_pictures.catalogue()
    return [demo_pictures.render(row) for row in rows], [row["artist"] for row in rows]


def labelled_sets() -> list[LabelledSet]:
    """Every labelled set the quality table covers: (name, features, labels)."""
    from dataclasses import replace

    from artvec.embedding import DEFAULT_CONFIG, V1_CONFIG, Embedder

    embedder = Embedder(DEFAULT_CONFIG, decode_workers=1)
    # the content baseline as in benchmarks/quality.py: VGG relu5_4 pooled, 224×224 RGB
    deep = Embedder(replace(V1_CONFIG, layers=(*V1_CONFIG.layers, "relu5_4")), decode_workers=1)
    found = []
    for name, build in (("card decks, face cards (12 deck families)", card_set),
                        ("scikit-image style set (7 stylisations)", style_set),
                        ("demo manners (5 artists)", demo_set)):
        images, labels = build()
        if images:
            found.append(LabelledSet(name, embed_features(images, embedder, deep), labels))
    return found


# ---- (1) quality ---------------------------------------------------------------------------------

def methods(true_k: int) -> dict:
    from sklearn.cluster import HDBSCAN, AgglomerativeClustering

    return {
        "artvec: PCA + k-means, k by silhouette": lambda x: clusters.group(x),
        "PCA + k-means, true k": lambda x: clusters.group(x, k=true_k),
        "HDBSCAN (min cluster 3)": lambda x: HDBSCAN(min_cluster_size=3, copy=True).fit_predict(x),
        "Ward agglomerative, true k": lambda x: AgglomerativeClustering(true_k).fit_predict(x),
    }


def quality_table(sets: list[LabelledSet]) -> None:
    print(f"\n{'set':42s} {'feature':22s} {'method':40s} {'k':>3s} {'ARI':>6s} {'NMI':>6s}")
    for labelled in sets:
        true_k = len(set(labelled.labels))
        for feature, matrix in labelled.features.items():
            for method, run in methods(true_k).items():
                labels = run(matrix)
                score = clusters.agreement(labelled.labels, labels)
                found = len(set(labels) - {-1})
                print(f"{labelled.name:42s} {feature:22s} {method:40s} {found:3d} {score['ari']:6.3f} {score['nmi']:6.3f}")


def seed_table(sets: list[LabelledSet], seeds: int = 10) -> None:
    """artvec's grouping (PCA + k-means, k by silhouette or the true k) under ``seeds`` seeds: on a set of
    tens of pictures one seed's k and ARI swing widely, so a difference between two features is read on the
    mean and the spread, not on seed 0's row of the quality table."""
    print(f"\n{'set':42s} {'feature':22s} {'k':11s} {'ARI mean (min–max)':>22s} {'NMI mean':>9s}  k found, seeds 0–{seeds - 1}")
    for labelled in sets:
        true_k = len(set(labelled.labels))
        for feature in ("artvec (combined)", "colour only"):
            for k_name, k in (("silhouette", None), ("true k", true_k)):
                scores, found = [], []
                for seed in range(seeds):
                    labels = clusters.group(labelled.features[feature], k=k, seed=seed)
                    scores.append(clusters.agreement(labelled.labels, labels))
                    found.append(len(set(labels)))
                ari = np.array([score["ari"] for score in scores])
                nmi = np.mean([score["nmi"] for score in scores])
                print(f"{labelled.name:42s} {feature:22s} {k_name:11s} {ari.mean():8.3f} ({ari.min():.3f}–{ari.max():.3f}) "
                      f"{nmi:9.3f}  {sorted(found)}")


def k_choice_table(sets: list[LabelledSet]) -> None:
    """How k is chosen: silhouette (artvec's) against Calinski-Harabasz and a Gaussian mixture's BIC,
    each picking k in 2..k_max for k-means on the same PCA projection."""
    from sklearn.metrics import calinski_harabasz_score, silhouette_score
    from sklearn.mixture import GaussianMixture

    print(f"\n{'set':42s} {'feature':22s} {'criterion':18s} {'k':>3s} {'ARI':>6s} {'NMI':>6s}")
    for labelled in sets:
        for feature in ("artvec (combined)", "colour only"):
            matrix = labelled.features[feature]
            reduced = clusters.fit_pca(matrix).transform(matrix)
            labels = {k: clusters.kmeans(reduced, k).labels_ for k in range(2, clusters.k_max(len(matrix)) + 1)}
            criteria = {
                "silhouette": lambda k: silhouette_score(reduced, labels[k]),
                "Calinski-Harabasz": lambda k: calinski_harabasz_score(reduced, labels[k]),
                "GMM BIC": lambda k: -GaussianMixture(k, covariance_type="spherical", random_state=0).fit(reduced).bic(reduced),
            }
            for name, score in criteria.items():
                k = max(labels, key=score)
                agreement = clusters.agreement(labelled.labels, labels[k])
                print(f"{labelled.name:42s} {feature:22s} {name:18s} {k:3d} {agreement['ari']:6.3f} {agreement['nmi']:6.3f}")


# ---- (2) layout ----------------------------------------------------------------------------------

def layout_table(sets: list[LabelledSet]) -> None:
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import NearestNeighbors

    from artvec import maps

    print(f"\n{'set':42s} {'layout':6s} {'trustworthiness@5':>18s} {'5-NN same label':>16s}")
    for labelled in sets:
        matrix = labelled.features["artvec (combined)"]
        reduced = clusters.fit_pca(matrix).transform(matrix)
        labels = np.asarray(labelled.labels)
        for method in ("pca", "tsne"):
            points = maps.layout(reduced, method)
            _, nearest = NearestNeighbors(n_neighbors=6).fit(points).kneighbors(points)
            same = (labels[nearest[:, 1:]] == labels[:, None]).mean()
            print(f"{labelled.name:42s} {method:6s} {trustworthiness(matrix, points, n_neighbors=5):18.3f} {same:16.3f}")


# ---- (3) time and memory at scale ----------------------------------------------------------------

def timed_command(args: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak resident MiB of this command's process (os.wait4's rusage), stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([str(Path(sys.executable).with_name("artvec")), *args], env=env,
                                 stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise SystemExit(f"artvec {' '.join(args)} failed:\n{err.read()}")
        print("    " + err.read().strip().replace("\n", "\n    "), flush=True)
        return seconds, usage.ru_maxrss / 1024, out.read()


def stored_rows(url: str) -> int:
    from sqlalchemy import create_engine, text

    from artvec import db

    engine = create_engine(db.sqlalchemy_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text("select count(*) from artvec.embeddings")).scalar()
    except Exception:  # noqa: BLE001 - no such database or schema yet
        return 0
    finally:
        engine.dispose()


def synthetic_store(server: str, rows: int, reuse: bool) -> str:
    """The search benchmark's synthetic store of ``rows`` vectors (kept from an earlier --keep run with --reuse)."""
    import search as search_benchmark

    from artvec import store
    from artvec.config import Settings

    name = f"bench_clusters_{rows}"
    base, _, query = server.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")
    if reuse and stored_rows(url) == rows:
        print(f"\nreusing the store of {rows:,} vectors in {name}", flush=True)
        return url
    url = search_benchmark.fresh_database(server, name)
    settings = Settings.load(overrides={"database.url": url, "catalogue.facets": ["era", "artist"]})
    store.init(settings)
    engine = store.engine_for_schema(settings)
    with engine.begin() as connection:
        configuration = store.register_model(connection, settings.embedding_config())
    engine.dispose()
    started = time.perf_counter()
    search_benchmark.load(url, settings, configuration.table, rows, seed=1, rank=32)
    print(f"\nstore of {rows:,} synthetic vectors loaded in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def scale_table(rows: int, home: str | None, keep: bool, reuse: bool) -> None:
    import search as search_benchmark

    from artvec import db

    home = home or tempfile.mkdtemp(prefix="avc-", dir="/tmp")
    server = search_benchmark.server_for(argparse.Namespace(home=home, shared_buffers="1GB", database_url=None))
    url = synthetic_store(server, rows, reuse)
    with create_engine_for(url) as connection:
        connection.exec_driver_sql("delete from artvec.cluster_runs")
    env = {**os.environ, "ARTVEC_DATABASE_URL": url, "ARTVEC_CATALOGUE_FACETS": "era,artist",
           "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    out = Path(tempfile.mkdtemp(prefix="avc-map-")) / "map.png"
    measured = []
    for label, args in (("artvec clusters (k by silhouette)", ["clusters", "--json", "--typical", "1"]),
                        ("artvec clusters (stored run, nothing new)", ["clusters", "--json", "--typical", "1"]),
                        ("artvec clusters --refresh --k 100", ["clusters", "--refresh", "--k", "100", "--json", "--typical", "1"]),
                        ("artvec map", ["map", "--out", str(out)])):
        seconds, peak, stdout = timed_command(args, env)
        detail = ""
        if stdout.startswith("{"):
            found = json.loads(stdout)
            detail = f"k = {found['run']['k']}, {found['run']['pictures']:,} pictures"
        measured.append((label, seconds, peak, detail))
        print(f"  {label}: {seconds:.1f} s, peak {peak:.0f} MiB {detail}", flush=True)
    print(f"\n{'command at ' + format(rows, ',') + ' vectors':45s} {'seconds':>8s} {'peak MiB':>9s}  detail")
    for label, seconds, peak, detail in measured:
        print(f"{label:45s} {seconds:8.1f} {peak:9.0f}  {detail}")
    if not keep:
        search_benchmark.drop_database(server, url)
        db.stop_embedded(Path(home) / db.EMBEDDED_DIR)


class create_engine_for:
    """``with create_engine_for(url) as connection``: a committed autocommit connection."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        from artvec import db

        self.engine = create_engine(db.sqlalchemy_url(url), isolation_level="AUTOCOMMIT")

    def __enter__(self):
        self.connection = self.engine.connect()
        return self.connection

    def __exit__(self, *exc):
        self.connection.close()
        self.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic store size for timing (0: skip)")
    parser.add_argument("--skip-quality", action="store_true", help="only the timing at --rows")
    parser.add_argument("--home", help="folder for the embedded server (default: a new temporary one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic store and its server running")
    parser.add_argument("--reuse", action="store_true", help="reuse a store kept by --keep (same --home and --rows)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if not args.skip_quality:
        started = time.perf_counter()
        sets = labelled_sets()
        print(f"embedded {sum(len(s.labels) for s in sets)} pictures in {time.perf_counter() - started:.0f} s", flush=True)
        quality_table(sets)
        seed_table(sets)
        k_choice_table(sets)
        layout_table(sets)
    if args.rows:
        scale_table(args.rows, args.home, args.keep, args.reuse)


if __name__ == "__main__":
    main()
