"""The whole path's rate against the number of decode workers (and pictures handed over at once), and where the
main thread's time goes: in the model and its head, in the rest of the batch's work (the parts put together,
whitened), or waiting for decoded pictures. Made for a GPU, where decoding on the CPU sets the pace.

Generates 64 large JPEGs (3000×2000, q90, as benchmarks/throughput.py makes them) and hands each run 3 × 64 of
them. Every row: the median of 3 runs, after a warm-up; then decoding alone with as many threads (the ceiling
the workers set), one picture's decoding and histograms on one thread, and the model with its head alone on
ready batches (the ceiling the device sets).

Usage: .venv/bin/python benchmarks/decode_workers.py [--device cuda] [--workers 2,4,8,15,16]
       [--batch-sizes 32,64] [--configs default,v1] [--count 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import make_jpegs  # noqa: E402

from artvec.embedding import DEFAULT_CONFIG, V1_CONFIG, Embedder, default_decode_workers  # noqa: E402
from artvec.images import ImageError  # noqa: E402

CONFIGS = {"default": DEFAULT_CONFIG, "v1": V1_CONFIG}


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def jpegs(folder: Path, count: int) -> list[Path]:
    """``count`` JPEGs made 4 at a time on as many threads as there are cores."""
    def four(i: int) -> list[Path]:
        return make_jpegs(Path(tempfile.mkdtemp(dir=folder)), min(4, count - 4 * i), 3000, 2000)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return [p for part in pool.map(four, range(-(-count // 4))) for p in part]


def timed_run(emb: Embedder, items: list[Path], batch: int) -> tuple[float, float, float, float]:
    """One pass: (pictures/s, the model's share of the wall clock, the rest of the batches' share, CPU ms a picture)."""
    spent = {"model": 0.0, "run": 0.0}
    run, model = emb._run, emb._model_batch

    def counted(key, fn):
        def wrapper(*args):
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent[key] += time.perf_counter() - start
        return wrapper

    emb._run, emb._model_batch = counted("run", run), counted("model", model)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        done = sum(not isinstance(r, ImageError) for _, r in emb.embed_stream(((p, p) for p in items), batch))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        del emb._run, emb._model_batch
    if done != len(items):
        raise SystemExit(f"{len(items) - done} pictures failed")
    return done / wall, spent["model"] / wall, (spent["run"] - spent["model"]) / wall, 1000 * cpu / done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workers", type=numbers, default=None, help="decode workers to try (default: 2,4,8, the "
                    "device's default, 16)")
    ap.add_argument("--batch-sizes", type=numbers, default=[32, 64])
    ap.add_argument("--configs", default="default,v1")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    auto = default_decode_workers(torch.device(args.device).type)
    workers = args.workers or sorted({2, 4, 8, auto, 16})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        paths = jpegs(Path(tmp), args.count)
        items = paths * 3
        print(f"torch {torch.__version__}, device {args.device}, {len(os.sched_getaffinity(0))} cores, default decode "
              f"workers {auto}; {len(paths)} JPEGs 3000×2000 made in {time.time() - start:.0f} s, {len(items)} a run")
        for name in args.configs.split(","):
            emb = Embedder(CONFIGS[name], device=args.device, decode_workers=2)
            timed_run(emb, items[:64], args.batch_sizes[0])   # warm-up
            print(f"\n{name} ({emb.config_id})")
            print(f"{'workers':>7} {'batch':>5} | {'pictures/s':>10} (each run) | main thread: model, rest of the batch, "
                  f"waiting | CPU ms a picture")
            for batch in args.batch_sizes:
                for count in workers:
                    emb.close()
                    emb.decode_workers = count
                    runs = [timed_run(emb, items, batch) for _ in range(args.repeats)]
                    rate, model, rest, cpu = (statistics.median(column) for column in zip(*runs))
                    print(f"{count:7d} {batch:5d} | {rate:10.1f} ({', '.join(f'{r[0]:.1f}' for r in runs)}) | "
                          f"{model:.2f}, {rest:.2f}, {1 - model - rest:.2f} | {cpu:.0f}")
            emb.close()

        emb = Embedder(DEFAULT_CONFIG, device=args.device)
        print("\ndecoding alone (read, decode at a reduced scale, resize, histograms), pictures/s")
        for count in workers:
            with ThreadPoolExecutor(count) as pool:
                start = time.perf_counter()
                list(pool.map(lambda p: emb._decode(p, str(p)), items))
                print(f"{count:7d} threads: {len(items) / (time.perf_counter() - start):.1f}")
        cpu = time.process_time()
        for p in paths:
            emb._load(p, str(p))
        load = (time.process_time() - cpu) / len(paths)
        picture = emb._load(paths[0], "first")
        cpu = time.process_time()
        for _ in range(50):
            emb._prepare(picture)
        prepare = (time.process_time() - cpu) / 50
        print(f"one thread, CPU ms a picture: decoding {1000 * load:.1f}, resize and histograms {1000 * prepare:.1f}")
        for batch in args.batch_sizes:
            ready = np.stack([emb._prepare(picture)[0]] * batch)
            for _ in range(3):
                emb._model_batch(ready)
            start = time.perf_counter()
            for _ in range(10):
                emb._model_batch(ready)
            sync()
            seconds = (time.perf_counter() - start) / 10
            print(f"the model and its head alone, batches of {batch}: {1000 * seconds:.1f} ms ({batch / seconds:.0f} "
                  f"pictures/s)")


if __name__ == "__main__":
    main()
