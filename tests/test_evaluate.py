"""`artvec evaluate`: retrieval figures of the stored vectors against a facet, on a real store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import text

from artvec import metrics
from helpers import run_cli


def test_metrics_by_hand():
    # labels a a a b b; R = 2 for an "a". Query 0's neighbours in order: 1 (a), 3 (b), 4 (b), 2 (a):
    # within the first R ranks only rank 1 is relevant -> AP@R = (1/2)·(1/1) = 0.5; query 1 (at 1.0) has
    # 0 (a) then 3 (b) -> 0.5 as well; a "b" finds the other "b" first -> 1.0
    x = np.array([[0.0], [1.0], [3.0], [2.0], [2.1]])
    result = metrics.retrieval(x, ["a", "a", "a", "b", "b"], k=2)
    assert list(result.index) == [0, 1, 2, 3, 4]
    assert result.ap_at_r[0] == 0.5 and result.ap_at_r[3] == 1.0 and result.ap_at_r[4] == 1.0
    assert result.precision_at_k[0] == 0.5 and result.nn_correct[0]
    assert result.nn_correct[2] == False  # noqa: E712  (3.0's nearest is 2.1, a "b")
    assert metrics.retrieval(x, ["a", "b", "c", "d", "e"]).summary()["queries"] == 0   # no label repeats


def test_metrics_on_a_dissimilarity_no_vector_gives():
    # the benchmarks score dissimilarity matrices (a sharp kernel beside the vector): the same
    # figures as the vectors when the matrix is their squared distances, others when it is not
    x = np.array([[0.0], [1.0], [3.0], [2.0], [2.1]])
    labels = ["a", "a", "a", "b", "b"]
    d = metrics.squared_distances(x, x)
    same = metrics.retrieval(None, labels, k=2, distances=lambda rows: d[rows].copy())
    assert np.array_equal(same.ap_at_r, metrics.retrieval(x, labels, k=2).ap_at_r)
    bonus = d.copy()
    bonus[2, 0] = bonus[0, 2] = 0.01  # picture 2 made a copy of 0: query 0 now finds both "a"s first
    other = metrics.retrieval(None, labels, k=2, distances=lambda rows: bonus[rows].copy())
    assert other.ap_at_r[0] == 1.0 and other.nn_correct[2]


def test_the_nearest_come_in_stable_sort_order_without_sorting_whole_rows():
    rng = np.random.default_rng(3)
    tied = rng.integers(0, 40, size=(30, 3000)).astype(np.float64)   # many ties at every boundary
    distinct = rng.random((30, 3000))
    for d in (tied, distinct):
        for depth in (1, 10, 57, 700, 2999):
            assert np.array_equal(metrics.nearest_in_order(d, depth), np.argsort(d, axis=1, kind="stable")[:, :depth])


def test_a_large_store_is_searched_in_float32_chunks_with_the_same_figures(monkeypatch):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 60, 3000)
    centres = rng.standard_normal((60, 48))
    x = (centres[labels] + 0.9 * rng.standard_normal((3000, 48))).astype(np.float32)
    exact = metrics.Database(x)
    assert exact.exact and np.array_equal(exact.squared(x[:7]), metrics.squared_distances(x[:7], x))
    before = metrics.retrieval(x, labels, k=10)
    found_before = metrics.top1(x[:300] + 0.01, x, np.arange(300))
    monkeypatch.setattr(metrics, "FLOAT64_BUDGET", 0)            # as for a library of millions
    monkeypatch.setattr(metrics, "CHUNK_BUDGET", 16 * 8 * 3000)  # 16 query rows a chunk
    large = metrics.Database(x)
    assert not large.exact and large.chunk() == 16
    assert np.abs(large.squared(x[:7]) - metrics.squared_distances(x[:7], x)).max() < 1e-4
    done = []
    after = metrics.retrieval(x, labels, k=10, advance=lambda n, total, seconds: done.append((n, total)))
    assert done[0] == (16, 3000) and done[-1] == (3000, 3000) and len(done) == 188
    assert np.array_equal(before.precision_at_k, after.precision_at_k)
    assert np.array_equal(before.nn_correct, after.nn_correct)
    assert np.allclose(before.ap_at_r, after.ap_at_r, atol=1e-6)
    assert 0.2 < after.summary()["map@r"] < 0.9                   # neither trivial nor hopeless
    assert np.array_equal(found_before, metrics.top1(x[:300] + 0.01, x, np.arange(300)))


def served_by_hand(x: np.ndarray, q: int, n: int, page: int, every: bool) -> list[int]:
    """What the unfiltered "more like this" serves for picture q, page of ``page``: its nearest by the plain distance,
    the query averaged with the first n, and the query's max(40, 3 × page) nearest (``every``: all) ranked by the
    distance to that average; ties by row."""
    x = x.astype(np.float64)
    d = ((x - x[q]) ** 2).sum(1)
    d[q] = np.inf
    order = np.lexsort((np.arange(len(x)), d))[:-1]
    average = (x[q] + x[order[:n]].sum(0)) / (n + 1)
    to_average = ((x - average) ** 2).sum(1)
    candidates = order if every else order[:max(40, 3 * page)]
    return list(candidates[np.lexsort((candidates, to_average[candidates]))][:page])


def test_more_like_this_figures_rank_as_the_search_does():
    """The expanded figures of ``evaluate`` and the benchmarks are those of the pages artvec serves unfiltered (the
    answer ranked among the query's nearest); ``rerank=False``, those of the search under a filter (every picture)."""
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(14), [30, 30] + [12] * 12)     # R up to 29: pages of up to 87 candidates
    x = (rng.standard_normal((14, 24))[labels] * 0.8 + rng.standard_normal((len(labels), 24))).astype(np.float32)
    sizes = np.bincount(labels)
    for every in (False, True):
        result = metrics.retrieval(x, labels, k=10, expand=2, rerank=not every)
        for q in range(len(x)):
            r = sizes[labels[q]] - 1
            page = served_by_hand(x, q, 2, 10, every)
            assert result.precision_at_k[q] == pytest.approx(np.mean(labels[page] == labels[q]))
            assert result.nn_correct[q] == (labels[page[0]] == labels[q])
            hits = labels[served_by_hand(x, q, 2, r, every)] == labels[q]
            assert result.ap_at_r[q] == pytest.approx((np.cumsum(hits) / np.arange(1, r + 1) * hits).sum() / r)
    # the two differ here, so the figures could not pass for either by chance
    among_nearest = metrics.retrieval(x, labels, k=10, expand=2)
    among_every = metrics.retrieval(x, labels, k=10, expand=2, rerank=False)
    assert (among_nearest.ap_at_r != among_every.ap_at_r).sum() > 5
    assert (among_nearest.precision_at_k != among_every.precision_at_k).sum() > 2
    copies = x[:40] + rng.normal(0, 0.3, (40, 24)).astype(np.float32)
    found = metrics.top1(copies, x, np.arange(40), expand=2)
    for q in range(40):
        d = ((x - copies[q]) ** 2).sum(1)
        order = np.lexsort((np.arange(len(x)), d))
        average = (copies[q] + x[order[:2]].sum(0)) / 3
        first = order[:40][np.argmin(((x[order[:40]] - average) ** 2).sum(1))]
        assert found[q] == (first == q)


