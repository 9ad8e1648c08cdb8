"""Generate the rock hill people stand on, scenes/assets/rock_hill.obj, deterministically from a seed.

The work's rock is a hill at room scale that visitors climb and stand on while the water runs
over it. Its top is a height field over an 8 x 6 m grid (y up), built in this order:

1. the massif: a main summit off the centre and two lower shoulders (anisotropic bumps with a
   gentle, walkable fall, at most about 35 degrees), so the water has more than one way down,
2. ridges and gullies: ridged fractal noise, strongest on the flanks, splits the flow into
   channels and sheets (each octave a sum of sinusoids in random directions, whose crests
   curve freely, where a lattice noise's creases would line up with its grid),
3. hollows: a few bowls carved into the flanks, deep enough to hold water behind their lip,
4. ledges: the heights pulled towards a soft staircase, so the flanks break into steps that the
   water falls over,
5. the foot: the height eased down over the last ``FOOT`` metres to the grid's edge, where the
   hill meets the floor in a lip ``LIP`` high (a rim at y = 0 would fold onto the base).

The height field is closed into a solid (tools/mesh_script.height_field_solid). Run
``python tools/make_rock_hill.py [--preview out.png]`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

import mesh_script  # tools/, beside this script

SEED = 5
HALF_X, HALF_Z = 4.0, 3.0  # m: the hill's footprint, 8 x 6 m
PEAK = 1.75  # m: the summit's height
FOOT = 0.5  # m: the width of the rim over which the hill eases down to the floor
LIP = 0.02  # m: the hill's height at its edge
LEDGE = 0.28  # m: the height of a ledge's step
DX = 0.08  # m: the grid step (7,676 heights, 15,300 triangles on top)
OUT = Path(__file__).resolve().parents[1] / "scenes" / "assets" / "rock_hill.obj"


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def waves(x: np.ndarray, z: np.ndarray, rng: np.random.Generator, wavelength: float, octaves: int,
          ridged: bool = False, directions: int = 9) -> np.ndarray:
    """Fractal noise in about [-1, 1]: each octave ``directions`` sinusoids of one wavelength in
    random directions and phases; ``ridged`` folds each octave (1 - |n|) into sharp crests."""
    total, amplitude, norm = np.zeros_like(x), 1.0, 0.0
    for _ in range(octaves):
        k = 2 * np.pi / wavelength
        angle = rng.uniform(0, 2 * np.pi, directions)
        phase = rng.uniform(0, 2 * np.pi, directions)
        n = sum(np.sin(k * (x * np.cos(a) + z * np.sin(a)) + f) for a, f in zip(angle, phase, strict=True))
        n = n / np.sqrt(directions / 2)  # unit variance
        total += amplitude * ((1.0 - np.minimum(np.abs(n), 1.0)) ** 2 * 2 - 1 if ridged else n)
        norm += amplitude
        amplitude *= 0.5
        wavelength /= 2.03
    return total / norm


def bump(x, z, cx, cz, rx, rz, angle) -> np.ndarray:
    """A rounded, elongated bump, 1 at (cx, cz), its axes rx and rz turned by ``angle``; its
    flank falls like exp(-d^1.6), broader-shouldered than a Gaussian."""
    c, s = np.cos(angle), np.sin(angle)
    u = ((x - cx) * c + (z - cz) * s) / rx
    v = (-(x - cx) * s + (z - cz) * c) / rz
    return np.exp(-((u * u + v * v) ** 0.8))


def massif(x, z, rng) -> np.ndarray:
    """The summit and its shoulders: heights in [0, 1]."""
    cx, cz = rng.uniform(-0.8, 0.3), rng.uniform(-0.5, 0.3)
    h = bump(x, z, cx, cz, 2.6, 2.0, rng.uniform(0, np.pi))
    for _ in range(2):  # shoulders, on either side of the summit
        side = rng.choice([-1.0, 1.0])
        sx, sz = cx + side * rng.uniform(1.6, 2.4), cz + rng.uniform(-1.2, 1.2)
        h = np.maximum(h, rng.uniform(0.45, 0.6) * bump(x, z, sx, sz, 1.3, 1.0, rng.uniform(0, np.pi)))
    return h / h.max()


def hollows(x, z, h, rng, count: int = 4) -> np.ndarray:
    """Bowls carved into the flanks (where the massif is between 0.3 and 0.75 of the peak)."""
    out = np.zeros_like(x)
    flank = np.argwhere((h > 0.3) & (h < 0.75))
    for i in rng.choice(len(flank), count, replace=False):
        px, pz = x[tuple(flank[i])], z[tuple(flank[i])]
        r = rng.uniform(0.35, 0.55)
        out += rng.uniform(0.10, 0.16) * np.exp(-((x - px) ** 2 + (z - pz) ** 2) / (2 * r * r))
    return out


def ledges(y: np.ndarray, shift: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Heights pulled towards a soft staircase of LEDGE steps (flat treads, steep risers), its
    steps wandering by ``shift`` (m) and pulled by ``strength`` in [0, 1], so ledges come and go
    around the hill instead of ringing it like contour lines."""
    k = (y + shift) / LEDGE
    stair = (np.floor(k) + smoothstep((k - np.floor(k) - 0.6) / 0.4)) * LEDGE - shift
    return y + strength * (stair - y)


def height(x: np.ndarray, z: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # the footprint: a rounded rectangle, so the hill reaches its corners less than its sides
    r = ((np.abs(x) / HALF_X) ** 4 + (np.abs(z) / HALF_Z) ** 4) ** 0.25
    h = massif(x, z, rng) * smoothstep((1.0 - r) / 0.55)
    ridges = waves(x, z, rng, 2.4, octaves=3, ridged=True)
    bulges = waves(x, z, rng, 4.0, octaves=2)
    patches = waves(x, z, rng, 3.0, octaves=1)
    flanks = 4.0 * h * (1.0 - h)  # 1 on the flanks, 0 at the top and the foot
    y = PEAK * h * (1.0 + 0.1 * bulges) + 0.18 * flanks * ridges
    y = ledges(np.maximum(y, 0.0), 0.5 * LEDGE * bulges, 0.8 * smoothstep(1.5 * patches + 0.3))
    y = y - hollows(x, z, h, rng)
    edge = np.minimum(HALF_X - np.abs(x), HALF_Z - np.abs(z))
    y = np.maximum(y, 0.0) * smoothstep(edge / FOOT)
    return LIP + (PEAK - LIP) * y / y.max()


def make_rock_hill(seed: int = SEED) -> trimesh.Trimesh:
    xs = np.linspace(-HALF_X, HALF_X, int(round(2 * HALF_X / DX)) + 1)
    zs = np.linspace(-HALF_Z, HALF_Z, int(round(2 * HALF_Z / DX)) + 1)
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    return mesh_script.height_field_solid(xs, zs, height(X, Z, seed))


def preview(mesh: trimesh.Trimesh, path: Path) -> None:
    """Lambert-shaded views from the front and from above, for a quick look."""
    mesh_script.preview(mesh, path, views=[(25, -70), (60, -30)], limits=((-4.2, 4.2), (-3.2, 3.2), (0, 2.2)),
                        box_aspect=(8.4, 6.4, 2.2), light=(0.3, 0.7, 0.65))


if __name__ == "__main__":
    mesh_script.main(__doc__.splitlines()[0], make_rock_hill, SEED, OUT, preview)
