"""Printed and scanned clip art: which parts of the default hold up on scans, and what was tried to make the
rest hold.

A library's pictures are scans of paper: each on its own paper tint, the ink a little faded, the light a
little uneven. ``artvec.edits.print_and_scan`` does that to the clip-art drawings (the set ``scans``; quality.py scores
it beside the clean drawings with ``--sets ...,clipart,scans``). This script takes the default apart on it:

- each part searched alone, unwhitened, on the clean drawings and on their scans (mAP@R): the model's layers,
  and the tone, edge, coherence and colour histograms;
- rows of the default's recipe with one thing changed, each with a basis refitted for it, paired to the
  default refitted here (the control): the basis fitted on the reference set *and its scans* (all of them, or
  one in three), so that the directions a scan moves count less, or on the reference set alone with what each
  scan moved added to its covariance (× 1, × 4); the tone and coherence histograms (or all
  four) taken after the paper is made white (each channel scaled so that its 99th percentile is 255, when
  that is light), or after the luma's 99th percentile is made white; and both;
- the histograms made to tolerate a shift instead: the tone histogram's counts (or the coherence) spread over
  neighbouring steps (a Gaussian of σ steps), small gradients counted as flat in the edge histogram, and the
  paper's luma kept as a number of its own beside the white-point histograms;
- with --steps, which of a scan's steps the basis should learn to count less: bases fitted on the reference set
  and scans of it made with some of print_and_scan's steps only (the paper's tint and the ink's fade; with the
  light's fall-off; with the grain; the grain, skew, blur and JPEG without the tint);
- with --around, the neighbourhood of today's basis (the one fitted on the reference set and its scans), paired to it
  instead of the control: a second scan of each reference drawing (other draws, seeded ``[9, i]``; one more model
  pass over the reference set, 4 minutes), the scans alone, a share of the covariance taken *within* each drawing and
  its scans (what a scan moves: ``whitening.fit(..., groups, within)``), and the exponent and shrinkage moved;
- with --patterns (instead of the rest), the local binary patterns beside the histograms (the default's rings and
  threshold, and others, at several weights), each with a basis refitted on the reference set and its scans, paired to
  the previous default's recipe (no patterns; its basis refitted the same way);
- with --pattern-variants (instead of the rest), other local binary patterns in place of the default's, paired to the
  default (its basis and theirs refitted on the reference set and its scans): more rings (4, 5, or 1, 2, 3 and 5),
  ternary patterns (Tan & Triggs 2010: the neighbours darker than the centre by the threshold counted too, a second
  code a ring), and the default's rings beside rings 1 and 2 on the luma at half scale (2 × 2 averaged);
- with --paintings (instead of the rest), the default's settings moved one at a time (the colour's weight, each
  histogram's, the powers), each scored on the seven sets and on the painted portraits and their scans
  (portraits.py), paired to the default, every basis fitted on the reference drawings and their scans;
- with --painting-features (instead of the rest), the style part changed where the settings cannot, scored on the seven
  sets and the paintings, paired to the default (every basis refitted on the reference drawings and their scans): the
  model's layers read again at 128² and averaged with the default's (or in their place), the model given RGB (or its
  layers averaged with the luminance's), the four layers weighted otherwise, and a content piece (relu5_4 average-pooled,
  the Embedder's ``content_weight``) in the style part, these also against that content CNN alone, or as a third part
  of the combined vector, whitened on its own;
- with --painted-basis (instead of the rest), the whitening on paintings: the shipped default against itself unwhitened
  on the paintings; the basis fitted with painted portraits among the reference pictures (Naev's, another game's and
  other hands, or Wesnoth's outside the set; with a scan of each, alone, or counted three times), or on Naev's alone;
  and the exponent and shrinkage moved; on the seven sets and the paintings, paired to the default refitted here
  (needs naev-data: portraits.py);
- with --colour-pieces (instead of the rest), more of the colour inside the combined vector's colour part (whitened
  with it): the colours of the edges (4³ cubes, the pixels whose luma gradient exceeds 16 or 32 levels), each 4³ cube's
  coherence (the tone coherence's idea on the colour), the chroma's edges (the gradient of the two opponent channels,
  16 log steps) and the saturation (16 log steps); on the seven sets and the paintings, paired to the default;
- with --expansion (instead of the rest), the default's vectors searched as ``artvec similar`` searches them: each
  query averaged with its n nearest pictures first (n = 1, 2, 3, 5; ``search.expand``), on the seven sets and the
  paintings, paired to the plain search;
- with --model-input, whether the model's layers hold better when the model is given the picture after the luma's
  white point, or after its white and black points (the paper's tint and the ink's fade undone before the model; two
  more model passes over every picture).

It runs the model once per picture (the five sets, the clip art and its scans, the reference set and its
scans: about 6,000 pictures, 16 minutes on 2 cores; the layers are cached in
``~/.cache/artvec-bench/scans-lab``), then a few seconds a row.

Needs what quality.py needs, with the clip art (clipart.py).
Usage: python benchmarks/scans.py [--device cpu|cuda] [--steps] [--around] [--model-input] [--patterns]
       [--pattern-variants] [--paintings] [--painting-features] [--painted-basis] [--colour-pieces] [--expansion]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lab  # noqa: E402
import reference  # noqa: E402
import sets  # noqa: E402
from fit_whitening import ALPHA, RANK, SCAN_SEED, SHRINKAGE, reference_scan  # noqa: E402
from artvec import metrics, whitening  # noqa: E402
from artvec.embedding import (DEFAULT_CONFIG as DEFAULT, Embedder, _luma, coherence_histogram,  # noqa: E402
                              colour_histogram, colour_shares_power, edge_histogram, luminance, pattern_histogram,
                              pattern_ring, signed_power, tone_histogram, unit_norm)
from artvec.images import load_image  # noqa: E402
from cards import bench_cache  # noqa: E402

SETS = ("cards", "tiles", "icons", "chess", "stylised", "clipart", "scans")
LAYERS_DIM = sum(DEFAULT.layer_dim(layer) for layer in DEFAULT.layers)
HISTOGRAM_WEIGHTS = (DEFAULT.tone_weight, DEFAULT.edge_weight, DEFAULT.coherence_weight, DEFAULT.pattern_weight)
#: the configuration the layers block is read from: the default unwhitened, without the local binary patterns (the same
#: layers: the cache made before them stays valid), and the scale of the layers block in its style part
LAYERS_CONFIG = dataclasses.replace(DEFAULT, whitening="", pattern_weight=0.0)
LAYERS_NORM = lab.style_norm(*HISTOGRAM_WEIGHTS[:3])
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: --steps: the reference drawings' scans for the basis made with some of print_and_scan's steps only (the same draws)
STEP_SUBSETS = {"tint": ("tint",), "tint+light": ("tint", "light"), "tint+light+grain": ("tint", "light", "grain"),
                "degrade": ("grain", "skew", "blur", "jpeg")}


def model_layers(load: Callable[[], list], keys: list[str], device: str, config=None) -> np.ndarray:
    """The default's layers block (unit norm, before the histograms join it) of every picture, by the Embedder
    unwhitened (or by ``config``, a change of its input: then the keys say so); cached by the pictures' keys, so
    ``load`` (the pictures) is called only when they are not cached."""
    config = config or LAYERS_CONFIG
    return embedded_rows(f"layers-{config.parts_id}", "model", load, keys, device, config,
                         lambda v: v.style[:LAYERS_DIM] * np.float32(LAYERS_NORM))


def embedded_rows(cache_name: str, what: str, load: Callable[[], list], keys: list[str], device: str, config,
                  row: Callable) -> np.ndarray:
    """``row`` of each picture's vectors by an Embedder of ``config``, stacked; cached as ``cache_name`` and a digest of
    the pictures' keys, so ``load`` (the pictures) is called only when they are not cached."""
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    path = bench_cache("scans-lab") / f"{cache_name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    pictures, rows, t = load(), [], time.time()
    with Embedder(config, device=device) as embedder:
        for start in range(0, len(pictures), 64):
            vectors = embedder.embed_images(pictures[start:start + 64])
            rows += [row(v) for v in vectors]
            print(f"  {what}: {start + len(vectors)}/{len(pictures)} ({time.time() - t:.0f}s)", flush=True)
    rows = np.stack(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, rows)
    return rows


