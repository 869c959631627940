"""The card-pattern set: the court cards of AisleRiot's card themes (Debian's ``gnome-cards-data``,
``/usr/share/aisleriot/cards``), labelled by design.

Most of these themes redraw a *historical* pattern of playing cards — the Berlin, Rhineland and Lattmann patterns, a
17th-century Swiss deck, an Italian tarocco, Orell's, the Russian "Atlas" deck, old French portraits, Slavic costumes,
Guyenne — and the rest are modern designs (Tango, Gnomangelo, Plastic). Every theme draws the same twelve court cards
(jack, queen and king of each suit, or the figures that stand in their places), so content is held constant, as in
the KDE decks of ``cards.py``, and only the design finds a theme's other court cards; here the designs are mostly the
woodcut, engraved and lithographed figures of the 17th to 19th centuries, redrawn as vectors.

A theme is one SVG page of 13 × 5 cards: a row per suit (clubs, diamonds, hearts, spades), ace to king left to right,
and a fifth row of jokers and the back. Each court card is cut from the page rendered once by librsvg's
``rsvg-convert``, cropped to its ink and laid on white, ``HEIGHT`` px high (cached in
``~/.cache/artvec-bench/card-patterns``). A variant of a design already chosen — the same figures as a bitmap, in four
colours, for skat, recoloured, under another name (its court cards' 16 × 24 luma thumbnails correlate above
``VARIANT_CORRELATION`` with the earlier theme's, on average, card by card) — is passed over, so that a card's other
rendering never stands in for the design's other cards; a theme with no figures (Simplistic: letters) is left out. On
gnome-cards-data 3.22.23: 29 themes, 8 variants passed over, 21 designs × 12 = 252 cards. The noise resamples the
designs, as the KDE decks' families are.

Needs: ``apt-get install gnome-cards-data librsvg2-bin``, or ``apt-get download gnome-cards-data && dpkg -x
gnome-cards-data_*.deb DIR`` and ``ARTVEC_AISLERIOT_CARDS=DIR/usr/share/aisleriot/cards``.

Usage: python benchmarks/card_patterns.py   (renders and lists the set; quality.py calls it with --sets card-patterns)
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cards import bench_cache, ink_on_white, luma_thumbnail, require, rsvg_missing  # noqa: E402

CARDS_DIR = "/usr/share/aisleriot/cards"
HEIGHT = 448
COLUMNS, ROWS = 13, 5
SUITS = ["club", "diamond", "heart", "spade"]  # the page's rows, top to bottom
COURTS = {"jack": 10, "queen": 11, "king": 12}  # the page's columns
#: mean correlation of two themes' court-card thumbnails above which the later one is a variant of the earlier
VARIANT_CORRELATION = 0.9
#: themes without figures on their court cards
NO_FIGURES = ("simplistic",)


def cards_dir() -> Path:
    return Path(os.environ.get("ARTVEC_AISLERIOT_CARDS", CARDS_DIR))


def themes() -> list[str]:
    return sorted(p.stem for p in cards_dir().glob("*.svgz") if p.stem not in NO_FIGURES)


def missing_tools() -> str | None:
    if not themes():
        return (f"AisleRiot's card themes are not at {cards_dir()} (apt-get install gnome-cards-data, or set "
                "ARTVEC_AISLERIOT_CARDS to usr/share/aisleriot/cards of an unpacked gnome-cards-data .deb)")
    return rsvg_missing()


def court_cards() -> list[str]:
    return [f"{rank}_{suit}" for suit in SUITS for rank in COURTS]


def render_theme(theme: str, height: int = HEIGHT) -> Path:
    """Cut the theme's twelve court cards from its page into the cache (once)."""
    from PIL import Image

    folder = bench_cache("card-patterns") / f"{theme}-{height}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) == len(court_cards()):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        svg, page = Path(tmp) / "theme.svg", Path(tmp) / "page.png"
        svg.write_bytes(gzip.decompress((cards_dir() / f"{theme}.svgz").read_bytes()))
        # a card's cell 1.25 × the target height: render above the target size, then downscale
        done = subprocess.run(["rsvg-convert", "-h", str(round(1.25 * height * ROWS)), str(svg), "-o", str(page)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            said = done.stderr.strip().splitlines()
            raise RuntimeError(f"{theme}.svgz: rsvg-convert failed: {said[-1] if said else f'exit {done.returncode}'}")
        sheet = Image.open(page)
        sheet.load()
    width, cell_h = sheet.width / COLUMNS, sheet.height / ROWS
    for row, suit in enumerate(SUITS):
        for rank, column in COURTS.items():
            cell = sheet.crop((round(column * width), round(row * cell_h),
                               round((column + 1) * width), round((row + 1) * cell_h)))
            ink_on_white(cell, height, f"{theme}.svgz {rank}_{suit}").save(folder / f"{rank}_{suit}.png")
    return folder


def thumbnails(folder: Path) -> np.ndarray:
    """The court cards' 16 × 24 luma thumbnails, each centred and of unit length (a row per card)."""
    from PIL import Image

    rows = []
    for card in court_cards():
        with Image.open(folder / f"{card}.png") as img:
            rows.append(luma_thumbnail(img, (16, 24)))
    return np.array(rows)


def choose_designs(height: int = HEIGHT) -> tuple[dict[str, Path], dict[str, str]]:
    """({theme: its rendered folder} of the designs chosen, {variant passed over: the theme it is a variant of})."""
    chosen: dict[str, Path] = {}
    thumbs: dict[str, np.ndarray] = {}
    variants: dict[str, str] = {}
    for theme in themes():
        try:
            folder = render_theme(theme, height)
            mine = thumbnails(folder)
        except (RuntimeError, OSError, EOFError) as err:  # a damaged theme: said, and the others kept
            print(f"warning: {theme}.svgz passed over: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
                  file=sys.stderr)
            continue
        like = [t for t, theirs in thumbs.items() if float(np.mean(np.sum(mine * theirs, axis=1))) > VARIANT_CORRELATION]
        if like:
            variants[theme] = like[0]
            continue
        chosen[theme], thumbs[theme] = folder, mine
    return chosen, variants


def pattern_set(height: int = HEIGHT) -> list[tuple[Path, str]]:
    """[(png path, design)] for every court card of every design chosen, rendering what is not cached."""
    chosen, _ = choose_designs(height)
    return [(folder / f"{card}.png", theme) for theme, folder in chosen.items() for card in court_cards()]


def main() -> None:
    require(missing_tools())
    chosen, variants = choose_designs()
    print(f"{len(chosen) * len(court_cards())} court cards of {len(chosen)} designs at {cards_dir()}: "
          + ", ".join(chosen) + "; variants passed over: "
          + (", ".join(f"{v} (of {t})" for v, t in variants.items()) or "none"))


if __name__ == "__main__":
    main()
