"""The public picture sets the quality benchmarks decide on, all reproducible offline.

- ``cards``: 16 illustrated card decks (Debian's kdegames-card-data-kf5), 52 cards each, labelled by deck
  family (12 labels): content held constant, only style finds a deck's other cards. See cards.py.
- ``tiles``: 4 mahjongg tilesets (Debian's kdegames-mahjongg-data-kf5), 42 faces each, labelled by
  tileset; noise by resampling the faces (4 labels are too few to resample). See tiles.py.
- ``icons``: desktop icon themes (Debian packages), the same icon names drawn by each, labelled by design
  family. See icons.py.
- ``chess``: the chess piece sets of Debian's pychess, the same 12 pieces drawn by each, labelled by
  design (23 labels); noise by resampling whole sets. See chess_pieces.py.
- ``clipart`` (asked for by name, not in SET_NAMES): drawings by 31 artists from the Open Clip Art
  Library (Debian's openclipart-svg), labelled by artist: different things drawn by one hand, as in a
  library's same-artist retrieval. Scored apart: its pictures take no part in the near-duplicate task, so
  that task's figures stay comparable with and without it. See clipart.py.
- ``scans`` (asked for by name): the same drawings printed and scanned (``print_and_scan``: each on its own
  paper tint, the ink a little faded, the light a little uneven, a slight skew, blur and grain, a JPEG), labelled
  by artist and scored apart like ``clipart``: a library's pictures come from scans of paper, not from clean
  renders, and the pixel histograms of the style and colour parts feel it where the model's layers hardly do.
- ``portraits`` and ``portrait-scans`` (asked for by name; they need wesnoth-1.16-data): 141 digital paintings,
  Battle for Wesnoth's unit portraits by 4 artists, labelled by artist, and the same printed and scanned; the one
  set of paintings, scored apart like ``clipart``. See portraits.py.
- ``constellations`` (asked for by name; it needs stellarium-data): 391 figures Stellarium draws over the sky, by 14
  hands or sources (al-Sufi's and the Leiden Aratea's manuscripts, the Paris Codex, the Dendera zodiac, the Farnese
  globe, and the people who painted the others), labelled by hand or source: the one set of historical
  illustrations, scored apart like ``clipart``. See constellations.py.
- ``card-patterns`` (asked for by name; it needs gnome-cards-data): the 12 court cards of 21 designs of AisleRiot's card
  themes, most of them redrawn historical patterns (Berlin, Rhineland, Lattmann, a 17th-century Swiss deck, a tarocco,
  the Russian Atlas deck, old French portraits, …), labelled by design: content held constant as in ``cards``, on
  figures of the 17th to 19th centuries; scored apart like ``clipart``. See card_patterns.py.
- ``constellation-scans`` and ``card-pattern-scans`` (asked for by name): the same historical pictures printed and
  scanned as the clip art's ``scans`` are, labelled and resampled as their clean sets.
- ``stylised``: scikit-image's pictures, each in 7 deterministic stylisations (pencil, halftone, engraving,
  woodcut, watercolour, oil, sepia), labelled by stylisation.
- ``near-duplicates``: what a library lives through — rescans (rotation 1–3°, blur, a colour cast),
  a border or mat, crops 70–95 %, rescales, JPEG quality 40–90 and greyscale copies — of scikit-image
  pictures, cards, tiles, icons and chess pieces; each query must find its original at rank 1 among every
  picture of the other sets (clip art aside).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artvec.edits import EDITS, SCAN_STEPS, paper_tint, print_and_scan  # noqa: E402
from cards import require  # noqa: E402
from artvec.images import load_image  # noqa: E402

CONTENT = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
           "immunohistochemistry", "retina", "stereo_motorcycle", "camera", "coins"]
DISTRACTORS = ["brick", "grass", "gravel", "moon", "clock", "colorwheel", "page", "text", "logo", "horse"]
WORK = 384  # stylisations are made at this longer side


@dataclass
class Item:
    """One picture of a set: how to get it, its label, and a group for cluster-level noise estimates."""

    key: str
    label: str
    group: str
    path: Path | None = None
    image: Image.Image | None = None
    longest: int | None = None  # read from ``path`` at most this many pixels on its longer side (None: as it is)
    paper: int | None = None  # a printed and scanned picture's paper: which of ``edits.PAPERS`` (None: not scanned)

    def load(self) -> Image.Image:
        if self.image is not None:
            return self.image
        return load_image(self.path, target_size=self.longest, square=False)


@dataclass
class NearDuplicates:
    queries: list[Item]
    targets: list[str]  # key of each query's original
    kinds: list[str]
    originals: list[Item] = field(default_factory=list)


def skimage_picture(name: str) -> Image.Image:
    import os

    saved = os.environ.get("ARTVEC_BENCH_SKIMAGE_DIR")  # the same pictures saved as PNG (for machines without them)
    if saved:
        return Image.open(Path(saved) / f"{name}.png").convert("RGB")
    import skimage.data as data

    arr = getattr(data, name)()
    if name == "stereo_motorcycle":
        arr = arr[0]
    arr = np.asarray(arr)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if arr.shape[2] == 4:
        rgba = Image.fromarray(arr, "RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return Image.fromarray(arr, "RGB")


def work_size(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = WORK / max(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)


# ---- stylisations (deterministic) --------------------------------------------------
def _gray(img):
    return np.asarray(img.convert("L"), dtype=np.float32)


def pencil(img):
    from scipy.ndimage import gaussian_filter

    g = _gray(img)
    blur = gaussian_filter(255 - g, 6)
    dodge = np.clip(g * 255.0 / np.maximum(255 - blur, 1), 0, 255)
    rng = np.random.default_rng(1)
    paper = gaussian_filter(rng.normal(0, 6, g.shape), [0.5, 3])  # hatching grain
    return Image.fromarray(np.clip(dodge + paper, 0, 255).astype(np.uint8), "L").convert("RGB")


def halftone(img, cell=7):
    g = _gray(img)
    h, w = g.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cy, cx = ys // cell, xs // cell
    pad = np.pad(g, ((0, -h % cell), (0, -w % cell)), mode="edge")
    means = pad.reshape(pad.shape[0] // cell, cell, pad.shape[1] // cell, cell).mean(axis=(1, 3))
    dark = 1 - means[cy, cx] / 255.0
    r = np.sqrt(dark / np.pi) * cell  # dot area proportional to darkness
    d = np.hypot(ys - (cy * cell + cell / 2), xs - (cx * cell + cell / 2))
    ink = d < r
    out = np.where(ink[..., None], np.array([20, 20, 60]), np.array([250, 248, 240]))
    return Image.fromarray(out.astype(np.uint8), "RGB")


def engraving(img, period=6):
    g = _gray(img)
    h, w = g.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = ys + 2.5 * np.sin(xs / 11.0) + 0.03 * xs
    phase = np.abs((wave % period) / period - 0.5) * 2  # 0 at line centre
    dark = 1 - g / 255.0
    ink = phase < dark * 1.05
    out = np.where(ink[..., None], np.array([40, 30, 25]), np.array([245, 235, 215]))
    return Image.fromarray(out.astype(np.uint8), "RGB")


def woodcut(img):
    from scipy.ndimage import sobel

    smooth = img.filter(ImageFilter.MedianFilter(5))
    poster = ImageOps.posterize(smooth, 2)
    g = _gray(smooth)
    edges = np.hypot(sobel(g, 0), sobel(g, 1))
    edge = edges > np.percentile(edges, 85)
    edge = np.asarray(Image.fromarray(edge.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    out = np.asarray(poster).copy()
    out[edge] = 0
    return Image.fromarray(out, "RGB")


def watercolour(img):
    from scipy.ndimage import gaussian_filter, sobel

    a = np.asarray(img, dtype=np.float32)
    blur = np.stack([gaussian_filter(a[..., c], 3) for c in range(3)], -1)
    levels = 6
    quant = np.round(blur / 255 * (levels - 1)) / (levels - 1) * 255
    soft = 0.6 * quant + 0.4 * blur
    light = soft * 0.7 + 255 * 0.3
    g = blur.mean(-1)
    edge = np.hypot(sobel(g, 0), sobel(g, 1))
    edge = gaussian_filter(edge, 1.5)
    edge = edge / (edge.max() + 1e-6)
    rng = np.random.default_rng(2)
    paper = 1 + gaussian_filter(rng.normal(0, 0.08, g.shape), 1.2)
    out = light * (1 - 0.45 * edge[..., None]) * paper[..., None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def oil(img, r=4):
    from scipy.ndimage import uniform_filter

    a = np.asarray(img, dtype=np.float32)
    lum = a.mean(-1)
    k = r + 1
    mean = np.stack([uniform_filter(a[..., c], k) for c in range(3)], -1)
    mean_l = uniform_filter(lum, k)
    var = uniform_filter(lum * lum, k) - mean_l**2
    best_var = np.full(lum.shape, np.inf, dtype=np.float32)
    out = np.zeros_like(a)
    for dy in (-(k // 2), k // 2):
        for dx in (-(k // 2), k // 2):
            v = np.roll(var, (dy, dx), (0, 1))
            m = np.roll(mean, (dy, dx), (0, 1))
            better = v < best_var
            best_var = np.where(better, v, best_var)
            out[better] = m[better]
    pil = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    return ImageEnhance.Color(pil).enhance(1.6).filter(ImageFilter.ModeFilter(3))


def sepia(img):
    a = np.asarray(img, dtype=np.float32)
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)
    s = a @ m.T
    h, w = s.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    vig = 1 - 0.45 * (((ys - h / 2) / (h / 2)) ** 2 + ((xs - w / 2) / (w / 2)) ** 2) / 2
    rng = np.random.default_rng(3)
    grain = rng.normal(0, 8, (h, w, 1))
    return Image.fromarray(np.clip(s * vig[..., None] + grain, 0, 255).astype(np.uint8), "RGB")


STYLES = {"pencil": pencil, "halftone": halftone, "engraving": engraving, "woodcut": woodcut,
          "watercolour": watercolour, "oil": oil, "sepia": sepia}


# ---- the sets ------------------------------------------------------------------------------
def card_items(cards_dir: Path | None = None) -> list[Item]:
    """Every card of every deck: label = deck family, group = deck. Renders into the cache if needed."""
    import cards

    if cards_dir is None:
        require(cards.missing_tools())
        triples = cards.card_set()
    else:
        triples = []
        for folder in sorted(p for p in Path(cards_dir).iterdir() if p.is_dir()):
            deck = folder.name.rsplit("-", 1)[0]
            for card in cards.CARDS:
                path = next(folder.glob(f"{card}.*"))
                triples.append((path, cards.family(deck), deck))
    return [Item(key=f"{deck}/{path.stem}", label=fam, group=deck, path=path) for path, fam, deck in triples]


def icon_items() -> list[Item]:
    """Every chosen icon of every theme: label = theme family, group = theme. Renders into the cache if needed."""
    import icons

    require(icons.missing_tools())
    triples = icons.icon_set()
    return [Item(key=f"{theme}/{path.stem}", label=fam, group=theme, path=path) for path, fam, theme in triples]


def tile_items() -> list[Item]:
    """Every face of every tileset: label = tileset, group = the face (what the noise estimate resamples)."""
    import tiles

    require(tiles.missing_tools())
    return [Item(key=f"{tileset}/{path.stem}", label=label, group=path.stem, path=path)
            for path, label, tileset in tiles.tile_set()]


def chess_items() -> list[Item]:
    """Every piece of every chess set: label = the design family, group = the set. Renders into the cache
    if needed."""
    import chess_pieces

    require(chess_pieces.missing_tools())
    return [Item(key=f"chess-{name}/{path.stem}", label=label, group=name, path=path)
            for path, label, name in chess_pieces.chess_set()]


def clipart_items() -> list[Item]:
    """Drawings of every chosen clip-art artist: label = group = the artist. Renders into the cache if needed."""
    import clipart

    require(clipart.missing_tools())
    return [Item(key=f"clipart/{path.parent.name}/{path.stem}", label=artist, group=artist, path=path)
            for path, artist in clipart.clipart_set()]


def portrait_items() -> list[Item]:
    """Wesnoth's painted portraits credited to one artist: label = the artist, group = the people painted (folder)."""
    import portraits

    require(portraits.missing_tools())
    return [Item(key=f"portraits/{path.parent.name}/{path.stem}", label=artist, group=people, path=path)
            for path, artist, people in portraits.portrait_set()]


