"""Contact sheets: the query picture and its neighbours in a grid, with ids and distances."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

from .errors import ArtvecError
from .sources import SourceOptions, is_url, read_bytes, resolve_path

TILE = 220
CAPTION = 34
COLUMNS = 5
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


def resolve_location(location: str | None, image_root: str | None) -> str | None:
    """An absolute path or URL for ``image_location`` (relative paths are under ``image_root``)."""
    if not location:
        return None
    return location if is_url(location) else str(resolve_path(location, image_root))


def open_picture(location: str | None):
    """The picture as an RGB PIL image, or None when it cannot be read (the tile says so)."""
    from PIL import Image

    if not location:
        return None
    try:
        data = read_bytes(location, SourceOptions(timeout=10, retries=0, max_bytes=MAX_DOWNLOAD_BYTES))
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (TILE * 2, TILE * 2))
        return image.convert("RGB")
    except Exception:  # noqa: BLE001 - a missing picture only blanks its tile
        return None


def tile(picture, caption: str):
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (TILE, TILE + CAPTION), "white")
    draw = ImageDraw.Draw(canvas)
    if picture is None:
        draw.rectangle((8, 8, TILE - 8, TILE - 8), outline="grey")
        draw.text((TILE // 2, TILE // 2), "no picture", fill="grey", anchor="mm")
    else:
        picture = picture.copy()
        picture.thumbnail((TILE - 8, TILE - 8))
        canvas.paste(picture, ((TILE - picture.width) // 2, (TILE - picture.height) // 2))
    draw.multiline_text((6, TILE + 1), caption, fill="black", spacing=2)
    return canvas


def write_sheet(query: tuple[str, str | None], neighbours: Iterable[tuple[str, str | None]], out: Path) -> Path:
    """``query`` and ``neighbours`` are (caption, resolved location) pairs; writes a PNG at ``out``."""
    from PIL import Image

    tiles = [tile(open_picture(location), caption) for caption, location in [query, *neighbours]]
    columns = min(COLUMNS, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), "white")
    for index, picture in enumerate(tiles):
        sheet.paste(picture, ((index % columns) * TILE, (index // columns) * (TILE + CAPTION)))
    try:
        sheet.save(out, format="PNG")
    except OSError as error:
        raise ArtvecError(f"cannot write the contact sheet {out}: {error}") from None
    return out
