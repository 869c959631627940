"""Decoding pictures as they really come.

``load_image`` turns a file or bytes into an 8-bit RGB :class:`PIL.Image.Image`:
JPEG, PNG, TIFF, WebP, GIF, BMP (anything Pillow reads); EXIF orientation
applied; modes L, LA, P (with transparency), RGBA (composited on white), CMYK,
16-bit and float; animated pictures give their first frame.  Large JPEGs are
decoded at reduced size (``draft``) when a target size is given, and a
decompression-bomb limit is checked from the header before any pixel is decoded.

Every failure is a typed :class:`ImageError` whose ``str()`` is one line,
``"<name>: <reason>"``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ArtvecError, first_line

__all__ = [
    "ImageError",
    "ImageNotFound",
    "EmptyImage",
    "CorruptImage",
    "UnsupportedImage",
    "ImageTooLarge",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "load_image",
    "iter_image_files",
]

DEFAULT_MAX_PIXELS = 200_000_000

#: file name endings ``iter_image_files`` picks up in folders (lower case)
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp", ".gif", ".bmp", ".dib"}
)

# artvec enforces its own, configurable limit (``max_pixels``) from the header,
# before decoding; Pillow's process-wide limit would otherwise refuse pictures
# between its fixed limit and ours.  Every picture artvec opens goes through
# ``load_image``.
Image.MAX_IMAGE_PIXELS = None
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


class ImageError(ArtvecError):
    """A picture could not be used.  ``str()`` is ``"<name>: <reason>"``, one line."""

    kind = "image error"

    def __init__(self, name: str, reason: str):
        reason = " ".join(str(reason).split())  # one line, always
        super().__init__(name, reason)
        self.name = str(name)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


class ImageNotFound(ImageError):
    kind = "not found"


class EmptyImage(ImageError):
    kind = "empty"


class CorruptImage(ImageError):
    kind = "corrupt"


class UnsupportedImage(ImageError):
    kind = "unsupported"


class ImageTooLarge(ImageError):
    kind = "too large"


def _open(source, name: str) -> tuple[Image.Image, object]:
    """Open lazily (header only).  Returns the image and the handle to close."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise EmptyImage(name, "empty data (0 bytes)")
        fp = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImageNotFound(name, "no such file") from None
        except OSError as exc:
            raise ImageNotFound(name, f"cannot access file ({exc.strerror or first_line(exc)})") from None
        if path.is_dir():
            raise UnsupportedImage(name, "is a folder, not a picture")
        if st.st_size == 0:
            raise EmptyImage(name, "empty file (0 bytes)")
        try:
            fp = open(path, "rb")
        except OSError as exc:
            raise ImageNotFound(name, f"cannot open file ({exc.strerror or first_line(exc)})") from None
    try:
        img = Image.open(fp)
    except UnidentifiedImageError:
        fp.close()
        raise UnsupportedImage(name, "not a picture in a format artvec reads (JPEG, PNG, TIFF, WebP, GIF, BMP)") from None
    except Image.DecompressionBombError as exc:  # only if someone re-enabled Pillow's limit
        fp.close()
        raise ImageTooLarge(name, first_line(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        fp.close()
        raise CorruptImage(name, f"unreadable header ({first_line(exc)})") from None
    return img, fp


_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        import numpy as np

        arr = np.asarray(img).astype(np.float64)
        if mode in _SIXTEEN_BIT:
            arr = arr / 257.0
        elif mode == "I":
            top = float(arr.max()) if arr.size else 0.0
            arr = arr / 257.0 if top > 255 else arr
        else:  # float: 0..1 or 0..255
            top = float(np.nanmax(arr)) if arr.size else 0.0
            arr = np.nan_to_num(arr) * (255.0 if top <= 1.0 else 1.0)
        gray = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
        return gray.convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) as the picture will stand once its EXIF orientation is applied."""
    width, height = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def load_image(
    source: bytes | str | os.PathLike,
    name: str | None = None,
    *,
    target_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    square: bool = True,
    fit=None,
) -> Image.Image:
    """Decode ``source`` (a path or the file's bytes) into an 8-bit RGB image.

    ``name`` names the picture in errors (default: the path, or ``<bytes>``).
    With ``target_size``, JPEGs are decoded at reduced size where possible and
    the result is resized (bilinear, antialiased) to ``target_size``×``target_size``
    (``square=True``, the embedding input) or so that its longer side is at most
    ``target_size`` (``square=False``).  Pictures with more than ``max_pixels``
    pixels raise :class:`ImageTooLarge` before decoding.  ``fit`` (instead of
    ``target_size``) maps the picture's (width, height) to the size wanted: JPEGs
    are decoded at the smallest scale that still covers it, then resized to it.
    """
    if name is None:
        name = "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)
    img, fp = _open(source, name)
    try:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise CorruptImage(name, f"invalid size {width}x{height}")
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLarge(
                name, f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} (max_image_pixels)"
            )
        try:
            if getattr(img, "is_animated", False):
                img.seek(0)
            wanted = None
            if fit is not None:
                wanted = fit(_oriented_size(img))
                if img.format == "JPEG":
                    side = min(wanted)  # draft keeps both sides at least this large
                    img.draft("RGB", (side, side))
            elif target_size and img.format == "JPEG":
                img.draft("RGB", (int(target_size), int(target_size)))
            img.load()
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            if wanted is not None:
                if img.size != tuple(wanted):
                    img = img.resize(tuple(wanted), Image.Resampling.BILINEAR, reducing_gap=3.0)
            elif target_size:
                size = int(target_size)
                if square:
                    if img.size != (size, size):
                        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
                elif max(img.size) > size:
                    img.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
            else:
                img.load()
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(name, first_line(exc)) from None
        except MemoryError:
            raise ImageTooLarge(name, f"{width}x{height} picture does not fit in memory") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, ZeroDivisionError) as exc:
            text = first_line(exc)
            if "truncated" in text.lower():
                reason = f"truncated ({text})"
            else:
                reason = f"corrupt or unreadable picture data ({text})"
            raise CorruptImage(name, reason) from None
        return img
    finally:
        fp.close()


def iter_image_files(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Expand ``paths`` into picture files, in a stable order.

    Folders are walked recursively and give their files whose name ends in an
    image extension (case-insensitive), sorted by path; hidden files and folders
    are skipped.  Paths that are files, or that do not exist, are kept as given
    (in the given order) so that loading them reports a typed error.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = []
            for root, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for f in files:
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                        found.append(Path(root) / f)
            out.extend(sorted(found, key=lambda q: q.relative_to(path).parts))
        else:
            out.append(path)
    return out
