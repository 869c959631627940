"""The icon-theme style set: freedesktop desktop icon themes from Debian, each drawing the same standard
icon names (folder, computer, user-trash, printer, text-x-generic, utilities-terminal, dialog-warning, …),
every icon rendered on its own on white.

The label is the theme's design *family*: variants and forks of one design (GNOME 2's icons in gnome
and mate, Faenza and its fork Obsidian, elementary and elementary-xfce) share one label, so 18 themes give
15 labels. Content is held constant (every theme draws the same 40 names), so only style can find a
theme's other icons. Icons come only from a theme's own folders (and a parent of the same design: Moka
over Faba, Numix-Circle over Numix, gnome-brave over gnome-colors-common), never from another designer's
theme it inherits; symbolic, legacy and small icons are left out, and an icon drawn the same as one of an
earlier theme (a fork's unchanged copy) is taken once. Mint-Y is left out: many of its icons are Moka's.

Needs: ``apt-get install tango-icon-theme gnome-icon-theme mate-icon-theme oxygen-icon-theme
breeze-icon-theme papirus-icon-theme numix-icon-theme numix-icon-theme-circle paper-icon-theme
faba-icon-theme moka-icon-theme faenza-icon-theme obsidian-icon-theme elementary-icon-theme
elementary-xfce-icon-theme yaru-theme-icon adwaita-icon-theme gnome-brave-icon-theme gnome-colors-common
lxde-icon-theme deepin-icon-theme librsvg2-bin`` (``.ci/run`` does not; the benchmark says so in one
line if they are missing). Rendered PNGs are cached in ``~/.cache/artvec-bench/icons``
(``ARTVEC_BENCH_CACHE``), outside the repository.

Usage: python benchmarks/icons.py [--jobs 2]   (renders the cache and prints the counts)
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cards import bench_cache, require, rsvg_missing  # noqa: E402

ICONS_DIR = Path("/usr/share/icons")
THEMES = {"Tango": "tango", "gnome": "gnome", "mate": "gnome", "oxygen": "oxygen", "breeze": "breeze",
          "Papirus": "papirus", "Numix-Circle": "numix", "Paper": "paper", "Moka": "moka",
          "Faenza": "faenza", "Obsidian": "faenza", "elementary": "elementary",
          "elementary-xfce": "elementary", "Yaru": "yaru", "Adwaita": "adwaita", "gnome-brave": "gnome-colors",
          "nuoveXT2": "nuovext", "bloom": "deepin"}
SEARCH = {"Moka": ["Moka", "Faba"], "Numix-Circle": ["Numix-Circle", "Numix"],
          "gnome-brave": ["gnome-brave", "gnome-colors-common"]}
PACKAGES = {"Tango": "tango-icon-theme", "gnome": "gnome-icon-theme", "mate": "mate-icon-theme",
            "oxygen": "oxygen-icon-theme", "breeze": "breeze-icon-theme", "Papirus": "papirus-icon-theme",
            "Numix": "numix-icon-theme", "Numix-Circle": "numix-icon-theme-circle", "Paper": "paper-icon-theme",
            "Faba": "faba-icon-theme", "Moka": "moka-icon-theme", "Faenza": "faenza-icon-theme",
            "Obsidian": "obsidian-icon-theme", "elementary": "elementary-icon-theme",
            "elementary-xfce": "elementary-xfce-icon-theme", "Yaru": "yaru-theme-icon",
            "Adwaita": "adwaita-icon-theme", "gnome-brave": "gnome-brave-icon-theme",
            "gnome-colors-common": "gnome-colors-common", "nuoveXT2": "lxde-icon-theme", "bloom": "deepin-icon-theme"}
NAMES = ["computer", "network-workgroup", "folder", "user-desktop", "drive-harddisk", "folder-remote",
         "network-server", "user-home", "audio-x-generic", "media-optical", "drive-optical", "system-file-manager",
         "package-x-generic", "user-trash", "utilities-terminal", "dialog-warning", "dialog-error",
         "accessories-text-editor", "printer", "preferences-system", "image-x-generic", "text-x-generic",
         "drive-removable-media", "dialog-information", "x-office-document", "text-x-script", "text-html",
         "application-x-executable", "utilities-system-monitor", "system-software-update", "video-x-generic",
         "x-office-address-book", "x-office-spreadsheet", "input-keyboard", "camera-photo", "help-browser",
         "multimedia-player", "applications-internet", "folder-pictures", "accessories-character-map"]
SIZE = 256
MIN_SIZE = 48  # smaller icons are redrawn simplified for small screens, not the theme's full drawing
MIN_PNG = SIZE // 2  # a bitmap is upscaled at most 2x
NEAR = 0.01  # mean absolute difference (0-1) of 64 px renders below which two icons are one drawing


def cache_dir() -> Path:
    return bench_cache("icons")


def family(theme: str) -> str:
    return THEMES[theme]


def missing_tools() -> str | None:
    dirs = {d for t in THEMES for d in SEARCH.get(t, [t])}
    missing = sorted(PACKAGES[d] for d in dirs if not (ICONS_DIR / d / "index.theme").exists())
    if missing:
        return f"icon themes are not installed (apt-get install {' '.join(missing)})"
    return rsvg_missing()


def _size(parts: tuple[str, ...]) -> int | None:
    """The nominal pixel size a theme folder holds ('48x48', '64', '48@2x', 'scalable')."""
    size = None
    for part in parts:
        if part == "scalable":
            return 1024
        m = re.fullmatch(r"(\d+)(?:x\d+)?(?:@(\d+)x?)?", part)
        if m:
            size = int(m.group(1)) * int(m.group(2) or 1)
    return size


def _candidates(folder: Path) -> dict[str, list[tuple[int, bool, Path]]]:
    """{name: [(size, is_svg, path)]} for the full-colour icons of NAMES in one theme folder."""
    found: dict[str, list[tuple[int, bool, Path]]] = {}
    wanted = set(NAMES)
    for dirpath, _, files in os.walk(folder):
        parts = Path(dirpath).relative_to(folder).parts
        if any("symbolic" in p or p == "legacy" for p in parts):
            continue
        size = _size(parts)
        for f in files:
            m = re.fullmatch(r"(.+)\.(svgz?|png)", f)
            if size is None or size < MIN_SIZE or not m or m.group(1) not in wanted:
                continue
            path = Path(dirpath) / f
            if m.group(2) == "png" and size < MIN_PNG:
                continue
            found.setdefault(m.group(1), []).append((size, m.group(2) != "png", path))
    return found


def theme_sources(theme: str) -> dict[str, Path]:
    """{name: file} from the theme's own folders; a link out of them (another theme's drawing) is skipped."""
    folders = [ICONS_DIR / d for d in SEARCH.get(theme, [theme])]
    roots = [str(f.resolve()) + os.sep for f in folders]
    sources: dict[str, Path] = {}
    for folder in folders:
        for name, cands in _candidates(folder).items():
            cands = [c for c in cands if c[2].exists() and os.path.realpath(c[2]).startswith(tuple(roots))]
            if name not in sources and cands:
                sources[name] = max(cands)[2]
    return sources


def sources() -> dict[tuple[str, str], Path]:
    """{(theme, name): file} for every theme in THEMES' order."""
    found = {theme: theme_sources(theme) for theme in THEMES}
    return {(theme, name): found[theme][name] for theme in THEMES for name in NAMES if name in found[theme]}


