"""The shipped whitening basis: what it is, that the default applies it exactly, and the errors around it."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from artvec import whitening
from artvec.edits import PAPERS, paper_tint, print_and_scan
from artvec.embedding import (CLEAN_CONFIG, DEFAULT_CONFIG, FIRST_WHITENED_CONFIG, HELLINGER_CONFIG, POWERED_CONFIG, SCANS_CONFIG,
                              UNWHITENED_CONFIG,
                              EmbeddingConfig, Embedder)
from artvec.errors import ConfigError
from helpers import run_cli


def _pictures() -> list[Image.Image]:
    import skimage.data

    return [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in ("astronaut", "coffee", "chelsea")]


def test_the_shipped_basis_fits_the_default_and_records_its_fit():
    basis = whitening.load(CLEAN_CONFIG.whitening)   # the drawings alone; the scans bases add a scan of each (below)
    assert CLEAN_CONFIG == dataclasses.replace(SCANS_CONFIG, whitening="clipart-v4")
    assert basis.parts_id == SCANS_CONFIG.parts_id == CLEAN_CONFIG.parts_id != DEFAULT_CONFIG.parts_id
    assert CLEAN_CONFIG.config_id == "vgg19-style-452b0579749d"   # the earlier defaults' vectors keep their ids
    # the default before the colour exponent keeps its basis, which fits it and not today's colour part
    assert whitening.load(HELLINGER_CONFIG.whitening).parts_id == HELLINGER_CONFIG.parts_id != DEFAULT_CONFIG.parts_id
    # the default before relu4_4 keeps its basis, which fits it and not today's layers
    assert whitening.load(POWERED_CONFIG.whitening).parts_id == POWERED_CONFIG.parts_id != DEFAULT_CONFIG.parts_id
    assert basis.meta["fitted_for"] == dataclasses.replace(SCANS_CONFIG, whitening="", copy_vector="").config_id
    assert basis.meta["pictures"] >= 1000
    # today's basis fits today's layout (the local binary patterns beside the histograms) and was fitted on it
    today = whitening.load(DEFAULT_CONFIG.whitening)
    assert today.parts_id == DEFAULT_CONFIG.parts_id
    assert today.meta["fitted_for"] == dataclasses.replace(DEFAULT_CONFIG, whitening="", copy_vector="").config_id
    # the first whitened default's basis still ships and fits it (its layout: the tone histogram × 0.55), not today's
    previous = whitening.load(FIRST_WHITENED_CONFIG.whitening)
    assert previous.parts_id == FIRST_WHITENED_CONFIG.parts_id != DEFAULT_CONFIG.parts_id
    assert previous.meta["fitted_for"] == UNWHITENED_CONFIG.config_id and previous.meta["files"] == basis.meta["files"]
    assert basis.meta["artists"] >= 400 and basis.meta["alpha"] == 0.25
    assert len(basis.meta["files"]) == basis.meta["pictures"] and basis.meta["source"].startswith("openclipart-svg ")
    for basis, config in ((basis, CLEAN_CONFIG), (today, DEFAULT_CONFIG)):
        for part, dim in (("style", config.style_dim), ("colour", config.colour_dim)):
            w = basis.parts[part]
            assert w.mean.shape == (dim,) and w.directions.shape == (dim, basis.meta["rank"])
            np.testing.assert_allclose(w.directions.T @ w.directions, np.eye(w.directions.shape[1]), atol=1e-4)
            # the leading directions (most variance) are scaled down most; what is left, least
            assert np.all(np.diff(w.scales) >= -1e-6) and 0 < w.scales[0] < w.scales[-1] <= 1 <= w.rest + 1e-6
    # the basis's content is part of the id: the same settings without it are another configuration
    assert dataclasses.replace(DEFAULT_CONFIG, whitening="none").config_id != DEFAULT_CONFIG.config_id
    assert dataclasses.replace(FIRST_WHITENED_CONFIG, whitening="none", colour_weight=0.322) == UNWHITENED_CONFIG


@pytest.mark.parametrize("shipped", [DEFAULT_CONFIG, FIRST_WHITENED_CONFIG], ids=["default", "first-whitened"])
def test_the_default_whitens_each_part_with_the_basis(shipped):
    """The basis applied to the unwhitened parts, computed here independently: L2(U·diag(s)·Uᵀ(x − μ) +
    r·(x − μ − UUᵀ(x − μ))) for the style part, and for the colour part inside combined = [style, w · colour]
    (w: 0.6 for both; today's default first raises each colour cube's share to 0.25, the first whitened one keeps
    the Hellinger histogram's 0.5); today's default then raises each whitened part to a signed power (style 0.85,
    colour 0.85) and makes it unit norm again. The three pictures go through the model and
    the whitening as one batch."""
    config = dataclasses.replace(shipped, image_size=96)     # same layout, small input: fast
    pictures = _pictures()
    with Embedder(config) as emb, Embedder(dataclasses.replace(config, whitening="none")) as plain:
        white, raw = emb.embed_images(pictures), plain.embed_images(pictures)
    basis = whitening.load(shipped.whitening)

    def whiten(part: str, x: np.ndarray) -> np.ndarray:
        w = basis.parts[part]
        y = x.astype(np.float64) - w.mean
        along = w.directions.T @ y
        out = w.directions @ (w.scales * along) + w.rest * (y - w.directions @ along)
        return out / np.linalg.norm(out)

    def power(x: np.ndarray, p: float) -> np.ndarray:     # today's default: then each part's signed power, L2
        y = np.sign(x) * np.abs(x) ** p
        return y / np.linalg.norm(y)

    for v, u in zip(white, raw):
        np.testing.assert_allclose(v.style, power(whiten("style", u.style), shipped.style_power), atol=2e-5)
        assert np.isclose(np.linalg.norm(v.style), 1, atol=1e-4) and np.linalg.norm(v.style - u.style) > 0.05
        # the colour part searched alone stays the plain histogram (palettes are points of its space) ...
        np.testing.assert_array_equal(v.colour, u.colour)
        # ... and inside the combined vector has its shares raised to the colour exponent (unit norm), then is whitened
        shares = u.colour.astype(np.float64) ** 2
        raised = shares ** shipped.colour_exponent / np.linalg.norm(shares ** shipped.colour_exponent)
        colour = power(whiten("colour", raised), shipped.colour_power)
        assert np.linalg.norm(colour - u.colour) > 0.05
        np.testing.assert_allclose(v.combined, np.concatenate([v.style, shipped.colour_weight * colour]), atol=2e-5)
    # a resized copy stays nearer its picture than the other pictures
    with Embedder(config) as emb:
        small = emb.embed_images([pictures[0].resize((256, 256))])[0]
    d = [np.linalg.norm(small.combined - v.combined) for v in white]
    assert d[0] < min(d[1:])


def _drawing(seed: int) -> Image.Image:
    """A small made-up drawing: ellipses in three flat colours and black lines of several weights, on white."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(img)
    colours = [tuple(int(c) for c in rng.integers(0, 255, 3)) for _ in range(3)]
    for _ in range(12):
        x0, y0 = int(rng.integers(0, 280)), int(rng.integers(0, 200))
        w, h = (int(v) for v in rng.integers(20, 120, 2))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colours[int(rng.integers(3))], outline="black", width=int(rng.integers(1, 5)))
        else:
            draw.line([x0, y0, x0 + w, y0 + h], fill="black", width=int(rng.integers(1, 6)))
    return img


