"""One density estimate for every solver's particles, so that density errors compare fairly.

Each solver reports its own density error with its own boundary model, which would make the
comparison one of boundary models. Instead, the final particle positions of every run (waterrock
and peers alike) go through the same estimate: the fluid-only SPH sum with the cubic spline
kernel (support 4r, mass rho0 (2r)^3), rho_i = sum_j m W(x_i - x_j, h), over the *interior*
particles only, those whose neighbourhood is all fluid:

  - at least one support radius h from every wall of the tank (no wall contribution missing), and
  - whose neighbours' centroid lies within a quarter of a particle radius of the particle (a
    free-surface particle's neighbours all lie on one side; Dilts 2000 / Haque & Dilts 2007 use
    the same one-sidedness to find surfaces).

The error is the mean compression over them, mean(max(rho_i / rho0 - 1, 0)), which is what
waterrock's ``Solver.density_error`` and SPlisHSPlasH's DFSPH tolerance bound.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from waterrock.solver.kernels import cubic_W_np

CENTROID_FRACTION = 0.25  # of the particle radius


def fluid_density(x: np.ndarray, radius: float, rest_density: float) -> tuple[np.ndarray, np.ndarray]:
    """rho of every particle (fluid neighbours only) and the offset of its neighbours' centroid."""
    x = np.asarray(x, dtype=np.float64)
    h, mass, n = 4.0 * radius, rest_density * (2.0 * radius) ** 3, len(x)
    pairs = cKDTree(x).query_pairs(h, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = x[j] - x[i]
    w = mass * cubic_W_np(np.linalg.norm(d, axis=1), h)
    rho = mass * float(cubic_W_np(0.0, h)) + np.bincount(i, w, n) + np.bincount(j, w, n)
    count = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    offset = np.stack([np.bincount(i, d[:, a], n) - np.bincount(j, d[:, a], n) for a in range(3)], axis=1)
    offset /= np.maximum(count, 1)[:, None]
    return rho, np.linalg.norm(offset, axis=1)


def interior(x: np.ndarray, radius: float, lower, upper, offset: np.ndarray) -> np.ndarray:
    h = 4.0 * radius
    x = np.asarray(x, dtype=np.float64)
    away = np.all((x - np.asarray(lower) >= h) & (np.asarray(upper) - x >= h), axis=1)
    return away & (offset <= CENTROID_FRACTION * radius)


def common_density_error(x, radius: float, rest_density: float, lower, upper) -> dict:
    """The fair comparison's density error of final positions ``x`` (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0 or not np.all(np.isfinite(x)):
        return {"density_error": None, "interior": 0, "particles": len(x), "finite": bool(np.all(np.isfinite(x)))}
    rho, offset = fluid_density(x, radius, rest_density)
    inside = interior(x, radius, lower, upper, offset)
    rel = rho[inside] / rest_density - 1.0
    return {
        "density_error": float(np.mean(np.maximum(rel, 0.0))) if inside.any() else None,
        "max_compression": float(rel.max()) if inside.any() else None,
        "interior": int(inside.sum()), "particles": len(x), "finite": True,
    }