def constellation_items() -> list[Item]:
    """Stellarium's constellation art: label = group = the hand or source (what the noise resamples), each picture
    composited on black as Stellarium shows it."""
    import constellations

    require(constellations.missing_tools())
    return [Item(key=f"constellations/{key}", label=label, group=label, image=picture)
            for key, label, picture in constellations.constellation_set()]


def card_pattern_items() -> list[Item]:
    """AisleRiot's court cards: label = group = the design (what the noise resamples). Renders into the cache."""
    import card_patterns

    require(card_patterns.missing_tools())
    return [Item(key=f"card-patterns/{theme}/{path.stem}", label=theme, group=theme, path=path)
            for path, theme in card_patterns.pattern_set()]


def scanned_items(drawings: list[Item], paper: int | None = None, steps=SCAN_STEPS) -> list[Item]:
    """Each picture printed and scanned (``print_and_scan``, seeded by its place), with its label, group and paper
    (``paper``: every one on that of ``edits.PAPERS``; ``steps``: some of the scan's steps only, the same draws)."""
    return [Item(key=f"scan/{it.key}", label=it.label, group=it.group,
                 image=print_and_scan(it.load(), np.random.default_rng([7, i]), steps, paper),
                 paper=paper_tint(np.random.default_rng([7, i]), paper)[0])  # print_and_scan's first draws, made again
            for i, it in enumerate(drawings)]


