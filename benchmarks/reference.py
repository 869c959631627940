"""The reference set artvec's whitening is fitted on: clip art of the Open Clip Art Library (Debian's
``openclipart-svg``, public domain) by every artist who is *not* in the clip-art benchmark set
(benchmarks/clipart.py), at most ``PER_ARTIST`` drawings each (seeded; an artist's copies of one drawing
passed over), every category. No picture and no artist of any benchmark set is in it, so the whitening
is scored on pictures it never saw: about 1,300 drawings by about 480 hands — animals, people, food,
machines, maps, signs, ornaments and patterns, in outline, flat colour, gradients and shading.

It is rendered like the clip-art set (librsvg's ``rsvg-convert``, cropped to its ink on white, the
longer side 256 px) into ``~/.cache/artvec-bench/reference`` (``ARTVEC_BENCH_CACHE``).
Needs what clipart.py needs. ``python benchmarks/fit_whitening.py`` fits and writes the basis from it.

Usage: python benchmarks/reference.py   (renders the cache and prints the count)
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clipart  # noqa: E402
from cards import bench_cache, require  # noqa: E402

PER_ARTIST = 10


def candidates(benchmark_artists: set[str]) -> dict[str, list[Path]]:
    """{artist: drawings in a seeded order} for every artist outside ``benchmark_artists`` (the unnamed
    uploads are one "artist")."""
    root = clipart.clipart_dir()
    by_artist: dict[str, list[Path]] = {}
    for svg in sorted(root.rglob("*.svg")):
        artist = clipart.artist_of(svg)
        if artist not in benchmark_artists:
            by_artist.setdefault(artist, []).append(svg)
    rng = np.random.default_rng(1)
    return {artist: [files[i] for i in rng.permutation(len(files))] for artist, files in sorted(by_artist.items())}


def reference_set(jobs: int = 2) -> list[Path]:
    """The rendered PNGs, rendering what is not cached."""
    benchmark_artists = {artist for _, artist in clipart.clipart_set(jobs)}
    out: list[Path] = []
    folder = bench_cache("reference") / f"clipart-{clipart.SIDE}"
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(jobs) as pool:
        for artist, files in candidates(benchmark_artists).items():
            chosen: list[Path] = []
            thumbs: list[np.ndarray] = []
            for start in range(0, len(files), PER_ARTIST):
                batch = files[start:start + PER_ARTIST]
                pngs = [folder / f"{clipart.slug(artist) or 'unnamed'}--{svg.parent.name}-{svg.stem}.png" for svg in batch]
                for png, ok in zip(pngs, pool.map(clipart.render, batch, pngs)):
                    if ok and len(chosen) < PER_ARTIST and not clipart._repeats(png, thumbs):
                        chosen.append(png)
                if len(chosen) >= PER_ARTIST:
                    break
            out += chosen
    return out


def package_version() -> str:
    """The openclipart-svg package the drawings come from, from its Debian changelog ('' if not found)."""
    import gzip

    changelog = clipart.clipart_dir().parents[1] / "doc" / "openclipart-svg" / "changelog.Debian.gz"
    try:
        first = gzip.open(changelog, "rt").readline()
    except OSError:
        return ""
    return f"openclipart-svg {first.split('(')[1].split(')')[0]}" if "(" in first else ""


def main() -> None:
    require(clipart.missing_tools())
    pngs = reference_set()
    artists = {png.name.split("--")[0] for png in pngs}
    print(f"{len(pngs)} reference drawings by {len(artists)} artists, cached in {bench_cache('reference')}")


if __name__ == "__main__":
    main()
