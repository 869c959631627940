"""``benchmarks/constellations.py``: the constellation-art set chosen from a sky-cultures folder laid out as
Stellarium's (pictures drawn here), by the real script in a subprocess and by its functions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import constellations  # noqa: E402


def figure(seed: int, mode: str = "RGBA") -> Image.Image:
    """A small figure of random strokes; RGBA ones on a transparent ground, others on black."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGBA", (120, 90), (0, 0, 0, 0) if mode == "RGBA" else (0, 0, 0, 255))
    draw = ImageDraw.Draw(img)
    for x, y in rng.integers(0, 100, (12, 2)):
        colour = tuple(int(c) for c in rng.integers(60, 256, 3)) + (255,)
        draw.line([x, y, x + int(rng.integers(5, 30)), y + int(rng.integers(-20, 20))], fill=colour, width=3)
    return img if mode == "RGBA" else img.convert(mode)


def culture(root: Path, name: str, pictures: dict[str, Image.Image], extra_lines: tuple[str, ...] = ()) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    lines = ["# art: abbreviation, file, three stars"]
    for i, (file, img) in enumerate(pictures.items()):
        img.save(folder / file)
        lines.append(f"C{i} {file} 1 2 100 3 4 200 5 6 300")
    (folder / "constellationsart.fab").write_text("\n".join(lines + list(extra_lines)) + "\n", encoding="utf-8")


@pytest.fixture()
def skycultures(tmp_path):
    """Every culture the set names; two labels with enough pictures (one of them painted in two cultures), one short."""
    root = tmp_path / "skycultures"
    seed = iter(range(1000))
    for cultures in constellations.SOURCES.values():
        for name in cultures:
            if name not in ("arabic_al-sufi", "boorong", "dakota", "ojibwe", "maya"):
                culture(root, name, {})
    sufi = {f"s{i}.png": figure(next(seed)) for i in range(10)}
    sufi["s_copy.png"] = sufi["s0.png"].copy()  # the same figure again under another name: a near-copy
    culture(root, "arabic_al-sufi", sufi,
            extra_lines=("C9b s1.png 7 8 400 9 10 500 11 12 600", "C99 absent.png 1 2 3 4 5 6 7 8 9"))
    dakota = {f"d{i}.png": figure(next(seed), "RGB") for i in range(5)}
    # Boorong (before Lee in SOURCES) is too short to keep; its copy of a Dakota painting must not cost Lee that one
    culture(root, "boorong", {"b0.png": dakota["d0.png"].copy(), "b1.png": figure(next(seed))})
    culture(root, "dakota", dakota)
    culture(root, "ojibwe", {f"o{i}.png": figure(next(seed), "L") for i in range(5)})
    culture(root, "maya", {f"m{i}.png": figure(next(seed)) for i in range(4)})
    return root


def run(root: Path) -> subprocess.CompletedProcess:
    env = {"ARTVEC_STELLARIUM_SKYCULTURES": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(BENCHMARKS / "constellations.py")], capture_output=True, text=True,
                          timeout=120, env=env)


def test_the_set_merges_hands_passes_over_copies_and_short_labels(skycultures, monkeypatch):
    done = run(skycultures)
    assert done.returncode == 0, done.stderr
    # al-Sufi: 10 distinct figures (s1 drawn twice, the copy and the absent file passed over); Lee: Dakota and
    # Ojibwe together; the Paris Codex's 4 are under MIN_PICTURES and left out
    assert "20 pictures by 2 hands or sources" in done.stdout
    assert "al-Sufi, Ulugh Beg manuscript 10" in done.stdout and "Annette S. Lee 10" in done.stdout
    assert "Paris Codex" not in done.stdout and "Boorong" not in done.stdout

    monkeypatch.setenv("ARTVEC_STELLARIUM_SKYCULTURES", str(skycultures))
    chosen = constellations.constellation_set()
    keys = [key for key, _, _ in chosen]
    assert len(keys) == len(set(keys)) == 20
    assert ("arabic_al-sufi/s0" in keys) != ("arabic_al-sufi/s_copy" in keys)  # whichever the seeded order met first
    assert {label for key, label, _ in chosen if key.startswith(("dakota/", "ojibwe/"))} == {"Annette S. Lee"}
    assert chosen == sorted(chosen, key=lambda c: (list(constellations.SOURCES).index(c[1]), c[0]))


def test_a_transparent_ground_is_black_and_every_picture_rgb(skycultures):
    transparent = constellations.on_black(skycultures / "arabic_al-sufi" / "s0.png")
    grey = constellations.on_black(skycultures / "ojibwe" / "o0.png")
    assert transparent.mode == grey.mode == "RGB"
    assert transparent.getpixel((0, 0)) == (0, 0, 0)  # a corner no stroke reaches is the ground
    assert np.asarray(transparent).max() > 60  # the strokes are kept
    big = Image.new("RGB", (2000, 1000), (10, 20, 30))
    big.save(skycultures / "big.png")
    assert max(constellations.on_black(skycultures / "big.png").size) == constellations.SIDE


def test_missing_or_partial_data_is_one_line(tmp_path, skycultures):
    done = run(tmp_path / "nowhere")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "apt-get install stellarium-data" in done.stderr
    (skycultures / "maya" / "constellationsart.fab").unlink()
    done = run(skycultures)
    assert done.returncode == 1 and "lacks the art of 1 sky cultures (maya)" in done.stderr
