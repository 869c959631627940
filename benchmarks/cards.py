"""The card-deck style set: 16 illustrated SVG decks from Debian's ``kdegames-card-data-kf5``, each
with the same 52 cards, every card rendered on its own with librsvg's ``rsvg-convert``.

The label is the deck's *family*: near-identical variants (the three oxygen decks, the two nicu decks,
the two xskat decks) are merged, so 16 decks give 12 labels. Content is held constant (every deck draws
the same 52 cards), so only style can find a deck's other cards.

Needs: ``apt-get install kdegames-card-data-kf5 librsvg2-bin`` (``.ci/run`` does not; the benchmark says
so in one line if they are missing). Rendered PNGs are cached in ``~/.cache/artvec-bench/cards``
(``ARTVEC_BENCH_CACHE``), outside the repository.

Usage: python benchmarks/cards.py [--height 448] [--jobs 2]   (renders the cache; quality.py calls it too)
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DECKS_DIR = Path("/usr/share/carddecks")
RANKS = [str(n) for n in range(1, 11)] + ["jack", "queen", "king"]
SUITS = ["club", "diamond", "heart", "spade"]
CARDS = [f"{rank}_{suit}" for rank in RANKS for suit in SUITS]
FAMILY = {"oxygen": "oxygen", "oxygen-air": "oxygen", "oxygen-white": "oxygen",
          "nicu-ornamental": "nicu", "nicu-white": "nicu",
          "xskat-french": "xskat", "xskat-german": "xskat"}
HEIGHT = 448


def bench_cache(name: str) -> Path:
    """Where the benchmark sets' rendered pictures are kept: outside the repository (``ARTVEC_BENCH_CACHE``)."""
    return Path(os.environ.get("ARTVEC_BENCH_CACHE", Path.home() / ".cache" / "artvec-bench")) / name


def cache_dir() -> Path:
    return bench_cache("cards")


def require(problem: str | None) -> None:
    """Exit with one line naming what a set needs and lacks (its ``missing_tools()``), if anything."""
    if problem:
        raise SystemExit(f"error: {problem}")


def rsvg_missing() -> str | None:
    """What every rendered set needs besides its own package."""
    if shutil.which("rsvg-convert") is None:
        return "rsvg-convert is not installed (apt-get install librsvg2-bin)"
    return None


def decks() -> list[str]:
    return sorted(d.name[len("svg-"):] for d in DECKS_DIR.glob("svg-*") if list(d.glob("*.svgz")))


def family(deck: str) -> str:
    return FAMILY.get(deck, deck)


def missing_tools() -> str | None:
    if not DECKS_DIR.is_dir() or not decks():
        return "the card decks are not installed (apt-get install kdegames-card-data-kf5)"
    return rsvg_missing()


def _render_element(svg: Path, element: str, zoom: float, out: Path, height: int, on_white: bool = True) -> None:
    """rsvg-convert draws one element at its place on the page; crop to its ink, lay it on white (or keep
    its transparency)."""
    from PIL import Image

    with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
        subprocess.run(["rsvg-convert", "-i", element, "-z", f"{zoom:.4f}", str(svg), "-o", tmp.name],
                       check=True, capture_output=True)
        img = Image.open(tmp.name)
        img.load()
    ink_on_white(img, height, f"{svg.name}#{element}", on_white).save(out)


def ink_on_white(img, height: int, what: str, on_white: bool = True):
    """A drawing cropped to its ink, laid on white (or keeping its transparency), ``height`` px high."""
    from PIL import Image

    img = img.convert("RGBA")
    box = img.getchannel("A").getbbox()
    if box is None:
        raise RuntimeError(f"{what}: nothing drawn")
    img = img.crop(box)
    if on_white:
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
    w, h = img.size
    return img.resize((max(1, round(w * height / h)), height), Image.Resampling.LANCZOS)


def luma_thumbnail(picture, size: tuple[int, int] = (16, 16)):
    """A picture's luma reduced to ``size`` (box-averaged), centred and of unit length: the dot product of two is
    their correlation, which the sets use to pass over copies and variants."""
    import numpy as np
    from PIL import Image

    g = np.asarray(picture.convert("L").resize(size, Image.Resampling.BOX), dtype=np.float64).ravel()
    g -= g.mean()
    return g / max(np.linalg.norm(g), 1e-9)


def render_deck(deck: str, height: int = HEIGHT) -> Path:
    """Render the deck's 52 cards into the cache (skipping those already there)."""
    from PIL import Image

    folder = cache_dir() / f"{deck}-{height}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) == len(CARDS):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    svgz = next((DECKS_DIR / f"svg-{deck}").glob("*.svgz"))
    with tempfile.TemporaryDirectory() as tmp:
        svg = Path(tmp) / "deck.svg"
        svg.write_bytes(gzip.decompress(svgz.read_bytes()))
        probe = Path(tmp) / "probe.png"
        drawn = subprocess.run(["rsvg-convert", "-i", "king_heart", str(svg), "-o", str(probe)], capture_output=True)
        if drawn.returncode != 0:  # cards that are embedded bitmaps (konqi-modern): crop them from the page
            _render_from_page(svg, folder, height)
            return folder
        box = Image.open(probe).convert("RGBA").getchannel("A").getbbox()
        zoom = 1.25 * height / max(1, box[3] - box[1])  # render above the target size, then downscale
        for card in CARDS:
            out = folder / f"{card}.png"
            if not out.exists():
                _render_element(svg, card, zoom, out, height)
    return folder


def _render_from_page(svg: Path, folder: Path, height: int) -> None:
    """Render the whole page once and cut each card out by its element's x, y, width and height."""
    import re

    from PIL import Image

    text = svg.read_text(errors="replace")
    boxes = {}
    for card in CARDS:
        tag = re.search(r'<[a-z]+\s(?:[^<>]*?)id="' + card + r'"[^<>]*>', text, re.S).group(0)
        x, y, w, h = (float(re.search(rf'\s{a}="([0-9.]+)"', tag).group(1)) for a in ("x", "y", "width", "height"))
        boxes[card] = (x, y, w, h)
    zoom = 1.25 * height / max(h for *_, h in boxes.values())
    with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
        subprocess.run(["rsvg-convert", "-z", f"{zoom:.4f}", "-b", "white", str(svg), "-o", tmp.name],
                       check=True, capture_output=True)
        page = Image.open(tmp.name).convert("RGB")
    for card, (x, y, w, h) in boxes.items():
        piece = page.crop(tuple(round(v * zoom) for v in (x, y, x + w, y + h)))
        piece = piece.resize((max(1, round(w * height / h)), height), Image.Resampling.LANCZOS)
        piece.save(folder / f"{card}.png")


def card_set(height: int = HEIGHT, jobs: int = 2) -> list[tuple[Path, str, str]]:
    """[(png path, family label, deck)] for every card of every deck, rendering what is not cached."""
    names = decks()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        folders = dict(zip(names, pool.map(lambda d: render_deck(d, height), names)))
    return [(folders[d] / f"{c}.png", family(d), d) for d in names for c in CARDS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=HEIGHT)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    require(missing_tools())
    items = card_set(args.height, args.jobs)
    families = sorted({f for _, f, _ in items})
    print(f"{len(items)} cards, {len(decks())} decks, {len(families)} families, cached in {cache_dir()}")


if __name__ == "__main__":
    main()
