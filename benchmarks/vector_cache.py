"""Vectors the benchmarks computed, kept between runs, so that an hour-long run resumes where it stopped.

A picture is known by a digest of its pixels, a recipe by its name and a stamp of everything its vectors depend on
(the configuration's ``config_id``, the source of the code that computes it, torch's version): a changed picture,
recipe or piece of code is a miss, never a stale hit. Each chunk computed is written as its own shard (a new file,
renamed into place), so a killed run loses at most the chunk it was on, and the next run computes only the rest.
``fresh=True`` ignores what is kept (and keeps nothing new).

Kept in ``$ARTVEC_BENCH_CACHE/vectors`` (default ``~/.cache/artvec-bench/vectors``); delete that folder to start over.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    return Path(os.environ.get("ARTVEC_BENCH_CACHE", "~/.cache/artvec-bench")).expanduser() / "vectors"


def picture_digest(picture) -> str:
    """A PIL picture's mode, size and pixels, hashed: the same picture however it was made."""
    h = hashlib.sha1(f"{picture.mode}:{picture.size}:".encode())
    h.update(picture.tobytes())
    return h.hexdigest()


def code_stamp(paths: tuple = (), sources: tuple = (), values: tuple = ()) -> str:
    """The source files (relative to the repository), the functions and classes in ``sources`` (theirs alone, not
    their whole module's), the reprs of ``values`` and torch's version, hashed."""
    import inspect

    import torch

    h = hashlib.sha1(torch.__version__.encode())
    for path in paths:
        h.update((ROOT / path).read_bytes())
    for source in sources:
        h.update(inspect.getsource(source).encode())
    for value in values:
        h.update(repr(value).encode())
    return h.hexdigest()[:12]


class VectorCache:
    """One recipe's kept vectors: digest -> {field: vector}."""

    def __init__(self, recipe: str, stamp: str, fresh: bool = False):
        if not re.fullmatch(r"[A-Za-z0-9._-]+", recipe):
            raise ValueError(f"recipe name {recipe!r}: letters, digits, '.', '_' and '-' only")
        self.folder = cache_dir() / f"{recipe}-{stamp}"
        self.fresh = fresh
        self.rows: dict[str, dict[str, np.ndarray]] = {}
        if not fresh and self.folder.is_dir():
            for shard in sorted(self.folder.glob("shard-*.npz")):
                self._read(shard)
        if not fresh:
            self._mention_older(recipe)

    def _mention_older(self, recipe: str) -> None:
        """Says where this recipe's vectors made by other code lie, and their size: never used again unless that code
        comes back, and not deleted here (a branch switched back would want them)."""
        older = [f for f in self.folder.parent.glob(f"{recipe}-*")
                 if f != self.folder and re.fullmatch(re.escape(recipe) + r"-[0-9a-f]{12}", f.name)]
        if older:
            size = sum(shard.stat().st_size for folder in older for shard in folder.glob("*.npz")) / 1e6
            print(f"  {recipe}: {len(older)} folder(s) of vectors made by other code ({size:.0f} MB) beside "
                  f"{self.folder.name}; delete them once that code will not come back", file=sys.stderr)

    def _read(self, shard: Path) -> None:
        with np.load(shard) as z:
            fields = [name for name in z.files if name != "digests"]
            arrays = {name: z[name] for name in fields}
            for i, digest in enumerate(z["digests"]):
                self.rows[str(digest)] = {name: arrays[name][i] for name in fields}

    def __contains__(self, digest: str) -> bool:
        return digest in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, digests: list[str], field: str) -> np.ndarray:
        return np.stack([self.rows[d][field] for d in digests])

    def put(self, digests: list[str], arrays: dict[str, np.ndarray]) -> None:
        """Keeps one chunk's vectors (rows in the order of ``digests``), written as a shard of its own."""
        for i, digest in enumerate(digests):
            self.rows[digest] = {name: a[i] for name, a in arrays.items()}
        if self.fresh or not digests:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1("".join(digests).encode()).hexdigest()[:16]
        partial = self.folder / f".shard-{name}.{os.getpid()}.npz"
        np.savez(partial, digests=np.array(digests), **arrays)
        partial.replace(self.folder / f"shard-{name}.npz")
