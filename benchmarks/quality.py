"""Retrieval quality of artvec's default embedding against baselines, on every public set, side by side.

Sets (benchmarks/sets.py; all reproducible offline):
- cards: the illustrated card decks of Debian's kdegames-card-data-kf5, labelled by deck family; by
  default the 12 face cards (J, Q, K) of each of the 16 decks, ``--cards all`` for all 52;
- tiles: the faces of 4 mahjongg tilesets (kdegames-mahjongg-data-kf5), labelled by tileset;
- icons: 40 standard icons drawn by 18 desktop icon themes, labelled by design family (15);
- chess: the same 12 chess pieces drawn by 25 piece sets (Debian's pychess), labelled by design family (23);
- stylised: scikit-image's pictures in 7 deterministic stylisations, labelled by stylisation;
- clipart: 518 drawings by 31 artists of the Open Clip Art Library
  (openclipart-svg), labelled by artist — different subjects by one hand, like a library's artists;
  scored apart from the near-duplicate task;
- scans: the same drawings printed and scanned (artvec.edits.print_and_scan: a paper tint
  each, the ink a little faded, uneven light, skew, blur, grain, JPEG), labelled by artist, scored apart too;
- portraits and portrait-scans (asked for by name: ``--sets portraits,portrait-scans``): 141 digital paintings by 4
  artists (Battle for Wesnoth's unit portraits, Debian's wesnoth-1.16-data; portraits.py), labelled by artist, and the
  same printed and scanned: the one set of paintings, scored apart; its noise resamples the peoples painted;
- constellations (asked for by name: ``--sets constellations``): 391 figures Stellarium draws over the sky by 14 hands
  or sources (manuscripts, a codex, a temple ceiling, a marble globe, and the people who painted the rest; Debian's
  stellarium-data; constellations.py), labelled by hand or source: the one set of historical illustrations, scored
  apart; its noise resamples the labels;
- card-patterns (asked for by name: ``--sets card-patterns``): the 12 court cards of 21 designs of AisleRiot's card
  themes (Debian's gnome-cards-data; card_patterns.py), most of them redrawn historical patterns, labelled by design:
  content held constant as on the cards, on figures of the 17th to 19th centuries; scored apart, the designs resampled;
- constellation-scans and card-pattern-scans (asked for by name): the same historical pictures printed and scanned as
  the clip art's scans are;
- near-duplicates: rescans, mats, crops, rescales, re-encodes and greyscale copies (artvec/edits.py)
  of scikit-image pictures, cards, tiles, icons and chess pieces, each to be found at rank 1 among every picture of the other sets;
- near-duplicates among drawings (with the clip art; column "a.dup1"): two edits of each clip-art drawing
  (the eight edits in turn), each to be found at rank 1 among the drawings: the nearest public twin of a
  library of illustrations by a few dozen artists;
- near-duplicates among the constellation art (with it; column "h.dup1", key ``skydup``): the same, two edits of each
  of its 391 pictures, each to be found at rank 1 among them: the twin on old illustrations.
Metrics: precision@10, mAP@R, nearest-neighbour accuracy, near-duplicate top-1, with 95 % cluster-bootstrap
half-widths (whole decks / whole source pictures resampled) and the paired difference to each baseline. The
verdict, "default ahead of every baseline on every set by more than the noise", asks for a lead beyond the noise on
every set and task named, except where the default and the baseline both are perfect (nothing to be ahead of: the
scikit-image originals' copies alone), and for a lead somewhere on each baseline.
The default (its combined vector, and its copy vector, which ``artvec duplicates`` and ``--by copy`` search
apart; and, for the paired difference, artvec 0.1's default, and with ``--previous`` the previous default) is computed
by artvec's own Embedder, exactly as `artvec sync` does; the baselines from one VGG pass at artvec 0.1's 224×224 input
(and one with random weights).
The row "more like this" is the default's vectors searched as ``artvec similar`` and the site's recipe search them
(``search.expand``): each query averaged with its 2 nearest pictures of the set first; its lead on the plain search
is printed after the table, then each baseline searched the same way and the expanded default's lead on it (like for
like: the expansion is a way of searching that any vector can have).
On each scanned set the last lines say how often each method's 10 nearest pictures lie on the query's own paper tint
(drawn for each picture whatever its hand, so anything above chance is found by the paper, not the hand), with the
default's excess over the content CNN, paired. ``--paper N`` prints every scan on one paper instead (the same draws
otherwise): what the paper's variation costs each method; ``--scan-steps`` makes the scans with some steps only.
On the portraits (most peoples painted by one hand, so a feature that knows the subject finds the hand) the last lines
take the subject out: each method's mAP@R with the query's own people left out, and within each people two hands
painted, with the chance (random vectors) and the default's lead on the content CNN.
The previous default (vgg19-style-b72a9dc7ebe1) is today's recipe without the local binary patterns, whitened by
clipart-scans-v1 (fitted like today's clipart-scans-v2 on the reference drawings and a print and scan of each); the one
before it (vgg19-style-452b0579749d, ``CLEAN_CONFIG``) had the basis clipart-v4, fitted on the clean drawings alone:
earlier runs pair it and the ones before, so they are not embedded again here.

Vectors are kept between runs (benchmarks/vector_cache.py, in ``~/.cache/artvec-bench/vectors``; ``--fresh`` neither uses
nor keeps them): a picture by a digest of its pixels, a configuration by its config_id and the code that computes it,
each chunk written as it is done. A run of the seven sets embeds about 3,900 pictures by two configurations and two
baseline passes, 1.3 s + 1.2 s a picture on 2 cores (2.7 hours); a killed run resumes where it stopped, and a second run
embeds only the timing sample: 96 pictures spread over the sets, which every configuration embeds afresh on every run,
taking turns, for the seconds per picture, and which must match the kept vectors (else the run stops and says so).

Needs: the Debian packages named in cards.py, tiles.py, icons.py, chess_pieces.py (and clipart.py), and pip install -e '.[dev]' (scikit-image).
Usage: python benchmarks/quality.py [--sets cards,tiles,icons,chess,stylised,clipart,scans[,portraits,portrait-scans]
       [,constellations,constellation-scans][,card-patterns,card-pattern-scans]] [--cards faces|all] [--threads N]
       [--device cpu|cuda] [--whitening NAME] [--previous] [--fresh] [--around] [--paper N] [--scan-steps STEPS]

The seven sets are the default (the clip art needs openclipart-svg; ``--sets cards,tiles,icons,chess,stylised``
leaves the drawings out). ``--whitening NAME`` also embeds the default's recipe with another shipped basis beside
the others, and prints its lead on each baseline. ``--around``, instead of the table: the default against itself with one
setting changed (``AROUND``: the whitening off, the colour weight, the input size and shape, RGB to the model, the
powers; each a setting the shipped basis fits at any value) and its style and colour parts alone, paired on every set
named (on the constellations and their copies 32 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lab  # noqa: E402
import sets  # noqa: E402
import vector_cache  # noqa: E402
from artvec import metrics  # noqa: E402
from artvec.edits import PAPERS, SCAN_STEPS, checked_scan_steps  # noqa: E402
from artvec.embedding import DEFAULT_CONFIG, SCANS_CONFIG as PREVIOUS, V1_CONFIG as V1, Embedder  # noqa: E402


def build_sets(names, cards_choice: str, cards_dir=None, paper: int | None = None, scan_steps=SCAN_STEPS):
    return lab.Bench(*sets.build(names, cards_choice, cards_dir, paper=paper, scan_steps=scan_steps))


#: what the Embedder's vectors depend on beside the configuration: kept vectors made by other code are not used
EMBEDDING_CODE = ("artvec/embedding.py", "artvec/weights.py", "artvec/whitening.py", "artvec/images.py")
#: what the baselines' blocks depend on: artvec's StyleHead and weights, and lab's picture preparation and extractor
BASELINE_CODE = ("artvec/embedding.py", "artvec/weights.py")
#: pictures embedded afresh by every configuration on every run, taking turns: the seconds per picture, and a check
#: that the kept vectors are what the code makes today
TIMING_SAMPLE = 96


def picture_digests(bench) -> list[str]:
    """Each picture of the bench by its pixels: how the kept vectors know it."""
    return [vector_cache.picture_digest(item.load()) for item in bench.items]


def embed_each(bench, configs: dict, device: str, chunk: int = 64, parts_of: str | None = None,
               fresh: bool = False, timing: int = TIMING_SAMPLE, digests: list[str] | None = None) -> tuple:
    """Every picture through artvec's Embedder for each configuration, exactly as `artvec sync` does:
    ({name: combined vectors}, {name: copy vectors, for configurations with a copy vector},
    {name: seconds per picture}, the {"style": …, "colour": …} parts of configuration ``parts_of``, {} without one).
    Vectors kept by an earlier run (vector_cache; none with ``fresh``) are used, the rest embedded chunk by chunk and
    kept as they come, so a killed run resumes. The seconds come from ``timing`` pictures spread over the sets, which
    every configuration embeds afresh taking turns (a shared machine's drift affects them alike) and which must match
    the kept ones. ``digests``: ``picture_digests(bench)``, if the caller has them already."""
    pictures = [item.load() for item in bench.items]
    digests = digests or [vector_cache.picture_digest(p) for p in pictures]
    stamp = vector_cache.code_stamp(EMBEDDING_CODE)
    kept = {name: vector_cache.VectorCache(config.config_id, stamp, fresh) for name, config in configs.items()}
    embedders = {name: Embedder(config, device=device) for name, config in configs.items()}
    try:
        for embedder in embedders.values():
            embedder.embed_images(pictures[:8], batch_size=8)  # warm-up
        sample = sorted(set(np.linspace(0, len(pictures) - 1, min(timing, len(pictures))).astype(int))) if timing else []
        seconds = time_and_check(embedders, kept, [pictures[i] for i in sample], [digests[i] for i in sample])
        missing = {name: [i for i in range(len(pictures)) if digests[i] not in kept[name]] for name in configs}
        total = sum(map(len, missing.values()))
        print("  kept (by earlier runs, and the timing sample): " + ", ".join(
            f"{name} {len(pictures) - len(m)}/{len(pictures)}" for name, m in missing.items()), file=sys.stderr, flush=True)
        started, done = time.monotonic(), 0
        for start in range(0, len(pictures), chunk):
            for name, embedder in embedders.items():
                rows = [i for i in missing[name] if start <= i < start + chunk]
                if rows:
                    kept[name].put([digests[i] for i in rows],
                                   fields(embedder.embed_images([pictures[i] for i in rows], batch_size=8)))
                done += len(rows)
            if total and ((start // chunk + 1) % 10 == 0 or start + chunk >= len(pictures)):  # runs take hours
                print(f"  embedded {done}/{total} (pictures × configurations not kept) "
                      f"({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
    finally:
        for embedder in embedders.values():
            embedder.close()
    vectors = {name: kept[name].get(digests, "combined") for name in configs}
    copies = {name: kept[name].get(digests, "copy") for name, config in configs.items() if config.copy_vector}
    parts = {part: kept[parts_of].get(digests, part) for part in ("style", "colour")} if parts_of else {}
    return vectors, copies, seconds, parts


def fields(vectors: list) -> dict[str, np.ndarray]:
    """What is kept of each picture's vectors: the combined vector, its style and colour parts, the copy vector."""
    out = {name: np.stack([getattr(v, name) for v in vectors]) for name in ("combined", "style", "colour")}
    if vectors and vectors[0].copy is not None:
        out["copy"] = np.stack([v.copy for v in vectors])
    return out


def time_and_check(embedders: dict, kept: dict, pictures: list, digests: list, batch: int = 8) -> dict:
    """Seconds per picture of each configuration on ``pictures``, the configurations taking turns batch by batch;
    each vector made here replaces a kept one only if they agree (else the kept vectors are stale: an error)."""
    seconds = dict.fromkeys(embedders, 0.0)
    for start in range(0, len(pictures), batch):
        for name, embedder in embedders.items():
            t = time.perf_counter()
            made = fields(embedder.embed_images(pictures[start:start + batch], batch_size=batch))
            seconds[name] += time.perf_counter() - t
            batch_digests = digests[start:start + batch]
            for j, digest in enumerate(batch_digests):
                if digest in kept[name] and np.abs(kept[name].rows[digest]["combined"] - made["combined"][j]).max() > 1e-3:
                    raise SystemExit(f"{kept[name].folder}: a kept vector differs from the one made now; "
                                     "delete the folder or run with --fresh")
            new = [j for j, digest in enumerate(batch_digests) if digest not in kept[name]]
            kept[name].put([batch_digests[j] for j in new], {k: a[new] for k, a in made.items()})
    return {name: total / max(len(pictures), 1) for name, total in seconds.items()}


def baseline_stamp() -> str:
    """The stamp of the code the baselines' blocks come from: taken when the run starts, since it is read from the
    files, which may be edited while the run embeds for hours."""
    return vector_cache.code_stamp(BASELINE_CODE, (lab.prepare, lab.trim_margin, lab.outer_frame, lab.variant_config,
                                                   lab.head_config, lab.Extractor, lab.extract), (lab.HEADS,))


def baseline_blocks(bench, digests: list[str], name: str, stamp: str, make_extractor, keep: tuple, fresh: bool,
                    chunk: int = 64) -> dict:
    """``lab.extract`` at artvec 0.1's 224×224 input for every picture, kept between runs like the Embedder's vectors
    (``digests``: ``picture_digests(bench)``; ``keep``: the blocks the baselines use; ``stamp``: ``baseline_stamp()``)."""
    kept = vector_cache.VectorCache(name, stamp, fresh)
    missing = [i for i, d in enumerate(digests) if d not in kept]
    extractor = make_extractor() if missing else None
    started = time.monotonic()
    for n, start in enumerate(range(0, len(missing), chunk)):
        rows = missing[start:start + chunk]
        blocks = lab.extract([bench.items[i] for i in rows], "sq224", extractor, log_every=0)
        kept.put([digests[i] for i in rows], {k: blocks[k] for k in keep})
        if (n + 1) % 10 == 0 or start + chunk >= len(missing):
            print(f"  {name}: {start + len(rows)}/{len(missing)} pictures not kept ({time.monotonic() - started:.0f}s)",
                  file=sys.stderr, flush=True)
    return {k: kept.get(digests, k) for k in keep}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(sets.SET_NAMES + sets.APART), help="labelled sets to score (comma-separated)")
    ap.add_argument("--cards", default="faces", choices=["faces", "all"])
    ap.add_argument("--cards-dir", default=None, help="pre-rendered cards (deck-H/card.png|jpg) instead of the cache")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--around", action="store_true",
                    help="instead: the default against itself with one setting changed (each a setting a basis fits "
                         "at any value) and its parts alone, paired on every set")
    ap.add_argument("--previous", action="store_true",
                    help="also embed the previous default (its paired difference; another 45 minutes on 2 cores)")
    ap.add_argument("--fresh", action="store_true",
                    help="compute every vector afresh, neither using nor keeping those of earlier runs")
    ap.add_argument("--whitening", default=None, metavar="NAME",
                    help="also embed the default's recipe with another shipped basis "
                         "and say whether it too is ahead of every baseline")
    ap.add_argument("--paper", type=int, default=None, choices=range(len(PAPERS)), metavar="N",
                    help="every scanned set printed on one paper (the Nth of artvec.edits.PAPERS, 0-4) instead of each "
                         "picture on its own: what the paper's variation costs a method")
    ap.add_argument("--scan-steps", default=",".join(SCAN_STEPS), metavar="STEPS",
                    help=f"the scanned sets made with these steps of a print and scan only, the same draws (comma-separated, "
                         f"of {','.join(SCAN_STEPS)}; without tint the paper stays white): what each step costs a method")
    args = ap.parse_args()
    try:
        steps = checked_scan_steps([step for step in args.scan_steps.split(",") if step])
    except ValueError as e:
        ap.error(f"--scan-steps {args.scan_steps!r}: {e}")
    if args.whitening:
        from artvec import whitening

        if args.whitening not in whitening.available():
            ap.error(f"--whitening {args.whitening!r}: not a basis shipped with artvec ({', '.join(whitening.available())})")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    stamp = baseline_stamp()
    bench = build_sets(args.sets.split(","), args.cards, Path(args.cards_dir) if args.cards_dir else None, args.paper,
                       steps)
    sizes = ", ".join(f"{name} {len(items)} ({len({i.label for i in items})} labels)" for name, items in bench.labelled.items())
    print(f"sets: {sizes}; {len(bench.dups.queries)} near-duplicate queries among {bench.s_db.stop} pictures; "
          f"built in {time.time() - t0:.0f}s", flush=True)

    if args.around:
        around_the_default(bench, args.device, args.fresh)
        return
    results, dims = {}, {}
    embedded = dict(EMBEDDED) | (PREVIOUS_EMBEDDED if args.previous else {})
    if args.whitening:
        embedded["variant"] = (f"artvec default, basis {args.whitening}", replace(DEFAULT_CONFIG, whitening=args.whitening))
    digests = picture_digests(bench)
    vectors, copies, speed, _ = embed_each(bench, {key: config for key, (_, config) in embedded.items()}, args.device,
                                           fresh=args.fresh, digests=digests)
    for key, (name, _) in embedded.items():
        results[name] = bench.score(vectors[key])
        dims[name] = vectors[key].shape[1]
    results[EXPANDED] = bench.score(vectors["default"], expand=SEARCH_EXPAND)
    dims[EXPANDED] = vectors["default"].shape[1]
    results[COPY] = bench.score(copies["default"])
    dims[COPY] = copies["default"].shape[1]
    print("embedded: " + ", ".join(f"{key} {speed[key] * 1000:.0f} ms/picture" for key in speed), flush=True)
    B = baseline_blocks(bench, digests, "baselines-imagenet-sq224", stamp,
                        lambda: lab.Extractor(args.device, heads=(), literal=True), ("lit", "raw8", "c8", "gap"), args.fresh)
    R = baseline_blocks(bench, digests, "baselines-random-sq224", stamp,
                        lambda: lab.Extractor(args.device, weights="random", heads=("cs256",)), ("cs256", "c8"), args.fresh)
    baselines = {
        "baseline: colour histogram alone (8³)": B["c8"],
        "baseline: literal recipe (raw Gram relu3_1 + raw counts)": np.concatenate([B["lit"], B["raw8"]], 1),
        "baseline: random weights (artvec 0.1's recipe)": lab.with_colour(lab.style(R, "cs256"), R, 1.0),
        "baseline: content CNN (VGG relu5_4 avg-pooled)": lab.l2n(B["gap"]),
    }
    baselines = {name: baseline.astype(np.float32) for name, baseline in baselines.items()}
    for name, baseline in baselines.items():
        results[name] = bench.score(baseline)
        dims[name] = baseline.shape[1]
    report(bench, results, dims)
    if "drawdup" in bench.within:
        print("the default's misses among the drawings: " + drawing_misses(bench, vectors["default"]))
    ahead_of_baselines(bench, results, EXPANDED)
    expanded_minus_plain(bench, results)
    like_for_like(bench, results, baselines)
    methods = {"artvec default": vectors["default"], "artvec 0.1 default": vectors["v1"], **baselines}
    paper_shared(bench, methods)
    subjects_apart(bench, methods)
    if args.whitening:
        ahead_of_baselines(bench, results, embedded["variant"][0])
    print(f"\nseconds per picture (embedding {TIMING_SAMPLE} decoded pictures spread over the sets, {args.device}, the "
          f"{len(speed)} configurations taking turns): " + ", ".join(
              f"{embedded[key][0]} {speed[key]:.3f}" + (f" (ratio {speed['default'] / speed[key]:.2f})" if key != "default" else "")
              for key in speed) + f"; total {time.time() - t0:.0f}s")


