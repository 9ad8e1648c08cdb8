"""Generate the upstream scene's channel, scenes/assets/slope.obj, deterministically from a seed.

An inclined trough cut into a solid ramp that stands on the floor: the bed falls from its high
end at -x to its low end at +x, low walls on both sides keep the water in, and a few seeded
irregularities make the flow uneven. The top is a height field over a grid in x and z:

1. the bed's long profile: a straight fall, with two or three short steps (the bed drops faster
   over a few centimetres, a small cascade) and the fall rescaled to be exactly ``DROP`` overall,
2. boulders on the bed: a few Gaussian bumps off the centre line, which split and turn the stream,
3. a few centimetre-scale ripples (random sinusoids), so no two cross-sections are alike,
4. the walls: the bed rises smoothly into a flat crest ``WALL`` above it on each side.

The height field's edges drop straight to y = 0 and a fan closes the base, so the mesh is a
closed, consistently wound 2-manifold (a solid for the SDF's winding number), and water that
spills over a wall falls beside the ramp to the floor. The ramp runs ``OVERHANG`` past the
domain's x faces (+-0.8 m in scenes/upstream.toml), so there is no gap between its ends and the
domain's walls. Run ``python tools/make_slope.py [--preview out.png]`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

import mesh_script  # tools/, beside this script

SEED = 11
HALF_LENGTH = 0.8  # m: the bed falls from x = -0.8 to x = +0.8 (the domain's x faces)
OVERHANG = 0.04  # m: the ramp runs this far past each end
TOP, DROP = 0.70, 0.50  # m: bed height at the high end, and how far it falls to the low end
HALF_BED = 0.14  # m: flat bed from the centre line; the wall's inner face rises from here ...
HALF_INNER = 0.19  # ... to its crest here
HALF_OUTER = 0.23  # m: the crest's outer edge, where the ramp's side drops to the floor
WALL = 0.08  # m: crest height above the bed
DX = 0.03  # m: grid step along the channel
OUT = Path(__file__).resolve().parents[1] / "scenes" / "assets" / "slope.obj"


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def z_nodes() -> np.ndarray:
    """Across the channel: the bed at about 2.5 cm, finer on the wall's curved inner face."""
    bed = np.linspace(-HALF_BED, HALF_BED, 12)
    face = np.linspace(HALF_BED, HALF_INNER, 5)[1:]
    right = np.concatenate([face, [HALF_OUTER]])
    return np.concatenate([-right[::-1], bed, right])


def bed_profile(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bed height along the centre line: a straight fall with short steps, TOP at -HALF_LENGTH
    and TOP - DROP at +HALF_LENGTH, monotone (the water never meets a rise it must climb)."""
    n_steps = int(rng.integers(2, 4))
    where = np.sort(rng.uniform(-0.45, 0.55, n_steps))
    heights = rng.uniform(0.03, 0.05, n_steps)
    widths = rng.uniform(0.03, 0.05, n_steps)

    def fall(u):
        s = (u + HALF_LENGTH) / (2 * HALF_LENGTH)  # the straight part, 0 to 1
        for c, a, w in zip(where, heights, widths, strict=True):
            s = s + a / DROP * smoothstep((u - c) / w + 0.5)
        return s

    f0, f1 = fall(np.array(-HALF_LENGTH)), fall(np.array(HALF_LENGTH))
    return TOP - DROP * (fall(x) - f0) / (f1 - f0)


def boulders(x: np.ndarray, z: np.ndarray, rng: np.random.Generator, count: int = 4) -> np.ndarray:
    """Gaussian bumps on the bed, off the centre line, none in the pour zone or the outlet."""
    cx = np.sort(rng.uniform(-0.45, 0.55, count))
    cz = rng.uniform(0.03, 0.09, count) * np.where(np.arange(count) % 2 == 0, 1.0, -1.0)
    amp = rng.uniform(0.02, 0.035, count)
    sigma = rng.uniform(0.035, 0.055, count)
    out = np.zeros_like(x)
    for a, s, px, pz in zip(amp, sigma, cx, cz, strict=True):
        out += a * np.exp(-((x - px) ** 2 + (z - pz) ** 2) / (2 * s * s))
    return out


def ripples(x: np.ndarray, z: np.ndarray, rng: np.random.Generator, count: int = 5) -> np.ndarray:
    """A few random sinusoids, 2-3 mm each: the bed's roughness on the scale of the particles."""
    out = np.zeros_like(x)
    for _ in range(count):
        k = rng.uniform(12.0, 30.0)  # rad/m: wavelengths of 20 to 50 cm
        angle = rng.uniform(-0.8, 0.8)  # mostly across the flow
        phase = rng.uniform(0.0, 2 * np.pi)
        out += rng.uniform(0.002, 0.003) * np.sin(k * (x * np.cos(angle) + z * np.sin(angle)) + phase)
    return out


def height(x: np.ndarray, z: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bed = bed_profile(x, rng)
    rise = smoothstep((np.abs(z) - HALF_BED) / (HALF_INNER - HALF_BED))
    floor = (boulders(x, z, rng) + ripples(x, z, rng)) * (1.0 - rise)  # the crest stays flat
    return bed + floor + WALL * rise


def make_slope(seed: int = SEED) -> trimesh.Trimesh:
    n = int(round(2 * (HALF_LENGTH + OVERHANG) / DX)) + 1
    xs = np.linspace(-HALF_LENGTH - OVERHANG, HALF_LENGTH + OVERHANG, n)
    zs = z_nodes()
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    return mesh_script.height_field_solid(xs, zs, height(X, Z, seed))


def preview(mesh: trimesh.Trimesh, path: Path) -> None:
    """Lambert-shaded views from the side and from above the low end, for a quick look."""
    mesh_script.preview(mesh, path, views=[(25, -70), (55, -20)], limits=((-0.9, 0.9), (-0.9, 0.9), (0, 0.8)),
                        box_aspect=(1, 1, 0.45), light=(0.3, 0.7, 0.65))


if __name__ == "__main__":
    mesh_script.main(__doc__.splitlines()[0], make_slope, SEED, OUT, preview)
