"""Issue 9's held-out set, calibrated: what the public sets say the default would score on it.

The held-out set (about 590 real illustrations by 30 artists, same-artist retrieval) is not here, but four methods'
figures on it are (issue 9): artvec 0.1's default, a content CNN, "a careful Gram recipe" and the design's literal
recipe. How far artvec 0.1 is ahead of (or behind) the content CNN says how worn a set's pictures are for these
features: on clean drawings it is ahead, on scans far behind. Across the four sets where content varies within a label
(the clip art, its scans, the painted portraits and their scans), a method's lead on the content CNN is nearly a
straight line in artvec 0.1's; read at artvec 0.1's lead on the held-out set, that line gives the method's held-out
figure. Two methods check the reading: the careful recipe and the literal recipe, whose held-out figures are known,
are predicted from the same four sets; then the default is.

Per set, precision@10 and mAP@R of: the default and artvec 0.1's default (artvec's Embedder), the careful recipe
(``CAREFUL``: relu1_1 … relu5_1 Grams, signed square root, L2, a fixed Gaussian projection to 256 each, colour
Hellinger × 0.5; read at about 256² keeping the aspect ratio, where the issue's recipe reads the short side at 256),
the content CNN (relu5_4 average-pooled) and the literal recipe (one raw Gram, raw counts) as quality.py computes them;
then each method's line (its slope, the correlation, the prediction, and its range leaving out one set at a time).

With ``--copies``, instead: the held-out near-duplicate task's twins, which no method's held-out figure calibrates —
two edits of every portrait and of every clip-art drawing (artvec/edits.py's eight edits in turn), each searched among
the portraits and the drawings together (659 pictures, about the held-out set's 590), by the default's combined vector
and its copy vector: top-1 per set and per edit.

With ``--folder DIR``, instead: the held-out set itself, or any labelled pictures — for whoever has them. The pictures
lie one folder per label (``DIR/<artist>/…``, any depth below it; pictures directly in DIR are left out and counted),
or anywhere under DIR with ``--labels FILE``, a CSV with the columns ``path,label`` (paths relative to DIR). Every method
of issue 9's table is computed on them as above (the default, artvec 0.1 and the careful recipe by artvec's Embedder
from the files, as ``artvec sync`` reads them; the content CNN and the literal recipe as quality.py computes them), and
``--copies-of N`` pictures (300, issue 9's count; seeded, every picture once before any twice) are edited once each by
artvec/edits.py's eight edits in turn, from a working copy at most 1,024 px on its longer side, each copy to be found at
rank 1 among all the pictures. Printed: precision@10, mAP@R, nearest-neighbour accuracy and near-duplicate top-1 of
each method (the default's copy vector beside it), the default's paired lead on each method with a 95 % bootstrap that
resamples whole labels, the default's worst labels, issue 9's held-out figures beside the four methods', and whether
the default meets issue 9's targets (P@10 ≥ 0.42, mAP@R ≥ 0.26, near-duplicate top-1 ≥ 0.99); ``--json FILE`` also
writes every figure to FILE. A picture that cannot be read is named in one line and left out. On the clip art laid out so (518 drawings, 31 folders) it gives heldout.py's
own figures of every method to the third decimal; 9 minutes on 2 cores with 300 copies (large scans take longer to read).

Needs what quality.py needs for the clip art and the portraits (clipart.py, portraits.py); ``--folder`` needs nothing
but the pictures.
Usage: python benchmarks/heldout.py [--device cpu|cuda] [--copies]   (about 14 minutes on 2 cores; --copies 6)
       python benchmarks/heldout.py --folder DIR [--labels FILE.csv] [--copies-of N] [--json FILE] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lab  # noqa: E402
import sets  # noqa: E402
from artvec import metrics  # noqa: E402
from artvec.embedding import DEFAULT_CONFIG, V1_CONFIG, EmbeddingConfig, Embedder  # noqa: E402
from artvec.images import ImageError, iter_image_files  # noqa: E402

SETS = ("clipart", "scans", "portraits", "portrait-scans")
#: issue 9's held-out figures: (precision@10, mAP@R)
HELD_OUT = {"artvec 0.1": (0.333, 0.203), "content CNN": (0.342, 0.200), "careful recipe": (0.369, 0.233),
            "literal recipe": (0.309, 0.183)}
TARGETS = (0.42, 0.26)
CAREFUL = EmbeddingConfig(name="careful", layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                          image_size=256, resize="area", reduction="gaussian", style_dims_per_layer=256, stats_share=0.0,
                          style_input="rgb", tone_weight=0, edge_weight=0, coherence_weight=0, pattern_weight=0,
                          whitening="none", copy_vector="none", style_power=1.0, colour_power=1.0, colour_weight=0.5,
                          colour_exponent=0.5)
EMBEDDED = {"artvec default": DEFAULT_CONFIG, "artvec 0.1": V1_CONFIG, "careful recipe": CAREFUL}
METRICS = (("P@10", "precision_at_k"), ("mAP@R", "ap_at_r"))


def vgg_baselines(items: list, device: str) -> dict[str, np.ndarray]:
    """The content CNN and the literal recipe of every item, from one VGG pass at 224², as quality.py computes them."""
    blocks = lab.extract(items, "sq224", lab.Extractor(device, heads=(), literal=True), log_every=0)
    return {"content CNN": lab.l2n(blocks["gap"]), "literal recipe": np.concatenate([blocks["lit"], blocks["raw8"]], 1)}


def figures(labelled: dict, device: str) -> dict[str, dict[str, tuple[float, float]]]:
    """{method: {set: (P@10, mAP@R)}} for every method on every set."""
    items = [it for name in SETS for it in labelled[name]]
    pictures = [it.load() for it in items]
    vectors = {}
    for name, config in EMBEDDED.items():
        t = time.time()
        with Embedder(config, device=device) as embedder:
            vectors[name] = np.stack([v.combined for v in embedder.embed_images(pictures)])
        print(f"  {name}: {len(pictures)} pictures in {time.time() - t:.0f}s", flush=True)
    vectors.update(vgg_baselines(items, device))
    out, start = {}, 0
    for name in SETS:
        rows = slice(start, start + len(labelled[name]))
        start = rows.stop
        labels = [it.label for it in labelled[name]]
        for method, x in vectors.items():
            r = metrics.retrieval(np.ascontiguousarray(x[rows], dtype=np.float32), labels, k=10)
            out.setdefault(method, {})[name] = tuple(float(getattr(r, field).mean()) for _, field in METRICS)
    return out


def line(x: np.ndarray, y: np.ndarray, at: float) -> tuple[float, float, float, float, float]:
    """(slope, correlation, the line's value at ``at``, and its least and greatest leaving out one point at a time)."""
    slope, intercept = np.polyfit(x, y, 1)
    left_out = [np.polyval(np.polyfit(np.delete(x, i), np.delete(y, i), 1), at) for i in range(len(x))]
    return float(slope), float(np.corrcoef(x, y)[0, 1]), float(intercept + slope * at), min(left_out), max(left_out)


def report(f: dict) -> None:
    print("\n" + f"{'method':16s}" + "".join(f"{name:>22s}" for name in SETS) + "   (P@10 / mAP@R)")
    for method, per_set in f.items():
        print(f"{method:16s}" + "".join(f"{p:>14.3f} / {m:.3f}" for p, m in per_set.values()))
    for m, (label, _) in enumerate(METRICS):
        cnn = np.array([f["content CNN"][s][m] for s in SETS])
        x = np.array([f["artvec 0.1"][s][m] for s in SETS]) - cnn
        at = HELD_OUT["artvec 0.1"][m] - HELD_OUT["content CNN"][m]
        print(f"\n{label}: artvec 0.1 minus the content CNN on the sets {' '.join(f'{v:+.3f}' for v in x)}; on the "
              f"held-out set {at:+.3f}")
        for method in ("careful recipe", "literal recipe", "artvec default"):
            lead = np.array([f[method][s][m] for s in SETS]) - cnn
            slope, r, value, low, high = line(x, lead, at)
            held = HELD_OUT["content CNN"][m] + value
            known = HELD_OUT.get(method)
            check = (f"; measured {known[m]:.3f} (off by {held - known[m]:+.3f})" if known
                     else f"; target {TARGETS[m]:.2f}: {'met' if held - TARGETS[m] > 0 else 'not met'}")
            print(f"  {method:15s} lead on the CNN {' '.join(f'{v:+.3f}' for v in lead)}; slope {slope:.2f}, r {r:.2f}: "
                  f"held-out {held:.3f} (one set left out: {HELD_OUT['content CNN'][m] + low:.3f}–"
                  f"{HELD_OUT['content CNN'][m] + high:.3f}){check}")


def copies(device: str) -> None:
    """Near-duplicate top-1 of two edits of each portrait and drawing among all of them, by the combined and copy vector."""
    labelled, *_ = sets.build(("clipart", "portraits"))
    pool = labelled["portraits"] + labelled["clipart"]
    dups = {name: sets.near_duplicates(labelled[name], per_original=2) for name in ("portraits", "clipart")}
    position = {it.key: i for i, it in enumerate(pool)}
    with Embedder(DEFAULT_CONFIG, device=device) as embedder:
        found = embedder.embed_images([it.load() for it in pool])
        asked = {name: embedder.embed_images([it.load() for it in d.queries]) for name, d in dups.items()}
    print(f"\ncopies searched among {len(pool)} pictures (the portraits and the drawings), top-1:")
    for part in ("combined", "copy"):
        db = np.stack([getattr(v, part) for v in found])
        for name, d in dups.items():
            hit = metrics.top1(np.stack([getattr(v, part) for v in asked[name]]), db,
                               np.array([position[key] for key in d.targets]))
            kinds = np.array(d.kinds)
            print(f"  {part:8s} copies of the {name:9s} {hit.mean():.3f} ({int((~hit).sum())} of {len(hit)} missed): "
                  + ", ".join(f"{k} {hit[kinds == k].mean():.2f}" for k in dict.fromkeys(d.kinds)))


# ---- --folder: the held-out set itself, or any labelled pictures ----------------------------------------------
WORKING_SIDE = 1024  # the copies are edited from a working copy this large on its longer side


def folder_items(root: Path, labels_file: Path | None = None) -> tuple[list[sets.Item], int]:
    """The labelled pictures under ``root`` (one folder per label, or the CSV ``labels_file`` of path,label) and how
    many pictures were left out for having no label (those directly in ``root``)."""
    if labels_file is not None:
        if not labels_file.is_file():
            raise SystemExit(f"error: {labels_file}: no such file")
        with open(labels_file, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"path", "label"} <= set(reader.fieldnames or ()):
                raise SystemExit(f"error: {labels_file}: needs the columns path,label "
                                 f"(it has {', '.join(reader.fieldnames or ()) or 'none'})")
            rows = list(dict.fromkeys((row["path"] or "", (row["label"] or "").strip()) for row in reader))
        labelled = [(path, label) for path, label in rows if label]
        twice = next((path for path, n in Counter(path for path, _ in labelled).items() if n > 1), None)
        if twice is not None:
            raise SystemExit(f"error: {labels_file}: {twice} has two labels")
        items = [sets.Item(key=path, label=label, group=label, path=root / path) for path, label in labelled]
        return items, len(rows) - len(items)
    items, unlabelled = [], 0
    for path in iter_image_files(root):
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            unlabelled += 1
            continue
        items.append(sets.Item(key=str(path.relative_to(root)), label=parts[0], group=parts[0], path=path))
    return items, unlabelled


def copies_of(items: list[sets.Item], count: int, seed: int = 0) -> sets.NearDuplicates:
    """``count`` copies, one edit each (the eight in turn), of pictures drawn without replacement until every one
    was drawn once (seeded), each edited from a working copy at most WORKING_SIDE px on its longer side."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(items)) for _ in range(-(-count // len(items)))])[:count]
    return sets.near_duplicates([replace(items[int(i)], longest=WORKING_SIDE) for i in order], rng, per_original=1)


def readable(items: list[sets.Item], device: str) -> tuple[list[sets.Item], dict]:
    """The items the default can embed from their files, and its vectors of them ({"combined", "copy"}); every
    other picture named in one line on stderr."""
    with Embedder(DEFAULT_CONFIG, device=device) as embedder:
        results = embedder.embed_paths([it.path for it in items])
    good = []
    for i, r in enumerate(results):
        if isinstance(r, ImageError):
            print(f"left out: {r}", file=sys.stderr)
        else:
            good.append(i)
    if not good:
        raise SystemExit(f"error: no picture with a label could be read (of {len(items)})")
    return [items[i] for i in good], {part: np.stack([getattr(results[i], part) for i in good])
                                      for part in ("combined", "copy")}


def folder_vectors(items: list[sets.Item], dups: sets.NearDuplicates, default: dict, device: str) -> dict:
    """{method: vectors of the pictures, then of their copies} for every method of issue 9's table."""
    pictures = [it.load() for it in dups.queries]
    t = time.time()
    with Embedder(DEFAULT_CONFIG, device=device) as embedder:
        copied = embedder.embed_images(pictures)
    vectors = {"artvec default": np.stack([*default["combined"], *(v.combined for v in copied)]),
               "copy vector": np.stack([*default["copy"], *(v.copy for v in copied)])}
    print(f"  artvec default: {len(pictures)} copies in {time.time() - t:.0f}s", flush=True)
    for name, config in EMBEDDED.items():
        if name == "artvec default":
            continue
        t = time.time()
        with Embedder(config, device=device) as embedder:
            found = embedder.embed_paths([it.path for it in items]) + embedder.embed_images(pictures)
        failed = next((r for r in found if isinstance(r, ImageError)), None)
        if failed is not None:
            raise SystemExit(f"error: {name} could not read what the default read: {failed}")
        vectors[name] = np.stack([v.combined for v in found])
        print(f"  {name}: {len(found)} pictures in {time.time() - t:.0f}s", flush=True)
    t = time.time()
    vectors.update(vgg_baselines(items + dups.queries, device))
    print(f"  content CNN and literal recipe: {len(items) + len(pictures)} pictures in {time.time() - t:.0f}s", flush=True)
    return {name: np.ascontiguousarray(x, dtype=np.float32) for name, x in vectors.items()}


FIELDS = (("P@10", "precision_at_k"), ("mAP@R", "ap_at_r"), ("NN", "nn_correct"))


def folder_figures(items: list[sets.Item], dups: sets.NearDuplicates, vectors: dict) -> dict:
    """Every figure of the folder's report (what ``--json`` writes): each method's P@10, mAP@R, NN and near-duplicate
    top-1 ("dup1"); the default's paired lead on each ([difference, 95 % half-width], labels resampled); its worst
    labels and its copies by edit; each of issue 9's targets ([figure, half-width, target, met])."""
    n = len(items)
    labels = np.array([it.label for it in items])
    position = {it.key: i for i, it in enumerate(items)}
    targets = np.array([position[key] for key in dups.targets], dtype=int)
    dup_groups = labels[targets]
    retrieved = {name: metrics.retrieval(x[:n], labels, k=10) for name, x in vectors.items() if name != "copy vector"}
    found = {name: metrics.top1(x[n:], x[:n], targets) for name, x in vectors.items()} if len(targets) else {}
    r0, dup0 = retrieved["artvec default"], found.get("artvec default")
    groups = labels[r0.index]
    methods, leads = {}, {}
    for name in vectors:
        r = retrieved.get(name)
        methods[name] = {**({label: float(getattr(r, field).mean()) for label, field in FIELDS} if r else {}),
                         **({"dup1": float(found[name].mean())} if found else {})}
        if name != "artvec default":
            leads[name] = {**({label: metrics.paired_difference(getattr(r0, field), getattr(r, field), groups)
                               for label, field in FIELDS} if r else {}),
                           **({"dup1": metrics.paired_difference(dup0, found[name], dup_groups)} if found else {})}
    checks = [("P@10", r0.precision_at_k, groups, TARGETS[0]), ("mAP@R", r0.ap_at_r, groups, TARGETS[1])]
    if found:
        checks.append(("near-duplicate top-1", dup0, dup_groups, 0.99))
    goals = {label: (float(values.mean()), metrics.bootstrap_interval(values, by), target, bool(values.mean() >= target))
             for label, values, by, target in checks}
    kinds = np.array(dups.kinds)
    return {"pictures": n, "labels": len(set(labels)), "copies": len(targets), "methods": methods,
            "default_minus": leads, "issue_9_held_out": {name: dict(zip(("P@10", "mAP@R"), HELD_OUT[name]))
                                                         for name in vectors if name in HELD_OUT},
            "worst_labels": [(g, float(r0.ap_at_r[groups == g].mean()), int((labels == g).sum()))
                             for g in sorted(sorted(set(groups)), key=lambda g: r0.ap_at_r[groups == g].mean())[:5]],
            "copies_by_edit": {k: float(dup0[kinds == k].mean()) for k in dict.fromkeys(dups.kinds)} if found else {},
            "targets": goals, "all_met": bool(found) and all(met for *_, met in goals.values())}


def print_folder(f: dict) -> None:
    print(f"\n{'method':16s} {'P@10':>6s} {'mAP@R':>6s} {'NN':>6s} {'dup1':>6s}   issue 9's held-out P@10 / mAP@R")
    for name, m in f["methods"].items():
        cells = " ".join(f"{m[label]:6.3f}" for label, _ in FIELDS) if "P@10" in m else f"{'(searched apart)':>20s}"
        known = f["issue_9_held_out"].get(name)
        print(f"{name:16s} {cells} " + (f"{m['dup1']:6.3f}" if "dup1" in m else f"{'-':>6s}")
              + (f"   {known['P@10']:.3f} / {known['mAP@R']:.3f}" if known else ""))
    print("\nthe default minus each (paired, 95 % bootstrap resampling whole labels; '*' beyond the noise):")
    for name, lead in f["default_minus"].items():
        print(f"  vs {name:16s} " + "  ".join(f"{label} {lab.difference(*v)}" for label, v in lead.items()))
    print("worst labels (mAP@R, pictures): " + ", ".join(f"{g} {v:.2f} ({c})" for g, v, c in f["worst_labels"]))
    if f["copies_by_edit"]:
        print("near-duplicate top-1 by edit (default): " + ", ".join(f"{k} {v:.2f}" for k, v in f["copies_by_edit"].items()))
    print("\nissue 9's targets for the default (its figure ± the 95 % half-width, labels resampled):")
    for label, (value, half, target, met) in f["targets"].items():
        print(f"  {label:21s} {value:.3f} ± {half:.3f} (target {target:.2f}): {'met' if met else 'not met'}")
    print(f"all of them met: {f['all_met']}" + ("" if f["copies"] else " (no copies made: --copies-of 0)"))


def folder(root: Path, labels_file: Path | None, count: int, device: str, json_file: Path | None = None) -> None:
    if not root.is_dir():
        raise SystemExit(f"error: {root}: not a folder")
    items, unlabelled = folder_items(root, labels_file)
    note = f" ({unlabelled} without a label left out: pictures go in one folder per label)" if unlabelled else ""
    if not items:
        raise SystemExit(f"error: {root}: no labelled pictures{note or ' (pictures go in one folder per label)'}")
    print(f"{len(items)} pictures under {root}{note}; reading them with the default", flush=True)
    items, default = readable(items, device)
    sizes = Counter(it.label for it in items)
    if sum(n > 1 for n in sizes.values()) < 2:
        raise SystemExit(f"error: {root}: needs at least two labels with two pictures or more each "
                         f"(found {len(items)} readable pictures, {len(sizes)} labels)")
    dups = copies_of(items, count) if count else sets.NearDuplicates([], [], [])
    print(f"{len(items)} pictures, {len(sizes)} labels ({min(sizes.values())}–{max(sizes.values())} pictures each); "
          f"{len(dups.queries)} copies", flush=True)
    figures = folder_figures(items, dups, folder_vectors(items, dups, default, device))
    print_folder(figures)
    if json_file is not None:
        json_file.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures written to {json_file}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--copies", action="store_true", help="only the near-duplicate twins (two edits of each portrait and "
                                                          "drawing among all of them)")
    ap.add_argument("--folder", type=Path, metavar="DIR",
                    help="score the pictures under DIR, one folder per label (the held-out set itself, or any)")
    ap.add_argument("--labels", type=Path, metavar="FILE", help="with --folder: a CSV of path,label instead of folders")
    ap.add_argument("--json", type=Path, metavar="FILE", help="with --folder: also write every figure to FILE as JSON")
    ap.add_argument("--copies-of", type=int, default=300, metavar="N",
                    help="with --folder: near-duplicates made, one edit each (default 300; 0: none)")
    args = ap.parse_args()
    if (args.labels or args.json) and not args.folder:
        ap.error("--labels and --json go with --folder")
    if args.copies_of < 0:
        ap.error("--copies-of must be 0 or more")
    t0 = time.time()
    if args.folder:
        folder(args.folder, args.labels, args.copies_of, args.device, args.json)
        print(f"\ntotal {time.time() - t0:.0f}s")
        return
    if args.copies:
        copies(args.device)
        print(f"\ntotal {time.time() - t0:.0f}s")
        return
    labelled, *_ = sets.build(SETS)
    print(", ".join(f"{name} {len(labelled[name])}" for name in SETS), flush=True)
    report(figures(labelled, args.device))
    print(f"\ntotal {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