COPY = "the default's copy vector (searched apart)"
#: "more like this" as artvec searches (``search.expand``): each query averaged with its 2 nearest pictures first
SEARCH_EXPAND = 2
EXPANDED = f"artvec default, more like this (query + {SEARCH_EXPAND} nearest)"
#: the configurations embedded by artvec's Embedder: key -> (the name the tables print, configuration)
EMBEDDED = {"default": ("artvec default", DEFAULT_CONFIG), "v1": ("artvec 0.1 default", V1)}
#: with --previous
PREVIOUS_EMBEDDED = {"previous": ("previous default (no local binary patterns)", PREVIOUS)}


#: --around: the default with one setting changed, each one a whitening basis fits at any value (``_NOT_LAYOUT``)
AROUND = {
    "unwhitened (whitening none)": dict(whitening="none"),
    "colour weight 0.3 (0.6)": dict(colour_weight=0.3),
    "colour weight 0.9": dict(colour_weight=0.9),
    "input 192² (256²)": dict(image_size=192),
    "input 320²": dict(image_size=320),
    "a square input (the default keeps the aspect)": dict(resize="square"),
    "model sees RGB (luminance)": dict(style_input="rgb"),
    "no power on the parts (0.85)": dict(style_power=1.0, colour_power=1.0),
}


