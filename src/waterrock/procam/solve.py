"""From structured light and the rock to calibrated devices.

The camera's pose in the scene comes from its depth image and the rock mesh: the depth points
are aligned with the mesh by point-to-plane ICP (Chen & Medioni 1992; the linearised step of
Low, "Linear least-squares optimization for point-to-plane ICP", 2004), starting from the
rough pose of the tracker's calibration. Then each camera pixel's ray meets the rock (sphere
tracing on the mesh's exact distance), so every decoded pixel joins a scene point to the
projector pixel that lit it, and each projector is a camera solved from those pairs: a direct
linear transform (Hartley & Zisserman 2003, sec. 7.1) for a first lens and pose, refined with
distortion by OpenCV's calibrateCamera (Zhang 2000), whose residual is the reprojection error.

A single view fixes a pinhole's focal length, principal point and distance together only when
the points it sees are not all on one plane: a flat wall leaves them free to trade against one
another, so a flat scene is refused with the figures that show it (RoomAlive's users' most
common failure; Zhang needs several views of a plane for the same reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import igl
import numpy as np
import trimesh

from waterrock.procam.graycode import Decoded
from waterrock.procam.model import Pinhole

MIN_RELIEF = 0.005  # the points' RMS distance from their best plane, as a share of their extent
MIN_PAIRS = 200  # correspondences a projector needs (its 11 parameters and their outliers)
FLAGS = (cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_ASPECT_RATIO | cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K2
         | cv2.CALIB_FIX_K3)


class CalibrationError(ValueError):
    """A calibration that cannot be solved from what was seen; the message says why."""


# --- correspondences -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Correspondences:
    """Camera pixels (distorted, as captured) and the projector pixels that lit them, (N, 2)
    each: one pair per block of camera pixels, both averaged over the block."""

    camera: np.ndarray
    projector: np.ndarray


def block_correspondences(decoded: Decoded, block: int = 4, min_share: float = 0.5,
                          max_residual: float | None = None) -> Correspondences:
    """Average the decode over ``block`` x ``block`` camera pixels: a projector pixel's code is an
    integer, so one camera pixel knows its projector pixel to +-0.5; over a block in which the
    map is smooth the average knows it to a fraction of that. Each block fits an affine map
    (camera to projector pixels) to its trusted pixels, at least ``min_share`` of them; blocks
    where a trusted pixel is more than ``max_residual`` projector pixels off the fit (an edge of
    the rock, a decode error) are left out. The pair is the trusted pixels' mean position and
    the fit there. ``max_residual`` defaults to 1.5 px, widened by the half group a coarse
    decode leaves unknown."""
    if max_residual is None:
        max_residual = 1.5 + 0.5 * ((1 << decoded.coarse) - 1)
    h, w = decoded.valid.shape
    hb, wb = h // block, w // block

    def blocks(a):
        return a[: hb * block, : wb * block].reshape(hb, block, wb, block).swapaxes(1, 2).reshape(hb * wb, -1)

    weight = blocks(decoded.valid).astype(np.float64)
    count = weight.sum(axis=1)
    values = np.stack([blocks(decoded.column), blocks(decoded.row)], axis=2).astype(np.float64)  # (B, n, 2)
    yy, xx = np.mgrid[0:block, 0:block]
    design = np.column_stack([xx.ravel(), yy.ravel(), np.ones(block * block)])  # (n, 3), the same for every block
    ata = np.einsum("bn,ni,nj->bij", weight, design, design)
    atb = np.einsum("bn,ni,bnk->bik", weight, design, values)
    enough = count >= max(3, min_share * block * block)
    ata[~enough] = np.eye(3)  # solved, then dropped
    coef = np.linalg.solve(ata + 1e-9 * np.eye(3), atb)  # (B, 3, 2)
    fit = np.einsum("ni,bik->bnk", design, coef)
    resid = np.where(weight[:, :, None] > 0, np.abs(values - fit), 0.0).max(axis=(1, 2))
    keep = np.nonzero(enough & (resid <= max_residual))[0]
    mean = np.einsum("bn,ni->bi", weight[keep], design) / count[keep, None]  # (x, y, 1) within the block
    projector = np.einsum("bi,bik->bk", mean, coef[keep])
    by, bx = np.divmod(keep, wb)
    camera = np.column_stack([bx * block + mean[:, 0], by * block + mean[:, 1]])
    return Correspondences(camera, projector)


# --- the rock ------------------------------------------------------------------------------------


def _mesh_arrays(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    return (np.ascontiguousarray(mesh.vertices, np.float64), np.ascontiguousarray(mesh.faces, np.int64))


def closest_points(mesh: trimesh.Trimesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance to the mesh, closest point and the face's normal for each point (libigl's AABB tree)."""
    v, f = _mesh_arrays(mesh)
    d, face, closest, _ = igl.signed_distance(np.ascontiguousarray(points, np.float64), v, f,
                                              sign_type=igl.SIGNED_DISTANCE_TYPE_UNSIGNED)
    return d, closest, np.asarray(mesh.face_normals)[face]


