"""Throughput of the whole path (read file -> decode -> resize -> VGG -> Gram -> colour -> vector)
against a bare VGG forward of the same configuration on ready tensors, in the same run.

Generates large JPEGs (default 32 × 3000×2000, q90) from scikit-image pictures, upscaled with noise,
in a temporary folder.  Reports medians over repeats, the ratio, and peak RSS after 1/3 and after all
pictures (memory must be flat in the number of pictures).

Usage: .venv/bin/python benchmarks/throughput.py [--device cpu|cuda] [--count 32] [--width 3000 --height 2000]
       [--image-size 256] [--content-weight 0.2]   (the default with that setting changed; with a content
       piece, unwhitened)
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses  # noqa: E402

from artvec.embedding import DEFAULT_CONFIG, V1_CONFIG, Embedder  # noqa: E402
from artvec.images import ImageError  # noqa: E402


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_jpegs(folder: Path, count: int, width: int, height: int) -> list[Path]:
    import skimage.data as data

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina"]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        base = Image.fromarray(getattr(data, names[i % len(names)])()).convert("RGB")
        big = base.resize((width, height), Image.Resampling.BILINEAR)
        arr = np.asarray(big).astype(np.int16)
        arr += rng.integers(-12, 13, size=(height, width, 1), dtype=np.int16)  # sensor-like noise
        p = folder / f"scan_{i:03d}.jpg"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


#: decoded pictures of the shapes a library holds: a card, a scan, a square, a strip, a small icon
SHAPES = [(448, 640), (640, 427), (512, 512), (900, 300), (256, 256)]


def decoded_pictures(count: int) -> list[Image.Image]:
    import skimage.data as data

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"]
    return [Image.fromarray(getattr(data, names[i % len(names)])()).convert("RGB").resize(SHAPES[i % len(SHAPES)])
            for i in range(count)]


def model_time_ratio(new: Embedder, old: Embedder, count: int, batch_size: int, repeats: int) -> tuple[float, float]:
    """Seconds per already-decoded picture of mixed shapes (the model and the head, no decoding), for the
    default and artvec 0.1, interleaved; medians."""
    pictures = decoded_pictures(count)
    times: dict[str, list[float]] = {"new": [], "old": []}
    for embedder in (new, old):
        embedder.embed_images(pictures[:batch_size], batch_size=batch_size)  # warm-up
    for _ in range(repeats):
        for key, embedder in (("new", new), ("old", old)):
            t = time.perf_counter()
            embedder.embed_images(pictures, batch_size=batch_size)
            times[key].append((time.perf_counter() - t) / count)
    return statistics.median(times["new"]), statistics.median(times["old"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--width", type=int, default=3000)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--decode-workers", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=DEFAULT_CONFIG.image_size)
    ap.add_argument("--content-weight", type=float, default=DEFAULT_CONFIG.content_weight)
    args = ap.parse_args()
    import torch

    config = dataclasses.replace(DEFAULT_CONFIG, image_size=args.image_size, content_weight=args.content_weight)
    if config.content_weight:  # the shipped whitening was fitted without the content piece
        config = dataclasses.replace(config, whitening="")
    emb = Embedder(config, device=args.device, threads=args.threads, decode_workers=args.decode_workers)
    old = Embedder(V1_CONFIG, device=args.device, threads=args.threads, decode_workers=args.decode_workers)
    sync = torch.cuda.synchronize if emb.device.type == "cuda" else (lambda: None)
    shape = config.input_size((args.width, args.height))
    print(f"config {config.config_id}: {shape[0]}×{shape[1]} input, {len(config.layers)} layers, dim {config.dim}; "
          f"device {emb.device}, torch threads {torch.get_num_threads()}, decode workers {args.decode_workers}, "
          f"batch {args.batch_size}")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        paths = make_jpegs(Path(tmp), args.count, args.width, args.height)
        mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{len(paths)} JPEGs {args.width}×{args.height} ({mb / len(paths):.1f} MB each) made in {time.time() - t:.0f}s")

        # ready tensors for the bare forward: same size, same batch size
        rng = np.random.default_rng(1)
        ready = rng.integers(0, 256, size=(args.batch_size, shape[1], shape[0], 3), dtype=np.uint8)
        x = config and emb.source.preprocess(torch.from_numpy(ready)).to(emb.device)
        n_batches = -(-len(paths) // args.batch_size)

        def bare():
            with torch.inference_mode():
                for _ in range(n_batches):
                    emb.features(x)
                sync()

        def full(embedder=emb):
            n_ok = 0
            marks = {}
            for i, (_, r) in enumerate(embedder.embed_stream(((p, p) for p in paths), batch_size=args.batch_size)):
                if isinstance(r, ImageError):
                    raise SystemExit(f"unexpected error: {r}")
                n_ok += 1
                if i + 1 == len(paths) // 3:
                    marks["third"] = rss_mb()
            sync()
            marks["all"] = rss_mb()
            return n_ok, marks

        bare()  # warm-up
        full()
        full(old)
        rss_before = rss_mb()
        bare_rates, full_rates, old_rates, marks = [], [], [], None
        for _ in range(args.repeats):  # interleaved, so drift affects all alike
            t = time.perf_counter()
            bare()
            bare_rates.append(n_batches * args.batch_size / (time.perf_counter() - t))
            t = time.perf_counter()
            n, marks = full()
            full_rates.append(n / (time.perf_counter() - t))
            t = time.perf_counter()
            n_old, _ = full(old)
            old_rates.append(n_old / (time.perf_counter() - t))

    b, f = statistics.median(bare_rates), statistics.median(full_rates)
    print()
    print(f"{'path':52s} {'pictures/s (median of ' + str(args.repeats) + ')':>28s}")
    print(f"{'bare VGG forward on ready tensors':52s} {b:28.2f}")
    print(f"{'whole path (file -> decode -> resize -> vector)':52s} {f:28.2f}")
    print(f"{'ratio whole / bare':52s} {f / b:28.2f}")
    o = statistics.median(old_rates)
    print(f"{'whole path, artvec 0.1 default (' + V1_CONFIG.config_id + ')':52s} {o:28.2f}")
    print(f"{'time per picture, default / artvec 0.1':52s} {o / f:28.2f}")
    print(f"runs: bare {', '.join(f'{r:.2f}' for r in bare_rates)}; whole {', '.join(f'{r:.2f}' for r in full_rates)}; "
          f"0.1 {', '.join(f'{r:.2f}' for r in old_rates)}")
    print(f"RSS: before timed runs {rss_before:.0f} MB; after {len(paths) // 3} pictures {marks['third']:.0f} MB; "
          f"after {len(paths)} pictures {marks['all']:.0f} MB; peak (ru_maxrss) {peak_rss_mb():.0f} MB")
    new_s, old_s = model_time_ratio(emb, old, args.count, args.batch_size, args.repeats)
    print(f"decoded pictures of {len(SHAPES)} shapes (card, scan, square, 3:1 strip, icon), model and head only: "
          f"default {new_s * 1000:.0f} ms, artvec 0.1 {old_s * 1000:.0f} ms a picture, ratio {new_s / old_s:.2f}")
    emb.close()
    old.close()


if __name__ == "__main__":
    main()
