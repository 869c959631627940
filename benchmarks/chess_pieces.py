"""The chess piece style set: the piece sets of Debian's ``pychess`` (/usr/share/pychess/pieces), each
drawing the same 12 pieces (king, queen, rook, bishop, knight and pawn, white and black), every piece
rendered on its own on white with librsvg's ``rsvg-convert``. The label is the set's design, so content is
held constant and only the drawing finds a set's other pieces — mostly black-and-white line work (the
font-derived alpha, merida, leipzig) beside shaded and coloured ones (chessmonk, freak, metaltops).
Near-identical variants are one family each (merida and merida_new, fantasy and fantasy_alt). Left out:
makruk and sittuyin (Thai and Burmese pieces: other content) and the TrueType sets (fonts). A set is
either 12 SVG files or one 1200×400 sheet of 6 × 2 pieces, cut into its cells.

Needs ``rsvg-convert`` (``apt-get install librsvg2-bin``) and the piece sets: ``apt-get install pychess``,
or, without pychess's desktop dependencies, ``apt-get download pychess && dpkg -x pychess_*.deb DIR`` and
``ARTVEC_CHESS_PIECES=DIR/usr/share/pychess/pieces``. Rendered PNGs are cached in
``~/.cache/artvec-bench/chess`` (``ARTVEC_BENCH_CACHE``), outside the repository.

Usage: python benchmarks/chess_pieces.py [--height 256]   (renders the cache; quality.py and lab.py call it too)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cards import bench_cache, ink_on_white, require, rsvg_missing  # noqa: E402

PIECES = [f"{colour}{piece}" for colour in "wb" for piece in "kqrbnp"]
#: sets of other content, and variants merged into one family
LEFT_OUT = {"makruk", "sittuyin", "ttf"}
FAMILY = {"merida_new": "merida", "fantasy_alt": "fantasy"}
HEIGHT = 256


def pieces_dir() -> Path:
    return Path(os.environ.get("ARTVEC_CHESS_PIECES", "/usr/share/pychess/pieces"))


def cache_dir() -> Path:
    return bench_cache("chess")


def family(piece_set: str) -> str:
    return FAMILY.get(piece_set, piece_set)


def piece_sets() -> list[str]:
    root = pieces_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and p.name not in LEFT_OUT
                  and (all((p / f"{piece}.svg").exists() for piece in PIECES) or (p / f"{p.name}.svg").exists()))


def missing_tools() -> str | None:
    if not piece_sets():
        return (f"the pychess piece sets are not in {pieces_dir()} (apt-get install pychess, or set "
                "ARTVEC_CHESS_PIECES to the pieces folder of an unpacked pychess .deb)")
    return rsvg_missing()


def _rasterise(svg: Path, height: int) -> "Image.Image":
    from PIL import Image

    with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
        subprocess.run(["rsvg-convert", "-h", str(height), str(svg), "-o", tmp.name], check=True, capture_output=True)
        return Image.open(tmp.name).copy()


def render_set(name: str, height: int = HEIGHT) -> Path:
    """Render the set's 12 pieces into the cache (skipping a set already there)."""
    folder = cache_dir() / f"{name}-{height}"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    source = pieces_dir() / name
    if (source / f"{PIECES[0]}.svg").exists():
        for piece in PIECES:
            ink_on_white(_rasterise(source / f"{piece}.svg", 2 * height), height, f"{name}/{piece}").save(
                folder / f"{piece}.png")
    else:  # one sheet: white pieces on the top row, black below, 6 columns, cut into its cells
        sheet = _rasterise(source / f"{name}.svg", 4 * height)
        cell = sheet.height // 2
        for i, piece in enumerate(PIECES):
            row, column = divmod(i, 6)
            ink_on_white(sheet.crop((column * cell, row * cell, (column + 1) * cell, (row + 1) * cell)),
                         height, f"{name}/cell{i:02d}").save(folder / f"cell{i:02d}.png")
    (folder / "done").touch()
    return folder


def chess_set(height: int = HEIGHT) -> list[tuple[Path, str, str]]:
    """[(png path, label, piece set)] for every piece of every set, rendering what is not cached."""
    out = []
    for name in piece_sets():
        folder = render_set(name, height)
        out += [(path, family(name), name) for path in sorted(folder.glob("*.png"))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=HEIGHT)
    args = ap.parse_args()
    require(missing_tools())
    items = chess_set(args.height)
    print(f"{len(items)} pieces, {len(piece_sets())} sets, {len({label for _, label, _ in items})} families, "
          f"cached in {cache_dir()}")


if __name__ == "__main__":
    main()
