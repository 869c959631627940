"""Where a catalogue's image bytes come from: a path under the image root, an absolute path, or http(s)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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
    except OSError:
        return None
    return f"{info.st_size}:{info.st_mtime_ns}"


def read_bytes(location: str, options: SourceOptions) -> bytes:
    if not location:
        raise ImageNotFound("(empty)", "the catalogue row has no image location")
    data = fetch_url(location, options) if is_url(location) else read_file(location, options)
    if not data:
        raise EmptyImage(location, "zero bytes")
    return data


def read_file(location: str, options: SourceOptions) -> bytes:
    path = resolve_path(location, options.image_root)
    try:
        size = path.stat().st_size
        if size > options.max_bytes:
            raise FetchError(location, f"file of {size} bytes is over the {options.max_bytes}-byte limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageNotFound(location, f"no such file: {path}") from None
    except IsADirectoryError:
        raise FetchError(location, f"is a folder, not a file: {path}") from None
    except PermissionError:
        raise FetchError(location, f"permission denied: {path}") from None
    except OSError as error:
        raise FetchError(location, f"cannot read {path}: {error.strerror or error}") from None


def fetch_url(url: str, options: SourceOptions) -> bytes:
    """GET with a timeout; retries with exponential backoff on timeouts, 5xx and 429."""
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
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            last_reason = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) \
                else f"connection failed: {reason}"
    raise FetchError(url, f"{last_reason} (after {options.retries + 1} attempts)")
