"""Search by palette: ``#8b4513:60,#f5deb3:40`` -> a vector in the colour part's own space.

The colour part of an embedding is a Hellinger-mapped histogram over n³ equal RGB cubes
(``artvec.embedding.colour_histogram``). A palette is read as such a histogram: each colour's
weight goes to the cube it falls in, the weights are divided by their sum and square-rooted.
The distance to a stored colour part then ranks pictures by how much of their area lies in
the palette's cubes, in the palette's proportions. The SQL function ``artvec.palette_vector``
(migration 0004_curation) builds the same vector inside the database.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import ArtvecError

ENTRY = re.compile(r"^#?([0-9a-fA-F]{6})(?::([0-9]+(?:\.[0-9]*)?|\.[0-9]+))?$")
MAX_COLOURS = 64


class PaletteError(ArtvecError):
    """A palette that cannot be read."""


def parse_palette(palette: str) -> list[tuple[tuple[int, int, int], float]]:
    """``'#8b4513:60,#f5deb3:40'`` -> [((139, 69, 19), 60.0), ((245, 222, 179), 40.0)].

    A colour without ``:weight`` weighs 1. Weights are shares, so 60/40 equals 3/2.
    """
    entries = [entry.strip() for entry in (palette or "").strip().split(",")]
    if not entries or entries == [""]:
        raise PaletteError("--colours needs at least one colour, e.g. '#8b4513:60,#f5deb3:40'")
    if len(entries) > MAX_COLOURS:
        raise PaletteError(f"--colours takes at most {MAX_COLOURS} colours, not {len(entries)}")
    parsed = []
    for entry in entries:
        match = ENTRY.match(entry)
        if not match:
            raise PaletteError(f"--colours: {entry!r} is not #rrggbb or #rrggbb:weight")
        hex_colour, weight = match.groups()
        rgb = tuple(int(hex_colour[i:i + 2], 16) for i in (0, 2, 4))
        parsed.append((rgb, float(weight) if weight is not None else 1.0))
    if sum(weight for _, weight in parsed) <= 0:
        raise PaletteError("--colours: the weights must add up to more than 0")
    return parsed


def palette_vector(palette: str, bins: int) -> np.ndarray:
    """The palette as a colour part (float32, unit norm), for colour histograms of ``bins``³ cubes."""
    if not 1 <= bins <= 64:
        raise PaletteError(f"colour bins must be 1..64, not {bins}")
    counts = np.zeros(bins ** 3, dtype=np.float64)
    for (r, g, b), weight in parse_palette(palette):
        counts[(((r * bins) >> 8) * bins + ((g * bins) >> 8)) * bins + ((b * bins) >> 8)] += weight
    return np.sqrt(counts / counts.sum()).astype(np.float32)


def find_by_palette(settings, palette: str, filters=None, excludes=None, k: int = 12,
                    through: str = "facets", engine=None) -> dict:
    """``artvec similar --colours``: the pictures whose colour part is nearest the palette's."""
    from . import search

    config = settings.embedding_config()
    vector = palette_vector(palette, config.colour_bins)
    rows = search.search(settings, vector=vector.tolist(), config_id=config.config_id, by="colour",
                         filters=filters, excludes=excludes, k=k, through=through, engine=engine, expand=0)
    return {"query": palette, "query_location": None, "rows": rows}
