"""The mahjongg tile style set: the SVG tilesets of Debian's ``kdegames-mahjongg-data-kf5``, each drawing
the same 42 tile faces (bamboo 1–9, characters 1–9, circles 1–9, winds, dragons, flowers, seasons), every
face rendered on its own on white with librsvg's ``rsvg-convert``. The label is the tileset, so content is
held constant and only style finds a tileset's other faces — the card decks' design on other pictures.
Faces only: on the tileset's own tile every picture shares the tile's colours and colour alone finds them
all. Left out: ``alphabet`` (letters: other content) and ``jade`` (white faces made for a dark tile).
4 tilesets are few labels, so noise is estimated by resampling the 42 faces (paired across tilesets).

Needs: ``apt-get install kdegames-mahjongg-data-kf5 librsvg2-bin``. Rendered PNGs are cached in
``~/.cache/artvec-bench/tiles`` (``ARTVEC_BENCH_CACHE``), outside the repository.

Usage: python benchmarks/tiles.py [--height 256]   (renders the cache; quality.py and lab.py call it too)
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cards import _render_element, bench_cache, require, rsvg_missing  # noqa: E402

TILESETS_DIR = Path("/usr/share/kmahjongglib/tilesets")
FACES = ([f"{suit}_{n}" for suit in ("BAMBOO", "CHARACTER", "ROD") for n in range(1, 10)]
         + [f"WIND_{n}" for n in range(1, 5)] + [f"DRAGON_{n}" for n in range(1, 4)]
         + [f"FLOWER_{n}" for n in range(1, 5)] + [f"SEASON_{n}" for n in range(1, 5)])
TILESETS = ("classic", "default", "egypt", "traditional")
HEIGHT = 256


def cache_dir() -> Path:
    return bench_cache("tiles")


def tilesets() -> list[str]:
    return sorted(p.stem for p in TILESETS_DIR.glob("*.svgz") if p.stem in TILESETS)


def missing_tools() -> str | None:
    if not TILESETS_DIR.is_dir() or not tilesets():
        return "the mahjongg tilesets are not installed (apt-get install kdegames-mahjongg-data-kf5)"
    return rsvg_missing()


def render_tileset(name: str, height: int = HEIGHT) -> Path:
    """Render the tileset's 42 faces into the cache (skipping those already there)."""
    folder = cache_dir() / f"{name}-{height}"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        svg = Path(tmp) / "tiles.svg"
        svg.write_bytes(gzip.decompress((TILESETS_DIR / f"{name}.svgz").read_bytes()))
        for face in FACES:
            out = folder / f"{face}.png"
            if not out.exists():
                _render_element(svg, face, 4.0, out, height)
    (folder / "done").touch()
    return folder


def tile_set(height: int = HEIGHT) -> list[tuple[Path, str, str]]:
    """[(png path, label, tileset)] for every face of every tileset, rendering what is not cached."""
    folders = {name: render_tileset(name, height) for name in tilesets()}
    return [(folders[n] / f"{f}.png", n, n) for n in folders for f in FACES
            if (folders[n] / f"{f}.png").exists()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=HEIGHT)
    args = ap.parse_args()
    require(missing_tools())
    items = tile_set(args.height)
    print(f"{len(items)} tiles, {len(tilesets())} tilesets, "
          f"cached in {cache_dir()}")


if __name__ == "__main__":
    main()
