"""Window pixels back into the scene: where the mouse "visitor" stands.

The renderer flattens the scene with one 4x4 matrix (``waterrock.render.projection``). Its
inverse turns a pixel into a line of sight (a parallel projection's lines of sight are all
parallel); the visitor is where that line meets the *touch plane*: the vertical plane that faces
the viewer through the waterfall (the first emitter's centre, or the view's centre).
"""

from __future__ import annotations

import math

import numpy as np

from waterrock.render.projection import view_basis
from waterrock.scene import Scene


def touch_plane(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(point, unit normal) of the plane the mouse moves in. For the default view from +z it
    is the plane z = the emitter's z; looking straight down, it is the horizontal plane."""
    p = scene.render.projection
    point = np.asarray(scene.emitters[0].center if scene.emitters else p.center, np.float64)
    az = math.radians(p.azimuth_deg)
    horizontal = np.array([math.sin(az), 0.0, math.cos(az)])
    toward = view_basis(p.azimuth_deg, p.elevation_deg)[2]
    # a vertical plane, unless the view is so steep that it would be seen edge-on
    normal = horizontal if abs(toward @ horizontal) > 0.25 else toward
    return point, normal / np.linalg.norm(normal)


def pixel_to_scene(
    matrix: np.ndarray,
    size: tuple[int, int],
    x: float,
    y: float,
    plane_point: np.ndarray,
    plane_normal: np.ndarray,
) -> np.ndarray:
    """The scene point under window pixel (x right, y down) on the plane; NaNs if the line of
    sight runs along the plane (or points away from it, for a perspective view)."""
    w, h = size
    ndc_x, ndc_y = 2.0 * x / w - 1.0, 1.0 - 2.0 * y / h
    inv = np.linalg.inv(np.asarray(matrix, np.float64))
    ends = []
    for z in (-1.0, 1.0):
        q = inv @ np.array([ndc_x, ndc_y, z, 1.0])
        ends.append(q[:3] / q[3])
    near, far = ends
    d = far - near
    denom = float(plane_normal @ d)
    if abs(denom) < 1e-12 * max(np.linalg.norm(d), 1e-30):
        return np.full(3, np.nan)
    t = float(plane_normal @ (plane_point - near)) / denom
    if not math.isfinite(t):
        return np.full(3, np.nan)
    return near + t * d


def visitor_radius(scene: Scene) -> float:
    """A hand-sized sphere in the scene's own scale: a twentieth of the view's height, at least
    two kernel supports (so the water feels it) and at most 0.3 m."""
    r = 0.05 * scene.render.projection.height
    return float(min(max(r, 2.0 * scene.fluid.support_radius), 0.3))
