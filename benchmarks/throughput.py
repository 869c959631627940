"""Throughput of the whole path (read file -> decode -> resize -> VGG -> Gram -> colour -> vector)
against a bare VGG forward of the same configuration on ready tensors, in the same run.

Generates large JPEGs (default 32 × 3000×2000, q90) from scikit-image pictures, upscaled with noise,
in a temporary folder.  Reports medians over repeats, the ratio (wall clock and CPU work), and peak RSS after
1/3 and after all pictures (memory must be flat in the number of pictures).  The default also runs with malloc
handing freed memory back (glibc's own way; an Embedder keeps it, artvec.memory) and with its activations laid
out channel by channel (``channels_last=False``); artvec 0.1's default runs as today's code runs it and as it
ran (both of those: memory handed back, channels first).

Usage: .venv/bin/python benchmarks/throughput.py [--device cpu|cuda] [--count 32] [--width 3000 --height 2000]
       [--batch-size 32] [--repeats 3]
       [--image-size 256] [--content-weight 0.2]   (the default with that setting changed; with a content
       piece, unwhitened)
"""

from __future__ import annotations

import argparse
import contextlib
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

from artvec.embedding import BATCH_SIZE, DEFAULT_CONFIG, V1_CONFIG, Embedder  # noqa: E402
from artvec.images import ImageError  # noqa: E402
from artvec.memory import keep_freed_memory, return_freed_memory  # noqa: E402


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


def model_times(embedders: dict[str, tuple[Embedder, bool]], count: int, batch_size: int, repeats: int) -> dict[str, float]:
    """CPU seconds per already-decoded picture of mixed shapes (resize, pixel histograms, the model and the head;
    no file decoding) for each arm (name -> (embedder, keep freed memory?)), interleaved; medians."""
    pictures = decoded_pictures(count)
    for embedder, _ in embedders.values():
        embedder.embed_images(pictures[:batch_size], batch_size=batch_size)  # warm-up

    def embedding(embedder: Embedder):
        def run() -> int:
            embedder.embed_images(pictures, batch_size=batch_size)
            return count
        return run

    _, cpu = arm_rates({name: (embedding(embedder), keep) for name, (embedder, keep) in embedders.items()}, repeats)
    return {name: statistics.median(values) for name, values in cpu.items()}


@contextlib.contextmanager
def allocator(keep: bool):
    """malloc keeping freed blocks (artvec's way) or handing them back (glibc's own) for the block's duration."""
    if not keep:
        return_freed_memory()
    try:
        yield
    finally:
        keep_freed_memory()