def stylised_items() -> tuple[list[Item], list[Item], list[Item]]:
    """(70 stylised pictures labelled by stylisation, 10 originals, 10 unrelated pictures)."""
    originals = [Item(key=f"skimage/{n}", label="original", group=n, image=work_size(skimage_picture(n)))
                 for n in CONTENT]
    stylised = [Item(key=f"{o.key}/{s}", label=s, group=o.group, image=fn(o.image))
                for o in originals for s, fn in STYLES.items()]
    distractors = [Item(key=f"skimage/{n}", label="distractor", group=n, image=work_size(skimage_picture(n)))
                   for n in DISTRACTORS]
    return stylised, originals, distractors


def near_duplicates(originals: list[Item], seed: int | np.random.Generator = 0,
                    per_original: int | None = None) -> NearDuplicates:
    """Every edit of every original, with seeded random strengths (``seed``, or a generator to draw them from); with
    ``per_original`` n, n edits of each original instead, taking the edits in turn (original i gets edits n·i … n·i +
    n − 1, modulo 8)."""
    rng = np.random.default_rng(seed)
    edits = list(EDITS.items())
    queries, targets, kinds = [], [], []
    for i, item in enumerate(originals):
        img = item.load()
        chosen = edits if per_original is None else [edits[(per_original * i + j) % len(edits)] for j in range(per_original)]
        for kind, edit in chosen:
            queries.append(Item(key=f"{item.key}~{kind}", label=item.key, group=item.group, image=edit(img, rng)))
            targets.append(item.key)
            kinds.append(kind)
    return NearDuplicates(queries, targets, kinds, originals)


