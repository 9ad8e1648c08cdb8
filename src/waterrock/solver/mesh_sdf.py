"""The rock as a signed-distance volume: load a triangle mesh, place it, and sample its SDF on a grid.

Host side only (numpy and scipy): this runs once per rock and is cached on disk, and
``boundary.py`` uploads the resulting :class:`RockSDF` into Taichi fields.

Conventions: metres, y up; the SDF is negative inside the rock and sampled at the grid nodes
``origin + cell_size * (i, j, k)``.

Distance and sign come from libigl (see :func:`compute_rock_sdf`): the exact distance to the
nearest triangle, and the generalized winding number's sign (Jacobson, Kavan and Sorkine-Hornung
2013), which stays robust for small holes.

Mesh problems (see :func:`load_rock_mesh`): a missing file is :class:`FileNotFoundError`; a
directory, an unreadable, empty, non-finite or hopelessly open mesh is :class:`MeshError`; a
mesh that is not watertight is repaired if trimesh can close it, and used as it is otherwise,
with a :class:`MeshWarning` either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import igl
import numpy as np
import trimesh

from waterrock import files
from waterrock.progress import progress

# Bump when the algorithm or the cache layout changes, so stale caches are recomputed.
SDF_VERSION = 2
DEFAULT_CACHE_DIR = Path("~/.cache/waterrock/sdf")

Vec3 = Sequence[float]


class MeshError(ValueError):
    """A rock mesh that cannot be turned into a solid; the message names the file and the reason."""


class MeshWarning(UserWarning):
    """A rock mesh that needed repair, or whose inside is only inferred (holes)."""


# --- loading and placing the mesh ---------------------------------------------------------------


def rotation_matrix(rotate_deg: Vec3) -> np.ndarray:
    """Euler angles about the fixed x, y and z axes, applied in that order: R = Rz @ Ry @ Rx."""
    rx, ry, rz = np.radians(np.asarray(rotate_deg, dtype=float))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def load_rock_mesh(
    path: str | Path,
    translate: Vec3 = (0.0, 0.0, 0.0),
    rotate_deg: Vec3 = (0.0, 0.0, 0.0),
    scale: float = 1.0,
) -> trimesh.Trimesh:
    """Read an OBJ/PLY/STL/GLB rock and place it: scale, then rotate (x, y, z), then translate.

    GLB/GLTF scenes are flattened into one mesh. A mesh that is not watertight goes through trimesh's
    repair (merge vertices, drop degenerate faces, fix winding and normals, fill small holes): if that
    closes it, a :class:`MeshWarning` says so; if not, another warning says the inside will come from
    winding numbers, unless the mesh encloses no volume at all (an open sheet, a bowl), which is a
    :class:`MeshError`.
    """
    path = Path(path)
    check_mesh_file(path)
    try:
        # force="mesh" concatenates every geometry of a GLB scene, with its scene-graph transforms;
        # process=False keeps the file's vertices as they are, so that a NaN is seen, not dropped.
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as err:  # trimesh raises whatever its parsers raise on garbage
        raise MeshError(f"{path}: cannot read as a mesh: {type(err).__name__}: {err}") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise MeshError(f"{path}: no triangles in the file")
    bad = ~np.isfinite(mesh.vertices).all(axis=1)
    if bad.any():
        raise MeshError(f"{path}: {int(bad.sum())} vertices that are not finite numbers (NaN or inf), "
                        f"the first at index {int(np.flatnonzero(bad)[0])}")

    units = mesh.units  # the file's own, where its format says (glTF: metres); `waterrock scene` reads it
    mesh = trimesh.Trimesh(mesh.vertices.copy(), mesh.faces.copy(), process=True)
    if units:
        mesh.units = units
    if not mesh.is_watertight:
        _repair(mesh, path)
    if float(np.ptp(mesh.bounds, axis=0).max()) <= 0.0:
        raise MeshError(f"{path}: all vertices coincide")

    transform = np.eye(4)
    transform[:3, :3] = rotation_matrix(rotate_deg) * float(scale)
    transform[:3, 3] = translate
    mesh.apply_transform(transform)
    return mesh


def check_mesh_file(path: Path) -> None:
    """The checks that need only the file system (files.file_problem): a missing file is
    FileNotFoundError, a folder, a special file or an empty one a MeshError."""
    problem = files.file_problem(path)
    if problem == "file not found":
        raise FileNotFoundError(f"{path}: rock mesh: {problem}")
    if problem is not None:
        raise MeshError(f"{path}: rock mesh: {problem}")


def _repair(mesh: trimesh.Trimesh, path: Path) -> None:
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fix_normals(mesh)
    trimesh.repair.fill_holes(mesh)
    if mesh.is_watertight:
        warnings.warn(f"{path}: mesh was not watertight; repaired it (merged vertices, filled holes)",
                      MeshWarning, stacklevel=3)
        return
    # Probe just inside and just outside the surface: a mesh with small holes still has a clear
    # winding number there (about 1 and 0); an open sheet or a bowl has about 1/2 on both sides.
    rng = np.random.default_rng(0)
    faces = rng.choice(len(mesh.faces), size=min(256, len(mesh.faces)), replace=False)
    eps = 1e-3 * float(np.ptp(mesh.bounds, axis=0).max())
    centres, normals = mesh.triangles_center[faces], mesh.face_normals[faces]
    w_in = winding_number(centres - eps * normals, mesh)
    w_out = winding_number(centres + eps * normals, mesh)
    if np.median(w_in) < 0.0:  # consistently inside out
        mesh.invert()
        w_in, w_out = -w_in, -w_out
    clear = np.mean((w_in > 0.75) & (np.abs(w_out) < 0.25))
    if clear < 0.9:
        raise MeshError(f"{path}: mesh is open and encloses no clear volume ({clear:.0%} of probes "
                        f"have a clear inside); close it in a modelling tool")
    warnings.warn(f"{path}: mesh has holes trimesh cannot fill; the inside is inferred from winding "
                  f"numbers, which is reliable only if the holes are small", MeshWarning, stacklevel=3)


# --- the volume ----------------------------------------------------------------------------------


@dataclass
class RockSDF:
    """Signed distance in metres (negative inside the rock) at the nodes origin + cell_size * (i, j, k)."""

    origin: np.ndarray  # (3,) float32
    cell_size: float
    values: np.ndarray  # (nx, ny, nz) float32

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def upper(self) -> np.ndarray:
        """The last node's position: the grid spans origin .. upper."""
        return self.origin + self.cell_size * (np.asarray(self.shape) - 1)

    def sample(self, points: np.ndarray) -> np.ndarray:
        """Trilinear interpolation at points (n, 3).

        Outside the grid: the value at the nearest grid point plus the distance to it, which keeps
        the field positive and growing away from the rock (an upper bound of the true distance).
        """
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        clamped = np.clip(p, self.origin, self.upper)
        outside = np.linalg.norm(p - clamped, axis=1)
        return self._trilinear(clamped) + outside

    def gradient(self, points: np.ndarray) -> np.ndarray:
        """Unit outward normal at points (n, 3): central differences of the trilinear interpolant.

        The half-cell step smooths over the kinks of the interpolant at cell faces. Where the
        difference vanishes (a medial point) the result is the zero vector.
        """
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        step = 0.5 * self.cell_size
        g = np.empty_like(p)
        for axis in range(3):
            offset = np.zeros(3)
            offset[axis] = step
            g[:, axis] = self.sample(p + offset) - self.sample(p - offset)
        norm = np.linalg.norm(g, axis=1, keepdims=True)
        return np.divide(g, norm, out=np.zeros_like(g), where=norm > 0)

    def _trilinear(self, p: np.ndarray) -> np.ndarray:
        x = (p - self.origin) / self.cell_size
        i = np.clip(np.floor(x).astype(np.int64), 0, np.asarray(self.shape) - 2)
        f = x - i
        v = self.values
        out = np.zeros(len(p))
        for corner in np.ndindex(2, 2, 2):
            c = np.asarray(corner)
            weight = np.prod(np.where(c == 1, f, 1.0 - f), axis=1)
            out += weight * v[i[:, 0] + c[0], i[:, 1] + c[1], i[:, 2] + c[2]]
        return out


