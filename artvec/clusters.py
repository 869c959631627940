"""Style groups: k-means over a PCA of the stored vectors, kept in artvec's schema.

How a run is made (``cluster_store``):

1. a random sample of the pictures in scope (all of them up to ``SAMPLE_ROWS``) is read from
   the database in chunks; a PCA to ``PCA_DIMS`` dimensions is fitted on it;
2. without ``k``, k-means is run on (at most 4,000 of) the sample for every k up to 10 and about
   eight more up to ``k_max(n)``, and the k with the highest silhouette score wins
   (benchmarks/clusters.py compares this with the alternatives); k-means on the sample;
3. every picture is streamed again in chunks and projected, and k-means, started from the
   sample's centres, is fitted on the projections (n × 50 floats: 20 MB at 100,000 pictures);
4. the run, its groups' centres (mapped back to the full vector space) and each picture's group,
   distance to the centre and rank within its group (1 = most typical) are written in one
   transaction, replacing older runs of the same scope (configuration, part, filters).

Because the centres lie in the PCA's subspace, the nearest centre in the full space is the
nearest centre in the projection: a picture synced later is assigned in plain SQL
(``centre <-> vector``) with the same answer k-means would give, without re-clustering
(``assign_new``, run by every ``artvec clusters`` and ``artvec map``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import numpy as np
from sqlalchemy import text

from .errors import ArtvecError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings

PARTS = {"both": "embedding", "style": "style", "colour": "colour"}
SAMPLE_ROWS = 20_000      # PCA and the choice of k are fitted on at most this many pictures
SELECTION_ROWS = 4_000    # silhouette scores are computed on at most this many of them
PCA_DIMS = 50
K_LIMIT = 40
CHUNK_ROWS = 5_000
METHOD = "pca+kmeans"
Say = Callable[[str], None]


class ClusterError(ArtvecError):
    """Clustering that cannot run as asked."""


# ---- fitting (pure numpy / scikit-learn, also used by benchmarks/clusters.py) -----------------

@dataclass
class Fitted:
    pca: Any
    centres: np.ndarray                      # k × PCA dims
    k: int
    scores: dict[int, float] = field(default_factory=dict)   # silhouette per candidate k

    @property
    def full_centres(self) -> np.ndarray:
        """The centres in the original vector space (on the PCA's subspace)."""
        return self.pca.inverse_transform(self.centres).astype(np.float32)

    def project(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(projection, squared distance of each vector from the PCA subspace)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        reduced = self.pca.transform(vectors).astype(np.float32)
        centred = vectors - self.pca.mean_
        residual = np.maximum((centred * centred).sum(1) - (reduced * reduced).sum(1), 0.0)
        return reduced, residual

    def assign(self, reduced: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest group and the full-space distance to its centre."""
        reduced64, centres = reduced.astype(np.float64), self.centres.astype(np.float64)
        squared = ((reduced64 * reduced64).sum(1)[:, None] - 2 * reduced64 @ centres.T
                   + (centres * centres).sum(1)[None, :])          # n × k, never n × k × dims
        squared = np.maximum(squared, 0.0)
        labels = squared.argmin(1)
        distance = np.sqrt(squared[np.arange(len(labels)), labels] + residual)
        return labels, distance


def k_max(n: int) -> int:
    """The largest k tried: groups of at least three pictures on average, at most K_LIMIT."""
    return max(2, min(K_LIMIT, n // 3))


def fit_pca(sample: np.ndarray, seed: int = 0):
    from sklearn.decomposition import PCA

    dims = max(1, min(PCA_DIMS, sample.shape[0] - 1, sample.shape[1]))
    return PCA(n_components=dims, svd_solver="randomized" if dims < min(sample.shape) // 2 else "full",
               random_state=seed).fit(sample)


def kmeans(reduced: np.ndarray, k: int, seed: int = 0, n_init: int = 4, init: np.ndarray | None = None):
    """k-means (k-means++ starts, best of ``n_init``), or refined from the centres ``init``."""
    from sklearn.cluster import KMeans

    if init is not None:
        return KMeans(n_clusters=k, init=init, n_init=1, random_state=seed).fit(reduced)
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(reduced)


def candidate_ks(highest: int) -> list[int]:
    """Every k up to 10, then about eight steps spaced evenly on a log scale up to ``highest``."""
    spaced = np.geomspace(10, max(highest, 10), 9).round().astype(int)
    return sorted(k for k in set(range(2, 11)) | set(spaced.tolist()) if k <= highest)


def choose_k(reduced: np.ndarray, seed: int = 0, highest: int | None = None) -> tuple[int, dict[int, float]]:
    """The k in 2..highest with the best silhouette score of k-means on ``reduced``."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    if len(reduced) > SELECTION_ROWS:
        reduced = reduced[rng.choice(len(reduced), SELECTION_ROWS, replace=False)]
    highest = min(highest or k_max(len(reduced)), len(reduced) - 1)
    if highest < 2:
        return 1, {}
    scores = {}
    for k in candidate_ks(highest):
        labels = kmeans(reduced, k, seed, n_init=2).labels_
        scores[k] = float(silhouette_score(reduced, labels)) if len(set(labels)) > 1 else -1.0
    return max(scores, key=lambda k: (round(scores[k], 6), -k)), scores


def fit_groups(sample: np.ndarray, k: int | None = None, seed: int = 0, phases: "Phases | None" = None) -> Fitted:
    """PCA on ``sample``, k chosen by silhouette unless given, k-means on the projection."""
    phases = phases or Phases()
    pca = fit_pca(sample, seed)
    reduced = pca.transform(sample).astype(np.float32)
    phases.done("PCA")
    scores: dict[int, float] = {}
    if k is None:
        k, scores = choose_k(reduced, seed)
        phases.done("choose k")
    k = max(1, min(k, len(sample)))
    fitted = Fitted(pca, kmeans(reduced, k, seed).cluster_centers_.astype(np.float32), k, scores)
    phases.done("k-means on sample")
    return fitted


def group(vectors: np.ndarray, k: int | None = None, seed: int = 0) -> np.ndarray:
    """Labels for an in-memory matrix, exactly as ``artvec clusters`` groups stored vectors."""
    fitted = fit_groups(vectors, k, seed)
    return fitted.assign(*fitted.project(vectors))[0]


def agreement(truth, labels) -> dict[str, float]:
    """Adjusted Rand index and normalised mutual information of ``labels`` against ``truth``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"ari": float(adjusted_rand_score(truth, labels)), "nmi": float(normalized_mutual_info_score(truth, labels))}


# ---- the scope of a run: configuration, vector part, facet filters ----------------------------

@dataclass
class Scope:
    config_id: str
    part: str                                  # embedding | style | colour
    filters: dict[str, list[str]]

    def where(self, alias: str = "e") -> tuple[str, dict]:
        """SQL condition selecting the scope's embeddings, with bound parameters only."""
        clauses = [f"{alias}.config_id = :config_id"]
        params: dict[str, Any] = {"config_id": self.config_id}
        for index, (name, values) in enumerate(sorted(self.filters.items())):
            clauses.append(f"{alias}.facets->>:facet_{index} = any(:values_{index})")
            params[f"facet_{index}"], params[f"values_{index}"] = name, list(values)
        return " and ".join(clauses), params

    @property
    def filters_json(self) -> str:
        return json.dumps({name: sorted(values) for name, values in sorted(self.filters.items())})


def make_scope(connection: "Connection", settings: "Settings", by: str, filters: Mapping[str, Any] | None) -> Scope:
    from .search import as_values, check_facet

    if by not in PARTS:
        raise ClusterError(f"--by must be one of {', '.join(PARTS)}, not {by!r}")
    facets = list(settings.get("catalogue.facets") or []) or stored_facets(connection)
    checked = {check_facet(name, facets): sorted(set(as_values(value))) for name, value in (filters or {}).items()}
    return Scope(store_config_id(connection, settings), PARTS[by], checked)


def stored_facets(connection: "Connection") -> list[str]:
    from .store import facet_names

    return facet_names(connection)


def store_config_id(connection: "Connection", settings: "Settings") -> str:
    """The configured embedding configuration if the store has its vectors, else the store's commonest."""
    configured = settings.embedding_config().config_id
    counts = dict(connection.execute(text(
        "select config_id, count(*) from artvec.embeddings group by config_id")).all())
    if configured in counts or not counts:
        return configured
    return max(counts, key=counts.get)


# ---- streaming vectors out of the database ----------------------------------------------------

def stream_vectors(connection: "Connection", scope: Scope, sample_percent: float | None = None,
                   seed: int = 0, ids: list | None = None, chunk: int = CHUNK_ROWS) -> Iterator[tuple[list, np.ndarray]]:
    """(ids, float32 matrix) chunks of the scope's vectors, through a server-side cursor: each
    vector arrives as pgvector's binary form (``vector_send``) and a chunk becomes one array."""
    where, params = scope.where()
    sampling = f" tablesample bernoulli ({float(sample_percent)}) repeatable ({int(seed)})" if sample_percent else ""
    relation = "artvec.embeddings"
    if sample_percent:  # TABLESAMPLE takes a table, not the view on the active configuration's table
        from . import configurations

        active = configurations.active(connection)
        relation = active.table if active is not None else relation
    if ids is not None:
        where += " and e.artwork_id in (select unnest(:ids))"      # a hash semi-join, not a scan of the list per row
        params["ids"] = list(ids)
    sql = text(f"select e.artwork_id, vector_send(e.{scope.part}) from {relation} e{sampling} "
               f"where {where} order by e.artwork_id").bindparams(**params)
    compiled = sql.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    raw = connection.connection.driver_connection
    with raw.cursor(name=f"artvec_vectors_{time.monotonic_ns()}") as cursor:
        cursor.itersize = chunk
        cursor.execute(str(compiled), compiled.params)
        while rows := cursor.fetchmany(chunk):
            yield [row[0] for row in rows], vectors_from_binary([row[1] for row in rows])


def vectors_from_binary(values: list[bytes]) -> np.ndarray:
    """pgvector's binary form: uint16 dims, uint16 unused, then big-endian float32s."""
    width = len(values[0])
    packed = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), width)
    return packed[:, 4:].copy().view(">f4").astype(np.float32)


def read_all(chunks: Iterator[tuple[list, np.ndarray]]) -> tuple[list, np.ndarray]:
    ids: list = []
    parts = []
    for chunk_ids, matrix in chunks:
        ids.extend(chunk_ids)
        parts.append(matrix)
    return ids, (np.concatenate(parts) if parts else np.zeros((0, 0), np.float32))


def count_in_scope(connection: "Connection", scope: Scope) -> int:
    where, params = scope.where()
    return connection.execute(text(f"select count(*) from artvec.embeddings e where {where}"), params).scalar()


# ---- a run ---------------------------------------------------------------------------------------

class Phases:
    """Seconds spent in each phase of a run (stored with it, shown by benchmarks/clusters.py)."""

    def __init__(self):
        self.started = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 2)
        self.last = now

    @property
    def total(self) -> float:
        return time.perf_counter() - self.started


