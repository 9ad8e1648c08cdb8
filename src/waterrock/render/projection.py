"""The flattening: one 4x4 matrix from the scene's projection settings, used by every program.

A parallel projection keeps parallel lines parallel and has no vanishing point: the picture is
the same from wherever the visitor stands (our reading of teamLab's "ultrasubjective space",
see docs/rendering.md). It is built as view rotation, then an oblique shear of depth onto the
picture plane, then a uniform scale, so a waterfall seen from the front can still show the
depth of the rock as a slant, the way pre-modern Japanese paintings draw buildings.

Matrices are numpy row-major and act on column vectors (clip = M @ [x, y, z, 1]); upload
them with :func:`gl_bytes`, which writes the column-major layout GLSL expects.
"""

from __future__ import annotations

import math

import numpy as np

from waterrock.render.settings import ProjectionSettings


def view_basis(azimuth_deg: float, elevation_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right, up and toward-viewer unit vectors of a view from azimuth (about y, 0 = from +z)
    and elevation. Right stays horizontal, so the picture never rolls, even looking straight down."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    toward = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
    right = np.array([math.cos(az), 0.0, -math.sin(az)])
    up = np.cross(toward, right)
    return right, up, toward


def _view_matrix(s: ProjectionSettings) -> np.ndarray:
    """World to view: x right, y up, z toward the viewer, origin at the scene's center."""
    right, up, toward = view_basis(s.azimuth_deg, s.elevation_deg)
    rot = np.eye(4)
    rot[0, :3], rot[1, :3], rot[2, :3] = right, up, toward
    move = np.eye(4)
    move[:3, 3] = -np.asarray(s.center, dtype=np.float64)
    return rot @ move


def parallel_matrix(s: ProjectionSettings, aspect: float) -> np.ndarray:
    """The flattening proper: view, oblique shear, scale to the picture, offset."""
    a = math.radians(s.oblique_angle_deg)
    shear = np.eye(4)
    # What lies deeper (-z in view space) slides along the oblique angle, in proportion to depth.
    shear[0, 2] = -s.oblique_strength * math.cos(a)
    shear[1, 2] = -s.oblique_strength * math.sin(a)
    half_h = 0.5 * s.height
    scale = np.diag([1.0 / (half_h * aspect), 1.0 / half_h, -1.0 / s.depth, 1.0])
    offset = np.eye(4)
    offset[0, 3], offset[1, 3] = 2.0 * s.offset[0] / aspect, 2.0 * s.offset[1]
    return offset @ scale @ shear @ _view_matrix(s)


def perspective_matrix(s: ProjectionSettings, aspect: float) -> np.ndarray:
    """A pinhole camera on the same view direction, for debugging the 3D scene: at ``center``
    it shows ``height`` metres, like the parallel view."""
    f = 1.0 / math.tan(math.radians(s.fov_deg) / 2.0)
    distance = 0.5 * s.height * f
    near, far = 0.01 * distance, distance + s.depth
    proj = np.zeros((4, 4))
    proj[0, 0], proj[1, 1] = f / aspect, f
    proj[2, 2], proj[2, 3] = (far + near) / (near - far), 2.0 * far * near / (near - far)
    proj[3, 2] = -1.0
    back = np.eye(4)
    back[2, 3] = -distance  # the eye stands `distance` toward the viewer from center
    offset = np.eye(4)
    offset[0, 2], offset[1, 2] = -2.0 * s.offset[0] / aspect, -2.0 * s.offset[1]  # scaled by w = -z
    return offset @ proj @ back @ _view_matrix(s)


def flattening(s: ProjectionSettings, size: tuple[int, int]) -> np.ndarray:
    """The scene's 4x4 world-to-clip matrix (float32) for a picture of ``size`` (w, h) pixels."""
    aspect = size[0] / size[1]
    m = perspective_matrix(s, aspect) if s.mode == "perspective" else parallel_matrix(s, aspect)
    return m.astype(np.float32)


def gl_bytes(m: np.ndarray) -> bytes:
    """A row-major numpy matrix as the column-major bytes a GLSL mat4 uniform expects."""
    return np.ascontiguousarray(m.T, dtype=np.float32).tobytes()


def to_pixels(m: np.ndarray, points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Where world points land in a picture of ``size``: (N, 2) pixel coordinates, x right,
    y down (image rows), as a read-back image indexes them."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    clip = np.c_[p, np.ones(len(p))] @ np.asarray(m, dtype=np.float64).T
    ndc = clip[:, :2] / clip[:, 3:4]
    w, h = size
    return np.c_[(ndc[:, 0] * 0.5 + 0.5) * w, (0.5 - ndc[:, 1] * 0.5) * h]
