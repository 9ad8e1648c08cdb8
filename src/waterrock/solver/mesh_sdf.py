"""The rock as a signed-distance volume: load a triangle mesh, place it, and sample its SDF on a grid.

Host side only (numpy and scipy): this runs once per rock and is cached on disk, and
``boundary.py`` uploads the resulting :class:`RockSDF` into Taichi fields.

Conventions: metres, y up; the SDF is negative inside the rock and sampled at the grid nodes
``origin + cell_size * (i, j, k)``.

Distance is exact (point-triangle distance to every triangle that could be nearest, see
:func:`unsigned_distance`). The sign comes from six axis-aligned half-rays per node that vote by
crossing parity; where they disagree (a ray grazed an edge, or slipped through a hole in a mesh
that is not closed) the node is settled by the generalized winding number (Jacobson, Kavan and
Sorkine-Hornung 2013), which stays robust for small holes.

Mesh problems (see :func:`load_rock_mesh`): a missing file is :class:`FileNotFoundError`; an
unreadable, empty or hopelessly open mesh is :class:`MeshError`; a mesh that is not watertight is
repaired if trimesh can close it, and used as it is otherwise, with a :class:`MeshWarning` either way.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

# Bump when the algorithm or the cache layout changes, so stale caches are recomputed.
SDF_VERSION = 1
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
    if not path.is_file():
        raise FileNotFoundError(f"{path}: rock mesh not found")
    if path.stat().st_size == 0:
        raise MeshError(f"{path}: empty file")
    try:
        # force="mesh" concatenates every geometry of a GLB scene, with its scene-graph transforms.
        mesh = trimesh.load(path, force="mesh")
    except Exception as err:  # trimesh raises whatever its parsers raise on garbage
        raise MeshError(f"{path}: cannot read as a mesh: {type(err).__name__}: {err}") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise MeshError(f"{path}: no triangles in the file")
    if not np.isfinite(mesh.vertices).all():
        raise MeshError(f"{path}: vertices that are not finite numbers")

    mesh = trimesh.Trimesh(mesh.vertices.copy(), mesh.faces.copy(), process=True)
    if not mesh.is_watertight:
        _repair(mesh, path)
    if float(np.ptp(mesh.bounds, axis=0).max()) <= 0.0:
        raise MeshError(f"{path}: all vertices coincide")

    transform = np.eye(4)
    transform[:3, :3] = rotation_matrix(rotate_deg) * float(scale)
    transform[:3, 3] = translate
    mesh.apply_transform(transform)
    return mesh


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
    w_in = winding_number(centres - eps * normals, mesh.triangles)
    w_out = winding_number(centres + eps * normals, mesh.triangles)
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


def compute_rock_sdf(mesh: trimesh.Trimesh, resolution: int = 64, padding: float = 0.1) -> RockSDF:
    """SDF on a grid covering the mesh bounds plus ``padding`` metres on every side.

    The longest side gets ``resolution`` cells; the others as many as cover them.
    """
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    lo, hi = mesh.bounds[0] - padding, mesh.bounds[1] + padding
    cell = float((hi - lo).max()) / resolution
    shape = np.ceil((hi - lo) / cell - 1e-6).astype(np.int64) + 1
    axes = [lo[a] + cell * np.arange(shape[a]) for a in range(3)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)

    triangles = np.asarray(mesh.triangles, dtype=np.float64)
    distance, _ = unsigned_distance(nodes, triangles)
    votes = ray_parity_votes(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces), lo, cell,
                             tuple(shape)).reshape(-1)
    inside = votes >= 4
    disputed = np.flatnonzero((votes > 0) & (votes < 6))
    if disputed.size:
        # |w| so that a mesh wound inside out still has an inside
        inside[disputed] = np.abs(winding_number(nodes[disputed], triangles)) > 0.5
    values = np.where(inside, -distance, distance).reshape(tuple(shape))
    return RockSDF(origin=lo.astype(np.float32), cell_size=cell, values=values.astype(np.float32))


# --- exact unsigned distance -----------------------------------------------------------------------


class _Triangles:
    """Per-triangle data for the closest-point test, one row per quantity (np.take along rows is fast)."""

    def __init__(self, triangles: np.ndarray):
        v0, v1, v2 = triangles[:, 0], triangles[:, 1], triangles[:, 2]
        edges = np.stack([v1 - v0, v2 - v1, v0 - v2])  # (3, T, 3)
        n = np.cross(edges[0], -edges[2])
        length = np.linalg.norm(n, axis=1, keepdims=True)
        n = np.divide(n, length, out=np.zeros_like(n), where=length > 1e-300)
        # Inward edge normals in the triangle's plane; zero for a degenerate triangle, whose
        # "inside" test is then forced false so that only its edges count.
        inward = np.cross(n[None], edges)
        inv_len2 = 1.0 / np.maximum((edges**2).sum(-1), 1e-300)  # (3, T)
        rows = [v0.T, edges.transpose(0, 2, 1).reshape(9, -1), inward.transpose(0, 2, 1).reshape(9, -1),
                n.T, inv_len2]
        self.rows = np.ascontiguousarray(np.concatenate(rows))  # (27, T)
        self.degenerate = length[:, 0] <= 1e-300

    def squared_distance(self, q: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Squared distance from points q (..., 3) to triangles idx (...): the closest point is the
        projection onto the plane if that falls inside the triangle, else the nearest edge point."""
        r = np.take(self.rows, idx, axis=1)  # (27, ...)
        d0 = [q[..., a] - r[a] for a in range(3)]  # q - v0
        e = [r[3 + 3 * i: 6 + 3 * i] for i in range(3)]
        d = [d0, [d0[a] - e[0][a] for a in range(3)], [d0[a] + e[2][a] for a in range(3)]]  # q - v_i
        inside = ~self.degenerate[idx]
        best = None
        for i in range(3):
            di, ei, mi = d[i], e[i], r[12 + 3 * i: 15 + 3 * i]
            inside &= di[0] * mi[0] + di[1] * mi[1] + di[2] * mi[2] >= 0.0
            t = np.clip((di[0] * ei[0] + di[1] * ei[1] + di[2] * ei[2]) * r[24 + i], 0.0, 1.0)
            s2 = (di[0] - t * ei[0]) ** 2 + (di[1] - t * ei[1]) ** 2 + (di[2] - t * ei[2]) ** 2
            best = s2 if best is None else np.minimum(best, s2)
        plane = d0[0] * r[21] + d0[1] * r[22] + d0[2] * r[23]
        return np.where(inside, plane * plane, best)