_NODES_PER_CALL = 1 << 20  # libigl's work per call: about 60 MB of points, distances and closest points


def compute_rock_sdf(mesh: trimesh.Trimesh, resolution: int = 64, padding: float = 0.1,
                     show_progress: bool = False) -> RockSDF:
    """SDF on a grid covering the mesh bounds plus ``padding`` metres on every side.

    The longest side gets ``resolution`` cells; the others as many as cover them. Distances are
    exact (libigl's AABB tree, ``igl.signed_distance`` unsigned); the sign is the generalized
    winding number (Jacobson, Kavan and Sorkine-Hornung 2013) in its fast, tree-based form
    (Barill et al. 2018, ``igl.fast_winding_number``): about 1 inside, 0 outside, and a smooth
    blend across holes, so a mesh with small holes still has a clear inside. The nodes go to
    libigl a slab at a time (about a million a call), which keeps a 256³ volume's peak memory to
    the volume itself and lets ``show_progress`` report how far the build is.
    """
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    lo, hi = mesh.bounds[0] - padding, mesh.bounds[1] + padding
    cell = float((hi - lo).max()) / resolution
    shape = tuple(int(n) for n in np.ceil((hi - lo) / cell - 1e-6).astype(np.int64) + 1)
    axes = [lo[a] + cell * np.arange(shape[a]) for a in range(3)]
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)

    values = np.empty(shape, dtype=np.float32)
    slab = max(1, _NODES_PER_CALL // (shape[1] * shape[2]))
    with progress(f"rock SDF {shape[0]}x{shape[1]}x{shape[2]}", total=shape[0], unit=" slices",
                  enabled=show_progress) as advance:
        for i in range(0, shape[0], slab):
            nodes = np.stack(np.meshgrid(axes[0][i: i + slab], axes[1], axes[2], indexing="ij"), -1).reshape(-1, 3)
            distance, *_ = igl.signed_distance(nodes, vertices, faces, sign_type=igl.SIGNED_DISTANCE_TYPE_UNSIGNED)
            # |w| so that a mesh wound inside out still has an inside
            inside = np.abs(igl.fast_winding_number(vertices, faces, nodes)) > 0.5
            values[i: i + slab] = np.where(inside, -distance, distance).reshape(-1, shape[1], shape[2])
            advance(min(slab, shape[0] - i))
    return RockSDF(origin=lo.astype(np.float32), cell_size=cell, values=values)


def winding_number(points: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    """The exact generalized winding number of the mesh at points (n, 3): about 1 inside a
    closed, outward-wound mesh, 0 outside, a smooth blend across holes (Jacobson et al. 2013)."""
    return igl.winding_number(np.ascontiguousarray(mesh.vertices, dtype=np.float64),
                              np.ascontiguousarray(mesh.faces, dtype=np.int64),
                              np.ascontiguousarray(np.reshape(points, (-1, 3)), dtype=np.float64))


# --- the cached entry point ------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path(os.environ.get("WATERROCK_CACHE_DIR") or DEFAULT_CACHE_DIR).expanduser()


def cache_key(path: str | Path, translate: Vec3, rotate_deg: Vec3, scale: float, resolution: int,
              padding: float) -> str:
    """sha256 over the mesh file's bytes, the placement, the grid and :data:`SDF_VERSION`."""
    h = hashlib.sha256(Path(path).read_bytes())
    params = {"translate": [float(x) for x in translate], "rotate_deg": [float(x) for x in rotate_deg],
              "scale": float(scale), "resolution": int(resolution), "padding": float(padding),
              "version": SDF_VERSION}
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()


def rock_sdf(
    path: str | Path,
    translate: Vec3 = (0.0, 0.0, 0.0),
    rotate_deg: Vec3 = (0.0, 0.0, 0.0),
    scale: float = 1.0,
    resolution: int = 64,
    padding: float = 0.1,
    cache_dir: str | Path | None = None,
    show_progress: bool = True,
) -> RockSDF:
    """The placed rock's SDF, from the disk cache when the same mesh and settings were seen before.

    Cache: ``<cache_dir>/<sha256>.npz``; ``cache_dir`` defaults to $WATERROCK_CACHE_DIR or
    ~/.cache/waterrock/sdf. A cache file that cannot be read is reported and recomputed.
    With a scene's rock: ``rock_sdf(r.mesh, r.translate, r.rotate_deg, r.scale, r.sdf_resolution, padding)``.
    """
    path = Path(path)
    check_mesh_file(path)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cached = folder / f"{cache_key(path, translate, rotate_deg, scale, resolution, padding)}.npz"
    if cached.exists():
        try:
            with np.load(cached) as data:
                sdf = RockSDF(data["origin"].astype(np.float32), float(data["cell_size"]),
                              data["values"].astype(np.float32))
            if sdf.values.ndim == 3 and sdf.origin.shape == (3,) and np.isfinite(sdf.values).all():
                return sdf
            raise ValueError("arrays of the wrong shape")
        except Exception as err:
            warnings.warn(f"{cached}: unreadable SDF cache ({type(err).__name__}: {err}); recomputing",
                          MeshWarning, stacklevel=2)

    sdf = compute_rock_sdf(load_rock_mesh(path, translate, rotate_deg, scale), resolution, padding,
                           show_progress=show_progress)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a temporary of its own, fsynced, then renamed: a concurrent reader never sees half a
        # file, a power cut leaves the old one or the new, and a failed write leaves no temporary
        files.save_npz(cached, compressed=False, origin=sdf.origin, cell_size=np.float64(sdf.cell_size),
                       values=sdf.values)
    except OSError as err:  # a read-only home must not stop the water
        warnings.warn(f"{cached}: cannot write SDF cache ({err})", MeshWarning, stacklevel=2)
    return sdf


def scene_rock_sdf(rock, support_radius: float, show_progress: bool = True) -> RockSDF | None:
    """The SDF of a scene's ``[rock]`` section (None without a mesh), padded by two support radii
    so that the boundary's density map covers every particle near the rock.

    The command line calls this before Taichi starts, so that a bad mesh is reported in one
    line; the solver calls it again and gets the same volume from the disk cache, or from this
    process's last volume where the cache cannot be written."""
    if rock.mesh is None:
        return None
    path = Path(rock.mesh)
    args = (path, tuple(rock.translate), tuple(rock.rotate_deg), float(rock.scale),
            int(rock.sdf_resolution), 2.0 * float(support_radius))
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    if stamp is not None and _last[0] == (args, stamp):
        return _last[1]
    sdf = rock_sdf(*args, show_progress=show_progress)
    _last[:] = [(args, stamp), sdf]
    return sdf


_last: list = [None, None]  # the arguments and the volume of scene_rock_sdf's last call