def around_the_default(bench, device: str, fresh: bool = False) -> None:
    """The default against itself with one setting changed, and its style and colour parts alone (what ``--by style``
    and ``--by colour`` search), paired on every set and the near-duplicate tasks."""
    configs = {"default": DEFAULT_CONFIG} | {name: replace(DEFAULT_CONFIG, **change) for name, change in AROUND.items()}
    vectors, _, speed, parts = embed_each(bench, configs, device, parts_of="default", fresh=fresh)
    default = bench.score(vectors["default"])
    figures = [f"{key} {default[key].ap_at_r.mean():.3f}±{bench.half_width(default, key):.3f}" for key in bench.names]
    figures += [f"{task} {default[task].mean():.3f}" for task in bench.tasks]
    print(f"\n{'the default (mAP@R; dup top-1)':46s} " + "  ".join(figures) + f"  {speed['default'] * 1000:.0f} ms/picture")
    rows = {name: bench.score(vectors[name]) for name in AROUND}
    rows |= {f"its {part} part alone (--by {part})": bench.score(x) for part, x in parts.items()}
    for name, r in rows.items():
        ms = f"  {speed[name] * 1000:.0f} ms/picture" if name in speed else ""
        print(f"{name[:46]:46s} " + "  ".join(lead(key, *bench.paired(r, default, key)) for key in bench.names + bench.tasks) + ms)