def duplicate_originals(cards: list[Item], stylised_originals: list[Item], per_deck: int = 4,
                        seed: int = 0, others: list[Item] = ()) -> list[Item]:
    """Originals whose copies are searched for: the scikit-image originals, a few cards of each deck
    that has no near-identical sibling deck (a copy of an oxygen card may rightly match oxygen-white's),
    and as many pictures of each label of ``others`` (tiles, icons, chess pieces) drawn by one theme,
    tileset or piece set alone."""
    import cards as cardmod

    rng = np.random.default_rng(seed)
    chosen = list(stylised_originals)
    by_deck: dict[str, list[Item]] = {}
    for item in cards:
        if item.group not in cardmod.FAMILY:
            by_deck.setdefault(item.group, []).append(item)
    themes_of: dict[str, set] = {}
    for item in others:  # the key's first part is the theme, tileset or piece set that drew it
        themes_of.setdefault(item.label, set()).add(item.key.split("/")[0])
    for item in others:  # as for decks: not from a family of near-identical variants (GNOME 2 / MATE)
        if len(themes_of[item.label]) == 1:
            by_deck.setdefault(f"~{item.label}", []).append(item)
    for deck, items in sorted(by_deck.items()):
        for i in rng.choice(len(items), size=min(per_deck, len(items)), replace=False):
            chosen.append(items[int(i)])
    return chosen