def test_print_and_scan_takes_its_steps_apart():
    """print_and_scan(steps=...): no step leaves the drawing as it was; the tint alone lays it on one of the old
    papers; the strengths are drawn whatever the steps, so a skew added to the tint fills its corners with that same
    paper; an unknown step is a ValueError naming it."""
    drawing = _drawing(3)
    assert np.array_equal(np.asarray(print_and_scan(drawing, np.random.default_rng(5), steps=())), np.asarray(drawing))
    tinted = np.asarray(print_and_scan(drawing, np.random.default_rng(5), steps=("tint",))).astype(int)
    assert tinted.shape == np.asarray(drawing).shape
    paper = tinted[0, 0]        # the drawing's corner is white paper
    assert any(np.abs(paper - np.array(p)).max() <= 6 for p in PAPERS) and tuple(paper) != (255, 255, 255)
    skewed = np.asarray(print_and_scan(drawing, np.random.default_rng(5), steps=("tint", "skew"))).astype(int)
    assert skewed.shape[0] > tinted.shape[0] and np.abs(skewed[0, 0] - paper).max() <= 1
    with pytest.raises(ValueError, match="smudge"):
        print_and_scan(drawing, np.random.default_rng(5), steps=("tint", "smudge"))


def test_print_and_scan_on_one_paper_changes_the_paper_alone():
    """paper_tint names the paper print_and_scan lays a drawing on (its first draws, made again from the same seed);
    ``paper=N`` lays every drawing on the Nth paper, unjittered, and leaves the rest of the scan as it was drawn."""
    drawing = _drawing(4)
    for seed in range(6):
        index, colour = paper_tint(np.random.default_rng(seed))
        tinted = np.asarray(print_and_scan(drawing, np.random.default_rng(seed), steps=("tint",))).astype(int)
        assert np.abs(tinted[0, 0] - colour).max() <= 1 and np.abs(tinted[0, 0] - np.array(PAPERS[index])).max() <= 6
        on_one = np.asarray(print_and_scan(drawing, np.random.default_rng(seed), steps=("tint",), paper=2)).astype(int)
        assert tuple(on_one[0, 0]) == PAPERS[2] and paper_tint(np.random.default_rng(seed), 2)[0] == 2
        blank = {"light", "grain", "skew", "blur", "jpeg"}  # no tint: the paper stays white, so its choice changes nothing
        assert np.array_equal(np.asarray(print_and_scan(drawing, np.random.default_rng(seed), steps=blank)),
                              np.asarray(print_and_scan(drawing, np.random.default_rng(seed), steps=blank, paper=2)))


