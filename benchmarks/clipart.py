"""The clip-art set: drawings by many artists from the Open Clip Art Library (Debian's
``openclipart-svg``, /usr/share/openclipart/svg), labelled by the artist named in each file's metadata
(``dc:creator``). Unlike cards, chess pieces or icons, an artist's pictures show different things — a
cat, a car, a cake — so only the hand finds the artist's other pictures: the same task as same-artist
retrieval in a library, on about as many pictures and artists as issue 9's held-out set (about 600 by 30).

Chosen: every artist with at least ``MIN_PICTURES`` drawings outside the categories where a picture
copies a standard or is a pattern (signs and symbols, flags and maps, shapes, logos, "special"), up to
``PER_ARTIST`` of them (seeded; a copy of a drawing already chosen — the same file in two categories, a
re-saved or barely changed variant — is passed over; an artist left with fewer than ``MIN_CHOSEN`` is left out), without
the unnamed and the institutional uploads: 518 drawings by 31 artists. Names are compared
without accents or case, and known aliases merged. Each SVG is rendered with librsvg's ``rsvg-convert``,
cropped to its ink and laid on white, the longer side ``SIDE`` px; a file librsvg cannot draw is
skipped (marked, not retried) and the artist's next one taken.

Needs ``rsvg-convert`` (``apt-get install librsvg2-bin``) and the clip art: ``apt-get install
openclipart-svg``, or ``apt-get download openclipart-svg && dpkg -x openclipart-svg_*.deb DIR`` and
``ARTVEC_OPENCLIPART=DIR/usr/share/openclipart/svg``. Rendered PNGs are cached in
``~/.cache/artvec-bench/clipart`` (``ARTVEC_BENCH_CACHE``), outside the repository.

Usage: python benchmarks/clipart.py   (renders the cache; quality.py and lab.py call it with --sets ...,clipart)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cards import bench_cache, ink_on_white, require, rsvg_missing  # noqa: E402

SIDE = 256
PER_ARTIST = 20
MIN_PICTURES = 12
MIN_CHOSEN = 8  # an artist left with fewer distinct drawings is left out
#: mean luma difference of 16×16 thumbnails under which a drawing counts as a variant of one already chosen
REPEAT_LEVELS = 4.0
LEFT_OUT_CATEGORIES = {"signs_and_symbols", "shapes", "special", "geography", "logos"}
#: uploads of other people's or institutions' pictures, and the unnamed
LEFT_OUT_ARTISTS = {"", "u.s. army (public domain clipart)"}
ALIASES = {"rollandin francesco": "architetto francesco rollandin"}
_CREATOR = re.compile(r"<dc:creator>.*?<dc:title>(.*?)</dc:title>", re.S)


def clipart_dir() -> Path:
    return Path(os.environ.get("ARTVEC_OPENCLIPART", "/usr/share/openclipart/svg"))


def missing_tools() -> str | None:
    if not clipart_dir().is_dir():
        return (f"the Open Clip Art Library is not in {clipart_dir()} (apt-get install openclipart-svg, or set "
                "ARTVEC_OPENCLIPART to the svg folder of an unpacked openclipart-svg .deb)")
    return rsvg_missing()


def artist_of(svg: Path) -> str:
    """The file's dc:creator, without accents or case, aliases merged ('' if none)."""
    match = _CREATOR.search(svg.read_text(errors="replace")[:200_000])
    name = unicodedata.normalize("NFKD", match.group(1) if match else "").encode("ascii", "ignore").decode()
    name = " ".join(name.lower().split())
    return ALIASES.get(name, name)


def candidates() -> dict[str, list[Path]]:
    """{artist: their drawings in a seeded order}, for the artists with at least MIN_PICTURES."""
    by_artist: dict[str, list[Path]] = {}
    root = clipart_dir()
    for svg in sorted(root.rglob("*.svg")):
        if svg.relative_to(root).parts[0] not in LEFT_OUT_CATEGORIES:
            by_artist.setdefault(artist_of(svg), []).append(svg)
    rng = np.random.default_rng(0)
    return {artist: [files[i] for i in rng.permutation(len(files))] for artist, files in sorted(by_artist.items())
            if artist not in LEFT_OUT_ARTISTS and len(files) >= MIN_PICTURES}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def render(svg: Path, out: Path) -> bool:
    """``svg`` as a PNG on white, the longer side SIDE px; False (and a marker) if librsvg cannot draw it."""
    from PIL import Image

    failed = out.with_suffix(".failed")
    if out.exists():
        return True
    if failed.exists():
        return False
    try:
        with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
            subprocess.run(["rsvg-convert", "-w", str(2 * SIDE), "--keep-aspect-ratio", str(svg), "-o", tmp.name],
                           check=True, capture_output=True, timeout=60)
            img = ink_on_white(Image.open(tmp.name), SIDE, svg.name)
    except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
        failed.write_text(f"{svg}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}\n")
        return False
    if img.width > SIDE:
        img = img.resize((SIDE, max(1, round(img.height * SIDE / img.width))), Image.Resampling.LANCZOS)
    img.save(out)
    return True


def clipart_set(jobs: int = 2) -> list[tuple[Path, str]]:
    """[(png path, artist)] — up to PER_ARTIST drawings of every chosen artist, rendering what is not cached."""
    out = []
    with ThreadPoolExecutor(jobs) as pool:
        for artist, files in candidates().items():
            folder = bench_cache("clipart") / f"{slug(artist)}-{SIDE}"
            folder.mkdir(parents=True, exist_ok=True)
            chosen: list[Path] = []
            thumbs: list[np.ndarray] = []
            for start in range(0, len(files), PER_ARTIST):  # a batch at a time, until enough are drawn
                batch = files[start:start + PER_ARTIST]
                pngs = [folder / f"{svg.parent.name}-{svg.stem}.png" for svg in batch]
                for png, ok in zip(pngs, pool.map(render, batch, pngs)):
                    if ok and len(chosen) < PER_ARTIST and not _repeats(png, thumbs):
                        chosen.append(png)
                if len(chosen) >= PER_ARTIST:
                    break
            if len(chosen) >= MIN_CHOSEN:
                out += [(png, artist) for png in chosen]
    return out


def _repeats(png: Path, thumbs: list[np.ndarray]) -> bool:
    """Whether ``png`` is a copy of a drawing already chosen (an artist's variants of one picture would
    make the set a near-duplicate task); if not, its thumbnail joins ``thumbs``."""
    from PIL import Image

    thumb = np.asarray(Image.open(png).convert("L").resize((16, 16), Image.Resampling.BOX), dtype=np.float32)
    if any(np.abs(thumb - other).mean() < REPEAT_LEVELS for other in thumbs):
        return True
    thumbs.append(thumb)
    return False


def main() -> None:
    require(missing_tools())
    items = clipart_set()
    artists = {artist for _, artist in items}
    failed = len(list(bench_cache("clipart").glob("*/*.failed")))
    print(f"{len(items)} drawings by {len(artists)} artists ({failed} files librsvg could not draw, skipped), "
          f"cached in {bench_cache('clipart')}")


if __name__ == "__main__":
    main()
