"""What a library's copies of one picture go through: rescans, mats, crops, rescales, re-encodes.

Each edit takes an RGB picture and a NumPy random generator (for its strength) and returns the
edited picture. The quality benchmark's near-duplicate task and ``artvec evaluate``'s
near-duplicate calibration both use these, so their figures speak of the same thing.

``print_and_scan`` is what a drawing goes through on its way into a library of scans (paper, fade, light, grain):
the benchmarks' set of scans is made with it, and the default's basis for scanned paper (``clipart-scans-v1``) was fitted
on the reference drawings beside a print and scan of each.
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


#: paper tints of old prints (sRGB), one drawn per picture, each jittered by up to ±5 levels a channel
PAPERS = ((250, 246, 235), (242, 236, 218), (236, 226, 200), (232, 232, 228), (246, 240, 222))


#: the steps of a print and scan, in the order they happen
SCAN_STEPS = ("tint", "light", "grain", "skew", "blur", "jpeg")


def checked_scan_steps(steps) -> tuple[str, ...]:
    """``steps`` as a tuple, each one of ``SCAN_STEPS``; ValueError naming any other."""
    unknown = set(steps) - set(SCAN_STEPS)
    if unknown:
        raise ValueError(f"unknown print-and-scan steps {sorted(unknown)}; expected some of {', '.join(SCAN_STEPS)}")
    return tuple(steps)


def paper_tint(rng: np.random.Generator, paper: int | None = None) -> tuple[int, np.ndarray]:
    """The paper a print and scan lays its ink on, its first draws from ``rng``: (which of ``PAPERS``, its colour
    jittered by up to ±5 levels a channel). ``paper``: that one of ``PAPERS`` instead, unjittered (the same draws
    made, so the rest of a scan is as it would have been)."""
    index = int(rng.integers(len(PAPERS)))
    colour = np.array(PAPERS[index], np.float32) + rng.uniform(-5, 5, 3).astype(np.float32)
    return (index, colour) if paper is None else (paper, np.array(PAPERS[paper], np.float32))


def print_and_scan(img: Image.Image, rng: np.random.Generator, steps=SCAN_STEPS, paper: int | None = None) -> Image.Image:
    """A drawing printed on old paper and scanned, at the size artvec reads it: the ink laid on a paper tint
    (multiplied), faded to 80–100 % of its strength (``tint``), the light falling off by up to 6 % across the page
    (``light``), grain σ 0.5–2 levels (``grain``), a skew of 0.3–1.5° (``skew``), blur σ 0.3–0.7 (``blur``) and a
    JPEG of quality 80–95 (``jpeg``). A scan's paper grain and blur are mostly averaged away when thousands of
    pixels are reduced to artvec's 256², so they stay small here; the paper's tint and the ink's fade are not
    averaged away by any reduction. ``steps`` leaves some out (the paper then stays white); every strength is
    drawn from ``rng`` whichever steps are taken, so a step left out changes nothing else. ``paper``: every
    picture on that one of ``PAPERS`` (``paper_tint``)."""
    steps = checked_scan_steps(steps)
    _, tint = paper_tint(rng, paper)
    fade = rng.uniform(0.8, 1.0)
    a = np.asarray(img.convert("RGB"), np.float32) / 255.0
    out = tint - (tint - a * tint) * fade if "tint" in steps else a * 255.0
    h, w = out.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * np.linspace(-0.5, 0.5, w)[None, :] + np.sin(angle) * np.linspace(-0.5, 0.5, h)[:, None]
    fall = rng.uniform(0, 0.06)
    if "light" in steps:
        out = out * (1 - fall * (ramp + 0.5))[..., None]
    grain = rng.normal(0, rng.uniform(0.5, 2.0), (h, w, 1)).astype(np.float32)
    if "grain" in steps:
        out += grain
    scanned = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")
    skew = rng.uniform(0.3, 1.5) * rng.choice([-1, 1])
    if "skew" in steps:
        fill = tuple(int(c) for c in tint) if "tint" in steps else (255, 255, 255)
        scanned = scanned.rotate(skew, Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    sigma = rng.uniform(0.3, 0.7)
    if "blur" in steps:
        scanned = scanned.filter(ImageFilter.GaussianBlur(sigma))
    quality = rng.integers(80, 96)
    return jpeg(scanned, quality) if "jpeg" in steps else scanned
