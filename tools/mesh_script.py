"""What the seeded rock generators in tools/ share: a height field closed into a solid, writing
the mesh as an OBJ (a few digits, no normals, so the file stays small and the same seed gives
the same bytes), the line that describes it, and a shaded preview for a quick look."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh


def height_field_solid(xs: np.ndarray, zs: np.ndarray, heights: np.ndarray) -> trimesh.Trimesh:
    """The solid under a height field ``heights[i, j]`` over the grid ``xs`` x ``zs`` (y up): the
    top surface, its rim dropped straight to y = 0, and a fan closing the base, so the mesh is a
    closed, consistently wound 2-manifold (a solid for the SDF's winding number)."""
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    nx, nz = X.shape
    top = np.stack([X, heights, Z], axis=-1).reshape(-1, 3)
    index = np.arange(nx * nz).reshape(nx, nz)
    a, b = index[:-1, :-1].ravel(), index[1:, :-1].ravel()
    c, d = index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    faces = [np.c_[a, c, b], np.c_[a, d, c]]  # y up: counter-clockwise seen from above

    # the rim, walked once around, and its copy on the floor; a fan from the base's centre
    rim = np.concatenate([index[:, 0], index[-1, 1:], index[-2::-1, -1], index[0, -2:0:-1]])
    m = len(rim)
    base = top[rim] * np.array([1.0, 0.0, 1.0])
    k = np.arange(m)
    a, b = rim, rim[(k + 1) % m]
    a0, b0 = len(top) + k, len(top) + (k + 1) % m
    centre = np.full(m, len(top) + m)
    faces += [np.c_[a, b, b0], np.c_[a, b0, a0], np.c_[centre, b0, a0]]
    vertices = np.concatenate([top, base, [[0.5 * (xs[0] + xs[-1]), 0.0, 0.5 * (zs[0] + zs[-1])]]])
    mesh = trimesh.Trimesh(vertices, np.concatenate(faces).astype(np.int64), process=True)
    mesh.fix_normals()
    if not mesh.is_watertight or mesh.volume <= 0:
        raise RuntimeError("the height field's mesh is not a closed, outward-wound solid")
    return mesh


def preview(mesh: trimesh.Trimesh, path: Path, views, limits, box_aspect, light) -> None:
    """Lambert-shaded views (elevation, azimuth) of the mesh, y up, within ``limits``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    light = np.asarray(light, np.float64) / np.linalg.norm(light)
    shade = np.clip(mesh.face_normals @ light, 0.0, 1.0) * 0.8 + 0.2
    colors = np.c_[shade * 0.62, shade * 0.6, shade * 0.56, np.ones_like(shade)]
    fig = plt.figure(figsize=(12, 5))
    for i, (elev, azim) in enumerate(views):
        ax = fig.add_subplot(1, len(views), i + 1, projection="3d")
        tris = mesh.vertices[mesh.faces][:, :, [0, 2, 1]]  # matplotlib's z is up
        ax.add_collection3d(Poly3DCollection(tris, facecolors=colors, edgecolor="none"))
        (x0, x1), (z0, z1), (y0, y1) = limits
        ax.set(xlim=(x0, x1), ylim=(z0, z1), zlim=(y0, y1), xlabel="x", ylabel="z", zlabel="y")
        ax.set_box_aspect(box_aspect)
        ax.view_init(elev, azim)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(description: str, make: Callable[[int], trimesh.Trimesh], seed: int, out: Path,
         show: Callable[[trimesh.Trimesh, Path], None]) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--preview", type=Path, help="also write a shaded PNG preview here")
    args = parser.parse_args()

    mesh = make(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(trimesh.exchange.obj.export_obj(mesh, include_normals=False, digits=5))
    lo, hi = mesh.bounds
    print(f"{args.out}: {len(mesh.faces)} triangles, {len(mesh.vertices)} vertices, "
          f"watertight={mesh.is_watertight}, volume={mesh.volume:.4f} m^3, "
          f"bounds {np.round(lo, 3).tolist()} .. {np.round(hi, 3).tolist()}, {args.out.stat().st_size} bytes")
    if args.preview:
        show(mesh, args.preview)
        print(f"preview: {args.preview}")
