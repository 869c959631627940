"""The constellation-art set: the figures Stellarium draws over the sky (Debian's ``stellarium-data``,
``/usr/share/stellarium/skycultures``), labelled by the hand or the source each sky culture's art comes from.

The one public set of *historical* illustrations: figures taken from the Ulugh Beg manuscript of al-Sufi's Book of
Fixed Stars, from the Leiden Aratea (a 9th-century manuscript: whole pages and figures cut from them), from the Paris
Codex, copied by hand from the Dendera zodiac and sketched from the Farnese globe; and figures painted or drawn for
Stellarium by the people credited in each sky culture's description (Jessica Gullberg's MUL.APIN paintings, Annette
S. Lee's Dakota and Ojibwe paintings, Zamfir Somcutean's Romanian art, Johan Meuris's Western and Inuit figures, …).
Many cultures draw the same stars as the same creatures (al-Sufi's, the Leiden Aratea's, the Farnese globe's and
Meuris's Leo and Perseus), so what is drawn does not give the source away, and a source's pictures show
different things, so only the hand or the manuscript finds them: the task of a library's same-artist search, on
pictures as old as a library's.

Labels follow the credits: each culture's ``description.en.utf8`` and ``info.ini`` (Gullberg, Lee, Somcutean, Lock,
and Meuris for the Inuit figures), and Stellarium's own credits (``/usr/share/doc/stellarium-data/copyright``:
"Constellation art … created by Johan Meuris", the Western figures, under the Free Art License).

Chosen: the pictures each culture's ``constellationsart.fab`` draws (not the description's illustrations), cultures
with one credited hand or source (two cultures painted by one credited person are one label: Lee's Dakota and
Ojibwe; Meuris's Western and Inuit; Suki Lock's Khoi-San, Xhosa and Zulu for the SAAO), and at least ``MIN_PICTURES``
pictures, up to ``PER_SOURCE`` of a label (seeded); a near-copy of a picture already chosen is passed over. Left out:
Chinese (contemporary) and Indian, whose figures are mostly Western's pictures again; Belarusian (figures of several
hands); Aztec, Hawaiian, Maori, Northern Andes, Lokono (fewer than ``MIN_PICTURES``); Japanese moon stations (written
characters). 14 labels, 391 pictures. Each picture is composited on black, as Stellarium shows it over the night sky
(many are drawn on black already; a transparent ground on white would give some sources away by their ground alone),
the longer side at most ``SIDE``. Labels are resampled for the noise (14 are enough), as the clip art's artists are.

Needs the sky cultures: ``apt-get install stellarium-data`` (250 MB), or ``apt-get download stellarium-data && dpkg -x
stellarium-data_*.deb DIR`` and ``ARTVEC_STELLARIUM_SKYCULTURES=DIR/usr/share/stellarium/skycultures``. Read in
place: nothing to render or cache.

Usage: python benchmarks/constellations.py   (lists the set; quality.py calls it with --sets ...,constellations)
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cards import luma_thumbnail, require  # noqa: E402

SKYCULTURES_DIR = "/usr/share/stellarium/skycultures"
MIN_PICTURES = 9
PER_SOURCE = 40
SIDE = 768
#: correlation of 16×16 luma thumbnails above which a picture counts as a copy of one already chosen
COPY_CORRELATION = 0.95

#: label → the sky cultures whose art it is (credits from each culture's description and info.ini)
SOURCES = {
    "al-Sufi, Ulugh Beg manuscript": ("arabic_al-sufi",),
    "MUL.APIN, Jessica Gullberg": ("babylonian_mulapin",),
    "Boorong": ("boorong",),
    "Annette S. Lee": ("dakota", "ojibwe"),
    "Dendera zodiac": ("egyptian_dendera",),
    "Farnese globe": ("greek_farnese",),
    "Leiden Aratea": ("greek_leidenAratea",),
    "Kamilaroi": ("kamilaroi",),
    "Macedonian": ("macedonian",),
    "Paris Codex": ("maya",),
    "Zamfir Somcutean": ("romanian",),
    "Netwar, Vanuatu": ("vanuatu_netwar",),
    "Johan Meuris": ("western", "inuit"),
    "Suki Lock, SAAO": ("khoi-san", "xhosa", "zulu"),
}


def skycultures_dir() -> Path:
    return Path(os.environ.get("ARTVEC_STELLARIUM_SKYCULTURES", SKYCULTURES_DIR))


def missing_tools() -> str | None:
    root = skycultures_dir()
    absent = [c for cultures in SOURCES.values() for c in cultures if not (root / c / "constellationsart.fab").is_file()]
    if len(absent) == sum(len(c) for c in SOURCES.values()):
        return (f"Stellarium's sky cultures are not at {root} (apt-get install stellarium-data, or set "
                "ARTVEC_STELLARIUM_SKYCULTURES to usr/share/stellarium/skycultures of an unpacked stellarium-data .deb)")
    if absent:
        return f"{root} lacks the art of {len(absent)} sky cultures ({', '.join(absent[:3])}): another Stellarium version?"
    return None


def art_files(culture: str) -> list[Path]:
    """The pictures a culture's ``constellationsart.fab`` draws, each once, in its order."""
    folder = skycultures_dir() / culture
    names: list[str] = []
    for line in (folder / "constellationsart.fab").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) > 2 and not line.startswith("#") and fields[1] not in names:
            names.append(fields[1])
    return [folder / name for name in names if (folder / name).is_file()]


def on_black(path: Path):
    """The picture as Stellarium shows it: its transparent ground black, the longer side at most ``SIDE``."""
    from PIL import Image

    with Image.open(path) as img:
        rgba = img.convert("RGBA")
    ground = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    ground.alpha_composite(rgba)
    picture = ground.convert("RGB")
    picture.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
    return picture


def constellation_set() -> list[tuple[str, str, object]]:
    """[(key, label, picture on black)] for every chosen picture, in a fixed order."""
    rng = np.random.default_rng(0)
    chosen: list[tuple[str, str, object]] = []
    thumbs: list[np.ndarray] = []
    for label, cultures in SOURCES.items():
        files = [f for culture in cultures for f in art_files(culture)]
        picked, kept = [], []
        for i in rng.permutation(len(files)):
            if len(picked) == PER_SOURCE:
                break
            picture = on_black(files[i])
            thumb = luma_thumbnail(picture)
            if any(float(thumb @ other) > COPY_CORRELATION for other in thumbs + kept):
                continue
            kept.append(thumb)
            picked.append((f"{files[i].parent.name}/{files[i].stem}", label, picture))
        if len(picked) >= MIN_PICTURES:  # a label left out takes no picture from the labels after it
            thumbs += kept
            chosen.extend(sorted(picked, key=lambda p: p[0]))
    return chosen


def main() -> None:
    require(missing_tools())
    items = constellation_set()
    counts = Counter(label for _, label, _ in items)
    print(f"{len(items)} pictures by {len(counts)} hands or sources at {skycultures_dir()}: "
          + ", ".join(f"{label} {n}" for label, n in counts.items()))


if __name__ == "__main__":
    main()
