"""Measure the near-duplicate distance thresholds of the default embedding: the copy vector's
(artvec.duplicates.COPY_THRESHOLD, what ``artvec duplicates`` compares when the configuration has one) and the
combined vector's (DEFAULT_THRESHOLD, for configurations without a copy vector).

    .venv/bin/python benchmarks/duplicate_threshold.py [--threads N] [--vectors FILE.npz]

Same picture: each of 10 scikit-image originals and the 40 demo pictures against its edits
(artvec/edits.py's, as in benchmarks/quality.py: rescans, mats, crops 70-95 %, rescales, JPEG q40-90,
greyscale copies, colour casts), plus a "soft rescan" (slightly rotated, brightened, blurred, re-encoded). Different
pictures: every pair among the originals, 10 distractors, 7 stylisations of each original
(the hard negatives: same content, other manner) and the demo pictures (8 motifs in 5 manners).
For each vector, prints the distance quantiles of both kinds of pair and the threshold ``calibrate_threshold``
picks, with the recall and false-positive rate it gives (put those figures into COPY_THRESHOLD and
DEFAULT_THRESHOLD); then the recall of the copy vector minus the combined vector's at each share of
different pairs, each at its own cut, paired over the same pairs (95 % bootstrap resampling the originals).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from artvec import demo_pictures  # noqa: E402
from artvec.duplicates import COPY_THRESHOLD, DEFAULT_THRESHOLD, MAX_FALSE_SHARE, calibrate_threshold  # noqa: E402
from artvec import metrics  # noqa: E402
from artvec.embedding import DEFAULT_CONFIG, Embedder  # noqa: E402
from artvec.edits import EDITS as LIBRARY_EDITS, jpeg as _jpeg  # noqa: E402
from sets import CONTENT, DISTRACTORS, STYLES, skimage_picture, work_size  # noqa: E402

_RNG = np.random.default_rng(0)
#: the library's edits (artvec/edits.py: rescans, mats, crops, rescales, re-encodes, greyscale), seeded
EDITS = {name: (lambda edit: lambda img: edit(img, _RNG))(edit) for name, edit in LIBRARY_EDITS.items()}


def rescan(img: Image.Image) -> Image.Image:
    """A second scan of the same print: a little rotation, brighter, softer, re-encoded."""
    turned = img.rotate(1.5, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(250, 250, 245))
    return _jpeg(ImageEnhance.Brightness(turned).enhance(1.06).filter(ImageFilter.GaussianBlur(0.8)), 75)


def sets() -> tuple[list[Image.Image], list[int], list[bool], list[str]]:
    """Pictures, the id of the picture each shows, whether it is an original, and the edit's name."""
    originals = [work_size(skimage_picture(name)) for name in CONTENT]
    originals += [demo_pictures.render(row) for row in demo_pictures.catalogue()]
    pictures, ids, is_original, edits = [], [], [], []
    for number, img in enumerate(originals):
        for name, edit in [("original", None), *EDITS.items(), ("soft rescan", rescan)]:
            pictures.append(img if edit is None else edit(img))
            ids.append(number)
            is_original.append(edit is None)
            edits.append(name)
    others = [work_size(skimage_picture(name)) for name in DISTRACTORS]
    others += [style(img) for img in originals[:len(CONTENT)] for style in STYLES.values()]
    for offset, img in enumerate(others):
        pictures.append(img)
        ids.append(len(originals) + offset)
        is_original.append(True)
        edits.append("original")
    return pictures, ids, is_original, edits


#: the shares of different pairs a cut is computed for (the first: calibrate_threshold's own, MAX_FALSE_SHARE)
SHARES = (MAX_FALSE_SHARE, 0.025, 0.05)


def pairs(vectors: np.ndarray, ids: np.ndarray, is_original: np.ndarray):
    """(all distances, same-picture distances, different-picture distances, each same pair's original)."""
    distances = np.sqrt(np.maximum(((vectors[:, None, :] - vectors[None, :, :]) ** 2).sum(-1), 0))
    same, different, source = [], [], []
    for i, j in zip(*np.triu_indices(len(vectors), 1)):
        if ids[i] == ids[j]:
            if is_original[i] or is_original[j]:
                same.append(distances[i, j])
                source.append(ids[i])
        elif is_original[i] and is_original[j]:
            different.append(distances[i, j])
    return distances, np.array(same), np.array(different), np.array(source)