#: --painting-features: the content piece read on the default's input, every channel (the Embedder's ``content_weight``
#: and ``content_dims`` 512: relu5_4 average-pooled, square-rooted, L2)
CONTENT_CONFIG = dataclasses.replace(LAYERS_CONFIG, copy_vector="", content_weight=1.0, content_dims=512)
#: --painting-features: the model's input changed, its layers block read again (cached apart by the key prefix)
INPUT_VARIANTS = {"s128": dict(image_size=128), "rgb": dict(style_input="rgb")}


def layers_and_histograms(pictures: list, keys: list[str], device: str) -> tuple[np.ndarray, dict]:
    """The layers (cached by ``keys``) and the pixel histograms of ``pictures``."""
    return model_layers(lambda: pictures, keys, device), histograms([lab.prepare(p, "area256g") for p in pictures])


def content_features(load: Callable[[], list], keys: list[str], device: str) -> np.ndarray:
    """Every picture's content piece (N × 512, unit norm), cached by the pictures' keys as ``model_layers``."""
    dims = CONTENT_CONFIG.content_dims
    return embedded_rows("content", "content", load, keys, device, CONTENT_CONFIG, lambda v: unit_norm(v.style[-dims:]))


def layers_with_input(name: str, load: Callable[[], list], keys: list[str], device: str) -> np.ndarray:
    """The layers of the pictures with the model's input changed by ``INPUT_VARIANTS[name]``."""
    config = dataclasses.replace(LAYERS_CONFIG, **INPUT_VARIANTS[name])
    return model_layers(load, [f"{name}:{key}" for key in keys], device, config)


def percentile(channel: np.ndarray, q: float) -> int:
    counts = np.bincount(channel.ravel(), minlength=256).cumsum()
    return int(np.searchsorted(counts, q / 100 * counts[-1]))


def paper_white(a: np.ndarray, q: float = 99.0, light: float = 128) -> np.ndarray:
    """Each channel scaled so that its ``q``-th percentile (the paper, in a drawing) is 255, when that is light."""
    paper = np.array([percentile(a[..., c], q) for c in range(3)], np.float32)
    if paper @ LUMA < light:
        return a
    return np.clip(np.rint(a * (255.0 / np.maximum(paper, 1))), 0, 255).astype(np.uint8)


def luma_white(a: np.ndarray, q: float = 99.0, light: float = 128) -> np.ndarray:
    """All channels scaled alike so that the luma's ``q``-th percentile is 255, when that is light."""
    white = percentile(luminance(a)[..., 0], q)
    return a if white < light else np.clip(np.rint(a * (255.0 / white)), 0, 255).astype(np.uint8)


def levels(a: np.ndarray, q: float = 1.0, span: int = 64) -> np.ndarray:
    """All channels stretched alike so that the luma's ``q``-th percentile is 0 and its 99th is 255, when that is
    light (the ink's fade and the paper's tint undone together); only the white point where the two lie closer
    than ``span`` levels (a drawing with little ink)."""
    luma = luminance(a)[..., 0]
    white, black = percentile(luma, 99), percentile(luma, q)
    if white < 128:
        return a
    black = black if white - black >= span else 0
    return np.clip(np.rint((a.astype(np.float32) - black) * (255.0 / (white - black))), 0, 255).astype(np.uint8)


#: --model-input: what is done to a picture before the model sees it (the histograms are taken as they are)
MODEL_INPUT_FIXES = {"white": luma_white, "levels": levels}


def histograms(arrays: list, tone_fix=None, edge_fix=None, coherence_fix=None, colour_fix=None) -> dict:
    """The five pixel histograms of every picture, each taken after its ``*_fix`` (none: the picture as it is; the
    local binary patterns always on the picture as it is)."""
    out = {"tone": [], "edge": [], "coherence": [], "pattern": [], "colour": []}
    for a in arrays:
        fixed = {}

        def get(fix):
            if fix not in fixed:
                fixed[fix] = fix(a) if fix else a
            return fixed[fix]

        out["tone"].append(tone_histogram(get(tone_fix), DEFAULT.tone_bins))
        out["edge"].append(edge_histogram(get(edge_fix), DEFAULT.edge_bins))
        out["coherence"].append(coherence_histogram(get(coherence_fix), DEFAULT.coherence_bins))
        out["pattern"].append(pattern_histogram(a, DEFAULT.pattern_radii, DEFAULT.pattern_threshold))
        out["colour"].append(colour_histogram(get(colour_fix), DEFAULT.colour_bins))
    return {k: np.stack(v) for k, v in out.items()}


