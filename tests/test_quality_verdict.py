"""``benchmarks/quality.py``'s verdict — is the default ahead of every baseline on every set and task by more than the
noise? — on a small bench of real pictures and their real edits, scored from vectors made to be right or wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import lab  # noqa: E402
import quality  # noqa: E402
import sets  # noqa: E402
from artvec import metrics  # noqa: E402


def bench() -> lab.Bench:
    """Eight labels of four pictures each (a set scored apart, resampled by label), two originals with their eight
    edits each (the near-duplicate task)."""
    rng = np.random.default_rng(0)
    pictures = [sets.Item(key=f"p{i}", label=f"L{i // 4}", group=f"L{i // 4}",
                          image=Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
                for i in range(32)]
    originals = [sets.Item(key=f"o{i}", label="original", group=f"o{i}",
                           image=Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))) for i in range(2)]
    return lab.Bench({"card-patterns": pictures}, originals, [], sets.near_duplicates(originals))


def vectors(b: lab.Bench, right_labels: float, right_copies: bool, seed: int) -> np.ndarray:
    """A vector per picture of the bench: near its label's centre with weight ``right_labels`` (0: noise alone),
    each copy on its original (``right_copies``) or anywhere."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(b.items), 16))
    where = {it.key: i for i, it in enumerate(b.items)}
    centres = rng.normal(size=(8, 16)) * 10
    for i, item in enumerate(b.items[b.slices["card-patterns"]]):
        x[b.slices["card-patterns"].start + i] += right_labels * centres[int(item.label[1:])]
    if right_copies:
        for i, target in enumerate(b.dups.targets):
            x[b.s_q.start + i] = x[where[target]] + rng.normal(size=16) * 1e-3
    return x


def test_a_lead_beyond_the_noise_on_every_set_and_task_is_ahead(capsys):
    b = bench()
    results = {"artvec default": b.score(vectors(b, 1.0, True, 1)),
               "baseline: noise": b.score(vectors(b, 0.0, False, 2))}
    assert quality.ahead_of_baselines(b, results, "artvec default") is True
    assert "card-patterns +" in capsys.readouterr().out


def test_a_task_both_find_perfectly_does_not_count_against_the_default(capsys):
    """Both find every copy first (the scikit-image originals' copies alone, when no set of the near-duplicate task is
    named): neither can be ahead there, so the verdict rests on the sets."""
    b = bench()
    results = {"artvec default": b.score(vectors(b, 1.0, True, 1)),
               "baseline: copies only": b.score(vectors(b, 0.0, True, 2))}
    assert quality.perfect(results["artvec default"], "dup") and quality.perfect(results["baseline: copies only"], "dup")
    assert quality.ahead_of_baselines(b, results, "artvec default") is True
    assert "dup both perfect" in capsys.readouterr().out


def test_level_or_behind_anywhere_is_not_ahead():
    b = bench()
    level = {"artvec default": b.score(vectors(b, 1.0, True, 1)),
             "baseline: as good": b.score(vectors(b, 1.0, True, 3))}  # both perfect on the set and the copies
    assert quality.ahead_of_baselines(b, level, "artvec default") is False  # perfect everywhere, but ahead nowhere
    behind = {"artvec default": b.score(vectors(b, 0.0, True, 1)),
              "baseline: labels": b.score(vectors(b, 1.0, True, 2))}
    assert quality.ahead_of_baselines(b, behind, "artvec default") is False
    missed = {"artvec default": b.score(vectors(b, 1.0, False, 1)),
              "baseline: copies": b.score(vectors(b, 0.0, True, 2))}
    assert quality.ahead_of_baselines(b, missed, "artvec default") is False


def test_like_for_like_searches_each_baseline_as_the_default_is_searched(capsys):
    """The expanded default is compared with each baseline expanded the same way, not with the baseline's plain
    search: the figures printed are the baseline's own expanded ones, and the verdict rests on them."""
    b = bench()
    weak = vectors(b, 0.08, True, 2).astype(np.float32)
    results = {quality.EXPANDED: b.score(vectors(b, 1.0, True, 1), expand=quality.SEARCH_EXPAND)}
    quality.like_for_like(b, results, {"baseline: weak": weak})
    out = capsys.readouterr().out
    expanded = b.score(weak, expand=quality.SEARCH_EXPAND)["card-patterns"].ap_at_r.mean()
    plain = b.score(weak)["card-patterns"].ap_at_r.mean()
    assert f"{expanded:.3f}" != f"{plain:.3f}"            # the expansion moves the baseline: the test can tell
    assert f"weak, more like this {expanded:.3f}" in out
    assert ("more like this on both sides: the expanded default ahead of every baseline on every set by more than the "
            "noise: True") in out


