"""Retrieval metrics on labelled vectors, shared by ``artvec evaluate`` and the benchmarks.

Every query is one labelled vector; the others are the database. For a query whose label has
``n`` members, ``R = n − 1`` pictures are relevant:

- precision@k: the share of the k nearest that carry the query's label;
- AP@R (mean over queries: mAP@R): ``(1/R) Σ_{i≤R} P(i)·rel(i)`` — precision at each relevant rank
  within the first R, so it rewards putting *all* of a class first, not just a few;
- nearest-neighbour accuracy: whether the single nearest carries the label.

Queries whose label has no other member are skipped. Distances are Euclidean, as in the store.
With ``expand`` = n, each query is first averaged with its n nearest other vectors (query expansion,
as ``artvec similar`` and the site's "more like this" ask: ``artvec.search``), then searched again, among the
query's ``candidates_for(page)`` nearest as the unfiltered search does (``rerank=False``: among every vector, as under a
filter).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class PerQuery:
    """Per-query retrieval figures (arrays of the same length as the queries kept)."""

    index: np.ndarray  # row of each kept query
    precision_at_k: np.ndarray
    ap_at_r: np.ndarray
    nn_correct: np.ndarray
    k: int

    def summary(self) -> dict[str, float]:
        return {f"p@{self.k}": float(self.precision_at_k.mean()) if len(self.index) else float("nan"),
                "map@r": float(self.ap_at_r.mean()) if len(self.index) else float("nan"),
                "nn": float(self.nn_correct.mean()) if len(self.index) else float("nan"),
                "queries": int(len(self.index))}


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


#: bytes of a float64 copy of the database up to which distances are float64 (``squared_distances`` to the bit);
#: over it (about 35,000 vectors of 1,902 dims) the products are float32, as pgvector computes ``<->``
FLOAT64_BUDGET = 512 * 2**20
#: bytes of one chunk of query rows' distances to every row (512 rows up to 65,536 database rows)
CHUNK_BUDGET = 256 * 2**20


def squared_norms(rows: np.ndarray, block: int = 4096) -> np.ndarray:
    """Each row's squared norm in float64, a few thousand rows converted at a time."""
    out = np.empty(len(rows))
    for start in range(0, len(rows), block):
        part = np.asarray(rows[start:start + block], dtype=np.float64)
        out[start:start + block] = np.einsum("ij,ij->i", part, part)
    return out


