"""Fit the whitening basis artvec ships (``artvec/data/whitening-<name>.npz``) on the reference set.

The reference set (benchmarks/reference.py): about 1,070 clip-art drawings by about 480 artists of the Open
Clip Art Library, none of them in any benchmark set. Each goes through artvec's own Embedder with the
default configuration *unwhitened* (``whitening = none``), exactly as ``artvec sync`` computes its parts;
each part (style, colour) is then fitted apart (``artvec.whitening.fit``: α = 0.25, shrinkage 0.1, the
256 leading directions), and the file records the parts' configuration it fits (``parts_id``).

``--kind copies`` fits the copy vector's basis instead (``artvec/data/copies-<name>.npz``): relu4_4's pooled
channels of the same drawings (square-rooted, L2, as the Embedder computes them before the basis), fitted
with α = 0.5 (a stronger whitening: the copy vector should tell one drawing from every other, not group
them), shrinkage 0.1, the 256 leading directions.

The default's basis, ``clipart-scans-v1`` (the basis for scanned paper), is fitted on the same drawings
and, beside each, a print and scan of it (``artvec.edits.print_and_scan``, seeded ``[8, i]``: a paper tint, faded ink,
uneven light, skew, blur, grain, JPEG), so that the directions a scan moves a picture in count less;
``--name clipart-v4`` fits the previous default's, on the drawings alone (``CLEAN_CONFIG``).

This is run once, when the embedding changes — never on a user's pictures. ``--check`` refits and
compares with the shipped file instead of writing it (the eigenvectors of another machine's BLAS differ
in the last digits, so the check is on the transforms' output, not the file's bytes).

Needs what benchmarks/clipart.py needs.
Usage: python benchmarks/fit_whitening.py [--kind whitening|copies] [--name clipart-scans-v1|clipart-v4] [--check]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import reference  # noqa: E402
from artvec import whitening  # noqa: E402
from artvec.edits import SCAN_STEPS, print_and_scan  # noqa: E402
from artvec.embedding import COPY_LAYER, DEFAULT_CONFIG, Embedder, colour_shares_power, pooled_channels, shipped_with  # noqa: E402
from artvec.images import ImageError, load_image  # noqa: E402
from cards import require  # noqa: E402
from clipart import missing_tools  # noqa: E402

ALPHA, SHRINKAGE, RANK = 0.25, 0.1, 256
COPY_ALPHA = 0.5
#: bases fitted on the reference drawings and a print and scan of each
WITH_SCANS = {"clipart-scans-v1", "clipart-scans-v2"}
SCAN_SEED = 8


def reference_scan(img, i: int, steps=SCAN_STEPS, seed: int = SCAN_SEED):
    """The ``i``-th reference drawing printed and scanned as the basis for scanned paper saw it (seeded
    ``[SCAN_SEED, i]``), or with some of the scan's steps only (the same draws), or with another ``seed``'s draws."""
    return print_and_scan(img, np.random.default_rng([seed, i]), steps)


def scanned(path: Path, i: int) -> bytes:
    """The reference drawing ``path`` (the ``i``-th) printed and scanned, as PNG bytes (the scan's pixels exactly)."""
    buffer = io.BytesIO()
    reference_scan(load_image(path), i).save(buffer, "PNG")
    return buffer.getvalue()


def reference_parts(config, device: str, scans: bool = False) -> tuple[dict[str, np.ndarray], list[str]]:
    """The reference drawings' style and colour parts before the basis (with ``scans``, each drawing's scan too)."""
    pngs = reference.reference_set()
    sources = [(p.stem, p) for p in pngs]
    if scans:
        sources += [(f"scan/{p.stem}", scanned(p, i)) for i, p in enumerate(pngs)]
    style, colour = [], []
    t = time.time()
    with Embedder(config, device=device) as embedder:
        for i, (key, result) in enumerate(embedder.embed_stream(iter(sources), batch_size=8)):
            if isinstance(result, Exception):
                raise SystemExit(f"error: {result}")
            style.append(result.style)
            colour.append(result.colour)
            if (i + 1) % 200 == 0:
                print(f"  {i + 1}/{len(sources)} ({(time.time() - t) / (i + 1) * 1000:.0f} ms/picture)", flush=True)
    # the colour part as the combined vector holds it before the basis: its shares to the configuration's exponent
    return ({"style": np.stack(style), "colour": colour_shares_power(np.stack(colour), config.colour_exponent)},
            [p.stem for p in pngs])


def reference_copies(config, device: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """The reference drawings' copy vectors before the basis: relu4_4's pooled channels as the Embedder
    computes them (its own decoding, resizing and model input)."""
    import torch

    pngs = reference.reference_set()
    rows = []
    with Embedder(dataclasses.replace(config, copy_vector=""), device=device) as embedder, torch.inference_mode():
        for path in pngs:
            try:
                model_input = embedder.model_input(path)
            except ImageError as exc:
                raise SystemExit(f"error: {exc}") from None
            maps = embedder.feature_maps(model_input[None], (COPY_LAYER,))
            rows.append(pooled_channels(maps[COPY_LAYER]).cpu().numpy()[0])
    return {"copy": np.stack(rows)}, [p.stem for p in pngs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="whitening", choices=sorted(whitening.KINDS),
                    help="whitening: the style and colour parts' basis; copies: the copy vector's")
    ap.add_argument("--name", default=None, help="the basis's name (default: the default configuration's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--check", action="store_true", help="refit and compare with the shipped file")
    args = ap.parse_args()
    require(missing_tools())
    copies = args.kind == "copies"
    name = args.name or (DEFAULT_CONFIG.copy_vector if copies else DEFAULT_CONFIG.whitening) or "clipart-v1"
    # the parts a basis was fitted on: the configuration that ships with it, unwhitened (a new name: the default's)
    base = dataclasses.replace(DEFAULT_CONFIG if copies else (shipped_with(name) or DEFAULT_CONFIG), whitening="",
                               copy_vector="")
    scans = name in WITH_SCANS
    parts, files = reference_copies(base, args.device) if copies else reference_parts(base, args.device, scans)
    artists = len({file.split("--")[0] for file in files})
    alpha = COPY_ALPHA if copies else ALPHA
    fitted = {part: whitening.fit(x, alpha, SHRINKAGE, RANK) for part, x in parts.items()}
    count = len(next(iter(parts.values())))
    if args.check:
        shipped = whitening.load(name, args.kind)
        worst = max(float(np.abs(fitted[p].apply(x) - shipped.parts[p].apply(x)).max()) for p, x in parts.items())
        same = copies or shipped.parts_id == base.parts_id
        same_files = shipped.meta.get("files") == files
        print(f"refitted on {count} pictures: largest difference of a whitened element {worst:.2e}; "
              f"parts_id {'matches' if same else 'DIFFERS'}; the reference pictures "
              f"{'are the same' if same_files else 'DIFFER'} ({shipped.meta.get('source')} then, {reference.package_version()} now)")
        raise SystemExit(0 if same and same_files and worst < 1e-3 else 1)
    fitted_for = f"{COPY_LAYER} pooled (square-rooted, L2) of {base.config_id}'s input" if copies else base.config_id
    meta = {"parts_id": "" if copies else base.parts_id, "fitted_for": fitted_for, "alpha": alpha, "shrinkage": SHRINKAGE,
            "rank": RANK, "pictures": count, "artists": artists, "files": files, "source": reference.package_version(),
            "scans": (f"each drawing also printed and scanned once (artvec.edits.print_and_scan, seeded [{SCAN_SEED}, i])"
                      if scans else ""),
            "reference": "Open Clip Art Library (openclipart-svg, public domain): artists outside the clip-art "
                         f"benchmark, at most {reference.PER_ARTIST} drawings each (benchmarks/reference.py)"}
    path = whitening.path_of(name, args.kind)
    whitening.DATA_DIR.mkdir(exist_ok=True)
    whitening.save(path, fitted, meta)
    print(f"wrote {path}: fitted on {count} pictures{' (the drawings and their scans)' if scans else ''} by {artists} artists, "
          f"{meta['fitted_for']} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
