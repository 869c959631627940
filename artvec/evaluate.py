"""How well the stored embeddings find alike pictures in *your* library, judged by your own labels.

``evaluate(settings, label="artist")`` reads the stored vectors of one embedding configuration and a
facet copied beside them, and treats every picture as a query: are its nearest pictures by the same
artist? It reports precision@10, mAP@R and nearest-neighbour accuracy overall and per label (worst
first), the distances of same-label and other-label pairs, and — by embedding edited copies (rescans,
crops, re-encodes; :mod:`artvec.edits`) of a sample of stored pictures — the distances at which
near-duplicates stand, with a suggested near-duplicate threshold. With ``against`` (another stored
configuration) both are judged on the pictures both hold, by the same queries, and each figure's paired
difference comes with its 95 % interval, the labels resampled: whether one is ahead by more than the noise.
The same queries are then searched as "more like this" searches them (``search.expand``: each query averaged with
its nearest pictures first, the answer ranked among the query's nearest as the unfiltered search ranks it,
:mod:`artvec.search`), and each figure's difference to the plain search is given the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import metrics
from .errors import ArtvecError, ConfigError, first_line
from .search import check_expand
from .sources import shorten

if TYPE_CHECKING:
    from .config import Settings

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: --against calls no difference beyond the noise on fewer labels: resampling a handful of labels says little
MIN_LABELS_TO_JUDGE = 10


class EvaluateError(ArtvecError):
    pass


@dataclass
class Labelled:
    ids: list[str]
    labels: np.ndarray
    vectors: np.ndarray
    locations: list[str]
    config_id: str
    config: dict


VIEW = "artvec.embeddings"       # the active configuration's vectors


def check_by(by: str) -> str:
    from .search import BY_COLUMN   # --by -> the stored column holding that part (never user text in SQL)

    if by not in BY_COLUMN:
        raise ConfigError(f"--by must be one of {', '.join(BY_COLUMN)}, got {by!r}")
    return BY_COLUMN[by]


def choose_config(connection, config_id: str | None, configured: str) -> tuple[str, str]:
    """(config_id, relation to read): the view ``artvec.embeddings`` (the active configuration) by
    default; a ``--config-id`` the view does not show is read from that configuration's own table."""
    rows = dict(connection.execute(
        "select config_id, count(*) from artvec.embeddings group by config_id").fetchall())
    if config_id is not None:
        if config_id in rows:
            return config_id, VIEW
        table = configuration_table(connection, config_id)
        if table is None:
            stored = sorted(set(rows) | set(other_configurations(connection)))
            raise EvaluateError(f"no embeddings of configuration {config_id!r} (stored: {', '.join(stored) or 'none'})")
        return config_id, table
    if not rows:
        raise EvaluateError("the store holds no embeddings yet: run `artvec sync` first")
    return (configured if configured in rows else max(rows, key=rows.get)), VIEW


def other_configurations(connection) -> list[str]:
    """Inactive configurations whose own table holds vectors (the active one's are the view's)."""
    return [config_id for config_id, in connection.execute(
        "select config_id from artvec.models where table_name is not null and not active "
        "order by config_id").fetchall()
        if configuration_table(connection, config_id) is not None]


def configuration_table(connection, config_id: str) -> str | None:
    """``artvec.<table>`` of ``config_id`` (quoted), if it exists and holds vectors."""
    from psycopg import sql

    found = connection.execute(
        "select quote_ident(table_name) from artvec.models where config_id = %s and table_name is not null "
        "and to_regclass('artvec.' || quote_ident(table_name)) is not null", (config_id,)).fetchone()
    if found is None:
        return None
    table = f"artvec.{found[0]}"
    has_rows = connection.execute(sql.SQL("select exists (select 1 from {})").format(sql.SQL(table))).fetchone()[0]
    return table if has_rows else None