def spread(rows: np.ndarray, sigma: float, counts: bool) -> np.ndarray:
    """Histogram rows with each step's share spread over its neighbours (a Gaussian of ``sigma`` steps, mass kept),
    unit norm again; ``counts``: the rows are Hellinger-mapped (square-rooted shares), spread as shares."""
    steps = np.arange(rows.shape[1])
    kernel = np.exp(-0.5 * ((steps[:, None] - steps[None, :]) / sigma) ** 2)
    kernel /= kernel.sum(0, keepdims=True)
    x = rows.astype(np.float64) ** 2 if counts else rows.astype(np.float64)
    y = x @ kernel.T
    y = np.sqrt(y) if counts else y
    return (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class Lab:
    """The bench's and the reference set's layers and pictures; rows of the default's recipe scored on the bench."""

    def __init__(self, device: str):
        labelled, originals, distractors, dups = sets.build(SETS, "faces")
        self.bench = lab.Bench(labelled, originals, distractors, dups)
        pictures = self.pictures()
        self.n, self.n_ref = len(self.bench.items), len(reference.reference_set())
        self.layers = model_layers(lambda: pictures, self.keys(), device)
        self.arrays = [lab.prepare(p, "area256g") for p in pictures]  # as the Embedder resizes for its histograms
        self.reference = np.arange(self.n, self.n + self.n_ref)
        self.reference_scans = np.arange(self.n + self.n_ref, self.n + 2 * self.n_ref)

    def pictures(self) -> list:
        """The bench's pictures, the reference drawings and their scans."""
        ref_pictures = [load_image(p) for p in reference.reference_set()]
        ref_scans = [reference_scan(img, i) for i, img in enumerate(ref_pictures)]
        return [it.load() for it in self.bench.items] + ref_pictures + ref_scans

    def keys(self) -> list[str]:
        """The cache keys of ``pictures()``, in order."""
        refs = reference.reference_set()
        return [it.key for it in self.bench.items] + [f"ref/{p.stem}" for p in refs] + [f"ref-scan/{p.stem}" for p in refs]

    def layers_after(self, name: str, device: str) -> np.ndarray:
        """The layers of every picture with ``MODEL_INPUT_FIXES[name]`` done to it before the model."""
        fix = MODEL_INPUT_FIXES[name]

        def fixed() -> list:
            return [Image.fromarray(fix(np.asarray(p.convert("RGB")))) for p in self.pictures()]

        return model_layers(fixed, [f"{name}:{key}" for key in self.keys()], device)

    def layers_with_input(self, name: str, device: str) -> np.ndarray:
        return layers_with_input(name, self.pictures, self.keys(), device)

    def content(self, device: str) -> np.ndarray:
        return content_features(self.pictures, self.keys(), device)

    def reference_scans_with(self, name: str, device: str) -> tuple[np.ndarray, dict]:
        """The layers and histograms of the reference drawings scanned with ``STEP_SUBSETS[name]`` only."""
        return self.reference_edited(name, lambda img, i: reference_scan(img, i, STEP_SUBSETS[name]), device)

    def reference_rescanned(self, seed: int, device: str) -> tuple[np.ndarray, dict]:
        """The layers and histograms of a second scan of each reference drawing, with other draws (``[seed, i]``)."""
        return self.reference_edited(f"scan{seed}", lambda img, i: reference_scan(img, i, seed=seed), device)

    def reference_edited(self, name: str, edit: Callable, device: str) -> tuple[np.ndarray, dict]:
        refs = reference.reference_set()
        pictures = [edit(load_image(p), i) for i, p in enumerate(refs)]
        return layers_and_histograms(pictures, [f"ref-{name}/{p.stem}" for p in refs], device)

    def vectors(self, h: dict, fit_rows: np.ndarray, extra=None, pairs: float = 0.0, alpha: float = ALPHA,
                shrinkage: float = SHRINKAGE, within: float = 0.0, weights=HISTOGRAM_WEIGHTS,
                colour_weight: float = DEFAULT.colour_weight, style_power: float = DEFAULT.style_power,
                colour_power: float = DEFAULT.colour_power, also=None, content_weight: float = 0.0,
                colour_pieces: tuple = ()):
        """The default's recipe from the layers and histograms ``h``, each part whitened by a basis fitted on
        ``fit_rows`` (as fit_whitening.py fits the shipped one) and ``extra`` (more reference pictures' layers and
        histograms, in the reference set's order, to fit on), raised to the default's powers. With ``pairs`` the basis
        is instead the reference drawings' mean and covariance plus ``pairs`` × the covariance of what their scans
        moved (within each pair); with ``within``, that share of the covariance is taken about each reference
        drawing's own mean (the drawing and its scans among the rows). ``weights``: the tone, edge, coherence and
        pattern histograms'. ``also``: other pictures' (layers, histograms), which take no part in the fit, whitened by
        the same bases: then (the bench's vectors, theirs). ``content_weight``: the content piece's (``h["content"]``).
        ``colour_pieces``: (name in ``h``, weight) pairs closing the colour part."""
        own = raw_parts(self.layers, h, weights, content_weight, colour_pieces)
        more = raw_parts(*extra, weights, content_weight, colour_pieces) if extra else None
        others = raw_parts(*also, weights, content_weight, colour_pieces) if also else None
        groups = None
        if within:  # each fitting row's reference drawing: the set's rows come after the n benchmark pictures
            drawing = (np.asarray(fit_rows) - self.n) % self.n_ref
            groups = drawing if more is None else np.r_[drawing, np.arange(self.n_ref)]
        parts, other_parts = [], []
        for part, power, weight in (("style", style_power, DEFAULT.style_weight), ("colour", colour_power, colour_weight)):
            if pairs:
                basis = counting_moves(own[part][self.reference], own[part][self.reference_scans], pairs)
            else:
                fit_on = own[part][fit_rows] if more is None else np.r_[own[part][fit_rows], more[part]]
                basis = whitening.fit(fit_on, alpha, shrinkage, RANK, groups, within)
            parts.append(signed_power(basis.apply(own[part][:self.n]), power) * np.float32(weight))
            if others is not None:
                other_parts.append(signed_power(basis.apply(others[part]), power) * np.float32(weight))
        x = np.concatenate(parts, 1)
        return x if others is None else (x, np.concatenate(other_parts, 1))


def counting_moves(drawings: np.ndarray, scans: np.ndarray, weight: float) -> whitening.PartWhitening:
    """The drawings' mean and covariance plus ``weight`` × the covariance of what each one's scan moved (the pooled
    covariance of each pair about its mean): the scans' directions count less, their own mean and spread do not enter."""
    moved = (scans - drawings) / np.sqrt(2)
    covariance = np.cov(drawings.T) + weight * moved.T @ moved / len(moved)
    return whitening.from_covariance(drawings.mean(0), covariance, ALPHA, SHRINKAGE, RANK)


def raw_parts(layers: np.ndarray, h: dict, weights=HISTOGRAM_WEIGHTS, content_weight: float = 0.0,
              colour_pieces: tuple = ()) -> dict:
    """The style part (layers and the histograms at ``weights``; a histogram at 0 is left out; with ``content_weight``,
    the content piece ``h["content"]`` closing it, as the Embedder's ``content_weight``) and the colour part (with
    ``colour_pieces``, (name in ``h``, weight) pairs closing it, unit norm together), before the whitening."""
    blocks = [layers] + [w * h[name] for name, w in zip(("tone", "edge", "coherence", "pattern"), weights) if w]
    blocks += [content_weight * h["content"]] if content_weight else []
    style = np.concatenate(blocks, 1) / np.sqrt(1 + sum(w * w for w in weights) + content_weight ** 2)
    colour = [colour_shares_power(h["colour"], DEFAULT.colour_exponent)] + [w * h[name] for name, w in colour_pieces]
    colour = np.concatenate(colour, 1) / np.sqrt(1 + sum(w * w for _, w in colour_pieces))
    return {"style": style, "colour": colour}


def parts_alone(data: Lab, h: dict) -> None:
    """mAP@R of each part searched alone, unwhitened, on the clean drawings and on their scans."""
    print("each part alone, unwhitened (mAP@R): clean drawings -> their scans")
    blocks = {"model layers": data.layers[:data.n], **{f"{k} histogram": v[:data.n] for k, v in h.items()}}
    for name, x in blocks.items():
        figures = [metrics.retrieval(x[data.bench.slices[s]], data.bench.labels[s]).ap_at_r.mean() for s in ("clipart", "scans")]
        print(f"  {name:20s} {figures[0]:.3f} -> {figures[1]:.3f}")


def show(bench: lab.Bench, name: str, r: dict, control: dict) -> None:
    """A row paired to the control (lab's paired row) and its P@10 on the clip art and its scans."""
    p10 = " ".join(f"{key}.P10 {r[key].precision_at_k.mean():.3f}" for key in ("clipart", "scans"))
    print(f"{lab.paired(bench, name, '', r, control)}  {p10}", flush=True)


def around_the_default(data: Lab, plain: dict, with_scans: np.ndarray, device: str) -> None:
    """Bases near today's (fitted on the reference drawings and a scan of each), paired to it."""
    bench = data.bench
    x = data.vectors(plain, with_scans)
    default = bench.score(x)
    print(f"\nthe neighbourhood of today's basis, paired to it (fitted on the reference set + scans seeded [{SCAN_SEED}, i]):")
    print(lab.row(bench, "today's basis, refitted here", "area256g", default, x.shape[1], 44))
    rescans = data.reference_rescanned(SCAN_SEED + 1, device)
    rows = {
        f"+ a second scan of each (seeded [{SCAN_SEED + 1}, i])": dict(fit_rows=with_scans, extra=rescans),
        "the scans alone": dict(fit_rows=data.reference_scans),
        **{f"a share {w} within each drawing": dict(fit_rows=with_scans, within=w) for w in (0.25, 0.5, 0.75)},
        "… 0.5, with the second scans": dict(fit_rows=with_scans, extra=rescans, within=0.5),
        **{f"exponent {a}": dict(fit_rows=with_scans, alpha=a) for a in (0.2, 0.3)},
        **{f"shrinkage {k}": dict(fit_rows=with_scans, shrinkage=k) for k in (0.05, 0.2)},
    }
    for name, how in rows.items():
        show(bench, name, bench.score(data.vectors(plain, **how)), default)


#: --patterns: (rings, threshold) of the local binary patterns tried, and their weights
PATTERN_SETTINGS = ((1, 5), (2, 2), (2, 5), (3, 2), (3, 3), (3, 5))
PATTERN_WEIGHTS = (0.7, 1.0, 1.4)


def pattern_rows(data: Lab, plain: dict, with_scans: np.ndarray) -> None:
    """The local binary patterns beside the previous default's histograms, paired to it (every basis fitted on the
    reference set and its scans, as the shipped ones)."""
    bench = data.bench
    without = (*HISTOGRAM_WEIGHTS[:3], 0.0)
    x = data.vectors(plain, with_scans, weights=without)
    previous = bench.score(x)
    print(lab.header(bench, 44))
    print(lab.row(bench, "previous default (no patterns), refitted here", "area256g", previous, x.shape[1], 44))
    for radii, threshold in PATTERN_SETTINGS:
        patterns = np.stack([pattern_histogram(a, radii, threshold) for a in data.arrays])
        alone = [metrics.retrieval(patterns[:data.n][bench.slices[s]], bench.labels[s]).ap_at_r.mean()
                 for s in ("clipart", "scans")]
        print(f"patterns, {radii} rings, threshold {threshold}, alone unwhitened: clip art {alone[0]:.3f} -> scans "
              f"{alone[1]:.3f}", flush=True)
        h = {**plain, "pattern": patterns}
        for weight in PATTERN_WEIGHTS:
            x = data.vectors(h, with_scans, weights=(*without[:3], weight))
            show(bench, f"+ patterns {radii} rings, threshold {threshold}, × {weight}", bench.score(x), previous)
        x = data.vectors(h, with_scans, weights=(*without[:2], 0.0, 1.0))
        show(bench, "  … × 1.0 in place of the coherence", bench.score(x), previous)


def pattern_rings(y: np.ndarray, radii: tuple[int, ...], threshold: int, darker: bool = False) -> list[np.ndarray]:
    """``pattern_histogram``'s rings (not yet normalised together) of a luma ``y`` at the given radii; ``darker``: the
    neighbours darker than the centre by more than ``threshold`` (a ternary pattern's lower code)."""
    y = y.astype(np.int16)
    return [pattern_ring(255 - y if darker else y, r, threshold) for r in radii]


def unit(blocks: list[np.ndarray]) -> np.ndarray:
    return unit_norm(np.concatenate(blocks))


def half_scale(y: np.ndarray) -> np.ndarray:
    """A luma at half its size, each 2 × 2 block averaged (rounded)."""
    h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
    return np.rint(y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3)))


