"""What the seeded rock generators in tools/ share: writing the mesh as an OBJ (a few digits, no
normals, so the file stays small and the same seed gives the same bytes), the line that
describes it, and a shaded preview for a quick look."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh


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