def cluster_store(connection: "Connection", scope: Scope, k: int | None = None, seed: int = 0,
                  say: Say = lambda message: None) -> int:
    """Cluster the scope's pictures, store the run (replacing the scope's older runs); its run_id."""
    phases = Phases()
    n = count_in_scope(connection, scope)
    if n < 2:
        raise ClusterError(f"clustering needs at least 2 pictures in scope, found {n} "
                           f"(configuration {scope.config_id}, filters {scope.filters_json}); run artvec sync?")
    if k is not None and not 1 <= k <= n:
        raise ClusterError(f"--k must be between 1 and the number of pictures ({n}), not {k}")
    everything = n <= SAMPLE_ROWS
    percent = None if everything else min(100.0, 100.0 * SAMPLE_ROWS * 1.05 / n)
    sample_ids, sample = read_all(stream_vectors(connection, scope, percent, seed))
    phases.done("read sample")
    say(f"clusters: {n} pictures, PCA fitted on {len(sample_ids)}"
        + ("" if k else f", choosing k by silhouette over 2..{min(k_max(len(sample_ids)), len(sample_ids) - 1)}"))
    fitted = fit_groups(sample, k, seed, phases)
    if everything:
        ids, (reduced, residual) = sample_ids, fitted.project(sample)
    else:
        ids, reduced, residual = project_all(connection, scope, fitted)
        phases.done("read and project all")
    del sample
    if not everything:
        # the sample's centres start k-means on everything: a few passes instead of new k-means++ starts
        fitted.centres = kmeans(reduced, fitted.k, seed, init=fitted.centres).cluster_centers_.astype(np.float32)
        phases.done("k-means on all")
    labels, distance = fitted.assign(reduced, residual)
    parameters = {"k_chosen_by": "given" if k else "silhouette", "silhouette": fitted.scores,
                  "pca_dims": int(fitted.pca.n_components_), "sample": len(sample_ids), "seed": seed,
                  "explained_variance": round(float(fitted.pca.explained_variance_ratio_.sum()), 4),
                  "phases": phases.seconds}
    run_id = write_run(connection, scope, fitted, ids, labels, distance, parameters, phases.total)
    phases.done("write")
    say(f"clusters: run {run_id}, k = {fitted.k}, {phases.total:.1f} s ("
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.seconds.items()) + ")")
    return run_id