def test_the_paper_a_scan_lies_on_is_counted_among_its_nearest(capsys):
    """On a scanned set each picture knows its paper (sets.scanned_items, real print and scan); a vector of a scan's
    own pixels (its lightest, the paper's colour) finds pictures on its paper far above chance, one that knows only the hand finds them
    at about chance, and the line printed says so, with the default's excess over the content CNN; printed on one
    paper (``paper=``) there is nothing to count, and nothing is printed."""
    rng = np.random.default_rng(0)
    drawings = [sets.Item(key=f"d{i}", label=f"L{i // 16}", group=f"L{i // 16}",
                          image=Image.fromarray(np.where(rng.random((48, 48, 1)) < 0.1, 30, 255).repeat(3, 2).astype(np.uint8)))
                for i in range(80)]
    scans = sets.scanned_items(drawings)
    papers = np.array([it.paper for it in scans])
    assert len(set(papers)) >= 4
    b = lab.Bench({"scans": scans}, [], [], sets.near_duplicates([]))
    by_pixels = np.stack([np.percentile(np.asarray(it.load(), np.float64).reshape(-1, 3), 90, axis=0) for it in b.items])
    by_hand = np.stack([np.eye(5)[int(it.label[1:])] * 10 + rng.normal(size=5) for it in b.items])
    chance = ((np.bincount(papers)[papers] - 1) / (len(papers) - 1)).mean()
    assert chance < 0.25 and metrics.retrieval(by_pixels, papers).precision_at_k.mean() > chance + 0.4
    assert abs(metrics.retrieval(by_hand, papers).precision_at_k.mean() - chance) < 0.15
    quality.paper_shared(b, {"artvec default": by_pixels, "baseline: content CNN (pooled)": by_hand})
    line = capsys.readouterr().out
    assert line.startswith(f"scans: the 10 nearest on the query's own paper tint (chance {chance:.3f}): artvec default 0.")
    assert "content CNN (pooled) 0." in line and "the default minus the content CNN +" in line and "*" in line
    one = lab.Bench({"scans": sets.scanned_items(drawings, paper=1)}, [], [], sets.near_duplicates([]))
    assert {it.paper for it in one.items} == {1}
    quality.paper_shared(one, {"artvec default": by_pixels, "baseline: content CNN (pooled)": by_hand})
    assert capsys.readouterr().out == ""
    unscanned = sets.scanned_items(drawings[:3], steps=())  # no step taken: the drawing itself, its paper still named
    assert all(np.array_equal(np.asarray(s.load()), np.asarray(d.load())) for s, d in zip(unscanned, drawings))
    assert [s.paper for s in unscanned] == list(papers[:3])


def subject_bench() -> lab.Bench:
    """Painted portraits in miniature: four hands (labels), eight peoples (groups); each hand paints two peoples of its
    own, and the humans are painted by two hands, as Kitty's and LordBob's are."""
    peoples = {"A": ["elves", "humans"], "B": ["orcs", "humans"], "C": ["drakes", "dwarves"], "D": ["undead", "trolls"]}
    rng = np.random.default_rng(3)
    items = [sets.Item(key=f"{hand}{people}{i}", label=hand, group=people,
                       image=Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)))
             for hand, painted in peoples.items() for people in painted for i in range(6)]
    return lab.Bench({"portraits": items}, [], [], sets.near_duplicates([]))


def test_the_hand_apart_from_the_subject_is_scored_with_the_subject_left_out(capsys):
    """A vector that knows only the people painted finds every picture of a one-hand people, so it scores high
    plainly, and at chance once the query's own people is left out; a vector that knows the hand scores high both
    ways. With every picture a group of its own, nothing is left out and the figure is plain mAP@R. The printed lines
    give each method, the chance and, within the humans (two hands), the default's lead."""
    b = subject_bench()
    labels, groups = np.array(b.labels["portraits"]), b.groups["portraits"]
    rng = np.random.default_rng(0)
    codes = {g: i for i, g in enumerate(sorted(set(groups)))}
    by_subject = np.stack([np.eye(8)[codes[g]] * 10 for g in groups]) + rng.normal(size=(len(groups), 8))
    by_hand = np.stack([np.eye(4)["ABCD".index(h)] * 10 for h in labels]) + rng.normal(size=(len(labels), 4))
    assert metrics.retrieval(by_subject, labels).ap_at_r.mean() > 0.45
    chance = quality.chance_ap(lambda x: quality.ap_apart(x, labels, groups), len(labels))
    assert abs(np.nanmean(quality.ap_apart(by_subject, labels, groups)) - chance) < 0.12
    assert np.nanmean(quality.ap_apart(by_hand, labels, groups)) > 0.95
    alone = np.arange(len(labels)).astype(str)
    assert np.allclose(quality.ap_apart(by_subject, labels, alone), metrics.retrieval(by_subject, labels).ap_at_r)
    quality.subjects_apart(b, {"artvec default": by_hand, "baseline: content CNN (pooled)": by_subject})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"portraits: mAP@R with the query's own people left out (chance {chance:.3f}): "
                             "artvec default 1.000, content CNN (pooled) 0.")
    assert "the default minus the content CNN +" in out[0] and "*" in out[0]
    assert len(out) == 2 and out[1].startswith("  within the humans (A 6, B 6), mAP@R (chance 0.")
    assert "artvec default 1.000" in out[1] and "(the queries resampled)" in out[1]
