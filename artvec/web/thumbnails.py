"""Thumbnails made on demand from the image locations the store holds, cached on disk.

A request names an artwork id, never a path: the location is read from artvec.embeddings,
and the cache file is named after the picture's SHA-256 and the size, so nothing the
request says reaches the file system.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from ..sheet import open_picture, resolve_location

SIZES = (160, 320, 640)


class Thumbnails:
    def __init__(self, folder: Path, image_root: str | None):
        self.folder = folder
        self.image_root = image_root
        self.lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, sha256_hex: str, size: int) -> Path:
        if size not in SIZES or not all(c in "0123456789abcdef" for c in sha256_hex) or len(sha256_hex) != 64:
            raise ValueError("bad thumbnail key")
        return self.folder / sha256_hex[:2] / f"{sha256_hex}-{size}.jpg"

    def get(self, sha256_hex: str, location: str, size: int) -> Path | None:
        """The cached JPEG for a stored picture, made now if missing; None if the picture cannot be read."""
        target = self.path(sha256_hex, size)
        if target.exists():
            return target
        picture = open_picture(resolve_location(location, self.image_root))
        if picture is None:
            return None
        picture.thumbnail((size, size))
        data = io.BytesIO()
        picture.save(data, format="JPEG", quality=85)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{threading.get_ident()}.part")
        partial.write_bytes(data.getvalue())
        partial.replace(target)
        return target


def data_uri(picture, size: int = 320) -> str:
    """An uploaded picture as an inline JPEG (it is not in the store, so it gets no URL)."""
    import base64

    picture = picture.convert("RGB")
    picture.thumbnail((size, size))
    data = io.BytesIO()
    picture.save(data, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(data.getvalue()).decode()