SET_NAMES = ("cards", "tiles", "icons", "chess", "stylised")
#: sets scored on their own, outside the near-duplicate task (neither originals nor among its pictures)
APART = ("clipart", "scans")
#: the painted portraits and their scans: scored apart too, asked for by name (they need wesnoth-1.16-data)
PAINTED = ("portraits", "portrait-scans")
#: the constellation art and the historical card patterns, and each printed and scanned: scored apart, asked for by
#: name (they need stellarium-data and gnome-cards-data)
HISTORICAL = ("constellations", "constellation-scans", "card-patterns", "card-pattern-scans")


def build(names=SET_NAMES, cards_choice: str = "faces", cards_dir=None, quick: bool = False, paper: int | None = None,
          scan_steps=SCAN_STEPS):
    """The named labelled sets, the scikit-image originals and distractors, and the near-duplicate task
    (copies of one picture per deck, tileset and icon theme and of every scikit-image original). ``paper``: every
    scanned set printed on that one of ``edits.PAPERS`` (by default each picture on a paper of its own);
    ``scan_steps``: their scans made with those of ``edits.SCAN_STEPS`` only."""
    labelled: dict[str, list[Item]] = {}
    cards: list[Item] = []
    if "cards" in names:
        cards = card_items(cards_dir)
        if cards_choice == "faces":
            cards = [c for c in cards if c.key.split("/")[1].split("_")[0] in ("jack", "queen", "king")]
        labelled["cards"] = cards
    if "tiles" in names:
        labelled["tiles"] = tile_items()
    if "icons" in names:
        labelled["icons"] = icon_items()
    if "chess" in names:
        labelled["chess"] = chess_items()
    stylised, originals, distractors = stylised_items()
    if quick:
        stylised, originals, distractors = stylised[:21], originals[:3], distractors[:3]
    if "stylised" in names:
        labelled["stylised"] = stylised
    for clean, scanned, items in (("clipart", "scans", clipart_items), ("portraits", "portrait-scans", portrait_items),
                                  ("constellations", "constellation-scans", constellation_items),
                                  ("card-patterns", "card-pattern-scans", card_pattern_items)):
        if clean in names or scanned in names:  # a set and its print and scan, read once for both
            pictures = items()
            if clean in names:
                labelled[clean] = pictures
            if scanned in names:
                labelled[scanned] = scanned_items(pictures, paper, scan_steps)
    others = labelled.get("tiles", []) + labelled.get("icons", []) + labelled.get("chess", [])
    dups = near_duplicates(duplicate_originals(cards, originals, per_deck=1, others=others))
    return labelled, originals, distractors, dups


def drawing_duplicates(drawings: list[Item]) -> NearDuplicates:
    """The near-duplicate task on real drawings, the nearest public twin of a library of illustrations: two
    edits of every picture of one set (the clip art, the constellation art; the eight edits in turn), each searched
    among that set alone."""
    return near_duplicates(drawings, per_original=2)