def report(bench, results: dict, dims: dict) -> bool:
    """The table, the noise, the paired differences and the worst labels; whether the default is ahead of
    every baseline on every set by more than the noise."""
    print("\n" + lab.header(bench).replace("descriptor", "method").replace("input   ", ""))
    for name, r in results.items():
        print(lab.row(bench, name, "", r, dims[name]).replace("         ", " ", 1))
    default = results["artvec default"]
    nearest_neighbour_table(bench, results)
    print("\nnoise (95 % cluster bootstrap of the default's mAP@R): " + ", ".join(
        f"{name} ±{bench.half_width(default, name):.3f}" for name in bench.names))
    ahead_everywhere = ahead_of_baselines(bench, results, "artvec default", every=True)
    copy_vector = results.get(COPY)
    if copy_vector is not None:  # what artvec duplicates and --by copy find: copies, not pictures alike in style
        paired = {task: bench.paired(copy_vector, default, task) for task in bench.tasks}
        print("near-duplicates by the copy vector, top-1 (copy vector minus the combined vector, paired): " + ", ".join(
            f"{task} {copy_vector[task].mean():.3f} ({diff:+.3f}±{half:.3f})" for task, (diff, half) in paired.items()))
    print(f"default ahead of every baseline on every set by more than the noise: {ahead_everywhere}")
    old = results["artvec 0.1 default"]
    for key in bench.names:
        labels = np.array(bench.labels[key])[default[key].index]
        rows = sorted((default[key].ap_at_r[labels == f].mean(), old[key].ap_at_r[labels == f].mean(), f)
                      for f in np.unique(labels))
        print(f"worst labels of {key} (mAP@R, artvec 0.1 beside): " + ", ".join(
            f"{fam} {new:.2f} ({was:.2f})" for new, was, fam in rows[:5]))
    print("near-duplicate top-1 by edit (default): " + by_edit(bench, default, "dup"))
    for task, name in lab.WITHIN.items():
        if task in bench.within:
            print(f"near-duplicates among the {name} alone, top-1 by edit (default): " + by_edit(bench, default, task))
    print("near-duplicate top-1 by the original's set (default): " + ", ".join(
        f"{name}={default['dup'][bench.dup_sources == name].mean():.2f} ({int(np.sum(bench.dup_sources == name))})"
        for name in dict.fromkeys(bench.dup_sources)))
    if copy_vector is not None:
        print("by the copy vector, top-1 by edit: " + by_edit(bench, copy_vector, "dup") + "; by the original's set: "
              + ", ".join(f"{name}={copy_vector['dup'][bench.dup_sources == name].mean():.2f}"
                          for name in dict.fromkeys(bench.dup_sources)))
        for task, name in lab.WITHIN.items():
            if task in bench.within:
                print(f"by the copy vector among the {name} alone, top-1 by edit: " + by_edit(bench, copy_vector, task))
    return ahead_everywhere