def stored_facets(connection, config_id: str, relation: str = VIEW) -> list[str]:
    return [r[0] for r in connection.execute(
        f"select distinct jsonb_object_keys(facets) from {relation} where config_id = %s order by 1",
        (config_id,)).fetchall()]


def read_labelled(url: str, label: str, by: str, config_id: str | None, configured: str,
                  progress: Callable[[str], None] = lambda message: None) -> Labelled:
    """Stream the vectors of one configuration that carry the facet ``label`` into one float32 array."""
    import psycopg
    from pgvector.psycopg import register_vector

    from . import db
    from .embedding import stored_copy_dim

    column = check_by(by)
    with psycopg.connect(db.libpq_url(url)) as connection:
        register_vector(connection)
        chosen, relation = choose_config(connection, config_id, configured)
        config_row = connection.execute("select config, dim, style_dim, colour_dim from artvec.models where config_id = %s",
                                        (chosen,)).fetchone()
        width = {"embedding": config_row[1], "style": config_row[2], "colour": config_row[3],
                 "copy": stored_copy_dim(config_row[0])}[column]
        if not width:
            raise EvaluateError(f"--by copy: configuration {chosen} has no copy vector (its copy_vector is none)")
        count = connection.execute(
            f"select count(*) from {relation} where config_id = %s and facets ? %s", (chosen, label)).fetchone()[0]
        if count == 0:
            facets = stored_facets(connection, chosen, relation)
            known = ", ".join(facets) if facets else "none (set catalogue.facets and run artvec sync)"
            raise EvaluateError(f"no stored picture has the facet {label!r}; stored facets: {known}")
        progress(f"reading {count} vectors of {width} dims ({count * width * 4 / 2**20:,.1f} MiB) …")
        vectors = np.empty((count, width), dtype=np.float32)
        ids, labels, locations = [], [], []
        with connection.cursor(name="artvec_evaluate", binary=True) as cursor:  # binary: 8x faster than text
            cursor.itersize = 2000
            cursor.execute(f"select artwork_id::text, facets->>%s, image_location, {column} "
                           f"from {relation} where config_id = %s and facets ? %s order by artwork_id",
                           (label, chosen, label))
            for i, (artwork_id, value, location, vector) in enumerate(cursor):
                if i >= count:
                    break
                vectors[i] = vector.to_numpy() if hasattr(vector, "to_numpy") else vector
                ids.append(artwork_id)
                labels.append(value)
                locations.append(location)
    n = len(ids)
    return Labelled(ids, np.asarray(labels, dtype=object), vectors[:n], locations, chosen, config_row[0])


def quantiles(values) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {}
    return {f"p{round(q * 100):02d}": round(float(np.quantile(values, q)), 4) for q in QUANTILES}


class PairDistances:
    """Collects same-label and other-label distances, and each query's nearest other picture."""

    def __init__(self, codes: np.ndarray, rng: np.random.Generator, per_query: int = 50):
        self.codes, self.rng, self.per_query = codes, rng, per_query
        self.same: list[np.ndarray] = []
        self.other: list[np.ndarray] = []
        self.nearest: list[np.ndarray] = []

    def __call__(self, rows: np.ndarray, squared: np.ndarray) -> None:
        d = np.sqrt(squared)
        self.nearest.append(d.min(axis=1))
        same = self.codes[None, :] == self.codes[rows][:, None]
        finite = np.isfinite(d)
        for mask, out in ((same & finite, self.same), (~same & finite, self.other)):
            values = d[mask]
            if values.size:
                take = min(values.size, self.per_query * len(rows))
                out.append(self.rng.choice(values, size=take, replace=False))

    def summary(self) -> dict[str, Any]:
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
        return {"same_label": quantiles(cat(self.same)), "other_label": quantiles(cat(self.other)),
                "nearest_other_picture": quantiles(cat(self.nearest))}


