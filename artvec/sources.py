"""Where a catalogue's image bytes come from: a path under the image root, an absolute path, or http(s)."""

from __future__ import annotations

import os
import stat as stat_mode
import time
import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import first_line
from .images import EmptyImage, ImageError, ImageNotFound

RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}


class FetchError(ImageError):
    """The image could not be fetched (HTTP error, timeout, unreadable file)."""


@dataclass(frozen=True)
class SourceOptions:
    image_root: str | None = None
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    max_bytes: int = 512 * 1024 * 1024


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def resolve_path(location: str, image_root: str | None) -> Path:
    path = Path(location).expanduser()
    if not path.is_absolute() and image_root:
        path = Path(image_root).expanduser() / path
    return path


def stamp(location: str, options: SourceOptions) -> str | None:
    """A cheap change signal without reading the bytes: size and mtime of a file; None for URLs."""
    if not location or is_url(location):
        return None
    try:
        info = os.stat(resolve_path(location, options.image_root))
    except (OSError, ValueError):      # ValueError: a NUL byte in the path
        return None
    return f"{info.st_size}:{info.st_mtime_ns}"


def read_bytes(location: str, options: SourceOptions) -> bytes:
    if not location:
        raise ImageNotFound("(empty)", "the catalogue row has no image location")
    try:
        data = fetch_url(location, options) if is_url(location) else read_file(location, options)
    except ImageError:
        raise
    except MemoryError:
        raise FetchError(location, "does not fit in memory") from None
    except Exception as error:  # noqa: BLE001 - whatever one location does, it is that picture's failure
        raise FetchError(location, f"cannot read ({type(error).__name__}: {first_line(error)})") from None
    if not data:
        raise EmptyImage(location, "zero bytes")
    return data


def shorten(text: str, limit: int = 200) -> str:
    """Keep a monstrous path readable in a one-line reason: its start and its end."""
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]}"


def unrooted_hint(path: Path, image_root: str | None) -> str:
    """A relative name with no image root is read from whatever folder artvec runs in: say so."""
    if path.is_absolute() or image_root:
        return ""
    return "; relative locations are read under --image-root (catalogue.image_root), which is not set"


def read_file(location: str, options: SourceOptions) -> bytes:
    path = resolve_path(location, options.image_root)
    shown = shorten(str(path))
    try:
        info = path.stat()
        if stat_mode.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat_mode.S_ISREG(info.st_mode):       # a FIFO would block, /dev/zero never ends
            raise FetchError(location, f"not a regular file: {shown}")
        if info.st_size > options.max_bytes:
            raise FetchError(location, f"file of {info.st_size} bytes is over the {options.max_bytes}-byte limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageNotFound(location, f"no such file: {shown}{unrooted_hint(path, options.image_root)}") from None
    except IsADirectoryError:
        raise FetchError(location, f"is a folder, not a file: {shown}") from None
    except PermissionError:
        raise FetchError(location, f"permission denied: {shown}") from None
    except OSError as error:
        raise FetchError(location, f"cannot read {shown}: {error.strerror or error}") from None
    except ValueError as error:                       # a NUL byte in the path
        raise FetchError(location, f"not a usable path ({first_line(error)})") from None


def check_url(url: str) -> None:
    """A malformed URL (`http://[bad/x`, spaces, control characters) fails here, not mid-request."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port                                   # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise FetchError(url, f"malformed URL ({first_line(error)})") from None
    if not parts.hostname:
        raise FetchError(url, "malformed URL (no host)")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise FetchError(url, "malformed URL (spaces or control characters)")


def fetch_url(url: str, options: SourceOptions) -> bytes:
    """GET with a timeout; retries with exponential backoff on timeouts, 5xx and 429."""
    check_url(url)
    last_reason = ""
    for attempt in range(options.retries + 1):
        if attempt:
            time.sleep(options.backoff * 2 ** (attempt - 1))
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "artvec"})
            with urllib.request.urlopen(request, timeout=options.timeout) as response:
                data = response.read(options.max_bytes + 1)
            if len(data) > options.max_bytes:
                raise FetchError(url, f"download is over the {options.max_bytes}-byte limit")
            return data
        except urllib.error.HTTPError as error:
            last_reason = f"HTTP {error.code} {error.reason}"
            if error.code not in RETRYABLE_HTTP:
                raise FetchError(url, last_reason) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            last_reason = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) \
                else f"connection failed: {reason}"
    raise FetchError(url, f"{last_reason} (after {options.retries + 1} attempts)")
