"""Generate the shipped granite boulder, scenes/assets/boulder.obj, deterministically from a seed.

A weathered granite boulder is a block cut by joint planes whose edges and corners have been
rounded off, with a rough, grainy skin. So the shape is built in that order:

1. a soft-min of a dozen random half-spaces gives a convex block with rounded edges (the joints),
2. fractal value noise (fBm) makes the large-scale bulges, ridged noise adds the sharper creases,
3. the block is squashed, its base cut flat (it rests on the floor), and it is scaled to size.

Every displacement is radial on an icosphere, so the mesh stays a closed, consistently wound
2-manifold. Run ``python tools/make_boulder.py [--preview out.png]`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

import mesh_script  # tools/, beside this script

SEED = 7
SIZE = np.array([0.9, 0.5, 0.78])  # width (x), height (y), depth (z) in metres
OUT = Path(__file__).resolve().parents[1] / "scenes" / "assets" / "boulder.obj"


def value_noise(p: np.ndarray, rng: np.random.Generator, period: int = 64) -> np.ndarray:
    """3D value noise in [-1, 1] at points (n, 3): random lattice values, quintic interpolation."""
    lattice = rng.uniform(-1.0, 1.0, (period, period, period))
    cell = np.floor(p).astype(np.int64)
    f = p - cell
    w = f * f * f * (f * (f * 6.0 - 15.0) + 10.0)  # C2-smooth fade, no creases along lattice planes
    out = np.zeros(len(p))
    for corner in np.ndindex(2, 2, 2):
        c = np.asarray(corner)
        idx = (cell + c) % period
        weight = np.prod(np.where(c == 1, w, 1.0 - w), axis=1)
        out += weight * lattice[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out


def fbm(p: np.ndarray, rng: np.random.Generator, octaves: int, ridged: bool = False) -> np.ndarray:
    """Fractal sum of value noise; ``ridged`` folds each octave (1 - |n|) into sharp crests."""
    total = np.zeros(len(p))
    amplitude, frequency, norm = 1.0, 1.0, 0.0
    for _ in range(octaves):
        offset = rng.uniform(0.0, 32.0, 3)  # decorrelate the octaves
        n = value_noise(p * frequency + offset, rng)
        total += amplitude * ((1.0 - np.abs(n)) ** 2 if ridged else n)
        norm += amplitude
        amplitude *= 0.5
        frequency *= 2.03  # not exactly 2, so lattice artefacts of the octaves do not line up
    return total / norm


def jointed_block(directions: np.ndarray, rng: np.random.Generator, planes: int = 14) -> np.ndarray:
    """Radius along each unit direction of a convex block cut by random joint planes, edges rounded.

    The exact polytope radius is min_i d_i / (u . n_i) over planes facing u; a log-sum-exp soft-min
    of it rounds the edges the way weathering does.
    """
    normals = rng.normal(size=(planes, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    offsets = rng.uniform(0.78, 0.95, planes)
    facing = directions @ normals.T
    t = np.where(facing > 1e-3, offsets / np.maximum(facing, 1e-3), 1.6)
    t = np.minimum(t, 1.6)  # the sphere of radius 1.6 caps directions no plane bounds
    k = 0.045  # rounding radius, relative to the block
    return -k * np.log(np.exp(-t / k).sum(axis=1))


def make_boulder(seed: int = SEED, subdivisions: int = 4) -> trimesh.Trimesh:
    rng = np.random.default_rng(seed)
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    u = sphere.vertices / np.linalg.norm(sphere.vertices, axis=1, keepdims=True)

    r = jointed_block(u, rng)
    r *= 1.0 + 0.10 * fbm(u * 1.6, rng, octaves=3)  # large bulges
    r *= 1.0 - 0.045 * fbm(u * 5.0, rng, octaves=4, ridged=True)  # creases and grain
    v = u * r[:, None]

    # Cut the base flat a little below the middle; clamping keeps the topology intact.
    base = np.quantile(v[:, 1], 0.22)
    v[:, 1] = np.maximum(v[:, 1], base)

    lo, hi = v.min(axis=0), v.max(axis=0)
    v = (v - lo) / (hi - lo) * SIZE  # fit the box, base at y = 0
    v[:, [0, 2]] -= SIZE[[0, 2]] / 2  # centred in x and z
    mesh = trimesh.Trimesh(v, sphere.faces, process=True)
    mesh.fix_normals()
    return mesh


def preview(mesh: trimesh.Trimesh, path: Path) -> None:
    """Lambert-shaded views from the front and from above, for a quick look."""
    mesh_script.preview(mesh, path, views=[(12, -60), (55, 30)], limits=((-0.5, 0.5), (-0.5, 0.5), (0, 0.6)),
                        box_aspect=(1, 1, 0.6), light=(0.3, 0.7, -0.65))


if __name__ == "__main__":
    mesh_script.main(__doc__.splitlines()[0], make_boulder, SEED, OUT, preview)