def store_vectors(engine, labels: list[str], vectors: np.ndarray) -> None:
    dims = dict(engine.connect().execute(text("""
        select attname, atttypmod from pg_attribute
        where attrelid = 'artvec.embeddings'::regclass and attname in ('embedding', 'style', 'colour')""")).all())
    with engine.begin() as connection:
        connection.execute(text("""
            insert into artvec.models (config_id, name, config, style_dim, colour_dim, dim)
            values ('test-cfg', 'test', '{}', :style, :colour, :embedding)"""), dims)
        for i, (label, v) in enumerate(zip(labels, vectors)):
            full = np.zeros(dims["embedding"], dtype=np.float32)
            full[: len(v)] = v
            fmt = lambda a: "[" + ",".join(f"{x:.6f}" for x in a) + "]"  # noqa: E731
            connection.execute(text("""
                insert into artvec.embeddings (artwork_id, config_id, embedding, style, colour, image_sha256,
                                               image_location, facets)
                values (:id, 'test-cfg', :embedding, :style, :colour, '\\x00', :location, :facets)"""),
                {"id": i + 1, "embedding": fmt(full), "style": fmt(full[: dims["style"]]),
                 "colour": fmt(full[dims["style"]:]), "location": f"missing-{i}.png",
                 "facets": json.dumps({"artist": label, "era": "1860s"})})


def store_other(engine, config, labels: list[str], vectors, ids=None) -> None:
    """Vectors of an inactive configuration ``config`` in its own table (each padded with zeros to its width)."""
    from artvec import store

    with engine.begin() as connection:
        configuration = store.register_model(connection, config)
        dims = configuration.dims
        for i, (label, v) in enumerate(zip(labels, vectors)):
            vector = np.zeros(dims["embedding"], dtype=np.float32)
            vector[: len(v)] = v
            fmt = lambda a: "[" + ",".join(f"{x:.6f}" for x in a) + "]"  # noqa: E731
            connection.execute(text(f"""
                insert into {configuration.table} (artwork_id, config_id, embedding, style, colour,
                                                   image_sha256, image_location, facets)
                values (:id, :config_id, :embedding, :style, :colour, '\\x00', :location, :facets)"""),
                {"id": ids[i] if ids else i + 1, "config_id": config.config_id, "embedding": fmt(vector),
                 "style": fmt(vector[: dims["style"]]), "colour": fmt(vector[dims["style"]:]),
                 "location": f"missing-{i}.png", "facets": json.dumps({"artist": label})})