def ray_hits(mesh: trimesh.Trimesh, origin, directions: np.ndarray, tolerance: float = 1e-5,
             iterations: int = 96) -> np.ndarray:
    """Where rays from ``origin`` along unit ``directions`` (N, 3) first meet the mesh: (N, 3),
    NaN for a ray that misses. Sphere tracing (Hart 1996): step by the exact distance to the
    mesh, which never steps through it."""
    origin = np.asarray(origin, np.float64)
    lo, hi = mesh.bounds
    far = float(np.linalg.norm(np.maximum(np.abs(lo - origin), np.abs(hi - origin)))) * 1.01
    t = np.zeros(len(directions))
    active = np.ones(len(directions), bool)
    hit = np.zeros(len(directions), bool)
    for _ in range(iterations):
        idx = np.nonzero(active)[0]
        if not len(idx):
            break
        d, *_ = closest_points(mesh, origin + directions[idx] * t[idx, None])
        done = d < tolerance
        hit[idx[done]] = True
        t[idx] += d
        active[idx[done | (t[idx] > far)]] = False
    out = origin + directions * t[:, None]
    out[~hit] = np.nan
    return out


def relief(points: np.ndarray) -> tuple[float, float]:
    """The points' RMS distance from their best-fitting plane and their extent (the longest
    side of their principal box), metres."""
    p = np.asarray(points, np.float64)
    s = np.linalg.svd(p - p.mean(axis=0), compute_uv=False)
    rms = s[2] / np.sqrt(len(p))
    extent = 4.0 * s[0] / np.sqrt(len(p))  # +-2 standard deviations along the longest axis
    return float(rms), float(extent)


def check_relief(points: np.ndarray, what: str) -> None:
    rms, extent = relief(points)
    if rms < MIN_RELIEF * extent:
        raise CalibrationError(
            f"{what}: the rock points it sees lie within {1000 * rms:.1f} mm (RMS) of one plane, a relief of "
            f"{100 * rms / max(extent, 1e-9):.2f} % of their {extent:.2f} m extent (at least {100 * MIN_RELIEF:.0f} % "
            f"is needed): one view of a flat surface cannot tell a projector's focal length and principal point "
            f"from its distance. Calibrate with the rock in view, or keep the corner pin for a flat wall")


# --- the camera ----------------------------------------------------------------------------------


def depth_points(camera: Pinhole, depth_mm: np.ndarray, step: int = 4) -> np.ndarray:
    """The depth image's points in the camera's frame (every ``step``-th pixel that has a
    reading): (N, 3) metres. Depth is along the optical axis, as depth sensors report it."""
    h, w = depth_mm.shape
    yy, xx = np.mgrid[0:h:step, 0:w:step]
    z = depth_mm[::step, ::step].astype(np.float64) / 1000.0
    ok = z > 0
    n = camera.undistort(np.column_stack([xx[ok], yy[ok]]))
    return np.column_stack([n * z[ok, None], z[ok]])


@dataclass(frozen=True)
class PoseFit:
    camera: Pinhole
    rms_m: float  # the inliers' point-to-plane residual
    inliers: int


def solve_camera_pose(guess: Pinhole, depth_mm: np.ndarray, mesh: trimesh.Trimesh, iterations: int = 40,
                      trim: float = 0.05) -> PoseFit:
    """The camera's pose in the scene: its depth points aligned with the rock mesh by
    point-to-plane ICP from ``guess`` (intrinsics kept). Points farther than ``trim`` metres
    from the rock after the first steps (the floor, a visitor) are left out."""
    local = depth_points(guess, depth_mm)
    if len(local) < 100:
        raise CalibrationError(f"the depth image has {len(local)} readings on a 4-pixel grid: is the depth "
                               f"camera covered, or the rock out of its range?")
    rot, trans = guess.R.T, guess.centre  # camera -> scene
    limit = max(trim, 0.25)
    rms, inliers = np.inf, 0
    for it in range(iterations):
        world = local @ rot.T + trans
        d, closest, normal = closest_points(mesh, world)
        near = d < limit
        inliers = int(near.sum())
        if inliers < 100:
            raise CalibrationError(f"only {inliers} depth points lie within {limit * 100:.0f} cm of the rock at the "
                                   f"tracker's camera pose: the rough pose is too far off to start from")
        p, q, n = world[near], closest[near], normal[near]
        # min sum ((p + w x p + v - q) . n)^2 over the small rotation w and translation v
        a = np.column_stack([np.cross(p, n), n])
        b = -np.einsum("ij,ij->i", p - q, n)
        ata = a.T @ a
        if np.linalg.cond(ata) > 1e9:
            raise CalibrationError(
                "the depth points the camera sees cannot fix its pose on the rock (they are flat, or a "
                "ridge slides along itself): point the camera so that it sees the rock's relief")
        x = np.linalg.solve(ata, a.T @ b)
        step, _ = cv2.Rodrigues(x[:3])
        rot, trans = step @ rot, step @ trans + x[3:]
        rms = float(np.sqrt(np.mean(b**2)))
        if it >= 3:
            limit = trim
        if np.linalg.norm(x[:3]) < 1e-7 and np.linalg.norm(x[3:]) < 1e-7:
            break
    R = rot.T
    return PoseFit(Pinhole(guess.size, guess.K, R, -R @ trans, guess.dist), rms, inliers)


