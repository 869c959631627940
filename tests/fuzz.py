"""A fuzz corpus for `artvec sync`: mutated picture files made from valid JPEG/PNG/GIF/WebP/TIFF/BMP, and
malformed image locations. Used by tests/test_faults.py (a few dozen) and benchmarks/faults.py (thousands).

Every entry says what must become of it: ``good`` (a valid picture, must be embedded), ``bad`` (must be
in artvec.failures) or ``either`` (a bit flip may leave a picture decodable: it must end up embedded or
failed, exactly one of the two).
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "webp": ".webp", "tiff": ".tif", "bmp": ".bmp"}
MUTATIONS = ("bit flips", "truncation", "wrong header", "huge size", "zero size")

BAD_LOCATIONS = [
    "http://[bad/x", "http://exa mple.org/a.png", "http://:99999/a.png", "https://", "http://%zz/\x07.png",
    "ftp://example.org/a.png", "file:///etc/passwd", "/dev/zero", "/proc/1/mem", "", "no/such/picture.png",
    "x" * 5000 + ".png", "../" * 300 + "a.png",
]


@dataclass
class Entry:
    location: str
    expect: str        # good | bad | either
    kind: str          # what was done to it


def picture(seed: int, side: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = rng.integers(0, 256, size=3)
    stripes = ((x * (seed % 5 + 1) + y * (seed % 3 + 1)) % 17 < 8)[..., None]
    pixels = np.where(stripes, base, 255 - base) + rng.integers(0, 40, size=(side, side, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    (image.convert("P") if fmt == "gif" else image).save(buffer, fmt.upper())
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_size(data: bytes, fmt: str, width: int, height: int) -> bytes | None:
    """The same file declaring another size in its header (checksums fixed), or None for formats not done."""
    if fmt == "png":
        ihdr = struct.pack(">II", width, height) + data[24:29]
        return data[:8] + png_chunk(b"IHDR", ihdr) + data[33:]
    if fmt == "bmp":
        return data[:18] + struct.pack("<ii", width, height) + data[26:]
    if fmt == "gif":
        width, height = min(width, 65535), min(height, 65535)
        start = data.index(b",", 13)                      # the first image descriptor
        return (data[:6] + struct.pack("<HH", width, height) + data[10:start + 5]
                + struct.pack("<HH", width, height) + data[start + 9:])
    if fmt == "jpeg":
        start = data.index(b"\xff\xc0")                    # SOF0: ... height, width
        return data[:start + 5] + struct.pack(">HH", min(height, 65535), min(width, 65535)) + data[start + 9:]
    return None


def mutate(data: bytes, fmt: str, mutation: str, rng: random.Random) -> tuple[bytes, str] | None:
    if mutation == "bit flips":
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 24)):
            spot = rng.randrange(len(flipped))
            flipped[spot] ^= 1 << rng.randrange(8)
        return bytes(flipped), "either"
    if mutation == "truncation":
        return data[:rng.randint(0, max(0, len(data) // 2))], "either"
    if mutation == "wrong header":
        other = rng.choice([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"RIFF",
                            bytes(rng.randrange(256) for _ in range(8))])
        return other + data[len(other):], "either"
    if mutation == "huge size":
        mutated = with_size(data, fmt, 60000, 60000)
        return (mutated, "bad") if mutated else None
    mutated = with_size(data, fmt, 0, rng.choice([0, 64]))
    return (mutated, "bad") if mutated else None


def make_corpus(folder: Path, count: int, seed: int = 0, side: int = 64, good: int = 6) -> dict[str, Entry]:
    """``count`` mutated files (and ``good`` valid ones per format) in ``folder``, plus the malformed
    locations; name -> Entry. Names are relative to ``folder`` (the catalogue's image root)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Entry] = {}
    sources = {fmt: [encode(picture(seed * 1000 + i, side), fmt) for i in range(4)] for fmt in FORMATS}
    for fmt, ext in FORMATS.items():
        for index in range(good):
            name = f"good-{fmt}-{index}{ext}"
            (folder / name).write_bytes(encode(picture(seed * 7919 + len(entries), side), fmt))
            entries[name] = Entry(name, "good", f"valid {fmt}")
    made = 0
    while made < count:
        fmt = rng.choice(list(FORMATS))
        mutation = rng.choice(MUTATIONS)
        mutated = mutate(rng.choice(sources[fmt]), fmt, mutation, rng)
        if mutated is None:
            continue
        data, expect = mutated
        name = f"fuzz-{made:05d}{FORMATS[fmt]}"
        (folder / name).write_bytes(data)
        entries[name] = Entry(name, "bad" if not data else expect, f"{mutation} ({fmt})")
        made += 1
    (folder / "a-folder.png").mkdir(exist_ok=True)
    entries["a-folder.png"] = Entry("a-folder.png", "bad", "a folder")
    if not (folder / "a-pipe.png").exists():
        os.mkfifo(folder / "a-pipe.png")
    entries["a-pipe.png"] = Entry("a-pipe.png", "bad", "a FIFO")
    (folder / "nul-bytes.png").write_bytes(b"\x00" * 4096)
    entries["nul-bytes.png"] = Entry("nul-bytes.png", "bad", "NUL bytes")
    for index, location in enumerate(BAD_LOCATIONS):
        entries[f"location-{index}"] = Entry(location, "bad", "malformed location")
    return entries