@pytest.mark.parametrize("scans_config", [SCANS_CONFIG, DEFAULT_CONFIG], ids=["scans-v1", "default"])
def test_the_scans_basis_fits_its_layout_and_counts_what_a_scan_moves_less(scans_config):
    """clipart-scans-v1, the previous default's basis, and clipart-scans-v2, today's (the same layout and the local binary
    patterns): each fitted on the reference drawings and a print and scan of each. Eight drawings and a print and scan of each (another paper, fade, light, grain each): under
    it, a scan is nearer its drawing, measured against the drawing's distance to the other drawings' scans, than under
    the previous default's basis, fitted on the drawings alone (0.70 against 0.73 at this input size when written)."""
    basis, clean = whitening.load(scans_config.whitening), whitening.load(CLEAN_CONFIG.whitening)
    assert SCANS_CONFIG.whitening == "clipart-scans-v1" and SCANS_CONFIG.config_id == "vgg19-style-b72a9dc7ebe1"
    assert DEFAULT_CONFIG.whitening == "clipart-scans-v2"
    assert basis.parts_id == scans_config.parts_id and CLEAN_CONFIG.config_id != scans_config.config_id
    assert basis.meta["files"] == clean.meta["files"] and basis.meta["pictures"] == 2 * len(basis.meta["files"])
    assert "print_and_scan" in basis.meta["scans"] and not clean.meta.get("scans")
    drawings = [_drawing(seed) for seed in range(8)]
    scans = [print_and_scan(d, np.random.default_rng([1, i])) for i, d in enumerate(drawings)]
    n = len(drawings)

    def embed(config):
        with Embedder(dataclasses.replace(config, image_size=96)) as emb:
            return emb.embed_images(drawings + scans)

    def nearness(vectors) -> float:
        x = np.stack([v.combined for v in vectors])
        d = np.linalg.norm(x[:n, None] - x[None, n:], axis=2)    # drawing i to scan j
        return float(np.mean([d[i, i] / np.delete(d[i], i).mean() for i in range(n)]))

    new, previous = embed(scans_config), embed(CLEAN_CONFIG)
    assert nearness(new) < nearness(previous) - 0.01
    for a, b in zip(new, previous):   # README (Upgrading): only the style part and the combined vector change
        np.testing.assert_array_equal(a.colour, b.colour)
        np.testing.assert_array_equal(a.copy, b.copy)
        assert a.style.shape != b.style.shape or np.linalg.norm(a.style - b.style) > 0.01


def test_fit_evens_out_the_directions_of_variation():
    """fit on correlated rows: α = 0 only centres; α = 0.5 with no shrinkage and full rank makes the
    centred rows' covariance the identity (before the unit norm)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 6)) @ np.diag([5.0, 2.0, 1.0, 0.5, 0.2, 0.1]) + 3.0
    plain = whitening.fit(x, alpha=0.0, shrinkage=0.1, rank=6)
    centred = x[:5] - x.mean(0)
    np.testing.assert_allclose(plain.apply(x[:5]), centred / np.linalg.norm(centred, axis=1, keepdims=True), atol=1e-5)
    full = whitening.fit(x, alpha=0.5, shrinkage=0.0, rank=6)
    y = x - full.mean
    white = (y @ full.directions) * full.scales
    cov = np.cov(white.T)
    np.testing.assert_allclose(cov / cov[0, 0], np.eye(len(cov)), atol=0.05)   # isotropic, up to the scale
    partial = whitening.fit(x, alpha=0.25, shrinkage=0.1, rank=2)            # 2 directions kept, the rest shared
    assert partial.directions.shape == (6, 2) and partial.scales[0] < partial.scales[1] < partial.rest


def test_fit_within_groups_counts_what_each_group_varies_in_less():
    """Rows in groups: along 8 axes every group spreads widely (what one hand varies: subjects), along 8 others
    the groups sit apart and each keeps to its place (what tells hands apart). The plain fit (α ½, full rank)
    evens out the total variance and so still finds a row's nearest neighbour mostly in another group; the
    within-group fit (``within`` 1) scales the first axes down, the second up, and finds it in the same group.
    Groups labelled "" and groups of one row are left out of the within covariance."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(100), 5)
    x = np.concatenate([rng.standard_normal((len(groups), 8)) * 2.0,                               # within each group
                        rng.standard_normal((100, 8))[groups] + 0.2 * rng.standard_normal((len(groups), 8))], 1)
    labels = [str(g) for g in groups]
    plain = whitening.fit(x, alpha=0.5, shrinkage=0.0, rank=15)
    within = whitening.fit(x, alpha=0.5, shrinkage=0.0, rank=15, groups=labels, within=1.0)

    def scale_along(w, axis):  # the length of the transform's image of that axis (the leading directions and the rest)
        d = w.directions
        m = d @ np.diag(w.scales) @ d.T + w.rest * (np.eye(len(d)) - d @ d.T)
        return float(np.linalg.norm(m[:, axis]))

    assert 0.5 < scale_along(plain, 0) / scale_along(plain, 8) < 2
    assert scale_along(within, 0) / scale_along(within, 8) < 0.2

    def same_group_nearest(w):
        y = w.apply(x)
        d = np.linalg.norm(y[:, None] - y[None], axis=2)
        np.fill_diagonal(d, np.inf)
        return float(np.mean(groups[d.argmin(1)] == groups))

    assert same_group_nearest(plain) < 0.5 < 0.9 < same_group_nearest(within)
    # unlabelled rows and single rows do not enter the within covariance
    np.testing.assert_allclose(whitening.within_covariance(x, labels[:-2] + ["", "lonely"]),
                               whitening.within_covariance(x[:-2], labels[:-2]))
    with pytest.raises(ValueError, match="groups with two rows"):
        whitening.fit(x[:3], 0.5, 0.0, 2, groups=["a", "b", ""], within=1.0)


