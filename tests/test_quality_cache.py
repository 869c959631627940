"""``benchmarks/quality.py`` keeps the vectors it made (``benchmarks/vector_cache.py``), so that its hours of embedding
resume where a killed run stopped; kept vectors must be the ones the code makes today, or the run stops and says so."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import quality  # noqa: E402
import sets  # noqa: E402
import vector_cache  # noqa: E402
from artvec.embedding import DEFAULT_CONFIG, V1_CONFIG, Embedder  # noqa: E402

#: the default's recipe and artvec 0.1's, on small inputs: two configurations as the benchmark embeds them, quickly
CONFIGS = {"default": replace(DEFAULT_CONFIG, image_size=64), "v1": replace(V1_CONFIG, image_size=64)}


def pictures(count: int) -> list:
    rng = np.random.default_rng(3)
    return [sets.Item(key=f"p{i}", label="L", group=f"p{i}",
                      image=Image.fromarray(rng.integers(0, 256, (48, 40 + i, 3), dtype=np.uint8)))
            for i in range(count)]


def kept(name: str) -> vector_cache.VectorCache:
    return vector_cache.VectorCache(CONFIGS[name].config_id, vector_cache.code_stamp(quality.EMBEDDING_CODE))


def shards(name: str) -> list:
    return list(vector_cache.cache_dir().glob(f"{CONFIGS[name].config_id}-*/shard-*.npz"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTVEC_BENCH_CACHE", str(tmp_path))
    return tmp_path / "vectors"


def test_a_second_run_uses_the_kept_vectors_and_resumes_a_partial_one(cache):
    items = pictures(6)
    first, _, _, _ = quality.embed_each(SimpleNamespace(items=items[:4]), CONFIGS, "cpu", chunk=2, timing=2)
    assert len(shards("default")) >= 2 and len(shards("v1")) >= 2   # a shard per chunk: a kill loses one chunk at most
    assert all(len(kept(name)) == 4 for name in CONFIGS)

    vectors, copies, seconds, _ = quality.embed_each(SimpleNamespace(items=items), CONFIGS, "cpu", chunk=2, timing=2)
    for name in CONFIGS:   # the four kept pictures come back as they were; the two new ones are embedded and kept
        np.testing.assert_array_equal(vectors[name][:4], first[name])
        assert kept(name).rows.keys() == {vector_cache.picture_digest(it.image) for it in items}
    with Embedder(CONFIGS["default"]) as embedder:   # the kept vectors are the Embedder's, as artvec sync makes them
        made = embedder.embed_images([it.image for it in items])
    np.testing.assert_allclose(vectors["default"], np.stack([v.combined for v in made]), atol=1e-5)
    np.testing.assert_allclose(copies["default"], np.stack([v.copy for v in made]), atol=1e-5)
    assert "v1" not in copies and all(s > 0 for s in seconds.values())


def test_a_kept_vector_that_the_code_no_longer_makes_stops_the_run(cache):
    items = pictures(3)
    quality.embed_each(SimpleNamespace(items=items), CONFIGS, "cpu", timing=0)
    for shard in shards("default"):   # as if the kept vectors came from other code
        with np.load(shard) as z:
            arrays = {name: z[name] for name in z.files}
        arrays["combined"] = arrays["combined"][:, ::-1].copy()
        np.savez(shard, **arrays)
    with pytest.raises(SystemExit, match="a kept vector differs from the one made now.*--fresh"):
        quality.embed_each(SimpleNamespace(items=items), CONFIGS, "cpu", timing=3)
    fresh, _, _, _ = quality.embed_each(SimpleNamespace(items=items), CONFIGS, "cpu", timing=3, fresh=True)
    kept, _, _, _ = quality.embed_each(SimpleNamespace(items=items), CONFIGS, "cpu", timing=0)
    assert not np.allclose(fresh["default"], kept["default"])   # --fresh neither used the bad vectors nor replaced them


def test_a_changed_picture_is_not_a_kept_one():
    a, b = pictures(2)
    same = Image.fromarray(np.asarray(a.image).copy())
    assert vector_cache.picture_digest(a.image) == vector_cache.picture_digest(same)
    assert vector_cache.picture_digest(a.image) != vector_cache.picture_digest(b.image)
    assert vector_cache.picture_digest(a.image) != vector_cache.picture_digest(a.image.convert("L").convert("RGB"))


def test_vectors_of_other_code_are_named_with_their_size_and_left_alone(cache, capsys):
    old = vector_cache.VectorCache("recipe-x", "0123456789ab")
    old.put(["d1", "d2"], {"combined": np.ones((2, 1000), np.float32)})
    vector_cache.VectorCache("recipe-x-wide", "0123456789ab").put(["d1"], {"combined": np.ones((1, 4), np.float32)})
    capsys.readouterr()
    new = vector_cache.VectorCache("recipe-x", "ba9876543210")
    said = capsys.readouterr().err
    assert "recipe-x: 1 folder(s) of vectors made by other code (0 MB) beside recipe-x-ba9876543210" in said
    assert "d1" not in new and old.folder.is_dir()   # another recipe whose name begins alike is not counted
    assert "d1" in vector_cache.VectorCache("recipe-x", "0123456789ab")