#: --pattern-variants: other local binary patterns, each from a picture's luma ("t": the threshold)
PATTERN_VARIANTS = {
    "4 rings, t 5": lambda y: unit(pattern_rings(y, (1, 2, 3, 4), 5)),
    "5 rings, t 5": lambda y: unit(pattern_rings(y, (1, 2, 3, 4, 5), 5)),
    "rings 1, 2, 3, 5, t 5": lambda y: unit(pattern_rings(y, (1, 2, 3, 5), 5)),
    "ternary, 3 rings, t 5": lambda y: unit(pattern_rings(y, (1, 2, 3), 5) + pattern_rings(y, (1, 2, 3), 5, True)),
    "ternary, 3 rings, t 8": lambda y: unit(pattern_rings(y, (1, 2, 3), 8) + pattern_rings(y, (1, 2, 3), 8, True)),
    "3 rings + 2 at half scale, t 5": lambda y: unit(pattern_rings(y, (1, 2, 3), 5)
                                                     + pattern_rings(half_scale(y), (1, 2), 5)),
}


def pattern_variant_rows(data: Lab, plain: dict, with_scans: np.ndarray) -> None:
    """``PATTERN_VARIANTS`` in place of the default's patterns, × 1.0 and × 1.4, paired to the default (every basis
    fitted on the reference set and its scans, as the shipped one)."""
    bench = data.bench
    x = data.vectors(plain, with_scans)
    default = bench.score(x)
    print(lab.header(bench, 44))
    print(lab.row(bench, "the default, refitted here", "area256g", default, x.shape[1], 44))
    lumas = [_luma(a) for a in data.arrays]
    for name, variant in PATTERN_VARIANTS.items():
        h = {**plain, "pattern": np.stack([variant(y) for y in lumas])}
        for weight in (1.0, 1.4):
            x = data.vectors(h, with_scans, weights=(*HISTOGRAM_WEIGHTS[:3], weight))
            show(bench, f"{name} × {weight} ({h['pattern'].shape[1]})", bench.score(x), default)