def ahead_of_baselines(bench, results: dict, name: str, every: bool = False, title: str = "") -> bool:
    """Prints ``name`` (said as ``title`` if given) minus each baseline (with ``every``, minus every other method) on
    every set, paired; whether it is ahead of every baseline on every set by more than the noise (said here unless
    ``every``: report says it)."""
    title = title or ('default' if name == 'artvec default' else name)
    print(f"{title} minus each (paired, 95 % cluster bootstrap); "
          "'*' = ahead by more than the noise, '-' = behind:")
    ahead_everywhere = True
    ours = results[name]
    for other, r in results.items():
        if other == name or not (every or other.startswith("baseline")):
            continue
        parts, ahead_somewhere = [], False
        for key in bench.names + bench.tasks:
            diff, half = bench.paired(ours, r, key)
            both_perfect = perfect(ours, key) and perfect(r, key)
            parts.append(lead(key, diff, half) if not both_perfect else f"{key} both perfect  ")
            ahead_everywhere &= diff - half > 0 or both_perfect or not other.startswith("baseline")
            ahead_somewhere |= diff - half > 0
        ahead_everywhere &= ahead_somewhere or not other.startswith("baseline")
        print(f"  vs {other[:40]:40s} " + "  ".join(parts))
    if not every:
        print(f"{title} ahead of every baseline on every set by more than the noise: {ahead_everywhere}")
    return ahead_everywhere


