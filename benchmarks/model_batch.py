"""How many pictures the model should take at once on a CPU: ``artvec sync`` hands the embedder 32 pictures
(``sync.batch_size``, one committed batch), grouped by shape; the Embedder runs them through the model at most
``CPU_MODEL_BATCH`` (8) at a time. This compares that with whole groups of up to 32, interleaved in one process:
the whole path on 3000×2000 JPEGs of one shape, and decoded pictures of five shapes; milliseconds and minor page
faults a picture (medians of the repeats).

Usage: .venv/bin/python benchmarks/model_batch.py [--count 64] [--repeats 4] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import decoded_pictures, make_jpegs  # noqa: E402

from artvec.embedding import BATCH_SIZE, CPU_MODEL_BATCH, DEFAULT_CONFIG, Embedder  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="pictures handed to the embedder at once (sync's)")
    args = ap.parse_args()
    embedder = Embedder(DEFAULT_CONFIG)
    mixed = decoded_pictures(args.count)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.count, 3000, 2000)

        def whole():
            for _ in embedder.embed_stream(((p, p) for p in paths), args.batch_size):
                pass

        def decoded():
            embedder.embed_images(mixed, batch_size=args.batch_size)

        arms = {(what, model_batch): fn for what, fn in (("whole path, 3000×2000 JPEGs", whole),
                                                           ("decoded pictures, 5 shapes", decoded))
                for model_batch in (args.batch_size, CPU_MODEL_BATCH)}
        times = {arm: [] for arm in arms}
        faults = {arm: [] for arm in arms}
        for repeat in range(args.repeats + 1):   # the first round warms up
            for arm, fn in arms.items():
                embedder.model_batch = arm[1]
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t = time.perf_counter()
                fn()
                if repeat:
                    times[arm].append((time.perf_counter() - t) / args.count * 1000)
                    faults[arm].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / args.count)
    embedder.close()
    print(f"{args.count} pictures handed over {args.batch_size} at a time; medians of {args.repeats} repeats\n")
    print(f"{'':32s} {'model batch':>11s} {'ms a picture':>13s} {'page faults a picture':>22s}")
    for arm in arms:
        print(f"{arm[0]:32s} {arm[1]:11d} {statistics.median(times[arm]):13.0f} {statistics.median(faults[arm]):22.0f}")
    for what in dict.fromkeys(a[0] for a in arms):
        ratio = statistics.median(times[(what, args.batch_size)]) / statistics.median(times[(what, CPU_MODEL_BATCH)])
        print(f"{what}: model batch {args.batch_size} takes {ratio:.2f}× the time of {CPU_MODEL_BATCH}")


if __name__ == "__main__":
    main()
