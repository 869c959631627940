"""Fit the whitening basis artvec ships (``artvec/data/whitening-<name>.npz``) on the reference set.

The reference set (benchmarks/reference.py): about 1,070 clip-art drawings by about 480 artists of the Open
Clip Art Library, none of them in any benchmark set. Each goes through artvec's own Embedder with the
default configuration *unwhitened* (``whitening = none``), exactly as ``artvec sync`` computes its parts;
each part (style, colour) is then fitted apart (``artvec.whitening.fit``: α = 0.25, shrinkage 0.1, the
256 leading directions), and the file records the parts' configuration it fits (``parts_id``).

This is run once, when the embedding changes — never on a user's pictures. ``--check`` refits and
compares with the shipped file instead of writing it (the eigenvectors of another machine's BLAS differ
in the last digits, so the check is on the transforms' output, not the file's bytes).

Needs what benchmarks/clipart.py needs. Usage: python benchmarks/fit_whitening.py [--name clipart-v2] [--check]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import reference  # noqa: E402
from artvec import whitening  # noqa: E402
from artvec.embedding import DEFAULT_CONFIG, Embedder, shipped_with  # noqa: E402
from cards import require  # noqa: E402
from clipart import missing_tools  # noqa: E402

ALPHA, SHRINKAGE, RANK = 0.25, 0.1, 256


def reference_parts(config, device: str) -> tuple[dict[str, np.ndarray], list[str]]:
    pngs = reference.reference_set()
    style, colour = [], []
    t = time.time()
    with Embedder(config, device=device) as embedder:
        for i, (path, result) in enumerate(embedder.embed_stream(((p, p) for p in pngs), batch_size=8)):
            if isinstance(result, Exception):
                raise SystemExit(f"error: {result}")
            style.append(result.style)
            colour.append(result.colour)
            if (i + 1) % 200 == 0:
                print(f"  {i + 1}/{len(pngs)} ({(time.time() - t) / (i + 1) * 1000:.0f} ms/picture)", flush=True)
    return {"style": np.stack(style), "colour": np.stack(colour)}, [p.stem for p in pngs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default=DEFAULT_CONFIG.whitening or "clipart-v1")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--check", action="store_true", help="refit and compare with the shipped file")
    args = ap.parse_args()
    require(missing_tools())
    # the parts a basis was fitted on: the configuration that ships with it, unwhitened (a new name: the default's)
    base = dataclasses.replace(shipped_with(args.name) or DEFAULT_CONFIG, whitening="")
    parts, files = reference_parts(base, args.device)
    artists = len({name.split("--")[0] for name in files})
    fitted = {part: whitening.fit(x, ALPHA, SHRINKAGE, RANK) for part, x in parts.items()}
    count = len(parts["style"])
    if args.check:
        shipped = whitening.load(args.name)
        worst = max(float(np.abs(fitted[p].apply(x) - shipped.parts[p].apply(x)).max()) for p, x in parts.items())
        same = shipped.parts_id == base.parts_id
        same_files = shipped.meta.get("files") == files
        print(f"refitted on {count} pictures: largest difference of a whitened element {worst:.2e}; "
              f"parts_id {'matches' if same else 'DIFFERS'}; the reference pictures "
              f"{'are the same' if same_files else 'DIFFER'} ({shipped.meta.get('source')} then, {reference.package_version()} now)")
        raise SystemExit(0 if same and same_files and worst < 1e-3 else 1)
    meta = {"parts_id": base.parts_id, "fitted_for": base.config_id, "alpha": ALPHA, "shrinkage": SHRINKAGE,
            "rank": RANK, "pictures": count, "artists": artists, "files": files, "source": reference.package_version(),
            "reference": "Open Clip Art Library (openclipart-svg, public domain): artists outside the clip-art "
                         f"benchmark, at most {reference.PER_ARTIST} drawings each (benchmarks/reference.py)"}
    whitening.DATA_DIR.mkdir(exist_ok=True)
    whitening.save(whitening.path_of(args.name), fitted, meta)
    print(f"wrote {whitening.path_of(args.name)}: fitted on {count} drawings by {artists} artists, parts of "
          f"{base.config_id} ({whitening.path_of(args.name).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
