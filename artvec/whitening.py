"""Partial whitening of the style and colour parts with a basis fitted once, on a reference set, and
shipped in the package (``artvec/data/whitening-<name>.npz``).

Each part x (unit norm) becomes L2( U·diag(s)·Uᵀ(x − μ) + r·(I − UUᵀ)(x − μ) ): μ the reference set's mean,
U its leading principal directions, s = (λ + ε·mean λ)^−α their shrunk inverse scales and r that of the
directions left. With α = 0.25 this evens out, in part, how much each direction of variation counts:
the few directions along which every drawing varies (how much white, how dark) count less, the many
small ones where one hand differs from another count more. The basis is never refitted on a user's
pictures: a vector depends only on its picture and the configuration, whose id hashes the basis file.
How the shipped basis was fitted: ``benchmarks/fit_whitening.py``; why: docs/embedding.md.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ConfigError, first_line

DATA_DIR = Path(__file__).resolve().parent / "data"
#: the kinds of shipped basis: the file name's prefix, the setting that names one, and the parts it holds
#: (``whitening``: the style and colour parts; ``copies``: the copy vector, see artvec.embedding)
KINDS = {"whitening": ("whitening", ("style", "colour")), "copies": ("copy_vector", ("copy",))}
PARTS = KINDS["whitening"][1]


def path_of(name: str, kind: str = "whitening") -> Path:
    return DATA_DIR / f"{kind}-{name}.npz"


def available(kind: str = "whitening") -> list[str]:
    return sorted(p.name[len(kind) + 1:-len(".npz")] for p in DATA_DIR.glob(f"{kind}-*.npz"))


def check_name(name: str, kind: str = "whitening") -> None:
    """ValueError naming the shipped bases unless ``name`` is none or one of them."""
    if name not in ("", "none") and not path_of(name, kind).is_file():
        raise ValueError(f"unknown embedding {KINDS[kind][0]} {name!r}; expected none or a basis shipped with artvec: "
                         f"{', '.join(available(kind)) or '(none found: the package lacks artvec/data)'}")


@lru_cache(maxsize=None)
def file_sha256(name: str, kind: str = "whitening") -> str:
    """The basis file's content hash (part of every config_id that uses it)."""
    check_name(name, kind)
    return hashlib.sha256(path_of(name, kind).read_bytes()).hexdigest()


@dataclass(frozen=True)
class PartWhitening:
    """The fitted transform of one part: mean, leading directions (dims × rank), their scales, the rest's scale."""

    mean: np.ndarray
    directions: np.ndarray
    scales: np.ndarray
    rest: float

    @property
    def dim(self) -> int:
        return len(self.mean)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Rows (or one vector) of this part -> whitened, unit norm, float32."""
        y = np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.mean
        along = y @ self.directions
        out = (along * self.scales) @ self.directions.T + self.rest * (y - along @ self.directions.T)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        out = out.astype(np.float32)
        return out[0] if np.ndim(x) == 1 else out


def fit(vectors: np.ndarray, alpha: float, shrinkage: float, rank: int, groups=None, within: float = 0.0) -> PartWhitening:
    """The transform fitted on ``vectors`` (reference rows of one part). With ``groups`` (a label per row: the
    drawing's artist; "" for rows of no known hand) and ``within`` > 0, the scales come from
    (1 − within)·the covariance + within·the *within-artist* covariance (each labelled row less its artist's
    mean, artists of one row left out): directions along which one hand's drawings vary among themselves
    (what they show) count less, those along which hands differ and each keeps to itself count more."""
    x = np.asarray(vectors, dtype=np.float64)
    mean = x.mean(0)
    covariance = np.cov((x - mean).T)
    if within:
        covariance = (1 - within) * covariance + within * within_covariance(x, groups)
    return from_covariance(mean, covariance, alpha, shrinkage, rank)


def from_covariance(mean: np.ndarray, covariance: np.ndarray, alpha: float, shrinkage: float, rank: int) -> PartWhitening:
    """The transform of a part whose rows have this mean and covariance (see ``fit``)."""
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = np.maximum(eigenvalues[order], 0.0), eigenvectors[:, order]
    floor = shrinkage * eigenvalues.mean()
    rank = min(rank, len(eigenvalues) - 1)
    scales = (eigenvalues[:rank] + floor) ** -alpha
    rest = float((eigenvalues[rank:].mean() + floor) ** -alpha)
    top = scales.max()
    return PartWhitening(mean, eigenvectors[:, :rank], scales / top, rest / top)


def within_covariance(x: np.ndarray, groups) -> np.ndarray:
    """The pooled covariance of rows about their group's mean (groups "" and groups of one row left out)."""
    labels = np.asarray(groups)
    centred = []
    for label in sorted(set(labels.tolist()) - {""}):
        rows = x[labels == label]
        if len(rows) > 1:
            centred.append(rows - rows.mean(0))
    if not centred:
        raise ValueError("a within-artist whitening needs groups with two rows or more")
    c = np.concatenate(centred)
    return c.T @ c / (len(c) - len(centred))


@dataclass(frozen=True)
class Whitening:
    """A shipped basis: one transform per part, and what it was fitted for."""

    name: str
    parts: dict[str, PartWhitening]
    meta: dict

    @property
    def parts_id(self) -> str:
        return self.meta["parts_id"]


def save(path: Path, parts: dict[str, PartWhitening], meta: dict) -> None:
    arrays = {}
    for part, w in parts.items():
        arrays.update({f"{part}_mean": w.mean.astype(np.float32), f"{part}_directions": w.directions.astype(np.float32),
                       f"{part}_scales": w.scales.astype(np.float32), f"{part}_rest": np.float32(w.rest)})
    np.savez_compressed(path, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


@lru_cache(maxsize=4)
def load(name: str, kind: str = "whitening") -> Whitening:
    check_name(name, kind)
    try:
        with np.load(path_of(name, kind)) as z:
            meta = json.loads(str(z["meta"]))
            parts = {part: PartWhitening(z[f"{part}_mean"].astype(np.float64), z[f"{part}_directions"].astype(np.float64),
                                         z[f"{part}_scales"].astype(np.float64), float(z[f"{part}_rest"]))
                     for part in KINDS[kind][1]}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"the {kind} basis {path_of(name, kind)} cannot be read ({type(exc).__name__}: "
                          f"{first_line(exc)}); reinstall artvec, or set embedding.{KINDS[kind][0]} = \"none\"") from None
    return Whitening(name, parts, meta)