def expanded_minus_plain(bench, results: dict) -> None:
    """What the query expansion of ``artvec similar`` and the site's "more like this" adds to the default's vectors
    searched plainly (``ORDER BY embedding <-> q``), paired on every set and task, and on precision@10."""
    plain, expanded = results["artvec default"], results[EXPANDED]
    print(f"more like this, the query expanded by its {SEARCH_EXPAND} nearest, minus the plain search (mAP@R; "
          "top-1 on the copies): " + "  ".join(lead(key, *bench.paired(expanded, plain, key)) for key in bench.names + bench.tasks))
    print("  the same, precision@10: " + "  ".join(
        lead(key, *bench.paired(expanded, plain, key, "precision_at_k")) for key in bench.names))


def like_for_like(bench, results: dict, baselines: dict) -> None:
    """The expansion is a way of searching, open to any vector: each baseline searched the same way (its query
    averaged with its 2 nearest), and the expanded default's lead on it, so that no lead is the search's alone."""
    expanded = {EXPANDED: results[EXPANDED]}
    for name, baseline in baselines.items():
        expanded[f"{name}, more like this"] = bench.score(baseline, expand=SEARCH_EXPAND)
    print(f"each baseline searched as artvec searches too (its query + {SEARCH_EXPAND} nearest), mAP@R: " + "; ".join(
        f"{name.removeprefix('baseline: ')} " + " ".join(f"{r[key].ap_at_r.mean():.3f}" for key in bench.names)
        for name, r in expanded.items() if name != EXPANDED))
    ahead_of_baselines(bench, expanded, EXPANDED, title="more like this on both sides: the expanded default")