def arm_rates(arms: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each arm (name -> (function returning the pictures done, keep freed memory?)) run ``repeats`` times,
    interleaved so that drift affects all alike: pictures/s and CPU seconds a picture of each run."""
    rates: dict[str, list[float]] = {name: [] for name in arms}
    cpu: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, (run, keep) in arms.items():
            with allocator(keep):
                t, c = time.perf_counter(), time.process_time()
                n = run()
                rates[name].append(n / (time.perf_counter() - t))
                # CPU seconds of every thread (model, head, decoders): the work each path does, which other
                # tenants of a shared machine disturb far less than the wall clock
                cpu[name].append((time.process_time() - c) / n)
    return rates, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--width", type=int, default=3000)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                    help="pictures handed to the embedder at once, grouped by shape (sync's and embed's default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--decode-workers", type=int, default=None,
                    help="pictures decoded at once (default: the Embedder's for the device: 2 on a CPU)")
    ap.add_argument("--image-size", type=int, default=DEFAULT_CONFIG.image_size)
    ap.add_argument("--content-weight", type=float, default=DEFAULT_CONFIG.content_weight)
    args = ap.parse_args()
    import torch

    config = dataclasses.replace(DEFAULT_CONFIG, image_size=args.image_size, content_weight=args.content_weight)
    if config.content_weight:  # the shipped whitening was fitted without the content piece
        config = dataclasses.replace(config, whitening="")

    def embedder(config, **kwargs) -> Embedder:
        return Embedder(config, device=args.device, threads=args.threads, decode_workers=args.decode_workers, **kwargs)

    emb, old = embedder(config), embedder(V1_CONFIG)
    emb_first, old_first = embedder(config, channels_last=False), embedder(V1_CONFIG, channels_last=False)
    model_batch = min(args.batch_size, emb.model_batch or args.batch_size)
    sync = torch.cuda.synchronize if emb.device.type == "cuda" else (lambda: None)
    shape = config.input_size((args.width, args.height))
    print(f"config {config.config_id}: {shape[0]}×{shape[1]} input, {len(config.layers)} layers, dim {config.dim}; "
          f"device {emb.device}, torch threads {torch.get_num_threads()}, decode workers {emb.decode_workers}, "
          f"batches of {args.batch_size}, the model taking {model_batch} at once")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        paths = make_jpegs(Path(tmp), args.count, args.width, args.height)
        mb = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{len(paths)} JPEGs {args.width}×{args.height} ({mb / len(paths):.1f} MB each) made in {time.time() - t:.0f}s")

        # ready tensors for the bare forward: the same shape, in the batches the model takes
        rng = np.random.default_rng(1)
        ready = rng.integers(0, 256, size=(model_batch, shape[1], shape[0], 3), dtype=np.uint8)
        x = emb.source.preprocess(torch.from_numpy(ready).to(emb.device), emb.channels_last)
        x_first = x.contiguous()   # laid out channel by channel, for the channels-first model
        n_batches = -(-len(paths) // model_batch)

        def bare(model=emb.features, ready=x):
            with torch.inference_mode():
                for _ in range(n_batches):
                    model(ready)
                sync()
            return n_batches * model_batch

        def full(embedder=emb, marks=None):
            n_ok = 0
            for i, (_, r) in enumerate(embedder.embed_stream(((p, p) for p in paths), batch_size=args.batch_size)):
                if isinstance(r, ImageError):
                    raise SystemExit(f"unexpected error: {r}")
                n_ok += 1
                if marks is not None and i + 1 == len(paths) // 3:
                    marks["third"] = rss_mb()
            sync()
            if marks is not None:
                marks["all"] = rss_mb()
            return n_ok

        bare()  # warm-up
        bare(emb_first.features, x_first)
        for e in (emb, old, emb_first, old_first):
            full(e)
        rss_before = rss_mb()
        kept = keep_freed_memory()
        marks: dict[str, float] = {}
        arms = {"bare": (bare, True), "bare channels first": (lambda: bare(emb_first.features, x_first), True),
                "whole": (lambda: full(marks=marks), True), "old": (lambda: full(old), True),
                "whole channels first": (lambda: full(emb_first), True)}
        if kept:  # with malloc handing large freed blocks back, as artvec 0.1 ran
            arms |= {"whole returned": (full, False), "old as it ran": (lambda: full(old_first), False)}
        rates, cpu = arm_rates(arms, args.repeats)

    med = {name: statistics.median(values) for name, values in rates.items()}
    b, f, o = med["bare"], med["whole"], med["old"]
    row = "{:70s} {:>22s}".format
    print()
    print(row("path", f"pictures/s (median of {args.repeats})"))
    print(row("bare VGG forward on ready tensors", f"{b:.2f}"))
    print(row("whole path (file -> decode -> resize -> vector)", f"{f:.2f}"))
    print(row("ratio whole / bare", f"{f / b:.2f}"))
    print(row("  each repeat (whole / the bare run before it)",
              ", ".join(f"{w / r:.2f}" for w, r in zip(rates["whole"], rates["bare"]))))
    bc, fc = statistics.median(cpu["bare"]), statistics.median(cpu["whole"])
    print(row("ratio whole / bare forward channels first (as issue 3 measured it)", f"{f / med['bare channels first']:.2f}"))
    print(row("CPU ms a picture: bare / whole path", f"{bc * 1000:.0f} / {fc * 1000:.0f}"))
    print(row("ratio of CPU work, bare / whole", f"{bc / fc:.2f}"))
    print(row("whole path, activations channels first (channels_last=False)", f"{med['whole channels first']:.2f}"))
    print(row("  default, channels last / first", f"{f / med['whole channels first']:.2f}"))
    print(row(f"whole path, artvec 0.1 default ({V1_CONFIG.config_id})", f"{o:.2f}"))
    oc = statistics.median(cpu["old"])
    print(row("time per picture, default / artvec 0.1", f"{o / f:.2f}"))
    print(row("CPU work per picture, default / artvec 0.1", f"{fc / oc:.2f}"))
    if kept:
        r, ro = med["whole returned"], med["old as it ran"]
        print(row("whole path, malloc returning freed memory: default", f"{r:.2f}"))
        print(row("  default, kept / returned memory", f"{f / r:.2f}"))
        print(row("whole path, artvec 0.1 as it ran (memory returned, channels first)", f"{ro:.2f}"))
        print(row("time per picture, default / artvec 0.1 as it ran", f"{ro / f:.2f}"))
        print(row("CPU work per picture, default / artvec 0.1 as it ran", f"{fc / statistics.median(cpu['old as it ran']):.2f}"))
    print("runs: " + "; ".join(f"{name} {', '.join(f'{v:.2f}' for v in values)}" for name, values in rates.items()))
    print(f"RSS: before timed runs {rss_before:.0f} MB; after {len(paths) // 3} pictures {marks['third']:.0f} MB; "
          f"after {len(paths)} pictures {marks['all']:.0f} MB; peak (ru_maxrss) {peak_rss_mb():.0f} MB")
    decoded = {"default": (emb, True), "default, channels first": (emb_first, True), "artvec 0.1": (old, True)}
    if kept:
        decoded |= {"default, memory returned": (emb, False), "artvec 0.1 as it ran": (old_first, False)}
    ms = {name: value * 1000 for name, value in model_times(decoded, args.count, args.batch_size, args.repeats).items()}
    print(f"\ndecoded pictures of {len(SHAPES)} shapes (card, scan, square, 3:1 strip, icon): resize, histograms, model "
          f"and head, CPU ms a picture (median of {args.repeats}), batches of {args.batch_size}")
    for name, value in ms.items():
        print(row(f"  {name}", f"{value:.0f} ({value / ms['artvec 0.1']:.2f}× artvec 0.1)"))
    if kept:
        print(row("  default / artvec 0.1 as it ran", f"{ms['default'] / ms['artvec 0.1 as it ran']:.2f}"))
    for e in (emb, old, emb_first, old_first):
        e.close()


if __name__ == "__main__":
    main()