# --- the projectors ------------------------------------------------------------------------------


def _dlt(points: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The 3x4 projection matrix by the normalised direct linear transform."""
    pm, ps = points.mean(axis=0), np.sqrt(3) / np.mean(np.linalg.norm(points - points.mean(axis=0), axis=1))
    qm, qs = pixels.mean(axis=0), np.sqrt(2) / np.mean(np.linalg.norm(pixels - pixels.mean(axis=0), axis=1))
    t3 = np.diag([ps, ps, ps, 1.0])
    t3[:3, 3] = -ps * pm
    t2 = np.diag([qs, qs, 1.0])
    t2[:2, 2] = -qs * qm
    X = np.column_stack([(points - pm) * ps, np.ones(len(points))])
    x = (pixels - qm) * qs
    rows = np.zeros((2 * len(X), 12))
    rows[0::2, 4:8], rows[0::2, 8:] = -X, x[:, 1:2] * X
    rows[1::2, 0:4], rows[1::2, 8:] = X, -x[:, 0:1] * X
    p = np.linalg.svd(rows, full_matrices=False)[2][-1].reshape(3, 4)
    return np.linalg.inv(t2) @ p @ t3


def _decompose(p: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if np.mean(np.column_stack([points, np.ones(len(points))]) @ p[2]) < 0:
        p = -p  # the points in front of the device
    K, R, c, *_ = cv2.decomposeProjectionMatrix(p)
    K = K / K[2, 2]
    centre = c[:3, 0] / c[3, 0]
    return K, R, -R @ centre


@dataclass(frozen=True)
class ProjectorFit:
    projector: Pinhole
    rms_px: float
    errors: np.ndarray  # (N,) each pair's reprojection error, pixels (NaN: no rock point, or an outlier)


def solve_projector(points: np.ndarray, pixels: np.ndarray, size: tuple[int, int], what: str = "projector",
                    outlier_px: float = 3.0) -> ProjectorFit:
    """A projector of ``size`` from scene points and the projector pixels that lit them:
    intrinsics, distortion (k1, k2, p1, p2) and pose. Pairs whose error is over ``outlier_px``
    after a first fit (a decode error, a point behind an edge) are left out of the second."""
    given = len(points)
    ok = np.all(np.isfinite(points), axis=1) & np.all(np.isfinite(pixels), axis=1)
    points, pixels = np.asarray(points, np.float64)[ok], np.asarray(pixels, np.float64)[ok]
    if len(points) < MIN_PAIRS:
        raise CalibrationError(f"{what}: only {len(points)} camera blocks saw its light on the rock (at least "
                               f"{MIN_PAIRS} are needed): is it on, aimed at the rock, and in the camera's view?")
    check_relief(points, what)
    K, R, t = _decompose(_dlt(points, pixels), points)
    K[0, 1] = 0.0
    flags = FLAGS
    keep = np.ones(len(points), bool)
    errors = np.full(len(points), np.nan)
    dist = np.zeros(5)
    for _ in range(2):
        obj = [points[keep].astype(np.float32)]
        img = [pixels[keep].astype(np.float32)]
        _, K, dist, rvecs, tvecs = cv2.calibrateCamera(
            obj, img, tuple(int(s) for s in size), K.copy(), dist.copy(), flags=flags,
            criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12))
        R, _ = cv2.Rodrigues(rvecs[0])
        t = tvecs[0].ravel()
        device = Pinhole(tuple(size), K, R, t, dist.ravel())
        errors = np.linalg.norm(device.project(points) - pixels, axis=1)
        keep = errors <= outlier_px
        if keep.sum() < MIN_PAIRS:
            raise CalibrationError(f"{what}: {int((~keep).sum())} of {len(points)} pairs are over {outlier_px} px "
                                   f"from the fit: the decode is unreliable (check the exposure)")
    rms = float(np.sqrt(np.mean(errors[keep] ** 2)))
    aligned = np.full(given, np.nan)  # one per pair given, NaN where left out
    aligned[np.nonzero(ok)[0][keep]] = errors[keep]
    return ProjectorFit(device, rms, aligned)


def rock_points(camera: Pinhole, pixels: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    """The scene points of the rock that camera ``pixels`` (distorted, as captured) see: (N, 3),
    NaN where the ray misses the rock."""
    return ray_hits(mesh, camera.centre, camera.rays(pixels))
