"""``benchmarks/heldout.py --folder``: issue 9's table on anyone's labelled pictures, run as its holder would run it
(the real script in a subprocess, real models, pictures drawn here; the labels file and the refusals through its
``main`` in this process, which spares a start of Python and torch each)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout.py"
HANDS = ("hatching", "stippling", "blocks")
METHODS = ("artvec default", "copy vector", "artvec 0.1", "careful recipe", "content CNN", "literal recipe")


def drawing(hand: str, seed: int) -> Image.Image:
    """A small picture in one of three hands: short hatched strokes, dots, or filled blocks."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (150 + 10 * (seed % 4), 120), (242, 236, 218))
    draw = ImageDraw.Draw(img)
    ink = tuple(int(c) for c in rng.integers(0, 180, 3))
    for x, y in rng.integers(0, 140, (40, 2)):
        if hand == "hatching":
            draw.line([x, y, x + 18, y + 6], fill=ink, width=2)
        elif hand == "stippling":
            draw.ellipse([x, y, x + 4, y + 4], fill=ink)
        else:
            draw.rectangle([x, y, x + 14, y + 11], fill=ink)
    return img


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


@pytest.fixture
def main(monkeypatch, capsys):
    """heldout.py's ``main`` with these arguments, in this process: its output, or its one-line refusal."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import heldout

    def run_main(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
        try:
            heldout.main()
        except SystemExit as refusal:
            assert refusal.code not in (0, None)
            return str(refusal.code)
        return capsys.readouterr().out
    return run_main


def table(stdout: str) -> dict[str, list[str]]:
    """The method table's rows: method -> its cells."""
    rows = {}
    for line in stdout.splitlines():
        for method in METHODS:
            if line.startswith(method + " ") and method not in rows:
                rows[method] = line[len(method):].split()
    return rows


@pytest.fixture(scope="module")
def hands(tmp_path_factory) -> Path:
    """Three hands, four pictures each, one folder per hand; a broken file among them and a picture without a
    folder."""
    root = tmp_path_factory.mktemp("heldout")
    for h, hand in enumerate(HANDS):
        (root / hand).mkdir()
        for i in range(4):
            drawing(hand, 10 * h + i).save(root / hand / f"{i}.png")
    (root / "stippling" / "torn.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    drawing("blocks", 99).save(root / "unfiled.png")
    return root


def test_folder_scores_every_method_and_the_copies(hands, tmp_path):
    result = run("--folder", str(hands), "--copies-of", "8", "--json", str(tmp_path / "figures.json"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # the broken file: one line naming it and why, and the run goes on without it
    left_out = [line for line in result.stderr.splitlines() if line.startswith("left out:")]
    assert len(left_out) == 1 and "torn.jpg" in left_out[0], result.stderr
    assert "1 without a label left out" in out
    assert "12 pictures, 3 labels (4–4 pictures each); 8 copies" in out
    rows = table(out)
    assert set(rows) == set(METHODS), out
    for method in METHODS:
        figures = [float(cell) for cell in rows[method] if re.fullmatch(r"\d\.\d{3}", cell)]
        assert figures and all(0.0 <= f <= 1.0 for f in figures), (method, rows[method])
    assert rows["artvec 0.1"][-3:] == ["0.333", "/", "0.203"]  # issue 9's held-out figures beside its own
    # the eight edits, one copy each, and every target named
    edits = re.search(r"near-duplicate top-1 by edit \(default\): (.*)", out).group(1)
    assert [part.split()[0] for part in edits.split(", ")] == [
        "rescan", "rotate", "border", "crop", "rescale", "jpeg", "greyscale", "cast+crop"]
    for target in ("P@10", "mAP@R", "near-duplicate top-1"):
        assert re.search(rf"  {re.escape(target)} +\d\.\d{{3}} ± \d\.\d{{3}} \(target 0\.\d\d\): (met|not met)", out), out
    assert re.search(r"all of them met: (True|False)", out)
    # --json: the same figures as the table, and the verdict computed from them
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert (figures["pictures"], figures["labels"], figures["copies"]) == (12, 3, 8)
    for method in METHODS:
        printed = [cell for cell in rows[method] if re.fullmatch(r"\d\.\d{3}", cell)]
        keys = ["dup1"] if method == "copy vector" else ["P@10", "mAP@R", "NN", "dup1"]
        assert [f"{figures['methods'][method][key]:.3f}" for key in keys] == printed[:len(keys)], method
    assert figures["issue_9_held_out"]["content CNN"] == {"P@10": 0.342, "mAP@R": 0.2}
    goals = figures["targets"]
    assert {label: met for label, (value, half, target, met) in goals.items()} == {
        label: value >= target for label, (value, half, target, met) in goals.items()}
    assert figures["all_met"] == all(met for *_, met in goals.values())
    assert sorted(figures["copies_by_edit"]) == sorted(["rescan", "rotate", "border", "crop", "rescale", "jpeg",
                                                         "greyscale", "cast+crop"])
    # the paired leads of the default, one line per other method
    for method in METHODS[1:]:
        assert re.search(rf"  vs {re.escape(method)} +.*dup1 [+-]\d\.\d{{3}}±\d\.\d{{3}}", out), method


def test_labels_from_a_csv_and_bad_folders(hands, tmp_path, main):
    flat = tmp_path / "flat"
    flat.mkdir()
    rows = ["path,label"]
    for h, hand in enumerate(HANDS):
        for i in range(3):
            name = f"{hand}-{i}.png"
            drawing(hand, 100 + 10 * h + i).save(flat / name)
            rows.append(f"{name},{hand}")
    rows.append("stray.png,")  # no label: counted and left out
    rows.append(rows[1])  # the same row twice: read once
    (flat / "labels.csv").write_text("\n".join(rows) + "\n")
    out = main("--folder", str(flat), "--labels", str(flat / "labels.csv"), "--copies-of", "0")
    assert "9 pictures, 3 labels (3–3 pictures each); 0 copies" in out
    assert "1 without a label left out" in out
    assert "all of them met: False (no copies made: --copies-of 0)" in out
    assert set(table(out)) == set(METHODS)

    (flat / "twice.csv").write_text("path,label\nx.png,a\nx.png,b\n")
    twice = main("--folder", str(flat), "--labels", str(flat / "twice.csv"))
    assert twice == f"error: {flat / 'twice.csv'}: x.png has two labels"

    (flat / "bad.csv").write_text("file,artist\nx.png,a\n")
    assert "needs the columns path,label" in main("--folder", str(flat), "--labels", str(flat / "bad.csv"))

    absent = main("--folder", str(flat), "--labels", str(flat / "absent.csv"))
    assert absent == f"error: {flat / 'absent.csv'}: no such file"

    one = tmp_path / "one"
    (one / "only-hand").mkdir(parents=True)
    for i in range(3):
        drawing("blocks", i).save(one / "only-hand" / f"{i}.png")
    assert "needs at least two labels with two pictures or more" in main("--folder", str(one))
    loose = tmp_path / "loose"
    loose.mkdir()
    drawing("blocks", 7).save(loose / "a.png")
    assert main("--folder", str(loose)) == (
        f"error: {loose}: no labelled pictures (1 without a label left out: pictures go in one folder per label)")
    assert "not a folder" in main("--folder", str(tmp_path / "absent"))
