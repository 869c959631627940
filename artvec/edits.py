"""What a library's copies of one picture go through: rescans, mats, crops, rescales, re-encodes.

Each edit takes an RGB picture and a NumPy random generator (for its strength) and returns the
edited picture. The quality benchmark's near-duplicate task and ``artvec evaluate``'s
near-duplicate calibration both use these, so their figures speak of the same thing.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from .images import load_image


def jpeg(img: Image.Image, quality) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality))
    return load_image(buf.getvalue(), "jpeg")


def rotate(img, rng):
    """A slightly skewed scan: 1–3° either way, the corners filled white."""
    angle = rng.uniform(1, 3) * rng.choice([-1, 1])
    return img.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))


def cast(img, rng):
    """A colour cast: each channel's gain off by up to 10 %."""
    gains = 1 + rng.uniform(-0.10, 0.10, size=3)
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) * gains, 0, 255).astype(np.uint8), "RGB")


def blur(img, rng):
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.5)))


def border(img, rng):
    """A mat or scanner border of 4–12 % of the longer side."""
    w, h = img.size
    pad = max(1, round(max(w, h) * rng.uniform(0.04, 0.12)))
    colours = [(245, 240, 225), (20, 20, 20), (255, 255, 255), (120, 110, 100)]
    return ImageOps.expand(img, border=pad, fill=colours[int(rng.integers(len(colours)))])


def crop(img, rng):
    """70–95 % of each side, anywhere in the picture."""
    w, h = img.size
    frac = rng.uniform(0.70, 0.95)
    cw, ch = max(1, round(w * frac)), max(1, round(h * frac))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def rescale(img, rng):
    f = rng.uniform(0.3, 0.8)
    w, h = img.size
    return img.resize((max(16, round(w * f)), max(16, round(h * f))), Image.Resampling.BICUBIC)


EDITS: dict[str, Callable] = {
    "rescan": lambda im, rng: jpeg(cast(blur(rotate(im, rng), rng), rng), rng.integers(70, 91)),
    "rotate": rotate,
    "border": border,
    "crop": crop,
    "rescale": rescale,
    "jpeg": lambda im, rng: jpeg(im, rng.integers(40, 91)),
    "greyscale": lambda im, rng: im.convert("L").convert("RGB"),
    "cast+crop": lambda im, rng: cast(crop(im, rng), rng),
}