def content_cnn(methods: dict) -> str:
    """The name of the content CNN baseline among ``methods``, the one the default's lead is taken on."""
    return next(name for name in methods if "content CNN" in name)


def per_method(figures: dict) -> str:
    """``figures`` (method name -> one figure) as one printed list, the baselines without their prefix."""
    return ", ".join(f"{method.removeprefix('baseline: ')} {figure:.3f}" for method, figure in figures.items())


def paper_shared(bench, methods: dict, k: int = 10) -> None:
    """On each scanned set, how often a method's ``k`` nearest pictures were printed on the query's paper tint. The
    tint is drawn for each picture, whatever its hand, so above chance a method finds pictures by their paper
    (with ``--paper``, one for all: nothing to print). It is precision@k with the paper for the label, as ``artvec
    evaluate --label`` measures it for a library's own facets (a source, a scanning campaign)."""
    cnn = content_cnn(methods)
    for name, sl in bench.slices.items():
        papers = np.array([it.paper for it in bench.labelled[name]])
        if papers[0] is None or len(set(papers)) < 2:
            continue
        shares = {method: metrics.retrieval(x[sl], papers, k=k) for method, x in methods.items()}
        default, content = shares["artvec default"], shares[cnn]
        chance = metrics.chance_precision(papers, default.index)
        default_minus_cnn = metrics.paired_difference(default.precision_at_k, content.precision_at_k,
                                                      bench.groups[name][default.index])
        print(f"{name}: the {k} nearest on the query's own paper tint (chance {chance:.3f}): "
              + per_method({method: share.precision_at_k.mean() for method, share in shares.items()})
              + f"; the default minus the content CNN {lab.difference(*default_minus_cnn)}")