def per_label(labels: np.ndarray, codes: np.ndarray, result: metrics.PerQuery) -> list[dict[str, Any]]:
    rows = []
    sizes = np.bincount(codes)
    query_codes = codes[result.index]
    for code in np.unique(query_codes):
        mask = query_codes == code
        rows.append({"label": str(labels[result.index[mask][0]]), "pictures": int(sizes[code]), "queries": int(mask.sum()),
                     f"p@{result.k}": round(float(result.precision_at_k[mask].mean()), 4),
                     "map@r": round(float(result.ap_at_r[mask].mean()), 4),
                     "nn": round(float(result.nn_correct[mask].mean()), 4)})
    rows.sort(key=lambda r: (r["map@r"], r["label"]))
    return rows


def unreadable_reason(first_failure: tuple[str, Exception] | None) -> str:
    """Why no stored picture could be read: the first location tried and its cause."""
    if first_failure is None:
        return "no stored picture could be read from its location"
    location, error = first_failure
    reason = first_line(error)
    if location not in reason:
        reason = f"{shorten(location, 80)}: {reason}"
    return f"no stored picture could be read from its location, e.g. {reason}"


def near_duplicate_distances(settings: "Settings", data: Labelled, by: str, count: int, seed: int,
                             progress: Callable[[str], None]) -> dict[str, Any]:
    """Embed edited copies of ``count`` stored pictures; their distances to the stored originals."""
    from .edits import EDITS
    from .embedding import Embedder, EmbeddingConfig
    from .images import load_image
    from .sources import read_bytes
    from .sync import source_options

    if count <= 0:
        return {"skipped": "--duplicates 0"}
    try:
        config = EmbeddingConfig.from_stored(data.config)
    except ValueError as error:
        return {"skipped": f"stored configuration cannot be rebuilt here ({first_line(error)})"}
    rng = np.random.default_rng(seed)
    options = source_options(settings)
    originals, images, first_failure = [], [], None
    for i in rng.permutation(len(data.ids)):
        if len(images) >= count:
            break
        try:
            images.append(load_image(read_bytes(data.locations[i], options), data.locations[i]))
            originals.append(i)
        except Exception as error:  # an unreadable picture is simply not sampled
            first_failure = first_failure or (data.locations[i], error)
    if not images:
        return {"skipped": unreadable_reason(first_failure)}
    progress(f"embedding {len(images) * len(EDITS)} edited copies of {len(images)} pictures …")
    copies, owners, kinds = [], [], []
    for i, img in zip(originals, images):
        for kind, edit in EDITS.items():
            copies.append(edit(img, rng))
            owners.append(i)
            kinds.append(kind)
    with Embedder(config, device=settings.get("sync.device") or "cpu") as embedder:
        vectors = embedder.embed_images(copies)
    copy_vectors = np.stack([v.part(by) for v in vectors])
    distances = np.linalg.norm(copy_vectors - data.vectors[owners], axis=1)
    kinds_arr = np.asarray(kinds)
    found = metrics.top1(copy_vectors, data.vectors, owners)
    return {"pictures": len(images), "copies": len(copies), "distances": quantiles(distances),
            "by_edit": {k: round(float(np.median(distances[kinds_arr == k])), 4) for k in EDITS},
            "top1": round(float(found.mean()), 4), "_distances": distances}


def suggest_threshold(copies: np.ndarray, distinct: np.ndarray) -> dict[str, float]:
    """The distance that best tells an edited copy from the nearest *other* picture: the one that
    maximises (copies caught) − (pictures whose nearest other picture is flagged) (Youden's J)."""
    candidates = np.unique(np.concatenate([copies, distinct]))
    caught = np.searchsorted(np.sort(copies), candidates, side="right") / len(copies)
    flagged = np.searchsorted(np.sort(distinct), candidates, side="right") / max(len(distinct), 1)
    best = int(np.argmax(caught - flagged))
    return {"threshold": round(float(candidates[best]), 4), "copies_caught": round(float(caught[best]), 4),
            "distinct_pictures_flagged": round(float(flagged[best]), 4)}


