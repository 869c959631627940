"""``benchmarks/scans.py --colour-pieces``: the colour pieces tried beside the colour part, on pictures made here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scans  # noqa: E402

RED, BLUE, GREY = (230, 20, 20), (20, 20, 230), (128, 128, 128)


def halves(left, right, size=(40, 60)) -> np.ndarray:
    a = np.empty((*size, 3), np.uint8)
    a[:, : size[1] // 2] = left
    a[:, size[1] // 2:] = right
    return a


def cube(rgb, bins=4) -> int:
    return int(scans.cube_index(np.array([[rgb]], np.uint8), bins)[0, 0])


def test_edge_colours_count_only_the_pixels_at_a_boundary():
    flat = np.full((40, 60, 3), RED, np.uint8)
    assert not scans.edge_colours(flat, 16.0).any()
    shares = scans.edge_colours(halves(RED, BLUE), 16.0) ** 2
    assert set(np.flatnonzero(shares)) == {cube(RED), cube(BLUE)}
    assert abs(shares[cube(RED)] - 0.5) < 1e-6
    # a faint boundary is under the threshold
    assert not scans.edge_colours(halves((120, 120, 120), (130, 130, 130)), 16.0).any()


def test_colour_coherence_tells_a_flat_fill_from_a_checkerboard_of_the_same_colours():
    flat = scans.colour_coherence(halves(RED, BLUE))
    assert flat[cube(RED)] > 0.7 and flat[cube(BLUE)] > 0.7 and np.isclose(np.linalg.norm(flat), 1)
    checks = np.where((np.indices((40, 60)).sum(0) % 2 == 0)[..., None], RED, BLUE).astype(np.uint8)
    assert not scans.colour_coherence(checks).any()


def test_chroma_pieces_are_blind_to_grey_and_see_colour():
    grey = halves(GREY, (200, 200, 200))
    assert scans.chroma_edges(grey)[0] == 1 and scans.saturation(grey)[0] == 1
    coloured = halves(RED, BLUE)
    assert scans.chroma_edges(coloured)[1:].any() and scans.saturation(coloured)[0] == 0


def test_colour_pieces_close_the_colour_part_at_their_weight():
    arrays = [halves(RED, BLUE), halves(GREY, RED)]
    h = scans.histograms(arrays)
    h["piece"] = np.stack([scans.edge_colours(a, 16.0) for a in arrays])
    layers = np.eye(2, scans.LAYERS_DIM, dtype=np.float32)
    plain = scans.raw_parts(layers, h)["colour"]
    closed = scans.raw_parts(layers, h, colour_pieces=(("piece", 0.6),))["colour"]
    assert plain.shape == (2, 512) and closed.shape == (2, 512 + 64)
    assert np.allclose(np.linalg.norm(closed, axis=1), 1, atol=1e-5)
    assert np.allclose(closed[:, :512], plain / np.sqrt(1 + 0.36), atol=1e-6)