class Painted:
    """The painted portraits and their scans (portraits.py), their layers (cached like the bench's) and histograms."""

    def __init__(self, device: str):
        painted = sets.portrait_items()
        items = painted + sets.scanned_items(painted)
        self.pictures = [it.load() for it in items]
        self.keys = [it.key for it in items]
        self.layers, self.h = layers_and_histograms(self.pictures, self.keys, device)
        self.labels = np.array([it.label for it in painted])
        self.groups = np.array([it.group for it in painted])
        self.n = len(painted)

    def score(self, x: np.ndarray) -> dict:
        return {name: metrics.retrieval(x[rows], self.labels, k=10)
                for name, rows in (("portraits", slice(0, self.n)), ("portrait-scans", slice(self.n, 2 * self.n)))}

    @staticmethod
    def figures(r: dict) -> str:
        """mAP@R on the portraits and their scans."""
        return "  ".join(f"{key} {q.ap_at_r.mean():.3f}" for key, q in r.items())

    def paired(self, r: dict, base: dict) -> str:
        """mAP@R of ``r`` minus ``base`` on the portraits and their scans, the peoples resampled."""
        return "  ".join(f"{key} " + lab.difference(*metrics.paired_difference(
            r[key].ap_at_r, base[key].ap_at_r, self.groups[r[key].index])) for key in r)

    def layers_with_input(self, name: str, device: str) -> np.ndarray:
        return layers_with_input(name, lambda: self.pictures, self.keys, device)

    def content(self, device: str) -> np.ndarray:
        return content_features(lambda: self.pictures, self.keys, device)


#: --paintings: the default's settings moved one at a time (weights: tone, edge, coherence, patterns)
TONE, EDGE, COHERENCE, PATTERNS = HISTOGRAM_WEIGHTS
PAINTING_ROWS = {
    **{f"colour × {w}": dict(colour_weight=w) for w in (0.45, 0.8, 1.0)},
    **{f"tone × {w}": dict(weights=(w, EDGE, COHERENCE, PATTERNS)) for w in (0.0, 0.1)},
    **{f"edges × {w}": dict(weights=(TONE, w, COHERENCE, PATTERNS)) for w in (0.0, 0.35)},
    "coherence × 0.2": dict(weights=(TONE, EDGE, 0.2, PATTERNS)),
    "patterns × 1.4": dict(weights=(TONE, EDGE, COHERENCE, 1.4)),
    "tone × 0.1, edges × 0.35, patterns × 1.4": dict(weights=(0.1, 0.35, COHERENCE, 1.4)),
    "style power 0.7": dict(style_power=0.7),
    "colour power 0.7": dict(colour_power=0.7),
}


def painting_rows(data: Lab, plain: dict, with_scans: np.ndarray, device: str) -> None:
    """``PAINTING_ROWS`` on the seven sets and on the paintings, paired to the default (every basis fitted on the
    reference drawings and their scans, as the shipped one)."""
    paired_on_paintings(data, plain, with_scans, Painted(device), PAINTING_ROWS)


def paired_on_paintings(data: Lab, plain: dict, with_scans: np.ndarray, painted: Painted, rows: dict) -> None:
    """Each of ``rows`` (name: ``Lab.vectors``'s keywords; ``fit_rows`` the reference rows to fit on, the drawings and
    their scans unless given) on the seven sets and the paintings, paired to the default refitted here."""
    bench = data.bench
    x, y = data.vectors(plain, with_scans, also=(painted.layers, painted.h))
    default, default_painted = bench.score(x), painted.score(y)
    print(lab.header(bench, 44) + "  (then the paintings: portraits, portrait-scans)")
    print(lab.row(bench, "the default, refitted here", "area256g", default, x.shape[1], 44) + "  "
          + painted.figures(default_painted))
    for name, how in rows.items():
        how = dict(how)
        fit_rows = how.pop("fit_rows", with_scans)
        x, y = data.vectors(plain, fit_rows, also=(painted.layers, painted.h), **how)
        print(f"{lab.paired(bench, name, '', bench.score(x), default)}  {painted.paired(painted.score(y), default_painted)}",
              flush=True)