def every_row(rows: np.ndarray, count: int) -> bool:
    return len(rows) == count and np.array_equal(rows, np.arange(count))


def rows_of(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors[rows]``, without a copy when ``rows`` are all of them in order (both configurations hold the same
    pictures: a library of a million pictures keeps its two arrays of 7.5 GB, not four)."""
    return vectors if every_row(rows, len(vectors)) else vectors[rows]


def compare(this: Labelled, that: Labelled, k: int, sample: int, seed: int,
            this_result: metrics.PerQuery | None = None) -> dict[str, Any]:
    """``this`` and ``that`` configuration on the pictures both hold with the same label, by the same queries:
    each figure of both, their paired difference (this − that) and its 95 % interval over resampled labels.
    ``this_result``: ``this``'s own retrieval over all its pictures (``evaluate``'s, drawn with the same seed),
    used as it is when ``that`` holds every one of them."""
    where = {artwork_id: row for row, artwork_id in enumerate(that.ids)}
    pairs = [(row, where[artwork_id]) for row, artwork_id in enumerate(this.ids)
             if artwork_id in where and that.labels[where[artwork_id]] == this.labels[row]]
    if not pairs:
        raise EvaluateError(f"configurations {this.config_id} and {that.config_id} hold no picture in common "
                            f"with the same label")
    rows_this, rows_that = (np.array(rows) for rows in zip(*pairs))
    _, codes = np.unique(this.labels[rows_this].astype(str), return_inverse=True)
    queries = None
    if sample and len(pairs) > sample:
        queries = np.sort(np.random.default_rng(seed).choice(len(pairs), size=sample, replace=False))
    if this_result is not None and every_row(rows_this, len(this.ids)):
        a = this_result
    else:
        a = metrics.retrieval(rows_of(this.vectors, rows_this), codes, k=k, queries=queries)
    b = metrics.retrieval(rows_of(that.vectors, rows_that), codes, k=k, queries=queries)
    if len(a.index) == 0:
        raise EvaluateError(f"configurations {this.config_id} and {that.config_id} hold no label with two or more "
                            f"pictures in common: nothing to compare")
    labels = int(len(np.unique(codes[a.index])))
    figures = {}
    for key, x, y in paired_figures(a, b, k):
        figures[key] = {"this": round(float(np.mean(x)), 4), "that": round(float(np.mean(y)), 4),
                        **difference(x, y, codes[a.index], labels, seed)}
    return {"config_id": that.config_id, "pictures": len(pairs), "labels": labels, "queries": int(len(a.index)),
            "figures": figures}


def expanded_search(data: Labelled, codes: np.ndarray, plain: metrics.PerQuery, k: int, queries, expand: int,
                    seed: int) -> dict[str, Any]:
    """The same queries searched as ``artvec similar`` and the site's "more like this" search (each query averaged
    with its ``expand`` nearest pictures first, the answer ranked among the query's nearest): its figures, and each
    one's difference to the plain search with its 95 % interval (labels resampled)."""
    result = metrics.retrieval(data.vectors, codes, k=k, queries=queries, expand=expand)
    labels = int(len(np.unique(codes[result.index])))
    differences = {key: difference(x, y, codes[result.index], labels, seed) for key, x, y in paired_figures(result, plain, k)}
    overall = {key: round(value, 4) if isinstance(value, float) else value for key, value in result.summary().items()}
    return {"expand": expand, "overall": overall, "difference": differences}


def paired_figures(a: metrics.PerQuery, b: metrics.PerQuery, k: int) -> list[tuple]:
    """(figure, a's per-query values, b's) for precision@k, mAP@R and nearest-neighbour accuracy."""
    return [(f"p@{k}", a.precision_at_k, b.precision_at_k), ("map@r", a.ap_at_r, b.ap_at_r),
            ("nn", a.nn_correct, b.nn_correct)]


