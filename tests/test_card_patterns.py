"""``benchmarks/card_patterns.py``: AisleRiot-style card themes (SVG pages of 13 × 5 cards drawn here) cut into their
court cards by the real rsvg-convert, variants passed over, by the real script in a subprocess."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CELL_W, CELL_H = 60, 90
COURT_COLOURS = {"jack": "#d01010", "queen": "#10a010", "king": "#1010d0"}


def theme_page(seed: int, extra_dot: bool = False) -> str:
    """A page of 13 × 5 cards: every card a white card with seeded figures; the court cards' figures are framed by
    a band of their rank's colour, so a cut can be checked."""
    rng = np.random.default_rng(seed)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{13 * CELL_W}" height="{5 * CELL_H}">']
    for row in range(5):
        for col in range(13):
            x, y = col * CELL_W, row * CELL_H
            parts.append(f'<rect x="{x + 2}" y="{y + 2}" width="{CELL_W - 4}" height="{CELL_H - 4}" fill="white" '
                         'stroke="black" stroke-width="1"/>')
            if col >= 10 and row < 4:
                colour = list(COURT_COLOURS.values())[col - 10]
                parts.append(f'<rect x="{x + 6}" y="{y + 6}" width="{CELL_W - 12}" height="10" fill="{colour}"/>')
            for _ in range(6):
                cx, cy = rng.integers(10, CELL_W - 10), rng.integers(30, CELL_H - 10)  # below the band
                rgb = "#" + "".join(f"{int(c):02x}" for c in rng.integers(0, 200, 3))
                parts.append(f'<ellipse cx="{x + cx}" cy="{y + cy}" rx="{rng.integers(3, 12)}" '
                             f'ry="{rng.integers(3, 12)}" fill="{rgb}"/>')
            if extra_dot:
                parts.append(f'<circle cx="{x + 8}" cy="{y + CELL_H - 8}" r="1.5" fill="black"/>')
    return "\n".join(parts + ["</svg>"])


@pytest.fixture()
def themes(tmp_path):
    folder = tmp_path / "cards"
    folder.mkdir()
    pages = {"alpha": theme_page(1), "alpha_bitmap": theme_page(1, extra_dot=True), "beta": theme_page(2),
             "simplistic": theme_page(3)}
    for name, svg in pages.items():
        (folder / f"{name}.svgz").write_bytes(gzip.compress(svg.encode()))
    (folder / "broken.svgz").write_bytes(gzip.compress(b"<svg xmlns='http://www.w3.org/2000/svg'><rect"))
    (folder / "garbled.svgz").write_bytes(b"not gzip at all")
    return folder


def run(cards: Path, cache: Path, path: str = os.environ.get("PATH", "/usr/bin:/bin")) -> subprocess.CompletedProcess:
    env = {"ARTVEC_AISLERIOT_CARDS": str(cards), "ARTVEC_BENCH_CACHE": str(cache), "PATH": path}
    return subprocess.run([sys.executable, str(BENCHMARKS / "card_patterns.py")], capture_output=True, text=True,
                          timeout=120, env=env)


def test_court_cards_are_cut_from_the_page_and_variants_passed_over(themes, tmp_path):
    done = run(themes, tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "24 court cards of 2 designs" in done.stdout
    assert "alpha, beta" in done.stdout and "alpha_bitmap (of alpha)" in done.stdout
    assert "simplistic" not in done.stdout
    warnings = done.stderr.strip().splitlines()  # a damaged theme is one line, and the others are kept
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings), done.stderr
    assert "broken.svgz passed over: broken.svgz: rsvg-convert failed" in warnings[0]
    assert "garbled.svgz passed over" in warnings[1]

    rendered = tmp_path / "cache" / "card-patterns"
    for theme in ("alpha", "beta"):
        cards = sorted(p.stem for p in (rendered / f"{theme}-448").glob("*.png"))
        assert len(cards) == 12 and "king_heart" in cards and "1_heart" not in cards
        for rank, colour in COURT_COLOURS.items():
            img = Image.open(rendered / f"{theme}-448" / f"{rank}_spade.png").convert("RGB")
            assert img.height == 448 and 0.55 < img.width / img.height < 0.75  # one card, not the page
            band = np.asarray(img)[int(0.1 * 448):int(0.15 * 448), img.width // 3: 2 * img.width // 3].reshape(-1, 3)
            want = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
            assert np.abs(np.median(band, axis=0) - want).max() < 40, (theme, rank)  # its column's colour band


def test_missing_themes_or_renderer_give_one_line(tmp_path):
    done = run(tmp_path / "nowhere", tmp_path / "cache")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "gnome-cards-data" in done.stderr

    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "alpha.svgz").write_bytes(gzip.compress(theme_page(1).encode()))
    done = run(tmp_path / "cards", tmp_path / "cache", path=str(tmp_path))  # no rsvg-convert on PATH
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "rsvg-convert" in done.stderr


def test_the_sets_clean_and_printed_and_scanned(themes, tmp_path, monkeypatch):
    """``sets.build`` reads the themes once for the card patterns and their print and scan: the same cards and labels,
    each scanned on its paper."""
    sys.path.insert(0, str(BENCHMARKS))
    import sets

    monkeypatch.setenv("ARTVEC_AISLERIOT_CARDS", str(themes))
    monkeypatch.setenv("ARTVEC_BENCH_CACHE", str(tmp_path / "cache"))
    labelled, *_ = sets.build(("card-patterns", "card-pattern-scans"), quick=True)
    clean, scanned = labelled["card-patterns"], labelled["card-pattern-scans"]
    assert len(clean) == len(scanned) == 24
    assert [it.label for it in clean] == [it.label for it in scanned] and {it.label for it in clean} == {"alpha", "beta"}
    assert [it.key for it in scanned] == [f"scan/{it.key}" for it in clean]
    for before, after in zip(clean[:3], scanned[:3]):  # the white card now a paper's tint: its blue falls most
        white = np.percentile(np.asarray(before.load().convert("RGB"))[..., 2], 90)
        paper = np.percentile(np.asarray(after.load().convert("RGB"))[..., 2], 90)
        assert white == 255 and paper < 245, (before.key, paper)
