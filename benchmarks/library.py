"""A labelled benchmark set as a library, judged the way a library judges a configuration: its pictures written
as PNG files, a catalogue table with their labels, synced under the default (`artvec sync`) and under another
basis beside it (`artvec sync --no-activate`; with it, the rest of the shipped configuration that basis came with: the
previous default's ``clipart-scans-v1`` without the local binary patterns), then `artvec evaluate --label label --against ID` — each run
through the real CLI, against a real store.

It prints both configurations' figures, read back from the store (they are quality.py's for the same set), and
the verdict `--against` gives: the paired difference with its 95 % interval over resampled labels.

    python benchmarks/library.py                                    # the clip art, scanned and clean
    python benchmarks/library.py --sets scans --whitening clipart-v4 --keep /tmp/scans-library   # the one before

Each set gets a fresh ARTVEC_HOME (an embedded server of its own) in a temporary folder, removed afterwards
unless --keep names a folder. About 4 minutes a set of 518 pictures on 2 cores (two syncs).
Needs what quality.py needs for the named sets (the clip art: clipart.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sets  # noqa: E402
from artvec import whitening  # noqa: E402
from artvec.embedding import DEFAULT_CONFIG, EmbeddingConfig, shipped_with  # noqa: E402
from evaluate import artvec_command  # noqa: E402  (benchmarks/evaluate.py)


def artvec(env: dict, *args: str) -> str:
    """One artvec command as a user runs it; its stdout (a failure stops the benchmark with its stderr)."""
    done = subprocess.run(artvec_command() + list(args), env=env, capture_output=True, text=True, cwd=env["ARTVEC_HOME"])
    if done.returncode not in (0, 4):
        raise SystemExit(f"artvec {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def write_library(items: list, folder: Path, env: dict) -> None:
    """The pictures as PNG files under ``folder``/images and the catalogue table lib.pictures (id, image, label)."""
    import psycopg

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, item in enumerate(items, 1):
        item.load().save(images / f"{i:05d}.png")
        rows.append((i, f"{i:05d}.png", item.label))
    artvec(env, "init")
    with psycopg.connect(artvec(env, "db", "url").strip()) as connection:
        connection.execute("create schema if not exists lib")
        connection.execute("create table lib.pictures (id bigint primary key, image text not null, label text not null)")
        with connection.cursor().copy("copy lib.pictures (id, image, label) from stdin") as copy:
            for row in rows:
                copy.write_row(row)


def other_configuration(basis: str) -> tuple[EmbeddingConfig, dict]:
    """The configuration synced beside the default — the shipped one ``basis`` came with (the default's with that basis
    if none) — and the ARTVEC_EMBEDDING_* settings that make it."""
    other = shipped_with(basis) or dataclasses.replace(DEFAULT_CONFIG, whitening=basis)
    here, there = DEFAULT_CONFIG.to_dict(), other.to_dict()
    env = {f"ARTVEC_EMBEDDING_{key.upper()}": ",".join(value) if isinstance(value, (list, tuple)) else str(value) if value != "" else "none"
           for key, value in there.items() if value != here[key]}
    return other, env


def judge(name: str, items: list, basis: str, folder: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARTVEC_")}   # only these settings
    env.update({"ARTVEC_HOME": str(folder / "home"), "ARTVEC_CATALOGUE_TABLE": "lib.pictures",
                "ARTVEC_CATALOGUE_FACETS": "label", "ARTVEC_CATALOGUE_IMAGE_ROOT": str(folder / "images")})
    (folder / "home").mkdir(parents=True, exist_ok=True)    # also the commands' folder: no artvec.toml there
    write_library(items, folder, env)
    started = time.perf_counter()
    try:
        artvec(env, "sync")
        other, settings = other_configuration(basis)
        artvec({**env, **settings}, "sync", "--no-activate")
        seconds = time.perf_counter() - started
        other = other.config_id
        report = json.loads(artvec(env, "evaluate", "--label", "label", "--against", other, "--duplicates", "0", "--json"))
    finally:
        artvec(env, "db", "stop")
    return {"set": name, "seconds": seconds, **report["against"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="scans,clipart", help="comma-separated labelled sets of quality.py")
    ap.add_argument("--whitening", default="clipart-scans-v1",
                    help="the basis synced beside the default, with the rest of the configuration it shipped with "
                         "(clipart-scans-v1: the previous default's; clipart-v4: the one before)")
    ap.add_argument("--keep", type=Path, help="build the libraries here and keep them (default: a temporary folder)")
    args = ap.parse_args()
    names = [n for n in args.sets.split(",") if n]
    known = sets.SET_NAMES + ("clipart", "scans")
    unknown = set(names) - set(known)
    if unknown:
        ap.error(f"unknown sets {sorted(unknown)}; expected some of {', '.join(known)}")
    try:
        whitening.check_name(args.whitening)
    except ValueError as error:
        ap.error(str(error))
    if args.whitening in ("", "none", DEFAULT_CONFIG.whitening):
        ap.error(f"--whitening must name another basis than the default's ({DEFAULT_CONFIG.whitening})")
    labelled = sets.build(tuple(names), "faces")[0]
    root = args.keep or Path(tempfile.mkdtemp(prefix="artvec-library-"))
    results = []
    try:
        for name in names:
            print(f"{name}: {len(labelled[name])} pictures, syncing twice …", file=sys.stderr, flush=True)
            results.append(judge(name, labelled[name], args.whitening, root / name))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"default ({DEFAULT_CONFIG.config_id}) − basis {args.whitening}, from the store; "
          f"95 % interval over resampled labels")
    print(f"{'set':10} {'pictures':>8} {'labels':>6}  {'figure':8} {'default':>7} {'other':>7}  {'difference':>16}  verdict  "
          f"(two syncs)")
    for r in results:
        for key, f in r["figures"].items():
            verdict = "beyond the noise" if f["beyond_noise"] else "within the noise"
            interval = "n/a" if f["interval"] is None else f"{f['interval']:.3f}"
            print(f"{r['set']:10} {r['pictures']:>8} {r['labels']:>6}  {key:8} {f['this']:7.3f} {f['that']:7.3f}  "
                  f"{f['difference']:+7.3f} ± {interval}  {verdict}  ({r['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