def ap_apart(x: np.ndarray, labels, groups) -> np.ndarray:
    """AP@R of each picture with every other picture of its own group (the subject painted) left out of both the
    ranking and R: is the hand found in what else it painted? NaN where no picture of the label lies outside the
    query's group. Exact, over every pair: for sets of a few hundred pictures."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    d = metrics.squared_distances(x, x)
    d[groups[:, None] == groups[None, :]] = np.inf
    out = np.full(len(x), np.nan)
    for i in range(len(x)):
        relevant = (labels == labels[i]) & np.isfinite(d[i])
        r = int(relevant.sum())
        if r:
            out[i] = metrics.average_precision(relevant[np.argsort(d[i], kind="stable")[:r]])
    return out


def chance_ap(score, n: int, draws: int = 20) -> float:
    """mAP@R by chance: ``score`` (vectors -> per-query AP@R) of ``n`` seeded random vectors, averaged over draws."""
    rng = np.random.default_rng(0)
    return float(np.mean([np.nanmean(score(rng.normal(size=(n, 8)))) for _ in range(draws)]))


def subjects_apart(bench, methods: dict) -> None:
    """On the portraits, where most peoples are painted by one hand, a feature that knows an orc finds the orcs' painter:
    each method's mAP@R with the query's own people left out (the hand found across subjects; noise: the peoples
    resampled), and within each people two hands painted (the subject held, the hand to tell; the queries resampled)."""
    cnn = content_cnn(methods)
    for name in sets.PAINTED:  # their groups are the peoples painted, the humans and the undead by two hands
        if name not in bench.slices:
            continue
        sl, labels, groups = bench.slices[name], np.array(bench.labels[name]), bench.groups[name]
        apart = {method: ap_apart(x[sl], labels, groups) for method, x in methods.items()}
        scored = ~np.isnan(apart["artvec default"])
        lead_apart = metrics.paired_difference(apart["artvec default"][scored], apart[cnn][scored], groups[scored])
        chance = chance_ap(lambda x: ap_apart(x, labels, groups), len(labels))
        print(f"{name}: mAP@R with the query's own people left out (chance {chance:.3f}): "
              + per_method({method: np.nanmean(ap) for method, ap in apart.items()})
              + f"; the default minus the content CNN {lab.difference(*lead_apart)}")
        for people in sorted(set(groups)):
            members = np.flatnonzero(groups == people)
            hands = sorted(set(labels[members]))
            if len(hands) < 2:
                continue
            within = {method: metrics.retrieval(x[sl][members], labels[members]) for method, x in methods.items()}
            lead_within = metrics.paired_difference(within["artvec default"].ap_at_r, within[cnn].ap_at_r)
            chance = chance_ap(lambda x: metrics.retrieval(x, labels[members]).ap_at_r, len(members))
            print(f"  within the {people} ({', '.join(f'{h} {int((labels[members] == h).sum())}' for h in hands)}), "
                  f"mAP@R (chance {chance:.3f}): " + per_method({method: r.ap_at_r.mean() for method, r in within.items()})
                  + f"; the default minus the content CNN {lab.difference(*lead_within)} (the queries resampled)")


def nearest_neighbour_table(bench, results: dict) -> None:
    """Nearest-neighbour accuracy (does the single nearest picture carry the query's label?) of every method on
    every set, with the default's 95 % cluster-bootstrap half-width and its paired lead on each baseline."""
    print("\nnearest-neighbour accuracy (the nearest picture carries the query's label):")
    print(f"{'method':58s}" + "".join(f" {name[:8]:>8s}" for name in bench.names))
    for name, r in results.items():
        print(f"{name[:58]:58s}" + "".join(f" {r[key].nn_correct.mean():8.3f}" for key in bench.names))
    default = results["artvec default"]
    print("  the default's noise: " + ", ".join(
        f"{key} ±{bench.half_width(default, key, 'nn_correct'):.3f}" for key in bench.names))
    for name, r in results.items():
        if name.startswith("baseline"):
            print(f"  default minus {name.removeprefix('baseline: ')[:38]:38s} " + "  ".join(
                lead(key, *bench.paired(default, r, key, "nn_correct")) for key in bench.names))


def perfect(r: dict, key: str) -> bool:
    """Whether a method leaves nothing to gain on a set or task (mAP@R 1, or every copy found first): where two
    methods both are, neither can be ahead, and the verdict does not ask it there (the scikit-image originals' 80 copies
    among 20 pictures, when no set of the near-duplicate task is named, are such a task); it asks for a lead elsewhere."""
    scores = r[key] if isinstance(r[key], np.ndarray) else r[key].ap_at_r
    return bool(np.all(scores == 1))


def lead(key: str, diff: float, half: float) -> str:
    """One set's paired difference: '*' when ahead by more than the noise, '-' when behind by more."""
    return f"{key} {diff:+.3f}±{half:.3f}{'*' if diff - half > 0 else '-' if diff + half < 0 else ' '}"


def drawing_misses(bench, x: np.ndarray) -> str:
    """Where the copies of drawings that ``x`` misses land: on another drawing by the same artist (often a
    recoloured or redrawn variant of the original, which a copy may resemble more), and the original's rank."""
    _, queries, target = bench.within["drawdup"]
    d = metrics.Database(x[bench.slices["clipart"]]).squared(x[queries])
    rank = (d < d[np.arange(len(d)), target][:, None]).sum(1) + 1
    missed = rank > 1
    labels = np.array(bench.labels["clipart"])
    same_artist = labels[d[missed].argmin(1)] == labels[target[missed]]
    return (f"{int(missed.sum())} of {len(d)}, {int(same_artist.sum())} of them on another drawing by the same "
            f"artist; the original ranks second in {int((rank == 2).sum())} (top-2 {np.mean(rank <= 2):.3f}), "
            f"at worst {int(rank.max())}")


def by_edit(bench, result: dict, task: str) -> str:
    """Near-duplicate top-1 of ``task`` ("dup", or a task within one set: "drawdup", "skydup") per kind of edit."""
    kinds = np.array((bench.dups if task == "dup" else bench.within[task][0]).kinds)
    return ", ".join(f"{k}={result[task][kinds == k].mean():.2f}" for k in sets.EDITS)


if __name__ == "__main__":
    main()