def test_whitening_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="unknown embedding whitening 'bogus'.*clipart-v1, clipart-v2"):
        EmbeddingConfig.from_dict({"whitening": "bogus"})
    with pytest.raises(ValueError, match="whitening must be none or the name"):
        EmbeddingConfig(whitening="../etc/passwd")
    assert EmbeddingConfig.from_dict({"whitening": "None"}).whitening == ""
    other_layout = EmbeddingConfig(image_size=64, layers=("relu2_1",))
    with pytest.raises(ConfigError, match='laid out as vgg19-style-1f5f56a65d8d.*layers .* here.*whitening = "none"'):
        Embedder(other_layout)
    # the first whitened default's basis with the previous default's tone weight: the message names the setting that differs
    with pytest.raises(ConfigError, match=r"clipart-v1.*\(tone_weight 0\.2 here, 0\.55 for it\)") as info:
        Embedder(dataclasses.replace(POWERED_CONFIG, whitening="clipart-v1"))
    assert "\n" not in str(info.value)
    Embedder(dataclasses.replace(other_layout, whitening="none")).close()
    picture = tmp_path / "p.png"
    _pictures()[1].save(picture)
    env = {**os.environ, "ARTVEC_HOME": str(tmp_path / "home"), "ARTVEC_EMBEDDING_IMAGE_SIZE": "64"}
    bad = run_cli("embed", str(picture), env={**env, "ARTVEC_EMBEDDING_WHITENING": "bogus"}, cwd=tmp_path, check=False)
    assert bad.returncode != 0 and bad.stdout == "" and bad.stderr.strip().count("\n") == 0
    assert "unknown embedding whitening 'bogus'" in bad.stderr
    unfit = run_cli("embed", str(picture), env={**env, "ARTVEC_EMBEDDING_LAYERS": "relu2_1"}, cwd=tmp_path, check=False)
    assert unfit.returncode != 0 and unfit.stderr.strip().count("\n") == 0 and "whitening" in unfit.stderr
    out = run_cli("embed", str(picture), "--out", str(tmp_path / "v.npy"),
                  env={**env, "ARTVEC_EMBEDDING_LAYERS": "relu2_1", "ARTVEC_EMBEDDING_WHITENING": "none"}, cwd=tmp_path)
    unwhitened = EmbeddingConfig(image_size=64, layers=("relu2_1",), whitening="none")
    assert np.load(tmp_path / "v.npy").shape == (1, unwhitened.dim) == (1, 160 + 160 + 32 + 16 + 32 + 30 + 512)
    assert unwhitened.config_id in out.stdout


def test_a_damaged_basis_file_is_one_line(tmp_path, monkeypatch):
    """A truncated basis (a broken install) is a ConfigError naming the file, not a traceback."""
    data = whitening.path_of("clipart-v1").read_bytes()
    (tmp_path / "whitening-damaged.npz").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(whitening, "DATA_DIR", tmp_path)
    assert whitening.available() == ["damaged"]
    with pytest.raises(ConfigError, match=r"whitening basis .*whitening-damaged\.npz cannot be read .*reinstall") as info:
        whitening.load("damaged")
    assert "\n" not in str(info.value)