class Database:
    """Squared Euclidean distances from query vectors to every row of ``vectors``, without a float64 copy of a
    large database: the rows' squared norms once, in float64; the products in float64 while a float64 copy
    fits in ``FLOAT64_BUDGET``, else in float32 (a million vectors of 1,902 dims: their 7.6 GB, not 15 more)."""

    def __init__(self, vectors: np.ndarray):
        x = np.asarray(vectors)
        self.x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
        self.exact = self.x.size * 8 <= FLOAT64_BUDGET
        if self.exact:
            self.x64 = np.asarray(self.x, dtype=np.float64)
            self.norms = (self.x64 * self.x64).sum(1)     # as squared_distances sums them, to the bit
        else:
            self.x = np.asarray(self.x, dtype=np.float32)
            self.norms = squared_norms(self.x)

    def chunk(self, rows_at_most: int = 512) -> int:
        """Query rows per chunk so that their distances to every row stay within ``CHUNK_BUDGET``."""
        return int(max(16, min(rows_at_most, CHUNK_BUDGET // max(8 * len(self.x), 1))))

    def squared(self, queries: np.ndarray) -> np.ndarray:
        if self.exact:
            a = np.asarray(queries, dtype=np.float64)
            d = (a * a).sum(1)[:, None] + self.norms[None, :] - 2.0 * a @ self.x64.T
        else:
            a = np.asarray(queries, dtype=np.float32)
            d = squared_norms(a)[:, None] + self.norms[None, :]
            d -= 2.0 * (a @ self.x.T)
        return np.maximum(d, 0.0)


def nearest_in_order(d: np.ndarray, depth: int) -> np.ndarray:
    """The ``depth`` smallest of each row of ``d``, in the order of a stable sort (ties by column), without
    sorting whole rows: a partition, then the chosen few sorted; a row whose boundary value has ties left
    outside the partition is sorted whole, so the answer is always that of ``np.argsort(d, kind="stable")``."""
    n = d.shape[1]
    if depth * 4 >= n:
        return np.argsort(d, axis=1, kind="stable")[:, :depth]
    part = np.argpartition(d, depth - 1, axis=1)[:, :depth]
    values = np.take_along_axis(d, part, 1)
    order = np.take_along_axis(part, np.lexsort((part, values), axis=1), 1)
    boundary = values.max(1)
    tied = np.flatnonzero((d == boundary[:, None]).sum(1) != (values == boundary[:, None]).sum(1))
    for row in tied:
        order[row] = np.argsort(d[row], kind="stable")[:depth]
    return order


#: "More like this" unfiltered ranks its answer among the query's this many nearest pictures (3 × (k + offset) for a
#: longer page): one index scan in place of two (``artvec.search.reranked``; docs/sql.md)
EXPAND_CANDIDATES = 40


def candidates_for(k: int, offset: int = 0) -> int:
    return max(EXPAND_CANDIDATES, 3 * (k + (offset or 0)))


def reranked_page(plain_order: np.ndarray, d: np.ndarray, page: int) -> np.ndarray:
    """A page of ``page`` rows as the unfiltered "more like this" serves it: the query's ``candidates_for(page)``
    nearest (``plain_order``, each row's nearest by the plain distance, at least that many) ranked by ``d`` (the
    distances to the expanded query), ties by row."""
    candidates = plain_order[:, :min(plain_order.shape[1], candidates_for(page))]
    values = np.take_along_axis(d, candidates, 1)
    return np.take_along_axis(candidates, np.lexsort((candidates, values), axis=1), 1)[:, :page]


def expanded(database: Database, queries: np.ndarray, d: np.ndarray, n: int) -> np.ndarray:
    """Each query averaged with its ``n`` nearest database rows (by ``d``, its squared distances to every row, the
    rows it must not take at +inf; ties by row): average query expansion (Chum et al. 2007)."""
    nearest = nearest_in_order(d, n)
    return (np.asarray(queries, dtype=np.float64) + database.x[nearest].sum(1, dtype=np.float64)) / (n + 1)


def retrieval(vectors: np.ndarray, labels, k: int = 10, chunk: int = 512, queries=None,
              on_distances=None, distances=None, advance=None, expand: int = 0, rerank: bool = True) -> PerQuery:
    """Leave-one-out retrieval of every labelled vector (or of the rows ``queries``) among the others.

    ``on_distances(rows, squared_distances)`` sees each chunk of query rows' distances to every row
    (the query itself at +inf), for distance statistics without computing them twice. ``distances(rows)``,
    if given, replaces the squared Euclidean distances of those rows to every row (a fresh array): the
    benchmarks score dissimilarities no vector gives. ``advance(done, total, seconds)`` follows the queries.
    ``expand`` = n > 0: each query averaged with its n nearest others before it is searched (``on_distances`` still
    sees the plain distances), its answer ranked among the query's nearest as the unfiltered search ranks it
    (``rerank``; False: among every row, as the search under a filter ranks it)."""
    if expand and distances is not None:
        raise ValueError("query expansion needs the vectors, not distances")
    labels = np.asarray(labels)
    _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    relevant = counts[codes] - 1
    keep = np.flatnonzero(relevant > 0)
    if queries is not None:
        keep = np.intersect1d(keep, np.asarray(queries))
    p_at_k = np.zeros(len(keep))
    ap = np.zeros(len(keep))
    nn = np.zeros(len(keep), dtype=bool)
    database = Database(np.asarray(vectors, dtype=np.float32)) if distances is None else None
    if database is not None:
        chunk = min(chunk, database.chunk())
    max_r = int(relevant.max()) if len(relevant) else 0
    depth = min(len(labels) - 1, max(k, max_r))
    started = time.monotonic()
    for start in range(0, len(keep), chunk):
        rows = keep[start:start + chunk]
        d = database.squared(database.x[rows]) if database is not None else distances(rows)
        d[np.arange(len(rows)), rows] = np.inf
        if on_distances is not None:
            on_distances(rows, d)
        plain_order = None
        if expand:
            if rerank:
                plain_order = nearest_in_order(d, min(len(labels) - 1, candidates_for(depth)))
            d = database.squared(expanded(database, database.x[rows], d, expand))
            d[np.arange(len(rows)), rows] = np.inf
        order = nearest_in_order(d, depth) if plain_order is None else reranked_page(plain_order, d, k)
        hits = codes[order] == codes[rows][:, None]
        p_at_k[start:start + len(rows)] = hits[:, :k].mean(1)
        nn[start:start + len(rows)] = hits[:, 0]
        pages = {} if plain_order is None else {r: reranked_page(plain_order, d, r) for r in np.unique(relevant[rows])}
        for j, row in enumerate(rows):
            r = relevant[row]
            h = hits[j, :r] if plain_order is None else codes[pages[r][j]] == codes[row]
            ap[start + j] = average_precision(h)
        if advance is not None:
            advance(start + len(rows), len(keep), time.monotonic() - started)
    return PerQuery(keep, p_at_k, ap, nn, k)


def average_precision(hits: np.ndarray) -> float:
    """AP@R of one query from ``hits``, whether each of its R nearest is relevant (R = ``len(hits)``, its relevant
    count): precision at each relevant rank, summed, over R."""
    r = len(hits)
    return float((np.cumsum(hits) / np.arange(1, r + 1) * hits).sum() / r)


def top1(queries: np.ndarray, database: np.ndarray | Database, targets, expand: int = 0) -> np.ndarray:
    """For each query, whether its nearest database row is its target row (bool array); with ``expand`` = n, the
    query averaged with its n nearest rows first, and the answer the nearest to that among the query's nearest
    (``candidates_for(1)``), as the unfiltered "more like this" finds it."""
    database = database if isinstance(database, Database) else Database(database)
    queries = np.asarray(queries)

    def nearest(part: np.ndarray) -> np.ndarray:
        d = database.squared(part)
        if not expand:
            return np.argmin(d, axis=1)
        plain_order = nearest_in_order(d, min(d.shape[1], candidates_for(1)))
        return reranked_page(plain_order, database.squared(expanded(database, part, d, expand)), 1)[:, 0]

    step = len(queries) if database.exact else database.chunk()
    found = [nearest(queries[i:i + step]) for i in range(0, len(queries), max(step, 1))]
    return (np.concatenate(found) if found else np.zeros(0, int)) == np.asarray(targets)


def bootstrap_interval(values: np.ndarray, groups=None, repeats: int = 1000, seed: int = 0) -> float:
    """Half-width of the 95 % bootstrap interval of ``values.mean()``.

    With ``groups``, whole groups are resampled (a cluster bootstrap): queries of one group (one deck,
    one artist) are not independent, and what must generalise is the next group, not the next query."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    if groups is None:
        means = np.array([values[rng.integers(0, len(values), len(values))].mean() for _ in range(repeats)])
    else:
        groups = np.asarray(groups)
        names = np.unique(groups)
        members = [np.flatnonzero(groups == g) for g in names]
        sums = np.array([values[m].sum() for m in members])
        sizes = np.array([len(m) for m in members])
        means = []
        for _ in range(repeats):
            pick = rng.integers(0, len(names), len(names))
            means.append(sums[pick].sum() / max(sizes[pick].sum(), 1))
        means = np.array(means)
    low, high = np.percentile(means, [2.5, 97.5])
    return float((high - low) / 2)


def chance_precision(codes: np.ndarray, index: np.ndarray) -> float:
    """Precision@k by chance for the queries ``index`` (label codes ``codes``, every picture's): the share of the other
    pictures that carry each query's label, averaged over the queries."""
    others = np.bincount(codes)[codes[index]] - 1
    return float(np.mean(others) / max(len(codes) - 1, 1))


def paired_difference(a: np.ndarray, b: np.ndarray, groups=None, repeats: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Mean of ``a − b`` (per-query figures of two methods on the same queries) and its 95 % half-width."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(diff.mean()), bootstrap_interval(diff, groups, repeats, seed)