def layer_weighted(layers: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """The layers block with each layer's vector scaled by its weight, unit norm again."""
    widths = np.cumsum([0] + [DEFAULT.layer_dim(layer) for layer in DEFAULT.layers])
    return lab.l2n(np.concatenate([w * layers[:, a:b] for w, a, b in zip(weights, widths, widths[1:])], 1))


def painting_feature_rows(data: Lab, plain: dict, with_scans: np.ndarray, device: str) -> None:
    """The style part changed where the settings cannot (the model's input, the layers' weights, a content piece), on
    the seven sets and the paintings, paired to the default (every basis refitted on the reference drawings and their
    scans); the content rows also against the content CNN read on the same input."""
    painted = Painted(device)
    bench = data.bench
    layers, painted_layers = data.layers, painted.layers
    small = data.layers_with_input("s128", device), painted.layers_with_input("s128", device)
    rgb = data.layers_with_input("rgb", device), painted.layers_with_input("rgb", device)
    content, painted_content = data.content(device), painted.content(device)
    plain, painted_h = {**plain, "content": content}, {**painted.h, "content": painted_content}

    def score(bench_layers, paintings_layers, **how) -> tuple[dict, dict]:
        data.layers = bench_layers
        x, y = data.vectors(plain, with_scans, also=(paintings_layers, painted_h), **how)
        return bench.score(x), painted.score(y)

    x, y = data.vectors(plain, with_scans, also=(painted_layers, painted_h))
    default, default_painted = bench.score(x), painted.score(y)
    cnn, cnn_painted = bench.score(content[:data.n]), painted.score(painted_content)
    print(lab.header(bench, 44) + "  (then the paintings: portraits, portrait-scans)")
    for name, r, rp in (("the default, refitted here", default, default_painted),
                        ("content CNN (relu5_4 pooled, the default's input)", cnn, cnn_painted)):
        print(lab.row(bench, name, "area256g", r, 0, 44) + "  " + painted.figures(rp))
    print(f"{lab.paired(bench, 'the default − that content CNN', '', default, cnn)}  {painted.paired(default_painted, cnn_painted)}")
    rows = {
        **{f"+ the layers at 128² × {w}": ((lab.l2n(layers + w * small[0]), lab.l2n(painted_layers + w * small[1])), {})
           for w in (0.5, 1.0)},
        "the layers at 128² instead": (small, {}),
        "the model sees RGB": (rgb, {}),
        "+ the layers of RGB × 1.0": ((lab.l2n(layers + rgb[0]), lab.l2n(painted_layers + rgb[1])), {}),
        **{f"layer weights {w}": ((layer_weighted(layers, w), layer_weighted(painted_layers, w)), {})
           for w in ((0.7, 1, 1, 1), (1.4, 1, 1, 1), (1, 1, 1, 1.4), (1, 1, 1.4, 1.4), (0.7, 0.85, 1, 1.4))},
        **{f"content piece × {w}": ((layers, painted_layers), dict(content_weight=w)) for w in (0.15, 0.2, 0.3, 0.4)},
    }
    for name, ((bench_layers, paintings_layers), how) in rows.items():
        r, rp = score(bench_layers, paintings_layers, **how)
        print(f"{lab.paired(bench, name, '', r, default)}  {painted.paired(rp, default_painted)}", flush=True)
        if how:
            print(f"{lab.paired(bench, '  … minus the content CNN', '', r, cnn)}  {painted.paired(rp, cnn_painted)}", flush=True)
    data.layers = layers
    # the content piece as a part of its own beside the default's style and colour parts, whitened on its own
    basis = whitening.fit(content[with_scans], ALPHA, SHRINKAGE, RANK)
    part, painted_part = (signed_power(basis.apply(c), DEFAULT.style_power) for c in (content[:data.n], painted_content))
    for w in (0.15, 0.25, 0.35):
        r, rp = bench.score(np.c_[x, w * part]), painted.score(np.c_[y, w * painted_part])
        print(f"{lab.paired(bench, f'content as a part of its own × {w}', '', r, default)}  {painted.paired(rp, default_painted)}",
              flush=True)


#: --painted-basis: the reference paintings' scans are seeded [SCAN_SEED, PAINTED_SCAN_OFFSET + i], apart from the drawings'
PAINTED_SCAN_OFFSET = 10_000


def painted_reference(name: str, paths: list[Path], device: str) -> tuple[np.ndarray, dict, int]:
    """The layers and histograms of the pictures ``paths`` and then of a scan of each, and how many pictures."""
    pictures = [load_image(path) for path in paths]
    scanned = [reference_scan(img, PAINTED_SCAN_OFFSET + i) for i, img in enumerate(pictures)]
    keys = [f"{name}/{path}" for path in paths] + [f"{name}-scan/{path}" for path in paths]
    return *layers_and_histograms(pictures + scanned, keys, device), len(paths)


def rows_of(layers: np.ndarray, h: dict, rows: np.ndarray) -> tuple[np.ndarray, dict]:
    return layers[rows], {name: x[rows] for name, x in h.items()}


def painted_basis_rows(data: Lab, plain: dict, with_scans: np.ndarray, device: str) -> None:
    """The whitening on paintings: the shipped default against itself unwhitened (the paintings, by the Embedder);
    the basis fitted with paintings among the reference pictures (Naev's portraits, or Wesnoth's outside the set; with
    their scans, alone, or three times over), or on Naev's alone; the exponent and the shrinkage moved. Paired to the
    default refitted here, on the seven sets and the paintings."""
    import portraits

    naev = portraits.naev_portraits()
    painted = Painted(device)
    scores = []
    for config in (DEFAULT, dataclasses.replace(DEFAULT, whitening="none")):
        with Embedder(config, device=device) as embedder:
            scores.append(painted.score(np.stack([v.combined for v in embedder.embed_images(painted.pictures)])))
    shipped, unwhitened = scores
    print(f"{'the shipped default, by the Embedder':44s} {painted.figures(shipped)}")
    print(f"{'… unwhitened':44s} {painted.figures(unwhitened)}  minus the shipped: {painted.paired(unwhitened, shipped)}")
    references = {"Naev's portraits": painted_reference("naev", naev, device),
                  "Wesnoth's others": painted_reference("wesnoth-other", portraits.other_portraits(), device)}
    rows = {}
    for name, (layers, h, n) in references.items():
        with_their_scans = np.arange(2 * n)
        rows |= {f"+ {name} and their scans": dict(extra=(layers, h)),
                 f"+ {name} alone": dict(extra=rows_of(layers, h, np.arange(n))),
                 f"+ {name} and their scans × 3": dict(extra=rows_of(layers, h, np.tile(with_their_scans, 3)))}
    rows["on Naev's portraits and their scans alone"] = dict(extra=references["Naev's portraits"][:2],
                                                             fit_rows=np.array([], int))
    rows |= {f"exponent {a} ({ALPHA})": dict(alpha=a) for a in (0.15, 0.35, 0.5)}
    rows |= {f"shrinkage {k} ({SHRINKAGE})": dict(shrinkage=k) for k in (0.03, 0.3)}
    paired_on_paintings(data, plain, with_scans, painted, rows)


def cube_index(a: np.ndarray, bins: int) -> np.ndarray:
    """Each pixel's RGB cube, numbered as ``colour_histogram`` numbers them (H × W)."""
    q = (a.astype(np.int32) * bins) >> 8
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def gradient(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences across and down, as ``edge_histogram`` takes them."""
    gx, gy = np.zeros_like(channel), np.zeros_like(channel)
    gx[:, 1:-1] = (channel[:, 2:] - channel[:, :-2]) / 2
    gy[1:-1] = (channel[2:] - channel[:-2]) / 2
    return gx, gy


def hellinger(counts: np.ndarray) -> np.ndarray:
    return np.sqrt(counts / max(counts.sum(), 1.0)).astype(np.float32)


def log_steps(magnitude: np.ndarray, bins: int) -> np.ndarray:
    """A Hellinger histogram of magnitudes in ``bins`` steps of log2(1 + magnitude) × bins/8 (the edge histogram's)."""
    steps = np.minimum((np.log2(1 + magnitude) * (bins / 8)).astype(np.int64), bins - 1)
    return hellinger(np.bincount(steps.ravel(), minlength=bins).astype(np.float64))


def edge_colours(a: np.ndarray, threshold: float, bins: int = 4) -> np.ndarray:
    """The colours of a picture's edges: its pixels whose luma gradient exceeds ``threshold``, in ``bins``³ cubes."""
    gx, gy = gradient(_luma(a))
    cubes = cube_index(a, bins)[np.hypot(gx, gy) > threshold]
    return hellinger(np.bincount(cubes, minlength=bins ** 3).astype(np.float64))


def colour_coherence(a: np.ndarray, bins: int = 4) -> np.ndarray:
    """For each of ``bins``³ cubes, the share of its pixels whose right or lower neighbour is in the same cube."""
    cubes = cube_index(a, bins)
    same, total = np.zeros(bins ** 3), np.zeros(bins ** 3)
    for here, there in ((cubes[:, :-1], cubes[:, 1:]), (cubes[:-1], cubes[1:])):
        total += np.bincount(here.ravel(), minlength=bins ** 3)
        same += np.bincount(here[here == there], minlength=bins ** 3)
    return unit_norm(same / np.maximum(total, 1.0))


def opponent(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two opponent colour channels (red–green, yellow–blue), orthonormal: the chroma without the luma."""
    f = a.astype(np.float32)
    return (f[..., 0] - f[..., 1]) / np.sqrt(2), (f[..., 0] + f[..., 1] - 2 * f[..., 2]) / np.sqrt(6)


def chroma_edges(a: np.ndarray, bins: int = 16) -> np.ndarray:
    """How sharply the chroma changes: the gradient magnitude of both opponent channels together, in log steps."""
    squared = sum(gx * gx + gy * gy for gx, gy in map(gradient, opponent(a)))
    return log_steps(np.sqrt(squared), bins)


def saturation(a: np.ndarray, bins: int = 16) -> np.ndarray:
    """How saturated the pixels are: the chroma's magnitude, in log steps."""
    return log_steps(np.hypot(*opponent(a)), bins)


#: --colour-pieces: each piece computed from a picture's histogram input, and the rows (pieces, weights) tried
COLOUR_PIECES = {"edge colours (gradient > 16)": lambda a: edge_colours(a, 16.0),
                 "edge colours (gradient > 32)": lambda a: edge_colours(a, 32.0),
                 "colour coherence": colour_coherence, "chroma edges": chroma_edges, "saturation": saturation}
COLOUR_PIECE_ROWS = {
    **{f"{name} × {w}": ((name, w),) for name in COLOUR_PIECES for w in (0.3, 0.6)},
    "edge colours (> 16) × 0.4 + colour coherence × 0.4": (("edge colours (gradient > 16)", 0.4), ("colour coherence", 0.4)),
}


def colour_piece_rows(data: Lab, plain: dict, with_scans: np.ndarray, device: str) -> None:
    """``COLOUR_PIECE_ROWS`` closing the colour part, on the seven sets and the paintings, paired to the default."""
    painted = Painted(device)
    for h, arrays in ((plain, data.arrays), (painted.h, [lab.prepare(p, "area256g") for p in painted.pictures])):
        h.update({name: np.stack([piece(a) for a in arrays]) for name, piece in COLOUR_PIECES.items()})
    rows = {name: dict(colour_pieces=pieces) for name, pieces in COLOUR_PIECE_ROWS.items()}
    paired_on_paintings(data, plain, with_scans, painted, rows)


def expansion_rows(data: Lab, plain: dict, with_scans: np.ndarray, device: str) -> None:
    """The default's vectors (basis refitted here) searched with the query averaged with its n nearest first, paired
    to the plain search, on the seven sets, the near-duplicate tasks and the paintings; P@10 beside."""
    bench, painted = data.bench, Painted(device)
    x, y = data.vectors(plain, with_scans, also=(painted.layers, painted.h))

    def on_paintings(n: int) -> dict:
        return {name: metrics.retrieval(y[rows], painted.labels, k=10, expand=n)
                for name, rows in (("portraits", slice(0, painted.n)), ("portrait-scans", slice(painted.n, 2 * painted.n)))}

    default, default_painted = bench.score(x), on_paintings(0)
    print(lab.header(bench, 44) + "  (then the paintings: portraits, portrait-scans)")
    print(lab.row(bench, "the default, searched plainly", "area256g", default, x.shape[1], 44) + "  "
          + painted.figures(default_painted))
    for n in (1, 2, 3, 5):
        r, r_painted = bench.score(x, expand=n), on_paintings(n)
        print(f"{lab.paired(bench, f'the query + its {n} nearest', '', r, default)}  "
              f"{painted.paired(r_painted, default_painted)}")
        print("    P@10 " + "  ".join(f"{key} {q.precision_at_k.mean():.3f}" for key, q in {**r, **r_painted}.items()
                                      if hasattr(q, "precision_at_k")), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", action="store_true",
                    help="also fit bases on scans made with some of print_and_scan's steps only (4 more model passes over "
                         "the reference set, 11 minutes on 2 cores the first time)")
    ap.add_argument("--around", action="store_true",
                    help="also the neighbourhood of today's basis (fitted with the scans), paired to it (one more model "
                         "pass over the reference set, 4 minutes on 2 cores the first time)")
    ap.add_argument("--patterns", action="store_true",
                    help="only the local binary patterns' rows, paired to the previous default (no model pass beyond the "
                         "cached one; about 5 minutes)")
    ap.add_argument("--pattern-variants", action="store_true",
                    help="only other local binary patterns in place of the default's, paired to it (about 3 minutes)")
    ap.add_argument("--paintings", action="store_true",
                    help="only the default's settings moved one at a time, scored on the seven sets and on the painted "
                         "portraits and their scans (portraits.py; about 4 minutes, the paintings' layers cached)")
    ap.add_argument("--painting-features", action="store_true",
                    help="only the style part changed where the settings cannot: the layers at 128² beside the default's, "
                         "the model given RGB, the layers weighted, a content piece (in the style part or a part of its "
                         "own); on the seven sets and the paintings "
                         "(3 more model passes over every picture, 50 minutes on 2 cores the first time)")
    ap.add_argument("--painted-basis", action="store_true",
                    help="only the whitening on paintings: the default unwhitened, the basis fitted with painted portraits "
                         "among the reference pictures (needs naev-data), the exponent and shrinkage; on the seven sets "
                         "and the paintings (one model pass over 272 portraits and a scan of each, 2 minutes the first time; then 3 minutes)")
    ap.add_argument("--colour-pieces", action="store_true",
                    help="only more of the colour inside the combined vector's colour part (edge colours, colour "
                         "coherence, chroma edges, saturation), on the seven sets and the paintings (about 3 minutes "
                         "once the layers are cached)")
    ap.add_argument("--expansion", action="store_true",
                    help="only the default's vectors searched with the query averaged with its n nearest first (n = 1, "
                         "2, 3, 5), on the seven sets and the paintings, paired to the plain search (2 minutes once cached)")
    ap.add_argument("--model-input", action="store_true",
                    help="also give the model the picture after the luma's white point, or its white and black points "
                         "(2 more model passes over every picture, 50 minutes on 2 cores the first time)")
    args = ap.parse_args()
    t0 = time.time()
    if args.paintings or args.painting_features or args.painted_basis or args.colour_pieces or args.expansion:
        sets.portrait_items()  # without the portraits: their one-line error now, not after the lab's minutes of loading
    if args.painted_basis:
        import portraits

        portraits.naev_portraits()
    data = Lab(args.device)
    bench = data.bench
    plain = histograms(data.arrays)
    with_scans = np.r_[data.reference, data.reference_scans]
    only = {"painted_basis": lambda: painted_basis_rows(data, plain, with_scans, args.device),
            "painting_features": lambda: painting_feature_rows(data, plain, with_scans, args.device),
            "paintings": lambda: painting_rows(data, plain, with_scans, args.device),
            "colour_pieces": lambda: colour_piece_rows(data, plain, with_scans, args.device),
            "expansion": lambda: expansion_rows(data, plain, with_scans, args.device),
            "pattern_variants": lambda: pattern_variant_rows(data, plain, with_scans),
            "patterns": lambda: pattern_rows(data, plain, with_scans)}
    for flag, rows in only.items():
        if getattr(args, flag):
            rows()
            print(f"total {time.time() - t0:.0f}s")
            return
    parts_alone(data, plain)
    print("\nmAP@R (dup, drawdup: top-1) paired to the control, 95 % cluster bootstrap, '*' beyond the noise:")
    x = data.vectors(plain, data.reference)
    control = bench.score(x)
    print(lab.header(bench, 44))
    print(lab.row(bench, "control: the default, basis refitted here", "area256g", control, x.shape[1], 44))
    a_third = np.r_[data.reference, data.reference_scans[::3]]
    white_tone = histograms(data.arrays, paper_white, None, paper_white, None)
    white_luma = histograms(data.arrays, luma_white, None, luma_white, None)
    rows = {
        "basis fitted on the reference set + scans": (plain, with_scans),
        "… and one scan in three": (plain, a_third),
        "tone, coherence after the paper made white": (white_tone, data.reference),
        "tone, coherence after the luma's white point": (white_luma, data.reference),
        "all four histograms, the paper made white": (histograms(data.arrays, *[paper_white] * 4), data.reference),
        "tone, coherence white, basis with the scans": (white_tone, with_scans),
    }
    for name, (h, fit_rows) in rows.items():
        show(bench, name, bench.score(data.vectors(h, fit_rows)), control)
    for weight in (1, 4):
        show(bench, f"basis counting what a scan moves × {weight}", bench.score(data.vectors(plain, None, pairs=weight)),
             control)
    tolerant = {
        "tone spread over its steps (σ 1.5)": {**plain, "tone": spread(plain["tone"], 1.5, True)},
        "coherence spread over its steps (σ 1.5)": {**plain, "coherence": spread(plain["coherence"], 1.5, False)},
        "tone and coherence spread (σ 2)": {**plain, "tone": spread(plain["tone"], 2, True),
                                            "coherence": spread(plain["coherence"], 2, False)},
        "edges: gradients under 3 levels flat": {**plain, "edge": np.stack([edge_histogram(a, DEFAULT.edge_bins, flat=3)
                                                                             for a in data.arrays])},
    }
    for name, h in tolerant.items():
        show(bench, name, bench.score(data.vectors(h, data.reference)), control)
    for name in STEP_SUBSETS if args.steps else ():
        extra = data.reference_scans_with(name, args.device)
        show(bench, f"basis + scans of {name} only", bench.score(data.vectors(plain, data.reference, extra)), control)
    if args.around:
        around_the_default(data, plain, with_scans, args.device)
    for name in MODEL_INPUT_FIXES if args.model_input else ():
        plain_layers, data.layers = data.layers, data.layers_after(name, args.device)
        for label, (h, fit_rows) in {"": (plain, data.reference), ", histograms white": (white_luma, data.reference),
                                     ", basis + scans": (plain, with_scans)}.items():
            show(bench, f"model input {name}{label}", bench.score(data.vectors(h, fit_rows)), control)
        data.layers = plain_layers
    paper = np.array([percentile(luminance(a)[..., 0], 99) for a in data.arrays[:data.n]], np.float32)[:, None] / 255
    for weight in (1, 4):
        x = np.concatenate([data.vectors(white_luma, data.reference), weight * paper], 1)
        show(bench, f"luma white point + the paper's luma × {weight}", bench.score(x), control)
    print(f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
