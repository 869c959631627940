"""Pictures for the demo catalogue, generated here (no downloads): motifs × artists' manners.

Eight motifs (landscape, harbour, still life, ...) drawn with PIL, each rendered in five clearly
different manners standing in for five artists: an engraving of fine wavy lines, a woodcut of
flat posterised colour with black cuts, a watercolour wash, pointillist dots, and a flat
indigo-and-vermilion print. Deterministic: the same files every time.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

SIZE = 320


def sky(draw: ImageDraw.ImageDraw, top, bottom, height: int) -> None:
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line([(0, y), (SIZE, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))


def landscape(draw, rng) -> None:
    sky(draw, (120, 170, 230), (250, 220, 170), SIZE)
    draw.ellipse([220, 40, 280, 100], fill=(255, 210, 90))
    for index, colour in enumerate([(90, 130, 70), (60, 100, 50), (40, 70, 35)]):
        base = 170 + index * 45
        points = [(x, base - 40 * math.sin(x / (50 + 20 * index) + index)) for x in range(0, SIZE + 20, 20)]
        draw.polygon([(0, SIZE), *points, (SIZE, SIZE)], fill=colour)


def harbour(draw, rng) -> None:
    sky(draw, (170, 190, 220), (230, 230, 240), 170)
    draw.rectangle([0, 170, SIZE, SIZE], fill=(40, 80, 130))
    for y in range(180, SIZE, 12):
        draw.arc([rng.integers(-40, 40), y, SIZE + rng.integers(0, 60), y + 10], 0, 180, fill=(200, 220, 240), width=2)
    for x in (70, 190):
        draw.polygon([(x, 200), (x + 80, 200), (x + 65, 225), (x + 15, 225)], fill=(110, 60, 30))
        draw.line([(x + 40, 200), (x + 40, 90)], fill=(60, 40, 20), width=4)
        draw.polygon([(x + 42, 95), (x + 42, 190), (x + 95, 190)], fill=(240, 235, 220))


def still_life(draw, rng) -> None:
    draw.rectangle([0, 0, SIZE, SIZE], fill=(90, 60, 50))
    draw.rectangle([0, 220, SIZE, SIZE], fill=(150, 110, 70))
    draw.ellipse([110, 60, 200, 230], fill=(60, 90, 140))
    draw.rectangle([140, 40, 170, 80], fill=(60, 90, 140))
    for x, colour in [(40, (200, 40, 30)), (210, (230, 180, 40)), (250, (120, 170, 50))]:
        draw.ellipse([x, 190, x + 55, 245], fill=colour)


def portrait(draw, rng) -> None:
    draw.rectangle([0, 0, SIZE, SIZE], fill=(60, 70, 60))
    draw.ellipse([40, 200, 280, 420], fill=(70, 30, 40))
    draw.ellipse([105, 60, 215, 200], fill=(230, 190, 160))
    draw.pieslice([95, 40, 225, 170], 180, 360, fill=(80, 50, 30))
    for x in (135, 175):
        draw.ellipse([x, 115, x + 12, 127], fill=(40, 30, 30))
    draw.arc([140, 140, 180, 175], 20, 160, fill=(150, 60, 60), width=3)


def city(draw, rng) -> None:
    sky(draw, (250, 150, 90), (90, 60, 120), SIZE)
    x = 0
    while x < SIZE:
        width, height = int(rng.integers(30, 60)), int(rng.integers(80, 230))
        draw.rectangle([x, SIZE - height, x + width, SIZE], fill=(30, 30, 50))
        for wy in range(SIZE - height + 10, SIZE - 10, 18):
            for wx in range(x + 6, x + width - 8, 12):
                if rng.random() < 0.6:
                    draw.rectangle([wx, wy, wx + 5, wy + 8], fill=(250, 220, 120))
        x += width + int(rng.integers(2, 10))


def forest(draw, rng) -> None:
    sky(draw, (200, 225, 235), (225, 235, 215), SIZE)
    for _ in range(28):
        x, y = int(rng.integers(-20, SIZE)), int(rng.integers(90, 300))
        height = int(rng.integers(60, 140))
        green = (int(rng.integers(20, 60)), int(rng.integers(80, 140)), int(rng.integers(30, 70)))
        draw.polygon([(x, y - height), (x - 30, y), (x + 30, y)], fill=green)
        draw.rectangle([x - 4, y, x + 4, y + 15], fill=(90, 60, 30))


def flowers(draw, rng) -> None:
    draw.rectangle([0, 0, SIZE, SIZE], fill=(235, 230, 210))
    for _ in range(9):
        cx, cy = int(rng.integers(40, 280)), int(rng.integers(40, 280))
        colour = tuple(int(v) for v in rng.integers(120, 255, size=3))
        for petal in range(8):
            angle = petal * math.pi / 4
            px, py = cx + 22 * math.cos(angle), cy + 22 * math.sin(angle)
            draw.ellipse([px - 14, py - 14, px + 14, py + 14], fill=colour)
        draw.ellipse([cx - 10, cy - 10, cx + 10, cy + 10], fill=(240, 200, 40))


def geometry(draw, rng) -> None:
    draw.rectangle([0, 0, SIZE, SIZE], fill=(240, 235, 225))
    for _ in range(14):
        x, y = rng.integers(0, SIZE, size=2)
        w, h = rng.integers(30, 140, size=2)
        colour = tuple(int(v) for v in rng.choice([[200, 40, 40], [30, 60, 150], [240, 200, 30], [20, 20, 20]]))
        draw.rectangle([int(x), int(y), int(x + w), int(y + h)], fill=colour)


MOTIFS = {"landscape": landscape, "harbour": harbour, "still life": still_life, "portrait": portrait,
          "city at dusk": city, "forest": forest, "flowers": flowers, "composition": geometry}


def motif(name: str, seed: int) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE))
    MOTIFS[name](ImageDraw.Draw(image), np.random.default_rng(seed))
    return image


def luminance(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def engraved(image: Image.Image) -> Image.Image:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    lines = np.abs(((ys + 3 * np.sin(xs / 9.0)) % 5) / 5 - 0.5) * 2
    ink = lines < (1 - luminance(image)) * 1.1
    paper, black = np.array([244, 236, 218]), np.array([35, 28, 24])
    return Image.fromarray(np.where(ink[..., None], black, paper).astype(np.uint8))


def woodcut(image: Image.Image) -> Image.Image:
    flat = ImageOps.posterize(image.filter(ImageFilter.MedianFilter(7)), 2)
    edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES).filter(ImageFilter.MaxFilter(5))) > 40
    pixels = np.asarray(flat).copy()
    pixels[edges] = (15, 10, 10)
    return Image.fromarray(pixels)


def watercolour(image: Image.Image) -> Image.Image:
    washed = np.asarray(image.filter(ImageFilter.GaussianBlur(5)), dtype=np.float32) * 0.65 + 255 * 0.35
    rims = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES).filter(ImageFilter.GaussianBlur(2)),
                      dtype=np.float32) / 255.0
    grain = 1 + np.random.default_rng(7).normal(0, 0.05, (SIZE, SIZE))
    return Image.fromarray(np.clip(washed * (1 - 0.8 * rims[..., None]) * grain[..., None], 0, 255).astype(np.uint8))


def pointillist(image: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (SIZE, SIZE), (250, 246, 235))
    draw = ImageDraw.Draw(canvas)
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(2)))
    rng = np.random.default_rng(11)
    for y in range(0, SIZE, 5):
        for x in range(0, SIZE, 5):
            jx, jy = int(np.clip(x + rng.integers(-2, 3), 0, SIZE - 1)), int(np.clip(y + rng.integers(-2, 3), 0, SIZE - 1))
            colour = np.clip(pixels[jy, jx].astype(int) + rng.integers(-35, 36, size=3), 0, 255)
            draw.ellipse([jx - 2, jy - 2, jx + 2, jy + 2], fill=tuple(int(v) for v in colour))
    return canvas


def indigo_print(image: Image.Image) -> Image.Image:
    palette = np.array([[242, 232, 205], [38, 62, 110], [90, 130, 170], [200, 70, 50], [30, 30, 35]])
    pixels = np.asarray(image.filter(ImageFilter.ModeFilter(5)), dtype=np.float32)
    nearest = np.argmin(((pixels[:, :, None, :] - palette[None, None]) ** 2).sum(-1), axis=-1)
    edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES)) > 50
    out = palette[nearest].astype(np.uint8)
    out[edges] = palette[4]
    return Image.fromarray(out)


# artist -> (manner, era): five manners standing in for five printmakers and painters.
ARTISTS = {
    "Gustave Doré": (engraved, "1860s"),
    "Walter Crane": (woodcut, "1870s"),
    "J. M. W. Turner": (watercolour, "1830s"),
    "Georges Seurat": (pointillist, "1880s"),
    "Katsushika Hokusai": (indigo_print, "1830s"),
}


def catalogue() -> list[dict]:
    """The demo pictures: id, title, artist, era and file name, in a fixed order."""
    rows = []
    for artist_index, artist in enumerate(ARTISTS):
        for motif_index, name in enumerate(MOTIFS):
            artwork_id = artist_index * len(MOTIFS) + motif_index + 1
            rows.append({"id": artwork_id, "title": f"{name.capitalize()}", "artist": artist,
                         "era": ARTISTS[artist][1], "motif": name, "seed": motif_index,
                         "file": f"{artwork_id:03d}-{name.replace(' ', '-')}.png"})
    return rows


def render(row: dict) -> Image.Image:
    manner = ARTISTS[row["artist"]][0]
    return manner(motif(row["motif"], row["seed"]))
