"""Where the style head's time goes: the Gram products of the default's layers, computed each way this machine
offers, in CPU ms a picture, and the matrix-product rates behind them.

The activations are the model's own on 8 scikit-image pictures at the default's input (320×208 for a 3:2 picture),
laid out as the model gives them on a CPU (channels last). artvec computes the Grams with PyTorch's ``bmm`` (MKL in
the PyPI wheels), the blocks on and above the diagonal only (``StyleHead._upper_gram``). The other rows were
measured against it and are not used (docs/embedding.md, *Throughput benchmark*):

  full bmm                    the whole product
  numpy (OpenBLAS)            numpy's matmul on the same memory, blocks on and above the diagonal; set
                              OPENBLAS_CORETYPE (e.g. SkylakeX) before the run for other kernels than the detected ones
  oneDNN conv incl. transpose the Gram as a convolution whose kernel is as large as the picture, through oneDNN (which
                              runs the model's convolutions), on activations laid out channel by channel: the
                              transpose from channels last, then the product
  bfloat16 bmm                oneDNN's bfloat16 product with its casts: a different embedding (its largest error is printed)

Usage: python benchmarks/gram.py [--threads 2] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artvec.embedding import DEFAULT_CONFIG, Embedder, StyleHead  # noqa: E402
from artvec.memory import keep_freed_memory  # noqa: E402


def cpu_ms(run, pictures: int, repeats: int) -> float:
    """Median CPU ms (every thread) a picture of ``run``, after one warm-up."""
    run()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append((time.process_time() - start) / pictures * 1000)
    return statistics.median(times)


def model_input(embedder: Embedder, count: int = 8) -> np.ndarray:
    import skimage.data as data
    from PIL import Image

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "hubble_deep_field", "cat"]
    pictures = [Image.fromarray(getattr(data, names[i % len(names)])()).convert("RGB").resize((600, 400))
                for i in range(count)]
    return np.stack([embedder._prepare(p)[0] for p in pictures])


def numpy_upper(a) -> np.ndarray:
    """The upper blocks as artvec takes them, by numpy's BLAS, on the same (channels-last) memory."""
    n, c, p = a.shape
    rows = a.permute(0, 2, 1).numpy()          # N × P × C, a view
    gram = np.empty((n, c, c), np.float32)
    for start in range(0, c, StyleHead.gram_block):
        block = slice(start, start + StyleHead.gram_block)
        np.matmul(rows[:, :, block].transpose(0, 2, 1), rows[:, :, start:], out=gram[:, block, start:])
    return gram / p


def onednn_conv(feats):
    import torch.nn.functional as F

    first = feats.contiguous()                 # channels last -> channel by channel
    n, c, h, w = first.shape
    return [F.conv2d(first[i][:, None], first[i][:, None]).view(c, c) / (h * w) for i in range(n)]


def bfloat16(a):
    import torch

    b = a.bfloat16()
    return torch.bmm(b, b.transpose(1, 2)).float() / a.shape[2]


def gflops(run, flops: float, repeats: int = 3) -> float:
    run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return flops / ((time.perf_counter() - start) / repeats) / 1e9


def product_rates() -> list[tuple[str, float]]:
    """GFLOP/s of one 2048² product on one thread, by each library."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a = torch.randn(2048, 2048)
    flops = 2 * 2048**3
    rates = [("PyTorch mm (its BLAS)", gflops(lambda: a @ a, flops))]
    linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if linear is not None:
        rates.append(("oneDNN inner product", gflops(lambda: linear(a, a, None, "none", [], ""), flops)))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    x = a.numpy()
    if threadpool_limits is not None:
        with threadpool_limits(1, "blas"):
            rates.append(("numpy matmul (its BLAS)", gflops(lambda: x @ x, flops)))
    torch.set_num_threads(threads)
    return rates


def numpy_blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (no threadpoolctl)"
    found = [f"{i['internal_api']} {i.get('architecture', '')}".strip() for i in threadpool_info() if i["user_api"] == "blas"]
    return ", ".join(dict.fromkeys(found)) or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    import torch

    keep_freed_memory()
    embedder = Embedder(DEFAULT_CONFIG, threads=args.threads)
    with torch.inference_mode():
        batch = model_input(embedder)
        maps = embedder.feature_maps(batch)
        layers = list(embedder.head.layers)
        count = len(next(iter(maps.values())))
        flat = {layer: maps[layer].flatten(2).float() for layer in layers}
        methods = {
            "artvec: upper-block bmm": lambda layer: StyleHead._upper_gram(flat[layer]),
            "full bmm": lambda layer: StyleHead._gram(flat[layer]),
            "numpy (OpenBLAS)": lambda layer: numpy_upper(flat[layer]),
            "oneDNN conv incl. transpose": lambda layer: onednn_conv(maps[layer]),
            "bfloat16 bmm": lambda layer: bfloat16(flat[layer]),
        }
        table = {name: [cpu_ms(lambda: run(layer), count, args.repeats) for layer in layers]
                 for name, run in methods.items()}
        error = max(float(((bfloat16(flat[layer]) - StyleHead._gram(flat[layer])).abs().max()
                           / StyleHead._gram(flat[layer]).abs().max())) for layer in layers)
        forward = cpu_ms(lambda: embedder.feature_maps(batch), count, 3)
        head = cpu_ms(lambda: embedder.head(maps), count, args.repeats)
    shapes = ", ".join(f"{layer} {tuple(flat[layer].shape[1:])}" for layer in layers)
    print(f"torch threads {torch.get_num_threads()}; numpy's BLAS: {numpy_blas()}; {count} pictures; "
          f"channels × positions: {shapes}")
    row = "{:30s}" + " {:>9s}" * (len(layers) + 1)
    print(row.format("CPU ms a picture", *layers, "all"))
    for name, values in table.items():
        print(row.format(name, *(f"{v:.2f}" for v in values), f"{sum(values):.2f}"))
    print(f"for scale: the model's forward {forward:.0f}, the whole style head {head:.1f} CPU ms a picture")
    print(f"bfloat16: largest error {error:.1e} of the largest Gram element (float32: ~1e-7)")
    print("\none 2048² product on one thread, GFLOP/s")
    for name, rate in product_rates():
        print(f"  {name:30s} {rate:6.0f}")


if __name__ == "__main__":
    main()