def difference(x: np.ndarray, y: np.ndarray, groups: np.ndarray, labels: int, seed: int) -> dict[str, Any]:
    """x − y paired, its 95 % interval (labels resampled) and whether it is beyond the noise (never on fewer than
    ``MIN_LABELS_TO_JUDGE`` labels)."""
    mean, half = metrics.paired_difference(x, y, groups=groups, seed=seed)
    return {"difference": round(mean, 4), "interval": None if np.isnan(half) else round(half, 4),
            "beyond_noise": bool(labels >= MIN_LABELS_TO_JUDGE and abs(mean) > half)}


def evaluate(settings: "Settings", label: str, by: str = "both", k: int = 10, sample: int = 2000,
             duplicates: int = 8, config_id: str | None = None, seed: int = 0, against: str | None = None,
             progress: Callable[[str], None] = lambda message: None,
             advance: Callable[[int, int, float], None] | None = None, expand: int | None = None) -> dict[str, Any]:
    """Retrieval quality of the stored embeddings against the facet ``label``; see the module doc.
    ``progress`` gets a line at each stage, ``advance(done, total, seconds)`` follows the queries. ``expand``: the
    same queries searched again with the query averaged with its ``expand`` nearest pictures, as "more like this"
    searches (None: ``search.expand``; 0 or ``by`` copy: not)."""
    from . import db, store

    check_by(by)
    expand = check_expand(settings.get("search.expand") if expand is None else expand, by)
    store.engine_for_schema(settings).dispose()  # a clear error when the schema is missing
    url, configured = db.database_url(settings), settings.embedding_config().config_id
    data = read_labelled(url, label, by, config_id, configured, progress)
    other = None
    if against is not None:
        if against == data.config_id:
            raise EvaluateError(f"--against {against} is the configuration being judged: name another one "
                                f"(artvec configs lists them)")
        other = read_labelled(url, label, by, against, configured, progress)
    _, codes = np.unique(data.labels.astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    queries = None
    if sample and len(data.ids) > sample:
        queries = np.sort(rng.choice(len(data.ids), size=sample, replace=False))
    pairs = PairDistances(codes, rng)
    progress(f"{len(data.ids)} pictures with {label!r}, {len(np.unique(codes))} labels; searching …")
    result = metrics.retrieval(data.vectors, codes, k=k, queries=queries, on_distances=pairs, advance=advance)
    if len(result.index) == 0:
        raise EvaluateError(f"no label of {label!r} has two or more pictures: nothing to retrieve")
    labels = data.labels.astype(str)
    report = {
        "config_id": data.config_id, "label": label, "by": by, "pictures": len(data.ids),
        "labels": int(len(np.unique(codes))), "queries": int(len(result.index)),
        "overall": {key: round(value, 4) if isinstance(value, float) else value
                    for key, value in result.summary().items()},
        "chance_p@k": round(metrics.chance_precision(codes, result.index), 4),
        "per_label": per_label(labels, codes, result),
        "distances": pairs.summary(),
    }
    if expand:
        report["expanded"] = expanded_search(data, codes, result, k, queries, expand, seed)
    if other is not None:
        progress(f"judging {data.config_id} against {other.config_id} on the pictures both hold …")
        report["against"] = compare(data, other, k, sample, seed, this_result=result)
    dup = near_duplicate_distances(settings, data, by, duplicates, seed, progress)
    near = dup.pop("_distances", None)
    if near is not None:
        dup.update(suggest_threshold(near, np.concatenate(pairs.nearest)))
    report["near_duplicates"] = dup
    report["clustering"] = stored_clustering(settings, label)
    return report


def stored_clustering(settings: "Settings", label: str) -> dict[str, Any]:
    """NMI and ARI of the newest stored `artvec clusters` run against the label, if there is one."""
    from . import clusters, store

    engine = store.engine_for_schema(settings)
    try:
        with engine.connect() as connection:
            return clusters.nmi_against_facet(connection, label)
    except clusters.ClusterError as error:
        return {"skipped": str(error)}
    finally:
        engine.dispose()