def project_all(connection: "Connection", scope: Scope, fitted: Fitted) -> tuple[list, np.ndarray, np.ndarray]:
    ids: list = []
    reduced, residual = [], []
    for chunk_ids, matrix in stream_vectors(connection, scope):
        ids.extend(chunk_ids)
        projected, rest = fitted.project(matrix)
        reduced.append(projected)
        residual.append(rest)
    return ids, np.concatenate(reduced), np.concatenate(residual)


def ranks_within_groups(labels: np.ndarray, distance: np.ndarray) -> np.ndarray:
    order = np.lexsort((distance, labels))
    ranks = np.empty(len(labels), dtype=np.int64)
    sorted_labels = labels[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
    positions = np.arange(len(labels)) - np.repeat(starts, np.diff(np.r_[starts, len(labels)]))
    ranks[order] = positions + 1
    return ranks


def write_run(connection: "Connection", scope: Scope, fitted: Fitted, ids: list, labels: np.ndarray,
              distance: np.ndarray, parameters: dict, seconds: float) -> int:
    run_id = connection.execute(text("""
        insert into artvec.cluster_runs (config_id, part, filters, k, method, parameters, pictures, seconds)
        values (:config_id, :part, cast(:filters as jsonb), :k, :method, cast(:parameters as jsonb), :pictures, :seconds)
        returning run_id"""), {"config_id": scope.config_id, "part": scope.part, "filters": scope.filters_json,
                               "k": fitted.k, "method": METHOD, "parameters": json.dumps(parameters),
                               "pictures": len(ids), "seconds": seconds}).scalar_one()
    connection.execute(text("insert into artvec.clusters (run_id, cluster, centre) values (:run_id, :cluster, :centre)"),
                       [{"run_id": run_id, "cluster": index + 1, "centre": vector_text(centre)}
                        for index, centre in enumerate(fitted.full_centres)])
    ranks = ranks_within_groups(labels, distance)
    raw = connection.connection.driver_connection
    with raw.cursor().copy("copy artvec.cluster_members (run_id, artwork_id, cluster, distance, rank) from stdin") as copy:
        for index, artwork_id in enumerate(ids):
            copy.write_row((run_id, artwork_id, int(labels[index]) + 1, float(distance[index]), int(ranks[index])))
    connection.execute(text("""
        delete from artvec.cluster_runs
        where config_id = :config_id and part = :part and filters = cast(:filters as jsonb) and run_id <> :run_id"""),
        {"config_id": scope.config_id, "part": scope.part, "filters": scope.filters_json, "run_id": run_id})
    # fresh statistics, or the next assign_new may plan its anti-join as if the table were empty
    connection.execute(text("analyze artvec.cluster_members"))
    return run_id


def vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


# ---- keeping a run up to date: later pictures join their nearest group ---------------------------

def current_run(connection: "Connection", scope: Scope) -> dict | None:
    row = connection.execute(text("""
        select * from artvec.cluster_runs
        where config_id = :config_id and part = :part and filters = cast(:filters as jsonb)
        order by run_id desc limit 1"""),
        {"config_id": scope.config_id, "part": scope.part, "filters": scope.filters_json}).mappings().first()
    return dict(row) if row else None


def assign_new(connection: "Connection", run_id: int) -> dict[str, int]:
    """Bring a stored run in step with the store without re-clustering: drop pictures that left
    the scope (deleted, re-embedded, facets changed), give new or changed ones their nearest group."""
    run = connection.execute(text("select * from artvec.cluster_runs where run_id = :run_id"),
                             {"run_id": run_id}).mappings().one()
    scope = Scope(run["config_id"], run["part"], run["filters"])
    where, params = scope.where()
    params["run_id"] = run_id
    removed = connection.execute(text(f"""
        delete from artvec.cluster_members m
        where m.run_id = :run_id and not exists (
            select 1 from artvec.embeddings e
            where e.artwork_id = m.artwork_id and e.updated_at <= m.assigned_at and {where})"""), params).rowcount
    assigned = connection.execute(text(f"""
        insert into artvec.cluster_members (run_id, artwork_id, cluster, distance, assigned_later)
        select :run_id, e.artwork_id, nearest.cluster, nearest.distance, true
        from artvec.embeddings e
        cross join lateral (
            select c.cluster, c.centre <-> e.{scope.part} as distance
            from artvec.clusters c where c.run_id = :run_id
            order by distance, c.cluster limit 1) nearest
        where {where} and not exists (
            select 1 from artvec.cluster_members m where m.run_id = :run_id and m.artwork_id = e.artwork_id)"""),
        params).rowcount
    if removed or assigned:
        rerank(connection, run_id)
    return {"assigned": assigned, "removed": removed}


def rerank(connection: "Connection", run_id: int) -> None:
    connection.execute(text("""
        update artvec.cluster_members m set rank = ranked.rank
        from (select artwork_id, row_number() over (partition by cluster order by distance, artwork_id) as rank
              from artvec.cluster_members where run_id = :run_id) ranked
        where m.run_id = :run_id and m.artwork_id = ranked.artwork_id and m.rank is distinct from ranked.rank"""),
        {"run_id": run_id})


def ensure_run(connection: "Connection", scope: Scope, k: int | None = None, refresh: bool = False,
               seed: int = 0, say: Say = lambda message: None) -> tuple[int, dict[str, int], bool]:
    """The scope's run, brought up to date (or made now): (run_id, assignment counts, made now)."""
    run = None if refresh else current_run(connection, scope)
    if run is not None and (k is None or run["k"] == k):
        return run["run_id"], assign_new(connection, run["run_id"]), False
    return cluster_store(connection, scope, k, seed, say), {"assigned": 0, "removed": 0}, True


# ---- what the command shows ----------------------------------------------------------------------

def groups(connection: "Connection", run_id: int, typical: int) -> list[dict]:
    """Each group: size, its ``typical`` pictures nearest the centre, its commonest facet values."""
    rows = connection.execute(text("""
        select m.cluster, count(*) as size, avg(m.distance) as mean_distance
        from artvec.cluster_members m where m.run_id = :run_id group by m.cluster order by m.cluster"""),
        {"run_id": run_id}).mappings().all()
    found = {row["cluster"]: {"cluster": row["cluster"], "size": row["size"],
                              "mean_distance": round(float(row["mean_distance"]), 4), "typical": [], "facets": {}}
             for row in rows}
    for row in connection.execute(text("""
            select m.cluster, m.rank, m.artwork_id, m.distance, e.image_location, e.facets
            from artvec.cluster_members m join artvec.embeddings e on e.artwork_id = m.artwork_id
            where m.run_id = :run_id and m.rank <= :typical order by m.cluster, m.rank"""),
            {"run_id": run_id, "typical": typical}).mappings():
        found[row["cluster"]]["typical"].append({"artwork_id": row["artwork_id"], "rank": row["rank"],
                                                 "distance": round(float(row["distance"]), 4),
                                                 "image_location": row["image_location"], "facets": row["facets"]})
    for row in connection.execute(text("""
            select m.cluster, f.key as facet, f.value, count(*) as pictures
            from artvec.cluster_members m join artvec.embeddings e on e.artwork_id = m.artwork_id
            cross join lateral jsonb_each_text(e.facets) f
            where m.run_id = :run_id group by 1, 2, 3 order by 1, 2, 4 desc, 3"""), {"run_id": run_id}).mappings():
        found[row["cluster"]]["facets"].setdefault(row["facet"], [])
        if len(found[row["cluster"]]["facets"][row["facet"]]) < 3:
            found[row["cluster"]]["facets"][row["facet"]].append([row["value"], row["pictures"]])
    return list(found.values())


def run_info(connection: "Connection", run_id: int) -> dict:
    row = connection.execute(text("select * from artvec.cluster_runs where run_id = :run_id"),
                             {"run_id": run_id}).mappings().one()
    info = dict(row)
    info["by"] = {part: by for by, part in PARTS.items()}[info.pop("part")]
    info["pictures"] = connection.execute(text("select count(*) from artvec.cluster_members where run_id = :run_id"),
                                          {"run_id": run_id}).scalar()
    return info


def clusters(settings: "Settings", by: str = "both", filters: Mapping[str, Any] | None = None,
             k: int | None = None, refresh: bool = False, typical: int = 5, seed: int = 0,
             engine: "Engine | None" = None, say: Say = lambda message: None) -> dict:
    """``artvec clusters``: the scope's groups (clustered now if there is no run yet, or on refresh)."""
    from sqlalchemy.exc import DBAPIError

    from . import store
    from .errors import first_line

    if typical < 1:
        raise ClusterError("--typical must be at least 1")
    try:
        with store.engine_in_use(settings, engine) as engine, engine.begin() as connection:
            check_schema(connection)
            scope = make_scope(connection, settings, by, filters)
            run_id, counts, made = ensure_run(connection, scope, k, refresh, seed, say)
            return {"run": run_info(connection, run_id), "made_now": made, **counts,
                    "groups": groups(connection, run_id, typical)}
    except DBAPIError as error:
        raise ClusterError(f"clustering failed: {first_line(error)}") from None


def check_schema(connection: "Connection") -> None:
    if connection.execute(text("select to_regclass('artvec.cluster_runs')")).scalar() is None:
        raise ClusterError("artvec's schema has no cluster tables yet: run `artvec init` to upgrade it")


# ---- evaluation: the stored groups against a facet -------------------------------------------------

def nmi_against_facet(connection: "Connection", facet: str, run_id: int | None = None) -> dict:
    """NMI (and ARI) of a stored run's groups against a facet's values (pictures without the facet
    are left out). Without ``run_id``, the newest run. For ``artvec evaluate``."""
    from .catalogue import quote_identifier

    quote_identifier(facet, "facet")
    run_id = run_id or connection.execute(text("select max(run_id) from artvec.cluster_runs")).scalar()
    if run_id is None:
        raise ClusterError("no clustering stored yet: run `artvec clusters` first")
    rows = connection.execute(text("""
        select m.cluster, e.facets->>:facet from artvec.cluster_members m
        join artvec.embeddings e on e.artwork_id = m.artwork_id
        where m.run_id = :run_id and e.facets ? :facet"""), {"facet": facet, "run_id": run_id}).all()
    if not rows:
        raise ClusterError(f"no picture of clustering run {run_id} has the facet {facet!r}")
    labels, truth = zip(*rows)
    return {"run_id": run_id, "facet": facet, "pictures": len(rows), "values": len(set(truth)),
            "groups": len(set(labels)), **{key: round(value, 4) for key, value in agreement(truth, labels).items()}}


# ---- contact sheets per group ------------------------------------------------------------------------

def write_group_sheets(settings: "Settings", found: list[dict], folder) -> list:
    from pathlib import Path

    from .sheet import resolve_location, write_sheet

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ClusterError(f"cannot create the sheet folder {folder}: {error.strerror}") from None
    root = settings.get("catalogue.image_root")
    written = []
    for entry in found:
        tiles = [(f"#{row['artwork_id']}\nd = {row['distance']:.3f}", resolve_location(row["image_location"], root))
                 for row in entry["typical"]]
        if not tiles:
            continue
        first = (f"group {entry['cluster']}: {entry['size']}\n{tiles[0][0].splitlines()[0]}", tiles[0][1])
        written.append(write_sheet(first, tiles[1:], folder / f"group-{entry['cluster']:03d}.png"))
    return written