def render_icon(src: Path, out: Path, size: int = SIZE) -> Path:
    """Draw one icon on white, its longer side `size` px (SVG via rsvg-convert, PNG by Lanczos)."""
    from PIL import Image

    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".png":
        img = Image.open(src).convert("RGBA")
    else:
        data = src.read_bytes()
        if src.suffix == ".svgz" or data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        drawn = subprocess.run(["rsvg-convert", "-w", str(size), "-h", str(size), "-a"], input=data,
                               check=True, capture_output=True).stdout
        with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
            Path(tmp.name).write_bytes(drawn)
            img = Image.open(tmp.name).convert("RGBA")
    w, h = img.size
    if max(w, h) != size:
        img = img.resize((max(1, round(w * size / max(w, h))), max(1, round(h * size / max(w, h)))),
                         Image.Resampling.LANCZOS)
    flat = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
    tmp_out = out.with_suffix(".tmp.png")
    flat.save(tmp_out)
    tmp_out.replace(out)
    return out


def _thumb(path: Path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB").resize((64, 64), Image.Resampling.BOX), np.float32) / 255


def distinct(rendered: dict[tuple[str, str], Path]) -> dict[tuple[str, str], Path]:
    """Leave out an icon drawn the same as the name's icon in a theme listed before it (a copied drawing),
    or the same picture as one already kept under another name (a theme's folder-remote linked to folder)."""
    kept: dict[tuple[str, str], Path] = {}
    thumbs: dict[str, list] = {}
    seen: set[bytes] = set()
    for (theme, name), path in rendered.items():
        thumb = _thumb(path)
        if thumb.tobytes() not in seen and all(abs(thumb - t).mean() >= NEAR for t in thumbs.get(name, [])):
            thumbs.setdefault(name, []).append(thumb)
            seen.add(thumb.tobytes())
            kept[(theme, name)] = path
    return kept


def icon_set(jobs: int = 2) -> list[tuple[Path, str, str]]:
    """[(png path, family label, theme)] for every chosen icon of every theme, rendering what is not cached."""
    todo = sources()
    outs = [cache_dir() / theme / f"{name}.png" for theme, name in todo]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(render_icon, todo.values(), outs))
    kept = distinct(dict(zip(todo, outs)))
    return [(kept[(t, n)], family(t), t) for t, n in sorted(kept)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    require(missing_tools())
    items = icon_set(args.jobs)
    families = sorted({f for _, f, _ in items})
    themes = sorted({t for _, _, t in items})
    print(f"{len(items)} icons of {len(NAMES)} names, {len(themes)} themes, {len(families)} families, "
          f"cached in {cache_dir()}")
    for theme in THEMES:
        n = sum(1 for _, _, t in items if t == theme)
        print(f"  {theme:16s} {family(theme):13s} {n:3d}/{len(NAMES)}")


if __name__ == "__main__":
    main()