_PAIRS_PER_CHUNK = 1 << 16  # keeps the (27, chunk) gathers in cache


def unsigned_distance(points: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance from points (n, 3) to the nearest of triangles (T, 3, 3), and that triangle.

    A triangle t is never nearer than ``|q - c_t| - R_t`` (c_t its centroid, R_t its largest
    centroid-to-vertex radius). So: take the best of the few triangles with the nearest centroids as
    an upper bound d, then test every triangle whose centroid lies within d + R of q (KD-tree ball
    query); no other can be nearer. Triangles are bucketed by R, so a few long slivers (a flat base)
    do not widen the ball for all the others.
    """
    points = np.asarray(points, dtype=np.float64)
    soa = _Triangles(triangles)
    centroid = triangles.mean(axis=1)
    radius = np.linalg.norm(triangles - centroid[:, None], axis=2).max(axis=1)
    bucket_of = np.searchsorted(np.median(radius) * 1.5 ** np.arange(1, 40), radius)
    buckets = [np.flatnonzero(bucket_of == b) for b in np.unique(bucket_of)]
    trees = [cKDTree(centroid[m]) for m in buckets]

    # Upper bound from the nearest centroids of each bucket.
    best2 = np.full(len(points), np.inf)
    nearest = np.zeros(len(points), dtype=np.int64)
    for members, tree in zip(buckets, trees, strict=True):
        k = min(8, len(members))
        _, local = tree.query(points, k=k, workers=-1)
        _improve(soa, points, members[np.reshape(local, (len(points), k))], best2, nearest)

    # Every triangle that could still be nearer, per bucket.
    upper = np.sqrt(best2)
    for members, tree in zip(buckets, trees, strict=True):
        balls = tree.query_ball_point(points, upper + radius[members].max(), workers=-1, return_sorted=False)
        counts = np.fromiter(map(len, balls), dtype=np.int64, count=len(points))
        flat = np.fromiter(itertools.chain.from_iterable(balls), dtype=np.int64, count=int(counts.sum()))
        _improve_ragged(soa, points, members[flat], counts, best2, nearest)
    return np.sqrt(best2), nearest


def _improve(soa: _Triangles, points: np.ndarray, candidates: np.ndarray, best2: np.ndarray,
             nearest: np.ndarray) -> None:
    """Lower best2/nearest where one of the candidates (n, k) per point is nearer."""
    chunk = max(1, _PAIRS_PER_CHUNK // candidates.shape[1])
    for s in range(0, len(points), chunk):
        c = candidates[s: s + chunk]
        d2 = soa.squared_distance(points[s: s + chunk, None, :], c)
        j = d2.argmin(axis=1)
        rows = np.arange(len(j))
        better = d2[rows, j] < best2[s: s + chunk]
        best2[s: s + chunk][better] = d2[rows, j][better]
        nearest[s: s + chunk][better] = c[rows, j][better]


def _improve_ragged(soa: _Triangles, points: np.ndarray, candidates: np.ndarray, counts: np.ndarray,
                    best2: np.ndarray, nearest: np.ndarray) -> None:
    """As :func:`_improve`, for ``counts[i]`` consecutive candidates per point i."""
    ends = np.cumsum(counts)
    starts = ends - counts
    s = 0
    while s < len(points):
        # whole points per chunk, about _PAIRS_PER_CHUNK pairs
        e = max(s + 1, int(np.searchsorted(ends, starts[s] + _PAIRS_PER_CHUNK, side="right")))
        nonempty = np.flatnonzero(counts[s:e]) + s
        if nonempty.size:
            lo, hi = starts[s], ends[e - 1]
            owner = np.repeat(np.arange(s, e), counts[s:e])
            d2 = soa.squared_distance(points[owner], candidates[lo:hi])
            seg = starts[nonempty] - lo
            d2min = np.minimum.reduceat(d2, seg)
            # the first candidate attaining the minimum, per point
            hit = np.flatnonzero(d2 == np.repeat(d2min, counts[nonempty]))
            first = hit[np.unique(owner[hit], return_index=True)[1]]
            better = d2min < best2[nonempty]
            best2[nonempty[better]] = d2min[better]
            nearest[nonempty[better]] = candidates[lo:hi][first[better]]
        s = e


# --- inside / outside ------------------------------------------------------------------------------


def ray_parity_votes(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, cell: float,
                     shape: tuple[int, int, int]) -> np.ndarray:
    """For each grid node, how many of its six axis-aligned half-rays cross the surface an odd number
    of times.

    Per axis, every triangle is rasterised onto the grid columns its projection covers (point in
    triangle by 2D edge functions); a crossing at height t counts for the nodes above it (the -axis
    ray) and, through the column total, for those below (the +axis ray). 6: inside, 0: outside.

    Grid columns often pass exactly through vertices and edges (a mesh's extreme vertices sit on
    grid lines). Each edge function is therefore evaluated from its lower-numbered vertex, so the
    two triangles sharing an edge see exactly opposite values, and an exact zero is resolved as if
    the column were nudged by (eps, eps^2) (simulation of simplicity): every crossing counts once.
    """
    shape = tuple(int(x) for x in shape)
    votes = np.zeros(shape, dtype=np.int8)
    for a in range(3):
        b, c = [x for x in range(3) if x != a]
        p = vertices[:, [b, c]][faces]  # (T, 3, 2)
        lo = np.maximum(np.ceil((p.min(axis=1) - origin[[b, c]]) / cell).astype(np.int64), 0)
        hi = np.minimum(np.floor((p.max(axis=1) - origin[[b, c]]) / cell).astype(np.int64),
                        np.array([shape[b], shape[c]]) - 1)
        span = np.maximum(hi - lo + 1, 0)
        count = span[:, 0] * span[:, 1]
        tri = np.repeat(np.arange(len(faces)), count)
        local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        col = lo[tri] + np.stack([local // span[tri, 1], local % span[tri, 1]], axis=1)
        x = origin[[b, c]] + cell * col  # (m, 2) column positions

        w = np.stack([_edge_function(vertices[:, [b, c]], faces[tri, i], faces[tri, j], x)
                      for i, j in ((1, 2), (2, 0), (0, 1))], axis=1)
        hit = (w > 0).all(axis=1) | (w < 0).all(axis=1)
        w, tri, col = w[hit], tri[hit], col[hit]
        t = (w * vertices[faces[tri], a]).sum(axis=1) / w.sum(axis=1)  # the crossing along the axis
        first_above = np.clip(np.ceil((t - origin[a]) / cell), 0, shape[a]).astype(np.int64)
        n_a = shape[a] + 1
        flat = (col[:, 0] * shape[c] + col[:, 1]) * n_a + first_above
        hist = np.bincount(flat, minlength=shape[b] * shape[c] * n_a).reshape(shape[b], shape[c], n_a)
        below = np.cumsum(hist, axis=2)  # crossings at or below each node
        total = below[:, :, -1:]
        per_column = (below[:, :, :-1] % 2) + ((total - below[:, :, :-1]) % 2)
        votes += np.moveaxis(per_column.astype(np.int8), 2, a)
    return votes


def _edge_function(v2d: np.ndarray, i: np.ndarray, j: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Twice the signed area of (v_i, v_j, x), never zero: exact ties broken consistently per edge."""
    flip = i > j
    p, q = v2d[np.where(flip, j, i)], v2d[np.where(flip, i, j)]
    e = q - p
    w = e[:, 0] * (x[:, 1] - p[:, 1]) - e[:, 1] * (x[:, 0] - p[:, 0])
    # x nudged by (eps, eps^2): w changes by -e_y eps + e_x eps^2
    tie = np.where(e[:, 1] != 0, -np.sign(e[:, 1]), np.sign(e[:, 0]))
    w = np.where(w == 0, tie, w)
    return np.where(flip, -w, w)


def winding_number(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Generalized winding number: the solid angle of the mesh seen from each point, over 4 pi.

    Solid angle of a triangle from Van Oosterom and Strackee (1983). About 1 inside a closed,
    outward-wound mesh, 0 outside, and a smooth blend across holes (Jacobson et al. 2013).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    out = np.empty(len(points))
    chunk = max(1, 2_000_000 // max(len(triangles), 1))
    for s in range(0, len(points), chunk):
        q = points[s: s + chunk, None, None, :]
        r = triangles[None] - q  # (m, T, 3, 3)
        length = np.linalg.norm(r, axis=3)
        a, b, c = r[:, :, 0], r[:, :, 1], r[:, :, 2]
        la, lb, lc = length[:, :, 0], length[:, :, 1], length[:, :, 2]
        det = (a * np.cross(b, c)).sum(-1)
        den = la * lb * lc + (a * b).sum(-1) * lc + (a * c).sum(-1) * lb + (b * c).sum(-1) * la
        out[s: s + chunk] = np.arctan2(det, den).sum(axis=1) / (2.0 * math.pi)
    return out


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
) -> RockSDF:
    """The placed rock's SDF, from the disk cache when the same mesh and settings were seen before.

    Cache: ``<cache_dir>/<sha256>.npz``; ``cache_dir`` defaults to $WATERROCK_CACHE_DIR or
    ~/.cache/waterrock/sdf. A cache file that cannot be read is reported and recomputed.
    With a scene's rock: ``rock_sdf(r.mesh, r.translate, r.rotate_deg, r.scale, r.sdf_resolution, padding)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: rock mesh not found")
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

    sdf = compute_rock_sdf(load_rock_mesh(path, translate, rotate_deg, scale), resolution, padding)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz.tmp", delete=False) as tmp:
            np.savez(tmp, origin=sdf.origin, cell_size=np.float64(sdf.cell_size), values=sdf.values)
        os.replace(tmp.name, cached)
    except OSError as err:  # a read-only home must not stop the water
        warnings.warn(f"{cached}: cannot write SDF cache ({err})", MeshWarning, stacklevel=2)
    return sdf