def report(name: str, vectors: np.ndarray, ids, is_original, edits, constant: tuple[str, float]) -> tuple[dict, np.ndarray]:
    """One vector's tables; the recall at each share's cut, per same pair (for the paired difference)."""
    distances, same, different, source = pairs(vectors, ids, is_original)
    photograph = source < len(CONTENT)
    cut_at = {share: calibrate_threshold(list(same), list(different), share) for share in SHARES}
    edited = [(i, first) for first in np.flatnonzero(is_original) for i in np.flatnonzero(ids == ids[first])
              if not is_original[i]]
    print(f"\n## {name}\n\n| pairs | n | min | 5 % | median | 95 % | max |\n|---|---:|---:|---:|---:|---:|---:|")
    for label, values in (("same picture (edit vs original)", same), ("different pictures", different)):
        q = np.quantile(values, [0, 0.05, 0.5, 0.95, 1])
        print(f"| {label} | {len(values)} | " + " | ".join(f"{x:.3f}" for x in q) + " |")
    print("\n| edit | median | max |\n|---|---:|---:|")
    for edit in dict.fromkeys(edits[~is_original]):
        values = [distances[i, first] for i, first in edited if edits[i] == edit]
        print(f"| {edit} | {np.median(values):.3f} | {np.max(values):.3f} |")
    print("\n| cut | recall: all / photographs / demo renderings | different pairs within |\n|---|---|---:|")
    cuts = [("calibrated" if share == MAX_FALSE_SHARE else f"{share:.1%} of different pairs", cut)
            for share, cut in cut_at.items()] + [constant]
    for label, cut in cuts:
        print(f"| {label} {cut:.3f} | {np.mean(same <= cut):.3f} / {np.mean(same[photograph] <= cut):.3f} / "
              f"{np.mean(same[~photograph] <= cut):.3f} | {np.mean(different <= cut):.4f} ({int(np.sum(different <= cut))}) |")
    return {share: (same <= cut).astype(float) for share, cut in cut_at.items()}, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--vectors", help="keep the vectors in this .npz (reused when it exists)")
    args = parser.parse_args()
    started = time.time()
    if args.vectors and Path(args.vectors).exists():
        saved = np.load(args.vectors)
        combined, copies = saved["combined"], saved["copies"]
        ids, is_original, edits = saved["ids"], saved["is_original"], saved["edits"]
    else:
        pictures, ids, is_original, edits = sets()
        with Embedder(DEFAULT_CONFIG, threads=args.threads) as embedder:
            vectors = embedder.embed_images(pictures)
        combined = np.stack([v.combined for v in vectors]).astype(np.float64)
        copies = np.stack([v.copy for v in vectors]).astype(np.float64)
        if args.vectors:
            np.savez(args.vectors, combined=combined, copies=copies, ids=ids, is_original=is_original, edits=edits)
    ids, is_original, edits = np.array(ids), np.array(is_original), np.array(edits)
    print(f"{len(combined)} pictures ({DEFAULT_CONFIG.config_id}), {time.time() - started:.0f} s")
    by_copy, source = report("the copy vector (artvec duplicates)", copies, ids, is_original, edits,
                             ("COPY_THRESHOLD", COPY_THRESHOLD))
    by_combined, _ = report("the combined vector (configurations without a copy vector)", combined, ids, is_original,
                            edits, ("DEFAULT_THRESHOLD", DEFAULT_THRESHOLD))
    print("\n| share of different pairs | recall: copy vector / combined vector | difference |\n|---|---|---:|")
    for share in SHARES:
        diff, half = metrics.paired_difference(by_copy[share], by_combined[share], source)
        print(f"| {share:.1%} | {by_copy[share].mean():.3f} / {by_combined[share].mean():.3f} | {diff:+.3f} ± {half:.3f} |")


if __name__ == "__main__":
    main()
