"""Retrieval quality of artvec's default embedding against baselines, on every public set, side by side.

Sets (benchmarks/sets.py; all reproducible offline):
- cards: the illustrated card decks of Debian's kdegames-card-data-kf5, labelled by deck family; by
  default the 12 face cards (J, Q, K) of each of the 16 decks, ``--cards all`` for all 52;
- stylised: scikit-image's pictures in 7 deterministic stylisations, labelled by stylisation;
- near-duplicates: rescans, mats, crops, rescales, re-encodes and greyscale copies (artvec/edits.py)
  of scikit-image pictures and cards, each to be found at rank 1 among every picture of the other sets.
Metrics: precision@10, mAP@R, nearest-neighbour accuracy, near-duplicate top-1, with 95 % cluster-bootstrap
half-widths (whole decks / whole source pictures resampled) and the paired difference to each baseline.
The default is computed by artvec's own Embedder, exactly as `artvec sync` does; the baselines from one
VGG pass at artvec 0.1's 224×224 input.

Needs: apt-get install kdegames-card-data-kf5 librsvg2-bin (cards), pip install -e '.[dev]' (scikit-image).
Usage: python benchmarks/quality.py [--cards faces|all] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lab  # noqa: E402
import sets  # noqa: E402
from artvec import metrics  # noqa: E402
from artvec.embedding import DEFAULT_CONFIG, V1_CONFIG as V1, Embedder, EmbeddingConfig  # noqa: E402


def build_sets(cards_choice: str, cards_dir=None):
    cards = sets.card_items(cards_dir)
    if cards_choice == "faces":
        cards = [c for c in cards if c.key.split("/")[1].split("_")[0] in ("jack", "queen", "king")]
    stylised, originals, distractors = sets.stylised_items()
    dups = sets.near_duplicates(sets.duplicate_originals(cards, originals, per_deck=1))
    return lab.Bench(cards, stylised, originals, distractors, dups)


def embed_all(bench, config: EmbeddingConfig, device: str) -> tuple[np.ndarray, float]:
    """Every picture through artvec's Embedder: (combined vectors, seconds per picture)."""
    with Embedder(config, device=device) as embedder:
        embedder.embed_images([bench.items[0].load()])  # warm-up
        start = time.perf_counter()
        vectors = embedder.embed_images([item.load() for item in bench.items], batch_size=8)
        seconds = (time.perf_counter() - start) / len(bench.items)
    return np.stack([v.combined for v in vectors]), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cards", default="faces", choices=["faces", "all"])
    ap.add_argument("--cards-dir", default=None, help="pre-rendered cards (deck-H/card.png|jpg) instead of the cache")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    bench = build_sets(args.cards, Path(args.cards_dir) if args.cards_dir else None)
    print(f"sets: {len(bench.cards)} cards ({len({c.label for c in bench.cards})} deck families), "
          f"{len(bench.stylised)} stylised, {len(bench.dups.queries)} near-duplicate queries among "
          f"{bench.s_db.stop} pictures; built in {time.time() - t0:.0f}s", flush=True)

    results, dims, speed = {}, {}, {}
    x, speed["default"] = embed_all(bench, DEFAULT_CONFIG, args.device)
    results["artvec default"] = bench.score(x)
    dims["artvec default"] = x.shape[1]
    x, speed["v1"] = embed_all(bench, V1, args.device)
    results["artvec 0.1 default"] = bench.score(x)
    dims["artvec 0.1 default"] = x.shape[1]
    print(f"embedded: default {speed['default'] * 1000:.0f} ms/picture, artvec 0.1 {speed['v1'] * 1000:.0f} ms/picture",
          flush=True)
    B = lab.extract(bench.items, "sq224", lab.Extractor(args.device, heads=(), literal=True), log_every=0)
    R = lab.extract(bench.items, "sq224", lab.Extractor(args.device, weights="random", heads=("cs256",)), log_every=0)
    baselines = {
        "baseline: colour histogram alone (8³)": B["c8"],
        "baseline: literal recipe (raw Gram relu3_1 + raw counts)": np.concatenate([B["lit"], B["raw8"]], 1),
        "baseline: random weights (artvec 0.1's recipe)": lab.with_colour(lab.style(R, "cs256"), R, 1.0),
        "baseline: content CNN (VGG relu5_4 avg-pooled)": lab.l2n(B["gap"]),
    }
    for name, vectors in baselines.items():
        results[name] = bench.score(vectors.astype(np.float32))
        dims[name] = vectors.shape[1]

    print(f"\n{'method':58s} {'cards P@10':>10s} {'mAP@R':>6s} {'NN':>6s} {'styl P@10':>9s} {'mAP@R':>6s} {'NN':>6s}"
          f" {'dup top1':>8s} {'dims':>6s}")
    for name, r in results.items():
        c, s, d = r["cards"], r["styl"], r["dup"]
        print(f"{name:58s} {c.precision_at_k.mean():10.3f} {c.ap_at_r.mean():6.3f} {c.nn_correct.mean():6.3f}"
              f" {s.precision_at_k.mean():9.3f} {s.ap_at_r.mean():6.3f} {s.nn_correct.mean():6.3f}"
              f" {d.mean():8.3f} {dims[name]:6d}")
    default = results["artvec default"]
    ci_c = metrics.bootstrap_interval(default["cards"].ap_at_r, bench.card_groups)
    ci_s = metrics.bootstrap_interval(default["styl"].ap_at_r, bench.styl_groups)
    print(f"\nnoise (95 % cluster bootstrap of the default): cards mAP@R ±{ci_c:.3f}, stylised mAP@R ±{ci_s:.3f}")
    print("default minus each baseline (paired, 95 % cluster bootstrap); '*' = ahead by more than the noise:")
    ahead_everywhere = True
    for name, r in results.items():
        if name == "artvec default":
            continue
        parts = []
        for key, label, groups in (("cards", "cards mAP@R", bench.card_groups), ("styl", "stylised mAP@R", bench.styl_groups)):
            diff, half = metrics.paired_difference(default[key].ap_at_r, r[key].ap_at_r, groups)
            parts.append(f"{label} {diff:+.3f}±{half:.3f}{'*' if diff - half > 0 else ' '}")
            ahead_everywhere &= diff - half > 0 or not name.startswith("baseline")
        diff, half = metrics.paired_difference(default["dup"], r["dup"], bench.q_groups)
        parts.append(f"dup {diff:+.3f}±{half:.3f}")
        print(f"  vs {name:56s} " + "  ".join(parts))
    print(f"default ahead of every baseline on cards and stylised by more than the noise: {ahead_everywhere}")

    print("\nworst deck families for the default (cards mAP@R; artvec 0.1 beside):")
    fams = np.array(bench.card_labels)[default["cards"].index]
    old = results["artvec 0.1 default"]["cards"]
    rows = sorted(((default["cards"].ap_at_r[fams == f].mean(), old.ap_at_r[fams == f].mean(), f) for f in np.unique(fams)))
    for new_ap, old_ap, fam in rows[:6]:
        print(f"  {fam:28s} {new_ap:.3f}   ({old_ap:.3f})")
    print("near-duplicate top-1 by edit (default): " + ", ".join(
        f"{k}={default['dup'][np.array(bench.dups.kinds) == k].mean():.2f}" for k in sets.EDITS))
    print(f"\nseconds per picture (embedding, {args.device}): default {speed['default']:.3f}, artvec 0.1 {speed['v1']:.3f}"
          f" (ratio {speed['default'] / speed['v1']:.2f}); total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