def test_evaluate_separates_good_and_bad_labels(env, engine):
    run_cli("init", env=env)
    rng = np.random.default_rng(0)
    labels = [name for name in ("Doré", "Crane", "Hokusai") for _ in range(6)] + ["Turner"] * 6
    centres = {"Doré": 0, "Crane": 1, "Hokusai": 2}
    vectors = rng.normal(0, 0.05, (len(labels), 8))
    for i, label in enumerate(labels):
        if label in centres:
            vectors[i, centres[label]] += 1.0   # three tight groups; Turner's pictures are scattered
        else:
            vectors[i, 3 + i % 5] += 1.0
    store_vectors(engine, labels, vectors)

    report = json.loads(run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--json", env=env).stdout)
    assert report["config_id"] == "test-cfg" and report["pictures"] == 24 and report["labels"] == 4
    per_label = {row["label"]: row for row in report["per_label"]}
    for name in centres:
        assert per_label[name]["map@r"] == 1.0 and per_label[name]["nn"] == 1.0
    assert per_label["Turner"]["map@r"] < 0.5
    assert report["per_label"][0]["label"] == "Turner"                       # worst first
    assert 0.75 < report["overall"]["map@r"] < 1.0
    assert report["distances"]["same_label"]["p50"] < report["distances"]["other_label"]["p50"]
    assert report["near_duplicates"] == {"skipped": "--duplicates 0"}
    assert report["clustering"] == {"skipped": "no clustering stored yet: run `artvec clusters` first"}
    # the same queries searched as "more like this" searches them (search.expand: 2), beside the plain figures
    codes = np.unique(labels, return_inverse=True)[1]
    expanded = metrics.retrieval(vectors.astype(np.float32), codes, k=10, expand=2).summary()
    assert report["expanded"]["expand"] == 2
    assert report["expanded"]["overall"]["map@r"] == pytest.approx(expanded["map@r"], abs=1e-3)
    difference = report["expanded"]["difference"]["map@r"]
    assert difference["difference"] == pytest.approx(expanded["map@r"] - report["overall"]["map@r"], abs=2e-3)
    assert not difference["beyond_noise"]                          # four labels: never judged
    three = json.loads(run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--expand", "3", "--json",
                               env=env).stdout)["expanded"]
    assert three["overall"]["map@r"] == pytest.approx(
        metrics.retrieval(vectors.astype(np.float32), codes, k=10, expand=3).summary()["map@r"], abs=1e-3)
    plain = run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--expand", "0", env=env).stdout
    assert "more like this" not in plain
    shown = run_cli("evaluate", "--label", "artist", "--duplicates", "0", env=env).stdout
    assert "more like this (the query averaged with its 2 nearest first): precision@10" in shown

    run_cli("clusters", "--k", "4", env=env)
    grouped = json.loads(run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--json", env=env).stdout)
    assert grouped["clustering"]["groups"] == 4 and grouped["clustering"]["pictures"] == 24
    assert grouped["clustering"]["nmi"] > 0.6                  # three tight groups are found whole

    text_out = run_cli("evaluate", "--label", "artist", "--duplicates", "3", "--worst", "2", env=env).stdout
    assert "precision@10" in text_out and "Turner" in text_out and "… 2 more labels" in text_out
    assert "near-duplicates: not measured (no stored picture could be read" in text_out

    wrong = run_cli("evaluate", "--label", "school", env=env, check=False)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip().splitlines() == ["error: no stored picture has the facet 'school'; stored facets: artist, era"]
    bad_by = run_cli("evaluate", "--label", "artist", "--by", "texture", env=env, check=False)
    assert bad_by.returncode == 2 and bad_by.stderr.strip().startswith("error: --by must be one of both, style, colour")


def test_evaluate_on_an_empty_store(env):
    run_cli("init", env=env)
    result = run_cli("evaluate", "--label", "artist", env=env, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == "error: the store holds no embeddings yet: run `artvec sync` first"


def test_evaluate_reads_an_inactive_configuration_from_its_own_table(env, engine):
    """The view shows the active configuration; --config-id of another one reads that one's table."""
    from dataclasses import replace

    from artvec.embedding import DEFAULT_CONFIG

    run_cli("init", env=env)
    store_vectors(engine, ["Doré"] * 3 + ["Crane"] * 3, np.eye(6, 8))     # the view's (test-cfg)
    other = replace(DEFAULT_CONFIG, colour_bins=4)                          # colour 4³ = 64 dims
    store_other(engine, other, ["ab"[i % 2] for i in range(8)], [np.eye(2)[i % 2] for i in range(8)])   # two tight groups

    default = json.loads(run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--json", env=env).stdout)
    assert default["config_id"] == "test-cfg" and default["pictures"] == 6
    chosen = json.loads(run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--json",
                                "--config-id", other.config_id, env=env).stdout)
    assert chosen["config_id"] == other.config_id and chosen["pictures"] == 8 and chosen["labels"] == 2
    assert chosen["overall"]["map@r"] == 1.0
    missing = run_cli("evaluate", "--label", "artist", "--config-id", "nope", env=env, check=False)
    assert missing.returncode != 0
    assert missing.stderr.strip() == (f"error: no embeddings of configuration 'nope' "
                                      f"(stored: {', '.join(sorted(['test-cfg', other.config_id]))})")


def test_evaluate_against_another_configuration_says_which_is_ahead_beyond_the_noise(env, engine):
    """--against: both configurations judged on the pictures both hold, by the same queries. Tight groups by
    label are ahead of scattered vectors beyond the noise, either way round; the same vectors are level within
    it; a picture the other lacks is left out; naming the judged configuration is a one-line error."""
    from dataclasses import replace

    from artvec.embedding import DEFAULT_CONFIG

    run_cli("init", env=env)
    rng = np.random.default_rng(1)
    labels = [f"artist {i}" for i in range(12) for _ in range(5)]
    scattered = rng.normal(0, 1, (60, 16))
    store_vectors(engine, labels, scattered)                                   # the active one: test-cfg
    grouped = replace(DEFAULT_CONFIG, colour_bins=4)
    tight = [np.eye(16)[i // 5] + rng.normal(0, 0.05, 16) for i in range(60)]
    store_other(engine, grouped, labels[5:], tight[5:], ids=list(range(6, 61)))   # lacks artist 0's pictures
    same = replace(DEFAULT_CONFIG, colour_bins=2)
    store_other(engine, same, labels, scattered)

    def against(*args):
        return json.loads(run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--json", *args,
                                  env=env).stdout)["against"]

    worse = against("--against", grouped.config_id)
    assert worse["config_id"] == grouped.config_id and worse["pictures"] == 55 and worse["labels"] == 11
    assert worse["queries"] == 55
    figure = worse["figures"]["map@r"]
    assert figure["that"] == 1.0 and figure["this"] < 0.5 and figure["beyond_noise"]
    assert figure["difference"] == round(figure["this"] - figure["that"], 4) and 0 < figure["interval"] < 0.5
    better = against("--config-id", grouped.config_id, "--against", "test-cfg")
    assert better["figures"]["map@r"]["difference"] == -figure["difference"] and better["figures"]["p@10"]["beyond_noise"]
    level = against("--against", same.config_id)
    assert level["pictures"] == 60
    assert all(f["difference"] == 0 and not f["beyond_noise"] for f in level["figures"].values())

    text_out = run_cli("evaluate", "--label", "artist", "--duplicates", "0", "--against", grouped.config_id,
                       env=env).stdout
    assert f"test-cfg − {grouped.config_id}, on the 55 pictures both hold" in text_out
    assert f"{grouped.config_id} ahead, beyond the noise" in text_out
    itself = run_cli("evaluate", "--label", "artist", "--against", "test-cfg", env=env, check=False)
    assert itself.returncode != 0 and "Traceback" not in itself.stderr and itself.stderr.strip().splitlines()[-1] == (
        "error: --against test-cfg is the configuration being judged: name another one (artvec configs lists them)")


def test_a_comparison_over_a_handful_of_labels_calls_nothing_beyond_the_noise():
    """compare(): however large the difference, fewer labels than MIN_LABELS_TO_JUDGE decide nothing."""
    from artvec.evaluate import MIN_LABELS_TO_JUDGE, Labelled, compare

    rng = np.random.default_rng(2)

    def labelled(count: int, tight: bool, config_id: str) -> Labelled:
        labels = np.array([f"artist {i // 5}" for i in range(count * 5)], dtype=object)
        vectors = (np.eye(16)[[i // 5 for i in range(count * 5)]] if tight else 0) + rng.normal(0, 0.05 if tight else 1,
                                                                                                 (count * 5, 16))
        return Labelled([str(i) for i in range(count * 5)], labels, vectors.astype(np.float32), [], config_id, {})

    few = compare(labelled(4, False, "a"), labelled(4, True, "b"), k=4, sample=0, seed=0)["figures"]["map@r"]
    assert few["difference"] < -0.3 and not few["beyond_noise"]
    enough = compare(labelled(MIN_LABELS_TO_JUDGE, False, "a"), labelled(MIN_LABELS_TO_JUDGE, True, "b"), k=4, sample=0,
                     seed=0)["figures"]["map@r"]
    assert enough["difference"] < -0.3 and enough["beyond_noise"]
